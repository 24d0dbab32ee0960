//! Fake Kubernetes nodes for the load scenarios: containers of a `FROM scratch` busybox image
//! whose `ctr` and `docker` are `fixtures/nodes/fake-node`, named and labelled like Minikube's and
//! kind's nodes (with unique names); small test images to load into them; a Minikube directory
//! with a profile; a containerd of its own; and cleanup of every container and image a scenario
//! made, even when it fails.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateContainerOptionsBuilder, ListContainersOptionsBuilder,
    ListImagesOptionsBuilder, RemoveContainerOptionsBuilder, RemoveImageOptionsBuilder,
};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use todo_deploy::build::{BuiltImage, Outcome};
use todo_deploy::plan::ImageRef;

use super::docker::fixtures;
use super::required_in_ci;

/// The label on every container and image a scenario makes: its unique name.
pub const LOAD_LABEL: &str = "todo-deploy.e2e.load";

/// A scenario's fake cluster: a unique name, its containers and images, removed on drop.
pub struct FakeNodes {
    pub docker: Docker,
    /// Unique to this scenario, usable in container names and kind cluster names.
    pub unique: String,
    image: String,
}

impl FakeNodes {
    pub async fn new(docker: &Docker, scenario: &str) -> FakeNodes {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.subsec_nanos());
        let unique = format!(
            "tdl-{scenario}-{}-{}-{nanos}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        );
        FakeNodes {
            docker: docker.clone(),
            image: node_image(docker).await,
            unique,
        }
    }

    /// Starts a node container `name` with `labels`; `publish` publishes that container port on
    /// a free port of 127.0.0.1 (as Minikube publishes its engine's 2376).
    /// Starts the one node of the kind cluster `cluster`, `<cluster>-control-plane`, labelled
    /// as kind labels it; its name.
    pub async fn start_kind(&self, cluster: &str) -> String {
        let node = format!("{cluster}-control-plane");
        let labels = [
            ("io.x-k8s.kind.cluster", cluster),
            ("io.x-k8s.kind.role", "control-plane"),
        ];
        self.start(&node, &labels, None).await;
        node
    }

    pub async fn start(&self, name: &str, labels: &[(&str, &str)], publish: Option<&str>) {
        self.create(name, labels, publish).await;
        self.docker
            .start_container(name, None)
            .await
            .unwrap_or_else(|error| panic!("start the fake node `{name}`: {error}"));
    }

    /// Creates a node container `name` without starting it.
    pub async fn create(&self, name: &str, labels: &[(&str, &str)], publish: Option<&str>) {
        self.create_with(name, labels, publish, None).await;
    }

    async fn create_with(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        publish: Option<&str>,
        binds: Option<Vec<String>>,
    ) {
        let mut labels: HashMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        labels.insert(LOAD_LABEL.to_owned(), self.unique.clone());
        let port_bindings = publish.map(|port| {
            HashMap::from([(
                port.to_owned(),
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".to_owned()),
                    host_port: Some(String::new()),
                }]),
            )])
        });
        let body = ContainerCreateBody {
            image: Some(self.image.clone()),
            labels: Some(labels),
            exposed_ports: publish.map(|port| vec![port.to_owned()]),
            host_config: Some(HostConfig {
                port_bindings,
                binds,
                ..Default::default()
            }),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::new().name(name).build();
        self.docker
            .create_container(Some(options), body)
            .await
            .unwrap_or_else(|error| panic!("create the fake node `{name}`: {error}"));
    }

    /// `<name> <id>` of every image the node imported, in order.
    pub async fn imports(&self, node: &str) -> Vec<String> {
        let log = self
            .exec(node, &["cat", "/var/lib/fake-node/imports.log"])
            .await;
        log.lines().map(str::to_owned).collect()
    }

    /// How many times `node` was asked for its image list (`ctr images ls`), imports' own
    /// listings included.
    pub async fn listings(&self, node: &str) -> usize {
        let script = "cat /var/lib/fake-node/listings.log 2>/dev/null || true";
        self.exec(node, &["sh", "-c", script]).await.lines().count()
    }

    /// Makes every later import on `node` fail with `message` on stderr.
    pub async fn fail_imports(&self, node: &str, message: &str) {
        let script = format!("echo '{message}' > /var/lib/fake-node/fail-import");
        self.exec(node, &["sh", "-c", &script]).await;
    }

    /// Stops `node`'s containerd, as far as `ctr` can tell: every call fails to dial it.
    pub async fn stop_containerd(&self, node: &str) {
        let script = "touch /var/lib/fake-node/containerd-down";
        self.exec(node, &["sh", "-c", script]).await;
    }

    /// Makes imports on `node` read the archive without checking it and record `image` as
    /// `name`, its layers unpacked (`None`: check again): the transport alone, for measurements.
    pub async fn discard_imports(&self, node: &str, recorded: Option<(&str, &BuiltImage)>) {
        let script = match recorded {
            Some((name, image)) => {
                let chains = chain_ids(&self.docker, &image.image.to_string()).await;
                format!(
                    "echo '{name} {} {}' > /var/lib/fake-node/discard",
                    image.id,
                    chains.join(" ")
                )
            }
            None => "rm -f /var/lib/fake-node/discard".to_owned(),
        };
        self.exec(node, &["sh", "-c", &script]).await;
    }

    /// Forgets every image and unpacked layer the node holds, so the next load sends them again.
    pub async fn forget_images(&self, node: &str) {
        let script = "rm -rf /var/lib/fake-node/images /var/lib/fake-node/snapshots";
        self.exec(node, &["sh", "-c", script]).await;
    }

    /// Starts a kind node `name` (of the kind cluster `cluster`) whose `ctr` is the real one,
    /// talking to `containerd` through its socket, mounted where containerd listens by default;
    /// it reads `/var/lib/real-node/damage` to damage imports (see [`REAL_CTR`]).
    pub async fn start_real(&self, name: &str, cluster: &str, containerd: &Containerd) {
        let mut binds = vec![
            format!(
                "{}:/run/containerd/containerd.sock",
                containerd.socket().display()
            ),
            format!("{}:/usr/local/bin/ctr:ro", containerd.wrapper().display()),
            "/usr/bin/ctr:/usr/local/lib/ctr-real:ro".to_owned(),
        ];
        // `ctr` is linked dynamically: its libraries, where it looks for them.
        let ldd = std::process::Command::new("ldd")
            .arg("/usr/bin/ctr")
            .output()
            .expect("ldd runs");
        for path in String::from_utf8_lossy(&ldd.stdout)
            .split_whitespace()
            .filter(|word| word.starts_with('/'))
        {
            let real = std::fs::canonicalize(path).expect("a library");
            binds.push(format!("{}:{path}:ro", real.display()));
        }
        let labels = [
            ("io.x-k8s.kind.cluster", cluster),
            ("io.x-k8s.kind.role", "control-plane"),
        ];
        self.create_with(name, &labels, None, Some(binds)).await;
        self.docker
            .start_container(name, None)
            .await
            .unwrap_or_else(|error| panic!("start the node `{name}`: {error}"));
    }

    /// Runs a command in a node; its stdout.
    pub async fn exec(&self, node: &str, argv: &[&str]) -> String {
        let options = CreateExecOptions {
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            cmd: Some(argv.to_vec()),
            ..Default::default()
        };
        let exec = self.docker.create_exec(node, options).await.expect("exec");
        let mut stdout = String::new();
        if let StartExecResults::Attached { mut output, .. } =
            self.docker.start_exec(&exec.id, None).await.expect("start")
        {
            while let Some(Ok(frame)) = output.next().await {
                if let bollard::container::LogOutput::StdOut { message } = frame {
                    stdout.push_str(&String::from_utf8_lossy(&message));
                }
            }
        }
        stdout
    }

    /// Builds `FROM scratch` with a file holding `content`, as `repository:tag`; labelled so the
    /// scenario removes it. Built again with other content, the tag moves to a new ID.
    pub async fn image(
        &self,
        service: &str,
        repository: &str,
        tag: &str,
        content: &[u8],
    ) -> BuiltImage {
        let dockerfile = format!(
            "FROM scratch\nLABEL {LOAD_LABEL}={}\nCOPY payload /payload\n",
            self.unique
        );
        let reference = format!("{repository}:{tag}");
        let id = build(
            &self.docker,
            &reference,
            &[("Dockerfile", dockerfile.as_bytes()), ("payload", content)],
        )
        .await;
        BuiltImage {
            service: service.to_owned(),
            image: ImageRef {
                repository: repository.to_owned(),
                tag: tag.to_owned(),
            },
            id,
            input_digest: String::new(),
            outcome: Outcome::Built,
        }
    }

    /// Builds `FROM scratch` with one layer per file (`path in the image`, content), bottom
    /// first, as `repository:tag`; labelled so the scenario removes it. Files are 0755.
    pub async fn layered_image(
        &self,
        service: &str,
        repository: &str,
        tag: &str,
        files: &[(&str, &[u8])],
    ) -> BuiltImage {
        let mut dockerfile = format!("FROM scratch\nLABEL {LOAD_LABEL}={}\n", self.unique);
        let names: Vec<String> = (0..files.len()).map(|i| format!("file{i}")).collect();
        let mut context: Vec<(&str, &[u8])> = Vec::new();
        for ((path, content), name) in files.iter().zip(&names) {
            dockerfile.push_str(&format!("COPY {name} {path}\n"));
            context.push((name, content));
        }
        context.push(("Dockerfile", dockerfile.as_bytes()));
        let reference = format!("{repository}:{tag}");
        let id = build(&self.docker, &reference, &context).await;
        BuiltImage {
            service: service.to_owned(),
            image: ImageRef {
                repository: repository.to_owned(),
                tag: tag.to_owned(),
            },
            id,
            input_digest: String::new(),
            outcome: Outcome::Built,
        }
    }

    /// A repository name unique to this scenario.
    pub fn repository(&self, service: &str) -> String {
        format!("todo-deploy-e2e/{}-{service}", self.unique)
    }
}

impl Drop for FakeNodes {
    fn drop(&mut self) {
        let label = format!("{LOAD_LABEL}={}", self.unique);
        // Drop cannot await, and runs inside the test's runtime: clean up on a thread.
        let cleaning = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(remove_everything(&label));
        });
        let _ = cleaning.join();
    }
}

async fn remove_everything(label: &str) {
    let Ok(docker) = todo_deploy::docker::connect(&super::docker::engine_env).await else {
        return;
    };
    let filters = HashMap::from([("label".to_owned(), vec![label.to_owned()])]);
    let containers = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    for container in docker
        .list_containers(Some(containers))
        .await
        .unwrap_or_default()
    {
        if let Some(id) = container.id {
            let force = RemoveContainerOptionsBuilder::new()
                .force(true)
                .v(true)
                .build();
            let _ = docker.remove_container(&id, Some(force)).await;
        }
    }
    let filters = HashMap::from([("label", vec![label])]);
    let images = ListImagesOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    for image in docker.list_images(Some(images)).await.unwrap_or_default() {
        let force = RemoveImageOptionsBuilder::new().force(true).build();
        let _ = docker.remove_image(&image.id, Some(force), None).await;
    }
}

/// The fake node image, `todo-deploy-e2e/fake-node:<digest of its files>`: built once, then
/// kept (about 1 MB) for later runs, since its tag changes with its files.
pub async fn node_image(docker: &Docker) -> String {
    let dir = fixtures().join("nodes");
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("Dockerfile", read(&dir.join("Dockerfile"))),
        ("fake-node", read(&dir.join("fake-node"))),
        ("busybox", read(Path::new("/bin/busybox"))),
    ];
    let mut digest = Sha256::new();
    for (name, content) in &files {
        digest.update(name.as_bytes());
        digest.update(content);
    }
    let hex: String = digest.finalize()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let reference = format!("todo-deploy-e2e/fake-node:{hex}");
    // One build at a time: two at once would leave the loser's image behind, untagged.
    static BUILDING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _building = BUILDING.lock().await;
    if docker.inspect_image(&reference).await.is_err() {
        let files: Vec<(&str, &[u8])> = files.iter().map(|(n, c)| (*n, c.as_slice())).collect();
        build(docker, &reference, &files).await;
    }
    reference
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|error| panic!("read `{}`: {error}", path.display()))
}

/// Builds an image from `files` (a `Dockerfile` among them) as `reference`; its ID.
pub async fn build(docker: &Docker, reference: &str, files: &[(&str, &[u8])]) -> String {
    let mut archive = tar::Builder::new(Vec::new());
    for (name, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o755);
        header.set_cksum();
        archive
            .append_data(&mut header, name, *content)
            .expect("tar");
    }
    let archive = archive.into_inner().expect("tar");
    let options = BuildImageOptionsBuilder::default()
        .t(reference)
        .rm(true)
        .forcerm(true)
        .build();
    let mut output = docker.build_image(options, None, Some(bollard::body_full(archive.into())));
    while let Some(info) = output.next().await {
        if let Err(error) = info {
            panic!("build `{reference}`: {error}");
        }
    }
    docker
        .inspect_image(reference)
        .await
        .expect("the built image")
        .id
        .expect("an ID")
}

/// A Minikube directory (`MINIKUBE_HOME`) with a profile.
pub struct MinikubeHome {
    pub dir: tempfile::TempDir,
}

impl MinikubeHome {
    /// A profile `name` with `driver`, `runtime` and `nodes` nodes (`<name>`, `<name>-m02`…).
    pub fn new(name: &str, driver: &str, runtime: &str, nodes: usize) -> MinikubeHome {
        let dir = tempfile::tempdir().expect("a temp dir");
        let mut listed = vec![r#"{"Name":"","IP":"192.168.49.2","ControlPlane":true}"#.to_owned()];
        for n in 2..=nodes {
            listed.push(format!(
                r#"{{"Name":"m{n:02}","IP":"192.168.49.{}"}}"#,
                n + 1
            ));
        }
        let config = format!(
            r#"{{"Name":"{name}","Driver":"{driver}","KubernetesConfig":{{"ContainerRuntime":"{runtime}"}},"Nodes":[{}]}}"#,
            listed.join(",")
        );
        let profile = dir.path().join("profiles").join(name);
        std::fs::create_dir_all(&profile).expect("mkdir");
        std::fs::write(profile.join("config.json"), config).expect("write the profile");
        MinikubeHome { dir }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// An environment with only `MINIKUBE_HOME`.
    pub fn env(&self) -> impl Fn(&str) -> Option<String> + use<> {
        let home = self.dir.path().display().to_string();
        move |key| (key == "MINIKUBE_HOME").then(|| home.clone())
    }
}

/// A containerd of its own (not the engine's), killed and removed when dropped.
pub struct Containerd {
    dir: tempfile::TempDir,
    process: std::process::Child,
}

impl Containerd {
    /// Starts one; `None` (after saying why) without `containerd`, `ctr` or root, a failure in CI.
    pub fn start() -> Option<Containerd> {
        let have = |program: &str| {
            std::process::Command::new(program)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        };
        // containerd needs root for its snapshots.
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout == b"0\n");
        if !(have("containerd") && have("ctr") && root) {
            if required_in_ci("`containerd` and `ctr` run as root (Debian's `containerd` package)")
            {
                panic!("containerd is required in CI");
            }
            return None;
        }
        let dir = tempfile::tempdir().expect("a temp dir");
        let config = format!(
            "version = 2\nroot = \"{0}/root\"\nstate = \"{0}/state\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = \"{0}/containerd.sock\"\n",
            dir.path().display()
        );
        std::fs::write(dir.path().join("config.toml"), config).expect("write the config");
        let log = std::fs::File::create(dir.path().join("log")).expect("a log");
        let process = std::process::Command::new("containerd")
            .arg("--config")
            .arg(dir.path().join("config.toml"))
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("containerd starts");
        let containerd = Containerd { dir, process };
        let started = Instant::now();
        while !containerd.socket().exists() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "containerd did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(containerd)
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("containerd.sock")
    }

    /// [`REAL_CTR`], written beside the socket (0755).
    pub fn wrapper(&self) -> PathBuf {
        let path = self.dir.path().join("ctr-wrapper");
        if !path.exists() {
            std::fs::write(&path, REAL_CTR).expect("write the wrapper");
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .expect("chmod 755");
        }
        path
    }

    /// `ctr … snapshots --snapshotter overlayfs ls`: the committed chain IDs, sorted.
    pub fn snapshots(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .ctr(&["snapshots", "--snapshotter", "overlayfs", "ls"])
            .lines()
            .filter(|line| line.trim_end().ends_with("Committed"))
            .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
            .collect();
        keys.sort();
        keys
    }

    /// `ctr … images ls -q`: the image names, sorted.
    pub fn images(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .ctr(&["images", "ls", "-q"])
            .lines()
            .map(str::to_owned)
            .collect();
        names.sort();
        names
    }

    /// Runs `argv` in a container of the image `name` (unpacked with overlayfs); its stdout.
    pub fn run(&self, name: &str, argv: &[&str]) -> String {
        static RUNS: AtomicU32 = AtomicU32::new(0);
        let id = format!(
            "tdl-run-{}-{}",
            std::process::id(),
            RUNS.fetch_add(1, Ordering::Relaxed)
        );
        let mut args = vec!["run", "--rm", "--snapshotter", "overlayfs", name, &id];
        args.extend_from_slice(argv);
        self.ctr(&args)
    }

    /// Runs `ctr` in the `k8s.io` namespace; its stdout.
    pub fn ctr(&self, args: &[&str]) -> String {
        let output = std::process::Command::new("ctr")
            .arg("--address")
            .arg(self.socket())
            .arg("--namespace=k8s.io")
            .args(args)
            .output()
            .expect("ctr runs");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// The `ctr` of a node bound to a real containerd: the real one, unless
/// `/var/lib/real-node/damage` says `cut N` (an import reads the first N bytes of its stream, then
/// the end) or `zero N M` (it reads M zeros in place of the M bytes from N on).
pub const REAL_CTR: &str = r#"#!/bin/sh
real=/usr/local/lib/ctr-real
case " $* " in
*" images import "*)
    if [ -f /var/lib/real-node/damage ]; then
        read -r how n m </var/lib/real-node/damage
        case "$how" in
        cut)
            head -c "$n" | "$real" "$@"
            status=$?
            cat >/dev/null
            exit $status
            ;;
        zero)
            # `dd bs=1` reads exactly what it copies (`head` may read ahead).
            {
                dd bs=1 count="$n" 2>/dev/null
                dd bs=1 count="$m" of=/dev/null 2>/dev/null
                head -c "$m" /dev/zero
                cat
            } | "$real" "$@"
            exit $?
            ;;
        esac
    fi
    ;;
esac
exec "$real" "$@"
"#;

/// The chain IDs of `reference`'s layers, bottom first, as containerd names their snapshots.
pub async fn chain_ids(docker: &Docker, reference: &str) -> Vec<String> {
    let inspected = docker.inspect_image(reference).await.expect("inspect");
    let layers = inspected
        .root_fs
        .and_then(|root| root.layers)
        .unwrap_or_default();
    let mut chain: Vec<String> = Vec::new();
    for diff in layers {
        let next = match chain.last() {
            None => diff,
            Some(parent) => {
                let digest = Sha256::digest(format!("{parent} {diff}").as_bytes());
                let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
                format!("sha256:{hex}")
            }
        };
        chain.push(next);
    }
    chain
}

/// `len` random bytes (xorshift): nothing along the way (compression, deduplication) can shrink
/// them, so a load of them measures the transfer.
pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..len / 8)
        .flat_map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()
        })
        .collect()
}
