//! `todo-deploy up`, `upgrade` and `diff`: one pipeline. Resolve the plan, connect, build, load,
//! apply (server-side), prune, and wait for the rollout; `--dry-run` and `diff` stop after a
//! server-side dry run and show what would change.

use std::collections::BTreeSet;

use color_eyre::Section;

use crate::apply::{self, ApplyOptions, ApplyReport, Change};
use crate::cli::{DeployArgs, GlobalArgs};
use crate::cluster::{self, Cluster};
use crate::config::LoaderKind;
use crate::outcome::{Exit, Failure};
use crate::plan::Plan;
use crate::render::{self, labels};
use crate::rollout::{self, Outcome, Problem, RolloutState, Standing};
use crate::settings::{self, CommandFlags, Secrets};
use crate::ui::{Event, Events, Printer, Ui};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Install, or upgrade what is there.
    Up,
    /// Upgrade a release that exists.
    Upgrade,
    /// Show what `up` would change, and change nothing.
    Diff,
}

pub async fn run(
    global: &GlobalArgs,
    args: &DeployArgs,
    mode: Mode,
    env: &dyn Fn(&str) -> Option<String>,
    printer: &Printer,
) -> Result<Exit, Failure> {
    let flags = CommandFlags {
        tag: args.tag.as_deref(),
        timeout: args.timeout.as_deref(),
        loader: args.loader.map(Into::into),
    };
    let plan = settings::resolve(global, &flags, Secrets::Values, env)?;
    let ui = Ui::start(printer);
    let result = pipeline(&plan, args, mode, &ui.events, printer).await;
    ui.finish().await;
    result
}

async fn pipeline(
    plan: &Plan,
    args: &DeployArgs,
    mode: Mode,
    events: &Events,
    printer: &Printer,
) -> Result<Exit, Failure> {
    let cluster = cluster::connect(&plan.cluster, events)
        .await
        .map_err(|error| {
            let hint = error.hint();
            Failure::new(Exit::Failed, error, Some(hint))
        })?;
    events.send(Event::Detail(format!(
        "cluster: context `{}` at `{}`",
        cluster.context, cluster.server
    )));
    if mode == Mode::Upgrade {
        require_release(&cluster, plan, events).await?;
    }
    let dry_run = args.dry_run || mode == Mode::Diff;
    if !dry_run {
        images(plan, args, events)?;
    }

    let manifests = render::render(plan);
    let options = ApplyOptions {
        dry_run,
        force_conflicts: args.force_conflicts,
    };
    let mut report = apply::apply(&cluster, &plan.namespace, &manifests, options, events)
        .await
        .map_err(|error| {
            let hint = error.hint();
            Failure::new(Exit::Failed, error, hint)
        })?;
    let keep: BTreeSet<(String, String)> = manifests
        .iter()
        .map(|m| (m.kind().to_owned(), m.name().to_owned()))
        .collect();
    report.pruned = apply::prune(
        &cluster,
        &plan.namespace,
        &plan.release,
        &keep,
        dry_run,
        events,
    )
    .await
    .map_err(|error| {
        let hint = error.hint();
        Failure::new(Exit::Failed, error, hint)
    })?;

    if mode == Mode::Diff {
        printer.data(&diff_text(&report));
        return Ok(Exit::Success);
    }
    if dry_run {
        events.send(Event::Info(summary(&report, true)));
        return Ok(Exit::Success);
    }

    let target = rollout::Target {
        namespace: plan.namespace.clone(),
        release: plan.release.clone(),
        deployments: plan.services.iter().map(|s| s.name.clone()).collect(),
        timeout: plan.timeout,
    };
    let interrupted = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match rollout::wait(&cluster, &target, interrupted, events).await {
        Outcome::Ready => {
            events.send(Event::Info(format!(
                "release `{}` is ready in namespace `{}` ({})",
                plan.release,
                plan.namespace,
                summary(&report, false)
            )));
            Ok(Exit::Success)
        }
        Outcome::Failed(standings) => Err(rollout_failure("failed", &standings)),
        Outcome::TimedOut(standings) => Err(rollout_failure(
            &format!("did not finish within {}s", plan.timeout.as_secs()),
            &standings,
        )),
        Outcome::Interrupted(standings) => Err(interrupted_failure(&standings)),
    }
}

/// Images must be on the node before anything references them. The build and load stages land
/// separately; until they do, only clusters that need no loading are served, and only with
/// images that already exist.
fn images(plan: &Plan, args: &DeployArgs, events: &Events) -> Result<(), Failure> {
    if !args.no_build {
        return Err(Failure::message(
            Exit::Failed,
            "building images is not available in this version yet",
            Some("build the images yourself and pass `--no-build` to deploy them as they are tagged (`todo-deploy render` shows the tags)".to_owned()),
        ));
    }
    match plan.cluster.loader {
        LoaderKind::None | LoaderKind::Docker => {
            for service in &plan.services {
                events.send(Event::Detail(format!(
                    "load {}: not needed (loader `{}`), deploying `{}`",
                    service.name,
                    plan.cluster.loader.as_str(),
                    service.image
                )));
            }
            Ok(())
        }
        other => Err(Failure::message(
            Exit::Failed,
            format!(
                "loading images with the `{}` loader is not available in this version yet",
                other.as_str()
            ),
            Some("build into the cluster's own Docker daemon (`eval $(minikube docker-env)`) and pass `--loader none --no-build`".to_owned()),
        )),
    }
}

/// `upgrade` needs something to upgrade.
async fn require_release(cluster: &Cluster, plan: &Plan, events: &Events) -> Result<(), Failure> {
    use k8s_openapi::api::apps::v1::Deployment;
    use kube::api::{Api, ListParams};
    let api: Api<Deployment> = Api::namespaced(cluster.client.clone(), &plan.namespace);
    let params = ListParams::default().labels(&labels::release_selector(&plan.release));
    let found = cluster::retrying(events, "list the release's Deployments", || {
        api.list(&params)
    })
    .await
    .map_err(|error| {
        Failure::message(
            Exit::Failed,
            format!(
                "cannot list Deployments in `{}`: {}",
                plan.namespace,
                cluster::short(&error)
            ),
            None,
        )
    })?;
    if found.items.is_empty() {
        return Err(Failure::message(
            Exit::Failed,
            format!(
                "release `{}` is not installed in namespace `{}`",
                plan.release, plan.namespace
            ),
            Some("install it with `todo-deploy up`".to_owned()),
        ));
    }
    Ok(())
}

fn summary(report: &ApplyReport, dry_run: bool) -> String {
    let count = |change| report.applied.iter().filter(|a| a.change == change).count();
    let mut parts = vec![
        format!(
            "{} {}",
            count(Change::Created),
            Change::Created.verb(dry_run)
        ),
        format!(
            "{} {}",
            count(Change::Configured),
            Change::Configured.verb(dry_run)
        ),
        format!("{} unchanged", count(Change::Unchanged)),
    ];
    if !report.pruned.is_empty() {
        let verb = if dry_run { "would be pruned" } else { "pruned" };
        parts.push(format!("{} {verb}", report.pruned.len()));
    }
    parts.join(", ")
}

/// The per-object diff of a dry run, Secret data masked.
fn diff_text(report: &ApplyReport) -> String {
    let mut out = String::new();
    for applied in &report.applied {
        let title = format!("{}/{}", applied.kind, applied.name);
        let mut before = applied.before.as_ref().map(apply::diff::normalized);
        let Some(after) = &applied.after else {
            out.push_str(&format!(
                "{title}: would be created (its namespace is new)\n"
            ));
            continue;
        };
        let mut after = apply::diff::normalized(after);
        if applied.kind == "Secret" {
            let mut empty = serde_json::json!({});
            apply::diff::mask_secret_data(before.as_mut().unwrap_or(&mut empty), &mut after);
        }
        if let Some(diff) = apply::diff::unified(&title, before.as_ref(), &after) {
            out.push_str(&diff);
        }
    }
    for pruned in &report.pruned {
        out.push_str(&format!(
            "{}/{}: would be pruned\n",
            pruned.kind, pruned.name
        ));
    }
    if out.is_empty() {
        out.push_str("no changes\n");
    }
    out
}

fn rollout_failure(what: &str, standings: &[Standing]) -> Failure {
    let mut lines = Vec::new();
    let mut hints = Vec::new();
    for standing in standings
        .iter()
        .filter(|s| s.state != RolloutState::Complete)
    {
        let counts = standing.counts;
        let mut line = format!(
            "`{}` ({}/{} available): ",
            standing.deployment, counts.available, counts.desired
        );
        match (&standing.problem, &standing.state) {
            (Some(problem), _) => {
                line.push_str(&problem.summary());
                if let Problem::CrashLoop { logs, .. } = problem
                    && !logs.is_empty()
                {
                    line.push_str("\n  last lines of the previous container's log:");
                    for log in logs {
                        line.push_str(&format!("\n    | {log}"));
                    }
                }
                hints.push(problem.hint());
            }
            (None, RolloutState::DeadlineExceeded { message }) => {
                line.push_str(&format!("ProgressDeadlineExceeded: {message}"));
                hints.push("`kubectl describe deployment` shows the pods' events".to_owned());
            }
            (None, RolloutState::Progressing { waiting_for }) => line.push_str(waiting_for),
            (None, RolloutState::NotObserved) => {
                line.push_str("the controller has not observed the new spec")
            }
            (None, RolloutState::Missing) => line.push_str("the Deployment does not exist"),
            (None, RolloutState::Complete) => {}
        }
        lines.push(line);
    }
    let mut report = color_eyre::Report::msg(format!("the rollout {what}:\n{}", lines.join("\n")));
    hints.dedup();
    for hint in hints {
        report = report.suggestion(hint);
    }
    Failure {
        exit: Exit::Failed,
        report,
    }
}

fn interrupted_failure(standings: &[Standing]) -> Failure {
    let lines: Vec<String> = standings
        .iter()
        .map(|s| {
            format!(
                "`{}`: {}/{} updated, {}/{} available{}",
                s.deployment,
                s.counts.updated,
                s.counts.desired,
                s.counts.available,
                s.counts.desired,
                if s.state == RolloutState::Complete {
                    " (complete)"
                } else {
                    ""
                }
            )
        })
        .collect();
    Failure::message(
        Exit::Interrupted,
        format!(
            "interrupted while waiting; the cluster is left as applied:\n{}",
            lines.join("\n")
        ),
        Some("`todo-deploy status` shows where it stands; `todo-deploy up` continues".to_owned()),
    )
}
