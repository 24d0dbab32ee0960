//! 10-real-cluster-findings.json: liveness failures restart the container
//! (d); the rest of the recording is replayed here as it is modelled.

mod common;

use std::time::Duration;

use common::*;
use k8s_standin::{Behavior, StandIn};
use serde_json::{Value, json};

const NS: &str = "findings";
/// The recorded todo backend image: serves `/api/health` on 8000, exits 0 on SIGTERM.
const IMAGE: &str = "rc-backend:16ac6f5d8534";

async fn findings() -> (StandIn, Value) {
    let s = standin(NS).await;
    s.node_images()
        .add_image(IMAGE, Behavior::serve(&["/api/health"], 8000));
    (s, transcript("10-real-cluster-findings.json"))
}

/// Sends a recorded request (method, path, content type, body) as recorded.
async fn replay(s: &StandIn, step: &Value) -> (u16, Value) {
    let r = &step["request"];
    let r = raw(
        s,
        r["method"].as_str().expect("method"),
        r["path"].as_str().expect("path"),
        r["content_type"].as_str(),
        r["body"].as_str().map(|b| b.as_bytes().to_vec()),
    )
    .await
    .expect("request");
    (r.status, r.json())
}

/// The first container's status as a comparable shape: state and last state
/// kinds with reasons, messages (pod key hidden), exit codes, counts and flags.
fn container_shape(pod: &Value) -> Value {
    let Some(cs) = pod["status"]["containerStatuses"].get(0) else {
        return json!({"phase": pod["status"]["phase"]});
    };
    let state = |s: &Value| -> Value {
        let Some((kind, v)) = s.as_object().and_then(|m| m.iter().next()) else {
            return json!(null);
        };
        let msg = v["message"]
            .as_str()
            .map(|m| m.split(" pod=").next().unwrap_or(m).to_string());
        json!({"kind": kind, "reason": v["reason"], "message": msg, "exitCode": v["exitCode"],
            "fields": v.as_object().map(|m| m.keys().cloned().collect::<Vec<_>>())})
    };
    json!({
        "phase": pod["status"]["phase"],
        "state": state(&cs["state"]),
        "lastState": state(&cs["lastState"]),
        "restartCount": cs["restartCount"],
        "ready": cs["ready"],
        "started": cs["started"],
        "hasContainerID": cs.get("containerID").is_some(),
    })
}

fn waiting_reason(pod: &Value) -> &str {
    pod["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
        .as_str()
        .unwrap_or("")
}

#[tokio::test]
async fn liveness_failures_restart_the_container_then_back_off() {
    let (s, t) = findings().await;
    let d = &t["d_liveness_failure_restarts"];
    let recorded: Vec<&Value> = d["pod_watch"]
        .as_array()
        .expect("pod watch")
        .iter()
        .map(|e| &e["event"])
        .collect();
    let mut w = watch(
        &s,
        "/api/v1/namespaces/findings/pods?watch=1&labelSelector=app%3Dliveness",
    )
    .await;
    let (code, _) = replay(&s, &d["apply"]).await;
    assert_eq!(code, d["apply"]["response"]["status"]);
    let events = w
        .until(Duration::from_secs(20), |e| {
            waiting_reason(&e["object"]) == "CrashLoopBackOff"
        })
        .await;
    let got: Vec<Value> = events
        .iter()
        .map(|e| container_shape(&e["object"]))
        .collect();
    let want: Vec<Value> = recorded
        .iter()
        .map(|e| container_shape(&e["object"]))
        .collect();
    // Killed (Completed, exit 0) and restarted in one status write, three times; the fourth
    // kill backs off 20 s.
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "pod watch event {i} differs from the recording");
    }
    assert_eq!(got.len(), want.len(), "{got:#?}");

    // Each lastState is the instance before: its containerID, startedAt and finishedAt.
    let statuses: Vec<&Value> = events
        .iter()
        .map(|e| &e["object"]["status"]["containerStatuses"][0])
        .collect();
    let restarted = |p: &[&Value]| {
        let n = |v: &Value| v["restartCount"].as_i64();
        n(p[0]).zip(n(p[1])).is_some_and(|(a, b)| b == a + 1)
    };
    for pair in statuses.windows(2).filter(|p| restarted(p)) {
        let last = &pair[1]["lastState"]["terminated"];
        assert_eq!(last["containerID"], pair[0]["containerID"]);
        assert_eq!(last["startedAt"], pair[0]["state"]["running"]["startedAt"]);
        let id = pair[1]["containerID"].as_str().expect("containerID");
        let hex = id.strip_prefix("containerd://").expect("containerd id");
        assert!(
            hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()),
            "{id}"
        );
        assert_ne!(pair[1]["containerID"], pair[0]["containerID"]);
    }
    let pod = &events.last().expect("events")["object"];
    let cs = &pod["status"]["containerStatuses"][0];
    assert_eq!(
        cs["state"]["waiting"]["message"],
        format!(
            "back-off 20s restarting failed container=web pod={}_findings({})",
            pod["metadata"]["name"].as_str().unwrap_or(""),
            pod["metadata"]["uid"].as_str().unwrap_or("")
        )
    );
    assert_eq!(
        cs["containerID"],
        cs["lastState"]["terminated"]["containerID"]
    );
    let want_pod = &recorded.last().expect("recorded")["object"];
    assert_eq!(
        normalize(&pod["status"]["conditions"]),
        normalize(&want_pod["status"]["conditions"])
    );

    // Events: both probes' Unhealthy and the Killing, as recorded; the kubelet's events
    // about the pod stop at the spam filter's 25, as recorded.
    let name = pod["metadata"]["name"].as_str().expect("name");
    let ours: Vec<Value> = s
        .list("Event", Some(NS))
        .into_iter()
        .filter(|e| e["involvedObject"]["name"] == name)
        .collect();
    let theirs: Vec<&Value> = d["events"]["response"]["body"]["items"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| {
            e["involvedObject"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("liveness-"))
        })
        .collect();
    for reason in ["Unhealthy", "Killing"] {
        for want in theirs.iter().filter(|e| e["reason"] == reason) {
            let got = ours
                .iter()
                .find(|e| e["message"] == want["message"])
                .unwrap_or_else(|| panic!("no event {}", want["message"]));
            for k in ["type", "reason", "source"] {
                assert_eq!(got[k], want[k], "{k} of {}", want["message"]);
            }
            assert_eq!(got["involvedObject"]["fieldPath"], "spec.containers{web}");
        }
    }
    let total = |evs: &mut dyn Iterator<Item = &Value>| -> i64 {
        evs.filter(|e| e["source"]["component"] == "kubelet")
            .map(|e| e["count"].as_i64().unwrap_or(1))
            .sum()
    };
    assert_eq!(total(&mut theirs.iter().copied()), 25);
    assert_eq!(total(&mut ours.iter()), 25);

    // The Deployment never becomes available.
    let dep = wait_obj(
        &s,
        "/apis/apps/v1/namespaces/findings/deployments/liveness",
        Duration::from_secs(5),
        |d| d["status"]["unavailableReplicas"] == 1,
    )
    .await;
    assert_eq!(
        hide_generated(&normalize(&dep["status"]), "liveness"),
        hide_generated(
            &normalize(&d["deployment"]["response"]["body"]["status"]),
            "liveness"
        )
    );
}
