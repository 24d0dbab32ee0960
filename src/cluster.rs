//! The Kubernetes connection: choosing the kubeconfig and context like `kubectl` does
//! (`--kubeconfig`, else `$KUBECONFIG`, else `~/.kube/config`; `--context`, else the current one),
//! checking that the API server answers, and retrying idempotent calls through transient faults.

use std::future::Future;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::outcome::Exit;
use crate::plan::ClusterTarget;
use crate::progress::{Event, Events};

/// A connected cluster.
#[derive(Clone)]
pub struct Cluster {
    pub client: Client,
    /// The context used, for messages.
    pub context: String,
    /// The API server's address, for messages.
    pub server: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot read the kubeconfig")]
    Kubeconfig(#[source] kube::config::KubeconfigError),
    #[error("the kubeconfig names no current context")]
    NoCurrentContext { available: Vec<String> },
    #[error("the kubeconfig has no context `{context}`")]
    UnknownContext {
        context: String,
        available: Vec<String>,
    },
    #[error("cannot use the kube context `{context}`")]
    Config {
        context: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("cannot create a client for `{server}`")]
    Client {
        server: String,
        #[source]
        source: kube::Error,
    },
    #[error("the Kubernetes API server at `{server}` (context `{context}`) does not answer")]
    Unreachable {
        context: String,
        server: String,
        #[source]
        source: kube::Error,
    },
}

impl crate::outcome::Diagnose for ClusterError {
    /// A context that is not in the kubeconfig is a usage error, like a bad flag.
    fn exit(&self) -> Exit {
        match self {
            ClusterError::UnknownContext { .. } | ClusterError::NoCurrentContext { .. } => {
                Exit::Usage
            }
            _ => Exit::Failed,
        }
    }

    fn hint(&self) -> Option<String> {
        Some(self.fix())
    }
}

impl ClusterError {
    fn fix(&self) -> String {
        match self {
            ClusterError::Kubeconfig(_) => {
                "pass `--kubeconfig FILE`, set `KUBECONFIG`, or create `~/.kube/config` (`minikube start` and `kind create cluster` write it)".to_owned()
            }
            ClusterError::NoCurrentContext { available } if !available.is_empty() => format!(
                "choose one with `--context` (or `kubectl config use-context NAME`): {}",
                quoted(available)
            ),
            ClusterError::UnknownContext { available, .. }
            | ClusterError::NoCurrentContext { available }
                if available.is_empty() =>
            {
                "the kubeconfig has no contexts; start a cluster (`minikube start`)".to_owned()
            }
            ClusterError::UnknownContext { available, .. }
            | ClusterError::NoCurrentContext { available } => format!(
                "use one of {} with `--context` or `cluster.context`",
                quoted(available)
            ),
            ClusterError::Config { .. } | ClusterError::Client { .. } => {
                "check the context's cluster and user entries with `kubectl config view`".to_owned()
            }
            ClusterError::Unreachable { context, .. } => format!(
                "is the cluster running? `minikube status` / `minikube start`, or `kubectl --context {context} get ns` to check"
            ),
        }
    }
}

/// Connects to the target's cluster and checks that its API server answers.
pub async fn connect(target: &ClusterTarget, events: &Events) -> Result<Cluster, ClusterError> {
    let kubeconfig = match &target.kubeconfig {
        Some(path) => Kubeconfig::read_from(path),
        None => Kubeconfig::read(),
    }
    .map_err(ClusterError::Kubeconfig)?;
    let available = || kubeconfig.contexts.iter().map(|c| c.name.clone()).collect();
    let context = match (&target.context, &kubeconfig.current_context) {
        (Some(context), _) => context.clone(),
        (None, Some(current)) if !current.is_empty() => current.clone(),
        (None, _) => {
            return Err(ClusterError::NoCurrentContext {
                available: available(),
            });
        }
    };
    if !kubeconfig.contexts.iter().any(|c| c.name == context) {
        return Err(ClusterError::UnknownContext {
            context,
            available: available(),
        });
    }
    let options = KubeConfigOptions {
        context: Some(context.clone()),
        ..Default::default()
    };
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|source| ClusterError::Config {
            context: context.clone(),
            source,
        })?;
    // Retries are ours (`retrying`), so that one policy covers every transient fault.
    config.default_retry = false;
    // A plain `http://` server (`kubectl proxy`, a local stand-in) never uses TLS: an empty
    // trust store spares reading and parsing every system CA certificate at start.
    if config.cluster_url.scheme_str() == Some("http") && config.root_cert.is_none() {
        config.root_cert = Some(Vec::new());
    }
    config.connect_timeout = Some(Duration::from_secs(5));
    let server = config.cluster_url.to_string();
    let client = Client::try_from(config).map_err(|source| ClusterError::Client {
        server: server.clone(),
        source,
    })?;
    let cluster = Cluster {
        client,
        context,
        server,
    };
    retrying(events, "reach the API server", || {
        cluster.client.apiserver_version()
    })
    .await
    .map_err(|source| ClusterError::Unreachable {
        context: cluster.context.clone(),
        server: cluster.server.clone(),
        source,
    })?;
    Ok(cluster)
}

/// `` `a`, `b` ``: names for a message.
fn quoted(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    quoted.join(", ")
}

const ATTEMPTS: u32 = 5;

/// Runs an idempotent API call, retrying what is worth retrying: 429 (after the server's
/// `retryAfterSeconds`), 500, 502, 503, 504 and broken connections, with exponential backoff.
/// Anything else is returned at once.
pub async fn retrying<T, F, Fut>(events: &Events, what: &str, mut call: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut delay = Duration::from_millis(100);
    let mut attempt = 1;
    loop {
        match call().await {
            Ok(value) => return Ok(value),
            Err(error) if attempt < ATTEMPTS => match retry_delay(&error) {
                Some(server_delay) => {
                    let wait = server_delay.unwrap_or(delay);
                    events.send(Event::Retrying {
                        what: what.to_owned(),
                        attempt,
                        attempts: ATTEMPTS - 1,
                        wait,
                        error: short(&error),
                    });
                    tokio::time::sleep(wait).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                    attempt += 1;
                }
                None => return Err(error),
            },
            Err(error) => return Err(error),
        }
    }
}

/// `None`: do not retry. `Some(None)`: retry after the backoff. `Some(Some(d))`: the server asked for `d`.
fn retry_delay(error: &kube::Error) -> Option<Option<Duration>> {
    match error {
        kube::Error::Api(status) => match status.code {
            429 => Some(
                status
                    .details
                    .as_ref()
                    .map(|d| u64::from(d.retry_after_seconds))
                    .filter(|s| *s > 0)
                    .map(|s| Duration::from_secs(s.min(30))),
            ),
            500 | 502 | 503 | 504 => Some(None),
            _ => None,
        },
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => {
            Some(None)
        }
        _ => None,
    }
}

/// Whether an error means the API server could not be reached at all (refused, reset, timed
/// out), as opposed to an answer it gave.
pub fn is_unreachable(error: &kube::Error) -> bool {
    matches!(
        error,
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_)
    )
}

/// A one-line description of an API error, for messages.
pub fn short(error: &kube::Error) -> String {
    crate::outcome::kube_error(error)
}

/// The HTTP status code of an API error, if it is one.
pub fn status_code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}
