//! Configuration errors: each names the file, line and column, the field path, and the fix.

use std::fmt;
use std::path::PathBuf;

use super::source::{FieldPath, Position};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{position}: invalid YAML: {message}")]
    Syntax { position: Position, message: String },
    #[error("`--set {arg}`: {message}")]
    BadSet { arg: String, message: String },
    #[error("{}", Problems(.0))]
    Invalid(Vec<Problem>),
}

impl crate::outcome::Diagnose for ConfigError {
    fn exit(&self) -> crate::outcome::Exit {
        crate::outcome::Exit::Usage
    }

    /// What to do about it, where one fix covers the whole error.
    fn hint(&self) -> Option<String> {
        match self {
            ConfigError::Read { path, .. } => Some(format!(
                "check the path `{}`; the default config is `config/todo-deploy.yaml` in the project root, another one is chosen with `--config`",
                path.display()
            )),
            ConfigError::Syntax { .. } => {
                Some("check the indentation and quoting at that line".to_owned())
            }
            ConfigError::BadSet { .. } => Some(
                "write `--set path.to.field=value`, e.g. `--set services.backend.replicas=3`"
                    .to_owned(),
            ),
            ConfigError::Invalid(_) => None,
        }
    }
}

/// One thing wrong with one field.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub position: Option<Position>,
    pub field: FieldPath,
    pub message: String,
    pub fix: String,
}

struct Problems<'a>(&'a [Problem]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            [one] => write!(f, "invalid configuration: {one}"),
            many => {
                write!(f, "invalid configuration ({} problems):", many.len())?;
                for problem in many {
                    write!(f, "\n  {problem}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(position) = &self.position {
            write!(f, "{position}: ")?;
        }
        write!(f, "`{}`: {}; {}", self.field, self.message, self.fix)
    }
}
