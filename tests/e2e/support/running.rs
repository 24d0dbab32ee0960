//! A `todo-deploy` run in the background whose stderr (or stdout) a scenario reads line by line,
//! so it can act on what the run has seen (a line printed), never after a guessed time.
//! `E2E_ECHO=1` echoes every line read to the test's stderr (with `--nocapture`), to see where
//! a scenario waits.

use std::pin::Pin;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader, Lines};
use tokio::process::Child;

use super::Run;

type Stream = Pin<Box<dyn AsyncRead + Send>>;

pub struct Running {
    child: Child,
    lines: Lines<BufReader<Stream>>,
    /// Whether the lines read are stdout's (else stderr's).
    stdout: bool,
    /// Everything read so far.
    pub stderr: String,
}

impl Running {
    /// Starts `command` with its stderr piped, to read it line by line.
    pub fn start(command: tokio::process::Command) -> Running {
        Running::reading(command, false)
    }

    /// Starts `command`, to read its stdout line by line (`logs`: the lines are its output).
    pub fn start_on_stdout(command: tokio::process::Command) -> Running {
        Running::reading(command, true)
    }

    fn reading(mut command: tokio::process::Command, stdout: bool) -> Running {
        command.stderr(std::process::Stdio::piped());
        command.stdout(std::process::Stdio::piped());
        let mut child = command.spawn().expect("todo-deploy starts");
        let stream: Stream = match stdout {
            true => Box::pin(child.stdout.take().expect("stdout is piped")),
            false => Box::pin(child.stderr.take().expect("stderr is piped")),
        };
        Running {
            child,
            lines: BufReader::new(stream).lines(),
            stdout,
            stderr: String::new(),
        }
    }

    /// Reads until a line satisfies `wanted`, and returns it; panics, showing what was
    /// printed, if the run ends first.
    pub async fn until_line(&mut self, wanted: impl Fn(&str) -> bool) -> String {
        while let Some(line) = self.lines.next_line().await.expect("read the output") {
            self.stderr.push_str(&line);
            self.stderr.push('\n');
            if std::env::var_os("E2E_ECHO").is_some() {
                eprintln!("| {line}");
            }
            if wanted(&line) {
                return line;
            }
        }
        panic!("the run ended without the line awaited:\n{}", self.stderr);
    }

    /// The process ID, to signal it.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("still running")
    }

    /// Waits for the end of the run and returns all it printed.
    pub async fn finish(mut self) -> Run {
        while let Some(line) = self.lines.next_line().await.expect("read the output") {
            self.stderr.push_str(&line);
            self.stderr.push('\n');
        }
        let output = self.child.wait_with_output().await.expect("the run ends");
        let (read, other) = (self.stderr, output_text(&output, self.stdout));
        let (stdout, stderr) = match self.stdout {
            true => (read, other),
            false => (other, read),
        };
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout,
            stderr,
        }
    }
}

/// What the stream that was not read line by line held.
fn output_text(output: &std::process::Output, stdout_was_read: bool) -> String {
    let bytes = match stdout_was_read {
        true => &output.stderr,
        false => &output.stdout,
    };
    String::from_utf8_lossy(bytes).into_owned()
}
