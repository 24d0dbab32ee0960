//! How build events look. On a terminal: a bar per image with its step (`3/7`) and current
//! instruction, and with `-v` the build output scrolling above the bars. Elsewhere (a pipe, CI):
//! plain lines, a line per step, and with `-v` every output line prefixed with its service.

use std::collections::BTreeMap;
use std::time::Duration;

use indicatif::ProgressBar;

use super::screen::{Row, Screen};
use super::style;
use super::{Level, Printer, Verbosity};
use crate::build::BuildEvent;

pub struct BuildView {
    color: bool,
    verbose: bool,
    services: BTreeMap<String, Service>,
}

/// What the view remembers of one image.
#[derive(Default)]
struct Service {
    row: Option<Row>,
    /// The step running: number and total.
    step: Option<(u32, u32)>,
}

impl BuildView {
    pub fn new(printer: &Printer) -> Self {
        BuildView {
            color: printer.color,
            verbose: printer.verbosity >= Verbosity::Verbose,
            services: BTreeMap::new(),
        }
    }

    /// Shows `event` both ways: as a row on a terminal, as plain lines elsewhere.
    pub fn handle(&mut self, event: BuildEvent, screen: &mut Screen) {
        match event {
            BuildEvent::Reused { service, image } => {
                let text = format!("`{image}` is up to date");
                screen.plain(Level::Info, &format!("build {service}: {text}"));
                screen.done(&service, true, &text);
            }
            BuildEvent::Started { service, image } => {
                screen.plain(Level::Info, &format!("build {service}: building `{image}`"));
                let bar = ProgressBar::hidden()
                    .with_prefix(service.clone())
                    .with_style(style::running(self.color, "{pos:>2}/{len:2} {wide_msg}"))
                    .with_message(format!("sending the build context for `{image}`"));
                self.service(&service).row = Some(screen.add(bar));
            }
            BuildEvent::Step {
                service,
                step,
                total,
                instruction,
            } => {
                // With `-v` the step's own output line says the same.
                if !self.verbose {
                    let line = format!("build {service}: step {step}/{total}: {instruction}");
                    screen.plain(Level::Info, &line);
                }
                let state = self.service(&service);
                state.step = Some((step, total));
                if let Some(row) = &state.row {
                    row.bar.update(|bar| {
                        bar.set_len(u64::from(total));
                        bar.set_pos(u64::from(step));
                    });
                    row.bar.set_message(instruction);
                }
            }
            BuildEvent::Output { service, line } => {
                screen.plain(Level::Detail, &format!("{service} | {line}"));
                screen.above(Level::Detail, &format!("{service:>10} | {line}"));
            }
            BuildEvent::Finished {
                service,
                image,
                elapsed,
            } => {
                let text = format!("built `{image}` in {}", seconds(elapsed));
                self.end(screen, &service, true, text);
            }
            BuildEvent::Failed { service } => {
                let text = format!("failed{}", self.at_step(&service));
                self.end(screen, &service, false, text);
            }
            BuildEvent::Cancelled { service } => {
                let text = format!("cancelled{}", self.at_step(&service));
                self.end(screen, &service, false, text);
            }
        }
    }

    /// The end of a build: its plain line, or its row's last look.
    fn end(&mut self, screen: &mut Screen, service: &str, ok: bool, text: String) {
        screen.plain(Level::Info, &format!("build {service}: {text}"));
        if let Some(row) = self.service(service).row.take() {
            screen.finish(&row, ok, &text);
        }
    }

    fn service(&mut self, name: &str) -> &mut Service {
        self.services.entry(name.to_owned()).or_default()
    }

    /// ` at step 3/7`, when a step had begun.
    fn at_step(&mut self, service: &str) -> String {
        match self.service(service).step {
            Some((step, total)) => format!(" at step {step}/{total}"),
            None => String::new(),
        }
    }
}

fn seconds(elapsed: Duration) -> String {
    format!("{:.1}s", elapsed.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::testing::{Captured, printer};

    /// The plain lines `events` give at `verbosity`.
    fn lines(verbosity: Verbosity, events: Vec<BuildEvent>) -> Vec<String> {
        let printer = printer(verbosity, false);
        let captured = Captured::default();
        let mut screen = captured.screen(&printer);
        let mut view = BuildView::new(&printer);
        for event in events {
            view.handle(event, &mut screen);
        }
        captured.text().lines().map(str::to_owned).collect()
    }

    fn build_events() -> Vec<BuildEvent> {
        let service = || "backend".to_owned();
        vec![
            BuildEvent::Reused {
                service: "frontend".to_owned(),
                image: "todo-frontend:abc".to_owned(),
            },
            BuildEvent::Started {
                service: service(),
                image: "todo-backend:def".to_owned(),
            },
            BuildEvent::Step {
                service: service(),
                step: 2,
                total: 3,
                instruction: "COPY . /app".to_owned(),
            },
            BuildEvent::Output {
                service: service(),
                line: "Step 2/3 : COPY . /app".to_owned(),
            },
            BuildEvent::Failed { service: service() },
        ]
    }

    #[test]
    fn plain_lines_show_steps() {
        assert_eq!(
            lines(Verbosity::Normal, build_events()),
            [
                "build frontend: `todo-frontend:abc` is up to date",
                "build backend: building `todo-backend:def`",
                "build backend: step 2/3: COPY . /app",
                "build backend: failed at step 2/3",
            ]
        );
    }

    #[test]
    fn verbose_plain_lines_stream_the_output_instead_of_steps() {
        let lines = lines(Verbosity::Verbose, build_events());
        assert!(lines.contains(&"backend | Step 2/3 : COPY . /app".to_owned()));
        assert!(!lines.iter().any(|line| line.contains("step 2/3: COPY")));
    }

    #[test]
    fn quiet_shows_nothing() {
        assert!(lines(Verbosity::Quiet, build_events()).is_empty());
    }
}
