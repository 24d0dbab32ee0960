//! Helm 3's release records, read and written as Helm's `secrets` storage driver does: one
//! Secret per revision, `sh.helm.release.v1.<release>.v<N>`, of type `helm.sh/release.v1`,
//! labelled `name`, `owner=helm`, `status`, `version` (and `createdAt` or `modifiedAt`), whose
//! `data.release` is the release as JSON, gzip-compressed and base64-encoded (StdEncoding) on top
//! of the Secret's own encoding. A record is decoded into a [`HelmRecord`]: its revision, status,
//! chart and manifest; the whole JSON is kept so that a record can be written back with only its
//! status changed.
//!
//! A Helm release holds secret values (its values, its rendered Secrets): nothing here ever puts
//! one in an error or an event, and [`manifest`] turns Secrets into digests before a record of
//! ours keeps them. A record that cannot be decoded is an error that says which and why, never a
//! panic.

pub mod manifest;
pub mod store;
pub mod values;

use std::collections::BTreeMap;
use std::io::{Read, Write};

use base64::Engine;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use serde_json::Value;

pub use manifest::{Summary, Workload};

/// The Secret type of Helm 3's release records.
pub const RECORD_TYPE: &str = "helm.sh/release.v1";
/// The label every Helm record carries (`owner=helm`).
pub const OWNER: (&str, &str) = ("owner", "helm");
/// What a decompressed release may weigh at most: a record is at most a Secret (1 MiB), and
/// a larger result is a compression bomb, not a release.
const MAX_RELEASE_BYTES: u64 = 64 << 20;
/// The first bytes of gzip data; Helm stored early releases uncompressed.
const GZIP_MAGIC: [u8; 3] = [0x1f, 0x8b, 0x08];

#[derive(Debug, thiserror::Error)]
pub enum HelmError {
    #[error("the Helm record `{secret}` is unreadable: {reason}")]
    Corrupt { secret: String, reason: String },
    #[error("there is no Helm release `{release}` in namespace `{namespace}`")]
    NotFound {
        release: String,
        namespace: String,
        /// The Helm releases that are there.
        others: Vec<String>,
    },
    #[error(
        "Helm release `{release}` has no deployed revision (its latest, revision {latest}, is {status})"
    )]
    NotDeployed {
        release: String,
        latest: u32,
        status: String,
    },
    #[error("cannot {action} the Helm records in namespace `{namespace}`")]
    Api {
        action: &'static str,
        namespace: String,
        #[source]
        source: kube::Error,
    },
}

impl crate::outcome::Diagnose for HelmError {
    fn exit(&self) -> crate::outcome::Exit {
        match self {
            HelmError::NotFound { .. } => crate::outcome::Exit::Usage,
            _ => crate::outcome::Exit::Failed,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            HelmError::Corrupt { secret, .. } => Some(format!(
                "`helm history` shows the release's revisions; a record Helm cannot read either can be removed with `kubectl delete secret {secret}`"
            )),
            HelmError::NotFound {
                others, namespace, ..
            } if others.is_empty() => Some(format!(
                "no Helm release is recorded in `{namespace}`: check `--namespace` (`helm list -A` lists them all)"
            )),
            HelmError::NotFound { others, .. } => Some(format!(
                "the Helm releases there: {}; name one with `--from-helm`",
                others
                    .iter()
                    .map(|o| format!("`{o}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            HelmError::NotDeployed { release, .. } => Some(format!(
                "`helm history {release}` shows its revisions: only a deployed release is taken over; `helm rollback {release}` first, or `helm uninstall {release}` and `todo-deploy up`"
            )),
            HelmError::Api { .. } => None,
        }
    }
}

/// The name of a revision's record.
pub fn record_name(release: &str, version: u32) -> String {
    format!("sh.helm.release.v1.{release}.v{version}")
}

/// One revision of a Helm release, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct HelmRecord {
    /// The Secret that holds it.
    pub secret: String,
    pub release: String,
    pub version: u32,
    /// `deployed`, `superseded`, `failed`, `uninstalled`, `pending-install`…
    pub status: String,
    /// The release as Helm stored it.
    json: Value,
}

/// A chart's name and versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chart {
    pub name: String,
    pub version: String,
    pub app_version: Option<String>,
}

impl HelmRecord {
    /// Decodes a record Secret: base64 of (usually gzip-compressed) JSON inside `data.release`.
    pub fn decode(secret: &Secret) -> Result<HelmRecord, HelmError> {
        let name = secret.metadata.name.clone().unwrap_or_default();
        let corrupt = |reason: &str| HelmError::Corrupt {
            secret: name.clone(),
            reason: reason.to_owned(),
        };
        let data = secret
            .data
            .as_ref()
            .and_then(|d| d.get("release"))
            .ok_or_else(|| corrupt("it has no `release` key"))?;
        let json = unpack(&data.0).map_err(corrupt)?;
        HelmRecord::from_json(name, json)
    }

    /// A record from the release's JSON, checked for what this tool reads.
    pub fn from_json(secret: String, json: Value) -> Result<HelmRecord, HelmError> {
        let corrupt = |reason: String| HelmError::Corrupt {
            secret: secret.clone(),
            reason,
        };
        let text = |pointer: &str| -> Result<String, HelmError> {
            json.pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| corrupt(format!("its release has no `{}`", dotted(pointer))))
        };
        let release = text("/name")?;
        let status = text("/info/status")?;
        text("/manifest")?;
        let version = json
            .get("version")
            .and_then(Value::as_u64)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| corrupt("its release has no `version` number".to_owned()))?;
        Ok(HelmRecord {
            secret,
            release,
            version,
            status,
            json,
        })
    }

    pub fn chart(&self) -> Chart {
        let field = |name: &str| {
            self.json
                .pointer(&format!("/chart/metadata/{name}"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        Chart {
            name: field("name").unwrap_or_else(|| "unknown".to_owned()),
            version: field("version").unwrap_or_else(|| "unknown".to_owned()),
            app_version: field("appVersion"),
        }
    }

    /// The rendered manifest (multi-document YAML). It holds the chart's Secrets as they are.
    pub fn manifest_text(&self) -> &str {
        self.json["manifest"].as_str().unwrap_or_default()
    }

    /// The SHA-256 of the release's values (they may hold secrets: only the digest leaves).
    pub fn values_digest(&self) -> String {
        use sha2::Digest;
        let values = self.json.get("config").cloned().unwrap_or(Value::Null);
        let digest = sha2::Sha256::digest(values.to_string().as_bytes());
        format!("sha256:{}", crate::build::context::hex(&digest))
    }

    /// This record marked `uninstalled`, as `helm uninstall --keep-history` leaves a release:
    /// `helm list` no longer shows it, and `helm uninstall` then only removes the records.
    pub fn uninstalled(&self, description: &str, now: &str) -> HelmRecord {
        let mut json = self.json.clone();
        json["info"]["status"] = Value::from("uninstalled");
        json["info"]["description"] = Value::from(description);
        json["info"]["deleted"] = Value::from(now);
        HelmRecord {
            status: "uninstalled".to_owned(),
            json,
            ..self.clone()
        }
    }

    /// The Secret Helm's `Update` would write for this record: the labels it sets (`modifiedAt`
    /// instead of `createdAt`) and the release, compressed and encoded as Helm does.
    pub fn encode(&self, modified_at: i64) -> Result<Secret, HelmError> {
        let packed = pack(&self.json).map_err(|reason| HelmError::Corrupt {
            secret: self.secret.clone(),
            reason,
        })?;
        let labels = BTreeMap::from([
            ("name".to_owned(), self.release.clone()),
            (OWNER.0.to_owned(), OWNER.1.to_owned()),
            ("status".to_owned(), self.status.clone()),
            ("version".to_owned(), self.version.to_string()),
            ("modifiedAt".to_owned(), modified_at.to_string()),
        ]);
        Ok(Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(self.secret.clone()),
                labels: Some(labels),
                ..Default::default()
            },
            type_: Some(RECORD_TYPE.to_owned()),
            data: Some(BTreeMap::from([("release".to_owned(), ByteString(packed))])),
            ..Default::default()
        })
    }
}

/// `/info/status` as `info.status`.
fn dotted(pointer: &str) -> String {
    pointer.trim_start_matches('/').replace('/', ".")
}

/// The release JSON from a record's bytes: base64, then gzip when it starts like gzip.
fn unpack(encoded: &[u8]) -> Result<Value, &'static str> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| "its `release` is not base64")?;
    let mut json = Vec::new();
    if bytes.starts_with(&GZIP_MAGIC) {
        flate2::read::GzDecoder::new(bytes.as_slice())
            .take(MAX_RELEASE_BYTES + 1)
            .read_to_end(&mut json)
            .map_err(|_| "its `release` is not valid gzip data")?;
        if json.len() as u64 > MAX_RELEASE_BYTES {
            return Err("its `release` decompresses to more than 64 MiB");
        }
    } else {
        json = bytes;
    }
    let value: Value = serde_json::from_slice(&json).map_err(|_| "its `release` is not JSON")?;
    match value.is_object() {
        true => Ok(value),
        false => Err("its `release` is not a JSON object"),
    }
}

/// The bytes of a record's `release`: JSON, gzip (best compression, as Helm), base64.
fn pack(json: &Value) -> Result<Vec<u8>, String> {
    let text = serde_json::to_vec(json).map_err(|e| e.to_string())?;
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gzip.write_all(&text).map_err(|e| e.to_string())?;
    let compressed = gzip.finish().map_err(|e| e.to_string())?;
    Ok(base64::engine::general_purpose::STANDARD
        .encode(compressed)
        .into_bytes())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A release as Helm 3 stores it.
    pub fn release_json(version: u32, status: &str, manifest: &str) -> Value {
        serde_json::json!({
            "name": "todo-app", "namespace": "todo", "version": version,
            "info": {"first_deployed": "2026-01-01T00:00:00Z", "last_deployed": "2026-01-02T00:00:00Z",
                     "deleted": "", "description": "Upgrade complete", "status": status},
            "chart": {"metadata": {"name": "todo-app", "version": "1.4.0", "appVersion": "1.0.0", "apiVersion": "v2"},
                      "templates": [], "values": {"backend": {"replicaCount": 1}}},
            "config": {"secrets": {"DATABASE_URL": "postgres://helm-value-in-config"}},
            "manifest": manifest,
        })
    }

    /// A record Secret made the way Helm makes it.
    pub fn record_secret(json: &Value) -> Secret {
        let version = json["version"].as_u64().unwrap_or_default() as u32;
        HelmRecord::from_json(record_name("todo-app", version), json.clone())
            .expect("a release")
            .encode(0)
            .expect("encoded")
    }

    #[test]
    fn a_record_round_trips_as_helm_encodes_it() {
        let json = release_json(3, "deployed", "---\n# Source: x\n");
        let secret = record_secret(&json);
        let raw = &secret.data.as_ref().expect("data")["release"].0;
        let gzip = base64::engine::general_purpose::STANDARD
            .decode(raw)
            .expect("StdEncoding base64");
        assert_eq!(&gzip[..3], &GZIP_MAGIC, "gzip inside the base64");
        let labels = secret.metadata.labels.as_ref().expect("labels");
        assert_eq!(labels["owner"], "helm");
        assert_eq!(labels["status"], "deployed");
        assert_eq!(labels["version"], "3");
        assert_eq!(secret.type_.as_deref(), Some(RECORD_TYPE));
        let decoded = HelmRecord::decode(&secret).expect("decodes");
        assert_eq!(decoded.version, 3);
        assert_eq!(decoded.release, "todo-app");
        assert_eq!(decoded.chart().version, "1.4.0");
        assert_eq!(decoded.json, json, "nothing lost");
    }

    #[test]
    fn uncompressed_records_of_early_helm_3_are_read_too() {
        let json = release_json(1, "deployed", "");
        let plain = base64::engine::general_purpose::STANDARD.encode(json.to_string());
        let secret = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some("r".into()),
                ..Default::default()
            },
            data: Some(BTreeMap::from([(
                "release".to_owned(),
                ByteString(plain.into_bytes()),
            )])),
            ..Default::default()
        };
        assert_eq!(HelmRecord::decode(&secret).expect("decodes").version, 1);
    }

    #[test]
    fn marking_uninstalled_changes_the_status_and_keeps_the_rest() {
        let record =
            HelmRecord::from_json("s".into(), release_json(2, "deployed", "m")).expect("a record");
        let marked = record.uninstalled("Taken over by todo-deploy", "2026-02-01T00:00:00Z");
        assert_eq!(marked.status, "uninstalled");
        assert_eq!(marked.json["info"]["status"], "uninstalled");
        assert_eq!(marked.json["manifest"], "m");
        assert_eq!(marked.json["config"], record.json["config"]);
        let secret = marked.encode(1_700_000_000).expect("encoded");
        let labels = secret.metadata.labels.expect("labels");
        assert_eq!(labels["status"], "uninstalled");
        assert_eq!(labels["modifiedAt"], "1700000000");
    }

    /// Every way a record can be broken is an error naming the record and what is wrong, never
    /// a panic, and never a byte of what it holds.
    #[test]
    fn corrupt_records_say_why_without_their_content() {
        let secret_with = |bytes: Vec<u8>| Secret {
            metadata: kube::api::ObjectMeta {
                name: Some("sh.helm.release.v1.todo-app.v2".into()),
                ..Default::default()
            },
            data: Some(BTreeMap::from([("release".to_owned(), ByteString(bytes))])),
            ..Default::default()
        };
        let b64 = |bytes: &[u8]| {
            base64::engine::general_purpose::STANDARD
                .encode(bytes)
                .into_bytes()
        };
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"not base64 SECRETVALUE!".to_vec(), "not base64"),
            (b64(&[0x1f, 0x8b, 0x08, 0, 1, 2, 3, 4]), "not valid gzip"),
            (b64(b"{\"name\": \"SECRETVALUE\""), "not JSON"),
            (b64(b"[\"SECRETVALUE\"]"), "not a JSON object"),
            (b64(b"{\"name\": \"SECRETVALUE\"}"), "no `info.status`"),
            (
                b64(b"{\"name\": \"x\", \"info\": {\"status\": \"deployed\"}, \"manifest\": \"\", \"version\": -1}"),
                "no `version` number",
            ),
        ];
        for (bytes, reason) in cases {
            let error = HelmRecord::decode(&secret_with(bytes)).expect_err("corrupt");
            let text = error.to_string();
            assert!(text.contains("sh.helm.release.v1.todo-app.v2"), "{text}");
            assert!(text.contains(reason), "{text} should say {reason}");
            assert!(!text.contains("SECRETVALUE"), "{text}");
        }
        let empty = Secret::default();
        assert!(HelmRecord::decode(&empty).is_err());
    }

    #[test]
    fn a_compression_bomb_is_refused() {
        let zeros = vec![0u8; (MAX_RELEASE_BYTES + 1024) as usize];
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gzip.write_all(&zeros).expect("compress");
        let packed = base64::engine::general_purpose::STANDARD.encode(gzip.finish().expect("gz"));
        assert_eq!(
            unpack(packed.as_bytes()).expect_err("refused"),
            "its `release` decompresses to more than 64 MiB"
        );
    }
}
