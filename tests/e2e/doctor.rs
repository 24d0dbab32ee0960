//! `todo-deploy doctor`: each check passing and failing, against the stand-in (or the real
//! cluster of `TODO_DEPLOY_E2E_KUBECONFIG`) and the real Docker engine: a ready cluster with
//! an ingress controller, a node too small for the rolling update, an IngressClass that is
//! missing, a Docker context (reachable or not), Docker unreachable, a missing or placeholder
//! secret, an image that runs as root; and `up` stopping on a failing check before it changes
//! anything.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::api::networking::v1::IngressClass;
use kube::Api;
use kube::api::{ListParams, PostParams};
use sha2::{Digest, Sha256};

use crate::support::cluster::{App, Env};
use crate::support::nodes::FakeNodes;
use crate::support::rbac::Grant;
use crate::support::{Project, Run};

/// The lines of `check` in doctor's report.
fn lines<'a>(run: &'a Run, check: &str) -> Vec<&'a str> {
    let prefix = format!(" {check}: ");
    run.stdout
        .lines()
        .filter(|line| line.contains(&prefix) && !line.starts_with(' '))
        .collect()
}

fn has(run: &Run, level: &str, check: &str, text: &str) -> bool {
    lines(run, check)
        .iter()
        .any(|line| line.starts_with(level) && line.contains(text))
}

/// On the stand-in: an IngressClass `nginx` and a ready ingress-nginx controller pod (in the
/// scenario's namespace), as `minikube addons enable ingress` leaves a cluster. A real cluster
/// is left as it is.
async fn ingress_controller(env: &Env) {
    let Some(standin) = env.standin() else {
        return;
    };
    standin.node_images().add_image(
        "e2e-ingress-controller:1",
        k8s_standin::Behavior::serve(&["/healthz"], 10254),
    );
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    let namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": env.namespace}})).unwrap();
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .expect("the namespace");
    let classes: Api<IngressClass> = Api::all(env.client.clone());
    let class = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "nginx"},
        "spec": {"controller": "k8s.io/ingress-nginx"}
    }))
    .unwrap();
    classes
        .create(&PostParams::default(), &class)
        .await
        .expect("the IngressClass");
    let labels = serde_json::json!({"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"});
    let deployment: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "ingress-nginx-controller"},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "controller", "image": "e2e-ingress-controller:1",
                                                       "imagePullPolicy": "Never",
                                                       "resources": {"requests": {"cpu": "100m", "memory": "90Mi"}}}]}}}
    }))
    .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), &env.namespace);
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .expect("the controller");
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.namespace);
    env.eventually(
        "the controller pod is ready",
        Duration::from_secs(30),
        || {
            let pods = pods.clone();
            async move {
                let Ok(listed) = pods
                    .list(&ListParams::default().labels("app.kubernetes.io/name=ingress-nginx"))
                    .await
                else {
                    return false;
                };
                listed.items.iter().any(|pod| {
                    pod.status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
                })
            }
        },
    )
    .await;
}

/// `doctor` for the scenario: `--loader none` on the stand-in, whose node shares no image store.
async fn doctor(env: &Env, extra: &[&str]) -> Run {
    let mut args = vec!["doctor"];
    if env.standin().is_some() {
        args.extend(["--loader", "none"]);
    }
    args.extend_from_slice(extra);
    env.run(&args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_check_passes_on_a_ready_cluster() {
    let env = Env::start("doctor-ready").await;
    ingress_controller(&env).await;
    let run = doctor(&env, &[]).await;
    run.expect_code(0);
    for check in [
        "docker", "cluster", "loader", "capacity", "secrets", "config",
    ] {
        assert!(
            has(&run, "ok ", check, ""),
            "{check} is ok:\n{}",
            run.stdout
        );
        assert!(
            !has(&run, "error", check, ""),
            "{check} has no error:\n{}",
            run.stdout
        );
    }
    assert!(
        has(&run, "ok ", "cluster", "answers: Kubernetes v1."),
        "{}",
        run.stdout
    );
    assert!(
        has(&run, "ok ", "capacity", "a rolling update needs"),
        "{}",
        run.stdout
    );
    assert!(
        has(&run, "ok ", "permissions", "the credentials have all"),
        "{}",
        run.stdout
    );
    assert!(has(&run, "ok ", "config", "backend: "), "{}", run.stdout);
    assert!(
        has(&run, "ok ", "config", "runs as user 10001 (non-root)"),
        "{}",
        run.stdout
    );
    if env.standin().is_some() {
        assert!(
            has(
                &run,
                "ok ",
                "ingress",
                "IngressClass `nginx`: 1 ready ingress-nginx controller pod(s)"
            ),
            "{}",
            run.stdout
        );
        // `todo.local` resolves nowhere here: a warning with the hosts line, not an error.
        assert!(
            has(&run, "warning", "ingress", "`todo.local`"),
            "{}",
            run.stdout
        );
        assert!(
            run.stdout.contains("sudo tee -a /etc/hosts"),
            "{}",
            run.stdout
        );
        let redacted = run
            .stdout
            .replace(&env.namespace, "[NAMESPACE]")
            .lines()
            .map(|line| match line.find(" at `") {
                _ if line.starts_with("ok       docker: ") => "ok       docker: […]".to_owned(),
                Some(at) if line.contains("cluster:") => format!("{}[…]", &line[..at]),
                _ => line.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        let redacted = regex_lite(&redacted, env.project.path());
        insta::assert_snapshot!("doctor_ready_cluster", redacted);
    }
    let json = doctor(&env, &["-o", "json"]).await;
    json.expect_code(0);
    let report: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(report["errors"], 0, "{}", json.stdout);
    let checks = report["checks"].as_array().expect("checks");
    assert!(
        checks
            .iter()
            .any(|c| c["check"] == "capacity" && c["status"] == "ok")
    );
    for (_, value) in crate::support::SECRETS {
        assert!(
            !run.all_output().contains(value) && !json.all_output().contains(value),
            "no secret value is printed"
        );
    }
}

/// The project's path, and where an image's user was read (the image when built, else its
/// Dockerfile), vary between runs.
fn regex_lite(text: &str, project: &std::path::Path) -> String {
    let text = text.replace(&project.display().to_string(), "[PROJECT]");
    let source = regex::Regex::new(r"(image `[^`]+`|`[^`]+/Dockerfile`) runs as").expect("a regex");
    source.replace_all(&text, "[IMAGE] runs as").into_owned()
}

/// Free CPU on the fullest-free node, in millicores, as the scheduler counts it.
async fn free_millicores(env: &Env) -> i64 {
    let nodes: Api<Node> = Api::all(env.client.clone());
    let pods: Api<Pod> = Api::all(env.client.clone());
    let millis = |q: &str| {
        todo_deploy::units::parse_quantity(q)
            .map(|v| (v * 1000.0) as i64)
            .unwrap_or(0)
    };
    let pods = pods.list(&ListParams::default()).await.expect("pods").items;
    let mut best = 0;
    for node in nodes
        .list(&ListParams::default())
        .await
        .expect("nodes")
        .items
    {
        let name = node.metadata.name.clone().unwrap_or_default();
        let allocatable = millis(&node.status.unwrap().allocatable.unwrap()["cpu"].0);
        let used: i64 = pods
            .iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(&name))
            .filter(|p| {
                !matches!(
                    p.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Succeeded" | "Failed")
                )
            })
            .flat_map(|p| p.spec.as_ref().unwrap().containers.iter())
            .filter_map(|c| {
                c.resources
                    .as_ref()?
                    .requests
                    .as_ref()?
                    .get("cpu")
                    .map(|q| millis(&q.0))
            })
            .sum();
        best = best.max(allocatable - used);
    }
    best
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_too_small_for_the_rolling_update_names_the_service_and_the_fix() {
    let env = Env::start("doctor-small-node").await;
    // Two backend pods fit, the third (maxSurge) does not.
    let each = free_millicores(&env).await * 2 / 5;
    let cpu = format!("services.backend.resources.requests.cpu={each}m");
    let limit = format!("services.backend.resources.limits.cpu={each}m");
    let sets = [
        "--set",
        &cpu,
        "--set",
        &limit,
        "--set",
        "services.backend.replicas=2",
        "--set",
        "services.frontend.resources.requests.cpu=1m",
    ];
    let run = doctor(&env, &sets).await;
    run.expect_code(1);
    assert!(
        has(
            &run,
            "error",
            "capacity",
            "service `backend` does not fit during a rolling update: 3 pods (replicas + one new pod of the update)"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("`--set services.backend.resources.requests.cpu="),
        "{}",
        run.stdout
    );
    if env.standin().is_some() {
        // The stand-in's node is Minikube's.
        assert!(
            run.stdout.contains("minikube start --cpus 4 --memory 8g"),
            "{}",
            run.stdout
        );
    }
    // `up` runs the same check before it changes anything, and stops.
    let mut args = vec!["up"];
    args.extend_from_slice(&sets);
    let up = env.run(&args).await;
    up.expect_code(1);
    assert!(
        up.stderr.contains("service `backend` does not fit"),
        "{}",
        up.stderr
    );
    assert!(up.stderr.contains("--skip-checks"), "{}", up.stderr);
    let namespace: Api<Namespace> = Api::all(env.client.clone());
    assert!(
        namespace
            .get_opt(&env.namespace)
            .await
            .expect("get")
            .is_none(),
        "nothing was created"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_ingress_class_is_an_error_with_the_fix() {
    let env = Env::start("doctor-no-class").await;
    let run = doctor(&env, &["--set", "ingress.className=e2e-missing-class"]).await;
    run.expect_code(1);
    assert!(
        has(
            &run,
            "error",
            "ingress",
            "IngressClass `e2e-missing-class` (`ingress.className`) does not exist"
        ),
        "{}",
        run.stdout
    );
    if env.standin().is_some() {
        assert!(
            run.stdout.contains("fix: `minikube addons enable ingress`"),
            "{}",
            run.stdout
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_a_placeholder_and_a_root_image() {
    let env = Env::start("doctor-secrets").await;
    env.provide(App::Root, &[]).await;
    let run = env
        .run_with(&["doctor", "--loader", "none"], |command| {
            command
                .env_remove("BETTER_AUTH_SECRET")
                .env("COHERE_API_KEY", "replace-with-your-cohere-api-key")
                .env_remove("DATABASE_URL");
        })
        .await;
    run.expect_code(1);
    assert!(
        has(
            &run,
            "error",
            "secrets",
            "no value for `BETTER_AUTH_SECRET`"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("fix: export BETTER_AUTH_SECRET=..."),
        "{}",
        run.stdout
    );
    assert!(
        has(
            &run,
            "warning",
            "secrets",
            "the value of `COHERE_API_KEY` looks like a placeholder"
        ),
        "{}",
        run.stdout
    );
    assert!(
        has(
            &run,
            "ok ",
            "secrets",
            "optional `DATABASE_URL` has no value"
        ),
        "{}",
        run.stdout
    );
    assert!(has(&run, "error", "config", "backend: "), "{}", run.stdout);
    assert!(
        run.stdout.contains("has no `USER`, so it runs as root"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("add `USER 10001` to"), "{}", run.stdout);
}

/// A Docker context in the sandbox's own Docker configuration, as `docker context create NAME
/// --docker host=HOST` writes it, made current.
fn docker_context(project: &Project, name: &str, host: &str) {
    let digest: String = Sha256::digest(name.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    project.write(
        &format!(".home/.docker/contexts/meta/{digest}/meta.json"),
        &format!(r#"{{"Name":"{name}","Metadata":{{"Description":"e2e"}},"Endpoints":{{"docker":{{"Host":"{host}","SkipTLSVerify":false}}}}}}"#),
    );
    project.write(
        ".home/.docker/config.json",
        &format!(r#"{{"auths":{{}},"currentContext":"{name}"}}"#),
    );
}

#[test]
fn the_docker_context_in_use_is_named_reachable_or_not() {
    let Some(_) = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(crate::support::docker::engine())
    else {
        return;
    };
    let engine =
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".to_owned());
    let project = Project::new();
    docker_context(&project, "e2e-engine", &engine);
    let mut command = project.command(&["doctor"]);
    command.env_remove("DOCKER_HOST");
    let run = Run::from(command);
    assert!(
        has(
            &run,
            "ok ",
            "docker",
            &format!("at `{engine}` (Docker context `e2e-engine`)")
        ),
        "{}",
        run.stdout
    );
    assert!(
        has(&run, "error", "cluster", ""),
        "the project has no cluster: {}",
        run.stdout
    );
    run.expect_code(1);
    // `up -v` names it too, before it stops at the missing cluster.
    let mut command = project.command(&["up", "-v"]);
    command.env_remove("DOCKER_HOST");
    let up = Run::from(command);
    let named = format!("docker: the engine at `{engine}` (Docker context `e2e-engine`)");
    assert!(up.stderr.contains(&named), "{}", up.stderr);

    // A context whose engine is not running: named in the error, with the way back.
    let gone = format!("unix://{}/gone.sock", project.path().display());
    docker_context(&project, "e2e-stopped", &gone);
    let mut command = project.command(&["doctor"]);
    command.env_remove("DOCKER_HOST");
    let run = Run::from(command);
    assert!(
        has(&run, "error", "docker", "(Docker context `e2e-stopped`)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("docker context use default"),
        "{}",
        run.stdout
    );
    // `up` says the same before it does anything.
    let mut command = project.command(&["up"]);
    command.env_remove("DOCKER_HOST");
    let up = Run::from(command);
    up.expect_code(1);
    assert!(
        up.stderr
            .contains("cannot reach the Docker engine at `unix://"),
        "{}",
        up.stderr
    );
    assert!(
        up.stderr.contains("(Docker context `e2e-stopped`)"),
        "{}",
        up.stderr
    );
    // `DOCKER_CONTEXT` wins over the current context; a context that does not exist is named.
    let mut command = project.command(&["doctor"]);
    command
        .env_remove("DOCKER_HOST")
        .env("DOCKER_CONTEXT", "e2e-nowhere");
    let run = Run::from(command);
    assert!(
        has(
            &run,
            "error",
            "docker",
            "Docker context `e2e-nowhere` (named by `DOCKER_CONTEXT`) does not exist"
        ),
        "{}",
        run.stdout
    );
}

#[test]
fn docker_unreachable_is_an_error_and_the_rest_is_still_checked() {
    let project = Project::new();
    let mut command = project.command(&["doctor", "-o", "json"]);
    command.env(
        "DOCKER_HOST",
        format!("unix://{}/no-docker.sock", project.path().display()),
    );
    let run = Run::from(command);
    run.expect_code(1);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    let docker = &report["checks"][0];
    assert_eq!(docker["check"], "docker");
    assert_eq!(docker["status"], "error");
    assert!(
        docker["fix"].as_str().unwrap().contains("DOCKER_HOST"),
        "{docker}"
    );
    let secrets = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["check"] == "secrets")
        .count();
    assert!(
        secrets > 0,
        "the secrets are checked without Docker: {}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loader_finds_the_kind_nodes_and_asks_ctr_in_each() {
    let Some(docker) = crate::support::docker::engine().await else {
        return;
    };
    let nodes = FakeNodes::new(&docker, "doctor-kind").await;
    let cluster = nodes.unique.clone();
    let node = nodes.start_kind(&cluster).await;
    let env = Env::start_on_kind("doctor-kind", &cluster).await;
    if env.standin_only("kind's node containers").is_none() {
        return;
    }
    let run = env.run(&["doctor"]).await;
    assert!(has(&run, "ok ", "loader", "`auto`: "), "{}", run.stdout);
    assert!(
        has(
            &run,
            "ok ",
            "loader",
            &format!("node `{node}` answers (`ctr version`)")
        ),
        "{}",
        run.stdout
    );
    // containerd in the node stops answering: the node cannot take images.
    nodes.stop_containerd(&node).await;
    let run = env.run(&["doctor"]).await;
    run.expect_code(1);
    assert!(
        has(
            &run,
            "error",
            "loader",
            &format!(
                "node `{node}` cannot import images: `ctr --namespace=k8s.io version` exited with 1"
            )
        ),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("failed to dial"), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_older_than_1_24_and_a_missing_context_are_errors() {
    let env = Env::start_with("doctor-old", "1.23").await;
    if env.standin_only("a cluster of Kubernetes 1.23").is_some() {
        let run = doctor(&env, &[]).await;
        run.expect_code(1);
        assert!(
            has(
                &run,
                "error",
                "cluster",
                "runs Kubernetes v1.23.0; todo-deploy needs 1.24 or newer"
            ),
            "{}",
            run.stdout
        );
    }
    let run = doctor(&env, &["--context", "e2e-no-such-context"]).await;
    run.expect_code(1);
    assert!(
        has(
            &run,
            "error",
            "cluster",
            "the kubeconfig has no context `e2e-no-such-context`"
        ),
        "{}",
        run.stdout
    );
    assert!(
        has(&run, "skipped", "capacity", "needs the cluster"),
        "{}",
        run.stdout
    );
}

/// Credentials that may only read (the built-in `view` role in the namespace): the permissions
/// check lists what `up` would be refused, with the grant that fixes it, and doctor exits 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_that_may_only_read_fail_the_permissions_check() {
    let env = Env::start("doctor-view").await;
    let user = env.account("viewer", Grant::ClusterRole("view")).await;
    let mut args = vec!["doctor"];
    if env.standin().is_some() {
        args.extend(["--loader", "none"]);
    }
    let run = env.run_as(&user, &args).await;
    run.expect_code(1);
    let missing = "create deployments.apps";
    assert!(
        has(&run, "error", "permissions", "missing: "),
        "{}",
        run.stdout
    );
    let line = lines(&run, "permissions").join("\n");
    assert!(line.contains(missing), "{line}");
    assert!(
        line.contains(&format!("in namespace {}", env.namespace)),
        "{line}"
    );
    assert!(
        run.stdout.contains("todo-deploy rbac --namespace"),
        "the fix names `rbac`: {}",
        run.stdout
    );
}
