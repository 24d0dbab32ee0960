//! Resolves raw flags, the configuration files and the environment into a [`Plan`], before any
//! work starts. Filesystem reads only (config, env file, build contexts); no cluster or Docker I/O.
//! Every failure here is the user's input to fix, so all of them exit with the usage code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::build::context::{hex, input_digest, lexically_normal};
use crate::build::{BuildInputs, ContextError};
use crate::cli::GlobalArgs;
use crate::config::source::{FieldPath, SourceMap};
use crate::config::validate::{Problems, is_dns_label};
use crate::config::{self, ConfigError, LoaderKind, PullPolicy};
use crate::outcome::{Diagnose, Exit};
use crate::plan::{
    ClusterTarget, ConfigMapPlan, ImageRef, IngressPlan, IngressRoute, Plan, SecretPlan,
    ServicePlan,
};
use crate::secrets::{self, SecretValue, SecretsError};
use crate::units::parse_duration;

/// What the command does with the plan, and so what must be resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Builds and writes the release: build contexts are checked and digested (image tags come
    /// from them), and the Secret's values are read.
    Deploy,
    /// Reads or removes what is deployed (`status`, `history`, `rollback`, `down`): no build
    /// context is read and no secret value is needed. Image tags are `--tag` or `unbuilt`.
    Inspect,
}

/// What a command adds to the global flags.
#[derive(Debug, Clone, Default)]
pub struct CommandFlags<'a> {
    pub tag: Option<&'a str>,
    pub timeout: Option<&'a str>,
    pub loader: Option<LoaderKind>,
    pub history_max: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error("cannot read the build context of `{service}`")]
    Context {
        service: String,
        #[source]
        source: ContextError,
    },
    #[error("`--{flag} {value}`: {message}")]
    Flag {
        flag: &'static str,
        value: String,
        message: String,
        fix: String,
    },
}

impl Diagnose for SettingsError {
    fn exit(&self) -> Exit {
        Exit::Usage
    }

    fn hint(&self) -> Option<String> {
        match self {
            SettingsError::Config(error) => error.hint(),
            SettingsError::Secrets(error) => error.hint(),
            SettingsError::Context { .. } => Some(
                "check the file permissions in the build context, and its `.dockerignore`"
                    .to_owned(),
            ),
            SettingsError::Flag { fix, .. } => Some(fix.clone()),
        }
    }
}

/// Resolves everything a command needs into a [`Plan`].
pub fn resolve(
    global: &GlobalArgs,
    flags: &CommandFlags<'_>,
    purpose: Purpose,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Plan, SettingsError> {
    let loaded = config::load(&global.config, &global.values, &global.set)?;
    let config = &loaded.config;
    let sources = &loaded.sources;

    let namespace = resolve_namespace(global.namespace.as_deref(), config)?;
    check_flags(flags)?;
    let timeout = resolve_timeout(flags.timeout, &config.rollout.timeout)?;
    let loader = flags.loader.unwrap_or(config.cluster.loader);

    let mut problems = Problems::new(sources);
    let registry = resolve_registry(loader, config, &mut problems);
    let inputs = ServiceInputs {
        sources,
        purpose,
        tag: flags.tag,
        loader,
        registry: registry.as_deref(),
    };
    let mut builds = Vec::new();
    for (name, service) in &config.services {
        if let Some(build) = build_inputs(name, service, &inputs, &mut problems) {
            builds.push((name.as_str(), service, build));
        }
    }
    let problems = problems.into_vec();
    if !problems.is_empty() {
        return Err(ConfigError::Invalid(problems).into());
    }
    let digests = input_digests(&builds, purpose)?;
    let services: Vec<ServicePlan> = builds
        .into_iter()
        .zip(digests)
        .map(|((name, service, build), digest)| service_plan(name, service, build, digest, &inputs))
        .collect();

    let env_file = env_file(global.env_file.as_deref(), config, sources);
    let values = match purpose {
        Purpose::Inspect => Default::default(),
        Purpose::Deploy => secrets::collect(&secret_keys(config), env_file.as_deref(), env)?,
    };
    Ok(Plan {
        release: config.release.clone(),
        namespace,
        app: config.app.clone(),
        cluster: cluster_target(global, config, loader, registry),
        ingress: ingress_plan(config, &services),
        services,
        config_map: ConfigMapPlan {
            name: config.config_map.name.clone(),
            data: config.config_map.data.clone(),
        },
        secret: secret_plan(config, values, env_file),
        security: config.security.clone(),
        autoscaling: config
            .autoscaling
            .enabled
            .then(|| config.autoscaling.clone()),
        pod_disruption_budget: config
            .pod_disruption_budget
            .enabled
            .then_some(config.pod_disruption_budget.min_available),
        network_policy: config
            .network_policy
            .enabled
            .then(|| config.network_policy.ingress_namespace.clone()),
        progress_deadline_seconds: config.rollout.progress_deadline_seconds,
        timeout,
        history_max: flags.history_max.unwrap_or(config.rollout.history_max),
        config_digest: digest_config(config),
    })
}

/// `--namespace`, checked, else the config's.
fn resolve_namespace(flag: Option<&str>, config: &config::Config) -> Result<String, SettingsError> {
    match flag {
        Some(namespace) if !is_dns_label(namespace, 63) => Err(SettingsError::Flag {
            flag: "namespace",
            value: namespace.to_owned(),
            message: "not a valid namespace name".to_owned(),
            fix: "use lowercase letters, digits and `-` (at most 63 characters)".to_owned(),
        }),
        Some(namespace) => Ok(namespace.to_owned()),
        None => Ok(config.namespace.clone()),
    }
}

/// The command's own flags that need more than clap's parsing: `--tag`, `--history-max`.
fn check_flags(flags: &CommandFlags<'_>) -> Result<(), SettingsError> {
    if let Some(tag) = flags.tag
        && !is_valid_tag(tag)
    {
        return Err(SettingsError::Flag {
            flag: "tag",
            value: tag.to_owned(),
            message: "not a valid image tag".to_owned(),
            fix: "use letters, digits, `_`, `.` and `-`, not starting with `.` or `-` (at most 128 characters)".to_owned(),
        });
    }
    if flags.history_max == Some(0) {
        return Err(SettingsError::Flag {
            flag: "history-max",
            value: "0".to_owned(),
            message: "the history must keep at least the current revision".to_owned(),
            fix: "use 1 or more".to_owned(),
        });
    }
    Ok(())
}

/// The registry the `registry` loader pushes to (none for the other loaders).
fn resolve_registry(
    loader: LoaderKind,
    config: &config::Config,
    problems: &mut Problems<'_>,
) -> Option<String> {
    match (loader, &config.cluster.registry) {
        (LoaderKind::Registry, Some(registry)) => Some(registry.trim_end_matches('/').to_owned()),
        (LoaderKind::Registry, None) => {
            problems.push(
                FieldPath::default().child("cluster").child("registry"),
                "the `registry` loader needs a registry to push to",
                "set `cluster.registry`, e.g. `--set cluster.registry=localhost:5000`",
            );
            None
        }
        _ => None,
    }
}

/// What every service's plan is resolved with.
struct ServiceInputs<'a> {
    sources: &'a SourceMap,
    purpose: Purpose,
    tag: Option<&'a str>,
    loader: LoaderKind,
    registry: Option<&'a str>,
}

/// Each service's input digest when deploying (empty otherwise), a thread per service: reading
/// and hashing the build contexts is most of what a run does before its first request.
fn input_digests(
    builds: &[(&str, &config::ServiceConfig, BuildInputs)],
    purpose: Purpose,
) -> Result<Vec<String>, SettingsError> {
    if purpose == Purpose::Inspect {
        return Ok(vec![String::new(); builds.len()]);
    }
    std::thread::scope(|scope| {
        let threads: Vec<_> = builds
            .iter()
            .map(|(name, _, build)| {
                scope.spawn(move || {
                    input_digest(build).map_err(|source| SettingsError::Context {
                        service: (*name).to_owned(),
                        source,
                    })
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|thread| {
                thread
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p))
            })
            .collect()
    })
}

/// One service's plan, from its checked build inputs and their digest.
fn service_plan(
    name: &str,
    service: &config::ServiceConfig,
    build: BuildInputs,
    input_digest: String,
    inputs: &ServiceInputs<'_>,
) -> ServicePlan {
    let tag = match (inputs.tag, inputs.purpose) {
        (Some(tag), _) => tag.to_owned(),
        // The first 12 hex digits: the same inputs give the same tag.
        (None, Purpose::Deploy) => input_digest[..12].to_owned(),
        (None, Purpose::Inspect) => "unbuilt".to_owned(),
    };
    let repository = match inputs.registry {
        Some(registry) => format!("{registry}/{}", service.image),
        None => service.image.clone(),
    };
    let pull_policy = service.image_pull_policy.unwrap_or(match inputs.loader {
        LoaderKind::Registry | LoaderKind::None => PullPolicy::IfNotPresent,
        _ => PullPolicy::Never,
    });
    ServicePlan {
        name: name.to_owned(),
        build,
        input_digest,
        image: ImageRef { repository, tag },
        port: service.port,
        service_port: service.service.port.unwrap_or(service.port),
        service_kind: service.service.kind,
        replicas: service.replicas,
        resources: service.resources.clone(),
        probes: service.probes.clone(),
        startup: None,
        env: service.env.clone(),
        pull_policy,
        allow_from: service.allow_from.clone(),
    }
}

/// The service's build context and Dockerfile, relative to the file that set them; when
/// deploying both must exist (else a problem is recorded and `None` returned).
fn build_inputs(
    name: &str,
    service: &config::ServiceConfig,
    inputs: &ServiceInputs<'_>,
    problems: &mut Problems<'_>,
) -> Option<BuildInputs> {
    let at = FieldPath::default()
        .child("services")
        .child(name)
        .child("build");
    let base = inputs
        .sources
        .value_position(&at.child("context"))
        .map(|p| p.base_dir())
        .unwrap_or_else(|| PathBuf::from("."));
    let context = absolute(&base.join(&service.build.context));
    let dockerfile = match &service.build.dockerfile {
        Some(path) => context.join(path),
        None => context.join("Dockerfile"),
    };
    let deploying = inputs.purpose == Purpose::Deploy;
    if deploying && !context.is_dir() {
        problems.push(
            at.child("context"),
            format!("the build context `{}` is not a directory", context.display()),
            "point it at the directory that holds the service's Dockerfile (relative paths are relative to the file that sets them)",
        );
        return None;
    }
    if deploying && !dockerfile.is_file() {
        let field = match service.build.dockerfile.is_some() {
            true => at.child("dockerfile"),
            false => at.child("context"),
        };
        problems.push(
            field,
            format!("there is no Dockerfile at `{}`", dockerfile.display()),
            "create it, or set `build.dockerfile` to its path relative to the context",
        );
        return None;
    }
    Some(BuildInputs {
        context,
        dockerfile,
        args: service.build.args.clone(),
        target: service.build.target.clone(),
        labels: service.build.labels.clone(),
    })
}

/// `--env-file`, else the config's `secret.envFile` relative to the file that set it.
fn env_file(flag: Option<&Path>, config: &config::Config, sources: &SourceMap) -> Option<PathBuf> {
    match flag {
        Some(path) => Some(path.to_path_buf()),
        None => config.secret.env_file.as_ref().map(|path| {
            let field = FieldPath::default().child("secret").child("envFile");
            sources
                .value_position(&field)
                .map(|p| p.base_dir())
                .unwrap_or_default()
                .join(path)
        }),
    }
}

/// Where the cluster is and how images reach it.
fn cluster_target(
    global: &GlobalArgs,
    config: &config::Config,
    loader: LoaderKind,
    registry: Option<String>,
) -> ClusterTarget {
    ClusterTarget {
        kubeconfig: global.kubeconfig.clone(),
        context: global
            .context
            .clone()
            .or_else(|| config.cluster.context.clone()),
        loader,
        minikube_profile: config.cluster.minikube_profile.clone(),
        containerd_socket: config.cluster.containerd_socket.clone(),
        registry,
    }
}

/// The Ingress, when enabled, with a route per path whose service exists.
fn ingress_plan(config: &config::Config, services: &[ServicePlan]) -> Option<IngressPlan> {
    let ingress = &config.ingress;
    ingress.enabled.then(|| IngressPlan {
        name: ingress
            .name
            .clone()
            .unwrap_or_else(|| config.release.clone()),
        class_name: ingress.class_name.clone(),
        host: ingress.host.clone(),
        paths: ingress
            .paths
            .iter()
            .filter_map(|p| {
                let service = services.iter().find(|s| s.name == p.service)?;
                Some(IngressRoute {
                    path: p.path.clone(),
                    service: p.service.clone(),
                    port: service.service_port,
                })
            })
            .collect(),
    })
}

/// The Secret: its keys (the optional ones apart), the values read, where they came from.
fn secret_plan(
    config: &config::Config,
    values: BTreeMap<String, SecretValue>,
    env_file: Option<PathBuf>,
) -> SecretPlan {
    let keys = &config.secret.keys;
    SecretPlan {
        name: config.secret.name.clone(),
        keys: keys.iter().map(|key| key.name.clone()).collect(),
        optional: keys
            .iter()
            .filter(|key| key.optional)
            .map(|key| key.name.clone())
            .collect(),
        values,
        env_file,
    }
}

fn secret_keys(config: &config::Config) -> Vec<secrets::Key> {
    config
        .secret
        .keys
        .iter()
        .map(|key| secrets::Key {
            name: key.name.clone(),
            optional: key.optional,
        })
        .collect()
}

fn resolve_timeout(flag: Option<&str>, configured: &str) -> Result<Duration, SettingsError> {
    match flag {
        Some(text) => parse_duration(text).map_err(|error| SettingsError::Flag {
            flag: "timeout",
            value: text.to_owned(),
            message: error.to_string(),
            fix: error.fix().to_owned(),
        }),
        // Validated with the config, so this is only a fallback.
        None => Ok(parse_duration(configured).unwrap_or(Duration::from_secs(300))),
    }
}

fn digest_config(config: &config::Config) -> String {
    let text = serde_json::to_string(config).unwrap_or_default();
    hex(&Sha256::digest(text.as_bytes()))
}

/// Docker's tag grammar: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn is_valid_tag(tag: &str) -> bool {
    tag.len() <= 128
        && tag
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

fn absolute(path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    };
    // Lexically drop `.` and `..` so paths print the way users think of them.
    lexically_normal(&joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags() {
        assert!(is_valid_tag("v1.2.0"));
        assert!(is_valid_tag("1a2b3c4d5e6f"));
        assert!(is_valid_tag("_x"));
        assert!(!is_valid_tag(""));
        assert!(!is_valid_tag("-x"));
        assert!(!is_valid_tag(".x"));
        assert!(!is_valid_tag("a:b"));
        assert!(!is_valid_tag(&"a".repeat(129)));
    }

    #[test]
    fn paths_are_cleaned() {
        assert_eq!(
            absolute(Path::new("/a/b/../c/./d")),
            PathBuf::from("/a/c/d")
        );
    }
}
