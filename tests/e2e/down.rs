//! `down`: everything of the release goes, the pods first, and a second `down` is a no-op.

use crate::support::cluster::{App, Env};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_removes_the_release_and_down_again_is_fine() {
    let env = Env::start("down").await;
    env.provide(App::Healthy, &[]).await;
    env.run(&["up"]).await.expect_code(0);
    let run = env.run(&["down"]).await;
    run.expect_code(0);
    assert!(
        run.stderr.contains("Deployment/backend deleted"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!(
            "release `todo` removed from namespace `{}`",
            env.namespace
        )),
        "{}",
        run.stderr
    );
    assert!(env.pods().await.is_empty(), "no pods left");
    assert!(env.deployment("backend").await.is_none());
    assert!(
        env.get_json("/api/v1/namespaces/{ns}/configmaps/todo-config")
            .await
            .is_none()
    );
    assert!(
        env.get_json("/api/v1/namespaces/{ns}/secrets/todo-secrets")
            .await
            .is_none()
    );
    assert!(
        env.get_json("/api/v1/namespaces/{ns}").await.is_some(),
        "the namespace stays"
    );

    let again = env.run(&["down"]).await;
    again.expect_code(0);
    assert!(again.stderr.contains("is not deployed"), "{}", again.stderr);
    assert!(
        again.stderr.contains("nothing to delete"),
        "{}",
        again.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_can_take_the_namespace() {
    let env = Env::start("down-ns").await;
    env.provide(App::Healthy, &[]).await;
    env.run(&["up"]).await.expect_code(0);
    env.run(&["down", "--delete-namespace"])
        .await
        .expect_code(0);
    env.eventually(
        "the namespace to go",
        std::time::Duration::from_secs(30),
        || async { env.get_json("/api/v1/namespaces/{ns}").await.is_none() },
    )
    .await;
}
