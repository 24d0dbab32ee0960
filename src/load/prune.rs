//! Removing a release's images from where the loader put them (`down --prune-images`): the
//! runtime's remove command in each node, or the engine the images were built in. A reference the
//! node does not hold is not an error: there is simply nothing to remove.

use bollard::Docker;
use bollard::query_parameters::RemoveImageOptionsBuilder;

use super::error::LoadError;
use super::loader::{Loader, Strategy};
use super::names::normalize;
use super::nodes::Node;
use super::registry;
use super::runtime::{Runtime, failed};
use crate::progress::{Event, Events};

/// One reference removed from one place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    pub image: String,
    /// The node container, the containerd socket, or the engine.
    pub place: String,
}

impl Runtime {
    /// The command that drops `reference` from the runtime.
    pub fn remove_command(&self, reference: &str) -> Vec<String> {
        match self {
            Runtime::Containerd { ctr, global, .. } => {
                let mut argv = vec![ctr.clone()];
                argv.extend(global.iter().cloned());
                argv.extend(["images".to_owned(), "rm".to_owned(), normalize(reference)]);
                argv
            }
            // `--force`: the kubelet may not have removed the stopped containers yet.
            Runtime::Docker => ["docker", "image", "rm", "--force", reference]
                .map(String::from)
                .to_vec(),
        }
    }
}

impl Node {
    /// Removes `reference`; `false` if the node did not hold it.
    async fn remove(&self, reference: &str) -> Result<bool, LoadError> {
        let argv = self.runtime.remove_command(reference);
        let finished = self.place.run(&argv).await?;
        if finished.code == 0 {
            return Ok(true);
        }
        let complaint = finished.complaint().to_ascii_lowercase();
        if complaint.contains("not found") || complaint.contains("no such image") {
            return Ok(false);
        }
        Err(failed(&self.describe(), &argv, finished))
    }
}

/// Removes `references` wherever `loader` puts images. `docker` is the engine images were
/// built in: for a cluster that shares it (or Minikube's, built into), that is where they are.
/// A registry keeps its images: removing them there is not this tool's business.
pub async fn remove_images(
    docker: &Docker,
    loader: &Loader,
    references: &[String],
    events: &Events,
) -> Result<Vec<Removed>, LoadError> {
    let mut removed = Vec::new();
    match &loader.strategy {
        Strategy::Nodes(nodes) => {
            for node in nodes {
                for reference in references {
                    if node.remove(reference).await? {
                        removed.push(Removed {
                            image: reference.clone(),
                            place: node.describe(),
                        });
                    }
                }
            }
        }
        Strategy::BuildInNode(_) | Strategy::InEngine => {
            let options = RemoveImageOptionsBuilder::new().force(true).build();
            for reference in references {
                match docker
                    .remove_image(reference, Some(options.clone()), None)
                    .await
                {
                    Ok(_) => removed.push(Removed {
                        image: reference.clone(),
                        place: "the Docker engine".to_owned(),
                    }),
                    Err(bollard::errors::Error::DockerResponseServerError {
                        status_code: 404,
                        ..
                    }) => {}
                    Err(source) => {
                        return Err(LoadError::Engine {
                            action: "remove an image".to_owned(),
                            source,
                        });
                    }
                }
            }
        }
        Strategy::Registry(registry::Target {
            push_to: registry, ..
        }) => events.send(Event::Warning(format!(
            "images pushed to `{registry}` stay there; remove them with the registry's own tools"
        ))),
        Strategy::Nothing => {}
    }
    for item in &removed {
        events.send(Event::Info(format!(
            "image `{}` removed from {}",
            item.image, item.place
        )));
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_runtime_removes_by_the_name_it_stores() {
        assert_eq!(
            Runtime::kind().remove_command("todo-backend:v1"),
            [
                "ctr",
                "--namespace=k8s.io",
                "images",
                "rm",
                "docker.io/library/todo-backend:v1"
            ]
        );
        assert_eq!(
            Runtime::Docker.remove_command("todo-backend:v1"),
            ["docker", "image", "rm", "--force", "todo-backend:v1"]
        );
    }
}
