//! Docker for the build scenarios: the engine (or a skip, or a failure in CI), a project whose
//! services are `tests/e2e/fixtures` contexts, the plan `up` would build from it, a scenario that
//! records build events and removes its images when it ends, a proxy that records every request
//! the engine receives, and a look at the files inside an image.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters::{ListImagesOptionsBuilder, RemoveImageOptionsBuilder};
use clap::Parser;
use futures_util::StreamExt;
use todo_deploy::build::{BuildError, BuildEvent, BuildOptions, BuiltImage, build_all};
use todo_deploy::cli::Cli;
use todo_deploy::outcome::Diagnose;
use todo_deploy::plan::{Plan, ServicePlan};
use todo_deploy::progress::{Event, Events};
use todo_deploy::settings::{self, CommandFlags, Purpose};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;

use super::{Project, install_executable, repo_root, required_in_ci};

pub const SERVICES: [&str; 2] = ["backend", "frontend"];

/// The test process's variables that name the engine (`DOCKER_HOST` and its TLS settings), and
/// none that lead to the user's Docker configuration (`HOME`, `DOCKER_CONFIG`, `DOCKER_CONTEXT`):
/// what the tests' own Docker clients connect with.
pub fn engine_env(key: &str) -> Option<String> {
    matches!(
        key,
        "DOCKER_HOST" | "DOCKER_TLS_VERIFY" | "DOCKER_CERT_PATH"
    )
    .then(|| std::env::var(key).ok())
    .flatten()
}

/// A client for the engine `DOCKER_HOST` names (else the default socket), through the same code
/// `up` uses; `None` (after saying why) on a machine without Docker, a failure in CI.
pub async fn engine() -> Option<Docker> {
    let busybox = Path::new("/bin/busybox");
    let missing = match todo_deploy::docker::connect(&engine_env).await {
        Ok(docker) if busybox.is_file() => return Some(docker),
        Ok(_) => "/bin/busybox (package `busybox-static`)".to_owned(),
        Err(error) => format!(
            "a Docker engine ({error}; {})",
            error.hint().unwrap_or_default()
        ),
    };
    if required_in_ci(&missing) {
        panic!("{missing} is required in CI: run ../shared/scripts/start-dockerd");
    }
    None
}

/// The label every image of a scenario carries, from its first step on.
pub const SCENARIO_LABEL: &str = "todo-deploy.e2e.scenario";

/// A throwaway project whose backend and frontend are copies of a fixture context with busybox
/// under `root/`. Its Dockerfiles get `LABEL todo-deploy.e2e.scenario=<unique>` after each
/// `FROM`, so no layer is shared with another scenario and every image it makes, even a step a
/// cancelled build left behind, can be found and removed. Image repositories are unique too.
pub struct DockerProject {
    pub project: Project,
    /// Unique to this project: the value of [`SCENARIO_LABEL`].
    pub scenario: String,
    /// Repository per service: `todo-deploy-e2e/<scenario>-<unique>-<service>`.
    pub repositories: BTreeMap<String, String>,
    /// Extra `--set` flags for [`DockerProject::plan`].
    pub sets: Vec<String>,
}

impl DockerProject {
    pub fn new(scenario: &str, fixture: &str) -> DockerProject {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let unique = format!(
            "{}-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| since.subsec_nanos())
        );
        let project = Project::new();
        let mut repositories = BTreeMap::new();
        for service in SERVICES {
            let context = project.path().join(context_of(service));
            std::fs::remove_dir_all(&context).expect("clear the stand-in context");
            copy_dir(&fixtures().join(fixture), &context);
            install_busybox(&context.join("root"));
            let dockerfile = context.join("Dockerfile");
            let text = std::fs::read_to_string(&dockerfile).expect("the fixture's Dockerfile");
            std::fs::write(&dockerfile, labelled(&text, &unique)).expect("write the Dockerfile");
            project.write(
                &format!("{}/www/index.html", context_of(service)),
                &format!("<h1>{service}</h1>\n"),
            );
            let repository = format!("todo-deploy-e2e/{scenario}-{unique}-{service}")
                .to_lowercase()
                .replace('_', "-");
            repositories.insert(service.to_owned(), repository);
        }
        DockerProject {
            project,
            scenario: unique,
            repositories,
            sets: Vec::new(),
        }
    }

    /// A service's build context.
    pub fn context(&self, service: &str) -> PathBuf {
        self.project.path().join(context_of(service))
    }

    /// Writes a file in a service's context.
    pub fn write(&self, service: &str, relative: &str, text: &str) {
        self.project
            .write(&format!("{}/{relative}", context_of(service)), text);
    }

    /// Writes a service's Dockerfile, labelled for this scenario.
    pub fn dockerfile(&self, service: &str, text: &str) {
        self.write(service, "Dockerfile", &self.labelled(text));
    }

    /// `text` with this scenario's label after each `FROM`.
    pub fn labelled(&self, text: &str) -> String {
        labelled(text, &self.scenario)
    }

    /// The plan `up` would build from, as `settings::resolve` makes it.
    pub fn plan(&self, tag: Option<&str>) -> Plan {
        let images = self
            .repositories
            .iter()
            .map(|(service, repo)| format!("services.{service}.image={repo}"));
        let sets: Vec<String> = images.chain(self.sets.iter().cloned()).collect();
        plan(&self.project, &[], &sets, tag)
    }

    /// Hides the temporary directory, the unique repositories, content tags and engine IDs.
    pub fn redact(&self, text: &str) -> String {
        let mut text = self.project.redact(text);
        for (service, repository) in &self.repositories {
            text = text.replace(repository, &format!("[{}-REPO]", service.to_uppercase()));
        }
        let tags = regex::Regex::new(r"(-REPO\]):[0-9a-f]{12}\b").expect("a regex");
        let text = tags.replace_all(&text, "$1:[TAG]");
        let ids = regex::Regex::new(r"\b[0-9a-f]{12}\b").expect("a regex");
        ids.replace_all(&text, "[ID]")
            .replace(&self.scenario, "[SCENARIO]")
    }
}

/// The plan `up` would build from in `project`, as `settings::resolve` makes it: its default
/// config, the `values` files (relative to the project) and the `sets`, in that order.
pub fn plan(project: &Project, values: &[&str], sets: &[String], tag: Option<&str>) -> Plan {
    let config = project.path().join("config/todo-deploy.yaml");
    let mut args: Vec<String> = vec![
        "todo-deploy".into(),
        "--config".into(),
        config.display().to_string(),
    ];
    for file in values {
        args.extend([
            "-f".to_owned(),
            project.path().join(file).display().to_string(),
        ]);
    }
    for set in sets {
        args.extend(["--set".to_owned(), set.clone()]);
    }
    args.push("render".into());
    let cli = Cli::try_parse_from(&args).expect("valid flags");
    let flags = CommandFlags {
        tag,
        ..CommandFlags::default()
    };
    // A build plan: contexts and digests resolved; the secret values do not matter here.
    settings::resolve(&cli.global, &flags, Purpose::Deploy, &|_| {
        Some("unused".to_owned())
    })
    .unwrap_or_else(|error| panic!("the plan resolves: {error} ({:?})", error.hint()))
}

fn labelled(dockerfile: &str, scenario: &str) -> String {
    let mut text = String::new();
    for line in dockerfile.lines() {
        text.push_str(line);
        text.push('\n');
        if line.trim_start().to_ascii_uppercase().starts_with("FROM ") {
            text.push_str(&format!("LABEL {SCENARIO_LABEL}={scenario}\n"));
        }
    }
    text
}

/// `/bin/busybox` under `root` (mode 0755), with the libraries it needs when it is not the
/// static build: images are `FROM scratch`, so nothing else provides them.
fn install_busybox(root: &Path) {
    let busybox = Path::new("/bin/busybox");
    install_executable(busybox, &root.join("bin/busybox"));
    // `ldd` fails on a static binary: then there is nothing more to copy.
    let Ok(output) = std::process::Command::new("ldd").arg(busybox).output() else {
        return;
    };
    if !output.status.success() {
        return;
    }
    let listing = String::from_utf8_lossy(&output.stdout);
    for library in listing
        .split_whitespace()
        .filter(|word| word.starts_with('/'))
        .map(Path::new)
    {
        // The dynamic loader is run like a program: every library keeps 0755 to be safe.
        let target = root.join(library.strip_prefix("/").expect("an absolute path"));
        install_executable(library, &target);
    }
}

fn context_of(service: &str) -> String {
    format!("examples/todo-app/{service}")
}

pub fn fixtures() -> PathBuf {
    repo_root().join("tests/e2e/fixtures")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("a fixture") {
        let entry = entry.expect("a fixture entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy a fixture file");
        }
    }
}

/// A scenario: its project, the build events it sees, and every image it made, removed when
/// it ends (even when it fails), found by [`SCENARIO_LABEL`].
pub struct Scenario {
    pub project: DockerProject,
    pub events: Events,
    receiver: tokio::sync::mpsc::UnboundedReceiver<Event>,
    /// A build failed or was cancelled: the engine may still commit a step after the client
    /// went away, so cleaning up has to wait for that.
    unsettled: bool,
}

impl Scenario {
    pub fn new(name: &str, fixture: &str) -> Scenario {
        let (events, receiver) = Events::channel();
        Scenario {
            project: DockerProject::new(name, fixture),
            events,
            receiver,
            unsettled: false,
        }
    }

    /// Runs the build stage on `services`.
    pub async fn build(
        &self,
        docker: &Docker,
        services: &[ServicePlan],
        options: &BuildOptions,
    ) -> Result<Vec<BuiltImage>, BuildError> {
        build_all(docker, services, options, &self.events).await
    }

    /// Every build event sent since the last call.
    pub fn take(&mut self) -> Vec<BuildEvent> {
        let mut taken = Vec::new();
        while let Ok(event) = self.receiver.try_recv() {
            taken.extend(self.seen(event));
        }
        taken
    }

    /// Waits for the next build event.
    pub async fn next(&mut self) -> Option<BuildEvent> {
        loop {
            let event = self.receiver.recv().await?;
            if let Some(event) = self.seen(event) {
                return Some(event);
            }
        }
    }

    fn seen(&mut self, event: Event) -> Option<BuildEvent> {
        let Event::Build(event) = event else {
            return None;
        };
        if matches!(
            event,
            BuildEvent::Failed { .. } | BuildEvent::Cancelled { .. }
        ) {
            self.unsettled = true;
        }
        Some(event)
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        self.take();
        let settle = match self.unsettled {
            true => Duration::from_secs(2),
            false => Duration::ZERO,
        };
        let label = format!("{SCENARIO_LABEL}={}", self.project.scenario);
        // Drop cannot await, and runs inside the test's runtime: clean up on a thread.
        let cleaning = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(remove_images(&label, settle));
        });
        let _ = cleaning.join();
    }
}

/// Removes every image with `label`, newest first (a step's image can go only once the images
/// built on it are gone), until none has appeared for `settle`.
async fn remove_images(label: &str, settle: Duration) {
    let Ok(docker) = todo_deploy::docker::connect(&engine_env).await else {
        return;
    };
    let filters = HashMap::from([("label", vec![label])]);
    let options = ListImagesOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let give_up = Instant::now() + settle + Duration::from_secs(20);
    let mut quiet_since = Instant::now();
    while Instant::now() < give_up {
        let mut images = docker
            .list_images(Some(options.clone()))
            .await
            .unwrap_or_default();
        if images.is_empty() {
            if quiet_since.elapsed() >= settle {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        }
        images.sort_by_key(|image| std::cmp::Reverse(image.created));
        for image in images {
            let force = RemoveImageOptionsBuilder::new().force(true).build();
            let _ = docker.remove_image(&image.id, Some(force), None).await;
        }
        quiet_since = Instant::now();
    }
}

/// The regular files of an image and their contents, read from `docker save`'s layers.
pub async fn files_in_image(docker: &Docker, reference: &str) -> BTreeMap<String, Vec<u8>> {
    let mut saved = Vec::new();
    let mut chunks = docker.export_image(reference);
    while let Some(chunk) = chunks.next().await {
        saved.extend_from_slice(&chunk.expect("the image exports"));
    }
    let mut members: HashMap<String, Vec<u8>> = HashMap::new();
    let mut archive = tar::Archive::new(saved.as_slice());
    for entry in archive.entries().expect("a tar") {
        let mut entry = entry.expect("a tar entry");
        let path = entry.path().expect("a path").display().to_string();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("readable");
        members.insert(path, data);
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&members["manifest.json"]).expect("a manifest");
    let mut files = BTreeMap::new();
    for layer in manifest[0]["Layers"].as_array().expect("layers") {
        let layer = layer.as_str().expect("a layer path");
        let mut archive = tar::Archive::new(members[layer].as_slice());
        for entry in archive.entries().expect("a layer tar") {
            let mut entry = entry.expect("a layer entry");
            if entry.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let path = entry.path().expect("a path").display().to_string();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).expect("readable");
            files.insert(format!("/{path}"), data);
        }
    }
    files
}

/// A unix socket in front of the engine's that records the method and path of every request:
/// proof of which API calls a stage made. Each request gets its own connection
/// (`Connection: close`), so the first line of each connection is all there is to read.
pub struct CountingProxy {
    pub host: String,
    requests: Arc<Mutex<Vec<String>>>,
    accepting: JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl CountingProxy {
    pub fn start(upstream: PathBuf) -> CountingProxy {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("docker.sock");
        let listener = UnixListener::bind(&path).expect("the proxy listens");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = requests.clone();
        let accepting = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, upstream.clone(), recorded.clone()));
            }
        });
        CountingProxy {
            host: format!("unix://{}", path.display()),
            requests,
            accepting,
            _dir: dir,
        }
    }

    /// A client that talks to the engine through the proxy.
    pub async fn client(&self) -> Docker {
        let host = self.host.clone();
        todo_deploy::docker::connect(&move |key| (key == "DOCKER_HOST").then(|| host.clone()))
            .await
            .expect("the engine answers through the proxy")
    }

    /// `METHOD /path?query` of every request so far, the API version prefix removed.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("not poisoned").clone()
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

async fn relay(mut client: UnixStream, upstream: PathBuf, requests: Arc<Mutex<Vec<String>>>) {
    let Ok(mut server) = UnixStream::connect(&upstream).await else {
        return;
    };
    let mut head = Vec::new();
    let mut buffer = [0u8; 8192];
    let end = loop {
        match client.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => head.extend_from_slice(&buffer[..read]),
        }
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
    };
    let text = String::from_utf8_lossy(&head[..end]).into_owned();
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap_or_default();
    let target = parts.next().unwrap_or_default();
    let path = regex::Regex::new(r"^/v[0-9.]+/")
        .expect("a regex")
        .replace(target, "/");
    requests
        .lock()
        .expect("not poisoned")
        .push(format!("{method} {path}"));
    let mut rewritten = format!("{request_line}\r\n");
    for line in lines.filter(|line| !line.to_ascii_lowercase().starts_with("connection:")) {
        rewritten.push_str(line);
        rewritten.push_str("\r\n");
    }
    rewritten.push_str("Connection: close\r\n\r\n");
    if server.write_all(rewritten.as_bytes()).await.is_err()
        || server.write_all(&head[end + 4..]).await.is_err()
    {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}
