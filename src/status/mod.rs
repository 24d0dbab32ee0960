//! The status of a release at a glance: its latest revision, Deployments, pods (with the reason a
//! pod is not ready), Services, the Ingress URL and recent Warning events, gathered into a
//! [`StatusReport`] that renders as a table or as JSON/YAML (the shape is documented in the README).

mod table;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event as PodEvent, Pod, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, ListParams};
use serde::Serialize;

pub use table::{aligned, to_table};

use crate::cluster::{self, Cluster};
use crate::progress::Events;
use crate::release::{self, Record, RevisionStatus};
use crate::render::labels;
use crate::rollout::{RolloutState, conditions, diagnosis};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Health {
    /// Every Deployment rolled out and available, and the latest revision deployed.
    Healthy,
    /// Deployed, but something is not as it should be.
    Degraded,
    /// No revision and no Deployment of the release.
    NotDeployed,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    pub release: String,
    pub namespace: String,
    pub health: Health,
    pub revision: Option<RevisionInfo>,
    pub deployments: Vec<DeploymentInfo>,
    pub pods: Vec<PodInfo>,
    pub services: Vec<ServiceInfo>,
    pub ingress: Option<IngressInfo>,
    pub warnings: Vec<WarningInfo>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionInfo {
    pub number: u32,
    pub status: RevisionStatus,
    pub time: String,
    pub description: String,
    pub images: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentInfo {
    pub name: String,
    pub images: Vec<String>,
    pub desired: i32,
    pub updated: i32,
    pub ready: i32,
    pub available: i32,
    pub rollout: Rollout,
    pub message: String,
}

/// Where a Deployment's rollout stands, in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rollout {
    Complete,
    Progressing,
    Failed,
    Missing,
}

impl Rollout {
    pub fn as_str(self) -> &'static str {
        match self {
            Rollout::Complete => "complete",
            Rollout::Progressing => "progressing",
            Rollout::Failed => "failed",
            Rollout::Missing => "missing",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodInfo {
    pub name: String,
    pub component: String,
    /// Ready containers of all, e.g. `1/1`.
    pub ready: String,
    pub restarts: i32,
    pub age_seconds: i64,
    pub phase: String,
    /// Why it is not ready, when it is not.
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub cluster_ip: Option<String>,
    pub ports: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressInfo {
    pub name: String,
    pub class: Option<String>,
    pub host: Option<String>,
    pub url: String,
    /// The address the ingress controller published, if any.
    pub address: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WarningInfo {
    pub object: String,
    pub reason: String,
    pub message: String,
    pub count: i32,
    pub age_seconds: i64,
}

/// How many Warning events a report shows, newest first.
const WARNINGS: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("cannot read the release's objects in `{namespace}`")]
    Api {
        namespace: String,
        #[source]
        source: kube::Error,
    },
    #[error(transparent)]
    History(#[from] release::ReleaseError),
}

/// What was read of the release's live objects.
#[derive(Debug, Default)]
pub struct Live {
    pub deployments: Vec<Deployment>,
    pub pods: Vec<Pod>,
    pub services: Vec<Service>,
    pub ingresses: Vec<Ingress>,
    /// Every event of the namespace: Warnings are picked in [`report`].
    pub events: Vec<PodEvent>,
}

/// Reads everything about the release, all at once. A namespace that does not exist is "not
/// deployed".
pub async fn gather(
    cluster: &Cluster,
    namespace: &str,
    release_name: &str,
    events: &Events,
) -> Result<StatusReport, StatusError> {
    let selector = ListParams::default().labels(&labels::release_selector(release_name));
    let everything = ListParams::default();
    let (history, deployments, pods, services, ingresses, pod_events) = tokio::join!(
        release::settled_history(cluster, namespace, release_name, events),
        list(cluster, namespace, &selector, events),
        list(cluster, namespace, &selector, events),
        list(cluster, namespace, &selector, events),
        list(cluster, namespace, &selector, events),
        list(cluster, namespace, &everything, events),
    );
    let api_error = |source| StatusError::Api {
        namespace: namespace.to_owned(),
        source,
    };
    let live = Live {
        deployments: deployments.map_err(api_error)?,
        pods: pods.map_err(api_error)?,
        services: services.map_err(api_error)?,
        ingresses: ingresses.map_err(api_error)?,
        events: pod_events.map_err(api_error)?,
    };
    let history = history?;
    let place = (release_name, namespace);
    Ok(report(place, history.last(), &live, jiff::Timestamp::now()))
}

/// Every object of kind `K` in `namespace` that `params` selects; none if the namespace is gone.
async fn list<K>(
    cluster: &Cluster,
    namespace: &str,
    params: &ListParams,
    events: &Events,
) -> Result<Vec<K>, kube::Error>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(cluster.client.clone(), namespace);
    let what = format!("list {}s", K::kind(&()));
    match cluster::retrying(events, &what, || api.list(params)).await {
        Ok(list) => Ok(list.items),
        Err(error) if cluster::status_code(&error) == Some(404) => Ok(Vec::new()),
        Err(error) => Err(error),
    }
}

/// Builds the report of the release `(name, namespace)` from what was read: pure, so it is
/// tested on inline objects.
pub fn report(
    (release_name, namespace): (&str, &str),
    latest: Option<&Record>,
    live: &Live,
    now: jiff::Timestamp,
) -> StatusReport {
    let event_refs: Vec<&PodEvent> = live.events.iter().collect();
    let deployments: Vec<DeploymentInfo> = live.deployments.iter().map(deployment_info).collect();
    let revision = latest.map(revision_info);
    StatusReport {
        release: release_name.to_owned(),
        namespace: namespace.to_owned(),
        health: health(revision.as_ref(), &deployments),
        revision,
        deployments,
        pods: live
            .pods
            .iter()
            .map(|pod| pod_info(pod, &event_refs, now))
            .collect(),
        services: live.services.iter().map(service_info).collect(),
        ingress: live.ingresses.first().map(ingress_info),
        warnings: warnings(&live.events, &live.pods, now),
    }
}

/// Seconds from `time` to `now`; 0 when unknown.
fn age(time: Option<jiff::Timestamp>, now: jiff::Timestamp) -> i64 {
    time.map_or(0, |t| (now - t).get_seconds().max(0))
}

/// Healthy: every Deployment rolled out and available, and the latest revision deployed. Not
/// deployed: no Deployment, and no revision or an uninstalled one.
fn health(revision: Option<&RevisionInfo>, deployments: &[DeploymentInfo]) -> Health {
    let uninstalled = revision.is_none_or(|r| r.status == RevisionStatus::Uninstalled);
    let rolled_out = deployments
        .iter()
        .all(|d| d.rollout == Rollout::Complete && d.available >= d.desired);
    let deployed = revision.is_none_or(|r| r.status == RevisionStatus::Deployed);
    match (deployments.is_empty(), uninstalled) {
        (true, true) => Health::NotDeployed,
        (false, _) if rolled_out && deployed => Health::Healthy,
        _ => Health::Degraded,
    }
}

fn revision_info(record: &Record) -> RevisionInfo {
    RevisionInfo {
        number: record.revision,
        status: record.status,
        time: record.time.clone(),
        description: record.description.clone(),
        images: record.images.iter().map(|i| i.reference.clone()).collect(),
    }
}

fn deployment_info(deployment: &Deployment) -> DeploymentInfo {
    let counts = conditions::counts(deployment);
    let (rollout, message) = match conditions::rollout_state(Some(deployment)) {
        RolloutState::Complete => (Rollout::Complete, String::new()),
        RolloutState::DeadlineExceeded { message } => (Rollout::Failed, message),
        RolloutState::Progressing { waiting_for } => (Rollout::Progressing, waiting_for),
        RolloutState::NotObserved => (
            Rollout::Progressing,
            "the new spec is not observed yet".to_owned(),
        ),
        RolloutState::Missing => (Rollout::Missing, String::new()),
    };
    DeploymentInfo {
        name: deployment.metadata.name.clone().unwrap_or_default(),
        images: deployment
            .spec
            .iter()
            .flat_map(|s| s.template.spec.iter())
            .flat_map(|s| s.containers.iter())
            .filter_map(|c| c.image.as_deref())
            .map(|image| with_tag(deployment, image))
            .collect(),
        desired: counts.desired,
        updated: counts.updated,
        ready: counts.ready,
        available: counts.available,
        rollout,
        message,
    }
}

/// A pod, and why it is not ready when it is not.
fn pod_info(pod: &Pod, events: &[&PodEvent], now: jiff::Timestamp) -> PodInfo {
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.clone())
        .unwrap_or_default();
    let total = pod
        .spec
        .as_ref()
        .map_or(statuses.len(), |s| s.containers.len());
    let ready = statuses.iter().filter(|c| c.ready).count();
    let reason = if pod.metadata.deletion_timestamp.is_some() {
        Some("terminating".to_owned())
    } else if ready < total {
        Some(diagnosis::diagnose(pod, events).map_or_else(
            || waiting_reason(pod).unwrap_or_else(|| "starting".to_owned()),
            |p| p.summary(),
        ))
    } else {
        None
    };
    PodInfo {
        name: pod.metadata.name.clone().unwrap_or_default(),
        component: pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(labels::COMPONENT).cloned())
            .unwrap_or_default(),
        ready: format!("{ready}/{total}"),
        restarts: statuses.iter().map(|c| c.restart_count).sum(),
        age_seconds: age(pod.metadata.creation_timestamp.as_ref().map(|t| t.0), now),
        phase: pod
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default(),
        reason,
    }
}

fn service_info(service: &Service) -> ServiceInfo {
    let spec = service.spec.clone().unwrap_or_default();
    ServiceInfo {
        name: service.metadata.name.clone().unwrap_or_default(),
        kind: spec.type_.unwrap_or_else(|| "ClusterIP".to_owned()),
        cluster_ip: spec.cluster_ip,
        ports: spec
            .ports
            .iter()
            .flatten()
            .map(|p| format!("{}/{}", p.port, p.protocol.as_deref().unwrap_or("TCP")))
            .collect(),
    }
}

fn ingress_info(ingress: &Ingress) -> IngressInfo {
    let spec = ingress.spec.clone().unwrap_or_default();
    let host = spec.rules.iter().flatten().find_map(|r| r.host.clone());
    IngressInfo {
        name: ingress.metadata.name.clone().unwrap_or_default(),
        class: spec.ingress_class_name,
        url: format!("http://{}", host.as_deref().unwrap_or("<cluster address>")),
        host,
        address: ingress
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref())
            .and_then(|list| list.first())
            .and_then(|lb| lb.ip.clone().or_else(|| lb.hostname.clone())),
    }
}

/// The newest Warning events, but none about a pod that is gone (`down` leaves its pods'
/// events behind for an hour).
fn warnings(events: &[PodEvent], pods: &[Pod], now: jiff::Timestamp) -> Vec<WarningInfo> {
    let gone = |e: &&PodEvent| {
        e.involved_object.kind.as_deref() == Some("Pod")
            && !pods
                .iter()
                .any(|p| p.metadata.uid.is_some() && p.metadata.uid == e.involved_object.uid)
    };
    let mut warnings: Vec<WarningInfo> = events
        .iter()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .filter(|e| !gone(e))
        .map(|e| {
            let last = e
                .last_timestamp
                .as_ref()
                .map(|t| t.0)
                .or_else(|| e.event_time.as_ref().map(|t| t.0));
            WarningInfo {
                object: format!(
                    "{}/{}",
                    e.involved_object.kind.clone().unwrap_or_default(),
                    e.involved_object.name.clone().unwrap_or_default()
                ),
                reason: e.reason.clone().unwrap_or_default(),
                message: e.message.clone().unwrap_or_default(),
                count: e.count.unwrap_or(1),
                age_seconds: age(last, now),
            }
        })
        .collect();
    warnings.sort_by_key(|w| w.age_seconds);
    warnings.truncate(WARNINGS);
    warnings
}

fn waiting_reason(pod: &Pod) -> Option<String> {
    pod.status
        .as_ref()?
        .container_statuses
        .iter()
        .flatten()
        .find_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone())
}

/// An image deployed by digest, with the tag it was pushed as (the Deployment's annotation
/// `todo-deploy/image`): `REGISTRY/REPOSITORY:TAG@sha256:…`, a reference Docker reads too.
fn with_tag(deployment: &Deployment, image: &str) -> String {
    let tagged = deployment
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(crate::render::registry::IMAGE));
    match (tagged, image.split_once('@')) {
        (Some(tagged), Some((repository, digest))) if tagged.starts_with(repository) => {
            format!("{tagged}@{digest}")
        }
        _ => image.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml<T: serde::de::DeserializeOwned>(text: &str) -> T {
        serde_saphyr::from_str(text).expect("valid")
    }

    #[test]
    fn health_follows_deployments_and_revision() {
        let complete: Deployment = yaml(
            "metadata: {name: backend, generation: 1}
spec: {replicas: 2, selector: {}, template: {spec: {containers: [{name: backend, image: todo-backend:v1}]}}}
status: {observedGeneration: 1, replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2}",
        );
        let now = jiff::Timestamp::now();
        let live = |deployments: Vec<Deployment>| Live {
            deployments,
            ..Live::default()
        };
        let healthy = report(("todo", "todo"), None, &live(vec![complete.clone()]), now);
        assert_eq!(healthy.health, Health::Healthy);
        assert_eq!(healthy.deployments[0].images, ["todo-backend:v1"]);
        let mut degraded = complete.clone();
        degraded.status.as_mut().unwrap().available_replicas = Some(1);
        let report_degraded = report(("todo", "todo"), None, &live(vec![degraded]), now);
        assert_eq!(report_degraded.health, Health::Degraded);
        assert_eq!(report_degraded.deployments[0].rollout, Rollout::Progressing);
        let absent = report(("todo", "todo"), None, &live(Vec::new()), now);
        assert_eq!(absent.health, Health::NotDeployed);
    }

    #[test]
    fn a_pod_that_is_not_ready_says_why() {
        let pod: Pod = yaml(
            r#"
metadata: {name: backend-1, uid: u, labels: {app.kubernetes.io/component: backend}}
spec: {containers: [{name: backend}]}
status:
  phase: Pending
  containerStatuses:
  - {name: backend, ready: false, restartCount: 0, image: x, imageID: "", state: {waiting: {reason: ErrImageNeverPull, message: not present}}}
"#,
        );
        let live = Live {
            pods: vec![pod],
            ..Live::default()
        };
        let report = report(("todo", "todo"), None, &live, jiff::Timestamp::now());
        let info = &report.pods[0];
        assert_eq!(info.ready, "0/1");
        assert_eq!(info.component, "backend");
        assert!(
            info.reason
                .as_deref()
                .unwrap()
                .contains("ErrImageNeverPull"),
            "{info:?}"
        );
    }

    #[test]
    fn an_uninstalled_release_is_not_deployed_and_gone_pods_leave_no_warnings() {
        let uninstalled = RevisionInfo {
            number: 11,
            status: RevisionStatus::Uninstalled,
            time: "t".into(),
            description: "Uninstall complete".into(),
            images: Vec::new(),
        };
        assert_eq!(health(Some(&uninstalled), &[]), Health::NotDeployed);
        let deployed = RevisionInfo {
            status: RevisionStatus::Deployed,
            ..uninstalled.clone()
        };
        assert_eq!(health(Some(&deployed), &[]), Health::Degraded);
        let event: PodEvent = yaml(
            "metadata: {name: e}
involvedObject: {kind: Pod, name: backend-1, uid: gone}
type: Warning
reason: Unhealthy
message: probe failed",
        );
        let now = jiff::Timestamp::now();
        assert!(warnings(std::slice::from_ref(&event), &[], now).is_empty());
        let pod: Pod = yaml("metadata: {name: backend-1, uid: gone}");
        assert_eq!(warnings(&[event], &[pod], now).len(), 1);
    }

    #[test]
    fn an_image_deployed_by_digest_shows_its_tag_too() {
        let mut deployment = Deployment::default();
        let digest = format!("sha256:{}", "b".repeat(64));
        let image = format!("r:5000/backend@{digest}");
        assert_eq!(with_tag(&deployment, &image), image);
        deployment.metadata.annotations = Some(std::collections::BTreeMap::from([(
            crate::render::registry::IMAGE.to_owned(),
            "r:5000/backend:3f9c0a1d2b4e".to_owned(),
        )]));
        assert_eq!(
            with_tag(&deployment, &image),
            format!("r:5000/backend:3f9c0a1d2b4e@{digest}")
        );
        assert_eq!(with_tag(&deployment, "todo-backend:v1"), "todo-backend:v1");
    }
}
