//! The Deployment controller, after pkg/controller/deployment: ReplicaSets
//! named by pod-template hash, revision annotations, rolling updates with
//! maxSurge/maxUnavailable, Recreate, proportional scaling, history cleanup,
//! and status with the Available/Progressing conditions and their messages.

mod rollout;
mod status;

use std::time::Instant;

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
    /// checkPausedConditions: Progressing Unknown while paused, and on resume.
    fn check_paused_conditions(&mut self, paused: bool) {
        if self.d.pointer("/spec/progressDeadlineSeconds").is_none() {
            return;
        }
        let reason = condition(&self.d["status"], "Progressing")
            .and_then(|c| c["reason"].as_str())
            .unwrap_or("")
            .to_string();
        let c = if paused && reason != "DeploymentPaused" {
            new_condition(
                "Progressing",
                "Unknown",
                "DeploymentPaused",
                "Deployment is paused",
            )
        } else if !paused && reason == "DeploymentPaused" {
            new_condition(
                "Progressing",
                "Unknown",
                "DeploymentResumed",
                "Deployment is resumed",
            )
        } else {
            return;
        };
        self.update_status(|d| set_condition(&mut d["status"], c));
    }

    pub(super) fn name(&self) -> &str {
        meta(&self.d, "name")
    }

    pub(super) fn event(&self, reason: &str, msg: &str) {
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

    pub(super) fn owned_replicasets(&self) -> Vec<Value> {
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
    pub(super) fn split(&self, rss: &[Value]) -> (Option<Value>, Vec<Value>) {
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

    pub(super) fn update_status(&mut self, f: impl FnOnce(&mut Value)) {
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
    pub(super) fn sync_revision(&mut self, rev: &str) {
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

    pub(super) fn scale_rs(&self, rs: &Value, to: i64, op: &str) -> bool {
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

    pub(super) fn scale_and_record(&self, rs: &Value, to: i64) -> bool {
        if rs_replicas(rs) == to {
            return false;
        }
        let op = if rs_replicas(rs) < to { "up" } else { "down" };
        self.scale_rs(rs, to, op)
    }

    /// NewRSNewReplicas.
    pub(super) fn new_rs_new_replicas(&self, all: &[Value], new_rs: &Value) -> i64 {
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
    pub(super) fn get_new_rs(
        &mut self,
        rss: &[Value],
        create: bool,
    ) -> (Option<Value>, Vec<Value>) {
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
    let paused = c.d.pointer("/spec/paused").and_then(|p| p.as_bool()) == Some(true);
    c.check_paused_conditions(paused);
    if paused || c.is_scaling_event(&rss) {
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
