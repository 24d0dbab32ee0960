//! Watches (resume from a list resourceVersion, the 410 of 06, selectors,
//! bookmarks), deletion (foreground with the watch sequence of 08, background,
//! orphan, namespaces), leases (07) and list shapes (09).

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn watch_resumes_from_list_version_and_expires() {
    let s = standin("w").await;
    let (code, list) = call(&s, "GET", "/api/v1/namespaces/w/configmaps", None).await;
    assert_eq!(code, 200);
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    let mut w = watch(
        &s,
        &format!(
            "/api/v1/namespaces/w/configmaps?watch=1&resourceVersion={rv}&allowWatchBookmarks=true"
        ),
    )
    .await;
    for n in ["a", "b"] {
        call(
            &s,
            "POST",
            "/api/v1/namespaces/w/configmaps",
            Some(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": n}})),
        )
        .await;
    }
    let evs = w
        .until(Duration::from_secs(5), |e| {
            e["object"]["metadata"]["name"] == "b"
        })
        .await;
    let names: Vec<&str> = evs
        .iter()
        .filter(|e| e["type"] == "ADDED")
        .filter_map(|e| e["object"]["metadata"]["name"].as_str())
        .collect();
    assert!(names.contains(&"a") && names.contains(&"b"), "{evs:?}");
    assert_eq!(
        evs[0]["object"]["kind"], "ConfigMap",
        "watch objects carry kind"
    );

    // Resume from the ADDED of "a": only later events arrive.
    let a_rv = evs
        .iter()
        .find(|e| e["object"]["metadata"]["name"] == "a")
        .expect("a")["object"]["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    let mut w2 = watch(
        &s,
        &format!("/api/v1/namespaces/w/configmaps?watch=true&resourceVersion={a_rv}"),
    )
    .await;
    let first = w2
        .next(Duration::from_secs(2))
        .await
        .expect("event")
        .expect("ok");
    assert_eq!(first["object"]["metadata"]["name"], "b");

    // Bookmarks come with allowWatchBookmarks.
    let bm = w
        .until(Duration::from_secs(5), |e| e["type"] == "BOOKMARK")
        .await;
    let last = bm.last().expect("bookmark");
    assert_eq!(last["type"], "BOOKMARK");
    assert!(
        last["object"]["metadata"]["resourceVersion"]
            .as_str()
            .is_some()
    );

    // Too old: HTTP 200 with one ERROR event, exactly as 06 shows.
    s.set_watch_history_limit(1);
    call(
        &s,
        "POST",
        "/api/v1/namespaces/w/configmaps",
        Some(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})),
    )
    .await;
    call(
        &s,
        "POST",
        "/api/v1/namespaces/w/configmaps",
        Some(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "d"}})),
    )
    .await;
    let r = raw(
        &s,
        "GET",
        &format!("/api/v1/namespaces/w/configmaps?watch=1&resourceVersion={rv}"),
        None,
        None,
    )
    .await
    .expect("watch");
    assert_eq!(r.status, 200);
    let text = String::from_utf8_lossy(&r.body).to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1);
    let ev: Value = serde_json::from_str(lines[0]).expect("json");
    let t = transcript("06-watch-too-old.json");
    let want: Value =
        serde_json::from_str(t["body_lines"][0].as_str().expect("line")).expect("json");
    assert_eq!(ev["type"], "ERROR");
    let mut shape = ev["object"].clone();
    shape["message"] = want["object"]["message"].clone();
    assert_eq!(shape, want["object"]);
    assert!(
        ev["object"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with(&format!("too old resource version: {rv} (")))
    );
}

#[tokio::test]
async fn label_selector_watch_and_cut() {
    let s = standin("w").await;
    let mut w = watch(
        &s,
        "/api/v1/namespaces/w/configmaps?watch=1&labelSelector=tier%3Dweb",
    )
    .await;
    let p = "/api/v1/namespaces/w/configmaps/x";
    apply(&s, p, &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "labels": {"tier": "db"}}}), "").await;
    apply(&s, p, &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "labels": {"tier": "web"}}}), "").await;
    apply(&s, p, &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "labels": {"tier": "db"}}}), "").await;
    let evs = w
        .until(Duration::from_secs(3), |e| e["type"] == "DELETED")
        .await;
    let types: Vec<&str> = evs.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(
        types,
        vec!["ADDED", "DELETED"],
        "entering and leaving the selector"
    );
    s.cut_watches();
    let end = w.next(Duration::from_secs(2)).await;
    assert!(
        matches!(end, Some(Err(_)) | None),
        "cut ends the stream: {end:?}"
    );
}

#[tokio::test]
async fn foreground_delete_matches_transcript() {
    let s = standin("transcripts").await;
    let t = transcript("08-delete.json");
    let p = "/apis/apps/v1/namespaces/transcripts/deployments/roll";
    apply(
        &s,
        p,
        &deployment("roll", "transcripts", 2, "probe-busybox:1"),
        "",
    )
    .await;
    let live = wait_obj(&s, p, Duration::from_secs(10), |d| {
        d["status"]["availableReplicas"] == 2
    })
    .await;
    let rv = live["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    let mut wd = watch(
        &s,
        &format!("/apis/apps/v1/namespaces/transcripts/deployments?watch=1&resourceVersion={rv}"),
    )
    .await;
    let mut wr = watch(
        &s,
        &format!("/apis/apps/v1/namespaces/transcripts/replicasets?watch=1&resourceVersion={rv}"),
    )
    .await;
    let mut wp = watch(
        &s,
        &format!("/api/v1/namespaces/transcripts/pods?watch=1&resourceVersion={rv}"),
    )
    .await;

    let req = &t["responses"][0]["request"];
    let (code, got) = call(&s, "DELETE", p, Some(req["body"].clone())).await;
    assert_eq!(code, 200);
    let want = &t["responses"][0]["response"]["body"];
    assert_eq!(
        got["metadata"]["finalizers"],
        want["metadata"]["finalizers"]
    );
    assert_eq!(got["metadata"]["deletionGracePeriodSeconds"], 0);
    assert_eq!(
        got["metadata"]["generation"], 2,
        "deletion bumps generation"
    );
    assert!(got["metadata"]["deletionTimestamp"].is_string());

    let dev = wd
        .until(Duration::from_secs(10), |e| e["type"] == "DELETED")
        .await;
    let rev = wr
        .until(Duration::from_secs(10), |e| e["type"] == "DELETED")
        .await;
    let pev = wp
        .until(Duration::from_secs(10), |e| e["type"] == "DELETED")
        .await;
    // Deployment: MODIFIED with the finalizer, observedGeneration catches up, then DELETED.
    assert_eq!(dev.first().expect("first")["type"], "MODIFIED");
    assert!(
        dev.iter()
            .any(|e| e["object"]["status"]["observedGeneration"] == 2)
    );
    let last = dev.last().expect("deleted");
    assert_eq!(last["type"], "DELETED");
    assert_eq!(
        last["object"]["metadata"]["finalizers"],
        json!(["foregroundDeletion"]),
        "DELETED carries the last stored state"
    );
    // The ReplicaSet is foreground-deleted too (it has pods).
    assert!(
        rev.iter()
            .any(|e| e["object"]["metadata"]["finalizers"] == json!(["foregroundDeletion"])),
        "{rev:?}"
    );
    // Pods terminate gracefully: deletionTimestamp with grace 2, then grace 0, then DELETED.
    assert!(
        pev.iter()
            .any(|e| e["object"]["metadata"]["deletionGracePeriodSeconds"] == 2)
    );
    assert!(
        pev.iter().any(|e| e["type"] == "MODIFIED"
            && e["object"]["metadata"]["deletionGracePeriodSeconds"] == 0)
    );
    // Everything is gone, in order: pods before their ReplicaSet before the Deployment.
    s.wait_for(Duration::from_secs(5), |s| {
        (s.list("Pod", Some("transcripts")).is_empty()
            && s.list("ReplicaSet", Some("transcripts")).is_empty())
        .then_some(())
    })
    .await
    .expect("all gone");
    let rs_deleted_rv: u64 = rev.last().expect("rs")["object"]["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .parse()
        .expect("n");
    let d_deleted_rv: u64 = last["object"]["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .parse()
        .expect("n");
    assert!(rs_deleted_rv < d_deleted_rv);

    // Delete again: 404 as recorded.
    let (code, body) = call(
        &s,
        "DELETE",
        p,
        Some(
            json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}),
        ),
    )
    .await;
    assert_eq!(code, 404);
    assert_eq!(body["message"], "deployments.apps \"roll\" not found");
}

#[tokio::test]
async fn background_and_orphan_delete() {
    let s = standin("transcripts").await;
    let t = transcript("08-delete.json");
    let p = "/apis/apps/v1/namespaces/transcripts/deployments/ssa-demo";
    apply(
        &s,
        p,
        &deployment("ssa-demo", "transcripts", 1, "probe-busybox:1"),
        "",
    )
    .await;
    let live = wait_obj(&s, p, Duration::from_secs(10), |d| {
        d["status"]["availableReplicas"] == 1
    })
    .await;
    let (code, body) = call(
        &s,
        "DELETE",
        p,
        Some(
            json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}),
        ),
    )
    .await;
    assert_eq!(code, 200);
    let mut want = t["responses"][1]["response"]["body"].clone();
    want["details"]["uid"] = live["metadata"]["uid"].clone();
    assert_eq!(body, want);
    s.wait_for(Duration::from_secs(5), |s| {
        s.list("ReplicaSet", Some("transcripts"))
            .is_empty()
            .then_some(())
    })
    .await
    .expect("rs collected");
    s.wait_for(Duration::from_secs(5), |s| {
        s.list("Pod", Some("transcripts")).is_empty().then_some(())
    })
    .await
    .expect("pods collected");

    // A ConfigMap without options: Success without a group.
    call(
        &s,
        "POST",
        "/api/v1/namespaces/transcripts/configmaps",
        Some(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dup"}})),
    )
    .await;
    let (code, body) = call(
        &s,
        "DELETE",
        "/api/v1/namespaces/transcripts/configmaps/dup",
        None,
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(
        normalize(&body),
        normalize(&t["responses"][3]["response"]["body"])
    );

    // Orphan: the ReplicaSet stays, without its ownerReference.
    let p = "/apis/apps/v1/namespaces/transcripts/deployments/orph";
    apply(
        &s,
        p,
        &deployment("orph", "transcripts", 1, "probe-busybox:1"),
        "",
    )
    .await;
    wait_obj(&s, p, Duration::from_secs(10), |d| {
        d["status"]["availableReplicas"] == 1
    })
    .await;
    let (code, body) = call(
        &s,
        "DELETE",
        p,
        Some(json!({"propagationPolicy": "Orphan"})),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(body["metadata"]["finalizers"], json!(["orphan"]));
    s.wait_for(Duration::from_secs(5), |s| s.get(p).is_none().then_some(()))
        .await
        .expect("deployment gone");
    let rss = s.list("ReplicaSet", Some("transcripts"));
    assert_eq!(rss.len(), 1);
    assert!(rss[0]["metadata"].get("ownerReferences").is_none());
}

#[tokio::test]
async fn namespace_deletion_removes_content() {
    let s = standin("gone").await;
    apply(
        &s,
        "/apis/apps/v1/namespaces/gone/deployments/x",
        &deployment("x", "gone", 1, "probe-busybox:1"),
        "",
    )
    .await;
    call(&s, "POST", "/api/v1/namespaces/gone/secrets", Some(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "v"}}))).await;
    let (code, body) = call(&s, "DELETE", "/api/v1/namespaces/gone", None).await;
    assert_eq!(code, 200);
    assert_eq!(body["status"]["phase"], "Terminating");
    let (code, body) = call(
        &s,
        "POST",
        "/api/v1/namespaces/gone/configmaps",
        Some(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late"}})),
    )
    .await;
    assert_eq!(code, 403);
    assert_eq!(body["reason"], "Forbidden");
    s.wait_for(Duration::from_secs(10), |s| {
        s.get("/api/v1/namespaces/gone").is_none().then_some(())
    })
    .await
    .expect("namespace gone");
    assert!(s.list("Pod", Some("gone")).is_empty());
    assert!(s.list("Secret", Some("gone")).is_empty());
}

#[tokio::test]
async fn lease_sequence_matches_transcript() {
    let s = standin("transcripts").await;
    let t = transcript("07-lease.json");
    let steps = t.as_array().expect("steps");
    let p = "/apis/coordination.k8s.io/v1/namespaces/transcripts/leases";
    let (code, created) = call(&s, "POST", p, Some(steps[0]["request"]["body"].clone())).await;
    assert_eq!(code, 201);
    let mut want = steps[0]["response"]["body"].clone();
    want["metadata"]["managedFields"][0]["manager"] = json!("standin-test");
    assert_eq!(normalize(&created), normalize(&want));
    // Renew with the current resourceVersion (and the managedFields sent back, as the client does).
    let mut renew = steps[1]["request"]["body"].clone();
    renew["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"].clone();
    renew["metadata"]["uid"] = created["metadata"]["uid"].clone();
    renew["metadata"]["managedFields"] = created["metadata"]["managedFields"].clone();
    let (code, renewed) = call(&s, "PUT", &format!("{p}/todo-deploy-lock"), Some(renew)).await;
    assert_eq!(code, 200);
    assert_eq!(renewed["spec"]["renewTime"], "2026-11-23T05:00:10.000000Z");
    assert_ne!(
        renewed["metadata"]["resourceVersion"],
        created["metadata"]["resourceVersion"]
    );
    // Stale resourceVersion: the recorded 409.
    let mut stale = steps[2]["request"]["body"].clone();
    stale["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"].clone();
    stale["metadata"]["uid"] = created["metadata"]["uid"].clone();
    let (code, body) = call(&s, "PUT", &format!("{p}/todo-deploy-lock"), Some(stale)).await;
    assert_eq!(code, 409);
    assert_eq!(body, steps[2]["response"]["body"]);
    // Create again: AlreadyExists.
    let (code, body) = call(&s, "POST", p, Some(steps[3]["request"]["body"].clone())).await;
    assert_eq!(code, 409);
    assert_eq!(body, steps[3]["response"]["body"]);
}

#[tokio::test]
async fn list_shapes_match_transcript() {
    let s = standin("transcripts").await;
    let t = transcript("09-lists.json");
    apply(
        &s,
        "/apis/apps/v1/namespaces/transcripts/deployments/crash",
        &deployment("crash", "transcripts", 1, "probe-crash:1"),
        "",
    )
    .await;
    for step in t.as_array().expect("steps") {
        let (code, got) = call(
            &s,
            "GET",
            step["request"]["path"].as_str().expect("path"),
            None,
        )
        .await;
        assert_eq!(code, 200);
        let want = &step["response"]["body"];
        assert_eq!(got["kind"], want["kind"]);
        assert_eq!(got["apiVersion"], want["apiVersion"]);
        assert!(got["metadata"]["resourceVersion"].is_string());
        assert_eq!(
            got["items"].as_array().map(|a| a.len()),
            want["items"].as_array().map(|a| a.len())
        );
        if let Some(item) = got["items"].get(0) {
            assert!(
                item.get("kind").is_none() && item.get("apiVersion").is_none(),
                "list items have no kind"
            );
            assert_eq!(
                item["spec"]["template"],
                want["items"][0]["spec"]["template"]
                    .clone()
                    .tap_image("probe-crash:1")
            );
        }
    }
    // Other selector operators.
    for (sel, n) in [
        ("app%20in%20(crash,x)", 1),
        ("app%20notin%20(crash)", 0),
        ("app", 1),
        ("!app", 0),
        ("app!%3Dcrash", 0),
    ] {
        let (_, got) = call(
            &s,
            "GET",
            &format!("/apis/apps/v1/namespaces/transcripts/deployments?labelSelector={sel}"),
            None,
        )
        .await;
        assert_eq!(got["items"].as_array().map(|a| a.len()), Some(n), "{sel}");
    }
    let (_, got) = call(
        &s,
        "GET",
        "/apis/apps/v1/namespaces/transcripts/deployments?fieldSelector=metadata.name%3Dcrash",
        None,
    )
    .await;
    assert_eq!(got["items"].as_array().map(|a| a.len()), Some(1));
    let (_, got) = call(&s, "GET", "/apis/apps/v1/deployments", None).await;
    assert_eq!(
        got["items"].as_array().map(|a| a.len()),
        Some(1),
        "all-namespaces list"
    );
    // Pagination: limit and continue walk every namespace exactly once.
    let (_, all) = call(&s, "GET", "/api/v1/namespaces", None).await;
    let total = all["items"].as_array().map(|a| a.len()).unwrap_or(0);
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let path = if token.is_empty() {
            "/api/v1/namespaces?limit=2".to_string()
        } else {
            format!("/api/v1/namespaces?limit=2&continue={token}")
        };
        let (_, page) = call(&s, "GET", &path, None).await;
        for it in page["items"].as_array().expect("items") {
            seen.push(it["metadata"]["name"].as_str().expect("name").to_string());
        }
        match page["metadata"]["continue"].as_str() {
            Some(t) => token = t.to_string(),
            None => break,
        }
    }
    assert!(total >= 5);
    assert_eq!(seen.len(), total);
    let mut dedup = seen.clone();
    dedup.dedup();
    assert_eq!(dedup, seen);
}

trait TapImage {
    fn tap_image(self, image: &str) -> Value;
}

impl TapImage for Value {
    fn tap_image(mut self, image: &str) -> Value {
        self["spec"]["containers"][0]["image"] = json!(image);
        self
    }
}
