//! The load stage: getting built images onto the cluster's nodes without a registry (or, for
//! remote clusters, through one).
//!
//! - [`detect`] picks the loader from the kube context, unless the config or `--loader` names one;
//! - [`minikube`] reads a Minikube profile and decides how images get in;
//! - `nodes` finds node containers (`cluster` names their clusters), `exec` runs commands in them
//!   (or on this host), `runtime` knows those commands (`ctr`, `docker`), `holdings` reads what
//!   a node holds from one listing;
//! - `deliver` decides per image and node what to do (nothing, a tag, the missing layers, the
//!   whole image) and does it; `stream` sends one image to several nodes at once, whole or as
//!   the OCI archive `archive` builds from the `docker save` stream (`tarstream` reads and
//!   writes tar, `export` tells its entries apart) or from the engine's storage (`storage`);
//!   `image` and `digest` are the IDs compared;
//! - `registry` pushes (`refusal` reads why a registry refused); `prune` removes; `memory`
//!   remembers what nodes hold between runs.
//!
//! The loaders are one enum (`loader`), not a trait: they differ in what they hold, not in what
//! they do. Every node loader asks each node once what it holds and sends the same export; only
//! the place and the commands differ.
//!
//! Two calls: [`resolve`] before building (it checks the nodes run, and says whether images
//! should be built in another engine, Minikube's), then [`load_all`] with the built images (or
//! [`load_next`] for each image as it is built).

mod archive;
mod cluster;
mod deliver;
pub mod detect;
mod digest;
mod error;
pub mod events;
mod exec;
mod export;
mod holdings;
mod image;
mod loader;
pub mod memory;
pub mod minikube;
mod names;
mod nodes;
mod outcome;
mod prune;
mod refusal;
pub mod registry;
mod runtime;
mod storage;
mod stream;
mod tarstream;

use std::path::Path;

use bollard::Docker;
use futures_util::future::try_join_all;

pub use cluster::Cluster;
pub use detect::Choice;
pub use error::LoadError;
pub use events::{LoadEvent, ReadFrom};
pub use loader::Loader;
pub use outcome::{NodeLoad, NodeOutcome};
pub use prune::{Removed, remove_images};

use crate::build::BuiltImage;
use crate::docker::{Endpoint, Origin};
use crate::plan::ClusterTarget;
use crate::progress::{Event, Events};
use loader::Strategy;
use memory::Memory;
use minikube::Route;
use nodes::Node;
use runtime::Runtime;

/// Chooses the loader for `target` on the kube context `context` (the one the cluster
/// connection used), finds its nodes and checks that they run. No image moves yet: call it
/// before building, since it can say to build elsewhere ([`Loader::build_engine`]). `docker` is
/// the local engine; `env` reads `HOME`, `MINIKUBE_HOME`, `DOCKER_CONFIG`, `CONTAINER_HOST`
/// and `XDG_RUNTIME_DIR`.
pub async fn resolve(
    docker: &Docker,
    target: &ClusterTarget,
    context: &str,
    env: &dyn Fn(&str) -> Option<String>,
    events: &Events,
) -> Result<Loader, LoadError> {
    let home = minikube::home(env);
    let (choice, why) = detect::choose(target, context, &|name| minikube::is_profile(&home, name))?;
    let loader = match choice {
        Choice::Minikube { profile } => minikube_loader(docker, &home, &profile, env).await?,
        Choice::Kind { cluster } => node_loader(docker, &Cluster::Kind { name: cluster }).await?,
        Choice::K3d { cluster } => node_loader(docker, &Cluster::K3d { name: cluster }).await?,
        Choice::Containerd { socket } => local_containerd(&socket)?,
        Choice::SharedDaemon => Loader::new(
            Strategy::InEngine,
            "the cluster uses the local Docker engine, which holds the images: nothing to load"
                .to_owned(),
        ),
        Choice::Registry { registry } => registry_loader(&registry, &registry, env).await?,
        Choice::None => Loader::new(Strategy::Nothing, "nothing to load".to_owned()),
    };
    events.send(Event::Detail(format!("load: {why}: {}", loader.summary)));
    Ok(Loader {
        memory: memory::path(env),
        ..loader
    })
}

/// Forgets what the nodes were remembered to hold of `references`: a rollout found one missing.
pub fn forget(env: &dyn Fn(&str) -> Option<String>, references: &[String]) {
    memory::forget(memory::path(env).as_deref(), references);
}

/// Puts every image where the cluster can run it, as [`resolve`] decided. `docker` is the
/// engine the images were built in. Images load at the same time; the first failure ends the
/// stage. Dropping the future stops every transfer (the imports see a truncated archive).
pub async fn load_all(
    docker: &Docker,
    loader: &Loader,
    images: &[BuiltImage],
    events: &Events,
) -> Result<Vec<NodeLoad>, LoadError> {
    load(docker, loader, images, deliver::Listing::Fresh, events).await
}

/// [`load_all`] for one of the images of a run that loads each as soon as it is built: a node
/// this loader listed, imported into or tagged on already is not asked again; what it was last
/// seen holding is the start.
pub async fn load_next(
    docker: &Docker,
    loader: &Loader,
    image: &BuiltImage,
    events: &Events,
) -> Result<Vec<NodeLoad>, LoadError> {
    let images = std::slice::from_ref(image);
    load(docker, loader, images, deliver::Listing::LastSeen, events).await
}

async fn load(
    docker: &Docker,
    loader: &Loader,
    images: &[BuiltImage],
    listing: deliver::Listing,
    events: &Events,
) -> Result<Vec<NodeLoad>, LoadError> {
    match &loader.strategy {
        Strategy::Nodes(nodes) => {
            let known = Memory::read(loader.memory.as_deref());
            let loaded = deliver::load_all(docker, nodes, images, &known, listing, events).await?;
            Memory::remember_all(loader.memory.as_deref(), &loaded);
            Ok(loaded)
        }
        Strategy::Registry(target) => {
            try_join_all(
                images
                    .iter()
                    .map(|image| registry::push(docker, image, target, events)),
            )
            .await
        }
        Strategy::BuildInNode(_) | Strategy::InEngine | Strategy::Nothing => {
            for image in images {
                events.send(Event::Detail(format!(
                    "load {}: nothing to load for `{}`",
                    image.service, image.image
                )));
            }
            Ok(Vec::new())
        }
    }
}

/// The loader for a registry the cluster publishes (KEP-1755, see [`read_hosting`]), when no
/// loader is configured: push to its `host`, deploy from its `hostFromContainerRuntime`.
pub async fn published_registry(
    hosting: &registry::Hosting,
    env: &dyn Fn(&str) -> Option<String>,
    events: &Events,
) -> Result<Loader, LoadError> {
    let loader = registry_loader(&hosting.host, &hosting.from_runtime, env).await?;
    events.send(Event::Detail(format!(
        "load: the cluster publishes a local registry (ConfigMap `{}/{}`): {}",
        registry::hosting::NAMESPACE,
        registry::hosting::NAME,
        loader.summary
    )));
    Ok(Loader {
        memory: memory::path(env),
        ..loader
    })
}

/// The registry a kind or k3d cluster publishes in `kube-public/local-registry-hosting`.
pub async fn read_hosting(client: &kube::Client) -> Result<Option<registry::Hosting>, LoadError> {
    registry::hosting::read(client)
        .await
        .map_err(|message| LoadError::Hosting { message })
}

async fn registry_loader(
    push_to: &str,
    pull_from: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loader, LoadError> {
    let login = registry::credentials::find(push_to, env).await?;
    let mut summary = match &login {
        Some(login) => format!(
            "pushing to `{push_to}` with the login from {}",
            login.source
        ),
        None => format!("pushing to `{push_to}` without a login"),
    };
    if pull_from != push_to {
        summary.push_str(&format!("; the nodes pull from `{pull_from}`"));
    }
    let target = registry::Target {
        push_to: push_to.to_owned(),
        pull_from: pull_from.to_owned(),
        login,
    };
    Ok(Loader::new(Strategy::Registry(target), summary))
}

async fn node_loader(docker: &Docker, cluster: &Cluster) -> Result<Loader, LoadError> {
    let runtime = Runtime::kind();
    let nodes = nodes::labelled(docker, cluster, &runtime).await?;
    let summary = streaming_summary(&nodes, &runtime);
    Ok(Loader::new(Strategy::Nodes(nodes), summary))
}

fn streaming_summary(nodes: &[Node], runtime: &Runtime) -> String {
    let names: Vec<String> = nodes.iter().map(|n| format!("`{}`", n.name)).collect();
    format!(
        "streaming each image into {} with `{}`",
        names.join(", "),
        runtime.import_command().join(" ")
    )
}

fn local_containerd(socket: &Path) -> Result<Loader, LoadError> {
    if !socket.exists() {
        return Err(LoadError::NoSocket {
            path: socket.to_path_buf(),
        });
    }
    let runtime = Runtime::local_containerd("ctr", socket);
    let node = Node {
        name: socket.display().to_string(),
        place: exec::Place::Host,
        runtime: runtime.clone(),
        instance: None,
        seen: nodes::Seen::default(),
    };
    let summary = format!(
        "streaming each image into `{}`",
        runtime.import_command().join(" ")
    );
    Ok(Loader::new(Strategy::Nodes(vec![node]), summary))
}

async fn minikube_loader(
    docker: &Docker,
    home: &Path,
    name: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loader, LoadError> {
    let profile = minikube::read(home, name)?;
    let cluster = Cluster::Minikube {
        profile: profile.name.clone(),
    };
    let unsupported = |reason| LoadError::MinikubeUnsupported {
        profile: profile.name.clone(),
        driver: profile.driver.clone(),
        runtime: profile.runtime.clone(),
        reason,
    };
    // The engine that runs the node containers: the local one, or Podman's.
    let node_engine = if profile.driver == "podman" {
        podman_endpoint(env)
            .connect()
            .await
            .map_err(|source| LoadError::NodeEngine {
                cluster: cluster.clone(),
                source: Box::new(source),
            })?
    } else {
        docker.clone()
    };
    let containers: Vec<String> = profile.nodes.iter().map(|n| n.container.clone()).collect();
    match profile.route() {
        Route::DockerEnv => {
            let first = containers.first().cloned().unwrap_or_default();
            // After `eval $(minikube docker-env)` the local engine is the node's own.
            if let Ok(info) = docker.info().await
                && info.name.as_deref() == Some(first.as_str())
            {
                return Ok(Loader::new(
                    Strategy::InEngine,
                    format!(
                        "the Docker engine is the one in Minikube's node `{first}` (`minikube docker-env`): images are built there, nothing to load"
                    ),
                ));
            }
            let host = if profile.in_containers() {
                let inspected = nodes::running(&node_engine, &cluster, &first).await?;
                published(&inspected, "2376/tcp").or_else(|| profile.docker_host())
            } else {
                profile.docker_host()
            };
            let host = host.ok_or_else(|| {
                unsupported("the profile has no address for the node's Docker engine")
            })?;
            let endpoint = Endpoint::tls(host, profile.certs());
            let summary = format!(
                "the docker runtime on one node: building straight into the node's Docker engine at `{}` (what `minikube docker-env` points at), so no image is copied; faster than streaming each image into the node",
                endpoint.host
            );
            Ok(Loader::new(Strategy::BuildInNode(endpoint), summary))
        }
        Route::Containers { runtime } => {
            let runtime = if runtime == "docker" {
                Runtime::Docker
            } else {
                Runtime::minikube_containerd()
            };
            let nodes = nodes::named(&node_engine, &cluster, &containers, &runtime).await?;
            let summary = streaming_summary(&nodes, &runtime);
            Ok(Loader::new(Strategy::Nodes(nodes), summary))
        }
        Route::Shared => Ok(Loader::new(
            Strategy::InEngine,
            "the `none` driver runs the cluster beside the local Docker engine: nothing to load"
                .to_owned(),
        )),
        Route::LocalContainerd => local_containerd(Path::new(detect::DEFAULT_CONTAINERD_SOCKET)),
        Route::Unsupported(reason) => Err(unsupported(reason)),
    }
}

/// `tcp://HOST:PORT` where a container's `port` is published.
fn published(inspected: &bollard::models::ContainerInspectResponse, port: &str) -> Option<String> {
    let bindings = inspected
        .network_settings
        .as_ref()?
        .ports
        .as_ref()?
        .get(port)?
        .as_ref()?;
    let binding = bindings.first()?;
    let host_port = binding.host_port.as_deref().filter(|p| !p.is_empty())?;
    let ip = match binding.host_ip.as_deref() {
        None | Some("" | "0.0.0.0" | "::") => "127.0.0.1",
        Some(ip) => ip,
    };
    Some(format!("tcp://{ip}:{host_port}"))
}

/// Podman's API socket: `CONTAINER_HOST`, else the rootless socket when it exists, else the
/// rootful one (Minikube's podman driver runs rootful unless configured otherwise).
fn podman_endpoint(env: &dyn Fn(&str) -> Option<String>) -> Endpoint {
    let host = env("CONTAINER_HOST")
        .filter(|v| !v.is_empty())
        .or_else(|| {
            let socket = Path::new(&env("XDG_RUNTIME_DIR")?).join("podman/podman.sock");
            socket
                .exists()
                .then(|| format!("unix://{}", socket.display()))
        })
        .unwrap_or_else(|| "unix:///run/podman/podman.sock".to_owned());
    Endpoint {
        host,
        tls: None,
        origin: Origin::Explicit,
    }
}
