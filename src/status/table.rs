//! The status report as text tables for people, and the aligned table every listing uses.

use std::fmt::Write;

use super::{Health, IngressInfo, StatusReport, WarningInfo};

/// Renders the report: the release and its revision, then a table per kind, the Ingress URL and
/// the recent warnings.
pub fn to_table(report: &StatusReport) -> String {
    let mut out = headline(report);
    if report.health == Health::NotDeployed {
        out.push_str("nothing is deployed; `todo-deploy up` installs it\n");
        return out;
    }
    for table in [deployments(report), pods(report), services(report)] {
        out.push('\n');
        out.push_str(&table);
    }
    if let Some(ingress) = &report.ingress {
        out.push_str(&ingress_lines(ingress));
    }
    if !report.warnings.is_empty() {
        out.push_str(&warning_lines(&report.warnings));
    }
    out
}

/// `release … : healthy` and the revision line.
fn headline(report: &StatusReport) -> String {
    let health = match report.health {
        Health::Healthy => "healthy",
        Health::Degraded => "degraded",
        Health::NotDeployed => "not deployed",
    };
    let mut out = format!(
        "release `{}` in namespace `{}`: {health}\n",
        report.release, report.namespace
    );
    match &report.revision {
        Some(r) => {
            let _ = writeln!(
                out,
                "revision {} {} at {}: {}",
                r.number, r.status, r.time, r.description
            );
        }
        None if report.health != Health::NotDeployed => out.push_str("no revision recorded\n"),
        None => {}
    }
    out
}

fn deployments(report: &StatusReport) -> String {
    let header = [
        "DEPLOYMENT",
        "IMAGE",
        "READY",
        "UP-TO-DATE",
        "AVAILABLE",
        "ROLLOUT",
    ];
    let rows = report.deployments.iter().map(|d| {
        let rollout = match d.message.is_empty() {
            true => d.rollout.as_str().to_owned(),
            false => format!("{}: {}", d.rollout.as_str(), d.message),
        };
        vec![
            d.name.clone(),
            d.images.join(","),
            format!("{}/{}", d.ready, d.desired),
            d.updated.to_string(),
            d.available.to_string(),
            rollout,
        ]
    });
    aligned(&header, rows.collect())
}

fn pods(report: &StatusReport) -> String {
    let rows = report.pods.iter().map(|p| {
        vec![
            p.name.clone(),
            p.ready.clone(),
            p.restarts.to_string(),
            age(p.age_seconds),
            p.reason.clone().unwrap_or_else(|| p.phase.clone()),
        ]
    });
    aligned(
        &["POD", "READY", "RESTARTS", "AGE", "STATUS"],
        rows.collect(),
    )
}

fn services(report: &StatusReport) -> String {
    let rows = report.services.iter().map(|s| {
        vec![
            s.name.clone(),
            s.kind.clone(),
            s.cluster_ip.clone().unwrap_or_else(|| "-".to_owned()),
            s.ports.join(","),
        ]
    });
    aligned(&["SERVICE", "TYPE", "CLUSTER-IP", "PORTS"], rows.collect())
}

/// The Ingress URL, and how to reach its host from this machine.
fn ingress_lines(ingress: &IngressInfo) -> String {
    let mut out = format!(
        "\ningress `{}` ({}): {}\n",
        ingress.name,
        ingress.class.as_deref().unwrap_or("default class"),
        ingress.url
    );
    if let Some(host) = &ingress.host {
        let _ = writeln!(
            out,
            "  to open it, map `{host}` to the cluster: `echo \"$(minikube ip) {host}\" | sudo tee -a /etc/hosts` (or run `minikube tunnel`)"
        );
    }
    out
}

fn warning_lines(warnings: &[WarningInfo]) -> String {
    let mut out = String::from("\nrecent warnings:\n");
    for w in warnings {
        let times = match w.count > 1 {
            true => format!(" (x{})", w.count),
            false => String::new(),
        };
        let _ = writeln!(
            out,
            "  {:>5} ago  {}  {}: {}{times}",
            age(w.age_seconds),
            w.object,
            w.reason,
            w.message
        );
    }
    out
}

/// A table: a header and rows, every column as wide as its widest cell (the last one as it
/// is), columns two spaces apart.
pub fn aligned(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let last = cells.len().saturating_sub(1);
        let padded: Vec<String> = cells
            .into_iter()
            .enumerate()
            .map(|(i, c)| match i == last {
                true => c,
                false => format!("{c:<w$}", w = widths[i]),
            })
            .collect();
        padded.join("  ") + "\n"
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

/// `42s`, `5m`, `3h`, `2d`.
pub fn age(seconds: i64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}
