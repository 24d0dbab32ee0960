//! The words of a takeover: what the Helm release had, whose fields became ours, what replaced
//! what, and what became of Helm's records.

use crate::adopt::AdoptEvent;
use crate::helm::Summary;

use super::Level;

/// One takeover event as a line (the Helm release as a few).
pub fn words(event: &AdoptEvent) -> (Level, String) {
    match event {
        AdoptEvent::HelmRelease(summary) => (Level::Info, release(summary)),
        AdoptEvent::RecordedHelmRevision { release, revision } => (
            Level::Info,
            format!(
                "Helm release `{release}` revision {revision} is recorded as revision 0 (its Secret values as digests only)"
            ),
        ),
        AdoptEvent::FieldsTaken { key, managers } => (
            Level::Info,
            format!(
                "{key}: the fields of {} are todo-deploy's now",
                quoted(managers)
            ),
        ),
        AdoptEvent::OrphanedOld {
            deployment,
            replica_sets,
        } => (
            Level::Info,
            format!(
                "Deployment/{deployment} (another selector, which cannot change) deleted; its pods serve on from {} until ours are ready",
                replica_sets
                    .iter()
                    .map(|r| format!("ReplicaSet/{r}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        AdoptEvent::Surge {
            deployment,
            replicas,
            old,
        } => (
            Level::Info,
            format!(
                "Deployment/{deployment} runs {replicas} replicas, as many as {old}, until it is gone"
            ),
        ),
        AdoptEvent::FewerReplicas {
            deployment,
            before,
            configured,
        } => (
            Level::Warning,
            format!(
                "`{deployment}` ran {before} replicas before; the configuration asks for {configured} (`--set services.{deployment}.replicas={before}` keeps them)"
            ),
        ),
        AdoptEvent::Switched { .. }
        | AdoptEvent::EndpointsUnreadable { .. }
        | AdoptEvent::Retired { .. }
        | AdoptEvent::HelmRecords { .. }
        | AdoptEvent::NothingLeft { .. }
        | AdoptEvent::LeftBehind { .. } => later(event),
    }
}

/// The later steps of a takeover (what [`words`] hands here).
fn later(event: &AdoptEvent) -> (Level, String) {
    match event {
        AdoptEvent::Switched { service, ready } => (
            Level::Info,
            format!(
                "Service/{service} selects todo-deploy's pods: its endpoints list {ready} ready, no old one"
            ),
        ),
        AdoptEvent::EndpointsUnreadable { service } => (
            Level::Warning,
            format!(
                "the endpoints of Service/{service} cannot be read with these credentials; the move to the new pods is not confirmed"
            ),
        ),
        AdoptEvent::Retired { workload, replicas } => (
            Level::Info,
            format!("{workload} scaled down from {replicas} and deleted"),
        ),
        AdoptEvent::HelmRecords {
            release,
            revisions,
            removed: true,
        } => (
            Level::Info,
            format!(
                "Helm release `{release}`: its records are deleted (revisions {})",
                numbers(revisions)
            ),
        ),
        AdoptEvent::HelmRecords {
            release, revisions, ..
        } => (
            Level::Info,
            format!(
                "Helm release `{release}`: revision {} marked uninstalled (`helm list` no longer shows it, `helm history {release}` keeps it; `--remove-helm-records` deletes the records)",
                numbers(revisions)
            ),
        ),
        AdoptEvent::NothingLeft { release, revision } => (
            Level::Info,
            format!(
                "Helm release `{release}` is uninstalled (revision {revision}) and nothing here is its: it was taken over already"
            ),
        ),
        AdoptEvent::LeftBehind { release, objects } => (
            Level::Warning,
            format!(
                "Helm release `{release}` also had {}, which todo-deploy does not render: left as they are (`kubectl delete` them when they are not needed)",
                objects.join(", ")
            ),
        ),
        // `words` says the others.
        other => (Level::Detail, format!("{other:?}")),
    }
}

/// What the Helm release's last deployed revision had.
fn release(summary: &Summary) -> String {
    let app = summary
        .chart
        .app_version
        .as_ref()
        .map(|v| format!(", app {v}"))
        .unwrap_or_default();
    let mut text = format!(
        "taking over Helm release `{}` revision {} ({}), chart {}-{}{app}",
        summary.release,
        summary.revision,
        summary.status,
        summary.chart.name,
        summary.chart.version
    );
    for workload in &summary.workloads {
        let replicas = workload
            .replicas
            .map(|r| format!("{r} replicas"))
            .unwrap_or_else(|| "default replicas".to_owned());
        text.push_str(&format!(
            "\n  {}/{}: {replicas}, {}",
            workload.kind,
            workload.name,
            workload.images.join(", ")
        ));
    }
    text
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn numbers(revisions: &[u32]) -> String {
    revisions
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helm::{Chart, Workload};

    #[test]
    fn the_release_is_shown_with_its_chart_replicas_and_images() {
        let summary = Summary {
            release: "todo-app".into(),
            revision: 2,
            status: "deployed".into(),
            chart: Chart {
                name: "todo-app".into(),
                version: "1.4.0".into(),
                app_version: Some("1.0.0".into()),
            },
            workloads: vec![Workload {
                kind: "Deployment".into(),
                name: "todo-app-backend".into(),
                replicas: Some(3),
                images: vec!["todo-backend:1.0.0".into()],
            }],
            objects: vec![],
        };
        let (level, text) = words(&AdoptEvent::HelmRelease(summary));
        assert_eq!(level, Level::Info);
        assert_eq!(
            text,
            "taking over Helm release `todo-app` revision 2 (deployed), chart todo-app-1.4.0, app 1.0.0\n  Deployment/todo-app-backend: 3 replicas, todo-backend:1.0.0"
        );
    }

    #[test]
    fn every_event_has_words() {
        let marked = AdoptEvent::HelmRecords {
            release: "todo-app".into(),
            revisions: vec![2],
            removed: false,
        };
        assert!(words(&marked).1.contains("revision 2 marked uninstalled"));
        let removed = AdoptEvent::HelmRecords {
            release: "todo-app".into(),
            revisions: vec![1, 2],
            removed: true,
        };
        assert!(
            words(&removed)
                .1
                .contains("records are deleted (revisions 1, 2)")
        );
        let switched = AdoptEvent::Switched {
            service: "backend".into(),
            ready: 3,
        };
        assert_eq!(
            words(&switched).1,
            "Service/backend selects todo-deploy's pods: its endpoints list 3 ready, no old one"
        );
    }
}
