//! Authentication and RBAC authorization, as a 1.24 API server with `--authorization-mode=RBAC`
//! does them: a request's bearer token names a user (no token, or the admin token of
//! [`crate::StandIn::kubeconfig`], is `system:admin` in `system:masters`, bound to `cluster-admin`
//! as on a real cluster, so clients that never heard of RBAC work as before); Roles,
//! ClusterRoles, RoleBindings and ClusterRoleBindings (`rbac.authorization.k8s.io/v1`) are
//! ordinary stored objects, evaluated on every request (verbs incl. list/watch/deletecollection,
//! `resourceNames`, subresources such as `pods/log`); a denial is a 403 whose Status is worded
//! as the API server's `responsewriters.Forbidden`. Also served here: SelfSubjectAccessReview
//! (`authorization.k8s.io/v1`, answered from the same rules) and TokenRequest
//! (`POST …/serviceaccounts/NAME/token`), whose token authenticates as that ServiceAccount.
//! Server-side apply that creates an object needs `create` as well as `patch`, as the real
//! patch handler checks. Impersonation headers are not supported.

use std::collections::HashMap;
use std::sync::Mutex;

use http::Method;
use serde_json::{Value, json};

use crate::api::{Api, Req};
use crate::resources::{self, Resource};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::status::ApiError;

/// The token of the stand-in's own kubeconfig: cluster-admin.
pub const ADMIN_TOKEN: &str = "standin-dummy-token";

/// Who sends a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub groups: Vec<String>,
}

impl Identity {
    /// The cluster's administrator (`system:masters`).
    pub fn admin() -> Identity {
        Identity {
            user: "system:admin".into(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
        }
    }

    /// A plain user with no group but `system:authenticated`.
    pub fn user(name: &str) -> Identity {
        Identity {
            user: name.into(),
            groups: vec!["system:authenticated".into()],
        }
    }

    /// A ServiceAccount's identity, as its tokens authenticate.
    pub fn service_account(namespace: &str, name: &str) -> Identity {
        Identity {
            user: format!("system:serviceaccount:{namespace}:{name}"),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".into(),
            ],
        }
    }
}

/// Bearer tokens the server knows, beside the admin token.
#[derive(Debug, Default)]
pub struct Tokens {
    known: Mutex<HashMap<String, Identity>>,
    issued: Mutex<u64>,
}

impl Tokens {
    pub fn add(&self, token: &str, who: Identity) {
        if let Ok(mut known) = self.known.lock() {
            known.insert(token.to_owned(), who);
        }
    }

    /// Who an `Authorization` header names; `None` for an unknown token (401).
    pub fn identify(&self, authorization: Option<&str>) -> Option<Identity> {
        let token = match authorization.and_then(|h| h.strip_prefix("Bearer ")) {
            None => return Some(Identity::admin()),
            Some(t) if t == ADMIN_TOKEN => return Some(Identity::admin()),
            Some(t) => t.trim(),
        };
        self.known.lock().ok()?.get(token).cloned()
    }

    fn issue(&self, who: Identity) -> String {
        let n = match self.issued.lock() {
            Ok(mut issued) => {
                *issued += 1;
                *issued
            }
            Err(_) => 0,
        };
        let token = format!("standin-token-{n}-{}", who.user.replace(':', "-"));
        self.add(&token, who);
        token
    }
}

/// One authorization decision, as the API server's audit log would show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub user: String,
    pub attributes: Attributes,
    pub allowed: bool,
}

/// Every authorization decision made, in order (see [`crate::StandIn::audit`]).
#[derive(Debug, Default)]
pub struct Audit {
    decisions: Mutex<Vec<Decision>>,
}

impl Audit {
    fn record(&self, who: &Identity, a: &Attributes, allowed: bool) {
        if let Ok(mut decisions) = self.decisions.lock() {
            decisions.push(Decision {
                user: who.user.clone(),
                attributes: a.clone(),
                allowed,
            });
        }
    }

    pub fn decisions(&self) -> Vec<Decision> {
        self.decisions.lock().map(|d| d.clone()).unwrap_or_default()
    }
}

/// What a request asks to do, in RBAC's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes {
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
    pub namespace: String,
}

impl Attributes {
    /// The attributes of a request to `res` (namespace, name, subresource as in its URL).
    pub fn of(
        method: &Method,
        res: &Resource,
        namespace: Option<&str>,
        name: Option<&str>,
        sub: Option<&str>,
        watch: bool,
    ) -> Attributes {
        let verb = match (method.as_str(), name.is_some()) {
            ("GET", false) if watch => "watch",
            ("GET", false) => "list",
            ("GET", true) if watch => "watch",
            ("GET", true) => "get",
            ("POST", _) => "create",
            ("PUT", _) => "update",
            ("PATCH", _) => "patch",
            ("DELETE", true) => "delete",
            ("DELETE", false) => "deletecollection",
            (other, _) => other,
        };
        // A Namespace's own URL is "in" that namespace (the API server's RequestInfo).
        let namespace = match (res.kind, name) {
            ("Namespace", Some(n)) => n,
            _ => namespace.unwrap_or(""),
        };
        Attributes {
            verb: verb.to_lowercase(),
            group: res.group.into(),
            resource: res.plural.into(),
            subresource: sub.unwrap_or("").into(),
            name: name.unwrap_or("").into(),
            namespace: namespace.into(),
        }
    }

    /// `pods/log` or `pods`.
    fn full_resource(&self) -> String {
        match self.subresource.as_str() {
            "" => self.resource.clone(),
            sub => format!("{}/{sub}", self.resource),
        }
    }
}

/// The 403 the API server answers, e.g. `pods "x" is forbidden: User "u" cannot get resource
/// "pods" in API group "" in the namespace "n"`.
pub fn forbidden(who: &Identity, a: &Attributes) -> ApiError {
    let scope = match a.namespace.as_str() {
        "" => "at the cluster scope".to_owned(),
        ns => format!("in the namespace \"{ns}\""),
    };
    let why = format!(
        "User \"{}\" cannot {} resource \"{}\" in API group \"{}\" {scope}",
        who.user,
        a.verb,
        a.full_resource(),
        a.group
    );
    let qualified = match a.group.as_str() {
        "" => a.resource.clone(),
        g => format!("{}.{g}", a.resource),
    };
    let message = match a.name.as_str() {
        "" => format!("{qualified} is forbidden: {why}"),
        n => format!("{qualified} \"{n}\" is forbidden: {why}"),
    };
    let mut details = json!({"kind": a.resource});
    if !a.name.is_empty() {
        details["name"] = json!(a.name);
    }
    if !a.group.is_empty() {
        details["group"] = json!(a.group);
    }
    ApiError {
        code: 403,
        body: json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": "Forbidden", "details": details, "code": 403}),
    }
}

/// The 403 of an apply (or a PUT) that would create its object without `create`: the patch
/// handler's `withAuthorization` says `errors.NewForbidden(resource, name, reason)` with the
/// authorizer's reason, which RBAC leaves empty on a denial, so the message ends in `: `.
pub fn forbidden_create_on_patch(a: &Attributes) -> ApiError {
    let qualified = match a.group.as_str() {
        "" => a.resource.clone(),
        g => format!("{}.{g}", a.resource),
    };
    let mut details = json!({"name": a.name, "kind": a.resource});
    if !a.group.is_empty() {
        details["group"] = json!(a.group);
    }
    ApiError {
        code: 403,
        body: json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("{qualified} \"{}\" is forbidden: ", a.name),
            "reason": "Forbidden", "details": details, "code": 403}),
    }
}

/// The 401 for a token the server does not know.
pub fn unauthorized() -> ApiError {
    ApiError {
        code: 401,
        body: json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "Unauthorized", "reason": "Unauthorized", "code": 401}),
    }
}

fn rbac(plural: &str) -> Option<&'static Resource> {
    resources::find("rbac.authorization.k8s.io", "v1", plural)
}

fn all(api: &Api, res: Option<&'static Resource>, ns: Option<&str>) -> Vec<Value> {
    match res {
        Some(res) => {
            api.list(
                res,
                ns,
                &LabelSelector::default(),
                &FieldSelector::default(),
            )
            .0
        }
        None => Vec::new(),
    }
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Whether a binding's subject is `who` (`namespace`: the binding's own, for ServiceAccounts
/// that name none).
fn subject_matches(subject: &Value, who: &Identity, namespace: &str) -> bool {
    let name = subject["name"].as_str().unwrap_or("");
    match subject["kind"].as_str() {
        Some("User") => who.user == name,
        Some("Group") => who.groups.iter().any(|g| g == name),
        Some("ServiceAccount") => {
            let ns = subject["namespace"].as_str().unwrap_or(namespace);
            who.user == format!("system:serviceaccount:{ns}:{name}")
        }
        _ => false,
    }
}

/// Whether one PolicyRule allows the request.
pub fn rule_allows(rule: &Value, a: &Attributes) -> bool {
    let has = |field: &str, want: &str| {
        strings(&rule[field])
            .iter()
            .any(|v| *v == "*" || *v == want)
    };
    let resources = strings(&rule["resources"]);
    let full = a.full_resource();
    let resource = resources.iter().any(|r| {
        *r == "*"
            || *r == full
            || (!a.subresource.is_empty() && *r == format!("*/{}", a.subresource))
    });
    let names = strings(&rule["resourceNames"]);
    let named = names.is_empty() || (!a.name.is_empty() && names.contains(&a.name.as_str()));
    has("verbs", &a.verb) && has("apiGroups", &a.group) && resource && named
}

/// The rules a binding's `roleRef` grants.
fn role_rules(api: &Api, role_ref: &Value, binding_namespace: &str) -> Vec<Value> {
    let name = role_ref["name"].as_str().unwrap_or("");
    let (res, ns) = match role_ref["kind"].as_str() {
        Some("ClusterRole") => (rbac("clusterroles"), ""),
        Some("Role") => (rbac("roles"), binding_namespace),
        _ => return Vec::new(),
    };
    res.and_then(|r| api.get(r, ns, name).ok())
        .and_then(|role| role["rules"].as_array().cloned())
        .unwrap_or_default()
}

/// Why `who` may do `a`, or `None` when no binding allows it.
pub fn allowed_by(api: &Api, who: &Identity, a: &Attributes) -> Option<String> {
    let cluster = all(api, rbac("clusterrolebindings"), None)
        .into_iter()
        .map(|b| (b, "ClusterRoleBinding"));
    let local = match a.namespace.as_str() {
        "" => Vec::new(),
        ns => all(api, rbac("rolebindings"), Some(ns)),
    };
    let bindings = cluster.chain(local.into_iter().map(|b| (b, "RoleBinding")));
    for (binding, kind) in bindings {
        let ns = binding["metadata"]["namespace"].as_str().unwrap_or("");
        let subjects = binding["subjects"].as_array().cloned().unwrap_or_default();
        if !subjects.iter().any(|s| subject_matches(s, who, ns)) {
            continue;
        }
        let rules = role_rules(api, &binding["roleRef"], ns);
        if rules.iter().any(|r| rule_allows(r, a)) {
            let name = binding["metadata"]["name"].as_str().unwrap_or("");
            let shown = match ns {
                "" => name.to_owned(),
                ns => format!("{name}/{ns}"),
            };
            return Some(format!(
                "RBAC: allowed by {kind} \"{shown}\" of {} \"{}\" to User \"{}\"",
                binding["roleRef"]["kind"].as_str().unwrap_or(""),
                binding["roleRef"]["name"].as_str().unwrap_or(""),
                who.user
            ));
        }
    }
    None
}

/// Whether `who` may do `a`, recorded in `audit`.
pub fn allowed(api: &Api, audit: &Audit, who: &Identity, a: &Attributes) -> bool {
    let allowed = allowed_by(api, who, a).is_some();
    audit.record(who, a, allowed);
    allowed
}

/// `Ok` when `who` may do `a`, else the 403; recorded in `audit`.
pub fn authorize(api: &Api, audit: &Audit, who: &Identity, a: &Attributes) -> Result<(), ApiError> {
    match allowed(api, audit, who, a) {
        true => Ok(()),
        false => Err(forbidden(who, a)),
    }
}

/// Requests answered here rather than by storage.
pub enum Special {
    SelfSubjectAccessReview,
    TokenRequest { namespace: String, name: String },
}

impl Special {
    pub fn parse(method: &Method, segs: &[&str]) -> Option<Special> {
        if method != Method::POST {
            return None;
        }
        match segs {
            [
                "apis",
                "authorization.k8s.io",
                "v1",
                "selfsubjectaccessreviews",
            ] => Some(Special::SelfSubjectAccessReview),
            [
                "api",
                "v1",
                "namespaces",
                ns,
                "serviceaccounts",
                name,
                "token",
            ] => Some(Special::TokenRequest {
                namespace: (*ns).to_owned(),
                name: (*name).to_owned(),
            }),
            _ => None,
        }
    }
}

/// Answers a [`Special`] request.
pub fn serve(
    api: &Api,
    (tokens, audit): (&Tokens, &Audit),
    special: Special,
    who: &Identity,
    body: &[u8],
) -> Result<(u16, Value), ApiError> {
    let body: Value = serde_json::from_slice(body).map_err(|e| {
        crate::status::bad_request(format!("the body of the request could not be decoded: {e}"))
    })?;
    match special {
        Special::SelfSubjectAccessReview => {
            let create = Attributes {
                verb: "create".into(),
                group: "authorization.k8s.io".into(),
                resource: "selfsubjectaccessreviews".into(),
                subresource: String::new(),
                name: String::new(),
                namespace: String::new(),
            };
            authorize(api, audit, who, &create)?;
            Ok((201, review(api, who, body)))
        }
        Special::TokenRequest { namespace, name } => {
            token_request(api, (tokens, audit), who, &namespace, &name, body)
        }
    }
}

fn review(api: &Api, who: &Identity, mut body: Value) -> Value {
    let spec = &body["spec"]["resourceAttributes"];
    let text = |k: &str| spec[k].as_str().unwrap_or("").to_owned();
    let a = Attributes {
        verb: text("verb"),
        group: text("group"),
        resource: text("resource"),
        subresource: text("subresource"),
        name: text("name"),
        namespace: text("namespace"),
    };
    body["status"] = match allowed_by(api, who, &a) {
        Some(reason) => json!({"allowed": true, "reason": reason}),
        None => json!({"allowed": false}),
    };
    body["metadata"] = json!({"creationTimestamp": null});
    body["apiVersion"] = json!("authorization.k8s.io/v1");
    body["kind"] = json!("SelfSubjectAccessReview");
    body
}

fn token_request(
    api: &Api,
    (tokens, audit): (&Tokens, &Audit),
    who: &Identity,
    namespace: &str,
    name: &str,
    mut body: Value,
) -> Result<(u16, Value), ApiError> {
    let sa = resources::by_kind("ServiceAccount").ok_or_else(crate::status::path_not_found)?;
    let a = Attributes {
        verb: "create".into(),
        group: String::new(),
        resource: "serviceaccounts".into(),
        subresource: "token".into(),
        name: name.into(),
        namespace: namespace.into(),
    };
    authorize(api, audit, who, &a)?;
    api.get(sa, namespace, name)?;
    let token = tokens.issue(Identity::service_account(namespace, name));
    let expires = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1);
    body["status"] = json!({"token": token, "expirationTimestamp": expires.to_string()});
    body["apiVersion"] = json!("authentication.k8s.io/v1");
    body["kind"] = json!("TokenRequest");
    Ok((201, body))
}

/// The built-in ClusterRoles and ClusterRoleBindings a new cluster has: `cluster-admin` for
/// `system:masters`, `system:basic-user` (SelfSubjectAccessReview) for every authenticated
/// user, and the aggregated `edit` and `view` roles.
pub fn bootstrap(api: &Api) {
    let (Some(roles), Some(bindings)) = (rbac("clusterroles"), rbac("clusterrolebindings")) else {
        return;
    };
    let by = Req::by("kube-apiserver");
    for (name, rules) in [
        (
            "cluster-admin",
            json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]),
        ),
        (
            "system:basic-user",
            json!([{"apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], "verbs": ["create"]}]),
        ),
        ("edit", edit_rules()),
        ("view", Value::Array(view_rules())),
    ] {
        let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
                "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
            "rules": rules});
        let _ = api.create(roles, "", role, &by);
    }
    for (name, group) in [
        ("cluster-admin", "system:masters"),
        ("system:basic-user", "system:authenticated"),
    ] {
        let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}]});
        let _ = api.create(bindings, "", binding, &by);
    }
}

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];

/// A PolicyRule as (apiGroups, resources, verbs).
type Rule = (
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
);

/// `system:aggregate-to-view`'s rules (what `view`, and so `edit`, may read).
const VIEW: &[Rule] = &[
    (
        &[""],
        &[
            "configmaps",
            "endpoints",
            "persistentvolumeclaims",
            "persistentvolumeclaims/status",
            "pods",
            "replicationcontrollers",
            "replicationcontrollers/scale",
            "serviceaccounts",
            "services",
            "services/status",
        ],
        READ,
    ),
    (
        &[""],
        &[
            "bindings",
            "events",
            "limitranges",
            "namespaces/status",
            "pods/log",
            "pods/status",
            "replicationcontrollers/status",
            "resourcequotas",
            "resourcequotas/status",
        ],
        READ,
    ),
    (&[""], &["namespaces"], READ),
    (&["discovery.k8s.io"], &["endpointslices"], READ),
    (
        &["apps"],
        &[
            "controllerrevisions",
            "daemonsets",
            "daemonsets/status",
            "deployments",
            "deployments/scale",
            "deployments/status",
            "replicasets",
            "replicasets/scale",
            "replicasets/status",
            "statefulsets",
            "statefulsets/scale",
            "statefulsets/status",
        ],
        READ,
    ),
    (
        &["autoscaling"],
        &[
            "horizontalpodautoscalers",
            "horizontalpodautoscalers/status",
        ],
        READ,
    ),
    (
        &["batch"],
        &["cronjobs", "cronjobs/status", "jobs", "jobs/status"],
        READ,
    ),
    (
        &["extensions"],
        &[
            "daemonsets",
            "daemonsets/status",
            "deployments",
            "deployments/scale",
            "deployments/status",
            "ingresses",
            "ingresses/status",
            "networkpolicies",
            "replicasets",
            "replicasets/scale",
            "replicasets/status",
            "replicationcontrollers/scale",
        ],
        READ,
    ),
    (
        &["policy"],
        &["poddisruptionbudgets", "poddisruptionbudgets/status"],
        READ,
    ),
    (
        &["networking.k8s.io"],
        &["ingresses", "ingresses/status", "networkpolicies"],
        READ,
    ),
];

/// `system:aggregate-to-edit`'s rules of Kubernetes 1.24.
const EDIT: &[Rule] = &[
    (
        &[""],
        &[
            "pods/attach",
            "pods/exec",
            "pods/portforward",
            "pods/proxy",
            "secrets",
            "services/proxy",
        ],
        READ,
    ),
    (&[""], &["serviceaccounts"], &["impersonate"]),
    (
        &[""],
        &[
            "pods",
            "pods/attach",
            "pods/exec",
            "pods/portforward",
            "pods/proxy",
        ],
        WRITE,
    ),
    (&[""], &["pods/eviction"], &["create"]),
    (
        &[""],
        &[
            "configmaps",
            "events",
            "persistentvolumeclaims",
            "replicationcontrollers",
            "replicationcontrollers/scale",
            "secrets",
            "serviceaccounts",
            "services",
            "services/proxy",
        ],
        WRITE,
    ),
    (&[""], &["serviceaccounts/token"], &["create"]),
    (
        &["apps"],
        &[
            "daemonsets",
            "deployments",
            "deployments/rollback",
            "deployments/scale",
            "replicasets",
            "replicasets/scale",
            "statefulsets",
            "statefulsets/scale",
        ],
        WRITE,
    ),
    (&["autoscaling"], &["horizontalpodautoscalers"], WRITE),
    (&["batch"], &["cronjobs", "jobs"], WRITE),
    (
        &["extensions"],
        &[
            "daemonsets",
            "deployments",
            "deployments/rollback",
            "deployments/scale",
            "ingresses",
            "networkpolicies",
            "replicasets",
            "replicasets/scale",
            "replicationcontrollers/scale",
        ],
        WRITE,
    ),
    (&["policy"], &["poddisruptionbudgets"], WRITE),
    (
        &["networking.k8s.io"],
        &["ingresses", "networkpolicies"],
        WRITE,
    ),
];

fn rules(table: &[Rule]) -> Vec<Value> {
    table
        .iter()
        .map(|(groups, resources, verbs)| {
            json!({"apiGroups": groups, "resources": resources, "verbs": verbs})
        })
        .collect()
}

/// `view`'s rules.
fn view_rules() -> Vec<Value> {
    rules(VIEW)
}

/// The aggregated `edit` ClusterRole of Kubernetes 1.24: `system:aggregate-to-edit` plus
/// `system:aggregate-to-view`, as `plugin/pkg/auth/authorizer/rbac/bootstrappolicy`'s
/// `testdata/cluster-roles.yaml` lists them. No Leases (added to `edit` after 1.24) and no
/// write of Namespaces or Endpoints (removed from `edit` in 1.22).
pub fn edit_rules() -> Value {
    let mut all = rules(EDIT);
    all.extend(view_rules());
    Value::Array(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(verb: &str, group: &str, resource: &str, sub: &str, ns: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            name: "x".into(),
            namespace: ns.into(),
        }
    }

    fn edit_allows(a: &Attributes) -> bool {
        edit_rules()
            .as_array()
            .is_some_and(|rules| rules.iter().any(|r| rule_allows(r, a)))
    }

    #[test]
    fn edit_has_no_leases_and_no_namespace_writes() {
        assert!(!edit_allows(&attrs(
            "get",
            "coordination.k8s.io",
            "leases",
            "",
            "n"
        )));
        assert!(!edit_allows(&attrs("create", "", "namespaces", "", "")));
        assert!(!edit_allows(&attrs("patch", "", "namespaces", "", "n")));
        assert!(edit_allows(&attrs("get", "", "namespaces", "", "n")));
        assert!(edit_allows(&attrs("patch", "apps", "deployments", "", "n")));
        assert!(edit_allows(&attrs("get", "", "pods", "log", "n")));
        assert!(!edit_allows(&attrs("get", "", "pods", "status2", "n")));
        assert!(edit_allows(&attrs(
            "deletecollection",
            "",
            "secrets",
            "",
            "n"
        )));
    }

    #[test]
    fn resource_names_and_wildcards() {
        let named = json!({"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"], "resourceNames": ["only"]});
        let mut a = attrs("get", "", "configmaps", "", "n");
        assert!(!rule_allows(&named, &a));
        a.name = "only".into();
        assert!(rule_allows(&named, &a));
        a.verb = "list".into();
        assert!(!rule_allows(&named, &a));
        let any_log = json!({"apiGroups": [""], "resources": ["*/log"], "verbs": ["*"]});
        assert!(rule_allows(&any_log, &attrs("get", "", "pods", "log", "n")));
        assert!(!rule_allows(&any_log, &attrs("get", "", "pods", "", "n")));
    }

    #[test]
    fn forbidden_is_worded_as_the_api_server() {
        let who = Identity::user("u");
        let e = forbidden(&who, &attrs("get", "", "pods", "", "n"));
        assert_eq!(e.code, 403);
        assert_eq!(
            e.body["message"],
            "pods \"x\" is forbidden: User \"u\" cannot get resource \"pods\" in API group \"\" in the namespace \"n\""
        );
        let mut list = attrs("create", "", "namespaces", "", "");
        list.name = String::new();
        let e = forbidden(&who, &list);
        assert_eq!(
            e.body["message"],
            "namespaces is forbidden: User \"u\" cannot create resource \"namespaces\" in API group \"\" at the cluster scope"
        );
        assert_eq!(e.body["reason"], "Forbidden");
        assert_eq!(e.body["details"], json!({"kind": "namespaces"}));
    }
}
