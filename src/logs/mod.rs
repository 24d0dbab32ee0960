//! The logs stage: the log lines of a release's pods (or of some of its services), read once or
//! followed. Following watches the pods, follows each container instance as it starts (a pod
//! that starts later, a container that restarts) with the API's log endpoint and `follow=true`,
//! and lets each stream end with its container. Every line is sent with its service and pod, and
//! with every secret value replaced by `***`, as crash-loop logs are. `logs` and `dev` both use
//! it.

pub mod events;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::{AsyncBufReadExt, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, ListParams, LogParams};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::task::JoinSet;

pub use events::LogEvent;

use crate::cluster::{self, Cluster};
use crate::progress::Events;
use crate::render::labels;
use crate::rollout::timing;

/// Which pods: the release's in `namespace`, or only those of `services` when any are named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub namespace: String,
    pub release: String,
    pub services: Vec<String>,
}

impl Selection {
    /// The label selector of the selected pods.
    pub fn selector(&self) -> String {
        let release = labels::release_selector(&self.release);
        match self.services.as_slice() {
            [] => release,
            services => format!(
                "{release},{} in ({})",
                labels::COMPONENT,
                services.join(",")
            ),
        }
    }
}

/// What to read of each container's log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// Only lines newer than this.
    pub since: Option<Duration>,
    /// Only the last this many lines.
    pub tail: Option<i64>,
    /// The previous (terminated) instance's log instead of the running one's.
    pub previous: bool,
    /// When following, skip what the pods that already run have logged (`dev`): only new lines.
    pub from_now: bool,
}

impl LogOptions {
    /// The query for a container's first read: `since`, `tail` and `previous` apply to the
    /// instances that run when it starts; a later instance is read from its start.
    fn params(&self, container: &str, follow: bool, first: bool) -> LogParams {
        let tail = match (first, self.from_now) {
            (true, true) => Some(0),
            (true, false) => self.tail,
            (false, _) => None,
        };
        LogParams {
            container: Some(container.to_owned()),
            follow,
            previous: self.previous && !follow,
            since_seconds: self
                .since
                .filter(|_| first)
                .map(|s| i64::try_from(s.as_secs().max(1)).unwrap_or(i64::MAX)),
            tail_lines: tail,
            ..LogParams::default()
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    #[error("cannot list the pods of release `{release}` in namespace `{namespace}`")]
    List {
        release: String,
        namespace: String,
        #[source]
        source: kube::Error,
    },
}

impl crate::outcome::Diagnose for LogsError {
    fn hint(&self) -> Option<String> {
        Some("check that the cluster answers and that you may list pods and read their logs (`kubectl auth can-i get pods/log`)".to_owned())
    }
}

/// The values to hide from log lines; more can be added while lines flow (`dev` re-reads the
/// env file). Empty values are never replaced.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    values: Arc<RwLock<BTreeSet<String>>>,
}

impl Redactor {
    pub fn new(values: impl IntoIterator<Item = String>) -> Redactor {
        let redactor = Redactor::default();
        redactor.add(values);
        redactor
    }

    pub fn add(&self, values: impl IntoIterator<Item = String>) {
        if let Ok(mut known) = self.values.write() {
            known.extend(values.into_iter().filter(|v| !v.is_empty()));
        }
    }

    /// `line` with every known value replaced by `***`, longest first (a value that contains
    /// another is hidden whole).
    pub fn redact(&self, line: &str) -> String {
        let Ok(known) = self.values.read() else {
            return line.to_owned();
        };
        let mut values: Vec<&String> = known.iter().collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.into_iter().fold(line.to_owned(), |line, value| {
            line.replace(value.as_str(), "***")
        })
    }
}

/// The values of the release's live Secret `name`: what its pods were given. Nothing when it
/// cannot be read (absent, or not allowed).
pub async fn secret_values(cluster: &Cluster, namespace: &str, name: &str) -> Vec<String> {
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), namespace);
    let Ok(Some(secret)) = secrets.get_opt(name).await else {
        return Vec::new();
    };
    secret
        .data
        .unwrap_or_default()
        .into_values()
        .map(|bytes| String::from_utf8_lossy(&bytes.0).into_owned())
        .collect()
}

/// The service a pod belongs to: its component label.
fn service_of(pod: &Pod) -> String {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(labels::COMPONENT))
        .cloned()
        .unwrap_or_default()
}

/// Reads the logs of every selected pod once, pod after pod (by service, then age), and sends
/// their lines.
pub async fn read(
    cluster: &Cluster,
    selection: &Selection,
    options: &LogOptions,
    redactor: &Redactor,
    events: &Events,
) -> Result<(), LogsError> {
    let api: Api<Pod> = Api::namespaced(cluster.client.clone(), &selection.namespace);
    let params = ListParams::default().labels(&selection.selector());
    let mut pods = cluster::retrying(events, "list the pods", || api.list(&params))
        .await
        .map_err(|source| LogsError::List {
            release: selection.release.clone(),
            namespace: selection.namespace.clone(),
            source,
        })?
        .items;
    if pods.is_empty() {
        events.send(LogEvent::NoPods {
            services: selection.services.clone(),
        });
    }
    pods.sort_by_key(|p| {
        let created = p.metadata.creation_timestamp.as_ref().map(|t| t.0);
        (service_of(p), created, p.metadata.name.clone())
    });
    for pod in &pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        for container in pod.spec.iter().flat_map(|s| &s.containers) {
            let source = Source {
                api: api.clone(),
                service: service_of(pod),
                pod: name.clone(),
                container: container.name.clone(),
            };
            let params = options.params(&container.name, false, true);
            source.stream(params, redactor, events).await;
        }
    }
    Ok(())
}

/// One container's log, and where its lines are from.
#[derive(Clone)]
struct Source {
    api: Api<Pod>,
    service: String,
    pod: String,
    container: String,
}

impl Source {
    /// Reads the log with `params` (following it with `follow`) and sends its lines until it
    /// ends; a log that cannot be read is reported as unavailable.
    async fn stream(&self, params: LogParams, redactor: &Redactor, events: &Events) {
        let reader = match self.api.log_stream(&self.pod, &params).await {
            Ok(reader) => reader,
            Err(error) => return self.unavailable(&error, events),
        };
        let mut lines = reader.lines();
        while let Some(line) = lines.next().await {
            match line {
                Ok(text) => events.send(LogEvent::Line {
                    service: self.service.clone(),
                    pod: self.pod.clone(),
                    container: self.container.clone(),
                    text: redactor.redact(&text),
                }),
                // The stream broke (the connection, or the container went): it ends here.
                Err(_) => return,
            }
        }
    }

    fn unavailable(&self, error: &kube::Error, events: &Events) {
        events.send(LogEvent::Unavailable {
            service: self.service.clone(),
            pod: self.pod.clone(),
            container: self.container.clone(),
            reason: cluster::short(error),
        });
    }
}

/// Follows the selected pods' logs until dropped: every container instance that runs now or
/// starts later (a new pod, a restart) is streamed from its start (the instances running when
/// it begins as `options` say), each stream ending with its instance. Pods that go are said
/// once, with a grace period their container ran out.
pub async fn follow(
    cluster: &Cluster,
    selection: &Selection,
    options: &LogOptions,
    redactor: &Redactor,
    events: &Events,
) {
    let api: Api<Pod> = Api::namespaced(cluster.client.clone(), &selection.namespace);
    let config = watcher::Config::default().labels(&selection.selector());
    let mut pods = watcher(api.clone(), config).default_backoff().boxed();
    let mut follower = Follower {
        api,
        options,
        redactor,
        events,
        streams: JoinSet::new(),
        instances: BTreeMap::new(),
    };
    let mut listed = false;
    loop {
        let event = tokio::select! {
            event = pods.try_next() => event,
            // Reap finished streams as they end, so the set does not grow.
            Some(_) = follower.streams.join_next(), if !follower.streams.is_empty() => continue,
        };
        match event {
            Ok(Some(watcher::Event::InitApply(pod))) => follower.start(&pod, !listed),
            Ok(Some(watcher::Event::Apply(pod))) => follower.start(&pod, false),
            Ok(Some(watcher::Event::InitDone)) => listed = true,
            Ok(Some(watcher::Event::Init)) => {}
            Ok(Some(watcher::Event::Delete(pod))) => follower.gone(&pod),
            // The backoff resumes a broken watch.
            Err(_) => {}
            Ok(None) => return,
        }
    }
}

/// What following needs, the streams running, and the container instances already followed:
/// per pod, per container, the restart count of the instance last streamed.
struct Follower<'a> {
    api: Api<Pod>,
    options: &'a LogOptions,
    redactor: &'a Redactor,
    events: &'a Events,
    streams: JoinSet<()>,
    instances: BTreeMap<String, BTreeMap<String, i32>>,
}

impl Follower<'_> {
    /// Starts streaming every container instance of `pod` that has started and is not streamed
    /// yet. `initial`: the pod ran when following began, so the options decide where to start.
    fn start(&mut self, pod: &Pod, initial: bool) {
        let name = pod.metadata.name.clone().unwrap_or_default();
        if pod.metadata.deletion_timestamp.is_some() && !self.instances.contains_key(&name) {
            return;
        }
        let statuses = pod
            .status
            .iter()
            .flat_map(|s| s.container_statuses.iter().flatten());
        for status in statuses {
            let state = status.state.as_ref();
            let started = state.is_some_and(|s| s.running.is_some() || s.terminated.is_some());
            let known = self.instances.entry(name.clone()).or_default();
            let seen = known.get(&status.name).copied();
            if !started || seen.is_some_and(|restarts| restarts >= status.restart_count) {
                continue;
            }
            known.insert(status.name.clone(), status.restart_count);
            let source = Source {
                api: self.api.clone(),
                service: service_of(pod),
                pod: name.clone(),
                container: status.name.clone(),
            };
            self.events.send(LogEvent::Following {
                service: source.service.clone(),
                pod: name.clone(),
                container: status.name.clone(),
                restarts: status.restart_count,
            });
            let first = initial && seen.is_none();
            let params = self.options.params(&status.name, true, first);
            let (redactor, events) = (self.redactor.clone(), self.events.clone());
            self.streams
                .spawn(async move { source.stream(params, &redactor, &events).await });
        }
    }

    /// A pod is gone: said once, with how it ended.
    fn gone(&mut self, pod: &Pod) {
        let name = pod.metadata.name.clone().unwrap_or_default();
        self.instances.remove(&name);
        self.events.send(LogEvent::PodGone {
            service: service_of(pod),
            pod: name,
            ignored_sigterm: timing::ignored_sigterm(pod),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values_are_hidden_longest_first() {
        let redactor = Redactor::new(["s3cret".to_owned(), String::new()]);
        redactor.add(["s3cret-and-more".to_owned()]);
        assert_eq!(
            redactor.redact("db s3cret-and-more, key s3cret, plain"),
            "db ***, key ***, plain"
        );
        assert_eq!(
            redactor.redact("nothing here"),
            "nothing here",
            "empty values hide nothing"
        );
    }

    #[test]
    fn the_selector_names_the_release_and_the_services() {
        let mut selection = Selection {
            namespace: "todo".to_owned(),
            release: "todo".to_owned(),
            services: Vec::new(),
        };
        assert_eq!(
            selection.selector(),
            "app.kubernetes.io/instance=todo,app.kubernetes.io/managed-by=todo-deploy"
        );
        selection.services = vec!["backend".to_owned(), "frontend".to_owned()];
        assert!(
            selection
                .selector()
                .ends_with(",app.kubernetes.io/component in (backend,frontend)")
        );
    }

    #[test]
    fn since_tail_and_from_now_apply_to_the_first_read_only() {
        let options = LogOptions {
            since: Some(Duration::from_secs(90)),
            tail: Some(5),
            previous: false,
            from_now: false,
        };
        let first = options.params("web", true, true);
        assert_eq!((first.since_seconds, first.tail_lines), (Some(90), Some(5)));
        assert!(first.follow);
        let later = options.params("web", true, false);
        assert_eq!(
            (later.since_seconds, later.tail_lines),
            (None, None),
            "a new instance from its start"
        );
        let dev = LogOptions {
            from_now: true,
            ..LogOptions::default()
        };
        assert_eq!(
            dev.params("web", true, true).tail_lines,
            Some(0),
            "only new lines"
        );
        let previous = LogOptions {
            previous: true,
            ..LogOptions::default()
        };
        assert!(previous.params("web", false, true).previous);
        assert!(
            !previous.params("web", true, true).previous,
            "a follow reads the running one"
        );
    }
}
