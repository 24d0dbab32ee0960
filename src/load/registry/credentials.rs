//! The login for a registry, found where the Docker CLI finds it: `$DOCKER_CONFIG/config.json`
//! (else `~/.docker/config.json`): the registry's credential helper (`credHelpers`), else the
//! default store (`credsStore`), else the `auths` entry (`auth` = base64 `user:password`, or
//! `username`/`password`, or an `identitytoken`).
//!
//! A helper is run as the Docker CLI runs it: `docker-credential-<name> get`, the server on
//! stdin, `{"ServerURL","Username","Secret"}` on stdout (`Username` `<token>` means `Secret` is
//! an identity token). Hand-written: the protocol is these three fields, and the maintained
//! crates for it (`docker_credential`) read the same file but not `username`/`password` entries.

use std::path::PathBuf;
use std::process::Stdio;

use base64::Engine;
use bollard::auth::DockerCredentials;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::super::error::LoadError;

/// A login for one registry, and where it was found (for `-v`; never its values).
#[derive(Clone)]
pub struct Login {
    pub credentials: DockerCredentials,
    /// `config.json` `auths`, or the helper's name.
    pub source: String,
}

impl std::fmt::Debug for Login {
    /// The source only: the values stay out of debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Login {
    /// `user:password` for a `kubernetes.io/dockerconfigjson` Secret's `auth`; `None` for an
    /// identity token, which a kubelet cannot use.
    pub fn basic(&self) -> Option<(String, String)> {
        let user = self.credentials.username.clone()?;
        let password = self.credentials.password.clone()?;
        Some((user, password))
    }
}

#[derive(Deserialize, Default)]
struct ConfigFile {
    #[serde(default)]
    auths: serde_json::Map<String, serde_json::Value>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: std::collections::BTreeMap<String, String>,
}

/// Where `config.json` (its `text`) keeps the login for `registry`: the credential helper to
/// ask first (`credHelpers`, else `credsStore`), and the `auths` entry. Pure: nothing is run.
pub struct Stored {
    pub helper: Option<String>,
    pub auths: Option<DockerCredentials>,
}

/// Reads `config.json`'s `text` for `registry` (`host[:port][/path]`); an error says why the
/// text is not a Docker configuration.
pub fn stored(text: &str, registry: &str) -> Result<Stored, String> {
    let config: ConfigFile = serde_json::from_str(text).map_err(|error| error.to_string())?;
    let host = host_of(registry);
    let helper = config
        .cred_helpers
        .get(host)
        .or(config.creds_store.as_ref())
        .filter(|name| !name.is_empty())
        .cloned();
    Ok(Stored {
        helper,
        auths: from_auths(&config, host),
    })
}

/// The login `docker login` stored for `registry` (`host[:port][/path]`), if any: the helper's
/// (when it has one for the registry), else the `auths` entry's. A helper that fails (not
/// installed, or an error other than "not found") is an error naming it.
pub async fn find(
    registry: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Login>, LoadError> {
    let Some(path) = config_path(env) else {
        return Ok(None);
    };
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let stored = stored(&text, registry).map_err(|message| LoadError::DockerConfig {
        path: path.clone(),
        message,
    })?;
    if let Some(helper) = stored.helper {
        let program = format!("docker-credential-{helper}");
        if let Some(credentials) = run_helper(&program, host_of(registry)).await? {
            let source = format!("credential helper `{program}`");
            return Ok(Some(Login {
                credentials,
                source,
            }));
        }
    }
    Ok(stored.auths.map(|credentials| Login {
        credentials,
        source: format!("`auths` of `{}`", path.display()),
    }))
}

fn config_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let dir = match env("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env("HOME")?).join(".docker"),
    };
    Some(dir.join("config.json"))
}

/// `host[:port]` of `registry[/path]`.
pub fn host_of(registry: &str) -> &str {
    registry.split('/').next().unwrap_or(registry)
}

fn from_auths(config: &ConfigFile, host: &str) -> Option<DockerCredentials> {
    let entry = config.auths.iter().find_map(|(key, entry)| {
        let key = key
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        (host_of(key) == host).then_some(entry)
    })?;
    let mut credentials = DockerCredentials {
        serveraddress: Some(host.to_owned()),
        ..Default::default()
    };
    if let Some(token) = entry["identitytoken"].as_str().filter(|t| !t.is_empty()) {
        credentials.identitytoken = Some(token.to_owned());
        return Some(credentials);
    }
    let (user, password) = match entry["auth"].as_str().filter(|a| !a.is_empty()) {
        Some(auth) => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .ok()?;
            let decoded = String::from_utf8(decoded).ok()?;
            let (user, password) = decoded.split_once(':')?;
            (user.to_owned(), password.to_owned())
        }
        None => (
            entry["username"].as_str()?.to_owned(),
            entry["password"].as_str()?.to_owned(),
        ),
    };
    credentials.username = Some(user);
    credentials.password = Some(password);
    Some(credentials)
}

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Runs `program get` with `host` on stdin, without holding a worker thread while it works (a
/// helper may take a while: a keychain, `pass` asking gpg). `None` when it has no login for
/// `host` (it says "credentials not found", as every helper of docker-credential-helpers does).
async fn run_helper(program: &str, host: &str) -> Result<Option<DockerCredentials>, LoadError> {
    let failed = |message: String| LoadError::CredentialHelper {
        program: program.to_owned(),
        registry: host.to_owned(),
        message,
    };
    let mut child = Command::new(program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| match error.kind() {
            std::io::ErrorKind::NotFound => failed("it is not installed or not on `PATH`".into()),
            _ => failed(error.to_string()),
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading gets a broken pipe here; its answer says why.
        let _ = stdin.write_all(host.as_bytes()).await;
    }
    let output = child
        .wait_with_output()
        .await
        .map_err(|error| failed(error.to_string()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let said = format!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
        if said.to_ascii_lowercase().contains("credentials not found") {
            return Ok(None);
        }
        return Err(failed(format!(
            "it exited with {}: {}",
            output.status,
            said.trim()
        )));
    }
    let answer: HelperAnswer = serde_json::from_str(stdout.trim()).map_err(|error| {
        failed(format!(
            "its answer is not the helper protocol's JSON: {error}"
        ))
    })?;
    let mut credentials = DockerCredentials {
        serveraddress: Some(host.to_owned()),
        ..Default::default()
    };
    if answer.username == "<token>" {
        credentials.identitytoken = Some(answer.secret);
    } else {
        credentials.username = Some(answer.username);
        credentials.password = Some(answer.secret);
    }
    Ok(Some(credentials))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> ConfigFile {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn stored_logins_are_found_by_host() {
        let auth = base64::engine::general_purpose::STANDARD.encode("me:s3cret");
        let file = config(&format!(
            r#"{{"auths":{{"https://registry.example.com:5000/v2/":{{"auth":"{auth}"}},"ghcr.io":{{"identitytoken":"tok"}},"plain:5000":{{"username":"u","password":"p"}}}}}}"#
        ));
        let found = from_auths(&file, host_of("registry.example.com:5000/team")).unwrap();
        assert_eq!(found.username.as_deref(), Some("me"));
        assert_eq!(found.password.as_deref(), Some("s3cret"));
        assert_eq!(
            found.serveraddress.as_deref(),
            Some("registry.example.com:5000")
        );
        let token = from_auths(&file, "ghcr.io").unwrap();
        assert_eq!(token.identitytoken.as_deref(), Some("tok"));
        let plain = from_auths(&file, "plain:5000").unwrap();
        assert_eq!(plain.username.as_deref(), Some("u"));
        assert_eq!(plain.password.as_deref(), Some("p"));
        assert!(from_auths(&file, "localhost:5000").is_none());
    }

    #[test]
    fn a_bad_auth_entry_is_no_login() {
        let file =
            config(r#"{"auths":{"r:1":{"auth":"not base64!"},"r:2":{"auth":"bm9jb2xvbg=="}}}"#);
        assert!(from_auths(&file, "r:1").is_none());
        assert!(from_auths(&file, "r:2").is_none(), "no `:` in `nocolon`");
    }

    #[tokio::test]
    async fn a_missing_helper_is_named() {
        let asked = run_helper("docker-credential-surely-not-installed-42", "r:5000").await;
        let error = asked.unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("docker-credential-surely-not-installed-42"),
            "{text}"
        );
        assert!(text.contains("r:5000"), "{text}");
    }

    #[tokio::test]
    async fn a_config_that_is_not_json_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), "{ not json").unwrap();
        let path = dir.path().display().to_string();
        let env = move |key: &str| (key == "DOCKER_CONFIG").then(|| path.clone());
        let error = find("r:5000", &env).await.unwrap_err();
        assert!(error.to_string().contains("config.json"), "{error}");
    }
}
