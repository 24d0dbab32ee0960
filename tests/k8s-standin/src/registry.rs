//! Pulling from a real registry, as a kubelet's runtime does: an image the node lacks, from a
//! registry the test named ([`NodeImages::pull_from`]), is looked up with a real HTTP request
//! (`HEAD /v2/<path>/manifests/<tag or digest>`, Docker's manifest types in `Accept`), with
//! the basic login of the pod's `imagePullSecrets` (`kubernetes.io/dockerconfigjson`,
//! `auths[host].auth`) when there is one. A 200 puts the image on the node with the
//! behaviour registered for its repository; anything else is the pull error containerd 1.6
//! reports. Plain HTTP only (loopback registries, as dockerd and containerd allow).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use base64::Engine;
use serde_json::Value;

use crate::node::{Behavior, ImageConfig};

/// A registry the node pulls from, and how images of each repository behave.
#[derive(Debug, Clone)]
pub struct PullSource {
    /// `host:port`.
    pub host: String,
    /// Repository path under the host (`todo-e2e-backend`) → behaviour.
    pub repositories: Vec<(String, Behavior, ImageConfig)>,
}

/// `host`, `path` and the tag or digest of a reference `host/path[:tag][@digest]`.
pub fn split(reference: &str) -> Option<(&str, &str, &str)> {
    let (host, rest) = reference.split_once('/')?;
    if let Some((path, digest)) = rest.split_once('@') {
        let path = path.rsplit_once(':').map_or(path, |(p, _)| p);
        return Some((host, path, digest));
    }
    match rest.rsplit_once(':') {
        Some((path, tag)) if !tag.contains('/') => Some((host, path, tag)),
        _ => Some((host, rest, "latest")),
    }
}

/// The `user:password` a pull Secret holds for `host`, base64 as in its `auth`.
pub fn auth_for(secret: &Value, host: &str) -> Option<String> {
    if secret["type"] != "kubernetes.io/dockerconfigjson" {
        return None;
    }
    let data = secret["data"][".dockerconfigjson"].as_str()?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(data)
        .ok()?;
    let config: Value = serde_json::from_slice(&decoded).ok()?;
    config["auths"][host]["auth"].as_str().map(str::to_owned)
}

/// Asks the registry for the manifest: its HTTP status line (`200 OK`, `401 Unauthorized`),
/// or why it did not answer.
pub fn head_manifest(
    host: &str,
    path: &str,
    reference: &str,
    auth: Option<&str>,
) -> Result<String, String> {
    use std::net::ToSocketAddrs;
    let address = host
        .to_socket_addrs()
        .ok()
        .and_then(|mut addresses| addresses.find(|a| a.is_ipv4()))
        .ok_or_else(|| format!("dial tcp: lookup {host}: no such host"))?;
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))
        .map_err(|e| format!("dial tcp {host}: connect: {e}"))?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut request = format!(
        "HEAD /v2/{path}/manifests/{reference} HTTP/1.1\r\nHost: {host}\r\nAccept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json\r\nConnection: close\r\n"
    );
    if let Some(auth) = auth {
        request.push_str(&format!("Authorization: Basic {auth}\r\n"));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    let line = answer.lines().next().unwrap_or_default();
    line.split_once(' ')
        .map(|(_, status)| status.trim().to_owned())
        .ok_or_else(|| format!("the registry at {host} answered nothing"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_into_host_path_and_reference() {
        let digest = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            split(&format!("127.0.0.1:5000/team/app@{digest}")),
            Some(("127.0.0.1:5000", "team/app", digest.as_str()))
        );
        assert_eq!(
            split(&format!("127.0.0.1:5000/app:v1@{digest}")),
            Some(("127.0.0.1:5000", "app", digest.as_str()))
        );
        assert_eq!(split("r:1/app:v1"), Some(("r:1", "app", "v1")));
        assert_eq!(split("r:1/app"), Some(("r:1", "app", "latest")));
        assert_eq!(split("app"), None);
    }

    #[test]
    fn a_pull_secret_gives_the_auth_of_its_host() {
        let config = r#"{"auths":{"r:1":{"auth":"dTpw"}}}"#;
        let data = base64::engine::general_purpose::STANDARD.encode(config);
        let secret = serde_json::json!({"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": data}});
        assert_eq!(auth_for(&secret, "r:1").as_deref(), Some("dTpw"));
        assert_eq!(auth_for(&secret, "r:2"), None);
        let opaque = serde_json::json!({"type": "Opaque", "data": {".dockerconfigjson": data}});
        assert_eq!(auth_for(&opaque, "r:1"), None);
    }
}
