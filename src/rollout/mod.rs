//! The wait: after an apply, follow the Deployments until their new pods are ready, driven by
//! watches (Deployments, ReplicaSets, Pods, Events) and never by polling. Every change is judged
//! again: done when every rollout is complete as `kubectl rollout status` means it; failed as soon
//! as a pod shows a problem that waiting cannot fix; otherwise until the timeout or Ctrl-C.
//! Dropped watches resume (kube-runtime re-lists after a `410 Gone`).

pub mod conditions;
pub mod diagnosis;
pub mod events;
mod link;
pub mod timing;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event as PodEvent, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, LogParams};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::time::Instant;

pub use conditions::{Counts, RolloutState};
pub use diagnosis::Problem;
pub use events::RolloutEvent;
use link::{Link, WatchFault};
pub use timing::Slowness;

use crate::cluster::{self, Cluster};
use crate::progress::{Event, Events};
use crate::render::labels;

/// What to wait for.
#[derive(Debug, Clone)]
pub struct Target {
    pub namespace: String,
    pub release: String,
    pub deployments: Vec<String>,
    pub timeout: Duration,
}

/// Where one Deployment stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Standing {
    pub deployment: String,
    pub state: RolloutState,
    pub counts: Counts,
    pub problem: Option<Problem>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Ready,
    /// A rollout cannot succeed; the standings say why.
    Failed(Vec<Standing>),
    TimedOut(Vec<Standing>),
    Interrupted(Vec<Standing>),
    /// The API server could not be reached when the timeout passed; the standings are the
    /// last seen.
    Unreachable {
        since: jiff::Timestamp,
        standings: Vec<Standing>,
    },
}

impl Outcome {
    /// Whether the rollout failed because a node does not have an image.
    pub fn lacks_an_image(&self) -> bool {
        let (Outcome::Failed(standings) | Outcome::TimedOut(standings)) = self else {
            return false;
        };
        standings
            .iter()
            .any(|s| matches!(s.problem, Some(Problem::ImageMissing { .. })))
    }
}

/// Lines of the previous container's log shown for a crash loop.
const LOG_LINES: i64 = 20;

struct Stores {
    deployments: Store<Deployment>,
    replica_sets: Store<ReplicaSet>,
    pods: Store<Pod>,
    events: Store<PodEvent>,
}

impl Stores {
    /// Completes once the Deployments, ReplicaSets and pods have been listed. Events only
    /// explain: a cluster that will not list them must not keep the wait from ending.
    async fn listed(&self) {
        let _ = self.deployments.wait_until_ready().await;
        let _ = self.replica_sets.wait_until_ready().await;
        let _ = self.pods.wait_until_ready().await;
    }
}

/// Waits until the target's Deployments are rolled out, one fails, the timeout passes or
/// `cancel` completes. A server that cannot be reached is waited for until the timeout.
pub async fn wait(
    cluster: &Cluster,
    target: &Target,
    cancel: impl Future<Output = ()>,
    events: &Events,
) -> Outcome {
    let outcome = follow(cluster, target, cancel, events).await;
    // Every Deployment it did not see through is said to have stopped, so that nothing shown
    // goes on waiting for it.
    if let Outcome::Failed(standings)
    | Outcome::TimedOut(standings)
    | Outcome::Interrupted(standings)
    | Outcome::Unreachable { standings, .. } = &outcome
    {
        let unfinished = standings
            .iter()
            .filter(|s| s.state != RolloutState::Complete);
        for standing in unfinished {
            events.send(RolloutEvent::Stopped {
                deployment: standing.deployment.clone(),
            });
        }
    }
    outcome
}

/// The rollout as the apply's answers already show it: `Some(Ready)`, each Deployment's
/// `Ready` said, when every Deployment of `target` is among `applied` and complete there (the
/// controller observed its generation, every replica updated and available), as a `up` that
/// changed nothing finds them; then no watch is opened. `None` leaves it to [`wait`]. The
/// answer is the object as stored at that moment: the same the wait's first list would show.
pub fn complete_in(target: &Target, applied: &[Deployment], events: &Events) -> Option<Outcome> {
    let complete = target.deployments.iter().all(|name| {
        let found = applied
            .iter()
            .find(|d| d.metadata.name.as_deref() == Some(name.as_str()));
        conditions::rollout_state(found) == RolloutState::Complete
    });
    if !complete {
        return None;
    }
    for name in &target.deployments {
        events.send(Event::Rollout(RolloutEvent::Ready {
            deployment: name.clone(),
            elapsed: Duration::ZERO,
        }));
    }
    Some(Outcome::Ready)
}

/// The wait itself: the watches, judged at every change.
async fn follow(
    cluster: &Cluster,
    target: &Target,
    cancel: impl Future<Output = ()>,
    events: &Events,
) -> Outcome {
    let started = Instant::now();
    let deadline = deadline(started, target.timeout);
    let (stores, mut changes, driver) = watch(cluster, target);
    let _driver = AbortOnDrop(driver);
    tokio::pin!(cancel);

    tokio::select! {
        () = stores.listed() => {}
        _ = tokio::time::sleep_until(deadline) => {
            return Outcome::TimedOut(standings(&stores, target));
        }
        _ = &mut cancel => return Outcome::Interrupted(standings(&stores, target)),
    }

    let mut link = Link::default();
    let mut shown: BTreeMap<String, RolloutEvent> = BTreeMap::new();
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut killed: BTreeSet<String> = BTreeSet::new();
    loop {
        let current = standings(&stores, target);
        report(&current, &stores, started, &mut shown, &mut done, events);
        explain_stops(&stores, &mut killed, events);
        if current.iter().all(|s| s.state == RolloutState::Complete) {
            return Outcome::Ready;
        }
        if is_failed(&current, &stores) {
            return Outcome::Failed(with_logs(cluster, &target.namespace, current, events).await);
        }
        tokio::select! {
            change = changes.recv() => match change {
                Some(Ok(())) => link.confirm(cluster, events).await,
                Some(Err(fault)) => link.observe(&fault, cluster, events).await,
                None => return Outcome::TimedOut(current),
            },
            _ = link.until_back(&cluster.client) => link.back(&cluster.server, events),
            _ = tokio::time::sleep_until(deadline) => {
                if let Some(since) = link.lost_since() {
                    return Outcome::Unreachable { since, standings: current };
                }
                let current = standings(&stores, target);
                return Outcome::TimedOut(with_logs(cluster, &target.namespace, current, events).await);
            }
            _ = &mut cancel => return Outcome::Interrupted(standings(&stores, target)),
        }
        // Judge a burst of changes once.
        while let Ok(change) = changes.try_recv() {
            match change {
                Ok(()) => link.confirm(cluster, events).await,
                Err(fault) => link.observe(&fault, cluster, events).await,
            }
        }
    }
}

/// `timeout` after `start`, or as far ahead as a clock can count: a timeout is bounded where
/// it is parsed, but a deadline must never overflow.
fn deadline(start: Instant, timeout: Duration) -> Instant {
    start
        .checked_add(timeout)
        .unwrap_or_else(|| start + Duration::from_secs(86_400 * 365))
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts the four watches; each change to any store arrives on the channel.
fn watch(
    cluster: &Cluster,
    target: &Target,
) -> (
    Stores,
    tokio::sync::mpsc::UnboundedReceiver<Result<(), WatchFault>>,
    tokio::task::JoinHandle<()>,
) {
    let client = cluster.client.clone();
    let namespace = target.namespace.as_str();
    let selector = watcher::Config::default().labels(&labels::release_selector(&target.release));
    let (deployments, deployment_writer) = reflector::store::<Deployment>();
    let (replica_sets, replica_set_writer) = reflector::store::<ReplicaSet>();
    let (pods, pod_writer) = reflector::store::<Pod>();
    let (pod_events, event_writer) = reflector::store::<PodEvent>();
    fn unit<T>(item: Result<T, watcher::Error>) -> Result<(), WatchFault> {
        item.map(|_| ()).map_err(|e| WatchFault::new(&e))
    }
    let streams = vec![
        reflector::reflector(
            deployment_writer,
            watcher(
                Api::<Deployment>::namespaced(client.clone(), namespace),
                selector.clone(),
            ),
        )
        .default_backoff()
        .map(unit)
        .boxed(),
        reflector::reflector(
            replica_set_writer,
            watcher(
                Api::<ReplicaSet>::namespaced(client.clone(), namespace),
                selector.clone(),
            ),
        )
        .default_backoff()
        .map(unit)
        .boxed(),
        reflector::reflector(
            pod_writer,
            watcher(Api::<Pod>::namespaced(client.clone(), namespace), selector),
        )
        .default_backoff()
        .map(unit)
        .boxed(),
        // Events carry no labels of ours; they are matched to pods by uid.
        reflector::reflector(
            event_writer,
            watcher(
                Api::<PodEvent>::namespaced(client, namespace),
                watcher::Config::default(),
            ),
        )
        .default_backoff()
        .map(unit)
        .boxed(),
    ];
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut merged = futures::stream::select_all(streams);
        while let Some(item) = merged.next().await {
            if sender.send(item).is_err() {
                break;
            }
        }
    });
    let stores = Stores {
        deployments,
        replica_sets,
        pods,
        events: pod_events,
    };
    (stores, receiver, driver)
}

/// Where every target Deployment stands, with the most telling problem of its new pods.
fn standings(stores: &Stores, target: &Target) -> Vec<Standing> {
    let events = stores.events.state();
    let events: Vec<&PodEvent> = events.iter().map(Arc::as_ref).collect();
    target
        .deployments
        .iter()
        .map(|name| {
            let key = ObjectRef::new(name).within(&target.namespace);
            let deployment = stores.deployments.get(&key);
            let state = conditions::rollout_state(deployment.as_deref());
            let counts = deployment
                .as_deref()
                .map(conditions::counts)
                .unwrap_or_default();
            // Until the controller has observed the new spec, the current ReplicaSet is still the
            // old one: its pods say nothing about this rollout.
            let problem = if matches!(
                state,
                RolloutState::Complete | RolloutState::NotObserved | RolloutState::Missing
            ) {
                None
            } else {
                deployment.as_deref().and_then(|d| {
                    new_pods(stores, d)
                        .iter()
                        .filter_map(|pod| diagnosis::diagnose(pod, &events))
                        .min_by_key(|p| !p.is_terminal())
                })
            };
            Standing {
                deployment: name.clone(),
                state,
                counts,
                problem,
            }
        })
        .collect()
}

/// The pods of the Deployment's current ReplicaSet: the one whose revision is the Deployment's.
fn new_pods(stores: &Stores, deployment: &Deployment) -> Vec<Arc<Pod>> {
    let revision = |annotations: Option<&BTreeMap<String, String>>| {
        annotations
            .and_then(|a| a.get("deployment.kubernetes.io/revision"))
            .cloned()
    };
    let Some(current) = revision(deployment.metadata.annotations.as_ref()) else {
        return Vec::new();
    };
    let owned_by = |owners: &Option<Vec<OwnerReference>>, uid: &Option<String>| {
        owners
            .iter()
            .flatten()
            .any(|owner| Some(&owner.uid) == uid.as_ref())
    };
    let current_set = stores.replica_sets.state().into_iter().find(|rs| {
        owned_by(&rs.metadata.owner_references, &deployment.metadata.uid)
            && revision(rs.metadata.annotations.as_ref()) == Some(current.clone())
    });
    let Some(current_set) = current_set else {
        return Vec::new();
    };
    stores
        .pods
        .state()
        .into_iter()
        .filter(|pod| owned_by(&pod.metadata.owner_references, &current_set.metadata.uid))
        .collect()
}

/// Failed: a deadline passed, a problem cannot go away by waiting, or a pod is unschedulable
/// while nothing else could still free room for it.
fn is_failed(current: &[Standing], stores: &Stores) -> bool {
    if current
        .iter()
        .any(|s| matches!(s.state, RolloutState::DeadlineExceeded { .. }))
    {
        return true;
    }
    if current
        .iter()
        .any(|s| s.problem.as_ref().is_some_and(Problem::is_terminal))
    {
        return true;
    }
    let stuck = |s: &Standing| {
        s.state == RolloutState::Complete || s.problem.as_ref().is_some_and(Problem::is_terminal)
    };
    let unschedulable = current
        .iter()
        .any(|s| matches!(s.problem, Some(Problem::Unschedulable { .. })));
    let others_settled = current
        .iter()
        .filter(|s| !matches!(s.problem, Some(Problem::Unschedulable { .. })))
        .all(stuck);
    let terminating = stores
        .pods
        .state()
        .iter()
        .any(|p| p.metadata.deletion_timestamp.is_some());
    unschedulable && others_settled && !terminating
}

/// Replaces every occurrence of a secret value in crash-loop log lines with `***`: an app that
/// logs its configuration must not put a Secret's value on the user's terminal.
pub fn redact_logs(standings: &mut [Standing], secrets: &[&str]) {
    for standing in standings {
        if let Some(Problem::CrashLoop { logs, .. }) = &mut standing.problem {
            for line in logs.iter_mut() {
                for secret in secrets.iter().filter(|s| !s.is_empty()) {
                    *line = line.replace(secret, "***");
                }
            }
        }
    }
}

/// Adds the previous container's last log lines to crash-loop problems.
async fn with_logs(
    cluster: &Cluster,
    namespace: &str,
    mut current: Vec<Standing>,
    events: &Events,
) -> Vec<Standing> {
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), namespace);
    for standing in &mut current {
        if let Some(Problem::CrashLoop {
            pod,
            container,
            logs,
            ..
        }) = &mut standing.problem
        {
            let params = LogParams {
                container: Some(container.clone()),
                previous: true,
                tail_lines: Some(LOG_LINES),
                ..Default::default()
            };
            *logs =
                match cluster::retrying(events, "read the log", || pods.logs(pod, &params)).await {
                    Ok(text) => text.lines().map(str::to_owned).collect(),
                    Err(error) => vec![format!(
                        "(the log is not available: {})",
                        cluster::short(&error)
                    )],
                };
        }
    }
    current
}

/// Sends progress for every Deployment whose picture changed, and `Ready` once per Deployment.
fn report(
    current: &[Standing],
    stores: &Stores,
    started: Instant,
    shown: &mut BTreeMap<String, RolloutEvent>,
    done: &mut BTreeSet<String>,
    events: &Events,
) {
    let pod_events = stores.events.state();
    let pod_events: Vec<&PodEvent> = pod_events.iter().map(Arc::as_ref).collect();
    for standing in current {
        if standing.state == RolloutState::Complete {
            if done.insert(standing.deployment.clone()) {
                events.send(Event::Rollout(RolloutEvent::Ready {
                    deployment: standing.deployment.clone(),
                    elapsed: started.elapsed(),
                }));
                if let Some(slowness) = slow_start(stores, &standing.deployment) {
                    events.send(RolloutEvent::Slow(slowness));
                }
            }
            continue;
        }
        let key_deployment = stores
            .deployments
            .state()
            .into_iter()
            .find(|d| d.metadata.name.as_deref() == Some(standing.deployment.as_str()));
        let latest = key_deployment.and_then(|d| {
            new_pods(stores, &d)
                .iter()
                .filter_map(|pod| diagnosis::latest_event(pod, &pod_events))
                .max_by_key(|e| e.last_timestamp.as_ref().map(|t| t.0.as_second()))
                .map(|e| {
                    format!(
                        "{}: {}",
                        e.reason.clone().unwrap_or_default(),
                        e.message.clone().unwrap_or_default()
                    )
                })
        });
        let waiting_for = match &standing.state {
            RolloutState::Missing => "the Deployment to exist".to_owned(),
            RolloutState::NotObserved => "the controller to observe the new spec".to_owned(),
            RolloutState::Progressing { waiting_for } => waiting_for.clone(),
            RolloutState::DeadlineExceeded { message } => message.clone(),
            RolloutState::Complete => String::new(),
        };
        let event = RolloutEvent::Progress {
            deployment: standing.deployment.clone(),
            counts: standing.counts,
            observed: !matches!(
                standing.state,
                RolloutState::Missing | RolloutState::NotObserved
            ),
            waiting_for,
            latest,
        };
        if shown.get(&standing.deployment) != Some(&event) {
            shown.insert(standing.deployment.clone(), event.clone());
            events.send(Event::Rollout(event));
        }
    }
}

/// Why the Deployment's new pods took as long as they did, when a probe's initial delay is
/// most of it: the slowest of them.
fn slow_start(stores: &Stores, deployment: &str) -> Option<Slowness> {
    let found = stores
        .deployments
        .state()
        .into_iter()
        .find(|d| d.metadata.name.as_deref() == Some(deployment))?;
    new_pods(stores, &found)
        .iter()
        .filter_map(|pod| timing::initial_delay(deployment, pod))
        .max_by_key(|s| match s {
            Slowness::InitialDelay { ready_after, .. } => *ready_after,
            Slowness::IgnoredSigterm { grace, .. } => *grace,
        })
}

/// Tells, once per pod, of a terminating pod whose container was killed at the end of its
/// grace period (seen while the wait runs; the wait does not wait for old pods to go).
fn explain_stops(stores: &Stores, killed: &mut BTreeSet<String>, events: &Events) {
    for pod in stores.pods.state() {
        let name = pod.metadata.name.clone().unwrap_or_default();
        if killed.contains(&name) {
            continue;
        }
        if let Some(grace) = timing::ignored_sigterm(&pod) {
            killed.insert(name.clone());
            let deployment = pod
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(labels::COMPONENT))
                .cloned()
                .unwrap_or_default();
            events.send(RolloutEvent::Slow(Slowness::IgnoredSigterm {
                deployment,
                pod: name,
                grace,
            }));
        }
    }
}

/// How waiting for a release to disappear ended; the names are what was still there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gone {
    Done,
    TimedOut(Vec<String>),
    Interrupted(Vec<String>),
}

/// Waits until no Deployment, ReplicaSet or pod of the release is left.
pub async fn wait_gone(
    cluster: &Cluster,
    target: &Target,
    cancel: impl Future<Output = ()>,
    events: &Events,
) -> Gone {
    let deadline = deadline(Instant::now(), target.timeout);
    let (stores, mut changes, driver) = watch(cluster, target);
    let _driver = AbortOnDrop(driver);
    tokio::pin!(cancel);
    let remaining = |stores: &Stores| -> Vec<String> {
        let named = |kind: &str, name: &Option<String>| {
            format!("{kind}/{}", name.clone().unwrap_or_default())
        };
        let mut left: Vec<String> = stores
            .deployments
            .state()
            .iter()
            .map(|d| named("Deployment", &d.metadata.name))
            .collect();
        left.extend(
            stores
                .replica_sets
                .state()
                .iter()
                .map(|r| named("ReplicaSet", &r.metadata.name)),
        );
        left.extend(
            stores
                .pods
                .state()
                .iter()
                .map(|p| named("Pod", &p.metadata.name)),
        );
        left.sort();
        left
    };
    tokio::select! {
        () = stores.listed() => {}
        _ = tokio::time::sleep_until(deadline) => return Gone::TimedOut(remaining(&stores)),
        _ = &mut cancel => return Gone::Interrupted(remaining(&stores)),
    }
    let mut last_pods = usize::MAX;
    loop {
        let left = remaining(&stores);
        if left.is_empty() {
            return Gone::Done;
        }
        let pods = left.iter().filter(|n| n.starts_with("Pod/")).count();
        if pods != last_pods {
            last_pods = pods;
            events.send(RolloutEvent::Terminating { pods });
        }
        tokio::select! {
            change = changes.recv() => {
                if let Some(Err(fault)) = change {
                    events.send(RolloutEvent::WatchResumed { error: fault.message });
                }
            }
            _ = tokio::time::sleep_until(deadline) => return Gone::TimedOut(remaining(&stores)),
            _ = &mut cancel => return Gone::Interrupted(remaining(&stores)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(name: &str, generation: i64, observed: i64, available: i32) -> Deployment {
        serde_saphyr::from_str(&format!(
            "metadata: {{name: {name}, generation: {generation}}}
spec: {{replicas: 2, selector: {{}}, template: {{}}}}
status: {{observedGeneration: {observed}, replicas: 2, updatedReplicas: 2, readyReplicas: {available}, availableReplicas: {available}}}"
        ))
        .expect("a Deployment")
    }

    fn target() -> Target {
        Target {
            namespace: "todo".into(),
            release: "todo".into(),
            deployments: vec!["backend".into(), "frontend".into()],
            timeout: Duration::from_secs(60),
        }
    }

    #[test]
    fn answers_that_show_every_rollout_complete_need_no_wait() {
        let (events, mut seen) = Events::channel();
        let applied = [
            deployment("frontend", 3, 3, 2),
            deployment("backend", 1, 1, 2),
        ];
        assert_eq!(
            complete_in(&target(), &applied, &events),
            Some(Outcome::Ready)
        );
        let ready: Vec<String> = std::iter::from_fn(|| seen.try_recv().ok())
            .filter_map(|event| match event {
                Event::Rollout(RolloutEvent::Ready { deployment, .. }) => Some(deployment),
                _ => None,
            })
            .collect();
        assert_eq!(ready, ["backend", "frontend"]);
    }

    #[test]
    fn a_new_generation_a_missing_answer_or_an_unavailable_replica_is_waited_for() {
        let (events, mut seen) = Events::channel();
        let done = deployment("backend", 1, 1, 2);
        for other in [
            Some(deployment("frontend", 4, 3, 2)),
            Some(deployment("frontend", 3, 3, 1)),
            None,
        ] {
            let applied: Vec<Deployment> =
                [Some(done.clone()), other].into_iter().flatten().collect();
            assert_eq!(
                complete_in(&target(), &applied, &events),
                None,
                "{applied:?}"
            );
        }
        assert!(
            seen.try_recv().is_err(),
            "nothing is said when the wait decides"
        );
    }
}
