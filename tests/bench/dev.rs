//! The dev loop's figure (issue #15): the time from saving one file of the backend's build
//! context to a new backend pod ready, `todo-deploy dev` (already running, as a developer has
//! it) against the same change made with the install script (`scripts/baseline-install`:
//! rebuild, full load, apply, rollout status). Both run on the same target as the rest of the
//! benchmark, with the engine's layer cache warm from the deploy before (as a developer's is),
//! and the same kube-rs watch sees the new pod appear and become ready.
//!
//! The tool's own overhead is the total less the image build (the first to the last build line
//! of its output) and the pod's own start (the watch: the new pod seen to ready).

use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::watcher;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::support::cluster::{App, Env};
use super::support::docker;
use super::{Side, Step, baseline, run_timed, signed};

/// One side's figure, in seconds.
#[derive(Debug, Default, Clone, Copy)]
pub struct DevRound {
    /// File written to new backend pod ready.
    pub total: f64,
    /// The image build(s) in between.
    pub build: f64,
    /// The new pod's own start: seen to ready.
    pub pod: f64,
}

impl DevRound {
    pub fn overhead(&self) -> f64 {
        self.total - self.build - self.pod
    }
}

/// The file each round changes.
const CHANGED: &str = "www/version.txt";

/// What the pods are asked before they count as ready, and how fast the stand-in's node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Probes {
    /// The end-to-end suite's: 1 s initial delays, the stand-in at 0.05 of real time. What is
    /// left is the tools' own work: build, load, apply.
    Fixture,
    /// `config/todo-deploy.yaml`'s (readiness after 10 s, every 5 s), the stand-in's node in
    /// real time: what a developer with the default configuration waits for.
    Configured,
}

/// The default configuration's probes, over the suite's.
const CONFIGURED: &str = "services:
  backend:
    probes:
      readiness: {initialDelaySeconds: 10, periodSeconds: 5}
      liveness: {initialDelaySeconds: 30, periodSeconds: 10}
  frontend:
    probes:
      readiness: {initialDelaySeconds: 10, periodSeconds: 5}
      liveness: {initialDelaySeconds: 30, periodSeconds: 10}
";

/// The extra flags of both sides for `probes`.
pub fn extra(probes: Probes) -> &'static [&'static str] {
    match probes {
        Probes::Fixture => &[],
        Probes::Configured => &["--values", "configured-probes.yaml"],
    }
}

/// One side's round in `env` (fresh, with the fixture's Dockerfiles): deploy, then change one
/// backend file and time it to the new backend pod ready.
pub async fn round(
    env: &Env,
    side: Side,
    unique: &str,
    probes: Probes,
) -> Result<DevRound, String> {
    if probes == Probes::Configured {
        env.project.write("configured-probes.yaml", CONFIGURED);
        if let Some(standin) = env.standin() {
            standin.set_time_scale(1.0);
        }
    }
    // Content of this round alone: no image of another round is reused.
    env.project.write(
        "examples/todo-app/backend/www/round.txt",
        &format!("{unique}\n"),
    );
    env.project.write(
        "examples/todo-app/frontend/www/round.txt",
        &format!("{unique}\n"),
    );
    env.provide(App::Healthy, &[]).await;
    match side {
        Side::TodoDeploy => todo_deploy_dev(env, unique, extra(probes)).await,
        Side::Baseline => install_script(env, unique, extra(probes)).await,
    }
}

async fn todo_deploy_dev(env: &Env, unique: &str, extra: &[&str]) -> Result<DevRound, String> {
    let plan = docker::plan(&env.project, &["e2e-values.yaml"], &[], None);
    let mut args = vec!["dev"];
    args.extend_from_slice(extra);
    let mut command = env.command(&args);
    command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut dev = command.spawn().map_err(|e| format!("dev starts: {e}"))?;
    let stderr = dev.stderr.take().ok_or("no stderr")?;
    let (sender, mut lines) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut reader = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            let _ = sender.send((Instant::now(), line));
        }
    });
    let mut seen = Vec::new();
    until(&mut lines, &mut seen, |l| {
        l.starts_with("dev: iteration 1 ")
    })
    .await?;
    let text = format!("{unique} v2\n");
    let image = env.provide_future(&plan, App::Healthy, "backend", CHANGED, &text);
    let watch = PodWatch::start(env, move |pod| pod_image(pod) == Some(image.as_str())).await;
    let written = Instant::now();
    env.project
        .write(&format!("examples/todo-app/backend/{CHANGED}"), &text);
    let (appeared, ready) = watch.ready().await?;
    let done = until(&mut lines, &mut seen, |l| {
        l.starts_with("dev: iteration 2 ")
    })
    .await;
    let interrupted = std::process::Command::new("kill")
        .args(["-INT", &dev.id().unwrap_or_default().to_string()])
        .status();
    let _ = tokio::time::timeout(Duration::from_secs(60), dev.wait()).await;
    done?;
    interrupted.map_err(|e| format!("kill: {e}"))?;
    let after: Vec<&(Instant, String)> = seen.iter().filter(|(at, _)| *at >= written).collect();
    if std::env::var_os("BENCH_SHOW_OUTPUT").is_some() {
        for (at, line) in &after {
            eprintln!("{:>8.3}s {line}", signed(*at, written));
        }
        eprintln!(
            "{:>8.3}s (the watch: the new pod seen)",
            signed(appeared, written)
        );
        eprintln!(
            "{:>8.3}s (the watch: the new pod ready)",
            signed(ready, written)
        );
    }
    let building = after
        .iter()
        .find(|(_, l)| l.starts_with("build backend: building"));
    let built = after
        .iter()
        .find(|(_, l)| l.starts_with("build backend: built"));
    let (Some((building, _)), Some((built, _))) = (building, built) else {
        return Err(format!("no build lines:\n{}", text_of(&seen)));
    };
    Ok(DevRound {
        total: signed(ready, written),
        build: signed(*built, *building),
        pod: signed(ready, appeared),
    })
}

/// The same change with the install script: `--tag v1` first, then the change and `--tag v2`.
async fn install_script(env: &Env, unique: &str, extra: &[&str]) -> Result<DevRound, String> {
    let (v1, v2) = (format!("dev-{unique}-v1"), format!("dev-{unique}-v2"));
    env.provide(App::Healthy, &["--tag", &v1]).await;
    env.provide(App::Healthy, &["--tag", &v2]).await;
    let mut first = baseline(env, Step::Install(&v1));
    first.args(extra.iter().map(|a| a.replace("--values", "-f")));
    let first = run_timed(first, false).await;
    if first.code != 0 {
        return Err(format!("baseline --tag {v1}:\n{}", first.output()));
    }
    let image = format!("todo-e2e-backend:{v2}");
    let watch = PodWatch::start(env, move |pod| pod_image(pod) == Some(image.as_str())).await;
    let written = Instant::now();
    env.project.write(
        &format!("examples/todo-app/backend/{CHANGED}"),
        &format!("{unique} v2\n"),
    );
    let mut second = baseline(env, Step::Upgrade(&v2));
    second.args(extra.iter().map(|a| a.replace("--values", "-f")));
    let second = run_timed(second, false).await;
    if second.code != 0 {
        return Err(format!("baseline --tag {v2}:\n{}", second.output()));
    }
    let (appeared, ready) = watch.ready().await?;
    let lines = &second.lines;
    let building = lines.iter().find(|(_, l)| l.starts_with("+ docker build"));
    let saving = lines.iter().find(|(_, l)| l.starts_with("+ docker save"));
    let (Some((building, _)), Some((saving, _))) = (building, saving) else {
        return Err(format!("no build lines:\n{}", second.output()));
    };
    Ok(DevRound {
        total: signed(ready, written),
        build: signed(*saving, *building),
        pod: signed(ready, appeared),
    })
}

/// Reads timestamped lines until one satisfies `wanted`; its instant.
async fn until(
    lines: &mut tokio::sync::mpsc::UnboundedReceiver<(Instant, String)>,
    seen: &mut Vec<(Instant, String)>,
    wanted: impl Fn(&str) -> bool,
) -> Result<Instant, String> {
    let limit = tokio::time::sleep(Duration::from_secs(300));
    tokio::pin!(limit);
    loop {
        tokio::select! {
            line = lines.recv() => match line {
                Some((at, line)) => {
                    let found = wanted(&line);
                    seen.push((at, line));
                    if found {
                        return Ok(at);
                    }
                }
                None => return Err(format!("dev ended:\n{}", text_of(seen))),
            },
            () = &mut limit => return Err(format!("no such line within 300 s:\n{}", text_of(seen))),
        }
    }
}

fn text_of(lines: &[(Instant, String)]) -> String {
    lines.iter().map(|(_, l)| format!("{l}\n")).collect()
}

fn pod_image(pod: &Pod) -> Option<&str> {
    pod.spec.as_ref()?.containers.first()?.image.as_deref()
}

/// A watch on the scenario's pods, for the first pod a predicate picks: when it was first seen
/// and when it was ready.
struct PodWatch {
    task: tokio::task::JoinHandle<Option<(Instant, Instant)>>,
}

impl PodWatch {
    /// Started and listed before it returns, so nothing after it is missed.
    async fn start(env: &Env, wanted: impl Fn(&Pod) -> bool + Send + 'static) -> PodWatch {
        let api: Api<Pod> = Api::namespaced(env.client.clone(), &env.namespace);
        let (listed, is_listed) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut listed = Some(listed);
            let mut first_seen = None;
            let mut stream = watcher(api, watcher::Config::default()).boxed();
            while let Some(event) = stream.next().await {
                let now = Instant::now();
                let pod = match event {
                    Ok(watcher::Event::InitDone) => {
                        if let Some(listed) = listed.take() {
                            let _ = listed.send(());
                        }
                        continue;
                    }
                    Ok(watcher::Event::Apply(pod)) => pod,
                    _ => continue,
                };
                if !wanted(&pod) {
                    continue;
                }
                let seen = *first_seen.get_or_insert(now);
                if is_ready(&pod) {
                    return Some((seen, now));
                }
            }
            None
        });
        let _ = tokio::time::timeout(Duration::from_secs(10), is_listed).await;
        PodWatch { task }
    }

    /// When the pod was first seen and when it was ready.
    async fn ready(self) -> Result<(Instant, Instant), String> {
        match tokio::time::timeout(Duration::from_secs(300), self.task).await {
            Ok(Ok(Some(times))) => Ok(times),
            _ => Err("the watch never saw the new pod ready".to_owned()),
        }
    }
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}
