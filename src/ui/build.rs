//! How build events look. On a terminal: a bar per image with its step (`3/7`) and current
//! instruction, and with `-v` the build output scrolling above the bars. Elsewhere (a pipe, CI):
//! plain lines, a line per step, and with `-v` every output line prefixed with its service.

use std::collections::BTreeMap;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::style::{done_style, style};
use super::{Printer, Verbosity};
use crate::build::BuildEvent;

pub struct BuildView {
    printer: Printer,
    /// The bars, on a terminal.
    bars: Option<MultiProgress>,
    services: BTreeMap<String, Service>,
}

/// What the view remembers of one image.
#[derive(Default)]
struct Service {
    bar: Option<ProgressBar>,
    /// The step running: number and total.
    step: Option<(u32, u32)>,
}

/// Which of the printer's channels a plain line goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Info,
    Verbose,
}

impl BuildView {
    /// `bars` is the UI's shared set of bars; hidden, it means plain lines.
    pub fn new(printer: &Printer, bars: &MultiProgress) -> Self {
        let bars = (!bars.is_hidden()).then(|| bars.clone());
        BuildView {
            printer: printer.clone(),
            bars,
            services: BTreeMap::new(),
        }
    }

    pub fn handle(&mut self, event: BuildEvent) {
        if self.bars.is_some() {
            self.draw(event);
        } else if let Some((level, line)) = self.line(event) {
            match level {
                Level::Info => self.printer.info(&line),
                Level::Verbose => self.printer.verbose(&line),
            }
        }
    }

    /// The plain line for an event, if it gets one.
    fn line(&mut self, event: BuildEvent) -> Option<(Level, String)> {
        let verbose = self.printer.verbosity >= Verbosity::Verbose;
        let line = match event {
            BuildEvent::Reused { service, image } => {
                format!("build {service}: `{image}` is up to date")
            }
            BuildEvent::Started { service, image } => {
                format!("build {service}: building `{image}`")
            }
            BuildEvent::Step {
                service,
                step,
                total,
                instruction,
            } => {
                self.service(&service).step = Some((step, total));
                // With `-v` the step's own output line says the same.
                if verbose {
                    return None;
                }
                format!("build {service}: step {step}/{total}: {instruction}")
            }
            BuildEvent::Output { service, line } => {
                return Some((Level::Verbose, format!("{service} | {line}")));
            }
            BuildEvent::Finished {
                service,
                image,
                elapsed,
            } => format!("build {service}: built `{image}` in {}", seconds(elapsed)),
            BuildEvent::Failed { service } => {
                let at = self.at_step(&service);
                format!("build {service}: failed{at}")
            }
            BuildEvent::Cancelled { service } => {
                let at = self.at_step(&service);
                format!("build {service}: cancelled{at}")
            }
        };
        Some((Level::Info, line))
    }

    fn draw(&mut self, event: BuildEvent) {
        let color = self.printer.color;
        let verbose = self.printer.verbosity >= Verbosity::Verbose;
        match event {
            BuildEvent::Reused { service, image } => {
                let bar = self.add_bar(&service);
                bar.set_style(done_style(color, true));
                bar.finish_with_message(format!("`{image}` is up to date"));
            }
            BuildEvent::Started { service, image } => {
                let bar = self.add_bar(&service);
                bar.set_style(running_style(color));
                bar.set_message(format!("sending the build context for `{image}`"));
                bar.enable_steady_tick(Duration::from_millis(120));
            }
            BuildEvent::Step {
                service,
                step,
                total,
                instruction,
            } => {
                let state = self.service(&service);
                state.step = Some((step, total));
                if let Some(bar) = &state.bar {
                    bar.set_length(u64::from(total));
                    bar.set_position(u64::from(step));
                    bar.set_message(instruction);
                }
            }
            BuildEvent::Output { service, line } => {
                if verbose && let Some(bars) = &self.bars {
                    let _ = bars.println(format!("{service:>10} | {line}"));
                }
            }
            BuildEvent::Finished {
                service,
                image,
                elapsed,
            } => {
                if let Some(bar) = &self.service(&service).bar {
                    bar.set_style(done_style(color, true));
                    bar.finish_with_message(format!("built `{image}` in {}", seconds(elapsed)));
                }
            }
            BuildEvent::Failed { service } => {
                let at = self.at_step(&service);
                if let Some(bar) = &self.service(&service).bar {
                    bar.set_style(done_style(color, false));
                    bar.abandon_with_message(format!("failed{at}"));
                }
            }
            BuildEvent::Cancelled { service } => {
                let at = self.at_step(&service);
                if let Some(bar) = &self.service(&service).bar {
                    bar.set_style(done_style(color, false));
                    bar.abandon_with_message(format!("cancelled{at}"));
                }
            }
        }
    }

    fn service(&mut self, name: &str) -> &mut Service {
        self.services.entry(name.to_owned()).or_default()
    }

    fn add_bar(&mut self, service: &str) -> ProgressBar {
        let bar = ProgressBar::new(0).with_prefix(service.to_owned());
        let bar = match &self.bars {
            Some(bars) => bars.add(bar),
            None => bar,
        };
        self.service(service).bar = Some(bar.clone());
        bar
    }

    /// ` at step 3/7`, when a step had begun.
    fn at_step(&mut self, service: &str) -> String {
        match self.service(service).step {
            Some((step, total)) => format!(" at step {step}/{total}"),
            None => String::new(),
        }
    }
}

impl Drop for BuildView {
    /// A bar still running when the UI stops is left as it was, not animated forever.
    fn drop(&mut self) {
        for service in self.services.values() {
            if let Some(bar) = &service.bar
                && !bar.is_finished()
            {
                bar.abandon();
            }
        }
    }
}

fn seconds(elapsed: Duration) -> String {
    format!("{:.1}s", elapsed.as_secs_f64())
}

fn running_style(color: bool) -> ProgressStyle {
    let template = if color {
        "{spinner:.cyan} {prefix:>10.bold} [{bar:20.cyan/blue}] {pos:>2}/{len:2} {wide_msg}"
    } else {
        "{spinner} {prefix:>10} [{bar:20}] {pos:>2}/{len:2} {wide_msg}"
    };
    style(template).progress_chars("=> ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(verbosity: Verbosity) -> BuildView {
        let printer = Printer {
            verbosity,
            color: false,
            interactive: false,
        };
        BuildView::new(
            &printer,
            &MultiProgress::with_draw_target(printer.draw_target()),
        )
    }

    fn lines(view: &mut BuildView, events: Vec<BuildEvent>) -> Vec<(Level, String)> {
        events.into_iter().filter_map(|e| view.line(e)).collect()
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
        let mut view = view(Verbosity::Normal);
        assert!(view.bars.is_none());
        let lines = lines(&mut view, build_events());
        let info: Vec<&str> = lines
            .iter()
            .filter(|(level, _)| *level == Level::Info)
            .map(|(_, line)| line.as_str())
            .collect();
        assert_eq!(
            info,
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
        let mut view = view(Verbosity::Verbose);
        let lines = lines(&mut view, build_events());
        assert!(lines.contains(&(
            Level::Verbose,
            "backend | Step 2/3 : COPY . /app".to_owned()
        )));
        assert!(
            !lines
                .iter()
                .any(|(_, line)| line.contains("step 2/3: COPY"))
        );
    }
}
