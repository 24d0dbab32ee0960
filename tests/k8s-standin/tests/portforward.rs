//! `pods/{name}/portforward` through kube's client (the websocket `v4.channel.k8s.io` protocol,
//! as in kube-rs' `Portforwarder`): the container answers HTTP on its port as its behaviour
//! says; a port nothing listens on gets the kubelet's error on the error channel; a request that
//! is not an upgrade is refused.

mod common;

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn kube_client(s: &k8s_standin::StandIn) -> kube::Client {
    let dir = tempdir();
    let path = dir.join("kubeconfig");
    s.write_kubeconfig(&path, "standin")
        .expect("write kubeconfig");
    let kc = kube::config::Kubeconfig::read_from(&path).expect("read kubeconfig");
    // Read once: leave nothing behind in the temporary directory.
    let _ = std::fs::remove_file(&path);
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .expect("config");
    kube::Client::try_from(cfg).expect("client")
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "standin-pf-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

#[tokio::test]
async fn a_forwarded_port_answers_as_the_container_does() {
    let s = common::standin("pf").await;
    let (code, body) = common::call(
        &s,
        "POST",
        "/api/v1/namespaces/pf/pods",
        Some(
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
                    "spec": {"containers": [{"name": "web", "image": "probe-busybox:1"}]}}),
        ),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    s.wait_for(Duration::from_secs(10), |s| {
        (s.get("/api/v1/namespaces/pf/pods/web")?["status"]["phase"] == "Running").then_some(())
    })
    .await
    .expect("the pod runs");
    let pods: Api<Pod> = Api::namespaced(kube_client(&s).await, "pf");

    let mut forwarder = pods.portforward("web", &[8000]).await.expect("upgraded");
    let mut stream = forwarder.take_stream(8000).expect("a stream");
    stream
        .write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("send");
    let mut response = vec![0; 1024];
    let read = stream.read(&mut response).await.expect("read");
    let response = String::from_utf8_lossy(&response[..read]).into_owned();
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.ends_with("\r\n\r\nok\n"), "{response}");
    forwarder.abort();

    let mut forwarder = pods.portforward("web", &[3000]).await.expect("upgraded");
    let mut stream = forwarder.take_stream(3000).expect("a stream");
    let error = forwarder.take_error(3000).expect("the error channel");
    stream
        .write_all(b"GET / HTTP/1.1\r\n\r\n")
        .await
        .expect("send");
    let error = error.await.expect("an error");
    assert!(
        error.contains("error forwarding port 3000 to pod web"),
        "{error}"
    );
    assert!(error.contains("connection refused"), "{error}");
    forwarder.abort();

    // Not an upgrade: the API server wants one.
    let (code, _) = common::call(
        &s,
        "GET",
        "/api/v1/namespaces/pf/pods/web/portforward?ports=8000",
        None,
    )
    .await;
    assert_eq!(code, 400);
    let missing = pods.portforward("nobody", &[8000]).await;
    assert!(
        missing.is_err(),
        "a pod that does not exist cannot be forwarded to"
    );
}
