//! How services are reached: a Service per service, the Ingress for the host, and (optional)
//! NetworkPolicies that admit only the listed services and the ingress controller.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec, ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::labels;
use crate::plan::{IngressPlan, Plan, ServicePlan};

pub fn service(plan: &Plan, service: &ServicePlan) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(service.name.clone()),
            namespace: Some(plan.namespace.clone()),
            labels: Some(labels::service(plan, service)),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            type_: Some(service.service_kind.as_str().to_owned()),
            selector: Some(labels::selector(plan, service)),
            ports: Some(vec![ServicePort {
                name: Some("http".to_owned()),
                port: i32::from(service.service_port),
                target_port: Some(IntOrString::String("http".to_owned())),
                protocol: Some("TCP".to_owned()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn ingress(plan: &Plan, ingress: &IngressPlan) -> Ingress {
    let paths = ingress
        .paths
        .iter()
        .map(|route| HTTPIngressPath {
            path: Some(route.path.clone()),
            path_type: "Prefix".to_owned(),
            backend: IngressBackend {
                service: Some(IngressServiceBackend {
                    name: route.service.clone(),
                    port: Some(ServiceBackendPort {
                        number: Some(i32::from(route.port)),
                        name: None,
                    }),
                }),
                resource: None,
            },
        })
        .collect();
    Ingress {
        metadata: ObjectMeta {
            name: Some(ingress.name.clone()),
            namespace: Some(plan.namespace.clone()),
            labels: Some(labels::release(plan, "ingress")),
            ..Default::default()
        },
        spec: Some(IngressSpec {
            ingress_class_name: ingress.class_name.clone(),
            rules: Some(vec![IngressRule {
                host: ingress.host.clone(),
                http: Some(HTTPIngressRuleValue { paths }),
            }]),
            ..Default::default()
        }),
        status: None,
    }
}

/// Admits traffic to a service only from its `allowFrom` services and, when the Ingress routes
/// to it, from the ingress controller's namespace. A service with neither admits nothing.
pub fn network_policy(
    plan: &Plan,
    service: &ServicePlan,
    ingress_namespace: &str,
) -> NetworkPolicy {
    let mut peers: Vec<NetworkPolicyPeer> = service
        .allow_from
        .iter()
        .filter_map(|name| plan.service(name))
        .map(|from| NetworkPolicyPeer {
            pod_selector: Some(LabelSelector {
                match_labels: Some(labels::selector(plan, from)),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect();
    let routed = plan
        .ingress
        .as_ref()
        .is_some_and(|i| i.paths.iter().any(|p| p.service == service.name));
    if routed {
        peers.push(NetworkPolicyPeer {
            namespace_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    "kubernetes.io/metadata.name".to_owned(),
                    ingress_namespace.to_owned(),
                )])),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    let ingress_rules = if peers.is_empty() {
        Vec::new()
    } else {
        vec![NetworkPolicyIngressRule {
            from: Some(peers),
            ports: Some(vec![NetworkPolicyPort {
                port: Some(IntOrString::Int(i32::from(service.port))),
                protocol: Some("TCP".to_owned()),
                end_port: None,
            }]),
        }]
    };
    NetworkPolicy {
        metadata: ObjectMeta {
            name: Some(service.name.clone()),
            namespace: Some(plan.namespace.clone()),
            labels: Some(labels::service(plan, service)),
            ..Default::default()
        },
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(labels::selector(plan, service)),
                ..Default::default()
            }),
            policy_types: Some(vec!["Ingress".to_owned()]),
            ingress: Some(ingress_rules),
            egress: None,
        }),
    }
}
