//! `todo-deploy rollback [REVISION]`: deploy an earlier revision again (default: the one before
//! the current), as a new revision, and wait like `upgrade`. The live Secret stays: its values are
//! never stored in the history, and a warning says so when they changed since that revision.

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;

use crate::cli::{GlobalArgs, RollbackArgs};
use crate::cluster;
use crate::outcome::{Exit, Failure};
use crate::release::{self, Record, RevisionStatus, lock};
use crate::rollout::{Outcome, Problem};
use crate::settings::{self, CommandFlags, Secrets};
use crate::ui::{Event, Events, Printer, Ui};

use super::messages;
use super::revision::{self, Deployer};

pub async fn run(
    global: &GlobalArgs,
    args: &RollbackArgs,
    printer: &Printer,
) -> Result<Exit, Failure> {
    let flags = CommandFlags {
        timeout: args.timeout.as_deref(),
        ..Default::default()
    };
    let plan = settings::resolve(global, &flags, Secrets::KeysOnly, &|_| None)?;
    let ui = Ui::start(printer);
    let events = &ui.events;
    let result = async {
        let cluster = cluster::connect(&plan.cluster, events).await?;
        let history = release::history(&cluster, &plan.namespace, &plan.release, events)
            .await
            ?;
        let target = choose(&history, args.revision)?;
        let lock = lock::acquire(&cluster, &plan.namespace, &plan.release, events)
            .await
            ?;
        let result = async {
            let (objects, secret) = revision::recorded_objects(target, events);
            warn_if_secret_changed(&cluster, &plan.namespace, target, events).await;
            let deployer = Deployer {
                cluster: &cluster,
                namespace: &plan.namespace,
                release: &plan.release,
                timeout: plan.timeout,
                history_max: plan.history_max,
                force_conflicts: false,
                events,
            };
            let next = history.last().map_or(1, |r| r.revision + 1);
            let record = Record {
                revision: next,
                time: revision::now(),
                status: RevisionStatus::Pending,
                description: format!("Rollback to {}", target.revision),
                tool_version: env!("CARGO_PKG_VERSION").to_owned(),
                ..target.clone()
            };
            let deployed = deployer
                .deploy(record, &objects, secret, revision::deployments(&objects))
                .await?;
            match deployed.outcome {
                Outcome::Ready => {
                    events.send(Event::Info(format!(
                        "rolled back to revision {} (recorded as revision {next})",
                        target.revision
                    )));
                    Ok(Exit::Success)
                }
                Outcome::Interrupted(standings) => Err(messages::interrupted_failure(&standings)),
                Outcome::Failed(standings) | Outcome::TimedOut(standings) => {
                    let (message, mut hints) = messages::rollout_report("of the rollback failed", &standings);
                    for standing in &standings {
                        if let Some(Problem::ImageMissing { image, .. }) = &standing.problem {
                            hints.push(format!(
                                "the image `{image}` of revision {} is no longer on the node: check out the source it was built from and run `todo-deploy upgrade --tag {}` to build and load it again",
                                target.revision,
                                image.rsplit(':').next().unwrap_or("TAG")
                            ));
                        }
                    }
                    Err(messages::failure(Exit::Failed, message, hints))
                }
            }
        }
        .await;
        lock.release().await;
        result
    }
    .await;
    ui.finish().await;
    result
}

/// The revision to go back to: the one asked for, or the newest deployed or superseded one
/// before the latest.
fn choose(history: &[Record], wanted: Option<u32>) -> Result<&Record, Failure> {
    let Some(latest) = history.last() else {
        return Err(Failure::message(
            Exit::Failed,
            "the release has no history to roll back to",
            Some("install it with `todo-deploy up`".to_owned()),
        ));
    };
    let found = match wanted {
        Some(revision) => history.iter().find(|r| r.revision == revision),
        None => history.iter().rev().find(|r| {
            r.revision < latest.revision
                && matches!(
                    r.status,
                    RevisionStatus::Deployed | RevisionStatus::Superseded
                )
        }),
    };
    found.ok_or_else(|| {
        let known: Vec<String> = history.iter().map(|r| r.revision.to_string()).collect();
        Failure::message(
            Exit::Usage,
            match wanted {
                Some(revision) => format!(
                    "revision {revision} is not in the history (it has {})",
                    known.join(", ")
                ),
                None => "there is no earlier deployed revision to roll back to".to_owned(),
            },
            Some("`todo-deploy history` lists the revisions".to_owned()),
        )
    })
}

async fn warn_if_secret_changed(
    cluster: &cluster::Cluster,
    namespace: &str,
    target: &Record,
    events: &Events,
) {
    let Some(recorded) = target.manifests.iter().find(|m| m["kind"] == "Secret") else {
        return;
    };
    let name = recorded["metadata"]["name"].as_str().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(cluster.client.clone(), namespace);
    if let Ok(Some(live)) = api.get_opt(name).await {
        let live = release::digest_of(&live.data.unwrap_or_default());
        if live != recorded["data"] {
            events.send(Event::Warning(format!(
                "the Secret `{name}` changed since revision {}; its values are not kept in the history, so the current ones stay",
                target.revision
            )));
        }
    }
}
