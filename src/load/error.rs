//! How loading goes wrong, and what the user can do about it.

use std::path::PathBuf;

use crate::docker::DockerError;

use super::cluster::Cluster;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot tell how to load images into the cluster of the kube context `{context}`")]
    UnknownContext { context: String },
    #[error("cannot read the Minikube profile `{profile}` at `{}`", path.display())]
    MinikubeProfile {
        profile: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot understand the Minikube profile at `{}`", path.display())]
    MinikubeConfig {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "cannot load images into Minikube profile `{profile}`: {reason} (driver `{driver}`, container runtime `{runtime}`)"
    )]
    MinikubeUnsupported {
        profile: String,
        driver: String,
        runtime: String,
        reason: &'static str,
    },
    #[error("there is no node container `{node}` for {cluster}")]
    NodeMissing { node: String, cluster: Cluster },
    #[error("no node containers of {cluster} (containers labelled `{label}`)")]
    NoNodes { cluster: Cluster, label: String },
    #[error("the node container `{node}` of {cluster} is {state}, not running")]
    NodeStopped {
        node: String,
        cluster: Cluster,
        state: String,
    },
    #[error("cannot reach the engine that runs the node containers of {cluster}")]
    NodeEngine {
        cluster: Cluster,
        #[source]
        source: Box<DockerError>,
    },
    #[error("the Docker engine failed to {action}")]
    Engine {
        action: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("the tag `{image}` names image `{found}` now, not the `{expected}` that was built")]
    Retagged {
        image: String,
        expected: String,
        found: String,
    },
    #[error("the engine describes `{image}` in a way this tool cannot read: {what}")]
    Unreadable { image: String, what: String },
    #[error("cannot send only the missing layers of `{image}`: {reason}")]
    Archive { image: String, reason: String },
    #[error("cannot read what {node} holds: {reason}")]
    Listing { node: String, reason: String },
    #[error("reading `{image}` from the Docker engine broke off")]
    Export {
        image: String,
        #[source]
        source: bollard::errors::Error,
    },
    /// A command in a node (or the local `ctr`) ran and failed.
    #[error("`{command}` failed on {node} with exit code {code}{}", output_lines(.output))]
    Runtime {
        node: String,
        command: String,
        code: i64,
        output: String,
    },
    #[error("sending `{image}` to {node} broke off")]
    Send {
        image: String,
        node: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{node} does not report image `{expected}` for `{image}` after importing it{}", found_text(.found))]
    NotImported {
        node: String,
        image: String,
        expected: String,
        found: Option<String>,
    },
    #[error("cannot run `{program}`: it is not installed or not on `PATH`")]
    NoProgram { program: String },
    #[error("cannot run `{program}`")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("there is no containerd socket at `{}`", path.display())]
    NoSocket { path: PathBuf },
    #[error("`registry` is the loader, but no registry is set")]
    NoRegistry,
    #[error("pushing `{image}` failed: {refusal}")]
    Push {
        image: String,
        refusal: super::refusal::Refusal,
    },
    #[error("cannot read the Docker configuration `{}`: {message}", path.display())]
    DockerConfig { path: PathBuf, message: String },
    #[error("the credential helper `{program}` gave no login for `{registry}`: {message}")]
    CredentialHelper {
        program: String,
        registry: String,
        message: String,
    },
    #[error(
        "the cluster publishes a local registry (ConfigMap `kube-public/local-registry-hosting`), but it cannot be read: {message}"
    )]
    Hosting { message: String },
}

fn output_lines(output: &str) -> String {
    let output = output.trim();
    if output.is_empty() {
        return " and printed nothing".to_owned();
    }
    let mut text = ":".to_owned();
    for line in output.lines() {
        text.push_str("\n  ");
        text.push_str(line);
    }
    text
}

fn found_text(found: &Option<String>) -> String {
    match found {
        Some(id) => format!(" (it has `{id}`)"),
        None => " (it has none)".to_owned(),
    }
}

/// The loaders to choose from, for messages.
pub const CHOICES: &str = "`minikube` (`cluster.minikubeProfile`), `kind`, `k3d`, `containerd` (k3s, microk8s, kubeadm: `cluster.containerdSocket`), `docker` (the cluster uses this Docker engine), `registry` (`cluster.registry`) or `none`";

use crate::outcome::Diagnose;

impl LoadError {
    /// The message and every cause under it, for a warning line.
    pub fn with_causes(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }
}

impl Diagnose for LoadError {
    /// What to do about it.
    fn hint(&self) -> Option<String> {
        let hint = match self {
            LoadError::UnknownContext { .. } => format!(
                "choose a loader with `--loader` or `cluster.loader`: {CHOICES}"
            ),
            LoadError::MinikubeProfile { profile, .. } => format!(
                "is `{profile}` a Minikube profile? `minikube profile list` shows them; set `cluster.minikubeProfile` when it is not the context's name, or `MINIKUBE_HOME` when Minikube keeps its files elsewhere"
            ),
            LoadError::MinikubeConfig { .. } => {
                "was the profile written by another Minikube version? `minikube start` rewrites it".to_owned()
            }
            LoadError::MinikubeUnsupported { .. } => {
                "start Minikube with the docker or podman driver (`minikube start --driver=docker`) or the docker runtime (`--container-runtime=docker`), or push to a registry (`minikube addons enable registry`, then `--loader registry`)".to_owned()
            }
            LoadError::NodeMissing { cluster, .. } | LoadError::NoNodes { cluster, .. } => {
                format!("is the cluster running? {}", cluster.start_hint())
            }
            LoadError::NodeStopped { node, cluster, .. } => format!(
                "start the cluster again: {} (or `docker start {node}`)",
                cluster.start_hint()
            ),
            LoadError::NodeEngine { source, .. } => format!(
                "start Podman's API socket: `sudo systemctl start podman.socket` (rootless Podman: `systemctl --user start podman.socket`), or set `CONTAINER_HOST`; {}",
                source.hint().unwrap_or_default()
            ),
            LoadError::Engine { .. } | LoadError::Export { .. } => {
                "is Docker still running? `docker info` checks".to_owned()
            }
            LoadError::Unreadable { image, .. } => format!(
                "`docker image inspect {image}` shows what the engine says; rebuilding it (`--no-cache`) gives it a fresh description"
            ),
            LoadError::Archive { image, .. } => format!(
                "when only the missing layers cannot be sent, the whole image is; run again, and if it persists, `docker save {image} | tar -t` shows what the engine exports"
            ),
            LoadError::Listing { node, .. } => format!(
                "is the node healthy (`kubectl get nodes`)? Its runtime's listing should work by hand on {node}: `ctr -n k8s.io images ls` (containerd) or `docker images` (Docker)"
            ),
            LoadError::Retagged { image, .. } => format!(
                "something else tagged `{image}` while this run was loading it; run again"
            ),
            LoadError::Runtime { output, .. } if output.contains("permission denied") => {
                "the user may not use the runtime's socket: run with `sudo`, or give your user access to it".to_owned()
            }
            LoadError::Runtime { output, .. } if output.contains("no space left") => {
                "the node's disk is full: remove unused images (`docker exec NODE crictl rmi --prune`) or give the cluster more disk".to_owned()
            }
            LoadError::Runtime { .. } => {
                "the node's container runtime refused the image; its output is above. Is the node healthy (`kubectl get nodes`)?".to_owned()
            }
            LoadError::Send { .. } => {
                "the node stopped reading the image: is it still running (`docker ps`)? Run again".to_owned()
            }
            LoadError::NotImported { .. } => {
                "the node's runtime kept another image under this tag; remove it there (`crictl rmi IMAGE` in the node) and run again, or deploy a new tag (`--tag`)".to_owned()
            }
            LoadError::NoProgram { program } => format!(
                "install containerd's `{program}` (Debian and Ubuntu: `sudo apt-get install containerd`); k3s ships it as `k3s ctr`, microk8s as `microk8s ctr`"
            ),
            LoadError::Spawn { .. } => "check the permissions of `ctr`".to_owned(),
            LoadError::NoSocket { .. } => {
                "is containerd running? Set `cluster.containerdSocket`: k3s uses `/run/k3s/containerd/containerd.sock`, microk8s `/var/snap/microk8s/common/run/containerd.sock`, kubeadm `/run/containerd/containerd.sock`".to_owned()
            }
            LoadError::NoRegistry => {
                "set `cluster.registry`, e.g. `--set cluster.registry=localhost:5000`".to_owned()
            }
            LoadError::Push { refusal, .. } => refusal.hint(),
            LoadError::DockerConfig { .. } => {
                "fix the JSON, or log in again with `docker login REGISTRY`, which rewrites it".to_owned()
            }
            LoadError::CredentialHelper { program, registry, .. } => format!(
                "install `{program}` or put it on `PATH`, or log in with `docker login {registry}`; `echo {registry} | {program} get` shows what it says"
            ),
            LoadError::Hosting { .. } => {
                "fix the ConfigMap (KEP-1755: `localRegistryHosting.v1` with `host` and `hostFromContainerRuntime`), or choose a loader with `--loader`".to_owned()
            }
        };
        Some(hint)
    }
}
