//! Taking over what another tool made: a release the old Helm chart installed, or objects a
//! plain `kubectl apply` made, with no downtime. This stage owns the parts that touch the
//! cluster one step at a time — finding objects of another owner that have our names
//! ([`detect`]), planning what replaces what ([`plan`], pure), making the previous owner's
//! fields ours ([`transfer`]), and the steps of a replacement ([`steps`]: the old Deployment of
//! our name set aside, extra replicas while the old ones serve, the wait until a switched
//! Service's endpoints list only our pods, the old workloads scaled down and deleted). The
//! takeover as a whole is composed by the `adopt` command.

pub mod detect;
pub mod events;
pub mod plan;
pub mod steps;
pub mod transfer;

pub use detect::Found;
pub use events::AdoptEvent;

use crate::apply::Owner;

/// The field manager that holds the replicas of a replacement an autoscaler scales: not ours,
/// so that our applies, which leave the field out, never reset it.
pub const SURGE_MANAGER: &str = "todo-deploy-takeover";

#[derive(Debug, thiserror::Error)]
pub enum AdoptError {
    #[error(
        "objects with todo-deploy's names in namespace `{namespace}` were made by another tool; nothing was changed:\n{}",
        found.iter().map(|f| format!("  {f}")).collect::<Vec<_>>().join("\n")
    )]
    Foreign {
        namespace: String,
        found: Vec<Found>,
        /// The command that takes them over.
        command: String,
    },
    #[error("`{object}` belongs to Helm release `{found}`, not to `{wanted}`")]
    OtherRelease {
        object: String,
        found: String,
        wanted: String,
    },
    #[error("the objects here belong to more than one Helm release: {}", releases.join(", "))]
    ManyReleases { releases: Vec<String> },
    #[error(
        "Helm release `{release}` has no object with the names todo-deploy renders in `{namespace}`: there is nothing to take over in place"
    )]
    NothingShared { release: String, namespace: String },
    #[error("`{flag}` {problem}")]
    Usage {
        flag: &'static str,
        problem: &'static str,
        fix: &'static str,
    },
    #[error(
        "the endpoints of Service `{service}` still list old pods after {seconds}s; the old workloads were left running"
    )]
    EndpointsStuck { service: String, seconds: u64 },
    #[error("{what} did not happen within {seconds}s")]
    TimedOut { what: String, seconds: u64 },
    #[error("cannot follow {object}")]
    Watch {
        object: String,
        #[source]
        source: kube::runtime::wait::Error,
    },
    #[error("cannot {action} {object}")]
    Api {
        action: &'static str,
        object: String,
        #[source]
        source: kube::Error,
    },
}

impl crate::outcome::Diagnose for AdoptError {
    fn exit(&self) -> crate::outcome::Exit {
        use crate::outcome::Exit;
        match self {
            AdoptError::OtherRelease { .. }
            | AdoptError::ManyReleases { .. }
            | AdoptError::NothingShared { .. }
            | AdoptError::Usage { .. } => Exit::Usage,
            _ => Exit::Failed,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            AdoptError::Foreign { command, found, .. } => Some(foreign_hint(command, found)),
            AdoptError::OtherRelease { found, .. } => Some(format!(
                "take over `{found}` with `todo-deploy adopt --from-helm {found}`, or deploy into another namespace (`--namespace`)"
            )),
            AdoptError::ManyReleases { .. } => Some(
                "take one release over at a time into a namespace of its own, or `helm uninstall` the one you no longer need"
                    .to_owned(),
            ),
            AdoptError::NothingShared { release, .. } => Some(format!(
                "`todo-deploy up` installs beside it; `helm uninstall {release}` then removes the old release"
            )),
            AdoptError::Usage { fix, .. } => Some((*fix).to_owned()),
            AdoptError::EndpointsStuck { service, .. } => Some(format!(
                "`kubectl get endpoints {service}` shows them; is the endpoints controller running? Run the same command again once they moved"
            )),
            AdoptError::TimedOut { .. } => Some(
                "`todo-deploy status` and `kubectl get all` show where it stands; the same command can run again".to_owned(),
            ),
            AdoptError::Api { .. } | AdoptError::Watch { .. } => None,
        }
    }
}

fn foreign_hint(command: &str, found: &[Found]) -> String {
    let helm = found.iter().any(|f| matches!(f.owner, Owner::Helm { .. }));
    let first = format!("`{command}` takes them over without downtime");
    match helm {
        true => format!(
            "{first}; `{command} --values-only` first prints the release's settings as a values file (see \"Coming from the Helm chart\" in the README)"
        ),
        false => format!("{first}: their fields become todo-deploy's"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Diagnose;
    use crate::render::{Kind, ObjectKey};

    #[test]
    fn the_stop_lists_what_was_found_and_the_command_that_takes_it_over() {
        let error = AdoptError::Foreign {
            namespace: "todo".into(),
            found: vec![
                Found {
                    key: ObjectKey::new(Kind::Service, "backend"),
                    owner: Owner::Helm {
                        release: Some("todo-app".into()),
                    },
                },
                Found {
                    key: ObjectKey::new(Kind::ConfigMap, "todo-config"),
                    owner: Owner::KubectlApply,
                },
            ],
            command: "todo-deploy adopt --from-helm todo-app".into(),
        };
        let text = error.to_string();
        assert!(text.contains("nothing was changed"), "{text}");
        assert!(
            text.contains("\n  Service/backend: Helm release `todo-app`"),
            "{text}"
        );
        assert!(
            text.contains("\n  ConfigMap/todo-config: made by `kubectl apply`"),
            "{text}"
        );
        let hint = error.hint().unwrap_or_default();
        assert!(
            hint.starts_with(
                "`todo-deploy adopt --from-helm todo-app` takes them over without downtime"
            ),
            "{hint}"
        );
        assert_eq!(error.exit(), crate::outcome::Exit::Failed);
    }
}
