//! `up`, `upgrade` and `diff` against a cluster: what the user sees, the exit code, and the
//! cluster afterwards.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};

use crate::support::SECRETS;
use crate::support::cluster::{App, Env, behavior, patient};
use crate::support::running::Running;

/// Probes that tolerate a slow start: a slow app is not a failing one.
fn available(deployment: &Deployment) -> i32 {
    deployment
        .status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

fn image(deployment: &Deployment) -> String {
    deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .image
        .clone()
        .unwrap()
}

fn checksum(deployment: &Deployment) -> String {
    deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .metadata
        .as_ref()
        .unwrap()
        .annotations
        .as_ref()
        .unwrap()["todo-deploy/config-checksum"]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_up_then_up_again_with_nothing_changed() {
    let env = Env::start("first-up").await;
    env.provide(App::Healthy, &[]).await;
    let run = env.run(&["up"]).await;
    run.expect_code(0);
    assert!(
        run.stderr.contains("Deployment/backend created"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("rollout backend: ready"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!(
            "release `todo` revision 1 is ready in namespace `{}`",
            env.namespace
        )),
        "{}",
        run.stderr
    );

    for name in ["backend", "frontend"] {
        let deployment = env.deployment(name).await.expect("the Deployment");
        assert_eq!(available(&deployment), 2, "{name} available");
        let status = deployment.status.as_ref().unwrap();
        assert_eq!(status.observed_generation, deployment.metadata.generation);
    }
    let secret: Secret = Api::namespaced(env.client.clone(), &env.namespace)
        .get("todo-secrets")
        .await
        .unwrap();
    let data = secret.data.unwrap();
    for (key, value) in SECRETS {
        assert_eq!(data[key].0, value.as_bytes(), "Secret data {key}");
    }
    let config = env
        .get_json("/api/v1/namespaces/{ns}/configmaps/todo-config")
        .await
        .unwrap();
    assert_eq!(config["data"]["ENVIRONMENT"], "production");
    let ingress = env
        .get_json("/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses/todo")
        .await
        .unwrap();
    assert_eq!(ingress["spec"]["rules"][0]["host"], "todo.local");
    let managers: Vec<String> = env
        .deployment("backend")
        .await
        .unwrap()
        .metadata
        .managed_fields
        .unwrap()
        .iter()
        .filter(|m| m.operation.as_deref() == Some("Apply"))
        .map(|m| m.manager.clone().unwrap())
        .collect();
    assert_eq!(managers, ["todo-deploy"], "one field manager applies");

    let generation = env.deployment("backend").await.unwrap().metadata.generation;
    let mut pods: Vec<String> = env
        .pods()
        .await
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect();
    pods.sort();
    let started = Instant::now();
    let again = env.run(&["up"]).await;
    let elapsed = started.elapsed();
    again.expect_code(0);
    // Nothing changed: nothing is configured, and no revision is recorded (item 5 of the
    // real-cluster findings: four no-change runs made four identical revisions).
    assert!(
        again
            .stderr
            .contains("release `todo` is up to date (revision 1)"),
        "{}",
        again.stderr
    );
    assert!(!again.stderr.contains("configured\n"), "{}", again.stderr);
    let history = env.run(&["history", "-o", "json"]).await;
    history.expect_code(0);
    let revisions: serde_json::Value = serde_json::from_str(&history.stdout).unwrap();
    assert_eq!(revisions.as_array().unwrap().len(), 1, "{}", history.stdout);
    assert_eq!(
        env.deployment("backend").await.unwrap().metadata.generation,
        generation
    );
    let mut after: Vec<String> = env
        .pods()
        .await
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect();
    after.sort();
    assert_eq!(pods, after, "no pod was replaced");
    eprintln!(
        "measurement: no-change `up` (apply + wait, no build) took {} ms",
        elapsed.as_millis()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_to_a_tag_keeps_ready_pods_all_the_way() {
    let env = Env::start("upgrade").await;
    env.provide(App::Healthy, &[]).await;
    env.provide(App::Healthy, &["--tag", "v2"]).await;
    env.run(&["up"]).await.expect_code(0);
    let run = env.run(&["upgrade", "--tag", "v2"]).await;
    run.expect_code(0);
    assert!(
        run.stderr.contains("Deployment/backend configured"),
        "{}",
        run.stderr
    );
    for name in ["backend", "frontend"] {
        let deployment = env.deployment(name).await.unwrap();
        assert_eq!(image(&deployment), format!("todo-e2e-{name}:v2"));
        assert_eq!(available(&deployment), 2);
        assert_eq!(
            deployment.status.as_ref().unwrap().replicas,
            Some(2),
            "no old replicas left"
        );
    }
    if let Some(standin) = env.standin() {
        // maxUnavailable 0: once both pods were ready, never fewer than two ready pods.
        for deployment in ["backend", "frontend"] {
            let mut ready: BTreeMap<String, bool> = BTreeMap::new();
            let mut reached = false;
            for record in standin
                .pod_history()
                .iter()
                .filter(|r| r.deployment.as_deref() == Some(deployment))
            {
                ready.insert(
                    record.name.clone(),
                    record.ready && record.phase != "Deleted",
                );
                let count = ready.values().filter(|r| **r).count();
                if count >= 2 {
                    reached = true;
                }
                assert!(
                    !reached || count >= 2,
                    "{deployment} dropped to {count} ready pods at {}",
                    record.time
                );
            }
            assert!(reached);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_needs_an_installed_release() {
    let env = Env::start("upgrade-nothing").await;
    let run = env.run(&["upgrade", "--tag", "v2"]).await;
    run.expect_code(1);
    assert!(
        run.stderr.contains(&format!(
            "release `todo` is not installed in namespace `{}`",
            env.namespace
        )),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("todo-deploy up"), "{}", run.stderr);
    assert!(env.deployment("backend").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_change_rolls_the_pods() {
    let env = Env::start("config-change").await;
    env.provide(App::Healthy, &[]).await;
    env.run(&["up"]).await.expect_code(0);
    let before = env.deployment("backend").await.unwrap();
    let old_pods = env.live_pods().await;
    let run = env
        .run(&["up", "--set", "configMap.data.ENVIRONMENT=staging"])
        .await;
    run.expect_code(0);
    assert!(
        run.stderr.contains("ConfigMap/todo-config configured"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("Deployment/backend configured"),
        "{}",
        run.stderr
    );
    let after = env.deployment("backend").await.unwrap();
    assert_ne!(checksum(&before), checksum(&after));
    assert_eq!(image(&before), image(&after), "same image, new pods");
    // Done means what `kubectl rollout status` means: old pods may still be terminating.
    let new_pods = env.live_pods().await;
    assert_eq!(new_pods.len(), 4);
    assert!(
        new_pods.iter().all(|p| !old_pods.contains(p)),
        "every pod replaced: {old_pods:?} -> {new_pods:?}"
    );
}

/// A failing rollout: exit 1 well before the timeout, with the reason, and the cluster left as applied.
async fn failing(scenario: &str, app: Option<App>, extra: &[&str], expected: &[&str]) -> String {
    let env = Env::start(scenario).await;
    if let Some(app) = app {
        // `render` (which names the images) takes no `--skip-checks`.
        let rendered: Vec<&str> = extra
            .iter()
            .copied()
            .filter(|a| *a != "--skip-checks")
            .collect();
        env.provide(app, &rendered).await;
    }
    let mut args = vec!["up"];
    args.extend_from_slice(extra);
    let started = Instant::now();
    let run = env.run(&args).await;
    let elapsed = started.elapsed();
    run.expect_code(1);
    for text in expected {
        assert!(
            run.stderr.contains(text),
            "expected {text:?} in:\n{}",
            run.stderr
        );
    }
    assert!(
        elapsed < Duration::from_secs(60),
        "failed fast, not at the 2m timeout: {elapsed:?}"
    );
    assert!(env.deployment("backend").await.is_some(), "left as applied");
    run.stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_image_is_reported() {
    // A tag nobody built: on a real cluster as on the stand-in, the node has no such image.
    failing(
        "missing-image",
        None,
        &["--no-build", "--tag", "never-built"],
        &[
            "the rollout failed",
            "is not on the node (ErrImage",
            "load the image into the cluster's node",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loop_is_reported_with_its_log() {
    failing(
        "crash-loop",
        Some(App::Crashing),
        &[],
        &[
            "keeps crashing (CrashLoopBackOff",
            "last exit code 3",
            "| starting backend",
            "| error: cannot connect to the database",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_readiness_probe_is_reported() {
    failing(
        "probe",
        Some(App::NotReady),
        &[],
        &[
            "Readiness probe failed: HTTP probe failed with statuscode: 404",
            "check the probe `path`",
        ],
    )
    .await;
}

/// Real-cluster finding 1: a container the kubelet restarts because its liveness probe fails is
/// not a crash. Readiness waits a minute, so only the liveness probe speaks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_liveness_probe_is_reported() {
    let stderr = failing(
        "liveness",
        Some(App::NotLive),
        &[
            "--set",
            "services.backend.probes.readiness.initialDelaySeconds=60",
            "--set",
            "services.frontend.probes.readiness.initialDelaySeconds=60",
        ],
        &[
            "liveness probe failed (HTTP 404 on `/api/health/live`); the kubelet restarted container",
            "help: check `probes.liveness`",
        ],
    )
    .await;
    assert!(!stderr.contains("keeps crashing"), "{stderr}");
}

/// Real-cluster finding 7: an image that runs as root under `runAsNonRoot` gets the hint about
/// the image's user, not the one about ConfigMaps and Secrets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_running_as_root_is_reported_with_the_user_fix() {
    let stderr = failing(
        "root",
        Some(App::Root),
        &[],
        &[
            "CreateContainerConfigError: container has runAsNonRoot and image will run as root",
            "help: give the image a numeric non-root user",
        ],
    )
    .await;
    assert!(!stderr.contains("ConfigMap and Secret"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unschedulable_pod_is_reported() {
    failing(
        "unschedulable",
        Some(App::Healthy),
        &[
            // The rollout's own diagnosis: past `up`'s capacity check, which stops this first.
            "--skip-checks",
            "--set",
            "services.backend.resources.requests.cpu=64",
            "--set",
            "services.backend.resources.limits.cpu=64",
        ],
        &[
            "cannot be scheduled",
            "Insufficient cpu",
            "lower `resources.requests`",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_owned_by_another_manager() {
    let env = Env::start("conflict").await;
    env.provide(App::Healthy, &[]).await;
    env.run(&["up"]).await.expect_code(0);
    let api: Api<Deployment> = Api::namespaced(env.client.clone(), &env.namespace);
    api.patch(
        "backend",
        &PatchParams {
            field_manager: Some("kubectl-edit".into()),
            ..Default::default()
        },
        &Patch::Merge(serde_json::json!({"spec": {"replicas": 3}})),
    )
    .await
    .expect("another manager scales");
    let run = env.run(&["up"]).await;
    run.expect_code(1);
    assert!(run.stderr.contains("Deployment/backend: a field is owned by another field manager: `.spec.replicas` (by `kubectl-edit`)"), "{}", run.stderr);
    assert!(run.stderr.contains("--force-conflicts"), "{}", run.stderr);
    let forced = env.run(&["up", "--force-conflicts"]).await;
    forced.expect_code(0);
    let deployment = env.deployment("backend").await.unwrap();
    assert_eq!(deployment.spec.unwrap().replicas, Some(2), "ours again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_api_faults_are_retried() {
    let env = Env::start("faults").await;
    let Some(standin) = env.standin_only("fault injection") else {
        return;
    };
    env.provide(App::Healthy, &[]).await;
    standin.fail_next(2, k8s_standin::Fault::Status500);
    standin.fail_next(
        1,
        k8s_standin::Fault::TooManyRequests {
            retry_after_secs: 1,
        },
    );
    standin.fail_next(1, k8s_standin::Fault::DropConnection);
    let run = env.run(&["up", "-v"]).await;
    run.expect_code(0);
    assert!(run.stderr.contains("retrying"), "{}", run.stderr);
    assert!(
        standin.injected_faults().len() >= 4,
        "{:?}",
        standin.injected_faults()
    );
    assert_eq!(available(&env.deployment("backend").await.unwrap()), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_watch_is_resumed() {
    let env = Env::start("watch-cut").await;
    let Some(standin) = env.standin_only("cutting watches") else {
        return;
    };
    env.provide(App::Healthy, &[]).await;
    for image in env.images(&[]).await {
        let service = match image.contains("frontend") {
            true => "frontend",
            false => "backend",
        };
        let then = Box::new(behavior(App::Healthy, service));
        let slow = k8s_standin::Behavior::SlowStart {
            delay_secs: 40.0,
            then,
        };
        standin.node_images().add_image(&image, slow);
    }
    // Cut every watch once the wait has them open. The pods become ready only after the cut,
    // so a run that sees them ready has resumed its watches (the kube watcher re-watches a
    // stream that ends without an error, so nothing says so on the terminal).
    let mut run = Running::start(env.command(&patient(&["up", "-v"])));
    run.until_line(|l| l.starts_with("rollout backend:")).await;
    standin.cut_watches();
    let cut = std::time::Instant::now();
    let run = run.finish().await;
    run.expect_code(0);
    assert!(run.stderr.contains("is ready"), "{}", run.stderr);
    let first_ready = standin
        .pod_history()
        .into_iter()
        .filter(|record| record.ready)
        .map(|record| record.at)
        .min()
        .expect("pods became ready");
    assert!(
        first_ready > cut,
        "the pods became ready after the cut, so the run saw it through resumed watches"
    );
    assert!(
        !run.stderr.contains("lost the connection"),
        "a cut watch is not a lost server: {}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_while_waiting_leaves_the_cluster_as_applied() {
    let env = Env::start("interrupt").await;
    env.provide(App::Slow, &[]).await;
    // Interrupt the wait once the run has seen both new replicas of the backend created.
    let mut run = Running::start(env.command(&patient(&["up"])));
    run.until_line(|l| l.starts_with("rollout backend: 2/2 updated"))
        .await;
    std::process::Command::new("kill")
        .args(["-INT", &run.pid().to_string()])
        .status()
        .unwrap();
    let run = run.finish().await;
    run.expect_code(130);
    assert!(
        run.stderr
            .contains("interrupted while waiting; the cluster is left as applied"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("`backend`: 2/2 updated, 0/2 available"),
        "{}",
        run.stderr
    );
    assert!(env.deployment("backend").await.is_some());
    // Real-cluster finding 9: the interrupted run's revision is not left pending.
    let history = env.run(&["history", "-o", "json"]).await;
    history.expect_code(0);
    let history: serde_json::Value = serde_json::from_str(&history.stdout).unwrap();
    assert_eq!(history[0]["status"], "interrupted", "{history}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_and_diff_change_nothing() {
    let env = Env::start("dry-run").await;
    env.provide(App::Healthy, &[]).await;
    let run = env.run(&["up", "--dry-run"]).await;
    run.expect_code(0);
    assert!(run.stderr.contains("Namespace/"), "{}", run.stderr);
    assert!(run.stderr.contains("would be created"), "{}", run.stderr);
    assert!(
        env.get_json("/api/v1/namespaces/{ns}").await.is_none(),
        "no namespace was created"
    );

    env.run(&["up"]).await.expect_code(0);
    let version = env
        .deployment("backend")
        .await
        .unwrap()
        .metadata
        .resource_version;
    let unchanged = env.run(&["diff"]).await;
    unchanged.expect_code(0);
    assert_eq!(unchanged.stdout, "no changes\n");
    let mut command = env.command(&["diff", "--set", "configMap.data.ENVIRONMENT=staging"]);
    command.env("COHERE_API_KEY", "a-new-planted-key-1b2c");
    let output = command.output().await.unwrap();
    let diff = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0));
    assert!(diff.contains("-  ENVIRONMENT: production"), "{diff}");
    assert!(diff.contains("+  ENVIRONMENT: staging"), "{diff}");
    assert!(
        diff.contains("COHERE_API_KEY: '*** (after)'")
            || diff.contains("COHERE_API_KEY: \"*** (after)\""),
        "{diff}"
    );
    assert!(
        !diff.contains("a-new-planted-key") && !diff.contains(SECRETS[2].1),
        "{diff}"
    );
    assert_eq!(
        env.deployment("backend")
            .await
            .unwrap()
            .metadata
            .resource_version,
        version,
        "diff applies nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_switched_off_are_pruned() {
    let env = Env::start("prune").await;
    env.provide(App::Healthy, &[]).await;
    env.run(&["up", "--set", "podDisruptionBudget.enabled=true"])
        .await
        .expect_code(0);
    assert!(
        env.get_json("/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets/backend")
            .await
            .is_some()
    );
    let run = env.run(&["up"]).await;
    run.expect_code(0);
    assert!(
        run.stderr
            .contains("PodDisruptionBudget/backend pruned (no longer in the config)"),
        "{}",
        run.stderr
    );
    assert!(
        env.get_json("/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets/backend")
            .await
            .is_none()
    );
    assert!(env.deployment("backend").await.is_some(), "the rest stays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_api_server_works_too() {
    let env = Env::start_with("newer-server", "1.30").await;
    env.provide(App::Healthy, &[]).await;
    env.run(&["up"]).await.expect_code(0);
    env.run(&["status"]).await.expect_code(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_accepts_the_rendered_manifests() {
    let env = Env::start("kubectl").await;
    let rendered = env
        .run(&[
            "render",
            "--show-secrets",
            "--set",
            "podDisruptionBudget.enabled=true",
            "--set",
            "networkPolicy.enabled=true",
            "--set",
            "autoscaling.enabled=true",
        ])
        .await;
    rendered.expect_code(0);
    // The namespace must exist for a server-side dry run of what goes into it.
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(env.client.clone());
    let namespace = k8s_openapi::api::core::v1::Namespace {
        metadata: kube::api::ObjectMeta {
            name: Some(env.namespace.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    namespaces
        .create(&Default::default(), &namespace)
        .await
        .unwrap();
    for dry_run in [
        &["apply", "--dry-run=client", "--validate=false"][..],
        &[
            "apply",
            "--server-side",
            "--dry-run=server",
            "--field-manager=todo-deploy",
        ][..],
    ] {
        let child = env
            .tool("kubectl")
            .arg("--kubeconfig")
            .arg(env.kubeconfig())
            .args(dry_run)
            .args(["-f", "-", "-o", "name"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn();
        let Ok(mut child) = child else {
            if crate::support::required_in_ci("kubectl") {
                panic!("kubectl is not installed");
            }
            return;
        };
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(rendered.stdout.as_bytes()).await.unwrap();
        drop(stdin);
        let output = child.wait_with_output().await.unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "kubectl {dry_run:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(stdout.lines().count(), 14, "every object: {stdout}");
        assert!(stdout.contains("deployment.apps/backend"), "{stdout}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_pipeline_builds_loads_applies_and_waits() {
    // A fake kind node stands in for the cluster's node container; the kube context names it.
    let Some(docker) = crate::support::docker::engine().await else {
        return;
    };
    let nodes = crate::support::nodes::FakeNodes::new(&docker, "pipeline").await;
    let cluster = nodes.unique.clone();
    let node = nodes.start_kind(&cluster).await;
    let env = Env::start_on_kind("pipeline", &cluster).await;
    if env.standin_only("a fake kind node").is_none() {
        return;
    }
    env.provide(App::Healthy, &[]).await;
    let run = env.run(&["up", "-v"]).await;
    run.expect_code(0);
    assert!(
        run.stderr.contains(&format!(
            "the context `kind-{cluster}` is kind cluster `{cluster}`"
        )),
        "{}",
        run.stderr
    );
    let imports = nodes.imports(&node).await;
    assert_eq!(imports.len(), 2, "both images loaded once: {imports:?}");
    assert!(
        imports.iter().any(|i| i.contains("todo-e2e-backend")),
        "{imports:?}"
    );

    // What the node holds is remembered, by the node container's ID.
    let memory = env.project.read(".cache/todo-deploy/nodes.json");
    assert_eq!(memory.matches("todo-e2e-").count(), 2, "{memory}");
    let again = env.run(&["up", "-v"]).await;
    again.expect_code(0);
    assert!(
        again.stderr.contains("is up to date"),
        "no build: {}",
        again.stderr
    );
    assert!(
        again.stderr.contains(&format!("is already on `{node}`")),
        "no load: {}",
        again.stderr
    );
    assert_eq!(nodes.imports(&node).await.len(), 2, "nothing sent again");

    let down = env.run(&["down", "--prune-images"]).await;
    down.expect_code(0);
    let removals = nodes
        .exec(&node, &["cat", "/var/lib/fake-node/removals.log"])
        .await;
    assert_eq!(
        removals.lines().count(),
        2,
        "both images removed: {removals}"
    );
    assert!(
        down.stderr.contains("image `todo-e2e-backend:"),
        "{}",
        down.stderr
    );
    assert!(
        down.stderr.contains(&format!("removed from node `{node}`")),
        "{}",
        down.stderr
    );
}

/// The images build while the reads that may refuse the run go on, but nothing reaches a node
/// before they pass: an `upgrade` of a release that is not installed loads nothing, even when
/// the history read that refuses it answers only after the build (a 429 with `Retry-After: 2`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_run_loads_nothing_onto_the_nodes() {
    let Some(docker) = crate::support::docker::engine().await else {
        return;
    };
    let nodes = crate::support::nodes::FakeNodes::new(&docker, "refused").await;
    let cluster = nodes.unique.clone();
    let node = nodes.start_kind(&cluster).await;
    let env = Env::start_on_kind("refused", &cluster).await;
    let Some(standin) = env.standin_only("a fake kind node") else {
        return;
    };
    env.provide(App::Healthy, &[]).await;
    let slow = k8s_standin::Fault::TooManyRequests {
        retry_after_secs: 2,
    };
    let history = k8s_standin::FaultFilter {
        method: Some("GET".to_owned()),
        path_contains: Some("/secrets?".to_owned()),
    };
    standin.fail_next_matching(1, slow, history);
    let run = env.run(&["upgrade", "--tag", "refused", "-v"]).await;
    run.expect_code(1);
    assert!(run.stderr.contains("is not installed"), "{}", run.stderr);
    assert_eq!(
        run.stderr.matches("error:").count(),
        1,
        "the refusal alone: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("retrying"),
        "the history read waited: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains("build backend"),
        "the build ran: {}",
        run.stderr
    );
    assert_eq!(
        nodes.imports(&node).await,
        Vec::<String>::new(),
        "nothing loaded"
    );
}
