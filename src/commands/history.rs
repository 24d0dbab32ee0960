//! `todo-deploy history`: the release's revisions, oldest first.

use std::fmt::Write;

use crate::cli::{GlobalArgs, OutputFormat, StatusArgs};
use crate::outcome::{Exit, Failure};
use crate::release;
use crate::ui::{Events, Printer};

pub async fn run(
    global: &GlobalArgs,
    args: &StatusArgs,
    printer: &Printer,
) -> Result<Exit, Failure> {
    let events = Events::none();
    let (plan, cluster) = super::plan_and_cluster(global, &events).await?;
    let records = release::history(&cluster, &plan.namespace, &plan.release, &events).await?;
    let text = match args.output {
        OutputFormat::Json => {
            // Manifests stay out of the listing: `history` is about what happened when.
            let rows: Vec<serde_json::Value> = records
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "revision": r.revision, "status": r.status.as_str(), "time": r.time,
                        "description": r.description, "toolVersion": r.tool_version,
                        "configDigest": r.config_digest,
                        "images": r.images,
                    })
                })
                .collect();
            format!(
                "{}\n",
                serde_json::to_string_pretty(&rows).unwrap_or_default()
            )
        }
        OutputFormat::Yaml => {
            let rows: Vec<_> = records
                .iter()
                .map(|r| {
                    (
                        r.revision,
                        r.status.as_str(),
                        &r.time,
                        &r.description,
                        &r.images,
                    )
                })
                .collect();
            serde_saphyr::to_string(&rows).unwrap_or_default()
        }
        OutputFormat::Table if records.is_empty() => format!(
            "release `{}` has no history in namespace `{}`\n",
            plan.release, plan.namespace
        ),
        OutputFormat::Table => {
            let mut out =
                String::from("REVISION  UPDATED               STATUS       IMAGES  DESCRIPTION\n");
            for r in &records {
                let images: Vec<&str> = r.images.iter().map(|i| i.reference.as_str()).collect();
                let _ = writeln!(
                    out,
                    "{:<8}  {:<20}  {:<11}  {}  {}",
                    r.revision,
                    r.time,
                    r.status.as_str(),
                    images.join(","),
                    r.description
                );
            }
            out
        }
    };
    printer.data(&text);
    Ok(Exit::Success)
}
