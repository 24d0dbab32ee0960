//! Who owns a field: the field managers of a live object, read from its `managedFields`
//! (`fieldsV1`), for a field path as a conflict names it (`.spec.replicas`,
//! `.spec.template.spec.containers[name="backend"].image`). Pure.

use kube::api::DynamicObject;
use serde_json::Value;

/// The managers other than `ours` whose `fieldsV1` hold `field` in `live`.
pub fn owners(live: &DynamicObject, field: &str, ours: &str) -> Vec<String> {
    let Some(keys) = fields_v1_keys(field) else {
        return Vec::new();
    };
    let mut found: Vec<String> = live
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|entry| entry.manager.as_deref() != Some(ours))
        .filter(|entry| {
            entry
                .fields_v1
                .as_ref()
                .is_some_and(|fields| holds(&fields.0, &keys))
        })
        .filter_map(|entry| entry.manager.clone())
        .collect();
    found.dedup();
    found
}

/// Whether `fields` (a `fieldsV1` tree) has the path `keys`.
fn holds(fields: &Value, keys: &[String]) -> bool {
    let mut at = fields;
    for key in keys {
        match at.get(key) {
            Some(next) => at = next,
            None => return false,
        }
    }
    true
}

/// A conflict's field path as `fieldsV1` keys: `.spec.replicas` is `f:spec`, `f:replicas`;
/// `containers[name="backend"]` is `f:containers`, `k:{"name":"backend"}`. `None` for a form
/// it does not know.
fn fields_v1_keys(field: &str) -> Option<Vec<String>> {
    let mut keys = Vec::new();
    let mut rest = field.strip_prefix('.')?;
    while !rest.is_empty() {
        let end = rest.find(['.', '[']).unwrap_or(rest.len());
        let (name, after) = rest.split_at(end);
        if name.is_empty() {
            return None;
        }
        keys.push(format!("f:{name}"));
        rest = after;
        if let Some(selector) = rest.strip_prefix('[') {
            let close = selector.find(']')?;
            keys.push(list_key(&selector[..close])?);
            rest = &selector[close + 1..];
        }
        rest = rest.strip_prefix('.').unwrap_or(rest);
    }
    Some(keys)
}

/// `name="backend",protocol="TCP"` as the `k:` key of a list item: its fields as a JSON object
/// (numbers stay numbers), keys sorted as the server writes them.
fn list_key(selector: &str) -> Option<String> {
    let mut fields = serde_json::Map::new();
    for pair in selector.split(',') {
        let (name, value) = pair.split_once('=')?;
        let value: Value = serde_json::from_str(value).ok()?;
        fields.insert(name.trim().to_owned(), value);
    }
    Some(format!("k:{}", Value::Object(fields)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live() -> DynamicObject {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "managedFields": [
                {"manager": "todo-deploy", "operation": "Apply", "apiVersion": "apps/v1",
                 "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {},
                    "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {"f:image": {}}}}}}}},
                {"manager": "kubectl-edit", "operation": "Update", "apiVersion": "apps/v1",
                 "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
                {"manager": "helm", "operation": "Update", "apiVersion": "apps/v1",
                 "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {"f:image": {}}}}}}}}
            ]}
        }))
        .unwrap()
    }

    /// Transcript 03: the 409 names `.spec.replicas`, owned by `kubectl-edit`.
    #[test]
    fn the_owner_of_a_field_is_read_from_managed_fields() {
        assert_eq!(
            owners(&live(), ".spec.replicas", "todo-deploy"),
            ["kubectl-edit"]
        );
        assert_eq!(
            owners(
                &live(),
                ".spec.template.spec.containers[name=\"web\"].image",
                "todo-deploy"
            ),
            ["helm"]
        );
        assert!(owners(&live(), ".spec.paused", "todo-deploy").is_empty());
        assert!(owners(&live(), "no-dot", "todo-deploy").is_empty());
    }

    #[test]
    fn list_keys_keep_their_types() {
        assert_eq!(
            fields_v1_keys(".spec.ports[port=8000,protocol=\"TCP\"].targetPort"),
            Some(vec![
                "f:spec".to_owned(),
                "f:ports".to_owned(),
                "k:{\"port\":8000,\"protocol\":\"TCP\"}".to_owned(),
                "f:targetPort".to_owned(),
            ])
        );
    }
}
