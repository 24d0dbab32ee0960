//! The ReplicaSet controller: creates pods `<rs>-<5 chars>` from the template
//! (slow-start batches), deletes the most deletable ones when scaling down,
//! and keeps status (replicas, fullyLabeledReplicas, readyReplicas,
//! availableReplicas with minReadySeconds, observedGeneration).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::events::Source;
use super::{Env, Work, meta};
use crate::api::{DeleteOpts, Req};
use crate::selectors::{FieldSelector, LabelSelector};

const MANAGER: &str = "kube-controller-manager";

fn is_active(p: &Value) -> bool {
    let phase = p
        .pointer("/status/phase")
        .and_then(|x| x.as_str())
        .unwrap_or("");
    phase != "Succeeded"
        && phase != "Failed"
        && p.pointer("/metadata/deletionTimestamp")
            .is_none_or(|d| d.is_null())
}

fn is_ready(p: &Value) -> bool {
    p.pointer("/status/conditions")
        .and_then(|c| c.as_array())
        .is_some_and(|a| {
            a.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

fn phase_rank(p: &Value) -> u8 {
    match p
        .pointer("/status/phase")
        .and_then(|x| x.as_str())
        .unwrap_or("")
    {
        "Pending" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 3,
    }
}

fn restarts(p: &Value) -> i64 {
    p.pointer("/status/containerStatuses")
        .and_then(|c| c.as_array())
        .map(|a| {
            a.iter()
                .map(|c| c["restartCount"].as_i64().unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}

/// Reconciles one ReplicaSet.
pub fn sync(env: &Env, ns: &str, name: &str) {
    let rs_res = env.res("ReplicaSet");
    let pod_res = env.res("Pod");
    let Ok(rs) = env.api.get(rs_res, ns, name) else {
        return;
    };
    let uid = meta(&rs, "uid").to_string();
    let (pods, _) = env.api.list(
        pod_res,
        Some(ns),
        &LabelSelector::default(),
        &FieldSelector::default(),
    );
    let owned: Vec<Value> = pods
        .into_iter()
        .filter(|p| {
            p.pointer("/metadata/ownerReferences")
                .and_then(|a| a.as_array())
                .is_some_and(|a| {
                    a.iter()
                        .any(|r| r["uid"] == uid.as_str() && r["controller"] == true)
                })
        })
        .collect();
    let mut active: Vec<Value> = owned.iter().filter(|p| is_active(p)).cloned().collect();
    let want = rs
        .pointer("/spec/replicas")
        .and_then(|r| r.as_i64())
        .unwrap_or(1);
    let deleting = rs
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|d| !d.is_null());
    let diff = active.len() as i64 - want;
    if !deleting && diff < 0 {
        let template = &rs["spec"]["template"];
        let mut batch = 1i64;
        let mut left = -diff;
        'outer: while left > 0 {
            let n = batch.min(left);
            for _ in 0..n {
                let mut pod = json!({
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {
                        "generateName": format!("{name}-"),
                        "namespace": ns,
                        "labels": template.pointer("/metadata/labels").cloned().unwrap_or(json!({})),
                        "ownerReferences": [{
                            "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": name,
                            "uid": uid, "controller": true, "blockOwnerDeletion": true
                        }]
                    },
                    "spec": template["spec"].clone(),
                });
                if let Some(a) = template.pointer("/metadata/annotations") {
                    pod["metadata"]["annotations"] = a.clone();
                }
                match env.api.create(pod_res, ns, pod, &Req::by(MANAGER)) {
                    Ok(p) => {
                        env.recorder.record(
                            &env.api,
                            &rs,
                            "Normal",
                            "SuccessfulCreate",
                            &format!("Created pod: {}", meta(&p, "name")),
                            Source::Controller("replicaset-controller"),
                            None,
                        );
                        active.push(p);
                    }
                    Err(e) => {
                        env.recorder.record(
                            &env.api,
                            &rs,
                            "Warning",
                            "FailedCreate",
                            &format!(
                                "Error creating: {}",
                                e.body["message"].as_str().unwrap_or("")
                            ),
                            Source::Controller("replicaset-controller"),
                            None,
                        );
                        break 'outer;
                    }
                }
            }
            left -= n;
            batch *= 2;
        }
    } else if !deleting && diff > 0 {
        active.sort_by(|a, b| {
            let an = a
                .pointer("/spec/nodeName")
                .is_some_and(|n| n.as_str().is_some_and(|s| !s.is_empty()));
            let bn = b
                .pointer("/spec/nodeName")
                .is_some_and(|n| n.as_str().is_some_and(|s| !s.is_empty()));
            an.cmp(&bn)
                .then(phase_rank(a).cmp(&phase_rank(b)))
                .then(is_ready(a).cmp(&is_ready(b)))
                .then(restarts(b).cmp(&restarts(a)))
                .then(meta(b, "creationTimestamp").cmp(meta(a, "creationTimestamp")))
        });
        let victims: Vec<Value> = active.drain(..diff as usize).collect();
        for p in victims {
            if env
                .api
                .delete(pod_res, ns, meta(&p, "name"), &DeleteOpts::default())
                .is_ok()
            {
                env.recorder.record(
                    &env.api,
                    &rs,
                    "Normal",
                    "SuccessfulDelete",
                    &format!("Deleted pod: {}", meta(&p, "name")),
                    Source::Controller("replicaset-controller"),
                    None,
                );
            }
        }
    }
    // Status.
    let (pods, _) = env.api.list(
        pod_res,
        Some(ns),
        &LabelSelector::default(),
        &FieldSelector::default(),
    );
    let active: Vec<Value> = pods
        .into_iter()
        .filter(|p| {
            p.pointer("/metadata/ownerReferences")
                .and_then(|a| a.as_array())
                .is_some_and(|a| {
                    a.iter()
                        .any(|r| r["uid"] == uid.as_str() && r["controller"] == true)
                })
        })
        .filter(is_active)
        .collect();
    let min_ready = rs
        .pointer("/spec/minReadySeconds")
        .and_then(|m| m.as_i64())
        .unwrap_or(0);
    let template_labels = LabelSelector::from_map(
        rs.pointer("/spec/template/metadata/labels")
            .unwrap_or(&Value::Null),
    );
    let now = Instant::now();
    let mut ready = 0;
    let mut available = 0;
    let mut fully = 0;
    let mut requeue: Option<Duration> = None;
    for p in &active {
        if template_labels.matches_obj(p) {
            fully += 1;
        }
        if is_ready(p) {
            ready += 1;
            if min_ready == 0 {
                available += 1;
            } else {
                let since = env
                    .ready_since
                    .lock()
                    .expect("ready mutex poisoned")
                    .get(meta(p, "uid"))
                    .copied();
                let need = env.clock.secs(min_ready as f64);
                match since {
                    Some(s) if s + need <= now => available += 1,
                    Some(s) => {
                        let left = (s + need) - now;
                        let scale = env.clock.get();
                        let sim = if scale > 0.0 {
                            left.div_f64(scale)
                        } else {
                            Duration::ZERO
                        };
                        requeue = Some(requeue.map_or(sim, |r: Duration| r.min(sim)));
                    }
                    None => available += 1,
                }
            }
        }
    }
    let mut st = json!({"replicas": active.len()});
    let put = |st: &mut Value, k: &str, v: i64| {
        if v != 0 {
            st[k] = json!(v);
        }
    };
    put(&mut st, "fullyLabeledReplicas", fully);
    put(&mut st, "readyReplicas", ready);
    put(&mut st, "availableReplicas", available);
    st["observedGeneration"] = rs
        .pointer("/metadata/generation")
        .cloned()
        .unwrap_or(json!(1));
    if let Some(c) = rs.pointer("/status/conditions") {
        st["conditions"] = c.clone();
    }
    if st != rs["status"] {
        let _ = env
            .api
            .modify(rs_res, ns, name, &Req::status(MANAGER), |live| {
                let mut n = live.clone();
                n["status"] = st;
                Some(n)
            });
    }
    if let Some(r) = requeue {
        env.after(
            r + Duration::from_millis(1),
            Work::ReplicaSet(ns.to_string(), name.to_string()),
        );
    }
}
