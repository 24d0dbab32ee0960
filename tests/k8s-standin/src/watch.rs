//! Watch streams: newline-delimited JSON events from a resourceVersion (with
//! replay from the bounded history, or the 410 Expired ERROR event when it is
//! too old), selector transitions as ADDED/DELETED, bookmarks, timeouts and
//! abrupt cuts.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use http::Response;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::http::{Body, Ctx, Query, json_response};
use crate::resources::Resource;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::status;
use crate::store::{Change, WatchMsg, Watcher};
use crate::util::to_json;

fn line(kind: &str, obj: &Value) -> Bytes {
    let mut s = to_json(&json!({"type": kind, "object": obj}));
    s.push('\n');
    Bytes::from(s)
}

/// The event a filtered watch delivers for a change, if any.
fn filtered(
    c: &Change,
    labels: &LabelSelector,
    fields: &FieldSelector,
) -> Option<(&'static str, Value)> {
    let m = |v: &Value| labels.matches_obj(v) && fields.matches(v);
    let now = m(&c.object);
    let before = c.old.as_ref().is_some_and(m);
    match c.kind {
        "ADDED" => now.then(|| ("ADDED", c.object.clone())),
        "DELETED" => (now || before).then(|| ("DELETED", c.object.clone())),
        _ => match (before, now) {
            (true, true) => Some(("MODIFIED", c.object.clone())),
            (false, true) => Some(("ADDED", c.object.clone())),
            (true, false) => Some(("DELETED", c.object.clone())),
            (false, false) => None,
        },
    }
}

/// Serves a watch request.
pub async fn serve(
    ctx: Arc<Ctx>,
    res: &'static Resource,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    q: &Query,
) -> Response<Body> {
    let from: Option<u64> = match q.get("resourceVersion") {
        None | Some("") => None,
        Some(s) => match s.parse() {
            Ok(v) => Some(v),
            Err(_) => {
                return json_response(
                    400,
                    &status::bad_request(format!("invalid resource version: {s}")).body,
                );
            }
        },
    };
    let bookmarks = q.flag("allowWatchBookmarks");
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(1800);
    let (tx, mut rx) = mpsc::unbounded_channel::<WatchMsg>();
    let mut initial: Vec<Bytes> = Vec::new();
    {
        let mut st = ctx.api.lock();
        match from {
            Some(r) if r != 0 && r < st.compacted => {
                let e = status::expired(r, st.compacted);
                let body = line("ERROR", &e.body);
                return stream_response(stream::iter(vec![Ok::<_, std::io::Error>(Frame::data(
                    body,
                ))]));
            }
            Some(r) if r != 0 => {
                for c in st.history.iter().filter(|c| c.rv > r) {
                    if c.res != res || namespace.as_ref().is_some_and(|n| *n != c.namespace) {
                        continue;
                    }
                    if let Some((k, o)) = filtered(c, &labels, &fields) {
                        initial.push(line(k, &o));
                    }
                }
            }
            _ => {
                for (k, v) in st.objects.iter() {
                    if k.group != res.group || k.plural != res.plural {
                        continue;
                    }
                    if namespace.as_ref().is_some_and(|n| *n != k.namespace) {
                        continue;
                    }
                    if labels.matches_obj(v) && fields.matches(v) {
                        initial.push(line("ADDED", v));
                    }
                }
            }
        }
        // A watch that got past the outage check just before `go_down` is cut as the open ones
        // were: `go_down` sets `down` before it takes this lock to cut them, so a watch is
        // either among those it cuts or sees `down` here.
        if ctx.down.load(std::sync::atomic::Ordering::SeqCst) {
            let _ = tx.send(WatchMsg::Cut);
        } else {
            let id = st.next_watcher;
            st.next_watcher += 1;
            st.watchers.push(Watcher {
                id,
                res: Some(res),
                namespace: namespace.clone(),
                tx,
            });
        }
    }
    let (out_tx, out_rx) = mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(64);
    let api = ctx.api.clone();
    tokio::spawn(async move {
        for b in initial {
            if out_tx.send(Ok(Frame::data(b))).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        let bookmark_obj = |rv: u64| json!({"kind": res.kind, "apiVersion": res.api_version(), "metadata": {"resourceVersion": rv.to_string(), "creationTimestamp": null}});
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(WatchMsg::Change(c)) => {
                        if let Some((k, o)) = filtered(&c, &labels, &fields)
                            && out_tx.send(Ok(Frame::data(line(k, &o)))).await.is_err() {
                                return;
                            }
                    }
                    Some(WatchMsg::Cut) => {
                        let _ = out_tx.send(Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "watch cut"))).await;
                        return;
                    }
                    None => return,
                },
                _ = tick.tick(), if bookmarks => {
                    // Deliver everything already published before claiming a bookmark.
                    let rv = api.lock().rv;
                    while let Ok(m) = rx.try_recv() {
                        match m {
                            WatchMsg::Change(c) => {
                                if let Some((k, o)) = filtered(&c, &labels, &fields)
                                    && out_tx.send(Ok(Frame::data(line(k, &o)))).await.is_err() {
                                        return;
                                    }
                            }
                            WatchMsg::Cut => {
                                let _ = out_tx.send(Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "watch cut"))).await;
                                return;
                            }
                        }
                    }
                    if out_tx.send(Ok(Frame::data(line("BOOKMARK", &bookmark_obj(rv))))).await.is_err() {
                        return;
                    }
                }
                _ = tokio::time::sleep_until(deadline) => return,
                _ = out_tx.closed() => return,
            }
        }
    });
    let s = stream::unfold(
        out_rx,
        |mut rx| async move { rx.recv().await.map(|x| (x, rx)) },
    );
    stream_response(s)
}

fn stream_response<S>(s: S) -> Response<Body>
where
    S: futures_util::Stream<Item = Result<Frame<Bytes>, std::io::Error>> + Send + Sync + 'static,
{
    let body = StreamBody::new(s).boxed();
    let mut r = Response::new(body);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-cache, private"),
    );
    r
}
