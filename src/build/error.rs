//! How a build goes wrong, and what the user can do about it.

use std::fmt;
use std::path::PathBuf;

use super::context::ContextError;
use super::output::Step;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot read the build context of `{service}`")]
    Context {
        service: String,
        #[source]
        source: ContextError,
    },
    #[error("cannot look up the image `{image}` in the Docker engine")]
    Inspect {
        image: String,
        #[source]
        source: bollard::errors::Error,
    },
    /// The engine ran the build and it failed: a step, or the Dockerfile itself.
    #[error("{0}")]
    Failed(Box<FailedBuild>),
    #[error("lost the Docker engine while building `{image}`")]
    Engine {
        image: String,
        #[source]
        source: bollard::errors::Error,
    },
}

/// A build the engine gave up on, with what the user needs to find the cause.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedBuild {
    pub service: String,
    pub image: String,
    pub dockerfile: PathBuf,
    pub context: PathBuf,
    /// The step that failed; `None` when the engine refused the build before running any.
    pub step: Option<Step>,
    /// The engine's error message.
    pub message: String,
    /// The last lines of the build output.
    pub tail: Vec<String>,
}

impl fmt::Display for FailedBuild {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let FailedBuild { service, image, .. } = self;
        match &self.step {
            Some(step) => write!(
                f,
                "building `{image}` ({service}) failed at step {}/{} `{}`: {}",
                step.number,
                step.total,
                shortened(&step.instruction),
                self.message
            )?,
            None => write!(
                f,
                "the Docker engine refused to build `{image}` ({service}): {}",
                self.message
            )?,
        }
        if !self.tail.is_empty() {
            write!(f, "\nthe last lines of the build output:")?;
            for line in &self.tail {
                write!(f, "\n  {line}")?;
            }
        }
        Ok(())
    }
}

/// An instruction cut to fit a headline; the output's tail shows it whole.
fn shortened(instruction: &str) -> String {
    const LONGEST: usize = 72;
    if instruction.chars().count() <= LONGEST {
        return instruction.to_owned();
    }
    let cut: String = instruction.chars().take(LONGEST - 1).collect();
    format!("{}…", cut.trim_end())
}

impl crate::outcome::Diagnose for BuildError {
    fn hint(&self) -> Option<String> {
        match self {
            BuildError::Context { .. } => Some(
                "check the file permissions in the build context, and its `.dockerignore`"
                    .to_owned(),
            ),
            BuildError::Inspect { .. } | BuildError::Engine { .. } => Some(
                "is Docker still running? `docker info` checks; start it with `sudo systemctl start docker`, or start Docker Desktop"
                    .to_owned(),
            ),
            BuildError::Failed(failed) => Some(failed.hint()),
        }
    }
}

impl FailedBuild {
    fn hint(&self) -> String {
        let dockerfile = self.dockerfile.display();
        let message = self.message.as_str();
        if message.contains("COPY failed") || message.contains("ADD failed") {
            format!(
                "the file is not in the build context `{}`, or its `.dockerignore` leaves it out",
                self.context.display()
            )
        } else if message.contains("failed to reach build target") {
            format!("set `build.target` to a stage named with `FROM … AS <name>` in `{dockerfile}`")
        } else if let Some(step) = &self.step {
            format!(
                "fix step {} of `{dockerfile}`; `-v` shows the whole build output",
                step.number
            )
        } else {
            format!("fix `{dockerfile}`")
        }
    }
}

impl From<FailedBuild> for BuildError {
    fn from(failed: FailedBuild) -> Self {
        BuildError::Failed(Box::new(failed))
    }
}
