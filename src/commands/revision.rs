//! Deploying one revision, the same way for `up`, `upgrade`, `rollback` and the automatic
//! rollback of a failed upgrade: record it as pending, apply its objects, prune what it does not
//! have, wait for the rollout, and record how it ended (the previous deployed revision becomes
//! superseded; the history is trimmed to `historyMax`).

use std::collections::BTreeSet;
use std::time::Duration;

use kube::api::DynamicObject;

use crate::apply::{self, ApplyOptions, ApplyReport, Object};
use crate::cluster::Cluster;
use crate::outcome::{Exit, Failure};
use crate::release::{self, Record, RevisionStatus};
use crate::rollout::{self, Outcome};
use crate::ui::{Event, Events};

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

/// A deployed revision and how its rollout ended.
pub struct Deployed {
    pub record: Record,
    pub report: ApplyReport,
    pub outcome: Outcome,
}

impl Deployer<'_> {
    /// Deploys `record` (whose `revision` is new) by applying `objects` and keeping `also_keep`
    /// from pruning (the live Secret during a rollback).
    pub async fn deploy(
        &self,
        mut record: Record,
        objects: &[Object],
        also_keep: Option<(String, String)>,
        deployments: Vec<String>,
    ) -> Result<Deployed, Failure> {
        record.status = RevisionStatus::Pending;
        release::create(self.cluster, self.namespace, &record, self.events).await?;
        let options = ApplyOptions {
            dry_run: false,
            force_conflicts: self.force_conflicts,
        };
        let applied =
            apply::apply(self.cluster, self.namespace, objects, options, self.events).await;
        let mut report = match applied {
            Ok(report) => report,
            Err(error) => {
                record.status = RevisionStatus::Failed;
                record.description = format!("{}: apply failed: {error}", record.description);
                let _ = release::update(self.cluster, self.namespace, &record, self.events).await;
                let _ = self.trim().await;
                let hint = error.hint();
                return Err(Failure::new(Exit::Failed, error, hint));
            }
        };
        let target = rollout::Target {
            namespace: self.namespace.to_owned(),
            release: self.release.to_owned(),
            deployments,
            timeout: self.timeout,
        };
        let outcome = rollout::wait(self.cluster, &target, super::interrupted(), self.events).await;
        record.status = match &outcome {
            Outcome::Ready => RevisionStatus::Deployed,
            Outcome::Failed(_) | Outcome::TimedOut(_) => RevisionStatus::Failed,
            Outcome::Interrupted(_) => RevisionStatus::Pending,
        };
        record.description = match &outcome {
            Outcome::Ready => record.description,
            Outcome::Failed(_) => format!("{}: the rollout failed", record.description),
            Outcome::TimedOut(_) => format!("{}: the rollout timed out", record.description),
            Outcome::Interrupted(_) => format!(
                "{}: interrupted while waiting for the rollout",
                record.description
            ),
        };
        // The record first: whatever fails after it, the history says what is deployed.
        release::update(self.cluster, self.namespace, &record, self.events).await?;
        if outcome == Outcome::Ready {
            // Only a revision that rolled out may take away what the previous one had.
            let mut keep: BTreeSet<(String, String)> = objects
                .iter()
                .map(|o| (o.kind.clone(), o.name.clone()))
                .collect();
            keep.extend(also_keep);
            report.pruned = apply::prune(
                self.cluster,
                self.namespace,
                self.release,
                &keep,
                false,
                self.events,
            )
            .await?;
            self.supersede(record.revision).await?;
        }
        self.trim().await?;
        Ok(Deployed {
            record,
            report,
            outcome,
        })
    }

    /// Marks every other deployed revision superseded.
    async fn supersede(&self, current: u32) -> Result<(), Failure> {
        let history =
            release::history(self.cluster, self.namespace, self.release, self.events).await?;
        for mut older in history {
            if older.revision != current && older.status == RevisionStatus::Deployed {
                older.status = RevisionStatus::Superseded;
                release::update(self.cluster, self.namespace, &older, self.events).await?;
            }
        }
        Ok(())
    }

    /// Keeps the newest `historyMax` revisions, whatever the outcome.
    async fn trim(&self) -> Result<(), Failure> {
        let history =
            release::history(self.cluster, self.namespace, self.release, self.events).await?;
        release::trim(
            self.cluster,
            self.namespace,
            &history,
            self.history_max as usize,
            self.events,
        )
        .await
        .map_err(Into::into)
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

/// The objects of a recorded revision, without its Secret: Secret values are never stored,
/// so a rollback keeps the live Secret. Returns the Secret's name to keep it from pruning.
pub fn recorded_objects(
    record: &Record,
    events: &Events,
) -> (Vec<Object>, Option<(String, String)>) {
    let mut secret = None;
    let mut objects = Vec::new();
    for manifest in &record.manifests {
        if manifest["kind"] == "Secret" {
            let name = manifest["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            secret = Some(("Secret".to_owned(), name));
            continue;
        }
        match Object::from_json(manifest.clone()) {
            Some(object) => objects.push(object),
            None => events.send(Event::Warning(format!(
                "revision {} holds a `{}` that this version cannot apply; skipped",
                record.revision, manifest["kind"]
            ))),
        }
    }
    (objects, secret)
}

/// The Deployments among `objects`: what a rollout waits for.
pub fn deployments(objects: &[Object]) -> Vec<String> {
    objects
        .iter()
        .filter(|o| o.kind == "Deployment")
        .map(|o| o.name.clone())
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
