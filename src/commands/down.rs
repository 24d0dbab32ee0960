//! `todo-deploy down`: delete every object of the release in reverse apply order with
//! foreground propagation, and wait until its pods are gone. The release history stays unless
//! `--purge`; the namespace stays unless `--delete-namespace`.

use std::collections::BTreeSet;
use std::time::Instant;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams};

use crate::apply::{self, ApplyEvent, Removal};
use crate::cli::{DownArgs, GlobalArgs};
use crate::render::{Kind, ObjectKey};
use bollard::Docker;

use crate::cluster::{self, Cluster};
use crate::docker;
use crate::load;
use crate::outcome::{Exit, Failure};
use crate::plan::Plan;
use crate::release::{self, lock};
use crate::rollout::{self, Gone};
use crate::settings::{self, CommandFlags, Purpose};
use crate::ui::{Event, Events, Printer, Ui};

pub async fn run(
    global: &GlobalArgs,
    args: &DownArgs,
    env: &dyn Fn(&str) -> Option<String>,
    printer: &Printer,
) -> Result<Exit, Failure> {
    let flags = CommandFlags {
        timeout: args.timeout.as_deref(),
        ..Default::default()
    };
    let plan = settings::resolve(global, &flags, Purpose::Inspect, &|_| None)?;
    let started = Instant::now();
    Ui::around(printer, async |events| {
        // Everything that can fail without changing anything comes first.
        let docker = match args.prune_images {
            true => Some(docker::connect_saying(env, events).await?),
            false => None,
        };
        let cluster = cluster::connect(&plan.cluster, events).await?;
        let access = crate::access::Command::Down;
        super::preflight::check(&cluster, &plan.namespace, access, events).await?;
        let images = match &docker {
            Some(docker) => Some(Images::find(docker, &cluster, &plan, env, events).await?),
            None => None,
        };
        let lock = match lock::acquire(&cluster, &plan.namespace, &plan.release, events).await {
            Ok(lock) => Some(lock),
            // No namespace, so nothing to lock and nothing to delete.
            Err(lock::LockError::Api { source, .. })
                if cluster::status_code(&source) == Some(404) =>
            {
                None
            }
            Err(error) => return Err(error.into()),
        };
        let removed = remove(&cluster, &plan, args, images.as_ref(), events).await;
        if let Some(lock) = lock {
            lock.release().await;
        }
        let deleted = removed?;
        if args.delete_namespace {
            delete_namespace(&cluster, &plan.namespace, events).await?;
        }
        if deleted == 0 {
            events.send(Event::Info(format!(
                "release `{}` is not deployed in namespace `{}`: nothing to delete",
                plan.release, plan.namespace
            )));
        } else {
            events.send(Event::Info(format!(
                "release `{}` removed from namespace `{}` in {:.1}s",
                plan.release,
                plan.namespace,
                started.elapsed().as_secs_f64()
            )));
        }
        Ok(Exit::Success)
    })
    .await
}

/// Deletes the release's namespace (foreground), if it is there.
async fn delete_namespace(
    cluster: &Cluster,
    namespace: &str,
    events: &Events,
) -> Result<(), Failure> {
    let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
    let foreground = DeleteParams::foreground();
    match cluster::retrying(events, "delete the namespace", || {
        namespaces.delete(namespace, &foreground)
    })
    .await
    {
        Ok(_) => {
            events.send(ApplyEvent::Removed {
                key: ObjectKey::new(Kind::Namespace, namespace),
                removal: Removal::Down,
                dry_run: false,
            });
            Ok(())
        }
        Err(error) if cluster::status_code(&error) == Some(404) => Ok(()),
        Err(error) if cluster::status_code(&error) == Some(403) => Err(Failure::message(
            Exit::Failed,
            format!(
                "the release is removed, but these credentials may not delete the namespace `{namespace}`"
            ),
            Some(format!(
                "a cluster admin can (`kubectl delete namespace {namespace}`); `down` without `--delete-namespace` leaves it"
            )),
        )),
        Err(error) => Err(Failure::message(
            Exit::Failed,
            format!(
                "cannot delete the namespace `{namespace}`: {}",
                cluster::short(&error)
            ),
            None,
        )),
    }
}

/// Deletes the release's objects and waits until they are gone; purges the history if asked.
/// Returns how many objects were deleted.
async fn remove(
    cluster: &Cluster,
    plan: &Plan,
    args: &DownArgs,
    images: Option<&Images>,
    events: &Events,
) -> Result<usize, Failure> {
    let deleted = apply::delete_release(
        cluster,
        &plan.namespace,
        &plan.release,
        &BTreeSet::new(),
        &DeleteParams::foreground(),
        Removal::Down,
        events,
    )
    .await?;
    let target = rollout::Target {
        namespace: plan.namespace.clone(),
        release: plan.release.clone(),
        deployments: Vec::new(),
        timeout: plan.timeout,
    };
    match rollout::wait_gone(cluster, &target, super::interrupted(), events).await {
        Gone::Done => {}
        Gone::TimedOut(left) => {
            return Err(Failure::message(
                Exit::Failed,
                format!(
                    "still there after {}s: {}",
                    plan.timeout.as_secs(),
                    left.join(", ")
                ),
                Some(
                    "`kubectl get pods` shows why they do not terminate (finalizers, a stuck node)"
                        .to_owned(),
                ),
            ));
        }
        Gone::Interrupted(left) => {
            return Err(Failure::message(
                Exit::Interrupted,
                format!("interrupted; still terminating: {}", left.join(", ")),
                Some(
                    "the deletions go on in the cluster; run `todo-deploy down` again to wait"
                        .to_owned(),
                ),
            ));
        }
    }
    if let Some(images) = images {
        load::remove_images(&images.engine, &images.loader, &images.references, events).await?;
    }
    if args.purge {
        let purged = release::purge(cluster, &plan.namespace, &plan.release, events).await?;
        events.send(Event::Info(format!(
            "release history purged ({purged} revisions)"
        )));
    } else {
        for revision in release::uninstall(cluster, &plan.namespace, &plan.release, events).await? {
            events.send(release::ReleaseEvent::Uninstalled { revision });
        }
    }
    Ok(deleted.len())
}

/// What `--prune-images` removes, and from where: every image the release's history names.
struct Images {
    engine: Docker,
    loader: load::Loader,
    references: Vec<String>,
}

impl Images {
    async fn find(
        docker: &Docker,
        cluster: &Cluster,
        plan: &Plan,
        env: &dyn Fn(&str) -> Option<String>,
        events: &Events,
    ) -> Result<Images, Failure> {
        let loader = load::resolve(docker, &plan.cluster, &cluster.context, env, events).await?;
        let engine = match loader.build_engine() {
            Some(endpoint) => endpoint.connect().await?,
            None => docker.clone(),
        };
        let history = release::history(cluster, &plan.namespace, &plan.release, events).await?;
        let mut references: Vec<String> = history
            .iter()
            .flat_map(|record| record.images.iter().map(|image| image.reference.clone()))
            .collect();
        references.sort();
        references.dedup();
        Ok(Images {
            engine,
            loader,
            references,
        })
    }
}
