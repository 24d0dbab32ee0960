//! The in-process control plane: one task that receives every stored change,
//! turns it into work items (deployment, replica set, scheduling, kubelet pod
//! sync, garbage collection, namespace, endpoints), runs them one at a time, wakes
//! itself with scaled timers for probes, back-offs and deadlines, and says
//! when it has handled every change so far.

pub mod deployment;
pub mod endpoints;
pub mod events;
pub mod gc;
pub mod kubelet;
pub mod namespace;
pub mod replicaset;
pub mod scheduler;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{mpsc, watch};

use crate::api::Api;
use crate::node::{Logs, NodeImages};
use crate::resources::{Resource, by_kind};
use crate::store::{WatchMsg, Watcher};
use crate::util::TimeScale;

/// One unit of work.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Work {
    Deployment(String, String),
    ReplicaSet(String, String),
    Schedule,
    Pod(String, String),
    Gc,
    Namespace(String),
    /// The Endpoints of every Service in a namespace.
    Endpoints(String),
}

/// The node the kubelet simulates.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub name: String,
    pub cpu: String,
    pub memory: String,
    pub pods: i64,
    /// Emit minikube's `MissingClusterDNS` warnings (the transcripts show them).
    pub missing_cluster_dns_events: bool,
}

/// Shared by all controllers.
pub struct Env {
    pub api: Arc<Api>,
    pub clock: TimeScale,
    pub images: NodeImages,
    pub logs: Logs,
    pub node: NodeSpec,
    pub recorder: events::Recorder,
    /// When each pod (by uid) last became Ready, precisely.
    pub ready_since: Mutex<HashMap<String, Instant>>,
    /// When each Deployment's (by uid) Progressing condition was last updated, precisely.
    pub progress_marks: Mutex<HashMap<String, Instant>>,
    work_tx: mpsc::UnboundedSender<Work>,
    wakeups: Mutex<HashMap<Work, Instant>>,
}

impl Env {
    /// Schedules `w` after a simulated duration.
    pub fn after(&self, sim: Duration, w: Work) {
        self.at(Instant::now() + self.clock.scaled(sim), w);
    }

    /// Schedules `w` at a real instant (keeps only the earliest pending wake-up).
    pub fn at(&self, at: Instant, w: Work) {
        {
            let mut wk = self.wakeups.lock().expect("wakeups mutex poisoned");
            if let Some(existing) = wk.get(&w)
                && *existing <= at
                && *existing > Instant::now()
            {
                return;
            }
            wk.insert(w.clone(), at);
        }
        let tx = self.work_tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
            let _ = tx.send(w);
        });
    }

    /// Queues `w` now.
    pub fn now(&self, w: Work) {
        let _ = self.work_tx.send(w);
    }

    pub fn res(&self, kind: &str) -> &'static Resource {
        by_kind(kind).unwrap_or(&crate::resources::RESOURCES[0])
    }
}

fn owner_of<'a>(obj: &'a Value, kind: &str) -> Option<&'a str> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(|a| a.as_array())
        .and_then(|a| {
            a.iter()
                .find(|r| r["kind"] == kind && r["controller"] == true)
        })
        .and_then(|r| r["name"].as_str())
}

fn meta<'a>(v: &'a Value, k: &str) -> &'a str {
    v.pointer(&format!("/metadata/{k}"))
        .and_then(|x| x.as_str())
        .unwrap_or("")
}

/// Starts the control plane; returns its task. `idle` gets the resourceVersion
/// up to which every change has been handled whenever the work queue runs dry.
pub fn start(
    api: Arc<Api>,
    clock: TimeScale,
    images: NodeImages,
    logs: Logs,
    node: NodeSpec,
    idle: watch::Sender<u64>,
) -> tokio::task::JoinHandle<()> {
    let (ch_tx, ch_rx) = mpsc::unbounded_channel::<WatchMsg>();
    let (work_tx, work_rx) = mpsc::unbounded_channel::<Work>();
    {
        let mut st = api.lock();
        let id = st.next_watcher;
        st.next_watcher += 1;
        st.watchers.push(Watcher {
            id,
            res: None,
            namespace: None,
            tx: ch_tx,
        });
    }
    let env = Arc::new(Env {
        api,
        clock: clock.clone(),
        images,
        logs,
        node,
        recorder: events::Recorder::new(clock.clone()),
        ready_since: Mutex::new(HashMap::new()),
        progress_marks: Mutex::new(HashMap::new()),
        work_tx,
        wakeups: Mutex::new(HashMap::new()),
    });
    tokio::spawn(run(env, ch_rx, work_rx, idle))
}

/// Pending work in order, each item once.
#[derive(Default)]
struct Queue {
    items: VecDeque<Work>,
    queued: HashSet<Work>,
}

impl Queue {
    fn push(&mut self, w: Work) {
        if self.queued.insert(w.clone()) {
            self.items.push_back(w);
        }
    }

    fn pop(&mut self) -> Option<Work> {
        let w = self.items.pop_front()?;
        self.queued.remove(&w);
        Some(w)
    }

    fn take(&mut self, m: WatchMsg) {
        if let WatchMsg::Change(c) = m {
            for w in route(&c) {
                self.push(w);
            }
        }
    }

    /// Queues everything already received.
    fn drain(
        &mut self,
        changes: &mut mpsc::UnboundedReceiver<WatchMsg>,
        work: &mut mpsc::UnboundedReceiver<Work>,
    ) {
        while let Ok(m) = changes.try_recv() {
            self.take(m);
        }
        while let Ok(w) = work.try_recv() {
            self.push(w);
        }
    }
}

/// The work loop: one item at a time; when nothing is queued, it publishes
/// the resourceVersion it has handled every change up to, then waits.
async fn run(
    env: Arc<Env>,
    mut changes: mpsc::UnboundedReceiver<WatchMsg>,
    mut work: mpsc::UnboundedReceiver<Work>,
    idle: watch::Sender<u64>,
) {
    let mut kubelet = kubelet::Kubelet::default();
    let mut queue = Queue::default();
    loop {
        if queue.items.is_empty() {
            // Every change up to `rv` was sent before this read: draining takes them all.
            let rv = env.api.lock().rv;
            queue.drain(&mut changes, &mut work);
            if queue.items.is_empty() {
                idle.send_replace(rv);
                tokio::select! {
                    m = changes.recv() => match m {
                        Some(m) => queue.take(m),
                        None => return,
                    },
                    w = work.recv() => match w {
                        Some(w) => queue.push(w),
                        None => return,
                    },
                }
            }
        }
        queue.drain(&mut changes, &mut work);
        let Some(w) = queue.pop() else { continue };
        env.wakeups
            .lock()
            .expect("wakeups mutex poisoned")
            .remove(&w);
        match &w {
            Work::Deployment(ns, n) => deployment::sync(&env, ns, n),
            Work::ReplicaSet(ns, n) => replicaset::sync(&env, ns, n),
            Work::Schedule => scheduler::sync(&env),
            Work::Pod(ns, n) => kubelet.sync(&env, ns, n),
            Work::Gc => gc::sync(&env),
            Work::Namespace(n) => namespace::sync(&env, n),
            Work::Endpoints(ns) => endpoints::sync(&env, ns),
        }
        tokio::task::yield_now().await;
    }
}

/// The work a change causes.
fn route(c: &crate::store::Change) -> Vec<Work> {
    let o = &c.object;
    let ns = c.namespace.clone();
    let name = meta(o, "name").to_string();
    let mut out = Vec::new();
    let deleting = o
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|d| !d.is_null());
    if c.kind == "DELETED" || deleting {
        out.push(Work::Gc);
    }
    if c.kind == "DELETED" && !ns.is_empty() {
        out.push(Work::Namespace(ns.clone()));
    }
    match c.res.kind {
        "Deployment" => out.push(Work::Deployment(ns, name)),
        "ReplicaSet" => {
            if let Some(d) = owner_of(o, "Deployment") {
                out.push(Work::Deployment(ns.clone(), d.to_string()));
            }
            out.push(Work::ReplicaSet(ns, name));
        }
        "Pod" => {
            if let Some(rs) = owner_of(o, "ReplicaSet") {
                out.push(Work::ReplicaSet(ns.clone(), rs.to_string()));
                // Recreate waits for old pods to be gone: their deletion wakes the Deployment.
                let hash = o
                    .pointer("/metadata/labels/pod-template-hash")
                    .and_then(|h| h.as_str());
                if let (true, Some(h)) = (c.kind == "DELETED", hash)
                    && let Some(d) = rs.strip_suffix(&format!("-{h}"))
                {
                    out.push(Work::Deployment(ns.clone(), d.to_string()));
                }
            }
            let node = o
                .pointer("/spec/nodeName")
                .and_then(|n| n.as_str())
                .unwrap_or("");
            if node.is_empty() || c.kind == "DELETED" {
                out.push(Work::Schedule);
            }
            if !node.is_empty() {
                out.push(Work::Pod(ns, name));
            }
        }
        "Namespace" => out.push(Work::Namespace(name)),
        _ => {}
    }
    // A pod's readiness or labels, a Service's selector or ports, or Endpoints someone deleted:
    // the namespace's Endpoints are computed again.
    let endpoints_changed = c.kind == "DELETED" && c.res.kind == "Endpoints";
    if matches!(c.res.kind, "Pod" | "Service") || endpoints_changed {
        out.push(Work::Endpoints(c.namespace.clone()));
    }
    out
}
