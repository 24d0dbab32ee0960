//! `todo-deploy rollback [REVISION]`: deploy an earlier revision again (default: the one before
//! the current), as a new revision, and wait like `upgrade`. The live Secret stays: its values are
//! never stored in the history, and a warning says so when they changed since that revision.

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;

use crate::cli::{GlobalArgs, RollbackArgs};
use crate::cluster;
use crate::outcome::{Exit, Failure};
use crate::plan::Plan;
use crate::release::{self, Record, RevisionStatus, lock};
use crate::render::Kind;
use crate::rollout::{self, Outcome, Problem, Standing};
use crate::settings::{self, CommandFlags, Purpose};
use crate::ui::{Event, Events, Printer, Ui};

use super::messages;
use super::revision::{self, Deployer, Revision};

pub async fn run(
    global: &GlobalArgs,
    args: &RollbackArgs,
    printer: &Printer,
) -> Result<Exit, Failure> {
    let flags = CommandFlags {
        timeout: args.timeout.as_deref(),
        ..Default::default()
    };
    let plan = settings::resolve(global, &flags, Purpose::Inspect, &|_| None)?;
    Ui::around(printer, async |events| {
        let cluster = cluster::connect(&plan.cluster, events).await?;
        let access = crate::access::Command::Rollback;
        super::preflight::check(&cluster, &plan.namespace, access, events).await?;
        let lock = match lock::acquire(&cluster, &plan.namespace, &plan.release, events).await {
            Ok(lock) => lock,
            Err(lock::LockError::Api { source, .. })
                if cluster::status_code(&source) == Some(404) =>
            {
                return Err(no_history());
            }
            Err(error) => return Err(error.into()),
        };
        let result = roll_back(&cluster, &plan, args, events).await;
        lock.release().await;
        result
    })
    .await
}

/// Deploys the chosen revision again; the caller holds the lock.
async fn roll_back(
    cluster: &cluster::Cluster,
    plan: &Plan,
    args: &RollbackArgs,
    events: &Events,
) -> Result<Exit, Failure> {
    let history = release::history(cluster, &plan.namespace, &plan.release, events).await?;
    let history = release::abandon_pending(cluster, &plan.namespace, history, events).await?;
    let target = choose(&history, args.revision)?;
    let (objects, secret) = revision::recorded_objects(target, events);
    let live = live_secret(cluster, &plan.namespace, target).await;
    let mut record = Record {
        description: format!("Rollback to {}", target.revision),
        ..target.clone()
    }
    .next_after(&history);
    if let Some(live) = &live {
        keep_live_secret(&mut record, live, target.revision, events);
    }
    let deployer = Deployer::new(cluster, plan, false, events);
    let next = record.revision;
    let deployed = deployer
        .deploy(Revision {
            record,
            objects: &objects,
            also_keep: secret,
            applied_before: Vec::new(),
            current: None,
        })
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
        Outcome::Unreachable { since, standings } => Err(messages::unreachable_failure(
            &cluster.server,
            since,
            &standings,
            Some(next),
        )),
        Outcome::Failed(standings) | Outcome::TimedOut(standings) => {
            Err(failed(standings, live.as_ref(), target.revision))
        }
    }
}

/// The live Secret stays, so it is what the rollback's revision records: its digests replace
/// the target's, with a warning when they differ.
fn keep_live_secret(record: &mut Record, live: &Secret, target: u32, events: &Events) {
    let digests = release::digest_of(&live.data.clone().unwrap_or_default());
    for manifest in &mut record.manifests {
        if Kind::of_json(manifest) == Some(Kind::Secret) {
            if manifest["data"] != digests {
                events.send(Event::Warning(format!(
                    "the Secret `{}` changed since revision {target}; its values are not kept in the history, so the current ones stay",
                    manifest["metadata"]["name"].as_str().unwrap_or_default(),
                )));
            }
            manifest["data"] = digests.clone();
        }
    }
}

/// Why the rollback's rollout failed, the live Secret's values kept out of crash logs; an image
/// the node no longer has gets the way to build it again.
fn failed(mut standings: Vec<Standing>, live: Option<&Secret>, target: u32) -> Failure {
    let values: Vec<String> = live
        .iter()
        .flat_map(|s| s.data.iter().flatten())
        .map(|(_, v)| String::from_utf8_lossy(&v.0).into_owned())
        .collect();
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    rollout::redact_logs(&mut standings, &values);
    let (message, mut hints) = messages::rollout_report("of the rollback failed", &standings);
    for standing in &standings {
        if let Some(Problem::ImageMissing { image, .. }) = &standing.problem {
            hints.push(format!(
                "the image `{image}` of revision {target} is no longer on the node: check out the source it was built from and run `todo-deploy upgrade --tag {}` to build and load it again",
                image.rsplit(':').next().unwrap_or("TAG")
            ));
        }
    }
    Failure::message(Exit::Failed, message, hints)
}

fn no_history() -> Failure {
    Failure::message(
        Exit::Failed,
        "the release has no history to roll back to",
        Some("install it with `todo-deploy up`".to_owned()),
    )
}

/// The revision to go back to: the one asked for, or the newest deployed or superseded one
/// before the latest.
fn choose(history: &[Record], wanted: Option<u32>) -> Result<&Record, Failure> {
    let Some(latest) = history.last() else {
        return Err(no_history());
    };
    if latest.status == RevisionStatus::Uninstalled && wanted.is_none() {
        return Err(Failure::message(
            Exit::Failed,
            format!(
                "release `{}` was uninstalled (revision {}); there is nothing to roll back",
                latest.release, latest.revision
            ),
            Some("`todo-deploy up` installs it again".to_owned()),
        ));
    }
    if wanted == Some(0) {
        return Err(Failure::message(
            Exit::Usage,
            "revision 0 is the release another tool installed, which todo-deploy took over: it is kept for the record and is not deployed again",
            Some("`todo-deploy history` lists the revisions; roll back to 1 or later".to_owned()),
        ));
    }
    let found = match wanted {
        Some(revision) => history.iter().find(|r| r.revision == revision),
        // Revision 0 (a takeover's record of what was there) is never a rollback target.
        None => history.iter().rev().find(|r| {
            r.revision < latest.revision
                && r.revision > 0
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

/// The live Secret a recorded revision names, if it exists.
async fn live_secret(
    cluster: &cluster::Cluster,
    namespace: &str,
    target: &Record,
) -> Option<Secret> {
    let recorded = target
        .manifests
        .iter()
        .find(|m| Kind::of_json(m) == Some(Kind::Secret))?;
    let name = recorded["metadata"]["name"].as_str()?;
    let api: Api<Secret> = Api::namespaced(cluster.client.clone(), namespace);
    api.get_opt(name).await.ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(revision: u32, status: RevisionStatus) -> Record {
        Record {
            release: "todo".into(),
            revision,
            status,
            time: String::new(),
            tool_version: String::new(),
            description: String::new(),
            images: Vec::new(),
            config_digest: String::new(),
            manifests: Vec::new(),
        }
    }

    #[test]
    fn the_record_of_a_takeover_is_never_rolled_back_to() {
        let history = [
            record(0, RevisionStatus::Superseded),
            record(1, RevisionStatus::Deployed),
        ];
        let none = choose(&history, None).expect_err("nothing before 1 but revision 0");
        assert!(none.headline().contains("no earlier deployed revision"));
        let zero = choose(&history, Some(0)).expect_err("revision 0");
        assert_eq!(zero.exit, Exit::Usage);
        assert!(zero.headline().contains("took over"), "{}", zero.headline());
        let later = [
            record(0, RevisionStatus::Superseded),
            record(1, RevisionStatus::Superseded),
            record(2, RevisionStatus::Deployed),
        ];
        assert_eq!(choose(&later, None).expect("revision 1").revision, 1);
    }
}
