//! Deploying from a registry: each Deployment's image becomes the digest the push reported
//! (`REGISTRY/REPOSITORY@sha256:…`, so a node runs exactly what was built, whatever the tag
//! names later), the tag stays for people (label `app.kubernetes.io/version`, annotation
//! [`IMAGE`] with the tagged reference), and a registry with a login gets a
//! `kubernetes.io/dockerconfigjson` Secret that both Deployments list in `imagePullSecrets`.
//! Pure: applied to what [`super::render`] made, once the pushes are done.

use std::collections::BTreeMap;

use base64::Engine;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{LocalObjectReference, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{Manifest, Rendered, labels};
use crate::plan::Plan;

/// Annotation on a Deployment deployed by digest: the tagged reference that was pushed.
pub const IMAGE: &str = "todo-deploy/image";

/// The type of a pull Secret.
pub const DOCKER_CONFIG_JSON: &str = "kubernetes.io/dockerconfigjson";

/// One service's pushed image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub service: String,
    /// What the nodes pull: `REGISTRY/REPOSITORY@sha256:…`.
    pub image: String,
    /// What was pushed, for people: `REGISTRY/REPOSITORY:TAG`.
    pub tagged: String,
}

/// The login the nodes pull with. Its values go only into the Secret's data.
pub struct PullLogin {
    /// `host[:port]` as the nodes reach the registry.
    pub registry: String,
    pub username: String,
    pub password: String,
}

/// The pull Secret's name: `<release>-registry` (a rollback keeps it under this name).
pub fn pull_secret_name(release: &str) -> String {
    format!("{release}-registry")
}

/// `rendered` deploying `pins` by digest, pulled with `login` when there is one.
pub fn pinned(
    plan: &Plan,
    mut rendered: Rendered,
    pins: &[Pin],
    login: Option<&PullLogin>,
) -> Rendered {
    let secret = login.map(|login| pull_secret(plan, login));
    for manifest in &mut rendered.objects {
        let Manifest::Deployment(deployment) = manifest else {
            continue;
        };
        let Some(pin) = pins
            .iter()
            .find(|p| deployment.metadata.name.as_deref() == Some(p.service.as_str()))
        else {
            continue;
        };
        deployment
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(IMAGE.to_owned(), pin.tagged.clone());
        let Some(pod) = deployment
            .spec
            .as_mut()
            .and_then(|spec| spec.template.spec.as_mut())
        else {
            continue;
        };
        for container in &mut pod.containers {
            if container.name == pin.service {
                container.image = Some(pin.image.clone());
                if container.image_pull_policy.as_deref() == Some("Never") {
                    // A digest never changes what it names: pull once per node.
                    container.image_pull_policy = Some("IfNotPresent".to_owned());
                }
            }
        }
        if let Some(secret) = &secret {
            pod.image_pull_secrets = Some(vec![LocalObjectReference {
                name: secret.metadata.name.clone().unwrap_or_default(),
            }]);
        }
    }
    if let Some(secret) = secret {
        // With the other Secret: applied before the Deployments that use it.
        let at = rendered
            .objects
            .iter()
            .position(|m| !matches!(m, Manifest::ConfigMap(_) | Manifest::Secret(_)))
            .unwrap_or(rendered.objects.len());
        rendered.objects.insert(at, Manifest::Secret(secret));
    }
    rendered
}

/// For a dry run, which pushes nothing: the digests the live Deployments run where they were
/// pushed from the very tag `rendered` names (their [`IMAGE`] annotation is that reference, or
/// that reference under a registry), and the live pull Secret (its login is read from nowhere
/// else), so that an unchanged release shows no change.
pub fn as_deployed(
    plan: &Plan,
    rendered: Rendered,
    live: &[k8s_openapi::api::apps::v1::Deployment],
    pull_secret: Option<Secret>,
) -> Rendered {
    let pins: Vec<Pin> = rendered
        .objects
        .iter()
        .filter_map(|manifest| match manifest {
            Manifest::Deployment(d) => Some(d),
            _ => None,
        })
        .filter_map(|planned| {
            let name = planned.metadata.name.as_deref()?;
            let image = first_image(planned)?;
            let deployed = live
                .iter()
                .find(|d| d.metadata.name.as_deref() == Some(name))?;
            let tagged = deployed.metadata.annotations.as_ref()?.get(IMAGE)?;
            let same_tag = *tagged == image || tagged.ends_with(&format!("/{image}"));
            let running = first_image(deployed)?;
            (same_tag && running.contains("@sha256:")).then(|| Pin {
                service: name.to_owned(),
                image: running,
                tagged: tagged.clone(),
            })
        })
        .collect();
    if pins.is_empty() {
        return rendered;
    }
    let mut pinned = pinned(plan, rendered, &pins, None);
    if let Some(secret) = pull_secret.filter(|s| s.type_.as_deref() == Some(DOCKER_CONFIG_JSON)) {
        let name = secret.metadata.name.clone();
        let live = Secret {
            metadata: ObjectMeta {
                name: name.clone(),
                namespace: Some(plan.namespace.clone()),
                labels: Some(labels::release(plan, "registry")),
                ..Default::default()
            },
            type_: secret.type_,
            data: secret.data,
            ..Default::default()
        };
        for manifest in &mut pinned.objects {
            if let Manifest::Deployment(d) = manifest
                && let Some(pod) = d.spec.as_mut().and_then(|s| s.template.spec.as_mut())
            {
                pod.image_pull_secrets = Some(vec![LocalObjectReference {
                    name: name.clone().unwrap_or_default(),
                }]);
            }
        }
        let at = pinned
            .objects
            .iter()
            .position(|m| !matches!(m, Manifest::ConfigMap(_) | Manifest::Secret(_)))
            .unwrap_or(pinned.objects.len());
        pinned.objects.insert(at, Manifest::Secret(live));
    }
    pinned
}

fn first_image(deployment: &k8s_openapi::api::apps::v1::Deployment) -> Option<String> {
    let pod = deployment.spec.as_ref()?.template.spec.as_ref()?;
    pod.containers.first()?.image.clone()
}

fn pull_secret(plan: &Plan, login: &PullLogin) -> Secret {
    let auth = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", login.username, login.password));
    let config = serde_json::json!({
        "auths": {
            login.registry.as_str(): {
                "username": login.username,
                "password": login.password,
                "auth": auth,
            }
        }
    });
    Secret {
        metadata: ObjectMeta {
            name: Some(pull_secret_name(&plan.release)),
            namespace: Some(plan.namespace.clone()),
            labels: Some(labels::release(plan, "registry")),
            ..Default::default()
        },
        type_: Some(DOCKER_CONFIG_JSON.to_owned()),
        data: Some(BTreeMap::from([(
            ".dockerconfigjson".to_owned(),
            ByteString(config.to_string().into_bytes()),
        )])),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::render;

    fn default_plan() -> Plan {
        let config =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/todo-deploy.yaml");
        let cli = <crate::cli::Cli as clap::Parser>::try_parse_from([
            "todo-deploy".to_owned(),
            "--config".to_owned(),
            config.display().to_string(),
            "render".to_owned(),
        ])
        .expect("flags");
        let flags = crate::settings::CommandFlags::default();
        let purpose = crate::settings::Purpose::Inspect;
        crate::settings::resolve(&cli.global, &flags, purpose, &|_| None).expect("a plan")
    }

    fn pins(plan: &Plan) -> Vec<Pin> {
        plan.services
            .iter()
            .map(|s| Pin {
                service: s.name.clone(),
                image: format!("r:5000/{}@sha256:{}", s.name, "a".repeat(64)),
                tagged: format!("r:5000/{}:{}", s.name, s.image.tag),
            })
            .collect()
    }

    #[test]
    fn deployments_pull_the_digest_with_the_secret() {
        let plan = default_plan();
        let login = PullLogin {
            registry: "r:5000".to_owned(),
            username: "user".to_owned(),
            password: "pass-123".to_owned(),
        };
        let rendered = pinned(&plan, render(&plan), &pins(&plan), Some(&login));
        let secrets: Vec<&Secret> = rendered
            .objects
            .iter()
            .filter_map(|m| match m {
                Manifest::Secret(s) => Some(s),
                _ => None,
            })
            .collect();
        let pull = secrets
            .iter()
            .find(|s| s.type_.as_deref() == Some(DOCKER_CONFIG_JSON))
            .expect("a pull Secret");
        assert_eq!(pull.metadata.name.as_deref(), Some("todo-registry"));
        let data = &pull.data.as_ref().unwrap()[".dockerconfigjson"].0;
        let config: serde_json::Value = serde_json::from_slice(data).unwrap();
        assert_eq!(config["auths"]["r:5000"]["auth"], "dXNlcjpwYXNzLTEyMw==");
        let first_deployment = rendered
            .objects
            .iter()
            .position(|m| matches!(m, Manifest::Deployment(_)))
            .unwrap();
        let secret_at = rendered
            .objects
            .iter()
            .position(|m| m.name() == "todo-registry")
            .unwrap();
        assert!(secret_at < first_deployment);
        for manifest in &rendered.objects {
            let Manifest::Deployment(d) = manifest else {
                continue;
            };
            let name = d.metadata.name.clone().unwrap();
            let pod = d.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
            let container = &pod.containers[0];
            assert!(container.image.as_ref().unwrap().contains("@sha256:"));
            assert_eq!(container.image_pull_policy.as_deref(), Some("IfNotPresent"));
            assert_eq!(
                pod.image_pull_secrets.as_ref().unwrap()[0].name,
                "todo-registry"
            );
            let annotation = &d.metadata.annotations.as_ref().unwrap()[IMAGE];
            assert!(
                annotation.starts_with(&format!("r:5000/{name}:")),
                "{annotation}"
            );
        }
    }

    #[test]
    fn without_a_login_there_is_no_secret() {
        let plan = default_plan();
        let plain = render(&plan);
        let rendered = pinned(&plan, plain.clone(), &pins(&plan), None);
        assert_eq!(rendered.objects.len(), plain.objects.len());
        for manifest in &rendered.objects {
            if let Manifest::Deployment(d) = manifest {
                let pod = d.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
                assert!(pod.image_pull_secrets.is_none());
            }
        }
    }

    #[test]
    fn a_dry_run_keeps_what_runs_when_the_tag_is_the_same() {
        let plan = default_plan();
        let login = PullLogin {
            registry: "r:5000".to_owned(),
            username: "user".to_owned(),
            password: "pass-123".to_owned(),
        };
        let plain = render(&plan);
        let deployed = pinned(&plan, plain.clone(), &pins(&plan), Some(&login));
        let live: Vec<_> = deployed
            .objects
            .iter()
            .filter_map(|m| match m {
                Manifest::Deployment(d) => Some(d.clone()),
                _ => None,
            })
            .collect();
        let secret = deployed.objects.iter().find_map(|m| match m {
            Manifest::Secret(s) if s.type_.as_deref() == Some(DOCKER_CONFIG_JSON) => {
                Some(s.clone())
            }
            _ => None,
        });
        // The plan names the tags the live Deployments were pushed from, under `r:5000`.
        let mut under_registry = plan.clone();
        for service in &mut under_registry.services {
            service.image.repository = format!("r:5000/{}", service.name);
        }
        let dry = as_deployed(
            &under_registry,
            render(&under_registry),
            &live,
            secret.clone(),
        );
        assert_eq!(dry.objects, deployed.objects, "nothing would change");
        // Another tag: the plan's reference stays.
        let mut retagged = under_registry.clone();
        for service in &mut retagged.services {
            service.image.tag = "other".to_owned();
        }
        let dry = as_deployed(&retagged, render(&retagged), &live, secret);
        assert_eq!(dry.objects, render(&retagged).objects);
    }
}
