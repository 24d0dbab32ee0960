//! Secret values never appear in any output: planted unique values are searched for, as text
//! and base64, in everything every command prints.

use base64::Engine;

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

#[test]
fn no_output_contains_a_secret_value() {
    let project = Project::new();
    project.write("bad.yaml", "services:\n  backend:\n    port: -1\n");
    let runs = [
        ("render", vec!["render"]),
        ("render -v", vec!["render", "-vv"]),
        ("a config error", vec!["render", "-f", "bad.yaml"]),
        ("up", vec!["up", "-v"]),
        ("upgrade", vec!["upgrade", "--tag", "v2"]),
        ("diff", vec!["diff"]),
        ("status", vec!["status", "-o", "json"]),
        ("down", vec!["down"]),
    ];
    for (what, args) in runs {
        assert_clean(what, &project.run(&args));
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
