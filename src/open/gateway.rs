//! The local gateway: an HTTP/1 server on 127.0.0.1 that sends each request, by the Ingress's
//! path rules, to a ready pod of the rule's Service through a port-forward of the API server
//! (kube's `portforward`; the pod is chosen again for every request, so restarts and rollouts
//! are followed), and says which pod each service is forwarded to whenever that changes. hyper
//! serves and, over each forwarded stream, asks: the maintained HTTP stack already in the tree.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::ListParams;
use kube::{Api, Client};
use tokio::net::TcpListener;

use super::OpenError;
use super::routes::{Route, Routes, ServicePort};
use crate::progress::{Event, Events};

/// How long one forwarded request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Listens on 127.0.0.1:`port` (0: any free port).
pub async fn bind(port: u16) -> Result<TcpListener, OpenError> {
    TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|source| OpenError::Bind { port, source })
}

struct State {
    client: Client,
    namespace: String,
    routes: Routes,
    events: Events,
    /// The pod each service was last forwarded to, to say when it changes.
    chosen: Mutex<BTreeMap<String, String>>,
}

/// Serves until `stop` completes.
pub async fn serve(
    listener: TcpListener,
    client: Client,
    namespace: &str,
    routes: Routes,
    events: &Events,
    stop: impl std::future::Future<Output = ()>,
) {
    let state = Arc::new(State {
        client,
        namespace: namespace.to_owned(),
        routes,
        events: events.clone(),
        chosen: Mutex::new(BTreeMap::new()),
    });
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            () = &mut stop => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else {
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body + "\n")));
    *response.status_mut() = status;
    response
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let Some(route) = state.routes.pick(&path).cloned() else {
        return Ok(text(
            StatusCode::NOT_FOUND,
            format!("todo-deploy open: no Ingress rule for `{path}`"),
        ));
    };
    let (pod, port) = match target(&state, &route).await {
        Ok(target) => target,
        Err(why) => {
            return Ok(text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("todo-deploy open: {why}"),
            ));
        }
    };
    announce(&state, &route, &pod, port);
    let forwarded = tokio::time::timeout(REQUEST_TIMEOUT, forward(&state, &pod, port, req)).await;
    Ok(match forwarded {
        Ok(Ok(response)) => response,
        Ok(Err(why)) => text(
            StatusCode::BAD_GATEWAY,
            format!("todo-deploy open: pod `{pod}` port {port}: {why}"),
        ),
        Err(_) => text(
            StatusCode::GATEWAY_TIMEOUT,
            format!("todo-deploy open: pod `{pod}` did not answer in time"),
        ),
    })
}

fn announce(state: &State, route: &Route, pod: &str, port: u16) {
    let Ok(mut chosen) = state.chosen.lock() else {
        return;
    };
    if chosen.get(&route.service).map(String::as_str) != Some(pod) {
        chosen.insert(route.service.clone(), pod.to_owned());
        state.events.send(Event::Info(format!(
            "open: `{}` → service `{}`: forwarding to pod `{pod}` port {port}",
            route.path, route.service
        )));
    }
}

/// A ready pod behind the route's Service, and the container port its target port names.
async fn target(state: &State, route: &Route) -> Result<(String, u16), String> {
    let services: Api<Service> = Api::namespaced(state.client.clone(), &state.namespace);
    let service = services
        .get_opt(&route.service)
        .await
        .map_err(|error| {
            format!(
                "cannot read Service `{}`: {}",
                route.service,
                crate::cluster::short(&error)
            )
        })?
        .ok_or_else(|| {
            format!(
                "Service `{}` does not exist; is the release deployed (`todo-deploy status`)?",
                route.service
            )
        })?;
    let spec = service.spec.unwrap_or_default();
    let port = spec
        .ports
        .iter()
        .flatten()
        .find(|p| match &route.port {
            ServicePort::Number(n) => p.port == *n,
            ServicePort::Name(name) => p.name.as_deref() == Some(name),
        })
        .ok_or_else(|| format!("Service `{}` has no port {:?}", route.service, route.port))?;
    let target_port = port
        .target_port
        .clone()
        .unwrap_or(IntOrString::Int(port.port));
    let selector: Vec<String> = spec
        .selector
        .unwrap_or_default()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let pods: Api<Pod> = Api::namespaced(state.client.clone(), &state.namespace);
    let listed = pods
        .list(&ListParams::default().labels(&selector.join(",")))
        .await
        .map_err(|error| {
            format!(
                "cannot list the pods of `{}`: {}",
                route.service,
                crate::cluster::short(&error)
            )
        })?;
    let mut ready: Vec<Pod> = listed.items.into_iter().filter(is_ready).collect();
    ready.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let pod = ready.into_iter().next().ok_or_else(|| {
        format!(
            "no ready pod behind Service `{}` (`todo-deploy status` says why)",
            route.service
        )
    })?;
    let number = container_port(&pod, &target_port)
        .ok_or_else(|| format!("pod has no port {target_port:?}"))?;
    Ok((pod.metadata.name.unwrap_or_default(), number))
}

fn is_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn container_port(pod: &Pod, target: &IntOrString) -> Option<u16> {
    match target {
        IntOrString::Int(n) => u16::try_from(*n).ok(),
        IntOrString::String(name) => pod
            .spec
            .as_ref()?
            .containers
            .iter()
            .flat_map(|c| c.ports.iter().flatten())
            .find(|p| p.name.as_deref() == Some(name))
            .and_then(|p| u16::try_from(p.container_port).ok()),
    }
}

/// Sends `req` to `pod`'s `port` over a port-forward and returns the whole response.
async fn forward(
    state: &State,
    pod: &str,
    port: u16,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, String> {
    let pods: Api<Pod> = Api::namespaced(state.client.clone(), &state.namespace);
    let mut forwarder = pods
        .portforward(pod, &[port])
        .await
        .map_err(|error| format!("port-forward failed: {}", crate::cluster::short(&error)))?;
    let stream = forwarder
        .take_stream(port)
        .ok_or("the port-forward gave no stream")?;
    let failed = forwarder.take_error(port);
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    let mut outgoing = Request::from_parts(parts, Full::new(body));
    let path = outgoing
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned());
    *outgoing.uri_mut() = path.parse().map_err(|_| "a bad path")?;
    let exchange = async {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        let connection = tokio::spawn(connection);
        let response = sender
            .send_request(outgoing)
            .await
            .map_err(|e| e.to_string())?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        connection.abort();
        Ok::<_, String>(Response::from_parts(parts, Full::new(body)))
    };
    let result = match failed {
        Some(failed) => tokio::select! {
            result = exchange => result,
            Some(error) = failed => Err(error),
        },
        None => exchange.await,
    };
    forwarder.abort();
    result
}
