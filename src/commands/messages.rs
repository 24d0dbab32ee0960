//! The words of the deploy commands: summaries of an apply, the diff of a dry run, and the
//! failure reports of a rollout, each with the hint for its cause.

use crate::apply::{self, ApplyReport, Change};
use crate::outcome::{Exit, Failure};
use crate::render::Kind;
use crate::rollout::{Problem, RolloutState, Standing};

pub fn summary(report: &ApplyReport, dry_run: bool) -> String {
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
pub fn diff_text(report: &ApplyReport) -> String {
    let mut out = String::new();
    for applied in &report.applied {
        let title = applied.key.to_string();
        let mut before = applied.before.as_ref().map(apply::diff::normalized);
        let Some(after) = &applied.after else {
            out.push_str(&format!(
                "{title}: would be created (its namespace is new)\n"
            ));
            continue;
        };
        let mut after = apply::diff::normalized(after);
        if applied.key.kind == Kind::Secret {
            let mut empty = serde_json::json!({});
            apply::diff::mask_secret_data(before.as_mut().unwrap_or(&mut empty), &mut after);
        }
        if let Some(diff) = apply::diff::unified(&title, before.as_ref(), &after) {
            out.push_str(&diff);
        }
    }
    for pruned in &report.pruned {
        out.push_str(&format!("{pruned}: would be pruned\n"));
    }
    if out.is_empty() {
        out.push_str("no changes\n");
    }
    out
}

/// What went wrong with each Deployment that is not rolled out, and what to do about it.
pub fn rollout_report(what: &str, standings: &[Standing]) -> (String, Vec<String>) {
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
    (format!("the rollout {what}:\n{}", lines.join("\n")), hints)
}

/// Where each Deployment stands, a line each: `` `backend`: 1/2 updated, 0/2 available ``.
fn standing_lines(standings: &[Standing]) -> String {
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
    lines.join("\n")
}

pub fn interrupted_failure(standings: &[Standing]) -> Failure {
    Failure::message(
        Exit::Interrupted,
        format!(
            "interrupted while waiting; the cluster is left as applied:\n{}",
            standing_lines(standings)
        ),
        Some("`todo-deploy status` shows where it stands; `todo-deploy up` continues".to_owned()),
    )
}

/// The API server went away during the wait and did not come back before the timeout.
/// `revision` is the revision left pending, if this run recorded one.
pub fn unreachable_failure(
    server: &str,
    since: jiff::Timestamp,
    standings: &[Standing],
    revision: Option<u32>,
) -> Failure {
    let pending = revision.map_or(String::new(), |r| format!("\nrevision {r} is left pending"));
    Failure::message(
        Exit::Failed,
        format!(
            "the API server at `{server}` has been unreachable since {since}; the rollout as last seen:\n{}{pending}",
            standing_lines(standings)
        ),
        Some("when it answers again, `todo-deploy status` shows where the release stands and `todo-deploy up` finishes the change".to_owned()),
    )
}
