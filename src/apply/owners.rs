//! Who owns a field, and who made an object: the field managers of a live object, read from its
//! `managedFields` (`fieldsV1`), for a field path as a conflict names it (`.spec.replicas`,
//! `.spec.template.spec.containers[name="backend"].image`); and the tool an object with one of
//! our names comes from ([`Owner`]: us, a Helm release, `kubectl apply`, or someone else), read
//! from its labels, annotations and managers. Pure.

use kube::api::{DynamicObject, ObjectMeta};
use serde_json::Value;

/// The annotation Helm 3 (3.2 and later) puts on everything it installs.
pub const HELM_RELEASE_NAME: &str = "meta.helm.sh/release-name";
pub const HELM_RELEASE_NAMESPACE: &str = "meta.helm.sh/release-namespace";
/// What `kubectl apply` (client-side) keeps on the objects it applies.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// The field manager of `kubectl apply` (client-side).
pub const KUBECTL_APPLY: &str = "kubectl-client-side-apply";

/// Where an object with one of our names comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// todo-deploy applied it (others may have changed some of its fields since).
    Ours,
    /// A Helm release installed it; its name when the object says (Helm 3.2 and later).
    Helm { release: Option<String> },
    /// `kubectl apply` (client-side) made it.
    KubectlApply,
    /// Someone else (`kubectl create`, an operator, a script): its field managers.
    Other { managers: Vec<String> },
}

impl Owner {
    /// Whether todo-deploy may apply to the object as to its own.
    pub fn is_ours(&self) -> bool {
        *self == Owner::Ours
    }

    /// Whether a field manager is one of this owner's tools: the managers whose fields a
    /// takeover makes ours.
    pub fn manages_with(&self, manager: &str) -> bool {
        match self {
            Owner::Ours => false,
            Owner::Helm { .. } => manager.starts_with("helm"),
            Owner::KubectlApply => manager == KUBECTL_APPLY,
            Owner::Other { managers } => managers.iter().any(|m| m == manager),
        }
    }
}

/// Who made the object whose metadata is `meta`, `ours` being our field manager. Helm's
/// annotation wins (an object forced by us is still Helm's); then our manager; then Helm's
/// labels (Helm before 3.2); then `kubectl apply`'s annotation or manager; then whoever wrote it.
pub fn owner(meta: &ObjectMeta, ours: &str) -> Owner {
    let annotation = |key: &str| meta.annotations.as_ref().and_then(|a| a.get(key));
    let label = |key: &str| meta.labels.as_ref().and_then(|l| l.get(key));
    let entries = meta.managed_fields.iter().flatten();
    let managers: Vec<String> = entries
        .clone()
        .filter(|e| e.subresource.as_deref().unwrap_or_default().is_empty())
        .filter_map(|e| e.manager.clone())
        .collect();
    if let Some(release) = annotation(HELM_RELEASE_NAME) {
        return Owner::Helm {
            release: Some(release.clone()),
        };
    }
    if managers.iter().any(|m| m == ours) {
        return Owner::Ours;
    }
    let helm_label = |key: &str| label(key).is_some_and(|v| v.eq_ignore_ascii_case("helm"));
    if helm_label("app.kubernetes.io/managed-by") || helm_label("heritage") {
        return Owner::Helm { release: None };
    }
    if annotation(LAST_APPLIED).is_some() || managers.iter().any(|m| m == KUBECTL_APPLY) {
        return Owner::KubectlApply;
    }
    let mut managers = managers;
    managers.dedup();
    Owner::Other { managers }
}

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

    fn meta(yaml: &str) -> ObjectMeta {
        serde_saphyr::from_str(yaml).expect("metadata")
    }

    #[test]
    fn the_owner_of_an_object_is_read_from_its_labels_annotations_and_managers() {
        let helm = meta(
            "{name: a, labels: {app.kubernetes.io/managed-by: Helm}, annotations: {meta.helm.sh/release-name: todo-app}, managedFields: [{manager: helm, operation: Update}]}",
        );
        let helm_release = || Owner::Helm {
            release: Some("todo-app".into()),
        };
        assert_eq!(owner(&helm, "todo-deploy"), helm_release());
        let forced = meta(
            "{name: a, annotations: {meta.helm.sh/release-name: todo-app}, managedFields: [{manager: todo-deploy, operation: Apply}, {manager: helm, operation: Update}]}",
        );
        assert_eq!(
            owner(&forced, "todo-deploy"),
            helm_release(),
            "still Helm's"
        );
        let old_helm = meta("{name: a, labels: {heritage: Helm}}");
        assert_eq!(
            owner(&old_helm, "todo-deploy"),
            Owner::Helm { release: None }
        );
        let applied = meta(
            "{name: a, annotations: {kubectl.kubernetes.io/last-applied-configuration: '{}'}, managedFields: [{manager: kubectl-client-side-apply, operation: Update}]}",
        );
        assert_eq!(owner(&applied, "todo-deploy"), Owner::KubectlApply);
        let ours = meta(
            "{name: a, managedFields: [{manager: todo-deploy, operation: Apply}, {manager: kubectl-edit, operation: Update}, {manager: kube-controller-manager, operation: Update, subresource: status}]}",
        );
        assert_eq!(owner(&ours, "todo-deploy"), Owner::Ours);
        let created = meta(
            "{name: a, managedFields: [{manager: kubectl-create, operation: Update}, {manager: kube-controller-manager, operation: Update, subresource: status}]}",
        );
        assert_eq!(
            owner(&created, "todo-deploy"),
            Owner::Other {
                managers: vec!["kubectl-create".into()]
            },
            "status writers are not owners"
        );
        assert!(helm_release().manages_with("helm"));
        assert!(!helm_release().manages_with("kubectl-edit"));
        assert!(Owner::KubectlApply.manages_with(KUBECTL_APPLY));
        assert!(!Owner::Ours.manages_with("todo-deploy"));
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
