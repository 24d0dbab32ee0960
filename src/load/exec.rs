//! Running a runtime's command where the runtime is: in a node container (a Docker exec) or on
//! this host (a child process, for a local containerd socket). Either way the command can be fed
//! on stdin while its output is collected, and ends with an exit code and that output.

use std::pin::Pin;
use std::process::Stdio;
use std::time::Duration;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecResults};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::error::LoadError;

/// How much of a command's stderr is kept: the end of it.
const KEPT_OUTPUT: usize = 16 * 1024;
/// How much of its stdout: a node's listing (every image, blob and snapshot) must fit.
const KEPT_STDOUT: usize = 16 * 1024 * 1024;

/// Where a command runs.
#[derive(Clone)]
pub enum Place {
    /// Inside a node container, through `docker`.
    Container { docker: Docker, name: String },
    /// On this host.
    Host,
}

impl std::fmt::Debug for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::Container { name, .. } => write!(f, "Container({name})"),
            Place::Host => write!(f, "Host"),
        }
    }
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub code: i64,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// Stderr, or stdout when the command wrote its complaint there.
    pub fn complaint(&self) -> String {
        if self.stderr.trim().is_empty() {
            self.stdout.clone()
        } else {
            self.stderr.clone()
        }
    }
}

/// A running command: its stdin, and a future that collects its output and exit code. The
/// future must be polled while writing, or a chatty command blocks on a full pipe. End the input
/// with `shutdown` (an exec's half-close) *and* drop it (a child's pipe closes only then).
pub struct Started {
    pub input: Pin<Box<dyn AsyncWrite + Send>>,
    pub done: BoxFuture<'static, Result<Finished, LoadError>>,
}

impl Place {
    /// Starts `argv`, with its stdin open for writing.
    pub async fn start(&self, argv: &[String]) -> Result<Started, LoadError> {
        match self {
            Place::Container { docker, name } => start_exec(docker, name, argv).await,
            Place::Host => start_process(argv),
        }
    }

    /// Runs `argv` with nothing on its stdin.
    pub async fn run(&self, argv: &[String]) -> Result<Finished, LoadError> {
        let Started { mut input, done } = self.start(argv).await?;
        // A command that never reads stdin does not mind it closing.
        let _ = input.shutdown().await;
        drop(input);
        done.await
    }
}

async fn start_exec(
    docker: &Docker,
    container: &str,
    argv: &[String],
) -> Result<Started, LoadError> {
    let engine = |action: String| move |source| LoadError::Engine { action, source };
    let options = CreateExecOptions {
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        cmd: Some(argv.to_vec()),
        ..Default::default()
    };
    let exec = docker
        .create_exec(container, options)
        .await
        .map_err(engine(format!("run `{}` in `{container}`", argv.join(" "))))?;
    let started = docker
        .start_exec(&exec.id, None)
        .await
        .map_err(engine(format!(
            "start `{}` in `{container}`",
            argv.join(" ")
        )))?;
    let StartExecResults::Attached { mut output, input } = started else {
        // Only a start with `detach` set returns this, and this one does not set it.
        return Err(LoadError::Spawn {
            program: argv.join(" "),
            source: std::io::Error::other(format!("the exec in `{container}` started detached")),
        });
    };
    let docker = docker.clone();
    let id = exec.id;
    let description = format!("`{}` in `{container}`", argv.join(" "));
    let done = Box::pin(async move {
        let mut stdout = Kept::new(KEPT_STDOUT);
        let mut stderr = Kept::new(KEPT_OUTPUT);
        while let Some(frame) = output.next().await {
            match frame {
                Ok(LogOutput::StdErr { message }) => stderr.push(&message),
                Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                    stdout.push(&message)
                }
                Ok(LogOutput::StdIn { .. }) => {}
                // The connection ends when the command does; inspecting the exec tells how.
                Err(_) => break,
            }
        }
        // The output ends as the process does; its exit code may lag a moment behind.
        for attempt in 0..50u32 {
            let state = docker
                .inspect_exec(&id)
                .await
                .map_err(engine(format!("inspect {description}")))?;
            if state.running != Some(true)
                && let Some(code) = state.exit_code
            {
                return Ok(Finished {
                    code,
                    stdout: stdout.text(),
                    stderr: stderr.text(),
                });
            }
            tokio::time::sleep(Duration::from_millis(10 * u64::from(attempt.min(10)))).await;
        }
        Ok(Finished {
            code: -1,
            stdout: stdout.text(),
            stderr: format!("{}\n(the command did not exit)", stderr.text()),
        })
    });
    Ok(Started { input, done })
}

fn start_process(argv: &[String]) -> Result<Started, LoadError> {
    let Some((program, args)) = argv.split_first() else {
        return Err(LoadError::NoProgram {
            program: String::new(),
        });
    };
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => LoadError::NoProgram {
                program: program.clone(),
            },
            _ => LoadError::Spawn {
                program: program.clone(),
                source,
            },
        })?;
    let (Some(input), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(LoadError::Spawn {
            program: program.clone(),
            source: std::io::Error::other("the child's pipes are missing"),
        });
    };
    let program = program.clone();
    let done = Box::pin(async move {
        let (stdout, stderr) = tokio::join!(drain(stdout, KEPT_STDOUT), drain(stderr, KEPT_OUTPUT));
        let status = child.wait().await.map_err(|source| LoadError::Spawn {
            program: program.clone(),
            source,
        })?;
        Ok(Finished {
            // Killed by a signal: no code, which no command returns on purpose.
            code: status.code().map_or(-1, i64::from),
            stdout,
            stderr,
        })
    });
    Ok(Started {
        input: Box::pin(input),
        done,
    })
}

async fn drain(mut reader: impl AsyncRead + Unpin, limit: usize) -> String {
    let mut kept = Kept::new(limit);
    let mut buffer = vec![0u8; 8192];
    while let Ok(read) = reader.read(&mut buffer).await {
        if read == 0 {
            break;
        }
        kept.push(&buffer[..read]);
    }
    kept.text()
}

/// The last `limit` bytes of a stream.
struct Kept {
    bytes: Vec<u8>,
    limit: usize,
}

impl Kept {
    fn new(limit: usize) -> Kept {
        Kept {
            bytes: Vec::new(),
            limit,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
        if self.bytes.len() > 2 * self.limit {
            let cut = self.bytes.len() - self.limit;
            self.bytes.drain(..cut);
        }
    }

    fn text(&self) -> String {
        let start = self.bytes.len().saturating_sub(self.limit);
        String::from_utf8_lossy(&self.bytes[start..]).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_end_of_the_output_is_kept() {
        let mut kept = Kept::new(KEPT_OUTPUT);
        for _ in 0..5 {
            kept.push(&[b'a'; KEPT_OUTPUT]);
        }
        kept.push(b"the end");
        let text = kept.text();
        assert_eq!(text.len(), KEPT_OUTPUT);
        assert!(text.ends_with("the end"));
    }

    #[tokio::test]
    async fn a_host_process_reads_stdin_and_reports_its_exit_code() {
        let argv: Vec<String> = ["sh", "-c", "wc -c; echo oops >&2; exit 3"]
            .map(String::from)
            .to_vec();
        let Started { mut input, done } = Place::Host.start(&argv).await.unwrap();
        // A child's stdin closes when dropped (`shutdown` only flushes it), as `Sink::close` does.
        let writing = async move {
            input.write_all(b"12345").await.unwrap();
            input.shutdown().await.unwrap();
            drop(input);
        };
        let ((), finished) = tokio::join!(writing, done);
        let finished = finished.unwrap();
        assert_eq!(finished.code, 3);
        assert_eq!(finished.stdout.trim(), "5");
        assert_eq!(finished.complaint().trim(), "oops");
    }

    #[tokio::test]
    async fn a_missing_program_is_named() {
        let argv = vec!["todo-deploy-no-such-program".to_owned()];
        let error = Place::Host.run(&argv).await.unwrap_err();
        assert!(
            matches!(&error, LoadError::NoProgram { program } if program == "todo-deploy-no-such-program"),
            "{error:?}"
        );
    }
}
