//! The slice of the Kubernetes OpenAPI schema that server-side apply needs:
//! which lists are associative (and by which keys), which are sets, which
//! structs are atomic, and the zero-valued object each kind decodes to.
//!
//! Paths are field names from the object root with `"[]"` for a list item.

use serde_json::{Value, json};

/// How a list merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// Replaced as a whole (the default for untagged lists).
    Atomic,
    /// `listType=set`: items are scalars, identified by value.
    Set,
    /// `listType=map` with these key fields.
    Map(&'static [&'static str]),
}

fn is_container_list(s: &str) -> bool {
    matches!(s, "containers" | "initContainers" | "ephemeralContainers")
}

/// The list kind at `path` (the path of the list field itself).
pub fn list_kind(kind: &str, path: &[&str]) -> ListKind {
    let Some((last, parents)) = path.split_last() else {
        return ListKind::Atomic;
    };
    let parent = parents.last().copied().unwrap_or("");
    let grand = if parents.len() >= 2 {
        parents[parents.len() - 2]
    } else {
        ""
    };
    match *last {
        s if is_container_list(s) => ListKind::Map(&["name"]),
        "volumes" if parent == "spec" => ListKind::Map(&["name"]),
        "env" if parent == "[]" && is_container_list(grand) => ListKind::Map(&["name"]),
        "volumeMounts" => ListKind::Map(&["mountPath"]),
        "volumeDevices" => ListKind::Map(&["devicePath"]),
        "ports" if parent == "[]" && is_container_list(grand) => {
            ListKind::Map(&["containerPort", "protocol"])
        }
        "ports" if kind == "Service" && path == ["spec", "ports"] => {
            ListKind::Map(&["port", "protocol"])
        }
        "imagePullSecrets" => ListKind::Map(&["name"]),
        "ownerReferences" if path == ["metadata", "ownerReferences"] => ListKind::Map(&["uid"]),
        "finalizers" if path == ["metadata", "finalizers"] => ListKind::Set,
        "conditions" if parents.first() == Some(&"status") => ListKind::Map(&["type"]),
        "podIPs" | "hostIPs" => ListKind::Map(&["ip"]),
        "hostAliases" => ListKind::Map(&["ip"]),
        "topologySpreadConstraints" => ListKind::Map(&["topologyKey", "whenUnsatisfiable"]),
        "addresses" if kind == "Node" => ListKind::Map(&["type"]),
        _ => ListKind::Atomic,
    }
}

/// Whether the map at `path` is an atomic struct (owned and replaced whole).
pub fn map_atomic(kind: &str, path: &[&str]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let parent = parents.last().copied().unwrap_or("");
    match *last {
        "selector" => {
            path == ["spec", "selector"]
                && matches!(
                    kind,
                    "Deployment"
                        | "ReplicaSet"
                        | "PodDisruptionBudget"
                        | "StatefulSet"
                        | "DaemonSet"
                )
        }
        "podSelector" | "namespaceSelector" | "labelSelector" => true,
        "involvedObject" | "regarding" | "related" => true,
        "fieldRef" | "resourceFieldRef" | "configMapKeyRef" | "secretKeyRef" => true,
        "[]" => parent == "ownerReferences",
        _ => false,
    }
}

/// Key fields that default when absent (the `protocol` of ports).
pub fn key_default(field: &str) -> Option<Value> {
    (field == "protocol").then(|| json!("TCP"))
}

/// The object an empty Go struct of `kind` serialises to: what a create is
/// compared against when computing the creator's managed fields.
pub fn empty_object(kind: &str) -> Value {
    let meta = json!({"creationTimestamp": null});
    let template = json!({"metadata": {"creationTimestamp": null}, "spec": {"containers": null}});
    match kind {
        "Deployment" => {
            json!({"metadata": meta, "spec": {"selector": null, "template": template, "strategy": {}}, "status": {}})
        }
        "ReplicaSet" => {
            json!({"metadata": meta, "spec": {"selector": null, "template": template}, "status": {"replicas": 0}})
        }
        "Pod" => json!({"metadata": meta, "spec": {"containers": null}, "status": {}}),
        "Service" | "Ingress" => {
            json!({"metadata": meta, "spec": {}, "status": {"loadBalancer": {}}})
        }
        "Event" => {
            json!({"metadata": meta, "involvedObject": {}, "source": {}, "firstTimestamp": null, "lastTimestamp": null, "eventTime": null, "reportingComponent": "", "reportingInstance": ""})
        }
        "Lease" => json!({"metadata": meta, "spec": {}}),
        "Namespace" | "Node" => json!({"metadata": meta, "spec": {}, "status": {}}),
        "NetworkPolicy" => json!({"metadata": meta, "spec": {"podSelector": {}}}),
        "HorizontalPodAutoscaler" => {
            json!({"metadata": meta, "spec": {"scaleTargetRef": {"kind": "", "name": ""}, "maxReplicas": 0}, "status": {"desiredReplicas": 0, "currentMetrics": null}})
        }
        "PodDisruptionBudget" => {
            json!({"metadata": meta, "spec": {}, "status": {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0}})
        }
        _ => json!({"metadata": meta}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ports_are_keyed_by_port_and_protocol() {
        assert_eq!(
            list_kind(
                "Deployment",
                &["spec", "template", "spec", "containers", "[]", "ports"]
            ),
            ListKind::Map(&["containerPort", "protocol"])
        );
        assert_eq!(
            list_kind("Service", &["spec", "ports"]),
            ListKind::Map(&["port", "protocol"])
        );
        assert_eq!(
            list_kind("Pod", &["spec", "containers", "[]", "args"]),
            ListKind::Atomic
        );
        assert!(map_atomic("Deployment", &["spec", "selector"]));
        assert!(!map_atomic("Service", &["spec", "selector"]));
    }
}
