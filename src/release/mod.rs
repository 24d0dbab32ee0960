//! Releases: a numbered revision record per `up`, `upgrade` and `rollback`, kept in the
//! release's namespace as a Secret of its own type (`todo-deploy.io/release.v1`), gzip-compressed
//! JSON. A record holds what was deployed — images, the config digest, the manifests — with the
//! Secret's values replaced by digests: values are never stored outside the real Secret.
//!
//! The records carry labels of their own, never the release's instance label, so that pruning
//! and `down` leave the history alone.

pub mod events;
pub mod lock;
mod record;
mod store;

use std::collections::BTreeMap;
use std::io::{Read, Write};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};

pub use record::{ABANDONED, ImageRecord, Record, RevisionStatus, digest_of, redact_manifests};

use crate::cluster::{self, Cluster};
use crate::progress::Events;
pub use events::ReleaseEvent;

/// The Secret type of revision records.
pub const RECORD_TYPE: &str = "todo-deploy.io/release.v1";
/// Labels that select a release's records.
pub const OWNER_LABEL: &str = "todo-deploy.io/owner";
pub const RELEASE_LABEL: &str = "todo-deploy.io/release";
pub const REVISION_LABEL: &str = "todo-deploy.io/revision";
pub const STATUS_LABEL: &str = "todo-deploy.io/status";

#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error("cannot {action} the release history in `{namespace}`")]
    Api {
        action: &'static str,
        namespace: String,
        #[source]
        source: kube::Error,
    },
    #[error("the release record `{name}` is unreadable: {reason}")]
    Corrupt { name: String, reason: String },
}

impl crate::outcome::Diagnose for ReleaseError {
    fn hint(&self) -> Option<String> {
        Some(
            "`kubectl get secrets -l todo-deploy.io/owner=todo-deploy` lists the release records"
                .to_owned(),
        )
    }
}

/// The name of a revision's record: `todo-deploy.<release>.v<revision>`.
pub fn record_name(release: &str, revision: u32) -> String {
    format!("todo-deploy.{release}.v{revision}")
}

fn api(cluster: &Cluster, namespace: &str) -> Api<Secret> {
    Api::namespaced(cluster.client.clone(), namespace)
}

fn selector(release: &str) -> String {
    format!("{OWNER_LABEL}=todo-deploy,{RELEASE_LABEL}={release}")
}

/// Every revision of `release`, oldest first. A namespace that does not exist has none.
pub async fn history(
    cluster: &Cluster,
    namespace: &str,
    release: &str,
    events: &Events,
) -> Result<Vec<Record>, ReleaseError> {
    let api = api(cluster, namespace);
    let params = ListParams::default().labels(&selector(release));
    let listed =
        match cluster::retrying(events, "list the release history", || api.list(&params)).await {
            Ok(listed) => listed,
            Err(error) if cluster::status_code(&error) == Some(404) => return Ok(Vec::new()),
            Err(source) => {
                return Err(ReleaseError::Api {
                    action: "read",
                    namespace: namespace.to_owned(),
                    source,
                });
            }
        };
    let mut records = Vec::new();
    for secret in listed
        .items
        .iter()
        .filter(|s| s.type_.as_deref() == Some(RECORD_TYPE))
    {
        match decode(secret) {
            Ok(record) => records.push(record),
            // One bad record must not block every command: say which, and how to remove it.
            Err(error) => events.send(ReleaseEvent::RecordUnreadable {
                name: secret.metadata.name.clone().unwrap_or_default(),
                namespace: namespace.to_owned(),
                reason: error.to_string(),
            }),
        }
    }
    records.sort_by_key(|r| r.revision);
    Ok(records)
}

/// The history as a reader should see it: pending revisions that no live run owns (nobody
/// holds the lock) are shown as the failures they are.
pub async fn settled_history(
    cluster: &Cluster,
    namespace: &str,
    release: &str,
    events: &Events,
) -> Result<Vec<Record>, ReleaseError> {
    let records = history(cluster, namespace, release, events).await?;
    if !records.iter().any(|r| r.status == RevisionStatus::Pending) {
        return Ok(records);
    }
    // A lock that cannot be read is taken as held: better "pending" than a false "failed".
    let held = !matches!(
        lock::holder(cluster, namespace, release, events).await,
        Ok(None)
    );
    Ok(match held {
        true => records,
        false => records.into_iter().map(Record::abandoned).collect(),
    })
}

/// Stores a new revision (create: two writers of the same revision cannot both succeed). A
/// create retried after a lost answer may find its own first attempt: that is success.
pub async fn create(
    cluster: &Cluster,
    namespace: &str,
    record: &Record,
    events: &Events,
) -> Result<(), ReleaseError> {
    let api = api(cluster, namespace);
    let secret = encode(record)?;
    let params = PostParams::default();
    let created = cluster::retrying(events, "record the revision", || {
        api.create(&params, &secret)
    })
    .await;
    match created {
        Ok(_) => Ok(()),
        Err(error) if cluster::status_code(&error) == Some(409) => {
            let name = record_name(&record.release, record.revision);
            match api.get_opt(&name).await {
                Ok(Some(stored)) if decode(&stored).ok().as_ref() == Some(record) => Ok(()),
                _ => Err(ReleaseError::Api {
                    action: "write",
                    namespace: namespace.to_owned(),
                    source: error,
                }),
            }
        }
        Err(source) => Err(ReleaseError::Api {
            action: "write",
            namespace: namespace.to_owned(),
            source,
        }),
    }
}

/// Rewrites an existing revision (its status changes: superseded, failed…).
pub async fn update(
    cluster: &Cluster,
    namespace: &str,
    record: &Record,
    events: &Events,
) -> Result<(), ReleaseError> {
    let api = api(cluster, namespace);
    let secret = encode(record)?;
    let name = record_name(&record.release, record.revision);
    let params = PatchParams::apply(crate::apply::FIELD_MANAGER).force();
    let patch = Patch::Apply(&secret);
    cluster::retrying(events, "update the revision", || {
        api.patch(&name, &params, &patch)
    })
    .await
    .map(|_| ())
    .map_err(|source| ReleaseError::Api {
        action: "write",
        namespace: namespace.to_owned(),
        source,
    })
}

/// Deletes the oldest revisions beyond `keep`, all at once.
pub async fn trim(
    cluster: &Cluster,
    namespace: &str,
    records: &[Record],
    keep: usize,
    events: &Events,
) -> Result<(), ReleaseError> {
    let api = api(cluster, namespace);
    let excess = records.len().saturating_sub(keep);
    let params = DeleteParams::default();
    let deletes = records[..excess].iter().map(|record| {
        let name = record_name(&record.release, record.revision);
        let (api, params) = (&api, &params);
        async move {
            match cluster::retrying(events, "trim the history", || api.delete(&name, params)).await
            {
                Ok(_) => Ok(()),
                Err(error) if cluster::status_code(&error) == Some(404) => Ok(()),
                Err(source) => Err(ReleaseError::Api {
                    action: "trim",
                    namespace: namespace.to_owned(),
                    source,
                }),
            }
        }
    });
    futures::future::try_join_all(deletes).await.map(|_| ())
}

/// Marks every pending revision failed (abandoned): called by a run that holds the lock, so no
/// other run can be deploying them. Returns the history as it is now.
pub async fn abandon_pending(
    cluster: &Cluster,
    namespace: &str,
    history: Vec<Record>,
    events: &Events,
) -> Result<Vec<Record>, ReleaseError> {
    let mut settled = Vec::with_capacity(history.len());
    for record in history {
        if record.status == RevisionStatus::Pending {
            let record = record.abandoned();
            events.send(ReleaseEvent::Abandoned {
                revision: record.revision,
            });
            update(cluster, namespace, &record, events).await?;
            settled.push(record);
        } else {
            settled.push(record);
        }
    }
    Ok(settled)
}

/// Marks the deployed revision uninstalled (`down` that keeps the history), and any pending one
/// abandoned. Returns the revisions marked uninstalled.
pub async fn uninstall(
    cluster: &Cluster,
    namespace: &str,
    release: &str,
    events: &Events,
) -> Result<Vec<u32>, ReleaseError> {
    let history = history(cluster, namespace, release, events).await?;
    let history = abandon_pending(cluster, namespace, history, events).await?;
    let mut marked = Vec::new();
    for mut record in history {
        if record.status == RevisionStatus::Deployed {
            record.status = RevisionStatus::Uninstalled;
            record.description = "Uninstall complete".to_owned();
            update(cluster, namespace, &record, events).await?;
            marked.push(record.revision);
        }
    }
    Ok(marked)
}

/// Deletes every record of `release` (`down --purge`).
pub async fn purge(
    cluster: &Cluster,
    namespace: &str,
    release: &str,
    events: &Events,
) -> Result<usize, ReleaseError> {
    let records = history(cluster, namespace, release, events).await?;
    trim(cluster, namespace, &records, 0, events).await?;
    Ok(records.len())
}

fn encode(record: &Record) -> Result<Secret, ReleaseError> {
    let corrupt = |reason: String| ReleaseError::Corrupt {
        name: record_name(&record.release, record.revision),
        reason,
    };
    let json = serde_json::to_vec(record).map_err(|e| corrupt(e.to_string()))?;
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gzip.write_all(&json).map_err(|e| corrupt(e.to_string()))?;
    let compressed = gzip.finish().map_err(|e| corrupt(e.to_string()))?;
    Ok(Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(record_name(&record.release, record.revision)),
            labels: Some(BTreeMap::from([
                (OWNER_LABEL.to_owned(), "todo-deploy".to_owned()),
                (RELEASE_LABEL.to_owned(), record.release.clone()),
                (REVISION_LABEL.to_owned(), record.revision.to_string()),
                (STATUS_LABEL.to_owned(), record.status.as_str().to_owned()),
            ])),
            ..Default::default()
        },
        type_: Some(RECORD_TYPE.to_owned()),
        data: Some(BTreeMap::from([(
            "release".to_owned(),
            ByteString(compressed),
        )])),
        ..Default::default()
    })
}

fn decode(secret: &Secret) -> Result<Record, ReleaseError> {
    let name = secret.metadata.name.clone().unwrap_or_default();
    let corrupt = |reason: String| ReleaseError::Corrupt {
        name: name.clone(),
        reason,
    };
    let data = secret
        .data
        .as_ref()
        .and_then(|d| d.get("release"))
        .ok_or_else(|| corrupt("no `release` key".to_owned()))?;
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(data.0.as_slice())
        .read_to_end(&mut json)
        .map_err(|e| corrupt(e.to_string()))?;
    serde_json::from_slice(&json).map_err(|e| corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_their_secret() {
        let record = Record {
            release: "todo".into(),
            revision: 3,
            status: RevisionStatus::Deployed,
            time: "2026-11-23T05:00:00Z".into(),
            tool_version: "0.1.0".into(),
            description: "Upgrade complete".into(),
            images: vec![ImageRecord {
                service: "backend".into(),
                reference: "todo-backend:v2".into(),
                id: Some("sha256:abc".into()),
            }],
            config_digest: "d".into(),
            manifests: vec![serde_json::json!({"kind": "ConfigMap"})],
        };
        let secret = encode(&record).unwrap();
        assert_eq!(secret.metadata.name.as_deref(), Some("todo-deploy.todo.v3"));
        assert_eq!(secret.type_.as_deref(), Some(RECORD_TYPE));
        let labels = secret.metadata.labels.as_ref().unwrap();
        assert!(
            !labels.contains_key(crate::render::labels::INSTANCE),
            "never pruned with the release"
        );
        assert_eq!(labels[STATUS_LABEL], "deployed");
        assert_eq!(decode(&secret).unwrap(), record);
    }
}
