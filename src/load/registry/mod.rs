//! Remote clusters and local registries: push each image to the registry (through the Docker
//! engine, which sends only the layers the registry lacks) and deploy it by the manifest
//! digest the push reports, so the nodes run exactly what was built.
//!
//! - `credentials` finds the login the Docker CLI would use (`auths`, credential helpers);
//! - `hosting` reads the registry a kind or k3d cluster publishes (KEP-1755);
//! - `super::refusal` tells what the engine's push error means: the registry's HTTP status and
//!   the fix.

pub mod credentials;
pub mod hosting;

use std::time::Instant;

use bollard::Docker;
use bollard::query_parameters::{PushImageOptionsBuilder, TagImageOptionsBuilder};
use futures_util::StreamExt;

use crate::build::BuiltImage;
use crate::progress::Events;

pub use super::refusal::Refusal;
pub use credentials::Login;
pub use hosting::Hosting;

use super::error::LoadError;
use super::events::LoadEvent;
use super::outcome::{NodeLoad, NodeOutcome};

/// Where images go: pushed to `push_to` from this machine, pulled by the nodes from
/// `pull_from` (the same registry, unless the cluster publishes another name for it).
#[derive(Clone)]
pub struct Target {
    pub push_to: String,
    pub pull_from: String,
    pub login: Option<Login>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("push_to", &self.push_to)
            .field("pull_from", &self.pull_from)
            .field("login", &self.login)
            .finish()
    }
}

/// What one push did.
#[derive(Debug, Default, PartialEq, Eq)]
struct Pushed {
    /// `sha256:…` of the manifest the registry stored.
    digest: Option<String>,
    /// Layers sent, and layers the registry had already.
    sent: usize,
    existed: usize,
    /// Bytes of the layers sent (the engine's progress totals).
    bytes: u64,
}

/// Pushes `image` to `target`; [`NodeLoad::image`] is then the reference the nodes pull,
/// `PULL_FROM/REPOSITORY@sha256:…`.
pub async fn push(
    docker: &Docker,
    image: &BuiltImage,
    target: &Target,
    events: &Events,
) -> Result<NodeLoad, LoadError> {
    let (repository, path) = tag_for(docker, image, &target.push_to).await?;
    let tag = image.image.tag.as_str();
    let pushed_as = format!("{repository}:{tag}");
    // What the whole image is (the engine's size, uncompressed), beside what is sent.
    let size = match docker.inspect_image(&image.id).await {
        Ok(inspected) => inspected.size.map_or(0, |s| s.max(0) as u64),
        Err(_) => 0,
    };
    events.send(LoadEvent::Started {
        service: image.service.clone(),
        image: pushed_as.clone(),
        nodes: vec![target.push_to.clone()],
        size,
    });
    let started = Instant::now();
    let options = PushImageOptionsBuilder::new().tag(tag).build();
    let credentials = target.login.as_ref().map(|l| l.credentials.clone());
    let progress = docker.push_image(&repository, Some(options), credentials);
    let pushed = match follow(progress).await {
        Ok(pushed) => pushed,
        Err(message) => {
            events.send(LoadEvent::Failed {
                service: image.service.clone(),
            });
            return Err(LoadError::Push {
                image: pushed_as,
                refusal: Refusal::of(&target.push_to, &message, target.login.is_some()),
            });
        }
    };
    let digest = match pushed.digest.clone() {
        Some(digest) => digest,
        None => repo_digest(docker, &pushed_as, &repository).await?,
    };
    let deployed = format!("{}/{path}@{digest}", target.pull_from);
    let total = pushed.sent + pushed.existed;
    let outcome = if pushed.sent == 0 {
        events.send(LoadEvent::AlreadyPresent {
            service: image.service.clone(),
            image: deployed.clone(),
            node: target.push_to.clone(),
        });
        NodeOutcome::AlreadyPresent
    } else {
        events.send(LoadEvent::Layers {
            service: image.service.clone(),
            image: deployed.clone(),
            nodes: vec![target.push_to.clone()],
            layers: pushed.sent,
            total,
            bytes: pushed.bytes,
            size: size.max(pushed.bytes),
            elapsed: started.elapsed(),
            read: None,
        });
        NodeOutcome::Layers {
            layers: pushed.sent,
            total,
            bytes: pushed.bytes,
        }
    };
    Ok(NodeLoad {
        service: image.service.clone(),
        image: deployed,
        id: image.id.clone(),
        instance: None,
        node: target.push_to.clone(),
        outcome,
    })
}

/// The repository `image` is pushed as (under `registry`, unless its reference names it
/// already), tagged so in the engine, and its path under the registry.
async fn tag_for(
    docker: &Docker,
    image: &BuiltImage,
    registry: &str,
) -> Result<(String, String), LoadError> {
    let source = image.image.to_string();
    let path = match image.image.repository.strip_prefix(registry) {
        Some(rest) if rest.starts_with('/') => rest.trim_start_matches('/').to_owned(),
        _ => image.image.repository.clone(),
    };
    let repository = format!("{registry}/{path}");
    let tag = image.image.tag.as_str();
    let target = format!("{repository}:{tag}");
    if target != source {
        let options = TagImageOptionsBuilder::new()
            .repo(&repository)
            .tag(tag)
            .build();
        docker
            .tag_image(&image.id, Some(options))
            .await
            .map_err(|source_error| LoadError::Engine {
                action: format!("tag `{source}` as `{target}`"),
                source: source_error,
            })?;
    }
    Ok((repository, path))
}

/// The digest the engine recorded for `repository` after the push (`RepoDigests`), when the
/// push's own lines did not say it.
async fn repo_digest(
    docker: &Docker,
    reference: &str,
    repository: &str,
) -> Result<String, LoadError> {
    let inspected = docker
        .inspect_image(reference)
        .await
        .map_err(|source| LoadError::Engine {
            action: format!("inspect `{reference}`"),
            source,
        })?;
    let prefix = format!("{repository}@");
    inspected
        .repo_digests
        .unwrap_or_default()
        .iter()
        .find_map(|d| d.strip_prefix(&prefix).map(str::to_owned))
        .ok_or_else(|| LoadError::Unreadable {
            image: reference.to_owned(),
            what: "the push reported no manifest digest".to_owned(),
        })
}

/// Follows a push to its end: what it sent and the digest, or the engine's complaint.
async fn follow(
    progress: impl futures_util::Stream<
        Item = Result<bollard::models::PushImageInfo, bollard::errors::Error>,
    >,
) -> Result<Pushed, String> {
    let mut progress = std::pin::pin!(progress);
    let mut pushed = Pushed::default();
    // bollard's push messages carry no layer ID, so each layer's size is told apart by value:
    // the totals of the `Pushing` progress, each counted once.
    let mut sizes = std::collections::BTreeSet::new();
    while let Some(info) = progress.next().await {
        let info = info.map_err(|error| match error {
            bollard::errors::Error::DockerStreamError { error } => error,
            other => other.to_string(),
        })?;
        if let Some(detail) = &info.error_detail {
            return Err(detail.message.clone().unwrap_or_default());
        }
        let Some(status) = info.status.as_deref() else {
            continue;
        };
        match status {
            "Pushed" => pushed.sent += 1,
            "Layer already exists" => pushed.existed += 1,
            s if s.starts_with("Mounted from ") => pushed.existed += 1,
            "Pushing" => {
                if let Some(total) = info.progress_detail.as_ref().and_then(|d| d.total) {
                    sizes.insert(total.max(0) as u64);
                }
            }
            _ => pushed.digest = pushed.digest.take().or_else(|| digest_in(status)),
        }
    }
    pushed.bytes = sizes.iter().sum();
    Ok(pushed)
}

/// `sha256:…` from the push's last line, `TAG: digest: sha256:… size: N`.
fn digest_in(status: &str) -> Option<String> {
    let rest = status.split_once(": digest: ")?.1;
    let digest = rest.split_whitespace().next()?;
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| digest.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ProgressDetail, PushImageInfo};

    fn line(_layer: Option<&str>, status: &str, total: Option<i64>) -> PushImageInfo {
        PushImageInfo {
            status: Some(status.to_owned()),
            progress_detail: total.map(|total| ProgressDetail {
                current: Some(total),
                total: Some(total),
            }),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn a_push_counts_layers_sent_and_finds_the_digest() {
        let hex = "14e4585c3efa9d6cd6cc48ce7b4a75a9fe2de0e26fdb9f24462a33ec02de8334";
        let lines = vec![
            Ok(line(None, "The push refers to repository [r:5000/x]", None)),
            Ok(line(Some("a"), "Preparing", None)),
            Ok(line(Some("b"), "Preparing", None)),
            Ok(line(Some("a"), "Pushing", Some(1000))),
            Ok(line(Some("a"), "Pushed", None)),
            Ok(line(Some("b"), "Layer already exists", None)),
            Ok(line(
                None,
                &format!("v1: digest: sha256:{hex} size: 1149"),
                None,
            )),
        ];
        let pushed = follow(futures_util::stream::iter(lines)).await.unwrap();
        assert_eq!(
            pushed,
            Pushed {
                digest: Some(format!("sha256:{hex}")),
                sent: 1,
                existed: 1,
                bytes: 1000,
            }
        );
    }

    #[tokio::test]
    async fn a_refused_push_is_the_engines_message() {
        let refused = PushImageInfo {
            error_detail: Some(bollard::models::ErrorDetail {
                code: None,
                message: Some("unauthorized: authentication required".to_owned()),
            }),
            ..Default::default()
        };
        let error = follow(futures_util::stream::iter(vec![Ok(refused)]))
            .await
            .unwrap_err();
        assert_eq!(error, "unauthorized: authentication required");
    }

    #[test]
    fn digests_are_read_only_from_the_digest_line() {
        assert_eq!(digest_in("Pushed"), None);
        assert_eq!(digest_in("v1: digest: sha256:abc size: 1"), None);
        let hex = "0".repeat(64);
        assert_eq!(
            digest_in(&format!("latest: digest: sha256:{hex} size: 528")),
            Some(format!("sha256:{hex}"))
        );
    }
}
