//! The access check before a command's first write: every permission the command needs
//! ([`access::for_command`]) is asked of the cluster at once, and a refusal lists all that are
//! missing, with the fix, before anything changes. Where the cluster cannot answer
//! (SelfSubjectAccessReview forbidden or not served) the check is skipped with a `-v` note: the
//! command's own calls then say what is refused.

use crate::access::{self, Command, Permission};
use crate::cluster::{self, Cluster};
use crate::outcome::{Exit, Failure};
use crate::ui::{Event, Events};

/// Refuses `command` in `namespace` when the credentials lack any permission it needs.
pub(crate) async fn check(
    cluster: &Cluster,
    namespace: &str,
    command: Command,
    events: &Events,
) -> Result<(), Failure> {
    let started = std::time::Instant::now();
    let answer = match access::check(&cluster.client, namespace, command).await {
        Ok(answer) => answer,
        Err(access::AccessError::Unavailable(error)) => {
            events.send(Event::Detail(format!(
                "access check skipped: the cluster does not answer SelfSubjectAccessReviews ({})",
                cluster::short(&error)
            )));
            return Ok(());
        }
    };
    let access::Answer {
        wanted,
        missing,
        namespace_absent: absent,
    } = answer;
    events.send(Event::Detail(format!(
        "access check: {} permissions asked in {} ms, {} missing",
        wanted.len(),
        started.elapsed().as_millis(),
        missing.len()
    )));
    // `down` of a namespace that is gone has nothing to remove, and says so itself.
    if missing.is_empty() || (absent && command == Command::Down) {
        return Ok(());
    }
    if missing.len() == wanted.len() && !absent {
        return Err(nothing_granted(command, missing.len(), namespace));
    }
    Err(refusal(&missing, namespace, absent))
}

/// Not one permission is granted: the namespace may be missing (a user without rights in it
/// cannot tell), or the credentials are not the intended ones. Listing all would bury that.
fn nothing_granted(command: Command, count: usize, namespace: &str) -> Failure {
    Failure::message(
        Exit::Failed,
        format!(
            "missing: all {count} permissions `{}` needs in namespace {namespace}: none is granted there",
            command.as_str()
        ),
        [format!(
            "nothing was changed; check the namespace exists and the context is the intended one; `todo-deploy rbac --namespace {namespace}` prints the Role a cluster admin can grant (or bind the built-in `edit` ClusterRole in the namespace)"
        )],
    )
}

/// `missing: …` with how to get the rights.
fn refusal(missing: &[Permission], namespace: &str, absent: bool) -> Failure {
    let mut hints = Vec::new();
    let local = missing.iter().any(|p| p.scope == access::Scope::Namespace);
    if local {
        hints.push(format!(
            "nothing was changed; a cluster admin can grant them: `todo-deploy rbac --namespace {namespace} --user YOU | kubectl apply -f -` (or `--service-account NAME`), or bind the built-in `edit` ClusterRole in the namespace"
        ));
    }
    if absent {
        hints.push(format!(
            "the namespace `{namespace}` does not exist and these credentials may not create it: ask a cluster admin to `kubectl create namespace {namespace}`"
        ));
    }
    Failure::message(Exit::Failed, access::summary(missing, namespace), hints)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(failure: &Failure) -> (String, Vec<String>) {
        (failure.headline(), failure.hints().to_vec())
    }

    #[test]
    fn a_refusal_names_the_fix_and_a_missing_namespace() {
        let missing = [Permission::create_namespace()];
        let (headline, hints) = lines(&refusal(&missing, "todo", true));
        assert_eq!(headline, "missing: create namespaces cluster-wide");
        assert_eq!(hints.len(), 1, "{hints:?}");
        assert!(
            hints[0].contains("kubectl create namespace todo"),
            "{hints:?}"
        );
        let up = access::for_command(Command::Up);
        let (headline, hints) = lines(&refusal(&up[..1], "todo", false));
        assert_eq!(headline, format!("missing: {} in namespace todo", up[0]));
        assert!(
            hints[0].contains("todo-deploy rbac --namespace todo"),
            "{hints:?}"
        );
    }

    #[test]
    fn nothing_granted_is_one_line() {
        let failure = nothing_granted(Command::Down, 30, "todo");
        assert_eq!(
            failure.headline(),
            "missing: all 30 permissions `down` needs in namespace todo: none is granted there"
        );
        assert_eq!(failure.exit, Exit::Failed);
    }
}
