//! What every scenario needs: a throwaway project laid out like the repository, and the one way
//! to run the real `todo-deploy` binary ([`todo_deploy`]) so that it sees only its own
//! directory's kubeconfig, home, XDG and Docker configuration, never the user's; then a look at
//! everything it printed.

pub mod cluster;
pub mod containers;
pub mod docker;
pub mod endpoints;
pub mod helm;
pub mod nodes;
pub mod rbac;
pub mod registry;
pub mod running;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Unique values planted as secrets; no output may ever contain them.
pub const SECRETS: [(&str, &str); 3] = [
    (
        "DATABASE_URL",
        "postgres://todo:PlantedDbPassw0rd-7f3a@db:5432/todo",
    ),
    ("BETTER_AUTH_SECRET", "planted-auth-secret-91c2e4"),
    ("COHERE_API_KEY", "planted-cohere-key-5d8b0f"),
];

/// The binary under test. Named here only: every test runs it through [`todo_deploy`], and
/// `isolation::no_test_runs_todo_deploy_but_through_support` checks that.
const BINARY: &str = env!("CARGO_BIN_EXE_todo-deploy");

/// The variables that tell a program where the user's configuration is: a command a test runs
/// gets each of them pointing into the test's own directory.
pub const ISOLATED: [&str; 5] = [
    "HOME",
    "XDG_CONFIG_HOME",
    "XDG_CACHE_HOME",
    "DOCKER_CONFIG",
    "KUBECONFIG",
];

/// Variables that would lead a command to the user's files or choices; never passed on.
/// `MINIKUBE_HOME` is, on a real cluster only (see [`isolated`]).
pub const WITHHELD: [&str; 6] = [
    "TODO_DEPLOY_CONFIG",
    "MINIKUBE_HOME",
    "DOCKER_CONTEXT",
    "KUBECACHEDIR",
    "XDG_DATA_HOME",
    "XDG_STATE_HOME",
];

/// A kubeconfig with no cluster and no context: what a command that must not reach any cluster
/// is given, so that it cannot fall back to `~/.kube/config`.
pub const EMPTY_KUBECONFIG: &str =
    "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\npreferences: {}\n";

/// The only way a test builds a `todo-deploy` command: [`isolated`] in `sandbox` with
/// `kubeconfig`, the planted secrets in its environment, no colour and no backtraces.
pub fn todo_deploy(sandbox: &Path, kubeconfig: &Path) -> Command {
    let mut command = isolated(BINARY, sandbox, kubeconfig);
    command.env("NO_COLOR", "1").env("RUST_BACKTRACE", "0");
    for (key, value) in SECRETS {
        command.env(key, value);
    }
    command
}

/// A script that runs `todo-deploy` (named by `TODO_DEPLOY`, as the benchmark's baseline reads
/// it), isolated like [`todo_deploy`].
#[allow(
    dead_code,
    reason = "the benchmark (tests/bench) runs its baseline scripts so"
)]
pub fn todo_deploy_script(script: &Path, sandbox: &Path, kubeconfig: &Path) -> Command {
    let mut command = isolated(script, sandbox, kubeconfig);
    command.env("TODO_DEPLOY", BINARY).env("NO_COLOR", "1");
    for (key, value) in SECRETS {
        command.env(key, value);
    }
    command
}

/// `program` with every [`ISOLATED`] variable pointing into `sandbox` (`HOME` is
/// `sandbox/.home`; `KUBECONFIG` is `kubeconfig`) and no [`WITHHELD`] one. Everything else is
/// inherited: `PATH`, and what names the engine (`DOCKER_HOST`, Podman's `CONTAINER_HOST` and
/// `XDG_RUNTIME_DIR`), since the engine is not the user's configuration. Inherited rather than
/// cleared on purpose: were an override lost, the command would see what the test process has
/// (where `isolation` plants a fake home), not a home looked up in `/etc/passwd`.
///
/// On a real cluster (`TODO_DEPLOY_E2E_KUBECONFIG`) the Minikube loader needs Minikube's files:
/// `MINIKUBE_HOME` is passed on, or set to the real `~/.minikube`; never on the stand-in.
pub fn isolated(program: impl AsRef<OsStr>, sandbox: &Path, kubeconfig: &Path) -> Command {
    let home = sandbox.join(".home");
    let (config, docker) = (home.join(".config"), home.join(".docker"));
    for dir in [&config, &docker] {
        std::fs::create_dir_all(dir).expect("the sandbox's home");
    }
    let mut command = Command::new(program);
    for key in WITHHELD {
        command.env_remove(key);
    }
    command
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", &config)
        .env("XDG_CACHE_HOME", sandbox.join(".cache"))
        .env("DOCKER_CONFIG", &docker)
        .env("KUBECONFIG", kubeconfig);
    if let Some(minikube) = real_cluster_minikube_home() {
        command.env("MINIKUBE_HOME", minikube);
    }
    command
}

fn real_cluster_minikube_home() -> Option<PathBuf> {
    std::env::var_os("TODO_DEPLOY_E2E_KUBECONFIG")?;
    if let Some(dir) = std::env::var_os("MINIKUBE_HOME") {
        return Some(PathBuf::from(dir));
    }
    Some(PathBuf::from(std::env::var_os("HOME")?).join(".minikube"))
}

/// A temporary copy of the repository's `config/` with stand-in build contexts, so relative
/// paths resolve exactly as they do in a checkout.
pub struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    pub fn new() -> Project {
        let dir = tempfile::tempdir().expect("temp dir");
        let project = Project { dir };
        project.write("kubeconfig", EMPTY_KUBECONFIG);
        let config = std::fs::read_to_string(repo_root().join("config/todo-deploy.yaml"))
            .expect("the default config");
        project.write("config/todo-deploy.yaml", &config);
        for service in ["backend", "frontend"] {
            project.write(
                &format!("examples/todo-app/{service}/Dockerfile"),
                "FROM scratch\nCOPY . /app\n",
            );
            project.write(&format!("examples/todo-app/{service}/app.txt"), service);
        }
        project
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, relative: &str, text: &str) {
        let path = self.dir.path().join(relative);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }

    pub fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(relative)).expect("read")
    }

    /// Replaces the first occurrence of `from` in the default config.
    pub fn edit_config(&self, from: &str, to: &str) {
        let config = self.read("config/todo-deploy.yaml");
        assert!(config.contains(from), "the default config has no `{from}`");
        self.write("config/todo-deploy.yaml", &config.replacen(from, to, 1));
    }

    /// The project's kubeconfig: empty (no cluster, no context) unless a scenario's cluster
    /// replaced it, so a command never falls back to the user's.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// A `todo-deploy` command run from the project root, isolated in the project (see
    /// [`todo_deploy`]), with the planted secrets in its environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = todo_deploy(self.dir.path(), &self.kubeconfig());
        command.args(args).current_dir(self.dir.path());
        command
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command(args))
    }

    /// Hides the temporary directory so messages can be compared.
    pub fn redact(&self, text: &str) -> String {
        let root = self.dir.path().to_string_lossy().into_owned();
        text.replace(&root, "[PROJECT]")
    }
}

/// A finished run of the binary.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Command> for Run {
    fn from(mut command: Command) -> Run {
        let output = command.output().expect("todo-deploy runs");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Asserts the exit code, showing everything printed when it is wrong.
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn all_output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Copies the executable `from` to `to` with mode 0755. A file written with `std::fs::write` is
/// 0644, the build context and the image keep that mode, and a real kubelet then fails with
/// `exec: "/bin/busybox": permission denied`.
pub fn install_executable(from: &Path, to: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(to.parent().expect("a parent")).expect("mkdir");
    std::fs::copy(from, to).unwrap_or_else(|error| panic!("copy `{}`: {error}", from.display()));
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755)).expect("chmod 755");
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Whether a missing tool should fail the test (CI) rather than skip it (a laptop).
pub fn required_in_ci(what: &str) -> bool {
    if std::env::var_os("CI").is_some() {
        return true;
    }
    eprintln!("skipped: {what} is not available here (CI runs this test)");
    false
}
