//! A Helm release as a todo-deploy values file (`adopt --from-helm R --values-only`): what the
//! release ran, read from its rendered manifest (the chart's values are only an input to it, in
//! the chart's own shape): per service its image repository, replicas, resources and Service
//! type and port; the ConfigMap's data (keys the configuration has and the release had not are
//! removed with `null`); the Secret's key names, never its values; the Ingress host and class.
//! Merged over the configuration with `-f`, it renders what the release ran. Pure.

use serde_json::{Map, Value, json};

use super::HelmRecord;
use super::manifest::object_name;

/// What the translation needs to know of the configuration it is merged over.
#[derive(Debug, Clone)]
pub struct Ours<'a> {
    /// The services, by name.
    pub services: Vec<&'a str>,
    pub config_map: &'a str,
    /// The ConfigMap keys the configuration sets.
    pub config_map_keys: Vec<&'a str>,
    pub secret: &'a str,
}

/// The values file: a comment saying where it comes from and what it leaves out, then YAML.
pub fn values_file(record: &HelmRecord, objects: &[Value], ours: &Ours<'_>) -> String {
    let mut root = Map::new();
    let mut used: Vec<String> = Vec::new();
    let mut services = Map::new();
    for name in &ours.services {
        if let Some((settings, deployment)) = service(objects, name) {
            used.push(deployment);
            services.insert((*name).to_owned(), settings);
        }
    }
    if !services.is_empty() {
        root.insert("services".into(), Value::Object(services));
    }
    if let Some(config_map) = config_map(objects, ours) {
        root.insert("configMap".into(), config_map);
    }
    let secret = secret(objects, ours.secret);
    let keys = secret
        .as_ref()
        .map(|(_, keys)| keys.clone())
        .unwrap_or_default();
    if let Some((section, _)) = secret {
        root.insert("secret".into(), section);
    }
    root.insert("ingress".into(), ingress(objects));
    let yaml = serde_saphyr::to_string(&Value::Object(root)).unwrap_or_default();
    let left_out: Vec<String> = objects
        .iter()
        .filter(|o| o["kind"] == "Deployment")
        .map(object_name)
        .filter(|n| !used.contains(n))
        .collect();
    format!("{}{yaml}", header(record, &keys, &left_out))
}

fn header(record: &HelmRecord, secret_keys: &[String], left_out: &[String]) -> String {
    let chart = record.chart();
    let app = chart
        .app_version
        .map(|v| format!(", app {v}"))
        .unwrap_or_default();
    let mut lines = vec![
        format!(
            "todo-deploy values from Helm release `{}` revision {} (chart {}-{}{app}),",
            record.release, record.version, chart.name, chart.version
        ),
        format!(
            "written by `todo-deploy adopt --from-helm {} --values-only`; use it with `-f`.",
            record.release
        ),
        "Image repositories are the chart's: todo-deploy builds and tags its own images.".into(),
    ];
    if !secret_keys.is_empty() {
        lines.push(format!(
            "Secret values are not copied: set {} in the environment or an env file (`--env-file`).",
            secret_keys.join(", ")
        ));
    }
    if !left_out.is_empty() {
        lines.push(format!(
            "Not translated (no service of that name in the configuration): {}.",
            left_out.join(", ")
        ));
    }
    lines.iter().map(|l| format!("# {l}\n")).collect()
}

fn of_kind<'a>(objects: &'a [Value], kind: &'static str) -> impl Iterator<Item = &'a Value> {
    objects.iter().filter(move |o| o["kind"] == kind)
}

fn named<'a>(objects: &'a [Value], kind: &'static str, name: &str) -> Option<&'a Value> {
    of_kind(objects, kind).find(|o| o["metadata"]["name"] == name)
}

/// Whether `labels` has every pair of `selector`.
fn selects(selector: &Value, labels: &Value) -> bool {
    selector
        .as_object()
        .is_some_and(|s| !s.is_empty() && s.iter().all(|(k, v)| &labels[k] == v))
}

/// The release's Deployment for service `name`: the one its Service (of that name) selects,
/// else the one of that name, else one labelled as that component or named `…-<name>`.
fn deployment_for<'a>(objects: &'a [Value], name: &str) -> Option<&'a Value> {
    let deployments = || of_kind(objects, "Deployment");
    let labels = |d: &'a Value| &d["spec"]["template"]["metadata"]["labels"];
    if let Some(service) = named(objects, "Service", name)
        && let Some(found) =
            deployments().find(|d| selects(&service["spec"]["selector"], labels(d)))
    {
        return Some(found);
    }
    named(objects, "Deployment", name).or_else(|| {
        deployments().find(|d| {
            let meta = &d["metadata"];
            meta["labels"]["component"] == name
                || meta["labels"]["app.kubernetes.io/component"] == name
                || meta["name"]
                    .as_str()
                    .is_some_and(|n| n.ends_with(&format!("-{name}")))
        })
    })
}

/// A service's settings, and the Deployment they come from (`Deployment/name`).
fn service(objects: &[Value], name: &str) -> Option<(Value, String)> {
    let deployment = deployment_for(objects, name)?;
    let containers = deployment["spec"]["template"]["spec"]["containers"].as_array()?;
    let container = containers
        .iter()
        .find(|c| c["name"] == name)
        .or_else(|| containers.first())?;
    let mut settings = Map::new();
    if let Some(image) = container["image"].as_str() {
        settings.insert("image".into(), Value::from(repository(image)));
    }
    if let Some(replicas) = deployment["spec"]["replicas"].as_u64() {
        settings.insert("replicas".into(), Value::from(replicas));
    }
    if let Some(resources) = resources(&container["resources"]) {
        settings.insert("resources".into(), resources);
    }
    let exposure = named(objects, "Service", name).or_else(|| {
        of_kind(objects, "Service").find(|s| {
            selects(
                &s["spec"]["selector"],
                &deployment["spec"]["template"]["metadata"]["labels"],
            )
        })
    });
    if let Some(exposure) = exposure {
        let mut section = Map::new();
        if let Some(kind) = exposure["spec"]["type"].as_str() {
            section.insert("type".into(), Value::from(kind));
        }
        if let Some(port) = exposure["spec"]["ports"][0]["port"].as_u64() {
            section.insert("port".into(), Value::from(port));
        }
        settings.insert("service".into(), Value::Object(section));
    }
    Some((Value::Object(settings), object_name(deployment)))
}

/// `registry:5000/team/app:1.2@sha256:…` → `registry:5000/team/app`.
pub fn repository(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last_slash = without_digest.rfind('/').map_or(0, |i| i + 1);
    match without_digest[last_slash..].rfind(':') {
        Some(colon) => &without_digest[..last_slash + colon],
        None => without_digest,
    }
}

/// `requests` and `limits` (cpu and memory only), as quantities written as text.
fn resources(resources: &Value) -> Option<Value> {
    let mut out = Map::new();
    for part in ["requests", "limits"] {
        let mut amounts = Map::new();
        for amount in ["cpu", "memory"] {
            match &resources[part][amount] {
                Value::String(text) => amounts.insert(amount.into(), Value::from(text.clone())),
                Value::Number(n) => amounts.insert(amount.into(), Value::from(n.to_string())),
                _ => None,
            };
        }
        if !amounts.is_empty() {
            out.insert(part.into(), Value::Object(amounts));
        }
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

/// The release's ConfigMap (of the configuration's name, else its only one): its name when it
/// differs, and its data, with the configuration's other keys removed.
fn config_map(objects: &[Value], ours: &Ours<'_>) -> Option<Value> {
    let found = named(objects, "ConfigMap", ours.config_map).or_else(|| {
        let mut all = of_kind(objects, "ConfigMap");
        all.next().filter(|_| all.next().is_none())
    })?;
    let mut data: Map<String, Value> = found["data"]
        .as_object()
        .map(|d| {
            d.iter()
                .map(|(k, v)| match v {
                    Value::String(_) => (k.clone(), v.clone()),
                    other => (k.clone(), Value::from(other.to_string())),
                })
                .collect()
        })
        .unwrap_or_default();
    for key in &ours.config_map_keys {
        data.entry((*key).to_owned()).or_insert(Value::Null);
    }
    let mut section = Map::new();
    if found["metadata"]["name"] != ours.config_map {
        section.insert("name".into(), found["metadata"]["name"].clone());
    }
    section.insert("data".into(), Value::Object(data));
    Some(Value::Object(section))
}

/// The release's Secret (of the configuration's name, else its only Opaque one): its name when
/// it differs and its key names. Values never leave it.
fn secret(objects: &[Value], ours: &str) -> Option<(Value, Vec<String>)> {
    let opaque =
        || of_kind(objects, "Secret").filter(|s| s["type"].as_str().is_none_or(|t| t == "Opaque"));
    let found = named(objects, "Secret", ours).or_else(|| {
        let mut all = opaque();
        all.next().filter(|_| all.next().is_none())
    })?;
    let mut keys: Vec<String> = ["data", "stringData"]
        .iter()
        .filter_map(|field| found[*field].as_object())
        .flat_map(|m| m.keys().cloned())
        .collect();
    keys.sort();
    keys.dedup();
    let mut section = Map::new();
    if found["metadata"]["name"] != ours {
        section.insert("name".into(), found["metadata"]["name"].clone());
    }
    section.insert("keys".into(), json!(keys));
    Some((Value::Object(section), keys))
}

/// The release's Ingress: its host and class; disabled when the release had none.
fn ingress(objects: &[Value]) -> Value {
    let Some(found) = of_kind(objects, "Ingress").next() else {
        return json!({"enabled": false});
    };
    let mut section = Map::new();
    section.insert("enabled".into(), Value::Bool(true));
    let class = found["spec"]["ingressClassName"]
        .as_str()
        .or_else(|| found["metadata"]["annotations"]["kubernetes.io/ingress.class"].as_str());
    if let Some(class) = class {
        section.insert("className".into(), Value::from(class));
    }
    if let Some(host) = found["spec"]["rules"][0]["host"].as_str() {
        section.insert("host".into(), Value::from(host));
    }
    Value::Object(section)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helm::tests::release_json;

    /// The design documents' chart: `app`/`component` selectors, ClusterIP Services, the
    /// `todo.local` Ingress, `todo-config`, `todo-secrets`.
    const CHART: &str = "---
apiVersion: v1
kind: ConfigMap
metadata: {name: todo-config}
data: {ENVIRONMENT: staging, FEATURE_CHAT: \"true\", RATIO: \"1.10\", WORKERS: 4}
---
apiVersion: v1
kind: Secret
metadata: {name: todo-secrets}
type: Opaque
data: {DATABASE_URL: aGVsbS1wbGFudGVk, BETTER_AUTH_SECRET: aGVsbS1hdXRo}
stringData: {COHERE_API_KEY: helm-planted-cohere}
---
apiVersion: v1
kind: Service
metadata: {name: backend}
spec: {type: NodePort, selector: {app: todo-app, component: backend}, ports: [{port: 8000, targetPort: 8000}]}
---
apiVersion: v1
kind: Service
metadata: {name: frontend}
spec: {type: ClusterIP, selector: {app: todo-app, component: frontend}, ports: [{port: 3000}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: todo-app-backend}
spec:
  replicas: 3
  selector: {matchLabels: {app: todo-app, component: backend}}
  template:
    metadata: {labels: {app: todo-app, component: backend}}
    spec:
      containers:
        - name: backend
          image: registry.local:5000/todo/backend:1.0.0
          resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {cpu: 1, memory: 256Mi}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: todo-app-frontend}
spec:
  replicas: 2
  selector: {matchLabels: {app: todo-app, component: frontend}}
  template:
    metadata: {labels: {app: todo-app, component: frontend}}
    spec: {containers: [{name: frontend, image: todo-frontend@sha256:abc}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: todo-app-worker}
spec:
  template:
    metadata: {labels: {app: todo-app, component: worker}}
    spec: {containers: [{name: worker, image: worker:1}]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: todo, annotations: {kubernetes.io/ingress.class: nginx}}
spec: {rules: [{host: todo.example.com}]}
";

    fn translate() -> String {
        let record = HelmRecord::from_json("s".into(), release_json(2, "deployed", CHART))
            .expect("a record");
        let objects = record.objects().expect("objects");
        let ours = Ours {
            services: vec!["backend", "frontend"],
            config_map: "todo-config",
            config_map_keys: vec!["ENVIRONMENT", "apiUrl"],
            secret: "todo-secrets",
        };
        values_file(&record, &objects, &ours)
    }

    #[test]
    fn the_values_say_what_the_release_ran() {
        let text = translate();
        let values: Value = serde_saphyr::from_str(&text).expect("YAML");
        let backend = &values["services"]["backend"];
        assert_eq!(backend["image"], "registry.local:5000/todo/backend");
        assert_eq!(backend["replicas"], 3);
        assert_eq!(
            backend["resources"]["limits"]["cpu"], "1",
            "a quantity as text"
        );
        assert_eq!(
            backend["service"],
            json!({"type": "NodePort", "port": 8000})
        );
        assert_eq!(values["services"]["frontend"]["image"], "todo-frontend");
        assert_eq!(values["services"]["frontend"]["replicas"], 2);
        assert_eq!(
            values["configMap"]["data"],
            json!({"ENVIRONMENT": "staging", "FEATURE_CHAT": "true", "RATIO": "1.10", "WORKERS": "4", "apiUrl": null}),
            "strings stay strings; a key the release did not have is removed"
        );
        assert_eq!(
            values["secret"]["keys"],
            json!(["BETTER_AUTH_SECRET", "COHERE_API_KEY", "DATABASE_URL"])
        );
        assert_eq!(
            values["ingress"],
            json!({"enabled": true, "className": "nginx", "host": "todo.example.com"})
        );
        assert!(text.contains("Not translated (no service of that name in the configuration): Deployment/todo-app-worker."), "{text}");
        assert!(text.contains("chart todo-app-1.4.0, app 1.0.0"), "{text}");
    }

    #[test]
    fn no_secret_value_is_written() {
        let text = translate();
        for planted in [
            "aGVsbS1wbGFudGVk",
            "helm-planted",
            "aGVsbS1hdXRo",
            "helm-value-in-config",
        ] {
            assert!(!text.contains(planted), "{planted} in\n{text}");
        }
    }

    /// Merged over the repository's configuration, the file is a valid configuration that
    /// renders what the release ran.
    #[test]
    fn the_values_load_over_the_default_configuration() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let values = dir.path().join("helm.yaml");
        std::fs::write(&values, translate()).expect("write");
        let config =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/todo-deploy.yaml");
        let loaded = crate::config::load(&config, &[values], &[]).expect("a valid configuration");
        let backend = &loaded.config.services["backend"];
        assert_eq!(backend.replicas, 3);
        assert_eq!(backend.resources.requests.memory.0, "128Mi");
        assert_eq!(backend.service.kind, crate::config::ServiceKind::NodePort);
        assert_eq!(
            loaded
                .config
                .config_map
                .data
                .get("FEATURE_CHAT")
                .map(String::as_str),
            Some("true")
        );
        assert!(!loaded.config.config_map.data.contains_key("apiUrl"));
        assert_eq!(
            loaded.config.ingress.host.as_deref(),
            Some("todo.example.com")
        );
    }

    #[test]
    fn repositories_lose_their_tag_and_digest_but_keep_a_registry_port() {
        assert_eq!(repository("todo-backend:1.0"), "todo-backend");
        assert_eq!(
            repository("registry:5000/team/app"),
            "registry:5000/team/app"
        );
        assert_eq!(
            repository("registry:5000/team/app:2@sha256:ff"),
            "registry:5000/team/app"
        );
        assert_eq!(repository("app@sha256:ff"), "app");
    }
}
