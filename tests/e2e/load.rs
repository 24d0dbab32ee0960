//! The load stage against the real Docker engine, with fake nodes (`support::nodes`): containers
//! named and labelled like kind's and Minikube's whose `ctr` and `docker` check that a complete
//! image archive (`docker save`'s or an OCI layout) arrives and record it. Every image reaches
//! every node, a second run sends nothing, an image rebuilt under the same tag is sent again, one
//! re-tagged is tagged, a missing or stopped node and a failing import say what to do; a real
//! containerd (started by the test) takes the local socket loader's imports; Minikube's docker
//! runtime on one node builds in the node instead; a registry that does not answer is named.
//!
//! With a real containerd behind a kind node container (its socket mounted, the real `ctr`): a
//! two-layer image whose top layer changes gets only that layer and runs; an image whose base the
//! node lacks gets every layer; a cut or damaged stream leaves the node as it was (names and
//! snapshots) and the next run recovers; an unchanged image under a new tag is tagged, 0 bytes.
//! `measure_load_throughput` (ignored) is the measurement `scripts/measure-load` runs.
//!
//! Without an engine these tests skip on a laptop and fail in CI (`CI` set).

use std::path::PathBuf;
use std::time::Instant;

use todo_deploy::build::{BuiltImage, Outcome};
use todo_deploy::config::LoaderKind;
use todo_deploy::load::{self, LoadError, LoadEvent, NodeLoad, NodeOutcome, ReadFrom};
use todo_deploy::outcome::Diagnose;
use todo_deploy::plan::ClusterTarget;
use todo_deploy::progress::{Event, Events};

use crate::support::docker::engine;
use crate::support::nodes::{Containerd, FakeNodes, MinikubeHome, random_bytes};

fn target(loader: LoaderKind) -> ClusterTarget {
    ClusterTarget::with_loader(loader)
}

/// An image as a later run sees it: built before, reused now.
fn reused(image: &BuiltImage) -> BuiltImage {
    BuiltImage {
        outcome: Outcome::Reused,
        ..image.clone()
    }
}

fn no_env(_: &str) -> Option<String> {
    None
}

/// Every event sent so far.
fn drain(receiver: &mut tokio::sync::mpsc::UnboundedReceiver<Event>) -> Vec<Event> {
    let mut events = Vec::new();
    while let Ok(event) = receiver.try_recv() {
        events.push(event);
    }
    events
}

/// `(service, node, loaded?)`, sorted.
fn outcomes(loaded: &[NodeLoad]) -> Vec<(String, String, bool)> {
    let mut list: Vec<_> = loaded
        .iter()
        .map(|l| {
            let sent = l.outcome.bytes() > 0;
            (l.service.clone(), l.node.clone(), sent)
        })
        .collect();
    list.sort();
    list
}

/// `<normalized name> <id>` as the fake node records an import.
fn recorded(image: &BuiltImage, containerd: bool) -> String {
    let name = if containerd {
        format!("docker.io/{}", image.image)
    } else {
        image.image.to_string()
    };
    format!("{name} {}", image.id)
}

/// Loading images one at a time as they are built (`load_next`) asks a node once per run: the
/// second image starts from what the first one's import left (counted in the fake node's
/// listings, against two one-image `load_all` calls that each ask).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_loaded_one_at_a_time_ask_a_node_once() {
    let Some(docker) = engine().await else { return };
    let nodes = FakeNodes::new(&docker, "one-ask").await;
    let mut asks = Vec::new();
    for each_fresh in [true, false] {
        let cluster = format!("{}-{each_fresh}", nodes.unique);
        let node = nodes.start_kind(&cluster).await;
        let (events, _receiver) = Events::channel();
        let context = format!("kind-{cluster}");
        let loader = load::resolve(
            &docker,
            &target(LoaderKind::Kind),
            &context,
            &no_env,
            &events,
        )
        .await
        .expect("the kind cluster resolves");
        let tag = format!("v{each_fresh}");
        let backend = nodes
            .image("backend", &nodes.repository("backend"), &tag, b"b")
            .await;
        let frontend = nodes
            .image("frontend", &nodes.repository("frontend"), &tag, b"f")
            .await;
        for image in [&backend, &frontend] {
            let loaded = match each_fresh {
                true => {
                    load::load_all(&docker, &loader, std::slice::from_ref(image), &events).await
                }
                false => load::load_next(&docker, &loader, image, &events).await,
            };
            let loaded = loaded.expect("the image loads");
            assert!(
                matches!(
                    loaded[0].outcome,
                    NodeOutcome::Layers { .. } | NodeOutcome::Loaded { .. }
                ),
                "{loaded:?}"
            );
        }
        assert_eq!(nodes.imports(&node).await.len(), 2, "both images imported");
        asks.push(nodes.listings(&node).await);
    }
    assert_eq!(
        asks[1] + 1,
        asks[0],
        "listings, fresh then last seen: {asks:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kind_nodes_get_each_image_once_and_a_changed_one_again() {
    let Some(docker) = engine().await else { return };
    let nodes = FakeNodes::new(&docker, "kind").await;
    let cluster = nodes.unique.clone();
    let kind = |role: &'static str| {
        [
            ("io.x-k8s.kind.cluster", cluster.clone()),
            ("io.x-k8s.kind.role", role.to_owned()),
        ]
    };
    let control_plane = format!("{cluster}-control-plane");
    let worker = format!("{cluster}-worker");
    let balancer = format!("{cluster}-external-load-balancer");
    for (name, role) in [
        (&control_plane, "control-plane"),
        (&worker, "worker"),
        (&balancer, "external-load-balancer"),
    ] {
        let labels = kind(role);
        let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
        nodes.start(name, &labels, None).await;
    }
    let backend_repo = nodes.repository("backend");
    let frontend_repo = nodes.repository("frontend");
    let backend = nodes
        .image("backend", &backend_repo, "v1", b"backend 1")
        .await;
    let frontend = nodes
        .image("frontend", &frontend_repo, "v1", b"frontend 1")
        .await;
    let (events, mut receiver) = Events::channel();

    let loader = load::resolve(
        &docker,
        &target(LoaderKind::Auto),
        &format!("kind-{cluster}"),
        &no_env,
        &events,
    )
    .await
    .expect("the kind cluster resolves");
    assert_eq!(
        loader.nodes(),
        [control_plane.clone(), worker.clone()],
        "not the load balancer"
    );
    assert!(loader.build_engine().is_none());
    let detail = drain(&mut receiver);
    assert!(
        detail.iter().any(|e| matches!(e, Event::Detail(line) if line.contains(&format!("kind cluster `{cluster}`")) && line.contains("--snapshotter=overlayfs"))),
        "{detail:?}"
    );

    let images = [backend.clone(), frontend.clone()];
    let loaded = load::load_all(&docker, &loader, &images, &events)
        .await
        .expect("the images load");
    let all_sent = |sent: bool| {
        let mut expected = Vec::new();
        for service in ["backend", "frontend"] {
            for node in [&control_plane, &worker] {
                expected.push((service.to_owned(), node.clone(), sent));
            }
        }
        expected
    };
    assert_eq!(outcomes(&loaded), all_sent(true));
    for node in [&control_plane, &worker] {
        let mut imports = nodes.imports(node).await;
        imports.sort();
        assert_eq!(
            imports,
            [recorded(&backend, true), recorded(&frontend, true)],
            "{node}"
        );
    }
    assert!(nodes.imports(&balancer).await.is_empty());
    let events_seen = drain(&mut receiver);
    for service in ["backend", "frontend"] {
        // Containerd nodes get only what they lack: here everything, as an OCI archive.
        assert!(events_seen.iter().any(|e| matches!(e, Event::Load(LoadEvent::Layers { service: s, nodes, layers: 1, total: 1, bytes, .. }) if s == service && nodes.len() == 2 && *bytes > 0)), "{events_seen:?}");
    }

    // Again, as a second run sees them (reused, not built): every node has both IDs, so nothing
    // is sent.
    let images: Vec<BuiltImage> = images.iter().map(reused).collect();
    let started = Instant::now();
    let again = load::load_all(&docker, &loader, &images, &events)
        .await
        .expect("a second load");
    let skipped_in = started.elapsed();
    assert_eq!(outcomes(&again), all_sent(false));
    assert!(
        again
            .iter()
            .all(|l| l.outcome == NodeOutcome::AlreadyPresent)
    );
    assert_eq!(
        nodes.imports(&worker).await.len(),
        2,
        "nothing imported again"
    );
    let present = drain(&mut receiver)
        .into_iter()
        .filter(|e| matches!(e, Event::Load(LoadEvent::AlreadyPresent { .. })))
        .count();
    assert_eq!(present, 4);
    eprintln!("a load with every image present took {skipped_in:?}");

    // The backend rebuilt under the same tag: a new ID, sent again; the frontend is not.
    let changed = nodes
        .image("backend", &backend_repo, "v1", b"backend 2")
        .await;
    assert_ne!(changed.id, backend.id);
    let images = [changed.clone(), reused(&frontend)];
    let third = load::load_all(&docker, &loader, &images, &events)
        .await
        .expect("a third load");
    let mut expected = all_sent(true);
    for entry in &mut expected {
        entry.2 = entry.0 == "backend";
    }
    assert_eq!(outcomes(&third), expected);
    for node in [&control_plane, &worker] {
        let imports = nodes.imports(node).await;
        assert_eq!(imports.len(), 3, "{node}: {imports:?}");
        assert_eq!(imports[2], recorded(&changed, true));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minikube_nodes_get_images_by_docker_load_or_ctr() {
    let Some(docker) = engine().await else { return };
    let nodes = FakeNodes::new(&docker, "minikube").await;
    let repo = nodes.repository("backend");
    let image = nodes.image("backend", &repo, "v1", b"backend").await;

    // The docker runtime on two nodes: no single engine to build in, so `docker load` into each.
    let profile = format!("{}-docker", nodes.unique);
    let second = format!("{profile}-m02");
    nodes.start(&profile, &[], None).await;
    nodes.start(&second, &[], None).await;
    let home = MinikubeHome::new(&profile, "docker", "docker", 2);
    let (events, _receiver) = Events::channel();
    let loader = load::resolve(
        &docker,
        &target(LoaderKind::Auto),
        &profile,
        &home.env(),
        &events,
    )
    .await
    .expect("the profile resolves");
    assert_eq!(loader.nodes(), [profile.clone(), second.clone()]);
    assert!(
        loader.summary().contains("`docker load`"),
        "{}",
        loader.summary()
    );
    let loaded = load::load_all(&docker, &loader, std::slice::from_ref(&image), &events)
        .await
        .expect("loads");
    assert_eq!(
        outcomes(&loaded),
        [
            ("backend".to_owned(), profile.clone(), true),
            ("backend".to_owned(), second.clone(), true)
        ]
    );
    assert_eq!(nodes.imports(&second).await, [recorded(&image, false)]);
    let again = load::load_all(&docker, &loader, &[reused(&image)], &events)
        .await
        .expect("loads");
    assert!(
        again
            .iter()
            .all(|l| l.outcome == NodeOutcome::AlreadyPresent),
        "{again:?}"
    );

    // The same image under a new tag (a cache-hit build): `docker tag` on each node, nothing sent.
    let options = bollard::query_parameters::TagImageOptionsBuilder::new()
        .repo(&repo)
        .tag("v2")
        .build();
    docker
        .tag_image(&image.id, Some(options))
        .await
        .expect("tag");
    let retagged = BuiltImage {
        image: todo_deploy::plan::ImageRef {
            tag: "v2".to_owned(),
            ..image.image.clone()
        },
        ..image.clone()
    };
    let tagged = load::load_all(&docker, &loader, &[retagged], &events)
        .await
        .expect("tags");
    assert!(
        tagged.iter().all(|l| l.outcome
            == NodeOutcome::Tagged {
                from: format!("docker.io/{}", image.image)
            }),
        "{tagged:?}"
    );
    assert_eq!(nodes.imports(&second).await.len(), 1, "nothing imported");

    // containerd on one node, found through `cluster.minikubeProfile` under another context.
    let profile = format!("{}-containerd", nodes.unique);
    nodes.start(&profile, &[], None).await;
    let home = MinikubeHome::new(&profile, "docker", "containerd", 1);
    let mut configured = target(LoaderKind::Auto);
    configured.minikube_profile = Some(profile.clone());
    let loader = load::resolve(&docker, &configured, "some-context", &home.env(), &events)
        .await
        .expect("the profile resolves");
    assert!(
        loader.summary().contains("`ctr -n=k8s.io images import -`"),
        "{}",
        loader.summary()
    );
    let loaded = load::load_all(&docker, &loader, std::slice::from_ref(&image), &events)
        .await
        .expect("loads");
    assert_eq!(
        outcomes(&loaded),
        [("backend".to_owned(), profile.clone(), true)]
    );
    assert_eq!(nodes.imports(&profile).await, [recorded(&image, true)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minikube_with_the_docker_runtime_on_one_node_builds_in_the_node() {
    let Some(docker) = engine().await else { return };
    let nodes = FakeNodes::new(&docker, "docker-env").await;
    let profile = nodes.unique.clone();
    nodes.start(&profile, &[], Some("2376/tcp")).await;
    let home = MinikubeHome::new(&profile, "docker", "docker", 1);
    let (events, mut receiver) = Events::channel();
    let loader = load::resolve(
        &docker,
        &target(LoaderKind::Auto),
        &profile,
        &home.env(),
        &events,
    )
    .await
    .expect("the profile resolves");
    let endpoint = loader.build_engine().expect("build in Minikube's engine");
    assert!(
        endpoint.host.starts_with("tcp://127.0.0.1:"),
        "{}",
        endpoint.host
    );
    assert_ne!(endpoint.host, "tcp://127.0.0.1:2376", "the published port");
    assert_eq!(endpoint.tls, Some(home.path().join("certs")));
    let said = drain(&mut receiver);
    assert!(
        said.iter().any(|e| matches!(e, Event::Detail(line) if line.contains("building straight into the node's Docker engine") && line.contains("faster"))),
        "{said:?}"
    );
    assert!(loader.nodes().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_and_stopped_nodes_say_to_start_the_cluster() {
    let Some(docker) = engine().await else { return };
    let nodes = FakeNodes::new(&docker, "missing").await;
    let (events, _receiver) = Events::channel();

    let profile = nodes.unique.clone();
    let home = MinikubeHome::new(&profile, "docker", "containerd", 1);
    let error = load::resolve(
        &docker,
        &target(LoaderKind::Auto),
        &profile,
        &home.env(),
        &events,
    )
    .await
    .expect_err("no node container");
    assert!(matches!(error, LoadError::NodeMissing { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!("there is no node container `{profile}` for Minikube profile `{profile}`")
    );
    let hint = error.hint().unwrap_or_default();
    assert!(
        hint.contains(&format!("`minikube start -p {profile}`")),
        "{hint}"
    );

    nodes.create(&profile, &[], None).await;
    let error = load::resolve(
        &docker,
        &target(LoaderKind::Auto),
        &profile,
        &home.env(),
        &events,
    )
    .await
    .expect_err("a stopped node");
    assert!(
        error.to_string().contains("is created, not running"),
        "{error}"
    );

    let cluster = format!("{}-kind", nodes.unique);
    let error = load::resolve(
        &docker,
        &target(LoaderKind::Auto),
        &format!("kind-{cluster}"),
        &no_env,
        &events,
    )
    .await
    .expect_err("no kind nodes");
    assert_eq!(
        error.to_string(),
        format!(
            "no node containers of kind cluster `{cluster}` (containers labelled `io.x-k8s.kind.cluster={cluster}`)"
        )
    );
    assert!(
        error
            .hint()
            .unwrap_or_default()
            .contains(&format!("`kind create cluster --name {cluster}`"))
    );

    let error = load::resolve(
        &docker,
        &target(LoaderKind::Auto),
        "prod-eks",
        &no_env,
        &events,
    )
    .await
    .expect_err("an unknown context");
    assert!(error.hint().unwrap_or_default().contains("`--loader`"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_import_shows_the_runtimes_error() {
    let Some(docker) = engine().await else { return };
    let nodes = FakeNodes::new(&docker, "failing").await;
    let cluster = nodes.unique.clone();
    let good = format!("{cluster}-control-plane");
    let bad = format!("{cluster}-worker");
    nodes
        .start(
            &good,
            &[("k3d.cluster", &cluster), ("k3d.role", "server")],
            None,
        )
        .await;
    nodes
        .start(
            &bad,
            &[("k3d.cluster", &cluster), ("k3d.role", "agent")],
            None,
        )
        .await;
    let message = "ctr: failed to ingest layer.tar: write /var/lib/containerd/ingest: no space left on device";
    nodes.fail_imports(&bad, message).await;
    // Big enough that the node stops reading long before the archive ends.
    let payload: Vec<u8> = (0..4_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let image = nodes
        .image("backend", &nodes.repository("backend"), "v1", &payload)
        .await;
    let (events, mut receiver) = Events::channel();
    let loader = load::resolve(
        &docker,
        &target(LoaderKind::Auto),
        &format!("k3d-{cluster}"),
        &no_env,
        &events,
    )
    .await
    .expect("the k3d cluster resolves");

    let error = load::load_all(&docker, &loader, &[image], &events)
        .await
        .expect_err("the import fails");
    assert_eq!(
        error.to_string(),
        format!(
            "`ctr --namespace=k8s.io images import --all-platforms --snapshotter=overlayfs -` failed on node `{bad}` with exit code 1:\n  {message}"
        )
    );
    assert!(
        error.hint().unwrap_or_default().contains("disk is full"),
        "{:?}",
        error.hint()
    );
    assert!(
        drain(&mut receiver)
            .iter()
            .any(|e| matches!(e, Event::Load(LoadEvent::Failed { .. })))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_containerd_socket_on_this_host_takes_images_through_the_real_ctr() {
    let Some(docker) = engine().await else { return };
    let (events, _receiver) = Events::channel();
    let mut missing = target(LoaderKind::Containerd);
    missing.containerd_socket = Some(PathBuf::from("/nonexistent/containerd.sock"));
    let error = load::resolve(&docker, &missing, "default", &no_env, &events)
        .await
        .expect_err("no socket");
    assert_eq!(
        error.to_string(),
        "there is no containerd socket at `/nonexistent/containerd.sock`"
    );
    assert!(
        error
            .hint()
            .unwrap_or_default()
            .contains("cluster.containerdSocket")
    );

    let Some(containerd) = Containerd::start() else {
        return;
    };
    let nodes = FakeNodes::new(&docker, "containerd").await;
    let repo = nodes.repository("backend");
    let image = nodes.image("backend", &repo, "v1", b"backend 1").await;
    let mut configured = target(LoaderKind::Containerd);
    configured.containerd_socket = Some(containerd.socket());
    let loader = load::resolve(&docker, &configured, "default", &no_env, &events)
        .await
        .expect("the socket resolves");
    let loaded = load::load_all(&docker, &loader, std::slice::from_ref(&image), &events)
        .await
        .expect("loads");
    assert!(loaded[0].outcome.bytes() > 0, "{loaded:?}");
    let listing = containerd.ctr(&["images", "ls", "-q"]);
    assert!(
        listing.contains(&format!("docker.io/{}", image.image)),
        "{listing}"
    );

    let again = load::load_all(&docker, &loader, &[reused(&image)], &events)
        .await
        .expect("loads");
    assert_eq!(again[0].outcome, NodeOutcome::AlreadyPresent);

    let changed = nodes.image("backend", &repo, "v1", b"backend 2").await;
    let third = load::load_all(&docker, &loader, std::slice::from_ref(&changed), &events)
        .await
        .expect("loads");
    assert!(third[0].outcome.bytes() > 0, "{third:?}");
}

/// A real containerd (its own socket, root and state) and a kind node container whose `ctr` is
/// the real one, talking to it through the mounted socket; the kind loader for that node.
struct RealNode {
    nodes: FakeNodes,
    containerd: Containerd,
    node: String,
    loader: load::Loader,
}

impl RealNode {
    /// `None` (after saying why) without containerd, as `Containerd::start` decides.
    async fn start(docker: &bollard::Docker, scenario: &str) -> Option<RealNode> {
        let containerd = Containerd::start()?;
        let nodes = FakeNodes::new(docker, scenario).await;
        let cluster = nodes.unique.clone();
        let node = format!("{cluster}-control-plane");
        nodes.start_real(&node, &cluster, &containerd).await;
        let (events, _receiver) = Events::channel();
        let context = format!("kind-{cluster}");
        let loader = load::resolve(
            docker,
            &target(LoaderKind::Kind),
            &context,
            &no_env,
            &events,
        )
        .await
        .expect("the node resolves");
        Some(RealNode {
            nodes,
            containerd,
            node,
            loader,
        })
    }

    /// Loads `image`; its outcome on the node, and every event.
    async fn load(&self, image: &BuiltImage) -> Result<(NodeOutcome, Vec<Event>), LoadError> {
        let (events, mut receiver) = Events::channel();
        let docker = &self.nodes.docker;
        let loaded =
            load::load_all(docker, &self.loader, std::slice::from_ref(image), &events).await?;
        assert_eq!(loaded.len(), 1, "{loaded:?}");
        Ok((loaded[0].outcome.clone(), drain(&mut receiver)))
    }

    /// The image ID containerd has under `image`'s name: its manifest's config.
    fn id_of(&self, image: &BuiltImage) -> Option<String> {
        let name = format!("docker.io/{}", image.image);
        let listing = self
            .containerd
            .ctr(&["images", "ls", &format!("name=={name}")]);
        let manifest = listing
            .lines()
            .nth(1)?
            .split_whitespace()
            .nth(2)?
            .to_owned();
        let manifest = self.containerd.ctr(&["content", "get", &manifest]);
        let manifest: serde_json::Value = serde_json::from_str(&manifest).ok()?;
        manifest["config"]["digest"].as_str().map(str::to_owned)
    }

    /// What containerd holds: image names and committed snapshots.
    fn state(&self) -> (Vec<String>, Vec<String>) {
        (self.containerd.images(), self.containerd.snapshots())
    }

    /// Makes every later import on the node read a damaged stream (`support::nodes::REAL_CTR`);
    /// `None` stops it.
    async fn damage(&self, how: Option<&str>) {
        let script = match how {
            Some(how) => {
                format!("mkdir -p /var/lib/real-node && echo '{how}' > /var/lib/real-node/damage")
            }
            None => "rm -f /var/lib/real-node/damage".to_owned(),
        };
        self.nodes.exec(&self.node, &["sh", "-c", &script]).await;
    }
}

/// `busybox` and a small file `/app/version` above it: two layers, runnable.
async fn two_layers(nodes: &FakeNodes, tag: &str, version: &[u8]) -> BuiltImage {
    let busybox = std::fs::read("/bin/busybox").expect("busybox-static");
    let files: [(&str, &[u8]); 2] = [("/bin/busybox", &busybox), ("/app/version", version)];
    let repository = nodes.repository("backend");
    nodes
        .layered_image("backend", &repository, tag, &files)
        .await
}

/// Whether this process can read the engine's layer files of `image`.
async fn storage_readable(docker: &bollard::Docker, image: &BuiltImage) -> bool {
    let inspected = docker
        .inspect_image(&image.image.to_string())
        .await
        .expect("the image is there");
    let upper = inspected
        .graph_driver
        .filter(|driver| driver.name == "overlay2")
        .and_then(|driver| driver.data.get("UpperDir").cloned());
    upper.is_some_and(|upper| std::fs::read_dir(upper).is_ok())
}

fn layers_event(events: &[Event]) -> Option<(usize, usize, u64, u64)> {
    events.iter().find_map(|event| match event {
        Event::Load(LoadEvent::Layers {
            layers,
            total,
            bytes,
            size,
            ..
        }) => Some((*layers, *total, *bytes, *size)),
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_containerd_node_gets_only_the_changed_top_layer_and_runs_the_image() {
    let Some(docker) = engine().await else { return };
    let Some(real) = RealNode::start(&docker, "top-layer").await else {
        return;
    };
    let busybox = std::fs::metadata("/bin/busybox").expect("busybox").len();
    let v1 = two_layers(&real.nodes, "v1", b"version one\n").await;
    let (first, _) = real.load(&v1).await.expect("v1 loads");
    assert!(
        matches!(first, NodeOutcome::Layers { layers: 2, total: 2, bytes } if bytes > busybox),
        "an empty node gets both layers: {first:?}"
    );

    let v2 = two_layers(&real.nodes, "v2", b"version two\n").await;
    let (outcome, events) = real.load(&v2).await.expect("v2 loads");
    let NodeOutcome::Layers {
        layers: 1,
        total: 2,
        bytes,
    } = outcome
    else {
        panic!("only the top layer: {outcome:?}");
    };
    assert!(
        bytes < 16 * 1024,
        "{bytes} bytes sent for a one-file change"
    );
    let (layers, total, sent, size) = layers_event(&events).expect("a layers event");
    assert_eq!((layers, total, sent), (1, 2, bytes));
    // The engine here is local: where its storage can be read, the layer came from there (not
    // from an export of the whole image), rebuilt byte for byte, or containerd would have
    // refused it.
    let read = events.iter().find_map(|event| match event {
        Event::Load(LoadEvent::Layers { read, .. }) => read.clone(),
        _ => None,
    });
    match storage_readable(&docker, &v2).await {
        true => assert_eq!(read, Some(ReadFrom::Storage)),
        false => assert!(matches!(read, Some(ReadFrom::Export { .. })), "{read:?}"),
    }
    assert!(
        size > busybox,
        "the image's size, {size}, counts every layer"
    );

    // As far as containerd says, the image is complete: named, with the built ID, its top
    // layer's chain unpacked; and it runs.
    assert!(
        real.containerd
            .images()
            .contains(&format!("docker.io/{}", v2.image))
    );
    assert_eq!(real.id_of(&v2).as_deref(), Some(v2.id.as_str()));
    let chain = crate::support::nodes::chain_ids(&docker, &v2.image.to_string()).await;
    assert!(real.containerd.snapshots().contains(&chain[1]), "{chain:?}");
    let name = format!("docker.io/{}", v2.image);
    let output = real
        .containerd
        .run(&name, &["/bin/busybox", "cat", "/app/version"]);
    assert_eq!(output, "version two\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_whose_base_a_real_containerd_node_lacks_is_sent_whole() {
    let Some(docker) = engine().await else { return };
    let Some(real) = RealNode::start(&docker, "new-base").await else {
        return;
    };
    let v1 = two_layers(&real.nodes, "v1", b"version one\n").await;
    real.load(&v1).await.expect("v1 loads");
    // Another base (not busybox) under the same kind of top layer: nothing is shared.
    let base = random_bytes(256 * 1024);
    let files: [(&str, &[u8]); 2] = [("/base", &base), ("/app/version", b"version one\n")];
    let other = real
        .nodes
        .layered_image("other", &real.nodes.repository("other"), "v1", &files)
        .await;
    let (outcome, _) = real.load(&other).await.expect("loads");
    assert!(
        matches!(outcome, NodeOutcome::Layers { layers: 2, total: 2, bytes } if bytes > 256 * 1024),
        "{outcome:?}"
    );
    assert_eq!(real.id_of(&other).as_deref(), Some(other.id.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_or_cut_stream_leaves_a_real_containerd_node_as_it_was() {
    let Some(docker) = engine().await else { return };
    let Some(real) = RealNode::start(&docker, "damaged").await else {
        return;
    };
    // A small base and a large top (256 KiB): byte 20000 of either archive, the OCI one or
    // `docker save`'s, falls inside the top layer, which the node does not have.
    let top = |first: u8| {
        let mut bytes = random_bytes(256 * 1024);
        bytes[0] = first;
        bytes
    };
    let repository = real.nodes.repository("backend");
    let image = |tag: &'static str, top: Vec<u8>| {
        let nodes = &real.nodes;
        let repository = repository.clone();
        async move {
            let files: [(&str, &[u8]); 2] = [("/base", b"base"), ("/top", &top)];
            nodes
                .layered_image("backend", &repository, tag, &files)
                .await
        }
    };
    let v1 = image("v1", top(1)).await;
    real.load(&v1).await.expect("v1 loads");
    let before = real.state();
    let v2 = image("v2", top(2)).await;
    for damage in ["cut 3000", "zero 20000 100"] {
        real.damage(Some(damage)).await;
        let (events, mut receiver) = Events::channel();
        let error = load::load_all(&docker, &real.loader, std::slice::from_ref(&v2), &events)
            .await
            .expect_err(damage);
        assert!(
            matches!(error, LoadError::Runtime { .. }),
            "{damage}: {error}"
        );
        let warned = drain(&mut receiver).into_iter().any(|e| {
            matches!(e, Event::Warning(line) if line.contains("sending only the layers it lacks failed") && line.contains("sending the whole image instead"))
        });
        assert!(warned, "{damage}: the layered load's failure is a warning");
        assert_eq!(real.state(), before, "{damage}: the node is as it was");
    }

    // A rebuild under the tag the node has: the failed import gives the tag back to the image
    // it named.
    let rebuilt = image("v1", top(3)).await;
    assert_ne!(rebuilt.id, v1.id);
    let error = real.load(&rebuilt).await.expect_err("damaged");
    assert!(matches!(error, LoadError::Runtime { .. }), "{error}");
    assert_eq!(real.state(), before, "the node is as it was");
    assert_eq!(real.id_of(&v1).as_deref(), Some(v1.id.as_str()));

    real.damage(None).await;
    let (outcome, _) = real.load(&v2).await.expect("the next run loads");
    assert!(
        matches!(
            outcome,
            NodeOutcome::Layers {
                layers: 1,
                total: 2,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(real.id_of(&v2).as_deref(), Some(v2.id.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_image_under_a_new_tag_is_tagged_on_a_real_containerd_node() {
    let Some(docker) = engine().await else { return };
    let Some(real) = RealNode::start(&docker, "retag").await else {
        return;
    };
    let v1 = two_layers(&real.nodes, "v1", b"version one\n").await;
    real.load(&v1).await.expect("v1 loads");
    // A cache-hit build under `--tag v2`: the same ID, just built.
    let options = bollard::query_parameters::TagImageOptionsBuilder::new()
        .repo(&v1.image.repository)
        .tag("v2")
        .build();
    docker.tag_image(&v1.id, Some(options)).await.expect("tag");
    let v2 = BuiltImage {
        image: todo_deploy::plan::ImageRef {
            tag: "v2".to_owned(),
            ..v1.image.clone()
        },
        ..v1.clone()
    };
    let (outcome, events) = real.load(&v2).await.expect("tags");
    let from = format!("docker.io/{}", v1.image);
    assert_eq!(outcome, NodeOutcome::Tagged { from: from.clone() });
    assert_eq!(outcome.bytes(), 0);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Load(LoadEvent::Tagged { from: f, .. }) if *f == from)),
        "{events:?}"
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::Load(LoadEvent::Started { .. }))),
        "nothing is sent"
    );
    assert_eq!(real.id_of(&v2).as_deref(), Some(v1.id.as_str()));
    let name = format!("docker.io/{}", v2.image);
    let output = real
        .containerd
        .run(&name, &["/bin/busybox", "cat", "/app/version"]);
    assert_eq!(output, "version one\n");
}

/// The median of `values`.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Seconds per run of: the load stage, its send alone, the `docker` CLI pipeline, a skipped load.
#[derive(Default)]
struct Timings {
    stage: Vec<f64>,
    send: Vec<f64>,
    cli: Vec<f64>,
    skipped: Vec<f64>,
}

/// Load throughput for a ~100 MiB image into a fake kind node: the load stage against
/// `docker save IMAGE | docker exec -i NODE ctr … import -` (the same import on the same node),
/// and the time of a load that finds the image present; once with the fake import checking the
/// archive, once with it discarding what it reads (the transport alone). `RUNS` runs (default
/// 3), medians.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run by scripts/measure-load"]
async fn measure_load_throughput() {
    let Some(docker) = engine().await else { return };
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let nodes = FakeNodes::new(&docker, "measure").await;
    let cluster = nodes.unique.clone();
    let node = nodes.start_kind(&cluster).await;
    let payload = random_bytes(100 * 1024 * 1024);
    let image = nodes
        .image("backend", &nodes.repository("backend"), "v1", &payload)
        .await;
    drop(payload);
    let (events, mut receiver) = Events::channel();
    let context = format!("kind-{cluster}");
    let loader = load::resolve(
        &docker,
        &target(LoaderKind::Kind),
        &context,
        &no_env,
        &events,
    )
    .await
    .expect("the fake node resolves");
    let import =
        "ctr --namespace=k8s.io images import --all-platforms --digests --snapshotter=overlayfs -";
    let pipeline = format!(
        "docker save {} | docker exec -i {node} {import}",
        image.image
    );
    let images = std::slice::from_ref(&image);
    let mut archive = 0u64;
    let name = format!("docker.io/{}", image.image);
    for discard in [false, true] {
        let recorded = discard.then_some((name.as_str(), &image));
        nodes.discard_imports(&node, recorded).await;
        let mut timings = Timings::default();
        for _ in 0..runs {
            nodes.forget_images(&node).await;
            let started = Instant::now();
            let loaded = load::load_all(&docker, &loader, images, &events)
                .await
                .expect("loads");
            timings.stage.push(started.elapsed().as_secs_f64());
            archive = loaded[0].outcome.bytes();
            assert!(archive > 0, "not sent: {loaded:?}");
            // The send alone: from the first byte exported to the last one imported, without
            // the "does the node have it" queries before and after.
            let send = drain(&mut receiver)
                .into_iter()
                .find_map(|event| match event {
                    Event::Load(
                        LoadEvent::Finished { elapsed, .. } | LoadEvent::Layers { elapsed, .. },
                    ) => Some(elapsed.as_secs_f64()),
                    _ => None,
                });
            timings.send.push(send.expect("a finished event"));

            nodes.forget_images(&node).await;
            let started = Instant::now();
            let status = std::process::Command::new("sh")
                .args(["-c", &pipeline])
                .stdout(std::process::Stdio::null())
                .status()
                .expect("sh");
            assert!(status.success(), "{pipeline}");
            timings.cli.push(started.elapsed().as_secs_f64());

            let started = Instant::now();
            let again = load::load_all(&docker, &loader, images, &events)
                .await
                .expect("loads");
            timings.skipped.push(started.elapsed().as_secs_f64());
            assert_eq!(again[0].outcome, NodeOutcome::AlreadyPresent);
        }
        report(discard, archive, timings);
    }
}

fn report(discard: bool, archive: u64, timings: Timings) {
    let mb = archive as f64 / 1e6;
    let runs = timings.stage.len();
    let what = if discard {
        "the node discards the archive (transport alone)"
    } else {
        "the node checks the archive (tar, sha256)"
    };
    let rate = |seconds: f64| format!("{seconds:.2}s = {:.0} MB/s", mb / seconds);
    eprintln!("{what}: {mb:.1} MB, medians of {runs} runs (every run in seconds)");
    eprintln!(
        "  load stage, bollard export -> exec stdin: {}  {:.2?}",
        rate(median(timings.stage.clone())),
        timings.stage
    );
    eprintln!(
        "    its send alone (no presence queries):  {}  {:.2?}",
        rate(median(timings.send.clone())),
        timings.send
    );
    eprintln!(
        "  docker save | docker exec -i NODE ctr …: {}  {:.2?}",
        rate(median(timings.cli.clone())),
        timings.cli
    );
    eprintln!(
        "  a load that finds the image present:     {:.0} ms  {:.3?}",
        median(timings.skipped.clone()) * 1000.0,
        timings.skipped
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_that_does_not_answer_is_named_with_the_fix() {
    let Some(docker) = engine().await else { return };
    let nodes = FakeNodes::new(&docker, "registry").await;
    // Nothing listens on port 1 of this host; the engine finds that out at once.
    let registry = "127.0.0.1:1";
    let repository = format!("{registry}/{}", nodes.repository("backend"));
    let image = nodes.image("backend", &repository, "v1", b"backend").await;
    let mut configured = target(LoaderKind::Registry);
    configured.registry = Some(registry.to_owned());
    let (events, _receiver) = Events::channel();
    let loader = load::resolve(&docker, &configured, "prod", &no_env, &events)
        .await
        .expect("a registry needs no cluster");
    assert!(loader.build_engine().is_none());

    let error = load::load_all(&docker, &loader, std::slice::from_ref(&image), &events)
        .await
        .expect_err("nothing listens");
    let message = error.to_string();
    assert!(
        message.starts_with(&format!("pushing `{}` failed: ", image.image)),
        "{message}"
    );
    assert!(message.contains("connection refused"), "{message}");
    let hint = error.hint().unwrap_or_default();
    assert!(hint.contains("is the registry running"), "{hint}");
}
