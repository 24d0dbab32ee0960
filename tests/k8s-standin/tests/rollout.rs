//! The 2-replica rolling update of 04-rolling-update-watch.json (maxSurge 1,
//! maxUnavailable 0): the Deployment watch sequence and status arithmetic,
//! ReplicaSet annotations, and never fewer than 2 available pods.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

fn st(d: &Value, k: &str) -> i64 {
    d["object"]["status"][k].as_i64().unwrap_or(0)
}

fn progressing_reason(d: &Value) -> String {
    d["object"]["status"]["conditions"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["type"] == "Progressing"))
        .and_then(|c| c["reason"].as_str())
        .unwrap_or("")
        .to_string()
}

#[tokio::test]
async fn rolling_update_status_sequence() {
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
            e["object"]["metadata"]["generation"] == 2
                && e["object"]["status"]["observedGeneration"] == 2
                && progressing_reason(e) == "NewReplicaSetAvailable"
        })
        .await;
    assert!(events.len() >= 4, "too few events: {}", events.len());

    // The first event after the apply: generation 2, observedGeneration 1, old counts (04 at 521 ms).
    let first = &events[0];
    assert_eq!(first["type"], "MODIFIED");
    assert_eq!(first["object"]["metadata"]["generation"], 2);
    assert_eq!(first["object"]["status"]["observedGeneration"], 1);
    assert_eq!(
        (
            st(first, "updatedReplicas"),
            st(first, "readyReplicas"),
            st(first, "availableReplicas")
        ),
        (2, 2, 2)
    );

    // Then the revision annotation moves to 2 with NewReplicaSetCreated, still observedGeneration 1.
    let created = events
        .iter()
        .find(|e| progressing_reason(e) == "NewReplicaSetCreated")
        .expect("NewReplicaSetCreated event");
    assert_eq!(
        created["object"]["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
    assert_eq!(created["object"]["status"]["observedGeneration"], 1);

    // Somewhere observedGeneration catches up while no pod of the new RS is counted:
    // updatedReplicas is absent (not 0), unavailableReplicas 1.
    let caught_up = events
        .iter()
        .find(|e| e["object"]["status"]["observedGeneration"] == 2)
        .expect("observedGeneration 2");
    assert!(
        caught_up["object"]["status"]
            .get("updatedReplicas")
            .is_none(),
        "updatedReplicas must be omitted when 0: {}",
        caught_up["object"]["status"]
    );
    assert_eq!(st(caught_up, "unavailableReplicas"), 1);

    // Invariants over the whole sequence.
    for e in &events {
        let o = &e["object"]["status"];
        assert!(
            st(e, "availableReplicas") >= 2,
            "available dropped below 2: {o}"
        );
        assert!(st(e, "replicas") <= 3, "more than replicas + maxSurge: {o}");
        for k in [
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
            "unavailableReplicas",
        ] {
            assert_ne!(
                o.get(k),
                Some(&Value::from(0)),
                "zero fields are omitted: {o}"
            );
        }
        // replicas counts pods of all ReplicaSets, updated those of the new one.
        assert!(st(e, "updatedReplicas") <= st(e, "replicas").max(2), "{o}");
    }
    assert!(
        events
            .iter()
            .any(|e| progressing_reason(e) == "ReplicaSetUpdated")
    );
    let last = events.last().expect("last");
    assert_eq!(
        (
            st(last, "replicas"),
            st(last, "updatedReplicas"),
            st(last, "readyReplicas"),
            st(last, "availableReplicas")
        ),
        (2, 2, 2, 2)
    );
    let msg = last["object"]["status"]["conditions"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["type"] == "Progressing"))
        .and_then(|c| c["message"].as_str())
        .unwrap_or("")
        .to_string();
    assert!(
        msg.starts_with("ReplicaSet \"roll-") && msg.ends_with("\" has successfully progressed."),
        "{msg}"
    );

    // ReplicaSets: the new one carries revision 2 and the replica annotations; the old one is at 0.
    let rss = s.list("ReplicaSet", Some("transcripts"));
    assert_eq!(rss.len(), 2);
    let new_rs = rss
        .iter()
        .find(|r| r["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2")
        .expect("new rs");
    assert_eq!(
        new_rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"],
        "2"
    );
    assert_eq!(
        new_rs["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"],
        "3"
    );
    let hash = new_rs["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .expect("hash");
    assert_eq!(
        new_rs["metadata"]["name"].as_str(),
        Some(format!("roll-{hash}").as_str())
    );
    assert_eq!(
        new_rs["spec"]["selector"]["matchLabels"]["pod-template-hash"],
        hash
    );
    assert_eq!(
        new_rs["metadata"]["ownerReferences"][0]["blockOwnerDeletion"],
        true
    );
    let old_rs = rss
        .iter()
        .find(|r| r["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1")
        .expect("old rs");
    assert_eq!(old_rs["spec"]["replicas"], 0);

    // Pod history: at every moment, at least 2 ready pods of the deployment.
    let history = s.pod_history();
    let mut ready: std::collections::BTreeMap<String, bool> = Default::default();
    let mut seen_two = false;
    for r in history
        .iter()
        .filter(|r| r.deployment.as_deref() == Some("roll"))
    {
        ready.insert(r.name.clone(), r.ready);
        let n = ready.values().filter(|x| **x).count();
        if n >= 2 {
            seen_two = true;
        }
        if seen_two {
            assert!(n >= 2, "ready pods dropped to {n} at {}", r.time);
        }
    }

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
    d["spec"]["strategy"] = serde_json::json!({"type": "Recreate"});
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
        &serde_json::json!({"spec": {"replicas": 3}}),
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
        &serde_json::json!({"spec": {"paused": true}}),
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
        &serde_json::json!({"spec": {"paused": false}}),
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
