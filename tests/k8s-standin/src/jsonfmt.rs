//! The JSON writer: object fields in the order the Go structs declare them
//! (the server's output order), Go maps with sorted keys.

use serde_json::Value;

/// Rank of a key inside a struct-like object, by the Go struct declaration order
/// of the kinds served. Unknown keys sort after known ones, alphabetically.
fn key_rank(k: &str) -> usize {
    const ORDER: &[&str] = &[
        "kind",
        "apiVersion",
        "metadata",
        // ObjectMeta
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
        // ManagedFieldsEntry
        "manager",
        "operation",
        "time",
        "fieldsType",
        "fieldsV1",
        "subresource",
        // Event
        "involvedObject",
        "reason",
        "message",
        "source",
        "firstTimestamp",
        "lastTimestamp",
        "count",
        "type",
        "eventTime",
        "series",
        "action",
        "related",
        "reportingComponent",
        "reportingInstance",
        // ConfigMap / Secret
        "immutable",
        "data",
        "stringData",
        "binaryData",
        "spec",
        // Deployment / ReplicaSet spec
        "replicas",
        "minReadySeconds",
        "selector",
        "matchLabels",
        "matchExpressions",
        "template",
        "strategy",
        "rollingUpdate",
        "maxUnavailable",
        "maxSurge",
        "revisionHistoryLimit",
        "paused",
        "progressDeadlineSeconds",
        // PodSpec
        "volumes",
        "initContainers",
        "containers",
        "ephemeralContainers",
        "restartPolicy",
        "terminationGracePeriodSeconds",
        "activeDeadlineSeconds",
        "dnsPolicy",
        "nodeSelector",
        "serviceAccountName",
        "serviceAccount",
        "automountServiceAccountToken",
        "nodeName",
        "hostNetwork",
        "hostPID",
        "hostIPC",
        "shareProcessNamespace",
        "securityContext",
        "imagePullSecrets",
        "hostname",
        "subdomain",
        "affinity",
        "schedulerName",
        "tolerations",
        "hostAliases",
        "priorityClassName",
        "priority",
        "dnsConfig",
        "readinessGates",
        "runtimeClassName",
        "enableServiceLinks",
        "preemptionPolicy",
        "overhead",
        "topologySpreadConstraints",
        // Container
        "image",
        "command",
        "args",
        "workingDir",
        "ports",
        "envFrom",
        "env",
        "resources",
        "volumeMounts",
        "volumeDevices",
        "livenessProbe",
        "readinessProbe",
        "startupProbe",
        "lifecycle",
        "terminationMessagePath",
        "terminationMessagePolicy",
        "imagePullPolicy",
        "stdin",
        "stdinOnce",
        "tty",
        // ContainerPort / ServicePort
        "hostPort",
        "containerPort",
        "protocol",
        "appProtocol",
        "port",
        "targetPort",
        "nodePort",
        "hostIP",
        // Probe
        "exec",
        "httpGet",
        "tcpSocket",
        "grpc",
        "path",
        "host",
        "scheme",
        "httpHeaders",
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
        // Volumes / mounts
        "readOnly",
        "mountPath",
        "subPath",
        "projected",
        "sources",
        "serviceAccountToken",
        "expirationSeconds",
        "configMap",
        "secret",
        "downwardAPI",
        "items",
        "key",
        "fieldRef",
        "fieldPath",
        "defaultMode",
        "value",
        "valueFrom",
        "operator",
        "effect",
        "tolerationSeconds",
        // Service
        "clusterIP",
        "clusterIPs",
        "externalIPs",
        "sessionAffinity",
        "loadBalancerIP",
        "externalName",
        "externalTrafficPolicy",
        "ipFamilies",
        "ipFamilyPolicy",
        "internalTrafficPolicy",
        "allocateLoadBalancerNodePorts",
        "loadBalancer",
        // Lease
        "holderIdentity",
        "leaseDurationSeconds",
        "acquireTime",
        "renewTime",
        "leaseTransitions",
        // status
        "status",
        "observedGeneration",
        "phase",
        "conditions",
        "hostIPs",
        "podIP",
        "podIPs",
        "startTime",
        "initContainerStatuses",
        "containerStatuses",
        "qosClass",
        "updatedReplicas",
        "fullyLabeledReplicas",
        "readyReplicas",
        "availableReplicas",
        "unavailableReplicas",
        "collisionCount",
        "lastProbeTime",
        "lastUpdateTime",
        "lastTransitionTime",
        "state",
        "lastState",
        "ready",
        "restartCount",
        "imageID",
        "containerID",
        "started",
        "waiting",
        "running",
        "terminated",
        "exitCode",
        "signal",
        "startedAt",
        "finishedAt",
        "ip",
        // Status (errors)
        "details",
        "group",
        "causes",
        "field",
        "retryAfterSeconds",
        "code",
        // OwnerReference
        "controller",
        "blockOwnerDeletion",
        // list
        "continue",
        "remainingItemCount",
        // Node
        "capacity",
        "allocatable",
        "addresses",
        "daemonEndpoints",
        "nodeInfo",
        "images",
    ];
    ORDER.iter().position(|x| *x == k).unwrap_or(usize::MAX)
}

/// Keys whose values are Go maps (serialised with sorted keys), not structs.
fn is_plain_map(k: &str) -> bool {
    matches!(
        k,
        "labels"
            | "annotations"
            | "data"
            | "stringData"
            | "binaryData"
            | "matchLabels"
            | "nodeSelector"
            | "fieldsV1"
            | "requests"
            | "limits"
            | "capacity"
            | "allocatable"
    )
}

/// Field orders of structs whose declaration order differs from the global table.
fn explicit_order(kind: &str, parent: &str) -> Option<&'static [&'static str]> {
    Some(match (kind, parent) {
        ("Status", "") => &[
            "kind",
            "apiVersion",
            "metadata",
            "status",
            "message",
            "reason",
            "details",
            "code",
        ],
        (_, "details") => &[
            "name",
            "group",
            "kind",
            "uid",
            "causes",
            "retryAfterSeconds",
        ],
        (_, "causes") => &["reason", "message", "field"],
        ("Deployment", "status") => &[
            "observedGeneration",
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
            "unavailableReplicas",
            "conditions",
            "collisionCount",
        ],
        ("ReplicaSet", "status") => &[
            "replicas",
            "fullyLabeledReplicas",
            "readyReplicas",
            "availableReplicas",
            "observedGeneration",
            "conditions",
        ],
        ("Pod", "status") => &[
            "phase",
            "conditions",
            "message",
            "reason",
            "nominatedNodeName",
            "hostIP",
            "hostIPs",
            "podIP",
            "podIPs",
            "startTime",
            "initContainerStatuses",
            "containerStatuses",
            "qosClass",
            "ephemeralContainerStatuses",
        ],
        ("Service", "spec") => &[
            "ports",
            "selector",
            "clusterIP",
            "clusterIPs",
            "type",
            "externalIPs",
            "sessionAffinity",
            "loadBalancerIP",
            "loadBalancerSourceRanges",
            "externalName",
            "externalTrafficPolicy",
            "healthCheckNodePort",
            "publishNotReadyAddresses",
            "sessionAffinityConfig",
            "ipFamilies",
            "ipFamilyPolicy",
            "allocateLoadBalancerNodePorts",
            "loadBalancerClass",
            "internalTrafficPolicy",
        ],
        ("Service", "ports") => &[
            "name",
            "protocol",
            "appProtocol",
            "port",
            "targetPort",
            "nodePort",
        ],
        (_, "ports") => &["name", "hostPort", "containerPort", "protocol", "hostIP"],
        (_, "conditions") => &[
            "type",
            "status",
            "observedGeneration",
            "lastProbeTime",
            "lastHeartbeatTime",
            "lastUpdateTime",
            "lastTransitionTime",
            "reason",
            "message",
        ],
        (_, "containerStatuses") | (_, "initContainerStatuses") => &[
            "name",
            "state",
            "lastState",
            "ready",
            "restartCount",
            "image",
            "imageID",
            "containerID",
            "started",
        ],
        (_, "terminated") => &[
            "exitCode",
            "signal",
            "reason",
            "message",
            "startedAt",
            "finishedAt",
            "containerID",
        ],
        (_, "waiting") => &["reason", "message"],
        (_, "ownerReferences") => &[
            "apiVersion",
            "kind",
            "name",
            "uid",
            "controller",
            "blockOwnerDeletion",
        ],
        (_, "involvedObject") | (_, "regarding") => &[
            "kind",
            "namespace",
            "name",
            "uid",
            "apiVersion",
            "resourceVersion",
            "fieldPath",
        ],
        (_, "httpGet") => &["path", "port", "host", "scheme", "httpHeaders"],
        (_, "serviceAccountToken") => &["audience", "expirationSeconds", "path"],
        (_, "tolerations") => &["key", "operator", "value", "effect", "tolerationSeconds"],
        (_, "volumeMounts") => &[
            "name",
            "readOnly",
            "mountPath",
            "subPath",
            "mountPropagation",
            "subPathExpr",
        ],
        (_, "env") => &["name", "value", "valueFrom"],
        _ => return None,
    })
}

/// Serialises `v` with struct fields in Go declaration order.
pub fn to_json(v: &Value) -> String {
    let mut out = String::new();
    let kind = v.get("kind").and_then(|k| k.as_str()).unwrap_or("");
    write_value(v, kind, "", false, &mut out);
    out
}

fn write_value(v: &Value, kind: &str, parent: &str, plain: bool, out: &mut String) {
    match v {
        Value::Object(m) => {
            let kind = match m.get("kind").and_then(|k| k.as_str()) {
                Some(k) if parent.is_empty() || parent == "items" || parent == "object" => k,
                None if parent == "items" => kind.strip_suffix("List").unwrap_or(kind),
                _ => kind,
            };
            let mut keys: Vec<&String> = m.keys().collect();
            if !plain {
                let explicit = explicit_order(kind, parent);
                let rank = |k: &str| match explicit {
                    Some(order) => order.iter().position(|x| *x == k).unwrap_or(usize::MAX),
                    None => key_rank(k),
                };
                keys.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.cmp(b)));
            }
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                let child_plain =
                    is_plain_map(k) || (plain && k.starts_with(['f', 'k', 'v', 'i', '.']));
                write_value(&m[*k], kind, k, child_plain, out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(x, kind, parent, false, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn orders_like_go_structs() {
        let v = json!({"status": {}, "spec": {"b": 1, "a": 2}, "metadata": {"uid": "u", "name": "n", "labels": {"z": "1", "name": "2"}}, "kind": "K", "apiVersion": "v1"});
        assert_eq!(
            to_json(&v),
            r#"{"kind":"K","apiVersion":"v1","metadata":{"name":"n","uid":"u","labels":{"name":"2","z":"1"}},"spec":{"a":2,"b":1},"status":{}}"#
        );
    }
}
