//! The one place that writes to the terminal. The [`Printer`] owns verbosity and colour; the
//! [`Ui`] task hands each progress event to its view, and the views draw on a shared screen
//! (bars on a terminal, plain lines elsewhere): stages never print, commands hand their output
//! here.

mod adopt;
mod build;
mod dev;
mod load;
mod logs;
mod rollout;
mod screen;
mod style;
#[cfg(test)]
mod terminal_tests;
#[cfg(test)]
mod testing;
mod words;

use std::io::Write;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::outcome::Failure;
pub use crate::progress::{Event, Events};
pub use logs::LogPrinter;
use screen::Screen;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
    Debug,
}

/// How much a line matters, which decides the verbosity that shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// A step worth a line in the normal output.
    Info,
    /// Detail for `-v`.
    Detail,
    /// Shown even when quiet.
    Warning,
    /// An error a run goes on after (`dev`): shown even when quiet.
    Error,
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
        self.say(Level::Info, text);
    }

    /// Detail shown with `-v`.
    pub fn verbose(&self, text: &str) {
        self.say(Level::Detail, text);
    }

    /// A warning, shown even when quiet.
    pub fn warn(&self, text: &str) {
        self.say(Level::Warning, text);
    }

    fn say(&self, level: Level, text: &str) {
        if self.shows(level) {
            eprintln!("{}", self.line(level, text));
        }
    }

    /// A failure as tools like cargo print them: `error: …`, its causes as `caused by: …`
    /// lines, then `help: …` for each fix; colour only on a terminal.
    pub fn failure(&self, failure: &Failure) {
        let paint = |code: &str, label: &str| match self.color {
            true => format!("\x1b[{code}m{label}\x1b[0m"),
            false => label.to_owned(),
        };
        let mut text = format!("{}: {}\n", paint("1;31", "error"), failure.headline());
        for cause in failure.causes() {
            text.push_str(&format!("{}: {cause}\n", paint("1", "caused by")));
        }
        for hint in failure.hints() {
            text.push_str(&format!("{}: {hint}\n", paint("1;36", "help")));
        }
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }

    /// Whether lines of `level` are shown at this verbosity.
    fn shows(&self, level: Level) -> bool {
        match level {
            Level::Info => self.verbosity >= Verbosity::Normal,
            Level::Detail => self.verbosity >= Verbosity::Verbose,
            Level::Warning | Level::Error => true,
        }
    }

    /// The line as written: a warning says so, in yellow with colour.
    fn line(&self, level: Level, text: &str) -> String {
        match (level, self.color) {
            (Level::Warning, true) => format!("\x1b[33mwarning\x1b[0m: {text}"),
            (Level::Warning, false) => format!("warning: {text}"),
            (Level::Error, true) => format!("\x1b[1;31merror\x1b[0m: {text}"),
            (Level::Error, false) => format!("error: {text}"),
            _ => text.to_owned(),
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
        let views = Views::new(printer, Screen::stderr(printer));
        let task = tokio::spawn(draw(views, receiver));
        Ui { events, task }
    }

    /// Runs `work` with a UI that draws what it reports, and returns once all of it is drawn:
    /// how every command that reports progress runs.
    pub async fn around<T>(printer: &Printer, work: impl AsyncFnOnce(&Events) -> T) -> T {
        let ui = Ui::start(printer);
        let result = work(&ui.events).await;
        ui.finish().await;
        result
    }

    /// Waits until every event sent so far is drawn.
    pub async fn finish(self) {
        drop(self.events);
        let _ = self.task.await;
    }
}

async fn draw(mut views: Views, mut receiver: mpsc::UnboundedReceiver<Event>) {
    while let Some(event) = receiver.recv().await {
        views.show(event);
    }
}

/// Every view and the screen they share. Each event goes to the one view that knows it.
struct Views {
    screen: Screen,
    build: build::BuildView,
    load: load::LoadView,
    rollout: rollout::RolloutView,
    dev: dev::DevView,
    logs: logs::LogView,
}

impl Views {
    fn new(printer: &Printer, screen: Screen) -> Self {
        Views {
            screen,
            build: build::BuildView::new(printer),
            load: load::LoadView::new(printer),
            rollout: rollout::RolloutView::new(printer),
            dev: dev::DevView::new(printer),
            logs: logs::LogView::new(printer),
        }
    }

    fn show(&mut self, event: Event) {
        let screen = &mut self.screen;
        match event {
            Event::Build(event) => self.build.handle(event, screen),
            Event::Load(event) => self.load.handle(event, screen),
            Event::Rollout(event) => self.rollout.handle(event, screen),
            Event::Dev(event) => self.dev.handle(event, screen),
            Event::Logs(event) => self.logs.handle(event, screen),
            Event::Apply(event) => {
                let (level, line) = words::apply(&event);
                screen.say(level, &line);
            }
            Event::Release(event) => {
                let (level, line) = words::release(&event);
                screen.say(level, &line);
            }
            Event::Adopt(event) => {
                let (level, line) = adopt::words(&event);
                screen.say(level, &line);
            }
            Event::Retrying {
                what,
                attempt,
                attempts,
                wait,
                error,
            } => {
                let (level, line) = words::retrying(&what, attempt, attempts, wait, &error);
                screen.say(level, &line);
            }
            Event::Info(line) => screen.say(Level::Info, &line),
            Event::Detail(line) => screen.say(Level::Detail, &line),
            Event::Warning(line) => screen.say(Level::Warning, &line),
        }
    }
}
