//! Readiness and liveness probes against an image's behaviour: HTTP GET
//! (200 on the served paths, 404 elsewhere, connection refused on other ports
//! or while starting), TCP, exec (always passes); `Unhealthy` events for
//! every failure. Readiness runs from each instance's start (initial delay,
//! then every period: the real kubelet also probes on every status update
//! until ready). Liveness runs as the kubelet's probe worker does: it ticks
//! every period from the pod's arrival, skips ticks while the instance is
//! younger than `initialDelaySeconds` (whole seconds), and asks for a kill at
//! `failureThreshold` failures in a row — 10 (d)'s kills 9 s after the first
//! start and 10 s after each restart (delay 5, period 2, threshold 3).

use std::time::Instant;

use serde_json::Value;

use super::{CState, Ctr, PodCtx, secs_of};
use crate::controllers::Env;
use crate::controllers::events::Source;
use crate::node::Behavior;
use crate::util::TimeScale;

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

/// Runs one probe at `at`; `Err(message)` on failure.
pub(super) fn run_probe(c: &Ctr, probe: &Value, at: Instant, ip: &str) -> Result<(), String> {
    let Some(b) = &c.behavior else {
        return Err("container not running".into());
    };
    let (_, b) = b.resolve();
    let warming = c.warm_until.is_some_and(|w| at < w);
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

fn unhealthy(env: &Env, ctx: &PodCtx, c: &Ctr, which: &str, message: &str) {
    env.recorder.record(
        &env.api,
        ctx.pod,
        "Warning",
        "Unhealthy",
        &format!("{which} probe failed: {message}"),
        Source::Kubelet(&env.node.name),
        Some(&super::container_ref(c)),
    );
}

/// The readiness probe, if due; no probe means ready once running.
pub(super) fn readiness(env: &Env, ctx: &PodCtx, c: &mut Ctr, now: Instant) {
    let rp = c.spec["readinessProbe"].clone();
    if !rp.is_object() {
        c.ready = true;
        return;
    }
    if c.readiness.next.is_none_or(|t| now < t) {
        return;
    }
    let period = env.clock.secs(secs_of(&rp, "periodSeconds", 10));
    match run_probe(c, &rp, now, &ctx.ip) {
        Ok(()) => {
            c.readiness.succ += 1;
            c.readiness.fail = 0;
            if c.readiness.succ >= rp["successThreshold"].as_i64().unwrap_or(1) {
                c.ready = true;
            }
        }
        Err(m) => {
            c.readiness.fail += 1;
            c.readiness.succ = 0;
            unhealthy(env, ctx, c, "Readiness", &m);
            if c.readiness.fail >= rp["failureThreshold"].as_i64().unwrap_or(3) {
                c.ready = false;
            }
        }
    }
    c.readiness.next = Some(now + period);
}

/// The latest liveness tick at or before `now` on which the running instance
/// is probed (missed ticks are skipped; the next one is scheduled).
fn liveness_tick(clock: &TimeScale, c: &mut Ctr, probe: &Value, now: Instant) -> Option<Instant> {
    let next = c.liveness.next.filter(|n| now >= *n)?;
    let period = clock.secs(secs_of(probe, "periodSeconds", 10));
    let mut tick = next;
    while tick + period <= now {
        tick += period;
    }
    c.liveness.next = Some(tick + period);
    if !matches!(c.state, CState::Running { .. }) || c.stopping.is_some() {
        return None;
    }
    let started = c.started_at.filter(|s| tick >= *s)?;
    let scale = clock.get();
    let age = if scale > 0.0 {
        tick.duration_since(started).as_secs_f64() / scale
    } else {
        f64::INFINITY
    };
    // int32(time.Since(startedAt).Seconds()) < initialDelaySeconds: not yet.
    ((age + 1e-6).floor() >= secs_of(probe, "initialDelaySeconds", 0)).then_some(tick)
}

/// The liveness probe on its due tick; `Some(tick)` when it has failed
/// `failureThreshold` times in a row and the container must be killed.
pub(super) fn liveness(env: &Env, ctx: &PodCtx, c: &mut Ctr, now: Instant) -> Option<Instant> {
    let lp = c.spec["livenessProbe"].clone();
    if !lp.is_object() {
        return None;
    }
    let tick = liveness_tick(&env.clock, c, &lp, now)?;
    match run_probe(c, &lp, tick, &ctx.ip) {
        Ok(()) => {
            c.liveness.fail = 0;
            None
        }
        Err(m) => {
            c.liveness.fail += 1;
            unhealthy(env, ctx, c, "Liveness", &m);
            if c.liveness.fail >= lp["failureThreshold"].as_i64().unwrap_or(3) {
                c.liveness.fail = 0;
                Some(tick)
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::super::{CState, new_container};
    use super::*;

    /// The instants (in simulated seconds from the pod's arrival) of the ticks on
    /// which the liveness probe runs, for an instance started at `started`, up to `until`.
    fn probed_ticks(
        c: &mut Ctr,
        clock: &TimeScale,
        t0: Instant,
        started: u64,
        until: u64,
    ) -> Vec<u64> {
        let ms = |n: u64| t0 + Duration::from_millis(n);
        c.state = CState::Running {
            started_at: String::new(),
        };
        c.started_at = Some(ms(started));
        (started..=until)
            .filter_map(|t| liveness_tick(clock, c, &c.spec["livenessProbe"].clone(), ms(t)))
            .map(|i| i.duration_since(t0).as_millis() as u64)
            .collect()
    }

    #[test]
    fn liveness_ticks_from_the_pods_arrival_after_the_initial_delay() {
        // 10 (d): delay 5, period 2, threshold 3. 1 simulated second = 1 ms.
        let clock = TimeScale::new(0.001);
        let spec = json!({"name": "web", "livenessProbe": {"httpGet": {"path": "/missing-live", "port": 8000},
            "initialDelaySeconds": 5, "periodSeconds": 2, "failureThreshold": 3}});
        let t0 = Instant::now();
        let mut c = new_container(&clock, &spec, t0);
        // Started at 1: probed at 6, 8, 10 -> killed 9 s after its start.
        assert_eq!(probed_ticks(&mut c, &clock, t0, 1, 10), vec![6, 8, 10]);
        // Restarted at 10: ticks at 12 and 14 are too early, probed at 16, 18, 20 -> 10 s.
        assert_eq!(probed_ticks(&mut c, &clock, t0, 10, 20), vec![16, 18, 20]);
    }
}
