//! Secret values never appear in any output: planted unique values are searched for, as text
//! and base64, in everything every command prints, each command doing its real work against the
//! scenario's cluster (the stand-in, or `TODO_DEPLOY_E2E_KUBECONFIG`'s) and ending as it should.

use base64::Engine;

use crate::support::cluster::{App, Env};
use crate::support::{Project, Run, SECRETS};

fn assert_clean(what: &str, run: &Run) {
    let output = run.all_output();
    for (key, value) in SECRETS {
        let encoded = base64::engine::general_purpose::STANDARD.encode(value);
        assert!(
            !output.contains(value),
            "{what} printed the value of {key}:\n{output}"
        );
        assert!(
            !output.contains(&encoded),
            "{what} printed {key} in base64:\n{output}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_output_contains_a_secret_value() {
    let env = Env::start("secrets").await;
    env.provide(App::Healthy, &[]).await;
    env.provide(App::Healthy, &["--tag", "v2"]).await;
    env.project
        .write("bad.yaml", "services:\n  backend:\n    port: -1\n");
    let staging = ["--set", "configMap.data.ENVIRONMENT=staging"];
    let runs: [(&str, Vec<&str>, i32); 9] = [
        ("render", vec!["render"], 0),
        ("render -vv", vec!["render", "-vv"], 0),
        ("a config error", vec!["render", "-f", "bad.yaml"], 2),
        ("up", vec!["up", "-v"], 0),
        ("upgrade", vec!["upgrade", "-v", "--tag", "v2"], 0),
        (
            "diff",
            [&["diff", "-v", "--tag", "v2"][..], &staging].concat(),
            0,
        ),
        ("status", vec!["status", "-o", "json"], 0),
        ("history", vec!["history", "-o", "json"], 0),
        ("down", vec!["down", "-v"], 0),
    ];
    for (what, args, code) in runs {
        let run = env.run(&args).await;
        assert_eq!(
            run.code, code,
            "`{what}` exit code\n--- stdout\n{}\n--- stderr\n{}",
            run.stdout, run.stderr
        );
        assert_clean(what, &run);
    }
}

#[test]
fn show_secrets_is_the_only_way_to_print_them() {
    let project = Project::new();
    let run = project.run(&["render", "--show-secrets"]);
    run.expect_code(0);
    let encoded = base64::engine::general_purpose::STANDARD.encode(SECRETS[0].1);
    assert!(
        run.stdout.contains(&encoded),
        "--show-secrets prints the data"
    );
}
