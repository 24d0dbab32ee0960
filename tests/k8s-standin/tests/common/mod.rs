//! Helpers shared by the integration tests: starting a fast stand-in, a raw
//! HTTP client (exact status, headers and bodies), watch stream readers, and
//! the recorded transcripts.
#![allow(dead_code)]

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use k8s_standin::{Behavior, ImageConfig, OnSigterm, Options, StandIn};
use serde_json::{Value, json};

/// A stand-in at time scale 0.02 with the transcript images and a namespace.
pub async fn standin(ns: &str) -> StandIn {
    let s = StandIn::start(Options {
        time_scale: 0.02,
        ..Options::default()
    })
    .await
    .expect("start stand-in");
    let images = s.node_images();
    // busybox httpd as PID 1 ignores SIGTERM: deleted pods end with 137 after their grace (04, 08).
    let busybox = ImageConfig::default().on_sigterm(OnSigterm::Ignore);
    for tag in ["probe-busybox:1", "probe-busybox:2"] {
        images.add_image_with(
            tag,
            Behavior::serve(&["/api/health"], 8000),
            busybox.clone(),
        );
    }
    images.add_image(
        "probe-crash:1",
        Behavior::crash(
            3,
            &[
                "starting backend",
                "sqlalchemy.exc.OperationalError: could not connect to server",
            ],
        ),
    );
    let (code, body) = call(
        &s,
        "POST",
        "/api/v1/namespaces",
        Some(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    // Let the namespace controller publish kube-root-ca.crt and the default ServiceAccount.
    s.wait_for(Duration::from_secs(5), |s| {
        s.list("ServiceAccount", Some(ns))
            .iter()
            .any(|a| a["metadata"]["name"] == "default")
            .then_some(())
    })
    .await
    .expect("namespace bootstrap");
    s
}

/// A response.
pub struct Resp {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// One request with an explicit content type.
pub async fn raw(
    s: &StandIn,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Option<Vec<u8>>,
) -> Result<Resp, String> {
    let addr = s.url().trim_start_matches("http://").to_string();
    let stream = tokio::net::TcpStream::connect(&addr)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.clone())
        .header("user-agent", "standin-test/1.0");
    if let Some(ct) = content_type {
        b = b.header("content-type", ct);
    }
    let req = b
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok(Resp {
        status,
        headers,
        body,
    })
}

/// JSON request; returns status and JSON body.
pub async fn call(s: &StandIn, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let r = raw(
        s,
        method,
        path,
        body.as_ref().map(|_| "application/json"),
        body.map(|b| b.to_string().into_bytes()),
    )
    .await
    .expect("request");
    (r.status, r.json())
}

/// PATCH with a content type.
pub async fn patch(s: &StandIn, path: &str, ct: &str, body: &Value) -> (u16, Value) {
    let r = raw(
        s,
        "PATCH",
        path,
        Some(ct),
        Some(body.to_string().into_bytes()),
    )
    .await
    .expect("request");
    (r.status, r.json())
}

/// Server-side apply as todo-deploy does it.
pub async fn apply(s: &StandIn, path: &str, body: &Value, extra_query: &str) -> (u16, Value) {
    patch(
        s,
        &format!("{path}?fieldManager=todo-deploy{extra_query}"),
        "application/apply-patch+yaml",
        body,
    )
    .await
}

/// A watch stream being read line by line.
pub struct WatchStream {
    rx: tokio::sync::mpsc::UnboundedReceiver<Result<Value, String>>,
}

impl WatchStream {
    /// Next event within `timeout`; `None` on timeout or end.
    pub async fn next(&mut self, timeout: Duration) -> Option<Result<Value, String>> {
        tokio::time::timeout(timeout, self.rx.recv())
            .await
            .ok()
            .flatten()
    }

    /// Collects events until `stop` returns true for one (included) or timeout.
    pub async fn until(
        &mut self,
        timeout: Duration,
        mut stop: impl FnMut(&Value) -> bool,
    ) -> Vec<Value> {
        let end = tokio::time::Instant::now() + timeout;
        let mut out = Vec::new();
        loop {
            let left = end.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(Ok(v)) => {
                    let done = stop(&v);
                    out.push(v);
                    if done {
                        return out;
                    }
                }
                _ => return out,
            }
        }
    }
}

/// Opens a watch (path with query) and reads newline-delimited events.
pub async fn watch(s: &StandIn, path_and_query: &str) -> WatchStream {
    let addr = s.url().trim_start_matches("http://").to_string();
    let stream = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("handshake");
    tokio::spawn(conn);
    let req = Request::builder()
        .method("GET")
        .uri(path_and_query)
        .header("host", addr)
        .body(Full::new(Bytes::new()))
        .expect("request");
    let resp = sender.send_request(req).await.expect("watch response");
    assert_eq!(resp.status().as_u16(), 200);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut body = resp.into_body();
        let mut buf = Vec::new();
        loop {
            match body.frame().await {
                Some(Ok(f)) => {
                    if let Some(d) = f.data_ref() {
                        buf.extend_from_slice(d);
                        while let Some(i) = buf.iter().position(|b| *b == b'\n') {
                            let line: Vec<u8> = buf.drain(..=i).collect();
                            let v: Value = serde_json::from_slice(&line).unwrap_or(Value::Null);
                            if tx.send(Ok(v)).is_err() {
                                return;
                            }
                        }
                    }
                }
                Some(Err(e)) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
                None => return,
            }
        }
    });
    WatchStream { rx }
}

/// A streamed response body (e.g. `follow=true` logs), read chunk by chunk.
pub struct BodyStream {
    pub status: u16,
    rx: tokio::sync::mpsc::UnboundedReceiver<Bytes>,
}

impl BodyStream {
    /// The next chunk within `timeout`; `None` on timeout or at the end.
    pub async fn next(&mut self, timeout: Duration) -> Option<Bytes> {
        tokio::time::timeout(timeout, self.rx.recv())
            .await
            .ok()
            .flatten()
    }

    /// Everything until the body ends, as text; `None` if it has not ended within `timeout`.
    pub async fn rest(&mut self, timeout: Duration) -> Option<String> {
        let end = tokio::time::Instant::now() + timeout;
        let mut out = Vec::new();
        loop {
            let left = end.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.rx.recv()).await {
                Ok(Some(b)) => out.extend_from_slice(&b),
                Ok(None) => return Some(String::from_utf8_lossy(&out).into_owned()),
                Err(_) => return None,
            }
        }
    }
}

/// Opens a GET whose body is read as it arrives.
pub async fn stream(s: &StandIn, path_and_query: &str) -> BodyStream {
    let addr = s.url().trim_start_matches("http://").to_string();
    let stream = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("handshake");
    tokio::spawn(conn);
    let req = Request::builder()
        .method("GET")
        .uri(path_and_query)
        .header("host", addr)
        .body(Full::new(Bytes::new()))
        .expect("request");
    let resp = sender.send_request(req).await.expect("response");
    let status = resp.status().as_u16();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut body = resp.into_body();
        while let Some(Ok(f)) = body.frame().await {
            if let Some(d) = f.data_ref()
                && tx.send(d.clone()).is_err()
            {
                return;
            }
        }
    });
    BodyStream { status, rx }
}

/// A transcript file.
pub fn transcript(name: &str) -> Value {
    let p = format!(
        "{}/../../../shared/k8s-api-transcripts/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {p}: {e}"));
    serde_json::from_str(&text).expect("transcript json")
}

/// The Deployment the transcripts apply (2 replicas, maxSurge 1, maxUnavailable 0).
pub fn deployment(name: &str, ns: &str, replicas: i64, image: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "web", "image": image, "imagePullPolicy": "Never",
                "ports": [{"containerPort": 8000}],
                "readinessProbe": {"httpGet": {"path": "/api/health", "port": 8000}, "initialDelaySeconds": 1, "periodSeconds": 1}}],
                "terminationGracePeriodSeconds": 2}}}})
}

/// Removes values that differ between runs (uids, resourceVersions, times, hashes).
pub fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| {
                    let ign = matches!(
                        k.as_str(),
                        "uid"
                            | "resourceVersion"
                            | "creationTimestamp"
                            | "time"
                            | "lastUpdateTime"
                            | "lastTransitionTime"
                            | "deletionTimestamp"
                    );
                    (k.clone(), if ign { json!("<x>") } else { normalize(x) })
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        other => other.clone(),
    }
}

/// Polls an object until `f` holds.
pub async fn wait_obj(
    s: &StandIn,
    path: &str,
    timeout: Duration,
    f: impl Fn(&Value) -> bool,
) -> Value {
    s.wait_for(timeout, |s| s.get(path).filter(|v| f(v)))
        .await
        .unwrap_or_else(|| panic!("timed out waiting on {path}: {:?}", s.get(path)))
}

/// Replaces the generated suffix after `prefix-` in every string (ReplicaSet hashes,
/// pod suffixes), so names can be compared across runs: `web-749b599875` -> `web-<id>`.
pub fn hide_generated(v: &Value, prefix: &str) -> Value {
    match v {
        Value::String(s) => Value::String(hide_in_str(s, &format!("{prefix}-"))),
        Value::Array(a) => Value::Array(a.iter().map(|x| hide_generated(x, prefix)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), hide_generated(x, prefix)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn hide_in_str(s: &str, needle: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find(needle) {
        out.push_str(&rest[..i + needle.len()]);
        rest = &rest[i + needle.len()..];
        let end = rest
            .find(|c: char| !c.is_ascii_alphanumeric() && c != '-')
            .unwrap_or(rest.len());
        if end > 0 {
            out.push_str("<id>");
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The recorded watch events of one kind and name prefix, from a transcript's event list
/// (`{"watch": ..., "event": {"type", "object"}}` items), in order.
pub fn recorded_events<'a>(events: &'a Value, kind: &str) -> Vec<&'a Value> {
    events
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| &e["event"])
                .filter(|e| e["object"]["kind"] == kind)
                .collect()
        })
        .unwrap_or_default()
}
