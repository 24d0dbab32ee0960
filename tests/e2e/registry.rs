//! Remote clusters: `up` pushes to a real registry (Debian's Distribution 2.8, started per
//! scenario) only what it lacks, and deploys by the manifest digest the registry stores; a
//! registry with a login gets a pull Secret (the stand-in's kubelet pulls with it, from the
//! same registry, over HTTP); a refused or unreachable registry stops the run before any
//! cluster change; a cluster's published local registry (KEP-1755) switches `up` to pushing.
//!
//! The nodes of a real cluster cannot reach a registry on this machine's loopback, so the
//! scenarios whose pods pull need the stand-in and say so on a real cluster; the refusals,
//! which stop before the cluster is touched, run on both.

use std::io::Read;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

use crate::support::cluster::{App, Env, behavior, image_user};
use crate::support::registry::Registry;
use crate::support::{Run, install_executable, required_in_ci};
use k8s_standin::ImageConfig;

const LOOPBACK: &str =
    "the nodes of a real cluster cannot pull from a registry on this machine's loopback";

/// The scenario's environment when everything it needs is here: a Docker engine and, for the
/// nodes to pull from the loopback registry, the stand-in.
async fn ready(scenario: &str) -> Option<Env> {
    let env = with_docker(scenario).await?;
    env.standin_only(LOOPBACK)?;
    Some(env)
}

/// The scenario's environment when a Docker engine answers: nothing is pulled, so a real
/// cluster does as well.
async fn with_docker(scenario: &str) -> Option<Env> {
    if crate::support::docker::engine().await.is_none() {
        assert!(!required_in_ci("a Docker engine"), "no Docker engine");
        return None;
    }
    Some(Env::start(scenario).await)
}

/// Tells the stand-in's kubelet that it may pull the fixture images from `pull_host` (the
/// registry as the node reaches it), where they behave as healthy fixture services.
fn pull_from(env: &Env, pull_host: &str) {
    let config = ImageConfig::default().user(image_user(App::Healthy));
    let repositories = ["backend", "frontend"]
        .iter()
        .map(|s| {
            let repository = format!("todo-e2e-{s}");
            (repository, behavior(App::Healthy, s), config.clone())
        })
        .collect();
    if let Some(standin) = env.standin() {
        standin.node_images().pull_from(pull_host, repositories);
    }
}

/// The images of the Deployments, by name.
async fn deployed_images(env: &Env) -> Vec<(String, String, String)> {
    let mut images = Vec::new();
    for name in ["backend", "frontend"] {
        let deployment = env.deployment(name).await.expect("the Deployment");
        let pod = deployment.spec.unwrap().template.spec.unwrap();
        let container = &pod.containers[0];
        images.push((
            name.to_owned(),
            container.image.clone().unwrap_or_default(),
            container.image_pull_policy.clone().unwrap_or_default(),
        ));
    }
    images
}

/// `up` against the registry at `host`.
fn up_args(host: &str) -> Vec<String> {
    ["up", "--loader", "registry", "--set"]
        .iter()
        .map(|s| s.to_string())
        .chain([format!("cluster.registry={host}")])
        .collect()
}

async fn run(env: &Env, args: &[String]) -> Run {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    env.run(&args).await
}

/// The tag `up` pushes `service` with (from `render`).
async fn tag(env: &Env, host: &str, service: &str) -> String {
    let set = format!("cluster.registry={host}");
    let loader = "cluster.loader=registry";
    let images = env.images(&["--set", loader, "--set", &set]).await;
    let image = images
        .iter()
        .find(|i| i.contains(service))
        .expect("the service's image");
    image.rsplit_once(':').expect("a tag").1.to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_pushes_only_what_the_registry_lacks_and_deploys_by_digest() {
    let Some(registry) = Registry::start() else {
        return;
    };
    let Some(env) = ready("registry-push").await else {
        return;
    };
    let host = registry.host.clone();
    pull_from(&env, &host);
    let up = up_args(&host);

    run(&env, &up).await.expect_code(0);
    deployed_by_digest(&env, &registry).await;
    let pushed = |repository: &str| registry.blob_uploads(repository).len();
    let (backend_blobs, frontend_blobs) = (pushed("todo-e2e-backend"), pushed("todo-e2e-frontend"));
    // Four layers (busybox, www, empty, live-only) and the image config each, but for the
    // layers the other repository had by then (the engine mounts them from there instead: how
    // many depends on which push got there first); never a blob twice.
    for repository in ["todo-e2e-backend", "todo-e2e-frontend"] {
        let uploads = registry.blob_uploads(repository);
        assert!((2..=5).contains(&uploads.len()), "{uploads:?}");
        let distinct: std::collections::BTreeSet<&String> = uploads.iter().collect();
        assert_eq!(
            distinct.len(),
            uploads.len(),
            "a blob sent twice: {uploads:?}"
        );
    }
    status_shows_tag_and_digest(&env, &registry).await;

    // Nothing changed: no blob is sent, nothing is recorded.
    let stored = registry.stored_bytes();
    let again = run(&env, &up).await;
    again.expect_code(0);
    assert!(again.stderr.contains("is up to date"), "{}", again.stderr);
    assert_eq!(pushed("todo-e2e-backend"), backend_blobs);
    assert_eq!(pushed("todo-e2e-frontend"), frontend_blobs);
    assert_eq!(
        registry.stored_bytes(),
        stored,
        "the registry stored nothing new"
    );
    // `diff` pushes nothing, and knows the digests that run were pushed from these tags.
    let mut diff = up.clone();
    diff[0] = "diff".to_owned();
    let diff = run(&env, &diff).await;
    diff.expect_code(0);
    assert_eq!(diff.stdout, "no changes\n", "{}", diff.stderr);

    // One file of the backend changes: one layer (and the new image config) is sent. (In the
    // last layer's directory: the classic builder stamps every layer it rebuilds after a
    // changed one with new times, which is new content to any registry.)
    env.project
        .write("examples/todo-app/backend/live-only/version.txt", "2\n");
    let before = registry.blob_uploads("todo-e2e-backend");
    let changed = run(&env, &up).await;
    changed.expect_code(0);
    let after = registry.blob_uploads("todo-e2e-backend");
    one_layer_and_the_config(&env, &host, &after[before.len()..]).await;
    assert_eq!(pushed("todo-e2e-frontend"), frontend_blobs);
    deployed_by_digest(&env, &registry).await;
    assert!(
        changed.stderr.contains("1 of 4 layers"),
        "the push says what it sent:\n{}",
        changed.stderr
    );
}

/// Each Deployment runs the digest the registry serves for the tag `up` pushed, pulled
/// `IfNotPresent`, with the tag in its version label and the tagged reference annotated.
async fn deployed_by_digest(env: &Env, registry: &Registry) {
    let host = &registry.host;
    for (name, image, policy) in deployed_images(env).await {
        let repository = format!("todo-e2e-{name}");
        let tag = tag(env, host, &name).await;
        let digest = registry
            .manifest_digest(&repository, &tag)
            .expect("the registry has the pushed tag");
        assert_eq!(image, format!("{host}/{repository}@{digest}"), "{name}");
        assert_eq!(policy, "IfNotPresent");
        let deployment = env.deployment(&name).await.unwrap();
        let labels = deployment.metadata.labels.unwrap();
        assert_eq!(
            labels["app.kubernetes.io/version"], tag,
            "the tag, for people"
        );
        let annotations = deployment.metadata.annotations.unwrap();
        assert_eq!(
            annotations["todo-deploy/image"],
            format!("{host}/{repository}:{tag}")
        );
    }
}

async fn status_shows_tag_and_digest(env: &Env, registry: &Registry) {
    let host = &registry.host;
    let status = env.run(&["status"]).await;
    status.expect_code(0);
    let backend_tag = tag(env, host, "backend").await;
    let backend_digest = registry
        .manifest_digest("todo-e2e-backend", &backend_tag)
        .unwrap();
    let shown = format!("{host}/todo-e2e-backend:{backend_tag}@{backend_digest}");
    assert!(
        status.stdout.contains(&shown),
        "status shows tag and digest:\n{}",
        status.stdout
    );
}

/// `new` uploads are one layer and the image config of the backend's new image.
async fn one_layer_and_the_config(env: &Env, host: &str, new: &[String]) {
    let docker = crate::support::docker::engine().await.unwrap();
    let new_tag = tag(env, host, "backend").await;
    let config = docker
        .inspect_image(&format!("{host}/todo-e2e-backend:{new_tag}"))
        .await
        .unwrap()
        .id
        .unwrap();
    let layers: Vec<&String> = new.iter().filter(|d| **d != config).collect();
    assert_eq!(new.len(), 2, "one layer and the config: {new:?}");
    assert_eq!(
        layers.len(),
        1,
        "exactly one layer: {new:?} (config {config})"
    );
}

/// A credential helper that knows one login, and logs each question to `asked`.
fn fake_helper(dir: &std::path::Path, host: &str, user: &str, password: &str) {
    let script = format!(
        "#!/bin/sh\nread server\necho \"$1 $server\" >> {asked}\nif [ \"$1\" = get ] && [ \"$server\" = \"{host}\" ]; then\n  printf '{{\"ServerURL\":\"%s\",\"Username\":\"{user}\",\"Secret\":\"{password}\"}}' \"$server\"\nelse\n  echo 'credentials not found in native keychain'\n  exit 1\nfi\n",
        asked = dir.join("asked").display()
    );
    let source = dir.join("helper.sh");
    std::fs::write(&source, script).unwrap();
    install_executable(&source, &dir.join("bin/docker-credential-e2e"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_registry_gets_a_pull_secret_and_a_wrong_login_changes_nothing() {
    let password = "planted-registry-pass-4e7a1c";
    let Some(registry) = Registry::with_login("e2e", password) else {
        return;
    };
    let Some(env) = ready("registry-login").await else {
        return;
    };
    let host = registry.host.clone();
    pull_from(&env, &host);
    let up = up_args(&host);
    let docker_config = "./.home/.docker/config.json";

    // A wrong password in `auths`: the registry's 401, the fix, and nothing applied.
    env.project.write(
        docker_config,
        &registry.docker_config(Some(("e2e", "wrong-password"))),
    );
    let refused = run(&env, &up).await;
    refused.expect_code(1);
    let text = refused.stderr.clone();
    assert!(
        text.contains(&format!("the registry `{host}` answered HTTP 401")),
        "{text}"
    );
    assert!(
        text.contains(&format!("`docker login {host}` again")),
        "{text}"
    );
    assert!(
        env.get_json("/api/v1/namespaces/{ns}").await.is_none(),
        "nothing is applied, not even the namespace"
    );

    // The login from a credential helper (`credsStore`), as the Docker CLI runs it.
    let helper = tempfile::tempdir().unwrap();
    fake_helper(helper.path(), &host, "e2e", password);
    env.project
        .write(docker_config, r#"{"credsStore":"e2e","auths":{}}"#);
    let path = format!(
        "{}:{}",
        helper.path().join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let args: Vec<&str> = up.iter().map(String::as_str).collect();
    let deployed = env
        .run_with(&args, |c| {
            c.env("PATH", &path);
        })
        .await;
    deployed.expect_code(0);
    let asked = std::fs::read_to_string(helper.path().join("asked")).unwrap();
    assert!(asked.contains(&format!("get {host}")), "{asked}");

    pull_secret_holds_the_login(&env, &host, password).await;
    let mut diff_args = up.clone();
    diff_args[0] = "diff".to_owned();
    let diff = run(&env, &diff_args).await;
    diff.expect_code(0);
    assert_eq!(
        diff.stdout, "no changes\n",
        "the pull Secret stays: {}",
        diff.stderr
    );
    let outputs = vec![
        refused.all_output(),
        deployed.all_output(),
        diff.all_output(),
    ];
    the_login_is_nowhere_else(&env, outputs, password).await;
}

/// The pull Secret: the registry's login, referenced by both Deployments, which the stand-in's
/// kubelet pulled with (the registry refuses anonymous pulls).
async fn pull_secret_holds_the_login(env: &Env, host: &str, password: &str) {
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.namespace);
    let pull = secrets.get("todo-registry").await.expect("the pull Secret");
    assert_eq!(
        pull.type_.as_deref(),
        Some("kubernetes.io/dockerconfigjson")
    );
    let config: serde_json::Value =
        serde_json::from_slice(&pull.data.unwrap()[".dockerconfigjson"].0).unwrap();
    assert_eq!(config["auths"][host]["password"], password);
    for name in ["backend", "frontend"] {
        let deployment = env.deployment(name).await.unwrap();
        let pod = deployment.spec.unwrap().template.spec.unwrap();
        let refs = pod.image_pull_secrets.expect("imagePullSecrets");
        assert_eq!(refs[0].name, "todo-registry", "{name}");
        assert!(
            pod.containers[0]
                .image
                .as_ref()
                .unwrap()
                .contains("@sha256:")
        );
    }
}

/// Not in any output (`outputs`, and what the read-only commands print), not in the
/// release's records.
async fn the_login_is_nowhere_else(env: &Env, outputs: Vec<String>, password: &str) {
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.namespace);
    let auth = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("e2e:{password}"),
    );
    let mut texts = outputs;
    texts.extend([
        env.run(&["status", "-o", "json"]).await.all_output(),
        env.run(&["history", "-o", "json"]).await.all_output(),
        env.run(&["render"]).await.all_output(),
    ]);
    let records = secrets
        .list(&ListParams::default().labels("todo-deploy.io/owner=todo-deploy"))
        .await
        .unwrap()
        .items;
    assert!(!records.is_empty());
    for record in records {
        let gz = &record.data.unwrap()["release"].0;
        let mut json = String::new();
        flate2::read::GzDecoder::new(gz.as_slice())
            .read_to_string(&mut json)
            .unwrap();
        assert!(
            json.contains("todo-registry"),
            "the record has the pull Secret"
        );
        texts.push(json);
    }
    for text in texts {
        assert!(!text.contains(password), "the password leaked:\n{text}");
        assert!(!text.contains(&auth), "the login leaked:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusing_or_unreachable_registries_stop_before_any_cluster_change() {
    let Some(read_only) = Registry::read_only() else {
        return;
    };
    let Some(env) = with_docker("registry-refused").await else {
        return;
    };
    let refused = run(&env, &up_args(&read_only.host)).await;
    refused.expect_code(1);
    let expected = format!("the registry `{}` answered HTTP 405", read_only.host);
    assert!(refused.stderr.contains(&expected), "{}", refused.stderr);
    assert!(refused.stderr.contains("read-only"), "{}", refused.stderr);

    // A port nobody listens on.
    let nobody = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let host = format!("127.0.0.1:{nobody}");
    let unreachable = run(&env, &up_args(&host)).await;
    crate::support::registry::untag(&host).await;
    unreachable.expect_code(1);
    let expected = format!("the registry `{host}` did not answer");
    assert!(
        unreachable.stderr.contains(&expected),
        "{}",
        unreachable.stderr
    );
    assert!(unreachable.stderr.contains("help: is the registry running"));

    // A credential helper that is not installed.
    env.project.write(
        "./.home/.docker/config.json",
        r#"{"credHelpers":{"127.0.0.1:9":"surely-absent-e2e"}}"#,
    );
    let helperless = run(&env, &up_args("127.0.0.1:9")).await;
    helperless.expect_code(1);
    assert!(
        helperless
            .stderr
            .contains("the credential helper `docker-credential-surely-absent-e2e`"),
        "{}",
        helperless.stderr
    );
    assert!(env.get_json("/api/v1/namespaces/{ns}").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_local_registry_switches_up_to_pushing() {
    let Some(registry) = Registry::start() else {
        return;
    };
    let Some(mut env) = ready("registry-hosting").await else {
        return;
    };
    // kind's ConfigMap: this machine pushes to `host`, the node pulls from another name for
    // the same registry.
    let port = registry.host.rsplit_once(':').unwrap().1;
    let from_runtime = format!("localhost:{port}");
    pull_from(&env, &from_runtime);
    let config_maps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(env.client.clone(), "kube-public");
    let hosting = serde_json::from_value(json!({
        "metadata": {"name": "local-registry-hosting", "namespace": "kube-public"},
        "data": {"localRegistryHosting.v1": format!(
            "host: \"{}\"\nhostFromContainerRuntime: \"{from_runtime}\"\nhelp: \"https://kind.sigs.k8s.io/docs/user/local-registry/\"\n",
            registry.host
        )}
    }))
    .unwrap();
    config_maps
        .create(&PostParams::default(), &hosting)
        .await
        .unwrap();
    env.choose_loader();

    let up = env.run(&["up", "-v"]).await;
    up.expect_code(0);
    assert!(
        up.stderr.contains("the cluster publishes a local registry"),
        "{}",
        up.stderr
    );
    for (name, image, policy) in deployed_images(&env).await {
        let repository = format!("todo-e2e-{name}");
        let uploads = registry.blob_uploads(&repository).len();
        assert!(
            (4..=5).contains(&uploads),
            "{name}: pushed, {uploads} uploads"
        );
        let prefix = format!("{from_runtime}/{repository}@sha256:");
        assert!(image.starts_with(&prefix), "{image}");
        let digest = image.rsplit_once('@').unwrap().1;
        assert!(
            registry.manifest_digest(&repository, digest).is_some(),
            "the registry serves {digest}"
        );
        assert_eq!(policy, "IfNotPresent");
    }
}

/// `dev` with a registry deploys what it pushed by the digest the registry reported, as `up`
/// does (it deployed by tag before), and records that digest in its `Dev` revision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_deploys_what_it_pushed_by_digest() {
    let Some(registry) = Registry::start() else {
        return;
    };
    let Some(env) = ready("registry-dev").await else {
        return;
    };
    let host = registry.host.clone();
    pull_from(&env, &host);
    let mut args = up_args(&host);
    args[0] = "dev".to_owned();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut dev = crate::support::running::Running::start(env.command(&args));
    let line = dev.until_line(|l| l.starts_with("dev: iteration 1 ")).await;
    assert!(line.contains(" done "), "{}", dev.stderr);
    deployed_by_digest(&env, &registry).await;
    let status = std::process::Command::new("kill")
        .args(["-INT", &dev.pid().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "SIGINT sent");
    dev.finish().await.expect_code(0);
    let history = env.run(&["history", "-o", "json"]).await;
    history.expect_code(0);
    assert!(
        history
            .stdout
            .contains(&format!("{host}/todo-e2e-backend@sha256:")),
        "the revision records the digest: {}",
        history.stdout
    );
}
