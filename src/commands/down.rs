//! `todo-deploy down`: delete every object of the release in reverse apply order with
//! foreground propagation, and wait until its pods are gone. The namespace stays unless
//! `--delete-namespace`.

use std::collections::BTreeSet;
use std::time::Instant;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams};

use crate::apply::{self, Removal};
use crate::cli::{DownArgs, GlobalArgs};
use crate::cluster;
use crate::outcome::{Exit, Failure};
use crate::rollout::{self, Gone};
use crate::settings::{self, CommandFlags, Secrets};
use crate::ui::{Event, Printer, Ui};

pub async fn run(global: &GlobalArgs, args: &DownArgs, printer: &Printer) -> Result<Exit, Failure> {
    let flags = CommandFlags {
        timeout: args.timeout.as_deref(),
        ..Default::default()
    };
    let plan = settings::resolve(global, &flags, Secrets::KeysOnly, &|_| None)?;
    if args.purge || args.prune_images {
        return Err(Failure::message(
            Exit::Usage,
            "`--purge` and `--prune-images` are not available in this version yet",
            Some("run `todo-deploy down` without them".to_owned()),
        ));
    }
    let ui = Ui::start(printer);
    let events = &ui.events;
    let started = Instant::now();
    let result = async {
        let cluster = cluster::connect(&plan.cluster, events).await.map_err(|error| {
            let hint = error.hint();
            Failure::new(Exit::Failed, error, Some(hint))
        })?;
        let deleted = apply::delete_release(
            &cluster,
            &plan.namespace,
            &plan.release,
            &BTreeSet::new(),
            &DeleteParams::foreground(),
            Removal::Down,
            events,
        )
        .await
        .map_err(|error| {
            let hint = error.hint();
            Failure::new(Exit::Failed, error, hint)
        })?;
        let target = rollout::Target {
            namespace: plan.namespace.clone(),
            release: plan.release.clone(),
            deployments: Vec::new(),
            timeout: plan.timeout,
        };
        let interrupted = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        match rollout::wait_gone(&cluster, &target, interrupted, events).await {
            Gone::Done => {}
            Gone::TimedOut(left) => {
                return Err(Failure::message(
                    Exit::Failed,
                    format!(
                        "still there after {}s: {}",
                        plan.timeout.as_secs(),
                        left.join(", ")
                    ),
                    Some("`kubectl get pods` shows why they do not terminate (finalizers, a stuck node)".to_owned()),
                ));
            }
            Gone::Interrupted(left) => {
                return Err(Failure::message(
                    Exit::Interrupted,
                    format!("interrupted; still terminating: {}", left.join(", ")),
                    Some("the deletions go on in the cluster; run `todo-deploy down` again to wait".to_owned()),
                ));
            }
        }
        if args.delete_namespace {
            let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
            let foreground = DeleteParams::foreground();
            match cluster::retrying(events, "delete the namespace", || {
                namespaces.delete(&plan.namespace, &foreground)
            })
            .await
            {
                Ok(_) => events.send(Event::Info(format!("Namespace/{} deleted", plan.namespace))),
                Err(error) if cluster::status_code(&error) == Some(404) => {}
                Err(error) => {
                    return Err(Failure::message(
                        Exit::Failed,
                        format!("cannot delete the namespace `{}`: {}", plan.namespace, cluster::short(&error)),
                        None,
                    ));
                }
            }
        }
        if deleted.is_empty() {
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
    }
    .await;
    ui.finish().await;
    result
}
