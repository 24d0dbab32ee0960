//! One container's lifecycle in the kubelet's pod sync: (re)start attempts
//! behind the restart back-off (`CrashLoopBackOff`), the image checks
//! (`ErrImageNeverPull`, `ErrImagePull`/`ImagePullBackOff`), the
//! `runAsNonRoot` check (`CreateContainerConfigError`), start per the image's
//! behaviour, exits, and the kill after a failed liveness probe, which
//! restarts the container in the same sync unless it must back off (10 (d)).

use std::time::Instant;

use super::probe::{liveness, readiness};
use super::security::verify_run_as_non_root;
use super::status::terminated_json;
use super::{CState, Ctr, PodCtx, Probe, Stopping, container_ref, hex64, secs_of};
use crate::controllers::events::Source;
use crate::controllers::{Env, meta};
use crate::node::{Behavior, Image, OnSigterm, normalize_image};
use crate::util::now_rfc3339;

/// Records a kubelet event about the container.
fn record(env: &Env, ctx: &PodCtx, c: &Ctr, etype: &str, reason: &str, msg: &str) {
    env.recorder.record(
        &env.api,
        ctx.pod,
        etype,
        reason,
        msg,
        Source::Kubelet(&env.node.name),
        Some(&container_ref(c)),
    );
}

/// Everything due for the container at `now`, in the kubelet's order.
pub(super) fn step(env: &Env, ctx: &PodCtx, c: &mut Ctr, now: Instant) {
    if let Some(s) = c.stopping
        && now >= s.until
    {
        c.stopping = None;
        after_kill(env, ctx, c, s.until, 137, s.seen_exit);
    }
    if let Some(at) = c.pull_backoff_at
        && now >= at
    {
        c.pull_backoff_at = None;
        let msg = format!("Back-off pulling image \"{}\"", c.image);
        c.state = CState::Waiting {
            reason: "ImagePullBackOff".into(),
            message: Some(msg.clone()),
        };
        record(env, ctx, c, "Normal", "BackOff", &msg);
        record(env, ctx, c, "Warning", "Failed", "Error: ImagePullBackOff");
    }
    if let Some(at) = c.start_at
        && now >= at
    {
        c.start_at = None;
        let seen_exit = c.exited_at;
        try_start(env, ctx, c, at, seen_exit);
    }
    if let Some(at) = c.exit_at
        && now >= at
    {
        let code = match c.behavior.as_ref().map(|b| b.resolve().1) {
            Some(Behavior::Crash { exit_code, .. }) => *exit_code as i64,
            _ => 0,
        };
        exit_by_itself(env, ctx, c, at, code);
    }
    if !matches!(c.state, CState::Running { .. }) || c.stopping.is_some() {
        return;
    }
    readiness(env, ctx, c, now);
    if let Some(tick) = liveness(env, ctx, c, now) {
        kill_for_liveness(env, ctx, c, tick);
    }
}

/// The instance stops: `Terminated` with the exit code (`Completed` for 0).
pub(super) fn terminate(c: &mut Ctr, exit_code: i64, at: Instant) {
    let started = match &c.state {
        CState::Running { started_at } => started_at.clone(),
        _ => now_rfc3339(),
    };
    c.state = CState::Terminated {
        exit_code,
        reason: if exit_code == 0 {
            "Completed".into()
        } else {
            "Error".into()
        },
        started_at: started,
        finished_at: now_rfc3339(),
        id: c.id.clone().unwrap_or_default(),
    };
    c.ready = false;
    c.exit_at = None;
    c.readiness = Probe::default();
    c.liveness.fail = 0;
    c.exited_at = Some(at);
}

/// The process exited: shown as `Terminated` until the kubelet's next sync
/// (a second later) decides whether to restart it.
fn exit_by_itself(env: &Env, ctx: &PodCtx, c: &mut Ctr, at: Instant, code: i64) {
    terminate(c, code, at);
    let restart =
        ctx.restart_policy == "Always" || (ctx.restart_policy == "OnFailure" && code != 0);
    c.start_at = restart.then(|| at + env.clock.secs(1.0));
}

/// A liveness probe failed `failureThreshold` times at `tick`: the kubelet
/// kills the container; a process that exits on SIGTERM stops at once, one
/// that ignores it when the grace period ends.
fn kill_for_liveness(env: &Env, ctx: &PodCtx, c: &mut Ctr, tick: Instant) {
    let msg = format!(
        "Container {} failed liveness probe, will be restarted",
        c.name
    );
    record(env, ctx, c, "Normal", "Killing", &msg);
    let seen_exit = c.exited_at;
    match c.on_sigterm {
        OnSigterm::Exit(code) => after_kill(env, ctx, c, tick, code as i64, seen_exit),
        OnSigterm::Ignore => {
            c.stopping = Some(Stopping {
                until: tick + env.clock.secs(ctx.grace_secs),
                seen_exit,
            });
        }
    }
}

/// The killed instance has stopped at `at`; the same sync starts the next one,
/// unless the pod status it began with (`seen_exit`) says to back off.
fn after_kill(
    env: &Env,
    ctx: &PodCtx,
    c: &mut Ctr,
    at: Instant,
    code: i64,
    seen_exit: Option<Instant>,
) {
    terminate(c, code, at);
    if ctx.restart_policy != "Never" {
        try_start(env, ctx, c, at, seen_exit);
    }
}

/// The restart back-off holds the container: `CrashLoopBackOff` until the
/// latest exited instance has waited `secs`.
fn crash_loop(env: &Env, ctx: &PodCtx, c: &mut Ctr, secs: u64) {
    if let Some(t) = terminated_json(&c.state) {
        c.last_state = Some(t);
    }
    c.state = CState::Waiting {
        reason: "CrashLoopBackOff".into(),
        message: Some(format!(
            "back-off {secs}s restarting failed container={} pod={}",
            c.name, ctx.key
        )),
    };
    record(
        env,
        ctx,
        c,
        "Warning",
        "BackOff",
        "Back-off restarting failed container",
    );
    c.start_at = c.exited_at.map(|e| e + env.clock.secs(secs as f64));
}

/// One start attempt at `at`: back-off, image, security context, then start.
fn try_start(env: &Env, ctx: &PodCtx, c: &mut Ctr, at: Instant, seen_exit: Option<Instant>) {
    if let Err(secs) = c.backoff.check(seen_exit, at, &env.clock) {
        crash_loop(env, ctx, c, secs);
        return;
    }
    let pull_policy = c.spec["imagePullPolicy"]
        .as_str()
        .unwrap_or("IfNotPresent")
        .to_string();
    let pulled = match env.images.get(&c.image) {
        Some(img) => Ok(Some(img)),
        None if pull_policy == "Never" => Ok(None),
        None => pull(env, ctx, c),
    };
    let img = match pulled {
        Ok(Some(img)) => img,
        Ok(None) if pull_policy == "Never" => return never_pull(env, ctx, c, at),
        Ok(None) => return pull_failed(env, ctx, c, at, None),
        Err(err) => return pull_failed(env, ctx, c, at, Some(err)),
    };
    if pull_policy == "Always" {
        let pulling = format!("Pulling image \"{}\"", c.image);
        record(env, ctx, c, "Normal", "Pulling", &pulling);
        let pulled = format!("Successfully pulled image \"{}\" in 0s", c.image);
        record(env, ctx, c, "Normal", "Pulled", &pulled);
    } else {
        let msg = format!("Container image \"{}\" already present on machine", c.image);
        record(env, ctx, c, "Normal", "Pulled", &msg);
    }
    c.pull_backoff_at = None;
    match verify_run_as_non_root(ctx.pod, &c.spec, &img.config.user, &ctx.key) {
        Err(msg) => config_error(env, ctx, c, at, msg),
        Ok(()) => start(env, ctx, c, &img, at),
    }
}

fn never_pull(env: &Env, ctx: &PodCtx, c: &mut Ctr, at: Instant) {
    let msg = format!(
        "Container image \"{}\" is not present with pull policy of Never",
        c.image
    );
    c.state = CState::Waiting {
        reason: "ErrImageNeverPull".into(),
        message: Some(msg.clone()),
    };
    record(env, ctx, c, "Warning", "ErrImageNeverPull", &msg);
    record(env, ctx, c, "Warning", "Failed", "Error: ErrImageNeverPull");
    c.start_at = Some(at + env.clock.secs(12.0));
}

/// Pulls an image the node lacks from a registry a test named ([`crate::registry`]), with the
/// pod's pull Secrets: `Ok(None)` when no such registry is named, `Err` with containerd's
/// message when the registry refuses.
fn pull(env: &Env, ctx: &PodCtx, c: &Ctr) -> Result<Option<Image>, String> {
    let Some((host, path, reference)) = crate::registry::split(&c.image) else {
        return Ok(None);
    };
    let Some(source) = env.images.source(host) else {
        return Ok(None);
    };
    let ns = meta(ctx.pod, "namespace");
    let auth = ctx.pod["spec"]["imagePullSecrets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["name"].as_str())
        .filter_map(|name| env.api.get(env.res("Secret"), ns, name).ok())
        .find_map(|secret| crate::registry::auth_for(&secret, host));
    let full = normalize_image(&c.image);
    let failed = |why: String| {
        format!(
            "rpc error: code = Unknown desc = failed to pull and unpack image \"{full}\": failed to resolve reference \"{full}\": {why}"
        )
    };
    let status =
        crate::registry::head_manifest(host, path, reference, auth.as_deref()).map_err(|e| {
            failed(format!(
                "failed to do request: Head \"http://{host}/v2/{path}/manifests/{reference}\": {e}"
            ))
        })?;
    if !status.starts_with("200") {
        let what = if reference.starts_with("sha256:") {
            reference.to_string()
        } else {
            format!("manifests {reference}")
        };
        return Err(failed(format!(
            "unexpected status code [manifests {what}]: {status}"
        )));
    }
    let Some((_, behavior, config)) = source.repositories.iter().find(|(p, _, _)| p == path) else {
        return Err(failed(format!(
            "the stand-in was told no behaviour for `{path}`"
        )));
    };
    env.images
        .add_image_with(&c.image, behavior.clone(), config.clone());
    Ok(env.images.get(&c.image))
}

fn pull_failed(env: &Env, ctx: &PodCtx, c: &mut Ctr, at: Instant, err: Option<String>) {
    let full = normalize_image(&c.image);
    let (repo, tag) = full.rsplit_once(':').unwrap_or((full.as_str(), "latest"));
    let path = repo.strip_prefix("docker.io/").unwrap_or(repo);
    let err = err.unwrap_or_else(|| format!(
        "rpc error: code = Unknown desc = failed to pull and unpack image \"{full}\": failed to resolve reference \"{full}\": failed to do request: Head \"https://registry-1.docker.io/v2/{path}/manifests/{tag}\": dial tcp: lookup registry-1.docker.io: no such host"
    ));
    let pulling = format!("Pulling image \"{}\"", c.image);
    record(env, ctx, c, "Normal", "Pulling", &pulling);
    let failed = format!("Failed to pull image \"{}\": {err}", c.image);
    record(env, ctx, c, "Warning", "Failed", &failed);
    record(env, ctx, c, "Warning", "Failed", "Error: ErrImagePull");
    c.state = CState::Waiting {
        reason: "ErrImagePull".into(),
        message: Some(err),
    };
    c.pull_failures += 1;
    let backoff = (10u64 << (c.pull_failures - 1).min(5)).min(300);
    c.pull_backoff_at = Some(at + env.clock.secs(1.0));
    c.start_at = Some(at + env.clock.secs(backoff as f64));
}

/// The container's config cannot be generated (`runAsNonRoot`): retried on the
/// next sync a second later (the sandbox's event), then on the pod worker's
/// error back-off, 10 s plus up to 50 % jitter (its mean, 12.5 s, here): 10 (b)
/// shows 2 attempts in the first 12 s and 7 within 64 s.
fn config_error(env: &Env, ctx: &PodCtx, c: &mut Ctr, at: Instant, msg: String) {
    record(env, ctx, c, "Warning", "Failed", &format!("Error: {msg}"));
    c.state = CState::Waiting {
        reason: "CreateContainerConfigError".into(),
        message: Some(msg),
    };
    c.config_errors += 1;
    let retry = if c.config_errors == 1 { 1.0 } else { 12.5 };
    c.start_at = Some(at + env.clock.secs(retry));
}

/// A new instance starts at `at` (a restart keeps the previous one as `lastState`).
fn start(env: &Env, ctx: &PodCtx, c: &mut Ctr, img: &Image, at: Instant) {
    c.config_errors = 0;
    if c.ever_started {
        c.restarts += 1;
        c.last_state = terminated_json(&c.state).or(c.last_state.take());
    }
    c.id = Some(format!("containerd://{}", hex64()));
    c.image_ref = Some((img.reference.clone(), img.id.clone()));
    c.state = CState::Running {
        started_at: now_rfc3339(),
    };
    c.ever_started = true;
    c.started_at = Some(at);
    c.ready = false;
    c.behavior = Some(img.behavior.clone());
    c.on_sigterm = img.config.on_sigterm;
    let (delay, b) = img.behavior.resolve();
    c.warm_until = Some(at + env.clock.secs(delay));
    record(
        env,
        ctx,
        c,
        "Normal",
        "Created",
        &format!("Created container {}", c.name),
    );
    record(
        env,
        ctx,
        c,
        "Normal",
        "Started",
        &format!("Started container {}", c.name),
    );
    let lines = match b {
        Behavior::Serve { log_lines, .. } | Behavior::Crash { log_lines, .. } => log_lines.clone(),
        Behavior::SlowStart { .. } => Vec::new(),
    };
    env.logs.start(
        meta(ctx.pod, "namespace"),
        meta(ctx.pod, "name"),
        &c.name,
        &lines,
    );
    let rp = &c.spec["readinessProbe"];
    c.readiness = Probe {
        next: rp
            .is_object()
            .then(|| at + env.clock.secs(secs_of(rp, "initialDelaySeconds", 0))),
        ..Probe::default()
    };
    c.liveness.fail = 0;
    if let Behavior::Crash {
        exit_code,
        run_secs,
        ..
    } = b
    {
        if *run_secs <= 0.0 {
            exit_by_itself(env, ctx, c, at, *exit_code as i64);
        } else {
            c.exit_at = Some(at + env.clock.secs(*run_secs));
        }
    }
}
