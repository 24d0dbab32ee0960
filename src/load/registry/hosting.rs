//! The local-registry convention of KEP-1755 (kind, k3d, Tilt, Skaffold): a cluster that runs a
//! registry publishes it in ConfigMap `kube-public/local-registry-hosting`, data key
//! `localRegistryHosting.v1`, YAML with `host` (where this machine pushes),
//! `hostFromContainerRuntime` (what the nodes pull from), `hostFromClusterNetwork` and `help`.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use serde::Deserialize;

pub const NAMESPACE: &str = "kube-public";
pub const NAME: &str = "local-registry-hosting";
pub const KEY: &str = "localRegistryHosting.v1";

/// A published local registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hosting {
    /// Where images are pushed from this machine.
    pub host: String,
    /// The registry as the nodes' container runtime reaches it: what Deployments reference.
    pub from_runtime: String,
    pub help: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct V1 {
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    host_from_container_runtime: Option<String>,
    #[serde(default)]
    help: Option<String>,
}

/// The registry the cluster publishes, if it does. A ConfigMap that cannot be read (absent,
/// forbidden, unreachable) publishes nothing; one that is there but says nothing usable is
/// an error naming it.
pub async fn read(client: &kube::Client) -> Result<Option<Hosting>, String> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), NAMESPACE);
    let Ok(Some(map)) = api.get_opt(NAME).await else {
        return Ok(None);
    };
    let Some(text) = map.data.as_ref().and_then(|data| data.get(KEY)) else {
        return Ok(None);
    };
    parse(text)
}

/// Parses `localRegistryHosting.v1`; `None` when it names no `host`.
pub fn parse(text: &str) -> Result<Option<Hosting>, String> {
    let v1: V1 = serde_saphyr::from_str(text).map_err(|error| error.to_string())?;
    let clean =
        |h: String| Some(h.trim().trim_end_matches('/').to_owned()).filter(|h| !h.is_empty());
    let Some(host) = v1.host.and_then(clean) else {
        return Ok(None);
    };
    let from_runtime = v1
        .host_from_container_runtime
        .and_then(clean)
        .unwrap_or_else(|| host.clone());
    Ok(Some(Hosting {
        host,
        from_runtime,
        help: v1.help,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_documented_config_map() {
        // https://kind.sigs.k8s.io/docs/user/local-registry/
        let text = "host: \"localhost:5001\"\nhelp: \"https://kind.sigs.k8s.io/docs/user/local-registry/\"\n";
        let hosting = parse(text).unwrap().unwrap();
        assert_eq!(hosting.host, "localhost:5001");
        assert_eq!(hosting.from_runtime, "localhost:5001");
        let text = "host: localhost:5001\nhostFromContainerRuntime: kind-registry:5000\nhostFromClusterNetwork: kind-registry:5000\n";
        let hosting = parse(text).unwrap().unwrap();
        assert_eq!(hosting.from_runtime, "kind-registry:5000");
        assert_eq!(hosting.help, None);
    }

    #[test]
    fn no_host_is_no_registry_and_bad_yaml_an_error() {
        assert_eq!(parse("help: x\n").unwrap(), None);
        assert_eq!(parse("host: ''\n").unwrap(), None);
        assert_eq!(
            parse("host: \"  /  \"\n").unwrap(),
            None,
            "a fuzz seed's crash"
        );
        assert!(parse("host: [unclosed\n").is_err());
    }
}
