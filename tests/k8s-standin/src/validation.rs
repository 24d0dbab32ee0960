//! The subset of API validation the stand-in enforces, with the real field
//! paths and messages (422 Invalid bodies): names, container ports and
//! probes, Deployment/ReplicaSet selectors and templates, Service ports.

use serde_json::Value;

use crate::resources::Resource;
use crate::selectors::LabelSelector;
use crate::status::{ApiResult, Cause, invalid};

fn dns1123_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

fn dns1123_label(s: &str) -> bool {
    s.len() <= 63 && !s.contains('.') && dns1123_subdomain(s)
}

fn check_port(causes: &mut Vec<Cause>, field: String, v: &Value) {
    if let Some(n) = v.as_i64()
        && !(1..=65535).contains(&n)
    {
        causes.push(Cause::invalid(
            field,
            n,
            "must be between 1 and 65535, inclusive",
        ));
    }
}

fn pod_spec(causes: &mut Vec<Cause>, base: &str, spec: &Value) {
    let containers = spec["containers"].as_array();
    match containers {
        None => causes.push(Cause::required(format!("{base}.containers"), "")),
        Some(cs) if cs.is_empty() => causes.push(Cause::required(format!("{base}.containers"), "")),
        Some(cs) => {
            for (i, c) in cs.iter().enumerate() {
                let cb = format!("{base}.containers[{i}]");
                let name = c["name"].as_str().unwrap_or("");
                if name.is_empty() {
                    causes.push(Cause::required(format!("{cb}.name"), ""));
                } else if !dns1123_label(name) {
                    causes.push(Cause::invalid(
                        format!("{cb}.name"),
                        format!("\"{name}\""),
                        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
                    ));
                }
                if c["image"].as_str().is_none_or(|s| s.trim().is_empty()) {
                    causes.push(Cause::required(format!("{cb}.image"), ""));
                }
                if let Some(ports) = c["ports"].as_array() {
                    for (j, p) in ports.iter().enumerate() {
                        check_port(
                            causes,
                            format!("{cb}.ports[{j}].containerPort"),
                            &p["containerPort"],
                        );
                    }
                }
                if let Some(pp) = c["imagePullPolicy"].as_str()
                    && !matches!(pp, "Always" | "IfNotPresent" | "Never")
                {
                    causes.push(Cause::unsupported(
                        format!("{cb}.imagePullPolicy"),
                        pp,
                        &["Always", "IfNotPresent", "Never"],
                    ));
                }
                for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
                    for h in ["httpGet", "tcpSocket"] {
                        check_port(
                            causes,
                            format!("{cb}.{probe}.{h}.port"),
                            &c[probe][h]["port"],
                        );
                    }
                }
            }
        }
    }
    if let Some(rp) = spec["restartPolicy"].as_str()
        && !matches!(rp, "Always" | "OnFailure" | "Never")
    {
        causes.push(Cause::unsupported(
            format!("{base}.restartPolicy"),
            rp,
            &["Always", "OnFailure", "Never"],
        ));
    }
}

fn workload(causes: &mut Vec<Cause>, obj: &Value, is_deployment: bool) {
    let spec = &obj["spec"];
    if let Some(r) = spec["replicas"].as_i64()
        && r < 0
    {
        causes.push(Cause::invalid(
            "spec.replicas",
            r,
            "must be greater than or equal to 0",
        ));
    }
    let sel = LabelSelector::from_object(&spec["selector"]);
    match sel {
        None => causes.push(Cause::required("spec.selector", "")),
        Some(s) if s.is_empty() => causes.push(Cause::invalid(
            "spec.selector",
            "v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}",
            "empty selector is invalid for deployment",
        )),
        Some(s) => {
            let labels = spec.pointer("/template/metadata/labels");
            if !s.matches(labels) {
                let shown = labels
                    .and_then(|l| l.as_object())
                    .map(|m| {
                        let parts: Vec<String> = m
                            .iter()
                            .map(|(k, v)| format!("\"{k}\":\"{}\"", v.as_str().unwrap_or("")))
                            .collect();
                        format!("map[string]string{{{}}}", parts.join(", "))
                    })
                    .unwrap_or_else(|| "map[string]string(nil)".into());
                causes.push(Cause::invalid(
                    "spec.template.metadata.labels",
                    shown,
                    "`selector` does not match template `labels`",
                ));
            }
        }
    }
    pod_spec(causes, "spec.template.spec", &spec["template"]["spec"]);
    if is_deployment
        && let Some(t) = spec.pointer("/strategy/type").and_then(|t| t.as_str())
        && !matches!(t, "RollingUpdate" | "Recreate")
    {
        causes.push(Cause::unsupported(
            "spec.strategy.type",
            t,
            &["Recreate", "RollingUpdate"],
        ));
    }
}

/// Validates an object about to be stored.
pub fn validate(res: &Resource, obj: &Value) -> ApiResult<()> {
    let name = obj
        .pointer("/metadata/name")
        .and_then(|n| n.as_str())
        .unwrap_or("");
    let mut causes = Vec::new();
    if name.is_empty() {
        causes.push(Cause::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else {
        let ok = match res.kind {
            "Service" | "Namespace" => dns1123_label(name),
            "Event" => !name.is_empty(),
            // RBAC objects' names are path segments (`system:basic-user`).
            "Role" | "RoleBinding" | "ClusterRole" | "ClusterRoleBinding" => {
                !matches!(name, "." | "..") && !name.contains(['/', '%'])
            }
            _ => dns1123_subdomain(name),
        };
        if !ok {
            causes.push(Cause::invalid(
                "metadata.name",
                format!("\"{name}\""),
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
            ));
        }
    }
    match res.kind {
        "Deployment" => workload(&mut causes, obj, true),
        "ReplicaSet" => workload(&mut causes, obj, false),
        "Pod" => pod_spec(&mut causes, "spec", &obj["spec"]),
        "Service" => {
            if let Some(ports) = obj.pointer("/spec/ports").and_then(|p| p.as_array()) {
                for (i, p) in ports.iter().enumerate() {
                    check_port(&mut causes, format!("spec.ports[{i}].port"), &p["port"]);
                }
            }
        }
        _ => {}
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(invalid(res, name, causes))
    }
}

/// Checks immutable fields on update.
pub fn validate_update(res: &Resource, old: &Value, new: &Value) -> ApiResult<()> {
    let name = new
        .pointer("/metadata/name")
        .and_then(|n| n.as_str())
        .unwrap_or("");
    let mut causes = Vec::new();
    if matches!(res.kind, "Deployment" | "ReplicaSet")
        && old["spec"]["selector"] != new["spec"]["selector"]
    {
        causes.push(Cause::invalid(
            "spec.selector",
            crate::util::to_json(&new["spec"]["selector"]),
            "field is immutable",
        ));
    }
    if res.kind == "Service" {
        let o = &old["spec"]["clusterIP"];
        let n = &new["spec"]["clusterIP"];
        if !o.is_null() && !n.is_null() && o != n {
            causes.push(Cause::invalid(
                "spec.clusterIP",
                format!("\"{}\"", n.as_str().unwrap_or("")),
                "field is immutable",
            ));
        }
    }
    if causes.is_empty() {
        validate(res, new)
    } else {
        Err(invalid(res, name, causes))
    }
}
