//! No test reaches a kubeconfig, home, XDG or Docker configuration outside its own directory.
//! `support::todo_deploy` is the one place that builds a `todo-deploy` command, and
//! `support::isolated` (which it and every other program a test runs go through) points `HOME`,
//! `XDG_*`, `DOCKER_CONFIG` and `KUBECONFIG` into the test's directory. Checked three ways:
//!
//! - the sources: nothing else names the binary or runs `kubectl` itself;
//! - the environment: this test binary runs one of its own tests again
//!   ([`from_a_planted_home`]) with every one of those variables pointing into a planted
//!   "outside" directory, a fake home; there, `env` run through `support::isolated` must show no
//!   variable that leads outside, and each isolated one inside the test's directory;
//! - the binary: in that same child, `todo-deploy` runs as every test runs it. The planted
//!   `$HOME/.kube/config` and `$KUBECONFIG` name a sentinel TCP listener as their cluster, and
//!   this process asserts that nothing ever connected to it. A control child first runs the
//!   binary without the isolation, which must reach the sentinel: so the planted home is what a
//!   command that lost its isolation would read, and the guard would see it. The real home is
//!   never used: the children's own home is the fake one.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;

use crate::support::cluster::Env;
use crate::support::{ISOLATED, Project, WITHHELD, isolated, repo_root};

/// Names the planted directory in the child; its absence means the child was not started by
/// [`no_command_reaches_a_kubeconfig_outside_its_directory`].
const OUTSIDE: &str = "TODO_DEPLOY_E2E_ISOLATION_OUTSIDE";
const CHILD: &str = "isolation::from_a_planted_home";
const CONTROL: &str = "isolation::control_without_isolation";

/// A TCP listener that counts the connections it gets and closes each at once.
struct Sentinel {
    address: SocketAddr,
    connections: Arc<AtomicUsize>,
    done: Arc<AtomicBool>,
    accepting: JoinHandle<()>,
}

impl Sentinel {
    fn start() -> Sentinel {
        let listener = TcpListener::bind("127.0.0.1:0").expect("the sentinel listens");
        let address = listener.local_addr().expect("an address");
        let connections = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let (counted, finished) = (connections.clone(), done.clone());
        let accepting = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if finished.load(Ordering::SeqCst) {
                    return;
                }
                if stream.is_ok() {
                    counted.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        Sentinel {
            address,
            connections,
            done,
            accepting,
        }
    }

    /// The connections so far, counting from zero again. A client's connection is counted
    /// before the sentinel closes it, so all of a finished process's are in.
    fn take(&self) -> usize {
        self.connections.swap(0, Ordering::SeqCst)
    }

    /// Stops listening (one last connection of its own wakes the accept); how many came since
    /// the last [`Sentinel::take`].
    fn stop(self) -> usize {
        self.done.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.address);
        self.accepting.join().expect("the sentinel ends");
        self.connections.load(Ordering::SeqCst)
    }
}

/// A kubeconfig whose only (and current) context is a cluster at the sentinel.
fn sentinel_kubeconfig(address: SocketAddr) -> String {
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: outside\n\
         clusters:\n- name: outside\n  cluster: {{server: \"http://{address}\"}}\n\
         users:\n- name: outside\n  user: {{token: outside}}\n\
         contexts:\n- name: outside\n  context: {{cluster: outside, user: outside, namespace: outside}}\n"
    )
}

/// Plants the fake home and every other configuration a command could find outside its
/// directory; the variables, each naming a place under `outside`, that lead to them.
fn plant(outside: &Path, sentinel: SocketAddr) -> Vec<(&'static str, PathBuf)> {
    let kubeconfig = sentinel_kubeconfig(sentinel);
    let write = |relative: &str, text: &str| {
        let path = outside.join(relative);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(path, text).expect("plant a file");
    };
    write("home/.kube/config", &kubeconfig);
    write("kubeconfig", &kubeconfig);
    write("home/.docker/config.json", "{\"auths\": {}}\n");
    ISOLATED
        .iter()
        .chain(&WITHHELD)
        .map(|&key| {
            let place = match key {
                "HOME" => outside.join("home"),
                "KUBECONFIG" => outside.join("kubeconfig"),
                "DOCKER_CONFIG" => outside.join("home/.docker"),
                other => outside.join(other.to_ascii_lowercase()),
            };
            (key, place)
        })
        .collect()
}

/// How a child test ended: whether it passed, and everything it printed.
struct Child {
    passed: bool,
    output: String,
}

/// Runs `test` of this binary alone, in the environment `planted` under `outside`.
fn run_child(test: &str, outside: &Path, planted: &[(&str, PathBuf)]) -> Child {
    let output = Command::new(std::env::current_exe().expect("this test binary"))
        .args([
            test,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .envs(planted.iter().cloned())
        .env(OUTSIDE, outside)
        // The children are on the stand-in, even when this run is on a real cluster.
        .env_remove("TODO_DEPLOY_E2E_KUBECONFIG")
        .output()
        .expect("the child test runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    Child {
        passed: output.status.success() && stdout.contains("test result: ok. 1 passed"),
        output: format!(
            "`{test}` in a planted home\n--- stdout\n{stdout}\n--- stderr\n{}",
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

#[test]
fn no_command_reaches_a_kubeconfig_outside_its_directory() {
    let outside = tempfile::tempdir().expect("a temp dir");
    let sentinel = Sentinel::start();
    let planted = plant(outside.path(), sentinel.address);
    let control = run_child(CONTROL, outside.path(), &planted);
    assert!(control.passed, "{}", control.output);
    assert!(
        sentinel.take() > 0,
        "without its isolation, the binary did not reach the planted kubeconfig's cluster: \
         the guard below could not see a command that lost its isolation"
    );
    let child = run_child(CHILD, outside.path(), &planted);
    let connections = sentinel.stop();
    assert_eq!(
        connections, 0,
        "commands connected to the cluster of a kubeconfig outside their directory (the planted \
         $HOME/.kube/config or $KUBECONFIG)\n{}",
        child.output
    );
    assert!(child.passed, "{}", child.output);
}

/// The control, run by [`no_command_reaches_a_kubeconfig_outside_its_directory`] only, in a
/// planted home: the binary with none of `support::isolated`'s settings, so with the planted
/// environment, reaches the sentinel's cluster.
#[test]
#[ignore = "run by isolation::no_command_reaches_a_kubeconfig_outside_its_directory"]
fn control_without_isolation() {
    let outside = std::env::var_os(OUTSIDE)
        .map(PathBuf::from)
        .expect("run by no_command_reaches_a_kubeconfig_outside_its_directory");
    // Never the real home: this runs the binary unisolated.
    for key in ["HOME", "KUBECONFIG"] {
        let value = std::env::var_os(key).map(PathBuf::from);
        assert!(
            value.as_ref().is_some_and(|v| v.starts_with(&outside)),
            "{key} is {value:?}, not planted under {}",
            outside.display()
        );
    }
    let project = Project::new();
    let program = project.command(&[]).get_program().to_owned();
    let output = Command::new(program)
        .arg("status")
        .current_dir(project.path())
        // The project's own config: the planted `TODO_DEPLOY_CONFIG` names no file.
        .env_remove("TODO_DEPLOY_CONFIG")
        .output()
        .expect("todo-deploy runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.code() == Some(1) && stderr.contains("does not answer"),
        "not isolated, `status` should have tried the planted cluster: {stderr}"
    );
}

/// Run by [`no_command_reaches_a_kubeconfig_outside_its_directory`] only, in a planted home.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by isolation::no_command_reaches_a_kubeconfig_outside_its_directory"]
async fn from_a_planted_home() {
    let outside = std::env::var_os(OUTSIDE)
        .map(PathBuf::from)
        .expect("run by no_command_reaches_a_kubeconfig_outside_its_directory");
    let project = Project::new();
    // As every test runs the binary; the project's kubeconfig is empty: no cluster to reach.
    for command in [
        "status", "history", "rollback", "down", "up", "upgrade", "diff",
    ] {
        let run = project.run(&[command]);
        assert!(
            run.code != 0 && run.stderr.contains("the kubeconfig has no context"),
            "`{command}` reached a cluster or failed otherwise: {run:?}"
        );
    }
    // A scenario's commands reach its own cluster, the stand-in: nothing deployed there yet.
    let env = Env::start("isolation").await;
    env.run(&["status"]).await.expect_code(4);
    environment_leads_nowhere_outside(&project, &outside);
}

/// `env`, run through `support::isolated`, shows no variable naming a place under `outside`,
/// and each isolated one naming a place in the project.
fn environment_leads_nowhere_outside(project: &Project, outside: &Path) {
    let output = isolated("env", project.path(), &project.kubeconfig())
        .output()
        .expect("env runs");
    let text = String::from_utf8_lossy(&output.stdout);
    let variables: Vec<(&str, &str)> = text.lines().filter_map(|l| l.split_once('=')).collect();
    let outside = outside.display().to_string();
    for (key, value) in variables.iter().filter(|(key, _)| *key != OUTSIDE) {
        assert!(
            !value.contains(&outside),
            "{key}={value} leads outside the test's directory"
        );
    }
    for key in ISOLATED {
        let value = variables.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        assert!(
            value.is_some_and(|v| Path::new(v).starts_with(project.path())),
            "{key} is {value:?}, not in the test's directory {}",
            project.path().display()
        );
    }
}

/// Every Rust source under `tests/`, by its path relative to the repository.
fn test_sources(dir: &Path, found: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).expect("a source directory") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            test_sources(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path
                .strip_prefix(repo_root())
                .expect("under the repository");
            let text = std::fs::read_to_string(&path).expect("a readable source");
            found.push((relative.display().to_string(), text));
        }
    }
}

#[test]
fn no_test_runs_todo_deploy_or_kubectl_but_through_support() {
    // Split, so that this file does not name them itself.
    let binary = concat!("CARGO_BIN_EXE", "_");
    let kubectl = concat!("Command::new(", "\"kubectl\")");
    let mut sources = Vec::new();
    test_sources(&repo_root().join("tests"), &mut sources);
    assert!(
        sources.len() > 20,
        "found the test sources: {}",
        sources.len()
    );
    for (path, text) in &sources {
        let expected = usize::from(path == "tests/e2e/support/mod.rs");
        assert_eq!(
            text.matches(binary).count(),
            expected,
            "{path} names the todo-deploy binary: build its commands with support::todo_deploy"
        );
        // The stand-in's own tests run kubectl against the stand-in, outside this suite.
        if !path.starts_with("tests/k8s-standin/") {
            assert!(
                !text.contains(kubectl),
                "{path} runs kubectl itself: use Env::tool, which isolates it"
            );
        }
    }
}
