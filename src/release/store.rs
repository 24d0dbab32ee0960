//! Where a release lock is kept: a `coordination.k8s.io/v1` Lease, or — for credentials that
//! may not write Leases, as the built-in `edit` and `admin` roles may not — a ConfigMap of the
//! same name holding the same fields in its `data`. Either way the lock is read and written as
//! a [`Lease`] value, with its `resourceVersion` for compare-and-swap.

use std::collections::BTreeMap;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};

use super::{OWNER_LABEL, RELEASE_LABEL};

/// The kind of object a lock lives in.
#[derive(Clone)]
pub enum Store {
    Lease(Api<Lease>),
    ConfigMap(Api<ConfigMap>),
}

impl Store {
    /// What holds the lock, for messages: `Lease` or `ConfigMap`.
    pub fn kind(&self) -> &'static str {
        match self {
            Store::Lease(_) => "Lease",
            Store::ConfigMap(_) => "ConfigMap",
        }
    }

    pub async fn get(&self, name: &str) -> Result<Option<Lease>, kube::Error> {
        match self {
            Store::Lease(api) => api.get_opt(name).await,
            Store::ConfigMap(api) => Ok(api.get_opt(name).await?.map(from_config_map)),
        }
    }

    pub async fn create(&self, lease: &Lease, release: &str) -> Result<Lease, kube::Error> {
        let params = PostParams::default();
        match self {
            Store::Lease(api) => api.create(&params, lease).await,
            Store::ConfigMap(api) => {
                let created = api.create(&params, &to_config_map(lease, release)).await?;
                Ok(from_config_map(created))
            }
        }
    }

    /// Replaces the lock; the `resourceVersion` it carries must still be the stored one.
    pub async fn replace(&self, lease: &Lease, release: &str) -> Result<Lease, kube::Error> {
        let params = PostParams::default();
        let name = lease.metadata.name.clone().unwrap_or_default();
        match self {
            Store::Lease(api) => api.replace(&name, &params, lease).await,
            Store::ConfigMap(api) => {
                let replaced = api
                    .replace(&name, &params, &to_config_map(lease, release))
                    .await?;
                Ok(from_config_map(replaced))
            }
        }
    }

    pub async fn delete(&self, name: &str, params: &DeleteParams) -> Result<(), kube::Error> {
        match self {
            Store::Lease(api) => api.delete(name, params).await.map(|_| ()),
            Store::ConfigMap(api) => api.delete(name, params).await.map(|_| ()),
        }
    }
}

const HOLDER: &str = "holderIdentity";
const DURATION: &str = "leaseDurationSeconds";
const ACQUIRED: &str = "acquireTime";
const RENEWED: &str = "renewTime";
const TRANSITIONS: &str = "leaseTransitions";

/// A Lease as a ConfigMap: its spec's fields as text, its metadata (name, resourceVersion)
/// kept, labelled as the release's (never with the instance label, so pruning leaves it).
fn to_config_map(lease: &Lease, release: &str) -> ConfigMap {
    let spec = lease.spec.clone().unwrap_or_default();
    let time = |t: Option<MicroTime>| t.map(|t| t.0.to_string());
    let fields = [
        (HOLDER, spec.holder_identity),
        (DURATION, spec.lease_duration_seconds.map(|s| s.to_string())),
        (ACQUIRED, time(spec.acquire_time)),
        (RENEWED, time(spec.renew_time)),
        (TRANSITIONS, spec.lease_transitions.map(|t| t.to_string())),
    ];
    let data: BTreeMap<String, String> = fields
        .into_iter()
        .filter_map(|(key, value)| Some((key.to_owned(), value?)))
        .collect();
    let labels = BTreeMap::from([
        (OWNER_LABEL.to_owned(), "todo-deploy".to_owned()),
        (RELEASE_LABEL.to_owned(), release.to_owned()),
    ]);
    ConfigMap {
        metadata: ObjectMeta {
            labels: Some(labels),
            ..lease.metadata.clone()
        },
        data: Some(data),
        ..Default::default()
    }
}

/// The Lease a lock ConfigMap stands for; fields it cannot read are absent (a holder with no
/// renewal time holds nothing).
fn from_config_map(config_map: ConfigMap) -> Lease {
    let data = config_map.data.unwrap_or_default();
    let time = |key: &str| {
        data.get(key)
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map(MicroTime)
    };
    let number = |key: &str| data.get(key).and_then(|n| n.parse::<i32>().ok());
    Lease {
        metadata: config_map.metadata,
        spec: Some(LeaseSpec {
            holder_identity: data.get(HOLDER).cloned(),
            lease_duration_seconds: number(DURATION),
            acquire_time: time(ACQUIRED),
            renew_time: time(RENEWED),
            lease_transitions: number(TRANSITIONS),
            ..Default::default()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_survives_its_config_map() {
        let at = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some("todo-deploy.todo".into()),
                resource_version: Some("42".into()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some("dev@laptop pid 7".into()),
                lease_duration_seconds: Some(30),
                acquire_time: Some(MicroTime(at)),
                renew_time: Some(MicroTime(at)),
                lease_transitions: Some(2),
                ..Default::default()
            }),
        };
        let config_map = to_config_map(&lease, "todo");
        assert_eq!(config_map.metadata.resource_version.as_deref(), Some("42"));
        assert_eq!(
            config_map.metadata.labels.as_ref().unwrap()[RELEASE_LABEL],
            "todo"
        );
        assert_eq!(from_config_map(config_map).spec, lease.spec);
        let garbled = ConfigMap {
            data: Some(BTreeMap::from([(
                RENEWED.to_owned(),
                "yesterday".to_owned(),
            )])),
            ..Default::default()
        };
        assert_eq!(from_config_map(garbled).spec.unwrap().renew_time, None);
    }
}
