//! What a takeover does, decided from what is live before it starts. Pure.
//!
//! Each Deployment we render is either created, adopted where it is (a live Deployment of its
//! name with our selector: its fields become ours, and its pods roll only if its template
//! differs), or a replacement: our Service of its name selects the pods of old Deployments
//! (another owner's, whose template carries the Service's current selector — the chart's
//! `app`/`component` labels), or a Deployment of its name has another selector, which cannot be
//! changed. A replacement runs ours beside the old ones (with no fewer replicas than they have),
//! switches the Service once ours are ready, and only then removes the old ones.

use std::collections::BTreeMap;

use kube::api::DynamicObject;
use serde_json::Value;

use super::Found;
use crate::apply::{FIELD_MANAGER, Object, owners};
use crate::render::{Kind, ObjectKey};

/// An old workload a replacement removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Old {
    pub name: String,
    pub uid: String,
    pub replicas: i32,
    /// It has our Deployment's name: it is deleted first with its pods left running
    /// (`propagationPolicy: Orphan`), so that ours can be created.
    pub same_name: bool,
}

/// One of our Deployments that takes over from old ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replacement {
    pub deployment: String,
    pub old: Vec<Old>,
    /// The replicas ours run until the old ones are gone, when the configuration has fewer
    /// (or leaves them to an autoscaler).
    pub surge: Option<i32>,
    /// The replicas of the configuration (`None` with an autoscaler).
    pub configured: Option<i32>,
}

impl Replacement {
    /// How many replicas the old workloads had together.
    pub fn old_replicas(&self) -> i32 {
        self.old.iter().map(|o| o.replicas).sum()
    }
}

/// The whole takeover.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Takeover {
    /// Objects with our names whose previous owner's fields become ours before our apply.
    pub transfers: Vec<Found>,
    pub replacements: Vec<Replacement>,
    /// Deployments of ours adopted where they are.
    pub in_place: Vec<String>,
}

impl Takeover {
    /// Whether a Deployment of ours replaces old ones.
    pub fn replaces(&self, deployment: &str) -> bool {
        self.replacements.iter().any(|r| r.deployment == deployment)
    }
}

/// `spec.selector.matchLabels` of a Deployment, `spec.selector` of a Service.
fn selector(kind: Kind, body: &Value) -> Value {
    match kind {
        Kind::Deployment => body["spec"]["selector"]["matchLabels"].clone(),
        _ => body["spec"]["selector"].clone(),
    }
}

/// Whether `labels` has every pair of a non-empty `selector`.
fn selects(selector: &Value, labels: &Value) -> bool {
    selector
        .as_object()
        .is_some_and(|s| !s.is_empty() && s.iter().all(|(k, v)| &labels[k] == v))
}

fn replicas(deployment: &DynamicObject) -> i32 {
    deployment.data["spec"]["replicas"]
        .as_i64()
        .and_then(|r| i32::try_from(r).ok())
        .unwrap_or(1)
}

fn old(deployment: &DynamicObject, same_name: bool) -> Old {
    Old {
        name: deployment.metadata.name.clone().unwrap_or_default(),
        uid: deployment.metadata.uid.clone().unwrap_or_default(),
        replicas: replicas(deployment),
        same_name,
    }
}

/// Plans the takeover of `found` (the foreign objects among `live`, which holds the live objects
/// with our names) by `ours`, given every Deployment of the namespace.
pub fn plan(
    ours: &[Object],
    live: &BTreeMap<ObjectKey, DynamicObject>,
    found: &[Found],
    deployments: &[DynamicObject],
) -> Takeover {
    let mut takeover = Takeover::default();
    for deployment in ours.iter().filter(|o| o.kind() == Kind::Deployment) {
        let name = deployment.name();
        let wanted = selector(Kind::Deployment, &deployment.body);
        let mut olds = Vec::new();
        let foreign = found
            .iter()
            .any(|f| f.key.kind == Kind::Deployment && f.key.name == name);
        match live.get(&ObjectKey::new(Kind::Deployment, name)) {
            Some(same) if foreign && selector(Kind::Deployment, &same.data) == wanted => {
                takeover.in_place.push(name.to_owned());
            }
            Some(same) if foreign => olds.push(old(same, true)),
            _ => {}
        }
        let service = live.get(&ObjectKey::new(Kind::Service, name));
        if let Some(service) = service.map(|s| selector(Kind::Service, &s.data))
            && service != wanted
        {
            olds.extend(
                deployments
                    .iter()
                    .filter(|d| d.metadata.name.as_deref() != Some(name))
                    .filter(|d| !owners::owner(&d.metadata, FIELD_MANAGER).is_ours())
                    .filter(|d| {
                        selects(&service, &d.data["spec"]["template"]["metadata"]["labels"])
                    })
                    .map(|d| old(d, false)),
            );
        }
        if olds.is_empty() {
            continue;
        }
        let configured = deployment.body["spec"]["replicas"]
            .as_i64()
            .and_then(|r| i32::try_from(r).ok());
        let total: i32 = olds.iter().map(|o| o.replicas).sum();
        let surge = match configured {
            Some(c) => (c < total).then_some(total),
            None => (total > 1).then_some(total),
        };
        takeover.replacements.push(Replacement {
            deployment: name.to_owned(),
            old: olds,
            surge,
            configured,
        });
    }
    takeover.transfers = found
        .iter()
        .filter(|f| {
            !(f.key.kind == Kind::Deployment
                && takeover
                    .replacements
                    .iter()
                    .any(|r| r.old.iter().any(|o| o.same_name && o.name == f.key.name)))
        })
        .cloned()
        .collect();
    takeover
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::Owner;
    use serde_json::json;

    const SELECTOR: &str =
        r#"{"app.kubernetes.io/name": "todo", "app.kubernetes.io/component": "backend"}"#;

    fn ours(replicas: Option<i64>) -> Vec<Object> {
        let selector: Value = serde_json::from_str(SELECTOR).expect("json");
        let mut body = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "backend"},
            "spec": {"selector": {"matchLabels": selector}, "template": {"metadata": {"labels": selector}}}});
        if let Some(replicas) = replicas {
            body["spec"]["replicas"] = json!(replicas);
        }
        vec![Object::from_json(body).expect("a Deployment")]
    }

    fn helm_meta(name: &str) -> Value {
        json!({"name": name, "uid": format!("uid-{name}"), "annotations": {"meta.helm.sh/release-name": "todo-app"},
               "managedFields": [{"manager": "helm", "operation": "Update"}]})
    }

    fn deployment(name: &str, labels: Value, replicas: i64) -> DynamicObject {
        serde_json::from_value(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": helm_meta(name),
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}}}}))
        .expect("a Deployment")
    }

    fn service(selector: Value) -> DynamicObject {
        serde_json::from_value(
            json!({"apiVersion": "v1", "kind": "Service", "metadata": helm_meta("backend"),
            "spec": {"selector": selector}}),
        )
        .expect("a Service")
    }

    fn found(live: &BTreeMap<ObjectKey, DynamicObject>) -> Vec<Found> {
        super::super::detect::foreign(live)
    }

    fn chart_labels() -> Value {
        json!({"app": "todo-app", "component": "backend"})
    }

    #[test]
    fn a_deployment_of_another_name_behind_our_service_is_replaced_beside_it() {
        let old = deployment("todo-app-backend", chart_labels(), 3);
        let live = BTreeMap::from([(
            ObjectKey::new(Kind::Service, "backend"),
            service(chart_labels()),
        )]);
        let other = deployment(
            "worker",
            json!({"app": "todo-app", "component": "worker"}),
            1,
        );
        let plan = plan(&ours(Some(2)), &live, &found(&live), &[old, other]);
        assert_eq!(plan.replacements.len(), 1);
        let replacement = &plan.replacements[0];
        assert_eq!(
            replacement.old,
            [Old {
                name: "todo-app-backend".into(),
                uid: "uid-todo-app-backend".into(),
                replicas: 3,
                same_name: false
            }],
            "the worker is not behind the Service"
        );
        assert_eq!(replacement.surge, Some(3), "no fewer than the old one had");
        assert_eq!(plan.transfers.len(), 1, "the Service becomes ours");
        assert!(plan.in_place.is_empty());
    }

    #[test]
    fn a_deployment_of_our_name_with_another_selector_is_set_aside() {
        let old = deployment("backend", chart_labels(), 2);
        let live = BTreeMap::from([
            (ObjectKey::new(Kind::Deployment, "backend"), old.clone()),
            (
                ObjectKey::new(Kind::Service, "backend"),
                service(chart_labels()),
            ),
        ]);
        let plan = plan(&ours(Some(2)), &live, &found(&live), &[old]);
        let replacement = &plan.replacements[0];
        assert_eq!(replacement.old.len(), 1, "found once, by name");
        assert!(replacement.old[0].same_name);
        assert_eq!(replacement.surge, None, "2 configured, 2 before");
        assert_eq!(
            plan.transfers
                .iter()
                .map(|f| f.key.to_string())
                .collect::<Vec<_>>(),
            ["Service/backend"],
            "the old Deployment is not taken over: it goes"
        );
    }

    #[test]
    fn a_deployment_with_our_selector_is_adopted_where_it_is() {
        let selector: Value = serde_json::from_str(SELECTOR).expect("json");
        let same = deployment("backend", selector.clone(), 2);
        let live = BTreeMap::from([
            (ObjectKey::new(Kind::Deployment, "backend"), same.clone()),
            (ObjectKey::new(Kind::Service, "backend"), service(selector)),
        ]);
        let plan = plan(&ours(Some(2)), &live, &found(&live), &[same]);
        assert!(plan.replacements.is_empty());
        assert_eq!(plan.in_place, ["backend"]);
        assert_eq!(plan.transfers.len(), 2);
        assert!(matches!(plan.transfers[0].owner, Owner::Helm { .. }));
    }

    #[test]
    fn with_an_autoscaler_ours_start_with_the_old_replicas() {
        let old = deployment("todo-app-backend", chart_labels(), 3);
        let live = BTreeMap::from([(
            ObjectKey::new(Kind::Service, "backend"),
            service(chart_labels()),
        )]);
        let plan = plan(&ours(None), &live, &found(&live), &[old]);
        assert_eq!(plan.replacements[0].surge, Some(3));
        assert_eq!(plan.replacements[0].configured, None);
    }

    #[test]
    fn nothing_is_replaced_when_nothing_old_is_live() {
        let plan = plan(&ours(Some(2)), &BTreeMap::new(), &[], &[]);
        assert_eq!(plan, Takeover::default());
    }
}
