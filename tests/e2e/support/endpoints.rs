//! Every state a namespace's Endpoints go through while a scenario runs, from a watch that starts
//! at a list (so the state before the run counts too) and resumes where it stopped: what a Service
//! really sent traffic to, on the stand-in (its endpoints controller) and on a real cluster
//! alike. A scenario asks for the fewest ready pods each Service ever listed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Endpoints;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};

use super::cluster::Env;

/// The ready pods an Endpoints object lists.
pub fn ready(endpoints: &Endpoints) -> usize {
    endpoints
        .subsets
        .iter()
        .flatten()
        .map(|s| s.addresses.as_ref().map_or(0, Vec::len))
        .sum()
}

type Log = Arc<Mutex<Vec<(String, usize)>>>;

/// A running record of (Service, ready pods) states, in order.
pub struct Recorder {
    log: Log,
    task: tokio::task::JoinHandle<()>,
    api: Api<Endpoints>,
}

impl Recorder {
    /// Starts recording: the current Endpoints, then every change.
    pub async fn start(env: &Env) -> Recorder {
        let api: Api<Endpoints> = Api::namespaced(env.client.clone(), &env.namespace);
        let listed = api
            .list(&ListParams::default())
            .await
            .expect("list Endpoints");
        let log: Log = Arc::new(Mutex::new(
            listed
                .items
                .iter()
                .map(|e| (e.metadata.name.clone().unwrap_or_default(), ready(e)))
                .collect(),
        ));
        let version = listed.metadata.resource_version.unwrap_or_default();
        let task = tokio::spawn(follow(api.clone(), version, log.clone()));
        Recorder { log, task, api }
    }

    /// Stops once the record has caught up with what the Endpoints are now, and returns the
    /// fewest ready pods each Service listed, and the states it went through.
    pub async fn stop(self, env: &Env) -> (BTreeMap<String, usize>, Vec<(String, usize)>) {
        if let Some(standin) = env.standin() {
            // What the run's last changes cause (an endpoints update) is part of it.
            standin.settled().await;
        }
        env.eventually(
            "the Endpoints record to catch up",
            Duration::from_secs(30),
            || async {
                let now = self
                    .api
                    .list(&ListParams::default())
                    .await
                    .expect("list Endpoints");
                let log = self.log.lock().expect("the log").clone();
                now.items.iter().all(|e| {
                    let name = e.metadata.name.clone().unwrap_or_default();
                    log.iter().rev().find(|(n, _)| *n == name).map(|(_, r)| *r) == Some(ready(e))
                })
            },
        )
        .await;
        self.task.abort();
        let log = self.log.lock().expect("the log").clone();
        let mut fewest: BTreeMap<String, usize> = BTreeMap::new();
        for (name, ready) in &log {
            let entry = fewest.entry(name.clone()).or_insert(*ready);
            *entry = (*entry).min(*ready);
        }
        (fewest, log)
    }
}

async fn follow(api: Api<Endpoints>, mut version: String, log: Log) {
    loop {
        let params = WatchParams::default().timeout(290);
        let Ok(stream) = api.watch(&params, &version).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let mut stream = stream.boxed();
        while let Ok(Some(event)) = stream.try_next().await {
            let (endpoints, deleted) = match event {
                WatchEvent::Added(e) | WatchEvent::Modified(e) => (e, false),
                WatchEvent::Deleted(e) => (e, true),
                WatchEvent::Bookmark(b) => {
                    version = b.metadata.resource_version;
                    continue;
                }
                WatchEvent::Error(_) => break,
            };
            version = endpoints
                .metadata
                .resource_version
                .clone()
                .unwrap_or(version);
            let name = endpoints.metadata.name.clone().unwrap_or_default();
            let ready = if deleted { 0 } else { ready(&endpoints) };
            log.lock().expect("the log").push((name, ready));
        }
    }
}
