//! One deploy at a time: a `coordination.k8s.io/v1` Lease per release (a ConfigMap where the
//! credentials may not write Leases, see [`super::store`]), held and renewed while `up`,
//! `upgrade`, `rollback` or `down` change the cluster. A second run fails at once, naming
//! the holder (`user@host pid N`) and since when. A Lease that was not renewed for its duration
//! (its holder was killed) is taken over, with optimistic concurrency so two takers cannot both win.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, DeleteParams, ObjectMeta, Preconditions};
use tokio::task::JoinHandle;

use super::ReleaseEvent;
use super::store::Store;
use crate::cluster::{self, Cluster};
use crate::progress::Events;

/// How long a Lease stays valid without renewal.
pub const LEASE_SECONDS: i32 = 30;
/// How often the holder renews it.
const RENEW_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("release `{release}` is being changed by {holder} since {since}")]
    Held {
        release: String,
        holder: String,
        since: String,
    },
    #[error("cannot {action} the release lock `{name}`")]
    Api {
        action: &'static str,
        name: String,
        #[source]
        source: kube::Error,
    },
}

impl crate::outcome::Diagnose for LockError {
    fn exit(&self) -> crate::outcome::Exit {
        match self {
            LockError::Held { .. } => crate::outcome::Exit::Locked,
            LockError::Api { .. } => crate::outcome::Exit::Failed,
        }
    }

    fn hint(&self) -> Option<String> {
        Some(self.fix())
    }
}

impl LockError {
    fn fix(&self) -> String {
        match self {
            LockError::Held { .. } => format!(
                "wait for that run to finish; if it was killed, its lock expires {LEASE_SECONDS}s after its last renewal"
            ),
            LockError::Api { action, .. } => {
                let verb = if *action == "read" { "get" } else { "create" };
                format!(
                    "check that the cluster answers and that you may {verb} Leases or ConfigMaps in the namespace (`kubectl auth can-i {verb} configmaps`)"
                )
            }
        }
    }
}

/// A held lock. Release it with [`Lock::release`]; dropping it stops renewing, so the Lease
/// expires on its own.
pub struct Lock {
    store: Store,
    name: String,
    held: Arc<Mutex<Held>>,
    renewer: JoinHandle<()>,
}

/// What the renewer knows: the Lease as we last wrote it, and whether someone took it.
#[derive(Debug, Default)]
struct Held {
    /// A takeover keeps the Lease's uid, so only the resourceVersion of our last write tells
    /// our Lease from the next holder's.
    resource_version: Option<String>,
    lost: bool,
}

/// Who we are, as the Lease's holder: `user@host pid N`.
pub fn identity() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_owned());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown-host".to_owned());
    format!("{user}@{host} pid {}", std::process::id())
}

fn lease_name(release: &str) -> String {
    format!("todo-deploy.{release}")
}

fn now() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

/// Whether a Lease is held: it has a holder and was renewed within its duration.
fn is_live(lease: &Lease, at: jiff::Timestamp) -> bool {
    let Some(spec) = &lease.spec else {
        return false;
    };
    if spec
        .holder_identity
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        return false;
    }
    let seconds = i64::from(spec.lease_duration_seconds.unwrap_or(LEASE_SECONDS));
    let renewed = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .map(|t| t.0);
    renewed.is_some_and(|renewed| renewed + jiff::SignedDuration::from_secs(seconds) > at)
}

fn held(release: &str, lease: &Lease) -> LockError {
    let spec = lease.spec.clone().unwrap_or_default();
    LockError::Held {
        release: release.to_owned(),
        holder: spec.holder_identity.unwrap_or_default(),
        since: spec
            .acquire_time
            .map(|t| t.0.to_string())
            .unwrap_or_else(|| "an unknown time".to_owned()),
    }
}

/// Reads the release's lock where it is kept: in a Lease, or in a ConfigMap when these
/// credentials may not read Leases. A live lock in the ConfigMap counts even when Leases can
/// be used, so that runs with different rights still exclude each other.
async fn read(
    cluster: &Cluster,
    namespace: &str,
    release: &str,
    events: &Events,
) -> Result<(Store, Option<Lease>), LockError> {
    let name = lease_name(release);
    let leases = Store::Lease(Api::namespaced(cluster.client.clone(), namespace));
    let maps = Store::ConfigMap(Api::namespaced(cluster.client.clone(), namespace));
    let (lease, map) = tokio::join!(
        cluster::retrying(events, "read the release lock", || leases.get(&name)),
        cluster::retrying(events, "read the release lock", || maps.get(&name)),
    );
    let read_error = |source| LockError::Api {
        action: "read",
        name: name.clone(),
        source,
    };
    let (store, found) = match lease {
        Err(error) if cluster::status_code(&error) == Some(403) => (maps, map.map_err(read_error)?),
        Err(error) => return Err(read_error(error)),
        Ok(lease) => match map {
            Ok(Some(map)) if is_live(&map, jiff::Timestamp::now()) => (maps, Some(map)),
            _ => (leases, lease),
        },
    };
    events.send(ReleaseEvent::LockIn {
        kind: store.kind(),
        name,
    });
    Ok((store, found))
}

/// Fails at once if another run holds the release; changes nothing. A missing namespace holds
/// no lock.
pub async fn check(
    cluster: &Cluster,
    namespace: &str,
    release: &str,
    events: &Events,
) -> Result<(), LockError> {
    match read(cluster, namespace, release, events).await? {
        (_, Some(lease)) if is_live(&lease, jiff::Timestamp::now()) => Err(held(release, &lease)),
        _ => Ok(()),
    }
}

/// The run that holds the release's lock now (`user@host pid N`), if one does.
pub async fn holder(
    cluster: &Cluster,
    namespace: &str,
    release: &str,
    events: &Events,
) -> Result<Option<String>, LockError> {
    match read(cluster, namespace, release, events).await {
        Ok((_, Some(lease))) if is_live(&lease, jiff::Timestamp::now()) => {
            Ok(lease.spec.and_then(|s| s.holder_identity))
        }
        Ok(_) => Ok(None),
        Err(LockError::Api { source, .. }) if cluster::status_code(&source) == Some(404) => {
            Ok(None)
        }
        Err(error) => Err(error),
    }
}

/// Takes the release's lock (the namespace must exist) and keeps renewing it.
pub async fn acquire(
    cluster: &Cluster,
    namespace: &str,
    release: &str,
    events: &Events,
) -> Result<Lock, LockError> {
    let name = lease_name(release);
    let identity = identity();
    let (store, existing) = read(cluster, namespace, release, events).await?;
    let taken = match existing {
        Some(lease) if is_live(&lease, jiff::Timestamp::now()) => {
            return Err(held(release, &lease));
        }
        Some(stale) => take_over(&store, stale, release, &identity, events).await,
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    ..Default::default()
                },
                spec: Some(held_by(&identity)),
            };
            store.create(&lease, release).await
        }
    };
    let lease = match taken {
        Ok(lease) => lease,
        // Another run took it between our read and our write.
        Err(error) if cluster::status_code(&error) == Some(409) => {
            let winner = store.get(&name).await.ok().flatten();
            return Err(winner.map_or_else(
                || LockError::Held {
                    release: release.to_owned(),
                    holder: "another run".to_owned(),
                    since: "just now".to_owned(),
                },
                |lease| held(release, &lease),
            ));
        }
        Err(source) => {
            return Err(LockError::Api {
                action: "take",
                name,
                source,
            });
        }
    };
    let held = Arc::new(Mutex::new(Held {
        resource_version: lease.metadata.resource_version,
        lost: false,
    }));
    let renewer = tokio::spawn(renew(
        (store.clone(), release.to_owned()),
        name.clone(),
        identity,
        held.clone(),
        events.clone(),
    ));
    Ok(Lock {
        store,
        name,
        held,
        renewer,
    })
}

/// A Lease spec held by `identity` from now on.
fn held_by(identity: &str) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(identity.to_owned()),
        lease_duration_seconds: Some(LEASE_SECONDS),
        acquire_time: Some(now()),
        renew_time: Some(now()),
        ..Default::default()
    }
}

/// Replaces an expired Lease with ours. Its stale `resourceVersion` makes this a
/// compare-and-swap: of two runs taking it over, one gets 409.
async fn take_over(
    store: &Store,
    stale: Lease,
    release: &str,
    identity: &str,
    events: &Events,
) -> Result<Lease, kube::Error> {
    let spec = stale.spec.clone().unwrap_or_default();
    let previous = spec.holder_identity.unwrap_or_default();
    if !previous.is_empty() {
        events.send(ReleaseEvent::LockTakenOver {
            previous,
            lease_seconds: LEASE_SECONDS,
        });
    }
    let mut replacement = stale;
    replacement.spec = Some(LeaseSpec {
        lease_transitions: Some(spec.lease_transitions.unwrap_or(0) + 1),
        ..held_by(identity)
    });
    store.replace(&replacement, release).await
}

/// Renews the Lease until aborted; stops, and says so, if someone else took it.
async fn renew(
    (store, release): (Store, String),
    name: String,
    identity: String,
    held: Arc<Mutex<Held>>,
    events: Events,
) {
    let mut last_renewal = tokio::time::Instant::now();
    let mut warned = false;
    loop {
        tokio::time::sleep(RENEW_EVERY).await;
        let renewed = async {
            let Some(mut lease) = store.get(&name).await? else {
                return Ok(None);
            };
            let spec = lease.spec.get_or_insert_with(Default::default);
            if spec.holder_identity.as_deref() != Some(identity.as_str()) {
                return Ok(None);
            }
            spec.renew_time = Some(now());
            store
                .replace(&lease, &release)
                .await
                .map(|lease| Some(lease.metadata.resource_version))
        }
        .await;
        match renewed {
            Ok(Some(version)) => {
                last_renewal = tokio::time::Instant::now();
                warned = false;
                if let Ok(mut held) = held.lock() {
                    held.resource_version = version;
                }
            }
            Ok(None) => {
                if let Ok(mut held) = held.lock() {
                    held.lost = true;
                }
                events.send(ReleaseEvent::LockLost);
                return;
            }
            // Said once: an unreachable server is reported by the wait, once each way.
            Err(error)
                if !warned
                    && !cluster::is_unreachable(&error)
                    && last_renewal.elapsed() > Duration::from_secs(LEASE_SECONDS as u64) =>
            {
                warned = true;
                events.send(ReleaseEvent::LockMayHaveExpired {
                    lease_seconds: LEASE_SECONDS,
                    error: cluster::short(&error),
                })
            }
            Err(error) => events.send(ReleaseEvent::LockRenewalRetried {
                error: cluster::short(&error),
            }),
        }
    }
}

impl Drop for Lock {
    /// Stops renewing: a lock dropped without [`Lock::release`] expires on its own.
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

impl Lock {
    /// Stops renewing and deletes the Lease if it is still ours: the resourceVersion of our last
    /// write is a precondition, so a Lease someone took over is left to its new holder.
    pub async fn release(self) {
        self.renewer.abort();
        let (version, lost) = match self.held.lock() {
            Ok(held) => (held.resource_version.clone(), held.lost),
            Err(_) => (None, true),
        };
        if lost || version.is_none() {
            return;
        }
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: None,
                resource_version: version,
            }),
            ..Default::default()
        };
        let _ = self.store.delete(&self.name, &params).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: &str, renewed_seconds_ago: i64) -> Lease {
        let at = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(renewed_seconds_ago);
        Lease {
            metadata: ObjectMeta::default(),
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.to_owned()),
                lease_duration_seconds: Some(30),
                renew_time: Some(MicroTime(at)),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn a_lease_lives_for_its_duration_after_renewal() {
        let now = jiff::Timestamp::now();
        assert!(is_live(&lease("a@h pid 1", 5), now));
        assert!(!is_live(&lease("a@h pid 1", 31), now));
        assert!(!is_live(&lease("", 0), now), "no holder, no lock");
    }

    #[test]
    fn identity_names_user_host_and_pid() {
        let id = identity();
        assert!(
            id.contains('@') && id.ends_with(&format!("pid {}", std::process::id())),
            "{id}"
        );
    }
}
