//! Plan → Manifests: the Kubernetes objects of a release, as typed `k8s-openapi` values, in the
//! order they are applied. Pure: no I/O, so it is snapshot-tested as it is.

pub mod kind;
pub mod labels;
mod network;
mod policy;
pub mod registry;
mod workloads;

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

pub use kind::{Kind, ObjectKey};

use crate::plan::Plan;

/// One object to apply. (A release has a dozen of these, so the size of the largest variant
/// does not matter.)
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Manifest {
    Namespace(Namespace),
    ConfigMap(ConfigMap),
    Secret(Secret),
    Service(Service),
    Deployment(Deployment),
    Ingress(Ingress),
    HorizontalPodAutoscaler(HorizontalPodAutoscaler),
    PodDisruptionBudget(PodDisruptionBudget),
    NetworkPolicy(NetworkPolicy),
}

impl Manifest {
    pub fn kind(&self) -> Kind {
        match self {
            Manifest::Namespace(_) => Kind::Namespace,
            Manifest::ConfigMap(_) => Kind::ConfigMap,
            Manifest::Secret(_) => Kind::Secret,
            Manifest::Service(_) => Kind::Service,
            Manifest::Deployment(_) => Kind::Deployment,
            Manifest::Ingress(_) => Kind::Ingress,
            Manifest::HorizontalPodAutoscaler(_) => Kind::HorizontalPodAutoscaler,
            Manifest::PodDisruptionBudget(_) => Kind::PodDisruptionBudget,
            Manifest::NetworkPolicy(_) => Kind::NetworkPolicy,
        }
    }

    pub fn key(&self) -> ObjectKey {
        ObjectKey::new(self.kind(), self.name())
    }

    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Manifest::Namespace(o) => &o.metadata,
            Manifest::ConfigMap(o) => &o.metadata,
            Manifest::Secret(o) => &o.metadata,
            Manifest::Service(o) => &o.metadata,
            Manifest::Deployment(o) => &o.metadata,
            Manifest::Ingress(o) => &o.metadata,
            Manifest::HorizontalPodAutoscaler(o) => &o.metadata,
            Manifest::PodDisruptionBudget(o) => &o.metadata,
            Manifest::NetworkPolicy(o) => &o.metadata,
        }
    }

    pub fn name(&self) -> &str {
        self.metadata().name.as_deref().unwrap_or_default()
    }

    /// The object as JSON, with `apiVersion` and `kind`.
    pub fn to_json(&self) -> serde_json::Value {
        fn json<T: Serialize>(object: &T) -> serde_json::Value {
            serde_json::to_value(object).unwrap_or_default()
        }
        match self {
            Manifest::Namespace(o) => json(o),
            Manifest::ConfigMap(o) => json(o),
            Manifest::Secret(o) => json(o),
            Manifest::Service(o) => json(o),
            Manifest::Deployment(o) => json(o),
            Manifest::Ingress(o) => json(o),
            Manifest::HorizontalPodAutoscaler(o) => json(o),
            Manifest::PodDisruptionBudget(o) => json(o),
            Manifest::NetworkPolicy(o) => json(o),
        }
    }
}

impl fmt::Display for Manifest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind(), self.name())
    }
}

/// A release's objects: its Namespace, which holds the rest (and the release's lock and
/// history), and the objects in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub namespace: Namespace,
    /// In apply order.
    pub objects: Vec<Manifest>,
}

impl Rendered {
    /// Every object, the Namespace first: what `render` prints and a revision records.
    pub fn all(&self) -> Vec<Manifest> {
        let mut all = vec![Manifest::Namespace(self.namespace.clone())];
        all.extend(self.objects.iter().cloned());
        all
    }
}

/// Every object of a release: the Namespace, and in apply order ConfigMap, Secret, Services,
/// Deployments, Ingress, then the optional autoscalers, disruption budgets and network policies.
pub fn render(plan: &Plan) -> Rendered {
    Rendered {
        namespace: namespace(plan),
        objects: objects(plan),
    }
}

fn objects(plan: &Plan) -> Vec<Manifest> {
    let checksum = labels::config_checksum(plan);
    let mut manifests = vec![Manifest::ConfigMap(config_map(plan))];
    if !plan.secret.keys.is_empty() {
        manifests.push(Manifest::Secret(secret(plan)));
    }
    for service in &plan.services {
        manifests.push(Manifest::Service(network::service(plan, service)));
    }
    for service in &plan.services {
        manifests.push(Manifest::Deployment(workloads::deployment(
            plan, service, &checksum,
        )));
    }
    if let Some(ingress) = &plan.ingress {
        manifests.push(Manifest::Ingress(network::ingress(plan, ingress)));
    }
    if let Some(autoscaling) = &plan.autoscaling {
        for service in &plan.services {
            manifests.push(Manifest::HorizontalPodAutoscaler(policy::autoscaler(
                plan,
                service,
                autoscaling,
            )));
        }
    }
    if let Some(min_available) = plan.pod_disruption_budget {
        for service in &plan.services {
            manifests.push(Manifest::PodDisruptionBudget(policy::disruption_budget(
                plan,
                service,
                min_available,
            )));
        }
    }
    if let Some(ingress_namespace) = &plan.network_policy {
        for service in &plan.services {
            manifests.push(Manifest::NetworkPolicy(network::network_policy(
                plan,
                service,
                ingress_namespace,
            )));
        }
    }
    manifests
}

fn namespace(plan: &Plan) -> Namespace {
    Namespace {
        metadata: ObjectMeta {
            name: Some(plan.namespace.clone()),
            labels: Some(BTreeMap::from([
                (labels::PART_OF.to_owned(), plan.app.clone()),
                (labels::MANAGED_BY.to_owned(), labels::MANAGER.to_owned()),
            ])),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn config_map(plan: &Plan) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(plan.config_map.name.clone()),
            namespace: Some(plan.namespace.clone()),
            labels: Some(labels::release(plan, "config")),
            ..Default::default()
        },
        data: Some(plan.config_map.data.clone()),
        ..Default::default()
    }
}

fn secret(plan: &Plan) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(plan.secret.name.clone()),
            namespace: Some(plan.namespace.clone()),
            labels: Some(labels::release(plan, "config")),
            ..Default::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(
            plan.secret
                .values
                .iter()
                .map(|(key, value)| (key.clone(), ByteString(value.expose().as_bytes().to_vec())))
                .collect(),
        ),
        ..Default::default()
    }
}

/// Whether Secret values appear in printed manifests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretDisplay {
    Masked,
    Shown,
}

/// The placeholder printed instead of a Secret value.
pub const MASK: &str = "***";

/// The manifests as multi-document YAML. Masked Secrets carry `stringData` placeholders instead
/// of `data`, so the output stays valid for `kubectl --dry-run=client` and shows no value.
pub fn to_yaml(
    manifests: &[Manifest],
    secrets: SecretDisplay,
) -> Result<String, serde_saphyr::ser::Error> {
    fn yaml<T: Serialize>(object: &T) -> Result<String, serde_saphyr::ser::Error> {
        serde_saphyr::to_string(object)
    }
    let mut out = String::new();
    for manifest in manifests {
        out.push_str("---\n");
        let text = match manifest {
            Manifest::Secret(secret) if secrets == SecretDisplay::Masked => {
                out.push_str("# Secret values are masked; `--show-secrets` prints them.\n");
                let mut value = manifest.to_json();
                mask_secret(&mut value, secret);
                yaml(&value)
            }
            Manifest::Namespace(o) => yaml(o),
            Manifest::ConfigMap(o) => yaml(o),
            Manifest::Secret(o) => yaml(o),
            Manifest::Service(o) => yaml(o),
            Manifest::Deployment(o) => yaml(o),
            Manifest::Ingress(o) => yaml(o),
            Manifest::HorizontalPodAutoscaler(o) => yaml(o),
            Manifest::PodDisruptionBudget(o) => yaml(o),
            Manifest::NetworkPolicy(o) => yaml(o),
        }?;
        out.push_str(&text);
    }
    Ok(out)
}

/// Replaces a Secret's `data` with `stringData` placeholders, keeping the key names.
pub fn mask_secret(value: &mut serde_json::Value, secret: &Secret) {
    if let Some(object) = value.as_object_mut() {
        object.remove("data");
        let masked: serde_json::Map<String, serde_json::Value> = secret
            .data
            .iter()
            .flatten()
            .map(|(key, _)| (key.clone(), serde_json::Value::from(MASK)))
            .collect();
        object.insert("stringData".to_owned(), serde_json::Value::Object(masked));
    }
}
