//! The container runtime inside a node, and the commands that load an image into it and ask
//! whether it has one: `ctr` for containerd (kind, k3d, Minikube's containerd, a local socket),
//! `docker` for Minikube's docker runtime.
//!
//! "Has it" means the image *ID* under the reference, not just the reference: containerd keeps the
//! image's config blob unchanged, and its digest is Docker's image ID, so a tag that was reused
//! for a new build is noticed and loaded again.

use super::error::LoadError;
use super::exec::{Finished, Place};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runtime {
    Containerd {
        /// The program: `ctr`, or a path.
        ctr: String,
        /// Global flags: the namespace, and `--address` for a local socket.
        global: Vec<String>,
        /// Flags of `images import`.
        import: Vec<String>,
    },
    Docker,
}

/// What a node holds under a reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    Absent,
    /// The image IDs (`sha256:…`) found under the reference.
    Present(Vec<String>),
}

impl Presence {
    pub fn has(&self, id: &str) -> bool {
        matches!(self, Presence::Present(ids) if ids.iter().any(|found| found == id))
    }

    /// An ID found, for messages.
    pub fn first(&self) -> Option<String> {
        match self {
            Presence::Present(ids) => ids.first().cloned(),
            Presence::Absent => None,
        }
    }
}

impl Runtime {
    /// containerd in a kind or k3d node: the flags `kind load docker-image` uses.
    pub fn kind() -> Runtime {
        Runtime::Containerd {
            ctr: "ctr".to_owned(),
            global: vec!["--namespace=k8s.io".to_owned()],
            import: ["--all-platforms", "--digests", "--snapshotter=overlayfs"]
                .map(String::from)
                .to_vec(),
        }
    }

    /// containerd in a Minikube node.
    pub fn minikube_containerd() -> Runtime {
        Runtime::Containerd {
            ctr: "ctr".to_owned(),
            global: vec!["-n=k8s.io".to_owned()],
            import: Vec::new(),
        }
    }

    /// containerd on this host, at `socket`, through the program `ctr`.
    pub fn local_containerd(ctr: &str, socket: &std::path::Path) -> Runtime {
        Runtime::Containerd {
            ctr: ctr.to_owned(),
            global: vec![
                "--address".to_owned(),
                socket.display().to_string(),
                "--namespace=k8s.io".to_owned(),
            ],
            import: Vec::new(),
        }
    }

    /// The command that reads an image archive (`docker save`'s format) on stdin.
    pub fn import_command(&self) -> Vec<String> {
        match self {
            Runtime::Containerd {
                ctr,
                global,
                import,
            } => {
                let mut argv = vec![ctr.clone()];
                argv.extend(global.iter().cloned());
                argv.extend(["images".to_owned(), "import".to_owned()]);
                argv.extend(import.iter().cloned());
                argv.push("-".to_owned());
                argv
            }
            Runtime::Docker => vec!["docker".to_owned(), "load".to_owned()],
        }
    }

    /// Which image IDs the node holds under `reference` (`repo:tag` as built).
    pub async fn presence(
        &self,
        place: &Place,
        node: &str,
        reference: &str,
    ) -> Result<Presence, LoadError> {
        match self {
            Runtime::Docker => {
                let argv = [
                    "docker", "image", "inspect", "--format", "{{.Id}}", reference,
                ]
                .map(String::from)
                .to_vec();
                let finished = place.run(&argv).await?;
                if finished.code != 0 {
                    if finished
                        .complaint()
                        .to_ascii_lowercase()
                        .contains("no such image")
                    {
                        return Ok(Presence::Absent);
                    }
                    return Err(failed(node, &argv, finished));
                }
                Ok(Presence::Present(
                    finished
                        .stdout
                        .lines()
                        .map(str::trim)
                        .filter(|line| !line.is_empty())
                        .map(str::to_owned)
                        .collect(),
                ))
            }
            Runtime::Containerd { .. } => {
                let name = normalize(reference);
                let argv = self.ctr(&["images", "ls", &format!("name=={name}")]);
                let finished = place.run(&argv).await?;
                if finished.code != 0 {
                    return Err(failed(node, &argv, finished));
                }
                let Some(digest) = listed_digest(&finished.stdout, &name) else {
                    return Ok(Presence::Absent);
                };
                let mut ids = Vec::new();
                let mut pending = vec![digest];
                // An index names a manifest per platform; one level is all an import makes.
                for _ in 0..2 {
                    let mut next = Vec::new();
                    for digest in pending {
                        let argv = self.ctr(&["content", "get", &digest]);
                        let finished = place.run(&argv).await?;
                        if finished.code != 0 {
                            return Err(failed(node, &argv, finished));
                        }
                        let (config, manifests) = manifest_targets(&finished.stdout);
                        ids.extend(config);
                        next.extend(manifests);
                    }
                    pending = next;
                }
                Ok(if ids.is_empty() {
                    Presence::Absent
                } else {
                    Presence::Present(ids)
                })
            }
        }
    }

    fn ctr(&self, args: &[&str]) -> Vec<String> {
        let Runtime::Containerd { ctr, global, .. } = self else {
            return Vec::new();
        };
        let mut argv = vec![ctr.clone()];
        argv.extend(global.iter().cloned());
        argv.extend(args.iter().map(|arg| (*arg).to_owned()));
        argv
    }
}

/// The error for a command that ran and failed.
pub fn failed(node: &str, argv: &[String], finished: Finished) -> LoadError {
    LoadError::Runtime {
        node: node.to_owned(),
        command: argv.join(" "),
        code: finished.code,
        output: finished.complaint(),
    }
}

/// The full name containerd stores a reference under, as `docker pull` would resolve it:
/// `todo-backend:1` is `docker.io/library/todo-backend:1`, `me/app:1` is `docker.io/me/app:1`,
/// and a first part with a `.` or `:` (or `localhost`) is a registry and stays.
pub fn normalize(reference: &str) -> String {
    let (first, rest) = match reference.split_once('/') {
        Some(parts) => parts,
        None => return format!("docker.io/library/{reference}"),
    };
    if first == "docker.io" && !rest.contains('/') {
        format!("docker.io/library/{rest}")
    } else if first.contains('.') || first.contains(':') || first == "localhost" {
        reference.to_owned()
    } else {
        format!("docker.io/{reference}")
    }
}

/// The digest column of `ctr images ls` for the row of `name`.
fn listed_digest(listing: &str, name: &str) -> Option<String> {
    listing.lines().skip(1).find_map(|line| {
        let mut columns = line.split_whitespace();
        let reference = columns.next()?;
        let digest = columns.nth(1)?;
        (reference == name && digest.starts_with("sha256:")).then(|| digest.to_owned())
    })
}

/// From a manifest, its config digest; from an index, the digests of its manifests.
fn manifest_targets(json: &str) -> (Option<String>, Vec<String>) {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(json) else {
        return (None, Vec::new());
    };
    let config = value["config"]["digest"].as_str().map(str::to_owned);
    let manifests = value["manifests"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|m| m["digest"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    (config, manifests)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_normalized_like_containerd_does() {
        assert_eq!(
            normalize("todo-backend:1"),
            "docker.io/library/todo-backend:1"
        );
        assert_eq!(normalize("me/app:1"), "docker.io/me/app:1");
        assert_eq!(normalize("docker.io/app:1"), "docker.io/library/app:1");
        assert_eq!(normalize("localhost/app:1"), "localhost/app:1");
        assert_eq!(normalize("localhost:5000/app:1"), "localhost:5000/app:1");
        assert_eq!(normalize("ghcr.io/me/app:1"), "ghcr.io/me/app:1");
        assert_eq!(
            normalize("todo-deploy-e2e/x-backend:v1"),
            "docker.io/todo-deploy-e2e/x-backend:v1"
        );
    }

    #[test]
    fn the_digest_of_the_named_row_is_read_from_ctr_images_ls() {
        let listing = "\
REF                              TYPE                                                 DIGEST                                                                  SIZE    PLATFORMS   LABELS
docker.io/library/other:1        application/vnd.oci.image.manifest.v1+json           sha256:1111111111111111111111111111111111111111111111111111111111111111 1.0 MiB linux/amd64 io.cri-containerd.image=managed
docker.io/library/todo:1         application/vnd.docker.distribution.manifest.v2+json sha256:2222222222222222222222222222222222222222222222222222222222222222 2.0 MiB linux/amd64 io.cri-containerd.image=managed
";
        assert_eq!(
            listed_digest(listing, "docker.io/library/todo:1").as_deref(),
            Some("sha256:2222222222222222222222222222222222222222222222222222222222222222")
        );
        assert_eq!(listed_digest(listing, "docker.io/library/todo:2"), None);
        assert_eq!(
            listed_digest("REF TYPE DIGEST SIZE PLATFORMS LABELS\n", "x"),
            None
        );
    }

    #[test]
    fn manifests_give_their_config_and_indexes_their_manifests() {
        let manifest = r#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:aaa","size":1},"layers":[]}"#;
        assert_eq!(
            manifest_targets(manifest),
            (Some("sha256:aaa".to_owned()), vec![])
        );
        let index =
            r#"{"schemaVersion":2,"manifests":[{"digest":"sha256:m1"},{"digest":"sha256:m2"}]}"#;
        assert_eq!(
            manifest_targets(index),
            (None, vec!["sha256:m1".to_owned(), "sha256:m2".to_owned()])
        );
        assert_eq!(manifest_targets("not json"), (None, vec![]));
    }

    #[test]
    fn import_commands() {
        assert_eq!(
            Runtime::kind().import_command().join(" "),
            "ctr --namespace=k8s.io images import --all-platforms --digests --snapshotter=overlayfs -"
        );
        assert_eq!(
            Runtime::minikube_containerd().import_command().join(" "),
            "ctr -n=k8s.io images import -"
        );
        assert_eq!(
            Runtime::local_containerd("ctr", std::path::Path::new("/run/k3s/c.sock"))
                .import_command()
                .join(" "),
            "ctr --address /run/k3s/c.sock --namespace=k8s.io images import -"
        );
        assert_eq!(Runtime::Docker.import_command().join(" "), "docker load");
    }
}
