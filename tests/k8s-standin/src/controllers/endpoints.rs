//! The Endpoints controller (pkg/controller/endpoint, 1.24): every Service with
//! a selector gets an Endpoints object of its name listing the pods it
//! selects: ready pods under `addresses`, the others under
//! `notReadyAddresses` (both only with a pod IP, never terminal or terminating
//! pods unless `publishNotReadyAddresses`), each port resolved from the
//! Service's `targetPort` (a number as it is, a name looked up among the
//! containers' ports of the same protocol; a pod without it is left out of
//! that port), repacked into one subset per set of ports, addresses sorted by
//! IP. Labels are the Service's (plus `service.kubernetes.io/headless` for
//! `clusterIP: None`). Nothing is written when subsets and labels are equal;
//! the Endpoints of a Service that is gone are deleted.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::{Map, Value, json};

use super::{Env, meta};
use crate::api::{DeleteOpts, Req};
use crate::selectors::{FieldSelector, LabelSelector};

const MANAGER: &str = "kube-controller-manager";
const HEADLESS: &str = "service.kubernetes.io/headless";
const TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";
/// Endpoints the controller must never delete (leader election records).
const LEADER_ELECTION: &str = "control-plane.alpha.kubernetes.io/leader";

/// Reconciles the Endpoints of every Service in `ns`, and removes those whose Service is gone.
pub fn sync(env: &Env, ns: &str) {
    let list = |kind: &str| {
        env.api
            .list(
                env.res(kind),
                Some(ns),
                &LabelSelector::default(),
                &FieldSelector::default(),
            )
            .0
    };
    let services = list("Service");
    let pods = list("Pod");
    let endpoints = list("Endpoints");
    for service in &services {
        if service
            .pointer("/spec/selector")
            .is_none_or(|s| s.is_null())
        {
            // Services without a selector get their Endpoints from someone else.
            continue;
        }
        let live = endpoints
            .iter()
            .find(|e| meta(e, "name") == meta(service, "name"));
        write(env, ns, service, live, &pods);
    }
    for stale in endpoints.iter().filter(|e| {
        !services.iter().any(|s| meta(s, "name") == meta(e, "name"))
            && e.pointer(&format!(
                "/metadata/annotations/{}",
                LEADER_ELECTION.replace('/', "~1")
            ))
            .is_none()
    }) {
        let _ = env.api.delete(
            env.res("Endpoints"),
            ns,
            meta(stale, "name"),
            &DeleteOpts::default(),
        );
    }
}

/// Creates or updates one Service's Endpoints when its subsets or labels changed.
fn write(env: &Env, ns: &str, service: &Value, live: Option<&Value>, pods: &[Value]) {
    let subsets = subsets(service, pods);
    let labels = labels(service);
    let unchanged = live.is_some_and(|e| {
        e.get("subsets").cloned().unwrap_or(json!([])) == subsets
            && e.pointer("/metadata/labels").cloned().unwrap_or(json!({})) == labels
    });
    if unchanged {
        return;
    }
    let res = env.res("Endpoints");
    let req = Req::by(MANAGER);
    let stamp = jiff::Timestamp::now().to_string();
    let mut body = live.cloned().unwrap_or_else(|| {
        json!({"apiVersion": "v1", "kind": "Endpoints",
               "metadata": {"name": meta(service, "name"), "namespace": ns}})
    });
    body["metadata"]["labels"] = labels;
    body["metadata"]["annotations"][TRIGGER_TIME] = json!(stamp);
    match subsets.as_array().is_some_and(|a| a.is_empty()) {
        true => {
            if let Some(o) = body.as_object_mut() {
                o.remove("subsets");
            }
        }
        false => body["subsets"] = subsets,
    }
    let _ = match live {
        None => env.api.create(res, ns, body, &req),
        Some(_) => env
            .api
            .modify(res, ns, meta(service, "name"), &req, |_| Some(body))
            .map(|_| Value::Null),
    };
}

/// The Service's labels, with the headless marker when it has no cluster IP.
fn labels(service: &Value) -> Value {
    let mut labels = service
        .pointer("/metadata/labels")
        .and_then(|l| l.as_object())
        .cloned()
        .unwrap_or_default();
    if service.pointer("/spec/clusterIP").and_then(|c| c.as_str()) == Some("None") {
        labels.insert(HEADLESS.to_owned(), json!(""));
    }
    Value::Object(labels)
}

/// Whether a pod belongs in the Endpoints at all: it has an IP, is not terminal, and is not
/// terminating (unless the Service publishes not-ready addresses).
fn included(pod: &Value, tolerate_unready: bool) -> bool {
    let phase = pod.pointer("/status/phase").and_then(|p| p.as_str());
    let terminal = matches!(phase, Some("Succeeded") | Some("Failed"));
    let has_ip = pod
        .pointer("/status/podIP")
        .and_then(|i| i.as_str())
        .is_some_and(|i| !i.is_empty());
    let terminating = pod
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|d| !d.is_null());
    !terminal && has_ip && (tolerate_unready || !terminating)
}

fn ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(|c| c.as_array())
        .is_some_and(|a| {
            a.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// The port a Service port reaches on `pod`, as `FindPort` resolves `targetPort`.
fn find_port(pod: &Value, service_port: &Value) -> Option<i64> {
    let protocol = service_port["protocol"].as_str().unwrap_or("TCP");
    match &service_port["targetPort"] {
        Value::Number(n) => n.as_i64(),
        Value::String(name) => pod
            .pointer("/spec/containers")
            .and_then(|c| c.as_array())
            .into_iter()
            .flatten()
            .flat_map(|c| c["ports"].as_array().into_iter().flatten())
            .find(|p| {
                p["name"] == name.as_str() && p["protocol"].as_str().unwrap_or("TCP") == protocol
            })
            .and_then(|p| p["containerPort"].as_i64()),
        _ => service_port["port"].as_i64(),
    }
}

/// The addresses that share one set of ports.
#[derive(Default)]
struct Subset {
    ready: Vec<Value>,
    not_ready: Vec<Value>,
    ports: Vec<Value>,
}

impl Subset {
    fn into_json(mut self) -> Value {
        self.ready.sort_by(by_ip_and_uid);
        self.not_ready.sort_by(by_ip_and_uid);
        let mut subset = Map::new();
        if !self.ready.is_empty() {
            subset.insert("addresses".into(), Value::Array(self.ready));
        }
        if !self.not_ready.is_empty() {
            subset.insert("notReadyAddresses".into(), Value::Array(self.not_ready));
        }
        subset.insert("ports".into(), Value::Array(self.ports));
        Value::Object(subset)
    }
}

/// The subsets of a Service: one per set of ports, ready and not-ready addresses apart.
pub fn subsets(service: &Value, pods: &[Value]) -> Value {
    let selector = LabelSelector::from_map(&service["spec"]["selector"]);
    let tolerate = service["spec"]["publishNotReadyAddresses"] == true;
    let service_ports: Vec<&Value> = service["spec"]["ports"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    // By the set of ports (as JSON text).
    let mut groups: BTreeMap<String, Subset> = BTreeMap::new();
    for pod in pods
        .iter()
        .filter(|p| selector.matches_obj(p) && included(p, tolerate))
    {
        let ports = endpoint_ports(pod, &service_ports);
        if ports.is_empty() {
            continue;
        }
        let group = groups
            .entry(Value::Array(ports.clone()).to_string())
            .or_insert_with(|| Subset {
                ports,
                ..Subset::default()
            });
        match tolerate || ready(pod) {
            true => group.ready.push(address(pod)),
            false => group.not_ready.push(address(pod)),
        }
    }
    Value::Array(groups.into_values().map(Subset::into_json).collect())
}

/// The endpoint ports `pod` offers for the Service's ports, sorted.
fn endpoint_ports(pod: &Value, service_ports: &[&Value]) -> Vec<Value> {
    let mut found: Vec<Value> = service_ports
        .iter()
        .filter_map(|sp| {
            let port = find_port(pod, sp)?;
            let mut ep = Map::new();
            if let Some(name) = sp
                .get("name")
                .filter(|n| n.as_str().is_some_and(|n| !n.is_empty()))
            {
                ep.insert("name".into(), name.clone());
            }
            ep.insert("port".into(), json!(port));
            let protocol = sp.get("protocol").cloned().unwrap_or(json!("TCP"));
            ep.insert("protocol".into(), protocol);
            if let Some(app) = sp.get("appProtocol") {
                ep.insert("appProtocol".into(), app.clone());
            }
            Some(Value::Object(ep))
        })
        .collect();
    found.sort_by_key(|p| p.to_string());
    found
}

/// A pod as an endpoint address.
fn address(pod: &Value) -> Value {
    json!({
        "ip": pod.pointer("/status/podIP").cloned().unwrap_or(Value::Null),
        "nodeName": pod.pointer("/spec/nodeName").cloned().unwrap_or(Value::Null),
        "targetRef": {
            "kind": "Pod",
            "namespace": meta(pod, "namespace"),
            "name": meta(pod, "name"),
            "uid": meta(pod, "uid"),
        }
    })
}

/// Addresses in IP order (numerically), then by pod uid.
fn by_ip_and_uid(a: &Value, b: &Value) -> Ordering {
    let ip = |v: &Value| v["ip"].as_str().and_then(|i| i.parse::<IpAddr>().ok());
    ip(a).cmp(&ip(b)).then_with(|| {
        a["targetRef"]["uid"]
            .as_str()
            .cmp(&b["targetRef"]["uid"].as_str())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, ip: &str, labels: Value, ready: bool) -> Value {
        json!({
            "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"), "labels": labels},
            "spec": {"nodeName": "minikube", "containers": [{"name": "web", "ports": [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]}]},
            "status": {"phase": "Running", "podIP": ip,
                       "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
        })
    }

    fn service(selector: Value) -> Value {
        json!({"metadata": {"name": "web"}, "spec": {"selector": selector,
            "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"}]}})
    }

    #[test]
    fn ready_and_not_ready_pods_are_apart_and_sorted_by_ip() {
        let pods = [
            pod("b", "10.244.0.10", json!({"app": "web"}), true),
            pod("a", "10.244.0.9", json!({"app": "web"}), true),
            pod("c", "10.244.0.11", json!({"app": "web"}), false),
            pod("other", "10.244.0.12", json!({"app": "db"}), true),
        ];
        let subsets = subsets(&service(json!({"app": "web"})), &pods);
        let ips = |key: &str| -> Vec<String> {
            subsets[0][key]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| a["ip"].as_str().unwrap_or_default().to_owned())
                .collect()
        };
        assert_eq!(
            ips("addresses"),
            ["10.244.0.9", "10.244.0.10"],
            "numeric IP order"
        );
        assert_eq!(ips("notReadyAddresses"), ["10.244.0.11"]);
        assert_eq!(
            subsets[0]["ports"],
            json!([{"name": "http", "port": 8000, "protocol": "TCP"}])
        );
        assert_eq!(subsets[0]["addresses"][0]["targetRef"]["name"], "a");
    }

    #[test]
    fn terminating_pods_and_pods_without_the_named_port_are_left_out() {
        let mut terminating = pod("t", "10.244.0.2", json!({"app": "web"}), true);
        terminating["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        let mut portless = pod("p", "10.244.0.3", json!({"app": "web"}), true);
        portless["spec"]["containers"][0]["ports"] = json!([]);
        let no_ip = {
            let mut p = pod("n", "", json!({"app": "web"}), false);
            p["status"]["podIP"] = Value::Null;
            p
        };
        let subsets = subsets(
            &service(json!({"app": "web"})),
            &[terminating, portless, no_ip],
        );
        assert_eq!(subsets, json!([]), "nothing to serve: no subset at all");
    }

    #[test]
    fn a_numeric_target_port_is_taken_as_it_is() {
        let mut svc = service(json!({"app": "web"}));
        svc["spec"]["ports"][0]["targetPort"] = json!(9000);
        let subsets = subsets(&svc, &[pod("a", "10.244.0.4", json!({"app": "web"}), true)]);
        assert_eq!(subsets[0]["ports"][0]["port"], 9000);
    }
}
