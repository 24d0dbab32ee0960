//! Why a pod is not ready, from its status and its Events: pure functions, tested on the shapes
//! a real 1.24 cluster produces (`05-failure-modes.json`). Each problem says whether waiting
//! longer could help, and what to do.

use k8s_openapi::api::core::v1::{Event, Pod};

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
            Problem::ContainerConfig { .. } => {
                "check that the ConfigMap and Secret it refers to exist and have the keys it needs"
                    .to_owned()
            }
            Problem::ProbeFailing { .. } => {
                "check the probe `path` and `port` in the config against what the app serves, and that it starts within `initialDelaySeconds`".to_owned()
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

/// A readiness or liveness probe that has failed for two failure windows.
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

    #[test]
    fn a_healthy_starting_pod_has_no_problem() {
        assert_eq!(diagnose(&pod(RUNNING_NOT_READY), &[]), None);
    }
}
