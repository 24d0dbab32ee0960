//! Server-side defaulting, as the 1.24 API server applies it when decoding a
//! request (what the transcripts' responses show beyond what was sent), and
//! the admission-time additions to pods (service account volume, tolerations,
//! priority).

use serde_json::{Map, Value, json};

use crate::util::{path_mut, random_suffix};

fn default_key(m: &mut Map<String, Value>, k: &str, v: Value) {
    if m.get(k).is_none_or(|x| x.is_null()) {
        m.insert(k.to_string(), v);
    }
}

fn obj_mut<'a>(v: &'a mut Value, k: &str) -> Option<&'a mut Map<String, Value>> {
    v.get_mut(k).and_then(|x| x.as_object_mut())
}

/// Defaults every kind.
pub fn apply_defaults(kind: &str, obj: &mut Value) {
    match kind {
        "Deployment" => deployment(obj),
        "ReplicaSet" => replicaset(obj),
        "Pod" => pod(obj),
        "Service" => service(obj),
        "Namespace" => namespace(obj),
        "Secret" => secret(obj),
        "NetworkPolicy" => network_policy(obj),
        "HorizontalPodAutoscaler" => hpa(obj),
        _ => {}
    }
}

fn deployment(obj: &mut Value) {
    let Some(spec) = obj_mut(obj, "spec") else {
        return;
    };
    default_key(spec, "replicas", json!(1));
    default_key(spec, "strategy", json!({}));
    if let Some(strategy) = spec.get_mut("strategy").and_then(|s| s.as_object_mut()) {
        default_key(strategy, "type", json!("RollingUpdate"));
        if strategy.get("type").and_then(|t| t.as_str()) == Some("RollingUpdate") {
            default_key(strategy, "rollingUpdate", json!({}));
            if let Some(ru) = strategy
                .get_mut("rollingUpdate")
                .and_then(|s| s.as_object_mut())
            {
                default_key(ru, "maxUnavailable", json!("25%"));
                default_key(ru, "maxSurge", json!("25%"));
            }
        }
    }
    default_key(spec, "revisionHistoryLimit", json!(10));
    default_key(spec, "progressDeadlineSeconds", json!(600));
    if let Some(t) = spec.get_mut("template") {
        template(t);
    }
}

fn replicaset(obj: &mut Value) {
    let Some(spec) = obj_mut(obj, "spec") else {
        return;
    };
    default_key(spec, "replicas", json!(1));
    if let Some(t) = spec.get_mut("template") {
        template(t);
    }
}

fn template(t: &mut Value) {
    if let Some(m) = t.as_object_mut() {
        default_key(m, "metadata", json!({}));
    }
    if let Some(meta) = obj_mut(t, "metadata") {
        meta.entry("creationTimestamp").or_insert(Value::Null);
    }
    if let Some(spec) = t.get_mut("spec") {
        pod_spec(spec);
    }
}

/// Image pull policy default: Always for `:latest` or untagged, else IfNotPresent.
pub fn default_pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn probe(p: &mut Value) {
    let Some(m) = p.as_object_mut() else {
        return;
    };
    default_key(m, "timeoutSeconds", json!(1));
    default_key(m, "periodSeconds", json!(10));
    default_key(m, "successThreshold", json!(1));
    default_key(m, "failureThreshold", json!(3));
    if let Some(h) = m.get_mut("httpGet").and_then(|h| h.as_object_mut()) {
        default_key(h, "scheme", json!("HTTP"));
    }
}

fn container(c: &mut Value) {
    let image = c["image"].as_str().unwrap_or("").to_string();
    let Some(m) = c.as_object_mut() else {
        return;
    };
    default_key(m, "resources", json!({}));
    default_key(m, "terminationMessagePath", json!("/dev/termination-log"));
    default_key(m, "terminationMessagePolicy", json!("File"));
    default_key(m, "imagePullPolicy", json!(default_pull_policy(&image)));
    if let Some(ports) = m.get_mut("ports").and_then(|p| p.as_array_mut()) {
        for p in ports {
            if let Some(pm) = p.as_object_mut() {
                default_key(pm, "protocol", json!("TCP"));
            }
        }
    }
    for k in ["readinessProbe", "livenessProbe", "startupProbe"] {
        if let Some(p) = m.get_mut(k) {
            probe(p);
        }
    }
    if let Some(env) = m.get_mut("env").and_then(|e| e.as_array_mut()) {
        for e in env {
            if let Some(fr) = e
                .get_mut("valueFrom")
                .and_then(|v| v.get_mut("fieldRef"))
                .and_then(|f| f.as_object_mut())
            {
                default_key(fr, "apiVersion", json!("v1"));
            }
        }
    }
}

fn pod_spec(spec: &mut Value) {
    let Some(m) = spec.as_object_mut() else {
        return;
    };
    default_key(m, "restartPolicy", json!("Always"));
    default_key(m, "terminationGracePeriodSeconds", json!(30));
    default_key(m, "dnsPolicy", json!("ClusterFirst"));
    default_key(m, "securityContext", json!({}));
    default_key(m, "schedulerName", json!("default-scheduler"));
    for k in ["containers", "initContainers"] {
        if let Some(cs) = m.get_mut(k).and_then(|c| c.as_array_mut()) {
            for c in cs {
                container(c);
            }
        }
    }
    if let Some(vols) = m.get_mut("volumes").and_then(|v| v.as_array_mut()) {
        for v in vols {
            for k in ["configMap", "secret"] {
                if let Some(s) = v.get_mut(k).and_then(|s| s.as_object_mut()) {
                    default_key(s, "defaultMode", json!(420));
                }
            }
        }
    }
}

fn pod(obj: &mut Value) {
    if let Some(spec) = obj.get_mut("spec") {
        pod_spec(spec);
        if let Some(m) = spec.as_object_mut() {
            default_key(m, "enableServiceLinks", json!(true));
        }
        if let Some(cs) = spec.get_mut("containers").and_then(|c| c.as_array_mut()) {
            for c in cs {
                // Requests default to limits.
                let limits = c.pointer("/resources/limits").cloned();
                if let Some(Value::Object(l)) = limits {
                    let req = path_mut(c, &["resources", "requests"]);
                    if req.is_null() {
                        *req = json!({});
                    }
                    if let Some(r) = req.as_object_mut() {
                        for (k, v) in l {
                            r.entry(k).or_insert(v);
                        }
                    }
                }
            }
        }
    }
}

/// Admission-time additions to a new pod (ServiceAccount, DefaultTolerationSeconds, Priority).
pub fn admit_pod(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").and_then(|s| s.as_object_mut()) else {
        return;
    };
    default_key(spec, "serviceAccountName", json!("default"));
    let sa = spec["serviceAccountName"].clone();
    spec.insert("serviceAccount".into(), sa);
    let automount = spec
        .get("automountServiceAccountToken")
        .and_then(|a| a.as_bool())
        .unwrap_or(true);
    if automount {
        let vol_name = format!("kube-api-access-{}", random_suffix(5));
        let vols = spec.entry("volumes").or_insert(json!([]));
        if let Some(a) = vols.as_array_mut() {
            a.push(json!({
                "name": vol_name,
                "projected": {
                    "sources": [
                        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
                    ],
                    "defaultMode": 420
                }
            }));
        }
        if let Some(cs) = spec.get_mut("containers").and_then(|c| c.as_array_mut()) {
            for c in cs {
                if let Some(cm) = c.as_object_mut() {
                    let mounts = cm.entry("volumeMounts").or_insert(json!([]));
                    if let Some(a) = mounts.as_array_mut() {
                        a.push(json!({"name": vol_name, "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}));
                    }
                }
            }
        }
    }
    let tol = spec.entry("tolerations").or_insert(json!([]));
    if let Some(a) = tol.as_array_mut() {
        for key in [
            "node.kubernetes.io/not-ready",
            "node.kubernetes.io/unreachable",
        ] {
            if !a.iter().any(|t| t["key"] == key) {
                a.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}));
            }
        }
    }
    default_key(spec, "priority", json!(0));
    default_key(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
}

/// The QoS class of a pod from its containers' resources.
pub fn qos_class(pod: &Value) -> &'static str {
    let cs = pod.pointer("/spec/containers").and_then(|c| c.as_array());
    let Some(cs) = cs else {
        return "BestEffort";
    };
    let mut any = false;
    let mut guaranteed = true;
    for c in cs {
        let req = c.pointer("/resources/requests").and_then(|r| r.as_object());
        let lim = c.pointer("/resources/limits").and_then(|r| r.as_object());
        if req.is_some_and(|r| !r.is_empty()) || lim.is_some_and(|l| !l.is_empty()) {
            any = true;
        }
        for res in ["cpu", "memory"] {
            let l = lim.and_then(|l| l.get(res));
            let r = req.and_then(|r| r.get(res));
            if l.is_none() || r != l {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

fn service(obj: &mut Value) {
    let Some(spec) = obj_mut(obj, "spec") else {
        return;
    };
    default_key(spec, "type", json!("ClusterIP"));
    default_key(spec, "sessionAffinity", json!("None"));
    let ty = spec["type"].as_str().unwrap_or("ClusterIP").to_string();
    if ty != "ExternalName" {
        default_key(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if ty == "NodePort" || ty == "LoadBalancer" {
        default_key(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if ty == "LoadBalancer" {
        default_key(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    if let Some(ports) = spec.get_mut("ports").and_then(|p| p.as_array_mut()) {
        for p in ports {
            if let Some(pm) = p.as_object_mut() {
                default_key(pm, "protocol", json!("TCP"));
                let port = pm.get("port").cloned().unwrap_or(Value::Null);
                default_key(pm, "targetPort", port);
            }
        }
    }
}

fn namespace(obj: &mut Value) {
    let name = obj
        .pointer("/metadata/name")
        .and_then(|n| n.as_str())
        .unwrap_or("")
        .to_string();
    if let Some(meta) = obj_mut(obj, "metadata") {
        let labels = meta.entry("labels").or_insert(json!({}));
        if let Some(l) = labels.as_object_mut() {
            l.insert("kubernetes.io/metadata.name".into(), json!(name));
        }
    }
}

fn secret(obj: &mut Value) {
    if let Some(m) = obj.as_object_mut() {
        default_key(m, "type", json!("Opaque"));
        if let Some(Value::Object(sd)) = m.remove("stringData") {
            let data = m.entry("data").or_insert(json!({}));
            if let Some(d) = data.as_object_mut() {
                for (k, v) in sd {
                    d.insert(k, json!(base64_encode(v.as_str().unwrap_or("").as_bytes())));
                }
            }
        }
    }
}

fn network_policy(obj: &mut Value) {
    let Some(spec) = obj_mut(obj, "spec") else {
        return;
    };
    default_key(spec, "podSelector", json!({}));
    if spec.get("policyTypes").is_none() {
        let mut types = vec![json!("Ingress")];
        if spec.get("egress").is_some_and(|e| !e.is_null()) {
            types.push(json!("Egress"));
        }
        spec.insert("policyTypes".into(), Value::Array(types));
    }
    for dir in ["ingress", "egress"] {
        if let Some(rules) = spec.get_mut(dir).and_then(|r| r.as_array_mut()) {
            for r in rules {
                if let Some(ports) = r.get_mut("ports").and_then(|p| p.as_array_mut()) {
                    for p in ports {
                        if let Some(pm) = p.as_object_mut() {
                            default_key(pm, "protocol", json!("TCP"));
                        }
                    }
                }
            }
        }
    }
}

fn hpa(obj: &mut Value) {
    let Some(spec) = obj_mut(obj, "spec") else {
        return;
    };
    default_key(spec, "minReplicas", json!(1));
    if spec
        .get("metrics")
        .and_then(|m| m.as_array())
        .is_none_or(|a| a.is_empty())
    {
        spec.insert(
            "metrics".into(),
            json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]),
        );
    }
}

/// Standard base64 (for Secret `stringData`).
pub fn base64_encode(data: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = ((b[0] as u32) << 16) | ((b[1] as u32) << 8) | b[2] as u32;
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_defaults_match_transcript() {
        let mut d = json!({"spec": {"replicas": 1, "selector": {"matchLabels": {"app": "a"}}, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "web", "image": "probe-busybox:1", "imagePullPolicy": "Never", "ports": [{"containerPort": 8000}],
            "readinessProbe": {"httpGet": {"path": "/api/health", "port": 8000}, "initialDelaySeconds": 1, "periodSeconds": 1}}], "terminationGracePeriodSeconds": 2}}}});
        apply_defaults("Deployment", &mut d);
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            c["readinessProbe"],
            json!({"httpGet": {"path": "/api/health", "port": 8000, "scheme": "HTTP"}, "initialDelaySeconds": 1, "timeoutSeconds": 1, "periodSeconds": 1, "successThreshold": 1, "failureThreshold": 3})
        );
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert_eq!(
            d["spec"]["template"]["metadata"]["creationTimestamp"],
            Value::Null
        );
        assert_eq!(
            d["spec"]["template"]["spec"]["schedulerName"],
            "default-scheduler"
        );
    }

    #[test]
    fn pull_policy_rules() {
        assert_eq!(default_pull_policy("nginx"), "Always");
        assert_eq!(default_pull_policy("nginx:latest"), "Always");
        assert_eq!(default_pull_policy("nginx:1.2"), "IfNotPresent");
        assert_eq!(default_pull_policy("localhost:5000/nginx"), "Always");
    }

    #[test]
    fn qos() {
        assert_eq!(
            qos_class(&json!({"spec": {"containers": [{"resources": {}}]}})),
            "BestEffort"
        );
        assert_eq!(
            qos_class(
                &json!({"spec": {"containers": [{"resources": {"requests": {"cpu": "64", "memory": "1Gi"}}}]}})
            ),
            "Burstable"
        );
        assert_eq!(base64_encode(b"hello"), "aGVsbG8=");
    }
}
