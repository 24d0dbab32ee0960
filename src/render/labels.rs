//! The labels and annotations every rendered object carries.
//!
//! `app.kubernetes.io/instance` marks what belongs to a release: `status`, pruning and `down` find
//! objects by it. Selectors use only labels that never change between versions.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::build::context::hex;
use crate::plan::{Plan, ServicePlan};

pub const NAME: &str = "app.kubernetes.io/name";
pub const INSTANCE: &str = "app.kubernetes.io/instance";
pub const COMPONENT: &str = "app.kubernetes.io/component";
pub const PART_OF: &str = "app.kubernetes.io/part-of";
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const VERSION: &str = "app.kubernetes.io/version";
pub const MANAGER: &str = "todo-deploy";

/// Pod-template annotation that changes whenever ConfigMap or Secret data changes, so that a
/// config change rolls the pods.
pub const CONFIG_CHECKSUM: &str = "todo-deploy/config-checksum";

/// Labels of an object that belongs to the release as a whole (ConfigMap, Secret, Ingress).
pub fn release(plan: &Plan, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NAME.to_owned(), plan.app.clone()),
        (INSTANCE.to_owned(), plan.release.clone()),
        (COMPONENT.to_owned(), component.to_owned()),
        (PART_OF.to_owned(), plan.app.clone()),
        (MANAGED_BY.to_owned(), MANAGER.to_owned()),
    ])
}

/// Labels of a service's objects, including its version.
pub fn service(plan: &Plan, service: &ServicePlan) -> BTreeMap<String, String> {
    let mut labels = release(plan, &service.name);
    labels.insert(VERSION.to_owned(), service.image.tag.clone());
    labels
}

/// The stable subset that selects a service's pods.
pub fn selector(plan: &Plan, service: &ServicePlan) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NAME.to_owned(), plan.app.clone()),
        (INSTANCE.to_owned(), plan.release.clone()),
        (COMPONENT.to_owned(), service.name.clone()),
    ])
}

/// The label selector of everything in a release, for list calls.
pub fn release_selector(release: &str) -> String {
    format!("{INSTANCE}={release},{MANAGED_BY}={MANAGER}")
}

/// SHA-256 over the ConfigMap data and the Secret data. Secret values enter only as their own
/// SHA-256 digests, never as text.
pub fn config_checksum(plan: &Plan) -> String {
    let mut hasher = Sha256::new();
    for (key, value) in &plan.config_map.data {
        hasher.update(format!("configmap {key}={value}\n"));
    }
    for (key, value) in &plan.secret.values {
        let value_digest = hex(&Sha256::digest(value.expose().as_bytes()));
        hasher.update(format!("secret {key}={value_digest}\n"));
    }
    hex(&hasher.finalize())
}
