//! 10-real-cluster-findings.json, replayed from the recorded requests and
//! compared with the recorded responses: the Deployment's status writes
//! during and after a rollout (a), a root image under `runAsNonRoot` (b), the
//! no-op applies after the rollout and a status-only write between a GET and
//! an apply (c), liveness failures restarting the container (d).

mod common;

use std::time::Duration;

use common::*;
use k8s_standin::{Behavior, FaultFilter, ImageConfig, StandIn};
use serde_json::{Value, json};

const NS: &str = "findings";
/// The recorded todo backend image: serves `/api/health` on 8000, exits 0 on
/// SIGTERM, and has no numeric `USER` (b: "image will run as root").
const IMAGE: &str = "rc-backend:16ac6f5d8534";

async fn findings() -> (StandIn, Value) {
    let s = standin(NS).await;
    s.node_images().add_image_with(
        IMAGE,
        Behavior::serve(&["/api/health"], 8000),
        ImageConfig::default().user(""),
    );
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

/// The pod watch until `CrashLoopBackOff`, compared with the recorded one
/// shape by shape; returns the events.
async fn pod_watch_matches(s: &StandIn, d: &Value) -> Vec<Value> {
    let mut w = watch(
        s,
        "/api/v1/namespaces/findings/pods?watch=1&labelSelector=app%3Dliveness",
    )
    .await;
    let (code, _) = replay(s, &d["apply"]).await;
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
    let want: Vec<Value> = d["pod_watch"]
        .as_array()
        .expect("pod watch")
        .iter()
        .map(|e| container_shape(&e["event"]["object"]))
        .collect();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "pod watch event {i} differs from the recording");
    }
    assert_eq!(got.len(), want.len(), "{got:#?}");
    events
}

/// Each restart's `lastState` is the instance before (its containerID and
/// start); every instance has a new `containerd://` id.
fn restarts_keep_the_previous_instance(events: &[Value]) {
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
}

/// Both probes' `Unhealthy` and the `Killing` event as recorded, and the
/// kubelet's events about the pod stopping at the spam filter's 25, as recorded.
fn liveness_events_match(s: &StandIn, d: &Value, pod: &str) {
    let ours: Vec<Value> = s
        .list("Event", Some(NS))
        .into_iter()
        .filter(|e| e["involvedObject"]["name"] == pod)
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
    for want in theirs
        .iter()
        .filter(|e| e["reason"] == "Unhealthy" || e["reason"] == "Killing")
    {
        let got = ours
            .iter()
            .find(|e| e["message"] == want["message"])
            .unwrap_or_else(|| panic!("no event {}", want["message"]));
        for k in ["type", "reason", "source"] {
            assert_eq!(got[k], want[k], "{k} of {}", want["message"]);
        }
        assert_eq!(got["involvedObject"]["fieldPath"], "spec.containers{web}");
    }
    let total = |evs: &mut dyn Iterator<Item = &Value>| -> i64 {
        evs.filter(|e| e["source"]["component"] == "kubelet")
            .map(|e| e["count"].as_i64().unwrap_or(1))
            .sum()
    };
    assert_eq!(total(&mut theirs.iter().copied()), 25);
    assert_eq!(total(&mut ours.iter()), 25);
}

#[tokio::test]
async fn liveness_failures_restart_the_container_then_back_off() {
    let (s, t) = findings().await;
    let d = &t["d_liveness_failure_restarts"];
    // Killed (Completed, exit 0) and restarted in one status write, three times; the
    // fourth kill backs off 20 s.
    let events = pod_watch_matches(&s, d).await;
    restarts_keep_the_previous_instance(&events);
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
    let recorded_pod = &d["pod_watch"][7]["event"]["object"];
    assert_eq!(
        normalize(&pod["status"]["conditions"]),
        normalize(&recorded_pod["status"]["conditions"])
    );
    liveness_events_match(&s, d, pod["metadata"]["name"].as_str().expect("name"));
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

/// A pod status without what differs between runs: times, IPs, and the pod's
/// `name_namespace(uid)` in messages.
fn comparable_status(pod: &Value) -> Value {
    let key = format!(
        "{}_{}({})",
        pod["metadata"]["name"].as_str().unwrap_or(""),
        pod["metadata"]["namespace"].as_str().unwrap_or(""),
        pod["metadata"]["uid"].as_str().unwrap_or("")
    );
    let text = serde_json::to_string(&pod["status"])
        .unwrap_or_default()
        .replace(&key, "<pod>");
    let mut st: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    for k in ["podIP", "podIPs", "startTime"] {
        st[k] = json!("<x>");
    }
    normalize(&st)
}

/// The refused pod's `Pulled` and `Failed` events as recorded (messages with
/// the pod's key, type, source, count), and no container created.
fn refusal_events_match(s: &StandIn, b: &Value, pod: &str) {
    let ours: Vec<Value> = s
        .list("Event", Some(NS))
        .into_iter()
        .filter(|e| e["involvedObject"]["name"] == pod)
        .collect();
    let recorded_pod = &b["pods"]["response"]["body"]["items"][0]["metadata"]["name"];
    let hide = |e: &Value| {
        let pod = e["involvedObject"]["name"].as_str().unwrap_or("");
        let uid = e["involvedObject"]["uid"].as_str().unwrap_or("");
        e["message"]
            .as_str()
            .unwrap_or("")
            .replace(&format!("{pod}_findings({uid})"), "<pod>")
    };
    for reason in ["Pulled", "Failed"] {
        let want = b["events"]["response"]["body"]["items"]
            .as_array()
            .and_then(|a| {
                a.iter()
                    .find(|e| e["reason"] == reason && &e["involvedObject"]["name"] == recorded_pod)
            })
            .expect("recorded event");
        let got = ours
            .iter()
            .find(|e| e["reason"] == reason)
            .unwrap_or_else(|| panic!("no {reason} event"));
        assert_eq!(hide(got), hide(want), "{reason}");
        for k in ["type", "source", "count"] {
            assert_eq!(got[k], want[k], "{k} of {reason}");
        }
        assert_eq!(
            got["involvedObject"]["fieldPath"],
            want["involvedObject"]["fieldPath"]
        );
    }
    assert!(
        !ours
            .iter()
            .any(|e| e["reason"] == "Created" || e["reason"] == "Started"),
        "no container was created"
    );
}

/// The refused pod's `Failed` event, once its count is `n`.
async fn failed_count(s: &StandIn, pod: &str, n: i64) -> Value {
    s.wait_for(Duration::from_secs(10), |s| {
        s.list("Event", Some(NS))
            .into_iter()
            .find(|e| e["involvedObject"]["name"] == pod && e["reason"] == "Failed")
            .filter(|e| e["count"] == n)
    })
    .await
    .unwrap_or_else(|| panic!("{n} refused attempts"))
}

#[tokio::test]
async fn a_root_image_under_run_as_non_root_is_refused() {
    let (s, t) = findings().await;
    let b = &t["b_run_as_non_root_with_root_image"];
    let (code, _) = replay(&s, &b["apply"]).await;
    assert_eq!(code, b["apply"]["response"]["status"]);
    let pod = s
        .wait_for(Duration::from_secs(10), |s| {
            s.list("Pod", Some(NS))
                .into_iter()
                .find(|p| waiting_reason(p) == "CreateContainerConfigError")
        })
        .await
        .expect("CreateContainerConfigError");
    let name = pod["metadata"]["name"].as_str().expect("name");
    // Recorded 12 s after the apply: two attempts so far, each `Pulled` then `Failed`.
    failed_count(&s, name, 2).await;
    let pod = s
        .get(&format!("/api/v1/namespaces/findings/pods/{name}"))
        .expect("pod");
    let recorded_pod = &b["pods"]["response"]["body"]["items"][0];
    assert_eq!(comparable_status(&pod), comparable_status(recorded_pod));
    refusal_events_match(&s, b, name);
    // The next attempt waits for the pod worker's error back-off (at least 10 s).
    let second = std::time::Instant::now();
    failed_count(&s, name, 3).await;
    assert!(
        second.elapsed() >= Duration::from_millis(200) - Duration::from_millis(10),
        "10 s at 0.02, less the polling: {:?}",
        second.elapsed()
    );
    let dep = wait_obj(
        &s,
        "/apis/apps/v1/namespaces/findings/deployments/rootimg",
        Duration::from_secs(5),
        |d| d["status"]["unavailableReplicas"] == 1,
    )
    .await;
    assert_eq!(
        hide_generated(&normalize(&dep["status"]), "rootimg"),
        hide_generated(
            &normalize(&b["deployment"]["response"]["body"]["status"]),
            "rootimg"
        )
    );
}

const WEB: &str = "/apis/apps/v1/namespaces/findings/deployments/web";

/// What `kubectl rollout status` waits for: the new generation observed and
/// every replica updated and available.
fn rolled_out(d: &Value) -> bool {
    let st = &d["status"];
    let want = &d["spec"]["replicas"];
    st["observedGeneration"] == d["metadata"]["generation"]
        && &st["updatedReplicas"] == want
        && &st["replicas"] == want
        && &st["availableReplicas"] == want
}

/// Creates `web` by the recorded apply and waits until it has rolled out.
async fn rolled_out_web(s: &StandIn, t: &Value) -> Value {
    let (code, _) = replay(s, &t["a_status_updates_after_rollout"]["steps"][0]).await;
    assert_eq!(code, 201);
    let d = wait_obj(s, WEB, Duration::from_secs(10), rolled_out).await;
    // Whatever the last status write caused has been handled too.
    s.settled().await;
    d
}

#[tokio::test]
async fn no_op_applies_after_a_rollout_change_nothing() {
    let (s, t) = findings().await;
    rolled_out_web(&s, &t).await;
    // Recorded: six GET-then-apply pairs; each apply's answer is the GET's object, same
    // resourceVersion, generation and managedFields.
    for pair in t["c_noop_apply_after_rollout"].as_array().expect("pairs") {
        assert_eq!(pair["resourceVersion_get"], pair["resourceVersion_apply"]);
        assert_eq!(
            pair["get"]["response"]["body"],
            pair["apply"]["response"]["body"]
        );
        let (code, got) = replay(&s, &pair["get"]).await;
        assert_eq!(code, pair["get"]["response"]["status"]);
        let (code, applied) = replay(&s, &pair["apply"]).await;
        assert_eq!(code, pair["apply"]["response"]["status"]);
        assert_eq!(applied, got, "{}", pair["apply"]["note"]);
        assert_eq!(got["metadata"]["generation"], pair["generation_get"]);
    }
    assert!(s.injected_status_writes().is_empty());
}

/// `after` is `before` with a status-only write: same spec, labels, generation,
/// appliers' managed fields, observedGeneration and counts; moved update times.
fn only_the_status_write_differs(before: &Value, after: &Value) {
    assert_eq!(after["spec"], before["spec"]);
    for k in ["generation", "labels", "annotations", "uid"] {
        assert_eq!(after["metadata"][k], before["metadata"][k], "{k}");
    }
    let managers = |d: &Value| -> Vec<Value> {
        d["metadata"]["managedFields"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|m| {
                        json!([
                            m["manager"],
                            m["operation"],
                            m["subresource"],
                            m["fieldsV1"]
                        ])
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(managers(after), managers(before));
    assert_eq!(
        after["metadata"]["managedFields"][0], before["metadata"]["managedFields"][0],
        "the apply's entry, time included"
    );
    assert_eq!(normalize(&after["status"]), normalize(&before["status"]));
    assert_ne!(after["status"], before["status"], "lastUpdateTime moved");
}

#[tokio::test]
async fn a_status_write_between_get_and_apply_moves_only_the_resource_version() {
    let (s, t) = findings().await;
    rolled_out_web(&s, &t).await;
    let pair = &t["c_noop_apply_after_rollout"][0];
    s.status_write_after_next_get(FaultFilter::method_path("GET", "/deployments/web"));
    // Another object's GET leaves the write armed.
    let (code, _) = call(
        &s,
        "GET",
        "/api/v1/namespaces/findings/configmaps/kube-root-ca.crt",
        None,
    )
    .await;
    assert_eq!(code, 200);
    assert!(s.injected_status_writes().is_empty());
    let (_, got) = replay(&s, &pair["get"]).await;
    let rv = got["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    let mut w = watch(
        &s,
        &format!("/apis/apps/v1/namespaces/findings/deployments?watch=1&resourceVersion={rv}"),
    )
    .await;
    // The client's next request is answered after the controller's write.
    let (code, applied) = replay(&s, &pair["apply"]).await;
    assert_eq!(code, 200);
    let moved = applied["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    assert!(
        moved.parse::<u64>().ok() > rv.parse::<u64>().ok(),
        "{rv} -> {moved}"
    );
    let writes = s.injected_status_writes();
    assert_eq!(writes.len(), 1);
    assert_eq!(writes[0].path, WEB);
    assert_eq!(writes[0].resource_version_before, rv);
    assert_eq!(writes[0].resource_version_after, moved);
    // Exactly one write, through /status: spec, labels, generation, the apply's
    // managed fields, observedGeneration and counts are as the GET showed them.
    let events = w
        .until(Duration::from_secs(5), |e| {
            e["object"]["metadata"]["resourceVersion"] == moved.as_str()
        })
        .await;
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["object"], applied);
    only_the_status_write_differs(&got, &applied);
    // One write per arming: the next pair is a plain no-op again.
    let (_, again) = replay(&s, &pair["get"]).await;
    let (_, applied_again) = replay(&s, &pair["apply"]).await;
    assert_eq!(again, applied_again);
    assert_eq!(s.injected_status_writes().len(), 1);
}

/// A Deployment watch event without times, uids, resourceVersions and hashes:
/// generation, revision, status (every field's presence, condition order and
/// reasons) and who wrote the object how.
fn deployment_shape(d: &Value) -> Value {
    let managers: Vec<Value> = d["metadata"]["managedFields"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| json!([m["manager"], m["operation"], m["subresource"]]))
                .collect()
        })
        .unwrap_or_default();
    hide_generated(
        &json!({
            "generation": d["metadata"]["generation"],
            "annotations": d["metadata"]["annotations"],
            "status": normalize(&d["status"]),
            "managers": managers,
        }),
        "web",
    )
}

/// Whether a status shows some but not all pods ready (the recording's two pods
/// became ready 15 ms apart, the stand-in's may become ready in one sync).
fn partly_ready(shape: &Value) -> bool {
    let st = &shape["status"];
    st["readyReplicas"].as_i64().is_some_and(|r| r > 0) && st["readyReplicas"] != st["replicas"]
}

#[tokio::test]
async fn a_deployments_status_writes_during_and_after_a_rollout() {
    let (s, t) = findings().await;
    let a = &t["a_status_updates_after_rollout"];
    let want: Vec<Value> = a["deployment_watch"]
        .as_array()
        .expect("watch")
        .iter()
        .map(|e| deployment_shape(&e["event"]["object"]))
        .collect();
    let rv = s.resource_version();
    let mut w = watch(
        &s,
        &format!("/apis/apps/v1/namespaces/findings/deployments?watch=1&resourceVersion={rv}"),
    )
    .await;
    let (code, _) = replay(&s, &a["steps"][0]).await;
    assert_eq!(code, 201);
    let events = w
        .until(Duration::from_secs(10), |e| rolled_out(&e["object"]))
        .await;
    let got: Vec<Value> = events
        .iter()
        .map(|e| deployment_shape(&e["object"]))
        .collect();
    // Recorded: ADDED; the revision with NewReplicaSetCreated (no observedGeneration yet);
    // observedGeneration with Available False appended after Progressing; 2 replicas
    // updated with Progressing ReplicaSetUpdated moved last; 1 ready; all ready with
    // Available True and NewReplicaSetAvailable.
    let want_coalesced: Vec<Value> = want.iter().filter(|w| !partly_ready(w)).cloned().collect();
    assert!(
        got == want || got == want_coalesced,
        "got {got:#?}\nwant {want:#?}"
    );
    // No further write once rolled out: what the GET satisfying `kubectl rollout status`
    // returned is the last event, as recorded.
    s.settled().await;
    let d = s.get(WEB).expect("web");
    let last = &events.last().expect("events")["object"];
    assert_eq!(
        d["metadata"]["resourceVersion"],
        last["metadata"]["resourceVersion"]
    );
    let recorded_get = &a["steps"][1]["response"]["body"];
    assert_eq!(
        recorded_get["metadata"]["resourceVersion"],
        a["deployment_watch"][5]["event"]["object"]["metadata"]["resourceVersion"]
    );
    assert_eq!(deployment_shape(&d), deployment_shape(recorded_get));
}
