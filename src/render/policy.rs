//! Optional per-service policies: a HorizontalPodAutoscaler (autoscaling/v2) and a
//! PodDisruptionBudget (policy/v1).

use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::labels;
use crate::config::AutoscalingConfig;
use crate::plan::{Plan, ServicePlan};

pub fn autoscaler(
    plan: &Plan,
    service: &ServicePlan,
    config: &AutoscalingConfig,
) -> HorizontalPodAutoscaler {
    HorizontalPodAutoscaler {
        metadata: meta(plan, service),
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".to_owned()),
                kind: super::Kind::Deployment.to_string(),
                name: service.name.clone(),
            },
            min_replicas: Some(config.min_replicas),
            max_replicas: config.max_replicas,
            metrics: Some(vec![MetricSpec {
                type_: "Resource".to_owned(),
                resource: Some(ResourceMetricSource {
                    name: "cpu".to_owned(),
                    target: MetricTarget {
                        type_: "Utilization".to_owned(),
                        average_utilization: Some(config.target_cpu_utilization_percentage),
                        ..Default::default()
                    },
                }),
                ..Default::default()
            }]),
            behavior: None,
        }),
        status: None,
    }
}

pub fn disruption_budget(
    plan: &Plan,
    service: &ServicePlan,
    min_available: i32,
) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: meta(plan, service),
        spec: Some(PodDisruptionBudgetSpec {
            min_available: Some(IntOrString::Int(min_available)),
            selector: Some(LabelSelector {
                match_labels: Some(labels::selector(plan, service)),
                ..Default::default()
            }),
            ..Default::default()
        }),
        status: None,
    }
}

fn meta(plan: &Plan, service: &ServicePlan) -> ObjectMeta {
    ObjectMeta {
        name: Some(service.name.clone()),
        namespace: Some(plan.namespace.clone()),
        labels: Some(labels::service(plan, service)),
        ..Default::default()
    }
}
