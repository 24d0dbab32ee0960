//! Checks a deserialized [`Config`] beyond its types: names Kubernetes accepts, ports, quantities,
//! probe settings, references between sections. Pure: no filesystem or network (paths are checked
//! when settings are resolved). Every problem carries the field path and a fix.

use super::error::Problem;
use super::schema::{Config, ProbeConfig, ResourceAmounts, ServiceConfig};
use super::source::{FieldPath, SourceMap};
use crate::units::{QuantityError, parse_duration, parse_quantity};

/// The most a probe's seconds may be: a day, like a rollout timeout.
const MAX_PROBE_SECONDS: i32 = 24 * 60 * 60;

/// The most failures a probe may need; the rollout's diagnosis multiplies this.
const MAX_FAILURE_THRESHOLD: i32 = 10_000;

/// The most replicas a Deployment holds: its field is a signed 32-bit number.
const MAX_REPLICAS: u32 = i32::MAX as u32;

/// Linux user ids Kubernetes accepts for `runAsUser`.
const MAX_USER_ID: i64 = i32::MAX as i64;

/// Collects problems with their positions.
pub struct Problems<'a> {
    sources: &'a SourceMap,
    found: Vec<Problem>,
}

impl<'a> Problems<'a> {
    pub fn new(sources: &'a SourceMap) -> Self {
        Problems {
            sources,
            found: Vec::new(),
        }
    }

    pub fn push(&mut self, field: FieldPath, message: impl Into<String>, fix: impl Into<String>) {
        self.found.push(Problem {
            position: self.sources.value_position(&field).cloned(),
            field,
            message: message.into(),
            fix: fix.into(),
        });
    }

    pub fn into_vec(self) -> Vec<Problem> {
        self.found
    }
}

/// Every problem in `config`, in the order of its fields.
pub fn check(config: &Config, problems: &mut Problems<'_>) {
    let root = FieldPath::default();
    dns_label(problems, root.child("release"), &config.release, 53);
    dns_label(problems, root.child("namespace"), &config.namespace, 63);
    if config.services.is_empty() {
        problems.push(
            root.child("services"),
            "no services are defined",
            "add at least one service (see `config/todo-deploy.yaml`)",
        );
    }
    for (name, service) in &config.services {
        service_config(config, name, service, problems);
    }
    config_map_and_secret(config, problems);
    ingress(config, problems);
    security(config, problems);
    policies(config, problems);
    rollout(config, problems);
}

fn service_config(
    config: &Config,
    name: &str,
    service: &ServiceConfig,
    problems: &mut Problems<'_>,
) {
    let root = FieldPath::default();
    let at = root.child("services").child(name);
    if !is_dns_label(name, 63) || name.starts_with(|c: char| c.is_ascii_digit()) {
        problems.push(
            at.clone(),
            format!("`{name}` cannot name a Deployment and a Service"),
            "use lowercase letters, digits and `-`, starting with a letter (at most 63 characters)",
        );
    }
    image_repository(problems, at.child("image"), &service.image);
    port(problems, at.child("port"), service.port);
    if service.replicas > MAX_REPLICAS {
        problems.push(
            at.child("replicas"),
            format!("`{}` is more than Kubernetes allows", service.replicas),
            format!("use at most {MAX_REPLICAS}"),
        );
    }
    if let Some(service_port) = service.service.port {
        port(problems, at.child("service").child("port"), service_port);
    }
    resources(
        problems,
        &at.child("resources"),
        &service.resources.requests,
        &service.resources.limits,
    );
    probe(
        problems,
        &at.child("probes").child("readiness"),
        &service.probes.readiness,
    );
    probe(
        problems,
        &at.child("probes").child("liveness"),
        &service.probes.liveness,
    );
    for key in service.env.vars.keys() {
        env_name(problems, at.child("env").child("vars").child(key), key);
    }
    for (i, from) in service.allow_from.iter().enumerate() {
        if !config.services.contains_key(from) {
            problems.push(
                at.child("allowFrom").index(i),
                format!("`{from}` is not one of `services`"),
                format!("use one of {}", list(config.services.keys())),
            );
        }
    }
    if let Some(target) = &service.build.target
        && target.trim().is_empty()
    {
        problems.push(
            at.child("build").child("target"),
            "the build target is empty",
            "name a stage of the Dockerfile, or remove `target`",
        );
    }
}

fn config_map_and_secret(config: &Config, problems: &mut Problems<'_>) {
    let root = FieldPath::default();
    dns_subdomain(
        problems,
        root.child("configMap").child("name"),
        &config.config_map.name,
    );
    for key in config.config_map.data.keys() {
        data_key(
            problems,
            root.child("configMap").child("data").child(key),
            key,
        );
    }
    dns_subdomain(
        problems,
        root.child("secret").child("name"),
        &config.secret.name,
    );
    let mut seen = std::collections::BTreeSet::new();
    for (i, key) in config.secret.keys.iter().enumerate() {
        let at = root.child("secret").child("keys").index(i);
        let key = &key.name;
        data_key(problems, at.clone(), key);
        if !seen.insert(key) {
            problems.push(
                at,
                format!("`{key}` is listed twice"),
                "remove the duplicate",
            );
        }
    }
}

fn security(config: &Config, problems: &mut Problems<'_>) {
    let root = FieldPath::default();
    if let Some(user) = config.security.run_as_user
        && !(0..=MAX_USER_ID).contains(&user)
    {
        problems.push(
            root.child("security").child("runAsUser"),
            format!("`{user}` is not a user id Kubernetes accepts"),
            format!("use a number from 0 to {MAX_USER_ID}, or `null` for the image's user"),
        );
    }
}

fn policies(config: &Config, problems: &mut Problems<'_>) {
    let root = FieldPath::default();
    let autoscaling = &config.autoscaling;
    if autoscaling.enabled {
        let at = root.child("autoscaling");
        if autoscaling.min_replicas < 1 || autoscaling.min_replicas > autoscaling.max_replicas {
            problems.push(
                at.child("minReplicas"),
                format!(
                    "`{}` must be at least 1 and at most `maxReplicas` (`{}`)",
                    autoscaling.min_replicas, autoscaling.max_replicas
                ),
                "set 1 <= minReplicas <= maxReplicas",
            );
        }
        if autoscaling.target_cpu_utilization_percentage < 1 {
            problems.push(
                at.child("targetCpuUtilizationPercentage"),
                "must be a positive percentage",
                "use e.g. `80`",
            );
        }
    }
    if config.pod_disruption_budget.enabled && config.pod_disruption_budget.min_available < 0 {
        problems.push(
            root.child("podDisruptionBudget").child("minAvailable"),
            "cannot be negative",
            "use `1` or more",
        );
    }
    if config.network_policy.enabled {
        dns_label(
            problems,
            root.child("networkPolicy").child("ingressNamespace"),
            &config.network_policy.ingress_namespace,
            63,
        );
    }
}

fn rollout(config: &Config, problems: &mut Problems<'_>) {
    let root = FieldPath::default();
    let rollout = root.child("rollout");
    if let Err(error) = parse_duration(&config.rollout.timeout) {
        problems.push(
            rollout.child("timeout"),
            format!("`{}`: {error}", config.rollout.timeout),
            error.fix(),
        );
    }
    if config.rollout.progress_deadline_seconds < 1 {
        problems.push(
            rollout.child("progressDeadlineSeconds"),
            "must be at least 1",
            "use e.g. `600`",
        );
    }
    if config.rollout.history_max < 1 {
        problems.push(
            rollout.child("historyMax"),
            "must be at least 1",
            "use e.g. `10`",
        );
    }
}

fn ingress(config: &Config, problems: &mut Problems<'_>) {
    let ingress = &config.ingress;
    if !ingress.enabled {
        return;
    }
    let at = FieldPath::default().child("ingress");
    if let Some(name) = &ingress.name {
        dns_subdomain(problems, at.child("name"), name);
    }
    if let Some(host) = &ingress.host
        && (!is_dns_subdomain(host.trim_start_matches("*.")) || host.contains(':'))
    {
        problems.push(
            at.child("host"),
            format!("`{host}` is not a host name"),
            "use a lowercase DNS name such as `todo.local`, without scheme or port",
        );
    }
    if ingress.paths.is_empty() {
        problems.push(
            at.child("paths"),
            "the Ingress has no paths",
            "add a path (e.g. `- {path: /, service: frontend}`) or set `ingress.enabled: false`",
        );
    }
    for (i, path) in ingress.paths.iter().enumerate() {
        let entry = at.child("paths").index(i);
        if !path.path.starts_with('/') {
            problems.push(
                entry.child("path"),
                format!("`{}` does not start with `/`", path.path),
                format!("write `/{}`", path.path),
            );
        }
        if !config.services.contains_key(&path.service) {
            problems.push(
                entry.child("service"),
                format!("`{}` is not one of `services`", path.service),
                format!("use one of {}", list(config.services.keys())),
            );
        }
    }
}

fn port(problems: &mut Problems<'_>, at: FieldPath, value: u16) {
    if value == 0 {
        problems.push(at, "`0` is not a port", "use a port from 1 to 65535");
    }
}

fn resources(
    problems: &mut Problems<'_>,
    at: &FieldPath,
    requests: &ResourceAmounts,
    limits: &ResourceAmounts,
) {
    let amounts = [("requests", requests), ("limits", limits)];
    let mut parsed = Vec::new();
    for (section, amount) in amounts {
        for (resource, quantity, example) in [
            ("cpu", &amount.cpu, "`300m` or `1`"),
            ("memory", &amount.memory, "`512Mi` or `1Gi`"),
        ] {
            let field = at.child(section).child(resource);
            match parse_quantity(&quantity.0) {
                Ok(v) if v >= 0.0 => parsed.push(((section, resource), v)),
                Ok(_) => problems.push(
                    field,
                    format!("`{}` is negative", quantity.0),
                    format!("write it like {example}"),
                ),
                Err(QuantityError::Malformed) => problems.push(
                    field,
                    format!("`{}` is not a Kubernetes quantity", quantity.0),
                    format!("write it like {example}"),
                ),
                Err(error @ QuantityError::TooLarge) => problems.push(
                    field,
                    format!("`{}` is {error}", quantity.0),
                    format!("write it like {example}"),
                ),
            }
        }
    }
    for resource in ["cpu", "memory"] {
        let find = |section| {
            parsed
                .iter()
                .find(|((s, r), _)| *s == section && *r == resource)
                .map(|(_, v)| *v)
        };
        if let (Some(request), Some(limit)) = (find("requests"), find("limits"))
            && request > limit
        {
            problems.push(
                at.child("requests").child(resource),
                format!("the {resource} request is larger than its limit"),
                format!("lower `requests.{resource}` or raise `limits.{resource}`"),
            );
        }
    }
}

fn probe(problems: &mut Problems<'_>, at: &FieldPath, probe: &ProbeConfig) {
    if !probe.path.starts_with('/') {
        problems.push(
            at.child("path"),
            format!("`{}` does not start with `/`", probe.path),
            format!("write `/{}`", probe.path),
        );
    }
    for (field, value, minimum, maximum) in [
        (
            "initialDelaySeconds",
            probe.initial_delay_seconds,
            0,
            MAX_PROBE_SECONDS,
        ),
        ("periodSeconds", probe.period_seconds, 1, MAX_PROBE_SECONDS),
        (
            "failureThreshold",
            probe.failure_threshold,
            1,
            MAX_FAILURE_THRESHOLD,
        ),
        (
            "timeoutSeconds",
            probe.timeout_seconds,
            1,
            MAX_PROBE_SECONDS,
        ),
    ] {
        if value < minimum {
            problems.push(
                at.child(field),
                format!("`{value}` is below the minimum of {minimum}"),
                format!("use {minimum} or more"),
            );
        } else if value > maximum {
            problems.push(
                at.child(field),
                format!("`{value}` is above the maximum of {maximum}"),
                format!("use {maximum} or less"),
            );
        }
    }
}

fn image_repository(problems: &mut Problems<'_>, at: FieldPath, image: &str) {
    if image.contains('@')
        || image
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'))
    {
        problems.push(
            at,
            format!("`{image}` includes a tag or digest"),
            "give only the repository (e.g. `todo-backend`); tags come from the build inputs or `--tag`",
        );
        return;
    }
    let mut components = image.split('/').collect::<Vec<_>>();
    if components.len() > 1 && components[0].contains(['.', ':']) || components[0] == "localhost" {
        components.remove(0);
    }
    let valid = !components.is_empty()
        && components.iter().all(|c| {
            !c.is_empty()
                && c.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
                && c.starts_with(|ch: char| ch.is_ascii_alphanumeric())
                && c.ends_with(|ch: char| ch.is_ascii_alphanumeric())
        });
    if !valid {
        problems.push(
            at,
            format!("`{image}` is not a valid image repository"),
            "use lowercase letters, digits and `.`, `_`, `-` separated by `/`, e.g. `todo-backend`",
        );
    }
}

fn env_name(problems: &mut Problems<'_>, at: FieldPath, name: &str) {
    let valid = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    if !valid {
        problems.push(
            at,
            format!("`{name}` is not a valid environment variable name"),
            "use letters, digits, `_`, `-` and `.`, not starting with a digit",
        );
    }
}

fn data_key(problems: &mut Problems<'_>, at: FieldPath, key: &str) {
    let valid = !key.is_empty()
        && key.len() <= 253
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    if !valid {
        problems.push(
            at,
            format!("`{key}` is not a valid key"),
            "use letters, digits, `_`, `-` and `.` only",
        );
    }
}

fn dns_label(problems: &mut Problems<'_>, at: FieldPath, value: &str, max: usize) {
    if !is_dns_label(value, max) {
        problems.push(
            at,
            format!("`{value}` is not a valid name"),
            format!(
                "use lowercase letters, digits and `-`, starting and ending with a letter or digit (at most {max} characters)"
            ),
        );
    }
}

fn dns_subdomain(problems: &mut Problems<'_>, at: FieldPath, value: &str) {
    if !is_dns_subdomain(value) {
        problems.push(
            at,
            format!("`{value}` is not a valid name"),
            "use lowercase letters, digits, `-` and `.` (at most 253 characters)",
        );
    }
}

pub fn is_dns_label(value: &str, max: usize) -> bool {
    !value.is_empty()
        && value.len() <= max
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !value.starts_with('-')
        && !value.ends_with('-')
}

fn is_dns_subdomain(value: &str) -> bool {
    value.len() <= 253 && value.split('.').all(|part| is_dns_label(part, 63))
}

fn list<'a>(names: impl Iterator<Item = &'a String>) -> String {
    names
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
