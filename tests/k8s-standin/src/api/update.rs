//! Writes to existing objects: PUT, the PATCH flavours, server-side apply,
//! status-subresource writes, and the internal read-modify-write used by the
//! controllers; with no-op detection and deletion once the last finalizer goes.

use serde_json::{Value, json};

use super::*;

impl Api {
    /// Writes `f(live)` as is: no defaulting, validation or managed-fields
    /// change (the scheduler's binding subresource does this).
    pub fn modify_raw(
        &self,
        res: &'static Resource,
        ns: &str,
        name: &str,
        f: impl FnOnce(&Value) -> Option<Value>,
    ) -> ApiResult<Option<Value>> {
        let mut st = self.lock();
        let key = Key::new(res, ns, name);
        let Some(live) = st.objects.get(&key).cloned() else {
            return Err(status::not_found(res, name));
        };
        let Some(new) = f(&live) else {
            return Ok(None);
        };
        Ok(Some(self.store_modified(&mut st, res, &live, new)))
    }

    /// Stores `new` over `old` unless nothing changed; handles deletion once the
    /// last finalizer goes. Returns the stored (or unchanged) object.
    pub(super) fn commit_update(
        &self,
        st: &mut State,
        res: &'static Resource,
        old: &Value,
        mut new: Value,
        dry_run: bool,
    ) -> Value {
        if new == *old {
            return old.clone();
        }
        if dry_run {
            return new;
        }
        let ns = meta_str(old, "namespace");
        let name = meta_str(old, "name");
        let key = Key::new(res, &ns, &name);
        let rv = st.bump();
        if is_deleting(&new)
            && !has_finalizers(res, &new)
            && (res.kind != "Pod"
                || new
                    .pointer("/metadata/deletionGracePeriodSeconds")
                    .and_then(|g| g.as_i64())
                    == Some(0))
        {
            // The last finalizer went: the object goes, as it was stored.
            let mut gone = old.clone();
            gone["metadata"]["resourceVersion"] = json!(rv.to_string());
            st.objects.remove(&key);
            st.publish(Change {
                rv,
                res,
                namespace: ns,
                kind: "DELETED",
                object: gone.clone(),
                old: Some(old.clone()),
            });
            return gone;
        }
        new["metadata"]["resourceVersion"] = json!(rv.to_string());
        st.objects.insert(key, new.clone());
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

    /// Carries system-owned metadata over from `live` and resets the part the
    /// endpoint does not write (status on the main resource, the rest on /status).
    pub(super) fn prepare_update(
        res: &Resource,
        live: &Value,
        mut new: Value,
        subresource: &str,
    ) -> Value {
        if subresource == "status" {
            let mut out = live.clone();
            out["status"] = new.get("status").cloned().unwrap_or(json!({}));
            match new.pointer("/metadata/annotations") {
                Some(a) => out["metadata"]["annotations"] = a.clone(),
                None => {
                    if let Some(m) = out["metadata"].as_object_mut() {
                        m.remove("annotations");
                    }
                }
            }
            if let Some(mf) = new.pointer("/metadata/managedFields") {
                out["metadata"]["managedFields"] = mf.clone();
            }
            return out;
        }
        new["kind"] = json!(res.kind);
        new["apiVersion"] = json!(res.api_version());
        if !new.get("metadata").is_some_and(|m| m.is_object()) {
            new["metadata"] = json!({});
        }
        for k in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "resourceVersion",
        ] {
            match live["metadata"].get(k) {
                Some(v) => new["metadata"][k] = v.clone(),
                None => {
                    if let Some(m) = new["metadata"].as_object_mut() {
                        m.remove(k);
                    }
                }
            }
        }
        if res.status_subresource {
            match live.get("status") {
                Some(s) => new["status"] = s.clone(),
                None => {
                    if let Some(m) = new.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
        }
        if res.kind == "Pod" {
            // Pod spec is mostly immutable; keep what the server and scheduler own.
            for k in [
                "nodeName",
                "serviceAccount",
                "volumes",
                "tolerations",
                "priority",
                "preemptionPolicy",
            ] {
                if let Some(v) = live["spec"].get(k)
                    && new["spec"].get(k).is_none()
                {
                    new["spec"][k] = v.clone();
                }
            }
        }
        if res.kind == "Namespace"
            && let Some(f) = live.pointer("/spec/finalizers")
        {
            util::set_path(&mut new, &["spec", "finalizers"], f.clone());
        }
        new
    }

    pub(super) fn bump_generation(res: &Resource, live: &Value, new: &mut Value) {
        if res.generation && live.get("spec") != new.get("spec") {
            let g = live
                .pointer("/metadata/generation")
                .and_then(|g| g.as_i64())
                .unwrap_or(0);
            new["metadata"]["generation"] = json!(g + 1);
        }
    }

    /// Finishes a non-apply write of `new` over `live`: defaults, validation,
    /// generation, managed fields (Update operation), commit.
    pub(super) fn finish_update(
        &self,
        st: &mut State,
        res: &'static Resource,
        live: &Value,
        new: Value,
        req: &Req,
    ) -> ApiResult<Value> {
        let now = now_rfc3339();
        let sent = Managers::decode(&new);
        let reset_managed = new
            .pointer("/metadata/managedFields")
            .and_then(|m| m.as_array())
            .is_some_and(|a| a.len() == 1 && a[0].as_object().is_some_and(|o| o.is_empty()));
        let mut new = Self::prepare_update(res, live, new, &req.subresource);
        apply_defaults(res.kind, &mut new);
        validate_update(res, live, &new)?;
        Self::bump_generation(res, live, &mut new);
        let base = if reset_managed {
            Managers::default()
        } else if !sent.0.is_empty() && req.subresource.is_empty() {
            sent
        } else {
            Managers::decode(live)
        };
        let ignored = ignored_fields(res.status_subresource, &req.subresource);
        let w = Writer {
            manager: &req.manager,
            api_version: &res.api_version(),
            subresource: &req.subresource,
            now: &now,
        };
        let managers = managed::update(res.kind, live, &new, &base, &w, &ignored);
        managers.encode_into(&mut new);
        Ok(self.commit_update(st, res, live, new, req.dry_run))
    }

    /// PUT.
    pub fn replace(
        &self,
        res: &'static Resource,
        ns: &str,
        name: &str,
        body: Value,
        req: &Req,
    ) -> ApiResult<Value> {
        Self::check_type(res, &body)?;
        let body_name = meta_str(&body, "name");
        if !body_name.is_empty() && body_name != name {
            return Err(status::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let mut st = self.lock();
        let key = Key::new(res, ns, name);
        let Some(live) = st.objects.get(&key).cloned() else {
            if res.kind == "Lease" && req.subresource.is_empty() {
                let mut body = body;
                util::set_path(&mut body, &["metadata", "name"], json!(name));
                return self.create_locked(&mut st, res, ns, body, req, None);
            }
            return Err(status::not_found(res, name));
        };
        let rv = meta_str(&body, "resourceVersion");
        if !rv.is_empty() && rv != meta_str(&live, "resourceVersion") {
            return Err(status::conflict_modified(res, name));
        }
        let uid = meta_str(&body, "uid");
        if !uid.is_empty() && uid != meta_str(&live, "uid") {
            return Err(status::conflict_uid(
                res,
                name,
                &uid,
                &meta_str(&live, "uid"),
            ));
        }
        self.finish_update(&mut st, res, &live, body, req)
    }

    /// PATCH. Returns the object and whether it was created (apply only).
    pub fn patch(
        &self,
        res: &'static Resource,
        ns: &str,
        name: &str,
        ptype: PatchType,
        body: &[u8],
        req: &Req,
    ) -> ApiResult<(Value, bool)> {
        if ptype == PatchType::Apply {
            if req.manager.is_empty() {
                return Err(status::apply_requires_field_manager());
            }
            let text = std::str::from_utf8(body)
                .map_err(|_| status::bad_request("error decoding YAML: invalid UTF-8"))?;
            let config: Value = match serde_json::from_str(text) {
                Ok(v) => v,
                Err(_) => serde_saphyr::from_str(text)
                    .map_err(|e| status::bad_request(format!("error decoding YAML: {e}")))?,
            };
            return self.apply(res, ns, name, config, req);
        }
        let patch: Value = serde_json::from_slice(body)
            .map_err(|e| status::bad_request(format!("error decoding patch: {e}")))?;
        let mut st = self.lock();
        let key = Key::new(res, ns, name);
        let Some(live) = st.objects.get(&key).cloned() else {
            return Err(status::not_found(res, name));
        };
        let patched = match ptype {
            PatchType::Merge => merge_patch(&live, &patch),
            PatchType::Strategic => strategic_merge_patch(res.kind, &live, &patch)?,
            PatchType::Json => json_patch(&live, &patch)?,
            PatchType::Apply => unreachable!("handled above"),
        };
        if let Some(rv) = patch
            .pointer("/metadata/resourceVersion")
            .and_then(|r| r.as_str())
            && rv != meta_str(&live, "resourceVersion")
        {
            return Err(status::conflict_modified(res, name));
        }
        let out = self.finish_update(&mut st, res, &live, patched, req)?;
        Ok((out, false))
    }

    pub(super) fn apply(
        &self,
        res: &'static Resource,
        ns: &str,
        name: &str,
        config: Value,
        req: &Req,
    ) -> ApiResult<(Value, bool)> {
        Self::check_type(res, &config)?;
        let cfg_name = meta_str(&config, "name");
        if !cfg_name.is_empty() && cfg_name != name {
            return Err(status::bad_request(format!(
                "the name of the object ({cfg_name}) does not match the name on the URL ({name})"
            )));
        }
        if config
            .pointer("/metadata/managedFields")
            .is_some_and(|m| !m.is_null())
        {
            return Err(status::bad_request("metadata.managedFields must be nil"));
        }
        let now = now_rfc3339();
        let av = res.api_version();
        let w = Writer {
            manager: &req.manager,
            api_version: &av,
            subresource: &req.subresource,
            now: &now,
        };
        let ignored = ignored_fields(res.status_subresource, &req.subresource);
        let mut st = self.lock();
        let key = Key::new(res, ns, name);
        match st.objects.get(&key).cloned() {
            None => {
                if !req.subresource.is_empty() {
                    return Err(status::not_found(res, name));
                }
                self.check_namespace(&st, res, ns, name)?;
                let mut empty = empty_object(res.kind);
                if let Some(m) = empty.get_mut("status").and_then(|m| m.as_object_mut()) {
                    m.clear();
                }
                let applied = managed::apply(
                    res.kind,
                    &empty,
                    &config,
                    &Managers::default(),
                    &w,
                    req.force,
                    &ignored,
                )
                .map_err(|c| status::apply_conflict(&c))?;
                let mut obj = applied.object;
                util::set_path(&mut obj, &["metadata", "name"], json!(name));
                let created =
                    self.create_locked(&mut st, res, ns, obj, req, Some(applied.managers))?;
                Ok((created, true))
            }
            Some(live) => {
                let want_rv = meta_str(&config, "resourceVersion");
                if !want_rv.is_empty() && want_rv != meta_str(&live, "resourceVersion") {
                    return Err(status::conflict_modified(res, name));
                }
                let mut base = Managers::decode(&live);
                if base.0.is_empty() {
                    let bw = Writer {
                        manager: "before-first-apply",
                        api_version: &av,
                        subresource: "",
                        now: &now,
                    };
                    base = managed::update(
                        res.kind,
                        &empty_object(res.kind),
                        &live,
                        &base,
                        &bw,
                        &ignored_fields(res.status_subresource, ""),
                    );
                }
                let applied =
                    managed::apply(res.kind, &live, &config, &base, &w, req.force, &ignored)
                        .map_err(|c| status::apply_conflict(&c))?;
                let mut new = Self::prepare_update(res, &live, applied.object, &req.subresource);
                apply_defaults(res.kind, &mut new);
                validate_update(res, &live, &new)?;
                Self::bump_generation(res, &live, &mut new);
                let mut managers = applied.managers;
                if strip_managed(&new) != strip_managed(&live) {
                    managed::touch(&mut managers, &req.manager, "Apply", &req.subresource, &now);
                }
                managers.encode_into(&mut new);
                Ok((
                    self.commit_update(&mut st, res, &live, new, req.dry_run),
                    false,
                ))
            }
        }
    }

    /// Internal write used by controllers: read-modify-write of one object with
    /// an Update-operation managed-fields entry. `f` returns `None` to skip.
    pub fn modify(
        &self,
        res: &'static Resource,
        ns: &str,
        name: &str,
        req: &Req,
        f: impl FnOnce(&Value) -> Option<Value>,
    ) -> ApiResult<Option<Value>> {
        let mut st = self.lock();
        let key = Key::new(res, ns, name);
        let Some(live) = st.objects.get(&key).cloned() else {
            return Err(status::not_found(res, name));
        };
        let Some(new) = f(&live) else {
            return Ok(None);
        };
        self.finish_update(&mut st, res, &live, new, req).map(Some)
    }
}
