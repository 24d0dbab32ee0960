//! The one place that writes to the terminal. The [`Printer`] owns verbosity, colour and the
//! progress draw target: stages never print, commands hand their output here.

use std::io::{IsTerminal, Write};

use indicatif::ProgressDrawTarget;

use crate::cli::GlobalArgs;

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
    pub fn new(global: &GlobalArgs, no_color_env: bool) -> Self {
        let verbosity = match (global.quiet, global.verbose) {
            (true, _) => Verbosity::Quiet,
            (false, 0) => Verbosity::Normal,
            (false, 1) => Verbosity::Verbose,
            (false, _) => Verbosity::Debug,
        };
        let interactive = std::io::stderr().is_terminal();
        Printer {
            verbosity,
            color: interactive && !global.no_color && !no_color_env,
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
