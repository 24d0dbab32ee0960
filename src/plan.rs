//! The [`Plan`]: everything a command needs to know, resolved once from flags, config files and the
//! environment, and never changed afterwards. Stages read it; none of them looks at flags or files.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::{
    AutoscalingConfig, EnvConfig, LoaderKind, ProbeConfig, ProbesConfig, PullPolicy,
    ResourcesConfig, SecurityConfig, ServiceKind,
};
use crate::secrets::SecretValue;

/// What a build needs to know about its inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildInputs {
    /// The context directory (absolute).
    pub context: PathBuf,
    /// The Dockerfile (absolute); it may lie outside the context.
    pub dockerfile: PathBuf,
    pub args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub release: String,
    pub namespace: String,
    pub app: String,
    pub cluster: ClusterTarget,
    /// Sorted by name.
    pub services: Vec<ServicePlan>,
    pub config_map: ConfigMapPlan,
    pub secret: SecretPlan,
    pub ingress: Option<IngressPlan>,
    pub security: SecurityConfig,
    pub autoscaling: Option<AutoscalingConfig>,
    /// `minAvailable` of each service's PodDisruptionBudget, when enabled.
    pub pod_disruption_budget: Option<i32>,
    /// The ingress controller's namespace, when NetworkPolicies are enabled.
    pub network_policy: Option<String>,
    pub progress_deadline_seconds: i32,
    pub timeout: Duration,
    pub history_max: u32,
    /// SHA-256 of the merged configuration (secret values excluded), for the release record.
    pub config_digest: String,
}

/// Which cluster, and how images reach it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterTarget {
    /// `--kubeconfig`; `None` lets the client use `$KUBECONFIG` or `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// `--context`, else the config's `cluster.context`; `None` is the current context.
    pub context: Option<String>,
    pub loader: LoaderKind,
    pub minikube_profile: Option<String>,
    pub containerd_socket: Option<PathBuf>,
    pub registry: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ServicePlan {
    pub name: String,
    pub build: BuildInputs,
    /// SHA-256 of every build input (`build::context::input_digest`), computed once: the
    /// content tag is its prefix, and built images carry it as a label.
    pub input_digest: String,
    pub image: ImageRef,
    pub port: u16,
    pub service_port: u16,
    pub service_kind: ServiceKind,
    pub replicas: u32,
    pub resources: ResourcesConfig,
    pub probes: ProbesConfig,
    /// A startup probe, which holds the other probes back until it passes (the dev profile's
    /// stand-in for long initial delays); `None` renders none.
    pub startup: Option<ProbeConfig>,
    pub env: EnvConfig,
    pub pull_policy: PullPolicy,
    pub allow_from: Vec<String>,
}

/// An image reference with its tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub repository: String,
    pub tag: String,
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.repository, self.tag)
    }
}

#[derive(Debug, Clone)]
pub struct ConfigMapPlan {
    pub name: String,
    pub data: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct SecretPlan {
    pub name: String,
    /// Every key's name, required and optional.
    pub keys: Vec<String>,
    /// The keys that may have no value (`{name: KEY, optional: true}`): left out of the Secret
    /// then.
    pub optional: Vec<String>,
    /// Empty for commands that do not write the Secret (`status`, `down`, `history`).
    pub values: BTreeMap<String, SecretValue>,
    /// The env file the values are read from (`--env-file`, else `secret.envFile`), if any.
    pub env_file: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct IngressPlan {
    pub name: String,
    pub class_name: Option<String>,
    pub host: Option<String>,
    pub paths: Vec<IngressRoute>,
}

#[derive(Debug, Clone)]
pub struct IngressRoute {
    pub path: String,
    pub service: String,
    pub port: u16,
}

impl ClusterTarget {
    /// A target that names only its loader: the current kube context, no profile, socket or
    /// registry.
    pub fn with_loader(loader: LoaderKind) -> ClusterTarget {
        ClusterTarget {
            kubeconfig: None,
            context: None,
            loader,
            minikube_profile: None,
            containerd_socket: None,
            registry: None,
        }
    }
}

impl Plan {
    pub fn service(&self, name: &str) -> Option<&ServicePlan> {
        self.services.iter().find(|s| s.name == name)
    }
}
