//! Rollout strategies: rolling update (scale the new ReplicaSet up within
//! maxSurge, old ones down within maxUnavailable, unhealthy first), Recreate,
//! scaling events with proportional scaling, and revision-history cleanup.

use serde_json::{Value, json};

use super::*;

impl Ctx<'_> {
    pub(super) fn cleanup(&self, olds: &[Value]) {
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

    pub(super) fn is_scaling_event(&mut self, rss: &[Value]) -> bool {
        let (new_rs, olds) = self.get_new_rs(rss, false);
        let desired = replicas(&self.d).to_string();
        olds.iter()
            .chain(new_rs.iter())
            .filter(|rs| rs_replicas(rs) > 0)
            .any(|rs| annotation(rs, DESIRED).is_some_and(|a| a != desired))
    }

    /// The `sync` path: scaling (proportionally during a rollout) and status.
    pub(super) fn scale_sync(&mut self, rss: &[Value]) {
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

    pub(super) fn rollout_rolling(&mut self, rss: &[Value]) {
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

    pub(super) fn refresh(&self) -> (Vec<Value>, Option<Value>) {
        let rss = self.owned_replicasets();
        let (new_rs, olds) = self.split(&rss);
        let mut all = olds;
        if let Some(n) = &new_rs {
            all.push(n.clone());
        }
        (all, new_rs)
    }

    pub(super) fn reconcile_old(&self, all: &[Value], olds: &[Value], new_rs: &Value) -> bool {
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

    pub(super) fn rollout_recreate(&mut self, rss: &[Value]) {
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
