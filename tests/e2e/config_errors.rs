//! Bad input: each error names the file, line and column (where YAML has them), the field path
//! and the fix, and exits with the usage code 2.

use crate::support::{Project, Run};

const USAGE: i32 = 2;

/// Runs `render` in a project changed by `setup` and returns the redacted error output.
fn error_of(setup: impl FnOnce(&Project), args: &[&str]) -> String {
    let project = Project::new();
    setup(&project);
    let mut all = vec!["render", "--tag", "t"];
    all.extend_from_slice(args);
    let run: Run = project.run(&all);
    run.expect_code(USAGE);
    assert!(run.stdout.is_empty(), "nothing on stdout: {}", run.stdout);
    project.redact(&run.stderr)
}

#[test]
fn unknown_field_suggests_the_right_one() {
    let message = error_of(|p| p.edit_config("    replicas: 2", "    replica: 2"), &[]);
    assert!(
        message.contains("config/todo-deploy.yaml:27:5"),
        "{message}"
    );
    assert!(message.contains("`services.backend.replica`"), "{message}");
    assert!(message.contains("did you mean `replicas`?"), "{message}");
    insta::assert_snapshot!(message);
}

#[test]
fn wrong_type_names_the_expected_one() {
    let message = error_of(
        |p| p.edit_config("    replicas: 2", "    replicas: two"),
        &[],
    );
    assert!(
        message.contains("config/todo-deploy.yaml:27:15"),
        "{message}"
    );
    assert!(message.contains("`services.backend.replicas`"), "{message}");
    assert!(message.contains("a whole number"), "{message}");
    insta::assert_snapshot!(message);
}

#[test]
fn invalid_ports() {
    let zero = error_of(|p| p.edit_config("    port: 8000", "    port: 0"), &[]);
    assert!(zero.contains("config/todo-deploy.yaml:26:11"), "{zero}");
    assert!(
        zero.contains("`services.backend.port`: `0` is not a port"),
        "{zero}"
    );
    assert!(zero.contains("use a port from 1 to 65535"), "{zero}");
    let big = error_of(|p| p.edit_config("    port: 8000", "    port: 70000"), &[]);
    assert!(big.contains("config/todo-deploy.yaml:26:11"), "{big}");
    assert!(big.contains("70000"), "{big}");
    assert!(big.contains("use a port from 1 to 65535"), "{big}");
    insta::assert_snapshot!("port_zero", zero);
    insta::assert_snapshot!("port_too_big", big);
}

#[test]
fn invalid_quantities_and_requests_over_limits() {
    let message = error_of(
        |p| {
            p.edit_config(
                "requests: {memory: 512Mi, cpu: 300m}",
                "requests: {memory: 512MB, cpu: 2}",
            )
        },
        &[],
    );
    assert!(message.contains("2 problems"), "{message}");
    assert!(
        message.contains(
            "`services.backend.resources.requests.memory`: `512MB` is not a Kubernetes quantity"
        ),
        "{message}"
    );
    assert!(message.contains("`512Mi` or `1Gi`"), "{message}");
    assert!(
        message.contains(
            "`services.backend.resources.requests.cpu`: the cpu request is larger than its limit"
        ),
        "{message}"
    );
    insta::assert_snapshot!(message);
}

#[test]
fn missing_dockerfile_and_context() {
    let no_dockerfile = error_of(
        |p| std::fs::remove_file(p.path().join("examples/todo-app/frontend/Dockerfile")).unwrap(),
        &[],
    );
    assert!(
        no_dockerfile.contains("config/todo-deploy.yaml:48:"),
        "{no_dockerfile}"
    );
    assert!(
        no_dockerfile.contains("`services.frontend.build.dockerfile`"),
        "{no_dockerfile}"
    );
    assert!(
        no_dockerfile
            .contains("no Dockerfile at `[PROJECT]/examples/todo-app/frontend/Dockerfile`"),
        "{no_dockerfile}"
    );
    let no_context = error_of(
        |p| std::fs::remove_dir_all(p.path().join("examples/todo-app/backend")).unwrap(),
        &[],
    );
    assert!(
        no_context.contains("config/todo-deploy.yaml:21:16"),
        "{no_context}"
    );
    assert!(
        no_context.contains("`services.backend.build.context`"),
        "{no_context}"
    );
    assert!(
        no_context.contains("relative paths are relative to the file that sets them"),
        "{no_context}"
    );
    insta::assert_snapshot!("missing_dockerfile", no_dockerfile);
    insta::assert_snapshot!("missing_context", no_context);
}

#[test]
fn missing_secret_values_name_the_keys_and_the_fix() {
    let project = Project::new();
    let without = |command: &mut std::process::Command| {
        command
            .env_remove("COHERE_API_KEY")
            .env_remove("BETTER_AUTH_SECRET")
            .env("DATABASE_URL", "");
    };
    let mut command = project.command(&["render", "--tag", "t"]);
    without(&mut command);
    let run = Run::from(command);
    run.expect_code(USAGE);
    assert!(
        run.stderr
            .contains("no value for the secret `BETTER_AUTH_SECRET`\n"),
        "only the required key is missing: {}",
        run.stderr
    );
    assert!(run.stderr.contains("--env-file"), "{}", run.stderr);
    insta::assert_snapshot!(project.redact(&run.stderr));

    // The optional keys without a value are left out of the Secret.
    let mut command = project.command(&["render", "--tag", "t"]);
    without(&mut command);
    command.env("BETTER_AUTH_SECRET", "set");
    let run = Run::from(command);
    run.expect_code(0);
    let secret = run
        .stdout
        .split("---")
        .find(|doc| doc.contains("kind: Secret"))
        .unwrap_or_default();
    assert!(
        secret.contains("BETTER_AUTH_SECRET: '***'")
            || secret.contains("BETTER_AUTH_SECRET: \"***\""),
        "{secret}"
    );
    for optional in ["DATABASE_URL", "COHERE_API_KEY"] {
        assert!(
            !secret.contains(optional),
            "{optional} is left out: {secret}"
        );
    }

    // An env file fills them in; the environment still wins for the others.
    project.write(
        ".env",
        "# test\nDATABASE_URL=postgres://x\nBETTER_AUTH_SECRET='k'\n",
    );
    let mut command = project.command(&["render", "--tag", "t", "--env-file", ".env"]);
    without(&mut command);
    let run = Run::from(command);
    run.expect_code(0);
    assert!(run.stdout.contains("DATABASE_URL"), "{}", run.stdout);
    project.write(".env", "DATABASE_URL=postgres://x\nthis line is wrong\n");
    let mut command = project.command(&["render", "--tag", "t", "--env-file", ".env"]);
    command.env_remove("COHERE_API_KEY");
    let run = Run::from(command);
    run.expect_code(USAGE);
    assert!(
        run.stderr.contains("`.env` line 2: expected `KEY=value`"),
        "{}",
        run.stderr
    );
}

#[test]
fn yaml_syntax_errors_point_at_the_line() {
    let message = error_of(
        |p| p.edit_config("namespace: todo ", "namespace: [todo "),
        &[],
    );
    assert!(message.contains("config/todo-deploy.yaml:"), "{message}");
    assert!(message.contains("invalid YAML"), "{message}");
    assert!(message.contains("indentation and quoting"), "{message}");
}

#[test]
fn references_between_sections_are_checked() {
    let message = error_of(
        |p| p.edit_config("service: backend}", "service: bakend}"),
        &[],
    );
    assert!(
        message.contains("`ingress.paths[0].service`: `bakend` is not one of `services`"),
        "{message}"
    );
    assert!(
        message.contains("use one of `backend`, `frontend`"),
        "{message}"
    );
    assert!(
        message.contains("config/todo-deploy.yaml:90:29"),
        "{message}"
    );
}

#[test]
fn values_files_and_set_flags_are_named_as_the_place() {
    let message = error_of(
        |p| {
            p.write(
                "extra.yaml",
                "services:\n  frontend:\n    probes:\n      readiness:\n        path: health\n",
            )
        },
        &["-f", "extra.yaml"],
    );
    assert!(message.contains("extra.yaml:5:15"), "{message}");
    assert!(
        message.contains(
            "`services.frontend.probes.readiness.path`: `health` does not start with `/`"
        ),
        "{message}"
    );
    let message = error_of(|_| {}, &["--set", "services.backend.service.type=Internal"]);
    assert!(
        message.contains("--set services.backend.service.type=Internal"),
        "{message}"
    );
    assert!(
        message.contains("use one of `ClusterIP`, `NodePort`, `LoadBalancer`"),
        "{message}"
    );
    let message = error_of(|_| {}, &["--set", "services.backend"]);
    assert!(
        message.contains("`--set services.backend`: expected `path=value`"),
        "{message}"
    );
}

#[test]
fn bad_flags() {
    let namespace = error_of(|_| {}, &["--namespace", "Not_Valid"]);
    assert!(
        namespace.contains("`--namespace Not_Valid`: not a valid namespace name"),
        "{namespace}"
    );
    let project = Project::new();
    let tag = project.run(&["render", "--tag", "-bad"]);
    tag.expect_code(USAGE);
    let tag = project.run(&["render", "--tag=v1:2"]);
    tag.expect_code(USAGE);
    assert!(
        tag.stderr.contains("`--tag v1:2`: not a valid image tag"),
        "{}",
        tag.stderr
    );
    let missing = project.run(&["render", "--config", "nope.yaml"]);
    missing.expect_code(USAGE);
    assert!(
        missing.stderr.contains("cannot read `nope.yaml`"),
        "{}",
        missing.stderr
    );
    assert!(
        missing.stderr.contains("No such file"),
        "{}",
        missing.stderr
    );
    let unknown = project.run(&["deploy-everything"]);
    unknown.expect_code(USAGE);
}

#[test]
fn inspecting_commands_need_no_build_sources() {
    let project = Project::new();
    std::fs::remove_dir_all(project.path().join("examples")).unwrap();
    for command in ["status", "history", "down", "rollback"] {
        let run = project.run(&[command, "--kubeconfig", "no-such-kubeconfig"]);
        run.expect_code(1);
        assert!(
            !run.stderr.contains("build context"),
            "{command}: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains("cannot read the kubeconfig"),
            "{command}: {}",
            run.stderr
        );
    }
    // Commands that build still need them.
    let up = project.run(&["up", "--kubeconfig", "no-such-kubeconfig"]);
    up.expect_code(USAGE);
    assert!(up.stderr.contains("is not a directory"), "{}", up.stderr);
}

/// Real-cluster finding 12: `--context nope` is a usage error (2), naming the contexts there are.
#[test]
fn a_context_the_kubeconfig_lacks_is_a_usage_error() {
    let project = Project::new();
    project.write(
        "kubeconfig",
        "apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: minikube, context: {cluster: c, user: u}}]
current-context: minikube
",
    );
    for command in ["status", "history", "down"] {
        let run = project.run(&[command, "--kubeconfig", "kubeconfig", "--context", "nope"]);
        run.expect_code(USAGE);
        assert!(
            run.stderr.contains("the kubeconfig has no context `nope`"),
            "{command}: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains("`minikube`"),
            "{command}: {}",
            run.stderr
        );
    }
    project.write(
        "no-current",
        &project
            .read("kubeconfig")
            .replace("current-context: minikube\n", ""),
    );
    let run = project.run(&["status", "--kubeconfig", "no-current"]);
    run.expect_code(USAGE);
    assert!(
        run.stderr
            .contains("error: the kubeconfig names no current context"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("help: choose one with `--context`"),
        "{}",
        run.stderr
    );
}

/// Real-cluster finding: `--timeout 18446744073709551615s` passed, every object was applied, and
/// adding the timeout to the clock panicked (exit 101). Now every command that takes `--timeout`
/// refuses it before it reads the kubeconfig: usage error, the flag, and the bound.
#[test]
fn a_timeout_longer_than_a_day_is_refused_before_the_cluster() {
    let project = Project::new();
    for timeout in [
        "18446744073709551615s",
        "18446744073709551615",
        "18446744073709551615s1s",
        "10000000000000000h",
        "99999999999999999999999ms",
        "24h1s",
    ] {
        for command in ["up", "upgrade", "diff", "down", "rollback"] {
            let run = project.run(&[
                command,
                "--timeout",
                timeout,
                "--kubeconfig",
                "no-such-kubeconfig",
            ]);
            run.expect_code(USAGE);
            assert!(
                run.stderr.contains(&format!(
                    "`--timeout {timeout}`: too long: a duration is at most 24h"
                )),
                "{command} {timeout}: {}",
                run.stderr
            );
            assert!(
                run.stderr.contains("use at most 24h"),
                "{command}: {}",
                run.stderr
            );
            assert!(
                !run.stderr.contains("kubeconfig") && !run.stderr.contains("panicked"),
                "{command}: {}",
                run.stderr
            );
        }
    }
    let zero = project.run(&["down", "--timeout", "0s", "--kubeconfig", "none"]);
    zero.expect_code(USAGE);
    assert!(
        zero.stderr
            .contains("`--timeout 0s`: a duration must be longer than zero"),
        "{}",
        zero.stderr
    );
    let malformed = project.run(&["down", "--timeout", "5 minutes", "--kubeconfig", "none"]);
    malformed.expect_code(USAGE);
    assert!(
        malformed
            .stderr
            .contains("`--timeout 5 minutes`: not a duration"),
        "{}",
        malformed.stderr
    );
}

/// The same bound for `rollout.timeout`, named with its file, line and column (or its `--set`).
#[test]
fn a_configured_timeout_longer_than_a_day_names_the_field() {
    let message = error_of(
        |p| p.edit_config("timeout: 5m", "timeout: 18446744073709551615s"),
        &[],
    );
    assert!(
        message.contains(
            "config/todo-deploy.yaml:112:12: `rollout.timeout`: `18446744073709551615s`: too long: a duration is at most 24h; use at most 24h"
        ),
        "{message}"
    );
    // These panicked in the parser itself (overflowing sum and product), before anything else.
    for timeout in ["18446744073709551615s1s", "10000000000000000h"] {
        let message = error_of(|_| {}, &["--set", &format!("rollout.timeout={timeout}")]);
        assert!(
            message.contains(&format!(
                "--set rollout.timeout={timeout}: `rollout.timeout`: `{timeout}`: too long"
            )),
            "{message}"
        );
    }
}

/// Fuzzing and review found numbers that passed validation and then overflowed, turned infinite
/// or were refused by the API server halfway through an apply. Each is now a usage error that
/// names the field.
#[test]
fn numbers_beyond_what_kubernetes_holds_name_the_field() {
    let cases: [(&str, &str, &str); 6] = [
        (
            "cpu: 1000m}",
            "cpu: '1e999999'}",
            "config/todo-deploy.yaml:30:34: `services.backend.resources.limits.cpu`: `1e999999` is too large: a quantity is at most 8Ei",
        ),
        (
            "memory: 512Mi, cpu: 300m",
            "memory: 9000000000000000000Ei, cpu: 300m",
            "`services.backend.resources.requests.memory`: `9000000000000000000Ei` is too large",
        ),
        (
            "memory: 512Mi, cpu: 300m",
            "memory: -1Gi, cpu: 300m",
            "`services.backend.resources.requests.memory`: `-1Gi` is negative",
        ),
        (
            "    replicas: 2",
            "    replicas: 4294967295",
            "config/todo-deploy.yaml:27:15: `services.backend.replicas`: `4294967295` is more than Kubernetes allows; use at most 2147483647",
        ),
        (
            "failureThreshold: 3}",
            "failureThreshold: 2147483647}",
            "config/todo-deploy.yaml:32:99: `services.backend.probes.readiness.failureThreshold`: `2147483647` is above the maximum of 10000",
        ),
        (
            "runAsUser: null",
            "runAsUser: -1",
            "config/todo-deploy.yaml:95:14: `security.runAsUser`: `-1` is not a user id Kubernetes accepts",
        ),
    ];
    for (from, to, expected) in cases {
        let message = error_of(|p| p.edit_config(from, to), &[]);
        assert!(message.contains(expected), "{to}: {message}");
    }
    // Unquoted, YAML reads `1e999999` as an infinite float, which its parser refuses.
    let message = error_of(
        |_| {},
        &["--set", "services.frontend.resources.limits.cpu=1e400"],
    );
    assert!(
        message.contains(
            "--set services.frontend.resources.limits.cpu=1e400: `services.frontend.resources.limits.cpu`: `1e400` is too large"
        ),
        "{message}"
    );
}

/// Nesting is bounded where it is read: a values file or a `--set` path deeper than any
/// configuration needs is a usage error, not a stack overflow or a quadratic blow-up.
#[test]
fn nesting_deeper_than_the_configuration_is_refused() {
    let deep = format!(
        "configMap:\n  data: {}1{}\n",
        "[".repeat(40),
        "]".repeat(40)
    );
    let message = error_of(|p| p.write("deep.yaml", &deep), &["-f", "deep.yaml"]);
    assert!(message.contains("deep.yaml:2:"), "{message}");
    assert!(
        message.contains("invalid YAML: nested more than 32 levels deep"),
        "{message}"
    );
    let path = vec!["a"; 20_000].join(".");
    let message = error_of(|_| {}, &["--set", &format!("{path}=1")]);
    assert!(
        message.contains("is not a field path like `a.b.c` (of at most 32 parts)"),
        "{}",
        &message[message.len().saturating_sub(300)..]
    );
}
