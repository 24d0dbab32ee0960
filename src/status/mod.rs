//! The status of a release at a glance: its latest revision, Deployments, pods (with the reason a
//! pod is not ready), Services, the Ingress URL and recent Warning events, gathered into a
//! [`StatusReport`] that renders as a table or as JSON/YAML (the shape is documented in the README).

mod table;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event as PodEvent, Pod, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, ListParams};
use serde::Serialize;

pub use table::to_table;

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

/// Reads everything about the release. A namespace that does not exist is "not deployed".
pub async fn gather(
    cluster: &Cluster,
    namespace: &str,
    release_name: &str,
    events: &Events,
) -> Result<StatusReport, StatusError> {
    let history = release::settled_history(cluster, namespace, release_name, events).await?;
    let api_error = |source| StatusError::Api {
        namespace: namespace.to_owned(),
        source,
    };
    let selector = ListParams::default().labels(&labels::release_selector(release_name));
    let deployments: Vec<Deployment> = list(cluster, namespace, &selector, events)
        .await
        .map_err(api_error)?;
    let pods: Vec<Pod> = list(cluster, namespace, &selector, events)
        .await
        .map_err(api_error)?;
    let services: Vec<Service> = list(cluster, namespace, &selector, events)
        .await
        .map_err(api_error)?;
    let ingresses: Vec<Ingress> = list(cluster, namespace, &selector, events)
        .await
        .map_err(api_error)?;
    // All events: Warnings are picked in `report` rather than by a field selector.
    let pod_events: Vec<PodEvent> = list(cluster, namespace, &ListParams::default(), events)
        .await
        .map_err(api_error)?;
    Ok(report(
        release_name,
        namespace,
        history.last(),
        &deployments,
        &pods,
        &services,
        &ingresses,
        &pod_events,
        jiff::Timestamp::now(),
    ))
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

/// Builds the report from what was read: pure, so it is tested on inline objects.
#[allow(clippy::too_many_arguments)]
fn report(
    release_name: &str,
    namespace: &str,
    latest: Option<&Record>,
    deployments: &[Deployment],
    pods: &[Pod],
    services: &[Service],
    ingresses: &[Ingress],
    pod_events: &[PodEvent],
    now: jiff::Timestamp,
) -> StatusReport {
    let age = |time: Option<jiff::Timestamp>| time.map_or(0, |t| (now - t).get_seconds().max(0));
    let event_refs: Vec<&PodEvent> = pod_events.iter().collect();
    let deployment_infos: Vec<DeploymentInfo> = deployments
        .iter()
        .map(|d| {
            let counts = conditions::counts(d);
            let (rollout, message) = match conditions::rollout_state(Some(d)) {
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
                name: d.metadata.name.clone().unwrap_or_default(),
                images: d
                    .spec
                    .iter()
                    .flat_map(|s| s.template.spec.iter())
                    .flat_map(|s| s.containers.iter())
                    .filter_map(|c| c.image.clone())
                    .collect(),
                desired: counts.desired,
                updated: counts.updated,
                ready: counts.ready,
                available: counts.available,
                rollout,
                message,
            }
        })
        .collect();
    let pod_infos: Vec<PodInfo> = pods
        .iter()
        .map(|pod| {
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
                Some(diagnosis::diagnose(pod, &event_refs).map_or_else(
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
                age_seconds: age(pod.metadata.creation_timestamp.as_ref().map(|t| t.0)),
                phase: pod
                    .status
                    .as_ref()
                    .and_then(|s| s.phase.clone())
                    .unwrap_or_default(),
                reason,
            }
        })
        .collect();
    let service_infos = services
        .iter()
        .map(|s| {
            let spec = s.spec.clone().unwrap_or_default();
            ServiceInfo {
                name: s.metadata.name.clone().unwrap_or_default(),
                kind: spec.type_.unwrap_or_else(|| "ClusterIP".to_owned()),
                cluster_ip: spec.cluster_ip,
                ports: spec
                    .ports
                    .iter()
                    .flatten()
                    .map(|p| format!("{}/{}", p.port, p.protocol.as_deref().unwrap_or("TCP")))
                    .collect(),
            }
        })
        .collect();
    let ingress = ingresses.first().map(|i| {
        let spec = i.spec.clone().unwrap_or_default();
        let host = spec.rules.iter().flatten().find_map(|r| r.host.clone());
        IngressInfo {
            name: i.metadata.name.clone().unwrap_or_default(),
            class: spec.ingress_class_name,
            url: format!("http://{}", host.as_deref().unwrap_or("<cluster address>")),
            host,
            address: i
                .status
                .as_ref()
                .and_then(|s| s.load_balancer.as_ref())
                .and_then(|lb| lb.ingress.as_ref())
                .and_then(|list| list.first())
                .and_then(|lb| lb.ip.clone().or_else(|| lb.hostname.clone())),
        }
    });
    let mut warnings: Vec<WarningInfo> = pod_events
        .iter()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
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
                age_seconds: age(last),
            }
        })
        .collect();
    warnings.sort_by_key(|w| w.age_seconds);
    warnings.truncate(WARNINGS);

    let revision = latest.map(|r| RevisionInfo {
        number: r.revision,
        status: r.status,
        time: r.time.clone(),
        description: r.description.clone(),
        images: r.images.iter().map(|i| i.reference.clone()).collect(),
    });
    let uninstalled = revision
        .as_ref()
        .is_none_or(|r| r.status == RevisionStatus::Uninstalled);
    let health = if uninstalled && deployment_infos.is_empty() {
        Health::NotDeployed
    } else if !deployment_infos.is_empty()
        && deployment_infos
            .iter()
            .all(|d| d.rollout == Rollout::Complete && d.available >= d.desired)
        && revision
            .as_ref()
            .is_none_or(|r| r.status == RevisionStatus::Deployed)
    {
        Health::Healthy
    } else {
        Health::Degraded
    };
    StatusReport {
        release: release_name.to_owned(),
        namespace: namespace.to_owned(),
        health,
        revision,
        deployments: deployment_infos,
        pods: pod_infos,
        services: service_infos,
        ingress,
        warnings,
    }
}

fn waiting_reason(pod: &Pod) -> Option<String> {
    pod.status
        .as_ref()?
        .container_statuses
        .iter()
        .flatten()
        .find_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone())
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
        let healthy = report(
            "todo",
            "todo",
            None,
            std::slice::from_ref(&complete),
            &[],
            &[],
            &[],
            &[],
            now,
        );
        assert_eq!(healthy.health, Health::Healthy);
        assert_eq!(healthy.deployments[0].images, ["todo-backend:v1"]);
        let mut degraded = complete.clone();
        degraded.status.as_mut().unwrap().available_replicas = Some(1);
        let report_degraded = report("todo", "todo", None, &[degraded], &[], &[], &[], &[], now);
        assert_eq!(report_degraded.health, Health::Degraded);
        assert_eq!(report_degraded.deployments[0].rollout, Rollout::Progressing);
        let absent = report("todo", "todo", None, &[], &[], &[], &[], &[], now);
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
        let report = report(
            "todo",
            "todo",
            None,
            &[],
            &[pod],
            &[],
            &[],
            &[],
            jiff::Timestamp::now(),
        );
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
}
