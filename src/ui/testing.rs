//! What the UI's tests draw into: a captured stream of plain lines, and a terminal emulator
//! (`vt100`) of a fixed size that shows what a user would see.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use indicatif::{ProgressDrawTarget, TermLike};

use super::screen::Screen;
use super::{Printer, Verbosity};

/// A printer as the UI gets it: `interactive` for a terminal, never coloured.
pub fn printer(verbosity: Verbosity, interactive: bool) -> Printer {
    Printer::new(verbosity, false, interactive)
}

/// Bytes written as plain lines, kept for the test to read.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// A screen of plain lines written here.
    pub fn screen(&self, printer: &Printer) -> Screen {
        Screen::lines(printer, Box::new(self.clone()))
    }

    pub fn text(&self) -> String {
        String::from_utf8(lock(&self.0).clone()).expect("UTF-8 lines")
    }
}

impl io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        lock(&self.0).extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A terminal of `columns` x `rows` that the screen's rows draw on, as a terminal sees the
/// bytes: cursor moves, line clears, and a newline that returns to the first column.
#[derive(Clone)]
pub struct Terminal {
    parser: Arc<Mutex<vt100::Parser>>,
    /// What it showed after each draw.
    frames: Arc<Mutex<Vec<String>>>,
    columns: u16,
    rows: u16,
}

impl std::fmt::Debug for Terminal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Terminal({}x{})", self.columns, self.rows)
    }
}

impl Terminal {
    pub fn new(columns: u16, rows: u16) -> Self {
        let size = |n: u16| std::num::NonZeroU16::new(n).expect("a terminal has a size");
        Terminal {
            parser: Arc::new(Mutex::new(vt100::Parser::new(size(rows), size(columns), 0))),
            frames: Arc::default(),
            columns,
            rows,
        }
    }

    /// A screen of rows drawn here, with still spinners: nothing moves between two events.
    pub fn screen(&self, printer: &Printer) -> Screen {
        Screen::rows(
            printer,
            ProgressDrawTarget::term_like(Box::new(self.clone())),
            None,
        )
    }

    /// What the terminal shows: its rows without trailing blanks, up to the last non-empty one.
    pub fn contents(&self) -> String {
        let parser = lock(&self.parser);
        let rows: Vec<String> = parser
            .screen()
            .rows(0, self.columns)
            .map(|row| row.trim_end().to_owned())
            .collect();
        let shown = rows
            .iter()
            .rposition(|row| !row.is_empty())
            .map_or(0, |i| i + 1);
        rows[..shown].join("\n")
    }

    /// What it showed after each draw, first to last.
    pub fn frames(&self) -> Vec<String> {
        lock(&self.frames).clone()
    }

    fn write(&self, text: &str) -> io::Result<()> {
        // A terminal's line discipline turns `\n` into `\r\n`.
        lock(&self.parser).process(text.replace('\n', "\r\n").as_bytes());
        Ok(())
    }

    fn csi(&self, n: usize, code: char) -> io::Result<()> {
        match n {
            0 => Ok(()),
            n => self.write(&format!("\x1b[{n}{code}")),
        }
    }
}

impl TermLike for Terminal {
    fn width(&self) -> u16 {
        self.columns
    }

    fn height(&self) -> u16 {
        self.rows
    }

    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        self.csi(n, 'A')
    }

    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        self.csi(n, 'B')
    }

    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        self.csi(n, 'C')
    }

    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        self.csi(n, 'D')
    }

    fn write_line(&self, s: &str) -> io::Result<()> {
        self.write(&format!("{s}\n"))
    }

    fn write_str(&self, s: &str) -> io::Result<()> {
        self.write(s)
    }

    fn clear_line(&self) -> io::Result<()> {
        self.write("\r\x1b[2K")
    }

    /// The end of a draw: the frame is what a user sees until the next one.
    fn flush(&self) -> io::Result<()> {
        let frame = self.contents();
        lock(&self.frames).push(frame);
        Ok(())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
