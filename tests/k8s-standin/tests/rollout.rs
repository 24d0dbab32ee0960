//! The 2-replica rolling update of 04-rolling-update-watch.json (maxSurge 1,
//! maxUnavailable 0), compared with the recording: the Deployment's watch
//! events (generation, revision, status with every field's presence), the
//! ReplicaSets' annotations and final sizes, and never fewer than 2 ready
//! pods; plus Recreate, scaling and pausing.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const REVISION: &str = "deployment.kubernetes.io/revision";

/// What a Deployment watch event shows, without times, uids, resourceVersions and hashes.
fn deployment_shape(e: &Value) -> Value {
    let o = &e["object"];
    hide_generated(
        &json!({
            "type": e["type"],
            "generation": o["metadata"]["generation"],
            "revision": o["metadata"]["annotations"][REVISION],
            "status": normalize(&o["status"]),
        }),
        "roll",
    )
}

fn progressing_reason(e: &Value) -> String {
    e["object"]["status"]["conditions"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["type"] == "Progressing"))
        .and_then(|c| c["reason"].as_str())
        .unwrap_or("")
        .to_string()
}

/// The recorded ReplicaSet objects, last state of each, by revision.
fn recorded_replicasets(t: &Value) -> Vec<(String, Value)> {
    let mut last: std::collections::BTreeMap<String, Value> = Default::default();
    for e in recorded_events(&t["events"], "ReplicaSet") {
        let o = &e["object"];
        let rev = o["metadata"]["annotations"][REVISION]
            .as_str()
            .unwrap_or("")
            .to_string();
        last.insert(rev, o.clone());
    }
    last.into_iter().collect()
}

/// The ReplicaSets as recorded: annotations, owner, final sizes, names and
/// selectors by pod-template hash.
fn replicasets_match(s: &k8s_standin::StandIn, t: &Value) {
    // ReplicaSets: annotations as recorded, old one scaled to 0, the new one to 2.
    let rss = s.list("ReplicaSet", Some("transcripts"));
    assert_eq!(rss.len(), 2);
    for (rev, recorded) in recorded_replicasets(t) {
        let rs = rss
            .iter()
            .find(|r| r["metadata"]["annotations"][REVISION] == rev.as_str())
            .unwrap_or_else(|| panic!("ReplicaSet of revision {rev}"));
        assert_eq!(
            rs["metadata"]["annotations"], recorded["metadata"]["annotations"],
            "revision {rev}"
        );
        assert_eq!(rs["spec"]["replicas"], recorded["spec"]["replicas"]);
        assert_eq!(
            hide_generated(&normalize(&rs["metadata"]["ownerReferences"]), "roll"),
            hide_generated(&normalize(&recorded["metadata"]["ownerReferences"]), "roll")
        );
        let hash = rs["metadata"]["labels"]["pod-template-hash"]
            .as_str()
            .expect("hash");
        assert_eq!(
            rs["metadata"]["name"].as_str(),
            Some(format!("roll-{hash}").as_str())
        );
        assert_eq!(
            rs["spec"]["selector"]["matchLabels"]["pod-template-hash"],
            hash
        );
    }
}

/// Pod history: once two pods are ready, never fewer (maxUnavailable 0), as recorded.
fn never_fewer_than_two_ready(s: &k8s_standin::StandIn) {
    let history = s.pod_history();
    let mut ready: std::collections::BTreeMap<String, bool> = Default::default();
    let mut seen_two = false;
    for r in history
        .iter()
        .filter(|r| r.deployment.as_deref() == Some("roll"))
    {
        ready.insert(r.name.clone(), r.ready);
        let n = ready.values().filter(|x| **x).count();
        seen_two |= n >= 2;
        if seen_two {
            assert!(n >= 2, "ready pods dropped to {n} at {}", r.time);
        }
    }
}

#[tokio::test]
async fn rolling_update_status_sequence() {
    let t = transcript("04-rolling-update-watch.json");
    let want: Vec<Value> = recorded_events(&t["events"], "Deployment")
        .into_iter()
        .map(deployment_shape)
        .collect();
    assert_eq!(want.len(), 9, "the recording has 9 Deployment events");

    let s = standin("transcripts").await;
    let p = "/apis/apps/v1/namespaces/transcripts/deployments/roll";
    let (code, _) = apply(
        &s,
        p,
        &deployment("roll", "transcripts", 2, "probe-busybox:1"),
        "",
    )
    .await;
    assert_eq!(code, 201);
    let settled = wait_obj(&s, p, Duration::from_secs(10), |d| {
        d["status"]["availableReplicas"] == 2
            && d["status"]["conditions"]
                .as_array()
                .is_some_and(|a| a.iter().any(|c| c["reason"] == "NewReplicaSetAvailable"))
    })
    .await;
    let rv = settled["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    let mut w = watch(
        &s,
        &format!("/apis/apps/v1/namespaces/transcripts/deployments?watch=1&resourceVersion={rv}"),
    )
    .await;
    let (code, applied) = apply(
        &s,
        p,
        &deployment("roll", "transcripts", 2, "probe-busybox:2"),
        "",
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(applied["metadata"]["generation"], 2);
    let events = w
        .until(Duration::from_secs(15), |e| {
            e["object"]["status"]["observedGeneration"] == 2
                && progressing_reason(e) == "NewReplicaSetAvailable"
        })
        .await;
    let got: Vec<Value> = events.iter().map(deployment_shape).collect();
    // Includes the first event (generation 2, observedGeneration 1, yet 2/2/2 as before),
    // the revision moving with NewReplicaSetCreated, and updatedReplicas absent (not 0)
    // when observedGeneration catches up.
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "Deployment event {i} differs from the recording");
    }
    assert_eq!(got.len(), want.len(), "{got:#?}");

    replicasets_match(&s, &t);

    never_fewer_than_two_ready(&s);

    // Events of the controller, worded as 1.24 words them.
    let evs = s.list("Event", Some("transcripts"));
    let msgs: Vec<&str> = evs.iter().filter_map(|e| e["message"].as_str()).collect();
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("Scaled up replica set roll-") && m.ends_with(" to 1")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("Scaled down replica set roll-") && m.ends_with(" to 0")),
        "{msgs:?}"
    );
}

#[tokio::test]
async fn recreate_strategy_and_scaling() {
    let s = standin("rec").await;
    let p = "/apis/apps/v1/namespaces/rec/deployments/r";
    let mut d = deployment("r", "rec", 2, "probe-busybox:1");
    d["spec"]["strategy"] = json!({"type": "Recreate"});
    assert_eq!(apply(&s, p, &d, "").await.0, 201);
    wait_obj(&s, p, Duration::from_secs(10), |d| {
        d["status"]["availableReplicas"] == 2
    })
    .await;
    d["spec"]["template"]["spec"]["containers"][0]["image"] = "probe-busybox:2".into();
    assert_eq!(apply(&s, p, &d, "").await.0, 200);
    wait_obj(&s, p, Duration::from_secs(10), |d| {
        d["status"]["updatedReplicas"] == 2
            && d["status"]["availableReplicas"] == 2
            && d["status"]["observedGeneration"] == 2
    })
    .await;
    // Recreate never runs old and new pods together.
    let history = s.pod_history();
    let mut live: std::collections::BTreeMap<String, (String, bool)> = Default::default();
    for r in history
        .iter()
        .filter(|r| r.deployment.as_deref() == Some("r"))
    {
        live.insert(
            r.name.clone(),
            (
                r.replicaset.clone().unwrap_or_default(),
                r.phase != "Deleted",
            ),
        );
        let sets: std::collections::BTreeSet<&String> = live
            .values()
            .filter(|(_, alive)| *alive)
            .map(|(rs, _)| rs)
            .collect();
        assert!(sets.len() <= 1, "old and new pods alive together");
    }
    // Scale via another manager.
    let (code, _) = patch(
        &s,
        &format!("{p}?fieldManager=kubectl-scale"),
        "application/merge-patch+json",
        &json!({"spec": {"replicas": 3}}),
    )
    .await;
    assert_eq!(code, 200);
    wait_obj(&s, p, Duration::from_secs(10), |d| {
        d["status"]["availableReplicas"] == 3
    })
    .await;
}

#[tokio::test]
async fn paused_deployment_reports_and_holds() {
    let s = standin("pause").await;
    let p = "/apis/apps/v1/namespaces/pause/deployments/p";
    apply(&s, p, &deployment("p", "pause", 1, "probe-busybox:1"), "").await;
    wait_obj(&s, p, Duration::from_secs(10), |d| {
        d["status"]["availableReplicas"] == 1
    })
    .await;
    let (code, _) = patch(
        &s,
        &format!("{p}?fieldManager=kubectl-rollout"),
        "application/merge-patch+json",
        &json!({"spec": {"paused": true}}),
    )
    .await;
    assert_eq!(code, 200);
    let d = wait_obj(&s, p, Duration::from_secs(5), |d| {
        d["status"]["conditions"]
            .as_array()
            .is_some_and(|a| a.iter().any(|c| c["reason"] == "DeploymentPaused"))
    })
    .await;
    let c = d["status"]["conditions"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["type"] == "Progressing"))
        .expect("cond");
    assert_eq!(
        (c["status"].as_str(), c["message"].as_str()),
        (Some("Unknown"), Some("Deployment is paused"))
    );
    // A template change while paused creates no new ReplicaSet: once the controller has
    // observed the new generation (its sync of the paused Deployment), there is still one.
    let (_, applied) = apply(&s, p, &deployment("p", "pause", 1, "probe-busybox:2"), "").await;
    let generation = applied["metadata"]["generation"].clone();
    assert_eq!(generation, 3, "pausing was generation 2");
    wait_obj(&s, p, Duration::from_secs(5), |d| {
        d["status"]["observedGeneration"] == generation
    })
    .await;
    assert_eq!(s.list("ReplicaSet", Some("pause")).len(), 1);
    patch(
        &s,
        &format!("{p}?fieldManager=kubectl-rollout"),
        "application/merge-patch+json",
        &json!({"spec": {"paused": false}}),
    )
    .await;
    wait_obj(&s, p, Duration::from_secs(10), |d| {
        d["status"]["updatedReplicas"] == 1
            && d["status"]["observedGeneration"] == d["metadata"]["generation"]
            && d["status"]["availableReplicas"] == 1
            && d["status"]["replicas"] == 1
    })
    .await;
    assert_eq!(s.list("ReplicaSet", Some("pause")).len(), 2);
}
