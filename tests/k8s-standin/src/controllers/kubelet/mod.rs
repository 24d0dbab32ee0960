//! The simulated kubelet on the one node: pod sandbox start, image checks
//! (ErrImageNeverPull, ErrImagePull/ImagePullBackOff), container start per
//! image behaviour, readiness and liveness probes, crash loops with the 10 s,
//! 20 s, 40 s .. 300 s back-off, graceful termination, pod status exactly in
//! the shapes the transcripts show, and the kubelet's events and logs.

use std::collections::HashMap;
use std::time::Instant;

use serde_json::Value;

use super::events::Source;
use super::{Env, Work, meta};
use crate::api::DeleteOpts;
use crate::node::{Behavior, normalize_image};
use crate::util::{now_rfc3339, random_u64};

mod probe;
mod status;

use probe::run_probe;
use status::{terminated_json, write_status};

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
    /// When to (re)start the container.
    start_at: Option<Instant>,
    /// When a running container exits by itself.
    exit_at: Option<Instant>,
    /// When a dead container shows CrashLoopBackOff.
    backoff_show_at: Option<(Instant, u64)>,
    deaths: u32,
    pull_failures: u32,
    /// ErrImagePull shown; ImagePullBackOff due at this instant.
    pull_backoff_at: Option<Instant>,
    started_at: Option<Instant>,
    /// Probes are refused until then (SlowStart).
    warm_until: Option<Instant>,
    behavior: Option<Behavior>,
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

impl Kubelet {
    /// Brings one pod's runtime and status up to date and schedules the next wake-up.
    pub fn sync(&mut self, env: &Env, ns: &str, name: &str) {
        let pod_res = env.res("Pod");
        let pod = match env.api.get(pod_res, ns, name) {
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
            let containers = pod
                .pointer("/spec/containers")
                .and_then(|c| c.as_array())
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|c| Ctr {
                    name: c["name"].as_str().unwrap_or("").to_string(),
                    image: c["image"].as_str().unwrap_or("").to_string(),
                    spec: c.clone(),
                    state: CState::Waiting {
                        reason: "ContainerCreating".into(),
                        message: None,
                    },
                    last_state: None,
                    restarts: 0,
                    ready: false,
                    id: None,
                    image_ref: None,
                    start_at: Some(now + env.clock.secs(1.0)),
                    exit_at: None,
                    backoff_show_at: None,
                    deaths: 0,
                    pull_failures: 0,
                    pull_backoff_at: None,
                    started_at: None,
                    warm_until: None,
                    behavior: None,
                    ever_started: false,
                    readiness: Probe::default(),
                    liveness: Probe::default(),
                })
                .collect();
            self.pods.insert(
                uid.clone(),
                PodRt {
                    name: name.to_string(),
                    ip: format!("10.244.0.{}", (self.next_ip % 250) + 2),
                    start_time: now_rfc3339(),
                    containers,
                    kill_deadline: None,
                },
            );
        }
        let Some(rt) = self.pods.get_mut(&uid) else {
            return;
        };
        let starting = rt
            .containers
            .iter()
            .any(|c| c.start_at.is_some_and(|t| now >= t));
        if env.node.missing_cluster_dns_events
            && starting
            && pod.pointer("/spec/dnsPolicy").and_then(|d| d.as_str()) == Some("ClusterFirst")
        {
            let msg = format!(
                "pod: \"{name}_{ns}({uid})\". kubelet does not have ClusterDNS IP configured and cannot create Pod using \"ClusterFirst\" policy. Falling back to \"Default\" policy."
            );
            env.recorder.record(
                &env.api,
                &pod,
                "Warning",
                "MissingClusterDNS",
                &msg,
                Source::Kubelet(&env.node.name),
                None,
            );
        }
        let deleting = pod
            .pointer("/metadata/deletionTimestamp")
            .is_some_and(|d| !d.is_null());
        if deleting {
            if rt.kill_deadline.is_none() {
                let grace = pod
                    .pointer("/metadata/deletionGracePeriodSeconds")
                    .and_then(|g| g.as_i64())
                    .unwrap_or(30);
                rt.kill_deadline = Some(now + env.clock.secs(grace as f64));
                for c in rt
                    .containers
                    .iter()
                    .filter(|c| matches!(c.state, CState::Running { .. }))
                {
                    env.recorder.record(
                        &env.api,
                        &pod,
                        "Normal",
                        "Killing",
                        &format!("Stopping container {}", c.name),
                        Source::Kubelet(&env.node.name),
                        Some(&container_ref(c)),
                    );
                }
            }
            let deadline = rt.kill_deadline.unwrap_or(now);
            let any_running = rt
                .containers
                .iter()
                .any(|c| matches!(c.state, CState::Running { .. }));
            if now >= deadline || !any_running {
                for c in rt.containers.iter_mut() {
                    if let CState::Running { started_at } = &c.state {
                        c.state = CState::Terminated {
                            exit_code: 137,
                            reason: "Error".into(),
                            started_at: started_at.clone(),
                            finished_at: now_rfc3339(),
                            id: c.id.clone().unwrap_or_default(),
                        };
                    }
                    c.ready = false;
                }
                write_status(env, &pod, rt, &uid);
                let _ = env.api.delete(
                    pod_res,
                    ns,
                    name,
                    &DeleteOpts {
                        grace_period: Some(0),
                        ..DeleteOpts::default()
                    },
                );
                self.pods.remove(&uid);
                env.logs.forget_pod(ns, name);
                env.ready_since
                    .lock()
                    .expect("ready mutex poisoned")
                    .remove(&uid);
                return;
            }
            write_status(env, &pod, rt, &uid);
            env.at(deadline, Work::Pod(ns.to_string(), name.to_string()));
            return;
        }
        let restart_policy = pod
            .pointer("/spec/restartPolicy")
            .and_then(|r| r.as_str())
            .unwrap_or("Always")
            .to_string();
        let pod_key = format!("{}_{}({})", name, ns, uid);
        let ip = rt.ip.clone();
        for c in rt.containers.iter_mut() {
            step_container(env, &pod, c, now, &restart_policy, &pod_key, &ip);
        }
        write_status(env, &pod, rt, &uid);
        // Next wake-up.
        let mut next: Option<Instant> = None;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n: Instant| n.min(t)));
            }
        };
        for c in &rt.containers {
            consider(c.start_at);
            consider(c.exit_at);
            consider(c.backoff_show_at.map(|b| b.0));
            consider(c.pull_backoff_at);
            if matches!(c.state, CState::Running { .. }) {
                consider(c.readiness.next);
                consider(c.liveness.next);
            }
        }
        if let Some(t) = next {
            env.at(t.max(now), Work::Pod(ns.to_string(), name.to_string()));
        }
    }
}

/// A container exits; `resync` is when the kubelet's next sync would restart it.
fn kill(c: &mut Ctr, now: Instant, exit_code: i64, restart_policy: &str, resync: Instant) {
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
    c.liveness = Probe::default();
    c.deaths += 1;
    let restart = restart_policy == "Always" || (restart_policy == "OnFailure" && exit_code != 0);
    if !restart {
        c.start_at = None;
        return;
    }
    if c.deaths == 1 {
        c.start_at = Some(resync);
        c.backoff_show_at = None;
    } else {
        let backoff = (10u64 << (c.deaths - 2).min(5)).min(300);
        c.backoff_show_at = Some((now, backoff));
        c.start_at = None;
    }
}

fn step_container(
    env: &Env,
    pod: &Value,
    c: &mut Ctr,
    now: Instant,
    restart_policy: &str,
    pod_key: &str,
    ip: &str,
) {
    let src = Source::Kubelet(&env.node.name);
    let fref = container_ref(c);
    let record = |etype: &str, reason: &str, msg: &str| {
        env.recorder
            .record(&env.api, pod, etype, reason, msg, src, Some(&fref))
    };
    // A dead container enters CrashLoopBackOff shortly after dying.
    if let Some((died, backoff)) = c.backoff_show_at {
        let show = died + env.clock.secs(1.0);
        if now >= show {
            c.last_state = terminated_json(&c.state).or(c.last_state.take());
            c.state = CState::Waiting {
                reason: "CrashLoopBackOff".into(),
                message: Some(format!(
                    "back-off {backoff}s restarting failed container={} pod={pod_key}",
                    c.name
                )),
            };
            record("Warning", "BackOff", "Back-off restarting failed container");
            c.backoff_show_at = None;
            c.start_at = Some(died + env.clock.secs(backoff as f64));
        } else {
            c.backoff_show_at = Some((died, backoff));
            return;
        }
    }
    // Image pull back-off display.
    if let Some(at) = c.pull_backoff_at
        && now >= at
    {
        c.pull_backoff_at = None;
        let msg = format!("Back-off pulling image \"{}\"", c.image);
        c.state = CState::Waiting {
            reason: "ImagePullBackOff".into(),
            message: Some(msg.clone()),
        };
        record("Normal", "BackOff", &msg);
        record("Warning", "Failed", "Error: ImagePullBackOff");
    }
    // Start or restart.
    if c.start_at.is_some_and(|t| now >= t) {
        c.start_at = None;
        let pull_policy = c.spec["imagePullPolicy"]
            .as_str()
            .unwrap_or("IfNotPresent")
            .to_string();
        match env.images.get(&c.image) {
            None if pull_policy == "Never" => {
                let msg = format!(
                    "Container image \"{}\" is not present with pull policy of Never",
                    c.image
                );
                c.state = CState::Waiting {
                    reason: "ErrImageNeverPull".into(),
                    message: Some(msg.clone()),
                };
                record("Warning", "ErrImageNeverPull", &msg);
                record("Warning", "Failed", "Error: ErrImageNeverPull");
                c.start_at = Some(now + env.clock.secs(12.0));
            }
            None => {
                let full = normalize_image(&c.image);
                let (repo, tag) = full.rsplit_once(':').unwrap_or((full.as_str(), "latest"));
                let path = repo.strip_prefix("docker.io/").unwrap_or(repo);
                let err = format!(
                    "rpc error: code = Unknown desc = failed to pull and unpack image \"{full}\": failed to resolve reference \"{full}\": failed to do request: Head \"https://registry-1.docker.io/v2/{path}/manifests/{tag}\": dial tcp: lookup registry-1.docker.io: no such host"
                );
                record(
                    "Normal",
                    "Pulling",
                    &format!("Pulling image \"{}\"", c.image),
                );
                record(
                    "Warning",
                    "Failed",
                    &format!("Failed to pull image \"{}\": {err}", c.image),
                );
                record("Warning", "Failed", "Error: ErrImagePull");
                c.state = CState::Waiting {
                    reason: "ErrImagePull".into(),
                    message: Some(err),
                };
                c.pull_failures += 1;
                let backoff = (10u64 << (c.pull_failures - 1).min(5)).min(300);
                c.pull_backoff_at = Some(now + env.clock.secs(1.0));
                c.start_at = Some(now + env.clock.secs(backoff as f64));
            }
            Some(img) => {
                if pull_policy == "Always" {
                    record(
                        "Normal",
                        "Pulling",
                        &format!("Pulling image \"{}\"", c.image),
                    );
                    record(
                        "Normal",
                        "Pulled",
                        &format!("Successfully pulled image \"{}\" in 0s", c.image),
                    );
                } else {
                    record(
                        "Normal",
                        "Pulled",
                        &format!("Container image \"{}\" already present on machine", c.image),
                    );
                }
                c.pull_backoff_at = None;
                if c.ever_started {
                    c.restarts += 1;
                    c.last_state = terminated_json(&c.state).or(c.last_state.take());
                }
                let id = format!("containerd://{}", hex64());
                c.id = Some(id);
                c.image_ref = Some((img.reference.clone(), img.id.clone()));
                c.state = CState::Running {
                    started_at: now_rfc3339(),
                };
                c.ever_started = true;
                c.started_at = Some(now);
                c.ready = false;
                c.behavior = Some(img.behavior.clone());
                let (delay, _) = img.behavior.resolve();
                c.warm_until = Some(now + env.clock.secs(delay));
                record(
                    "Normal",
                    "Created",
                    &format!("Created container {}", c.name),
                );
                record(
                    "Normal",
                    "Started",
                    &format!("Started container {}", c.name),
                );
                let (_, b) = img.behavior.resolve();
                let lines = match b {
                    Behavior::Serve { log_lines, .. } | Behavior::Crash { log_lines, .. } => {
                        log_lines.clone()
                    }
                    Behavior::SlowStart { .. } => Vec::new(),
                };
                env.logs
                    .start(meta(pod, "namespace"), meta(pod, "name"), &c.name, &lines);
                if let Behavior::Crash {
                    exit_code,
                    run_secs,
                    ..
                } = b
                {
                    if *run_secs <= 0.0 {
                        kill(
                            c,
                            now,
                            *exit_code as i64,
                            restart_policy,
                            now + env.clock.secs(1.0),
                        );
                        return;
                    }
                    c.exit_at = Some(now + env.clock.secs(*run_secs));
                }
                let rp = &c.spec["readinessProbe"];
                if rp.is_object() {
                    c.readiness.next =
                        Some(now + env.clock.secs(secs_of(rp, "initialDelaySeconds", 0)));
                }
                let lp = &c.spec["livenessProbe"];
                if lp.is_object() {
                    c.liveness.next =
                        Some(now + env.clock.secs(secs_of(lp, "initialDelaySeconds", 0)));
                }
            }
        }
    }
    // Exit by itself.
    if c.exit_at.is_some_and(|t| now >= t) {
        let code = match c.behavior.as_ref().map(|b| b.resolve().1) {
            Some(Behavior::Crash { exit_code, .. }) => *exit_code as i64,
            _ => 0,
        };
        kill(c, now, code, restart_policy, now + env.clock.secs(1.0));
        return;
    }
    if !matches!(c.state, CState::Running { .. }) {
        return;
    }
    // Readiness.
    let rp = c.spec["readinessProbe"].clone();
    if !rp.is_object() {
        c.ready = true;
    } else if c.readiness.next.is_some_and(|t| now >= t) {
        let period = env.clock.secs(secs_of(&rp, "periodSeconds", 10));
        match run_probe(c, &rp, now, ip) {
            Ok(()) => {
                c.readiness.succ += 1;
                c.readiness.fail = 0;
                if c.readiness.succ >= rp["successThreshold"].as_i64().unwrap_or(1) {
                    c.ready = true;
                }
            }
            Err(m) => {
                c.readiness.fail += 1;
                c.readiness.succ = 0;
                record(
                    "Warning",
                    "Unhealthy",
                    &format!("Readiness probe failed: {m}"),
                );
                if c.readiness.fail >= rp["failureThreshold"].as_i64().unwrap_or(3) {
                    c.ready = false;
                }
            }
        }
        c.readiness.next = Some(now + period);
    }
    // Liveness.
    let lp = c.spec["livenessProbe"].clone();
    if lp.is_object() && c.liveness.next.is_some_and(|t| now >= t) {
        let period = env.clock.secs(secs_of(&lp, "periodSeconds", 10));
        match run_probe(c, &lp, now, ip) {
            Ok(()) => {
                c.liveness.fail = 0;
                c.liveness.next = Some(now + period);
            }
            Err(m) => {
                c.liveness.fail += 1;
                record(
                    "Warning",
                    "Unhealthy",
                    &format!("Liveness probe failed: {m}"),
                );
                if c.liveness.fail >= lp["failureThreshold"].as_i64().unwrap_or(3) {
                    record(
                        "Normal",
                        "Killing",
                        &format!(
                            "Container {} failed liveness probe, will be restarted",
                            c.name
                        ),
                    );
                    kill(c, now, 137, restart_policy, now + env.clock.secs(1.0));
                    return;
                }
                c.liveness.next = Some(now + period);
            }
        }
    }
}
