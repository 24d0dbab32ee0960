//! The old Helm chart of the design documents, left in a namespace as Helm 3 leaves it, on the
//! stand-in or a real cluster alike: every object created by `POST` as field manager `helm` (an
//! `Update`), upgrades sent as strategic merge patches by `helm`, Helm's labels
//! (`app.kubernetes.io/managed-by: Helm`, `helm.sh/chart`) and annotations
//! (`meta.helm.sh/release-name`, `meta.helm.sh/release-namespace`) on each, and one record per
//! revision as Helm's secrets driver writes it (`sh.helm.release.v1.<release>.v<N>`, type
//! `helm.sh/release.v1`, labels `name`, `owner`, `status`, `version`, `createdAt`/`modifiedAt`,
//! `data.release` = base64 of gzip'd release JSON), marked `superseded` when the next one is
//! `deployed`. No `last-applied-configuration` annotation: that is `kubectl apply`'s, not Helm's.
//!
//! The chart: ClusterIP Services `backend` and `frontend` selecting `app: todo-app` /
//! `component: …`, the `todo.local` Ingress `todo`, `todo-config`, `todo-secrets`, and two
//! Deployments: `todo-app-backend` (a name of its own) and `frontend` (our name, with the
//! chart's selector, which cannot change). Its pods run the fixture images.

use std::io::{Read, Write};

use base64::Engine;
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::cluster::Env;

pub const RELEASE: &str = "todo-app";
pub const CHART_VERSION: &str = "1.4.0";

/// The values the chart's Secret and values hold: no output and no record of ours may ever
/// contain one, plain or base64-encoded.
pub const HELM_SECRETS: [(&str, &str); 3] = [
    (
        "DATABASE_URL",
        "postgres://helm:HelmPlantedPw-4e1c@db:5432/todo",
    ),
    ("BETTER_AUTH_SECRET", "helm-planted-auth-77a0"),
    ("COHERE_API_KEY", "helm-planted-cohere-3b9d"),
];

/// Each of the Helm secrets as it may appear: plain, and base64 as a Secret's `data` holds it.
pub fn helm_secret_forms() -> Vec<String> {
    HELM_SECRETS
        .iter()
        .flat_map(|(_, v)| {
            [
                v.to_string(),
                base64::engine::general_purpose::STANDARD.encode(v),
            ]
        })
        .collect()
}

/// The images the chart runs: the fixture images `up` would deploy.
pub struct Images {
    pub backend: String,
    pub frontend: String,
}

impl Images {
    /// The fixture's images, on the node: registered with the stand-in, or built and loaded by a
    /// run of `up` (then `down`) on a real cluster.
    pub async fn on_the_node(env: &Env) -> Images {
        env.provide(super::cluster::App::Healthy, &[]).await;
        if env.standin().is_none() {
            env.run(&["up"]).await.expect_code(0);
            env.run(&["down", "--purge"]).await.expect_code(0);
        }
        let images = env.images(&[]).await;
        let find = |service: &str| {
            images
                .iter()
                .find(|i| i.contains(service))
                .unwrap_or_else(|| panic!("no {service} image in {images:?}"))
                .clone()
        };
        Images {
            backend: find("backend"),
            frontend: find("frontend"),
        }
    }
}

/// Helm's labels and annotations, as the chart's helpers and Helm put them on every object.
pub fn helm_metadata(object: &mut Value, namespace: &str) {
    let meta = &mut object["metadata"];
    meta["labels"]["app.kubernetes.io/managed-by"] = json!("Helm");
    meta["labels"]["helm.sh/chart"] = json!(format!("{RELEASE}-{CHART_VERSION}"));
    meta["annotations"]["meta.helm.sh/release-name"] = json!(RELEASE);
    meta["annotations"]["meta.helm.sh/release-namespace"] = json!(namespace);
}

fn container(name: &str, image: &str, port: u16, probe: &str) -> Value {
    json!({
        "name": name, "image": image, "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "envFrom": [{"configMapRef": {"name": "todo-config"}}, {"secretRef": {"name": "todo-secrets"}}],
        "readinessProbe": {"httpGet": {"path": probe, "port": port}, "initialDelaySeconds": 1, "periodSeconds": 1},
        "resources": {"requests": {"cpu": "25m", "memory": "48Mi"}, "limits": {"cpu": "150m", "memory": "96Mi"}},
    })
}

fn deployment(name: &str, component: &str, replicas: i64, container: Value) -> Value {
    let labels = json!({"app": "todo-app", "component": component});
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {"containers": [container],
                              "terminationGracePeriodSeconds": 5}}}})
}

fn service(name: &str, port: u16) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "labels": {"app": "todo-app", "component": name}},
        "spec": {"type": "ClusterIP", "selector": {"app": "todo-app", "component": name},
                 "ports": [{"name": "http", "port": port, "targetPort": port, "protocol": "TCP"}]}})
}

/// The design documents' chart at one revision, with Helm's metadata.
pub fn design_chart(namespace: &str, images: &Images, backend_replicas: i64) -> Vec<Value> {
    let encoded = |v: &str| base64::engine::general_purpose::STANDARD.encode(v);
    let secret_data: serde_json::Map<String, Value> = HELM_SECRETS
        .iter()
        .map(|(k, v)| (k.to_string(), json!(encoded(v))))
        .collect();
    let path = |path: &str, service: &str, port: u16| {
        json!({"path": path, "pathType": "Prefix",
        "backend": {"service": {"name": service, "port": {"number": port}}}})
    };
    let mut objects = vec![
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "todo-config"},
               "data": {"ENVIRONMENT": "production", "apiUrl": "http://todo.local/api",
                        "NEXT_PUBLIC_API_URL": "/api", "LOG_LEVEL": "info"}}),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "todo-secrets"},
               "type": "Opaque", "data": secret_data}),
        service("backend", 8000),
        service("frontend", 3000),
        deployment(
            "todo-app-backend",
            "backend",
            backend_replicas,
            container("backend", &images.backend, 8000, "/api/health"),
        ),
        deployment(
            "frontend",
            "frontend",
            2,
            container("frontend", &images.frontend, 3000, "/"),
        ),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "todo"},
               "spec": {"ingressClassName": "nginx", "rules": [{"host": "todo.local", "http": {"paths": [
                   path("/api", "backend", 8000), path("/", "frontend", 3000)]}}]}}),
    ];
    for object in &mut objects {
        helm_metadata(object, namespace);
    }
    objects
}

/// A chart that renders what todo-deploy renders (`render --show-secrets` of the scenario, with
/// the loader its deploys get), with Helm's metadata: same names, selectors and pod templates.
pub async fn matching_chart(env: &Env) -> Vec<Value> {
    let mut args = vec!["render", "--show-secrets"];
    if env.standin().is_some() {
        // Deploys run with `--loader none` there, which decides the pull policy.
        args.extend(["--set", "cluster.loader=none"]);
    }
    let run = env.run(&args).await;
    run.expect_code(0);
    let documents: Vec<Value> = serde_saphyr::from_multiple(&run.stdout).expect("manifests");
    let mut objects: Vec<Value> = documents
        .into_iter()
        .filter(|d| d["kind"] != "Namespace")
        .collect();
    for object in &mut objects {
        helm_metadata(object, &env.namespace);
    }
    objects
}

fn resource(kind: &str) -> ApiResource {
    match kind {
        "ConfigMap" => ApiResource::erase::<ConfigMap>(&()),
        "Secret" => ApiResource::erase::<Secret>(&()),
        "Service" => ApiResource::erase::<Service>(&()),
        "Deployment" => ApiResource::erase::<Deployment>(&()),
        "Ingress" => ApiResource::erase::<Ingress>(&()),
        "HorizontalPodAutoscaler" => ApiResource::erase::<HorizontalPodAutoscaler>(&()),
        "PodDisruptionBudget" => ApiResource::erase::<PodDisruptionBudget>(&()),
        "NetworkPolicy" => ApiResource::erase::<NetworkPolicy>(&()),
        other => panic!("the fixture chart has no {other}"),
    }
}

/// The API of `object`'s kind in the scenario's namespace.
pub fn api_of(env: &Env, kind: &str) -> Api<DynamicObject> {
    Api::namespaced_with(env.client.clone(), &env.namespace, &resource(kind))
}

/// The manifest as Helm stores it: one document per template, with its source.
fn manifest(objects: &[Value]) -> String {
    objects
        .iter()
        .map(|o| {
            let kind = o["kind"].as_str().unwrap_or_default().to_lowercase();
            let name = o["metadata"]["name"].as_str().unwrap_or_default();
            let yaml = serde_saphyr::to_string(o).expect("YAML");
            format!("---\n# Source: {RELEASE}/templates/{kind}-{name}.yaml\n{yaml}")
        })
        .collect()
}

/// The record of `version` as Helm's secrets driver writes it.
fn record(namespace: &str, version: u32, status: &str, objects: &[Value], stamp: &str) -> Secret {
    let values: serde_json::Map<String, Value> = HELM_SECRETS
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    let release = json!({
        "name": RELEASE, "namespace": namespace, "version": version,
        "info": {"first_deployed": "2026-01-01T10:00:00Z", "last_deployed": "2026-01-02T10:00:00Z",
                 "deleted": "", "description": if version == 1 { "Install complete" } else { "Upgrade complete" },
                 "status": status},
        "chart": {"metadata": {"name": RELEASE, "version": CHART_VERSION, "appVersion": "1.0.0", "apiVersion": "v2"},
                  "templates": [], "values": {"backend": {"replicaCount": 2}}},
        "config": {"backend": {"replicaCount": 3}, "secrets": values},
        "manifest": manifest(objects),
    });
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gzip.write_all(release.to_string().as_bytes())
        .expect("gzip");
    let packed = base64::engine::general_purpose::STANDARD.encode(gzip.finish().expect("gzip"));
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
        "metadata": {"name": format!("sh.helm.release.v1.{RELEASE}.v{version}"),
                     "labels": {"name": RELEASE, "owner": "helm", "status": status,
                                "version": version.to_string(), stamp: "1767261600"}},
        "data": {"release": base64::engine::general_purpose::STANDARD.encode(packed)},
    }))
    .expect("a record")
}

fn as_helm() -> PostParams {
    PostParams {
        field_manager: Some("helm".to_owned()),
        ..PostParams::default()
    }
}

/// Writes the record of `version` with `status` (a create, or Helm's `Update` of it).
async fn write_record(env: &Env, version: u32, status: &str, objects: &[Value]) {
    let api: Api<Secret> = Api::namespaced(env.client.clone(), &env.namespace);
    let name = format!("sh.helm.release.v1.{RELEASE}.v{version}");
    match api.get_opt(&name).await.expect("read a record") {
        None => {
            let secret = record(&env.namespace, version, status, objects, "createdAt");
            api.create(&as_helm(), &secret)
                .await
                .expect("record created");
        }
        Some(live) => {
            let mut secret = record(&env.namespace, version, status, objects, "modifiedAt");
            secret.metadata.resource_version = live.metadata.resource_version;
            api.replace(&name, &as_helm(), &secret)
                .await
                .expect("record updated");
        }
    }
}

/// The namespace as the issue found it: Helm's label on it, owned by `helm`.
async fn namespace(env: &Env) {
    let api: Api<Namespace> = Api::all(env.client.clone());
    let mut meta = json!({"metadata": {"name": env.namespace}});
    helm_metadata(&mut meta, &env.namespace);
    match api
        .get_opt(&env.namespace)
        .await
        .expect("read the namespace")
    {
        None => {
            let namespace: Namespace = serde_json::from_value(meta).expect("a Namespace");
            api.create(&as_helm(), &namespace).await.expect("namespace");
        }
        Some(_) => {
            let params = PatchParams {
                field_manager: Some("helm".to_owned()),
                ..PatchParams::default()
            };
            api.patch(&env.namespace, &params, &Patch::Merge(&meta))
                .await
                .expect("labelled");
        }
    }
}

/// Installs `revisions[0]` and upgrades to each next one as Helm 3 does; the last is deployed,
/// the others superseded.
pub async fn install(env: &Env, revisions: &[Vec<Value>]) {
    namespace(env).await;
    let mut previous: Option<&Vec<Value>> = None;
    for (index, objects) in revisions.iter().enumerate() {
        let version = index as u32 + 1;
        let pending = if version == 1 {
            "pending-install"
        } else {
            "pending-upgrade"
        };
        write_record(env, version, pending, objects).await;
        for object in objects {
            let kind = object["kind"].as_str().expect("a kind");
            let name = object["metadata"]["name"].as_str().expect("a name");
            let api = api_of(env, kind);
            match previous.and_then(|p| {
                p.iter()
                    .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            }) {
                None => {
                    let body: DynamicObject =
                        serde_json::from_value(object.clone()).expect("an object");
                    api.create(&as_helm(), &body)
                        .await
                        .expect("created as helm");
                }
                Some(before) if before == object => {}
                Some(_) => {
                    let params = PatchParams {
                        field_manager: Some("helm".to_owned()),
                        ..PatchParams::default()
                    };
                    api.patch(name, &params, &Patch::Strategic(object))
                        .await
                        .expect("patched as helm");
                }
            }
        }
        if let Some(before) = previous {
            write_record(env, version - 1, "superseded", before).await;
        }
        write_record(env, version, "deployed", objects).await;
        previous = Some(objects);
    }
}

/// Waits until each `(Deployment, replicas)` has all its replicas available.
pub async fn available(env: &Env, deployments: &[(&str, i32)]) {
    for (name, replicas) in deployments {
        env.eventually(
            &format!("Deployment/{name} available"),
            std::time::Duration::from_secs(120),
            || async {
                env.deployment(name)
                    .await
                    .and_then(|d| d.status)
                    .is_some_and(|s| {
                        s.available_replicas == Some(*replicas)
                            && s.updated_replicas == Some(*replicas)
                            && s.replicas == Some(*replicas)
                    })
            },
        )
        .await;
    }
}

/// Helm's records of the release: (version, `status` label, status in the release JSON).
pub async fn records(env: &Env) -> Vec<(u32, String, String)> {
    let api: Api<Secret> = Api::namespaced(env.client.clone(), &env.namespace);
    let listed = api
        .list(&ListParams::default().labels("owner=helm"))
        .await
        .expect("list records");
    let mut records: Vec<(u32, String, String)> = listed
        .items
        .into_iter()
        .map(|secret| {
            let labels = secret.metadata.labels.unwrap_or_default();
            let data = secret.data.unwrap_or_default();
            let raw = data
                .get("release")
                .cloned()
                .unwrap_or(ByteString(Vec::new()));
            let gzip = base64::engine::general_purpose::STANDARD
                .decode(&raw.0)
                .expect("base64");
            let mut json = String::new();
            flate2::read::GzDecoder::new(gzip.as_slice())
                .read_to_string(&mut json)
                .expect("gzip");
            let release: Value = serde_json::from_str(&json).expect("JSON");
            (
                labels["version"].parse().expect("a version"),
                labels["status"].clone(),
                release["info"]["status"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    records.sort();
    records
}
