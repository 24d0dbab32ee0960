//! How a run ends: the exit codes scripts can rely on, the [`Diagnose`] trait every stage error
//! implements (its exit code and the fix), and [`Failure`], an error on its way to the user. A
//! leaf module: stages depend on it, it depends on nothing of ours.

use std::error::Error;
use std::fmt;

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

/// What a stage's error tells the user besides its message: the exit code it ends the run with
/// and, where the remedy is known, the fix. One conversion turns any of them into a [`Failure`].
pub trait Diagnose: Error + Send + Sync + 'static {
    fn exit(&self) -> Exit {
        Exit::Failed
    }

    fn hint(&self) -> Option<String> {
        None
    }
}

/// An error on its way to the user: what went wrong (with its causes), the fixes, the exit code.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    error: Box<dyn Error + Send + Sync>,
    hints: Vec<String>,
}

impl<E: Diagnose> From<E> for Failure {
    fn from(error: E) -> Self {
        Failure {
            exit: error.exit(),
            hints: error.hint().into_iter().collect(),
            error: Box::new(error),
        }
    }
}

/// An error that is only a message.
#[derive(Debug)]
struct Message(String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Error for Message {}

impl Failure {
    /// A failure from an error of another library, with its exit code and fix.
    pub fn new<E>(exit: Exit, error: E, hint: Option<String>) -> Self
    where
        E: Error + Send + Sync + 'static,
    {
        Failure {
            exit,
            error: Box::new(error),
            hints: hint.into_iter().collect(),
        }
    }

    /// A failure from a message and any number of fixes (repeats are dropped).
    pub fn message(
        exit: Exit,
        message: impl Into<String>,
        hints: impl IntoIterator<Item = String>,
    ) -> Self {
        let mut unique: Vec<String> = Vec::new();
        for hint in hints {
            if !unique.contains(&hint) {
                unique.push(hint);
            }
        }
        Failure {
            exit,
            error: Box::new(Message(message.into())),
            hints: unique,
        }
    }

    /// What went wrong, in one line or a few.
    pub fn headline(&self) -> String {
        self.error.to_string()
    }

    /// The causes under the headline, outermost first, each said once: a cause whose text the
    /// line above already contains is left out, and a Kubernetes API error is said in one line
    /// (its message and code), never as the whole Status it carries.
    pub fn causes(&self) -> Vec<String> {
        let mut causes: Vec<String> = Vec::new();
        let mut above = self.error.to_string();
        let mut next = self.error.source();
        while let Some(cause) = next {
            let (text, deeper) = match cause.downcast_ref::<kube::Error>() {
                Some(api) => (kube_error(api), None),
                None => (cause.to_string(), cause.source()),
            };
            if !text.is_empty() && !above.contains(&text) {
                causes.push(text.clone());
            }
            above = text;
            next = deeper;
        }
        causes
    }

    pub fn hints(&self) -> &[String] {
        &self.hints
    }
}

/// A Kubernetes client error in one line: the server's message, HTTP status and reason
/// (`… is forbidden: … (403 Forbidden)`), or the transport's deepest cause
/// (`Connection refused (os error 111)`). Never kube's `Display`, which repeats the message
/// with a `Debug` dump of the whole Status.
pub fn kube_error(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) if !status.message.is_empty() => match status.reason.as_str() {
            "" => format!("{} ({})", status.message, status.code),
            reason => format!("{} ({} {reason})", status.message, status.code),
        },
        other => {
            let mut deepest: &dyn Error = other;
            while let Some(source) = deepest.source() {
                deepest = source;
            }
            deepest.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot apply Deployment/backend")]
    struct Apply(#[source] kube::Error);

    impl Diagnose for Apply {}

    #[test]
    fn an_api_error_is_one_line_with_status_and_reason() {
        let status: kube::core::Status = serde_json::from_value(serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "deployments.apps \"backend\" is forbidden: User \"u\" cannot create resource \"deployments\" in API group \"apps\" in the namespace \"n\"",
            "reason": "Forbidden", "details": {"name": "backend", "group": "apps", "kind": "deployments"}, "code": 403
        }))
        .unwrap_or_default();
        let failure = Failure::from(Apply(kube::Error::Api(Box::new(status))));
        assert_eq!(failure.headline(), "cannot apply Deployment/backend");
        assert_eq!(
            failure.causes(),
            [
                "deployments.apps \"backend\" is forbidden: User \"u\" cannot create resource \"deployments\" in API group \"apps\" in the namespace \"n\" (403 Forbidden)"
            ]
        );
    }
}
