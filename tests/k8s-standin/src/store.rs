//! The object store: every object by (resource, namespace, name), one global
//! resourceVersion counter, the bounded history of watch events (so a too-old
//! resourceVersion really is too old), live watch subscriptions, and the pod
//! history tests read.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;

use crate::resources::Resource;

/// A stored object's key: resource plural+group, namespace ("" if cluster-scoped), name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub group: &'static str,
    pub plural: &'static str,
    pub namespace: String,
    pub name: String,
}

impl Key {
    pub fn new(res: &'static Resource, ns: &str, name: &str) -> Key {
        Key {
            group: res.group,
            plural: res.plural,
            namespace: if res.namespaced {
                ns.to_string()
            } else {
                String::new()
            },
            name: name.to_string(),
        }
    }
}

/// One change, as watches deliver it.
#[derive(Debug, Clone)]
pub struct Change {
    pub rv: u64,
    pub res: &'static Resource,
    pub namespace: String,
    /// ADDED, MODIFIED or DELETED.
    pub kind: &'static str,
    /// The object as stored (for DELETED: the last state, at the deletion's resourceVersion).
    pub object: Value,
    /// The previous state, for MODIFIED and DELETED.
    pub old: Option<Value>,
}

/// What a watch subscription receives.
#[derive(Debug, Clone)]
pub enum WatchMsg {
    Change(Arc<Change>),
    /// End the stream abruptly (fault injection).
    Cut,
}

/// A live watch.
pub struct Watcher {
    pub id: u64,
    /// `None` watches every resource (controllers).
    pub res: Option<&'static Resource>,
    pub namespace: Option<String>,
    pub tx: UnboundedSender<WatchMsg>,
}

/// One observed state of a pod, for [`crate::StandIn::pod_history`].
#[derive(Debug, Clone, PartialEq)]
pub struct PodRecord {
    /// When the change was stored.
    pub at: std::time::Instant,
    /// Wall-clock RFC 3339 (microseconds) of the change.
    pub time: String,
    pub namespace: String,
    pub name: String,
    /// The owning Deployment (from the ReplicaSet owner), if any.
    pub deployment: Option<String>,
    /// The owning ReplicaSet, if any.
    pub replicaset: Option<String>,
    /// Ready condition is True.
    pub ready: bool,
    /// `status.phase`, or "Deleted" once gone.
    pub phase: String,
    /// Whether `deletionTimestamp` is set.
    pub terminating: bool,
}

/// The mutable state behind the server's lock.
pub struct State {
    pub objects: BTreeMap<Key, Value>,
    pub rv: u64,
    pub history: VecDeque<Arc<Change>>,
    pub history_limit: usize,
    /// The newest resourceVersion dropped from history; watches from below it get 410.
    pub compacted: u64,
    pub watchers: Vec<Watcher>,
    pub next_watcher: u64,
    pub pod_history: Vec<PodRecord>,
}

impl State {
    pub fn new(history_limit: usize) -> State {
        State {
            objects: BTreeMap::new(),
            rv: 100,
            history: VecDeque::new(),
            history_limit,
            compacted: 100,
            watchers: Vec::new(),
            next_watcher: 1,
            pod_history: Vec::new(),
        }
    }

    /// The next resourceVersion.
    pub fn bump(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    /// Records a change: history, pod history, and fan-out to watchers.
    pub fn publish(&mut self, change: Change) {
        if change.res.kind == "Pod" {
            self.record_pod(&change);
        }
        let c = Arc::new(change);
        self.history.push_back(c.clone());
        self.trim_history();
        self.watchers.retain(|w| {
            let res_ok = w.res.is_none_or(|r| r == c.res);
            let ns_ok = w.namespace.as_ref().is_none_or(|n| *n == c.namespace);
            if res_ok && ns_ok {
                w.tx.send(WatchMsg::Change(c.clone())).is_ok()
            } else {
                !w.tx.is_closed()
            }
        });
    }

    pub fn trim_history(&mut self) {
        while self.history.len() > self.history_limit {
            if let Some(old) = self.history.pop_front() {
                self.compacted = old.rv;
            }
        }
    }

    fn record_pod(&mut self, c: &Change) {
        let o = &c.object;
        let name = o
            .pointer("/metadata/name")
            .and_then(|n| n.as_str())
            .unwrap_or("")
            .to_string();
        let rs = o
            .pointer("/metadata/ownerReferences")
            .and_then(|a| a.as_array())
            .and_then(|a| a.iter().find(|r| r["kind"] == "ReplicaSet"))
            .and_then(|r| r["name"].as_str())
            .map(String::from);
        let hash = o
            .pointer("/metadata/labels/pod-template-hash")
            .and_then(|h| h.as_str());
        let deployment = match (&rs, hash) {
            (Some(rs), Some(h)) => rs.strip_suffix(&format!("-{h}")).map(String::from),
            _ => None,
        };
        let ready = o
            .pointer("/status/conditions")
            .and_then(|c| c.as_array())
            .is_some_and(|a| {
                a.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            });
        let deleted = c.kind == "DELETED";
        let rec = PodRecord {
            at: std::time::Instant::now(),
            time: crate::util::now_micro(),
            namespace: c.namespace.clone(),
            name: name.clone(),
            deployment,
            replicaset: rs,
            ready: ready && !deleted,
            phase: if deleted {
                "Deleted".into()
            } else {
                o.pointer("/status/phase")
                    .and_then(|p| p.as_str())
                    .unwrap_or("")
                    .to_string()
            },
            terminating: o
                .pointer("/metadata/deletionTimestamp")
                .is_some_and(|d| !d.is_null()),
        };
        let last = self
            .pod_history
            .iter()
            .rev()
            .find(|r| r.name == name && r.namespace == c.namespace);
        let same = last.is_some_and(|l| {
            l.ready == rec.ready
                && l.phase == rec.phase
                && l.terminating == rec.terminating
                && l.deployment == rec.deployment
        });
        if !same {
            self.pod_history.push(rec);
        }
    }
}
