//! One revision: what was deployed, when, by which version of the tool, and how it ended.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::build::context::hex;
use crate::render::Manifest;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub release: String,
    pub revision: u32,
    pub status: RevisionStatus,
    /// RFC 3339, UTC.
    pub time: String,
    pub tool_version: String,
    /// What happened: `Install complete`, `Upgrade failed: …`, `Rollback to 2`.
    pub description: String,
    pub images: Vec<ImageRecord>,
    /// SHA-256 of the merged configuration (no secret values in it).
    pub config_digest: String,
    /// The applied manifests; the Secret's values replaced by `sha256:` digests.
    pub manifests: Vec<Value>,
}

impl Record {
    /// This record as the next revision after `history`: numbered past the newest, pending,
    /// stamped now by this version of the tool.
    pub fn next_after(self, history: &[Record]) -> Record {
        let now = jiff::Timestamp::now();
        Record {
            revision: history.iter().map(|r| r.revision).max().unwrap_or(0) + 1,
            status: RevisionStatus::Pending,
            time: now.round(jiff::Unit::Second).unwrap_or(now).to_string(),
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
            ..self
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RevisionStatus {
    /// Being deployed now by the run that holds the release lock.
    Pending,
    Deployed,
    /// Its apply or rollout failed, or the run deploying it stopped (`abandoned`).
    Failed,
    /// A later revision replaced it.
    Superseded,
    /// A failed revision that an automatic rollback replaced.
    RolledBack,
    /// Ctrl-C stopped the wait for its rollout; the cluster was left as applied.
    Interrupted,
    /// `down` removed it; the history was kept.
    Uninstalled,
}

impl RevisionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RevisionStatus::Pending => "pending",
            RevisionStatus::Deployed => "deployed",
            RevisionStatus::Failed => "failed",
            RevisionStatus::Superseded => "superseded",
            RevisionStatus::RolledBack => "rolled-back",
            RevisionStatus::Interrupted => "interrupted",
            RevisionStatus::Uninstalled => "uninstalled",
        }
    }
}

impl std::fmt::Display for RevisionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a pending revision is called once nobody deploys it any more.
pub const ABANDONED: &str = "abandoned: the run holding the lock stopped";

impl Record {
    /// A pending revision whose run is gone is a failed one: `history` and `status` must never
    /// show a pending revision that no live run owns.
    pub fn abandoned(mut self) -> Record {
        if self.status == RevisionStatus::Pending {
            self.status = RevisionStatus::Failed;
            self.description = format!("{} ({ABANDONED})", self.description);
        }
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageRecord {
    pub service: String,
    pub reference: String,
    /// The image ID when the build stage knew it.
    pub id: Option<String>,
}

/// The manifests as JSON for the record, each Secret value replaced by `sha256:<hex>` of it.
pub fn redact_manifests(manifests: &[Manifest]) -> Vec<Value> {
    manifests
        .iter()
        .map(|manifest| {
            let mut value = manifest.to_json();
            if let Manifest::Secret(secret) = manifest {
                value["data"] = digest_of(&secret.data.clone().unwrap_or_default());
            }
            value
        })
        .collect()
}

/// A Secret's values as `sha256:<hex>` digests, the form records hold them in.
pub fn digest_of(data: &std::collections::BTreeMap<String, k8s_openapi::ByteString>) -> Value {
    Value::Object(
        data.iter()
            .map(|(key, bytes)| {
                let digest = format!("sha256:{}", hex(&Sha256::digest(&bytes.0)));
                (key.clone(), Value::from(digest))
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::Secret;
    use std::collections::BTreeMap;

    #[test]
    fn secret_values_become_digests() {
        let secret = Secret {
            data: Some(BTreeMap::from([(
                "K".to_owned(),
                ByteString(b"hunter2".to_vec()),
            )])),
            ..Default::default()
        };
        let redacted = redact_manifests(&[Manifest::Secret(secret.clone())]);
        let text = redacted[0].to_string();
        assert!(
            !text.contains("hunter2") && !text.contains("aHVudGVyMg"),
            "{text}"
        );
        assert_eq!(
            redacted[0]["data"]["K"],
            "sha256:f52fbd32b2b3b86ff88ef6c490628285f482af15ddcb29541f94bcf526a3f6c7"
        );
        assert_eq!(
            digest_of(secret.data.as_ref().unwrap()),
            redacted[0]["data"]
        );
    }
}
