//! The configuration file's shape (`config/todo-deploy.yaml`), as serde types with their defaults.
//!
//! Every struct rejects unknown fields, so a typo is an error that names the field rather than a
//! setting that silently does nothing. Field names are camelCase like Kubernetes manifests. Values
//! are checked beyond their types in `validate.rs`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    /// The release name: the `app.kubernetes.io/instance` label and the name of the history.
    pub release: String,
    /// The namespace everything is deployed to (`--namespace` overrides it).
    pub namespace: String,
    /// The application name, used for `app.kubernetes.io/part-of`.
    #[serde(default = "default_app")]
    pub app: String,
    #[serde(default)]
    pub cluster: ClusterConfig,
    /// The services to build and deploy, by name; each becomes a Deployment and a Service.
    pub services: BTreeMap<String, ServiceConfig>,
    #[serde(default)]
    pub config_map: ConfigMapConfig,
    #[serde(default)]
    pub secret: SecretConfig,
    #[serde(default)]
    pub ingress: IngressConfig,
    #[serde(default)]
    pub security: SecurityConfig,
    #[serde(default)]
    pub autoscaling: AutoscalingConfig,
    #[serde(default)]
    pub pod_disruption_budget: PodDisruptionBudgetConfig,
    #[serde(default)]
    pub network_policy: NetworkPolicyConfig,
    #[serde(default)]
    pub rollout: RolloutConfig,
}

fn default_app() -> String {
    "todo".to_owned()
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterConfig {
    /// The kube context to use; empty means the kubeconfig's current context.
    #[serde(default)]
    pub context: Option<String>,
    /// How built images reach the cluster's nodes.
    #[serde(default)]
    pub loader: LoaderKind,
    /// The Minikube profile, when it is not the context's name.
    #[serde(default)]
    pub minikube_profile: Option<String>,
    /// The containerd socket for `loader: containerd`.
    #[serde(default)]
    pub containerd_socket: Option<PathBuf>,
    /// The registry to push to for `loader: registry`, e.g. `registry.example.com:5000/team`.
    #[serde(default)]
    pub registry: Option<String>,
}

/// How images get to the nodes: `cluster.loader` in the config, `--loader` on the command line.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum LoaderKind {
    /// Pick from the kube context: Minikube, kind, k3d, or a shared Docker daemon.
    #[default]
    Auto,
    Minikube,
    Kind,
    K3d,
    Containerd,
    /// The cluster uses the local Docker daemon (Docker Desktop, Rancher Desktop with moby, OrbStack).
    Docker,
    Registry,
    /// Do not load images; the cluster already has them.
    None,
}

impl LoaderKind {
    /// The name as written in the config and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            LoaderKind::Auto => "auto",
            LoaderKind::Minikube => "minikube",
            LoaderKind::Kind => "kind",
            LoaderKind::K3d => "k3d",
            LoaderKind::Containerd => "containerd",
            LoaderKind::Docker => "docker",
            LoaderKind::Registry => "registry",
            LoaderKind::None => "none",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceConfig {
    pub build: BuildConfig,
    /// The image repository, without a tag (`todo-backend`); the tag comes from the build inputs or `--tag`.
    pub image: String,
    /// The port the container listens on.
    pub port: u16,
    #[serde(default = "default_replicas")]
    pub replicas: u32,
    pub resources: ResourcesConfig,
    pub probes: ProbesConfig,
    #[serde(default)]
    pub env: EnvConfig,
    #[serde(default)]
    pub service: ServiceExposure,
    /// Overrides the pull policy chosen from the loader (`Never` for loaded images, else `IfNotPresent`).
    #[serde(default)]
    pub image_pull_policy: Option<PullPolicy>,
    /// Services whose pods may reach this one when `networkPolicy.enabled` is true.
    #[serde(default)]
    pub allow_from: Vec<String>,
}

fn default_replicas() -> u32 {
    2
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BuildConfig {
    /// The build context directory, relative to the file that sets it.
    pub context: PathBuf,
    /// The Dockerfile, relative to the context unless absolute; default `Dockerfile`.
    #[serde(default)]
    pub dockerfile: Option<PathBuf>,
    #[serde(default, deserialize_with = "string_map")]
    pub args: BTreeMap<String, String>,
    /// The stage to build in a multi-stage Dockerfile.
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default, deserialize_with = "string_map")]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

impl PullPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "Always",
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Never => "Never",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResourcesConfig {
    pub requests: ResourceAmounts,
    pub limits: ResourceAmounts,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResourceAmounts {
    /// CPU as a Kubernetes quantity: `300m`, `1`.
    pub cpu: Quantity,
    /// Memory as a Kubernetes quantity: `512Mi`, `1Gi`.
    pub memory: Quantity,
}

/// A Kubernetes quantity as written; YAML numbers are accepted and kept as text.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Quantity(pub String);

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct QuantityVisitor;
        impl serde::de::Visitor<'_> for QuantityVisitor {
            type Value = Quantity;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a quantity such as `512Mi` or `300m`")
            }
            fn visit_str<E>(self, v: &str) -> Result<Quantity, E> {
                Ok(Quantity(v.to_owned()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Quantity, E> {
                Ok(Quantity(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Quantity, E> {
                Ok(Quantity(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Quantity, E> {
                Ok(Quantity(v.to_string()))
            }
        }
        deserializer.deserialize_any(QuantityVisitor)
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProbesConfig {
    pub readiness: ProbeConfig,
    pub liveness: ProbeConfig,
}

/// An HTTP GET probe on the container's port.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProbeConfig {
    pub path: String,
    pub initial_delay_seconds: i32,
    pub period_seconds: i32,
    #[serde(default = "default_failure_threshold")]
    pub failure_threshold: i32,
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: i32,
}

fn default_failure_threshold() -> i32 {
    3
}

fn default_timeout_seconds() -> i32 {
    1
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EnvConfig {
    /// Expose every key of the ConfigMap as an environment variable.
    #[serde(default = "yes")]
    pub from_config_map: bool,
    /// Expose every key of the Secret as an environment variable.
    #[serde(default = "yes")]
    pub from_secret: bool,
    /// Plain extra variables.
    #[serde(default, deserialize_with = "string_map")]
    pub vars: BTreeMap<String, String>,
}

impl Default for EnvConfig {
    fn default() -> Self {
        EnvConfig {
            from_config_map: true,
            from_secret: true,
            vars: BTreeMap::new(),
        }
    }
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceExposure {
    #[serde(default, rename = "type")]
    pub kind: ServiceKind,
    /// The Service port; defaults to the container port.
    #[serde(default)]
    pub port: Option<u16>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
pub enum ServiceKind {
    #[default]
    ClusterIP,
    NodePort,
    LoadBalancer,
}

impl ServiceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceKind::ClusterIP => "ClusterIP",
            ServiceKind::NodePort => "NodePort",
            ServiceKind::LoadBalancer => "LoadBalancer",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConfigMapConfig {
    #[serde(default = "default_config_map_name")]
    pub name: String,
    #[serde(default, deserialize_with = "string_map")]
    pub data: BTreeMap<String, String>,
}

impl Default for ConfigMapConfig {
    fn default() -> Self {
        ConfigMapConfig {
            name: default_config_map_name(),
            data: BTreeMap::new(),
        }
    }
}

fn default_config_map_name() -> String {
    "todo-config".to_owned()
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretConfig {
    #[serde(default = "default_secret_name")]
    pub name: String,
    /// The keys. Values are never written in config: they come from the environment
    /// variable of the same name, or from the env file. A key is a name (required) or
    /// `{name: KEY, optional: true}` (left out of the Secret when it has no value).
    #[serde(default)]
    pub keys: Vec<SecretKey>,
    /// An env file (`KEY=value` lines) to read values from; `--env-file` overrides it.
    #[serde(default)]
    pub env_file: Option<PathBuf>,
}

impl Default for SecretConfig {
    fn default() -> Self {
        SecretConfig {
            name: default_secret_name(),
            keys: Vec::new(),
            env_file: None,
        }
    }
}

/// One key of the Secret: `DATABASE_URL` (a value is required) or
/// `{name: DATABASE_URL, optional: true}` (without a value the key is left out of the Secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretKey {
    pub name: String,
    pub optional: bool,
}

impl SecretKey {
    pub fn required(name: impl Into<String>) -> SecretKey {
        SecretKey {
            name: name.into(),
            optional: false,
        }
    }
}

/// The map form of [`SecretKey`].
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct SecretKeyMap {
    name: String,
    #[serde(default)]
    optional: bool,
}

impl<'de> Deserialize<'de> for SecretKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> serde::de::Visitor<'de> for KeyVisitor {
            type Value = SecretKey;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "a key name such as `DATABASE_URL`, or `{name: DATABASE_URL, optional: true}`",
                )
            }
            fn visit_str<E>(self, v: &str) -> Result<SecretKey, E> {
                Ok(SecretKey::required(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<SecretKey, A::Error> {
                let key =
                    SecretKeyMap::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(SecretKey {
                    name: key.name,
                    optional: key.optional,
                })
            }
        }
        deserializer.deserialize_any(KeyVisitor)
    }
}

impl Serialize for SecretKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.optional {
            false => serializer.serialize_str(&self.name),
            true => SecretKeyMap {
                name: self.name.clone(),
                optional: true,
            }
            .serialize(serializer),
        }
    }
}

fn default_secret_name() -> String {
    "todo-secrets".to_owned()
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IngressConfig {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub class_name: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub paths: Vec<IngressPath>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IngressPath {
    pub path: String,
    /// The name of one of `services`.
    pub service: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecurityConfig {
    #[serde(default = "yes")]
    pub run_as_non_root: bool,
    #[serde(default)]
    pub run_as_user: Option<i64>,
    #[serde(default)]
    pub read_only_root_filesystem: bool,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            run_as_non_root: true,
            run_as_user: None,
            read_only_root_filesystem: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AutoscalingConfig {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default = "default_min_replicas")]
    pub min_replicas: i32,
    #[serde(default = "default_max_replicas")]
    pub max_replicas: i32,
    #[serde(default = "default_cpu_target")]
    pub target_cpu_utilization_percentage: i32,
}

impl Default for AutoscalingConfig {
    fn default() -> Self {
        AutoscalingConfig {
            enabled: false,
            min_replicas: default_min_replicas(),
            max_replicas: default_max_replicas(),
            target_cpu_utilization_percentage: default_cpu_target(),
        }
    }
}

fn default_min_replicas() -> i32 {
    2
}

fn default_max_replicas() -> i32 {
    5
}

fn default_cpu_target() -> i32 {
    80
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PodDisruptionBudgetConfig {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default = "default_min_available")]
    pub min_available: i32,
}

impl Default for PodDisruptionBudgetConfig {
    fn default() -> Self {
        PodDisruptionBudgetConfig {
            enabled: false,
            min_available: default_min_available(),
        }
    }
}

fn default_min_available() -> i32 {
    1
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetworkPolicyConfig {
    #[serde(default)]
    pub enabled: bool,
    /// The namespace of the ingress controller, whose pods may reach every routed service.
    #[serde(default = "default_ingress_namespace")]
    pub ingress_namespace: String,
}

impl Default for NetworkPolicyConfig {
    fn default() -> Self {
        NetworkPolicyConfig {
            enabled: false,
            ingress_namespace: default_ingress_namespace(),
        }
    }
}

fn default_ingress_namespace() -> String {
    "ingress-nginx".to_owned()
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RolloutConfig {
    /// How long `up`/`upgrade` wait for readiness: `5m`, `90s`, `1m30s`.
    #[serde(default = "default_timeout")]
    pub timeout: String,
    /// The Deployments' `progressDeadlineSeconds`.
    #[serde(default = "default_progress_deadline")]
    pub progress_deadline_seconds: i32,
    /// Revisions kept in the release history.
    #[serde(default = "default_history_max")]
    pub history_max: u32,
}

impl Default for RolloutConfig {
    fn default() -> Self {
        RolloutConfig {
            timeout: default_timeout(),
            progress_deadline_seconds: default_progress_deadline(),
            history_max: default_history_max(),
        }
    }
}

fn default_timeout() -> String {
    "5m".to_owned()
}

fn default_progress_deadline() -> i32 {
    600
}

fn default_history_max() -> u32 {
    10
}

/// A map of strings where integers are accepted as their text (`PORT: 8000`), but booleans and
/// decimals are not: YAML reads `on`, `yes` and `true` alike, and `1.10` as `1.1`, so they must be
/// quoted to mean text.
fn string_map<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    struct Text(String);
    impl<'de> Deserialize<'de> for Text {
        fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct TextVisitor;
            impl serde::de::Visitor<'_> for TextVisitor {
                type Value = Text;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a string (quote booleans and decimals: `\"true\"`, `\"1.10\"`)")
                }
                fn visit_str<E>(self, v: &str) -> Result<Text, E> {
                    Ok(Text(v.to_owned()))
                }
                fn visit_i64<E>(self, v: i64) -> Result<Text, E> {
                    Ok(Text(v.to_string()))
                }
                fn visit_u64<E>(self, v: u64) -> Result<Text, E> {
                    Ok(Text(v.to_string()))
                }
            }
            deserializer.deserialize_any(TextVisitor)
        }
    }
    let map = BTreeMap::<String, Text>::deserialize(deserializer)?;
    Ok(map.into_iter().map(|(k, v)| (k, v.0)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_key_is_a_name_or_a_map_with_optional() {
        let keys: Vec<SecretKey> = serde_json::from_value(serde_json::json!([
            "BETTER_AUTH_SECRET",
            {"name": "DATABASE_URL", "optional": true},
            {"name": "X"}
        ]))
        .unwrap();
        assert_eq!(keys[0], SecretKey::required("BETTER_AUTH_SECRET"));
        assert!(keys[1].optional);
        assert_eq!(keys[2], SecretKey::required("X"));
        assert_eq!(
            serde_json::to_value(&keys).unwrap(),
            serde_json::json!(["BETTER_AUTH_SECRET", {"name": "DATABASE_URL", "optional": true}, "X"]),
            "the plain form stays plain"
        );
        let typo =
            serde_json::from_value::<SecretKey>(serde_json::json!({"name": "A", "optinal": true}));
        assert!(typo.unwrap_err().to_string().contains("optinal"));
        let number = serde_json::from_value::<SecretKey>(serde_json::json!(5));
        assert!(number.unwrap_err().to_string().contains("optional: true"));
    }
}
