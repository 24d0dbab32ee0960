//! The kubelet's `runAsNonRoot` check before it creates a container: the
//! effective security context (container over pod), an explicit `runAsUser`,
//! else the image's `USER` (none or uid 0: root; a name: unverifiable). A
//! refusal is the message of a `CreateContainerConfigError`, as 10 (b) shows.

use serde_json::Value;

/// What the image config's `USER` means to the kubelet.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ImageUser {
    Uid(u64),
    Name(String),
}

/// containerd reports the part before `:` as a uid if numeric, else as a user
/// name; an image without `USER` runs as root.
fn image_user(user: &str) -> ImageUser {
    let name = user.split(':').next().unwrap_or("");
    if name.is_empty() {
        return ImageUser::Uid(0);
    }
    match name.parse::<u64>() {
        Ok(uid) => ImageUser::Uid(uid),
        Err(_) => ImageUser::Name(name.to_string()),
    }
}

/// A security-context field, the container's winning over the pod's.
fn effective<'a>(pod: &'a Value, container: &'a Value, field: &str) -> Option<&'a Value> {
    container
        .pointer(&format!("/securityContext/{field}"))
        .filter(|v| !v.is_null())
        .or_else(|| {
            pod.pointer(&format!("/spec/securityContext/{field}"))
                .filter(|v| !v.is_null())
        })
}

/// verifyRunAsNonRoot: `Err(message)` if the container may not start.
/// `pod_key` is `name_namespace(uid)`.
pub(super) fn verify_run_as_non_root(
    pod: &Value,
    container: &Value,
    image_user_field: &str,
    pod_key: &str,
) -> Result<(), String> {
    if effective(pod, container, "runAsNonRoot").and_then(|v| v.as_bool()) != Some(true) {
        return Ok(());
    }
    let name = container["name"].as_str().unwrap_or("");
    let at = format!("(pod: \"{pod_key}\", container: {name})");
    if let Some(uid) = effective(pod, container, "runAsUser") {
        return match uid.as_i64() {
            Some(0) => Err(format!("container's runAsUser breaks non-root policy {at}")),
            _ => Ok(()),
        };
    }
    match image_user(image_user_field) {
        ImageUser::Uid(0) => Err(format!(
            "container has runAsNonRoot and image will run as root {at}"
        )),
        ImageUser::Uid(_) => Ok(()),
        ImageUser::Name(user) => Err(format!(
            "container has runAsNonRoot and image has non-numeric user ({user}), cannot verify user is non-root {at}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const KEY: &str = "p_ns(u)";

    fn pod(sc: Value) -> Value {
        json!({"spec": {"securityContext": sc}})
    }

    #[test]
    fn image_users_as_containerd_reports_them() {
        assert_eq!(image_user(""), ImageUser::Uid(0));
        assert_eq!(image_user("0"), ImageUser::Uid(0));
        assert_eq!(image_user("10001:10001"), ImageUser::Uid(10001));
        assert_eq!(image_user("app:app"), ImageUser::Name("app".into()));
        assert_eq!(image_user("root"), ImageUser::Name("root".into()));
    }

    #[test]
    fn run_as_non_root_refusals() {
        let c = json!({"name": "web"});
        let strict = pod(json!({"runAsNonRoot": true}));
        assert_eq!(
            verify_run_as_non_root(&strict, &c, "", KEY),
            Err(
                "container has runAsNonRoot and image will run as root (pod: \"p_ns(u)\", container: web)"
                    .into()
            )
        );
        assert_eq!(
            verify_run_as_non_root(&strict, &c, "app", KEY),
            Err("container has runAsNonRoot and image has non-numeric user (app), cannot verify user is non-root (pod: \"p_ns(u)\", container: web)".into())
        );
        assert_eq!(verify_run_as_non_root(&strict, &c, "1000", KEY), Ok(()));
        // An explicit runAsUser decides, whatever the image says.
        let as_user = pod(json!({"runAsNonRoot": true, "runAsUser": 10001}));
        assert_eq!(verify_run_as_non_root(&as_user, &c, "", KEY), Ok(()));
        let as_root = pod(json!({"runAsNonRoot": true, "runAsUser": 0}));
        assert_eq!(
            verify_run_as_non_root(&as_root, &c, "1000", KEY),
            Err(
                "container's runAsUser breaks non-root policy (pod: \"p_ns(u)\", container: web)"
                    .into()
            )
        );
        // The container's context wins over the pod's; without the option anything runs.
        let c_off = json!({"name": "web", "securityContext": {"runAsNonRoot": false}});
        assert_eq!(verify_run_as_non_root(&strict, &c_off, "", KEY), Ok(()));
        let c_on = json!({"name": "web", "securityContext": {"runAsNonRoot": true}});
        assert!(verify_run_as_non_root(&pod(json!({})), &c_on, "", KEY).is_err());
        assert_eq!(verify_run_as_non_root(&pod(json!({})), &c, "", KEY), Ok(()));
    }
}
