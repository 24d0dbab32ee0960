//! A real registry for the scenarios: Debian's `docker-registry` (CNCF Distribution 2.8) on
//! `127.0.0.1:<free port>` with its own storage directory and configuration, plain or with
//! htpasswd logins (`htpasswd -Bbn`), stopped when dropped. The Docker engine pushes to
//! 127.0.0.0/8 over plain HTTP without any configuration.
//!
//! What it received is read from its own access log (one line per request, `PUT
//! /v2/<name>/blobs/uploads/<id>?…digest=sha256%3A…` per blob stored) and from its API.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;

use super::required_in_ci;

const BINARY: &str = "/usr/bin/docker-registry";

pub struct Registry {
    child: Child,
    dir: tempfile::TempDir,
    pub host: String,
    /// The login it requires, if any.
    pub login: Option<(String, String)>,
}

impl Registry {
    /// A plain registry; `None` (after saying why) when `docker-registry` is not installed
    /// outside CI. In CI its absence fails the test.
    pub fn start() -> Option<Registry> {
        Registry::start_with(None, false)
    }

    /// A registry that requires the login `user`/`password`.
    pub fn with_login(user: &str, password: &str) -> Option<Registry> {
        Registry::start_with(Some((user, password)), false)
    }

    /// A registry in read-only maintenance mode: it refuses every push.
    pub fn read_only() -> Option<Registry> {
        Registry::start_with(None, true)
    }

    fn start_with(login: Option<(&str, &str)>, read_only: bool) -> Option<Registry> {
        if !Path::new(BINARY).is_file() {
            assert!(
                !required_in_ci(
                    "`docker-registry` (apt-get install docker-registry apache2-utils)"
                ),
                "`docker-registry` is not installed"
            );
            return None;
        }
        let dir = tempfile::tempdir().expect("a temp dir");
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n",
            dir.path().join("storage").display()
        );
        if read_only {
            config.push_str("  maintenance:\n    readonly:\n      enabled: true\n");
        }
        config.push_str(&format!("http:\n  addr: {host}\n"));
        if let Some((user, password)) = login {
            let output = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .expect("htpasswd runs (apt-get install apache2-utils)");
            assert!(output.status.success(), "htpasswd: {output:?}");
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, &output.stdout).expect("write htpasswd");
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: e2e\n    path: {}\n",
                file.display()
            ));
        }
        std::fs::write(dir.path().join("config.yml"), config).expect("write the config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("a log");
        let child = Command::new(BINARY)
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log"))
            .stderr(log)
            .spawn()
            .expect("docker-registry starts");
        let registry = Registry {
            child,
            dir,
            host,
            login: login.map(|(u, p)| (u.to_owned(), p.to_owned())),
        };
        registry.until_answering();
        Some(registry)
    }

    /// Waits until `/v2/` answers (any status).
    fn until_answering(&self) {
        let end = Instant::now() + Duration::from_secs(20);
        while self.get("/v2/", None).is_err() {
            assert!(
                Instant::now() < end,
                "the registry did not answer: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// The digests of the blobs stored under repository `name` so far (every completed
    /// upload: layers and image configs), in order.
    pub fn blob_uploads(&self, name: &str) -> Vec<String> {
        let prefix = format!("\"PUT /v2/{name}/blobs/uploads/");
        self.log()
            .lines()
            .filter_map(|line| {
                let at = line.find(&prefix)?;
                let request = &line[at..];
                let query = request.split_whitespace().nth(1)?.split_once('?')?.1;
                query
                    .split('&')
                    .find_map(|pair| pair.strip_prefix("digest="))
                    .map(|d| d.replace("%3A", ":").replace("%3a", ":"))
            })
            .collect()
    }

    /// The manifest digest the registry serves for `name:reference` (`Docker-Content-Digest`).
    pub fn manifest_digest(&self, name: &str, reference: &str) -> Option<String> {
        let auth = self
            .login
            .as_ref()
            .map(|(u, p)| base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}")));
        let answer = self
            .get(
                &format!("/v2/{name}/manifests/{reference}"),
                auth.as_deref(),
            )
            .ok()?;
        if !answer.starts_with("HTTP/1.1 200") {
            return None;
        }
        answer.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case("docker-content-digest")
                .then(|| value.trim().to_owned())
        })
    }

    /// Bytes the registry stores (its storage directory): what pushes sent, compressed.
    pub fn stored_bytes(&self) -> u64 {
        fn walk(dir: &Path) -> u64 {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return 0;
            };
            entries
                .flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => walk(&e.path()),
                    _ => e.metadata().map(|m| m.len()).unwrap_or(0),
                })
                .sum()
        }
        walk(&self.dir.path().join("storage"))
    }

    /// A `config.json` for `DOCKER_CONFIG` with this registry's login in `auths` (or `login`).
    pub fn docker_config(&self, login: Option<(&str, &str)>) -> String {
        let login = login.or(self.login.as_ref().map(|(u, p)| (u.as_str(), p.as_str())));
        match login {
            Some((user, password)) => {
                let auth =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, self.host)
            }
            None => "{}".to_owned(),
        }
    }

    /// A raw HEAD-less GET: the whole answer's head.
    fn get(&self, path: &str, auth: Option<&str>) -> std::io::Result<String> {
        let mut stream = TcpStream::connect(&self.host)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: application/vnd.docker.distribution.manifest.v2+json\r\nConnection: close\r\n",
            self.host
        );
        if let Some(auth) = auth {
            request.push_str(&format!("Authorization: Basic {auth}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes())?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer)?;
        let answer = String::from_utf8_lossy(&answer).into_owned();
        match answer.split_once("\r\n\r\n") {
            Some((head, _)) => Ok(head.to_owned()),
            None => Ok(answer),
        }
    }
}

impl Drop for Registry {
    /// Stops the registry and removes the tags pushes made in the engine (`HOST/…`; the images
    /// stay under their other names).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let host = self.host.clone();
        // Drop cannot await, and may run inside the test's runtime: untag on a thread.
        let untagging = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(untag(&host));
        });
        let _ = untagging.join();
    }
}

/// Removes the engine's tags under `host` (what pushes to it tagged).
pub async fn untag(host: &str) {
    use bollard::query_parameters::{ListImagesOptionsBuilder, RemoveImageOptionsBuilder};
    let engine = super::docker::engine_env;
    let Ok(docker) = todo_deploy::docker::connect(&engine).await else {
        return;
    };
    let pattern = format!("{host}/*");
    let filters = std::collections::HashMap::from([("reference", vec![pattern.as_str()])]);
    let listed = ListImagesOptionsBuilder::new().filters(&filters).build();
    for image in docker.list_images(Some(listed)).await.unwrap_or_default() {
        for tag in image.repo_tags.iter().filter(|t| t.starts_with(host)) {
            let untag = RemoveImageOptionsBuilder::new().noprune(true).build();
            let _ = docker.remove_image(tag, Some(untag), None).await;
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
