//! The nodes images go to: node containers found by name (Minikube) or by label (kind, k3d),
//! each checked to be running, or this host's containerd.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bollard::Docker;
use bollard::query_parameters::ListContainersOptionsBuilder;

use super::cluster::Cluster;
use super::digest::ImageId;
use super::error::LoadError;
use super::exec::{Finished, Place};
use super::holdings::Holdings;
use super::runtime::Runtime;

/// Where one copy of an image goes.
#[derive(Debug, Clone)]
pub struct Node {
    /// The container's name, or the containerd socket's path.
    pub name: String,
    pub place: Place,
    pub runtime: Runtime,
    /// The node container's ID: it changes when the node is recreated. `None` on this host.
    pub instance: Option<String>,
    /// What the node was last seen holding by this run.
    pub(super) seen: Seen,
}

/// What a node was last seen holding: every listing, import and tag ends with a listing, and
/// the last is kept, so that images loaded one at a time (each as soon as it is built) ask the
/// node once per run and start from what the import before them left.
#[derive(Debug, Clone, Default)]
pub struct Seen(Arc<Mutex<Option<Holdings>>>);

impl Seen {
    fn keep(&self, holdings: &Holdings) {
        if let Ok(mut seen) = self.0.lock() {
            *seen = Some(holdings.clone());
        }
    }

    fn last(&self) -> Option<Holdings> {
        self.0.lock().ok().and_then(|seen| seen.clone())
    }
}

impl Node {
    /// For messages: ``node `kind-control-plane` `` or ``containerd at `/run/…/containerd.sock` ``.
    pub fn describe(&self) -> String {
        match self.place {
            Place::Container { .. } => format!("node `{}`", self.name),
            Place::Host => format!("containerd at `{}`", self.name),
        }
    }

    /// What the node holds: one listing.
    pub async fn holdings(&self) -> Result<Holdings, LoadError> {
        let finished = self.place.run(&self.runtime.listing_command()).await?;
        self.listed(&self.runtime.listing_description(), finished)
    }

    /// What the node was last seen holding by this run, else what it holds (one listing).
    pub async fn holdings_seen(&self) -> Result<Holdings, LoadError> {
        match self.seen.last() {
            Some(holdings) => Ok(holdings),
            None => self.holdings().await,
        }
    }

    /// Names the image `id`, which the node holds as `from`, also `to`; what the node holds
    /// then.
    pub async fn tag(&self, from: &str, id: &ImageId, to: &str) -> Result<Holdings, LoadError> {
        let finished = self
            .place
            .run(&self.runtime.tag_script(from, id, to))
            .await?;
        let command = self.runtime.tag_description(from, id, to);
        self.listed(&command, finished)
    }

    /// What the node holds, from the output of a script that ends with the listing; `command`
    /// says what the script did, for the error when it failed.
    pub fn listed(&self, command: &str, finished: Finished) -> Result<Holdings, LoadError> {
        if finished.code != 0 {
            return Err(LoadError::Runtime {
                node: self.describe(),
                command: command.to_owned(),
                code: finished.code,
                output: finished.complaint(),
            });
        }
        let holdings =
            self.runtime
                .holdings(&finished.stdout)
                .map_err(|reason| LoadError::Listing {
                    node: self.describe(),
                    reason,
                })?;
        self.seen.keep(&holdings);
        Ok(holdings)
    }
}

/// The node containers of a kind or k3d cluster: every container with the cluster's label,
/// except the load balancers, registries and tools containers the same tools make.
pub async fn labelled(
    docker: &Docker,
    cluster: &Cluster,
    runtime: &Runtime,
) -> Result<Vec<Node>, LoadError> {
    let (label, role_label, roles): (String, &str, &[&str]) = match cluster {
        Cluster::Kind { name } => (
            format!("io.x-k8s.kind.cluster={name}"),
            "io.x-k8s.kind.role",
            &["control-plane", "worker"],
        ),
        Cluster::K3d { name } => (
            format!("k3d.cluster={name}"),
            "k3d.role",
            &["server", "agent"],
        ),
        Cluster::Minikube { .. } => return Ok(Vec::new()),
    };
    let filters = HashMap::from([("label".to_owned(), vec![label.clone()])]);
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let containers = docker
        .list_containers(Some(options))
        .await
        .map_err(|source| LoadError::Engine {
            action: format!("list the containers labelled `{label}`"),
            source,
        })?;
    let mut nodes = Vec::new();
    for container in containers {
        let labels = container.labels.unwrap_or_default();
        // A node without a role label is an older tool's node; keep it.
        if labels
            .get(role_label)
            .is_some_and(|role| !roles.contains(&role.as_str()))
        {
            continue;
        }
        let Some(name) = container
            .names
            .unwrap_or_default()
            .first()
            .map(|name| name.trim_start_matches('/').to_owned())
        else {
            continue;
        };
        let state = container.state.map(|s| s.to_string()).unwrap_or_default();
        if state != "running" {
            return Err(LoadError::NodeStopped {
                node: name,
                cluster: cluster.clone(),
                state: if state.is_empty() {
                    "stopped".to_owned()
                } else {
                    state
                },
            });
        }
        nodes.push(Node {
            place: Place::Container {
                docker: docker.clone(),
                name: name.clone(),
            },
            name,
            runtime: runtime.clone(),
            instance: container.id,
            seen: Seen::default(),
        });
    }
    if nodes.is_empty() {
        return Err(LoadError::NoNodes {
            cluster: cluster.clone(),
            label,
        });
    }
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(nodes)
}

/// Node containers by name (Minikube's: the profile, then `<profile>-m02`…), each running.
pub async fn named(
    docker: &Docker,
    cluster: &Cluster,
    names: &[String],
    runtime: &Runtime,
) -> Result<Vec<Node>, LoadError> {
    let mut nodes = Vec::new();
    for name in names {
        let inspected = running(docker, cluster, name).await?;
        nodes.push(Node {
            name: name.clone(),
            place: Place::Container {
                docker: docker.clone(),
                name: name.clone(),
            },
            runtime: runtime.clone(),
            instance: inspected.id,
            seen: Seen::default(),
        });
    }
    Ok(nodes)
}

/// Checks that the container `name` exists and runs; returns what `inspect` says of it.
pub async fn running(
    docker: &Docker,
    cluster: &Cluster,
    name: &str,
) -> Result<bollard::models::ContainerInspectResponse, LoadError> {
    let inspected = match docker.inspect_container(name, None).await {
        Ok(inspected) => inspected,
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => {
            return Err(LoadError::NodeMissing {
                node: name.to_owned(),
                cluster: cluster.clone(),
            });
        }
        Err(source) => {
            return Err(LoadError::Engine {
                action: format!("inspect the node container `{name}`"),
                source,
            });
        }
    };
    let state = inspected.state.clone().unwrap_or_default();
    if state.running != Some(true) {
        return Err(LoadError::NodeStopped {
            node: name.to_owned(),
            cluster: cluster.clone(),
            state: state
                .status
                .map(|s| s.to_string())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "stopped".to_owned()),
        });
    }
    Ok(inspected)
}
