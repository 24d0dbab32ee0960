//! Typed identities of what a release holds: [`Kind`], the closed set of kinds we render (with
//! their API resource, scope and apply order), and [`ObjectKey`], one object of a release. Kinds
//! are compared as values, never as strings.

use std::fmt;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::ApiResource;

/// A kind of object a release may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Namespace,
    ConfigMap,
    Secret,
    Service,
    Deployment,
    Ingress,
    HorizontalPodAutoscaler,
    PodDisruptionBudget,
    NetworkPolicy,
}

impl Kind {
    /// Every kind, in apply order: what others refer to comes first.
    pub const ALL: [Kind; 9] = [
        Kind::Namespace,
        Kind::ConfigMap,
        Kind::Secret,
        Kind::Service,
        Kind::Deployment,
        Kind::Ingress,
        Kind::HorizontalPodAutoscaler,
        Kind::PodDisruptionBudget,
        Kind::NetworkPolicy,
    ];

    /// The kinds that live in the release's namespace, in reverse apply order (dependents
    /// first): what `down` and pruning delete.
    pub fn namespaced_in_delete_order() -> impl Iterator<Item = Kind> {
        Kind::ALL.into_iter().rev().filter(|k| k.namespaced())
    }

    /// The API resource (group, version, plural) of the kind.
    pub fn resource(self) -> ApiResource {
        match self {
            Kind::Namespace => ApiResource::erase::<Namespace>(&()),
            Kind::ConfigMap => ApiResource::erase::<ConfigMap>(&()),
            Kind::Secret => ApiResource::erase::<Secret>(&()),
            Kind::Service => ApiResource::erase::<Service>(&()),
            Kind::Deployment => ApiResource::erase::<Deployment>(&()),
            Kind::Ingress => ApiResource::erase::<Ingress>(&()),
            Kind::HorizontalPodAutoscaler => ApiResource::erase::<HorizontalPodAutoscaler>(&()),
            Kind::PodDisruptionBudget => ApiResource::erase::<PodDisruptionBudget>(&()),
            Kind::NetworkPolicy => ApiResource::erase::<NetworkPolicy>(&()),
        }
    }

    pub fn namespaced(self) -> bool {
        self != Kind::Namespace
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Namespace => "Namespace",
            Kind::ConfigMap => "ConfigMap",
            Kind::Secret => "Secret",
            Kind::Service => "Service",
            Kind::Deployment => "Deployment",
            Kind::Ingress => "Ingress",
            Kind::HorizontalPodAutoscaler => "HorizontalPodAutoscaler",
            Kind::PodDisruptionBudget => "PodDisruptionBudget",
            Kind::NetworkPolicy => "NetworkPolicy",
        }
    }

    /// The kind an object's `apiVersion` and `kind` name, if it is one we render.
    pub fn of(api_version: &str, kind: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| {
            let resource = k.resource();
            resource.kind == kind && resource.api_version == api_version
        })
    }

    /// The kind of an object as JSON (a manifest in a revision record).
    pub fn of_json(object: &serde_json::Value) -> Option<Kind> {
        Kind::of(object["apiVersion"].as_str()?, object["kind"].as_str()?)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One object of a release: its kind and name (its namespace is the release's, unless the kind
/// is cluster-scoped).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    pub kind: Kind,
    pub name: String,
}

impl ObjectKey {
    pub fn new(kind: Kind, name: impl Into<String>) -> ObjectKey {
        ObjectKey {
            kind,
            name: name.into(),
        }
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_found_again_by_its_type_meta() {
        for kind in Kind::ALL {
            let resource = kind.resource();
            assert_eq!(resource.kind, kind.as_str());
            assert_eq!(Kind::of(&resource.api_version, &resource.kind), Some(kind));
        }
        assert_eq!(Kind::of("v1", "Pod"), None);
        assert_eq!(Kind::of("extensions/v1beta1", "Ingress"), None);
        let order: Vec<Kind> = Kind::namespaced_in_delete_order().collect();
        assert_eq!(order.first(), Some(&Kind::NetworkPolicy));
        assert!(!order.contains(&Kind::Namespace));
    }
}
