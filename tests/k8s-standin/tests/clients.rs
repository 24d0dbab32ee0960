//! Real clients against the stand-in: kube-rs (server-side apply with
//! `PatchParams::apply("todo-deploy")`, the runtime watcher across cut
//! watches, retries after injected faults) and kubectl; plus fault injection
//! and discovery shapes.

mod common;

use std::time::Duration;

use common::*;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_standin::{Fault, FaultFilter};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::watcher;
use serde_json::{Value, json};

async fn kube_client(s: &k8s_standin::StandIn) -> kube::Client {
    let dir = std::env::temp_dir().join(format!("standin-kc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join(format!(
        "config-{}",
        s.url().rsplit(':').next().unwrap_or("0")
    ));
    s.write_kubeconfig(&path, "standin")
        .expect("write kubeconfig");
    let kc = kube::config::Kubeconfig::read_from(&path).expect("read kubeconfig");
    // Read once: leave nothing behind in the temporary directory.
    let _ = std::fs::remove_file(&path);
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .expect("config");
    assert_eq!(cfg.default_namespace, "default");
    kube::Client::try_from(cfg).expect("client")
}

#[tokio::test]
async fn kube_rs_apply_and_watcher() {
    let s = standin("kube").await;
    let client = kube_client(&s).await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "kube");
    let d: Deployment = serde_json::from_value(deployment("web", "kube", 2, "probe-busybox:1"))
        .expect("deployment");
    let applied = deploys
        .patch("web", &PatchParams::apply("todo-deploy"), &Patch::Apply(&d))
        .await
        .expect("apply");
    assert_eq!(applied.metadata.generation, Some(1));
    let mf = applied.metadata.managed_fields.expect("managed fields");
    assert_eq!(mf[0].manager.as_deref(), Some("todo-deploy"));
    assert_eq!(mf[0].operation.as_deref(), Some("Apply"));

    // The runtime watcher sees the rollout complete, even across cut watch streams.
    let stream = watcher(
        deploys.clone(),
        watcher::Config::default().fields("metadata.name=web"),
    );
    let mut stream = Box::pin(stream);
    let mut cut = false;
    let done = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(ev) = stream.next().await {
            let Ok(ev) = ev else { continue };
            if let watcher::Event::Apply(d) | watcher::Event::InitApply(d) = ev {
                let st = d.status.clone().unwrap_or_default();
                if !cut {
                    s.cut_watches();
                    cut = true;
                    continue;
                }
                if st.available_replicas == Some(2)
                    && st.observed_generation == d.metadata.generation
                {
                    return d;
                }
            }
        }
        panic!("watcher ended");
    })
    .await
    .expect("rollout seen by the watcher");
    assert_eq!(done.status.and_then(|s| s.updated_replicas), Some(2));

    // Apply conflicts surface as kube errors with the real reason.
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "kube");
    let cm: ConfigMap = serde_json::from_value(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "1"}})).expect("cm");
    cms.patch("c", &PatchParams::apply("todo-deploy"), &Patch::Apply(&cm))
        .await
        .expect("apply cm");
    cms.patch(
        "c",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "2"}})),
    )
    .await
    .expect("merge");
    let err = cms
        .patch("c", &PatchParams::apply("todo-deploy"), &Patch::Apply(&cm))
        .await
        .expect_err("conflict");
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 409);
            assert_eq!(s.reason, "Conflict");
        }
        other => panic!("unexpected {other}"),
    }
    let nss: Api<Namespace> = Api::all(client);
    assert!(nss.get("default").await.is_ok());
}

#[tokio::test]
async fn injected_faults() {
    let s = standin("f").await;
    s.fail_next(1, Fault::Status500);
    let (code, body) = call(&s, "GET", "/api/v1/namespaces/f/configmaps", None).await;
    assert_eq!(code, 500);
    assert_eq!(body["reason"], "InternalError");
    assert_eq!(body["kind"], "Status");
    let (code, _) = call(&s, "GET", "/api/v1/namespaces/f/configmaps", None).await;
    assert_eq!(code, 200, "only one request fails");

    s.fail_next_matching(
        2,
        Fault::TooManyRequests {
            retry_after_secs: 3,
        },
        FaultFilter::method_path("PATCH", "/deployments/"),
    );
    let (code, _) = call(&s, "GET", "/apis/apps/v1/namespaces/f/deployments", None).await;
    assert_eq!(code, 200, "filter spares other requests");
    let r = raw(
        &s,
        "PATCH",
        "/apis/apps/v1/namespaces/f/deployments/x?fieldManager=t",
        Some("application/apply-patch+yaml"),
        Some(b"{}".to_vec()),
    )
    .await
    .expect("request");
    assert_eq!(r.status, 429);
    assert_eq!(
        r.headers.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("3")
    );
    let body = r.json();
    assert_eq!(body["reason"], "TooManyRequests");
    assert_eq!(body["details"]["retryAfterSeconds"], 3);
    assert_eq!(body["code"], 429);

    s.fail_next(1, Fault::DropConnection);
    let r = raw(&s, "GET", "/api/v1/namespaces", None, None).await;
    assert!(r.is_err(), "dropped connection yields no response");
    assert_eq!(s.injected_faults().len(), 3);

    // kube-rs gets the 500 as an error and succeeds on the next call.
    let client = kube_client(&s).await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "f");
    s.fail_next(1, Fault::Status500);
    assert!(cms.list(&Default::default()).await.is_err());
    assert!(cms.list(&Default::default()).await.is_ok());
}

#[tokio::test]
async fn discovery_documents() {
    let s = standin("d").await;
    let t = transcript("01-discovery.json");
    for p in [
        "/version",
        "/api/v1",
        "/apis",
        "/apis/apps/v1",
        "/apis/networking.k8s.io/v1",
        "/apis/coordination.k8s.io/v1",
        "/apis/autoscaling/v2",
        "/apis/policy/v1",
    ] {
        let r = raw(&s, "GET", p, None, None).await.expect("get");
        assert_eq!(r.status, 200, "{p}");
        assert_eq!(r.json(), t[p], "{p}");
    }
    let (_, api) = call(&s, "GET", "/api", None).await;
    assert_eq!(api["kind"], "APIVersions");
    assert_eq!(api["versions"], json!(["v1"]));
    // Aggregated discovery is not served by 1.24: the plain shape comes back.
    let r = raw(&s, "GET", "/apis", None, None).await.expect("apis");
    assert_eq!(r.json()["kind"], "APIGroupList");
}

fn kubectl_available() -> bool {
    std::process::Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test]
async fn kubectl_against_standin() {
    if !kubectl_available() {
        eprintln!("kubectl not installed; skipping");
        return;
    }
    let s = standin("kctl").await;
    let dir = std::env::temp_dir().join(format!("standin-kubectl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let kc = dir.join("config");
    s.write_kubeconfig(&kc, "standin").expect("kubeconfig");
    let kubectl = |args: &[&str]| {
        let kc = kc.clone();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        async move {
            tokio::process::Command::new("kubectl")
                .arg("--kubeconfig")
                .arg(&kc)
                .args(&args)
                .output()
                .await
                .expect("run kubectl")
        }
    };
    let out = kubectl(&["get", "ns"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("kctl") && text.contains("kube-system"),
        "{text}"
    );

    let manifest = dir.join("d.json");
    std::fs::write(
        &manifest,
        deployment("web", "kctl", 1, "probe-busybox:1").to_string(),
    )
    .expect("manifest");
    let out = kubectl(&[
        "apply",
        "--server-side",
        "-f",
        manifest.to_str().expect("path"),
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("deployment.apps/web serverside-applied")
    );
    let live = s
        .get("/apis/apps/v1/namespaces/kctl/deployments/web")
        .expect("deployment");
    assert_eq!(live["metadata"]["managedFields"][0]["manager"], "kubectl");

    // `kubectl get deploy -w -o json` streams updates until killed.
    let mut child = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kc)
        .args(["-n", "kctl", "get", "deploy", "web", "-w", "-o", "json"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut buf = Vec::new();
    let saw = tokio::time::timeout(Duration::from_secs(15), async {
        use tokio::io::AsyncReadExt;
        let mut chunk = [0u8; 4096];
        loop {
            let n = stdout.read(&mut chunk).await.expect("read");
            if n == 0 {
                return false;
            }
            buf.extend_from_slice(&chunk[..n]);
            if String::from_utf8_lossy(&buf).contains("\"availableReplicas\": 1") {
                return true;
            }
        }
    })
    .await
    .unwrap_or(false);
    let _ = child.kill().await;
    assert!(saw, "watch output: {}", String::from_utf8_lossy(&buf));

    let out = kubectl(&["-n", "kctl", "delete", "deploy", "web"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = json!(null);
    let _ = v;
}

#[tokio::test]
async fn newer_server_profile() {
    let s = k8s_standin::StandIn::start(k8s_standin::Options {
        version: "1.30".into(),
        time_scale: 0.02,
        ..k8s_standin::Options::default()
    })
    .await
    .expect("start");
    let (_, v) = call(&s, "GET", "/version", None).await;
    assert_eq!(v["gitVersion"], "v1.30.0");
    assert_eq!(v["minor"], "30");
    let accept =
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
    let r = raw_accept(&s, "/apis", accept).await;
    assert_eq!(r["kind"], "APIGroupDiscoveryList");
    // 1.24 ignores the request for aggregated discovery.
    let old = standin("x").await;
    let r = raw_accept(&old, "/apis", accept).await;
    assert_eq!(r["kind"], "APIGroupList");
    // kube-rs works against the newer profile; pods report PodReadyToStartContainers.
    s.node_images().add_image(
        "probe-busybox:1",
        k8s_standin::Behavior::serve(&["/api/health"], 8000),
    );
    let client = kube_client(&s).await;
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client, "default");
    let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "probe-busybox:1"}]}})).expect("pod");
    pods.create(&Default::default(), &pod)
        .await
        .expect("create");
    let p = wait_obj(
        &s,
        "/api/v1/namespaces/default/pods/p",
        Duration::from_secs(5),
        |p| p["status"]["phase"] == "Running",
    )
    .await;
    assert_eq!(
        p["status"]["conditions"][0]["type"],
        "PodReadyToStartContainers"
    );
}

async fn raw_accept(s: &k8s_standin::StandIn, path: &str, accept: &str) -> Value {
    use http_body_util::BodyExt;
    let addr = s.url().trim_start_matches("http://").to_string();
    let stream = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("handshake");
    tokio::spawn(conn);
    let req = hyper::Request::builder()
        .uri(path)
        .header("host", addr)
        .header("accept", accept)
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .expect("request");
    let resp = sender.send_request(req).await.expect("response");
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    serde_json::from_slice(&body).expect("json")
}
