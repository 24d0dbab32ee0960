//! Pruning: objects that carry the release's labels but are no longer rendered (an optional
//! resource switched off, a service removed) are deleted after a successful apply.

use std::collections::BTreeSet;

use kube::api::{Api, DeleteParams, DynamicObject, ListParams};

use super::{ApplyError, ApplyEvent, Removal};
use crate::cluster::{self, Cluster};
use crate::progress::Events;
use crate::render::{Kind, ObjectKey, labels};

/// An object deleted (or, in a dry run, that would be).
pub type Pruned = ObjectKey;

/// Deletes every object of `release` in `namespace` whose `(kind, name)` is not in `keep`.
/// Deployments go with background propagation: their ReplicaSets and pods follow.
pub async fn prune(
    cluster: &Cluster,
    namespace: &str,
    release: &str,
    keep: &BTreeSet<ObjectKey>,
    dry_run: bool,
    events: &Events,
) -> Result<Vec<Pruned>, ApplyError> {
    let mut params = DeleteParams::background();
    params.dry_run = dry_run;
    delete_release(
        cluster,
        namespace,
        release,
        keep,
        &params,
        Removal::Prune,
        events,
    )
    .await
}

/// Deletes every object of `release` in `namespace` except those in `keep`, with `params`
/// (propagation, dry run), in reverse apply order.
pub async fn delete_release(
    cluster: &Cluster,
    namespace: &str,
    release: &str,
    keep: &BTreeSet<ObjectKey>,
    params: &DeleteParams,
    removal: Removal,
    events: &Events,
) -> Result<Vec<Pruned>, ApplyError> {
    let dry_run = params.dry_run;
    let selector = labels::release_selector(release);
    let api = |kind: Kind| -> Api<DynamicObject> {
        Api::namespaced_with(cluster.client.clone(), namespace, &kind.resource())
    };
    // Every kind is listed at once; the deletes then go in order, dependents first.
    let lists = Kind::namespaced_in_delete_order().map(|kind| {
        let (api, list) = (api(kind), ListParams::default().labels(&selector));
        async move {
            cluster::retrying(events, &format!("list {kind}s"), || api.list(&list))
                .await
                .map(|listed| (kind, listed.items))
                .map_err(|source| ApplyError::Api {
                    action: "list",
                    object: format!("{kind}s"),
                    source,
                })
        }
    });
    let listed = futures::future::try_join_all(lists).await?;
    let mut pruned = Vec::new();
    for (kind, objects) in listed {
        for object in objects {
            let key = ObjectKey::new(kind, object.metadata.name.clone().unwrap_or_default());
            if keep.contains(&key) || object.metadata.deletion_timestamp.is_some() {
                continue;
            }
            if delete(&api(kind), &key, params, events).await? {
                events.send(ApplyEvent::Removed {
                    key: key.clone(),
                    removal,
                    dry_run,
                });
                pruned.push(key);
            }
        }
    }
    Ok(pruned)
}

/// Deletes one object; `false` when it was gone already.
async fn delete(
    api: &Api<DynamicObject>,
    key: &ObjectKey,
    params: &DeleteParams,
    events: &Events,
) -> Result<bool, ApplyError> {
    let deleted = cluster::retrying(events, &format!("delete {key}"), || {
        api.delete(&key.name, params)
    })
    .await;
    match deleted {
        Ok(_) => Ok(true),
        Err(error) if cluster::status_code(&error) == Some(404) => Ok(false),
        Err(source) => Err(ApplyError::Api {
            action: "delete",
            object: key.to_string(),
            source,
        }),
    }
}
