//! The Deployment controller, after pkg/controller/deployment: ReplicaSets
//! named by pod-template hash, revision annotations, rolling updates with
//! maxSurge/maxUnavailable, Recreate, proportional scaling, history cleanup,
//! and status with the Available/Progressing conditions and their messages.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::events::Source;
use super::{Env, Work, meta};
use crate::api::{DeleteOpts, Req};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::util::{fnv32a, now_rfc3339, safe_encode};

const MANAGER: &str = "kube-controller-manager";
const REVISION: &str = "deployment.kubernetes.io/revision";
const DESIRED: &str = "deployment.kubernetes.io/desired-replicas";
const MAX: &str = "deployment.kubernetes.io/max-replicas";

fn i(v: &Value, p: &str) -> i64 {
    v.pointer(p).and_then(|x| x.as_i64()).unwrap_or(0)
}

fn replicas(d: &Value) -> i64 {
    d.pointer("/spec/replicas")
        .and_then(|x| x.as_i64())
        .unwrap_or(1)
}

fn rs_replicas(rs: &Value) -> i64 {
    i(rs, "/spec/replicas")
}

/// Resolves an int-or-percent against `total`, rounding up or down.
pub fn scaled_value(v: &Value, total: i64, round_up: bool) -> i64 {
    match v {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(s) => {
            let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            let x = pct * total;
            if round_up { (x + 99) / 100 } else { x / 100 }
        }
        _ => 0,
    }
}

fn is_rolling(d: &Value) -> bool {
    d.pointer("/spec/strategy/type").and_then(|t| t.as_str()) == Some("RollingUpdate")
}

/// (maxSurge, maxUnavailable) as ResolveFenceposts computes them.
fn fenceposts(d: &Value) -> (i64, i64) {
    let desired = replicas(d);
    let ru = d
        .pointer("/spec/strategy/rollingUpdate")
        .cloned()
        .unwrap_or(json!({}));
    let surge = scaled_value(ru.get("maxSurge").unwrap_or(&json!(0)), desired, true);
    let mut unavailable = scaled_value(
        ru.get("maxUnavailable").unwrap_or(&json!(0)),
        desired,
        false,
    );
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    (surge, unavailable)
}

fn max_surge(d: &Value) -> i64 {
    if !is_rolling(d) {
        return 0;
    }
    fenceposts(d).0
}

fn max_unavailable(d: &Value) -> i64 {
    let desired = replicas(d);
    if !is_rolling(d) || desired == 0 {
        return 0;
    }
    fenceposts(d).1.min(desired)
}

/// The pod-template hash of a template (FNV-32a, safe-encoded).
pub fn template_hash(template: &Value, collision: Option<i64>) -> String {
    let mut data = template.to_string();
    if let Some(c) = collision {
        data.push_str(&c.to_string());
    }
    safe_encode(&fnv32a(data.as_bytes()).to_string())
}

fn without_hash(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(l) = t
        .pointer_mut("/metadata/labels")
        .and_then(|l| l.as_object_mut())
    {
        l.remove("pod-template-hash");
    }
    t
}

fn revision(rs: &Value) -> i64 {
    rs.pointer(&format!(
        "/metadata/annotations/{}",
        REVISION.replace('/', "~1")
    ))
    .and_then(|r| r.as_str())
    .and_then(|r| r.parse().ok())
    .unwrap_or(0)
}

fn annotation<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.pointer("/metadata/annotations")
        .and_then(|a| a.get(k))
        .and_then(|x| x.as_str())
}

fn condition<'a>(status: &'a Value, t: &str) -> Option<&'a Value> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == t)
}

fn new_condition(t: &str, status: &str, reason: &str, message: &str) -> Value {
    let now = now_rfc3339();
    json!({"type": t, "status": status, "lastUpdateTime": now, "lastTransitionTime": now, "reason": reason, "message": message})
}

/// SetDeploymentCondition: no-op if status and reason are unchanged; keeps the
/// transition time if the status is unchanged; moves the condition to the end.
fn set_condition(status: &mut Value, mut c: Value) {
    let t = c["type"].as_str().unwrap_or("").to_string();
    if let Some(cur) = condition(status, &t) {
        if cur["status"] == c["status"] && cur["reason"] == c["reason"] {
            return;
        }
        if cur["status"] == c["status"] {
            c["lastTransitionTime"] = cur["lastTransitionTime"].clone();
        }
    }
    remove_condition(status, &t);
    match status["conditions"].as_array_mut() {
        Some(a) => a.push(c),
        None => status["conditions"] = json!([c]),
    }
}

fn remove_condition(status: &mut Value, t: &str) {
    if let Some(a) = status["conditions"].as_array_mut() {
        a.retain(|c| c["type"] != t);
        if a.is_empty()
            && let Some(m) = status.as_object_mut()
        {
            m.remove("conditions");
        }
    }
}

struct Ctx<'a> {
    env: &'a Env,
    ns: String,
    d: Value,
}

impl Ctx<'_> {
    fn name(&self) -> &str {
        meta(&self.d, "name")
    }

    fn event(&self, reason: &str, msg: &str) {
        self.env.recorder.record(
            &self.env.api,
            &self.d,
            "Normal",
            reason,
            msg,
            Source::Controller("deployment-controller"),
            None,
        );
    }

    fn owned_replicasets(&self) -> Vec<Value> {
        let uid = meta(&self.d, "uid");
        let (items, _) = self.env.api.list(
            self.env.res("ReplicaSet"),
            Some(&self.ns),
            &LabelSelector::default(),
            &FieldSelector::default(),
        );
        let mut out: Vec<Value> = items
            .into_iter()
            .filter(|rs| {
                rs.pointer("/metadata/ownerReferences")
                    .and_then(|a| a.as_array())
                    .is_some_and(|a| a.iter().any(|r| r["uid"] == uid && r["controller"] == true))
            })
            .collect();
        out.sort_by(|a, b| {
            meta(a, "creationTimestamp")
                .cmp(meta(b, "creationTimestamp"))
                .then(meta(a, "name").cmp(meta(b, "name")))
        });
        out
    }

    /// Splits into (new, olds); the new one matches the current template (oldest wins).
    fn split(&self, rss: &[Value]) -> (Option<Value>, Vec<Value>) {
        let tmpl = &self.d["spec"]["template"];
        let mut new = None;
        let mut olds = Vec::new();
        for rs in rss {
            if new.is_none() && without_hash(&rs["spec"]["template"]) == *tmpl {
                new = Some(rs.clone());
            } else {
                olds.push(rs.clone());
            }
        }
        (new, olds)
    }

    fn update_status(&mut self, f: impl FnOnce(&mut Value)) {
        let mut d = self.d.clone();
        f(&mut d);
        if d == self.d {
            return;
        }
        let status = d["status"].clone();
        let annotations = d.pointer("/metadata/annotations").cloned();
        let uid = meta(&self.d, "uid").to_string();
        let old_prog = condition(&self.d["status"], "Progressing").cloned();
        let new_prog = condition(&status, "Progressing").cloned();
        if new_prog.is_some() && old_prog != new_prog {
            self.env
                .progress_marks
                .lock()
                .expect("marks mutex poisoned")
                .insert(uid, Instant::now());
        }
        let res = self.env.res("Deployment");
        let r = self.env.api.modify(
            res,
            &self.ns,
            meta(&self.d, "name"),
            &Req::status(MANAGER),
            |live| {
                let mut n = live.clone();
                n["status"] = status;
                if let Some(a) = annotations {
                    n["metadata"]["annotations"] = a;
                }
                Some(n)
            },
        );
        if let Ok(Some(v)) = r {
            self.d = v;
        }
    }

    /// Sets the revision annotation on the deployment (via status, like the controller).
    fn sync_revision(&mut self, rev: &str) {
        if annotation(&self.d, REVISION) == Some(rev) {
            return;
        }
        let rev = rev.to_string();
        self.update_status(|d| {
            let a = crate::util::path_mut(d, &["metadata", "annotations"]);
            if !a.is_object() {
                *a = json!({});
            }
            a[REVISION] = json!(rev);
        });
    }

    fn scale_rs(&self, rs: &Value, to: i64, op: &str) -> bool {
        let desired = replicas(&self.d);
        let max = desired + max_surge(&self.d);
        let size_change = rs_replicas(rs) != to;
        let ann_change = annotation(rs, DESIRED) != Some(&desired.to_string())
            || annotation(rs, MAX) != Some(&max.to_string());
        if !size_change && !ann_change {
            return false;
        }
        let res = self.env.res("ReplicaSet");
        let r = self
            .env
            .api
            .modify(res, &self.ns, meta(rs, "name"), &Req::by(MANAGER), |live| {
                let mut n = live.clone();
                n["spec"]["replicas"] = json!(to);
                let a = crate::util::path_mut(&mut n, &["metadata", "annotations"]);
                if !a.is_object() {
                    *a = json!({});
                }
                a[DESIRED] = json!(desired.to_string());
                a[MAX] = json!(max.to_string());
                Some(n)
            });
        if r.is_ok() && size_change {
            self.event(
                "ScalingReplicaSet",
                &format!("Scaled {op} replica set {} to {to}", meta(rs, "name")),
            );
            return true;
        }
        false
    }

    fn scale_and_record(&self, rs: &Value, to: i64) -> bool {
        if rs_replicas(rs) == to {
            return false;
        }
        let op = if rs_replicas(rs) < to { "up" } else { "down" };
        self.scale_rs(rs, to, op)
    }

    /// NewRSNewReplicas.
    fn new_rs_new_replicas(&self, all: &[Value], new_rs: &Value) -> i64 {
        let desired = replicas(&self.d);
        if !is_rolling(&self.d) {
            return desired;
        }
        let surge = scaled_value(
            self.d
                .pointer("/spec/strategy/rollingUpdate/maxSurge")
                .unwrap_or(&json!(0)),
            desired,
            true,
        );
        let current: i64 = all.iter().map(rs_replicas).sum();
        let max_total = desired + surge;
        if current >= max_total {
            return rs_replicas(new_rs);
        }
        let up = (max_total - current).min(desired - rs_replicas(new_rs));
        rs_replicas(new_rs) + up
    }

    /// getNewReplicaSet: finds (syncing annotations) or creates the new ReplicaSet.
    fn get_new_rs(&mut self, rss: &[Value], create: bool) -> (Option<Value>, Vec<Value>) {
        let (existing, olds) = self.split(rss);
        let max_old = olds.iter().map(revision).max().unwrap_or(0);
        let new_revision = (max_old + 1).to_string();
        if let Some(rs) = existing {
            let mut rs = rs;
            if revision(&rs) < max_old + 1 {
                let res = self.env.res("ReplicaSet");
                let nr = new_revision.clone();
                if let Ok(Some(v)) = self.env.api.modify(
                    res,
                    &self.ns,
                    meta(&rs, "name"),
                    &Req::by(MANAGER),
                    |live| {
                        let mut n = live.clone();
                        let a = crate::util::path_mut(&mut n, &["metadata", "annotations"]);
                        if !a.is_object() {
                            *a = json!({});
                        }
                        a[REVISION] = json!(nr);
                        Some(n)
                    },
                ) {
                    rs = v;
                }
            }
            let rev = annotation(&rs, REVISION).unwrap_or("").to_string();
            self.sync_revision(&rev);
            if condition(&self.d["status"], "Progressing").is_none()
                && self.d.pointer("/spec/progressDeadlineSeconds").is_some()
            {
                let msg = format!("Found new replica set \"{}\"", meta(&rs, "name"));
                self.update_status(|d| {
                    set_condition(
                        &mut d["status"],
                        new_condition("Progressing", "True", "FoundNewReplicaSet", &msg),
                    )
                });
            }
            return (Some(rs), olds);
        }
        if !create {
            return (None, olds);
        }
        let collision = self
            .d
            .pointer("/status/collisionCount")
            .and_then(|c| c.as_i64());
        let hash = template_hash(&self.d["spec"]["template"], collision);
        let mut template = self.d["spec"]["template"].clone();
        crate::util::path_mut(&mut template, &["metadata", "labels"])["pod-template-hash"] =
            json!(hash);
        let mut selector = self.d["spec"]["selector"].clone();
        crate::util::path_mut(&mut selector, &["matchLabels"])["pod-template-hash"] = json!(hash);
        let name = format!("{}-{}", self.name(), hash);
        let desired = replicas(&self.d);
        let mut rs = json!({
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": name,
                "namespace": self.ns,
                "labels": template["metadata"]["labels"],
                "annotations": {},
                "ownerReferences": [{
                    "apiVersion": "apps/v1", "kind": "Deployment", "name": self.name(),
                    "uid": meta(&self.d, "uid"), "controller": true, "blockOwnerDeletion": true
                }]
            },
            "spec": {"replicas": 0, "selector": selector, "template": template}
        });
        if let Some(mrs) = self
            .d
            .pointer("/spec/minReadySeconds")
            .filter(|m| m.as_i64().unwrap_or(0) > 0)
        {
            rs["spec"]["minReadySeconds"] = mrs.clone();
        }
        if let Some(a) = self
            .d
            .pointer("/metadata/annotations")
            .and_then(|a| a.as_object())
        {
            for (k, v) in a {
                if k != REVISION
                    && k != "kubectl.kubernetes.io/last-applied-configuration"
                    && k != "deployment.kubernetes.io/revision-history"
                    && k != DESIRED
                    && k != MAX
                {
                    rs["metadata"]["annotations"][k] = v.clone();
                }
            }
        }
        rs["metadata"]["annotations"][DESIRED] = json!(desired.to_string());
        rs["metadata"]["annotations"][MAX] = json!((desired + max_surge(&self.d)).to_string());
        rs["metadata"]["annotations"][REVISION] = json!(new_revision);
        let mut all = olds.clone();
        all.push(rs.clone());
        let count = self.new_rs_new_replicas(&all, &rs);
        rs["spec"]["replicas"] = json!(count);
        let res = self.env.res("ReplicaSet");
        let created = match self.env.api.create(res, &self.ns, rs, &Req::by(MANAGER)) {
            Ok(v) => v,
            Err(e) if e.code == 409 => {
                // Hash collision or a stale view: bump collisionCount and retry later.
                if let Ok(existing) = self.env.api.get(res, &self.ns, &name)
                    && without_hash(&existing["spec"]["template"]) != self.d["spec"]["template"]
                {
                    let c = collision.unwrap_or(0) + 1;
                    self.update_status(|d| d["status"]["collisionCount"] = json!(c));
                    self.env
                        .now(Work::Deployment(self.ns.clone(), self.name().to_string()));
                }
                return (None, olds);
            }
            Err(_) => return (None, olds),
        };
        if count > 0 {
            self.event(
                "ScalingReplicaSet",
                &format!("Scaled up replica set {name} to {count}"),
            );
        }
        let msg = format!("Created new replica set \"{name}\"");
        let has_deadline = self.d.pointer("/spec/progressDeadlineSeconds").is_some();
        let rev = new_revision.clone();
        self.update_status(|d| {
            let a = crate::util::path_mut(d, &["metadata", "annotations"]);
            if !a.is_object() {
                *a = json!({});
            }
            a[REVISION] = json!(rev);
            if has_deadline {
                set_condition(
                    &mut d["status"],
                    new_condition("Progressing", "True", "NewReplicaSetCreated", &msg),
                );
            }
        });
        (Some(created), olds)
    }

    fn calculate_status(&self, all: &[Value], new_rs: Option<&Value>) -> Value {
        let sum = |p: &str, rss: &[&Value]| -> i64 { rss.iter().map(|r| i(r, p)).sum() };
        let refs: Vec<&Value> = all.iter().collect();
        let available = sum("/status/availableReplicas", &refs);
        let total: i64 = all.iter().map(rs_replicas).sum();
        let unavailable = (total - available).max(0);
        let mut st = json!({"observedGeneration": i(&self.d, "/metadata/generation")});
        let put = |st: &mut Value, k: &str, v: i64| {
            if v != 0 {
                st[k] = json!(v);
            }
        };
        put(&mut st, "replicas", sum("/status/replicas", &refs));
        put(
            &mut st,
            "updatedReplicas",
            new_rs.map(|r| i(r, "/status/replicas")).unwrap_or(0),
        );
        put(
            &mut st,
            "readyReplicas",
            sum("/status/readyReplicas", &refs),
        );
        put(&mut st, "availableReplicas", available);
        put(&mut st, "unavailableReplicas", unavailable);
        if let Some(c) = self.d.pointer("/status/collisionCount") {
            st["collisionCount"] = c.clone();
        }
        if let Some(c) = self.d.pointer("/status/conditions") {
            st["conditions"] = c.clone();
        }
        if available >= replicas(&self.d) - max_unavailable(&self.d) {
            set_condition(
                &mut st,
                new_condition(
                    "Available",
                    "True",
                    "MinimumReplicasAvailable",
                    "Deployment has minimum availability.",
                ),
            );
        } else {
            set_condition(
                &mut st,
                new_condition(
                    "Available",
                    "False",
                    "MinimumReplicasUnavailable",
                    "Deployment does not have minimum availability.",
                ),
            );
        }
        st
    }

    fn complete(&self, st: &Value) -> bool {
        let r = replicas(&self.d);
        i(st, "/updatedReplicas") == r
            && i(st, "/replicas") == r
            && i(st, "/availableReplicas") == r
            && i(st, "/observedGeneration") >= i(&self.d, "/metadata/generation")
    }

    fn deadline(&self) -> Option<Duration> {
        self.d
            .pointer("/spec/progressDeadlineSeconds")
            .and_then(|p| p.as_i64())
            .filter(|p| *p < i32::MAX as i64)
            .map(|p| Duration::from_secs(p as u64))
    }

    fn timed_out(&self, st: &Value) -> bool {
        let Some(deadline) = self.deadline() else {
            return false;
        };
        let Some(c) = condition(st, "Progressing") else {
            return false;
        };
        match c["reason"].as_str() {
            Some("NewReplicaSetAvailable") => return false,
            Some("ProgressDeadlineExceeded") => return true,
            _ => {}
        }
        let mark = self
            .env
            .progress_marks
            .lock()
            .expect("marks mutex poisoned")
            .get(meta(&self.d, "uid"))
            .copied();
        match mark {
            Some(m) => m + self.env.clock.scaled(deadline) < Instant::now(),
            None => false,
        }
    }

    fn sync_rollout_status(&mut self, all: &[Value], new_rs: Option<&Value>) {
        let mut st = self.calculate_status(all, new_rs);
        let has_deadline =
            self.deadline().is_some() || self.d.pointer("/spec/progressDeadlineSeconds").is_some();
        if !has_deadline {
            remove_condition(&mut st, "Progressing");
        }
        let old = self.d["status"].clone();
        let cur = condition(&old, "Progressing").cloned();
        let complete_dep = i(&st, "/replicas") == i(&st, "/updatedReplicas")
            && cur
                .as_ref()
                .is_some_and(|c| c["reason"] == "NewReplicaSetAvailable");
        if has_deadline && !complete_dep {
            if self.complete(&st) {
                let msg = match new_rs {
                    Some(rs) => format!(
                        "ReplicaSet \"{}\" has successfully progressed.",
                        meta(rs, "name")
                    ),
                    None => format!(
                        "Deployment \"{}\" has successfully progressed.",
                        self.name()
                    ),
                };
                set_condition(
                    &mut st,
                    new_condition("Progressing", "True", "NewReplicaSetAvailable", &msg),
                );
            } else if progressing(&old, &st) {
                let msg = match new_rs {
                    Some(rs) => format!("ReplicaSet \"{}\" is progressing.", meta(rs, "name")),
                    None => format!("Deployment \"{}\" is progressing.", self.name()),
                };
                let mut c = new_condition("Progressing", "True", "ReplicaSetUpdated", &msg);
                if let Some(cur) = &cur {
                    if cur["status"] == "True" {
                        c["lastTransitionTime"] = cur["lastTransitionTime"].clone();
                    }
                    remove_condition(&mut st, "Progressing");
                }
                set_condition(&mut st, c);
            } else if self.timed_out(&st) {
                let msg = match new_rs {
                    Some(rs) => format!(
                        "ReplicaSet \"{}\" has timed out progressing.",
                        meta(rs, "name")
                    ),
                    None => format!("Deployment \"{}\" has timed out progressing.", self.name()),
                };
                set_condition(
                    &mut st,
                    new_condition("Progressing", "False", "ProgressDeadlineExceeded", &msg),
                );
            }
        }
        if st != old {
            self.update_status(|d| d["status"] = st);
        }
        self.requeue_stuck();
    }

    fn requeue_stuck(&self) {
        let Some(deadline) = self.deadline() else {
            return;
        };
        let st = &self.d["status"];
        let Some(c) = condition(st, "Progressing") else {
            return;
        };
        if self.complete(st)
            || c["reason"] == "ProgressDeadlineExceeded"
            || c["reason"] == "NewReplicaSetAvailable"
        {
            return;
        }
        let mark = self
            .env
            .progress_marks
            .lock()
            .expect("marks mutex poisoned")
            .get(meta(&self.d, "uid"))
            .copied();
        let Some(mark) = mark else { return };
        let real_deadline = mark + self.env.clock.scaled(deadline);
        let now = Instant::now();
        let wait_real = real_deadline.saturating_duration_since(now) + Duration::from_millis(5);
        let scale = self.env.clock.get();
        let sim = if scale > 0.0 {
            wait_real.div_f64(scale)
        } else {
            Duration::ZERO
        };
        self.env.after(
            sim,
            Work::Deployment(self.ns.clone(), self.name().to_string()),
        );
    }

    fn sync_status_only(&mut self, rss: &[Value]) {
        let (new_rs, olds) = self.get_new_rs(rss, false);
        let mut all = olds;
        if let Some(n) = &new_rs {
            all.push(n.clone());
        }
        let st = self.calculate_status(&all, new_rs.as_ref());
        if st != self.d["status"] {
            self.update_status(|d| d["status"] = st);
        }
    }

    fn cleanup(&self, olds: &[Value]) {
        let limit = self
            .d
            .pointer("/spec/revisionHistoryLimit")
            .and_then(|l| l.as_i64())
            .unwrap_or(10);
        let mut cleanable: Vec<&Value> = olds
            .iter()
            .filter(|rs| {
                rs_replicas(rs) == 0
                    && i(rs, "/status/replicas") == 0
                    && rs.pointer("/metadata/deletionTimestamp").is_none()
            })
            .collect();
        let diff = cleanable.len() as i64 - limit;
        if diff <= 0 {
            return;
        }
        cleanable.sort_by_key(|rs| revision(rs));
        for rs in cleanable.into_iter().take(diff as usize) {
            let _ = self.env.api.delete(
                self.env.res("ReplicaSet"),
                &self.ns,
                meta(rs, "name"),
                &DeleteOpts::default(),
            );
        }
    }

    fn is_scaling_event(&mut self, rss: &[Value]) -> bool {
        let (new_rs, olds) = self.get_new_rs(rss, false);
        let desired = replicas(&self.d).to_string();
        olds.iter()
            .chain(new_rs.iter())
            .filter(|rs| rs_replicas(rs) > 0)
            .any(|rs| annotation(rs, DESIRED).is_some_and(|a| a != desired))
    }

    /// The `sync` path: scaling (proportionally during a rollout) and status.
    fn scale_sync(&mut self, rss: &[Value]) {
        let (new_rs, olds) = self.get_new_rs(rss, false);
        let desired = replicas(&self.d);
        let active: Vec<&Value> = olds
            .iter()
            .chain(new_rs.iter())
            .filter(|rs| rs_replicas(rs) > 0)
            .collect();
        if active.len() <= 1 {
            let target = active.first().copied().or(new_rs.as_ref()).or(olds.last());
            if let Some(rs) = target
                && rs_replicas(rs) != desired
            {
                self.scale_and_record(rs, desired);
            }
        } else if new_rs.as_ref().is_some_and(|n| {
            rs_replicas(n) == desired && i(n, "/status/availableReplicas") == desired
        }) {
            for rs in olds.iter().filter(|rs| rs_replicas(rs) > 0) {
                self.scale_and_record(rs, 0);
            }
        } else if is_rolling(&self.d) {
            let current: i64 = active.iter().map(|rs| rs_replicas(rs)).sum();
            let allowed = if desired > 0 {
                desired + max_surge(&self.d)
            } else {
                0
            };
            let to_add = allowed - current;
            let mut sorted: Vec<&Value> = active.clone();
            sorted.sort_by_key(|rs| std::cmp::Reverse(rs_replicas(rs)));
            let mut added = 0;
            let mut sizes: Vec<i64> = Vec::new();
            for rs in &sorted {
                let prop = if current > 0 {
                    rs_replicas(rs) * to_add / current
                } else {
                    0
                };
                sizes.push(rs_replicas(rs) + prop);
                added += prop;
            }
            if let Some(first) = sizes.first_mut() {
                *first = (*first + to_add - added).max(0);
            }
            let op = if to_add > 0 { "up" } else { "down" };
            for (rs, size) in sorted.iter().zip(sizes) {
                self.scale_rs(rs, size, op);
            }
        }
        let rss = self.owned_replicasets();
        let (new_rs, olds) = self.split(&rss);
        let mut all = olds;
        if let Some(n) = &new_rs {
            all.push(n.clone());
        }
        let st = self.calculate_status(&all, new_rs.as_ref());
        if st != self.d["status"] {
            self.update_status(|d| d["status"] = st);
        }
    }

    fn rollout_rolling(&mut self, rss: &[Value]) {
        let (new_rs, olds) = self.get_new_rs(rss, true);
        let Some(new_rs) = new_rs else { return };
        let mut all = olds.clone();
        all.push(new_rs.clone());
        // Scale up.
        let desired = replicas(&self.d);
        let scaled_up = if rs_replicas(&new_rs) == desired {
            false
        } else if rs_replicas(&new_rs) > desired {
            self.scale_and_record(&new_rs, desired)
        } else {
            let n = self.new_rs_new_replicas(&all, &new_rs);
            self.scale_and_record(&new_rs, n)
        };
        if scaled_up {
            let (all, new_rs) = self.refresh();
            self.sync_rollout_status(&all, new_rs.as_ref());
            return;
        }
        // Scale down.
        if self.reconcile_old(&all, &olds, &new_rs) {
            let (all, new_rs) = self.refresh();
            self.sync_rollout_status(&all, new_rs.as_ref());
            return;
        }
        let pre = self.calculate_status(&all, Some(&new_rs));
        if self.complete(&pre) && self.complete(&self.d["status"]) {
            self.cleanup(&olds);
        }
        self.sync_rollout_status(&all, Some(&new_rs));
    }

    fn refresh(&self) -> (Vec<Value>, Option<Value>) {
        let rss = self.owned_replicasets();
        let (new_rs, olds) = self.split(&rss);
        let mut all = olds;
        if let Some(n) = &new_rs {
            all.push(n.clone());
        }
        (all, new_rs)
    }

    fn reconcile_old(&self, all: &[Value], olds: &[Value], new_rs: &Value) -> bool {
        let old_count: i64 = olds.iter().map(rs_replicas).sum();
        if old_count == 0 {
            return false;
        }
        let all_count: i64 = all.iter().map(rs_replicas).sum();
        let min_available = replicas(&self.d) - max_unavailable(&self.d);
        let new_unavailable = rs_replicas(new_rs) - i(new_rs, "/status/availableReplicas");
        let max_scaled_down = all_count - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return false;
        }
        // Clean up unhealthy replicas first.
        let mut total = 0;
        let mut olds_now: Vec<Value> = olds.to_vec();
        for rs in olds_now.iter_mut() {
            if total >= max_scaled_down {
                break;
            }
            let r = rs_replicas(rs);
            let avail = i(rs, "/status/availableReplicas");
            if r == 0 || r == avail {
                continue;
            }
            let down = (max_scaled_down - total).min(r - avail);
            if self.scale_and_record(rs, r - down) {
                rs["spec"]["replicas"] = json!(r - down);
            }
            total += down;
        }
        // Then scale down healthy ones as far as availability allows.
        let mut all_now: Vec<&Value> = olds_now.iter().collect();
        all_now.push(new_rs);
        let available: i64 = all_now
            .iter()
            .map(|r| i(r, "/status/availableReplicas"))
            .sum();
        if available > min_available {
            let budget = available - min_available;
            let mut done = 0;
            for rs in olds_now.iter() {
                if done >= budget {
                    break;
                }
                let r = rs_replicas(rs);
                if r == 0 {
                    continue;
                }
                let down = r.min(budget - done);
                self.scale_and_record(rs, r - down);
                done += down;
            }
            total += done;
        }
        total > 0
    }

    fn rollout_recreate(&mut self, rss: &[Value]) {
        let (new_rs, olds) = self.get_new_rs(rss, false);
        let mut scaled_down = false;
        for rs in olds.iter().filter(|rs| rs_replicas(rs) > 0) {
            scaled_down |= self.scale_and_record(rs, 0);
        }
        if scaled_down {
            let (all, new_rs) = self.refresh();
            self.sync_rollout_status(&all, new_rs.as_ref());
            return;
        }
        // Wait for old pods to be gone.
        let pods = self.env.res("Pod");
        let (all_pods, _) = self.env.api.list(
            pods,
            Some(&self.ns),
            &LabelSelector::default(),
            &FieldSelector::default(),
        );
        let old_uids: Vec<&str> = olds.iter().map(|r| meta(r, "uid")).collect();
        let old_running = all_pods.iter().any(|p| {
            let phase = p
                .pointer("/status/phase")
                .and_then(|x| x.as_str())
                .unwrap_or("");
            phase != "Failed"
                && phase != "Succeeded"
                && p.pointer("/metadata/ownerReferences")
                    .and_then(|a| a.as_array())
                    .is_some_and(|a| {
                        a.iter()
                            .any(|r| old_uids.contains(&r["uid"].as_str().unwrap_or("")))
                    })
        });
        if old_running {
            let mut all = olds.clone();
            if let Some(n) = &new_rs {
                all.push(n.clone());
            }
            self.sync_rollout_status(&all, new_rs.as_ref());
            return;
        }
        let (new_rs, olds) = match new_rs {
            Some(n) => (Some(n), olds),
            None => self.get_new_rs(rss, true),
        };
        if let Some(n) = &new_rs
            && rs_replicas(n) != replicas(&self.d)
        {
            self.scale_and_record(n, replicas(&self.d));
        }
        if self.complete(&self.d["status"]) {
            self.cleanup(&olds);
        }
        let (all, new_rs) = self.refresh();
        self.sync_rollout_status(&all, new_rs.as_ref());
    }
}

fn progressing(old: &Value, new: &Value) -> bool {
    let old_old = i(old, "/replicas") - i(old, "/updatedReplicas");
    let new_old = i(new, "/replicas") - i(new, "/updatedReplicas");
    i(new, "/updatedReplicas") > i(old, "/updatedReplicas")
        || new_old < old_old
        || i(new, "/readyReplicas") > i(old, "/readyReplicas")
        || i(new, "/availableReplicas") > i(old, "/availableReplicas")
}

/// Reconciles one Deployment.
pub fn sync(env: &Env, ns: &str, name: &str) {
    let res = env.res("Deployment");
    let Ok(d) = env.api.get(res, ns, name) else {
        return;
    };
    let mut c = Ctx {
        env,
        ns: ns.to_string(),
        d,
    };
    let rss = c.owned_replicasets();
    if c.d
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|x| !x.is_null())
    {
        c.sync_status_only(&rss);
        return;
    }
    if c.d.pointer("/spec/paused").and_then(|p| p.as_bool()) == Some(true)
        || c.is_scaling_event(&rss)
    {
        let rss = c.owned_replicasets();
        c.scale_sync(&rss);
        return;
    }
    let rss = c.owned_replicasets();
    if is_rolling(&c.d) {
        c.rollout_rolling(&rss);
    } else {
        c.rollout_recreate(&rss);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_or_percent_rounding() {
        assert_eq!(scaled_value(&json!("25%"), 10, true), 3);
        assert_eq!(scaled_value(&json!("25%"), 10, false), 2);
        assert_eq!(scaled_value(&json!(1), 10, false), 1);
        let d = json!({"spec": {"replicas": 2, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}}});
        assert_eq!(fenceposts(&d), (0, 1));
    }

    #[test]
    fn hash_is_stable_and_safe() {
        let t = json!({"metadata": {"labels": {"app": "x"}}});
        let h = template_hash(&t, None);
        assert_eq!(h, template_hash(&t, None));
        assert!(
            h.chars()
                .all(|c| crate::util::ALPHANUMS.contains(&(c as u8)))
        );
        assert_ne!(h, template_hash(&t, Some(1)));
    }
}
