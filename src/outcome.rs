//! How a run ends: the exit codes scripts can rely on, and [`Failure`], an error report with its
//! code. Stage errors become failures in `commands/`, with a hint where the remedy is known.

use color_eyre::{Report, Section};

/// The process exit codes, documented in the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done; for `status`, the release is deployed and healthy.
    Success = 0,
    /// The operation failed (build, load, apply, rollout, cluster or Docker unreachable).
    Failed = 1,
    /// Bad usage or configuration: a flag, a config field, a missing secret or Dockerfile.
    Usage = 2,
    /// `status`: the release exists but is not healthy.
    Degraded = 3,
    /// `status`: nothing is deployed under this release name.
    NotDeployed = 4,
    /// Another run holds the release lock.
    Locked = 5,
    /// Interrupted (Ctrl-C).
    Interrupted = 130,
}

impl Exit {
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// An error on its way to the user, with the exit code it ends the run with.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub report: Report,
}

impl Failure {
    pub fn new<E>(exit: Exit, error: E, hint: Option<String>) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let report = Report::new(error);
        let report = match hint {
            Some(hint) => report.suggestion(hint),
            None => report,
        };
        Failure { exit, report }
    }

    /// A failure from a message alone.
    pub fn message(exit: Exit, message: impl Into<String>, hint: Option<String>) -> Self {
        let report = Report::msg(message.into());
        let report = match hint {
            Some(hint) => report.suggestion(hint),
            None => report,
        };
        Failure { exit, report }
    }
}

impl From<crate::settings::SettingsError> for Failure {
    fn from(error: crate::settings::SettingsError) -> Self {
        let hint = error.hint();
        Failure::new(Exit::Usage, error, hint)
    }
}

impl From<crate::cluster::ClusterError> for Failure {
    fn from(error: crate::cluster::ClusterError) -> Self {
        let hint = error.hint();
        // A context that is not in the kubeconfig is a usage error, like a bad flag.
        let exit = match error {
            crate::cluster::ClusterError::UnknownContext { .. } => Exit::Usage,
            _ => Exit::Failed,
        };
        Failure::new(exit, error, Some(hint))
    }
}

impl From<crate::apply::ApplyError> for Failure {
    fn from(error: crate::apply::ApplyError) -> Self {
        let hint = error.hint();
        Failure::new(Exit::Failed, error, hint)
    }
}

impl From<crate::release::lock::LockError> for Failure {
    fn from(error: crate::release::lock::LockError) -> Self {
        let hint = error.hint();
        let exit = match error {
            crate::release::lock::LockError::Held { .. } => Exit::Locked,
            crate::release::lock::LockError::Api { .. } => Exit::Failed,
        };
        Failure::new(exit, error, Some(hint))
    }
}

impl From<crate::release::ReleaseError> for Failure {
    fn from(error: crate::release::ReleaseError) -> Self {
        Failure::new(
            Exit::Failed,
            error,
            Some("`kubectl get secrets -l todo-deploy.io/owner=todo-deploy` lists the release records".to_owned()),
        )
    }
}

impl From<crate::docker::DockerError> for Failure {
    fn from(error: crate::docker::DockerError) -> Self {
        let hint = error.hint();
        Failure::new(Exit::Failed, error, Some(hint))
    }
}

impl From<crate::build::BuildError> for Failure {
    fn from(error: crate::build::BuildError) -> Self {
        let hint = error.hint();
        Failure::new(Exit::Failed, error, hint)
    }
}

impl From<crate::load::LoadError> for Failure {
    fn from(error: crate::load::LoadError) -> Self {
        let hint = error.hint();
        Failure::new(Exit::Failed, error, hint)
    }
}
