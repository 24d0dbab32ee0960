//! `todo-deploy logs`: every pod's lines prefixed with service and pod, one service's alone, and
//! `-f` following a pod that starts after it began and a container into its next instance,
//! `--previous`, and secret values hidden. Runs on the stand-in and a real cluster (but the app
//! that logs a secret, which only the stand-in can be told to be).

use k8s_standin::Behavior;

use crate::support::SECRETS;
use crate::support::cluster::{App, Env, behavior, started_line};
use crate::support::running::Running;

/// `backend-7c9d8f6b5-x2x7q` is `x2x7q` in a log line's prefix.
fn short(pod: &str) -> &str {
    pod.rsplit('-').next().unwrap_or(pod)
}

/// The live pods of `service`.
async fn pods_of(env: &Env, service: &str) -> Vec<String> {
    let prefix = format!("{service}-");
    let mut pods: Vec<String> = env
        .live_pods()
        .await
        .into_iter()
        .filter(|p| p.starts_with(&prefix))
        .collect();
    pods.sort();
    pods
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_prefix_each_line_with_its_service_and_pod() {
    let env = Env::start("logs").await;
    env.provide(App::Healthy, &[]).await;
    env.run(&["up"]).await.expect_code(0);
    let run = env.run(&["logs"]).await;
    run.expect_code(0);
    for service in ["backend", "frontend"] {
        for pod in pods_of(&env, service).await {
            let line = format!("{service} {} | {}", short(&pod), started_line(service));
            assert!(
                run.stdout.lines().any(|l| l == line),
                "{line:?} in:\n{}",
                run.stdout
            );
        }
    }
    let backend = env.run(&["logs", "backend"]).await;
    backend.expect_code(0);
    assert!(
        backend.stdout.lines().all(|l| l.starts_with("backend ")),
        "{}",
        backend.stdout
    );
    assert_eq!(
        backend.stdout.lines().count(),
        2,
        "a line per pod: {}",
        backend.stdout
    );

    let unknown = env.run(&["logs", "database"]).await;
    unknown.expect_code(2);
    assert!(
        unknown.stderr.contains("there is no service `database`"),
        "{}",
        unknown.stderr
    );
    assert!(
        unknown.stderr.contains("backend, frontend"),
        "{}",
        unknown.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_f_follows_a_pod_that_starts_after_it_began() {
    let env = Env::start("logs-follow").await;
    env.provide(App::Healthy, &[]).await;
    env.run(&["up"]).await.expect_code(0);
    let before = pods_of(&env, "backend").await;
    let mut logs = Running::start_on_stdout(env.command(&["logs", "backend", "-f"]));
    // Following has begun: the running pods' lines are there.
    for pod in &before {
        let line = format!("backend {} | {}", short(pod), started_line("backend"));
        if !logs.stderr.contains(&line) {
            logs.until_line(|l| l == line).await;
        }
    }
    // A third backend pod starts.
    env.run(&["up", "--set", "services.backend.replicas=3"])
        .await
        .expect_code(0);
    let after = pods_of(&env, "backend").await;
    let new: Vec<&String> = after.iter().filter(|p| !before.contains(p)).collect();
    assert_eq!(new.len(), 1, "{before:?} -> {after:?}");
    let line = format!("backend {} | {}", short(new[0]), started_line("backend"));
    logs.until_line(|l| l == line).await;
    assert!(
        !logs.stderr.lines().any(|l| l.starts_with("frontend ")),
        "only the backend's pods: {}",
        logs.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_previous_shows_the_crashed_container() {
    let env = Env::start("logs-previous").await;
    env.provide(App::Crashing, &[]).await;
    // The rollout fails once the containers crash-loop: each has a previous instance then.
    env.run(&["up"]).await.expect_code(1);
    let run = env.run(&["logs", "backend", "--previous"]).await;
    run.expect_code(0);
    let crashed = "| error: cannot connect to the database";
    for pod in pods_of(&env, "backend").await {
        let line = format!("backend {} {crashed}", short(&pod));
        assert!(
            run.stdout.lines().any(|l| l == line),
            "{line:?} in:\n{}{}",
            run.stdout,
            run.stderr
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_f_follows_a_container_into_its_next_instance() {
    let env = Env::start("logs-restart").await;
    env.provide(App::Crashing, &[]).await;
    env.run(&["up"]).await.expect_code(1);
    let pod = pods_of(&env, "backend").await.remove(0);
    let mut logs = Running::start_on_stdout(env.command(&["logs", "backend", "-f"]));
    // Each instance prints its lines as it starts: two of them seen means a restart followed.
    let line = format!("backend {} | starting backend", short(&pod));
    logs.until_line(|l| l == line).await;
    logs.until_line(|l| l == line).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_never_show_a_secret_value() {
    let env = Env::start("logs-secret").await;
    let Some(standin) = env.standin_only("an app that logs its configuration") else {
        return;
    };
    let leaked = format!("connecting to {}", SECRETS[0].1);
    for image in env.images(&[]).await {
        let service = if image.contains("frontend") {
            "frontend"
        } else {
            "backend"
        };
        let Behavior::Serve { ok_paths, port, .. } = behavior(App::Healthy, service) else {
            panic!("a healthy service serves");
        };
        let log_lines = vec![leaked.clone()];
        let serving = Behavior::Serve {
            ok_paths,
            port,
            log_lines,
        };
        standin.node_images().add_image(&image, serving);
    }
    env.run(&["up"]).await.expect_code(0);
    let run = env.run(&["logs"]).await;
    run.expect_code(0);
    assert!(
        run.stdout.contains("| connecting to ***\n"),
        "{}",
        run.stdout
    );
    assert!(
        !run.all_output().contains(SECRETS[0].1),
        "{}",
        run.all_output()
    );
}
