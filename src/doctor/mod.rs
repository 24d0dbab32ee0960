//! `doctor`'s checks: what must hold before `up` can work (Docker, the cluster, the loader, room
//! on the nodes for a rolling update, an ingress controller, the secret values, the images'
//! users), each a [`Finding`] that is `ok`, `warning` or `error` with the fix. The judging is
//! pure ([`capacity`], [`secrets`], [`image_user`]); [`probe`] gathers what it needs from
//! Docker and the API server. Stages never print: the report renders as lines or JSON.

pub mod capacity;
pub mod image_user;
pub mod ingress;
pub mod probe;
pub mod secrets;

use serde::Serialize;

/// What a check is about; one or more findings each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Check {
    Docker,
    Cluster,
    /// Whether the credentials may do what `up` does (a SelfSubjectAccessReview per verb and
    /// resource). A slot for now: wired to `access::missing` once that lands (issue 18).
    Permissions,
    Loader,
    Capacity,
    Ingress,
    Secrets,
    Config,
}

impl Check {
    pub fn name(self) -> &'static str {
        match self {
            Check::Docker => "docker",
            Check::Cluster => "cluster",
            Check::Permissions => "permissions",
            Check::Loader => "loader",
            Check::Capacity => "capacity",
            Check::Ingress => "ingress",
            Check::Secrets => "secrets",
            Check::Config => "config",
        }
    }
}

/// How a finding stands; the order is how bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    /// Could not be checked (what it needs failed, or not wired yet).
    Skipped,
    Warning,
    Error,
}

impl Level {
    pub fn word(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Skipped => "skipped",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub check: Check,
    #[serde(rename = "status")]
    pub level: Level,
    pub message: String,
    /// The command or configuration change that fixes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    pub fn ok(check: Check, message: impl Into<String>) -> Finding {
        Finding {
            check,
            level: Level::Ok,
            message: message.into(),
            fix: None,
        }
    }

    pub fn warning(check: Check, message: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding {
            check,
            level: Level::Warning,
            message: message.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn error(check: Check, message: impl Into<String>, fix: Option<String>) -> Finding {
        Finding {
            check,
            level: Level::Error,
            message: message.into(),
            fix,
        }
    }

    pub fn skipped(check: Check, message: impl Into<String>) -> Finding {
        Finding {
            check,
            level: Level::Skipped,
            message: message.into(),
            fix: None,
        }
    }

    /// An error finding from a stage's error: its message, causes and fix.
    pub fn from_error(check: Check, error: &dyn crate::outcome::Diagnose) -> Finding {
        let mut message = error.to_string();
        let mut cause = error.source();
        while let Some(current) = cause {
            let text = current.to_string();
            if !message.contains(&text) {
                message = format!("{message}: {text}");
            }
            cause = current.source();
        }
        Finding::error(check, message, error.hint())
    }
}

/// Every finding, in the order checked.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub checks: Vec<Finding>,
    pub errors: usize,
    pub warnings: usize,
}

impl Report {
    pub fn new(checks: Vec<Finding>) -> Report {
        let count = |level| checks.iter().filter(|f| f.level == level).count();
        Report {
            errors: count(Level::Error),
            warnings: count(Level::Warning),
            checks,
        }
    }

    pub fn has_errors(&self) -> bool {
        self.errors > 0
    }

    /// One line per finding (`ok       docker: …`), each fix under it, and a summary line.
    pub fn to_lines(&self) -> String {
        let mut out = String::new();
        for finding in &self.checks {
            out.push_str(&format!(
                "{:<8} {}: {}\n",
                finding.level.word(),
                finding.check.name(),
                finding.message
            ));
            if let Some(fix) = &finding.fix {
                out.push_str(&format!("         fix: {fix}\n"));
            }
        }
        out.push_str(&match (self.errors, self.warnings) {
            (0, 0) => "everything `up` needs is in place\n".to_owned(),
            (0, w) => format!("{w} warning(s); `up` can run\n"),
            (e, w) => format!("{e} error(s), {w} warning(s): fix the errors before `up`\n"),
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_counts_and_prints_each_fix_under_its_line() {
        let report = Report::new(vec![
            Finding::ok(Check::Docker, "Engine API 1.41"),
            Finding::error(
                Check::Secrets,
                "no value for `A`",
                Some("export A=...".into()),
            ),
            Finding::warning(
                Check::Ingress,
                "`todo.local` does not resolve",
                "add a line",
            ),
        ]);
        assert_eq!((report.errors, report.warnings), (1, 1));
        assert!(report.has_errors());
        assert_eq!(
            report.to_lines(),
            "ok       docker: Engine API 1.41\nerror    secrets: no value for `A`\n         fix: export A=...\nwarning  ingress: `todo.local` does not resolve\n         fix: add a line\n1 error(s), 1 warning(s): fix the errors before `up`\n"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["checks"][1]["status"], "error");
        assert_eq!(json["checks"][1]["check"], "secrets");
        assert!(json["checks"][0].get("fix").is_none());
    }
}
