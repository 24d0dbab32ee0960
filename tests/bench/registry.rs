//! The registry case (issue #17): the large-image fixture (two 105 MB layers of random bytes
//! under a small code layer, as `large.rs` builds it) pushed by todo-deploy's load stage to a
//! real registry (Debian's Distribution 2.8 on loopback, a fresh one each round, so the first
//! push starts from nothing and no layer can be mounted from an earlier round), then the image
//! after a one-file change of the code layer. Per push: seconds, the layers sent, and the bytes
//! the registry stored (its storage directory's growth: what crossed the wire, compressed).

use std::time::Instant;

use bollard::Docker;
use todo_deploy::build::BuiltImage;
use todo_deploy::config::LoaderKind;
use todo_deploy::load::{self, NodeOutcome};
use todo_deploy::plan::ClusterTarget;
use todo_deploy::ui::Events;

use crate::support::nodes::{FakeNodes, random_bytes};
use crate::support::registry::Registry;
use crate::{median, quiet};

const LAYER: usize = 105 * 1000 * 1000;

#[derive(Default)]
struct Runs {
    first: Vec<f64>,
    first_bytes: Vec<u64>,
    change: Vec<f64>,
    change_bytes: Vec<u64>,
    change_layers: Vec<(usize, usize)>,
}

/// Runs the case `runs` times and prints it.
pub async fn run(docker: &Docker, runs: usize) -> Result<(), String> {
    let nodes = FakeNodes::new(docker, "registry").await;
    let base = random_bytes(LAYER);
    let mut deps = base.clone();
    deps.reverse();
    let repository = nodes.repository("big");
    println!();
    println!(
        "registry push: 2 x {:.0} MB of random bytes under a code layer, to Distribution (`docker-registry`) on 127.0.0.1, {runs} runs",
        LAYER as f64 / 1e6
    );
    let mut measured = Runs::default();
    for round in 0..runs {
        let mut built = Vec::new();
        for version in ["v1", "v2"] {
            let code = format!("round {round}, {version}\n");
            let files: [(&str, &[u8]); 3] = [
                ("/data/base", &base),
                ("/data/deps", &deps),
                ("/app/code.txt", code.as_bytes()),
            ];
            let tag = format!("r{round}-{version}");
            built.push(nodes.layered_image("big", &repository, &tag, &files).await);
        }
        self::round(docker, round, &built, &mut measured).await?;
    }
    report(&measured);
    Ok(())
}

/// One round against a fresh registry: the first push of v1, then v2.
async fn round(
    docker: &Docker,
    round: usize,
    built: &[BuiltImage],
    runs: &mut Runs,
) -> Result<(), String> {
    let registry = Registry::start().ok_or("`docker-registry` is not installed")?;
    let mut target = ClusterTarget::with_loader(LoaderKind::Registry);
    target.registry = Some(registry.host.clone());
    let (events, _receiver) = Events::channel();
    let config = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir = config.path().display().to_string();
    let env = move |key: &str| (key == "DOCKER_CONFIG").then(|| dir.clone());
    let loader = load::resolve(docker, &target, "remote", &env, &events)
        .await
        .map_err(|e| format!("resolve the registry: {e}"))?;
    let push = async |image: &BuiltImage| -> Result<(f64, u64, NodeOutcome), String> {
        quiet().await;
        let before = registry.stored_bytes();
        let started = Instant::now();
        let loaded = load::load_all(docker, &loader, std::slice::from_ref(image), &events)
            .await
            .map_err(|e| format!("push `{}`: {}", image.image, e.with_causes()))?;
        let elapsed = started.elapsed().as_secs_f64();
        let outcome = loaded.first().map(|l| l.outcome.clone()).ok_or("no push")?;
        Ok((elapsed, registry.stored_bytes() - before, outcome))
    };
    let (first, first_bytes, _) = push(&built[0]).await?;
    let (change, change_bytes, outcome) = push(&built[1]).await?;
    let layers = match outcome {
        NodeOutcome::Layers { layers, total, .. } => (layers, total),
        NodeOutcome::AlreadyPresent => (0, 0),
        other => return Err(format!("unexpected push outcome {other:?}")),
    };
    println!(
        "  run {}: first push {first:.2}s ({:.1} MB stored); after a one-file change {change:.3}s ({} of {} layers, {} bytes stored)",
        round + 1,
        first_bytes as f64 / 1e6,
        layers.0,
        layers.1,
        change_bytes
    );
    runs.first.push(first);
    runs.first_bytes.push(first_bytes);
    runs.change.push(change);
    runs.change_bytes.push(change_bytes);
    runs.change_layers.push(layers);
    Ok(())
}

fn report(runs: &Runs) {
    let first_bytes = median(runs.first_bytes.iter().map(|b| *b as f64));
    let change_bytes = median(runs.change_bytes.iter().map(|b| *b as f64));
    let layers = runs.change_layers.iter().map(|l| l.0).max().unwrap_or(0);
    println!(
        "registry push (large image): first {:.2} s, {:.1} MB stored ({:.0} MB/s); after a one-file change {:.3} s, {:.1} KB stored, at most {layers} layer(s) sent; target: one layer",
        median(runs.first.iter().copied()),
        first_bytes / 1e6,
        first_bytes / 1e6 / median(runs.first.iter().copied()),
        median(runs.change.iter().copied()),
        change_bytes / 1e3,
    );
}
