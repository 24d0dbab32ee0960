//! The clusters whose nodes are containers (Minikube, kind, k3d), as messages and hints name
//! them.

use std::fmt;

/// A cluster whose nodes are containers, for messages and hints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cluster {
    Minikube { profile: String },
    Kind { name: String },
    K3d { name: String },
}

impl fmt::Display for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cluster::Minikube { profile } => write!(f, "Minikube profile `{profile}`"),
            Cluster::Kind { name } => write!(f, "kind cluster `{name}`"),
            Cluster::K3d { name } => write!(f, "k3d cluster `{name}`"),
        }
    }
}

impl Cluster {
    /// How to see and start it.
    pub fn start_hint(&self) -> String {
        match self {
            Cluster::Minikube { profile } if profile == "minikube" => {
                "`minikube status` checks; `minikube start` starts it".to_owned()
            }
            Cluster::Minikube { profile } => {
                format!(
                    "`minikube status -p {profile}` checks; `minikube start -p {profile}` starts it"
                )
            }
            Cluster::Kind { name } => format!(
                "`kind get clusters` lists the clusters; `kind create cluster --name {name}` creates it"
            ),
            Cluster::K3d { name } => format!(
                "`k3d cluster list` lists the clusters; `k3d cluster start {name}` starts it"
            ),
        }
    }
}
