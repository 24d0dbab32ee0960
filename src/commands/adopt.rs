//! Taking over what the old Helm chart (or a plain `kubectl apply`) installed: `todo-deploy
//! adopt --from-helm RELEASE`, `up --adopt`, and `adopt --from-helm RELEASE --values-only`.
//!
//! `up` calls [`detect`] before anything changes: objects with our names that another tool
//! made stop it (the list and the command that takes over), unless it adopts. Under the release
//! lock, [`take_over`] then runs before the revision is deployed: the Helm release's last
//! deployed revision is recorded as revision 0; the previous owner's fields become ours; our
//! ConfigMap and Secret are applied; our Deployments start beside the old ones (an old one of
//! our name is deleted first with its pods left serving) with no fewer replicas than they had;
//! once ours are ready each Service switches to them, and once its endpoints list only our pods
//! the old workloads are scaled down and deleted; Helm's records are marked uninstalled (or
//! deleted). The revision `up` deploys next finishes the job with our replica counts, the
//! Ingress and the rest, like any upgrade.

use std::collections::{BTreeMap, BTreeSet};

use kube::api::{DynamicObject, ListParams};

use crate::adopt::plan::{Replacement, Takeover};
use crate::adopt::{self, AdoptError, AdoptEvent, Found, detect, steps, transfer};
use crate::apply::{self, ApplyOptions, Object, Owner};
use crate::cli::{AdoptArgs, DeployArgs, GlobalArgs};
use crate::cluster::{self, Cluster};
use crate::helm::{self, HelmRecord};
use crate::outcome::{Exit, Failure};
use crate::plan::Plan;
use crate::release::{self, ImageRecord, Record, RevisionStatus};
use crate::render::{Kind, ObjectKey};
use crate::rollout::{self, Outcome};
use crate::ui::{Events, Printer, Ui};

use super::messages;
use super::revision::Deployer;

/// What a run that adopts takes over, as found before anything changed.
pub struct Adoption {
    /// The Helm release's last deployed revision, when a Helm release is taken over.
    helm: Option<HelmRecord>,
    remove_records: bool,
}

/// `adopt --from-helm RELEASE --values-only`: the release's settings as a values file.
pub async fn values_only(
    global: &GlobalArgs,
    args: &AdoptArgs,
    printer: &Printer,
) -> Result<Exit, Failure> {
    let release = args.from_helm.clone().unwrap_or_default();
    Ui::around(printer, async |events| {
        let (plan, cluster) = super::plan_and_cluster(global, events).await?;
        let record =
            helm::store::last_deployed(&cluster, &plan.namespace, &release, events).await?;
        events.send(AdoptEvent::HelmRelease(record.summary()?));
        let objects = record.objects()?;
        let ours = helm::values::Ours {
            services: plan.services.iter().map(|s| s.name.as_str()).collect(),
            config_map: &plan.config_map.name,
            config_map_keys: plan.config_map.data.keys().map(String::as_str).collect(),
            secret: &plan.secret.name,
        };
        printer.data(&helm::values::values_file(&record, &objects, &ours));
        Ok(Exit::Success)
    })
    .await
}

/// Before anything changes: the objects with our names another tool made. Without `--adopt`
/// they stop the run (what was found, and the command that takes it over); with it, the Helm
/// release they belong to is read and shown. `None` when there is nothing to take over.
pub async fn detect(
    plan: &Plan,
    cluster: &Cluster,
    objects: &[Object],
    args: &DeployArgs,
    dry_run: bool,
    events: &Events,
) -> Result<Option<Adoption>, Failure> {
    check_flags(args, dry_run)?;
    let live = detect::live(cluster, &plan.namespace, objects, events).await?;
    let found = detect::foreign(&live);
    if found.is_empty() {
        return match &args.from_helm {
            Some(release) => nothing_found(cluster, &plan.namespace, release, events).await,
            None => Ok(None),
        };
    }
    let release = helm_release(cluster, &plan.namespace, &found, args, events).await?;
    if !args.adopt {
        let command = match (&release, found.iter().any(is_helm)) {
            (Some(release), _) => format!("todo-deploy adopt --from-helm {release}"),
            (None, true) => "todo-deploy adopt --from-helm RELEASE".to_owned(),
            (None, false) => "todo-deploy up --adopt".to_owned(),
        };
        let namespace = plan.namespace.clone();
        return Err(AdoptError::Foreign {
            namespace,
            found,
            command,
        }
        .into());
    }
    let helm = match &release {
        Some(release) => {
            let record =
                helm::store::last_deployed(cluster, &plan.namespace, release, events).await?;
            events.send(AdoptEvent::HelmRelease(record.summary()?));
            Some(record)
        }
        None => None,
    };
    let remove_records = args.remove_helm_records;
    Ok(Some(Adoption {
        helm,
        remove_records,
    }))
}

/// `--from-helm RELEASE` where no object with our names is another tool's: the release was
/// taken over already (nothing to do but `up`), or it shares nothing with us.
async fn nothing_found(
    cluster: &Cluster,
    namespace: &str,
    release: &str,
    events: &Events,
) -> Result<Option<Adoption>, Failure> {
    match helm::store::last_deployed(cluster, namespace, release, events).await {
        Ok(_) => {
            let (release, namespace) = (release.to_owned(), namespace.to_owned());
            Err(AdoptError::NothingShared { release, namespace }.into())
        }
        Err(helm::HelmError::NotDeployed { status, latest, .. }) if status == "uninstalled" => {
            events.send(AdoptEvent::NothingLeft {
                release: release.to_owned(),
                revision: latest,
            });
            Ok(None)
        }
        Err(error) => Err(error.into()),
    }
}

fn is_helm(found: &Found) -> bool {
    matches!(found.owner, Owner::Helm { .. })
}

fn check_flags(args: &DeployArgs, dry_run: bool) -> Result<(), AdoptError> {
    if args.remove_helm_records && !args.adopt {
        return Err(AdoptError::Usage {
            flag: "--remove-helm-records",
            problem: "is for a takeover",
            fix: "add `--adopt`, or run `todo-deploy adopt --from-helm RELEASE --remove-helm-records`",
        });
    }
    if args.adopt && dry_run {
        return Err(AdoptError::Usage {
            flag: "--adopt",
            problem: "cannot be dry-run: a takeover changes who owns what",
            fix: "`todo-deploy adopt --from-helm RELEASE --values-only` shows the release's settings; run without `--dry-run` (or `diff`) to take over",
        });
    }
    Ok(())
}

/// The Helm release the found objects belong to: the one named (every found Helm object must
/// be of it), else the one their annotations name, else the only release recorded here.
async fn helm_release(
    cluster: &Cluster,
    namespace: &str,
    found: &[Found],
    args: &DeployArgs,
    events: &Events,
) -> Result<Option<String>, Failure> {
    let named: BTreeSet<&str> = found
        .iter()
        .filter_map(|f| match &f.owner {
            Owner::Helm { release } => release.as_deref(),
            _ => None,
        })
        .collect();
    if let Some(wanted) = &args.from_helm {
        let other = found.iter().find_map(|f| match &f.owner {
            Owner::Helm { release: Some(r) } if r != wanted => Some((f.key.to_string(), r)),
            _ => None,
        });
        if let Some((object, found)) = other {
            let (found, wanted) = (found.clone(), wanted.clone());
            return Err(AdoptError::OtherRelease {
                object,
                found,
                wanted,
            }
            .into());
        }
        return Ok(Some(wanted.clone()));
    }
    if named.len() > 1 {
        let releases = named.iter().map(|r| format!("`{r}`")).collect();
        return Err(AdoptError::ManyReleases { releases }.into());
    }
    if let Some(release) = named.first() {
        return Ok(Some((*release).to_owned()));
    }
    if !found.iter().any(is_helm) {
        return Ok(None);
    }
    // Helm before 3.2 did not annotate: the only release recorded here is the one.
    let mut recorded: Vec<String> = helm::store::releases(cluster, namespace, events)
        .await?
        .into_iter()
        .map(|l| l.release)
        .collect();
    recorded.dedup();
    Ok(match recorded.as_slice() {
        [only] => Some(only.clone()),
        _ => None,
    })
}

/// The takeover, under the release lock, before the revision `new_record` makes is deployed:
/// see the module. Returns the history (with revision 0 when a Helm release is taken over) and
/// the revision to deploy next. A takeover that stops is recorded as that revision, failed.
pub async fn take_over(
    deployer: &Deployer<'_>,
    plan: &Plan,
    adoption: &Adoption,
    objects: &[Object],
    history: Vec<Record>,
    new_record: impl Fn(&[Record]) -> Record,
) -> Result<(Vec<Record>, Record), Failure> {
    let (cluster, namespace, events) = (deployer.cluster, deployer.namespace, deployer.events);
    // Read again under the lock: what is live now is what is taken over.
    let live = detect::live(cluster, namespace, objects, events).await?;
    let found = detect::foreign(&live);
    let deployments = list_deployments(cluster, namespace, events).await?;
    let takeover = adopt::plan::plan(objects, &live, &found, &deployments);
    let mut history = history;
    if let Some(helm) = &adoption.helm {
        record_helm(deployer, plan, helm, &mut history).await?;
    }
    let mut record = new_record(&history);
    record.description = match &adoption.helm {
        Some(helm) => format!(
            "Take over from Helm release {} revision {}",
            helm.release, helm.version
        ),
        None => "Take over".to_owned(),
    };
    let run = Run {
        deployer,
        plan,
        objects,
        takeover: &takeover,
        live: &live,
    };
    let steps = async {
        for found in &takeover.transfers {
            transfer::take_fields(cluster, namespace, found, &live[&found.key], events).await?;
        }
        let orphans = run.start_beside().await?;
        run.switch().await?;
        supersede(deployer, &mut history).await?;
        run.retire(&orphans).await?;
        if let Some(helm) = &adoption.helm {
            retire_helm(deployer, helm, adoption.remove_records, objects, &takeover).await?;
        }
        Ok::<(), Failure>(())
    };
    if let Err(failure) = steps.await {
        return Err(stopped(deployer, record, failure).await);
    }
    Ok((history, record))
}

async fn list_deployments(
    cluster: &Cluster,
    namespace: &str,
    events: &Events,
) -> Result<Vec<DynamicObject>, Failure> {
    let api = detect::api(cluster, namespace, Kind::Deployment);
    let all = ListParams::default();
    cluster::retrying(events, "list Deployments", || api.list(&all))
        .await
        .map(|list| list.items)
        .map_err(|source| {
            AdoptError::Api {
                action: "list",
                object: "Deployments".to_owned(),
                source,
            }
            .into()
        })
}

/// Records the Helm release's last deployed revision as revision 0 (once): its manifests with
/// each Secret value as a digest, its images, a digest of its values.
async fn record_helm(
    deployer: &Deployer<'_>,
    plan: &Plan,
    helm: &HelmRecord,
    history: &mut Vec<Record>,
) -> Result<(), Failure> {
    if history.iter().any(|r| r.revision == 0) {
        return Ok(());
    }
    let summary = helm.summary()?;
    let now = jiff::Timestamp::now();
    let record = Record {
        release: plan.release.clone(),
        revision: 0,
        status: RevisionStatus::Deployed,
        time: now.round(jiff::Unit::Second).unwrap_or(now).to_string(),
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        description: format!(
            "Adopted from Helm release {} revision {}",
            helm.release, helm.version
        ),
        images: summary
            .workloads
            .iter()
            .flat_map(|w| {
                w.images.iter().map(|image| ImageRecord {
                    service: w.name.clone(),
                    reference: image.clone(),
                    id: None,
                })
            })
            .collect(),
        config_digest: helm.values_digest(),
        manifests: helm::manifest::redacted(&helm.objects()?),
    };
    release::create(
        deployer.cluster,
        deployer.namespace,
        &record,
        deployer.events,
    )
    .await?;
    deployer.events.send(AdoptEvent::RecordedHelmRevision {
        release: helm.release.clone(),
        revision: helm.version,
    });
    history.insert(0, record);
    Ok(())
}

/// Once the Services select our pods, revision 0 no longer serves.
async fn supersede(deployer: &Deployer<'_>, history: &mut [Record]) -> Result<(), Failure> {
    for record in history
        .iter_mut()
        .filter(|r| r.revision == 0 && r.status == RevisionStatus::Deployed)
    {
        deployer.mark(record, RevisionStatus::Superseded).await?;
        record.status = RevisionStatus::Superseded;
    }
    Ok(())
}

/// The Helm release's records after the takeover, and what it had that is not ours.
async fn retire_helm(
    deployer: &Deployer<'_>,
    helm: &HelmRecord,
    remove: bool,
    objects: &[Object],
    takeover: &Takeover,
) -> Result<(), Failure> {
    let (cluster, namespace, events) = (deployer.cluster, deployer.namespace, deployer.events);
    let description = format!("Taken over by todo-deploy (release {})", deployer.release);
    let revisions = helm::store::retire(
        cluster,
        namespace,
        &helm.release,
        remove,
        &description,
        events,
    )
    .await?;
    events.send(AdoptEvent::HelmRecords {
        release: helm.release.clone(),
        revisions,
        removed: remove,
    });
    let mut known: BTreeSet<String> = objects.iter().map(|o| o.key.to_string()).collect();
    for replacement in &takeover.replacements {
        known.extend(
            replacement
                .old
                .iter()
                .map(|o| format!("Deployment/{}", o.name)),
        );
    }
    let left: Vec<String> = helm
        .summary()?
        .objects
        .into_iter()
        .filter(|o| !known.contains(o) && !o.starts_with("Namespace/"))
        .collect();
    if !left.is_empty() {
        events.send(AdoptEvent::LeftBehind {
            release: helm.release.clone(),
            objects: left,
        });
    }
    Ok(())
}

/// Records the revision of a takeover that stopped, and returns why it stopped.
async fn stopped(deployer: &Deployer<'_>, mut record: Record, failure: Failure) -> Failure {
    record.status = match failure.exit {
        Exit::Interrupted => RevisionStatus::Interrupted,
        _ => RevisionStatus::Failed,
    };
    record.description = format!("{}: stopped: {}", record.description, failure.headline());
    let _ = release::create(
        deployer.cluster,
        deployer.namespace,
        &record,
        deployer.events,
    )
    .await;
    failure
}

/// One takeover's steps, sharing what they need.
struct Run<'a> {
    deployer: &'a Deployer<'a>,
    plan: &'a Plan,
    objects: &'a [Object],
    takeover: &'a Takeover,
    live: &'a BTreeMap<ObjectKey, DynamicObject>,
}

impl Run<'_> {
    fn of_kinds(&self, kinds: &[Kind]) -> Vec<Object> {
        self.objects
            .iter()
            .filter(|o| kinds.contains(&o.kind()))
            .cloned()
            .collect()
    }

    async fn apply(&self, kinds: &[Kind]) -> Result<(), Failure> {
        self.apply_objects(&self.of_kinds(kinds)).await
    }

    async fn apply_objects(&self, objects: &[Object]) -> Result<(), Failure> {
        let options = ApplyOptions {
            force_conflicts: true,
            ..ApplyOptions::default()
        };
        let d = self.deployer;
        apply::apply(d.cluster, d.namespace, objects, options, d.events).await?;
        Ok(())
    }

    /// Our Deployments as the takeover applies them: a replacement whose configuration has
    /// fewer replicas than the old ones runs as many as they had, in the same write (a second
    /// write, a scaling event, would delay its rollout).
    fn deployments(&self) -> Vec<Object> {
        let mut deployments = self.of_kinds(&[Kind::Deployment]);
        for deployment in &mut deployments {
            let surge = self
                .takeover
                .replacements
                .iter()
                .find(|r| r.deployment == deployment.name() && r.configured.is_some())
                .and_then(|r| r.surge);
            if let Some(replicas) = surge {
                deployment.body["spec"]["replicas"] = serde_json::Value::from(replicas);
            }
        }
        deployments
    }

    /// Our ConfigMap and Secret, then our Deployments beside the old ones (an old one of our
    /// name set aside first), with as many replicas as the old ones had; waits until they are
    /// ready. Returns the ReplicaSets left by the old Deployments set aside.
    async fn start_beside(&self) -> Result<Vec<(String, i32)>, Failure> {
        let d = self.deployer;
        self.apply(&[Kind::ConfigMap, Kind::Secret]).await?;
        let mut orphans = Vec::new();
        for replacement in &self.takeover.replacements {
            for old in replacement.old.iter().filter(|o| o.same_name) {
                let sets =
                    steps::set_aside(d.cluster, d.namespace, old, d.timeout, d.events).await?;
                orphans.extend(sets);
            }
        }
        self.apply_objects(&self.deployments()).await?;
        for replacement in &self.takeover.replacements {
            self.surge(replacement).await?;
        }
        self.wait().await?;
        Ok(orphans)
    }

    async fn surge(&self, replacement: &Replacement) -> Result<(), Failure> {
        let d = self.deployer;
        let before = replacement.old_replicas();
        if let Some(configured) = replacement.configured.filter(|c| *c < before) {
            d.events.send(AdoptEvent::FewerReplicas {
                deployment: replacement.deployment.clone(),
                before,
                configured,
            });
        }
        let Some(replicas) = replacement.surge else {
            return Ok(());
        };
        if replacement.configured.is_none() {
            // An autoscaler's Deployment: the replicas are held by a manager of their own, so
            // that our applies (which leave them out) never reset them.
            let (cluster, namespace) = (d.cluster, d.namespace);
            steps::surge(
                cluster,
                namespace,
                &replacement.deployment,
                replicas,
                d.events,
            )
            .await?;
        }
        let old: Vec<String> = replacement
            .old
            .iter()
            .map(|o| format!("Deployment/{}", o.name))
            .collect();
        d.events.send(AdoptEvent::Surge {
            deployment: replacement.deployment.clone(),
            replicas,
            old: old.join(" and "),
        });
        Ok(())
    }

    /// Waits until our Deployments are ready; until then nothing old has changed.
    async fn wait(&self) -> Result<(), Failure> {
        let d = self.deployer;
        let target = rollout::Target {
            namespace: d.namespace.to_owned(),
            release: d.release.to_owned(),
            deployments: super::revision::deployments(self.objects),
            timeout: d.timeout,
        };
        let outcome = rollout::wait(d.cluster, &target, super::interrupted(), d.events).await;
        let (what, mut standings) = match outcome {
            Outcome::Ready => return Ok(()),
            Outcome::Interrupted(standings) => {
                return Err(messages::interrupted_failure(&standings));
            }
            Outcome::Unreachable { since, standings } => {
                return Err(messages::unreachable_failure(
                    &d.cluster.server,
                    since,
                    &standings,
                    None,
                ));
            }
            Outcome::Failed(standings) => ("failed".to_owned(), standings),
            Outcome::TimedOut(standings) => (
                format!("did not finish within {}s", d.timeout.as_secs()),
                standings,
            ),
        };
        let secrets: Vec<&str> = self
            .plan
            .secret
            .values
            .values()
            .map(|v| v.expose())
            .collect();
        rollout::redact_logs(&mut standings, &secrets);
        let (message, mut hints) = messages::rollout_report(&what, &standings);
        hints.push("nothing was switched: the old workloads still serve; fix the cause and run the same command again".to_owned());
        Err(Failure::message(
            Exit::Failed,
            format!("the takeover stopped: {message}"),
            hints,
        ))
    }

    /// Our Services (their selectors now ours), then for each that selected other pods, the
    /// wait until its endpoints list ours and no old one.
    async fn switch(&self) -> Result<(), Failure> {
        let d = self.deployer;
        let mut moving = Vec::new();
        for service in self.of_kinds(&[Kind::Service]) {
            let wanted = &service.body["spec"]["selector"];
            let Some(live) = self.live.get(&service.key) else {
                continue;
            };
            let before = &live.data["spec"]["selector"];
            // A Service without a selector had no pods behind it to move away from.
            let selected = before.as_object().is_some_and(|s| !s.is_empty());
            if selected && before != wanted {
                let old = steps::pods(d.cluster, d.namespace, before, d.events).await?;
                moving.push((service.key.name.clone(), old));
            }
        }
        self.apply(&[Kind::Service]).await?;
        for (service, old) in moving {
            let ready =
                steps::await_endpoints(d.cluster, d.namespace, &service, &old, d.timeout, d.events)
                    .await?;
            d.events.send(AdoptEvent::Switched { service, ready });
        }
        Ok(())
    }

    /// The old Deployments, and the ReplicaSets of those set aside, scaled down and deleted.
    async fn retire(&self, orphans: &[(String, i32)]) -> Result<(), Failure> {
        let d = self.deployer;
        for replacement in &self.takeover.replacements {
            for old in replacement.old.iter().filter(|o| !o.same_name) {
                let workload = ("Deployment", old.name.as_str(), old.replicas);
                steps::retire(d.cluster, d.namespace, workload, d.events).await?;
            }
        }
        for (replica_set, replicas) in orphans {
            let workload = ("ReplicaSet", replica_set.as_str(), *replicas);
            steps::retire(d.cluster, d.namespace, workload, d.events).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn deploy_args(args: &[&str]) -> DeployArgs {
        let cli = Cli::try_parse_from(args).expect("parses");
        match cli.command {
            Command::Up(args) | Command::Diff(args) => args,
            Command::Adopt(args) => args.deploy_args(),
            _ => panic!("a deploy command"),
        }
    }

    #[test]
    fn flags_that_do_not_go_together_are_usage_errors() {
        use crate::outcome::Diagnose;
        let records = check_flags(
            &deploy_args(&["todo-deploy", "up", "--remove-helm-records"]),
            false,
        )
        .expect_err("not a takeover");
        assert_eq!(records.exit(), Exit::Usage);
        assert!(
            records.to_string().contains("`--remove-helm-records`"),
            "{records}"
        );
        let dry = deploy_args(&[
            "todo-deploy",
            "adopt",
            "--from-helm",
            "todo-app",
            "--dry-run",
        ]);
        let error = check_flags(&dry, true).expect_err("no dry run");
        assert_eq!(error.exit(), Exit::Usage);
        assert!(error.hint().unwrap_or_default().contains("--values-only"));
        assert!(check_flags(&deploy_args(&["todo-deploy", "diff"]), true).is_ok());
        let adopt = deploy_args(&["todo-deploy", "adopt", "--remove-helm-records"]);
        assert!(check_flags(&adopt, false).is_ok(), "adopt is a takeover");
    }
}
