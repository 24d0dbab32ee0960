//! The simulated kubelet on the one node: per-pod runtime state, the pod sync
//! (sandbox start, every container's step, the status write, the next
//! wake-up) and graceful termination when a pod is deleted. Containers'
//! lifecycles are in `container.rs`, probes in `probe.rs`, the restart
//! back-off in `backoff.rs`, the `runAsNonRoot` check in `security.rs`, the
//! status shapes in `status.rs`.

use std::collections::HashMap;
use std::time::Instant;

use serde_json::Value;

use super::events::Source;
use super::{Env, Work, meta};
use crate::api::DeleteOpts;
use crate::node::{Behavior, OnSigterm};
use crate::util::{TimeScale, now_rfc3339, random_u64};

mod backoff;
mod container;
mod probe;
mod security;
mod status;

use backoff::RestartBackoff;
use status::write_status;

#[derive(Debug, Clone, PartialEq)]
enum CState {
    Waiting {
        reason: String,
        message: Option<String>,
    },
    Running {
        started_at: String,
    },
    Terminated {
        exit_code: i64,
        reason: String,
        started_at: String,
        finished_at: String,
        id: String,
    },
}

#[derive(Debug, Clone, Default)]
struct Probe {
    next: Option<Instant>,
    succ: i64,
    fail: i64,
}

/// A container the kubelet is stopping after a failed liveness probe, whose
/// process ignores SIGTERM: killed when the grace period ends.
#[derive(Debug, Clone, Copy)]
struct Stopping {
    until: Instant,
    /// When the latest exited instance had finished as the kill began (the
    /// kubelet decides the restart on the pod status it had then).
    seen_exit: Option<Instant>,
}

#[derive(Debug, Clone)]
struct Ctr {
    name: String,
    image: String,
    spec: Value,
    state: CState,
    last_state: Option<Value>,
    restarts: i64,
    ready: bool,
    id: Option<String>,
    image_ref: Option<(String, String)>,
    /// When the kubelet next tries to (re)start the container.
    start_at: Option<Instant>,
    /// When a running container exits by itself.
    exit_at: Option<Instant>,
    /// When the latest exited instance finished (the back-off counts from it).
    exited_at: Option<Instant>,
    backoff: RestartBackoff,
    stopping: Option<Stopping>,
    pull_failures: u32,
    /// ErrImagePull shown; ImagePullBackOff due at this instant.
    pull_backoff_at: Option<Instant>,
    /// CreateContainerConfigError attempts in a row.
    config_errors: u32,
    /// The (scheduled) instant the running instance started.
    started_at: Option<Instant>,
    /// Probes are refused until then (SlowStart).
    warm_until: Option<Instant>,
    behavior: Option<Behavior>,
    on_sigterm: OnSigterm,
    ever_started: bool,
    readiness: Probe,
    liveness: Probe,
}

#[derive(Debug, Clone)]
struct PodRt {
    name: String,
    ip: String,
    start_time: String,
    containers: Vec<Ctr>,
    kill_deadline: Option<Instant>,
}

/// What every container step needs to know about its pod.
struct PodCtx<'a> {
    pod: &'a Value,
    restart_policy: String,
    /// `name_namespace(uid)`, as the kubelet's messages name a pod.
    key: String,
    ip: String,
    /// `terminationGracePeriodSeconds` (default 30).
    grace_secs: f64,
}

/// Per-pod runtime state of the kubelet.
#[derive(Default)]
pub struct Kubelet {
    pods: HashMap<String, PodRt>,
    next_ip: u32,
}

fn hex64() -> String {
    format!(
        "{:016x}{:016x}{:016x}{:016x}",
        random_u64(),
        random_u64(),
        random_u64(),
        random_u64()
    )
}

fn secs_of(v: &Value, k: &str, d: i64) -> f64 {
    v.get(k).and_then(|x| x.as_i64()).unwrap_or(d) as f64
}

fn container_ref(c: &Ctr) -> String {
    format!("spec.containers{{{}}}", c.name)
}

/// A container as the kubelet first sees it: the sandbox starts it in a
/// second; its liveness worker ticks every period from now.
fn new_container(clock: &TimeScale, spec: &Value, now: Instant) -> Ctr {
    let lp = &spec["livenessProbe"];
    Ctr {
        name: spec["name"].as_str().unwrap_or("").to_string(),
        image: spec["image"].as_str().unwrap_or("").to_string(),
        spec: spec.clone(),
        state: CState::Waiting {
            reason: "ContainerCreating".into(),
            message: None,
        },
        last_state: None,
        restarts: 0,
        ready: false,
        id: None,
        image_ref: None,
        start_at: Some(now + clock.secs(1.0)),
        exit_at: None,
        exited_at: None,
        backoff: RestartBackoff::default(),
        stopping: None,
        pull_failures: 0,
        pull_backoff_at: None,
        config_errors: 0,
        started_at: None,
        warm_until: None,
        behavior: None,
        on_sigterm: OnSigterm::Exit(0),
        ever_started: false,
        readiness: Probe::default(),
        liveness: Probe {
            next: lp
                .is_object()
                .then(|| now + clock.secs(secs_of(lp, "periodSeconds", 10))),
            ..Probe::default()
        },
    }
}

impl PodCtx<'_> {
    fn of<'a>(pod: &'a Value, ip: &str) -> PodCtx<'a> {
        PodCtx {
            pod,
            restart_policy: pod
                .pointer("/spec/restartPolicy")
                .and_then(|r| r.as_str())
                .unwrap_or("Always")
                .to_string(),
            key: format!(
                "{}_{}({})",
                meta(pod, "name"),
                meta(pod, "namespace"),
                meta(pod, "uid")
            ),
            ip: ip.to_string(),
            grace_secs: pod
                .pointer("/spec/terminationGracePeriodSeconds")
                .and_then(|g| g.as_i64())
                .unwrap_or(30) as f64,
        }
    }
}

impl Kubelet {
    /// Brings one pod's runtime and status up to date and schedules the next wake-up.
    pub fn sync(&mut self, env: &Env, ns: &str, name: &str) {
        let pod = match env.api.get(env.res("Pod"), ns, name) {
            Ok(p) => p,
            Err(_) => {
                self.pods.retain(|_, rt| rt.name != name);
                env.logs.forget_pod(ns, name);
                return;
            }
        };
        if pod.pointer("/spec/nodeName").and_then(|n| n.as_str()) != Some(env.node.name.as_str()) {
            return;
        }
        let uid = meta(&pod, "uid").to_string();
        let now = Instant::now();
        if !self.pods.contains_key(&uid) {
            self.next_ip += 1;
            let rt = self.new_pod(env, &pod, name, now);
            self.pods.insert(uid.clone(), rt);
        }
        let Some(rt) = self.pods.get_mut(&uid) else {
            return;
        };
        missing_cluster_dns(env, &pod, rt, now);
        let deleting = pod
            .pointer("/metadata/deletionTimestamp")
            .is_some_and(|d| !d.is_null());
        if deleting {
            if terminate_pod(env, &pod, rt, now) {
                self.pods.remove(&uid);
                env.logs.forget_pod(ns, name);
                env.ready_since
                    .lock()
                    .expect("ready mutex poisoned")
                    .remove(&uid);
            }
            return;
        }
        let ctx = PodCtx::of(&pod, &rt.ip);
        for c in rt.containers.iter_mut() {
            container::step(env, &ctx, c, now);
        }
        write_status(env, &pod, rt, &uid);
        schedule_next(env, rt, now, ns, name);
    }

    fn new_pod(&self, env: &Env, pod: &Value, name: &str, now: Instant) -> PodRt {
        let containers = pod
            .pointer("/spec/containers")
            .and_then(|c| c.as_array())
            .map(|a| {
                a.iter()
                    .map(|c| new_container(&env.clock, c, now))
                    .collect()
            })
            .unwrap_or_default();
        PodRt {
            name: name.to_string(),
            ip: format!("10.244.0.{}", (self.next_ip % 250) + 2),
            start_time: now_rfc3339(),
            containers,
            kill_deadline: None,
        }
    }
}

/// minikube's kubelet warns about every ClusterFirst pod (on request), once per container start.
fn missing_cluster_dns(env: &Env, pod: &Value, rt: &PodRt, now: Instant) {
    let starting = rt
        .containers
        .iter()
        .any(|c| c.start_at.is_some_and(|t| now >= t));
    if !env.node.missing_cluster_dns_events
        || !starting
        || pod.pointer("/spec/dnsPolicy").and_then(|d| d.as_str()) != Some("ClusterFirst")
    {
        return;
    }
    let msg = format!(
        "pod: \"{}_{}({})\". kubelet does not have ClusterDNS IP configured and cannot create Pod using \"ClusterFirst\" policy. Falling back to \"Default\" policy.",
        meta(pod, "name"),
        meta(pod, "namespace"),
        meta(pod, "uid")
    );
    env.recorder.record(
        &env.api,
        pod,
        "Warning",
        "MissingClusterDNS",
        &msg,
        Source::Kubelet(&env.node.name),
        None,
    );
}

/// A deleted pod: SIGTERM to every running container (those that exit on it
/// stop at once), the rest killed (137) when the grace period ends; then the
/// final status and the deletion with grace 0. True once the pod is gone.
fn terminate_pod(env: &Env, pod: &Value, rt: &mut PodRt, now: Instant) -> bool {
    if rt.kill_deadline.is_none() {
        let grace = pod
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(|g| g.as_i64())
            .unwrap_or(30);
        rt.kill_deadline = Some(now + env.clock.secs(grace as f64));
        for c in rt
            .containers
            .iter_mut()
            .filter(|c| matches!(c.state, CState::Running { .. }))
        {
            env.recorder.record(
                &env.api,
                pod,
                "Normal",
                "Killing",
                &format!("Stopping container {}", c.name),
                Source::Kubelet(&env.node.name),
                Some(&container_ref(c)),
            );
            if let OnSigterm::Exit(code) = c.on_sigterm {
                container::terminate(c, code as i64, now);
            }
        }
    }
    let deadline = rt.kill_deadline.unwrap_or(now);
    let any_running = rt
        .containers
        .iter()
        .any(|c| matches!(c.state, CState::Running { .. }));
    let uid = meta(pod, "uid");
    if now < deadline && any_running {
        write_status(env, pod, rt, uid);
        env.at(
            deadline,
            Work::Pod(meta(pod, "namespace").into(), meta(pod, "name").into()),
        );
        return false;
    }
    for c in rt.containers.iter_mut() {
        if matches!(c.state, CState::Running { .. }) {
            container::terminate(c, 137, now);
        }
        c.ready = false;
    }
    write_status(env, pod, rt, uid);
    let _ = env.api.delete(
        env.res("Pod"),
        meta(pod, "namespace"),
        meta(pod, "name"),
        &DeleteOpts {
            grace_period: Some(0),
            ..DeleteOpts::default()
        },
    );
    true
}

/// Wakes the pod's sync at the earliest thing due.
fn schedule_next(env: &Env, rt: &PodRt, now: Instant, ns: &str, name: &str) {
    let mut next: Option<Instant> = None;
    let mut consider = |t: Option<Instant>| {
        if let Some(t) = t {
            next = Some(next.map_or(t, |n: Instant| n.min(t)));
        }
    };
    for c in &rt.containers {
        consider(c.start_at);
        consider(c.exit_at);
        consider(c.pull_backoff_at);
        consider(c.stopping.map(|s| s.until));
        if matches!(c.state, CState::Running { .. }) && c.stopping.is_none() {
            consider(c.readiness.next);
            consider(c.liveness.next);
        }
    }
    if let Some(t) = next {
        env.at(t.max(now), Work::Pod(ns.to_string(), name.to_string()));
    }
}
