//! `todo-deploy history`: the release's revisions, oldest first, as a table or as JSON/YAML.

use serde::Serialize;

use crate::cli::{GlobalArgs, OutputFormat, StatusArgs};
use crate::outcome::{Exit, Failure};
use crate::release::{self, ImageRecord, Record, RevisionStatus};
use crate::ui::{Printer, Ui};

/// One revision as `history` shows it; manifests stay out: `history` is about what happened
/// when.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Row<'a> {
    revision: u32,
    status: RevisionStatus,
    time: &'a str,
    description: &'a str,
    tool_version: &'a str,
    config_digest: &'a str,
    images: &'a [ImageRecord],
}

impl<'a> From<&'a Record> for Row<'a> {
    fn from(r: &'a Record) -> Self {
        Row {
            revision: r.revision,
            status: r.status,
            time: &r.time,
            description: &r.description,
            tool_version: &r.tool_version,
            config_digest: &r.config_digest,
            images: &r.images,
        }
    }
}

pub async fn run(
    global: &GlobalArgs,
    args: &StatusArgs,
    printer: &Printer,
) -> Result<Exit, Failure> {
    let result = Ui::around(printer, async |events| {
        let (plan, cluster) = super::plan_and_cluster(global, events).await?;
        let records =
            release::settled_history(&cluster, &plan.namespace, &plan.release, events).await?;
        let rows: Vec<Row> = records.iter().map(Row::from).collect();
        let text = match args.output {
            OutputFormat::Json => super::to_json(&rows)?,
            OutputFormat::Yaml => super::to_yaml(&rows)?,
            OutputFormat::Table if rows.is_empty() => format!(
                "release `{}` has no history in namespace `{}`\n",
                plan.release, plan.namespace
            ),
            OutputFormat::Table => table(&rows),
        };
        Ok::<_, Failure>(text)
    })
    .await;
    printer.data(&result?);
    Ok(Exit::Success)
}

/// The rows as an aligned table, the images of a revision in one column.
fn table(rows: &[Row]) -> String {
    let header = ["REVISION", "UPDATED", "STATUS", "IMAGES", "DESCRIPTION"];
    let cells = rows.iter().map(|r| {
        let images: Vec<&str> = r.images.iter().map(|i| i.reference.as_str()).collect();
        vec![
            r.revision.to_string(),
            r.time.to_owned(),
            r.status.to_string(),
            images.join(","),
            r.description.to_owned(),
        ]
    });
    crate::status::aligned(&header, cells.collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_aligned_under_its_header() {
        let images = [ImageRecord {
            service: "backend".into(),
            reference: "todo-backend:0123456789ab".into(),
            id: None,
        }];
        let rows = [Row {
            revision: 12,
            status: RevisionStatus::Uninstalled,
            time: "2026-12-02T09:00:00Z",
            description: "Uninstall complete",
            tool_version: "0.1.0",
            config_digest: "d",
            images: &images,
        }];
        let text = table(&rows);
        let lines: Vec<&str> = text.lines().collect();
        for column in ["UPDATED", "STATUS", "IMAGES", "DESCRIPTION"] {
            let at = lines[0].find(column).expect("a header");
            assert_eq!(
                &lines[1][at - 2..at],
                "  ",
                "`{column}` starts a column\n{text}"
            );
            assert_ne!(
                &lines[1][at..=at],
                " ",
                "`{column}` starts a column\n{text}"
            );
        }
    }
}
