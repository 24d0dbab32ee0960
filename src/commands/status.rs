//! `todo-deploy status`: the release at a glance, as a table or as JSON/YAML for scripts. The
//! exit code says it too: 0 healthy, 3 degraded, 4 not deployed.

use crate::cli::{GlobalArgs, OutputFormat, StatusArgs};
use crate::outcome::{Exit, Failure};
use crate::status::{self, Health};
use crate::ui::{Events, Printer};

pub async fn run(
    global: &GlobalArgs,
    args: &StatusArgs,
    printer: &Printer,
) -> Result<Exit, Failure> {
    let events = Events::none();
    let (plan, cluster) = super::plan_and_cluster(global, &events).await?;
    let report = status::gather(&cluster, &plan.namespace, &plan.release, &events)
        .await
        .map_err(|error| {
            Failure::new(
                Exit::Failed,
                error,
                Some("check that you may read the namespace (`kubectl auth can-i list pods -n NAMESPACE`)".to_owned()),
            )
        })?;
    let text = match args.output {
        OutputFormat::Table => status::to_table(&report),
        OutputFormat::Json => {
            let mut json = serde_json::to_string_pretty(&report).unwrap_or_default();
            json.push('\n');
            json
        }
        OutputFormat::Yaml => serde_saphyr::to_string(&report).unwrap_or_default(),
    };
    printer.data(&text);
    Ok(match report.health {
        Health::Healthy => Exit::Success,
        Health::Degraded => Exit::Degraded,
        Health::NotDeployed => Exit::NotDeployed,
    })
}
