//! Where the seconds of a rollout went, when one cause is worth a line: a readiness probe's
//! `initialDelaySeconds` that a new pod sat out although it may have answered sooner (a
//! `startupProbe` lets it in as soon as it answers), and an old pod whose container ran out the
//! whole termination grace period and was killed (it does not stop on SIGTERM). Pure functions
//! of the pods the wait saw; timestamps are the API's (whole seconds).

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;

/// A cause of slowness worth telling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slowness {
    /// A new pod became ready `ready_after` its container started, of which `initial_delay` was
    /// its readiness probe's `initialDelaySeconds`.
    InitialDelay {
        deployment: String,
        pod: String,
        ready_after: Duration,
        initial_delay: Duration,
    },
    /// An old pod ran out its termination grace period `grace` and was killed.
    IgnoredSigterm {
        deployment: String,
        pod: String,
        grace: Duration,
    },
}

/// An initial delay shorter than this is not worth a line.
const WORTH_DELAY: Duration = Duration::from_secs(5);
/// A grace period shorter than this is not worth a line.
const WORTH_GRACE: Duration = Duration::from_secs(5);
/// Timestamps are whole seconds: this much slack when comparing them.
const SLACK: i64 = 2;

/// How long `pod` took from its container's start to ready, and the readiness probe's initial
/// delay, when that delay is most of the time (at least half) and long enough to matter. A pod
/// that already has a `startupProbe` has its answer.
pub fn initial_delay(deployment: &str, pod: &Pod) -> Option<Slowness> {
    let spec = pod.spec.as_ref()?;
    let container = spec.containers.first()?;
    if container.startup_probe.is_some() {
        return None;
    }
    let delay = container
        .readiness_probe
        .as_ref()?
        .initial_delay_seconds
        .and_then(|s| u64::try_from(s).ok())
        .map(Duration::from_secs)?;
    let status = pod.status.as_ref()?;
    let started = status
        .container_statuses
        .iter()
        .flatten()
        .find(|c| c.name == container.name)?
        .state
        .as_ref()?
        .running
        .as_ref()?
        .started_at
        .as_ref()?
        .0;
    let ready = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Ready" && c.status == "True")?
        .last_transition_time
        .as_ref()?
        .0;
    let after = u64::try_from(ready.as_second() - started.as_second()).ok()?;
    let ready_after = Duration::from_secs(after);
    let worth = delay >= WORTH_DELAY && ready_after >= delay && delay * 2 >= ready_after;
    worth.then(|| Slowness::InitialDelay {
        deployment: deployment.to_owned(),
        pod: pod.metadata.name.clone().unwrap_or_default(),
        ready_after,
        initial_delay: delay,
    })
}

/// The grace period of a deleted pod whose container was killed at its end (exit code 137,
/// finished when the grace period ran out) rather than stopping on SIGTERM.
pub fn ignored_sigterm(pod: &Pod) -> Option<Duration> {
    let meta = &pod.metadata;
    // The API sets the deletion timestamp to the time of the delete plus the grace period.
    let deadline = meta.deletion_timestamp.as_ref()?.0.as_second();
    let grace = Duration::from_secs(u64::try_from(meta.deletion_grace_period_seconds?).ok()?);
    if grace < WORTH_GRACE {
        return None;
    }
    let killed = pod
        .status
        .as_ref()?
        .container_statuses
        .iter()
        .flatten()
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref())
        .any(|t| {
            t.exit_code == 137
                && t.finished_at
                    .as_ref()
                    .is_some_and(|at| at.0.as_second() >= deadline - SLACK)
        });
    killed.then_some(grace)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_pod(initial_delay: i32, started: &str, ready: &str, startup: bool) -> Pod {
        let mut container = serde_json::json!({
            "name": "backend",
            "readinessProbe": {"httpGet": {"path": "/api/health", "port": 8000}, "initialDelaySeconds": initial_delay},
        });
        if startup {
            container["startupProbe"] =
                serde_json::json!({"httpGet": {"path": "/api/health", "port": 8000}});
        }
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "backend-7c9d8f6b5-x2x7q"},
            "spec": {"containers": [container]},
            "status": {
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": ready}],
                "containerStatuses": [{
                    "name": "backend", "image": "b", "imageID": "", "ready": true, "restartCount": 0,
                    "state": {"running": {"startedAt": started}},
                }],
            },
        }))
        .expect("a pod")
    }

    #[test]
    fn a_long_initial_delay_that_is_most_of_the_wait_is_worth_a_line() {
        // The recorded backend: ready 12 s after start, 10 of them the initial delay.
        let pod = new_pod(10, "2026-01-01T10:00:00Z", "2026-01-01T10:00:12Z", false);
        assert_eq!(
            initial_delay("backend", &pod),
            Some(Slowness::InitialDelay {
                deployment: "backend".to_owned(),
                pod: "backend-7c9d8f6b5-x2x7q".to_owned(),
                ready_after: Duration::from_secs(12),
                initial_delay: Duration::from_secs(10),
            })
        );
    }

    #[test]
    fn short_delays_slow_apps_and_startup_probes_are_not() {
        let short = new_pod(1, "2026-01-01T10:00:00Z", "2026-01-01T10:00:02Z", false);
        assert_eq!(initial_delay("backend", &short), None, "1 s is nothing");
        // The app itself took 30 s: the delay is not what made it slow.
        let slow = new_pod(10, "2026-01-01T10:00:00Z", "2026-01-01T10:00:30Z", false);
        assert_eq!(initial_delay("backend", &slow), None);
        let probed = new_pod(10, "2026-01-01T10:00:00Z", "2026-01-01T10:00:12Z", true);
        assert_eq!(
            initial_delay("backend", &probed),
            None,
            "it has its startupProbe"
        );
    }

    fn deleted_pod(deleted_at: &str, grace: i64, exit_code: i32, finished: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "backend-old", "deletionTimestamp": deleted_at, "deletionGracePeriodSeconds": grace},
            "spec": {"containers": [{"name": "backend"}]},
            "status": {"containerStatuses": [{
                "name": "backend", "image": "b", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": exit_code, "finishedAt": finished}},
            }]},
        }))
        .expect("a pod")
    }

    #[test]
    fn a_container_killed_at_the_end_of_its_grace_period_ignored_sigterm() {
        // busybox httpd as PID 1: deleted at 10:00:00 with 30 s of grace, killed at 10:00:30.
        let killed = deleted_pod("2026-01-01T10:00:30Z", 30, 137, "2026-01-01T10:00:30Z");
        assert_eq!(ignored_sigterm(&killed), Some(Duration::from_secs(30)));
        // An app that exits on SIGTERM: done a second after the delete.
        let stopped = deleted_pod("2026-01-01T10:00:30Z", 30, 0, "2026-01-01T10:00:01Z");
        assert_eq!(ignored_sigterm(&stopped), None);
        // Killed for another reason (out of memory) long before the grace period ended.
        let oom = deleted_pod("2026-01-01T10:00:30Z", 30, 137, "2026-01-01T10:00:02Z");
        assert_eq!(ignored_sigterm(&oom), None);
        let brief = deleted_pod("2026-01-01T10:00:02Z", 2, 137, "2026-01-01T10:00:02Z");
        assert_eq!(
            ignored_sigterm(&brief),
            None,
            "a 2 s grace period is nothing"
        );
    }
}
