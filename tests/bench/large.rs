//! The large-image case (layer-aware loading, issue #12): an image of two 105 MB layers of random
//! bytes (incompressible) under a small code layer, loaded into a kind node container bound to a
//! real containerd (its own socket, root and state; the node's `ctr` is the real one, as
//! `support::nodes` sets it up). Each round, from an empty node:
//!
//! - full load: todo-deploy's load stage against `docker save IMAGE | docker exec -i NODE ctr
//!   --namespace=k8s.io images import --all-platforms --digests --snapshotter=overlayfs -` (what
//!   `kind load docker-image` runs), each into an emptied node; target ≥ 1.0x;
//! - upgrade after a one-file change (the code layer): the bytes todo-deploy sends (target ≤ 1 %
//!   of the image) and its load stage's time against the baseline's import of the same upgrade
//!   (the whole archive again) and against its full import; target ≤ 0.1x;
//! - re-tag of the unchanged image (a cache-hit build under a new tag): the bytes sent, target 0.
//!
//! Times are medians of the rounds; every run is printed.

use std::time::Instant;

use bollard::Docker;
use bollard::query_parameters::TagImageOptionsBuilder;
use todo_deploy::build::BuiltImage;
use todo_deploy::config::LoaderKind;
use todo_deploy::load::{self, LoadEvent, NodeOutcome};
use todo_deploy::plan::{ClusterTarget, ImageRef};
use todo_deploy::ui::{Event, Events};

use crate::support::nodes::{Containerd, FakeNodes, random_bytes};
use crate::{IMPORT, median, quiet};

/// One layer of random bytes: two of them make the image's bulk.
const LAYER: usize = 105 * 1000 * 1000;

#[derive(Default)]
struct Runs {
    td_full: Vec<f64>,
    bl_full: Vec<f64>,
    td_upgrade: Vec<f64>,
    td_upgrade_bytes: Vec<u64>,
    bl_upgrade: Vec<f64>,
    td_retag: Vec<f64>,
    td_retag_bytes: Vec<u64>,
    /// The whole image (config and every layer), as the load stage counted it.
    size: u64,
}

/// Runs the case `runs` times and prints it; an error says what failed.
pub async fn run(docker: &Docker, runs: usize) -> Result<(), String> {
    let Some(containerd) = Containerd::start() else {
        return Err("the large-image case needs `containerd` and `ctr`, run as root".to_owned());
    };
    let nodes = FakeNodes::new(docker, "large").await;
    let cluster = nodes.unique.clone();
    let node = format!("{cluster}-control-plane");
    nodes.start_real(&node, &cluster, &containerd).await;
    let (events, _receiver) = Events::channel();
    let target = ClusterTarget::with_loader(LoaderKind::Kind);
    let loader = load::resolve(
        docker,
        &target,
        &format!("kind-{cluster}"),
        &|_| None,
        &events,
    )
    .await
    .map_err(|e| format!("resolve the node: {e}"))?;
    let base = random_bytes(LAYER);
    let mut deps = base.clone();
    deps.reverse();
    let repository = nodes.repository("big");
    let case = Case {
        docker,
        node: &node,
        containerd: &containerd,
        loader: &loader,
    };
    println!();
    println!(
        "large image: 2 x {:.0} MB of random bytes under a code layer; a kind node container with the real ctr on containerd ({}), {runs} runs",
        LAYER as f64 / 1e6,
        tool_version("containerd")
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
        case.round(round, &built[0], &built[1], &mut measured)
            .await?;
    }
    report(&measured, runs);
    Ok(())
}

struct Case<'a> {
    docker: &'a Docker,
    node: &'a str,
    containerd: &'a Containerd,
    loader: &'a load::Loader,
}

impl Case<'_> {
    /// One round: full loads (both sides), the upgrade (both sides), the re-tag.
    async fn round(
        &self,
        round: usize,
        v1: &BuiltImage,
        v2: &BuiltImage,
        runs: &mut Runs,
    ) -> Result<(), String> {
        self.empty().await?;
        let (full, outcome, size) = self.load(v1).await?;
        runs.size = size;
        self.empty().await?;
        let baseline_full = self.pipe(&v1.image.to_string()).await?;

        let (upgrade, upgraded, _) = self.load(v2).await?;
        let NodeOutcome::Layers { layers, total, .. } = upgraded else {
            return Err(format!("the upgrade was not layered: {upgraded:?}"));
        };
        // The baseline upgrades from the same state: v1 on the node, not v2.
        self.containerd
            .ctr(&["images", "rm", "--sync", &format!("docker.io/{}", v2.image)]);
        let baseline_upgrade = self.pipe(&v2.image.to_string()).await?;

        let retag = self.retag(v2, &format!("r{round}-v2b")).await?;
        let (retagged, tagged, _) = self.load(&retag).await?;
        println!(
            "  run {}: full load todo-deploy {full:.2}s ({} bytes), baseline {baseline_full:.2}s; upgrade todo-deploy {upgrade:.3}s ({} bytes, {layers} of {total} layers), baseline {baseline_upgrade:.2}s; re-tag todo-deploy {retagged:.3}s ({} bytes, {tagged:?})",
            round + 1,
            outcome.bytes(),
            upgraded.bytes(),
            tagged.bytes()
        );
        runs.td_full.push(full);
        runs.bl_full.push(baseline_full);
        runs.td_upgrade.push(upgrade);
        runs.td_upgrade_bytes.push(upgraded.bytes());
        runs.bl_upgrade.push(baseline_upgrade);
        runs.td_retag.push(retagged);
        runs.td_retag_bytes.push(tagged.bytes());
        Ok(())
    }

    /// The load stage for `image`: its time, the node's outcome, and the image's size as the
    /// stage reported it (the engine's estimate when nothing was sent).
    async fn load(&self, image: &BuiltImage) -> Result<(f64, NodeOutcome, u64), String> {
        quiet().await;
        let (events, mut receiver) = Events::channel();
        let started = Instant::now();
        let loaded = load::load_all(
            self.docker,
            self.loader,
            std::slice::from_ref(image),
            &events,
        )
        .await
        .map_err(|e| format!("load `{}`: {}", image.image, e.with_causes()))?;
        let elapsed = started.elapsed().as_secs_f64();
        let outcome = loaded
            .first()
            .map(|l| l.outcome.clone())
            .ok_or("no outcome")?;
        let mut size = 0;
        while let Ok(event) = receiver.try_recv() {
            match event {
                Event::Load(LoadEvent::Layers { size: s, .. }) => size = s,
                Event::Load(LoadEvent::Finished { bytes, .. }) => size = bytes,
                _ => {}
            }
        }
        Ok((elapsed, outcome, size))
    }

    /// The baseline: `docker save | docker exec -i NODE ctr … import -`; its time.
    async fn pipe(&self, reference: &str) -> Result<f64, String> {
        quiet().await;
        let pipe = format!(
            "docker save {reference} | docker exec -i {} {IMPORT}",
            self.node
        );
        let started = Instant::now();
        let status = tokio::process::Command::new("sh")
            .args(["-c", &pipe])
            .stdout(std::process::Stdio::null())
            .status()
            .await
            .map_err(|e| format!("sh: {e}"))?;
        if !status.success() {
            return Err(format!("`{pipe}` failed: {status}"));
        }
        Ok(started.elapsed().as_secs_f64())
    }

    /// `image` under the tag `tag` as well, as a cache-hit build gives it.
    async fn retag(&self, image: &BuiltImage, tag: &str) -> Result<BuiltImage, String> {
        let options = TagImageOptionsBuilder::new()
            .repo(&image.image.repository)
            .tag(tag)
            .build();
        self.docker
            .tag_image(&image.id, Some(options))
            .await
            .map_err(|e| format!("tag: {e}"))?;
        Ok(BuiltImage {
            image: ImageRef {
                tag: tag.to_owned(),
                ..image.image.clone()
            },
            ..image.clone()
        })
    }

    /// Removes every image from the node and waits until containerd has collected their
    /// snapshots.
    async fn empty(&self) -> Result<(), String> {
        let images = self.containerd.images();
        if !images.is_empty() {
            let mut args = vec!["images", "rm", "--sync"];
            args.extend(images.iter().map(String::as_str));
            self.containerd.ctr(&args);
        }
        // `--sync` waits for the collection; should it lag, each look takes a `ctr` run.
        for _ in 0..100 {
            if self.containerd.snapshots().is_empty() {
                return Ok(());
            }
        }
        Err(format!(
            "the node still has snapshots: {:?}",
            self.containerd.snapshots()
        ))
    }
}

fn report(runs: &Runs, count: usize) {
    let m = |v: &[f64]| median(v.iter().copied());
    let mb = |bytes: u64| bytes as f64 / 1e6;
    let verdict = |met: bool, missed: String| if met { "met".to_owned() } else { missed };
    let (td, bl) = (m(&runs.td_full), m(&runs.bl_full));
    println!(
        "large image summary (medians of {count} runs; image {:.1} MB):",
        mb(runs.size)
    );
    println!(
        "  full load into an empty node: todo-deploy {td:.2} s, docker save | docker exec -i NODE ctr import {bl:.2} s, {:.2}x; target >= 1.0x: {}",
        bl / td,
        verdict(bl / td >= 1.0, format!("MISSED by {:.2}x", 1.0 - bl / td))
    );
    let sent = median(runs.td_upgrade_bytes.iter().map(|&b| b as f64));
    let share = sent / runs.size.max(1) as f64;
    let (up, bl_up) = (m(&runs.td_upgrade), m(&runs.bl_upgrade));
    println!(
        "  upgrade after a one-file change: todo-deploy sent {:.1} KB of {:.1} MB ({:.4} %), target <= 1 %: {}; load stage {up:.2} s vs the baseline's import of the same upgrade {bl_up:.2} s ({:.2}x) and its full import {bl:.2} s ({:.2}x); target <= 0.1x: {}",
        sent / 1e3,
        mb(runs.size),
        share * 100.0,
        verdict(share <= 0.01, format!("MISSED ({:.2} %)", share * 100.0)),
        up / bl_up,
        up / bl,
        verdict(
            up / bl_up <= 0.1,
            format!("MISSED by {:.2}x", up / bl_up - 0.1)
        )
    );
    let retag_bytes = runs.td_retag_bytes.iter().copied().max().unwrap_or(0);
    println!(
        "  re-tag of an unchanged image: todo-deploy sent {retag_bytes} bytes in {:.3} s (the baseline sends the whole image again); target 0 bytes: {}",
        m(&runs.td_retag),
        verdict(retag_bytes == 0, "MISSED".to_owned())
    );
}

fn tool_version(program: &str) -> String {
    std::process::Command::new(program)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "version unknown".to_owned())
}
