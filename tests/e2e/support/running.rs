//! A `todo-deploy` run in the background whose stderr a scenario reads line by line, so it can
//! act on what the run has seen (a line printed), never after a guessed time.

use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr};

use super::Run;

pub struct Running {
    child: Child,
    lines: Lines<BufReader<ChildStderr>>,
    /// Everything printed on stderr so far.
    pub stderr: String,
}

impl Running {
    /// Starts `command` with its stderr piped.
    pub fn start(mut command: tokio::process::Command) -> Running {
        command.stderr(std::process::Stdio::piped());
        command.stdout(std::process::Stdio::piped());
        let mut child = command.spawn().expect("todo-deploy starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        Running {
            child,
            lines: BufReader::new(stderr).lines(),
            stderr: String::new(),
        }
    }

    /// Reads stderr until a line satisfies `wanted`, and returns it; panics, showing what was
    /// printed, if the run ends first.
    pub async fn until_line(&mut self, wanted: impl Fn(&str) -> bool) -> String {
        while let Some(line) = self.lines.next_line().await.expect("read stderr") {
            self.stderr.push_str(&line);
            self.stderr.push('\n');
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
        while let Some(line) = self.lines.next_line().await.expect("read stderr") {
            self.stderr.push_str(&line);
            self.stderr.push('\n');
        }
        let output = self.child.wait_with_output().await.expect("the run ends");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: self.stderr,
        }
    }
}
