//! Before anything changes: the live objects that have the names of the objects we render, and
//! which of them another tool made ([`Found`]: a Helm release, `kubectl apply`, someone else).
//! The Namespace is not among them: it is never changed once it exists.

use std::collections::BTreeMap;
use std::fmt;

use kube::api::{Api, DynamicObject};

use super::AdoptError;
use crate::apply::{FIELD_MANAGER, Object, Owner, owners};
use crate::cluster::{self, Cluster};
use crate::progress::Events;
use crate::render::{Kind, ObjectKey};

/// An object with one of our names that another tool made.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub key: ObjectKey,
    pub owner: Owner,
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.key)?;
        match &self.owner {
            Owner::Helm {
                release: Some(release),
            } => write!(f, "Helm release `{release}`"),
            Owner::Helm { release: None } => f.write_str("a Helm release"),
            Owner::KubectlApply => f.write_str("made by `kubectl apply`"),
            Owner::Other { managers } if managers.is_empty() => f.write_str("made by another tool"),
            Owner::Other { managers } => {
                let quoted: Vec<String> = managers.iter().map(|m| format!("`{m}`")).collect();
                write!(f, "made by {}", quoted.join(", "))
            }
            Owner::Ours => f.write_str("todo-deploy's"),
        }
    }
}

/// The API of `kind` in `namespace`.
pub fn api(cluster: &Cluster, namespace: &str, kind: Kind) -> Api<DynamicObject> {
    Api::namespaced_with(cluster.client.clone(), namespace, &kind.resource())
}

/// The live objects with the names of `objects` (the Namespace's content), read all at once.
pub async fn live(
    cluster: &Cluster,
    namespace: &str,
    objects: &[Object],
    events: &Events,
) -> Result<BTreeMap<ObjectKey, DynamicObject>, AdoptError> {
    let reads = objects
        .iter()
        .filter(|o| o.kind().namespaced())
        .map(|object| async move {
            let api = api(cluster, namespace, object.kind());
            let read = cluster::retrying(events, &format!("read {object}"), || {
                api.get_opt(object.name())
            })
            .await;
            match read {
                Ok(found) => Ok(found.map(|live| (object.key.clone(), live))),
                // A namespace that does not exist holds nothing.
                Err(error) if cluster::status_code(&error) == Some(404) => Ok(None),
                Err(source) => Err(AdoptError::Api {
                    action: "read",
                    object: object.to_string(),
                    source,
                }),
            }
        });
    let found = futures::future::try_join_all(reads).await?;
    Ok(found.into_iter().flatten().collect())
}

/// The live objects another tool made, in the order of their keys.
pub fn foreign(live: &BTreeMap<ObjectKey, DynamicObject>) -> Vec<Found> {
    live.iter()
        .map(|(key, object)| Found {
            key: key.clone(),
            owner: owners::owner(&object.metadata, FIELD_MANAGER),
        })
        .filter(|found| !found.owner.is_ours())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(kind: Kind, yaml_meta: &str) -> (ObjectKey, DynamicObject) {
        let resource = kind.resource();
        let object: DynamicObject = serde_saphyr::from_str(&format!(
            "{{apiVersion: {}, kind: {}, metadata: {yaml_meta}}}",
            resource.api_version, resource.kind
        ))
        .expect("an object");
        let name = object.metadata.name.clone().unwrap_or_default();
        (ObjectKey::new(kind, name), object)
    }

    #[test]
    fn only_objects_another_tool_made_are_found() {
        let live = BTreeMap::from([
            object(
                Kind::Service,
                "{name: backend, annotations: {meta.helm.sh/release-name: todo-app}, managedFields: [{manager: helm, operation: Update}]}",
            ),
            object(
                Kind::ConfigMap,
                "{name: todo-config, managedFields: [{manager: todo-deploy, operation: Apply}, {manager: kubectl-edit, operation: Update}]}",
            ),
            object(
                Kind::Secret,
                "{name: todo-secrets, managedFields: [{manager: kubectl-create, operation: Update}]}",
            ),
        ]);
        let found: Vec<String> = foreign(&live).iter().map(ToString::to_string).collect();
        assert_eq!(
            found,
            [
                "Secret/todo-secrets: made by `kubectl-create`",
                "Service/backend: Helm release `todo-app`"
            ],
            "an object of ours someone edited is still ours"
        );
    }
}
