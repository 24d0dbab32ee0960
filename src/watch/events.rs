//! What the `dev` loop reports: the profile it runs, what it watches, which changes it saw
//! (and ignored), each service's state as an iteration takes it through build, load and
//! rollout, the problems it shows before it goes on watching, and how it ends.

use std::path::PathBuf;
use std::time::Duration;

use crate::profile::ProfileChange;

/// Where a service stands in the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceState {
    /// Nothing to do: waiting for a change.
    Idle,
    Building,
    Loading,
    RollingOut,
    Ready,
    Failed,
}

/// An error shown while the loop goes on: what went wrong, its causes, and the fixes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub headline: String,
    pub causes: Vec<String>,
    pub hints: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DevEvent {
    /// The dev profile is in force with these changes (none: the config needed none).
    Profile(Vec<ProfileChange>),
    /// `--as-configured`: the configuration as it is.
    AsConfigured,
    /// Watching the services' build contexts and these configuration files.
    Watching {
        services: Vec<String>,
        files: Vec<PathBuf>,
    },
    /// Files changed: the services whose inputs they are, and whether the configuration did.
    Changed {
        paths: Vec<PathBuf>,
        services: Vec<String>,
        config: bool,
    },
    /// Only files the services' `.dockerignore` leaves out changed: nothing to do.
    Ignored { paths: Vec<PathBuf> },
    /// Files changed, but no image input and no object did (e.g. saved unchanged).
    NothingChanged,
    /// A service entered `state`; `took` is the length of the iteration that ended in it.
    State {
        service: String,
        state: ServiceState,
        at: jiff::Timestamp,
        took: Option<Duration>,
    },
    /// An error; nothing more of this iteration is done, and the loop goes on watching.
    /// `applied`: the iteration's objects were applied before it (a failed rollout, which dev
    /// leaves in place); otherwise nothing of it reached the cluster.
    Problem { report: Report, applied: bool },
    /// A change came while the rollout was waited for: the wait stops, the next iteration
    /// starts.
    Superseded,
    /// An iteration ended.
    Done {
        iteration: u32,
        elapsed: Duration,
        ok: bool,
    },
    /// The watch failed to read some changes (the watcher's own error).
    WatchError { message: String },
    /// Ctrl-C: the loop stops; the release stays (or is removed with `--cleanup`).
    Stopping { cleanup: bool },
    /// The run's revision was recorded (`deployed` or `failed`).
    Recorded { revision: u32, status: String },
}
