//! Minikube: where its files are (`$MINIKUBE_HOME`, else `~/.minikube`), what a profile's
//! `config.json` says (driver, container runtime, nodes), and which way images get in:
//!
//! - the docker runtime on one node: build straight into the node's Docker engine (what
//!   `minikube docker-env` points at), so nothing is loaded at all. Minikube's documentation
//!   rates this the fastest way: only the build context travels, never the image, and the
//!   node's own layer cache serves the next build;
//! - otherwise, with the docker or podman driver: stream the image into every node container;
//! - the `none` driver runs the cluster on this host, beside its Docker engine or containerd.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::error::LoadError;

/// What todo-deploy needs of a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub name: String,
    /// `docker`, `podman`, `kvm2`, `none`…
    pub driver: String,
    /// `docker`, `containerd`, `crio`.
    pub runtime: String,
    pub nodes: Vec<ProfileNode>,
    /// Minikube's directory (`~/.minikube`): `certs/` holds the client certificates for the
    /// node's Docker engine.
    pub home: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileNode {
    /// The node's container (or machine) name: the profile, then `<profile>-m02`…
    pub container: String,
    pub ip: String,
}

/// How images reach a profile's nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Build in the node's Docker engine; nothing to load.
    DockerEnv,
    /// Stream into the node containers, which run `runtime` (`docker` or `containerd`).
    Containers {
        runtime: String,
    },
    /// The cluster runs on this host beside the local Docker engine (driver `none`).
    Shared,
    /// The cluster runs on this host with containerd (driver `none`).
    LocalContainerd,
    Unsupported(&'static str),
}

/// Minikube's directory, as minikube finds it: `$MINIKUBE_HOME` when it is the `.minikube`
/// directory itself, else its `.minikube` child when that exists, else `$MINIKUBE_HOME` as it
/// is; without the variable, `~/.minikube`.
pub fn home(env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    match env("MINIKUBE_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.file_name().is_some_and(|name| name == ".minikube") {
                return dir;
            }
            let legacy = dir.join(".minikube");
            if legacy.exists() { legacy } else { dir }
        }
        None => env("HOME")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join(".minikube"),
    }
}

/// The `config.json` of `profile` under Minikube's directory `home`.
pub fn config_path(home: &Path, profile: &str) -> PathBuf {
    home.join("profiles").join(profile).join("config.json")
}

/// Whether `name` is a Minikube profile.
pub fn is_profile(home: &Path, name: &str) -> bool {
    !name.is_empty() && !name.contains('/') && config_path(home, name).is_file()
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct ConfigFile {
    name: String,
    driver: String,
    kubernetes_config: KubernetesConfig,
    nodes: Vec<NodeConfig>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct KubernetesConfig {
    container_runtime: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct NodeConfig {
    name: String,
    #[serde(rename = "IP")]
    ip: String,
}

/// Reads the profile `name`.
pub fn read(home: &Path, name: &str) -> Result<Profile, LoadError> {
    let path = config_path(home, name);
    let text = std::fs::read_to_string(&path).map_err(|source| LoadError::MinikubeProfile {
        profile: name.to_owned(),
        path: path.clone(),
        source,
    })?;
    parse(&text, name, home).map_err(|source| LoadError::MinikubeConfig { path, source })
}

fn parse(text: &str, name: &str, home: &Path) -> Result<Profile, serde_json::Error> {
    let file: ConfigFile = serde_json::from_str(text)?;
    let name = if file.name.is_empty() {
        name.to_owned()
    } else {
        file.name
    };
    let mut nodes: Vec<ProfileNode> = file
        .nodes
        .into_iter()
        .map(|node| ProfileNode {
            container: if node.name.is_empty() {
                name.clone()
            } else {
                format!("{name}-{}", node.name)
            },
            ip: node.ip,
        })
        .collect();
    if nodes.is_empty() {
        nodes.push(ProfileNode {
            container: name.clone(),
            ip: String::new(),
        });
    }
    Ok(Profile {
        name,
        driver: file.driver.to_ascii_lowercase(),
        runtime: match file.kubernetes_config.container_runtime.as_str() {
            "" => "docker".to_owned(),
            runtime => runtime.to_ascii_lowercase(),
        },
        nodes,
        home: home.to_path_buf(),
    })
}

impl Profile {
    /// Whether the nodes are containers of a local engine.
    pub fn in_containers(&self) -> bool {
        matches!(self.driver.as_str(), "docker" | "podman")
    }

    /// The way images reach this profile's nodes.
    pub fn route(&self) -> Route {
        let on_host = self.driver == "none";
        match self.runtime.as_str() {
            "docker" if on_host => Route::Shared,
            "docker" if self.nodes.len() == 1 => Route::DockerEnv,
            "docker" | "containerd" if self.in_containers() => Route::Containers {
                runtime: self.runtime.clone(),
            },
            "docker" => Route::Unsupported(
                "a cluster of several virtual machines has no one Docker engine to build in",
            ),
            "containerd" if on_host => Route::LocalContainerd,
            "containerd" => Route::Unsupported(
                "images can be copied only into nodes that are containers of a local engine",
            ),
            _ => Route::Unsupported("only the docker and containerd runtimes are supported"),
        }
    }

    /// The node's Docker engine over TLS, as `minikube docker-env` prints it, when the engine
    /// is reached at the node's address (virtual machines); containers publish a port instead.
    pub fn docker_host(&self) -> Option<String> {
        let ip = &self.nodes.first()?.ip;
        (!ip.is_empty()).then(|| format!("tcp://{ip}:2376"))
    }

    /// The client certificates for the node's Docker engine.
    pub fn certs(&self) -> PathBuf {
        self.home.join("certs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(driver: &str, runtime: &str, nodes: usize) -> Profile {
        let mut names = vec![r#"{"Name":"","IP":"192.168.49.2"}"#.to_owned()];
        for n in 2..=nodes {
            names.push(format!(r#"{{"Name":"m0{n}","IP":"192.168.49.{}"}}"#, n + 1));
        }
        let text = format!(
            r#"{{"Name":"dev","Driver":"{driver}","KubernetesConfig":{{"ContainerRuntime":"{runtime}","KubernetesVersion":"v1.33.1"}},"Nodes":[{}],"Extra":1}}"#,
            names.join(",")
        );
        parse(&text, "dev", Path::new("/home/u/.minikube")).unwrap()
    }

    #[test]
    fn a_profile_names_its_node_containers() {
        let p = profile("docker", "containerd", 3);
        let containers: Vec<&str> = p.nodes.iter().map(|n| n.container.as_str()).collect();
        assert_eq!(containers, ["dev", "dev-m02", "dev-m03"]);
        assert_eq!(p.docker_host().as_deref(), Some("tcp://192.168.49.2:2376"));
        assert_eq!(p.certs(), PathBuf::from("/home/u/.minikube/certs"));
    }

    #[test]
    fn the_route_follows_driver_runtime_and_nodes() {
        assert_eq!(profile("docker", "docker", 1).route(), Route::DockerEnv);
        assert_eq!(profile("kvm2", "docker", 1).route(), Route::DockerEnv);
        assert_eq!(profile("docker", "", 1).route(), Route::DockerEnv);
        assert_eq!(
            profile("docker", "docker", 2).route(),
            Route::Containers {
                runtime: "docker".to_owned()
            }
        );
        assert_eq!(
            profile("podman", "containerd", 1).route(),
            Route::Containers {
                runtime: "containerd".to_owned()
            }
        );
        assert_eq!(profile("none", "docker", 1).route(), Route::Shared);
        assert_eq!(
            profile("none", "containerd", 1).route(),
            Route::LocalContainerd
        );
        assert!(matches!(
            profile("kvm2", "containerd", 1).route(),
            Route::Unsupported(_)
        ));
        assert!(matches!(
            profile("kvm2", "docker", 2).route(),
            Route::Unsupported(_)
        ));
        assert!(matches!(
            profile("docker", "crio", 1).route(),
            Route::Unsupported(_)
        ));
    }

    #[test]
    fn minikube_home_is_found_like_minikube_does() {
        let env = |pairs: Vec<(&'static str, String)>| {
            move |key: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| v.clone())
            }
        };
        assert_eq!(
            home(&env(vec![("HOME", "/home/u".to_owned())])),
            PathBuf::from("/home/u/.minikube")
        );
        assert_eq!(
            home(&env(vec![("MINIKUBE_HOME", "/data/.minikube".to_owned())])),
            PathBuf::from("/data/.minikube")
        );
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().display().to_string();
        assert_eq!(
            home(&env(vec![("MINIKUBE_HOME", root.clone())])),
            dir.path(),
            "no `.minikube` inside: the directory itself"
        );
        std::fs::create_dir(dir.path().join(".minikube")).unwrap();
        assert_eq!(
            home(&env(vec![("MINIKUBE_HOME", root)])),
            dir.path().join(".minikube")
        );
    }

    #[test]
    fn a_missing_profile_names_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let error = read(dir.path(), "dev").unwrap_err();
        assert!(
            error.to_string().contains("profiles/dev/config.json"),
            "{error}"
        );
        assert!(!is_profile(dir.path(), "dev"));
    }
}
