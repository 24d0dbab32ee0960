//! How log lines look: `backend x2x7q | …`, the service and a short pod name (the pod's own
//! suffix) before each line, one colour per service on a terminal, as stern and `skaffold dev`
//! print them. In `dev` the lines scroll above the status rows; `logs` prints them on stdout
//! ([`LogPrinter`]), so they can be piped, with its notes on stderr.

use std::collections::BTreeMap;
use std::io::IsTerminal;

use super::screen::Screen;
use super::{Level, Printer, words};
use crate::logs::LogEvent;
use crate::rollout::Slowness;

/// The colours services get, in the order they first log.
const PALETTE: [&str; 6] = ["36", "33", "35", "32", "34", "31"];

/// Formats lines, giving each service its colour.
#[derive(Debug, Default)]
pub struct LogFormat {
    color: bool,
    colours: BTreeMap<String, &'static str>,
}

impl LogFormat {
    pub fn new(color: bool) -> Self {
        LogFormat {
            color,
            colours: BTreeMap::new(),
        }
    }

    /// `service pod | text`, the prefix coloured by service when colour is on.
    pub fn line(&mut self, service: &str, pod: &str, text: &str) -> String {
        let prefix = format!("{service} {}", short_pod(pod));
        if !self.color {
            return format!("{prefix} | {text}");
        }
        let next = PALETTE[self.colours.len() % PALETTE.len()];
        let colour = *self.colours.entry(service.to_owned()).or_insert(next);
        format!("\x1b[{colour}m{prefix}\x1b[0m | {text}")
    }
}

/// A pod's own part of its name: the suffix after its ReplicaSet's (`backend-7c9d8f6b5-x2x7q`
/// is `x2x7q`); a name of another shape whole.
pub fn short_pod(pod: &str) -> &str {
    match pod.rsplitn(3, '-').collect::<Vec<_>>().as_slice() {
        [suffix, _, _] if !suffix.is_empty() => suffix,
        _ => pod,
    }
}

/// What every log event but a line says, and at which level.
fn note(event: &LogEvent) -> Option<(Level, String)> {
    match event {
        LogEvent::Line { .. } => None,
        LogEvent::Following {
            pod,
            container,
            restarts,
            ..
        } => Some((
            Level::Detail,
            match restarts {
                0 => format!("logs: following `{pod}` (container `{container}`)"),
                n => format!("logs: following `{pod}` (container `{container}`, restart {n})"),
            },
        )),
        LogEvent::PodGone {
            service,
            pod,
            ignored_sigterm: Some(grace),
        } => Some((
            Level::Info,
            words::slowness(&Slowness::IgnoredSigterm {
                deployment: service.clone(),
                pod: pod.clone(),
                grace: *grace,
            }),
        )),
        LogEvent::PodGone { pod, .. } => Some((Level::Detail, format!("logs: `{pod}` is gone"))),
        LogEvent::Unavailable {
            pod,
            container,
            reason,
            ..
        } => Some((
            Level::Warning,
            format!("the log of `{pod}` (container `{container}`) is not available: {reason}"),
        )),
        LogEvent::NoPods { services } if services.is_empty() => Some((
            Level::Warning,
            "the release has no pods (`todo-deploy status` shows why)".to_owned(),
        )),
        LogEvent::NoPods { services } => Some((
            Level::Warning,
            format!(
                "no pods of {} (`todo-deploy status` shows why)",
                services.join(", ")
            ),
        )),
    }
}

/// Log events on the screen (`dev`): lines above the rows, notes as lines of their level.
pub struct LogView {
    format: LogFormat,
}

impl LogView {
    pub fn new(printer: &Printer) -> Self {
        LogView {
            format: LogFormat::new(printer.color),
        }
    }

    pub fn handle(&mut self, event: LogEvent, screen: &mut Screen) {
        match &event {
            LogEvent::Line {
                service, pod, text, ..
            } => {
                let line = self.format.line(service, pod, text);
                screen.say(Level::Info, &line);
            }
            other => {
                if let Some((level, text)) = note(other) {
                    screen.say(level, &text);
                }
            }
        }
    }
}

/// Log events for `logs`: lines on stdout (the command's output), notes on stderr.
pub struct LogPrinter {
    printer: Printer,
    format: LogFormat,
}

impl LogPrinter {
    /// Colour only when stdout is a terminal too: `logs > file` gets plain lines.
    pub fn new(printer: &Printer) -> Self {
        let color = printer.color && std::io::stdout().is_terminal();
        LogPrinter {
            printer: printer.clone(),
            format: LogFormat::new(color),
        }
    }

    pub fn show(&mut self, event: &LogEvent) {
        if let LogEvent::Line {
            service, pod, text, ..
        } = event
        {
            let line = self.format.line(service, pod, text);
            self.printer.data(&format!("{line}\n"));
        } else if let Some((level, text)) = note(event) {
            match level {
                Level::Info => self.printer.info(&text),
                Level::Detail => self.printer.verbose(&text),
                Level::Warning | Level::Error => self.printer.warn(&text),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_are_named_by_their_own_suffix() {
        assert_eq!(short_pod("backend-7c9d8f6b5-x2x7q"), "x2x7q");
        assert_eq!(short_pod("web"), "web");
        assert_eq!(short_pod("a-b"), "a-b");
    }

    #[test]
    fn each_service_keeps_its_colour() {
        let mut format = LogFormat::new(true);
        let backend = format.line("backend", "backend-1-aaaaa", "one");
        let frontend = format.line("frontend", "frontend-1-bbbbb", "two");
        let again = format.line("backend", "backend-1-ccccc", "three");
        assert!(
            backend.starts_with("\x1b[36mbackend aaaaa\x1b[0m | one"),
            "{backend:?}"
        );
        assert!(frontend.starts_with("\x1b[33m"), "{frontend:?}");
        assert!(again.starts_with("\x1b[36m"), "{again:?}");
        let mut plain = LogFormat::new(false);
        assert_eq!(
            plain.line("backend", "backend-1-aaaaa", "one"),
            "backend aaaaa | one"
        );
    }
}
