//! The cluster a scenario runs against: a fresh in-process API stand-in, or the real cluster named
//! by `TODO_DEPLOY_E2E_KUBECONFIG`. Scenarios are written once for both: they drive the real
//! binary, read the cluster through kube-rs, and use the stand-in's extras (faults, images with
//! behaviours, pod history) only through methods that say when they are not available.
//!
//! Also the fixture app every scenario deploys: its build contexts and Dockerfiles per [`App`],
//! and the behaviour the stand-in is told for each image ([`behavior`]), both made from one
//! table ([`FIXTURE_SERVICES`]); `fixture_images` runs the images to prove they match.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_standin::{Behavior, ImageConfig, Options, StandIn};
use kube::Client;
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::Value;
use todo_deploy::build::context::input_digest;
use todo_deploy::plan::{BuildInputs, Plan};

use super::{Project, Run, install_executable, isolated, todo_deploy};

/// How a fixture image behaves: the stand-in simulates it, a real cluster runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum App {
    /// Serves its probe paths.
    Healthy,
    /// Prints two lines and exits 3.
    Crashing,
    /// Serves its liveness path only: the readiness path answers 404.
    NotReady,
    /// Serves nothing: readiness and liveness paths answer 404, so a kubelet restarts it.
    NotLive,
    /// Takes a long time before its probes pass.
    Slow,
    /// Healthy, but its image names no `USER`: it runs as root, which `runAsNonRoot` refuses.
    Root,
}

/// The `USER` of `app`'s images: numeric and not root, as `runAsNonRoot` needs, but for
/// [`App::Root`] (none: root).
pub fn image_user(app: App) -> &'static str {
    match app {
        App::Root => "",
        _ => "10001",
    }
}

/// The liveness probe's path, the same for every fixture service (see `E2E_VALUES`).
pub const LIVENESS_PATH: &str = "/api/health/live";

/// Probe settings under which a slow app neither fails nor gets restarted while a test waits.
pub const PATIENT: [&str; 4] = [
    "services.backend.probes.readiness.failureThreshold=1000",
    "services.frontend.probes.readiness.failureThreshold=1000",
    "services.backend.probes.liveness.initialDelaySeconds=600",
    "services.frontend.probes.liveness.initialDelaySeconds=600",
];

/// `args` followed by `--set` for each of [`PATIENT`].
pub fn patient<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut all = args.to_vec();
    for set in PATIENT {
        all.extend(["--set", set]);
    }
    all
}

pub struct Env {
    pub project: Project,
    pub namespace: String,
    kubeconfig: PathBuf,
    standin: Option<StandIn>,
    pub client: Client,
    /// Whether `up` builds the images (a Docker engine answers); else `--no-build`.
    build: bool,
    /// Whether deploy commands choose their loader from the context (else `--loader none` on
    /// the stand-in).
    auto_loader: bool,
}

const CONTEXT: &str = "e2e";

impl Env {
    /// A scenario's environment: its own namespace, on the stand-in or the real cluster.
    pub async fn start(scenario: &str) -> Env {
        Env::start_with(scenario, "1.24").await
    }

    /// The same, with the stand-in serving Kubernetes `version` (a real cluster is what it is).
    pub async fn start_with(scenario: &str, version: &str) -> Env {
        Env::start_in(scenario, version, CONTEXT).await
    }

    /// A stand-in whose kube context is `kind-<cluster>`, so `up` loads into that kind
    /// cluster's node containers, as it would on a laptop.
    pub async fn start_on_kind(scenario: &str, cluster: &str) -> Env {
        let mut env = Env::start_in(scenario, "1.24", &format!("kind-{cluster}")).await;
        env.auto_loader = true;
        env
    }

    async fn start_in(scenario: &str, version: &str, context: &str) -> Env {
        let project = Project::new();
        write_fixture_app(&project);
        let suffix = format!(
            "{:x}",
            std::process::id() ^ (Instant::now().elapsed().as_nanos() as u32)
        );
        let namespace = format!("e2e-{scenario}-{suffix}").replace('_', "-");
        let namespace = namespace[..namespace.len().min(63)]
            .trim_end_matches('-')
            .to_owned();
        let (kubeconfig, standin) = match std::env::var_os("TODO_DEPLOY_E2E_KUBECONFIG") {
            Some(path) => (PathBuf::from(path), None),
            None => {
                let standin = StandIn::start(Options {
                    version: version.to_owned(),
                    time_scale: 0.05,
                    // Minikube warns like this about every pod: noise a diagnosis must ignore.
                    missing_cluster_dns_events: true,
                    ..Options::default()
                })
                .await
                .expect("the stand-in starts");
                let path = project.kubeconfig();
                standin
                    .write_kubeconfig(&path, context)
                    .expect("kubeconfig");
                (path, Some(standin))
            }
        };
        let client = client(&kubeconfig).await;
        // Real clusters need real images; on the stand-in the build runs when Docker is here
        // (always in CI), so the whole pipeline is exercised.
        let build = standin.is_none() || super::docker::engine().await.is_some();
        Env {
            project,
            namespace,
            kubeconfig,
            standin,
            client,
            build,
            auto_loader: false,
        }
    }

    /// Deploy commands choose their loader as they would for a user (from the context, or a
    /// registry the cluster publishes), not `--loader none`.
    pub fn choose_loader(&mut self) {
        self.auto_loader = true;
    }

    pub fn standin(&self) -> Option<&StandIn> {
        self.standin.as_ref()
    }

    /// The stand-in, or `None` after printing why the scenario is skipped on a real cluster.
    pub fn standin_only(&self, what: &str) -> Option<&StandIn> {
        if self.standin.is_none() {
            eprintln!("skipped on a real cluster: {what} needs the stand-in");
        }
        self.standin.as_ref()
    }

    /// The arguments every run gets: the cluster, the scenario's namespace, the fixture values.
    fn base_args(&self, kubeconfig: &Path) -> Vec<String> {
        vec![
            "--kubeconfig".to_owned(),
            kubeconfig.display().to_string(),
            "--namespace".to_owned(),
            self.namespace.clone(),
            // Not `-f`: `logs` takes that for `--follow`.
            "--values".to_owned(),
            "e2e-values.yaml".to_owned(),
        ]
    }

    /// Runs `todo-deploy` with `args` after the base arguments; deploy commands get
    /// `--loader none` on the stand-in, and `--no-build` where no Docker engine answers.
    pub async fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, |_| {}).await
    }

    pub async fn run_with(
        &self,
        args: &[&str],
        adjust: impl FnOnce(&mut tokio::process::Command),
    ) -> Run {
        let mut command = self.command(args);
        adjust(&mut command);
        let output = command.output().await.expect("todo-deploy runs");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub fn kubeconfig(&self) -> &std::path::Path {
        &self.kubeconfig
    }

    /// A `todo-deploy` command for this scenario (see [`Env::run`]): isolated in the project,
    /// with the scenario's kubeconfig as `--kubeconfig` and `KUBECONFIG` (see
    /// [`super::todo_deploy`]).
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        self.command_as(&self.kubeconfig, args)
    }

    /// [`Env::command`] with the credentials of another kubeconfig (see [`Env::account`]).
    pub fn command_as(&self, kubeconfig: &Path, args: &[&str]) -> tokio::process::Command {
        let mut command =
            tokio::process::Command::from(todo_deploy(self.project.path(), kubeconfig));
        command.args(args.iter().take(1));
        command.args(self.base_args(kubeconfig));
        let deploys = matches!(
            args.first(),
            Some(&"up") | Some(&"upgrade") | Some(&"diff") | Some(&"adopt") | Some(&"dev")
        );
        let loader_given = args
            .iter()
            .any(|a| *a == "--loader" || a.starts_with("--loader="));
        if deploys && self.standin.is_some() && !self.auto_loader && !loader_given {
            // The stand-in's node shares no image store with Docker: nothing to load;
            // `provide` registers the images it should have.
            command.args(["--loader", "none"]);
        }
        if deploys && !self.build && !args.contains(&"--no-build") {
            command.arg("--no-build");
        }
        command
            .args(args.iter().skip(1))
            .current_dir(self.project.path())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        command
    }

    /// Another program (`kubectl`, a script) for this scenario, isolated like [`Env::command`].
    pub fn tool(&self, program: &str) -> tokio::process::Command {
        let mut command =
            tokio::process::Command::from(isolated(program, self.project.path(), &self.kubeconfig));
        command.current_dir(self.project.path()).kill_on_drop(true);
        command
    }

    /// The image references `up` would deploy with these extra arguments, as `render` says.
    pub async fn images(&self, extra: &[&str]) -> Vec<String> {
        let mut args = vec!["render"];
        args.extend_from_slice(extra);
        let run = self.run(&args).await;
        run.expect_code(0);
        run.stdout
            .lines()
            .filter_map(|l| l.trim().strip_prefix("image: "))
            .map(str::to_owned)
            .collect()
    }

    /// Makes the next deploy (with `extra` args) ship `app`: writes its Dockerfiles, whose images
    /// `up` builds and, on a real cluster, loads; the stand-in's node learns how they behave.
    pub async fn provide(&self, app: App, extra: &[&str]) {
        write_dockerfiles(&self.project, app);
        let Some(standin) = &self.standin else {
            return;
        };
        for image in self.images(extra).await {
            let service = match image.contains("frontend") {
                true => "frontend",
                false => "backend",
            };
            let config = ImageConfig::default().user(image_user(app));
            standin
                .node_images()
                .add_image_with(&image, behavior(app, service), config);
        }
    }

    /// Writes `text` to `relative` in `service`'s build context, after telling the stand-in's
    /// node how the image it makes behaves (`app`); returns that image's reference (see
    /// [`Env::provide_future`]). A real cluster gets the image built and loaded by `dev`.
    pub fn provide_change(
        &self,
        plan: &Plan,
        app: App,
        service: &str,
        relative: &str,
        text: &str,
    ) -> String {
        let image = self.provide_future(plan, app, service, relative, text);
        let planned = plan.service(service).expect("the service");
        let dir = planned.build.context.strip_prefix(self.project.path());
        let dir = dir
            .expect("the context is in the project")
            .display()
            .to_string();
        self.project.write(&format!("{dir}/{relative}"), text);
        image
    }

    /// The image `service` will be built as once `text` is written to `relative` in its
    /// context, computed as `dev` computes it (from a copy of the context with the change made),
    /// and told to the stand-in's node as behaving like `app`, so the node knows it before
    /// `dev` sees the change. `plan`: `dev`'s plan at its start (its build inputs and
    /// repositories; resolving one now may fail, the change being a fix).
    pub fn provide_future(
        &self,
        plan: &Plan,
        app: App,
        service: &str,
        relative: &str,
        text: &str,
    ) -> String {
        let planned = plan.service(service).expect("the service");
        let copy = tempfile::tempdir().expect("a temp dir");
        copy_tree(&planned.build.context, copy.path());
        std::fs::write(copy.path().join(relative), text).expect("write in the copy");
        let dockerfile = planned
            .build
            .dockerfile
            .strip_prefix(&planned.build.context);
        let inputs = BuildInputs {
            context: copy.path().to_path_buf(),
            dockerfile: copy
                .path()
                .join(dockerfile.expect("the Dockerfile is in the context")),
            ..planned.build.clone()
        };
        let digest = input_digest(&inputs).expect("the copy digests");
        let image = format!("{}:{}", planned.image.repository, &digest[..12]);
        if let Some(standin) = &self.standin {
            let config = ImageConfig::default().user(image_user(app));
            standin
                .node_images()
                .add_image_with(&image, behavior(app, service), config);
        }
        image
    }

    pub async fn deployment(&self, name: &str) -> Option<Deployment> {
        Api::<Deployment>::namespaced(self.client.clone(), &self.namespace)
            .get_opt(name)
            .await
            .expect("get a Deployment")
    }

    pub async fn pods(&self) -> Vec<Pod> {
        Api::<Pod>::namespaced(self.client.clone(), &self.namespace)
            .list(&ListParams::default())
            .await
            .expect("list pods")
            .items
    }

    /// The names of the pods that are not terminating.
    pub async fn live_pods(&self) -> Vec<String> {
        self.pods()
            .await
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter_map(|p| p.metadata.name)
            .collect()
    }

    /// Any object as JSON, by API path; `{ns}` stands for the scenario's namespace, e.g.
    /// `/api/v1/namespaces/{ns}/configmaps/todo-config`.
    pub async fn get_json(&self, path: &str) -> Option<Value> {
        let path = path.replace("{ns}", &self.namespace);
        let request = http::Request::get(&path)
            .body(Vec::new())
            .expect("a request");
        match self.client.request::<Value>(request).await {
            Ok(value) => Some(value),
            Err(kube::Error::Api(status)) if status.code == 404 => None,
            Err(error) => panic!("GET {path}: {error}"),
        }
    }

    /// Waits until `check` holds, reading the cluster every 50 ms.
    pub async fn eventually<F, Fut>(&self, what: &str, timeout: Duration, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let end = Instant::now() + timeout;
        while !check().await {
            assert!(Instant::now() < end, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if self.standin.is_none() {
            // Leave a real cluster as we found it.
            let _ = todo_deploy(self.project.path(), &self.kubeconfig)
                .args(["down", "--delete-namespace", "--kubeconfig"])
                .arg(&self.kubeconfig)
                .args(["--namespace", &self.namespace, "-f", "e2e-values.yaml"])
                .current_dir(self.project.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Copies a directory, keeping each file's mode (which an input digest includes).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read a directory") {
        let entry = entry.expect("an entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

async fn client(kubeconfig: &std::path::Path) -> Client {
    let config = Kubeconfig::read_from(kubeconfig).expect("a kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(config, &KubeConfigOptions::default())
        .await
        .expect("a client config");
    Client::try_from(config).expect("a client")
}

/// A fixture service: its port, and the paths a healthy one answers 200 on (its probe paths in
/// `e2e-values.yaml` among them). The images' `www/` and the stand-in's behaviours are both
/// made from this table.
pub struct FixtureService {
    pub name: &'static str,
    pub port: u16,
    pub serves: &'static [&'static str],
}

pub const FIXTURE_SERVICES: [FixtureService; 2] = [
    FixtureService {
        name: "backend",
        port: 8000,
        serves: &["/api/health", "/api/health/live"],
    },
    FixtureService {
        name: "frontend",
        port: 3000,
        serves: &["/", "/api/health/live"],
    },
];

fn fixture_service(name: &str) -> &'static FixtureService {
    FIXTURE_SERVICES
        .iter()
        .find(|service| service.name == name)
        .unwrap_or_else(|| panic!("no fixture service `{name}`"))
}

/// How the stand-in simulates `service`'s image of `app`; `fixture_images` proves each image
/// really behaves so under Docker.
pub fn behavior(app: App, service: &str) -> Behavior {
    let FixtureService { port, serves, .. } = *fixture_service(service);
    match app {
        App::Healthy | App::Root => Behavior::Serve {
            ok_paths: serves.iter().map(|p| p.to_string()).collect(),
            port,
            log_lines: vec![started_line(service)],
        },
        App::Crashing => Behavior::crash(
            3,
            &["starting backend", "error: cannot connect to the database"],
        ),
        App::NotReady => Behavior::serve(&[LIVENESS_PATH], port),
        // Every path answers 404, the liveness path too: the kubelet restarts it.
        App::NotLive => Behavior::serve(&[], port),
        // The image sleeps for the hour and then exits; no scenario lasts that long.
        App::Slow => Behavior::SlowStart {
            delay_secs: 3600.0,
            then: Box::new(Behavior::serve(serves, port)),
        },
    }
}

/// Fixture services: FROM-scratch busybox images that really behave as the stand-in simulates
/// them (see [`behavior`]) on a real cluster. The content (and so the content tag) differs per
/// [`App`]. Writes the contexts, [`App::Healthy`]'s Dockerfiles and `e2e-values.yaml`.
pub fn write_fixture_app(project: &Project) {
    for service in &FIXTURE_SERVICES {
        let dir = format!("examples/todo-app/{}", service.name);
        for path in service.serves {
            project.write(
                &format!("{dir}/www/{}", www_file(path, service.serves)),
                "ok\n",
            );
        }
        project.write(&format!("{dir}/empty/.keep"), "");
        project.write(&format!("{dir}/live-only/{}", &LIVENESS_PATH[1..]), "ok\n");
        // The static busybox, so that a real cluster runs what the stand-in simulates: mode
        // 0755, or a real kubelet cannot run it.
        let busybox = Path::new("/bin/busybox");
        if busybox.is_file() {
            install_executable(busybox, &project.path().join(&dir).join("busybox"));
        }
        project.write(&format!("{dir}/.dockerignore"), "*.log\n");
    }
    write_dockerfiles(project, App::Healthy);
    project.write("e2e-values.yaml", E2E_VALUES);
}

/// The file under `www/` that makes busybox `httpd` answer `path`: a directory's `index.html`
/// for `/` and for a path another one lies under (`httpd` answers `/api/health` with a 302 to
/// `/api/health/`, which a kubelet's probe follows like `wget` does), else a file of that name.
fn www_file(path: &str, serves: &[&str]) -> String {
    let relative = path.trim_start_matches('/');
    let prefix = format!("{path}/");
    if relative.is_empty() || serves.iter().any(|other| other.starts_with(&prefix)) {
        format!("{relative}/index.html")
            .trim_start_matches('/')
            .to_owned()
    } else {
        relative.to_owned()
    }
}

const E2E_VALUES: &str = "# Small, fast fixture services for the end-to-end suite.
services:
  backend:
    image: todo-e2e-backend
    resources:
      requests: {cpu: 50m, memory: 32Mi}
      limits: {cpu: 100m, memory: 64Mi}
    probes:
      readiness: {path: /api/health, initialDelaySeconds: 1, periodSeconds: 1, failureThreshold: 3}
      liveness: {path: /api/health/live, initialDelaySeconds: 5, periodSeconds: 2, failureThreshold: 3}
  frontend:
    image: todo-e2e-frontend
    resources:
      requests: {cpu: 50m, memory: 32Mi}
      limits: {cpu: 100m, memory: 64Mi}
    probes:
      readiness: {path: /, initialDelaySeconds: 1, periodSeconds: 1, failureThreshold: 3}
      liveness: {path: /api/health/live, initialDelaySeconds: 5, periodSeconds: 2, failureThreshold: 3}
rollout:
  timeout: 2m
  progressDeadlineSeconds: 60
";

/// What a healthy fixture service prints as it starts: proof in a log stream that a new pod of
/// it runs.
pub fn started_line(service: &str) -> String {
    let port = fixture_service(service).port;
    format!("{service} listening on {port}")
}

/// The Dockerfiles of `app`: the command decides how the container behaves. Every command that
/// keeps running traps SIGTERM, so that PID 1 (`sh`) exits at once when the kubelet stops it.
pub fn write_dockerfiles(project: &Project, app: App) {
    for FixtureService { name, port, .. } in &FIXTURE_SERVICES {
        let command = match app {
            App::Healthy | App::Root => format!(
                "echo {}; trap 'exit 0' TERM; httpd -f -p {port} -h /www & wait",
                started_line(name)
            ),
            App::Crashing => {
                "echo starting backend; echo error: cannot connect to the database; exit 3"
                    .to_owned()
            }
            App::NotReady => {
                format!("trap 'exit 0' TERM; httpd -f -p {port} -h /live-only & wait")
            }
            App::NotLive => format!("trap 'exit 0' TERM; httpd -f -p {port} -h /empty & wait"),
            App::Slow => "trap 'exit 0' TERM; sleep 3600 & wait".to_owned(),
        };
        let user = match image_user(app) {
            "" => String::new(),
            user => format!("USER {user}\n"),
        };
        project.write(
            &format!("examples/todo-app/{name}/Dockerfile"),
            &format!(
                "FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\nCOPY empty /empty\nCOPY live-only /live-only\n{user}ENTRYPOINT [\"/bin/busybox\"]\nCMD [\"sh\", \"-c\", {command:?}]\n"
            ),
        );
    }
}
