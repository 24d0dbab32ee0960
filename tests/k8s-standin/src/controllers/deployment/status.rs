//! Deployment status as `calculateStatus` and `syncRolloutStatus` compute it:
//! counts (zero fields omitted), the Available and Progressing conditions, the
//! progress deadline and its precise requeue.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::*;

impl Ctx<'_> {
    pub(super) fn calculate_status(&self, all: &[Value], new_rs: Option<&Value>) -> Value {
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

    pub(super) fn complete(&self, st: &Value) -> bool {
        let r = replicas(&self.d);
        i(st, "/updatedReplicas") == r
            && i(st, "/replicas") == r
            && i(st, "/availableReplicas") == r
            && i(st, "/observedGeneration") >= i(&self.d, "/metadata/generation")
    }

    pub(super) fn deadline(&self) -> Option<Duration> {
        self.d
            .pointer("/spec/progressDeadlineSeconds")
            .and_then(|p| p.as_i64())
            .filter(|p| *p < i32::MAX as i64)
            .map(|p| Duration::from_secs(p as u64))
    }

    pub(super) fn timed_out(&self, st: &Value) -> bool {
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

    pub(super) fn sync_rollout_status(&mut self, all: &[Value], new_rs: Option<&Value>) {
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

    pub(super) fn requeue_stuck(&self) {
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

    pub(super) fn sync_status_only(&mut self, rss: &[Value]) {
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
}

fn progressing(old: &Value, new: &Value) -> bool {
    let old_old = i(old, "/replicas") - i(old, "/updatedReplicas");
    let new_old = i(new, "/replicas") - i(new, "/updatedReplicas");
    i(new, "/updatedReplicas") > i(old, "/updatedReplicas")
        || new_old < old_old
        || i(new, "/readyReplicas") > i(old, "/readyReplicas")
        || i(new, "/availableReplicas") > i(old, "/availableReplicas")
}
