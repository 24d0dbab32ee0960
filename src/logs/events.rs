//! What the logs stage reports: the lines of the release's containers, each with the service and
//! the pod it came from, and what it starts and stops following.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub enum LogEvent {
    /// One line of a container's log, secret values already replaced by `***`.
    Line {
        service: String,
        pod: String,
        container: String,
        text: String,
    },
    /// A container instance is followed from now on (`restarts` is its restart count).
    Following {
        service: String,
        pod: String,
        container: String,
        restarts: i32,
    },
    /// A pod of the release is gone. `ignored_sigterm` is its grace period when its container
    /// ran it out and was killed: the process does not stop on SIGTERM.
    PodGone {
        service: String,
        pod: String,
        ignored_sigterm: Option<Duration>,
    },
    /// A container's log cannot be read (it has not started, it never ran before, the server
    /// refused).
    Unavailable {
        service: String,
        pod: String,
        container: String,
        reason: String,
    },
    /// No pod of the selection exists (without `-f`: there is nothing to show).
    NoPods { services: Vec<String> },
}
