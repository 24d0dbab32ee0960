//! What every scenario needs: a throwaway project laid out like the repository, and a way to run
//! the real `todo-deploy` binary in it and look at everything it printed.

pub mod cluster;
pub mod docker;
pub mod nodes;

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

/// A temporary copy of the repository's `config/` with stand-in build contexts, so relative
/// paths resolve exactly as they do in a checkout.
pub struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    pub fn new() -> Project {
        let dir = tempfile::tempdir().expect("temp dir");
        let project = Project { dir };
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

    /// A `todo-deploy` command run from the project root, with the planted secrets in its
    /// environment and nothing inherited that could change its behaviour.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_todo-deploy"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("TODO_DEPLOY_CONFIG")
            .env_remove("KUBECONFIG")
            .env("NO_COLOR", "1")
            .env("RUST_BACKTRACE", "0")
            .env("XDG_CACHE_HOME", self.dir.path().join(".cache"));
        for (key, value) in SECRETS {
            command.env(key, value);
        }
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
