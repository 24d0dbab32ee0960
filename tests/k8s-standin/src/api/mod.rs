//! The API server's storage semantics, shared by the HTTP layer and the
//! in-process controllers: create, replace (PUT), the PATCH flavours including
//! server-side apply, graceful and finalizer-driven delete, get and list; with
//! defaulting, validation, managed fields, generation, resourceVersion
//! preconditions, dryRun and no-op detection.

use std::sync::{Arc, Mutex, MutexGuard};

mod delete;
mod update;

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

    pub(super) fn check_namespace(
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

    pub(super) fn check_type(res: &Resource, body: &Value) -> ApiResult<()> {
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

    pub(super) fn create_locked(
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
}
