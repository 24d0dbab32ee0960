//! Where the views draw, and in what order. On a terminal: a region of rows (progress bars) at
//! the bottom, and above it the lines of everything finished, in the order it happened. A row
//! that finishes shows its last look in place and becomes a line once every row above it has
//! finished too; a line said while finished rows wait below a running one comes after them.
//! Elsewhere (a pipe, CI, `--quiet`): plain lines only. The screen also owns the spinners'
//! clock and where the bytes go, so tests can draw into a terminal of their own.

use std::io::Write;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget};

use super::style;
use super::{Level, Printer, Verbosity};

/// How often a running row's spinner turns on a real terminal.
const TICK: Duration = Duration::from_millis(120);

pub struct Screen {
    printer: Printer,
    surface: Surface,
}

enum Surface {
    /// Plain lines, written as they are said.
    Lines(Box<dyn Write + Send>),
    Rows {
        bars: MultiProgress,
        /// The region, top to bottom.
        rows: Vec<Placed>,
        /// How often spinners turn; `None` keeps them still.
        tick: Option<Duration>,
        /// The id of the next row.
        next: usize,
    },
}

/// A row in the region and, once it has finished, the line it leaves.
struct Placed {
    row: Row,
    left: Option<String>,
}

/// A row a view keeps to update: its bar (hidden when there are no rows) and which row it is.
#[derive(Clone)]
pub struct Row {
    id: usize,
    pub bar: ProgressBar,
}

impl Screen {
    /// Rows on stderr when it is a terminal that can draw them and the user is not asking for
    /// quiet; plain lines on stderr otherwise.
    pub fn stderr(printer: &Printer) -> Self {
        let target = ProgressDrawTarget::stderr();
        if printer.interactive && printer.verbosity >= Verbosity::Normal && !target.is_hidden() {
            Screen::rows(printer, target, Some(TICK))
        } else {
            Screen::lines(printer, Box::new(std::io::stderr()))
        }
    }

    /// Plain lines into `out`.
    pub fn lines(printer: &Printer, out: Box<dyn Write + Send>) -> Self {
        Screen {
            printer: printer.clone(),
            surface: Surface::Lines(out),
        }
    }

    /// Rows drawn on `target`; spinners turn every `tick`, or stand still without one.
    pub fn rows(printer: &Printer, target: ProgressDrawTarget, tick: Option<Duration>) -> Self {
        Screen {
            printer: printer.clone(),
            surface: Surface::Rows {
                bars: MultiProgress::with_draw_target(target),
                rows: Vec::new(),
                tick,
                next: 0,
            },
        }
    }

    /// A line, wherever lines go: above the running rows on a terminal.
    pub fn say(&mut self, level: Level, text: &str) {
        match self.surface {
            Surface::Lines(_) => self.plain(level, text),
            Surface::Rows { .. } => self.above(level, text),
        }
    }

    /// A line only when there are no rows: what a plain log says instead of a row.
    pub fn plain(&mut self, level: Level, text: &str) {
        if let Surface::Lines(out) = &mut self.surface
            && self.printer.shows(level)
        {
            // A closed stderr is nothing to report on stderr.
            let _ = writeln!(out, "{}", self.printer.line(level, text));
        }
    }

    /// A line only on a terminal, after every finished row and above the running ones.
    pub fn above(&mut self, level: Level, text: &str) {
        if matches!(self.surface, Surface::Rows { .. }) && self.printer.shows(level) {
            let line = self.printer.line(level, text);
            self.settle(Some(line));
        }
    }

    /// Puts `bar`, set up by the view (prefix, style, message, length, position), at the bottom
    /// of the region and draws it, its spinner turning. Without rows it stays hidden.
    pub fn add(&mut self, bar: ProgressBar) -> Row {
        self.place(bar, true)
    }

    /// A row that is finished as soon as it appears.
    pub fn done(&mut self, prefix: &str, ok: bool, text: &str) {
        let bar = ProgressBar::hidden()
            .with_prefix(prefix.to_owned())
            .with_style(style::line())
            .with_message(style::done_line(self.printer.color, ok, prefix, text));
        let row = self.place(bar, false);
        self.finish(&row, ok, text);
    }

    fn place(&mut self, bar: ProgressBar, turn: bool) -> Row {
        let Surface::Rows {
            bars,
            rows,
            tick,
            next,
        } = &mut self.surface
        else {
            return Row { id: 0, bar };
        };
        let row = Row {
            id: *next,
            bar: bars.add(bar),
        };
        *next += 1;
        rows.push(Placed {
            row: row.clone(),
            left: None,
        });
        match (tick, turn) {
            (Some(tick), true) => row.bar.enable_steady_tick(*tick),
            _ => row.bar.tick(),
        }
        row
    }

    /// Ends `row` with its last look: `✓ prefix text`, or `✗` when not `ok`. It stays in place
    /// until every row above it has finished too, then becomes a line.
    pub fn finish(&mut self, row: &Row, ok: bool, text: &str) {
        let Surface::Rows { rows, .. } = &mut self.surface else {
            return;
        };
        let Some(placed) = rows.iter_mut().find(|placed| placed.row.id == row.id) else {
            return;
        };
        let line = style::done_line(self.printer.color, ok, &row.bar.prefix(), text);
        row.bar.disable_steady_tick();
        row.bar.set_style(style::line());
        row.bar.finish_with_message(line.clone());
        placed.left = Some(line);
        self.settle(None);
    }

    /// Turns finished rows into lines above the region: those at its top, or, before a `line`
    /// that comes after them, every finished one; then writes the line.
    fn settle(&mut self, line: Option<String>) {
        let Surface::Rows { bars, rows, .. } = &mut self.surface else {
            return;
        };
        let all = line.is_some();
        let mut lines = Vec::new();
        let mut at_top = true;
        rows.retain(|placed| {
            at_top &= placed.left.is_some();
            match (&placed.left, all || at_top) {
                (Some(left), true) => {
                    bars.remove(&placed.row.bar);
                    lines.push(left.clone());
                    false
                }
                _ => true,
            }
        });
        lines.extend(line);
        if !lines.is_empty() {
            // Nothing to do about a terminal that cannot be written to.
            let _ = bars.println(lines.join("\n"));
        }
    }
}

impl Drop for Screen {
    /// A row still running when the UI stops is left as it was, not animated forever.
    fn drop(&mut self) {
        if let Surface::Rows { rows, .. } = &self.surface {
            for placed in rows.iter().filter(|placed| placed.left.is_none()) {
                placed.row.bar.abandon();
            }
        }
    }
}
