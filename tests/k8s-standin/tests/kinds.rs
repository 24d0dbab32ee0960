//! The other kinds todo-deploy applies (Service, Secret, Ingress,
//! NetworkPolicy, HPA, PDB) with their server-side defaults, the byte-exact
//! JSON of a Status body, and kubelet details: liveness restarts, slow starts,
//! graceful pod deletion.

mod common;

use std::time::Duration;

use common::*;
use k8s_standin::Behavior;
use serde_json::{Value, json};

#[tokio::test]
async fn a_started_stand_in_has_its_bootstrap_objects() {
    let s = k8s_standin::StandIn::start(k8s_standin::Options::default())
        .await
        .expect("start");
    // No waiting: `start` returns once the namespace controller has published them.
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(
            s.get(&format!("/api/v1/namespaces/{ns}/serviceaccounts/default"))
                .is_some(),
            "{ns}"
        );
        assert!(
            s.get(&format!(
                "/api/v1/namespaces/{ns}/configmaps/kube-root-ca.crt"
            ))
            .is_some(),
            "{ns}"
        );
    }
}

#[tokio::test]
async fn settled_means_every_change_so_far_was_handled() {
    let s = standin("st").await;
    let (code, _) = apply(
        &s,
        "/apis/apps/v1/namespaces/st/deployments/web",
        &deployment("web", "st", 3, "probe-busybox:1"),
        "",
    )
    .await;
    assert_eq!(code, 201);
    s.settled().await;
    // What the apply caused at once: the ReplicaSet, its pods, their binding, the status.
    let rss = s.list("ReplicaSet", Some("st"));
    assert_eq!(rss.len(), 1);
    assert_eq!(rss[0]["status"]["replicas"], 3);
    let pods = s.list("Pod", Some("st"));
    assert_eq!(pods.len(), 3);
    assert!(pods.iter().all(|p| p["spec"]["nodeName"] == "minikube"));
    let d = s
        .get("/apis/apps/v1/namespaces/st/deployments/web")
        .expect("deployment");
    assert_eq!(d["status"]["observedGeneration"], 1);
    assert_eq!(d["status"]["updatedReplicas"], 3);
    // Settled again with nothing new: at once.
    s.settled().await;
}

#[tokio::test]
async fn status_body_bytes_match_the_server() {
    let s = standin("transcripts").await;
    let r = raw(
        &s,
        "GET",
        "/apis/apps/v1/namespaces/transcripts/deployments/absent",
        None,
        None,
    )
    .await
    .expect("get");
    assert_eq!(r.status, 404);
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"deployments.apps \"absent\" not found","reason":"NotFound","details":{"name":"absent","group":"apps","kind":"deployments"},"code":404}"#
    );
    assert_eq!(
        r.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
}

#[tokio::test]
async fn other_kinds_get_their_defaults() {
    let s = standin("k").await;
    let (code, svc) = apply(
        &s,
        "/api/v1/namespaces/k/services/web",
        &json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8000}]}}),
        "",
    )
    .await;
    assert_eq!(code, 201);
    let spec = &svc["spec"];
    assert_eq!(spec["type"], "ClusterIP");
    assert_eq!(spec["sessionAffinity"], "None");
    assert_eq!(spec["ports"][0]["protocol"], "TCP");
    assert_eq!(spec["internalTrafficPolicy"], "Cluster");
    assert_eq!(spec["ipFamilies"], json!(["IPv4"]));
    assert!(
        spec["clusterIP"]
            .as_str()
            .is_some_and(|ip| ip.starts_with("10.96."))
    );
    assert_eq!(spec["clusterIPs"][0], spec["clusterIP"]);
    assert_eq!(svc["status"], json!({"loadBalancer": {}}));
    let mf = &svc["metadata"]["managedFields"][0]["fieldsV1"];
    assert_eq!(
        mf["f:spec"]["f:ports"],
        json!({"k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}, "f:targetPort": {}}})
    );
    assert_eq!(
        mf["f:spec"]["f:selector"],
        json!({"f:app": {}}),
        "a Service selector is a granular map"
    );
    // Re-apply keeps the allocated clusterIP and writes nothing.
    let (_, again) = apply(
        &s,
        "/api/v1/namespaces/k/services/web",
        &json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8000}]}}),
        "",
    )
    .await;
    assert_eq!(
        again["metadata"]["resourceVersion"],
        svc["metadata"]["resourceVersion"]
    );

    let (code, sec) = apply(&s, "/api/v1/namespaces/k/secrets/db", &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "stringData": {"password": "hello"}}), "").await;
    assert_eq!(code, 201);
    assert_eq!(sec["data"], json!({"password": "aGVsbG8="}));
    assert_eq!(sec["type"], "Opaque");
    assert!(sec.get("stringData").is_none());

    let (code, np) = apply(&s, "/apis/networking.k8s.io/v1/namespaces/k/networkpolicies/deny", &json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "deny"},
        "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{"ports": [{"port": 8000}]}]}}), "").await;
    assert_eq!(code, 201);
    assert_eq!(np["spec"]["policyTypes"], json!(["Ingress"]));
    assert_eq!(np["metadata"]["generation"], 1);
    assert_eq!(
        np["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:podSelector"],
        json!({}),
        "LabelSelector is atomic"
    );

    let (code, ing) = apply(&s, "/apis/networking.k8s.io/v1/namespaces/k/ingresses/web", &json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web"},
        "spec": {"rules": [{"http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}}), "").await;
    assert_eq!(code, 201);
    assert_eq!(ing["status"], json!({"loadBalancer": {}}));

    let (code, hpa) = apply(&s, "/apis/autoscaling/v2/namespaces/k/horizontalpodautoscalers/web", &json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 3}}), "").await;
    assert_eq!(code, 201);
    assert_eq!(hpa["spec"]["minReplicas"], 1);
    assert_eq!(
        hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        80
    );

    let (code, pdb) = apply(&s, "/apis/policy/v1/namespaces/k/poddisruptionbudgets/web", &json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "web"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}}), "").await;
    assert_eq!(code, 201);
    assert_eq!(pdb["metadata"]["generation"], 1);

    // Wrong kind in the body of an apply: 400.
    let (code, body) = apply(
        &s,
        "/api/v1/namespaces/k/configmaps/x",
        &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}),
        "",
    )
    .await;
    assert_eq!(code, 400);
    assert_eq!(body["reason"], "BadRequest");
    // Every namespace gets kube-root-ca.crt and the default service account.
    let cms = s.list("ConfigMap", Some("k"));
    assert!(
        cms.iter()
            .any(|c| c["metadata"]["name"] == "kube-root-ca.crt")
    );
}

fn pod(s: &k8s_standin::StandIn, app: &str) -> Option<Value> {
    s.list("Pod", Some("l"))
        .into_iter()
        .find(|p| p["metadata"]["labels"]["app"] == app)
}

#[tokio::test]
async fn liveness_restarts_and_slow_start() {
    let s = standin("l").await;
    s.node_images().add_image(
        "slow:1",
        Behavior::slow_start(5.0, Behavior::serve(&["/api/health"], 8000)),
    );
    s.node_images()
        .add_image("nolive:1", Behavior::serve(&["/api/health"], 8000));
    let mut d = deployment("slow", "l", 1, "slow:1");
    d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] =
        json!({"httpGet": {"path": "/api/health", "port": 8000}, "periodSeconds": 1});
    apply(&s, "/apis/apps/v1/namespaces/l/deployments/slow", &d, "").await;
    let start = std::time::Instant::now();
    s.wait_for(Duration::from_secs(5), |s| {
        pod(s, "slow").filter(|p| p["status"]["containerStatuses"][0]["ready"] == true)
    })
    .await
    .expect("ready");
    assert!(
        start.elapsed() >= Duration::from_millis(90),
        "slow start delays readiness (5 s at 0.02)"
    );
    let name = pod(&s, "slow").expect("pod")["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_string();
    let refused = s
        .list("Event", Some("l"))
        .into_iter()
        .find(|e| e["involvedObject"]["name"] == name.as_str() && e["reason"] == "Unhealthy")
        .expect("unhealthy while starting");
    let msg = refused["message"].as_str().unwrap_or("");
    assert!(
        msg.starts_with("Readiness probe failed: Get \"http://10.244.0.")
            && msg.contains(":8000/api/health\": dial tcp 10.244.0.")
            && msg.ends_with(":8000: connect: connection refused"),
        "{msg}"
    );

    let mut d = deployment("live", "l", 1, "nolive:1");
    d["spec"]["template"]["spec"]["containers"][0]["livenessProbe"] = json!({"httpGet": {"path": "/healthz", "port": 8000}, "periodSeconds": 1, "failureThreshold": 2});
    apply(&s, "/apis/apps/v1/namespaces/l/deployments/live", &d, "").await;
    let p = s
        .wait_for(Duration::from_secs(5), |s| {
            pod(s, "live").filter(|p| {
                p["status"]["containerStatuses"][0]["restartCount"]
                    .as_i64()
                    .unwrap_or(0)
                    >= 1
            })
        })
        .await
        .expect("restarted");
    let name = p["metadata"]["name"].as_str().expect("name");
    let evs = s.list("Event", Some("l"));
    assert!(evs.iter().any(|e| e["involvedObject"]["name"] == name
        && e["reason"] == "Killing"
        && e["message"] == "Container web failed liveness probe, will be restarted"));
    assert!(evs.iter().any(|e| e["involvedObject"]["name"] == name
        && e["message"] == "Liveness probe failed: HTTP probe failed with statuscode: 404"));
    // The default image exits on SIGTERM: the killed instance `Completed` with 0.
    let last = &p["status"]["containerStatuses"][0]["lastState"]["terminated"];
    assert_eq!(
        (last["exitCode"].as_i64(), last["reason"].as_str()),
        (Some(0), Some("Completed"))
    );
}

#[tokio::test]
async fn a_liveness_kill_waits_for_a_process_that_ignores_sigterm() {
    let s = standin("l").await;
    // probe-busybox ignores SIGTERM (tests/common): killed (137) when the grace period ends.
    let mut d = deployment("live", "l", 1, "probe-busybox:1");
    d["spec"]["template"]["spec"]["containers"][0]["livenessProbe"] = json!({"httpGet": {"path": "/healthz", "port": 8000}, "periodSeconds": 1, "failureThreshold": 2});
    apply(&s, "/apis/apps/v1/namespaces/l/deployments/live", &d, "").await;
    let p = s
        .wait_for(Duration::from_secs(5), |s| {
            pod(s, "live").filter(|p| p["status"]["containerStatuses"][0]["restartCount"] == 1)
        })
        .await
        .expect("restarted");
    let cs = &p["status"]["containerStatuses"][0];
    let last = &cs["lastState"]["terminated"];
    assert_eq!(
        (last["exitCode"].as_i64(), last["reason"].as_str()),
        (Some(137), Some("Error"))
    );
    assert!(
        cs["state"]["running"].is_object(),
        "restarted in the same sync: {cs}"
    );
}

#[tokio::test]
async fn deleted_pods_stop_as_their_image_answers_sigterm() {
    let s = standin("g").await;
    s.node_images()
        .add_image("exits:1", Behavior::serve(&["/api/health"], 8000));
    let mut w = watch(&s, "/api/v1/namespaces/g/pods?watch=1").await;
    for (name, image) in [("ignores", "probe-busybox:1"), ("exits", "exits:1")] {
        let (code, _) = call(&s, "POST", "/api/v1/namespaces/g/pods", Some(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"terminationGracePeriodSeconds": 2, "containers": [{"name": "c", "image": image}]}}))).await;
        assert_eq!(code, 201);
        wait_obj(
            &s,
            &format!("/api/v1/namespaces/g/pods/{name}"),
            Duration::from_secs(5),
            |p| p["status"]["phase"] == "Running",
        )
        .await;
        let (code, _) = call(
            &s,
            "DELETE",
            &format!("/api/v1/namespaces/g/pods/{name}"),
            None,
        )
        .await;
        assert_eq!(code, 200);
    }
    let mut deleted = std::collections::BTreeMap::new();
    let terminated = |e: &Value| {
        let t = &e["object"]["status"]["containerStatuses"][0]["state"]["terminated"];
        (t["exitCode"].clone(), t["reason"].clone())
    };
    w.until(Duration::from_secs(5), |e| {
        if e["type"] == "DELETED" {
            let name = e["object"]["metadata"]["name"].as_str().unwrap_or("");
            deleted.insert(name.to_string(), terminated(e));
        }
        deleted.len() == 2
    })
    .await;
    assert_eq!(deleted.get("exits"), Some(&(json!(0), json!("Completed"))));
    assert_eq!(deleted.get("ignores"), Some(&(json!(137), json!("Error"))));
}

#[tokio::test]
async fn graceful_pod_deletion() {
    let s = standin("g").await;
    let (code, _) = call(&s, "POST", "/api/v1/namespaces/g/pods", Some(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"app": "p"}},
        "spec": {"terminationGracePeriodSeconds": 5, "containers": [{"name": "c", "image": "probe-busybox:1"}]}}))).await;
    assert_eq!(code, 201);
    let p = "/api/v1/namespaces/g/pods/p";
    let running = wait_obj(&s, p, Duration::from_secs(5), |p| {
        p["status"]["phase"] == "Running"
    })
    .await;
    assert_eq!(
        running["spec"]["containers"][0]["imagePullPolicy"],
        "IfNotPresent"
    );
    assert_eq!(running["spec"]["serviceAccountName"], "default");
    assert_eq!(running["status"]["qosClass"], "BestEffort");
    let (code, body) = call(&s, "DELETE", p, None).await;
    assert_eq!(code, 200);
    assert_eq!(body["metadata"]["deletionGracePeriodSeconds"], 5);
    assert!(
        s.get(p).is_some(),
        "a running pod lingers for its grace period"
    );
    s.wait_for(Duration::from_secs(5), |s| s.get(p).is_none().then_some(()))
        .await
        .expect("pod gone after grace");
    let logs = raw(&s, "GET", "/api/v1/namespaces/g/pods/p/log", None, None)
        .await
        .expect("log");
    assert_eq!(logs.status, 404);
}

#[tokio::test]
async fn minikube_missing_cluster_dns_warnings_on_request() {
    let s = k8s_standin::StandIn::start(k8s_standin::Options {
        time_scale: 0.02,
        missing_cluster_dns_events: true,
        ..k8s_standin::Options::default()
    })
    .await
    .expect("start");
    s.node_images()
        .add_image("probe-busybox:1", Behavior::serve(&["/api/health"], 8000));
    call(
        &s,
        "POST",
        "/api/v1/namespaces/default/pods",
        Some(
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "dns"},
        "spec": {"containers": [{"name": "c", "image": "probe-busybox:1"}]}}),
        ),
    )
    .await;
    let uid = s.get("/api/v1/namespaces/default/pods/dns").expect("pod")["metadata"]["uid"]
        .as_str()
        .expect("uid")
        .to_string();
    let ev = s
        .wait_for(Duration::from_secs(5), |s| {
            s.list("Event", Some("default"))
                .into_iter()
                .find(|e| e["reason"] == "MissingClusterDNS")
        })
        .await
        .expect("MissingClusterDNS");
    assert_eq!(
        ev["message"],
        format!(
            "pod: \"dns_default({uid})\". kubelet does not have ClusterDNS IP configured and cannot create Pod using \"ClusterFirst\" policy. Falling back to \"Default\" policy."
        )
    );
    assert_eq!(ev["type"], "Warning");
    assert!(ev["involvedObject"].get("fieldPath").is_none());
}

#[tokio::test]
async fn dry_run_persists_nothing() {
    let s = standin("dry").await;
    let rv0 = s.resource_version();
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
    let (code, body) = call(
        &s,
        "POST",
        "/api/v1/namespaces/dry/configmaps?dryRun=All",
        Some(cm.clone()),
    )
    .await;
    assert_eq!(code, 201);
    assert_eq!(body["data"]["a"], "1");
    assert!(s.get("/api/v1/namespaces/dry/configmaps/c").is_none());
    assert_eq!(s.resource_version(), rv0, "nothing written");
    call(&s, "POST", "/api/v1/namespaces/dry/configmaps", Some(cm)).await;
    let stored = s
        .get("/api/v1/namespaces/dry/configmaps/c")
        .expect("stored");
    let (code, body) = patch(
        &s,
        "/api/v1/namespaces/dry/configmaps/c?dryRun=All",
        "application/merge-patch+json",
        &json!({"data": {"a": "2"}}),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(body["data"]["a"], "2");
    let mut put = stored.clone();
    put["data"]["a"] = json!("3");
    let (code, body) = call(
        &s,
        "PUT",
        "/api/v1/namespaces/dry/configmaps/c?dryRun=All",
        Some(put),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(body["data"]["a"], "3");
    let (code, _) = call(
        &s,
        "DELETE",
        "/api/v1/namespaces/dry/configmaps/c?dryRun=All",
        None,
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(
        s.get("/api/v1/namespaces/dry/configmaps/c"),
        Some(stored),
        "dry runs leave the object as it was"
    );
}

#[tokio::test]
async fn follow_logs_until_the_container_stops() {
    let s = standin("logs").await;
    s.node_images().add_image(
        "talk:1",
        Behavior::Serve {
            ok_paths: vec!["/".into()],
            port: 80,
            log_lines: vec!["hello".into(), "world".into()],
        },
    );
    call(&s, "POST", "/api/v1/namespaces/logs/pods", Some(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "t"},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [{"name": "c", "image": "talk:1"}]}}))).await;
    wait_obj(
        &s,
        "/api/v1/namespaces/logs/pods/t",
        Duration::from_secs(5),
        |p| p["status"]["phase"] == "Running",
    )
    .await;
    let mut follow = stream(&s, "/api/v1/namespaces/logs/pods/t/log?follow=true").await;
    assert_eq!(follow.status, 200);
    // The stream is open once the lines so far have arrived; then the pod goes.
    let first = follow
        .next(Duration::from_secs(5))
        .await
        .expect("the log so far");
    assert_eq!(String::from_utf8_lossy(&first), "hello\nworld\n");
    let (code, _) = call(&s, "DELETE", "/api/v1/namespaces/logs/pods/t", None).await;
    assert_eq!(code, 200);
    assert_eq!(
        follow.rest(Duration::from_secs(5)).await.as_deref(),
        Some(""),
        "the stream ends when the container stops, with nothing more"
    );
}

/// The ready pods' names an Endpoints object (or watch event object) lists.
fn ready_addresses(endpoints: &Value) -> Vec<String> {
    endpoints["subsets"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["addresses"].as_array().into_iter().flatten())
        .filter_map(|a| a["targetRef"]["name"].as_str().map(str::to_owned))
        .collect()
}

/// As the Endpoints controller keeps them: the ready pods a Service selects, a switch of its
/// selector replacing them in one write, a deleted pod gone at once (while it still
/// terminates), and the Endpoints gone with their Service.
#[tokio::test]
async fn endpoints_follow_ready_pods_and_the_service_selector() {
    let s = standin("ep").await;
    for name in ["old", "new"] {
        let (code, body) = call(
            &s,
            "POST",
            "/apis/apps/v1/namespaces/ep/deployments",
            Some(deployment(name, "ep", 2, "probe-busybox:1")),
        )
        .await;
        assert_eq!(code, 201, "{body}");
    }
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "labels": {"tier": "web"}},
        "spec": {"selector": {"app": "old"}, "ports": [{"port": 80, "targetPort": 8000}]}});
    let (code, body) = call(&s, "POST", "/api/v1/namespaces/ep/services", Some(service)).await;
    assert_eq!(code, 201, "{body}");
    let path = "/api/v1/namespaces/ep/endpoints/web";
    let endpoints = wait_obj(&s, path, Duration::from_secs(10), |e| {
        ready_addresses(e).len() == 2
    })
    .await;
    assert!(
        ready_addresses(&endpoints)
            .iter()
            .all(|p| p.starts_with("old-")),
        "{endpoints}"
    );
    assert_eq!(
        endpoints["metadata"]["labels"],
        json!({"tier": "web"}),
        "the Service's labels"
    );
    assert_eq!(
        endpoints["subsets"][0]["ports"],
        json!([{"port": 8000, "protocol": "TCP"}])
    );
    wait_obj(
        &s,
        "/apis/apps/v1/namespaces/ep/deployments/new",
        Duration::from_secs(10),
        |d| d["status"]["readyReplicas"] == 2,
    )
    .await;

    let mut w = watch(
        &s,
        &format!(
            "/api/v1/namespaces/ep/endpoints?watch=1&resourceVersion={}",
            s.resource_version()
        ),
    )
    .await;
    let (code, _) = patch(
        &s,
        "/api/v1/namespaces/ep/services/web",
        "application/merge-patch+json",
        &json!({"spec": {"selector": {"app": "new"}}}),
    )
    .await;
    assert_eq!(code, 200);
    let events = w
        .until(Duration::from_secs(5), |e| {
            ready_addresses(&e["object"])
                .iter()
                .all(|p| p.starts_with("new-"))
        })
        .await;
    let switched = events.last().expect("an event");
    assert_eq!(ready_addresses(&switched["object"]).len(), 2, "{switched}");
    assert_eq!(
        events.len(),
        1,
        "one write from the old pods to the new: {events:?}"
    );

    let gone = ready_addresses(&switched["object"])[0].clone();
    let (code, _) = call(
        &s,
        "DELETE",
        &format!("/api/v1/namespaces/ep/pods/{gone}"),
        None,
    )
    .await;
    assert_eq!(code, 200);
    let events = w
        .until(Duration::from_secs(5), |e| {
            !ready_addresses(&e["object"]).contains(&gone)
        })
        .await;
    assert!(
        events
            .last()
            .is_some_and(|e| !ready_addresses(&e["object"]).contains(&gone))
    );
    let terminating = s.get(&format!("/api/v1/namespaces/ep/pods/{gone}"));
    assert!(
        terminating.is_some_and(|p| !p["metadata"]["deletionTimestamp"].is_null()),
        "left while it still terminates (probe-busybox ignores SIGTERM)"
    );

    let (code, _) = call(&s, "DELETE", "/api/v1/namespaces/ep/services/web", None).await;
    assert_eq!(code, 200);
    s.settled().await;
    assert!(s.get(path).is_none(), "the Endpoints go with their Service");
}
