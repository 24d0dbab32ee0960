//! What an apply would change: live objects against the server's dry-run result, as a unified
//! diff per object, with Secret data masked on both sides.

use kube::api::DynamicObject;
use serde_json::Value;
use similar::TextDiff;

/// Annotations that controllers write on objects we apply: not part of what a user controls.
const CONTROLLER_ANNOTATIONS: [&str; 1] = ["deployment.kubernetes.io/revision"];

/// The object without the fields the server and its controllers maintain (managedFields,
/// resourceVersion, generation, status, timestamps, the Deployment controller's revision
/// annotation), so two versions compare on what a user controls.
pub fn normalized(object: &DynamicObject) -> Value {
    let mut value = serde_json::to_value(object).unwrap_or_default();
    if let Some(metadata) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in [
            "managedFields",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "uid",
        ] {
            metadata.remove(field);
        }
        if let Some(annotations) = metadata
            .get_mut("annotations")
            .and_then(Value::as_object_mut)
        {
            for annotation in CONTROLLER_ANNOTATIONS {
                annotations.remove(annotation);
            }
            if annotations.is_empty() {
                metadata.remove("annotations");
            }
        }
    }
    if let Some(object) = value.as_object_mut() {
        object.remove("status");
    }
    value
}

/// Replaces the values of a Secret's `data` on both sides: `***` where they agree,
/// `*** (before)` and `*** (after)` where they differ, as `kubectl diff` does.
pub fn mask_secret_data(before: &mut Value, after: &mut Value) {
    let old = before.get("data").and_then(Value::as_object).cloned();
    let new = after.get("data").and_then(Value::as_object).cloned();
    let mask = |side: &mut Value,
                own: &Option<serde_json::Map<String, Value>>,
                other: &Option<serde_json::Map<String, Value>>,
                label: &str| {
        if let Some(data) = side.get_mut("data").and_then(Value::as_object_mut) {
            for (key, value) in data.iter_mut() {
                let same = other.as_ref().and_then(|o| o.get(key))
                    == own.as_ref().and_then(|o| o.get(key));
                *value = Value::from(if same {
                    "***".to_owned()
                } else {
                    format!("*** ({label})")
                });
            }
        }
    };
    mask(before, &old, &new, "before");
    mask(after, &new, &old, "after");
}

/// A unified diff of two objects' YAML, or `None` if they are the same.
pub fn unified(title: &str, before: Option<&Value>, after: &Value) -> Option<String> {
    let old = before.map(yaml).unwrap_or_default();
    let new = yaml(after);
    if old == new {
        return None;
    }
    let diff = TextDiff::from_lines(&old, &new);
    Some(
        diff.unified_diff()
            .context_radius(3)
            .header(&format!("live/{title}"), &format!("applied/{title}"))
            .to_string(),
    )
}

fn yaml(value: &Value) -> String {
    serde_saphyr::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_values_are_masked_and_changes_marked() {
        let mut before = json!({"data": {"A": "b2xk", "B": "c2FtZQ=="}});
        let mut after = json!({"data": {"A": "bmV3", "B": "c2FtZQ==", "C": "YWRkZWQ="}});
        mask_secret_data(&mut before, &mut after);
        assert_eq!(before, json!({"data": {"A": "*** (before)", "B": "***"}}));
        assert_eq!(
            after,
            json!({"data": {"A": "*** (after)", "B": "***", "C": "*** (after)"}})
        );
    }

    #[test]
    fn unified_diff_shows_only_changes() {
        let before = json!({"spec": {"replicas": 2, "image": "a:1"}});
        let after = json!({"spec": {"replicas": 2, "image": "a:2"}});
        let diff = unified("Deployment/backend", Some(&before), &after).unwrap();
        assert!(diff.contains("-  image: a:1"), "{diff}");
        assert!(diff.contains("+  image: a:2"), "{diff}");
        assert!(unified("x", Some(&before), &before).is_none());
    }

    #[test]
    fn normalization_drops_server_fields() {
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "resourceVersion": "7", "managedFields": [], "uid": "u"},
            "data": {"k": "v"}, "status": {}
        }))
        .unwrap();
        assert_eq!(
            normalized(&object),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}})
        );
    }

    /// Transcript 10 (a): the Deployment controller writes status and its revision annotation
    /// after a rollout; neither is a change of ours.
    #[test]
    fn a_status_only_write_is_no_change() {
        let before: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "resourceVersion": "17060", "generation": 1,
                         "annotations": {"deployment.kubernetes.io/revision": "1"}},
            "spec": {"replicas": 2}, "status": {"observedGeneration": 1, "replicas": 1}
        }))
        .unwrap();
        let mut after = before.clone();
        after.metadata.resource_version = Some("17093".into());
        after.data["status"] = json!({"observedGeneration": 1, "replicas": 2, "readyReplicas": 2});
        assert_eq!(normalized(&before), normalized(&after));
        after.data["spec"]["replicas"] = json!(3);
        assert_ne!(normalized(&before), normalized(&after));
        let mut annotated = before.clone();
        annotated
            .metadata
            .annotations
            .get_or_insert_default()
            .insert("team".into(), "a".into());
        assert_ne!(normalized(&before), normalized(&annotated));
    }
}
