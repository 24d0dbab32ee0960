//! The simulated node's image store (which images exist, how a container
//! started from each behaves, which user it runs as and how it answers
//! SIGTERM) and the container logs the kubelet keeps.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::util::{fnv32a, random_u64};

/// How a container from an image behaves.
#[derive(Debug, Clone, PartialEq)]
pub enum Behavior {
    /// Runs until stopped. HTTP GET probes on `ok_paths` answer 200, any other
    /// path 404; TCP probes succeed on `port`. Prints `log_lines` at start.
    Serve {
        ok_paths: Vec<String>,
        port: u16,
        log_lines: Vec<String>,
    },
    /// Prints `log_lines` and exits with `exit_code` after `run_secs` (simulated).
    Crash {
        exit_code: i32,
        log_lines: Vec<String>,
        run_secs: f64,
    },
    /// Like `then`, but probes fail (connection refused) for the first `delay_secs`.
    SlowStart {
        delay_secs: f64,
        then: Box<Behavior>,
    },
}

impl Behavior {
    /// Serves 200 on `paths` at `port`.
    pub fn serve(paths: &[&str], port: u16) -> Behavior {
        Behavior::Serve {
            ok_paths: paths.iter().map(|s| s.to_string()).collect(),
            port,
            log_lines: Vec::new(),
        }
    }
    /// Prints `lines` and exits at once with `code`.
    pub fn crash(code: i32, lines: &[&str]) -> Behavior {
        Behavior::Crash {
            exit_code: code,
            log_lines: lines.iter().map(|s| s.to_string()).collect(),
            run_secs: 0.0,
        }
    }
    /// Probes fail for `delay_secs` after start, then behave like `then`.
    pub fn slow_start(delay_secs: f64, then: Behavior) -> Behavior {
        Behavior::SlowStart {
            delay_secs,
            then: Box::new(then),
        }
    }
    /// Strips `SlowStart`, returning the delay and the underlying behaviour.
    pub fn resolve(&self) -> (f64, &Behavior) {
        match self {
            Behavior::SlowStart { delay_secs, then } => {
                let (d, b) = then.resolve();
                (delay_secs + d, b)
            }
            other => (0.0, other),
        }
    }
}

/// What a container's process does when the kubelet sends SIGTERM (the pod is
/// deleted, or a liveness probe failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnSigterm {
    /// Exits at once with this code (0 shows as `Completed`, others as `Error`),
    /// as the recorded todo backend does (10 (d): `Completed`, exit code 0).
    Exit(i32),
    /// Keeps running until the grace period ends and is killed (137, `Error`),
    /// as busybox as PID 1 does (04, 08).
    Ignore,
}

/// An image's configuration as the kubelet sees it: its `USER` and how its
/// process answers SIGTERM. The default is a numeric non-root user ("1000")
/// that exits with 0 on SIGTERM.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageConfig {
    /// The image config's `USER`, as written in the Dockerfile: "" (none: root),
    /// "0", "1000", "1000:1000", or a name such as "app" (which `runAsNonRoot`
    /// cannot verify).
    pub user: String,
    pub on_sigterm: OnSigterm,
}

impl Default for ImageConfig {
    fn default() -> Self {
        ImageConfig {
            user: "1000".into(),
            on_sigterm: OnSigterm::Exit(0),
        }
    }
}

impl ImageConfig {
    /// The same configuration with another `USER`.
    pub fn user(mut self, user: &str) -> ImageConfig {
        self.user = user.to_string();
        self
    }
    /// The same configuration with another answer to SIGTERM.
    pub fn on_sigterm(mut self, on_sigterm: OnSigterm) -> ImageConfig {
        self.on_sigterm = on_sigterm;
        self
    }
}

/// An image present on the node.
#[derive(Debug, Clone)]
pub struct Image {
    pub reference: String,
    pub behavior: Behavior,
    /// `sha256:...`
    pub id: String,
    pub config: ImageConfig,
}

/// Normalises `name[:tag]` the way containerd reports it (`docker.io/library/name:tag`).
pub fn normalize_image(reference: &str) -> String {
    let (repo, tag) = match reference.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r.to_string(), t.to_string()),
        _ => (reference.to_string(), "latest".to_string()),
    };
    let first = repo.split('/').next().unwrap_or("");
    let has_domain =
        repo.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let full = if has_domain {
        repo
    } else if repo.contains('/') {
        format!("docker.io/{repo}")
    } else {
        format!("docker.io/library/{repo}")
    };
    format!("{full}:{tag}")
}

/// Handle to the node's images; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct NodeImages(
    Arc<Mutex<BTreeMap<String, Image>>>,
    Arc<Mutex<Vec<crate::registry::PullSource>>>,
);

impl NodeImages {
    /// Adds (or replaces) an image with a behaviour and the default
    /// [`ImageConfig`] (user "1000", exits with 0 on SIGTERM).
    pub fn add_image(&self, reference: &str, behavior: Behavior) {
        self.add_image_with(reference, behavior, ImageConfig::default());
    }

    /// Adds (or replaces) an image with a behaviour and a configuration, e.g.
    /// `ImageConfig::default().user("")` for an image that runs as root.
    pub fn add_image_with(&self, reference: &str, behavior: Behavior, config: ImageConfig) {
        let key = normalize_image(reference);
        let id = format!(
            "sha256:{:08x}{:016x}{:016x}{:016x}{:08x}",
            fnv32a(key.as_bytes()),
            random_u64(),
            random_u64(),
            random_u64(),
            fnv32a(reference.as_bytes())
        );
        self.0.lock().expect("images mutex poisoned").insert(
            key.clone(),
            Image {
                reference: key,
                behavior,
                id,
                config,
            },
        );
    }

    /// Removes an image; true if it was present.
    pub fn remove_image(&self, reference: &str) -> bool {
        self.0
            .lock()
            .expect("images mutex poisoned")
            .remove(&normalize_image(reference))
            .is_some()
    }

    pub fn get(&self, reference: &str) -> Option<Image> {
        self.0
            .lock()
            .expect("images mutex poisoned")
            .get(&normalize_image(reference))
            .cloned()
    }

    /// Lets the kubelet pull images of `repositories` (path under `host` → behaviour and
    /// configuration) from the real registry at `host` (see [`crate::registry`]).
    pub fn pull_from(&self, host: &str, repositories: Vec<(String, Behavior, ImageConfig)>) {
        let mut sources = self.1.lock().expect("registries mutex poisoned");
        sources.retain(|s| s.host != host);
        sources.push(crate::registry::PullSource {
            host: host.to_owned(),
            repositories,
        });
    }

    /// The registry at `host` the kubelet may pull from, if a test named it.
    pub fn source(&self, host: &str) -> Option<crate::registry::PullSource> {
        let sources = self.1.lock().expect("registries mutex poisoned");
        sources.iter().find(|s| s.host == host).cloned()
    }

    /// References of all images present.
    pub fn list(&self) -> Vec<String> {
        self.0
            .lock()
            .expect("images mutex poisoned")
            .keys()
            .cloned()
            .collect()
    }
}

/// Logs of one container.
#[derive(Debug, Clone, Default)]
pub struct ContainerLogs {
    pub current: Vec<String>,
    pub previous: Option<Vec<String>>,
    /// The container has started at least once.
    pub started: bool,
    /// Counts container instances (restarts).
    pub instance: u64,
}

/// (namespace, pod, container)
type LogKey = (String, String, String);

/// Logs of all containers, by (namespace, pod, container).
#[derive(Debug, Clone, Default)]
pub struct Logs(Arc<Mutex<BTreeMap<LogKey, ContainerLogs>>>);

impl Logs {
    /// A new container instance starts: the current log becomes the previous one.
    pub fn start(&self, ns: &str, pod: &str, container: &str, lines: &[String]) {
        let mut m = self.0.lock().expect("logs mutex poisoned");
        let e = m
            .entry((ns.to_string(), pod.to_string(), container.to_string()))
            .or_default();
        if e.started {
            e.previous = Some(std::mem::take(&mut e.current));
        }
        e.started = true;
        e.instance += 1;
        e.current = lines.to_vec();
    }

    pub fn get(&self, ns: &str, pod: &str, container: &str) -> Option<ContainerLogs> {
        self.0
            .lock()
            .expect("logs mutex poisoned")
            .get(&(ns.to_string(), pod.to_string(), container.to_string()))
            .cloned()
    }

    pub fn forget_pod(&self, ns: &str, pod: &str) {
        self.0
            .lock()
            .expect("logs mutex poisoned")
            .retain(|(n, p, _), _| !(n == ns && p == pod));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_like_containerd() {
        assert_eq!(
            normalize_image("probe-busybox:2"),
            "docker.io/library/probe-busybox:2"
        );
        assert_eq!(normalize_image("nginx"), "docker.io/library/nginx:latest");
        assert_eq!(normalize_image("ghcr.io/a/b:1"), "ghcr.io/a/b:1");
        assert_eq!(
            normalize_image("localhost:5000/x"),
            "localhost:5000/x:latest"
        );
    }
}
