//! The HTTP front: URL routing (discovery, core and group resources,
//! subresources), query parameters, request bodies and JSON responses; fault
//! injection happens here before routing.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::{Value, json};

use crate::api::{Api, DeleteOpts, PatchType, Req};
use crate::faults::{Fault, Faults};
use crate::node::Logs;
use crate::resources::{self, Resource};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::status::{self, ApiError};
use crate::util::to_json;
use crate::watch;

pub type Body = BoxBody<Bytes, std::io::Error>;

/// Everything a request handler needs.
pub struct Ctx {
    pub api: Arc<Api>,
    pub faults: Arc<Faults>,
    pub logs: Logs,
    /// The node's images: how a container answers a port-forward.
    pub images: crate::node::NodeImages,
    /// "127.0.0.1:PORT"
    pub address: String,
    /// Every request passes it before being served; an injected status write
    /// holds it until it is done, so the next request sees the write.
    pub gate: Arc<tokio::sync::Mutex<()>>,
    /// While set, the API server is down: connections are closed before any answer.
    pub down: Arc<std::sync::atomic::AtomicBool>,
    /// Bearer tokens and who they authenticate (see [`crate::authz`]).
    pub tokens: Arc<crate::authz::Tokens>,
    /// Every authorization decision (see [`crate::StandIn::audit`]).
    pub audit: Arc<crate::authz::Audit>,
}

/// Parsed query string.
#[derive(Debug, Default, Clone)]
pub struct Query(pub Vec<(String, String)>);

impl Query {
    pub fn parse(q: Option<&str>) -> Query {
        let mut out = Vec::new();
        if let Some(q) = q {
            for pair in q.split('&') {
                if pair.is_empty() {
                    continue;
                }
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                let dec = |s: &str| {
                    percent_encoding::percent_decode_str(&s.replace('+', " "))
                        .decode_utf8_lossy()
                        .to_string()
                };
                out.push((dec(k), dec(v)));
            }
        }
        Query(out)
    }
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(kk, _)| kk == k)
            .map(|(_, v)| v.as_str())
    }
    pub fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true") | Some("1"))
    }
}

pub fn full(code: u16, body: impl Into<Bytes>, content_type: &str) -> Response<Body> {
    let mut r = Response::new(
        Full::new(body.into())
            .map_err(|never: Infallible| match never {})
            .boxed(),
    );
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    r
}

pub fn json_response(code: u16, v: &Value) -> Response<Body> {
    full(code, to_json(v), "application/json")
}

fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.code, &e.body)
}

/// The manager of a non-apply write: `fieldManager`, else the user-agent's prefix.
fn manager_of(q: &Query, ua: &str) -> String {
    if let Some(m) = q.get("fieldManager") {
        return m.to_string();
    }
    ua.split('/').next().unwrap_or("").to_string()
}

/// What a resource URL addresses.
struct Target {
    res: &'static Resource,
    namespace: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

fn parse_target(segs: &[&str]) -> Option<Target> {
    // segs start after /api/v1 or /apis/{g}/{v}; the first two tell the group/version.
    let (group, version, rest): (&str, &str, &[&str]) = match segs {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, more @ ..]
            if resources::find(group, version, plural).is_some_and(|r| r.namespaced) =>
        {
            (Some(ns.to_string()), {
                let mut v = vec![*plural];
                v.extend_from_slice(more);
                v
            })
        }
        other => (None, other.to_vec()),
    };
    let plural = rest.first()?;
    let res = resources::find(group, version, plural)?;
    Some(Target {
        res,
        namespace,
        name: rest.get(1).map(|s| s.to_string()),
        sub: rest.get(2).map(|s| s.to_string()),
    })
}

fn discovery(ctx: &Ctx, path: &str) -> Option<Value> {
    let d = resources::discovery();
    match path {
        "/version" => Some(resources::version_doc(&ctx.api.version)),
        "/api" => {
            let mut v = d.get("/api")?.clone();
            v["serverAddressByClientCIDRs"] =
                json!([{"clientCIDR": "0.0.0.0/0", "serverAddress": ctx.address}]);
            Some(v)
        }
        "/api/v1" | "/apis" => d.get(path).cloned(),
        p if p.starts_with("/apis/") => {
            if let Some(v) = d.get(p) {
                return Some(v.clone());
            }
            let gv = p.trim_start_matches("/apis/");
            let known = d["/apis"]["groups"].as_array()?.iter().any(|g| {
                g["versions"]
                    .as_array()
                    .is_some_and(|vs| vs.iter().any(|v| v["groupVersion"] == gv))
            });
            known.then(|| json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": []}))
        }
        _ => None,
    }
}

/// A request header as text, or `default`.
fn header(req: &Request<Incoming>, name: http::header::HeaderName, default: &str) -> String {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(default)
        .to_string()
}

/// What an injected fault answers.
fn fault_response(fault: Fault) -> Result<Response<Body>, std::io::Error> {
    match fault {
        Fault::Status500 => Ok(error_response(&status::internal_error("injected fault"))),
        Fault::TooManyRequests { retry_after_secs } => {
            let mut r = error_response(&status::too_many_requests(retry_after_secs));
            if let Ok(v) = http::HeaderValue::from_str(&retry_after_secs.to_string()) {
                r.headers_mut().insert(http::header::RETRY_AFTER, v);
            }
            Ok(r)
        }
        Fault::DropConnection => Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "injected drop",
        )),
    }
}

/// Serves one request.
pub async fn handle(
    ctx: Arc<Ctx>,
    req: Request<Incoming>,
) -> Result<Response<Body>, std::io::Error> {
    drop(ctx.gate.lock().await);
    if ctx.down.load(std::sync::atomic::Ordering::SeqCst) {
        // An error from the service closes the connection without an answer.
        return Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "the API server is down",
        ));
    }
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let path_q = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| path.clone());
    if let Some(fault) = ctx.faults.take(method.as_str(), &path_q) {
        return fault_response(fault);
    }
    let query = Query::parse(req.uri().query());
    let accept = header(&req, http::header::ACCEPT, "");
    let ua = header(&req, http::header::USER_AGENT, "");
    let content_type = header(&req, http::header::CONTENT_TYPE, "application/json");
    let Some(who) = identify(&ctx, &req) else {
        return Ok(error_response(&crate::authz::unauthorized()));
    };
    if method == Method::GET {
        if matches!(path.as_str(), "/healthz" | "/readyz" | "/livez") {
            return Ok(full(200, "ok", "text/plain; charset=utf-8"));
        }
        if path == "/openapi/v2" {
            // A schema-less document: clients' validation finds no types and skips.
            let v = format!("v{}.0", ctx.api.version);
            let proto = accept.contains("protobuf");
            if proto {
                return Ok(full(
                    200,
                    openapi_v2_proto(&v),
                    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
                ));
            }
            return Ok(json_response(
                200,
                &json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": v}, "paths": {}, "definitions": {}}),
            ));
        }
        let trimmed = path.trim_end_matches('/');
        if crate::aggregated::minor(&ctx.api.version) >= 30
            && crate::aggregated::wants_aggregated(&accept)
            && let Some(doc) = crate::aggregated::document(trimmed)
        {
            return Ok(full(200, to_json(&doc), crate::aggregated::CONTENT_TYPE));
        }
        if let Some(doc) = discovery(&ctx, trimmed) {
            return Ok(json_response(200, &doc));
        }
    }
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if let Some(t) = parse_target(&segs)
        && t.res.kind == "Pod"
        && t.sub.as_deref() == Some("portforward")
        && matches!(method, Method::GET | Method::POST)
        && let (Some(ns), Some(name)) = (t.namespace.clone(), t.name.clone())
    {
        // As the API server: a port-forward is a `create` of `pods/portforward`.
        if let Err(e) = authorize(&ctx, &who, &Method::POST, &t, &query, "") {
            return Ok(error_response(&e));
        }
        return Ok(crate::portforward::upgrade(ctx.clone(), ns, name, req));
    }
    let asked = (&who, &method, &query, content_type.as_str());
    let (t, body) = match admit(&ctx, asked, &segs, req.into_body()).await? {
        Ok(admitted) => admitted,
        Err(answer) => return Ok(answer),
    };
    let single_get =
        (method == Method::GET && !query.flag("watch") && t.sub.is_none()).then(|| {
            (
                t.res,
                t.namespace.clone().unwrap_or_default(),
                t.name.clone(),
            )
        });
    let resp = route(&ctx, t, method, &query, &ua, &content_type, body).await;
    if let Some((res, ns, Some(name))) = single_get
        && resp.status() == StatusCode::OK
    {
        status_write_after_get(&ctx, res, ns, name, path_q).await;
    }
    Ok(resp)
}

/// Who asks what, for [`admit`]: the identity, the method, the query, the content type.
type Asked<'a> = (&'a crate::authz::Identity, &'a Method, &'a Query, &'a str);

/// Who sends `req`, by its bearer token; `None` for a token the server does not know (401).
fn identify(ctx: &Ctx, req: &Request<Incoming>) -> Option<crate::authz::Identity> {
    let authorization = header(req, http::header::AUTHORIZATION, "");
    ctx.tokens
        .identify(Some(authorization.as_str()).filter(|a| !a.is_empty()))
}

/// The request's target and body once RBAC allows it; otherwise the answer (404, 403, or the
/// SelfSubjectAccessReview or TokenRequest `authz` serves).
async fn admit(
    ctx: &Ctx,
    asked: Asked<'_>,
    segs: &[&str],
    body: Incoming,
) -> Result<Result<(Target, Bytes), Response<Body>>, std::io::Error> {
    let (who, method, query, content_type) = asked;
    let special = crate::authz::Special::parse(method, segs);
    let target = parse_target(segs);
    if special.is_none() && target.is_none() {
        return Ok(Err(error_response(&status::path_not_found())));
    }
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Err(std::io::Error::other(e)),
    };
    let t = match (special, target) {
        (Some(special), _) => {
            let auth = (ctx.tokens.as_ref(), ctx.audit.as_ref());
            return Ok(Err(
                match crate::authz::serve(&ctx.api, auth, special, who, &body) {
                    Ok((code, v)) => json_response(code, &v),
                    Err(e) => error_response(&e),
                },
            ));
        }
        (None, Some(t)) => t,
        (None, None) => return Ok(Err(error_response(&status::path_not_found()))),
    };
    match authorize(ctx, who, method, &t, query, content_type) {
        Ok(()) => Ok(Ok((t, body))),
        Err(e) => Ok(Err(error_response(&e))),
    }
}

/// RBAC for a resource request; an apply that would create the object needs `create` too.
fn authorize(
    ctx: &Ctx,
    who: &crate::authz::Identity,
    method: &Method,
    t: &Target,
    q: &Query,
    content_type: &str,
) -> Result<(), ApiError> {
    use crate::authz::{Attributes, authorize};
    // The patch handler checks `create` when an apply would create the object.
    let (ns, name, sub) = (t.namespace.as_deref(), t.name.as_deref(), t.sub.as_deref());
    let attrs = Attributes::of(method, t.res, ns, name, sub, q.flag("watch"));
    authorize(&ctx.api, &ctx.audit, who, &attrs)?;
    let apply = PatchType::from_content_type(content_type) == Some(PatchType::Apply);
    if *method == Method::PATCH && apply && sub.is_none() {
        let missing = ctx
            .api
            .get(t.res, ns.unwrap_or(""), name.unwrap_or(""))
            .is_err();
        if missing {
            let create = Attributes {
                verb: "create".into(),
                ..attrs
            };
            if !crate::authz::allowed(&ctx.api, &ctx.audit, who, &create) {
                return Err(crate::authz::forbidden_create_on_patch(&create));
            }
        }
    }
    Ok(())
}

/// An armed status-only write for this GET: takes the gate before the
/// response goes out and writes in the background, so the client's next
/// request waits for it.
async fn status_write_after_get(
    ctx: &Arc<Ctx>,
    res: &'static Resource,
    ns: String,
    name: String,
    path: String,
) {
    let applies = ctx
        .api
        .get(res, &ns, &name)
        .is_ok_and(|o| crate::faults::status_write_applies(&o));
    if !applies || !ctx.faults.take_status_write(&path) {
        return;
    }
    let guard = ctx.gate.clone().lock_owned().await;
    let ctx = ctx.clone();
    tokio::spawn(async move {
        ctx.faults
            .write_status(&ctx.api, res, &ns, &name, &path)
            .await;
        drop(guard);
    });
}

async fn route(
    ctx: &Arc<Ctx>,
    t: Target,
    method: Method,
    q: &Query,
    ua: &str,
    ct: &str,
    body: Bytes,
) -> Response<Body> {
    let res = t.res;
    let ns = t.namespace.clone().unwrap_or_default();
    if res.namespaced && t.namespace.is_none() && t.name.is_some() {
        return error_response(&status::path_not_found());
    }
    let dry_run = q.get("dryRun") == Some("All");
    let req = Req {
        manager: manager_of(q, ua),
        subresource: t.sub.clone().unwrap_or_default(),
        dry_run,
        force: q.flag("force"),
    };
    let parse_body = |b: &Bytes| -> Result<Value, ApiError> {
        serde_json::from_slice(b).map_err(|e| {
            status::bad_request(format!("the body of the request could not be decoded: {e}"))
        })
    };
    let result: Result<(u16, Value), ApiError> = match (&method, &t.name, t.sub.as_deref()) {
        (&Method::GET, None, _) => {
            let labels = match LabelSelector::parse(q.get("labelSelector").unwrap_or("")) {
                Ok(l) => l,
                Err(e) => return error_response(&e),
            };
            let fields = match FieldSelector::parse(q.get("fieldSelector").unwrap_or("")) {
                Ok(f) => f,
                Err(e) => return error_response(&e),
            };
            if q.flag("watch") {
                return watch::serve(ctx.clone(), res, t.namespace.clone(), labels, fields, q)
                    .await;
            }
            Ok(list_response(
                ctx,
                res,
                t.namespace.as_deref(),
                &labels,
                &fields,
                q,
            ))
        }
        (&Method::GET, Some(name), Some("log")) if res.kind == "Pod" => {
            return logs(ctx, &ns, name, q);
        }
        (&Method::GET, Some(name), _) => ctx.api.get(res, &ns, name).map(|v| (200, v)),
        (&Method::POST, None, _) => {
            parse_body(&body).and_then(|b| ctx.api.create(res, &ns, b, &req).map(|v| (201, v)))
        }
        (&Method::PUT, Some(name), _) => parse_body(&body)
            .and_then(|b| ctx.api.replace(res, &ns, name, b, &req).map(|v| (200, v))),
        (&Method::PATCH, Some(name), _) => match PatchType::from_content_type(ct) {
            None => Err(status::unsupported_patch(ct)),
            Some(pt) => {
                let mut req = req.clone();
                if pt == PatchType::Apply {
                    req.manager = q.get("fieldManager").unwrap_or("").to_string();
                }
                ctx.api
                    .patch(res, &ns, name, pt, &body, &req)
                    .map(|(v, created)| (if created { 201 } else { 200 }, v))
            }
        },
        (&Method::DELETE, Some(name), None) => {
            let opts = delete_opts(q, &body);
            ctx.api.delete(res, &ns, name, &opts)
        }
        (&Method::DELETE, None, None) => {
            delete_collection(ctx, res, t.namespace.as_deref(), q, &body)
        }
        _ => Err(status::method_not_allowed()),
    };
    match result {
        Ok((code, v)) => json_response(code, &v),
        Err(e) => error_response(&e),
    }
}

fn delete_opts(q: &Query, body: &Bytes) -> DeleteOpts {
    let b: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    DeleteOpts {
        propagation: q
            .get("propagationPolicy")
            .map(String::from)
            .or_else(|| b["propagationPolicy"].as_str().map(String::from))
            .or_else(|| match b["orphanDependents"].as_bool() {
                Some(true) => Some("Orphan".into()),
                Some(false) => Some("Background".into()),
                None => None,
            }),
        grace_period: q
            .get("gracePeriodSeconds")
            .and_then(|g| g.parse().ok())
            .or_else(|| b["gracePeriodSeconds"].as_i64()),
        precondition_uid: b
            .pointer("/preconditions/uid")
            .and_then(|u| u.as_str())
            .map(String::from),
        precondition_rv: b
            .pointer("/preconditions/resourceVersion")
            .and_then(|u| u.as_str())
            .map(String::from),
        dry_run: q.get("dryRun") == Some("All")
            || b["dryRun"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == "All")),
    }
}

fn delete_collection(
    ctx: &Ctx,
    res: &'static Resource,
    ns: Option<&str>,
    q: &Query,
    body: &Bytes,
) -> Result<(u16, Value), ApiError> {
    let labels = LabelSelector::parse(q.get("labelSelector").unwrap_or(""))?;
    let fields = FieldSelector::parse(q.get("fieldSelector").unwrap_or(""))?;
    let (items, _) = ctx.api.list(res, ns, &labels, &fields);
    let opts = delete_opts(q, body);
    for it in &items {
        let name = it
            .pointer("/metadata/name")
            .and_then(|n| n.as_str())
            .unwrap_or("");
        let ins = it
            .pointer("/metadata/namespace")
            .and_then(|n| n.as_str())
            .unwrap_or("");
        let _ = ctx.api.delete(res, ins, name, &opts);
    }
    let (_, rv) = ctx.api.list(
        res,
        ns,
        &LabelSelector::default(),
        &FieldSelector::default(),
    );
    Ok((
        200,
        json!({"kind": res.list_kind(), "apiVersion": res.api_version(), "metadata": {"resourceVersion": rv.to_string()}, "items": items.iter().map(list_item).collect::<Vec<_>>()}),
    ))
}

/// A list item: the object without kind/apiVersion, as the server sends them.
pub fn list_item(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("kind");
        m.remove("apiVersion");
    }
    v
}

fn list_response(
    ctx: &Ctx,
    res: &'static Resource,
    ns: Option<&str>,
    labels: &LabelSelector,
    fields: &FieldSelector,
    q: &Query,
) -> (u16, Value) {
    let (items, rv) = ctx.api.list(res, ns, labels, fields);
    // Continue tokens name the last key returned, so pages survive concurrent writes.
    let key = |v: &Value| {
        (
            v.pointer("/metadata/namespace")
                .and_then(|n| n.as_str())
                .unwrap_or("")
                .to_string(),
            v.pointer("/metadata/name")
                .and_then(|n| n.as_str())
                .unwrap_or("")
                .to_string(),
        )
    };
    let after: Option<(String, String)> = q
        .get("continue")
        .and_then(|c| c.split_once(':'))
        .and_then(|(_, k)| k.split_once('/'))
        .map(|(n, m)| (n.to_string(), m.to_string()));
    let limit: usize = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let rest: Vec<&Value> = items
        .iter()
        .filter(|v| after.as_ref().is_none_or(|a| key(v) > *a))
        .collect();
    let page: Vec<Value> = rest.iter().take(limit).map(|v| list_item(v)).collect();
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if rest.len() > page.len() {
        if let Some(last) = rest.get(page.len().saturating_sub(1)) {
            let (n, m) = key(last);
            meta["continue"] = json!(format!("{rv}:{n}/{m}"));
        }
        meta["remainingItemCount"] = json!(rest.len() - page.len());
    }
    (
        200,
        json!({"kind": res.list_kind(), "apiVersion": res.api_version(), "metadata": meta, "items": page}),
    )
}

fn logs(ctx: &Ctx, ns: &str, name: &str, q: &Query) -> Response<Body> {
    let pods = resources::by_kind("Pod");
    let Some(pods) = pods else {
        return error_response(&status::path_not_found());
    };
    let pod = match ctx.api.get(pods, ns, name) {
        Ok(p) => p,
        Err(e) => return error_response(&e),
    };
    let names: Vec<String> = pod
        .pointer("/spec/containers")
        .and_then(|c| c.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|c| c["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let container = match q.get("container") {
        Some(c) => c.to_string(),
        None if names.len() == 1 => names[0].clone(),
        None => {
            return error_response(&status::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                names.join(" ")
            )));
        }
    };
    if !names.contains(&container) {
        return error_response(&status::bad_request(format!(
            "container {container} is not valid for pod {name}"
        )));
    }
    let logs = ctx.logs.get(ns, name, &container).unwrap_or_default();
    let lines = if q.flag("previous") {
        match logs.previous {
            Some(p) => p,
            None => {
                return error_response(&status::bad_request(format!(
                    "previous terminated container \"{container}\" in pod \"{name}\" not found"
                )));
            }
        }
    } else {
        if !logs.started {
            let reason = pod
                .pointer("/status/containerStatuses")
                .and_then(|c| c.as_array())
                .and_then(|a| a.iter().find(|c| c["name"] == container.as_str()))
                .and_then(|c| c.pointer("/state/waiting/reason"))
                .and_then(|r| r.as_str())
                .unwrap_or("ContainerCreating")
                .to_string();
            return error_response(&status::bad_request(format!(
                "container \"{container}\" in pod \"{name}\" is waiting to start: {reason}"
            )));
        }
        logs.current
    };
    let tail: Option<usize> = q.get("tailLines").and_then(|t| t.parse().ok());
    let skip = tail.map(|t| lines.len().saturating_sub(t)).unwrap_or(0);
    let mut text = String::new();
    for l in lines.iter().skip(skip) {
        text.push_str(l);
        text.push('\n');
    }
    if q.flag("follow") && !q.flag("previous") {
        let at = (text, lines.len());
        return follow_logs(ctx, pods, ns, name, &container, at, logs.instance);
    }
    full(200, text, "text/plain")
}

/// `follow=true`: what there is, then new lines, until the container instance
/// stops running (or the pod goes, or the client hangs up).
fn follow_logs(
    ctx: &Ctx,
    pods: &'static Resource,
    ns: &str,
    name: &str,
    container: &str,
    (initial, initial_lines): (String, usize),
    instance: u64,
) -> Response<Body> {
    let (tx, rx) =
        tokio::sync::mpsc::channel::<Result<hyper::body::Frame<Bytes>, std::io::Error>>(16);
    let api = ctx.api.clone();
    let logs = ctx.logs.clone();
    let (ns, name, container) = (ns.to_string(), name.to_string(), container.to_string());
    tokio::spawn(async move {
        if tx
            .send(Ok(hyper::body::Frame::data(Bytes::from(initial.clone()))))
            .await
            .is_err()
        {
            return;
        }
        // Every line there was is sent or skipped (`tailLines`): only later ones follow.
        let mut sent = initial_lines;
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            let Some(cur) = logs.get(&ns, &name, &container) else {
                return;
            };
            if cur.instance != instance {
                return;
            }
            if cur.current.len() > sent {
                let mut more = String::new();
                for l in &cur.current[sent..] {
                    more.push_str(l);
                    more.push('\n');
                }
                sent = cur.current.len();
                if tx
                    .send(Ok(hyper::body::Frame::data(Bytes::from(more))))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            let running = api.get(pods, &ns, &name).ok().is_some_and(|p| {
                p.pointer("/status/containerStatuses")
                    .and_then(|c| c.as_array())
                    .and_then(|a| a.iter().find(|c| c["name"] == container.as_str()))
                    .is_some_and(|c| c.pointer("/state/running").is_some())
            });
            if !running || tx.is_closed() {
                return;
            }
        }
    });
    let s =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) });
    let mut r = Response::new(http_body_util::StreamBody::new(s).boxed());
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    r
}

/// A minimal OpenAPI v2 `Document` in protobuf (swagger "2.0" and info only).
fn openapi_v2_proto(version: &str) -> Vec<u8> {
    fn field(tag: u8, data: &[u8], out: &mut Vec<u8>) {
        out.push(tag);
        out.push(data.len() as u8);
        out.extend_from_slice(data);
    }
    let mut info = Vec::new();
    field(0x0a, b"Kubernetes", &mut info);
    field(0x12, version.as_bytes(), &mut info);
    let mut doc = Vec::new();
    field(0x0a, b"2.0", &mut doc);
    field(0x12, &info, &mut doc);
    doc
}
