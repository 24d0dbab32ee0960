//! The table of resource types the stand-in stores (group, version, plural,
//! kind, scope, which get a `generation`, which have a `/status` subresource),
//! and the discovery documents served for them.

use serde_json::{Value, json};

/// One served resource type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// API group, "" for core.
    pub group: &'static str,
    pub version: &'static str,
    /// Plural resource name, as in URLs.
    pub plural: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    /// Whether the server keeps `metadata.generation` (bumped on spec changes).
    pub generation: bool,
    /// Whether there is a `/status` subresource (main resource writes keep status).
    pub status_subresource: bool,
}

impl Resource {
    /// `apps/v1` or `v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
    /// `deployments.apps` or `configmaps`: the "qualified resource" in messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
    /// Kind of the list type.
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }
}

macro_rules! res {
    ($g:expr, $v:expr, $p:expr, $k:expr, $ns:expr, $gen:expr, $st:expr) => {
        Resource {
            group: $g,
            version: $v,
            plural: $p,
            kind: $k,
            namespaced: $ns,
            generation: $gen,
            status_subresource: $st,
        }
    };
}

/// Every resource type stored.
pub static RESOURCES: &[Resource] = &[
    res!("", "v1", "namespaces", "Namespace", false, false, true),
    res!("", "v1", "nodes", "Node", false, false, true),
    res!("", "v1", "configmaps", "ConfigMap", true, false, false),
    res!("", "v1", "secrets", "Secret", true, false, false),
    res!("", "v1", "services", "Service", true, false, true),
    res!("", "v1", "pods", "Pod", true, false, true),
    res!("", "v1", "events", "Event", true, false, false),
    res!("", "v1", "endpoints", "Endpoints", true, false, false),
    res!(
        "",
        "v1",
        "serviceaccounts",
        "ServiceAccount",
        true,
        false,
        false
    ),
    res!("apps", "v1", "deployments", "Deployment", true, true, true),
    res!("apps", "v1", "replicasets", "ReplicaSet", true, true, true),
    res!(
        "networking.k8s.io",
        "v1",
        "ingresses",
        "Ingress",
        true,
        true,
        true
    ),
    res!(
        "networking.k8s.io",
        "v1",
        "ingressclasses",
        "IngressClass",
        false,
        true,
        false
    ),
    res!(
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        "NetworkPolicy",
        true,
        true,
        false
    ),
    res!(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        true,
        false,
        true
    ),
    res!(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        true,
        true,
        true
    ),
    res!(
        "coordination.k8s.io",
        "v1",
        "leases",
        "Lease",
        true,
        false,
        false
    ),
    res!(
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "Role",
        true,
        false,
        false
    ),
    res!(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "RoleBinding",
        true,
        false,
        false
    ),
    res!(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "ClusterRole",
        false,
        false,
        false
    ),
    res!(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        false,
        false,
        false
    ),
];

/// Looks a resource up by group, version and plural.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Looks a resource up by kind (the first one serving it).
pub fn by_kind(kind: &str) -> Option<&'static Resource> {
    RESOURCES.iter().find(|r| r.kind == kind)
}

/// Looks a resource up by apiVersion and kind, as in an ownerReference.
pub fn by_api_version_kind(api_version: &str, kind: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.kind == kind && r.api_version() == api_version)
        .or_else(|| by_kind(kind))
}

/// The discovery documents of Kubernetes 1.24 (recorded).
pub fn discovery() -> Value {
    serde_json::from_str(include_str!("data/discovery-1.24.json")).unwrap_or_else(|_| json!({}))
}

/// The `/version` document for a server version like "1.24" or "1.30".
pub fn version_doc(version: &str) -> Value {
    let mut doc = discovery()
        .get("/version")
        .cloned()
        .unwrap_or_else(|| json!({}));
    if version != "1.24" {
        let minor = version.split('.').nth(1).unwrap_or("24");
        doc["minor"] = json!(minor);
        doc["gitVersion"] = json!(format!("v{version}.0"));
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_parses() {
        let d = discovery();
        assert_eq!(d["/version"]["gitVersion"], "v1.24.0-alpha.2");
        assert!(d["/apis/apps/v1"]["resources"].is_array());
    }

    #[test]
    fn qualified_names() {
        let d = find("apps", "v1", "deployments").expect("deployments");
        assert_eq!(d.qualified(), "deployments.apps");
        assert_eq!(find("", "v1", "pods").expect("pods").qualified(), "pods");
    }
}
