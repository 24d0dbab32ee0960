//! The status report as text tables for people.

use std::fmt::Write;

use super::{Health, StatusReport};

/// Renders the report; `hosts_hint` is how to reach the Ingress host from this machine.
pub fn to_table(report: &StatusReport) -> String {
    let mut out = String::new();
    let health = match report.health {
        Health::Healthy => "healthy",
        Health::Degraded => "degraded",
        Health::NotDeployed => "not deployed",
    };
    let _ = writeln!(
        out,
        "release `{}` in namespace `{}`: {health}",
        report.release, report.namespace
    );
    if report.health == Health::NotDeployed {
        if let Some(r) = &report.revision {
            let _ = writeln!(
                out,
                "revision {} {} at {}: {}",
                r.number, r.status, r.time, r.description
            );
        }
        let _ = writeln!(out, "nothing is deployed; `todo-deploy up` installs it");
        return out;
    }
    match &report.revision {
        Some(r) => {
            let _ = writeln!(
                out,
                "revision {} {} at {}: {}",
                r.number, r.status, r.time, r.description
            );
        }
        None => {
            let _ = writeln!(out, "no revision recorded");
        }
    }
    out.push('\n');
    table(
        &mut out,
        &[
            "DEPLOYMENT",
            "IMAGE",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "ROLLOUT",
        ],
        report
            .deployments
            .iter()
            .map(|d| {
                let rollout = if d.message.is_empty() {
                    d.rollout.as_str().to_owned()
                } else {
                    format!("{}: {}", d.rollout.as_str(), d.message)
                };
                vec![
                    d.name.clone(),
                    d.images.join(","),
                    format!("{}/{}", d.ready, d.desired),
                    d.updated.to_string(),
                    d.available.to_string(),
                    rollout,
                ]
            })
            .collect(),
    );
    out.push('\n');
    table(
        &mut out,
        &["POD", "READY", "RESTARTS", "AGE", "STATUS"],
        report
            .pods
            .iter()
            .map(|p| {
                vec![
                    p.name.clone(),
                    p.ready.clone(),
                    p.restarts.to_string(),
                    age(p.age_seconds),
                    p.reason.clone().unwrap_or_else(|| p.phase.clone()),
                ]
            })
            .collect(),
    );
    out.push('\n');
    table(
        &mut out,
        &["SERVICE", "TYPE", "CLUSTER-IP", "PORTS"],
        report
            .services
            .iter()
            .map(|s| {
                vec![
                    s.name.clone(),
                    s.kind.clone(),
                    s.cluster_ip.clone().unwrap_or_else(|| "-".to_owned()),
                    s.ports.join(","),
                ]
            })
            .collect(),
    );
    if let Some(ingress) = &report.ingress {
        let _ = writeln!(
            out,
            "\ningress `{}` ({}): {}",
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
    }
    if !report.warnings.is_empty() {
        let _ = writeln!(out, "\nrecent warnings:");
        for w in &report.warnings {
            let times = if w.count > 1 {
                format!(" (x{})", w.count)
            } else {
                String::new()
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
    }
    out
}

fn table(out: &mut String, header: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let last = cells.len() - 1;
        cells
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                if i == last {
                    c
                } else {
                    format!("{c:<w$}", w = widths[i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    let _ = writeln!(
        out,
        "{}",
        line(header.iter().map(|h| h.to_string()).collect())
    );
    for row in rows {
        let _ = writeln!(out, "{}", line(row));
    }
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
