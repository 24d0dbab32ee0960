//! Whether the API server answers while the wait runs: lost when a watch cannot be restarted
//! because the server cannot be reached, back when it answers a version request again (a watch
//! event may be one buffered before the outage, so only an answer counts). Said once each way,
//! however long the outage and however many watches notice it.

use std::time::Duration;

use kube::Client;

use super::RolloutEvent;
use crate::cluster::{self, Cluster};
use crate::progress::Events;

/// A watch stream's failure, as the wait needs to know it.
#[derive(Debug, Clone)]
pub struct WatchFault {
    pub message: String,
    /// A (re)start of the watch could not reach the server: the connection is lost, not just
    /// one stream cut.
    pub unreachable: bool,
}

impl WatchFault {
    pub fn new(error: &kube::runtime::watcher::Error) -> WatchFault {
        use kube::runtime::watcher::Error;
        let unreachable = match error {
            Error::InitialListFailed(error) | Error::WatchStartFailed(error) => {
                cluster::is_unreachable(error)
            }
            Error::WatchFailed(_) | Error::WatchError(_) | Error::NoResourceVersion => false,
        };
        WatchFault {
            message: error.to_string(),
            unreachable,
        }
    }
}

/// The connection as the wait last saw it.
#[derive(Debug, Default)]
pub struct Link {
    lost: Option<Lost>,
}

#[derive(Debug, Clone, Copy)]
struct Lost {
    since: jiff::Timestamp,
    at: tokio::time::Instant,
}

/// How often a lost server is asked whether it is back, at most.
const PROBE_MAX: Duration = Duration::from_secs(5);

impl Link {
    /// Since when the server has been unreachable, if it is.
    pub fn lost_since(&self) -> Option<jiff::Timestamp> {
        self.lost.map(|l| l.since)
    }

    /// Notes a watch fault. One that says the server is unreachable is checked with a request
    /// of our own (a watch may report a failure from before the server came back), and the
    /// first that holds is reported.
    pub async fn observe(&mut self, fault: &WatchFault, cluster: &Cluster, events: &Events) {
        if !fault.unreachable {
            events.send(RolloutEvent::WatchResumed {
                error: fault.message.clone(),
            });
            return;
        }
        if self.lost.is_none() && cluster.client.apiserver_version().await.is_err() {
            let now = jiff::Timestamp::now();
            let since = now.round(jiff::Unit::Second).unwrap_or(now);
            self.lost = Some(Lost {
                since,
                at: tokio::time::Instant::now(),
            });
            events.send(RolloutEvent::ConnectionLost {
                server: cluster.server.clone(),
            });
        }
    }

    /// Completes once a lost server answers again (never while it is not lost).
    pub async fn until_back(&self, client: &Client) {
        if self.lost.is_none() {
            return std::future::pending().await;
        }
        let mut delay = Duration::from_millis(250);
        loop {
            tokio::time::sleep(delay).await;
            if client.apiserver_version().await.is_ok() {
                return;
            }
            delay = (delay * 2).min(PROBE_MAX);
        }
    }

    /// A watch brought news while the server was lost: it may be back, or the news may have
    /// been on its way before the outage. Asks the server, and says it is back if it answers.
    pub async fn confirm(&mut self, cluster: &Cluster, events: &Events) {
        if self.lost.is_some() && cluster.client.apiserver_version().await.is_ok() {
            self.back(&cluster.server, events);
        }
    }

    /// The server answers again: say so, once.
    pub fn back(&mut self, server: &str, events: &Events) {
        if let Some(lost) = self.lost.take() {
            events.send(RolloutEvent::ConnectionBack {
                server: server.to_owned(),
                after: lost.at.elapsed(),
            });
        }
    }
}
