//! Where the seconds of a rollout go: `up` says so when a readiness probe's initial delay is
//! most of the wait for a new pod, and names the fix. The stand-in's node runs in real time here
//! (the delay must really pass); a real cluster runs as it does.

use crate::support::cluster::{App, Env};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_says_when_an_initial_delay_is_most_of_the_wait() {
    let env = Env::start("seconds").await;
    if let Some(standin) = env.standin() {
        standin.set_time_scale(1.0);
    }
    env.provide(App::Healthy, &[]).await;
    let run = env
        .run(&[
            "up",
            "--set",
            "services.backend.probes.readiness.initialDelaySeconds=5",
            "--set",
            "services.backend.replicas=1",
            "--set",
            "services.frontend.replicas=1",
        ])
        .await;
    run.expect_code(0);
    let said = run
        .stderr
        .lines()
        .find(|l| l.starts_with("backend: ready "));
    let said = said.unwrap_or_else(|| panic!("no line for the backend:\n{}", run.stderr));
    assert!(
        said.ends_with(
            "of which 5s `initialDelaySeconds`; a `startupProbe` would let it in as soon as it answers"
        ),
        "{said}"
    );
    // The frontend's 1 s delay is nothing worth a line.
    let frontend = run
        .stderr
        .lines()
        .any(|l| l.starts_with("frontend: ready "));
    assert!(!frontend, "{}", run.stderr);
}
