//! The failure modes of 05-failure-modes.json: ErrImageNeverPull, a crash loop
//! (with its back-off sequence and logs), a failing readiness probe, an
//! unschedulable pod, ProgressDeadlineExceeded; plus ErrImagePull/ImagePullBackOff.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const NS: &str = "transcripts";

fn pod_of(s: &k8s_standin::StandIn, app: &str) -> Option<Value> {
    s.list("Pod", Some(NS))
        .into_iter()
        .find(|p| p["metadata"]["labels"]["app"] == app)
}

fn events_for(s: &k8s_standin::StandIn, name: &str) -> Vec<Value> {
    s.list("Event", Some(NS))
        .into_iter()
        .filter(|e| e["involvedObject"]["name"] == name)
        .collect()
}

fn cond<'a>(p: &'a Value, t: &str) -> &'a Value {
    p["status"]["conditions"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["type"] == t))
        .unwrap_or(&Value::Null)
}

async fn wait_pod(s: &k8s_standin::StandIn, app: &str, f: impl Fn(&Value) -> bool) -> Value {
    s.wait_for(Duration::from_secs(10), |s| pod_of(s, app).filter(|p| f(p)))
        .await
        .unwrap_or_else(|| panic!("pod of {app} never matched: {:?}", pod_of(s, app)))
}

#[tokio::test]
async fn image_never_pull() {
    let s = standin(NS).await;
    let t = transcript("05-failure-modes.json");
    let want = &t["image-never-pull"]["pods"]["items"][0]["status"];
    apply(
        &s,
        "/apis/apps/v1/namespaces/transcripts/deployments/missing",
        &deployment("missing", NS, 1, "probe-missing:1"),
        "",
    )
    .await;
    let p = wait_pod(&s, "missing", |p| {
        p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "ErrImageNeverPull"
    })
    .await;
    let cs = &p["status"]["containerStatuses"][0];
    assert_eq!(cs, &want["containerStatuses"][0]);
    assert_eq!(p["status"]["phase"], "Pending");
    assert_eq!(
        normalize(&p["status"]["conditions"]),
        normalize(&want["conditions"])
    );
    let name = p["metadata"]["name"].as_str().expect("name").to_string();
    let evs = s
        .wait_for(Duration::from_secs(5), |s| {
            let e = events_for(s, &name);
            (e.iter().any(|e| e["reason"] == "Failed")).then_some(e)
        })
        .await
        .expect("events");
    let never = evs
        .iter()
        .find(|e| e["reason"] == "ErrImageNeverPull")
        .expect("ErrImageNeverPull event");
    assert_eq!(
        never["message"],
        "Container image \"probe-missing:1\" is not present with pull policy of Never"
    );
    assert_eq!(never["type"], "Warning");
    assert_eq!(
        never["source"],
        json!({"component": "kubelet", "host": "minikube"})
    );
    assert_eq!(never["involvedObject"]["fieldPath"], "spec.containers{web}");
    let failed = evs
        .iter()
        .find(|e| e["reason"] == "Failed")
        .expect("Failed event");
    assert_eq!(failed["message"], "Error: ErrImageNeverPull");
    let sched = evs
        .iter()
        .find(|e| e["reason"] == "Scheduled")
        .expect("Scheduled");
    assert_eq!(
        sched["message"],
        format!("Successfully assigned transcripts/{name} to minikube")
    );
    assert_eq!(sched["source"], json!({}));
    assert_eq!(sched["reportingComponent"], "default-scheduler");
    assert!(sched["firstTimestamp"].is_null());
    // Deployment status as recorded.
    let d = wait_obj(
        &s,
        "/apis/apps/v1/namespaces/transcripts/deployments/missing",
        Duration::from_secs(5),
        |d| d["status"]["unavailableReplicas"] == 1,
    )
    .await;
    let wd = &t["image-never-pull"]["deployment"]["status"];
    assert_eq!(d["status"]["observedGeneration"], wd["observedGeneration"]);
    assert_eq!(d["status"]["replicas"], wd["replicas"]);
    assert_eq!(d["status"]["updatedReplicas"], wd["updatedReplicas"]);
    assert!(d["status"].get("availableReplicas").is_none());
}

#[tokio::test]
async fn crash_loop_backoff_and_logs() {
    let s = standin(NS).await;
    let t = transcript("05-failure-modes.json");
    apply(
        &s,
        "/apis/apps/v1/namespaces/transcripts/deployments/crash",
        &deployment("crash", NS, 1, "probe-crash:1"),
        "",
    )
    .await;
    let first = wait_pod(&s, "crash", |p| {
        p["status"]["containerStatuses"][0]["state"]["terminated"].is_object()
    })
    .await;
    let name = first["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_string();
    let uid = first["metadata"]["uid"].as_str().expect("uid").to_string();
    let term = &first["status"]["containerStatuses"][0];
    assert_eq!(term["state"]["terminated"]["exitCode"], 3);
    assert_eq!(term["state"]["terminated"]["reason"], "Error");
    assert_eq!(term["started"], false);
    assert_eq!(first["status"]["phase"], "Running");

    // Back-off messages 10s, 20s, 40s as restarts accumulate.
    for (restarts, backoff) in [(1, 10), (2, 20), (3, 40)] {
        let p = wait_pod(&s, "crash", |p| {
            let cs = &p["status"]["containerStatuses"][0];
            cs["restartCount"] == restarts && cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"
        })
        .await;
        let cs = &p["status"]["containerStatuses"][0];
        assert_eq!(
            cs["state"]["waiting"]["message"],
            format!(
                "back-off {backoff}s restarting failed container=web pod={name}_transcripts({uid})"
            )
        );
        assert_eq!(cs["lastState"]["terminated"]["exitCode"], 3);
        assert_eq!(cs["ready"], false);
        assert_eq!(cs["started"], false);
    }
    // The shape of the recorded container status at log time (ids and times aside).
    let p = pod_of(&s, "crash").expect("pod");
    let want = &t["crash-loop"]["container_state_at_log_time"][0];
    let got = &p["status"]["containerStatuses"][0];
    let keys = |v: &Value| {
        v.as_object()
            .map(|m| m.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
    };
    assert_eq!(keys(got), keys(want));
    assert_eq!(
        keys(&got["lastState"]["terminated"]),
        keys(&want["lastState"]["terminated"])
    );
    assert!(
        got["image"]
            .as_str()
            .is_some_and(|i| i == "docker.io/library/probe-crash:1")
    );

    // Logs: previous and current, and the 400 for an unknown container.
    let base = format!("/api/v1/namespaces/transcripts/pods/{name}/log");
    let r = raw(
        &s,
        "GET",
        &format!("{base}?container=web&previous=true&tailLines=2"),
        None,
        None,
    )
    .await
    .expect("log");
    assert_eq!(r.status, 200);
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        t["crash-loop"]["log_previous_tail"][1]
            .as_str()
            .expect("log")
    );
    let r = raw(&s, "GET", &format!("{base}?container=web"), None, None)
        .await
        .expect("log");
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        t["crash-loop"]["log_current"][1].as_str().expect("log")
    );
    let r = raw(&s, "GET", &format!("{base}?container=nope"), None, None)
        .await
        .expect("log");
    assert_eq!(r.status, 400);
    let want = t["crash-loop"]["log_of_missing_container"][1].clone();
    let mut want = want;
    want["message"] = json!(format!("container nope is not valid for pod {name}"));
    assert_eq!(r.json(), want);

    // Events: Pulled/Created/Started repeat with counts, BackOff is a Warning.
    let evs = events_for(&s, &name);
    let by = |r: &str| {
        evs.iter()
            .find(|e| e["reason"] == r)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(
        by("Pulled")["message"],
        "Container image \"probe-crash:1\" already present on machine"
    );
    assert!(by("Pulled")["count"].as_i64().unwrap_or(0) >= 3);
    assert_eq!(by("Created")["message"], "Created container web");
    assert_eq!(by("Started")["message"], "Started container web");
    assert_eq!(
        by("BackOff")["message"],
        "Back-off restarting failed container"
    );
    assert_eq!(by("BackOff")["type"], "Warning");
    assert_eq!(
        events_for(&s, &name)
            .iter()
            .filter(|e| e["reason"] == "BackOff")
            .count(),
        1,
        "repeated events aggregate into one object"
    );
}

#[tokio::test]
async fn failing_readiness_probe() {
    let s = standin(NS).await;
    let mut d = deployment("notready", NS, 1, "probe-busybox:1");
    d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"] =
        json!("/nope");
    apply(
        &s,
        "/apis/apps/v1/namespaces/transcripts/deployments/notready",
        &d,
        "",
    )
    .await;
    let p = wait_pod(&s, "notready", |p| p["status"]["phase"] == "Running").await;
    let name = p["metadata"]["name"].as_str().expect("name").to_string();
    let evs = s
        .wait_for(Duration::from_secs(5), |s| {
            events_for(s, &name)
                .into_iter()
                .find(|e| e["reason"] == "Unhealthy" && e["count"].as_i64().unwrap_or(0) >= 3)
        })
        .await
        .expect("Unhealthy x3");
    assert_eq!(
        evs["message"],
        "Readiness probe failed: HTTP probe failed with statuscode: 404"
    );
    assert_eq!(evs["type"], "Warning");
    let p = pod_of(&s, "notready").expect("pod");
    assert_eq!(cond(&p, "Ready")["status"], "False");
    assert_eq!(
        cond(&p, "Ready")["message"],
        "containers with unready status: [web]"
    );
    assert_eq!(p["status"]["containerStatuses"][0]["started"], true);
    assert!(p["status"]["containerStatuses"][0]["state"]["running"].is_object());
    let d = s
        .get("/apis/apps/v1/namespaces/transcripts/deployments/notready")
        .expect("d");
    assert_eq!(d["status"]["unavailableReplicas"], 1);
}

/// The sum of the `count`s of the events a source reported about one object.
fn reported(s: &k8s_standin::StandIn, name: &str, component: &str) -> i64 {
    events_for(s, name)
        .iter()
        .filter(|e| e["source"]["component"] == component)
        .map(|e| e["count"].as_i64().unwrap_or(1))
        .sum()
}

#[tokio::test]
async fn kubelet_events_about_a_pod_stop_at_the_spam_burst() {
    // Recorded: the failing-readiness pod's kubelet events add up to 25, the
    // Unhealthy ones stopping long before the recording ended (client-go's spam filter).
    let t = transcript("05-failure-modes.json");
    let recorded: Vec<&Value> = t["readiness-failing"]["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["source"]["component"] == "kubelet")
        .collect();
    let burst: i64 = recorded
        .iter()
        .map(|e| e["count"].as_i64().unwrap_or(1))
        .sum();
    assert_eq!(burst, 25);

    let s = standin(NS).await;
    let mut d = deployment("notready", NS, 1, "probe-busybox:1");
    d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"] =
        json!("/nope");
    apply(
        &s,
        "/apis/apps/v1/namespaces/transcripts/deployments/notready",
        &d,
        "",
    )
    .await;
    let p = wait_pod(&s, "notready", |p| p["status"]["phase"] == "Running").await;
    let name = p["metadata"]["name"].as_str().expect("name").to_string();
    s.wait_for(Duration::from_secs(10), |s| {
        (reported(s, &name, "kubelet") >= burst).then_some(())
    })
    .await
    .expect("the kubelet reports 25 events");
    // Deleting the pod makes the kubelet report `Killing`: the filter drops it too.
    let (code, _) = call(
        &s,
        "DELETE",
        &format!("/api/v1/namespaces/transcripts/pods/{name}"),
        None,
    )
    .await;
    assert_eq!(code, 200);
    s.wait_for(Duration::from_secs(5), |s| {
        s.get(&format!("/api/v1/namespaces/transcripts/pods/{name}"))
            .is_none()
            .then_some(())
    })
    .await
    .expect("pod gone");
    assert_eq!(reported(&s, &name, "kubelet"), burst);
    let evs = events_for(&s, &name);
    assert!(!evs.iter().any(|e| e["reason"] == "Killing"), "{evs:#?}");
    let unhealthy = evs
        .iter()
        .find(|e| e["reason"] == "Unhealthy")
        .expect("Unhealthy");
    assert_eq!(
        unhealthy["message"],
        "Readiness probe failed: HTTP probe failed with statuscode: 404"
    );
    // The allowance is per object: the replacement pod's start is reported.
    s.wait_for(Duration::from_secs(5), |s| {
        let p = pod_of(s, "notready").filter(|p| p["metadata"]["name"] != name.as_str())?;
        let other = p["metadata"]["name"].as_str()?.to_string();
        events_for(s, &other)
            .into_iter()
            .find(|e| e["reason"] == "Started")
    })
    .await
    .expect("the replacement pod's Started event");
}

#[tokio::test]
async fn unschedulable_until_capacity_frees() {
    let s = standin(NS).await;
    let t = transcript("05-failure-modes.json");
    let mut d = deployment("unsched", NS, 1, "probe-busybox:1");
    d["spec"]["template"]["spec"]["containers"][0]["resources"] =
        json!({"requests": {"cpu": "3", "memory": "1Gi"}});
    let mut hog = deployment("hog", NS, 1, "probe-busybox:1");
    hog["spec"]["template"]["spec"]["containers"][0]["resources"] =
        json!({"requests": {"cpu": "2"}});
    apply(
        &s,
        "/apis/apps/v1/namespaces/transcripts/deployments/hog",
        &hog,
        "",
    )
    .await;
    wait_pod(&s, "hog", |p| p["spec"]["nodeName"] == "minikube").await;
    apply(
        &s,
        "/apis/apps/v1/namespaces/transcripts/deployments/unsched",
        &d,
        "",
    )
    .await;
    let p = wait_pod(&s, "unsched", |p| {
        cond(p, "PodScheduled")["status"] == "False"
    })
    .await;
    let want = &t["unschedulable"]["pods"]["items"][0]["status"];
    assert_eq!(normalize(&p["status"]), normalize(want));
    let name = p["metadata"]["name"].as_str().expect("name").to_string();
    let ev = s
        .wait_for(Duration::from_secs(5), |s| {
            events_for(s, &name)
                .into_iter()
                .find(|e| e["reason"] == "FailedScheduling")
        })
        .await
        .expect("FailedScheduling");
    assert_eq!(
        ev["message"],
        "0/1 nodes are available: 1 Insufficient cpu."
    );
    assert_eq!(ev["action"], "Scheduling");
    assert!(ev["count"].is_null());
    // Free the capacity: the pod gets scheduled.
    let (code, _) = call(
        &s,
        "DELETE",
        "/apis/apps/v1/namespaces/transcripts/deployments/hog",
        None,
    )
    .await;
    assert_eq!(code, 200);
    wait_pod(&s, "unsched", |p| {
        p["spec"]["nodeName"] == "minikube" && cond(p, "Ready")["status"] == "True"
    })
    .await;
}

#[tokio::test]
async fn progress_deadline_exceeded() {
    let s = standin(NS).await;
    let mut d = deployment("deadline", NS, 1, "probe-busybox:1");
    d["spec"]["progressDeadlineSeconds"] = json!(10);
    d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] =
        json!({"httpGet": {"path": "/nope", "port": 8000}, "periodSeconds": 1});
    apply(
        &s,
        "/apis/apps/v1/namespaces/transcripts/deployments/deadline",
        &d,
        "",
    )
    .await;
    let d = wait_obj(
        &s,
        "/apis/apps/v1/namespaces/transcripts/deployments/deadline",
        Duration::from_secs(10),
        |d| {
            d["status"]["conditions"]
                .as_array()
                .is_some_and(|a| a.iter().any(|c| c["reason"] == "ProgressDeadlineExceeded"))
        },
    )
    .await;
    let c = d["status"]["conditions"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["type"] == "Progressing"))
        .expect("cond");
    let rs = s
        .list("ReplicaSet", Some(NS))
        .into_iter()
        .find(|r| r["metadata"]["labels"]["app"] == "deadline")
        .expect("rs");
    assert_eq!(c["status"], "False");
    assert_eq!(
        c["message"],
        format!(
            "ReplicaSet \"{}\" has timed out progressing.",
            rs["metadata"]["name"].as_str().unwrap_or("")
        )
    );
    let t = transcript("05-failure-modes.json");
    let want = &t["progress-deadline"]["deployment"]["status"];
    let strip = |v: &Value| {
        let mut v = normalize(v);
        if let Some(a) = v["conditions"].as_array_mut() {
            for c in a.iter_mut() {
                let m = c["message"]
                    .as_str()
                    .unwrap_or("")
                    .split('"')
                    .next()
                    .unwrap_or("")
                    .to_string();
                c["message"] = json!(m);
            }
        }
        v
    };
    assert_eq!(strip(&d["status"]), strip(want));
}

#[tokio::test]
async fn missing_image_with_pull_policy_if_not_present() {
    let s = standin(NS).await;
    let mut d = deployment("nopull", NS, 1, "example.com/none:1");
    d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = json!("IfNotPresent");
    apply(
        &s,
        "/apis/apps/v1/namespaces/transcripts/deployments/nopull",
        &d,
        "",
    )
    .await;
    let p = wait_pod(&s, "nopull", |p| {
        p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "ErrImagePull"
    })
    .await;
    let msg = p["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(msg.starts_with("rpc error: code = Unknown desc = failed to pull and unpack image \"example.com/none:1\""), "{msg}");
    let p = wait_pod(&s, "nopull", |p| {
        p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "ImagePullBackOff"
    })
    .await;
    assert_eq!(
        p["status"]["containerStatuses"][0]["state"]["waiting"]["message"],
        "Back-off pulling image \"example.com/none:1\""
    );
    // The image appears: the next pull attempt succeeds.
    s.node_images().add_image(
        "example.com/none:1",
        k8s_standin::Behavior::serve(&["/api/health"], 8000),
    );
    wait_pod(&s, "nopull", |p| {
        p["status"]["containerStatuses"][0]["ready"] == true
    })
    .await;
}
