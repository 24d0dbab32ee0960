//! DELETE: preconditions, propagation finalizers (foregroundDeletion, orphan),
//! graceful pod deletion with shortened grace periods, namespaces going
//! Terminating, immediate removal with the Success Status or the object.

use serde_json::{Value, json};

use super::*;

impl Api {
    /// DELETE. Returns the HTTP code and body (the object while it lingers, or a Success Status).
    pub fn delete(
        &self,
        res: &'static Resource,
        ns: &str,
        name: &str,
        opts: &DeleteOpts,
    ) -> ApiResult<(u16, Value)> {
        let mut st = self.lock();
        self.delete_locked(&mut st, res, ns, name, opts)
    }

    pub fn delete_locked(
        &self,
        st: &mut State,
        res: &'static Resource,
        ns: &str,
        name: &str,
        opts: &DeleteOpts,
    ) -> ApiResult<(u16, Value)> {
        let key = Key::new(res, ns, name);
        let Some(live) = st.objects.get(&key).cloned() else {
            return Err(status::not_found(res, name));
        };
        if let Some(u) = &opts.precondition_uid
            && *u != meta_str(&live, "uid")
        {
            return Err(status::conflict_uid(res, name, u, &meta_str(&live, "uid")));
        }
        if let Some(rv) = &opts.precondition_rv
            && *rv != meta_str(&live, "resourceVersion")
        {
            return Err(status::conflict_modified(res, name));
        }
        let now = now_rfc3339();
        let mut new = live.clone();
        // Propagation finalizers.
        if let Some(policy) = &opts.propagation {
            let fin = match policy.as_str() {
                "Foreground" => Some("foregroundDeletion"),
                "Orphan" => Some("orphan"),
                _ => None,
            };
            if let Some(f) = fin {
                let list = util::path_mut(&mut new, &["metadata", "finalizers"]);
                if !list.is_array() {
                    *list = json!([]);
                }
                if let Some(a) = list.as_array_mut()
                    && !a.iter().any(|x| x == f)
                {
                    a.push(json!(f));
                }
            }
        }
        if res.kind == "Namespace" && (!is_deleting(&new) || has_finalizers(res, &new)) {
            if !is_deleting(&new) {
                new["metadata"]["deletionTimestamp"] = json!(now);
                new["metadata"]["deletionGracePeriodSeconds"] = json!(0);
                new["status"]["phase"] = json!("Terminating");
            }
            let out = self.commit_update(st, res, &live, new, opts.dry_run);
            return Ok((200, out));
        }
        // Graceful deletion of pods.
        let mut grace = 0i64;
        if res.kind == "Pod" {
            let scheduled = live
                .pointer("/spec/nodeName")
                .and_then(|n| n.as_str())
                .is_some_and(|n| !n.is_empty());
            let phase = live
                .pointer("/status/phase")
                .and_then(|p| p.as_str())
                .unwrap_or("");
            grace = opts
                .grace_period
                .or_else(|| {
                    live.pointer("/spec/terminationGracePeriodSeconds")
                        .and_then(|g| g.as_i64())
                })
                .unwrap_or(30);
            if !scheduled || phase == "Succeeded" || phase == "Failed" {
                grace = 0;
            }
        }
        let finalizing = has_finalizers(res, &new);
        if grace > 0 || finalizing || (res.kind == "Pod" && is_deleting(&live)) {
            let m = &mut new["metadata"];
            let prev_ts = m
                .get("deletionTimestamp")
                .and_then(|d| d.as_str())
                .map(String::from);
            let prev_grace = m.get("deletionGracePeriodSeconds").and_then(|g| g.as_i64());
            match (prev_ts, prev_grace) {
                (Some(ts), Some(pg)) => {
                    if grace < pg {
                        m["deletionTimestamp"] = json!(add_secs(&ts, grace - pg));
                        m["deletionGracePeriodSeconds"] = json!(grace);
                        if grace == 0 && !finalizing && !opts.dry_run {
                            // Shortened to zero: stored once, then removed.
                            let stored = self.store_modified(st, res, &live, new.clone());
                            let rv = st.bump();
                            let mut gone = stored.clone();
                            gone["metadata"]["resourceVersion"] = json!(rv.to_string());
                            st.objects.remove(&key);
                            st.publish(Change {
                                rv,
                                res,
                                namespace: ns.to_string(),
                                kind: "DELETED",
                                object: gone.clone(),
                                old: Some(stored),
                            });
                            return Ok((200, gone));
                        }
                    }
                }
                _ => {
                    m["deletionTimestamp"] = json!(add_secs(&now, grace));
                    m["deletionGracePeriodSeconds"] = json!(grace);
                    if res.generation {
                        let g = m.get("generation").and_then(|g| g.as_i64()).unwrap_or(0);
                        m["generation"] = json!(g + 1);
                    }
                }
            }
            let still_graceful = new
                .pointer("/metadata/deletionGracePeriodSeconds")
                .and_then(|g| g.as_i64())
                .unwrap_or(0)
                > 0;
            if still_graceful || finalizing {
                let out = if opts.dry_run {
                    new
                } else {
                    self.store_modified(st, res, &live, new)
                };
                return Ok((200, out));
            }
        }
        // Immediate removal.
        if opts.dry_run {
            return Ok((
                200,
                status::delete_success(res, name, &meta_str(&live, "uid")),
            ));
        }
        let rv = st.bump();
        let mut gone = live.clone();
        gone["metadata"]["resourceVersion"] = json!(rv.to_string());
        st.objects.remove(&key);
        st.publish(Change {
            rv,
            res,
            namespace: ns.to_string(),
            kind: "DELETED",
            object: gone.clone(),
            old: Some(live.clone()),
        });
        if res.kind == "Pod" {
            return Ok((200, gone));
        }
        Ok((
            200,
            status::delete_success(res, name, &meta_str(&live, "uid")),
        ))
    }

    pub(super) fn store_modified(
        &self,
        st: &mut State,
        res: &'static Resource,
        old: &Value,
        mut new: Value,
    ) -> Value {
        if new == *old {
            return new;
        }
        let rv = st.bump();
        new["metadata"]["resourceVersion"] = json!(rv.to_string());
        let ns = meta_str(old, "namespace");
        st.objects
            .insert(Key::new(res, &ns, &meta_str(old, "name")), new.clone());
        st.publish(Change {
            rv,
            res,
            namespace: ns,
            kind: "MODIFIED",
            object: new.clone(),
            old: Some(old.clone()),
        });
        new
    }

    /// Internal unconditional removal of finalizers-free objects (GC, namespace controller).
    pub fn remove_finalizer(
        &self,
        res: &'static Resource,
        ns: &str,
        name: &str,
        finalizer: &str,
    ) -> ApiResult<()> {
        let mut st = self.lock();
        let key = Key::new(res, ns, name);
        let Some(live) = st.objects.get(&key).cloned() else {
            return Ok(());
        };
        let mut new = live.clone();
        let Some(a) = new
            .pointer_mut("/metadata/finalizers")
            .and_then(|f| f.as_array_mut())
        else {
            return Ok(());
        };
        a.retain(|x| x != finalizer);
        if a.is_empty()
            && let Some(m) = new["metadata"].as_object_mut()
        {
            m.remove("finalizers");
        }
        let req = Req::by("kube-controller-manager");
        self.finish_update(&mut st, res, &live, new, &req)
            .map(|_| ())
    }
}
