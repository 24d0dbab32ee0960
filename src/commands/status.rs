//! `todo-deploy status`: the release at a glance, as a table or as JSON/YAML for scripts. The
//! exit code says it too: 0 healthy, 3 degraded, 4 not deployed.

use crate::cli::{GlobalArgs, OutputFormat, StatusArgs};
use crate::outcome::{Exit, Failure};
use crate::status::{self, Health};
use crate::ui::{Printer, Ui};

pub async fn run(
    global: &GlobalArgs,
    args: &StatusArgs,
    printer: &Printer,
) -> Result<Exit, Failure> {
    let result = Ui::around(printer, async |events| {
        let (plan, cluster) = super::plan_and_cluster(global, events).await?;
        status::gather(&cluster, &plan.namespace, &plan.release, events)
            .await
            .map_err(|error| {
                Failure::new(
                    Exit::Failed,
                    error,
                    Some("check that you may read the namespace (`kubectl auth can-i list pods -n NAMESPACE`); `todo-deploy rbac` prints what a cluster admin can grant".to_owned()),
                )
            })
    })
    .await;
    let report = result?;
    let text = match args.output {
        OutputFormat::Table => status::to_table(&report),
        OutputFormat::Json => super::to_json(&report)?,
        OutputFormat::Yaml => super::to_yaml(&report)?,
    };
    printer.data(&text);
    Ok(match report.health {
        Health::Healthy => Exit::Success,
        Health::Degraded => Exit::Degraded,
        Health::NotDeployed => Exit::NotDeployed,
    })
}
