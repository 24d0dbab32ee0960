//! The apply stage: server-side apply of every rendered object with one field manager, in
//! dependency order; what each apply changed (created, configured, unchanged); conflicts with
//! other field managers explained; and pruning of what the release no longer renders.

pub mod diff;
pub mod events;
pub mod namespace;
pub mod owners;
mod prune;

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::Value;

pub use events::{ApplyEvent, Change, Removal};
pub use owners::Owner;
pub use prune::{Pruned, delete_release, prune};

use crate::cluster::{self, Cluster};
use crate::progress::Events;
use crate::render::{Kind, Manifest, ObjectKey};

/// The one field manager every apply uses.
pub const FIELD_MANAGER: &str = "todo-deploy";

#[derive(Debug, Clone, Copy, Default)]
pub struct ApplyOptions {
    /// Server-side dry run (`dryRun=All`): the server computes the result, nothing is stored.
    pub dry_run: bool,
    /// Take ownership of fields other managers own (`force=true`).
    pub force_conflicts: bool,
    /// In a dry run, the release's namespace does not exist yet: the server cannot dry-run
    /// objects into it, so they are reported as created without asking it.
    pub namespace_missing: bool,
}

/// One applied object: what it was before, what the server made of it.
#[derive(Debug, Clone)]
pub struct Applied {
    pub key: ObjectKey,
    pub change: Change,
    pub before: Option<DynamicObject>,
    /// The server's answer (the would-be object in a dry run); `None` when a dry run could not
    /// ask the server because the namespace does not exist yet.
    pub after: Option<DynamicObject>,
}

#[derive(Debug, Clone, Default)]
pub struct ApplyReport {
    pub applied: Vec<Applied>,
    pub pruned: Vec<Pruned>,
}

impl ApplyReport {
    pub fn changed(&self) -> bool {
        !self.pruned.is_empty() || self.applied.iter().any(|a| a.change != Change::Unchanged)
    }
}

/// A field another manager owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub field: String,
    /// Who owns it (usually one manager).
    pub managers: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{object}: {} owned by another field manager: {}", if conflicts.len() == 1 { "a field is" } else { "fields are" }, conflicts.iter().map(|c| format!("`{}` (by {})", c.field, quoted(&c.managers))).collect::<Vec<_>>().join(", "))]
    Conflict {
        object: String,
        conflicts: Vec<Conflict>,
        /// Who made the object: the hint depends on it.
        owner: Owner,
    },
    #[error("{object}: the API server rejected it: {message}")]
    Rejected { object: String, message: String },
    #[error("{object}: the namespace is being deleted")]
    NamespaceTerminating { object: String },
    #[error("the namespace `{namespace}` does not exist, and these credentials may not create it")]
    NamespaceForbidden { namespace: String },
    #[error("cannot {action} {object}")]
    Api {
        action: &'static str,
        object: String,
        #[source]
        source: kube::Error,
    },
}

impl crate::outcome::Diagnose for ApplyError {
    fn hint(&self) -> Option<String> {
        match self {
            ApplyError::Conflict {
                conflicts, owner, ..
            } => Some(conflict_hint(conflicts, owner)),
            ApplyError::Rejected { .. } => Some(
                "fix the value in the config; `todo-deploy render` shows the manifest that was sent"
                    .to_owned(),
            ),
            ApplyError::NamespaceForbidden { namespace } => Some(format!(
                "ask a cluster admin to create it (`kubectl create namespace {namespace}`) and give you a role in it, or deploy into a namespace you may use (`--namespace`)"
            )),
            ApplyError::NamespaceTerminating { .. } => Some(
                "wait until the namespace is gone (`kubectl get ns`), then run again".to_owned(),
            ),
            ApplyError::Api {
                action, object, source,
            } if crate::cluster::status_code(source) == Some(403) => Some(format!(
                "these credentials may not {action} {object} (an apply that creates needs `create` as well as `patch`); `todo-deploy rbac` prints the Role a cluster admin can grant, or bind the built-in `edit` ClusterRole in the namespace"
            )),
            ApplyError::Api { .. } => None,
        }
    }
}

/// The way out of a conflict, for the situation it is: an object of a Helm release or of
/// `kubectl apply` is taken over whole (`--force-conflicts` would take only the fields it names);
/// a field someone changed is taken back with `--force-conflicts`.
fn conflict_hint(conflicts: &[Conflict], owner: &Owner) -> String {
    match owner {
        Owner::Helm { release } => {
            let release = release.as_deref().unwrap_or("RELEASE");
            format!(
                "it belongs to the Helm release `{release}`: `todo-deploy adopt --from-helm {release}` takes the release over without downtime (`helm list` names it); `--force-conflicts` would take only these fields"
            )
        }
        Owner::KubectlApply => "it was made with `kubectl apply`: `todo-deploy up --adopt` takes it over; `--force-conflicts` would take only these fields".to_owned(),
        Owner::Ours | Owner::Other { .. } => {
            let mut managers: Vec<&str> = conflicts
                .iter()
                .flat_map(|c| c.managers.iter().map(String::as_str))
                .collect();
            managers.dedup();
            let who: Vec<String> = managers
                .iter()
                .map(|m| match *m {
                    owners::KUBECTL_APPLY => "someone ran `kubectl apply` on it".to_owned(),
                    m if m.starts_with("helm") => format!("Helm changed it (`{m}`)"),
                    m => format!("someone changed it with `{m}` (e.g. `kubectl edit` or `kubectl scale`)"),
                })
                .collect();
            format!(
                "{}; run again with `--force-conflicts` to take the field back, or drop it from the config",
                who.join(", and ")
            )
        }
    }
}

/// An object to apply: its identity and its body.
#[derive(Debug, Clone)]
pub struct Object {
    pub key: ObjectKey,
    pub body: Value,
}

impl Object {
    pub fn from_manifest(manifest: &Manifest) -> Object {
        Object {
            key: manifest.key(),
            body: manifest.to_json(),
        }
    }

    /// An object from its JSON (a revision record's manifest), if its kind is one we manage.
    pub fn from_json(body: Value) -> Option<Object> {
        let kind = Kind::of_json(&body)?;
        let name = body["metadata"]["name"].as_str()?.to_owned();
        Some(Object {
            key: ObjectKey::new(kind, name),
            body,
        })
    }

    pub fn kind(&self) -> Kind {
        self.key.kind
    }

    pub fn name(&self) -> &str {
        &self.key.name
    }
}

impl std::fmt::Display for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.key.fmt(f)
    }
}

fn api_for(cluster: &Cluster, namespace: &str, kind: Kind) -> Api<DynamicObject> {
    if kind.namespaced() {
        Api::namespaced_with(cluster.client.clone(), namespace, &kind.resource())
    } else {
        Api::all_with(cluster.client.clone(), &kind.resource())
    }
}

/// Which objects may be applied together: each level needs only what earlier levels made
/// (pods mount the ConfigMap and Secret; an Ingress and the policies name Services and
/// Deployments).
fn level(kind: Kind) -> u8 {
    match kind {
        Kind::Namespace => 0,
        Kind::ConfigMap | Kind::Secret | Kind::Service => 1,
        Kind::Deployment => 2,
        Kind::Ingress
        | Kind::HorizontalPodAutoscaler
        | Kind::PodDisruptionBudget
        | Kind::NetworkPolicy => 3,
    }
}

/// Applies `objects` (the objects in the release's namespace; the Namespace itself is
/// [`namespace::ensure`]'s): every live object is read at once, then each dependency level is
/// applied at once, level after level. Stops after the first level with an error: later objects depend
/// on earlier ones. The report lists the objects in the order given.
pub async fn apply(
    cluster: &Cluster,
    namespace: &str,
    objects: &[Object],
    options: ApplyOptions,
    events: &Events,
) -> Result<ApplyReport, ApplyError> {
    let namespace_missing = options.dry_run && options.namespace_missing;
    let befores = match namespace_missing {
        true => vec![None; objects.len()],
        false => {
            let reads = objects
                .iter()
                .map(|object| read(cluster, namespace, object, events));
            futures::future::try_join_all(reads).await?
        }
    };
    let mut pending: Vec<(&Object, Option<DynamicObject>)> = objects.iter().zip(befores).collect();
    pending.sort_by_key(|(object, _)| level(object.kind()));
    let mut applied: Vec<Applied> = Vec::with_capacity(objects.len());
    for group in pending.chunk_by(|a, b| level(a.0.kind()) == level(b.0.kind())) {
        let writes = group.iter().map(|(object, before)| async move {
            if namespace_missing && object.kind().namespaced() {
                return Ok(Applied::new_in_missing_namespace(object));
            }
            write(cluster, namespace, object, before.clone(), options, events).await
        });
        // Said in the order given, whatever order the answers came in.
        for result in futures::future::join_all(writes).await {
            let done = result?;
            events.send(ApplyEvent::Applied {
                key: done.key.clone(),
                change: done.change,
                dry_run: options.dry_run,
            });
            applied.push(done);
        }
    }
    applied.sort_by_key(|a| objects.iter().position(|o| o.key == a.key));
    Ok(ApplyReport {
        applied,
        pruned: Vec::new(),
    })
}

impl Applied {
    /// An object a dry run could not send: its namespace does not exist yet.
    fn new_in_missing_namespace(object: &Object) -> Applied {
        Applied {
            key: object.key.clone(),
            change: Change::Created,
            before: None,
            after: None,
        }
    }
}

/// The live object, if there is one.
async fn read(
    cluster: &Cluster,
    namespace: &str,
    object: &Object,
    events: &Events,
) -> Result<Option<DynamicObject>, ApplyError> {
    let api = api_for(cluster, namespace, object.kind());
    cluster::retrying(events, &format!("read {object}"), || {
        api.get_opt(object.name())
    })
    .await
    .map_err(|source| ApplyError::Api {
        action: "read",
        object: object.to_string(),
        source,
    })
}

/// Applies one object and says what changed, by content: never by `resourceVersion`, which a
/// status write between the read and the apply (a controller counting replicas) moves although
/// nothing we own changed.
async fn write(
    cluster: &Cluster,
    namespace: &str,
    object: &Object,
    before: Option<DynamicObject>,
    options: ApplyOptions,
    events: &Events,
) -> Result<Applied, ApplyError> {
    let mut params = PatchParams::apply(FIELD_MANAGER);
    params.force = options.force_conflicts;
    params.dry_run = options.dry_run;
    let api = api_for(cluster, namespace, object.kind());
    let label = object.to_string();
    let patch = Patch::Apply(&object.body);
    let after = cluster::retrying(events, &format!("apply {label}"), || {
        api.patch(object.name(), &params, &patch)
    })
    .await
    .map_err(|error| explain(&label, before.as_ref(), error))?;
    let change = match &before {
        None => Change::Created,
        Some(live) if diff::normalized(live) == diff::normalized(&after) => Change::Unchanged,
        Some(_) => Change::Configured,
    };
    Ok(Applied {
        key: object.key.clone(),
        change,
        before,
        after: Some(after),
    })
}

/// `` `a`, `b` ``.
fn quoted(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    quoted.join(", ")
}

/// Turns an apply error into what the user needs to know. A conflict's managers are read from
/// the live object's `managedFields`; only when it does not say (it changed since the read) from
/// the cause's message, the one place the Status names them.
fn explain(object: &str, live: Option<&DynamicObject>, error: kube::Error) -> ApplyError {
    let kube::Error::Api(status) = &error else {
        return ApplyError::Api {
            action: "apply",
            object: object.to_owned(),
            source: error,
        };
    };
    let causes = status
        .details
        .as_ref()
        .map(|d| d.causes.as_slice())
        .unwrap_or_default();
    match (status.code, status.reason.as_str()) {
        (409, "Conflict") if causes.iter().any(|c| c.reason == "FieldManagerConflict") => {
            ApplyError::Conflict {
                object: object.to_owned(),
                owner: live.map_or(Owner::Ours, |l| owners::owner(&l.metadata, FIELD_MANAGER)),
                conflicts: causes
                    .iter()
                    .filter(|c| c.reason == "FieldManagerConflict")
                    .map(|c| {
                        let owners = live.map(|l| owners::owners(l, &c.field, FIELD_MANAGER));
                        let managers = match owners.filter(|o| !o.is_empty()) {
                            Some(owners) => owners,
                            None => {
                                vec![c.message.split('"').nth(1).unwrap_or(&c.message).to_owned()]
                            }
                        };
                        Conflict {
                            field: c.field.clone(),
                            managers,
                        }
                    })
                    .collect(),
            }
        }
        (403, _) if status.message.contains("being terminated") => {
            ApplyError::NamespaceTerminating {
                object: object.to_owned(),
            }
        }
        (400 | 422, _) => ApplyError::Rejected {
            object: object.to_owned(),
            message: status.message.clone(),
        },
        _ => ApplyError::Api {
            action: "apply",
            object: object.to_owned(),
            source: error,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service};
    use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;
    use kube::api::ObjectMeta;

    /// The user was told someone edited a Helm-installed Namespace; the hint now names
    /// what really owns a field.
    #[test]
    fn a_conflict_hint_names_the_real_owner() {
        use crate::outcome::Diagnose;
        let conflict = |managers: &[&str], owner: Owner| ApplyError::Conflict {
            object: "Service/backend".into(),
            conflicts: vec![Conflict {
                field: ".spec.selector".into(),
                managers: managers.iter().map(|m| (*m).to_owned()).collect(),
            }],
            owner,
        };
        let hint = |error: ApplyError| error.hint().unwrap_or_default();
        let helm = hint(conflict(
            &["helm"],
            Owner::Helm {
                release: Some("todo-app".into()),
            },
        ));
        assert!(
            helm.contains("belongs to the Helm release `todo-app`"),
            "{helm}"
        );
        assert!(
            helm.contains("`todo-deploy adopt --from-helm todo-app`"),
            "{helm}"
        );
        assert!(!helm.contains("kubectl edit"), "{helm}");
        let applied = hint(conflict(&[owners::KUBECTL_APPLY], Owner::KubectlApply));
        assert!(applied.contains("made with `kubectl apply`"), "{applied}");
        assert!(applied.contains("`todo-deploy up --adopt`"), "{applied}");
        let edited = hint(conflict(&["kubectl-edit"], Owner::Ours));
        assert!(
            edited.starts_with(
                "someone changed it with `kubectl-edit` (e.g. `kubectl edit` or `kubectl scale`)"
            ),
            "{edited}"
        );
        assert!(edited.contains("`--force-conflicts`"), "{edited}");
        let applied_on_ours = hint(conflict(&[owners::KUBECTL_APPLY, "helm"], Owner::Ours));
        assert!(
            applied_on_ours
                .starts_with("someone ran `kubectl apply` on it, and Helm changed it (`helm`)"),
            "{applied_on_ours}"
        );
    }

    #[test]
    fn every_rendered_kind_can_be_applied_again_from_a_record() {
        let meta = || ObjectMeta {
            name: Some("x".to_owned()),
            ..Default::default()
        };
        let manifests = [
            Manifest::Namespace(Namespace {
                metadata: meta(),
                ..Default::default()
            }),
            Manifest::ConfigMap(ConfigMap {
                metadata: meta(),
                ..Default::default()
            }),
            Manifest::Secret(Secret {
                metadata: meta(),
                ..Default::default()
            }),
            Manifest::Service(Service {
                metadata: meta(),
                ..Default::default()
            }),
            Manifest::Deployment(Deployment {
                metadata: meta(),
                ..Default::default()
            }),
            Manifest::Ingress(Ingress {
                metadata: meta(),
                ..Default::default()
            }),
            Manifest::HorizontalPodAutoscaler(HorizontalPodAutoscaler {
                metadata: meta(),
                ..Default::default()
            }),
            Manifest::PodDisruptionBudget(PodDisruptionBudget {
                metadata: meta(),
                ..Default::default()
            }),
            Manifest::NetworkPolicy(NetworkPolicy {
                metadata: meta(),
                ..Default::default()
            }),
        ];
        for manifest in &manifests {
            let object = Object::from_manifest(manifest);
            let again = Object::from_json(object.body.clone()).expect("a known kind");
            assert_eq!(again.key, object.key, "{object}");
        }
        assert_eq!(Kind::ALL.len(), manifests.len());
    }
}
