//! Why a pod is not ready, from its status and its Events: pure functions, tested on the shapes
//! a real 1.24 cluster produces (`05-failure-modes.json`). Each problem says whether waiting
//! longer could help, and what to do.

use k8s_openapi::api::core::v1::{ContainerStatus, Event, Pod, Probe};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The image is not on the node (`ErrImageNeverPull`, `ErrImagePull`, `ImagePullBackOff`).
    ImageMissing {
        pod: String,
        image: String,
        reason: String,
        message: String,
    },
    /// The container keeps exiting (`CrashLoopBackOff`).
    CrashLoop {
        pod: String,
        container: String,
        restarts: i32,
        exit_code: Option<i32>,
        /// The last lines of the previous container's log, filled in by the tracker.
        logs: Vec<String>,
    },
    /// The container cannot be created (`CreateContainerConfigError` and friends).
    ContainerConfig {
        pod: String,
        reason: String,
        message: String,
    },
    /// A probe keeps failing (`Unhealthy` events).
    ProbeFailing {
        pod: String,
        message: String,
        failures: i32,
    },
    /// The liveness probe keeps failing, so the kubelet kills and restarts the container (its
    /// `Killing` event says `failed liveness probe`; the container exits 0 or 137, it did not
    /// crash).
    LivenessRestarts {
        pod: String,
        container: String,
        restarts: i32,
        /// What the probe asks for, e.g. `HTTP GET /api/health/live on port 8000`.
        probe: Option<String>,
        /// Why it failed, from the kubelet's `Unhealthy` event, e.g. `HTTP 404`.
        failure: String,
    },
    /// The scheduler cannot place the pod.
    Unschedulable { pod: String, message: String },
}

/// How many failing probes in a row mean "keeps failing": two full failure windows.
const PROBE_WINDOWS: i32 = 2;
/// Crashes before a crash loop is reported; one crash at start-up can be a fluke.
const CRASHES: i32 = 2;

impl Problem {
    pub fn pod(&self) -> &str {
        match self {
            Problem::ImageMissing { pod, .. }
            | Problem::CrashLoop { pod, .. }
            | Problem::ContainerConfig { pod, .. }
            | Problem::ProbeFailing { pod, .. }
            | Problem::LivenessRestarts { pod, .. }
            | Problem::Unschedulable { pod, .. } => pod,
        }
    }

    /// Whether waiting can no longer help. An unschedulable pod may still fit once other
    /// rollouts finish, so the tracker decides that one with the wider picture.
    pub fn is_terminal(&self) -> bool {
        !matches!(self, Problem::Unschedulable { .. })
    }

    /// One line: what is wrong.
    pub fn summary(&self) -> String {
        match self {
            Problem::ImageMissing {
                pod,
                image,
                reason,
                message,
            } => format!("pod `{pod}`: image `{image}` is not on the node ({reason}: {message})"),
            Problem::CrashLoop {
                pod,
                container,
                restarts,
                exit_code,
                ..
            } => {
                let exit = exit_code.map_or(String::new(), |c| format!(", last exit code {c}"));
                format!(
                    "pod `{pod}`: container `{container}` keeps crashing (CrashLoopBackOff, {restarts} restarts{exit})"
                )
            }
            Problem::ContainerConfig {
                pod,
                reason,
                message,
            } => format!("pod `{pod}`: the container cannot start ({reason}: {message})"),
            Problem::ProbeFailing {
                pod,
                message,
                failures,
            } => format!("pod `{pod}`: {message} ({failures} times)"),
            Problem::LivenessRestarts {
                pod,
                container,
                restarts,
                probe,
                failure,
            } => {
                let on = probe.as_ref().map_or(String::new(), |p| format!(" on {p}"));
                let times = if *restarts == 1 { "time" } else { "times" };
                format!(
                    "pod `{pod}`: liveness probe failed ({failure}{on}); the kubelet restarted container `{container}` {restarts} {times}"
                )
            }
            Problem::Unschedulable { pod, message } => {
                format!("pod `{pod}` cannot be scheduled: {message}")
            }
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> String {
        match self {
            Problem::ImageMissing { .. } => {
                "load the image into the cluster's node: run `todo-deploy up` (it builds and loads), or check `cluster.loader` and the image name".to_owned()
            }
            Problem::CrashLoop { pod, .. } => format!(
                "the log lines above are the crashed container's; `kubectl logs {pod} --previous` shows more"
            ),
            Problem::ContainerConfig { message, .. } if message.contains("runAsNonRoot") => {
                "give the image a numeric non-root user (`USER 10001` in its Dockerfile), or set `security.runAsUser` in the config".to_owned()
            }
            Problem::ContainerConfig { .. } => {
                "check that the ConfigMap and Secret it refers to exist and have the keys it needs"
                    .to_owned()
            }
            Problem::ProbeFailing { .. } => {
                "check the probe `path` and `port` in the config against what the app serves, and that it starts within `initialDelaySeconds`".to_owned()
            }
            Problem::LivenessRestarts { .. } => {
                "check `probes.liveness` (`path`, `port`) in the config against what the app serves, and give a slow start more `initialDelaySeconds`".to_owned()
            }
            Problem::Unschedulable { .. } => {
                "lower `resources.requests` or give the node more room (`minikube start --cpus 4 --memory 8g`)".to_owned()
            }
        }
    }
}

/// The most telling problem of `pod`, if any. `events` may hold events of other objects; only
/// this pod's (matched by uid) count.
pub fn diagnose(pod: &Pod, events: &[&Event]) -> Option<Problem> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let status = pod.status.as_ref()?;
    if let Some(scheduled) = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled")
        && scheduled.status == "False"
        && scheduled.reason.as_deref() == Some("Unschedulable")
    {
        return Some(Problem::Unschedulable {
            pod: name,
            message: scheduled.message.clone().unwrap_or_default(),
        });
    }
    for container in status.container_statuses.iter().flatten() {
        let waiting = container.state.as_ref().and_then(|s| s.waiting.as_ref());
        let reason = waiting.and_then(|w| w.reason.clone()).unwrap_or_default();
        let message = waiting.and_then(|w| w.message.clone()).unwrap_or_default();
        match reason.as_str() {
            "ErrImageNeverPull" | "ErrImagePull" | "ImagePullBackOff" | "InvalidImageName" => {
                return Some(Problem::ImageMissing {
                    pod: name,
                    image: container.image.clone(),
                    reason,
                    message,
                });
            }
            "CreateContainerConfigError" | "CreateContainerError" | "RunContainerError" => {
                return Some(Problem::ContainerConfig {
                    pod: name,
                    reason,
                    message,
                });
            }
            _ => {}
        }
        if container.restart_count >= CRASHES
            && let Some(problem) = liveness_restarts(pod, &name, container, events)
        {
            return Some(problem);
        }
        let crashed = container
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref());
        if reason == "CrashLoopBackOff" && container.restart_count >= CRASHES {
            return Some(Problem::CrashLoop {
                pod: name,
                container: container.name.clone(),
                restarts: container.restart_count,
                exit_code: crashed.map(|t| t.exit_code),
                logs: Vec::new(),
            });
        }
    }
    probe_failures(pod, &name, events)
}

/// A container the kubelet restarted because its liveness probe failed: a `Killing` event of
/// this pod says so (`Container web failed liveness probe, will be restarted`).
fn liveness_restarts(
    pod: &Pod,
    name: &str,
    container: &ContainerStatus,
    events: &[&Event],
) -> Option<Problem> {
    let uid = pod.metadata.uid.as_deref()?;
    let of_pod = |reason: &'static str| {
        events
            .iter()
            .filter(move |e| e.involved_object.uid.as_deref() == Some(uid))
            .filter(move |e| e.reason.as_deref() == Some(reason))
            .filter_map(|e| e.message.as_deref())
    };
    let killed = format!("Container {} failed liveness probe", container.name);
    if !of_pod("Killing").any(|m| m.starts_with(&killed)) {
        return None;
    }
    let failure = of_pod("Unhealthy")
        .find_map(|m| m.strip_prefix("Liveness probe failed: "))
        .map_or_else(|| "no answer".to_owned(), probe_failure);
    let probe = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .find(|c| c.name == container.name)
        .and_then(|c| c.liveness_probe.as_ref())
        .and_then(describe_probe);
    Some(Problem::LivenessRestarts {
        pod: name.to_owned(),
        container: container.name.clone(),
        restarts: container.restart_count,
        probe,
        failure,
    })
}

/// The kubelet's words for a failed probe, shortened where they have a known form:
/// `HTTP probe failed with statuscode: 404` is `HTTP 404`.
fn probe_failure(message: &str) -> String {
    match message.strip_prefix("HTTP probe failed with statuscode: ") {
        Some(code) => format!("HTTP {}", code.trim()),
        None => message.trim().to_owned(),
    }
}

/// Where a probe looks: `` `/api/health/live` `` for HTTP, `port 8000` for TCP.
fn describe_probe(probe: &Probe) -> Option<String> {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    if let Some(get) = &probe.http_get {
        return Some(format!("`{}`", get.path.as_deref().unwrap_or("/")));
    }
    probe.tcp_socket.as_ref().map(|tcp| match &tcp.port {
        IntOrString::Int(port) => format!("port {port}"),
        IntOrString::String(port) => format!("port `{port}`"),
    })
}

/// A readiness probe that has failed for two failure windows. (A failing liveness probe gets the
/// container restarted: [`liveness_restarts`] reports that.) The kubelet's `Unhealthy` events
/// say which probe only in their message.
fn probe_failures(pod: &Pod, name: &str, events: &[&Event]) -> Option<Problem> {
    let uid = pod.metadata.uid.as_deref()?;
    let threshold = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .filter_map(|c| c.readiness_probe.as_ref())
        .filter_map(|p| p.failure_threshold)
        .max()
        .unwrap_or(3);
    let unhealthy = events
        .iter()
        .filter(|e| e.involved_object.uid.as_deref() == Some(uid))
        .filter(|e| e.reason.as_deref() == Some("Unhealthy"))
        .filter(|e| {
            e.message
                .as_deref()
                .is_some_and(|m| m.starts_with("Readiness probe failed"))
        })
        .max_by_key(|e| e.count.unwrap_or(1))?;
    let failures = unhealthy.count.unwrap_or(1);
    (failures >= threshold * PROBE_WINDOWS).then(|| Problem::ProbeFailing {
        pod: name.to_owned(),
        message: unhealthy.message.clone().unwrap_or_default(),
        failures,
    })
}

/// The newest event about `pod`, for the progress display (`Pulled`, `Started`, `Unhealthy`…).
pub fn latest_event<'a>(pod: &Pod, events: &[&'a Event]) -> Option<&'a Event> {
    let uid = pod.metadata.uid.as_deref()?;
    events
        .iter()
        .copied()
        .filter(|e| e.involved_object.uid.as_deref() == Some(uid))
        .filter(|e| e.reason.as_deref() != Some("MissingClusterDNS"))
        .max_by_key(|e| {
            e.last_timestamp
                .as_ref()
                .map(|t| t.0.as_second())
                .or_else(|| e.event_time.as_ref().map(|t| t.0.as_second()))
                .unwrap_or(0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(yaml: &str) -> Pod {
        serde_saphyr::from_str(yaml).expect("a Pod")
    }

    fn event(yaml: &str) -> Event {
        serde_saphyr::from_str(yaml).expect("an Event")
    }

    const RUNNING_NOT_READY: &str = r#"
metadata: {name: notready-67bbb6dbd4-98wns, uid: u-1}
spec:
  containers:
  - name: web
    readinessProbe: {httpGet: {path: /api/health, port: 8000}, failureThreshold: 3}
status:
  phase: Running
  conditions:
  - {type: PodScheduled, status: "True"}
  - {type: Ready, status: "False", reason: ContainersNotReady}
  containerStatuses:
  - {name: web, ready: false, restartCount: 0, image: probe-busybox:1, imageID: "", state: {running: {startedAt: "2026-11-23T04:56:16Z"}}}
"#;

    #[test]
    fn image_never_pull() {
        let p = pod(r#"
metadata: {name: missing-c657b6fb5-lfpq8, uid: u}
status:
  phase: Pending
  conditions: [{type: PodScheduled, status: "True"}]
  containerStatuses:
  - name: web
    state: {waiting: {reason: ErrImageNeverPull, message: 'Container image "probe-missing:1" is not present with pull policy of Never'}}
    ready: false
    restartCount: 0
    image: probe-missing:1
    imageID: ""
"#);
        let problem = diagnose(&p, &[]).expect("a problem");
        assert!(problem.is_terminal());
        assert_eq!(
            problem.summary(),
            "pod `missing-c657b6fb5-lfpq8`: image `probe-missing:1` is not on the node (ErrImageNeverPull: Container image \"probe-missing:1\" is not present with pull policy of Never)"
        );
    }

    #[test]
    fn crash_loop_needs_two_crashes() {
        let crashing = |restarts: i32| {
            pod(&format!(
                r#"
metadata: {{name: crash-7447fc6867-ng2zq, uid: u}}
status:
  phase: Running
  containerStatuses:
  - name: web
    state: {{waiting: {{reason: CrashLoopBackOff, message: back-off 40s restarting failed container}}}}
    lastState: {{terminated: {{exitCode: 3, reason: Error}}}}
    ready: false
    restartCount: {restarts}
    image: probe-crash:1
    imageID: sha256:98
"#
            ))
        };
        assert_eq!(diagnose(&crashing(1), &[]), None);
        let problem = diagnose(&crashing(3), &[]).expect("a crash loop");
        assert_eq!(
            problem.summary(),
            "pod `crash-7447fc6867-ng2zq`: container `web` keeps crashing (CrashLoopBackOff, 3 restarts, last exit code 3)"
        );
    }

    #[test]
    fn failing_readiness_probe_counts_this_pods_events() {
        let p = pod(RUNNING_NOT_READY);
        let unhealthy = |uid: &str, count: i32| {
            event(&format!(
                "metadata: {{name: e}}
involvedObject: {{kind: Pod, name: notready-67bbb6dbd4-98wns, uid: {uid}}}
reason: Unhealthy
type: Warning
count: {count}
message: 'Readiness probe failed: HTTP probe failed with statuscode: 404'"
            ))
        };
        assert_eq!(
            diagnose(&p, &[&unhealthy("u-1", 5)]),
            None,
            "not yet two windows"
        );
        assert_eq!(
            diagnose(&p, &[&unhealthy("other-pod", 17)]),
            None,
            "another pod's events"
        );
        let problem = diagnose(&p, &[&unhealthy("u-1", 17)]).expect("probe failing");
        assert_eq!(
            problem.summary(),
            "pod `notready-67bbb6dbd4-98wns`: Readiness probe failed: HTTP probe failed with statuscode: 404 (17 times)"
        );
    }

    #[test]
    fn unschedulable_is_not_terminal_by_itself() {
        let p = pod(r#"
metadata: {name: unsched-769f6f447c-855jm, uid: u}
status:
  phase: Pending
  conditions:
  - {type: PodScheduled, status: "False", reason: Unschedulable, message: "0/1 nodes are available: 1 Insufficient cpu."}
"#);
        let problem = diagnose(&p, &[]).expect("unschedulable");
        assert!(!problem.is_terminal());
        assert_eq!(
            problem.summary(),
            "pod `unsched-769f6f447c-855jm` cannot be scheduled: 0/1 nodes are available: 1 Insufficient cpu."
        );
    }

    /// Transcript 10 (d): readiness and liveness both 404; the kubelet kills the container
    /// (`Completed`, exit code 0), restarts it, then backs off.
    #[test]
    fn a_container_restarted_by_its_liveness_probe_is_not_a_crash() {
        let p = pod(r#"
metadata: {name: liveness-75c844cb9f-4wmdh, uid: u-5}
spec:
  containers:
  - name: web
    livenessProbe: {httpGet: {path: /missing-live, port: 8000}, failureThreshold: 3}
    readinessProbe: {httpGet: {path: /missing, port: 8000}, failureThreshold: 3}
status:
  phase: Running
  containerStatuses:
  - name: web
    state: {waiting: {reason: CrashLoopBackOff, message: "back-off 20s restarting failed container=web"}}
    lastState: {terminated: {exitCode: 0, reason: Completed}}
    ready: false
    restartCount: 3
    image: rc-backend:16ac6f5d8534
    imageID: ""
"#);
        let event = |reason: &str, count: i32, message: &str| {
            event(&format!(
                "metadata: {{name: e}}
involvedObject: {{kind: Pod, name: liveness-75c844cb9f-4wmdh, uid: u-5}}
reason: {reason}
count: {count}
message: '{message}'"
            ))
        };
        let killing = event(
            "Killing",
            1,
            "Container web failed liveness probe, will be restarted",
        );
        let live = event(
            "Unhealthy",
            3,
            "Liveness probe failed: HTTP probe failed with statuscode: 404",
        );
        let ready = event(
            "Unhealthy",
            12,
            "Readiness probe failed: HTTP probe failed with statuscode: 404",
        );
        let problem = diagnose(&p, &[&ready, &live, &killing]).expect("a problem");
        assert!(problem.is_terminal());
        assert_eq!(
            problem.summary(),
            "pod `liveness-75c844cb9f-4wmdh`: liveness probe failed (HTTP 404 on `/missing-live`); the kubelet restarted container `web` 3 times"
        );
        assert!(
            problem.hint().contains("probes.liveness"),
            "{}",
            problem.hint()
        );
        // Without the kubelet's word that it was the liveness probe, it is a crash loop.
        let crash = diagnose(&p, &[&ready]).expect("a crash loop");
        assert!(matches!(crash, Problem::CrashLoop { .. }), "{crash:?}");
    }

    /// Transcript 10 (b): a root image under `runAsNonRoot: true`.
    #[test]
    fn run_as_non_root_gets_its_own_hint() {
        let p = pod(r#"
metadata: {name: rootimg-64f46fbdbc-mqtxd, uid: u}
status:
  phase: Pending
  containerStatuses:
  - name: web
    state: {waiting: {reason: CreateContainerConfigError, message: 'container has runAsNonRoot and image will run as root (pod: "rootimg-64f46fbdbc-mqtxd_findings(cb14e323-3023-4aff-8de4-80c11aabf730)", container: web)'}}
    ready: false
    restartCount: 0
    image: rc-backend:16ac6f5d8534
    imageID: ""
"#);
        let problem = diagnose(&p, &[]).expect("a problem");
        assert!(
            problem.hint().contains("numeric non-root user"),
            "{}",
            problem.hint()
        );
        assert!(problem.hint().contains("security.runAsUser"));
        let missing = pod(r#"
metadata: {name: p, uid: u}
status:
  containerStatuses:
  - name: web
    state: {waiting: {reason: CreateContainerConfigError, message: 'secret "todo-secrets" not found'}}
    ready: false
    restartCount: 0
    image: i
    imageID: ""
"#);
        let problem = diagnose(&missing, &[]).expect("a problem");
        assert!(
            problem.hint().contains("ConfigMap and Secret"),
            "{}",
            problem.hint()
        );
    }

    #[test]
    fn a_healthy_starting_pod_has_no_problem() {
        assert_eq!(diagnose(&pod(RUNNING_NOT_READY), &[]), None);
    }
}
