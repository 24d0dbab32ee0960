//! `pods/{name}/portforward` over a websocket, as the API server serves kube's client: the
//! `v4.channel.k8s.io` subprotocol, two channels per requested port (data `2i`, error `2i+1`),
//! each opened by a frame carrying the port (little-endian u16) after the channel byte, then
//! frames `[channel, bytes…]` both ways. What answers on the pod's side is the container's
//! simulated behaviour: an HTTP/1 request on its `Serve` port gets 200 `ok` for its ok paths and
//! 404 otherwise (as the fixture images' busybox `httpd` does); a port nothing listens on gets
//! the kubelet's error on the error channel, as a real node does.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::Value;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Message, Role};

use crate::http::{Body, Ctx, full};
use crate::node::Behavior;

const PROTOCOL: &str = "v4.channel.k8s.io";

/// Answers the upgrade request and serves the forwarded ports once upgraded.
pub fn upgrade(ctx: Arc<Ctx>, ns: String, name: String, req: Request<Incoming>) -> Response<Body> {
    let header = |h: http::header::HeaderName| {
        req.headers()
            .get(h)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let key = header(http::header::SEC_WEBSOCKET_KEY);
    let offered = header(http::header::SEC_WEBSOCKET_PROTOCOL);
    let is_upgrade = header(http::header::UPGRADE).eq_ignore_ascii_case("websocket");
    if !is_upgrade || key.is_empty() || !offered.split(',').any(|p| p.trim() == PROTOCOL) {
        // The API server answers a port-forward that is not an upgrade with 400.
        return full(400, "Upgrade request required", "text/plain; charset=utf-8");
    }
    let ports: Vec<u16> = crate::http::Query::parse(req.uri().query())
        .0
        .iter()
        .filter(|(k, _)| k == "ports")
        .flat_map(|(_, v)| {
            v.split(',')
                .filter_map(|p| p.trim().parse().ok())
                .collect::<Vec<u16>>()
        })
        .collect();
    let pod = ctx
        .api
        .get(crate::resources::by_kind("Pod").expect("pods"), &ns, &name);
    let pod = match pod {
        Ok(pod) => pod,
        Err(error) => return crate::http::json_response(error.code, &error.body),
    };
    if ports.is_empty() {
        return full(
            400,
            "query parameter \"port\" is required",
            "text/plain; charset=utf-8",
        );
    }
    let behavior = behavior_of(&ctx, &pod);
    tokio::spawn(async move {
        let Ok(upgraded) = hyper::upgrade::on(req).await else {
            return;
        };
        let io = hyper_util::rt::TokioIo::new(upgraded);
        let socket = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
        serve(socket, &name, &ports, behavior).await;
    });
    let mut response = full(101, Bytes::new(), "text/plain");
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.remove(http::header::CONTENT_TYPE);
    let set = |value: &str| http::HeaderValue::from_str(value).expect("a header value");
    headers.insert(http::header::UPGRADE, set("websocket"));
    headers.insert(http::header::CONNECTION, set("Upgrade"));
    headers.insert(
        http::header::SEC_WEBSOCKET_ACCEPT,
        set(&derive_accept_key(key.as_bytes())),
    );
    headers.insert(http::header::SEC_WEBSOCKET_PROTOCOL, set(PROTOCOL));
    response
}

/// The behaviour of the pod's first container while it runs; `None` when it does not run.
fn behavior_of(ctx: &Ctx, pod: &Value) -> Option<Behavior> {
    let running = pod["status"]["phase"] == "Running";
    let image = pod["spec"]["containers"][0]["image"].as_str()?;
    let image = ctx.images.get(image)?;
    running.then(|| image.behavior.resolve().1.clone())
}

fn frame(channel: u8, bytes: &[u8]) -> Message {
    let mut data = Vec::with_capacity(bytes.len() + 1);
    data.push(channel);
    data.extend_from_slice(bytes);
    Message::binary(data)
}

async fn serve<S>(
    mut socket: WebSocketStream<S>,
    pod: &str,
    ports: &[u16],
    behavior: Option<Behavior>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    for (i, port) in ports.iter().enumerate() {
        let channel = 2 * i as u8;
        for opening in [
            frame(channel, &port.to_le_bytes()),
            frame(channel + 1, &port.to_le_bytes()),
        ] {
            if socket.send(opening).await.is_err() {
                return;
            }
        }
    }
    let mut buffers: Vec<Vec<u8>> = vec![Vec::new(); ports.len()];
    while let Some(Ok(message)) = socket.next().await {
        let Message::Binary(data) = message else {
            if matches!(message, Message::Close(_)) {
                break;
            }
            continue;
        };
        let Some((&channel, bytes)) = data.split_first() else {
            continue;
        };
        let index = usize::from(channel / 2);
        let (Some(buffer), Some(&port)) = (buffers.get_mut(index), ports.get(index)) else {
            continue;
        };
        buffer.extend_from_slice(bytes);
        let Some(end) = find(buffer, b"\r\n\r\n") else {
            continue;
        };
        let request: Vec<u8> = buffer.drain(..end + 4).collect();
        let reply = match answer(&request, port, behavior.as_ref()) {
            Ok(response) => frame(channel, response.as_bytes()),
            Err(error) => frame(
                channel + 1,
                format!("error forwarding port {port} to pod {pod}, uid : {error}").as_bytes(),
            ),
        };
        if socket.send(reply).await.is_err() {
            break;
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The container's answer to one HTTP request on `port`, or why nothing answers.
fn answer(request: &[u8], port: u16, behavior: Option<&Behavior>) -> Result<String, String> {
    let refused =
        || format!("failed to connect to localhost:{port} inside namespace: connection refused");
    let Some(Behavior::Serve {
        ok_paths,
        port: listening,
        ..
    }) = behavior
    else {
        return Err(refused());
    };
    if *listening != port {
        return Err(refused());
    }
    let text = String::from_utf8_lossy(request);
    let path = text.split_whitespace().nth(1).unwrap_or("/");
    let path = path.split('?').next().unwrap_or("/");
    let (status, body) = match ok_paths.iter().any(|p| p == path) {
        true => ("200 OK", "ok\n"),
        false => ("404 Not Found", "404 Not Found\n"),
    };
    Ok(format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_container_answers_its_paths_on_its_port() {
        let serve = Behavior::serve(&["/api/health"], 8000);
        let ok = answer(
            b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n",
            8000,
            Some(&serve),
        )
        .unwrap();
        assert!(
            ok.starts_with("HTTP/1.1 200 OK\r\n") && ok.ends_with("ok\n"),
            "{ok}"
        );
        let missing = answer(b"GET / HTTP/1.1\r\n\r\n", 8000, Some(&serve)).unwrap();
        assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
        assert!(
            answer(b"GET / HTTP/1.1\r\n\r\n", 3000, Some(&serve))
                .unwrap_err()
                .contains("connection refused")
        );
        assert!(answer(b"GET / HTTP/1.1\r\n\r\n", 8000, None).is_err());
    }
}
