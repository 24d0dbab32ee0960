//! The pipeline benchmark (issue #9): `todo-deploy` against the plain CLIs users run today
//! (`scripts/baseline-install`, `scripts/baseline-down`), both deploying the e2e fixture app
//! (FROM-scratch busybox images) to the same target. Run it with `scripts/bench`; `cargo test`
//! never builds it (a bench target), and run without `--bench` it only says so.
//!
//! The target: the in-process API stand-in (from `tests/e2e/support`, time scale 0.05) whose
//! kube context is `kind-<name>`, plus a fake kind node container (`tests/e2e/fixtures/nodes`)
//! that really receives and checks the image archives, so both sides build with the real Docker
//! engine and really load. With `TODO_DEPLOY_E2E_KUBECONFIG` set, the real cluster instead.
//!
//! Each round gives each side a fresh namespace (and, on the stand-in, a fresh API server),
//! fresh image tags and a build context labelled for that round alone, so nothing is in the
//! engine's layer cache or on the node, and runs: `up --tag v1` from nothing, the same again
//! (nothing changed), one context file changed and `upgrade --tag v2`, then `down`. A kube-rs
//! watch on the Deployments timestamps the server side: when the new spec lands and when the
//! last Deployment becomes available. The load throughput is the load stage (library call, as
//! `scripts/measure-load`) against `docker save | docker exec -i NODE ctr … import -` on a
//! ~100 MB image. Figures are medians of N runs (`--runs N` or `RUNS`, default 5).
//! `BENCH_SHOW_OUTPUT=1` prints every command's output with the time each line arrived;
//! `BENCH_VERBOSE=1` runs todo-deploy with `-v` (its detail lines tell the stages apart).

#[allow(dead_code, unused_imports)]
#[path = "../e2e/support/mod.rs"]
mod support;

mod dev;
mod large;
mod registry;

use std::collections::{BTreeMap, HashMap};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters::{ListImagesOptionsBuilder, RemoveImageOptionsBuilder};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::runtime::watcher;
use todo_deploy::config::LoaderKind;
use todo_deploy::load::{self, NodeOutcome};
use todo_deploy::plan::ClusterTarget;
use todo_deploy::progress::Events;
use tokio::io::{AsyncBufReadExt, BufReader};

use support::cluster::{App, Env};
use support::nodes::FakeNodes;

/// The label on every image a round builds: `<bench id>-<round>-<side>-<service>`.
const BENCH_LABEL: &str = "todo-deploy.bench";
const DEPLOYMENTS: [&str; 2] = ["backend", "frontend"];
const IMPORT: &str =
    "ctr --namespace=k8s.io images import --all-platforms --digests --snapshotter=overlayfs -";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        // `cargo test --benches` runs bench targets without `--bench`: do nothing there.
        println!("pipeline: a benchmark, not a test; run it with scripts/bench");
        return;
    }
    let runs = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| std::env::var("RUNS").ok())
        .map_or(5, |n| n.parse::<usize>().expect("--runs N: a number"));
    assert!(runs > 0, "--runs N: at least 1");
    let case = args
        .iter()
        .position(|a| a == "--case")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let only_large = case.as_deref() == Some("large");
    let only_registry = case.as_deref() == Some("registry");
    let only_pipeline = case.as_deref() == Some("pipeline");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let code = runtime.block_on(async {
        let code = if only_large || only_registry {
            0
        } else {
            bench(runs).await
        };
        if code != 0 || only_pipeline {
            return code;
        }
        let Some(docker) = support::docker::engine().await else {
            eprintln!("bench: needs a Docker engine");
            return 1;
        };
        if !only_registry && let Err(error) = large::run(&docker, runs).await {
            eprintln!("bench: the large-image case: {error}");
            return 1;
        }
        match only_large {
            true => 0,
            false => match registry::run(&docker, runs).await {
                Ok(()) => 0,
                Err(error) => {
                    eprintln!("bench: the registry case: {error}");
                    1
                }
            },
        }
    });
    std::process::exit(code);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    TodoDeploy,
    Baseline,
}

impl Side {
    fn short(self) -> &'static str {
        match self {
            Side::TodoDeploy => "td",
            Side::Baseline => "bl",
        }
    }
}

/// What one side's round measured (seconds unless said otherwise).
#[derive(Debug, Default, Clone)]
struct Round {
    cold: f64,
    cold_delay: Option<f64>,
    /// Peak RSS of `todo-deploy up` from nothing, in kB (todo-deploy only).
    cold_rss_kb: Option<u64>,
    warm: f64,
    warm_rss_kb: Option<u64>,
    upgrade: f64,
    upgrade_build: f64,
    upgrade_rollout: f64,
    upgrade_delay: Option<f64>,
    down: f64,
}

impl Round {
    fn overhead(&self) -> f64 {
        self.upgrade - self.upgrade_build - self.upgrade_rollout
    }
}

async fn bench(runs: usize) -> i32 {
    let Some(docker) = support::docker::engine().await else {
        eprintln!(
            "bench: needs a Docker engine and /bin/busybox (../shared/scripts/start-dockerd)"
        );
        return 1;
    };
    if !tool_runs("kubectl", &["version", "--client"]) {
        eprintln!("bench: needs `kubectl` on PATH");
        return 1;
    }
    let id = format!(
        "{:x}{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_micros())
    );
    let _images = ImageCleanup { id: id.clone() };
    let real = std::env::var_os("TODO_DEPLOY_E2E_KUBECONFIG").is_some();
    // The fake kind cluster: one control-plane node container that really imports archives.
    let nodes = FakeNodes::new(&docker, "bench").await;
    let cluster = nodes.unique.clone();
    let node = nodes.start_kind(&cluster).await;
    let target = if real {
        "the cluster of TODO_DEPLOY_E2E_KUBECONFIG".to_owned()
    } else {
        format!(
            "the in-process API stand-in (time scale 0.05, context `kind-{cluster}`) + a fake kind node container"
        )
    };
    println!(
        "pipeline benchmark: todo-deploy (release build) vs scripts/baseline-install|down, {runs} runs each"
    );
    println!(
        "target: {target}; Docker engine {}",
        engine_version(&docker).await
    );

    let dev_only = std::env::args().any(|a| a == "--dev-only");
    if !dev_only {
        let code = pipeline(&docker, &nodes, &node, &cluster, &id, runs, real).await;
        if code != 0 {
            return code;
        }
    }
    if pipeline_only() {
        return 0;
    }
    match dev_loop(&cluster, &id, runs).await {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("bench: the dev loop: {error}");
            1
        }
    }
}

/// The pipeline's figures: `up`, `up` again, `upgrade`, `down`, the load throughput.
async fn pipeline(
    docker: &Docker,
    nodes: &FakeNodes,
    node: &str,
    cluster: &str,
    id: &str,
    runs: usize,
    real: bool,
) -> i32 {
    let mut rounds: BTreeMap<&str, Vec<Round>> = BTreeMap::new();
    let mut busy = 0;
    for round in 0..runs {
        for side in [Side::TodoDeploy, Side::Baseline] {
            if !quiet().await {
                busy += 1;
            }
            let measured = one_round(docker, nodes, node, cluster, id, round, side).await;
            match measured {
                Ok(r) => {
                    println!(
                        "  run {} {:<11} up {:.2}s  again {:.3}s  upgrade {:.2}s (build {:.2}s, rollout {:.2}s, overhead {:.3}s)  down {:.2}s  delay {}  rss {}",
                        round + 1,
                        side_name(side),
                        r.cold,
                        r.warm,
                        r.upgrade,
                        r.upgrade_build,
                        r.upgrade_rollout,
                        r.overhead(),
                        r.down,
                        r.cold_delay
                            .map_or("-".into(), |d| format!("{:.0}ms", d * 1e3)),
                        r.cold_rss_kb
                            .map_or("-".into(), |k| format!("{:.1}MB", k as f64 / 1024.0)),
                    );
                    rounds.entry(side_name(side)).or_default().push(r);
                }
                Err(error) => {
                    eprintln!("bench: run {} of {}: {error}", round + 1, side_name(side));
                    return 1;
                }
            }
        }
    }
    let throughput = throughput(docker, nodes, node, cluster, runs).await;
    let td = &rounds["todo-deploy"];
    let bl = &rounds["baseline"];
    if busy > 0 {
        println!(
            "note: {busy} of {} runs started while other processes kept the CPUs busy (waited 60 s for quiet); their times are noisier",
            2 * runs
        );
    }
    summary(td, bl, &throughput, runs, real);
    0
}

/// The dev loop's figures, `runs` times each side, alternating, with the suite's probes and
/// with the configured ones; then their summary.
async fn dev_loop(cluster: &str, id: &str, runs: usize) -> Result<(), String> {
    let mut figures: BTreeMap<(dev::Probes, &str), Vec<dev::DevRound>> = BTreeMap::new();
    for probes in [dev::Probes::Fixture, dev::Probes::Configured] {
        for round in 0..runs {
            for side in [Side::TodoDeploy, Side::Baseline] {
                quiet().await;
                let short = &id[..id.len().min(8)];
                let scenario = format!("devbench-{}-{short}-{round}", side.short());
                let env = Env::start_on_kind(&scenario, cluster).await;
                let unique = format!("{id}-{probes:?}-{round}-{}", side.short()).to_lowercase();
                let r = dev::round(&env, side, &unique, probes).await?;
                println!(
                    "  dev run {} {probes:?} {:<11} write -> new backend pod ready {:.3}s (build {:.3}s, pod start {:.3}s, the rest {:.3}s)",
                    round + 1,
                    side_name(side),
                    r.total,
                    r.build,
                    r.pod,
                    r.overhead()
                );
                figures
                    .entry((probes, side_name(side)))
                    .or_default()
                    .push(r);
            }
        }
    }
    println!();
    for probes in [dev::Probes::Fixture, dev::Probes::Configured] {
        dev_summary(&figures, probes);
    }
    Ok(())
}

fn dev_summary(figures: &BTreeMap<(dev::Probes, &str), Vec<dev::DevRound>>, probes: dev::Probes) {
    let m =
        |side: &str, f: fn(&dev::DevRound) -> f64| median(figures[&(probes, side)].iter().map(f));
    let (td, bl) = (m("todo-deploy", |r| r.total), m("baseline", |r| r.total));
    let ratio = td / bl;
    let overhead = m("todo-deploy", dev::DevRound::overhead);
    let verdict = |met: bool, by: String| {
        if met {
            "met".to_owned()
        } else {
            format!("MISSED by {by}")
        }
    };
    let what = match probes {
        dev::Probes::Fixture => "the suite's 1 s probes, the stand-in at 0.05 of real time",
        dev::Probes::Configured => "the configured probes (readiness after 10 s), in real time",
    };
    println!(
        "dev loop, {what} (one backend file written -> its new pod ready): todo-deploy dev {td:.3} s, install script {bl:.3} s, {ratio:.2}x of the script's time; target <= 0.3x: {}; dev's overhead beyond its build ({:.3} s) and the pod's own start ({:.3} s) {:.0} ms, of which the debounce {} ms; target <= 300 ms: {}",
        verdict(ratio <= 0.3, format!("{:.2}x", ratio - 0.3)),
        m("todo-deploy", |r| r.build),
        m("todo-deploy", |r| r.pod),
        overhead * 1e3,
        todo_deploy::watch::DEBOUNCE.as_millis(),
        verdict(overhead <= 0.3, format!("{:.0} ms", (overhead - 0.3) * 1e3)),
    );
    println!(
        "  the script's: build {:.3} s, pod start {:.3} s, the rest {:.3} s",
        m("baseline", |r| r.build),
        m("baseline", |r| r.pod),
        m("baseline", dev::DevRound::overhead),
    );
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::TodoDeploy => "todo-deploy",
        Side::Baseline => "baseline",
    }
}

/// One side's round: up from nothing, up again, upgrade one image, down; each in a fresh
/// namespace (a fresh stand-in) with fresh tags and a build context labelled for it alone.
async fn one_round(
    docker: &Docker,
    nodes: &FakeNodes,
    node: &str,
    cluster: &str,
    id: &str,
    round: usize,
    side: Side,
) -> Result<Round, String> {
    let scenario = format!("bench-{}-{}-{round}", side.short(), &id[..id.len().min(8)]);
    let env = Env::start_on_kind(&scenario, cluster).await;
    let unique = format!("{id}-{round}-{}", side.short());
    // Fixed tags (`bench-<run>-<side>-v1`, `-v2`), so that a cluster whose node images are
    // declared up front (the stand-in binary's `--image`) can know them; the images themselves
    // are new each time (the label), and a node holding an older image under the tag gets the
    // new one sent, since loads compare image IDs.
    let v1 = format!("bench-{}-{}-v1", round + 1, side.short());
    let v2 = format!("bench-{}-{}-v2", round + 1, side.short());
    // The stand-in's node learns how both tags' images behave; the Dockerfiles are the fixture's.
    env.provide(App::Healthy, &["--tag", &v2]).await;
    env.provide(App::Healthy, &["--tag", &v1]).await;
    for service in DEPLOYMENTS {
        let path = format!("examples/todo-app/{service}/Dockerfile");
        let text = env.project.read(&path);
        // A label right after FROM: no layer is shared with any other round, test or service
        // (the real app's services share no base either). A label shared by both services
        // would let todo-deploy's parallel cold builds fork the classic builder's cache chain
        // at the common prefix, and the later rebuild of the unchanged service under a new tag
        // miss the cache from its first own step (sequential builds do not fork it).
        let labelled = text.replacen(
            "FROM scratch\n",
            &format!("FROM scratch\nLABEL {BENCH_LABEL}={unique}-{service}\n"),
            1,
        );
        env.project.write(&path, &labelled);
    }
    // Nothing on the node: every image must really be sent.
    if env.standin().is_some() {
        nodes.forget_images(node).await;
    }
    let mut r = Round::default();

    // `up` from nothing.
    let run = measured(&env, side, Step::Install(&v1), true).await?;
    r.cold = run.timed.total();
    r.cold_delay = run.delay();
    r.cold_rss_kb = run.timed.peak_rss_kb;

    // `up` again, nothing changed.
    let run = measured(&env, side, Step::Install(&v1), false).await?;
    r.warm = run.timed.total();
    r.warm_rss_kb = run.timed.peak_rss_kb;

    // One context file changed; both sides deploy tag v2 (the same objects on both sides).
    env.project.write(
        "examples/todo-app/backend/www/version.txt",
        &format!("{unique} v2\n"),
    );
    let run = measured(&env, side, Step::Upgrade(&v2), true).await?;
    r.upgrade = run.timed.total();
    r.upgrade_build = run.build_time(side)?;
    r.upgrade_rollout = run.rollout_time()?;
    r.upgrade_delay = run.delay();

    // `down`, until the pods are gone.
    let run = measured(&env, side, Step::Down, false).await?;
    r.down = run.timed.total();
    let left = Api::<Pod>::namespaced(env.client.clone(), &env.namespace)
        .list(&ListParams::default())
        .await
        .map_err(|e| format!("list pods: {e}"))?
        .items;
    if !left.is_empty() {
        return Err(format!("{} pods left after `down` returned", left.len()));
    }
    remove_images(docker, &[&v1, &v2]).await;
    Ok(r)
}

#[derive(Debug, Clone, Copy)]
enum Step<'a> {
    /// `up --tag T` / `baseline-install --tag T`.
    Install(&'a str),
    /// `upgrade --tag T` / `baseline-install --tag T`.
    Upgrade(&'a str),
    /// `down` / `baseline-down`.
    Down,
}

struct Measured {
    timed: Timed,
    rollout: Rollout,
}

impl Measured {
    /// Command exit minus the instant the watch saw the last Deployment available.
    fn delay(&self) -> Option<f64> {
        self.rollout
            .available
            .map(|at| signed(self.timed.exited, at))
    }

    /// Server side: from the first Deployment with the new spec to the last one available.
    fn rollout_time(&self) -> Result<f64, String> {
        match (self.rollout.applied, self.rollout.available) {
            (Some(applied), Some(available)) => Ok(signed(available, applied)),
            _ => Err("the watch did not see the rollout".to_owned()),
        }
    }

    /// The build, from the output's lines: todo-deploy's first `build …` line to its last
    /// `built`/`up to date` line; the baseline's first `+ docker build` to its first
    /// `+ docker save` (its commands are traced).
    fn build_time(&self, side: Side) -> Result<f64, String> {
        let lines = &self.timed.lines;
        let (start, end) = match side {
            Side::TodoDeploy => (
                lines.iter().find(|(_, l)| l.starts_with("build ")),
                lines.iter().rev().find(|(_, l)| {
                    l.starts_with("build ")
                        && (l.contains(": built ") || l.ends_with("is up to date"))
                }),
            ),
            Side::Baseline => (
                lines.iter().find(|(_, l)| l.starts_with("+ docker build")),
                lines.iter().find(|(_, l)| l.starts_with("+ docker save")),
            ),
        };
        match (start, end) {
            (Some((start, _)), Some((end, _))) => Ok(signed(*end, *start)),
            _ => Err(format!(
                "no build lines in the output:\n{}",
                self.timed.output()
            )),
        }
    }
}

fn signed(later: Instant, earlier: Instant) -> f64 {
    if later >= earlier {
        (later - earlier).as_secs_f64()
    } else {
        -(earlier - later).as_secs_f64()
    }
}

/// Runs one step of a side, watching the Deployments when `watch`.
async fn measured(env: &Env, side: Side, step: Step<'_>, watch: bool) -> Result<Measured, String> {
    let tag = match step {
        Step::Install(tag) | Step::Upgrade(tag) => Some(tag.to_owned()),
        Step::Down => None,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (ready, watching) = tokio::sync::oneshot::channel::<()>();
    let watcher = match (&tag, watch) {
        (Some(tag), true) => {
            let api: Api<Deployment> = Api::namespaced(env.client.clone(), &env.namespace);
            let handle = tokio::spawn(watch_rollout(api, tag.clone(), ready, stopped));
            // Established before the command starts.
            let _ = tokio::time::timeout(Duration::from_secs(10), watching).await;
            Some(handle)
        }
        _ => None,
    };
    let command = match side {
        Side::TodoDeploy => match step {
            Step::Install(tag) => env.command(&["up", "--tag", tag]),
            Step::Upgrade(tag) => env.command(&["upgrade", "--tag", tag]),
            Step::Down => env.command(&["down"]),
        },
        Side::Baseline => baseline(env, step),
    };
    let mut command = command;
    if side == Side::TodoDeploy && std::env::var_os("BENCH_VERBOSE").is_some() {
        command.arg("-v");
    }
    let timed = run_timed(command, side == Side::TodoDeploy).await;
    if std::env::var_os("BENCH_SHOW_OUTPUT").is_some() {
        eprintln!(
            "--- {side:?} {step:?}: exit {} after {:.3}s\n{}",
            timed.code,
            timed.total(),
            timed.output()
        );
    }
    if timed.code != 0 {
        return Err(format!(
            "{side:?} {step:?} exited {}:\n{}",
            timed.code,
            timed.output()
        ));
    }
    let rollout = match watcher {
        Some(handle) => {
            // The watch may trail the command by a moment.
            let waited = tokio::time::timeout(Duration::from_secs(5), async {
                loop {
                    if handle.is_finished() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
            .await;
            let _ = stop.send(());
            let rollout = handle.await.map_err(|e| format!("the watch: {e}"))?;
            if waited.is_err() && rollout.available.is_none() {
                return Err("the watch never saw both Deployments available".to_owned());
            }
            rollout
        }
        None => Rollout::default(),
    };
    Ok(Measured { timed, rollout })
}

/// The baseline script for a step, run like a user would, from the project directory.
fn baseline(env: &Env, step: Step<'_>) -> tokio::process::Command {
    let scripts = support::repo_root().join("scripts");
    let (script, tag) = match step {
        Step::Install(tag) | Step::Upgrade(tag) => ("baseline-install", Some(tag)),
        Step::Down => ("baseline-down", None),
    };
    // Isolated like todo-deploy's side: the scenario's kubeconfig, a home of its own (so
    // `docker` and `kubectl` read no user configuration either).
    let mut command = tokio::process::Command::from(support::todo_deploy_script(
        &scripts.join(script),
        env.project.path(),
        env.kubeconfig(),
    ));
    if let Some(tag) = tag {
        command.args(["--tag", tag]);
    }
    command
        .args(["-n", &env.namespace, "-f", "e2e-values.yaml"])
        .current_dir(env.project.path())
        .env("BACKEND_IMAGE", "todo-e2e-backend")
        .env("FRONTEND_IMAGE", "todo-e2e-frontend")
        .kill_on_drop(true);
    command
}

/// A finished command: when it started and exited, every output line with the instant it
/// arrived, and (when polled) the peak RSS the kernel reported.
struct Timed {
    code: i32,
    started: Instant,
    exited: Instant,
    lines: Vec<(Instant, String)>,
    peak_rss_kb: Option<u64>,
}

impl Timed {
    fn total(&self) -> f64 {
        (self.exited - self.started).as_secs_f64()
    }

    fn output(&self) -> String {
        let mut text = String::new();
        for (at, line) in &self.lines {
            text.push_str(&format!(
                "{:>8.3}s {line}\n",
                (*at - self.started).as_secs_f64()
            ));
        }
        text
    }
}

/// Runs `command`, timestamping each line of its stdout and stderr; with `memory`, polls
/// `VmHWM` (the peak resident set) in `/proc/<pid>/status` every 2 ms until it exits.
async fn run_timed(mut command: tokio::process::Command, memory: bool) -> Timed {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command.spawn().expect("the command starts");
    let pid = child.id().expect("a pid");
    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let poller = memory.then(|| {
        let (done, peak) = (done.clone(), peak.clone());
        std::thread::spawn(move || {
            let path = format!("/proc/{pid}/status");
            while !done.load(Ordering::Relaxed) {
                if let Some(kb) = std::fs::read_to_string(&path).ok().and_then(|s| vm_hwm(&s)) {
                    peak.fetch_max(kb, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    });
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let readers = [
        tokio::spawn(lines_of(stdout, sender.clone())),
        tokio::spawn(lines_of(stderr, sender)),
    ];
    let status = child.wait().await.expect("the command runs");
    let exited = Instant::now();
    done.store(true, Ordering::Relaxed);
    if let Some(poller) = poller {
        let _ = poller.join();
    }
    for reader in readers {
        let _ = reader.await;
    }
    let mut lines = Vec::new();
    while let Ok(line) = receiver.try_recv() {
        lines.push(line);
    }
    lines.sort_by_key(|(at, _)| *at);
    let peak = peak.load(Ordering::Relaxed);
    Timed {
        code: status.code().unwrap_or(-1),
        started,
        exited,
        lines,
        peak_rss_kb: (memory && peak > 0).then_some(peak),
    }
}

async fn lines_of(
    reader: impl tokio::io::AsyncRead + Unpin,
    sender: tokio::sync::mpsc::UnboundedSender<(Instant, String)>,
) {
    let mut lines = BufReader::new(reader).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let _ = sender.send((Instant::now(), line));
    }
}

fn vm_hwm(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// What the watch saw of a rollout to `tag`.
#[derive(Debug, Default, Clone, Copy)]
struct Rollout {
    /// The first Deployment event with the new image in its spec: the apply landed.
    applied: Option<Instant>,
    /// Every Deployment with the new image, its generation observed, and
    /// `updated == replicas == available`: what `kubectl rollout status` waits for.
    available: Option<Instant>,
}

fn complete(d: &Deployment) -> bool {
    let status = d.status.clone().unwrap_or_default();
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    status.observed_generation >= d.metadata.generation
        && status.updated_replicas == Some(desired)
        && status.available_replicas == Some(desired)
        && status.replicas == Some(desired)
}

fn has_tag(d: &Deployment, tag: &str) -> bool {
    let suffix = format!(":{tag}");
    d.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .is_some_and(|p| {
            p.containers
                .iter()
                .all(|c| c.image.as_deref().is_some_and(|i| i.ends_with(&suffix)))
        })
}

async fn watch_rollout(
    api: Api<Deployment>,
    tag: String,
    ready: tokio::sync::oneshot::Sender<()>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> Rollout {
    let mut rollout = Rollout::default();
    let mut done: HashMap<String, bool> = HashMap::new();
    let mut ready = Some(ready);
    let mut stream = watcher(api, watcher::Config::default()).boxed();
    loop {
        let event = tokio::select! {
            event = stream.next() => event,
            _ = &mut stop => return rollout,
        };
        let now = Instant::now();
        let deployment = match event {
            Some(Ok(watcher::Event::InitDone)) => {
                if let Some(ready) = ready.take() {
                    let _ = ready.send(());
                }
                continue;
            }
            Some(Ok(watcher::Event::Apply(d) | watcher::Event::InitApply(d))) => d,
            Some(Ok(_)) => continue,
            Some(Err(_)) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            None => return rollout,
        };
        let name = deployment.metadata.name.clone().unwrap_or_default();
        let tagged = has_tag(&deployment, &tag);
        if tagged && rollout.applied.is_none() {
            rollout.applied = Some(now);
        }
        done.insert(name, tagged && complete(&deployment));
        if DEPLOYMENTS
            .iter()
            .all(|d| done.get(*d).copied().unwrap_or(false))
        {
            rollout.available = Some(now);
            return rollout;
        }
    }
}

/// Load throughput on a ~100 MB image: the load stage (as `up` runs it) against the pipe.
#[derive(Debug, Default)]
struct Throughput {
    bytes: u64,
    stage: Vec<f64>,
    pipe: Vec<f64>,
    stage_discard: Vec<f64>,
    pipe_discard: Vec<f64>,
    /// A load that finds the image on the node (the presence check alone).
    present: Vec<f64>,
}

async fn throughput(
    docker: &Docker,
    nodes: &FakeNodes,
    node: &str,
    cluster: &str,
    runs: usize,
) -> Throughput {
    let payload = support::nodes::random_bytes(100 * 1024 * 1024);
    let image = nodes
        .image("backend", &nodes.repository("big"), "v1", &payload)
        .await;
    drop(payload);
    let (events, mut receiver) = Events::channel();
    let target = ClusterTarget::with_loader(LoaderKind::Kind);
    let loader = load::resolve(
        docker,
        &target,
        &format!("kind-{cluster}"),
        &|_| None,
        &events,
    )
    .await
    .expect("the fake node resolves");
    let pipe = format!(
        "docker save {} | docker exec -i {node} {IMPORT}",
        image.image
    );
    let sandbox = support::Project::new();
    let images = std::slice::from_ref(&image);
    let name = format!("docker.io/{}", image.image);
    let mut t = Throughput::default();
    for discard in [false, true] {
        let recorded = discard.then_some((name.as_str(), &image));
        nodes.discard_imports(node, recorded).await;
        for _ in 0..runs {
            quiet().await;
            nodes.forget_images(node).await;
            let started = Instant::now();
            let loaded = load::load_all(docker, &loader, images, &events)
                .await
                .expect("the image loads");
            let stage = started.elapsed().as_secs_f64();
            t.bytes = loaded[0].outcome.bytes();
            assert!(t.bytes > 0, "not sent: {loaded:?}");
            // Again, as a later run sees the image (reused, not built): the node holds it, so
            // this is the presence check alone.
            let reused = [todo_deploy::build::BuiltImage {
                outcome: todo_deploy::build::Outcome::Reused,
                ..image.clone()
            }];
            let started = Instant::now();
            let again = load::load_all(docker, &loader, &reused, &events)
                .await
                .expect("the check runs");
            assert_eq!(again[0].outcome, NodeOutcome::AlreadyPresent);
            t.present.push(started.elapsed().as_secs_f64());
            while receiver.try_recv().is_ok() {}

            nodes.forget_images(node).await;
            let cli = timed_pipe(&sandbox, &pipe).await;
            if discard {
                t.stage_discard.push(stage);
                t.pipe_discard.push(cli);
            } else {
                t.stage.push(stage);
                t.pipe.push(cli);
            }
        }
    }
    nodes.discard_imports(node, None).await;
    nodes.forget_images(node).await;
    t
}

/// Runs the shell pipeline `pipe`; its duration in seconds. Its `docker` CLI gets a home of its
/// own in `sandbox`: no user's Docker configuration.
async fn timed_pipe(sandbox: &support::Project, pipe: &str) -> f64 {
    let mut sh = support::isolated("sh", sandbox.path(), &sandbox.kubeconfig());
    sh.args(["-c", pipe]).stdout(Stdio::null());
    let started = Instant::now();
    let status = tokio::process::Command::from(sh)
        .status()
        .await
        .expect("sh runs");
    assert!(status.success(), "{pipe}");
    started.elapsed().as_secs_f64()
}

fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.into_iter().collect();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn list(values: impl IntoIterator<Item = f64>, scale: f64, digits: usize) -> String {
    let v: Vec<String> = values
        .into_iter()
        .map(|x| format!("{:.digits$}", x * scale))
        .collect();
    v.join(" ")
}

fn summary(td: &[Round], bl: &[Round], t: &Throughput, runs: usize, real: bool) {
    let pick =
        |rounds: &[Round], f: fn(&Round) -> f64| -> Vec<f64> { rounds.iter().map(f).collect() };
    println!();
    println!("every run (s):");
    type Figure = (&'static str, fn(&Round) -> f64);
    let figures: [Figure; 7] = [
        ("up from nothing", |r| r.cold),
        ("up, nothing changed", |r| r.warm),
        ("upgrade (one image changed)", |r| r.upgrade),
        ("  its build", |r| r.upgrade_build),
        ("  its server-side rollout", |r| r.upgrade_rollout),
        ("  its overhead", Round::overhead),
        ("down", |r| r.down),
    ];
    for (name, f) in figures {
        println!(
            "  {name:<29} todo-deploy [{}]  baseline [{}]",
            list(pick(td, f), 1.0, 3),
            list(pick(bl, f), 1.0, 3)
        );
    }
    let delays = |rounds: &[Round]| -> Vec<f64> {
        rounds
            .iter()
            .filter_map(|r| r.cold_delay)
            .chain(rounds.iter().filter_map(|r| r.upgrade_delay))
            .collect()
    };
    println!(
        "  {:<29} todo-deploy [{}]  baseline [{}]  (ms; up from nothing, then upgrade)",
        "readiness delay",
        list(delays(td), 1e3, 0),
        list(delays(bl), 1e3, 0)
    );
    let rss: Vec<f64> = td
        .iter()
        .filter_map(|r| r.cold_rss_kb)
        .map(|k| k as f64 / 1024.0)
        .collect();
    let warm_rss: Vec<f64> = td
        .iter()
        .filter_map(|r| r.warm_rss_kb)
        .map(|k| k as f64 / 1024.0)
        .collect();
    println!(
        "  {:<29} up from nothing [{}]  up again [{}]  (MB, VmHWM)",
        "todo-deploy peak RSS",
        list(rss.iter().copied(), 1.0, 1),
        list(warm_rss.iter().copied(), 1.0, 1)
    );
    let mb = t.bytes as f64 / 1e6;
    let rates = |v: &[f64]| list(v.iter().map(|s| mb / s), 1.0, 0);
    println!(
        "  {:<29} load stage [{}]  pipe [{}]  (MB/s, {mb:.1} MB, the node checks the archive)",
        "load throughput",
        rates(&t.stage),
        rates(&t.pipe)
    );
    println!(
        "  {:<29} load stage [{}]  pipe [{}]  (MB/s, the node discards it: transport alone)",
        "",
        rates(&t.stage_discard),
        rates(&t.pipe_discard)
    );
    println!(
        "  {:<29} [{}]  (ms)",
        "a load finding it present",
        list(t.present.iter().copied(), 1e3, 0)
    );

    let m = |rounds: &[Round], f: fn(&Round) -> f64| median(pick(rounds, f));
    let on = if real {
        "on this cluster"
    } else {
        "on the API stand-in"
    };
    println!();
    println!("summary (medians of {runs} runs; ratio = baseline / todo-deploy, >1 is faster):");
    let (a, b) = (m(td, |r| r.cold), m(bl, |r| r.cold));
    println!(
        "up from nothing:     todo-deploy {a:.2} s, baseline {b:.2} s, {:.2}x; no target set",
        b / a
    );
    let (a, b) = (m(td, |r| r.warm), m(bl, |r| r.warm));
    let ratio = b / a;
    // Issue #14's goal (issue #9 asked 10x).
    let verdict_ratio = if ratio >= 20.0 {
        "met".to_owned()
    } else {
        format!(
            "MISSED by {:.1}x (needs <= {:.3} s)",
            20.0 / ratio,
            b / 20.0
        )
    };
    let verdict_abs = if a < 1.0 {
        "met".to_owned()
    } else {
        format!("MISSED by {:.2} s", a - 1.0)
    };
    println!(
        "up, nothing changed: todo-deploy {a:.3} s, baseline {b:.2} s, {ratio:.1}x; target >= 20x: {verdict_ratio}; target < 1 s {on}: {verdict_abs}"
    );
    let (a, b) = (m(td, |r| r.upgrade), m(bl, |r| r.upgrade));
    let overhead = m(td, Round::overhead);
    let verdict = if a <= b {
        "met".to_owned()
    } else {
        format!("MISSED by {:.2} s", a - b)
    };
    let verdict_overhead = if overhead < 0.5 {
        "met".to_owned()
    } else {
        format!("MISSED by {:.2} s", overhead - 0.5)
    };
    println!(
        "upgrade --tag (one image changed): todo-deploy {a:.2} s, baseline {b:.2} s, {:.2}x; target <= baseline: {verdict}; overhead beyond build ({:.2} s) and server-side rollout ({:.2} s) {overhead:.3} s (baseline {:.3} s), target < 0.5 s: {verdict_overhead}",
        b / a,
        m(td, |r| r.upgrade_build),
        m(td, |r| r.upgrade_rollout),
        m(bl, Round::overhead),
    );
    let (a, b) = (m(td, |r| r.down), m(bl, |r| r.down));
    println!(
        "down (until the pods are gone): todo-deploy {a:.2} s, baseline {b:.2} s, {:.2}x; no target set",
        b / a
    );
    let (a, b) = (median(delays(td)), median(delays(bl)));
    let verdict = if a <= 0.1 {
        "met".to_owned()
    } else {
        format!("MISSED by {:.0} ms", (a - 0.1) * 1e3)
    };
    println!(
        "readiness delay (last Deployment available -> exit): todo-deploy {:.0} ms, baseline {:.0} ms, {:.1}x; target <= 100 ms: {verdict}",
        a * 1e3,
        b * 1e3,
        b / a
    );
    let (a, b) = (mb / median(t.stage.clone()), mb / median(t.pipe.clone()));
    let ratio = a / b;
    let verdict = if ratio >= 0.9 {
        "met".to_owned()
    } else {
        format!("MISSED by {:.2}x", 0.9 - ratio)
    };
    println!(
        "load throughput ({mb:.0} MB image): todo-deploy {a:.0} MB/s, docker save | docker exec -i NODE ctr import {b:.0} MB/s, {ratio:.2}x; target >= 0.9x: {verdict} (the stage checks the node before and after sending; a check alone takes {:.0} ms)",
        median(t.present.clone()) * 1e3
    );
    let peak = median(rss.iter().copied());
    let max = rss.iter().copied().fold(0.0, f64::max);
    let verdict = if max < 50.0 {
        "met".to_owned()
    } else {
        format!("MISSED by {:.1} MB", max - 50.0)
    };
    println!(
        "peak RSS of todo-deploy up (from nothing): median {peak:.1} MB, max {max:.1} MB; target < 50 MB: {verdict}"
    );
}

/// Waits, at most 60 s, until other work leaves the CPUs mostly idle (2 cores: builds running
/// beside the benchmark double its times); whether it got there.
async fn quiet() -> bool {
    for _ in 0..60 {
        let busy = tokio::task::spawn_blocking(|| cpu_busy(Duration::from_secs(1)))
            .await
            .unwrap_or(0.0);
        if busy < 0.25 {
            return true;
        }
    }
    false
}

/// The share of CPU time spent busy over `span`, from `/proc/stat` (0 where it cannot be read).
fn cpu_busy(span: Duration) -> f64 {
    let sample = || -> Option<(u64, u64)> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let fields: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|f| f.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal
        let total: u64 = fields.iter().take(8).sum();
        let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
        Some((total, idle))
    };
    let Some((total0, idle0)) = sample() else {
        return 0.0;
    };
    std::thread::sleep(span);
    let Some((total1, idle1)) = sample() else {
        return 0.0;
    };
    let total = total1.saturating_sub(total0).max(1) as f64;
    1.0 - idle1.saturating_sub(idle0) as f64 / total
}

/// Whether `program args` runs and succeeds, in a home of its own (no user's configuration).
fn tool_runs(program: &str, args: &[&str]) -> bool {
    let sandbox = support::Project::new();
    support::isolated(program, sandbox.path(), &sandbox.kubeconfig())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

async fn engine_version(docker: &Docker) -> String {
    match docker.version().await {
        Ok(v) => format!(
            "{} (API {})",
            v.version.unwrap_or_default(),
            v.api_version.unwrap_or_default()
        ),
        Err(e) => format!("(version unknown: {e})"),
    }
}

/// Removes a round's images (both services, both tags) from the engine.
async fn remove_images(docker: &Docker, tags: &[&str]) {
    for tag in tags {
        for repository in ["todo-e2e-backend", "todo-e2e-frontend"] {
            let force = RemoveImageOptionsBuilder::new().force(true).build();
            let _ = docker
                .remove_image(&format!("{repository}:{tag}"), Some(force), None)
                .await;
        }
    }
}

/// Removes every image this benchmark labelled, even after a failure.
struct ImageCleanup {
    id: String,
}

impl Drop for ImageCleanup {
    fn drop(&mut self) {
        let id = self.id.clone();
        let cleaning = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                let Ok(docker) = todo_deploy::docker::connect(&support::docker::engine_env).await
                else {
                    return;
                };
                let filters = HashMap::from([("label", vec![BENCH_LABEL])]);
                let options = ListImagesOptionsBuilder::new()
                    .all(true)
                    .filters(&filters)
                    .build();
                for image in docker.list_images(Some(options)).await.unwrap_or_default() {
                    let ours = image
                        .labels
                        .get(BENCH_LABEL)
                        .is_some_and(|v| v.starts_with(&format!("{id}-")));
                    if ours {
                        let force = RemoveImageOptionsBuilder::new().force(true).build();
                        let _ = docker.remove_image(&image.id, Some(force), None).await;
                    }
                }
            });
        });
        let _ = cleaning.join();
    }
}

/// `--case pipeline`: the pipeline's figures alone (no dev loop, large image or registry).
fn pipeline_only() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.windows(2)
        .any(|w| w[0] == "--case" && w[1] == "pipeline")
}
