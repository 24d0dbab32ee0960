//! Server-side apply against 03-server-side-apply.json and the error bodies of
//! 02-error-bodies.json: create/repeat/label-only/image change, another
//! manager's merge patch, the conflict body, force, dryRun, dropping a field.

mod common;

use common::*;
use serde_json::{Value, json};

const P: &str = "/apis/apps/v1/namespaces/transcripts/deployments/ssa-demo";

fn step(t: &Value, i: usize) -> (&Value, &Value) {
    (&t[i]["request"], &t[i]["response"]["body"])
}

fn req_body(r: &Value) -> Value {
    serde_json::from_str(r["body"].as_str().expect("body string")).expect("json body")
}

fn entry<'a>(obj: &'a Value, manager: &str) -> Option<&'a Value> {
    obj["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager)
}

#[tokio::test]
async fn server_side_apply_sequence_matches_transcript() {
    let s = standin("transcripts").await;
    let t = transcript("03-server-side-apply.json");

    // 1. create by apply: 201, spec and managed fields as recorded.
    let (req, want) = step(&t, 0);
    let (code, got) = apply(&s, P, &req_body(req), "").await;
    assert_eq!(code, 201);
    assert_eq!(got["spec"], want["spec"]);
    assert_eq!(got["status"], json!({}));
    assert_eq!(got["metadata"]["generation"], 1);
    assert_eq!(
        normalize(&got["metadata"]["managedFields"]),
        normalize(&want["metadata"]["managedFields"])
    );

    // Let the controller settle so the next applies are compared against a quiet object.
    wait_obj(&s, P, std::time::Duration::from_secs(5), |d| {
        d["status"]["readyReplicas"] == 1
    })
    .await;

    // 2. the same apply again writes nothing.
    let before = s.get(P).expect("live");
    let (code, got) = apply(&s, P, &req_body(step(&t, 1).0), "").await;
    assert_eq!(code, 200);
    assert_eq!(
        got["metadata"]["resourceVersion"], before["metadata"]["resourceVersion"],
        "no-op apply must not write"
    );
    assert_eq!(entry(&got, "todo-deploy"), entry(&before, "todo-deploy"));

    // 3. label-only change: generation unchanged, label owned.
    let (req, want) = step(&t, 2);
    let (code, got) = apply(&s, P, &req_body(req), "").await;
    assert_eq!(code, 200);
    assert_eq!(got["metadata"]["generation"], 1);
    assert_eq!(got["metadata"]["labels"], want["metadata"]["labels"]);
    assert_eq!(
        entry(&got, "todo-deploy").map(|e| &e["fieldsV1"]),
        entry(want, "todo-deploy").map(|e| &e["fieldsV1"])
    );

    // 4. image change: generation + 1.
    let (req, want) = step(&t, 3);
    let (code, got) = apply(&s, P, &req_body(req), "").await;
    assert_eq!(code, 200);
    assert_eq!(got["metadata"]["generation"], 2);
    assert_eq!(got["spec"], want["spec"]);

    // 5. kubectl-edit merge patch takes .spec.replicas.
    let (req, want) = step(&t, 4);
    let (code, got) = patch(
        &s,
        req["path"].as_str().expect("path"),
        "application/merge-patch+json",
        &req["body"],
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(got["metadata"]["generation"], 3);
    assert_eq!(got["spec"]["replicas"], 3);
    assert_eq!(
        entry(&got, "kubectl-edit").map(normalize),
        entry(want, "kubectl-edit").map(normalize)
    );
    assert_eq!(
        entry(&got, "todo-deploy").map(|e| &e["fieldsV1"]),
        entry(want, "todo-deploy").map(|e| &e["fieldsV1"])
    );

    // 6. applying replicas=2 without force: the recorded 409 body, exactly.
    let (req, want) = step(&t, 5);
    let (code, got) = apply(&s, P, &req_body(req), "").await;
    assert_eq!(code, 409);
    assert_eq!(&got, want);

    // 7. force takes the field back; kubectl-edit's entry disappears.
    let (req, want) = step(&t, 6);
    let (code, got) = apply(&s, P, &req_body(req), "&force=true").await;
    assert_eq!(code, 200);
    assert_eq!(got["spec"]["replicas"], 2);
    assert_eq!(got["metadata"]["generation"], 4);
    assert!(entry(&got, "kubectl-edit").is_none());
    assert_eq!(
        entry(&got, "todo-deploy").map(|e| &e["fieldsV1"]),
        entry(want, "todo-deploy").map(|e| &e["fieldsV1"])
    );

    // 8. dryRun=All: the response shows generation + 1, the live object is unchanged.
    let live_before = s.get(P).expect("live");
    let (code, got) = apply(&s, P, &req_body(step(&t, 7).0), "&dryRun=All").await;
    assert_eq!(code, 200);
    assert_eq!(got["metadata"]["generation"], 5);
    assert_eq!(
        got["spec"]["template"]["spec"]["containers"][0]["image"],
        "probe-busybox:1"
    );
    assert_eq!(
        got["metadata"]["resourceVersion"],
        live_before["metadata"]["resourceVersion"]
    );
    let live = s.get(P).expect("live");
    assert_eq!(live["metadata"]["generation"], 4);
    assert_eq!(
        live["spec"]["template"]["spec"]["containers"][0]["image"],
        "probe-busybox:2"
    );

    // 10. dropping a previously applied label removes it and its ownership.
    let (req, want) = step(&t, 9);
    let (code, got) = apply(&s, P, &req_body(req), "").await;
    assert_eq!(code, 200);
    assert_eq!(got["metadata"]["labels"], json!({"app": "ssa-demo"}));
    assert_eq!(got["metadata"]["generation"], 4);
    assert_eq!(
        entry(&got, "todo-deploy").map(|e| &e["fieldsV1"]),
        entry(want, "todo-deploy").map(|e| &e["fieldsV1"])
    );
}

#[tokio::test]
async fn error_bodies_match_transcript() {
    let s = standin("transcripts").await;
    let t = transcript("02-error-bodies.json");
    for e in t.as_array().expect("array") {
        let r = &e["request"];
        let body = match &r["body"] {
            Value::Null => None,
            Value::String(text) => Some(text.clone().into_bytes()),
            other => Some(other.to_string().into_bytes()),
        };
        let got = raw(
            &s,
            r["method"].as_str().expect("method"),
            r["path"].as_str().expect("path"),
            r["content_type"].as_str(),
            body,
        )
        .await
        .expect("request");
        let want = &e["response"];
        assert_eq!(
            got.status as i64,
            want["status"].as_i64().expect("status"),
            "{}",
            e["note"]
        );
        if got.status >= 400 {
            assert_eq!(got.json(), want["body"], "{}", e["note"]);
        } else {
            assert_eq!(
                normalize(&got.json()),
                normalize(&want["body"]),
                "{}",
                e["note"]
            );
        }
    }
}

#[tokio::test]
async fn configmap_no_op_apply_and_generation_rules() {
    let s = standin("gen").await;
    let p = "/api/v1/namespaces/gen/configmaps/cfg";
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"a": "1"}});
    let (code, first) = apply(&s, p, &cm, "").await;
    assert_eq!(code, 201);
    assert!(
        first["metadata"].get("generation").is_none(),
        "ConfigMaps have no generation"
    );
    let (code, again) = apply(&s, p, &cm, "").await;
    assert_eq!(code, 200);
    assert_eq!(
        again["metadata"]["resourceVersion"],
        first["metadata"]["resourceVersion"]
    );
    assert_eq!(
        again["metadata"]["managedFields"],
        first["metadata"]["managedFields"]
    );
    let (_, changed) = apply(&s, p, &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"a": "2"}}), "").await;
    assert_ne!(
        changed["metadata"]["resourceVersion"],
        first["metadata"]["resourceVersion"]
    );
    assert!(changed["metadata"].get("generation").is_none());
    // A resourceVersion in the applied configuration is a precondition.
    let stale = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "resourceVersion": first["metadata"]["resourceVersion"]}, "data": {"a": "3"}});
    let (code, body) = apply(&s, p, &stale, "").await;
    assert_eq!(code, 409);
    assert_eq!(body["reason"], "Conflict");
    let (code, _) = apply(&s, p, &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "managedFields": [{"manager": "x"}]}}), "").await;
    assert_eq!(code, 400, "managedFields may not be applied");

    // Status writes do not bump a Deployment's generation; spec writes do.
    let dp = "/apis/apps/v1/namespaces/gen/deployments/g";
    let (_, d) = apply(&s, dp, &deployment("g", "gen", 1, "probe-busybox:1"), "").await;
    assert_eq!(d["metadata"]["generation"], 1);
    let ready = wait_obj(&s, dp, std::time::Duration::from_secs(5), |d| {
        d["status"]["availableReplicas"] == 1
    })
    .await;
    assert_eq!(
        ready["metadata"]["generation"], 1,
        "controller status writes keep generation"
    );
    let (code, scaled) = patch(
        &s,
        &format!("{dp}?fieldManager=kubectl-scale"),
        "application/merge-patch+json",
        &json!({"spec": {"replicas": 2}}),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(scaled["metadata"]["generation"], 2);
    let (code, ann) = patch(
        &s,
        &format!("{dp}?fieldManager=kubectl-annotate"),
        "application/merge-patch+json",
        &json!({"metadata": {"annotations": {"x": "y"}}}),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(
        ann["metadata"]["generation"], 2,
        "metadata changes keep generation"
    );
}

#[tokio::test]
async fn json_and_strategic_patches_record_update_managers() {
    let s = standin("p").await;
    let dp = "/apis/apps/v1/namespaces/p/deployments/d";
    apply(&s, dp, &deployment("d", "p", 1, "probe-busybox:1"), "").await;
    let (code, got) = patch(&s, &format!("{dp}?fieldManager=kubectl-set"), "application/strategic-merge-patch+json",
        &json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "probe-busybox:2"}]}}}})).await;
    assert_eq!(code, 200);
    assert_eq!(
        got["spec"]["template"]["spec"]["containers"][0]["image"],
        "probe-busybox:2"
    );
    assert_eq!(
        got["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"], "Never",
        "strategic merge keeps other fields"
    );
    let e = entry(&got, "kubectl-set").expect("kubectl-set entry");
    assert_eq!(
        e["fieldsV1"],
        json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {"f:image": {}}}}}}})
    );
    let (code, got) = patch(
        &s,
        &format!("{dp}?fieldManager=jp"),
        "application/json-patch+json",
        &json!([{"op": "replace", "path": "/spec/replicas", "value": 3}]),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(got["spec"]["replicas"], 3);
    // A resourceVersion precondition in a PUT that is stale: 409 Conflict.
    let mut stale = got.clone();
    stale["metadata"]["resourceVersion"] = json!("1");
    let (code, body) = call(&s, "PUT", dp, Some(stale)).await;
    assert_eq!(code, 409);
    assert_eq!(body["reason"], "Conflict");
    assert_eq!(
        body["message"],
        "Operation cannot be fulfilled on deployments.apps \"d\": the object has been modified; please apply your changes to the latest version and try again"
    );
}
