//! The one place that writes to the terminal. The [`Printer`] owns verbosity, colour and the
//! progress draw target: stages never print, commands hand their output here.

mod build;
pub mod events;
mod load;
mod rollout;
mod style;

use std::io::Write;

use indicatif::{MultiProgress, ProgressDrawTarget};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use events::{Event, Events};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
    Debug,
}

#[derive(Debug, Clone)]
pub struct Printer {
    pub verbosity: Verbosity,
    pub color: bool,
    /// Whether stderr is a terminal: progress bars there, plain lines elsewhere.
    pub interactive: bool,
}

impl Printer {
    /// A printer for a resolved `verbosity`. `color` is whether the user allows colour (no
    /// `--no-color`, no `NO_COLOR`); it is used only when `interactive`, that is when stderr is
    /// a terminal.
    pub fn new(verbosity: Verbosity, color: bool, interactive: bool) -> Self {
        Printer {
            verbosity,
            color: interactive && color,
            interactive,
        }
    }

    /// Command output (manifests, tables, JSON) on stdout.
    pub fn data(&self, text: &str) {
        let mut stdout = std::io::stdout().lock();
        // A closed pipe (`todo-deploy render | head`) is not an error worth reporting.
        let _ = stdout.write_all(text.as_bytes());
        let _ = stdout.flush();
    }

    /// A progress line on stderr, unless quiet.
    pub fn info(&self, text: &str) {
        if self.verbosity >= Verbosity::Normal {
            eprintln!("{text}");
        }
    }

    /// Detail shown with `-v`.
    pub fn verbose(&self, text: &str) {
        if self.verbosity >= Verbosity::Verbose {
            eprintln!("{text}");
        }
    }

    /// A warning, shown even when quiet.
    pub fn warn(&self, text: &str) {
        if self.color {
            eprintln!("\x1b[33mwarning\x1b[0m: {text}");
        } else {
            eprintln!("warning: {text}");
        }
    }

    /// Where progress bars draw: stderr on a terminal, nowhere otherwise (plain lines instead).
    pub fn draw_target(&self) -> ProgressDrawTarget {
        if self.interactive && self.verbosity >= Verbosity::Normal {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        }
    }
}

/// The running UI: stages send [`Events`]; a task draws them until [`Ui::finish`].
pub struct Ui {
    pub events: Events,
    task: JoinHandle<()>,
}

impl Ui {
    pub fn start(printer: &Printer) -> Ui {
        let (events, receiver) = Events::channel();
        let task = tokio::spawn(draw(printer.clone(), receiver));
        Ui { events, task }
    }

    /// Waits until every event sent so far is drawn.
    pub async fn finish(self) {
        drop(self.events);
        let _ = self.task.await;
    }
}

async fn draw(printer: Printer, mut receiver: mpsc::UnboundedReceiver<Event>) {
    let bars = MultiProgress::with_draw_target(printer.draw_target());
    let mut build = build::BuildView::new(&printer, &bars);
    let mut load = load::LoadView::new(&printer, &bars);
    let mut rollout = rollout::RolloutView::new(&printer, &bars);
    while let Some(event) = receiver.recv().await {
        match event {
            Event::Build(event) => build.handle(event),
            Event::Load(event) => load.handle(event),
            Event::Rollout(event) => rollout.handle(event),
            Event::Info(line) => bars.suspend(|| printer.info(&line)),
            Event::Detail(line) => bars.suspend(|| printer.verbose(&line)),
            Event::Warning(line) => bars.suspend(|| printer.warn(&line)),
        }
    }
}
