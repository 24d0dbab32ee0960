//! A cluster that is busy or goes away: a status-only write between our read and our apply is
//! no change of ours (real-cluster finding 4), and an API server lost in the middle of a wait is
//! said once each way, and named with what is left when it does not come back (finding 8).

use k8s_standin::{Behavior, FaultFilter};

use crate::support::cluster::{App, Env, patient};
use crate::support::running::Running;

/// Registers the images of the next `up` as starting slowly on the stand-in: `delay_secs`
/// (simulated) before their probes pass, then healthy.
async fn slow_to_start(env: &Env, delay_secs: f64) {
    let standin = env.standin().expect("the stand-in");
    for image in env.images(&[]).await {
        let service = if image.contains("frontend") {
            "frontend"
        } else {
            "backend"
        };
        standin.node_images().add_image(
            &image,
            Behavior::SlowStart {
                delay_secs,
                then: Box::new(crate::support::cluster::behavior(App::Healthy, service)),
            },
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_write_between_read_and_apply_is_no_change() {
    let env = Env::start("status-write").await;
    let Some(standin) = env.standin_only("injecting a controller's status write") else {
        return;
    };
    env.provide(App::Healthy, &[]).await;
    env.run(&["up"]).await.expect_code(0);
    standin.status_write_after_next_get(FaultFilter::method_path("GET", "/deployments/backend"));
    let again = env.run(&["up"]).await;
    again.expect_code(0);
    let writes = standin.injected_status_writes();
    assert_eq!(writes.len(), 1, "the status write happened");
    assert_ne!(
        writes[0].resource_version_before, writes[0].resource_version_after,
        "and moved the resourceVersion"
    );
    assert!(
        again.stderr.contains("Deployment/backend unchanged"),
        "{}",
        again.stderr
    );
    assert!(!again.stderr.contains("configured"), "{}", again.stderr);
    assert!(
        again
            .stderr
            .contains("release `todo` is up to date (revision 1)"),
        "{}",
        again.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_that_comes_back_is_said_once_each_way() {
    let env = Env::start("outage-back").await;
    let Some(standin) = env.standin_only("stopping the API server") else {
        return;
    };
    env.provide(App::Healthy, &[]).await;
    slow_to_start(&env, 20.0).await;
    let mut run = Running::start(env.command(&patient(&["up"])));
    run.until_line(|l| l.starts_with("rollout backend:")).await;
    standin.go_down();
    run.until_line(|l| l.contains("lost the connection to the API server"))
        .await;
    standin.come_back();
    let run = run.finish().await;
    run.expect_code(0);
    assert_eq!(
        run.stderr.matches("lost the connection").count(),
        1,
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stderr.matches("answers again").count(),
        1,
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("is ready"), "{}", run.stderr);
    assert!(!run.stderr.contains("may have expired"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_gone_past_the_timeout_is_named_with_what_is_left() {
    let env = Env::start("outage-gone").await;
    let Some(standin) = env.standin_only("stopping the API server") else {
        return;
    };
    env.provide(App::Healthy, &[]).await;
    slow_to_start(&env, 3600.0).await;
    // The timeout leaves the run time to notice the outage, however busy the machine.
    let mut run = Running::start(env.command(&patient(&["up", "--timeout", "10s"])));
    run.until_line(|l| l.starts_with("rollout backend:")).await;
    standin.go_down();
    run.until_line(|l| l.contains("lost the connection to the API server"))
        .await;
    let run = run.finish().await;
    run.expect_code(1);
    let server = standin.url();
    for expected in [
        format!("error: the API server at `{server}/` has been unreachable since "),
        "the rollout as last seen:".to_owned(),
        "`backend`: ".to_owned(),
        "revision 1 is left pending".to_owned(),
        "help: when it answers again, `todo-deploy status` shows where the release stands"
            .to_owned(),
    ] {
        assert!(run.stderr.contains(&expected), "{expected}\n{}", run.stderr);
    }
    assert_eq!(
        run.stderr.matches("lost the connection").count(),
        1,
        "{}",
        run.stderr
    );
    standin.come_back();
    // Nothing could be written: the revision is still pending (its run's lock has not expired).
    let history = env.run(&["history", "-o", "json"]).await;
    history.expect_code(0);
    let history: serde_json::Value = serde_json::from_str(&history.stdout).unwrap();
    assert_eq!(history[0]["status"], "pending", "{history}");
}
