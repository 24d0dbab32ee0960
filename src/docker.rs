//! Connecting to a Docker engine the way the `docker` CLI does: `DOCKER_HOST` (a unix socket, or
//! TCP with TLS when `DOCKER_TLS_VERIFY` is set, certificates from `DOCKER_CERT_PATH`, which is
//! what `minikube docker-env` prints), else the context `DOCKER_CONTEXT` names, else the config's
//! `currentContext` (`docker context use`; see [`context`]), else the default socket; or an
//! explicit TLS endpoint (a host and a certificate directory) for an engine such as Minikube's.
//!
//! A connection is only handed out after the engine answered a ping and the API version was
//! negotiated: bollard speaks a newer API than older engines (Debian's 20.10 is API 1.41) and every
//! call would fail with "client version is too new" otherwise.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::{API_DEFAULT_VERSION, ClientVersion, Docker};

pub mod context;

/// How long an engine may take to answer the first request.
const PING_TIMEOUT: Duration = Duration::from_secs(10);
/// bollard's limit on waiting for a response's headers (a build's come after the whole context).
const REQUEST_TIMEOUT_SECS: u64 = 120;
const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// Where an engine listens, and how to talk to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// As the user would write it: `unix:///var/run/docker.sock`, `tcp://192.168.49.2:2376`.
    pub host: String,
    /// The directory holding `ca.pem`, `cert.pem` and `key.pem`, when the engine wants TLS.
    pub tls: Option<PathBuf>,
    pub origin: Origin,
}

/// Where an endpoint came from, which decides the advice when it does not answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The default socket: the local engine.
    Default,
    /// `DOCKER_HOST`, e.g. from `eval $(minikube docker-env)`.
    DockerHost,
    /// A Docker CLI context (`docker context use NAME`, or `DOCKER_CONTEXT`): colima, OrbStack,
    /// Rancher Desktop, Docker Desktop on Linux.
    Context(context::ContextName),
    /// Given by the caller, e.g. Minikube's engine for loading images.
    Explicit,
}

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("cannot connect to the Docker engine at `{host}`: {reason}")]
    UnsupportedHost { host: String, reason: &'static str },
    #[error("cannot use the TLS certificates in `{}` for the Docker engine at `{host}`", dir.display())]
    Certificates {
        host: String,
        dir: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(transparent)]
    Context(#[from] context::ContextError),
    #[error("cannot reach the Docker engine at `{}`{}", endpoint.host, endpoint.origin.context_suffix())]
    Unreachable {
        endpoint: Box<Endpoint>,
        #[source]
        source: bollard::errors::Error,
    },
}

impl crate::outcome::Diagnose for DockerError {
    fn hint(&self) -> Option<String> {
        Some(self.fix())
    }
}

impl DockerError {
    /// What to do about it.
    fn fix(&self) -> String {
        match self {
            DockerError::UnsupportedHost { .. } => {
                "set `DOCKER_HOST` to `unix:///path/to/docker.sock` or `tcp://host:port`, or unset it to use `/var/run/docker.sock`".to_owned()
            }
            DockerError::Context(error) => error.fix(),
            DockerError::Certificates { .. } => {
                "the directory needs `ca.pem`, `cert.pem` and `key.pem` (`DOCKER_CERT_PATH`, default `~/.docker`); for Minikube's engine run `eval $(minikube docker-env)`".to_owned()
            }
            DockerError::Unreachable { endpoint, source } => {
                if permission_denied(source) {
                    return format!(
                        "your user may not open `{}`: add it to the `docker` group (`sudo usermod -aG docker $USER`, then log in again)",
                        endpoint.host.trim_start_matches("unix://")
                    );
                }
                match &endpoint.origin {
                    Origin::Context(name) => format!("is the engine of Docker context `{name}` running (`docker --context {name} info`)? `docker context use default` (or `DOCKER_CONTEXT=default`) uses the local engine"),
                    Origin::Default => "is Docker running? Start it with `sudo systemctl start docker`, or start Docker Desktop".to_owned(),
                    Origin::DockerHost => "is the engine in `DOCKER_HOST` running? If it came from `minikube docker-env`, check `minikube status` and run `eval $(minikube docker-env)` again; `unset DOCKER_HOST` uses the local engine".to_owned(),
                    Origin::Explicit => "is it running? For Minikube's engine check `minikube status` (start it with `minikube start`); `eval $(minikube docker-env)` points the `docker` CLI at it".to_owned(),
                }
            }
        }
    }
}

/// Whether a connection failed because the socket's permissions keep the user out.
fn permission_denied(error: &bollard::errors::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if let Some(io) = current.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::PermissionDenied
        {
            return true;
        }
        cause = current.source();
    }
    false
}

impl Origin {
    /// ` (Docker context `NAME`)` for an endpoint from a context, else nothing.
    pub fn context_suffix(&self) -> String {
        match self {
            Origin::Context(name) => format!(" (Docker context `{name}`)"),
            _ => String::new(),
        }
    }

    /// In a few words, for `-v` and `doctor`.
    pub fn describe(&self) -> String {
        match self {
            Origin::Default => "the default socket".to_owned(),
            Origin::DockerHost => "`DOCKER_HOST`".to_owned(),
            Origin::Context(name) => format!("Docker context `{name}`"),
            Origin::Explicit => "the loader's engine".to_owned(),
        }
    }
}

impl Endpoint {
    /// The local engine's socket, `/var/run/docker.sock`.
    pub fn default_socket() -> Endpoint {
        Endpoint {
            host: DEFAULT_HOST.to_owned(),
            tls: None,
            origin: Origin::Default,
        }
    }

    /// The engine the `docker` CLI would use: `DOCKER_HOST` with `DOCKER_TLS_VERIFY` and
    /// `DOCKER_CERT_PATH`, else the context `DOCKER_CONTEXT` names, else the current context of
    /// `$DOCKER_CONFIG/config.json` (default `~/.docker`), else the default socket. `env` reads a
    /// variable (tests pass their own). A named context that does not exist is an error, as it
    /// is for the `docker` CLI.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Endpoint, DockerError> {
        let set = |key: &str| env(key).filter(|value| !value.is_empty());
        let Some(host) = set("DOCKER_HOST") else {
            return Ok(context::resolve(env)?.unwrap_or_else(Endpoint::default_socket));
        };
        let tls = set("DOCKER_TLS_VERIFY").map(|_| match set("DOCKER_CERT_PATH") {
            Some(dir) => PathBuf::from(dir),
            None => set("HOME")
                .map(|home| Path::new(&home).join(".docker"))
                .unwrap_or_else(|| PathBuf::from("~/.docker")),
        });
        Ok(Endpoint {
            host,
            tls,
            origin: Origin::DockerHost,
        })
    }

    /// An engine reached over TLS, e.g. Minikube's: `tcp://192.168.49.2:2376` with the directory
    /// holding `ca.pem`, `cert.pem` and `key.pem` (`~/.minikube/certs`).
    pub fn tls(host: impl Into<String>, cert_dir: impl Into<PathBuf>) -> Endpoint {
        Endpoint {
            host: host.into(),
            tls: Some(cert_dir.into()),
            origin: Origin::Explicit,
        }
    }

    /// A client for this engine, once it answered (a ping on a unix socket, else the version
    /// negotiation), speaking the engine's API version.
    pub async fn connect(&self) -> Result<Docker, DockerError> {
        self.check()?;
        let unreachable = |source| DockerError::Unreachable {
            endpoint: Box::new(self.clone()),
            source,
        };
        let certificates = |dir: &Path, source| DockerError::Certificates {
            host: self.host.clone(),
            dir: dir.to_path_buf(),
            source,
        };
        if let Some(socket) = self.host.strip_prefix("unix://") {
            match ping_version(socket).await {
                Ping::Version(version) => {
                    let version = &version;
                    let docker =
                        Docker::connect_with_unix(&self.host, REQUEST_TIMEOUT_SECS, version);
                    return docker.map_err(unreachable);
                }
                Ping::TimedOut => {
                    return Err(unreachable(bollard::errors::Error::RequestTimeoutError));
                }
                Ping::Unsure => {}
            }
        }
        if let Some(dir) = &self.tls {
            // bollard reads the key only during the handshake, where a missing file looks like
            // an engine that does not answer.
            for file in ["ca.pem", "cert.pem", "key.pem"] {
                std::fs::metadata(dir.join(file))
                    .map_err(|error| certificates(dir, format!("`{file}`: {error}").into()))?;
            }
        }
        let docker = self.client().map_err(|error| match (&self.tls, error) {
            // A missing socket is an engine that is not running, not a bad setting.
            (_, error @ bollard::errors::Error::SocketNotFoundError(_)) | (None, error) => {
                unreachable(error)
            }
            (Some(dir), error) => certificates(dir, Box::new(error)),
        })?;
        // Elsewhere, or when the ping did not say, one round trip: the version negotiation
        // (`GET /version`) is the first answer, under the first answer's timeout.
        let negotiated = docker
            .with_timeout(PING_TIMEOUT)
            .negotiate_version()
            .await
            .map_err(unreachable)?;
        Ok(negotiated.with_timeout(Duration::from_secs(REQUEST_TIMEOUT_SECS)))
    }

    fn client(&self) -> Result<Docker, bollard::errors::Error> {
        let host = self.host.as_str();
        let version = API_DEFAULT_VERSION;
        if host.starts_with("unix://") {
            return Docker::connect_with_unix(host, REQUEST_TIMEOUT_SECS, version);
        }
        match &self.tls {
            Some(dir) => Docker::connect_with_ssl(
                host,
                &dir.join("key.pem"),
                &dir.join("cert.pem"),
                &dir.join("ca.pem"),
                REQUEST_TIMEOUT_SECS,
                version,
            ),
            None => Docker::connect_with_http(host, REQUEST_TIMEOUT_SECS, version),
        }
    }

    /// Rejects hosts no client here can reach, before trying.
    fn check(&self) -> Result<(), DockerError> {
        let scheme = self.host.split_once("://").map_or("", |(scheme, _)| scheme);
        let reason = match (scheme, &self.tls) {
            ("unix" | "tcp" | "http", _) | ("https", Some(_)) => return Ok(()),
            ("https", None) => {
                "`https://` needs `DOCKER_TLS_VERIFY=1` and the certificates in `DOCKER_CERT_PATH`"
            }
            ("ssh", _) => {
                "connections over SSH are not supported; forward the remote socket (`ssh -nNT -L /tmp/docker.sock:/var/run/docker.sock HOST`) and use `unix:///tmp/docker.sock`"
            }
            ("npipe", _) => "named pipes exist only on Windows",
            _ => "expected `unix://PATH` or `tcp://HOST:PORT`",
        };
        Err(DockerError::UnsupportedHost {
            host: self.host.clone(),
            reason,
        })
    }
}

/// The API version the engine on the unix socket `socket` speaks (at most bollard's), from the
/// `Api-Version` header of its `/_ping` answer: one cheap request where bollard's negotiation
/// asks `GET /version`, which the engine answers slowly (it runs `runc --version`: some 10 ms
/// of every run). bollard does not expose a ping's headers, hence this one HTTP/1.0 exchange.
/// An engine that does not answer within [`PING_TIMEOUT`] is unreachable; anything else that is
/// off (no socket, no permission, no header) leaves it to bollard's negotiation, which reports
/// the error as before.
async fn ping_version(socket: &str) -> Ping {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::UnixStream::connect(socket).await.ok()?;
        let request = b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n";
        stream.write_all(request).await.ok()?;
        // The head is enough: a proxy may keep the connection open after the answer.
        let mut answer = Vec::new();
        let mut chunk = [0u8; 4096];
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.len() < 16 * 1024 {
            let read = stream.read(&mut chunk).await.ok()?;
            if read == 0 {
                break;
            }
            answer.extend_from_slice(&chunk[..read]);
        }
        Some(answer)
    };
    match tokio::time::timeout(PING_TIMEOUT, exchange).await {
        Err(_) => Ping::TimedOut,
        Ok(answer) => answer
            .as_deref()
            .and_then(api_version)
            .map_or(Ping::Unsure, Ping::Version),
    }
}

/// What a ping told.
enum Ping {
    Version(ClientVersion),
    TimedOut,
    Unsure,
}

/// The `Api-Version` header of a `200` HTTP answer, capped at the version bollard speaks.
fn api_version(answer: &[u8]) -> Option<ClientVersion> {
    let end = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&answer[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?;
    if !status.starts_with("HTTP/1.") || status.split(' ').nth(1) != Some("200") {
        return None;
    }
    let value = lines.find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("api-version")
            .then(|| value.trim())
    })?;
    let (major, minor) = value.split_once('.')?;
    let version = ClientVersion {
        major_version: major.parse().ok()?,
        minor_version: minor.parse().ok()?,
    };
    if version.major_version != 1 {
        return None;
    }
    Some(match version < *API_DEFAULT_VERSION {
        true => version,
        false => *API_DEFAULT_VERSION,
    })
}

/// A client for the engine the `docker` CLI would use (see [`Endpoint::from_env`]).
pub async fn connect(env: &dyn Fn(&str) -> Option<String>) -> Result<Docker, DockerError> {
    Endpoint::from_env(env)?.connect().await
}

/// [`connect`], saying under `-v` which engine it uses and why (`DOCKER_HOST`, a context).
pub async fn connect_saying(
    env: &dyn Fn(&str) -> Option<String>,
    events: &crate::progress::Events,
) -> Result<Docker, DockerError> {
    let connected = connect_endpoint(env).await;
    say(connected, events)
}

fn say(
    connected: Result<(Docker, Endpoint), DockerError>,
    events: &crate::progress::Events,
) -> Result<Docker, DockerError> {
    let (docker, endpoint) = connected?;
    events.send(crate::progress::Event::Detail(format!(
        "docker: the engine at `{}` ({})",
        endpoint.host,
        endpoint.origin.describe()
    )));
    Ok(docker)
}

/// A connection to the engine started before it is needed, on a task of its own: the engine's
/// first answer is slow (its `GET /version` runs `runc --version`, some 10 ms), and a run that
/// will build can start it before reading its settings. Its error, if any, is said only when
/// the connection is [`finish`](Connecting::finish)ed.
pub struct Connecting(tokio::task::JoinHandle<Result<(Docker, Endpoint), DockerError>>);

impl Connecting {
    pub fn start(env: &dyn Fn(&str) -> Option<String>) -> Connecting {
        let endpoint = Endpoint::from_env(env);
        Connecting(tokio::spawn(async move {
            let endpoint = endpoint?;
            let docker = endpoint.connect().await?;
            Ok((docker, endpoint))
        }))
    }

    /// The connection, saying under `-v` which engine it is (as [`connect_saying`]).
    pub async fn finish(
        self,
        env: &dyn Fn(&str) -> Option<String>,
        events: &crate::progress::Events,
    ) -> Result<Docker, DockerError> {
        let connected = match self.0.await {
            Ok(connected) => connected,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            // Cancelled (the runtime is stopping): connect here instead.
            Err(_) => connect_endpoint(env).await,
        };
        say(connected, events)
    }
}

/// Like [`connect`], also saying which endpoint answered (for `-v` and `doctor`).
pub async fn connect_endpoint(
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Docker, Endpoint), DockerError> {
    let endpoint = Endpoint::from_env(env)?;
    let docker = endpoint.connect().await?;
    Ok((docker, endpoint))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_version_comes_from_a_pings_header_capped_at_bollards() {
        let ping = |head: &str| api_version(format!("{head}\r\n\r\nOK").as_bytes());
        let docker = "HTTP/1.0 200 OK\r\nApi-Version: 1.41\r\nDocker-Experimental: false";
        let found = ping(docker).unwrap();
        assert_eq!((found.major_version, found.minor_version), (1, 41));
        let newer = ping("HTTP/1.1 200 OK\r\napi-version:  1.99").unwrap();
        assert_eq!(newer, *API_DEFAULT_VERSION);
        assert_eq!(
            ping("HTTP/1.0 500 Internal Server Error\r\nApi-Version: 1.41"),
            None
        );
        assert_eq!(ping("HTTP/1.0 200 OK\r\nServer: something"), None);
        assert_eq!(ping("HTTP/1.0 200 OK\r\nApi-Version: one"), None);
        assert_eq!(ping("HTTP/1.0 200 OK\r\nApi-Version: 2.0"), None);
        assert_eq!(api_version(b"HTTP/1.0 200 OK\r\nApi-Version: 1.41"), None);
    }

    /// An environment of `pairs` (also for `context`'s tests).
    pub(crate) fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |key| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn endpoint_follows_the_docker_cli_environment() {
        let from_env = |pairs: &[(&str, &str)]| Endpoint::from_env(&env(pairs)).unwrap();
        assert_eq!(from_env(&[]), Endpoint::default_socket());
        assert_eq!(
            from_env(&[("DOCKER_HOST", "")]),
            Endpoint::default_socket(),
            "an empty DOCKER_HOST is unset"
        );
        let minikube = from_env(&[
            ("DOCKER_HOST", "tcp://192.168.49.2:2376"),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", "/home/u/.minikube/certs"),
        ]);
        assert_eq!(minikube.host, "tcp://192.168.49.2:2376");
        assert_eq!(minikube.tls, Some(PathBuf::from("/home/u/.minikube/certs")));
        assert_eq!(minikube.origin, Origin::DockerHost);
        let default_certs = from_env(&[
            ("DOCKER_HOST", "tcp://10.0.0.1:2376"),
            ("DOCKER_TLS_VERIFY", "1"),
            ("HOME", "/home/u"),
        ]);
        assert_eq!(default_certs.tls, Some(PathBuf::from("/home/u/.docker")));
        let plain = from_env(&[("DOCKER_HOST", "tcp://10.0.0.1:2375")]);
        assert_eq!(plain.tls, None);
    }

    #[test]
    fn unsupported_hosts_are_named_with_the_fix() {
        let ssh = Endpoint::from_env(&env(&[("DOCKER_HOST", "ssh://me@box")])).unwrap();
        let error = ssh.check().unwrap_err();
        assert!(error.to_string().contains("`ssh://me@box`"), "{error}");
        assert!(
            error.to_string().contains("unix:///tmp/docker.sock"),
            "{error}"
        );
        let https = Endpoint::from_env(&env(&[("DOCKER_HOST", "https://box:2376")])).unwrap();
        assert!(https.check().is_err());
        assert!(Endpoint::default_socket().check().is_ok());
    }

    #[tokio::test]
    async fn a_missing_socket_asks_whether_docker_runs() {
        let dir = tempfile::tempdir().unwrap();
        let host = format!("unix://{}/docker.sock", dir.path().display());
        let error = connect(&env(&[("DOCKER_HOST", &host)])).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("cannot reach the Docker engine at `{host}`")
        );
        assert!(
            error.fix().contains("minikube docker-env"),
            "{}",
            error.fix()
        );
        let default = DockerError::Unreachable {
            endpoint: Box::new(Endpoint::default_socket()),
            source: bollard::errors::Error::SocketNotFoundError("x".into()),
        };
        assert!(default.fix().contains("sudo systemctl start docker"));
    }

    #[tokio::test]
    async fn missing_certificates_name_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let endpoint = Endpoint::tls("tcp://127.0.0.1:1", dir.path());
        let error = endpoint.connect().await.unwrap_err();
        assert!(
            matches!(error, DockerError::Certificates { .. }),
            "{error:?}"
        );
        assert!(
            error
                .to_string()
                .contains(&dir.path().display().to_string())
        );
    }
}
