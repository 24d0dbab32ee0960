//! What the rollout stage reports while it waits.

use std::time::Duration;

use super::conditions::Counts;
use super::timing::Slowness;

#[derive(Debug, Clone, PartialEq)]
pub enum RolloutEvent {
    /// Where a Deployment stands now; sent whenever any of it changes.
    Progress {
        deployment: String,
        counts: Counts,
        /// Whether `counts` are this rollout's: not until the controller has observed the
        /// applied spec (they are the previous rollout's), nor while the Deployment is missing.
        observed: bool,
        /// What it waits for, e.g. `1 old replica pending termination`.
        waiting_for: String,
        /// The newest event of its new pods, e.g. `Pulled: Container image … already present`.
        latest: Option<String>,
    },
    /// The wait stopped before the Deployment's rollout was complete (it failed, timed out, or
    /// was cut short); the outcome says why.
    Stopped { deployment: String },
    /// The Deployment's rollout is complete.
    Ready {
        deployment: String,
        elapsed: Duration,
    },
    /// A watch stream broke and is resumed.
    WatchResumed { error: String },
    /// The API server cannot be reached (said once per outage).
    ConnectionLost { server: String },
    /// It answers again, after `after`.
    ConnectionBack { server: String, after: Duration },
    /// `down`: this many pods of the release are still terminating.
    Terminating { pods: usize },
    /// Where the seconds went, when one cause is worth a line.
    Slow(Slowness),
}
