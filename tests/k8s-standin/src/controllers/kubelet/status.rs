//! The pod status the kubelet writes (manager `Go-http-client`, subresource
//! status): phase, the four conditions with transition times, container
//! statuses in the recorded shapes, IPs, start time, QoS class.

use std::time::Instant;

use serde_json::{Value, json};

use super::{CState, PodRt};
use crate::api::Req;
use crate::controllers::{Env, meta};
use crate::util::now_rfc3339;

pub(super) fn terminated_json(s: &CState) -> Option<Value> {
    match s {
        CState::Terminated {
            exit_code,
            reason,
            started_at,
            finished_at,
            id,
        } => Some(json!({
            "terminated": {"exitCode": exit_code, "reason": reason, "startedAt": started_at, "finishedAt": finished_at, "containerID": id}
        })),
        _ => None,
    }
}

fn state_json(s: &CState) -> Value {
    match s {
        CState::Waiting { reason, message } => {
            let mut w = json!({"reason": reason});
            if let Some(m) = message {
                w["message"] = json!(m);
            }
            json!({"waiting": w})
        }
        CState::Running { started_at } => json!({"running": {"startedAt": started_at}}),
        other => terminated_json(other).unwrap_or(json!({})),
    }
}

pub(super) fn write_status(env: &Env, pod: &Value, rt: &PodRt, uid: &str) {
    let old = &pod["status"];
    let now = now_rfc3339();
    let cond = |t: &str| -> Option<Value> {
        old["conditions"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["type"] == t).cloned())
    };
    let make = |t: &str, ok: bool, reason_msg: Option<(String, String)>| -> Value {
        let status = if ok { "True" } else { "False" };
        let ltt = match cond(t) {
            Some(c) if c["status"] == status => c["lastTransitionTime"].clone(),
            _ => json!(now),
        };
        let mut c =
            json!({"type": t, "status": status, "lastProbeTime": null, "lastTransitionTime": ltt});
        if let Some((r, m)) = reason_msg {
            c["reason"] = json!(r);
            c["message"] = json!(m);
        }
        c
    };
    let unready: Vec<&str> = rt
        .containers
        .iter()
        .filter(|c| !c.ready)
        .map(|c| c.name.as_str())
        .collect();
    let all_ready = unready.is_empty();
    let rm = (!all_ready).then(|| {
        (
            "ContainersNotReady".to_string(),
            format!("containers with unready status: [{}]", unready.join(" ")),
        )
    });
    let mut conditions = Vec::new();
    if crate::aggregated::minor(&env.api.version) >= 29 {
        // Newer kubelets report the sandbox first (1.29+).
        conditions.push(make("PodReadyToStartContainers", true, None));
    }
    conditions.extend([
        make("Initialized", true, None),
        make("Ready", all_ready, rm.clone()),
        make("ContainersReady", all_ready, rm),
    ]);
    if let Some(ps) = cond("PodScheduled") {
        conditions.push(ps);
    }
    let restart_policy = pod
        .pointer("/spec/restartPolicy")
        .and_then(|r| r.as_str())
        .unwrap_or("Always");
    let all_terminated = rt
        .containers
        .iter()
        .all(|c| matches!(c.state, CState::Terminated { .. }));
    let phase = if rt
        .containers
        .iter()
        .any(|c| matches!(c.state, CState::Running { .. }))
    {
        "Running"
    } else if all_terminated && restart_policy == "Never" {
        if rt
            .containers
            .iter()
            .all(|c| matches!(c.state, CState::Terminated { exit_code: 0, .. }))
        {
            "Succeeded"
        } else {
            "Failed"
        }
    } else if rt.containers.iter().all(|c| c.ever_started) && !rt.containers.is_empty() {
        "Running"
    } else {
        "Pending"
    };
    let statuses: Vec<Value> = rt
        .containers
        .iter()
        .map(|c| {
            let (image, image_id) = match &c.image_ref {
                Some((r, id)) => (r.clone(), id.clone()),
                None => (c.image.clone(), String::new()),
            };
            let mut s = json!({
                "name": c.name,
                "state": state_json(&c.state),
                "lastState": c.last_state.clone().unwrap_or(json!({})),
                "ready": c.ready,
                "restartCount": c.restarts,
                "image": image,
                "imageID": image_id,
                "started": matches!(c.state, CState::Running { .. }),
            });
            if let Some(id) = &c.id {
                s["containerID"] = json!(id);
            }
            s
        })
        .collect();
    let mut st = json!({
        "phase": phase,
        "conditions": conditions,
        "hostIP": "192.0.2.2",
        "podIP": rt.ip,
        "podIPs": [{"ip": rt.ip}],
        "startTime": rt.start_time,
        "containerStatuses": statuses,
        "qosClass": old["qosClass"],
    });
    if old["qosClass"].is_null()
        && let Some(m) = st.as_object_mut()
    {
        m.remove("qosClass");
    }
    if st == *old {
        return;
    }
    {
        let mut rs = env.ready_since.lock().expect("ready mutex poisoned");
        if all_ready {
            rs.entry(uid.to_string()).or_insert_with(Instant::now);
        } else {
            rs.remove(uid);
        }
    }
    let _ = env.api.modify(
        env.res("Pod"),
        meta(pod, "namespace"),
        meta(pod, "name"),
        &Req::status("Go-http-client"),
        |live| {
            let mut n = live.clone();
            n["status"] = st;
            Some(n)
        },
    );
}
