//! Coming from the Helm chart: a release the old chart installed (or a plain `kubectl apply`)
//! is found before anything changes; `adopt` takes it over with no gap in ready pods behind a
//! Service, or adopts matching Deployments where they are; `--values-only` keeps the release's
//! settings; `--force-conflicts` takes a field back on every kind; and no value of Helm's Secret
//! reaches any output or record.

use std::collections::BTreeMap;
use std::io::Read;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Secret, Service};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use serde_json::{Value, json};

use crate::support::Run;
use crate::support::cluster::{App, Env};
use crate::support::endpoints::Recorder;
use crate::support::helm::{self, Images, RELEASE};

/// What a run must never print: a value of Helm's Secret, plain or base64.
fn assert_no_helm_secret(what: &str, text: &str) {
    for form in helm::helm_secret_forms() {
        assert!(
            !text.contains(&form),
            "{what} shows a Helm secret value:\n{text}"
        );
    }
}

fn assert_clean(run: &Run) {
    assert_no_helm_secret("a run", &run.all_output());
}

/// Our revision records, decoded.
async fn our_records(env: &Env) -> Vec<String> {
    let api: Api<Secret> = Api::namespaced(env.client.clone(), &env.namespace);
    let listed = api
        .list(&ListParams::default().labels("todo-deploy.io/owner=todo-deploy"))
        .await
        .expect("list records");
    listed
        .items
        .into_iter()
        .map(|record| {
            let data = record.data.unwrap_or_default();
            let mut json = String::new();
            flate2::read::GzDecoder::new(data["release"].0.as_slice())
                .read_to_string(&mut json)
                .expect("a record");
            json
        })
        .collect()
}

async fn history(env: &Env) -> Vec<(u64, String, String)> {
    let run = env.run(&["history", "-o", "json"]).await;
    run.expect_code(0);
    assert_clean(&run);
    let history: Vec<Value> = serde_json::from_str(&run.stdout).expect("history JSON");
    history
        .iter()
        .map(|r| {
            let text = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
            (
                r["revision"].as_u64().unwrap_or(99),
                text("status"),
                text("description"),
            )
        })
        .collect()
}

/// What the chart's objects are, to compare before and after: everything but status.
async fn snapshot(env: &Env) -> BTreeMap<String, Value> {
    let mut all = BTreeMap::new();
    for kind in ["ConfigMap", "Secret", "Service", "Deployment", "Ingress"] {
        for object in helm::api_of(env, kind)
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
        {
            let name = object.metadata.name.clone().unwrap_or_default();
            let mut value = serde_json::to_value(&object).expect("json");
            value.as_object_mut().map(|o| o.remove("status"));
            all.insert(format!("{kind}/{name}"), value);
        }
    }
    all
}

fn labels_and_annotations(object: &DynamicObject) -> Vec<String> {
    let labels = object.metadata.labels.clone().unwrap_or_default();
    let annotations = object.metadata.annotations.clone().unwrap_or_default();
    labels.into_keys().chain(annotations.into_keys()).collect()
}

fn managers(object: &DynamicObject) -> Vec<String> {
    object
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|e| e.manager.clone())
        .collect()
}

/// Every object we render has our labels and no trace of Helm or `kubectl apply`.
async fn assert_ours(env: &Env, keys: &[(&str, &str)]) {
    for (kind, name) in keys {
        let object = helm::api_of(env, kind).get(name).await.expect("the object");
        let keys = labels_and_annotations(&object);
        for gone in [
            "helm.sh/chart",
            "meta.helm.sh/release-name",
            "meta.helm.sh/release-namespace",
            "kubectl.kubernetes.io/last-applied-configuration",
        ] {
            assert!(
                !keys.iter().any(|k| k == gone),
                "{kind}/{name} still has {gone}: {keys:?}"
            );
        }
        let labels = object.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels
                .get("app.kubernetes.io/managed-by")
                .map(String::as_str),
            Some("todo-deploy"),
            "{kind}/{name}"
        );
        let managers = managers(&object);
        assert!(
            !managers
                .iter()
                .any(|m| m == "helm" || m == "kubectl-client-side-apply"),
            "{kind}/{name}: {managers:?}"
        );
    }
}

const RENDERED: [(&str, &str); 6] = [
    ("ConfigMap", "todo-config"),
    ("Secret", "todo-secrets"),
    ("Service", "backend"),
    ("Service", "frontend"),
    ("Deployment", "backend"),
    ("Ingress", "todo"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chart_installed_release_is_detected_and_nothing_changes() {
    let env = Env::start("helm-detect").await;
    let images = Images::on_the_node(&env).await;
    let chart = helm::design_chart(&env.namespace, &images, 2);
    helm::install(&env, &[chart]).await;
    helm::available(&env, &[("todo-app-backend", 2), ("frontend", 2)]).await;
    let before = snapshot(&env).await;
    let pods_before = env.live_pods().await;
    for args in [&["up"][..], &["up", "--force-conflicts"], &["diff"]] {
        let run = env.run(args).await;
        run.expect_code(1);
        assert_clean(&run);
        let stderr = &run.stderr;
        for line in [
            "were made by another tool; nothing was changed:",
            "\n  ConfigMap/todo-config: Helm release `todo-app`",
            "\n  Secret/todo-secrets: Helm release `todo-app`",
            "\n  Service/backend: Helm release `todo-app`",
            "\n  Deployment/frontend: Helm release `todo-app`",
            "\n  Ingress/todo: Helm release `todo-app`",
            "help: `todo-deploy adopt --from-helm todo-app` takes them over without downtime",
        ] {
            assert!(
                stderr.contains(line),
                "{args:?} should say {line:?}:\n{stderr}"
            );
        }
        assert!(
            !stderr.contains("Namespace/"),
            "the Namespace is never changed: {stderr}"
        );
    }
    assert_eq!(snapshot(&env).await, before, "no object changed");
    assert_eq!(env.live_pods().await, pods_before, "no pod replaced");
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &env.namespace);
    assert!(
        leases
            .get_opt("todo-deploy.todo")
            .await
            .expect("read")
            .is_none(),
        "no lock was taken"
    );
    assert!(our_records(&env).await.is_empty(), "no revision recorded");
    assert_eq!(
        helm::records(&env).await,
        [(1, "deployed".to_owned(), "deployed".to_owned())],
        "Helm's record untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopt_replaces_deployments_with_other_selectors_with_no_gap_in_ready_pods() {
    let env = Env::start("helm-adopt").await;
    let images = Images::on_the_node(&env).await;
    let v1 = helm::design_chart(&env.namespace, &images, 2);
    let v2 = helm::design_chart(&env.namespace, &images, 3);
    helm::install(&env, &[v1, v2]).await;
    helm::available(&env, &[("todo-app-backend", 3), ("frontend", 2)]).await;
    let values = env
        .run(&["adopt", "--from-helm", RELEASE, "--values-only"])
        .await;
    values.expect_code(0);
    assert_clean(&values);
    env.project.write("helm-values.yaml", &values.stdout);
    assert!(values.stdout.contains("replicas: 3"), "{}", values.stdout);

    let recorder = Recorder::start(&env).await;
    let run = env
        .run(&["adopt", "--from-helm", RELEASE, "-f", "helm-values.yaml"])
        .await;
    let (fewest, states) = recorder.stop(&env).await;
    run.expect_code(0);
    assert_clean(&run);
    eprintln!(
        "fewest ready pods behind each Service during the takeover: {fewest:?} ({} endpoint states)",
        states.len()
    );
    assert_eq!(
        fewest.get("backend"),
        Some(&3),
        "never fewer than the old Deployment's 3: {states:?}"
    );
    assert_eq!(
        fewest.get("frontend"),
        Some(&2),
        "never fewer than the old Deployment's 2: {states:?}"
    );
    for line in [
        "revision 2 (deployed), chart todo-app-1.4.0, app 1.0.0",
        "Deployment/todo-app-backend: 3 replicas",
        "Helm release `todo-app` revision 2 is recorded as revision 0",
        "Deployment/frontend (another selector, which cannot change) deleted",
        "Service/backend selects todo-deploy's pods: its endpoints list 3 ready, no old one",
        "Deployment/todo-app-backend scaled down from 3 and deleted",
        "revision 2 marked uninstalled",
    ] {
        assert!(
            run.stderr.contains(line),
            "should say {line:?}:\n{}",
            run.stderr
        );
    }
    assert!(
        env.deployment("todo-app-backend").await.is_none(),
        "the old Deployment is gone"
    );
    let replica_sets: Api<ReplicaSet> = Api::namespaced(env.client.clone(), &env.namespace);
    env.eventually(
        "the old ReplicaSets gone",
        std::time::Duration::from_secs(60),
        || async {
            replica_sets
                .list(&ListParams::default().labels("app=todo-app"))
                .await
                .expect("list")
                .items
                .is_empty()
        },
    )
    .await;
    let frontend = env.deployment("frontend").await.expect("ours");
    let selector = frontend
        .spec
        .expect("spec")
        .selector
        .match_labels
        .expect("labels");
    assert!(
        selector.contains_key("app.kubernetes.io/instance"),
        "our selector: {selector:?}"
    );
    assert_eq!(
        env.deployment("backend")
            .await
            .and_then(|d| d.spec)
            .and_then(|s| s.replicas),
        Some(3)
    );
    let services: Api<Service> = Api::namespaced(env.client.clone(), &env.namespace);
    let backend = services.get("backend").await.expect("the Service");
    assert!(
        !backend
            .spec
            .and_then(|s| s.selector)
            .unwrap_or_default()
            .contains_key("app"),
        "the chart's selector is gone"
    );
    assert_ours(&env, &RENDERED).await;
    assert_ours(&env, &[("Deployment", "frontend")]).await;
    assert_eq!(
        history(&env).await,
        [
            (
                0,
                "superseded".into(),
                "Adopted from Helm release todo-app revision 2".into()
            ),
            (
                1,
                "deployed".into(),
                "Take over from Helm release todo-app revision 2".into()
            ),
        ]
    );
    assert_eq!(
        helm::records(&env).await,
        [
            (1, "superseded".into(), "superseded".into()),
            (2, "uninstalled".into(), "uninstalled".into())
        ],
        "`helm list` shows deployed and failed releases: no longer this one"
    );
    let records = our_records(&env).await;
    assert_eq!(records.len(), 2);
    for record in &records {
        assert_no_helm_secret("a record", record);
    }
    assert!(
        records
            .iter()
            .any(|r| r.contains("Adopted from Helm release") && r.contains("sha256:")),
        "revision 0 keeps digests"
    );
    let status = env.run(&["status"]).await;
    status.expect_code(0);
    assert_clean(&status);
    let again = env
        .run(&["adopt", "--from-helm", RELEASE, "-f", "helm-values.yaml"])
        .await;
    again.expect_code(0);
    assert!(
        again.stderr.contains("it was taken over already"),
        "{}",
        again.stderr
    );
    assert!(
        again.stderr.contains("is up to date (revision 1)"),
        "{}",
        again.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_matching_release_is_adopted_without_a_rollout() {
    let env = Env::start("helm-match").await;
    let _ = Images::on_the_node(&env).await;
    let chart = helm::matching_chart(&env).await;
    helm::install(&env, &[chart]).await;
    helm::available(&env, &[("backend", 2), ("frontend", 2)]).await;
    let replica_sets: Api<ReplicaSet> = Api::namespaced(env.client.clone(), &env.namespace);
    let sets = || async {
        let mut names: Vec<String> = replica_sets
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .into_iter()
            .filter_map(|rs| rs.metadata.name)
            .collect();
        names.sort();
        names
    };
    let sets_before = sets().await;
    let pods_before = env.live_pods().await;
    let generation = env
        .deployment("backend")
        .await
        .and_then(|d| d.metadata.generation);
    let history_before = env.standin().map(|s| s.pod_history().len());

    let run = env
        .run(&["adopt", "--from-helm", RELEASE, "--remove-helm-records"])
        .await;
    run.expect_code(0);
    assert_clean(&run);
    assert!(
        run.stderr
            .contains("Deployment/backend: the fields of `helm` are todo-deploy's now"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("its records are deleted (revisions 1)"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("scaled down"),
        "nothing replaced: {}",
        run.stderr
    );
    assert_eq!(sets().await, sets_before, "no new ReplicaSet: no rollout");
    assert_eq!(env.live_pods().await, pods_before, "the same pods serve");
    assert_eq!(
        env.deployment("backend")
            .await
            .and_then(|d| d.metadata.generation),
        generation,
        "the spec did not change"
    );
    if let (Some(standin), Some(before)) = (env.standin(), history_before) {
        let changes = &standin.pod_history()[before..];
        assert!(
            changes
                .iter()
                .all(|c| pods_before.contains(&c.name) && c.phase != "Deleted"),
            "no pod came or went: {changes:?}"
        );
    }
    assert_ours(&env, &RENDERED).await;
    assert!(
        helm::records(&env).await.is_empty(),
        "Helm's records are removed"
    );
    assert_eq!(
        history(&env)
            .await
            .iter()
            .map(|(r, s, _)| (*r, s.clone()))
            .collect::<Vec<_>>(),
        [(0, "superseded".to_owned()), (1, "deployed".to_owned())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_kubectl_apply_made_are_found_and_taken_over_with_up_adopt() {
    let env = Env::start("kubectl-adopt").await;
    env.provide(App::Healthy, &[]).await;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(env.client.clone());
    let namespace =
        serde_json::from_value(json!({"metadata": {"name": env.namespace}})).expect("ns");
    namespaces
        .create(&Default::default(), &namespace)
        .await
        .expect("the namespace");
    let manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: todo-config\n  labels: {team: web}\ndata:\n  ENVIRONMENT: staging\n  OLD_KEY: left-by-kubectl\n";
    env.project.write("old.yaml", manifest);
    let applied = env
        .tool("kubectl")
        .arg("--kubeconfig")
        .arg(env.kubeconfig())
        .args(["-n", &env.namespace, "apply", "-f", "old.yaml"])
        .output()
        .await;
    let Ok(applied) = applied else {
        assert!(
            !crate::support::required_in_ci("kubectl"),
            "kubectl is not installed"
        );
        return;
    };
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    let stop = env.run(&["up"]).await;
    stop.expect_code(1);
    assert!(
        stop.stderr
            .contains("\n  ConfigMap/todo-config: made by `kubectl apply`"),
        "{}",
        stop.stderr
    );
    assert!(
        stop.stderr
            .contains("help: `todo-deploy up --adopt` takes them over without downtime"),
        "{}",
        stop.stderr
    );
    let run = env.run(&["up", "--adopt"]).await;
    run.expect_code(0);
    let config = helm::api_of(&env, "ConfigMap")
        .get("todo-config")
        .await
        .expect("the ConfigMap");
    assert_eq!(config.data["data"]["ENVIRONMENT"], "production", "ours");
    assert!(
        config.data["data"].get("OLD_KEY").is_none(),
        "what kubectl set and we do not render is gone"
    );
    assert!(
        !labels_and_annotations(&config).iter().any(|k| k == "team"),
        "and its label"
    );
    assert_ours(&env, &[("ConfigMap", "todo-config")]).await;
    assert_eq!(
        history(&env)
            .await
            .iter()
            .map(|(r, _, d)| (*r, d.clone()))
            .collect::<Vec<_>>(),
        [(1, "Take over".to_owned())],
        "no Helm release: no revision 0"
    );
}

/// The escape hatch: a field someone else owns, on every kind we render, is taken back
/// with `--force-conflicts`; the Namespace, Helm-labelled as the issue found it, is never touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_conflicts_takes_a_field_back_on_every_kind() {
    let env = Env::start("force-all").await;
    let every_kind = [
        "--set",
        "autoscaling.enabled=true",
        "--set",
        "podDisruptionBudget.enabled=true",
        "--set",
        "networkPolicy.enabled=true",
    ];
    env.provide(App::Healthy, &every_kind).await;
    let mut args = vec!["up"];
    args.extend(every_kind);
    env.run(&args).await.expect_code(0);
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(env.client.clone());
    let helm = PatchParams {
        field_manager: Some("helm".into()),
        ..Default::default()
    };
    let label = json!({"metadata": {"labels": {"app.kubernetes.io/managed-by": "Helm"}}});
    namespaces
        .patch(&env.namespace, &helm, &Patch::Merge(&label))
        .await
        .expect("Helm's label");
    let edit = PatchParams {
        field_manager: Some("kubectl-edit".into()),
        ..Default::default()
    };
    let edited = json!({"metadata": {"labels": {"app.kubernetes.io/part-of": "edited"}}});
    let kinds = [
        "ConfigMap",
        "Secret",
        "Service",
        "Deployment",
        "Ingress",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
    ];
    let mut objects = Vec::new();
    for kind in kinds {
        let api = helm::api_of(&env, kind);
        for object in api
            .list(&ListParams::default().labels("app.kubernetes.io/instance=todo"))
            .await
            .expect("list")
            .items
        {
            let name = object.metadata.name.clone().unwrap_or_default();
            api.patch(&name, &edit, &Patch::Merge(&edited))
                .await
                .expect("edited");
            objects.push((kind, name));
        }
    }
    assert_eq!(
        objects.len(),
        13,
        "every object but the Namespace: {objects:?}"
    );
    let refused = env.run(&args).await;
    refused.expect_code(1);
    assert!(
        refused.stderr.contains("(by `kubectl-edit`)"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("help: someone changed it with `kubectl-edit` (e.g. `kubectl edit` or `kubectl scale`); run again with `--force-conflicts`"), "{}", refused.stderr);
    let mut forced = args.clone();
    forced.push("--force-conflicts");
    env.run(&forced).await.expect_code(0);
    for (kind, name) in &objects {
        let object = helm::api_of(&env, kind)
            .get(name)
            .await
            .expect("the object");
        let labels = object.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels["app.kubernetes.io/part-of"], "todo-chatbot",
            "{kind}/{name} is ours again"
        );
        assert!(
            !managers(&object).contains(&"kubectl-edit".to_owned()),
            "{kind}/{name}: {:?}",
            managers(&object)
        );
    }
    let namespace = namespaces.get(&env.namespace).await.expect("the namespace");
    assert_eq!(
        namespace.metadata.labels.unwrap_or_default()["app.kubernetes.io/managed-by"],
        "Helm",
        "never patched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_records_that_cannot_be_used_say_why() {
    let env = Env::start("helm-records").await;
    let images = Images {
        backend: "b:1".into(),
        frontend: "f:1".into(),
    };
    helm::install(&env, &[helm::design_chart(&env.namespace, &images, 2)]).await;
    let missing = env
        .run(&["adopt", "--from-helm", "nosuch", "--values-only"])
        .await;
    missing.expect_code(2);
    assert!(
        missing
            .stderr
            .contains("there is no Helm release `nosuch` in namespace"),
        "{}",
        missing.stderr
    );
    assert!(
        missing
            .stderr
            .contains("the Helm releases there: `todo-app`"),
        "{}",
        missing.stderr
    );
    let api: Api<Secret> = Api::namespaced(env.client.clone(), &env.namespace);
    let corrupt: Secret = serde_json::from_value(
        json!({"metadata": {"name": "sh.helm.release.v1.todo-app.v2",
        "labels": {"name": RELEASE, "owner": "helm", "status": "deployed", "version": "2"}},
        "type": "helm.sh/release.v1", "data": {"release": "bm90IGJhc2U2NCE="}}),
    )
    .expect("a Secret");
    api.create(&Default::default(), &corrupt)
        .await
        .expect("created");
    let run = env
        .run(&["adopt", "--from-helm", RELEASE, "--values-only"])
        .await;
    run.expect_code(1);
    assert!(run.stderr.contains("the Helm record `sh.helm.release.v1.todo-app.v2` is unreadable: its `release` is not base64"), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "no values file: {}", run.stdout);
}

/// The object of `kind` and `name` among `objects`.
fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind}/{name}"))
}

/// `--values-only` keeps what the release ran: rendered with it, todo-deploy's objects have the
/// chart's replicas, resources, image repositories, Service types and ports, Ingress host and
/// class, ConfigMap data and Secret keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_only_round_trips_through_render() {
    let env = Env::start("helm-values").await;
    let images = Images {
        backend: "registry.local:5000/todo/backend:1.0.0".into(),
        frontend: "todo-frontend:1.0.0".into(),
    };
    let chart = helm::design_chart(&env.namespace, &images, 3);
    helm::install(&env, std::slice::from_ref(&chart)).await;
    let values = env
        .run(&["adopt", "--from-helm", RELEASE, "--values-only"])
        .await;
    values.expect_code(0);
    assert_clean(&values);
    env.project.write("helm-values.yaml", &values.stdout);
    let rendered = env.run(&["render", "-f", "helm-values.yaml"]).await;
    rendered.expect_code(0);
    let ours: Vec<Value> = serde_saphyr::from_multiple(&rendered.stdout).expect("manifests");
    for (service, chart_deployment, repository) in [
        (
            "backend",
            "todo-app-backend",
            "registry.local:5000/todo/backend:",
        ),
        ("frontend", "frontend", "todo-frontend:"),
    ] {
        let theirs = find(&chart, "Deployment", chart_deployment);
        let mine = find(&ours, "Deployment", service);
        assert_eq!(
            mine["spec"]["replicas"], theirs["spec"]["replicas"],
            "{service}"
        );
        let container = |d: &Value| d["spec"]["template"]["spec"]["containers"][0].clone();
        assert_eq!(
            container(mine)["resources"],
            container(theirs)["resources"],
            "{service}"
        );
        let image = container(mine)["image"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(image.starts_with(repository), "{service}: {image}");
        let (their_service, my_service) = (
            find(&chart, "Service", service),
            find(&ours, "Service", service),
        );
        assert_eq!(
            my_service["spec"]["type"], their_service["spec"]["type"],
            "{service}"
        );
        assert_eq!(
            my_service["spec"]["ports"][0]["port"],
            their_service["spec"]["ports"][0]["port"]
        );
    }
    let (their_ingress, my_ingress) = (
        find(&chart, "Ingress", "todo"),
        find(&ours, "Ingress", "todo"),
    );
    assert_eq!(
        my_ingress["spec"]["rules"][0]["host"],
        their_ingress["spec"]["rules"][0]["host"]
    );
    assert_eq!(
        my_ingress["spec"]["ingressClassName"],
        their_ingress["spec"]["ingressClassName"]
    );
    assert_eq!(
        find(&ours, "ConfigMap", "todo-config")["data"],
        find(&chart, "ConfigMap", "todo-config")["data"]
    );
    let keys = |secret: &Value, field: &str| -> Vec<String> {
        let mut keys: Vec<String> = secret[field]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        keys.sort();
        keys
    };
    assert_eq!(
        keys(find(&ours, "Secret", "todo-secrets"), "stringData"),
        keys(find(&chart, "Secret", "todo-secrets"), "data")
    );
}

/// When todo-deploy's pods cannot start, the takeover stops before any Service is switched: the
/// chart's pods serve on, Helm's records stay, the revision is recorded failed. Run again with
/// pods that start, it takes over; the configuration's 2 backend replicas run as 3 (the chart's)
/// until the chart's Deployment is gone, so its Service never has fewer than 3 ready pods until
/// the configured count applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_takeover_whose_pods_fail_switches_nothing_and_can_run_again() {
    let env = Env::start("helm-fail").await;
    let images = Images::on_the_node(&env).await;
    helm::install(&env, &[helm::design_chart(&env.namespace, &images, 3)]).await;
    helm::available(&env, &[("todo-app-backend", 3), ("frontend", 2)]).await;
    env.provide(App::Crashing, &[]).await;
    let recorder = Recorder::start(&env).await;
    let failed = env.run(&["adopt", "--from-helm", RELEASE]).await;
    let (fewest, states) = recorder.stop(&env).await;
    failed.expect_code(1);
    assert_clean(&failed);
    assert!(
        failed
            .stderr
            .contains("error: the takeover stopped: the rollout failed"),
        "{}",
        failed.stderr
    );
    assert!(
        failed
            .stderr
            .contains("nothing was switched: the old workloads still serve"),
        "{}",
        failed.stderr
    );
    assert_eq!(
        (fewest.get("backend"), fewest.get("frontend")),
        (Some(&3), Some(&2)),
        "{states:?}"
    );
    assert!(
        env.deployment("todo-app-backend").await.is_some(),
        "the chart's Deployment serves on"
    );
    assert_eq!(
        helm::records(&env).await,
        [(1, "deployed".to_owned(), "deployed".to_owned())]
    );
    let statuses: Vec<(u64, String)> = history(&env)
        .await
        .into_iter()
        .map(|(r, s, _)| (r, s))
        .collect();
    assert_eq!(
        statuses,
        [(0, "deployed".to_owned()), (1, "failed".to_owned())]
    );

    env.provide(App::Healthy, &[]).await;
    let recorder = Recorder::start(&env).await;
    let run = env.run(&["adopt", "--from-helm", RELEASE]).await;
    env.eventually(
        "2 ready pods behind Service backend",
        std::time::Duration::from_secs(60),
        || async {
            let api: Api<k8s_openapi::api::core::v1::Endpoints> =
                Api::namespaced(env.client.clone(), &env.namespace);
            api.get("backend")
                .await
                .is_ok_and(|e| crate::support::endpoints::ready(&e) == 2)
        },
    )
    .await;
    let (_, states) = recorder.stop(&env).await;
    run.expect_code(0);
    assert!(
        run.stderr
            .contains("`backend` ran 3 replicas before; the configuration asks for 2"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("Deployment/backend runs 3 replicas, as many as Deployment/todo-app-backend, until it is gone"), "{}", run.stderr);
    let backend: Vec<usize> = states
        .iter()
        .filter(|(s, _)| s == "backend")
        .map(|(_, r)| *r)
        .collect();
    eprintln!("ready pods behind Service backend, state by state, while taking over: {backend:?}");
    let until_configured = backend
        .iter()
        .position(|r| *r == 2)
        .unwrap_or(backend.len());
    assert!(
        backend[..until_configured].iter().all(|r| *r >= 3),
        "fewer than 3 before the configured count: {backend:?}"
    );
    assert_eq!(
        backend.last(),
        Some(&2),
        "then the configuration's 2: {backend:?}"
    );
    let statuses: Vec<(u64, String)> = history(&env)
        .await
        .into_iter()
        .map(|(r, s, _)| (r, s))
        .collect();
    assert_eq!(
        statuses,
        [
            (0, "superseded".into()),
            (1, "failed".into()),
            (2, "deployed".into())
        ]
    );
    assert!(env.deployment("todo-app-backend").await.is_none());
}
