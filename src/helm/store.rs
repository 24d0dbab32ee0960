//! Helm's records in a namespace, through the API: which releases are there (from the records'
//! labels, nothing decoded), the last deployed revision of one, and what a takeover does to
//! them: every deployed revision marked `uninstalled` (written back as Helm's own `Update`
//! writes it), or every record deleted.

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ListParams, PostParams};

use super::{HelmError, HelmRecord, OWNER, RECORD_TYPE};
use crate::cluster::{self, Cluster};
use crate::progress::Events;

/// A revision as its record's labels tell it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub secret: String,
    pub release: String,
    pub version: u32,
    pub status: String,
}

/// Every Helm record in `namespace` (of `release`, when given), oldest first per release.
async fn list(
    cluster: &Cluster,
    namespace: &str,
    release: Option<&str>,
    events: &Events,
) -> Result<Vec<Secret>, HelmError> {
    let api: Api<Secret> = Api::namespaced(cluster.client.clone(), namespace);
    let mut selector = format!("{}={}", OWNER.0, OWNER.1);
    if let Some(release) = release {
        selector.push_str(&format!(",name={release}"));
    }
    let params = ListParams::default().labels(&selector);
    let listed = cluster::retrying(events, "list the Helm records", || api.list(&params)).await;
    match listed {
        Ok(list) => Ok(list
            .items
            .into_iter()
            .filter(|s| s.type_.as_deref() == Some(RECORD_TYPE))
            .collect()),
        Err(error) if cluster::status_code(&error) == Some(404) => Ok(Vec::new()),
        Err(source) => Err(HelmError::Api {
            action: "list",
            namespace: namespace.to_owned(),
            source,
        }),
    }
}

fn listed(secret: &Secret) -> Listed {
    let label = |key: &str| {
        secret
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(key))
            .cloned()
            .unwrap_or_default()
    };
    Listed {
        secret: secret.metadata.name.clone().unwrap_or_default(),
        release: label("name"),
        version: label("version").parse().unwrap_or(0),
        status: label("status"),
    }
}

/// The revisions Helm recorded in `namespace`, by release then version.
pub async fn releases(
    cluster: &Cluster,
    namespace: &str,
    events: &Events,
) -> Result<Vec<Listed>, HelmError> {
    let mut all: Vec<Listed> = list(cluster, namespace, None, events)
        .await?
        .iter()
        .map(listed)
        .collect();
    all.sort_by(|a, b| (&a.release, a.version).cmp(&(&b.release, b.version)));
    Ok(all)
}

/// The newest deployed revision of `release`, decoded.
pub async fn last_deployed(
    cluster: &Cluster,
    namespace: &str,
    release: &str,
    events: &Events,
) -> Result<HelmRecord, HelmError> {
    let secrets = list(cluster, namespace, Some(release), events).await?;
    let newest = |status: Option<&str>| {
        secrets
            .iter()
            .filter(|s| status.is_none_or(|status| listed(s).status == status))
            .max_by_key(|s| listed(s).version)
    };
    let Some(latest) = newest(None) else {
        let mut others: Vec<String> = releases(cluster, namespace, events)
            .await?
            .into_iter()
            .map(|l| l.release)
            .collect();
        others.dedup();
        return Err(HelmError::NotFound {
            release: release.to_owned(),
            namespace: namespace.to_owned(),
            others,
        });
    };
    match newest(Some("deployed")) {
        Some(deployed) => HelmRecord::decode(deployed),
        None => Err(HelmError::NotDeployed {
            release: release.to_owned(),
            latest: listed(latest).version,
            status: listed(latest).status,
        }),
    }
}

/// After a takeover: every deployed revision of `release` marked `uninstalled` with
/// `description` (so `helm list` no longer shows it, and `helm uninstall` would only remove the
/// records), or, with `remove`, every record deleted. Returns the revisions changed.
pub async fn retire(
    cluster: &Cluster,
    namespace: &str,
    release: &str,
    remove: bool,
    description: &str,
    events: &Events,
) -> Result<Vec<u32>, HelmError> {
    let api: Api<Secret> = Api::namespaced(cluster.client.clone(), namespace);
    let error = |action: &'static str| {
        move |source| HelmError::Api {
            action,
            namespace: namespace.to_owned(),
            source,
        }
    };
    let mut changed = Vec::new();
    for secret in list(cluster, namespace, Some(release), events).await? {
        let name = secret.metadata.name.clone().unwrap_or_default();
        let version = listed(&secret).version;
        if remove {
            let deleted = api.delete(&name, &DeleteParams::default()).await;
            match deleted {
                Ok(_) => changed.push(version),
                Err(e) if cluster::status_code(&e) == Some(404) => {}
                Err(e) => return Err(error("delete")(e)),
            }
            continue;
        }
        if listed(&secret).status != "deployed" {
            continue;
        }
        let now = jiff::Timestamp::now();
        let marked = HelmRecord::decode(&secret)?.uninstalled(description, &now.to_string());
        let mut replacement = marked.encode(now.as_second())?;
        // Written only over the record as it was read.
        replacement.metadata.resource_version = secret.metadata.resource_version.clone();
        let params = PostParams {
            field_manager: Some(crate::apply::FIELD_MANAGER.to_owned()),
            ..PostParams::default()
        };
        api.replace(&name, &params, &replacement)
            .await
            .map_err(error("update"))?;
        changed.push(version);
    }
    Ok(changed)
}
