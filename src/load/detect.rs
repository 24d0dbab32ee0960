//! Which loader a run uses: the one configured (`cluster.loader`, `--loader`), or for `auto` the
//! one the kube context's name gives away. Pure: the only outside fact, whether a name is a
//! Minikube profile, is passed in.

use std::path::PathBuf;

use crate::config::LoaderKind;
use crate::plan::ClusterTarget;

use super::error::LoadError;

/// Where containerd listens on a kubeadm node, when `cluster.containerdSocket` is not set.
pub const DEFAULT_CONTAINERD_SOCKET: &str = "/run/containerd/containerd.sock";

/// Contexts of clusters that run on the local Docker engine and see its images.
const SHARED_DAEMON_CONTEXTS: [&str; 4] = [
    "docker-desktop",
    "docker-for-desktop",
    "rancher-desktop",
    "orbstack",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    Minikube {
        profile: String,
    },
    Kind {
        cluster: String,
    },
    K3d {
        cluster: String,
    },
    Containerd {
        socket: PathBuf,
    },
    /// The cluster uses the local Docker engine: nothing to load.
    SharedDaemon,
    Registry {
        registry: String,
    },
    None,
}

/// The loader for `target` on the kube context `context`, and why, for `-v`.
pub fn choose(
    target: &ClusterTarget,
    context: &str,
    is_minikube_profile: &dyn Fn(&str) -> bool,
) -> Result<(Choice, String), LoadError> {
    let configured = |what: String| format!("{what} (loader `{}`)", target.loader.as_str());
    let profile = || {
        target
            .minikube_profile
            .clone()
            .unwrap_or_else(|| context.to_owned())
    };
    let chosen = match target.loader {
        LoaderKind::Auto => return detect(target, context, is_minikube_profile),
        LoaderKind::Minikube => {
            let profile = profile();
            let why = configured(format!("Minikube profile `{profile}`"));
            (Choice::Minikube { profile }, why)
        }
        LoaderKind::Kind => {
            let cluster = context.strip_prefix("kind-").unwrap_or(context).to_owned();
            let why = configured(format!("kind cluster `{cluster}`"));
            (Choice::Kind { cluster }, why)
        }
        LoaderKind::K3d => {
            let cluster = context.strip_prefix("k3d-").unwrap_or(context).to_owned();
            let why = configured(format!("k3d cluster `{cluster}`"));
            (Choice::K3d { cluster }, why)
        }
        LoaderKind::Containerd => {
            let socket = target
                .containerd_socket
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_CONTAINERD_SOCKET));
            let why = configured(format!("containerd at `{}`", socket.display()));
            (Choice::Containerd { socket }, why)
        }
        LoaderKind::Docker => (
            Choice::SharedDaemon,
            configured("the cluster uses the local Docker engine".to_owned()),
        ),
        LoaderKind::Registry => {
            let registry = target.registry.clone().ok_or(LoadError::NoRegistry)?;
            let why = configured(format!("registry `{registry}`"));
            (Choice::Registry { registry }, why)
        }
        LoaderKind::None => (Choice::None, configured("images are not loaded".to_owned())),
    };
    Ok(chosen)
}

fn detect(
    target: &ClusterTarget,
    context: &str,
    is_minikube_profile: &dyn Fn(&str) -> bool,
) -> Result<(Choice, String), LoadError> {
    if let Some(profile) = &target.minikube_profile {
        let why = format!("`cluster.minikubeProfile` is `{profile}`");
        return Ok((
            Choice::Minikube {
                profile: profile.clone(),
            },
            why,
        ));
    }
    let about = |what: &str| format!("the context `{context}` is {what}");
    if context == "minikube" {
        let why = about("Minikube's default profile");
        return Ok((
            Choice::Minikube {
                profile: context.to_owned(),
            },
            why,
        ));
    }
    if let Some(cluster) = context.strip_prefix("kind-").filter(|c| !c.is_empty()) {
        let why = about(&format!("kind cluster `{cluster}`"));
        return Ok((
            Choice::Kind {
                cluster: cluster.to_owned(),
            },
            why,
        ));
    }
    if let Some(cluster) = context.strip_prefix("k3d-").filter(|c| !c.is_empty()) {
        let why = about(&format!("k3d cluster `{cluster}`"));
        return Ok((
            Choice::K3d {
                cluster: cluster.to_owned(),
            },
            why,
        ));
    }
    if SHARED_DAEMON_CONTEXTS.contains(&context) {
        let why = about("a cluster on the local Docker engine");
        return Ok((Choice::SharedDaemon, why));
    }
    if is_minikube_profile(context) {
        let why = about("a Minikube profile");
        return Ok((
            Choice::Minikube {
                profile: context.to_owned(),
            },
            why,
        ));
    }
    Err(LoadError::UnknownContext {
        context: context.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(loader: LoaderKind) -> ClusterTarget {
        ClusterTarget::with_loader(loader)
    }

    fn auto(context: &str) -> Result<Choice, LoadError> {
        let profiles = |name: &str| name == "dev";
        choose(&target(LoaderKind::Auto), context, &profiles).map(|(choice, _)| choice)
    }

    #[test]
    fn minikube_contexts() {
        assert_eq!(
            auto("minikube").unwrap(),
            Choice::Minikube {
                profile: "minikube".to_owned()
            }
        );
        assert_eq!(
            auto("dev").unwrap(),
            Choice::Minikube {
                profile: "dev".to_owned()
            },
            "a context named after an existing profile"
        );
        let mut configured = target(LoaderKind::Auto);
        configured.minikube_profile = Some("work".to_owned());
        let (choice, why) = choose(&configured, "some-context", &|_| false).unwrap();
        assert_eq!(
            choice,
            Choice::Minikube {
                profile: "work".to_owned()
            }
        );
        assert!(why.contains("cluster.minikubeProfile"), "{why}");
    }

    #[test]
    fn kind_and_k3d_contexts_name_their_cluster() {
        assert_eq!(
            auto("kind-x").unwrap(),
            Choice::Kind {
                cluster: "x".to_owned()
            }
        );
        assert_eq!(
            auto("kind-kind").unwrap(),
            Choice::Kind {
                cluster: "kind".to_owned()
            }
        );
        assert_eq!(
            auto("k3d-x").unwrap(),
            Choice::K3d {
                cluster: "x".to_owned()
            }
        );
    }

    #[test]
    fn desktop_clusters_share_the_local_engine() {
        for context in ["docker-desktop", "rancher-desktop", "orbstack"] {
            assert_eq!(auto(context).unwrap(), Choice::SharedDaemon, "{context}");
        }
    }

    #[test]
    fn an_unknown_context_lists_the_choices() {
        for context in ["prod-eks", "kind-", ""] {
            let error = auto(context).unwrap_err();
            assert_eq!(
                error.to_string(),
                format!(
                    "cannot tell how to load images into the cluster of the kube context `{context}`"
                )
            );
            let hint = crate::outcome::Diagnose::hint(&error).unwrap();
            for loader in [
                "`minikube`",
                "`kind`",
                "`k3d`",
                "`containerd`",
                "`docker`",
                "`registry`",
                "`none`",
                "--loader",
            ] {
                assert!(hint.contains(loader), "{loader} in {hint}");
            }
        }
    }

    #[test]
    fn a_configured_loader_wins_over_the_context() {
        let (choice, why) = choose(&target(LoaderKind::Kind), "kind-x", &|_| false).unwrap();
        assert_eq!(
            choice,
            Choice::Kind {
                cluster: "x".to_owned()
            }
        );
        assert!(why.contains("loader `kind`"), "{why}");
        let (choice, _) = choose(&target(LoaderKind::Kind), "my-cluster", &|_| false).unwrap();
        assert_eq!(
            choice,
            Choice::Kind {
                cluster: "my-cluster".to_owned()
            }
        );
        let (choice, _) = choose(&target(LoaderKind::None), "kind-x", &|_| false).unwrap();
        assert_eq!(choice, Choice::None);
        let (choice, _) = choose(&target(LoaderKind::Minikube), "prod", &|_| false).unwrap();
        assert_eq!(
            choice,
            Choice::Minikube {
                profile: "prod".to_owned()
            }
        );
        let (choice, _) = choose(&target(LoaderKind::Containerd), "k3s", &|_| false).unwrap();
        assert_eq!(
            choice,
            Choice::Containerd {
                socket: PathBuf::from(DEFAULT_CONTAINERD_SOCKET)
            }
        );
        assert!(matches!(
            choose(&target(LoaderKind::Registry), "eks", &|_| false),
            Err(LoadError::NoRegistry)
        ));
    }
}
