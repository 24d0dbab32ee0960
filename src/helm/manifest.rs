//! A Helm release's rendered manifest (multi-document YAML, as `helm get manifest` prints it):
//! its objects, what it ran (each workload's replicas and images, for the summary shown before a
//! takeover), and its objects as a record of ours keeps them, each Secret value replaced by its
//! SHA-256. Pure.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::{Chart, HelmError, HelmRecord};
use crate::build::context::hex;

/// A workload of the release and what it ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    pub kind: String,
    pub name: String,
    /// `spec.replicas`; `None` when the chart left it to the default (or to an autoscaler).
    pub replicas: Option<i64>,
    pub images: Vec<String>,
}

/// What a Helm revision had, for the user to see before it is taken over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub release: String,
    pub revision: u32,
    pub status: String,
    pub chart: Chart,
    pub workloads: Vec<Workload>,
    /// Every object of the manifest, as `Kind/name`.
    pub objects: Vec<String>,
}

const WORKLOADS: [&str; 3] = ["Deployment", "StatefulSet", "DaemonSet"];

impl HelmRecord {
    /// The manifest's objects: every document that is a mapping with a `kind` and a name.
    /// Empty documents (a template that rendered nothing) are skipped.
    pub fn objects(&self) -> Result<Vec<Value>, HelmError> {
        let documents: Vec<Value> =
            serde_saphyr::from_multiple(self.manifest_text()).map_err(|error| {
                // The message may quote the manifest, which holds Secrets: only the place.
                let place = error
                    .location()
                    .map(|l| format!(" (line {}, column {})", l.line(), l.column()))
                    .unwrap_or_default();
                HelmError::Corrupt {
                    secret: self.secret.clone(),
                    reason: format!("its manifest is not valid YAML{place}"),
                }
            })?;
        Ok(documents
            .into_iter()
            .filter(|d| d["kind"].is_string() && d["metadata"]["name"].is_string())
            .collect())
    }

    /// The revision's chart, status, workloads and objects.
    pub fn summary(&self) -> Result<Summary, HelmError> {
        let objects = self.objects()?;
        Ok(Summary {
            release: self.release.clone(),
            revision: self.version,
            status: self.status.clone(),
            chart: self.chart(),
            workloads: objects.iter().filter_map(workload).collect(),
            objects: objects.iter().map(object_name).collect(),
        })
    }
}

/// `Kind/name`.
pub fn object_name(object: &Value) -> String {
    format!(
        "{}/{}",
        object["kind"].as_str().unwrap_or_default(),
        object["metadata"]["name"].as_str().unwrap_or_default()
    )
}

fn workload(object: &Value) -> Option<Workload> {
    let kind = object["kind"].as_str()?;
    if !WORKLOADS.contains(&kind) {
        return None;
    }
    let images = object
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c["image"].as_str().map(str::to_owned))
        .collect();
    Some(Workload {
        kind: kind.to_owned(),
        name: object["metadata"]["name"].as_str()?.to_owned(),
        replicas: object.pointer("/spec/replicas").and_then(Value::as_i64),
        images,
    })
}

/// The objects as a record of ours keeps them: every value of a Secret's `data` and
/// `stringData` replaced by `sha256:<hex>` of the value itself.
pub fn redacted(objects: &[Value]) -> Vec<Value> {
    objects
        .iter()
        .map(|object| {
            let mut object = object.clone();
            if object["kind"] == "Secret" {
                for (field, encoded) in [("data", true), ("stringData", false)] {
                    if let Some(values) = object.get_mut(field).and_then(Value::as_object_mut) {
                        *values = digests(values, encoded);
                    }
                }
            }
            object
        })
        .collect()
}

/// Each value's digest: of its bytes after base64 (`data`), or of its text (`stringData`).
fn digests(values: &Map<String, Value>, base64_encoded: bool) -> Map<String, Value> {
    use base64::Engine;
    values
        .iter()
        .map(|(key, value)| {
            let text = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            let bytes = match base64_encoded {
                true => base64::engine::general_purpose::STANDARD
                    .decode(&text)
                    .unwrap_or_else(|_| text.clone().into_bytes()),
                false => text.into_bytes(),
            };
            let digest = format!("sha256:{}", hex(&Sha256::digest(&bytes)));
            (key.clone(), Value::from(digest))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helm::tests::release_json;

    pub const MANIFEST: &str = "---
# Source: todo-app/templates/secret.yaml
apiVersion: v1
kind: Secret
metadata:
  name: todo-secrets
type: Opaque
data:
  DATABASE_URL: aGVsbS1wbGFudGVkLWRi
stringData:
  COHERE_API_KEY: helm-planted-cohere
---
# Source: todo-app/templates/empty.yaml
---
# Source: todo-app/templates/backend.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: todo-app-backend
spec:
  replicas: 3
  template:
    spec:
      containers:
        - name: backend
          image: registry.local/todo-backend:1.0.0
        - name: sidecar
          image: busybox:1.36
";

    fn record(manifest: &str) -> HelmRecord {
        HelmRecord::from_json("s".into(), release_json(2, "deployed", manifest)).expect("a record")
    }

    #[test]
    fn the_summary_names_the_chart_its_workloads_and_objects() {
        let summary = record(MANIFEST).summary().expect("a summary");
        assert_eq!(summary.chart.version, "1.4.0");
        assert_eq!(summary.revision, 2);
        assert_eq!(
            summary.workloads,
            [Workload {
                kind: "Deployment".into(),
                name: "todo-app-backend".into(),
                replicas: Some(3),
                images: vec![
                    "registry.local/todo-backend:1.0.0".into(),
                    "busybox:1.36".into()
                ],
            }]
        );
        assert_eq!(
            summary.objects,
            ["Secret/todo-secrets", "Deployment/todo-app-backend"],
            "the empty document is skipped"
        );
    }

    #[test]
    fn secret_values_become_digests_of_the_values_themselves() {
        let objects = record(MANIFEST).objects().expect("objects");
        let kept = redacted(&objects);
        let text = serde_json::to_string(&kept).expect("json");
        for planted in [
            "aGVsbS1wbGFudGVkLWRi",
            "helm-planted-db",
            "helm-planted-cohere",
        ] {
            assert!(!text.contains(planted), "{planted} in {text}");
        }
        let digest = |value: &str| format!("sha256:{}", hex(&Sha256::digest(value.as_bytes())));
        assert_eq!(kept[0]["data"]["DATABASE_URL"], digest("helm-planted-db"));
        assert_eq!(
            kept[0]["stringData"]["COHERE_API_KEY"],
            digest("helm-planted-cohere")
        );
        assert_eq!(kept[1], objects[1], "other objects stay as they are");
    }

    #[test]
    fn a_manifest_that_is_not_yaml_names_the_place_but_not_the_text() {
        let error = record("a: [unclosed SECRETVALUE\n")
            .objects()
            .expect_err("not YAML");
        let text = error.to_string();
        assert!(text.contains("not valid YAML"), "{text}");
        assert!(!text.contains("SECRETVALUE"), "{text}");
    }
}
