//! Clusters of several nodes: `up` on a kind cluster of two node containers (control plane and
//! worker) loads every image into both, once, and its report names each node.

use crate::support::cluster::{App, Env};
use crate::support::nodes::FakeNodes;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_loads_every_node_of_a_two_node_kind_cluster_and_names_each() {
    let Some(docker) = crate::support::docker::engine().await else {
        assert!(
            !crate::support::required_in_ci("a Docker engine"),
            "no Docker engine"
        );
        return;
    };
    let nodes = FakeNodes::new(&docker, "two-nodes").await;
    let cluster = nodes.unique.clone();
    let control_plane = format!("{cluster}-control-plane");
    let worker = format!("{cluster}-worker");
    for (node, role) in [(&control_plane, "control-plane"), (&worker, "worker")] {
        let labels = [
            ("io.x-k8s.kind.cluster", cluster.as_str()),
            ("io.x-k8s.kind.role", role),
        ];
        nodes.start(node, &labels, None).await;
    }
    let env = Env::start_on_kind("two-nodes", &cluster).await;
    if env.standin_only("fake kind node containers").is_none() {
        return;
    }
    env.provide(App::Healthy, &[]).await;
    let up = env.run(&["up"]).await;
    up.expect_code(0);
    for service in ["backend", "frontend"] {
        let line = up
            .stderr
            .lines()
            .find(|l| l.starts_with(&format!("load {service}: sent")))
            .unwrap_or_else(|| panic!("a load line for {service}:\n{}", up.stderr));
        for node in [&control_plane, &worker] {
            assert!(line.contains(&format!("`{node}`")), "{node} in: {line}");
        }
    }
    for node in [&control_plane, &worker] {
        let imports = nodes.imports(node).await;
        assert_eq!(imports.len(), 2, "{node}: both images, once: {imports:?}");
        for service in ["backend", "frontend"] {
            let image = format!("todo-e2e-{service}");
            assert!(
                imports.iter().any(|i| i.contains(&image)),
                "{node}: {imports:?}"
            );
        }
    }
}
