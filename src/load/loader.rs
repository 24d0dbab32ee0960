//! How a run gets images to the cluster, as [`super::resolve`] decided: the nodes to stream into,
//! an engine to build in, a registry, or nothing to do.

use std::fmt;
use std::path::PathBuf;

use crate::docker::Endpoint;

use super::nodes::Node;
use super::registry::Target;

/// How this run gets images to the cluster, resolved by [`resolve`].
pub struct Loader {
    pub(super) strategy: Strategy,
    pub(super) summary: String,
    /// Where what each node holds is remembered between runs (see [`memory`]).
    pub(super) memory: Option<PathBuf>,
}

pub(super) enum Strategy {
    /// Stream into these nodes.
    Nodes(Vec<Node>),
    /// Build in this engine (Minikube's); nothing to load.
    BuildInNode(Endpoint),
    /// The cluster reads the engine the images are built in (a shared engine, or Minikube's
    /// after `minikube docker-env`): nothing to load.
    InEngine,
    /// Loading is off (`--loader none`).
    Nothing,
    /// Push to a registry the nodes pull from.
    Registry(Target),
}

impl fmt::Debug for Loader {
    /// The summary only: the registry's credentials stay out of debug output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loader")
            .field("summary", &self.summary)
            .finish_non_exhaustive()
    }
}

impl Loader {
    /// The engine to build in instead of the local one, when that makes loading unnecessary:
    /// Minikube's, for its docker runtime on one node (what `minikube docker-env` points at).
    /// Connect with [`Endpoint::connect`] and pass that client to `build_all` and [`load_all`].
    pub fn build_engine(&self) -> Option<&Endpoint> {
        match &self.strategy {
            Strategy::BuildInNode(endpoint) => Some(endpoint),
            _ => None,
        }
    }

    /// What this loader does, in a sentence (the `-v` line [`resolve`] sends).
    pub fn summary(&self) -> &str {
        &self.summary
    }

    /// The nodes images are streamed into; empty for the other loaders.
    pub fn nodes(&self) -> Vec<String> {
        match &self.strategy {
            Strategy::Nodes(nodes) => nodes.iter().map(|node| node.name.clone()).collect(),
            _ => Vec::new(),
        }
    }

    /// The registry images are pushed to, for a registry loader.
    pub fn registry(&self) -> Option<&Target> {
        match &self.strategy {
            Strategy::Registry(target) => Some(target),
            _ => None,
        }
    }

    /// Asks every node's runtime for its version (`ctr version` in each node container): what
    /// each node answered, or why it did not. Empty when nothing is streamed into nodes.
    pub async fn probe_nodes(&self) -> Vec<(String, Result<(), String>)> {
        let Strategy::Nodes(nodes) = &self.strategy else {
            return Vec::new();
        };
        let mut answers = Vec::new();
        for node in nodes {
            let command = node.runtime.version_command();
            let answer = match node.place.run(&command).await {
                Ok(finished) if finished.code == 0 => Ok(()),
                Ok(finished) => Err(format!(
                    "`{}` exited with {}: {}",
                    command.join(" "),
                    finished.code,
                    finished.complaint().trim()
                )),
                Err(error) => Err(error.to_string()),
            };
            answers.push((node.describe(), answer));
        }
        answers
    }

    pub(super) fn new(strategy: Strategy, summary: String) -> Loader {
        Loader {
            strategy,
            summary,
            memory: None,
        }
    }
}
