//! The words for the stages' one-line events (apply, release and lock, retries): each event
//! becomes one line at one level. The stages send facts; what they are called is decided here.

use crate::apply::{ApplyEvent, Removal};
use crate::release::ReleaseEvent;
use crate::rollout::Slowness;

use super::Level;

/// An apply or a removal, e.g. `Deployment/backend configured`.
pub fn apply(event: &ApplyEvent) -> (Level, String) {
    match event {
        ApplyEvent::Applied {
            key,
            change,
            dry_run,
        } => (Level::Info, format!("{key} {}", change.verb(*dry_run))),
        ApplyEvent::Removed {
            key,
            removal,
            dry_run,
        } => {
            let verb = match (removal, dry_run) {
                (Removal::Prune, false) => "pruned (no longer in the config)",
                (Removal::Prune, true) => "would be pruned (no longer in the config)",
                (Removal::Down, false) => "deleted",
                (Removal::Down, true) => "would be deleted",
            };
            (Level::Info, format!("{key} {verb}"))
        }
    }
}

/// What happened to the release's records and lock.
pub fn release(event: &ReleaseEvent) -> (Level, String) {
    match event {
        ReleaseEvent::RecordUnreadable {
            name,
            namespace,
            reason,
        } => (
            Level::Warning,
            format!(
                "the release record `{name}` is unreadable: {reason}; it is skipped (`kubectl delete secret {name} -n {namespace}` removes it)"
            ),
        ),
        ReleaseEvent::Abandoned { revision } => (
            Level::Warning,
            format!(
                "revision {revision} was left pending by a run that stopped; it is marked failed"
            ),
        ),
        ReleaseEvent::Uninstalled { revision } => (
            Level::Detail,
            format!("revision {revision} is marked uninstalled; `todo-deploy history` keeps it"),
        ),
        ReleaseEvent::LockIn { kind, name } => (
            Level::Detail,
            format!("release lock: {kind} `{name}`"),
        ),
        ReleaseEvent::LockTakenOver {
            previous,
            lease_seconds,
        } => (
            Level::Warning,
            format!(
                "taking over the expired lock of {previous} (not renewed for {lease_seconds}s)"
            ),
        ),
        ReleaseEvent::LockLost => (
            Level::Warning,
            "the release lock was taken over by another run; this run's changes may now overlap with it".to_owned(),
        ),
        ReleaseEvent::LockRenewalRetried { error } => (
            Level::Detail,
            format!("renewing the release lock failed, retrying: {error}"),
        ),
        ReleaseEvent::LockMayHaveExpired {
            lease_seconds,
            error,
        } => (
            Level::Warning,
            format!(
                "the release lock could not be renewed for {lease_seconds}s and may have expired: {error}"
            ),
        ),
    }
}

/// An API call about to be tried again.
pub fn retrying(
    what: &str,
    attempt: u32,
    attempts: u32,
    wait: std::time::Duration,
    error: &str,
) -> (Level, String) {
    (
        Level::Detail,
        format!(
            "retrying ({attempt}/{attempts}) to {what} in {:.1}s: {error}",
            wait.as_secs_f64()
        ),
    )
}

/// Where the seconds of a rollout went, and what would save them.
pub fn slowness(slowness: &Slowness) -> String {
    match slowness {
        Slowness::InitialDelay {
            deployment,
            ready_after,
            initial_delay,
            ..
        } => format!(
            "{deployment}: ready {}s after start, of which {}s `initialDelaySeconds`; a `startupProbe` would let it in as soon as it answers",
            ready_after.as_secs(),
            initial_delay.as_secs()
        ),
        Slowness::IgnoredSigterm {
            deployment,
            pod,
            grace,
        } => format!(
            "{deployment}: old pod `{pod}` took the full {}s grace period: the container does not stop on SIGTERM (trap it, or run the app as PID 1 so it gets the signal)",
            grace.as_secs()
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn slowness_names_the_cause_and_the_fix() {
        let delay = Slowness::InitialDelay {
            deployment: "backend".to_owned(),
            pod: "backend-1".to_owned(),
            ready_after: Duration::from_secs(12),
            initial_delay: Duration::from_secs(10),
        };
        assert_eq!(
            slowness(&delay),
            "backend: ready 12s after start, of which 10s `initialDelaySeconds`; a `startupProbe` would let it in as soon as it answers"
        );
        let killed = Slowness::IgnoredSigterm {
            deployment: "backend".to_owned(),
            pod: "backend-old".to_owned(),
            grace: Duration::from_secs(30),
        };
        assert!(
            slowness(&killed)
                .contains("took the full 30s grace period: the container does not stop on SIGTERM")
        );
    }
}
