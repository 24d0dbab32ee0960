//! Docker CLI contexts, read as the `docker` CLI reads them (`docker context use NAME`, which
//! colima, OrbStack, Rancher Desktop and Docker Desktop on Linux set up): the context is
//! `DOCKER_CONTEXT`, else `currentContext` in `$DOCKER_CONFIG/config.json` (default
//! `~/.docker`); its endpoint is `Endpoints.docker.Host` in
//! `contexts/meta/<sha256 of the name>/meta.json`, its TLS material `ca.pem`, `cert.pem` and
//! `key.pem` under `contexts/tls/<sha256 of the name>/docker/`. `default` is the engine of
//! `DOCKER_HOST` or the default socket. Hand-written: no maintained crate reads this store, and it
//! is two small JSON files.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{Endpoint, Origin};

/// A Docker CLI context's name, as `docker context ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextName(String);

impl ContextName {
    pub fn new(name: impl Into<String>) -> ContextName {
        ContextName(name.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The directory name the CLI stores the context under: the SHA-256 of its name, in hex.
    fn digest(&self) -> String {
        Sha256::digest(self.0.as_bytes())
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

impl fmt::Display for ContextName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where the chosen context's name came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chosen {
    Environment,
    ConfigFile,
}

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("cannot read the Docker CLI configuration `{}`", file.display())]
    Config {
        file: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("Docker context `{name}` ({chosen}) does not exist: no `{}`", meta.display())]
    NotFound {
        name: ContextName,
        chosen: ChosenBy,
        meta: PathBuf,
    },
    #[error("cannot read Docker context `{name}` from `{}`", meta.display())]
    Meta {
        name: ContextName,
        meta: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("Docker context `{name}` has no Docker endpoint (`Endpoints.docker.Host` in `{}`)", meta.display())]
    NoEndpoint { name: ContextName, meta: PathBuf },
}

/// Who chose a context: said in the error, since that is what the user changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChosenBy(Chosen);

impl fmt::Display for ChosenBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            Chosen::Environment => "named by `DOCKER_CONTEXT`",
            Chosen::ConfigFile => "the current context of `docker context use`",
        })
    }
}

impl ContextError {
    /// What to do about it.
    pub fn fix(&self) -> String {
        match self {
            ContextError::Config { file, .. } => format!(
                "fix or remove `{}` (it must be JSON, as the `docker` CLI writes it)",
                file.display()
            ),
            ContextError::NotFound { chosen, .. } if chosen.0 == Chosen::Environment => {
                "`docker context ls` lists the contexts; set `DOCKER_CONTEXT` to one of them, or unset it".to_owned()
            }
            ContextError::NotFound { .. } => {
                "`docker context ls` lists the contexts; `docker context use default` goes back to the local engine".to_owned()
            }
            ContextError::Meta { name, .. } | ContextError::NoEndpoint { name, .. } => format!(
                "`docker context inspect {name}` shows it; recreate it with `docker context create`, or `docker context use default`"
            ),
        }
    }
}

/// The CLI's configuration file, as far as contexts go.
#[derive(Deserialize)]
struct ConfigFile {
    #[serde(rename = "currentContext", default)]
    current_context: Option<String>,
}

/// A context's `meta.json`.
#[derive(Deserialize)]
struct Meta {
    #[serde(rename = "Endpoints", default)]
    endpoints: MetaEndpoints,
}

#[derive(Deserialize, Default)]
struct MetaEndpoints {
    docker: Option<DockerEndpoint>,
}

#[derive(Deserialize)]
struct DockerEndpoint {
    #[serde(rename = "Host", default)]
    host: Option<String>,
    #[serde(rename = "SkipTLSVerify", default)]
    skip_tls_verify: bool,
}

/// The Docker CLI's configuration directory: `DOCKER_CONFIG`, else `~/.docker`; `None` without
/// either (nothing to read).
pub fn config_dir(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let set = |key: &str| env(key).filter(|value| !value.is_empty());
    set("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| set("HOME").map(|home| Path::new(&home).join(".docker")))
}

/// The endpoint of the context in use when `DOCKER_HOST` is not set; `None` for the `default`
/// context (the default socket).
pub fn resolve(env: &dyn Fn(&str) -> Option<String>) -> Result<Option<Endpoint>, ContextError> {
    let Some(dir) = config_dir(env) else {
        return Ok(None);
    };
    let chosen = match env("DOCKER_CONTEXT").filter(|name| !name.is_empty()) {
        Some(name) => Some((name, Chosen::Environment)),
        None => current_context(&dir.join("config.json"))?.map(|name| (name, Chosen::ConfigFile)),
    };
    match chosen {
        None => Ok(None),
        Some((name, _)) if name == "default" => Ok(None),
        Some((name, chosen)) => endpoint(&dir, ContextName::new(name), chosen).map(Some),
    }
}

fn current_context(file: &Path) -> Result<Option<String>, ContextError> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(ContextError::Config {
                file: file.to_path_buf(),
                source: Box::new(error),
            });
        }
    };
    let config: ConfigFile = serde_json::from_str(&text).map_err(|error| ContextError::Config {
        file: file.to_path_buf(),
        source: Box::new(error),
    })?;
    Ok(config.current_context.filter(|name| !name.is_empty()))
}

fn endpoint(dir: &Path, name: ContextName, chosen: Chosen) -> Result<Endpoint, ContextError> {
    let digest = name.digest();
    let meta = dir.join("contexts/meta").join(&digest).join("meta.json");
    let text = match std::fs::read_to_string(&meta) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(ContextError::NotFound {
                name,
                chosen: ChosenBy(chosen),
                meta,
            });
        }
        Err(error) => {
            return Err(ContextError::Meta {
                name,
                meta,
                source: Box::new(error),
            });
        }
    };
    let parsed: Meta = match serde_json::from_str(&text) {
        Ok(parsed) => parsed,
        Err(error) => {
            return Err(ContextError::Meta {
                name,
                meta,
                source: Box::new(error),
            });
        }
    };
    let docker = parsed.endpoints.docker;
    let Some(host) = docker
        .as_ref()
        .and_then(|docker| docker.host.clone())
        .filter(|host| !host.is_empty())
    else {
        return Err(ContextError::NoEndpoint { name, meta });
    };
    let tls_dir = dir.join("contexts/tls").join(&digest).join("docker");
    // The CLI uses TLS when the context stores any TLS material; `SkipTLSVerify` alone (no CA)
    // still means TLS, which needs the material here.
    let has_tls = ["ca.pem", "cert.pem", "key.pem"]
        .iter()
        .any(|file| tls_dir.join(file).is_file());
    let skip = docker.is_some_and(|docker| docker.skip_tls_verify);
    Ok(Endpoint {
        host,
        tls: (has_tls || skip).then_some(tls_dir),
        origin: Origin::Context(name),
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::env;
    use super::*;

    fn write_context(dir: &Path, name: &str, host: &str) -> PathBuf {
        let digest = ContextName::new(name).digest();
        let meta = dir.join("contexts/meta").join(&digest);
        std::fs::create_dir_all(&meta).unwrap();
        std::fs::write(
            meta.join("meta.json"),
            format!(
                r#"{{"Name":"{name}","Metadata":{{}},"Endpoints":{{"docker":{{"Host":"{host}","SkipTLSVerify":false}}}}}}"#
            ),
        )
        .unwrap();
        dir.join("contexts/tls").join(digest).join("docker")
    }

    #[test]
    fn the_directory_is_the_sha256_of_the_name() {
        // `docker context create colima` stores it here (checked against the CLI).
        assert_eq!(
            ContextName::new("default").digest(),
            "37a8eec1ce19687d132fe29051dca629d164e2c4958ba141d5f4133a33f0688f"
        );
    }

    #[test]
    fn docker_context_then_current_context_then_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().to_str().unwrap();
        write_context(dir.path(), "colima", "unix:///home/u/.colima/docker.sock");
        write_context(
            dir.path(),
            "orbstack",
            "unix:///home/u/.orbstack/run/docker.sock",
        );
        assert_eq!(resolve(&env(&[("DOCKER_CONFIG", config)])).unwrap(), None);
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{},"currentContext":"colima"}"#,
        )
        .unwrap();
        let current = resolve(&env(&[("DOCKER_CONFIG", config)]))
            .unwrap()
            .unwrap();
        assert_eq!(current.host, "unix:///home/u/.colima/docker.sock");
        assert_eq!(current.origin, Origin::Context(ContextName::new("colima")));
        assert_eq!(current.tls, None);
        let named = resolve(&env(&[
            ("DOCKER_CONFIG", config),
            ("DOCKER_CONTEXT", "orbstack"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(named.host, "unix:///home/u/.orbstack/run/docker.sock");
        let default = resolve(&env(&[
            ("DOCKER_CONFIG", config),
            ("DOCKER_CONTEXT", "default"),
        ]));
        assert_eq!(default.unwrap(), None, "`default` is the default socket");
    }

    #[test]
    fn home_docker_is_the_default_directory_and_tls_material_is_used() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join(".docker");
        let tls = write_context(&dir, "remote", "tcp://10.0.0.9:2376");
        std::fs::create_dir_all(&tls).unwrap();
        std::fs::write(tls.join("ca.pem"), "x").unwrap();
        let home_str = home.path().to_str().unwrap();
        let remote = resolve(&env(&[("HOME", home_str), ("DOCKER_CONTEXT", "remote")]))
            .unwrap()
            .unwrap();
        assert_eq!(remote.tls, Some(tls));
        assert_eq!(resolve(&env(&[])).unwrap(), None, "no home, no config");
    }

    #[test]
    fn a_missing_or_broken_context_is_named_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().to_str().unwrap();
        let error = resolve(&env(&[
            ("DOCKER_CONFIG", config),
            ("DOCKER_CONTEXT", "gone"),
        ]))
        .unwrap_err();
        assert!(error.to_string().contains("`gone`"), "{error}");
        assert!(error.to_string().contains("DOCKER_CONTEXT"), "{error}");
        assert!(error.fix().contains("docker context ls"), "{}", error.fix());
        std::fs::write(dir.path().join("config.json"), "{not json").unwrap();
        let error = resolve(&env(&[("DOCKER_CONFIG", config)])).unwrap_err();
        assert!(error.to_string().contains("config.json"), "{error}");
        write_context(dir.path(), "empty", "");
        let error = resolve(&env(&[
            ("DOCKER_CONFIG", config),
            ("DOCKER_CONTEXT", "empty"),
        ]))
        .unwrap_err();
        assert!(matches!(error, ContextError::NoEndpoint { .. }), "{error}");
    }
}
