//! Readiness and liveness probes against an image's behaviour: HTTP GET
//! (200 on the served paths, 404 elsewhere, connection refused on other ports
//! or while starting), TCP, exec (always passes).

use std::time::Instant;

use serde_json::Value;

use super::Ctr;
use crate::node::Behavior;

fn resolve_port(c: &Value, port: &Value) -> i64 {
    match port {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(s) => c["ports"]
            .as_array()
            .and_then(|a| a.iter().find(|p| p["name"] == s.as_str()))
            .and_then(|p| p["containerPort"].as_i64())
            .unwrap_or_else(|| s.parse().unwrap_or(0)),
        _ => 0,
    }
}

/// Runs one probe; `Err(message)` on failure.
pub(super) fn run_probe(c: &Ctr, probe: &Value, now: Instant, ip: &str) -> Result<(), String> {
    let Some(b) = &c.behavior else {
        return Err("container not running".into());
    };
    let (_, b) = b.resolve();
    let warming = c.warm_until.is_some_and(|w| now < w);
    let (ok_paths, serve_port) = match b {
        Behavior::Serve { ok_paths, port, .. } => (ok_paths.clone(), *port as i64),
        _ => (Vec::new(), -1),
    };
    if let Some(h) = probe.get("httpGet") {
        let port = resolve_port(&c.spec, &h["port"]);
        let path = h["path"].as_str().unwrap_or("/");
        if warming || port != serve_port {
            return Err(format!(
                "Get \"http://{ip}:{port}{path}\": dial tcp {ip}:{port}: connect: connection refused"
            ));
        }
        if ok_paths.iter().any(|p| p == path) {
            return Ok(());
        }
        return Err("HTTP probe failed with statuscode: 404".into());
    }
    if let Some(t) = probe.get("tcpSocket") {
        let port = resolve_port(&c.spec, &t["port"]);
        if warming || port != serve_port {
            return Err(format!("dial tcp {ip}:{port}: connect: connection refused"));
        }
        return Ok(());
    }
    Ok(())
}
