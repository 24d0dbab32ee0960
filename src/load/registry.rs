//! Remote clusters: push each image to the registry the plan names (its references carry the
//! registry already), with the credentials `docker login` stored in `~/.docker/config.json`.

use std::path::PathBuf;
use std::time::Instant;

use base64::Engine;
use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::query_parameters::{PushImageOptionsBuilder, TagImageOptionsBuilder};
use futures_util::StreamExt;

use crate::build::BuiltImage;
use crate::progress::Events;

use super::error::LoadError;
use super::events::LoadEvent;
use super::outcome::{NodeLoad, NodeOutcome};

/// Pushes `image` to `registry`; [`NodeOutcome::AlreadyPresent`] when the registry had every
/// layer already.
pub async fn push(
    docker: &Docker,
    image: &BuiltImage,
    registry: &str,
    credentials: Option<DockerCredentials>,
    events: &Events,
) -> Result<NodeLoad, LoadError> {
    let (repository, target) = tag_for(docker, image, registry).await?;
    let tag = image.image.tag.as_str();
    let size = docker
        .inspect_image(&target)
        .await
        .map_err(|source| LoadError::Engine {
            action: format!("inspect `{target}`"),
            source,
        })?
        .size
        .map_or(0, |size| size.max(0) as u64);
    events.send(LoadEvent::Started {
        service: image.service.clone(),
        image: target.clone(),
        nodes: vec![registry.to_owned()],
        size,
    });
    let started = Instant::now();
    let options = PushImageOptionsBuilder::new().tag(tag).build();
    let progress = docker.push_image(&repository, Some(options), credentials);
    let pushed = match pushed(progress).await {
        Ok(pushed) => pushed,
        Err(message) => {
            events.send(LoadEvent::Failed {
                service: image.service.clone(),
            });
            return Err(LoadError::Push {
                image: target,
                message,
            });
        }
    };
    let outcome = if pushed {
        events.send(LoadEvent::Finished {
            service: image.service.clone(),
            image: target.clone(),
            nodes: vec![registry.to_owned()],
            bytes: size,
            elapsed: started.elapsed(),
        });
        NodeOutcome::Loaded { bytes: size }
    } else {
        events.send(LoadEvent::AlreadyPresent {
            service: image.service.clone(),
            image: target.clone(),
            node: registry.to_owned(),
        });
        NodeOutcome::AlreadyPresent
    };
    Ok(NodeLoad {
        service: image.service.clone(),
        image: target,
        id: image.id.clone(),
        instance: None,
        node: registry.to_owned(),
        outcome,
    })
}

/// The repository and reference `image` is pushed as (under `registry`, unless its reference
/// names it already), tagged so in the engine.
async fn tag_for(
    docker: &Docker,
    image: &BuiltImage,
    registry: &str,
) -> Result<(String, String), LoadError> {
    let source = image.image.to_string();
    let repository = match image.image.repository.strip_prefix(registry) {
        Some(rest) if rest.starts_with('/') => image.image.repository.clone(),
        _ => format!("{registry}/{}", image.image.repository),
    };
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
    Ok((repository, target))
}

/// Follows a push to its end: whether any layer was pushed, or the engine's complaint.
async fn pushed(
    progress: impl futures_util::Stream<
        Item = Result<bollard::models::PushImageInfo, bollard::errors::Error>,
    >,
) -> Result<bool, String> {
    let mut progress = std::pin::pin!(progress);
    let mut pushed = false;
    while let Some(info) = progress.next().await {
        let info = info.map_err(|error| match error {
            bollard::errors::Error::DockerStreamError { error } => error,
            other => other.to_string(),
        })?;
        pushed |= info.status.as_deref() == Some("Pushed");
    }
    Ok(pushed)
}

/// The credentials `docker login` stored for `registry` (`host[:port][/path]`), if any: the
/// `auths` of `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. Credential helpers
/// (`credsStore`, `credHelpers`) are not run.
pub fn credentials(
    registry: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<DockerCredentials> {
    let dir = match env("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env("HOME")?).join(".docker"),
    };
    let text = std::fs::read_to_string(dir.join("config.json")).ok()?;
    credentials_in(&text, registry)
}

fn credentials_in(config: &str, registry: &str) -> Option<DockerCredentials> {
    let host = registry.split('/').next().unwrap_or(registry);
    let config: serde_json::Value = serde_json::from_str(config).ok()?;
    let auths = config["auths"].as_object()?;
    let entry = auths.iter().find_map(|(key, entry)| {
        let key = key
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        let key = key.split('/').next().unwrap_or(key);
        (key == host).then_some(entry)
    })?;
    let mut credentials = DockerCredentials {
        serveraddress: Some(host.to_owned()),
        ..Default::default()
    };
    if let Some(token) = entry["identitytoken"].as_str() {
        credentials.identitytoken = Some(token.to_owned());
        return Some(credentials);
    }
    let auth = entry["auth"].as_str()?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth)
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    credentials.username = Some(user.to_owned());
    credentials.password = Some(password.to_owned());
    Some(credentials)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_logins_are_found_by_host() {
        let auth = base64::engine::general_purpose::STANDARD.encode("me:s3cret");
        let config = format!(
            r#"{{"auths":{{"https://registry.example.com:5000/v2/":{{"auth":"{auth}"}},"ghcr.io":{{"identitytoken":"tok"}}}},"credsStore":"desktop"}}"#
        );
        let found = credentials_in(&config, "registry.example.com:5000/team").unwrap();
        assert_eq!(found.username.as_deref(), Some("me"));
        assert_eq!(found.password.as_deref(), Some("s3cret"));
        assert_eq!(
            found.serveraddress.as_deref(),
            Some("registry.example.com:5000")
        );
        let token = credentials_in(&config, "ghcr.io/me").unwrap();
        assert_eq!(token.identitytoken.as_deref(), Some("tok"));
        assert!(credentials_in(&config, "localhost:5000").is_none());
        assert!(credentials_in("not json", "ghcr.io").is_none());
    }
}
