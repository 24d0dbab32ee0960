//! The steps of a replacement that touch the cluster, each waiting on what the API says (watches,
//! never sleeps): an old Deployment of our name set aside with its pods left serving; the extra
//! replicas ours run while the old ones serve; the wait until a switched Service's endpoints list
//! our pods and no old one; the old workloads scaled to zero and deleted.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Endpoints, Pod};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, Preconditions, PropagationPolicy,
};
use kube::runtime::wait::{await_condition, conditions};
use serde_json::{Value, json};

use super::plan::Old;
use super::{AdoptError, AdoptEvent, SURGE_MANAGER};
use crate::cluster::{self, Cluster};
use crate::progress::Events;

fn api_error(action: &'static str, object: String) -> impl FnOnce(kube::Error) -> AdoptError {
    move |source| AdoptError::Api {
        action,
        object,
        source,
    }
}

/// Deletes the old Deployment `old` (of our name) but not its ReplicaSets and pods, which go on
/// serving, and waits until it is gone. Returns its ReplicaSets and their replicas, to remove
/// once ours serve.
pub async fn set_aside(
    cluster: &Cluster,
    namespace: &str,
    old: &Old,
    timeout: Duration,
    events: &Events,
) -> Result<Vec<(String, i32)>, AdoptError> {
    let sets: Api<ReplicaSet> = Api::namespaced(cluster.client.clone(), namespace);
    let all = ListParams::default();
    let listed = cluster::retrying(events, "list ReplicaSets", || sets.list(&all))
        .await
        .map_err(api_error("list", "ReplicaSets".to_owned()))?;
    let replica_sets: Vec<(String, i32)> = listed
        .items
        .iter()
        .filter(|rs| {
            rs.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.uid == old.uid)
        })
        .filter_map(|rs| {
            let replicas = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            Some((rs.metadata.name.clone()?, replicas))
        })
        .collect();
    let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), namespace);
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Orphan),
        preconditions: Some(Preconditions {
            uid: Some(old.uid.clone()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    let label = format!("Deployment/{}", old.name);
    match deployments.delete(&old.name, &params).await {
        Ok(_) => {}
        Err(error) if cluster::status_code(&error) == Some(404) => {}
        Err(error) => return Err(api_error("delete", label)(error)),
    }
    let gone = await_condition(deployments, &old.name, conditions::is_deleted(&old.uid));
    match tokio::time::timeout(timeout, gone).await {
        Ok(Ok(_)) => {}
        Ok(Err(source)) => {
            return Err(AdoptError::Watch {
                object: label,
                source,
            });
        }
        Err(_) => {
            return Err(AdoptError::TimedOut {
                what: format!("the deletion of {label}"),
                seconds: timeout.as_secs(),
            });
        }
    }
    events.send(AdoptEvent::OrphanedOld {
        deployment: old.name.clone(),
        replica_sets: replica_sets.iter().map(|(name, _)| name.clone()).collect(),
    });
    Ok(replica_sets)
}

/// Sets the replicas of our Deployment, which an autoscaler scales (our applies leave them out),
/// to `replicas` under a manager of its own: the old workloads' count serves until they are gone,
/// and no apply of ours resets it before the autoscaler takes over.
pub async fn surge(
    cluster: &Cluster,
    namespace: &str,
    deployment: &str,
    replicas: i32,
    events: &Events,
) -> Result<(), AdoptError> {
    let api: Api<Deployment> = Api::namespaced(cluster.client.clone(), namespace);
    let body = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": deployment},
                      "spec": {"replicas": replicas}});
    let params = PatchParams::apply(SURGE_MANAGER).force();
    let patch = Patch::Apply(&body);
    cluster::retrying(events, &format!("scale Deployment/{deployment}"), || {
        api.patch(deployment, &params, &patch)
    })
    .await
    .map(|_| ())
    .map_err(api_error("scale", format!("Deployment/{deployment}")))
}

/// The label selector of a Service's `spec.selector`, as list calls take it.
pub fn label_selector(selector: &Value) -> String {
    selector
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// The names of the pods a Service's `selector` selects now.
pub async fn pods(
    cluster: &Cluster,
    namespace: &str,
    selector: &Value,
    events: &Events,
) -> Result<BTreeSet<String>, AdoptError> {
    let api: Api<Pod> = Api::namespaced(cluster.client.clone(), namespace);
    let params = ListParams::default().labels(&label_selector(selector));
    let listed = cluster::retrying(events, "list pods", || api.list(&params))
        .await
        .map_err(api_error("list", "pods".to_owned()))?;
    Ok(listed
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect())
}

/// The ready pods an Endpoints object lists.
pub fn ready_pods(endpoints: &Endpoints) -> Vec<String> {
    endpoints
        .subsets
        .iter()
        .flatten()
        .flat_map(|s| s.addresses.iter().flatten())
        .filter_map(|a| a.target_ref.as_ref().and_then(|r| r.name.clone()))
        .collect()
}

/// Waits until the endpoints of `service` list ready pods and none of `old`: the switch has
/// reached every client that reads them. Returns how many ready pods they list.
pub async fn await_endpoints(
    cluster: &Cluster,
    namespace: &str,
    service: &str,
    old: &BTreeSet<String>,
    timeout: Duration,
    events: &Events,
) -> Result<usize, AdoptError> {
    let api: Api<Endpoints> = Api::namespaced(cluster.client.clone(), namespace);
    if let Err(error) = api.get_opt(service).await
        && cluster::status_code(&error) == Some(403)
    {
        events.send(AdoptEvent::EndpointsUnreadable {
            service: service.to_owned(),
        });
        return Ok(0);
    }
    let moved = |endpoints: Option<&Endpoints>| {
        endpoints.is_some_and(|e| {
            let ready = ready_pods(e);
            !ready.is_empty() && ready.iter().all(|p| !old.contains(p))
        })
    };
    let stuck = || AdoptError::EndpointsStuck {
        service: service.to_owned(),
        seconds: timeout.as_secs(),
    };
    match tokio::time::timeout(timeout, await_condition(api, service, moved)).await {
        Ok(Ok(Some(endpoints))) => Ok(ready_pods(&endpoints).len()),
        Ok(Ok(None)) | Err(_) => Err(stuck()),
        Ok(Err(source)) => Err(AdoptError::Watch {
            object: format!("the endpoints of Service/{service}"),
            source,
        }),
    }
}

/// Scales an old workload (`Deployment` or `ReplicaSet`, which ran `replicas`) to zero and
/// deletes it with its dependents. One that is gone already is fine.
pub async fn retire(
    cluster: &Cluster,
    namespace: &str,
    (kind, name, replicas): (&str, &str, i32),
    events: &Events,
) -> Result<(), AdoptError> {
    let label = format!("{kind}/{name}");
    let resource = match kind {
        "ReplicaSet" => kube::api::ApiResource::erase::<ReplicaSet>(&()),
        _ => kube::api::ApiResource::erase::<Deployment>(&()),
    };
    let api: Api<kube::api::DynamicObject> =
        Api::namespaced_with(cluster.client.clone(), namespace, &resource);
    let params = PatchParams {
        field_manager: Some(crate::apply::FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    };
    let zero = json!({"spec": {"replicas": 0}});
    let zero = Patch::Merge(&zero);
    let scaled = cluster::retrying(events, &format!("scale {label}"), || {
        api.patch(name, &params, &zero)
    })
    .await;
    match scaled {
        Ok(_) => {}
        Err(error) if cluster::status_code(&error) == Some(404) => return Ok(()),
        Err(error) => return Err(api_error("scale", label)(error)),
    }
    let background = DeleteParams::background();
    let deleted = cluster::retrying(events, &format!("delete {label}"), || {
        api.delete(name, &background)
    })
    .await;
    match deleted {
        Ok(_) => {}
        Err(error) if cluster::status_code(&error) == Some(404) => {}
        Err(error) => return Err(api_error("delete", label)(error)),
    }
    events.send(AdoptEvent::Retired {
        workload: label,
        replicas,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_selector_becomes_a_label_selector() {
        assert_eq!(
            label_selector(&json!({"app": "todo-app", "component": "backend"})),
            "app=todo-app,component=backend"
        );
    }

    #[test]
    fn only_ready_addresses_count() {
        let endpoints: Endpoints =
            serde_json::from_value(json!({"metadata": {"name": "backend"}, "subsets": [
            {"addresses": [{"ip": "10.0.0.1", "targetRef": {"kind": "Pod", "name": "a"}}],
             "notReadyAddresses": [{"ip": "10.0.0.2", "targetRef": {"kind": "Pod", "name": "b"}}],
             "ports": [{"port": 8000}]}]}))
            .expect("Endpoints");
        assert_eq!(ready_pods(&endpoints), ["a"]);
    }
}
