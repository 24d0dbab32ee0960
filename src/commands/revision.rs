//! Deploying one revision, the same way for `up`, `upgrade`, `rollback` and the automatic
//! rollback of a failed upgrade: apply its objects, record it as pending (unless nothing changed
//! since the deployed revision), wait for the rollout, prune what it does not have, and record how
//! it ended (the previous deployed revision becomes superseded; the history is trimmed to
//! `historyMax`).

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::DynamicObject;

use crate::apply::{self, ApplyOptions, ApplyReport, Object};
use crate::cluster::Cluster;
use crate::outcome::Failure;
use crate::progress::{Event, Events};
use crate::release::{self, Record, RevisionStatus};
use crate::render::{Kind, ObjectKey};
use crate::rollout::{self, Outcome};

/// Where and how revisions are deployed.
pub struct Deployer<'a> {
    pub cluster: &'a Cluster,
    pub namespace: &'a str,
    pub release: &'a str,
    pub timeout: Duration,
    pub history_max: u32,
    pub force_conflicts: bool,
    pub events: &'a Events,
}

impl<'a> Deployer<'a> {
    /// Deploys the plan's release into `cluster`.
    pub fn new(
        cluster: &'a Cluster,
        plan: &'a crate::plan::Plan,
        force_conflicts: bool,
        events: &'a Events,
    ) -> Self {
        Deployer {
            cluster,
            namespace: &plan.namespace,
            release: &plan.release,
            timeout: plan.timeout,
            history_max: plan.history_max,
            force_conflicts,
            events,
        }
    }
}

/// A deployed revision and how its rollout ended.
pub struct Deployed {
    pub record: Record,
    pub report: ApplyReport,
    pub outcome: Outcome,
    /// Whether the revision was recorded: a run that changed nothing records nothing.
    pub recorded: bool,
}

/// What one deploy applies and how it is recorded.
pub struct Revision<'a> {
    /// The new revision (its number past the newest in the history).
    pub record: Record,
    pub objects: &'a [Object],
    /// Kept from pruning besides `objects` (the live Secret during a rollback).
    pub also_keep: Option<ObjectKey>,
    /// Applied before the lock was taken (the Namespace): part of this revision's report.
    pub applied_before: Vec<apply::Applied>,
    /// The revision deployed now, if it may stand for this one: when nothing is created,
    /// configured or pruned and the images are its images, nothing new is recorded.
    pub current: Option<&'a Record>,
}

impl Deployer<'_> {
    /// Deploys a revision: apply, record it (unless nothing changed), wait, prune what it no
    /// longer has, and record how it ended.
    pub async fn deploy(&self, revision: Revision<'_>) -> Result<Deployed, Failure> {
        let Revision {
            mut record,
            objects,
            also_keep,
            applied_before,
            current,
        } = revision;
        let options = ApplyOptions {
            force_conflicts: self.force_conflicts,
            ..ApplyOptions::default()
        };
        let applied =
            apply::apply(self.cluster, self.namespace, objects, options, self.events).await;
        let mut report = match applied {
            Ok(report) => report,
            Err(error) => return Err(self.apply_failed(record, error).await),
        };
        report.applied.splice(0..0, applied_before);
        let same = current.filter(|c| !report.changed() && c.images == record.images);
        if same.is_none() {
            record.status = RevisionStatus::Pending;
            release::create(self.cluster, self.namespace, &record, self.events).await?;
        }
        let target = rollout::Target {
            namespace: self.namespace.to_owned(),
            release: self.release.to_owned(),
            deployments: deployments(objects),
            timeout: self.timeout,
        };
        let answers = applied_deployments(&report);
        let outcome = match rollout::complete_in(&target, &answers, self.events) {
            Some(outcome) => outcome,
            None => rollout::wait(self.cluster, &target, super::interrupted(), self.events).await,
        };
        if let Outcome::Unreachable { .. } = outcome {
            // Nothing can be written: the revision stays pending, and the next run that takes
            // the lock marks it abandoned.
            return Ok(Deployed {
                record: same.cloned().unwrap_or(record),
                report,
                outcome,
                recorded: same.is_none(),
            });
        }
        if let Some(current) = same {
            return self
                .unchanged(current, record, report, outcome, objects)
                .await;
        }
        record.status = status_after(&outcome);
        record.description = describe(&record.description, &outcome);
        let ready = outcome == Outcome::Ready;
        report.pruned = self.finish(&record, ready, objects, also_keep).await?;
        Ok(Deployed {
            record,
            report,
            outcome,
            recorded: true,
        })
    }

    /// Nothing was applied differently from `current`: record nothing, unless pruning after a
    /// good rollout takes something away (then this is a new deployed revision after all).
    async fn unchanged(
        &self,
        current: &Record,
        mut record: Record,
        mut report: ApplyReport,
        outcome: Outcome,
        objects: &[Object],
    ) -> Result<Deployed, Failure> {
        let mut recorded = false;
        if outcome == Outcome::Ready {
            report.pruned = self.prune(objects, None).await?;
            if !report.pruned.is_empty() {
                record.status = RevisionStatus::Deployed;
                release::create(self.cluster, self.namespace, &record, self.events).await?;
                self.settle(record.revision, true).await?;
                recorded = true;
            }
        }
        Ok(Deployed {
            record: if recorded { record } else { current.clone() },
            report,
            outcome,
            recorded,
        })
    }

    /// Records a revision whose apply the server refused, and the failure to report.
    async fn apply_failed(&self, mut record: Record, error: apply::ApplyError) -> Failure {
        record.status = RevisionStatus::Failed;
        record.description = format!("{}: apply failed: {error}", record.description);
        let _ = release::create(self.cluster, self.namespace, &record, self.events).await;
        let _ = self.trim().await;
        error.into()
    }

    /// Deletes what the release has and `objects` (and `also_keep`) do not.
    async fn prune(
        &self,
        objects: &[Object],
        also_keep: Option<ObjectKey>,
    ) -> Result<Vec<apply::Pruned>, Failure> {
        let mut keep: BTreeSet<ObjectKey> = objects.iter().map(|o| o.key.clone()).collect();
        keep.extend(also_keep);
        let pruned = apply::prune(
            self.cluster,
            self.namespace,
            self.release,
            &keep,
            false,
            self.events,
        )
        .await?;
        Ok(pruned)
    }

    /// After the wait, all at once (none depends on another, so the user waits one round
    /// trip, not one per step): the record says how the revision ended; a revision that rolled
    /// out prunes what it no longer has and supersedes the one it replaces; the history is
    /// trimmed to `historyMax`. Returns what was pruned.
    async fn finish(
        &self,
        record: &Record,
        ready: bool,
        objects: &[Object],
        also_keep: Option<ObjectKey>,
    ) -> Result<Vec<apply::Pruned>, Failure> {
        let prune = async {
            match ready {
                true => self.prune(objects, also_keep).await,
                false => Ok(Vec::new()),
            }
        };
        let (updated, pruned, settled) = tokio::join!(
            release::update(self.cluster, self.namespace, record, self.events),
            prune,
            self.settle(record.revision, ready),
        );
        updated?;
        settled?;
        pruned
    }

    /// Trims the history to `historyMax` and, when `current` rolled out, marks every other
    /// deployed revision superseded: one read, then every write at once.
    async fn settle(&self, current: u32, ready: bool) -> Result<(), Failure> {
        let history =
            release::history(self.cluster, self.namespace, self.release, self.events).await?;
        let excess = history.len().saturating_sub(self.history_max as usize);
        let (old, kept) = history.split_at(excess);
        let superseded =
            kept.iter()
                .filter(|r| ready && r.revision != current && r.status == RevisionStatus::Deployed)
                .map(|older| {
                    let mut older = older.clone();
                    older.status = RevisionStatus::Superseded;
                    async move {
                        release::update(self.cluster, self.namespace, &older, self.events).await
                    }
                });
        let (trimmed, superseded) = tokio::join!(
            release::trim(self.cluster, self.namespace, old, 0, self.events),
            futures::future::try_join_all(superseded),
        );
        trimmed?;
        superseded?;
        Ok(())
    }

    /// Keeps the newest `historyMax` revisions.
    async fn trim(&self) -> Result<(), Failure> {
        self.settle(0, false).await
    }

    /// Records a revision whose objects were applied and waited for elsewhere (`dev`'s
    /// turns): created as it ended (`status`), then, as after a deploy, what it no longer has is
    /// pruned (when deployed), the revision it replaces superseded and the history trimmed.
    pub async fn record_done(
        &self,
        mut record: Record,
        status: RevisionStatus,
        objects: &[Object],
    ) -> Result<Record, Failure> {
        record.status = status;
        release::create(self.cluster, self.namespace, &record, self.events).await?;
        let ready = status == RevisionStatus::Deployed;
        self.finish(&record, ready, objects, None).await?;
        Ok(record)
    }

    /// Changes a revision's status (a failed one that was rolled back).
    pub async fn mark(&self, record: &Record, status: RevisionStatus) -> Result<(), Failure> {
        let mut record = record.clone();
        record.status = status;
        release::update(self.cluster, self.namespace, &record, self.events)
            .await
            .map_err(Into::into)
    }
}

/// The objects of a recorded revision, without its Namespace (the release is in it already)
/// and without its Secret: Secret values are never stored, so a rollback keeps the live
/// Secret. Returns the Secret's key to keep it from pruning.
pub fn recorded_objects(record: &Record, events: &Events) -> (Vec<Object>, Option<ObjectKey>) {
    let mut secret = None;
    let mut objects = Vec::new();
    for manifest in &record.manifests {
        match Object::from_json(manifest.clone()) {
            Some(object) if object.kind() == Kind::Namespace => {}
            Some(object) if object.kind() == Kind::Secret => secret = Some(object.key),
            Some(object) => objects.push(object),
            None => events.send(Event::Warning(format!(
                "revision {} holds a `{}` that this version cannot apply; skipped",
                record.revision, manifest["kind"]
            ))),
        }
    }
    (objects, secret)
}

/// How a revision's rollout ending leaves its status.
fn status_after(outcome: &Outcome) -> RevisionStatus {
    match outcome {
        Outcome::Ready => RevisionStatus::Deployed,
        Outcome::Failed(_) | Outcome::TimedOut(_) => RevisionStatus::Failed,
        Outcome::Interrupted(_) => RevisionStatus::Interrupted,
        Outcome::Unreachable { .. } => RevisionStatus::Pending,
    }
}

/// A revision's description once its rollout ended.
fn describe(description: &str, outcome: &Outcome) -> String {
    match outcome {
        Outcome::Ready => description.to_owned(),
        Outcome::Failed(_) => format!("{description}: the rollout failed"),
        Outcome::TimedOut(_) => format!("{description}: the rollout timed out"),
        Outcome::Interrupted(_) => {
            format!("{description}: interrupted while waiting for the rollout")
        }
        Outcome::Unreachable { .. } => description.to_owned(),
    }
}

/// The Deployments as the server answered their apply.
fn applied_deployments(report: &ApplyReport) -> Vec<Deployment> {
    report
        .applied
        .iter()
        .filter(|a| a.key.kind == Kind::Deployment)
        .filter_map(|a| a.after.as_ref()?.clone().try_parse::<Deployment>().ok())
        .collect()
}

/// The Deployments among `objects`: what a rollout waits for.
pub fn deployments(objects: &[Object]) -> Vec<String> {
    objects
        .iter()
        .filter(|o| o.kind() == Kind::Deployment)
        .map(|o| o.name().to_owned())
        .collect()
}

/// An applied Secret (as it was read from the cluster) as an object to apply again: its name,
/// labels, type and data, none of the server's fields. Kept in memory only.
pub fn secret_object(live: &DynamicObject) -> Option<Object> {
    let name = live.metadata.name.clone()?;
    let body = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "labels": live.metadata.labels.clone().unwrap_or_default(),
        },
        "type": live.data.get("type").cloned().unwrap_or_else(|| "Opaque".into()),
        "data": live.data.get("data").cloned().unwrap_or_else(|| serde_json::json!({})),
    });
    Object::from_json(body)
}
