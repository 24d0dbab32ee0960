//! The API server's storage semantics, shared by the HTTP layer and the
//! in-process controllers: create, replace (PUT), the PATCH flavours including
//! server-side apply, graceful and finalizer-driven delete, get and list; with
//! defaulting, validation, managed fields, generation, resourceVersion
//! preconditions, dryRun and no-op detection.

use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};

use crate::defaults::{admit_pod, apply_defaults, qos_class};
use crate::managed::{self, Managers, Writer, ignored_fields, schema::empty_object};
use crate::patch::{json_patch, merge_patch, strategic_merge_patch};
use crate::resources::{self, Resource};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::status::{self, ApiResult};
use crate::store::{Change, Key, State};
use crate::util::{self, add_secs, now_rfc3339};
use crate::validation::{validate, validate_update};

/// Who writes, and how.
#[derive(Debug, Clone, Default)]
pub struct Req {
    /// Field manager (the `fieldManager` parameter or the user-agent prefix).
    pub manager: String,
    /// "" or "status".
    pub subresource: String,
    pub dry_run: bool,
    pub force: bool,
}

impl Req {
    pub fn by(manager: &str) -> Req {
        Req {
            manager: manager.to_string(),
            ..Req::default()
        }
    }
    pub fn status(manager: &str) -> Req {
        Req {
            manager: manager.to_string(),
            subresource: "status".into(),
            ..Req::default()
        }
    }
}

/// The PATCH flavour, from the content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Apply,
    Merge,
    Strategic,
    Json,
}

impl PatchType {
    pub fn from_content_type(ct: &str) -> Option<PatchType> {
        let base = ct.split(';').next().unwrap_or("").trim();
        match base {
            "application/apply-patch+yaml" | "application/apply-patch+json" => {
                Some(PatchType::Apply)
            }
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::Strategic),
            "application/json-patch+json" => Some(PatchType::Json),
            _ => None,
        }
    }
}

/// Delete options.
#[derive(Debug, Clone, Default)]
pub struct DeleteOpts {
    /// "Foreground", "Background" or "Orphan".
    pub propagation: Option<String>,
    pub grace_period: Option<i64>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    pub dry_run: bool,
}

/// The storage half of the API server.
pub struct Api {
    pub state: Mutex<State>,
    /// Served version, e.g. "1.24".
    pub version: String,
    ip_counter: Mutex<u32>,
}

fn meta_str(v: &Value, k: &str) -> String {
    v.pointer(&format!("/metadata/{k}"))
        .and_then(|x| x.as_str())
        .unwrap_or("")
        .to_string()
}

fn has_finalizers(res: &Resource, obj: &Value) -> bool {
    let meta = obj
        .pointer("/metadata/finalizers")
        .and_then(|f| f.as_array())
        .is_some_and(|a| !a.is_empty());
    let spec = res.kind == "Namespace"
        && obj
            .pointer("/spec/finalizers")
            .and_then(|f| f.as_array())
            .is_some_and(|a| !a.is_empty());
    meta || spec
}

fn is_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|d| !d.is_null())
}

fn strip_managed(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        m.remove("managedFields");
    }
    v
}

impl Api {
    pub fn new(version: &str, history_limit: usize) -> Arc<Api> {
        Arc::new(Api {
            state: Mutex::new(State::new(history_limit)),
            version: version.to_string(),
            ip_counter: Mutex::new(0),
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("state mutex poisoned")
    }

    fn next_cluster_ip(&self) -> String {
        let mut c = self.ip_counter.lock().expect("ip mutex poisoned");
        *c += 1;
        format!("10.96.{}.{}", (*c / 250) % 250, *c % 250 + 2)
    }

    /// Reads one object.
    pub fn get(&self, res: &'static Resource, ns: &str, name: &str) -> ApiResult<Value> {
        let st = self.lock();
        st.objects
            .get(&Key::new(res, ns, name))
            .cloned()
            .ok_or_else(|| status::not_found(res, name))
    }

    /// Lists objects (with kind/apiVersion, as stored) and the list resourceVersion.
    pub fn list(
        &self,
        res: &'static Resource,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> (Vec<Value>, u64) {
        let st = self.lock();
        let items = st
            .objects
            .iter()
            .filter(|(k, _)| k.group == res.group && k.plural == res.plural)
            .filter(|(k, _)| ns.is_none_or(|n| !res.namespaced || k.namespace == n))
            .filter(|(_, v)| labels.matches_obj(v) && fields.matches(v))
            .map(|(_, v)| v.clone())
            .collect();
        (items, st.rv)
    }

    /// Every stored object with its resource.
    pub fn snapshot(&self) -> Vec<(&'static Resource, Value)> {
        let st = self.lock();
        st.objects
            .iter()
            .filter_map(|(k, v)| {
                resources::RESOURCES
                    .iter()
                    .find(|r| r.group == k.group && r.plural == k.plural)
                    .map(|r| (r, v.clone()))
            })
            .collect()
    }

    fn check_namespace(
        &self,
        st: &State,
        res: &'static Resource,
        ns: &str,
        name: &str,
    ) -> ApiResult<()> {
        if !res.namespaced {
            return Ok(());
        }
        let nsres = resources::by_kind("Namespace").ok_or_else(status::path_not_found)?;
        match st.objects.get(&Key::new(nsres, "", ns)) {
            None => Err(status::namespace_not_found(ns)),
            Some(n) if is_deleting(n) => Err(status::namespace_terminating(res, name, ns)),
            Some(_) => Ok(()),
        }
    }

    fn check_type(res: &Resource, body: &Value) -> ApiResult<()> {
        if !body.is_object() {
            return Err(status::bad_request(
                "the body of the request was not a JSON object",
            ));
        }
        if let Some(av) = body.get("apiVersion").and_then(|a| a.as_str())
            && av != res.api_version()
        {
            return Err(status::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({})",
                res.api_version()
            )));
        }
        if let Some(k) = body.get("kind").and_then(|a| a.as_str())
            && k != res.kind
        {
            return Err(status::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                res.kind
            )));
        }
        Ok(())
    }

    /// The status a new object starts with (the strategies' PrepareForCreate).
    fn initial_status(res: &Resource, obj: &mut Value) {
        if !res.status_subresource || res.kind == "Node" {
            return;
        }
        let st = match res.kind {
            "Deployment" => json!({}),
            "ReplicaSet" => json!({"replicas": 0}),
            "Pod" => json!({"phase": "Pending", "qosClass": qos_class(obj)}),
            "Service" | "Ingress" => json!({"loadBalancer": {}}),
            "Namespace" => json!({"phase": "Active"}),
            "HorizontalPodAutoscaler" => json!({"currentMetrics": null, "desiredReplicas": 0}),
            "PodDisruptionBudget" => {
                json!({"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0})
            }
            _ => json!({}),
        };
        obj["status"] = st;
    }

    fn allocate(&self, res: &Resource, obj: &mut Value) {
        match res.kind {
            "Service" => {
                let ty = obj
                    .pointer("/spec/type")
                    .and_then(|t| t.as_str())
                    .unwrap_or("ClusterIP")
                    .to_string();
                if ty == "ExternalName" {
                    return;
                }
                let spec = util::path_mut(obj, &["spec"]);
                let ip = match spec.get("clusterIP").and_then(|c| c.as_str()) {
                    Some(ip) if !ip.is_empty() => ip.to_string(),
                    _ => self.next_cluster_ip(),
                };
                spec["clusterIP"] = json!(ip);
                spec["clusterIPs"] = json!([ip]);
                spec["ipFamilies"] = json!(["IPv4"]);
                spec["ipFamilyPolicy"] = json!("SingleStack");
                if (ty == "NodePort" || ty == "LoadBalancer")
                    && let Some(ports) = spec.get_mut("ports").and_then(|p| p.as_array_mut())
                {
                    for (i, p) in ports.iter_mut().enumerate() {
                        if p.get("nodePort").is_none() {
                            p["nodePort"] =
                                json!(30000 + (crate::util::random_u64() % 2700) as i64 + i as i64);
                        }
                    }
                }
            }
            "Namespace" => {
                util::set_path(obj, &["spec", "finalizers"], json!(["kubernetes"]));
            }
            _ => {}
        }
    }

    /// Creates an object (POST, or apply/PUT onto a missing object).
    pub fn create(
        &self,
        res: &'static Resource,
        ns: &str,
        body: Value,
        req: &Req,
    ) -> ApiResult<Value> {
        Self::check_type(res, &body)?;
        let mut st = self.lock();
        self.create_locked(&mut st, res, ns, body, req, None)
    }

    /// Creates an object with the given managed fields (events written through
    /// another API version, bootstrap objects).
    pub fn create_with_managers(
        &self,
        res: &'static Resource,
        ns: &str,
        body: Value,
        req: &Req,
        managers: Managers,
    ) -> ApiResult<Value> {
        let mut st = self.lock();
        self.create_locked(&mut st, res, ns, body, req, Some(managers))
    }

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

    fn create_locked(
        &self,
        st: &mut State,
        res: &'static Resource,
        ns: &str,
        mut obj: Value,
        req: &Req,
        managers: Option<Managers>,
    ) -> ApiResult<Value> {
        let now = now_rfc3339();
        if res.namespaced {
            let body_ns = meta_str(&obj, "namespace");
            if !body_ns.is_empty() && body_ns != ns {
                return Err(status::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
        }
        let mut name = meta_str(&obj, "name");
        if name.is_empty() {
            let gen_name = meta_str(&obj, "generateName");
            if !gen_name.is_empty() {
                name = format!("{gen_name}{}", util::random_suffix(5));
            }
        }
        self.check_namespace(st, res, ns, &name)?;
        obj["kind"] = json!(res.kind);
        obj["apiVersion"] = json!(res.api_version());
        {
            let meta = util::path_mut(&mut obj, &["metadata"]);
            if !meta.is_object() {
                *meta = json!({});
            }
            meta["name"] = json!(name);
            if res.namespaced {
                meta["namespace"] = json!(ns);
            } else if let Some(m) = meta.as_object_mut() {
                m.remove("namespace");
            }
            if let Some(m) = meta.as_object_mut() {
                for k in [
                    "uid",
                    "resourceVersion",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "generation",
                    "selfLink",
                ] {
                    m.remove(k);
                }
            }
        }
        apply_defaults(res.kind, &mut obj);
        validate(res, &obj)?;
        let ignored = ignored_fields(res.status_subresource, &req.subresource);
        let managers = match managers {
            Some(m) => m,
            None => {
                let sent = Managers::decode(&obj);
                let w = Writer {
                    manager: &req.manager,
                    api_version: &res.api_version(),
                    subresource: &req.subresource,
                    now: &now,
                };
                managed::update(res.kind, &empty_object(res.kind), &obj, &sent, &w, &ignored)
            }
        };
        if res.kind == "Pod" {
            admit_pod(&mut obj);
        }
        Self::initial_status(res, &mut obj);
        self.allocate(res, &mut obj);
        let key = Key::new(res, ns, &name);
        if st.objects.contains_key(&key) {
            return Err(status::already_exists(res, &name));
        }
        {
            let meta = util::path_mut(&mut obj, &["metadata"]);
            meta["uid"] = json!(util::new_uid());
            meta["creationTimestamp"] = json!(now);
            if res.generation {
                meta["generation"] = json!(1);
            }
        }
        managers.encode_into(&mut obj);
        if req.dry_run {
            return Ok(obj);
        }
        let rv = st.bump();
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        st.objects.insert(key, obj.clone());
        st.publish(Change {
            rv,
            res,
            namespace: ns.to_string(),
            kind: "ADDED",
            object: obj.clone(),
            old: None,
        });
        Ok(obj)
    }

    /// Stores `new` over `old` unless nothing changed; handles deletion once the
    /// last finalizer goes. Returns the stored (or unchanged) object.
    fn commit_update(
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
    fn prepare_update(res: &Resource, live: &Value, mut new: Value, subresource: &str) -> Value {
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

    fn bump_generation(res: &Resource, live: &Value, new: &mut Value) {
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
    fn finish_update(
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

    fn apply(
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

    fn store_modified(
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
