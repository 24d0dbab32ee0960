//! The scheduler: binds pending pods to the one node when their requests fit
//! into allocatable minus what bound, non-terminated pods request; otherwise
//! marks them Unschedulable with the 1.24 FailedScheduling message, and tries
//! again whenever a pod goes away.

use serde_json::{Value, json};

use super::{Env, meta};
use crate::api::Req;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::util::now_rfc3339;

/// Parses a resource quantity into milli-units (cpu) or bytes (memory).
pub fn parse_quantity(q: &str, milli: bool) -> i128 {
    let q = q.trim();
    let suffixes: [(&str, f64); 13] = [
        ("Ki", 1024.0),
        ("Mi", 1024f64.powi(2)),
        ("Gi", 1024f64.powi(3)),
        ("Ti", 1024f64.powi(4)),
        ("Pi", 1024f64.powi(5)),
        ("Ei", 1024f64.powi(6)),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
    ];
    let (num, mult) = suffixes
        .iter()
        .find_map(|(s, m)| q.strip_suffix(s).map(|n| (n, *m)))
        .unwrap_or((q, 1.0));
    let v: f64 = num.parse().unwrap_or(0.0) * mult;
    if milli {
        (v * 1000.0).round() as i128
    } else {
        v.round() as i128
    }
}

fn requests(pod: &Value) -> (i128, i128) {
    let mut cpu = 0;
    let mut mem = 0;
    if let Some(cs) = pod.pointer("/spec/containers").and_then(|c| c.as_array()) {
        for c in cs {
            if let Some(r) = c.pointer("/resources/requests") {
                cpu += r["cpu"]
                    .as_str()
                    .map(|q| parse_quantity(q, true))
                    .or_else(|| r["cpu"].as_f64().map(|f| (f * 1000.0) as i128))
                    .unwrap_or(0);
                mem += r["memory"]
                    .as_str()
                    .map(|q| parse_quantity(q, false))
                    .or_else(|| r["memory"].as_i64().map(|f| f as i128))
                    .unwrap_or(0);
            }
        }
    }
    (cpu, mem)
}

/// Schedules every pending pod.
pub fn sync(env: &Env) {
    let pod_res = env.res("Pod");
    let (pods, _) = env.api.list(
        pod_res,
        None,
        &LabelSelector::default(),
        &FieldSelector::default(),
    );
    let node = &env.node;
    let alloc_cpu = parse_quantity(&node.cpu, true);
    let alloc_mem = parse_quantity(&node.memory, false);
    let terminated = |p: &Value| {
        let ph = p
            .pointer("/status/phase")
            .and_then(|x| x.as_str())
            .unwrap_or("");
        ph == "Succeeded" || ph == "Failed"
    };
    let mut used_cpu = 0;
    let mut used_mem = 0;
    let mut count = 0i64;
    for p in pods.iter().filter(|p| {
        p.pointer("/spec/nodeName").and_then(|n| n.as_str()) == Some(node.name.as_str())
            && !terminated(p)
    }) {
        let (c, m) = requests(p);
        used_cpu += c;
        used_mem += m;
        count += 1;
    }
    let mut pending: Vec<&Value> = pods
        .iter()
        .filter(|p| {
            p.pointer("/spec/nodeName")
                .and_then(|n| n.as_str())
                .is_none_or(|n| n.is_empty())
        })
        .filter(|p| {
            p.pointer("/metadata/deletionTimestamp")
                .is_none_or(|d| d.is_null())
        })
        .filter(|p| {
            p.pointer("/spec/schedulerName")
                .and_then(|s| s.as_str())
                .unwrap_or("default-scheduler")
                == "default-scheduler"
        })
        .collect();
    pending.sort_by(|a, b| meta(a, "creationTimestamp").cmp(meta(b, "creationTimestamp")));
    for p in pending {
        let (c, m) = requests(p);
        let mut reasons = Vec::new();
        if count + 1 > node.pods {
            reasons.push("1 Too many pods".to_string());
        }
        if used_cpu + c > alloc_cpu {
            reasons.push("1 Insufficient cpu".to_string());
        }
        if used_mem + m > alloc_mem {
            reasons.push("1 Insufficient memory".to_string());
        }
        let ns = meta(p, "namespace").to_string();
        let name = meta(p, "name").to_string();
        let now = now_rfc3339();
        if reasons.is_empty() {
            used_cpu += c;
            used_mem += m;
            count += 1;
            let node_name = node.name.clone();
            let bound = env.api.modify_raw(pod_res, &ns, &name, |live| {
                if live.pointer("/spec/nodeName").and_then(|n| n.as_str()).is_some_and(|n| !n.is_empty()) {
                    return None;
                }
                let mut n = live.clone();
                n["spec"]["nodeName"] = json!(node_name);
                let conds = n["status"]["conditions"].as_array().cloned().unwrap_or_default();
                let mut conds: Vec<Value> = conds.into_iter().filter(|c| c["type"] != "PodScheduled").collect();
                conds.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}));
                n["status"]["conditions"] = Value::Array(conds);
                Some(n)
            });
            if let Ok(Some(b)) = bound {
                env.recorder.record_scheduler(
                    &env.api,
                    &b,
                    "Normal",
                    "Scheduled",
                    "Binding",
                    &format!("Successfully assigned {ns}/{name} to {}", node.name),
                );
            }
        } else {
            reasons.sort();
            let msg = format!("0/1 nodes are available: {}.", reasons.join(", "));
            let m2 = msg.clone();
            let _ = env.api.modify(pod_res, &ns, &name, &Req::status("kube-scheduler"), |live| {
                let cur = live.pointer("/status/conditions").and_then(|c| c.as_array()).and_then(|a| a.iter().find(|c| c["type"] == "PodScheduled").cloned());
                if cur.as_ref().is_some_and(|c| c["status"] == "False" && c["message"] == m2.as_str()) {
                    return None;
                }
                let mut n = live.clone();
                let conds: Vec<Value> = n["status"]["conditions"].as_array().cloned().unwrap_or_default().into_iter().filter(|c| c["type"] != "PodScheduled").collect();
                let mut conds = conds;
                conds.push(json!({"type": "PodScheduled", "status": "False", "lastProbeTime": null, "lastTransitionTime": now, "reason": "Unschedulable", "message": m2}));
                n["status"]["conditions"] = Value::Array(conds);
                Some(n)
            });
            env.recorder.record_scheduler(
                &env.api,
                p,
                "Warning",
                "FailedScheduling",
                "Scheduling",
                &msg,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("64", true), 64000);
        assert_eq!(parse_quantity("500m", true), 500);
        assert_eq!(parse_quantity("0.5", true), 500);
        assert_eq!(parse_quantity("1Gi", false), 1 << 30);
        assert_eq!(parse_quantity("8Gi", false), 8 << 30);
        assert_eq!(parse_quantity("128M", false), 128_000_000);
    }
}
