//! The release's Namespace: created when it does not exist, never changed when it does. Teams
//! are often given a namespace with rights inside it only (`edit`); patching a Namespace would
//! need cluster-wide rights, and a Namespace another tool made (Helm, an admin) is theirs.

use kube::api::{Api, DynamicObject, Patch, PatchParams};

use super::{Applied, ApplyError, ApplyEvent, ApplyOptions, Change, FIELD_MANAGER, Object};
use crate::cluster::{self, Cluster};
use crate::progress::Events;
use crate::render::Kind;

/// Makes sure the Namespace `object` names exists: created (by server-side apply) when it does
/// not, left exactly as it is when it does. Says which.
pub async fn ensure(
    cluster: &Cluster,
    object: &Object,
    options: ApplyOptions,
    events: &Events,
) -> Result<Applied, ApplyError> {
    let api: Api<DynamicObject> =
        Api::all_with(cluster.client.clone(), &Kind::Namespace.resource());
    let label = object.to_string();
    let live = cluster::retrying(events, &format!("read {label}"), || {
        api.get_opt(object.name())
    })
    .await
    .map_err(|source| ApplyError::Api {
        action: "read",
        object: label.clone(),
        source,
    })?;
    let change = match &live {
        Some(ns) if ns.data["status"]["phase"].as_str() == Some("Terminating") => {
            return Err(ApplyError::NamespaceTerminating { object: label });
        }
        Some(_) => Change::Unchanged,
        None => Change::Created,
    };
    let after = match change {
        Change::Created => Some(create(&api, object, options, events).await?),
        _ => live.clone(),
    };
    events.send(ApplyEvent::Applied {
        key: object.key.clone(),
        change,
        dry_run: options.dry_run,
    });
    Ok(Applied {
        key: object.key.clone(),
        change,
        before: live,
        after,
    })
}

async fn create(
    api: &Api<DynamicObject>,
    object: &Object,
    options: ApplyOptions,
    events: &Events,
) -> Result<DynamicObject, ApplyError> {
    let mut params = PatchParams::apply(FIELD_MANAGER);
    params.dry_run = options.dry_run;
    let patch = Patch::Apply(&object.body);
    cluster::retrying(events, &format!("create {object}"), || {
        api.patch(object.name(), &params, &patch)
    })
    .await
    .map_err(|source| match cluster::status_code(&source) {
        Some(403) => ApplyError::NamespaceForbidden {
            namespace: object.name().to_owned(),
        },
        _ => ApplyError::Api {
            action: "create",
            object: object.to_string(),
            source,
        },
    })
}
