//! How the `dev` loop looks. On a terminal: one status row per service, pinned at the bottom of
//! the screen (idle, building, loading, rolling out, ready or failed, with the time of its last
//! iteration), while the log lines, the stages' results and the loop's notes scroll above it.
//! Elsewhere: a plain line per change of state and per note.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::ProgressBar;

use super::screen::{Row, Screen};
use super::style;
use super::{Level, Printer};
use crate::profile::ProfileChange;
use crate::watch::{DevEvent, Report, ServiceState};

pub struct DevView {
    color: bool,
    rows: BTreeMap<String, Row>,
}

impl DevView {
    pub fn new(printer: &Printer) -> Self {
        DevView {
            color: printer.color,
            rows: BTreeMap::new(),
        }
    }

    pub fn handle(&mut self, event: DevEvent, screen: &mut Screen) {
        match event {
            DevEvent::Watching { services, files } => {
                screen.say(Level::Info, &watching(&services, &files));
                for service in services {
                    self.row(screen, &service, "starting".to_owned());
                }
            }
            DevEvent::State {
                service,
                state,
                at,
                took,
            } => {
                let text = state_text(state, took);
                screen.plain(Level::Info, &format!("dev {service}: {text}"));
                let clock = at
                    .to_zoned(jiff::tz::TimeZone::system())
                    .strftime("%H:%M:%S");
                self.row(screen, &service, format!("{text} (at {clock})"));
            }
            DevEvent::Stopping { cleanup } => {
                for (_, row) in std::mem::take(&mut self.rows) {
                    let text = row.bar.message();
                    screen.finish(&row, true, &text);
                }
                screen.say(Level::Info, stopping(cleanup));
            }
            DevEvent::Problem { report, applied } => {
                screen.say(Level::Error, &problem(&report, applied));
            }
            other => {
                let (level, text) = note(&other);
                screen.say(level, &text);
            }
        }
    }

    /// Sets a service's row to `text`, adding it the first time.
    fn row(&mut self, screen: &mut Screen, service: &str, text: String) {
        match self.rows.get(service) {
            Some(row) => row.bar.set_message(text),
            None => {
                let template = match self.color {
                    true => "  {prefix:>10.bold} {msg}",
                    false => "  {prefix:>10} {msg}",
                };
                let bar = ProgressBar::hidden()
                    .with_prefix(service.to_owned())
                    .with_style(style::style(template))
                    .with_message(text);
                self.rows.insert(service.to_owned(), screen.add(bar));
            }
        }
    }
}

/// A state in words: `rolling out`, `ready in 3.2s`.
fn state_text(state: ServiceState, took: Option<Duration>) -> String {
    let word = match state {
        ServiceState::Idle => "idle",
        ServiceState::Building => "building",
        ServiceState::Loading => "loading",
        ServiceState::RollingOut => "rolling out",
        ServiceState::Ready => "ready",
        ServiceState::Failed => "failed",
    };
    match took {
        Some(took) => format!("{word} in {:.1}s", took.as_secs_f64()),
        None => word.to_owned(),
    }
}

fn watching(services: &[String], files: &[PathBuf]) -> String {
    let files: Vec<String> = files.iter().map(|f| shown(f)).collect();
    format!(
        "dev: watching the build contexts of {} and {}; Ctrl-C stops watching (the release keeps running)",
        services.join(", "),
        files.join(", ")
    )
}

fn stopping(cleanup: bool) -> &'static str {
    match cleanup {
        true => "dev: stopped watching; removing the release (`--cleanup`)",
        false => "dev: stopped watching; the release keeps running (`todo-deploy down` removes it)",
    }
}

/// An error the loop goes on after, as `error: …`, `caused by: …`, `help: …` lines.
fn problem(report: &Report, applied: bool) -> String {
    let mut text = report.headline.clone();
    for cause in &report.causes {
        text.push_str(&format!("\ncaused by: {cause}"));
    }
    for hint in &report.hints {
        text.push_str(&format!("\nhelp: {hint}"));
    }
    text.push_str(match applied {
        true => "\ndev: left as applied (dev does not roll back); watching for the fix",
        false => "\ndev: nothing of it was applied; watching for the fix",
    });
    text
}

/// The loop's other notes, and their levels.
fn note(event: &DevEvent) -> (Level, String) {
    match event {
        DevEvent::Profile(changes) => (Level::Info, profile(changes)),
        DevEvent::AsConfigured => (
            Level::Info,
            "dev: the configuration as it is (`--as-configured`)".to_owned(),
        ),
        DevEvent::Changed {
            paths, services, ..
        } => {
            let paths: Vec<String> = paths.iter().map(|p| shown(p)).collect();
            let what = match services.as_slice() {
                [] => "configuration".to_owned(),
                services => services.join(", "),
            };
            (
                Level::Info,
                format!("dev: changed: {} ({what})", paths.join(", ")),
            )
        }
        DevEvent::Ignored { paths } => {
            let paths: Vec<String> = paths.iter().map(|p| shown(p)).collect();
            (
                Level::Detail,
                format!(
                    "dev: ignored (not in any image, not configuration): {}",
                    paths.join(", ")
                ),
            )
        }
        DevEvent::NothingChanged => (
            Level::Info,
            "dev: nothing changed in any image or object".to_owned(),
        ),
        DevEvent::Superseded => (
            Level::Info,
            "dev: a newer change came; this rollout is no longer waited for".to_owned(),
        ),
        DevEvent::Done {
            iteration,
            elapsed,
            ok,
        } => (
            Level::Info,
            format!(
                "dev: iteration {iteration} {} in {:.1}s; watching for changes",
                if *ok { "done" } else { "failed" },
                elapsed.as_secs_f64()
            ),
        ),
        DevEvent::WatchError { message } => (
            Level::Warning,
            format!("the file watch missed changes: {message}; save again to be sure"),
        ),
        DevEvent::Recorded { revision, status } => (
            Level::Info,
            format!("dev: recorded as revision {revision} ({status})"),
        ),
        DevEvent::Watching { .. }
        | DevEvent::State { .. }
        | DevEvent::Problem { .. }
        | DevEvent::Stopping { .. } => (Level::Detail, String::new()),
    }
}

/// The profile in force, a service per clause.
fn profile(changes: &[ProfileChange]) -> String {
    if changes.is_empty() {
        return "dev profile: the configuration needs no change (`--as-configured` is the same)"
            .to_owned();
    }
    let clauses: Vec<String> = changes
        .iter()
        .map(|change| {
            let mut parts = Vec::new();
            if let Some((configured, now)) = change.replicas {
                parts.push(format!("{now} replica (configured: {configured})"));
            }
            if let Some((readiness, liveness)) = change.startup {
                parts.push(format!(
                    "a startupProbe on `{}` every 1s in place of initialDelaySeconds {readiness} (readiness) and {liveness} (liveness)",
                    change.startup_path
                ));
            }
            format!("{}: {}", change.service, parts.join(", "))
        })
        .collect();
    format!(
        "dev profile: {}; `--as-configured` keeps the configuration as it is",
        clauses.join("; ")
    )
}

/// A path as the user would type it: relative to the working directory when under it.
fn shown(path: &Path) -> String {
    let relative = std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf));
    relative
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::Verbosity;
    use crate::ui::testing::{Captured, printer};

    fn lines(events: Vec<DevEvent>) -> String {
        let printer = printer(Verbosity::Normal, false);
        let captured = Captured::default();
        let mut screen = captured.screen(&printer);
        let mut view = DevView::new(&printer);
        for event in events {
            view.handle(event, &mut screen);
        }
        captured.text()
    }

    #[test]
    fn plain_lines_say_each_state_and_each_problem() {
        let at = jiff::Timestamp::UNIX_EPOCH;
        let text = lines(vec![
            DevEvent::State {
                service: "backend".to_owned(),
                state: ServiceState::Building,
                at,
                took: None,
            },
            DevEvent::Problem {
                report: Report {
                    headline: "building `b` (backend) failed at step 2/3 `COPY x /`".to_owned(),
                    causes: Vec::new(),
                    hints: vec!["fix step 2 of `Dockerfile`".to_owned()],
                },
                applied: false,
            },
            DevEvent::State {
                service: "backend".to_owned(),
                state: ServiceState::Ready,
                at,
                took: Some(Duration::from_millis(3_240)),
            },
        ]);
        assert_eq!(
            text,
            "dev backend: building\n\
             error: building `b` (backend) failed at step 2/3 `COPY x /`\n\
             help: fix step 2 of `Dockerfile`\n\
             dev: nothing of it was applied; watching for the fix\n\
             dev backend: ready in 3.2s\n"
        );
    }

    #[test]
    fn the_profile_says_what_it_changed_and_how_to_keep_the_config() {
        let text = profile(&[ProfileChange {
            service: "backend".to_owned(),
            replicas: Some((2, 1)),
            startup: Some((10, 15)),
            startup_path: "/api/health".to_owned(),
        }]);
        assert_eq!(
            text,
            "dev profile: backend: 1 replica (configured: 2), a startupProbe on `/api/health` every 1s in place of initialDelaySeconds 10 (readiness) and 15 (liveness); `--as-configured` keeps the configuration as it is"
        );
    }
}
