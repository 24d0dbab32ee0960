//! `metav1.Status` bodies for every failure the stand-in reports, worded as the
//! 1.24 API server words them (see 02-error-bodies.json, 03, 07, 08).

use serde_json::{Value, json};

use crate::resources::Resource;

/// An API error: HTTP code plus the Status body.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub body: Value,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}",
            self.code,
            self.body["message"].as_str().unwrap_or("")
        )
    }
}

impl std::error::Error for ApiError {}

pub type ApiResult<T> = Result<T, ApiError>;

fn status(code: u16, reason: &str, message: String, details: Option<Value>) -> ApiError {
    let mut body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    });
    if let Some(d) = details {
        body["details"] = d;
    }
    if reason.is_empty()
        && let Some(m) = body.as_object_mut()
    {
        m.remove("reason");
    }
    ApiError { code, body }
}

fn details(name: &str, res: &Resource) -> Value {
    let mut d = json!({"name": name, "kind": res.plural});
    if !res.group.is_empty() {
        d["group"] = json!(res.group);
    }
    d
}

/// 404 NotFound for `res`/`name`.
pub fn not_found(res: &Resource, name: &str) -> ApiError {
    status(
        404,
        "NotFound",
        format!("{} \"{}\" not found", res.qualified(), name),
        Some(details(name, res)),
    )
}

/// 404 for a missing namespace (apply/create into it).
pub fn namespace_not_found(ns: &str) -> ApiError {
    status(
        404,
        "NotFound",
        format!("namespaces \"{ns}\" not found"),
        Some(json!({"name": ns, "kind": "namespaces"})),
    )
}

/// 404 for a path that serves nothing.
pub fn path_not_found() -> ApiError {
    status(
        404,
        "NotFound",
        "the server could not find the requested resource".into(),
        Some(json!({})),
    )
}

/// 409 AlreadyExists.
pub fn already_exists(res: &Resource, name: &str) -> ApiError {
    status(
        409,
        "AlreadyExists",
        format!("{} \"{}\" already exists", res.qualified(), name),
        Some(details(name, res)),
    )
}

/// 409 Conflict for a stale resourceVersion.
pub fn conflict_modified(res: &Resource, name: &str) -> ApiError {
    status(
        409,
        "Conflict",
        format!(
            "Operation cannot be fulfilled on {} \"{}\": the object has been modified; please apply your changes to the latest version and try again",
            res.qualified(),
            name
        ),
        Some(details(name, res)),
    )
}

/// 409 Conflict for a precondition on uid.
pub fn conflict_uid(res: &Resource, name: &str, want: &str, have: &str) -> ApiError {
    status(
        409,
        "Conflict",
        format!(
            "Operation cannot be fulfilled on {} \"{}\": Precondition failed: UID in precondition: {}, UID in object meta: {}",
            res.qualified(),
            name,
            want,
            have
        ),
        Some(details(name, res)),
    )
}

/// One field-manager conflict of a server-side apply.
#[derive(Debug, Clone)]
pub struct FieldConflict {
    /// The manager as conflict messages print it: `"kubectl-edit" using apps/v1`.
    pub manager: String,
    /// Path like `.spec.replicas`.
    pub field: String,
}

/// 409 Conflict of an apply, as 03-server-side-apply.json shows it.
pub fn apply_conflict(conflicts: &[FieldConflict]) -> ApiError {
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|c| {
            json!({
                "reason": "FieldManagerConflict",
                "message": format!("conflict with {}", c.manager),
                "field": c.field,
            })
        })
        .collect();
    let message = if conflicts.len() == 1 {
        let c = &conflicts[0];
        format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            c.manager, c.field
        )
    } else {
        let mut managers: Vec<&str> = conflicts.iter().map(|c| c.manager.as_str()).collect();
        managers.sort();
        managers.dedup();
        let mut lines = Vec::new();
        for m in managers {
            lines.push(format!("conflicts with {m}:"));
            for c in conflicts.iter().filter(|c| c.manager == m) {
                lines.push(format!("- {}", c.field));
            }
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    status(409, "Conflict", message, Some(json!({"causes": causes})))
}

/// One invalid field.
#[derive(Debug, Clone)]
pub struct Cause {
    pub reason: &'static str,
    pub message: String,
    pub field: String,
}

impl Cause {
    pub fn invalid(field: impl Into<String>, value: impl std::fmt::Display, detail: &str) -> Cause {
        Cause {
            reason: "FieldValueInvalid",
            message: format!("Invalid value: {value}: {detail}"),
            field: field.into(),
        }
    }
    pub fn required(field: impl Into<String>, detail: &str) -> Cause {
        Cause {
            reason: "FieldValueRequired",
            message: if detail.is_empty() {
                "Required value".to_string()
            } else {
                format!("Required value: {detail}")
            },
            field: field.into(),
        }
    }
    pub fn unsupported(field: impl Into<String>, value: &str, allowed: &[&str]) -> Cause {
        let quoted: Vec<String> = allowed.iter().map(|a| format!("\"{a}\"")).collect();
        Cause {
            reason: "FieldValueNotSupported",
            message: format!(
                "Unsupported value: \"{value}\": supported values: {}",
                quoted.join(", ")
            ),
            field: field.into(),
        }
    }
}

/// 422 Invalid for an object of kind `kind` (e.g. `Deployment.apps`).
pub fn invalid(res: &Resource, name: &str, causes: Vec<Cause>) -> ApiError {
    let kind_q = if res.group.is_empty() {
        res.kind.to_string()
    } else {
        format!("{}.{}", res.kind, res.group)
    };
    let summary: Vec<String> = causes
        .iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect();
    let summary = if summary.len() == 1 {
        summary[0].clone()
    } else {
        format!("[{}]", summary.join(", "))
    };
    let mut d = json!({
        "name": name,
        "kind": res.kind,
        "causes": causes.iter().map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field})).collect::<Vec<_>>(),
    });
    if !res.group.is_empty() {
        d["group"] = json!(res.group);
    }
    status(
        422,
        "Invalid",
        format!("{kind_q} \"{name}\" is invalid: {summary}"),
        Some(d),
    )
}

/// 422 for apply without fieldManager (1.24 says Invalid, not BadRequest).
pub fn apply_requires_field_manager() -> ApiError {
    status(
        422,
        "Invalid",
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch".into(),
        Some(json!({
            "group": "meta.k8s.io",
            "kind": "PatchOptions",
            "causes": [{"reason": "FieldValueRequired", "message": "Required value: is required for apply patch", "field": "fieldManager"}]
        })),
    )
}

/// 400 BadRequest with a message.
pub fn bad_request(message: impl Into<String>) -> ApiError {
    status(400, "BadRequest", message.into(), None)
}

/// 405 MethodNotAllowed.
pub fn method_not_allowed() -> ApiError {
    status(
        405,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource".into(),
        Some(json!({})),
    )
}

/// 415 UnsupportedMediaType for a PATCH content type.
pub fn unsupported_patch(ct: &str) -> ApiError {
    status(
        415,
        "UnsupportedMediaType",
        format!(
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml; got {ct}"
        ),
        None,
    )
}

/// 403 for creating content in a terminating namespace.
pub fn namespace_terminating(res: &Resource, name: &str, ns: &str) -> ApiError {
    let message = format!(
        "{} \"{}\" is forbidden: unable to create new content in namespace {} because it is being terminated",
        res.qualified(),
        name,
        ns
    );
    let mut d = details(name, res);
    d["causes"] = json!([{
        "reason": "NamespaceTerminating",
        "message": format!("namespace {ns} is being terminated"),
        "field": "metadata.namespace"
    }]);
    status(403, "Forbidden", message, Some(d))
}

/// 410 Expired, as the ERROR event of a too-old watch (06-watch-too-old.json).
pub fn expired(requested: u64, oldest: u64) -> ApiError {
    status(
        410,
        "Expired",
        format!("too old resource version: {requested} ({oldest})"),
        None,
    )
}

/// 500 InternalError (fault injection).
pub fn internal_error(message: &str) -> ApiError {
    status(
        500,
        "InternalError",
        format!("Internal error occurred: {message}"),
        Some(json!({"causes": [{"message": message}]})),
    )
}

/// 429 TooManyRequests (fault injection), like the priority-and-fairness reject.
pub fn too_many_requests(retry_after: u64) -> ApiError {
    status(
        429,
        "TooManyRequests",
        "The request could not be processed because of too many requests. Please try again later."
            .into(),
        Some(json!({"retryAfterSeconds": retry_after})),
    )
}

/// The Success status a delete returns when the object is gone at once.
pub fn delete_success(res: &Resource, name: &str, uid: &str) -> Value {
    let mut d = details(name, res);
    d["uid"] = json!(uid);
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": d,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::find;

    #[test]
    fn not_found_matches_transcript() {
        let r = find("apps", "v1", "deployments").expect("res");
        let e = not_found(r, "absent");
        assert_eq!(
            e.body,
            json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"deployments.apps \"absent\" not found","reason":"NotFound","details":{"name":"absent","group":"apps","kind":"deployments"},"code":404})
        );
    }

    #[test]
    fn invalid_matches_transcript() {
        let r = find("apps", "v1", "deployments").expect("res");
        let e = invalid(
            r,
            "invalid",
            vec![Cause::invalid(
                "spec.template.spec.containers[0].ports[0].containerPort",
                70000,
                "must be between 1 and 65535, inclusive",
            )],
        );
        assert_eq!(
            e.body["message"],
            "Deployment.apps \"invalid\" is invalid: spec.template.spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive"
        );
    }
}
