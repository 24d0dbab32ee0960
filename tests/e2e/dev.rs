//! `todo-deploy dev` against a cluster and the real Docker engine: a save rebuilds, loads and
//! rolls out only the service it belongs to, with its new pod's log line in the output; an
//! ignored file triggers nothing; a broken or deleted Dockerfile, or a configuration that no
//! longer validates, is shown and nothing is applied until it is fixed; a ConfigMap change rolls
//! both services; the lock keeps `up` out while `dev` runs; Ctrl-C leaves the
//! release running (recorded as one `Dev` revision) and `--cleanup` removes it. On the
//! stand-in the images really load, into a fake kind node. Every step waits on a line the run
//! printed or on the cluster's state, never on time.

use k8s_openapi::api::apps::v1::Deployment;
use todo_deploy::plan::Plan;

use crate::support::cluster::{App, Env, started_line};
use crate::support::docker;
use crate::support::nodes::FakeNodes;
use crate::support::running::Running;

/// A scenario's cluster, whose kube context is a kind cluster with one fake node container
/// (so `dev` really loads), or the real cluster of `TODO_DEPLOY_E2E_KUBECONFIG`.
struct Kind {
    env: Env,
    nodes: FakeNodes,
    node: String,
}

impl Kind {
    /// `None` without Docker on a laptop (a failure in CI): `dev` builds.
    async fn start(scenario: &str) -> Option<Kind> {
        let docker = docker::engine().await?;
        let nodes = FakeNodes::new(&docker, scenario).await;
        let cluster = nodes.unique.clone();
        let node = nodes.start_kind(&cluster).await;
        let env = Env::start_on_kind(scenario, &cluster).await;
        env.provide(App::Healthy, &[]).await;
        Some(Kind { env, nodes, node })
    }
}

/// The plan `dev` starts from (its build inputs and repositories).
fn plan(env: &Env) -> Plan {
    docker::plan(&env.project, &["e2e-values.yaml"], &[], None)
}

/// Writes `text` to `relative` in `service`'s context (see [`Env::provide_change`]).
fn change(env: &Env, plan: &Plan, service: &str, relative: &str, text: &str) -> String {
    env.provide_change(plan, App::Healthy, service, relative, text)
}

/// Ctrl-C, as a terminal sends it.
fn interrupt(run: &Running) {
    let status = std::process::Command::new("kill")
        .args(["-INT", &run.pid().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "SIGINT sent");
}

/// Waits for `line` unless it was printed already.
async fn saw(run: &mut Running, line: &str) {
    if !run.stderr.lines().any(|l| l == line) {
        run.until_line(|l| l == line).await;
    }
}

fn image(deployment: &Deployment) -> String {
    let spec = deployment.spec.as_ref().expect("a spec");
    let pod = spec.template.spec.as_ref().expect("a pod spec");
    pod.containers[0].image.clone().expect("an image")
}

/// The name of the running pod of `image`.
async fn pod_of(env: &Env, image: &str) -> String {
    let pods = env.pods().await;
    let pod = pods.iter().find(|p| {
        p.metadata.deletion_timestamp.is_none()
            && p.spec
                .as_ref()
                .is_some_and(|s| s.containers[0].image.as_deref() == Some(image))
    });
    pod.and_then(|p| p.metadata.name.clone())
        .unwrap_or_else(|| panic!("no pod of `{image}`"))
}

/// `backend-7c9d8f6b5-x2x7q` is `x2x7q` in a log line's prefix.
fn short(pod: &str) -> &str {
    pod.rsplit('-').next().unwrap_or(pod)
}

/// Waits for the end of turn `n` and checks how it ended.
async fn turn(dev: &mut Running, n: u32, ended: &str) -> String {
    let prefix = format!("dev: iteration {n} ");
    let line = dev.until_line(|l| l.starts_with(&prefix)).await;
    assert!(line.contains(&format!(" {ended} ")), "{}", dev.stderr);
    line
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_backend_file_rebuilds_loads_and_rolls_the_backend_alone() {
    let Some(kind) = Kind::start("dev-save").await else {
        return;
    };
    let env = &kind.env;
    let mut dev = Running::start(env.command(&["dev", "-v"]));
    turn(&mut dev, 1, "done").await;
    let profile = "dev profile: backend: 1 replica (configured: 2)";
    assert!(dev.stderr.contains(profile), "{}", dev.stderr);
    let frontend = env.deployment("frontend").await.expect("the frontend");
    let frontend_pod = pod_of(env, &image(&frontend)).await;

    // A file the backend's `.dockerignore` leaves out: seen, and nothing else happens.
    env.project
        .write("examples/todo-app/backend/debug.log", "noise\n");
    dev.until_line(|l| l.starts_with("dev: ignored") && l.contains("debug.log"))
        .await;

    let new_image = the_backend_alone(&kind, &mut dev).await;

    // The new backend pod's first line, in the output with its pod; the frontend untouched.
    let pod = pod_of(env, &new_image).await;
    let line = format!("backend {} | {}", short(&pod), started_line("backend"));
    saw(&mut dev, &line).await;
    let after = env.deployment("frontend").await.expect("the frontend");
    let generations = (after.metadata.generation, frontend.metadata.generation);
    assert_eq!(generations.0, generations.1, "frontend untouched");
    assert_eq!(
        pod_of(env, &image(&after)).await,
        frontend_pod,
        "its pod too"
    );

    // The lock is held for the whole run.
    let up = env.run(&["up"]).await;
    up.expect_code(5);
    assert!(up.stderr.contains("is being changed by"), "{}", up.stderr);

    ctrl_c_keeps_the_release(env, dev).await;
}

/// A backend file changes: only the backend is built, loaded and rolled out. Its new image.
async fn the_backend_alone(kind: &Kind, dev: &mut Running) -> String {
    let env = &kind.env;
    let imports = match env.standin() {
        Some(_) => kind.nodes.imports(&kind.node).await.len(),
        None => 0,
    };
    let mark = dev.stderr.len();
    // Content of this run alone, so the image is new to the engine.
    let text = format!("v2 of {}\n", env.namespace);
    let new_image = change(env, &plan(env), "backend", "www/version.txt", &text);
    let changed = dev.until_line(|l| l.starts_with("dev: changed:")).await;
    assert!(
        changed.contains("version.txt") && changed.ends_with("(backend)"),
        "{changed}"
    );
    assert!(
        !changed.contains("debug.log"),
        "the ignored file is not a change: {changed}"
    );
    turn(dev, 2, "done").await;
    let turn = dev.stderr[mark..].to_owned();
    let building = format!("build backend: building `{new_image}`");
    assert!(turn.contains(&building), "{turn}");
    assert!(
        !turn.contains("build frontend"),
        "the frontend is not rebuilt: {turn}"
    );
    assert!(!turn.contains("load frontend"), "nor loaded: {turn}");
    assert!(turn.contains("Deployment/frontend unchanged"), "{turn}");
    assert!(turn.contains("rollout backend: ready"), "{turn}");
    assert!(!turn.contains("rollout frontend"), "nor waited for: {turn}");
    if env.standin().is_some() {
        // Whole or layer by layer: the new image went to the node, named with both.
        let sent = turn.lines().find(|l| l.starts_with("load backend: sent"));
        let sent = sent.unwrap_or_else(|| panic!("no load line: {turn}"));
        assert!(sent.contains(&format!("`{new_image}`")), "{sent}");
        assert!(sent.contains(&format!("to `{}`", kind.node)), "{sent}");
        let now = kind.nodes.imports(&kind.node).await;
        assert_eq!(now.len(), imports + 1, "one image sent: {now:?}");
    }
    let backend = env.deployment("backend").await.expect("the backend");
    assert_eq!(image(&backend), new_image);
    new_image
}

/// Ctrl-C: the release keeps running, recorded as one `Dev` revision; the lock is released.
async fn ctrl_c_keeps_the_release(env: &Env, dev: Running) {
    interrupt(&dev);
    let run = dev.finish().await;
    run.expect_code(0);
    assert!(
        run.stderr.contains("the release keeps running"),
        "{}",
        run.stderr
    );
    let recorded = "dev: recorded as revision 1 (deployed)";
    assert!(run.stderr.contains(recorded), "{}", run.stderr);
    env.run(&["status"]).await.expect_code(0);
    let history = env.run(&["history", "-o", "json"]).await;
    history.expect_code(0);
    let revisions: serde_json::Value = serde_json::from_str(&history.stdout).expect("json");
    let revisions = revisions.as_array().expect("a list");
    assert_eq!(revisions.len(), 1, "{}", history.stdout);
    assert_eq!(revisions[0]["description"], "Dev", "{}", history.stdout);
    assert_eq!(revisions[0]["status"], "deployed", "{}", history.stdout);
    let lease = "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/todo-deploy.todo";
    assert!(env.get_json(lease).await.is_none(), "the lock is released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_dockerfile_is_shown_and_dev_waits_for_the_fix() {
    let Some(kind) = Kind::start("dev-broken").await else {
        return;
    };
    let env = &kind.env;
    let started = plan(env);
    let mut dev = Running::start(env.command(&["dev", "--cleanup"]));
    turn(&mut dev, 1, "done").await;
    let before = generation(env, "backend").await;
    let dockerfile = "examples/todo-app/backend/Dockerfile";
    let healthy = env.project.read(dockerfile);

    // A step that fails: its step in the error, nothing applied.
    let broken = healthy.replacen(
        "COPY www /www\n",
        "COPY www /www\nCOPY missing-file /x\n",
        1,
    );
    env.project.write(dockerfile, &broken);
    let error = dev.until_line(|l| l.starts_with("error: ")).await;
    let step = error.contains("failed at step") && error.contains("COPY missing-file /x");
    assert!(step, "{error}");
    turn(&mut dev, 2, "failed").await;
    let nothing = "dev: nothing of it was applied";
    assert!(dev.stderr.contains(nothing), "{}", dev.stderr);
    assert_eq!(generation(env, "backend").await, before, "nothing applied");

    // No Dockerfile at all: the configuration's file and line.
    std::fs::remove_file(env.project.path().join(dockerfile)).expect("remove the Dockerfile");
    let error = dev.until_line(|l| l.starts_with("error: ")).await;
    turn(&mut dev, 3, "failed").await;
    let shown = &dev.stderr[dev.stderr.rfind(&error).expect("the error")..];
    assert!(shown.contains("there is no Dockerfile at"), "{shown}");
    assert!(
        shown.contains("config/todo-deploy.yaml:"),
        "file and line: {shown}"
    );

    // The fix: built, loaded and rolled out.
    let fixed = format!("{healthy}# fixed in {}\n", env.namespace);
    let image = change(env, &started, "backend", "Dockerfile", &fixed);
    turn(&mut dev, 4, "done").await;
    assert_eq!(image_of(env, "backend").await, image);

    a_config_edit_is_checked_then_applied(env, &mut dev).await;

    // `--cleanup`: Ctrl-C removes the release.
    interrupt(&dev);
    let run = dev.finish().await;
    run.expect_code(0);
    let removing = "removing the release (`--cleanup`)";
    assert!(run.stderr.contains(removing), "{}", run.stderr);
    assert!(env.deployment("backend").await.is_none(), "{}", run.stderr);
    assert!(env.deployment("frontend").await.is_none());
    assert!(env.live_pods().await.is_empty(), "down waited for the pods");
    env.run(&["status"]).await.expect_code(4);
}

/// A configuration edit that no longer validates: its file and line, nothing applied. Fixed,
/// with a ConfigMap change: applied, and both Deployments roll (their checksum changed).
async fn a_config_edit_is_checked_then_applied(env: &Env, dev: &mut Running) {
    let values = env.project.read("e2e-values.yaml");
    let typo = values.replacen("  backend:\n", "  backend:\n    replica: 2\n", 1);
    env.project.write("e2e-values.yaml", &typo);
    let error = dev.until_line(|l| l.starts_with("error: ")).await;
    let placed = error.contains("e2e-values.yaml:") && error.contains("`services.backend.replica`");
    assert!(placed, "{error}");
    turn(dev, 5, "failed").await;

    let mark = dev.stderr.len();
    let changed = format!("{values}configMap:\n  data:\n    ENVIRONMENT: dev\n");
    env.project.write("e2e-values.yaml", &changed);
    turn(dev, 6, "done").await;
    let turn = &dev.stderr[mark..];
    assert!(turn.contains("ConfigMap/todo-config configured"), "{turn}");
    let both = turn.contains("rollout backend: ready") && turn.contains("rollout frontend: ready");
    assert!(both, "{turn}");
    assert!(!turn.contains("build "), "no image changed: {turn}");
    let config = env
        .get_json("/api/v1/namespaces/{ns}/configmaps/todo-config")
        .await;
    assert_eq!(config.expect("the ConfigMap")["data"]["ENVIRONMENT"], "dev");
}

async fn generation(env: &Env, deployment: &str) -> Option<i64> {
    let found = env.deployment(deployment).await;
    found.expect("the Deployment").metadata.generation
}

async fn image_of(env: &Env, deployment: &str) -> String {
    image(&env.deployment(deployment).await.expect("the Deployment"))
}
