//! A service's Deployment: rolling updates that never drop below the desired count, resources,
//! HTTP probes, env from the ConfigMap and Secret, and restricted security defaults.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapEnvSource, Container, ContainerPort, EnvFromSource, EnvVar,
    HTTPGetAction, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements,
    SeccompProfile, SecretEnvSource, SecurityContext,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::labels;
use crate::config::{ProbeConfig, ResourceAmounts};
use crate::plan::{Plan, ServicePlan};

pub fn deployment(plan: &Plan, service: &ServicePlan, checksum: &str) -> Deployment {
    let replicas = plan
        .autoscaling
        .is_none()
        .then(|| i32::try_from(service.replicas).unwrap_or(i32::MAX));
    Deployment {
        metadata: ObjectMeta {
            name: Some(service.name.clone()),
            namespace: Some(plan.namespace.clone()),
            labels: Some(labels::service(plan, service)),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            // With an HPA, the HPA owns the replica count; applying one would fight it.
            replicas,
            selector: LabelSelector {
                match_labels: Some(labels::selector(plan, service)),
                ..Default::default()
            },
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".to_owned()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::Int(1)),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            progress_deadline_seconds: Some(plan.progress_deadline_seconds),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels::service(plan, service)),
                    annotations: Some(BTreeMap::from([(
                        labels::CONFIG_CHECKSUM.to_owned(),
                        checksum.to_owned(),
                    )])),
                    ..Default::default()
                }),
                spec: Some(pod_spec(plan, service)),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn pod_spec(plan: &Plan, service: &ServicePlan) -> PodSpec {
    let mut env_from = Vec::new();
    if service.env.from_config_map {
        env_from.push(EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource {
                name: plan.config_map.name.clone(),
                optional: None,
            }),
            ..Default::default()
        });
    }
    if service.env.from_secret && !plan.secret.keys.is_empty() {
        env_from.push(EnvFromSource {
            secret_ref: Some(SecretEnvSource {
                name: plan.secret.name.clone(),
                optional: None,
            }),
            ..Default::default()
        });
    }
    let env: Vec<EnvVar> = service
        .env
        .vars
        .iter()
        .map(|(name, value)| EnvVar {
            name: name.clone(),
            value: Some(value.clone()),
            value_from: None,
        })
        .collect();
    PodSpec {
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(plan.security.run_as_non_root),
            run_as_user: plan.security.run_as_user,
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".to_owned(),
                localhost_profile: None,
            }),
            ..Default::default()
        }),
        containers: vec![Container {
            name: service.name.clone(),
            image: Some(service.image.to_string()),
            image_pull_policy: Some(service.pull_policy.as_str().to_owned()),
            ports: Some(vec![ContainerPort {
                name: Some("http".to_owned()),
                container_port: i32::from(service.port),
                protocol: Some("TCP".to_owned()),
                ..Default::default()
            }]),
            env_from: (!env_from.is_empty()).then_some(env_from),
            env: (!env.is_empty()).then_some(env),
            resources: Some(ResourceRequirements {
                requests: Some(amounts(&service.resources.requests)),
                limits: Some(amounts(&service.resources.limits)),
                ..Default::default()
            }),
            readiness_probe: Some(probe(&service.probes.readiness, service.port)),
            liveness_probe: Some(probe(&service.probes.liveness, service.port)),
            startup_probe: service.startup.as_ref().map(|s| probe(s, service.port)),
            security_context: Some(SecurityContext {
                allow_privilege_escalation: Some(false),
                capabilities: Some(Capabilities {
                    drop: Some(vec!["ALL".to_owned()]),
                    add: None,
                }),
                read_only_root_filesystem: Some(plan.security.read_only_root_filesystem),
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn amounts(amounts: &ResourceAmounts) -> BTreeMap<String, Quantity> {
    BTreeMap::from([
        ("cpu".to_owned(), Quantity(amounts.cpu.0.clone())),
        ("memory".to_owned(), Quantity(amounts.memory.0.clone())),
    ])
}

fn probe(config: &ProbeConfig, port: u16) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(config.path.clone()),
            port: IntOrString::Int(i32::from(port)),
            ..Default::default()
        }),
        initial_delay_seconds: Some(config.initial_delay_seconds),
        period_seconds: Some(config.period_seconds),
        failure_threshold: Some(config.failure_threshold),
        timeout_seconds: Some(config.timeout_seconds),
        ..Default::default()
    }
}
