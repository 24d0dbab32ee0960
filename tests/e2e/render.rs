//! `todo-deploy render`: what `up` would apply.

use std::process::Command;

use serde_json::Value;

use crate::support::{Project, required_in_ci};

fn documents(yaml: &str) -> Vec<Value> {
    yaml.split("\n---\n")
        .flat_map(|doc| doc.strip_prefix("---\n").or(Some(doc)))
        .filter(|doc| {
            doc.lines()
                .any(|l| !l.starts_with('#') && !l.trim().is_empty())
        })
        .map(|doc| serde_saphyr::from_str::<Value>(doc).expect("valid YAML document"))
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind}/{name}"))
}

#[test]
fn default_config_renders_the_todo_app() {
    let project = Project::new();
    let run = project.run(&["render", "--tag", "test"]);
    run.expect_code(0);
    insta::assert_snapshot!("default_render", run.stdout);

    let docs = documents(&run.stdout);
    let kinds: Vec<String> = docs
        .iter()
        .map(|d| {
            format!(
                "{}/{}",
                d["kind"].as_str().unwrap(),
                d["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "Namespace/todo",
            "ConfigMap/todo-config",
            "Secret/todo-secrets",
            "Service/backend",
            "Service/frontend",
            "Deployment/backend",
            "Deployment/frontend",
            "Ingress/todo",
        ],
        "apply order"
    );

    let backend = find(&docs, "Deployment", "backend");
    assert_eq!(backend["spec"]["replicas"], 2);
    assert_eq!(backend["spec"]["strategy"]["rollingUpdate"]["maxSurge"], 1);
    assert_eq!(
        backend["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
        0
    );
    let container = &backend["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "todo-backend:test");
    assert_eq!(container["imagePullPolicy"], "Never");
    assert_eq!(container["resources"]["requests"]["memory"], "512Mi");
    assert_eq!(container["resources"]["requests"]["cpu"], "300m");
    assert_eq!(container["resources"]["limits"]["memory"], "1Gi");
    assert_eq!(container["resources"]["limits"]["cpu"], "1000m");
    assert_eq!(
        container["readinessProbe"]["httpGet"]["path"],
        "/api/health"
    );
    assert_eq!(container["readinessProbe"]["initialDelaySeconds"], 10);
    assert_eq!(container["readinessProbe"]["periodSeconds"], 5);
    assert_eq!(container["livenessProbe"]["initialDelaySeconds"], 30);
    assert_eq!(container["livenessProbe"]["periodSeconds"], 10);
    assert_eq!(container["livenessProbe"]["failureThreshold"], 3);
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    assert_eq!(
        container["securityContext"]["capabilities"]["drop"][0],
        "ALL"
    );
    assert_eq!(
        container["envFrom"][0]["configMapRef"]["name"],
        "todo-config"
    );
    assert_eq!(container["envFrom"][1]["secretRef"]["name"], "todo-secrets");
    let pod = &backend["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let checksum =
        &backend["spec"]["template"]["metadata"]["annotations"]["todo-deploy/config-checksum"];
    assert_eq!(checksum.as_str().map(str::len), Some(64));

    let frontend = find(&docs, "Deployment", "frontend");
    let container = &frontend["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/");
    assert_eq!(container["resources"]["requests"]["memory"], "256Mi");
    assert_eq!(container["resources"]["limits"]["cpu"], "500m");

    let ingress = find(&docs, "Ingress", "todo");
    assert_eq!(ingress["spec"]["ingressClassName"], "nginx");
    let rule = &ingress["spec"]["rules"][0];
    assert_eq!(rule["host"], "todo.local");
    assert_eq!(rule["http"]["paths"][0]["path"], "/api");
    assert_eq!(
        rule["http"]["paths"][0]["backend"]["service"]["name"],
        "backend"
    );
    assert_eq!(
        rule["http"]["paths"][0]["backend"]["service"]["port"]["number"],
        8000
    );
    assert_eq!(rule["http"]["paths"][1]["path"], "/");
    assert_eq!(
        rule["http"]["paths"][1]["backend"]["service"]["port"]["number"],
        3000
    );

    let config = find(&docs, "ConfigMap", "todo-config");
    assert_eq!(config["data"]["ENVIRONMENT"], "production");
    assert_eq!(config["data"]["apiUrl"], "http://todo.local/api");
}

#[test]
fn optional_resources_and_overrides() {
    let project = Project::new();
    project.write(
        "extra.yaml",
        "services:\n  backend:\n    replicas: 3\nautoscaling:\n  enabled: true\n",
    );
    let run = project.run(&[
        "render",
        "--tag",
        "v2",
        "-f",
        "extra.yaml",
        "--set",
        "podDisruptionBudget.enabled=true",
        "--set",
        "networkPolicy.enabled=true",
        "--set",
        "services.frontend.replicas=4",
    ]);
    run.expect_code(0);
    let docs = documents(&run.stdout);
    // With an HPA, the Deployments leave `replicas` to it.
    assert!(
        find(&docs, "Deployment", "backend")["spec"]
            .get("replicas")
            .is_none()
    );
    let hpa = find(&docs, "HorizontalPodAutoscaler", "backend");
    assert_eq!(hpa["apiVersion"], "autoscaling/v2");
    assert_eq!(hpa["spec"]["minReplicas"], 2);
    let pdb = find(&docs, "PodDisruptionBudget", "frontend");
    assert_eq!(pdb["apiVersion"], "policy/v1");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    // The backend admits the frontend's pods and the ingress controller only.
    let policy = find(&docs, "NetworkPolicy", "backend");
    let from = &policy["spec"]["ingress"][0]["from"];
    assert_eq!(
        from[0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"],
        "frontend"
    );
    assert_eq!(
        from[1]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "ingress-nginx"
    );
    assert_eq!(from.as_array().map(Vec::len), Some(2));

    let run = project.run(&["render", "--tag", "v2", "-f", "extra.yaml"]);
    let docs = documents(&run.stdout);
    assert!(
        docs.iter()
            .all(|d| d["kind"] != "PodDisruptionBudget" && d["kind"] != "NetworkPolicy")
    );
    let run = project.run(&[
        "render",
        "--tag",
        "v2",
        "--set",
        "services.backend.replicas=3",
    ]);
    assert_eq!(
        find(&documents(&run.stdout), "Deployment", "backend")["spec"]["replicas"],
        3
    );
}

#[test]
fn manifests_pass_the_kubernetes_1_24_schema() {
    let project = Project::new();
    let run = project.run(&[
        "render",
        "--tag",
        "v1",
        "--show-secrets",
        "--set",
        "autoscaling.enabled=true",
        "--set",
        "podDisruptionBudget.enabled=true",
        "--set",
        "networkPolicy.enabled=true",
    ]);
    run.expect_code(0);
    project.write("all.yaml", &run.stdout);
    let masked = project.run(&["render", "--tag", "v1"]);
    project.write("masked.yaml", &masked.stdout);
    let validator = Command::new("kubernetes-validate")
        .args(["--strict", "-k", "1.24.0", "all.yaml", "masked.yaml"])
        .current_dir(project.path())
        .output();
    let Ok(output) = validator else {
        if required_in_ci("kubernetes-validate (pip install kubernetes-validate==1.24.1)") {
            panic!("kubernetes-validate is not installed");
        }
        return;
    };
    let report = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "schema validation failed:\n{report}"
    );
    let passed = report.matches("passed for resource").count();
    assert_eq!(passed, 14 + 8, "every object validated:\n{report}");
}

#[test]
fn image_tags_follow_the_build_inputs() {
    let project = Project::new();
    let image = |run: &crate::support::Run, service: &str| -> String {
        find(&documents(&run.stdout), "Deployment", service)["spec"]["template"]["spec"]
            ["containers"][0]["image"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let first = project.run(&["render"]);
    first.expect_code(0);
    let again = project.run(&["render"]);
    assert_eq!(
        image(&first, "backend"),
        image(&again, "backend"),
        "same inputs, same tag"
    );
    project.write("examples/todo-app/backend/.dockerignore", "*.log\n");
    project.write("examples/todo-app/backend/debug.log", "ignored");
    let ignored = project.run(&["render"]);
    assert_ne!(
        image(&first, "backend"),
        image(&ignored, "backend"),
        ".dockerignore is an input"
    );
    project.write(
        "examples/todo-app/backend/debug.log",
        "still ignored, different text",
    );
    assert_eq!(
        image(&ignored, "backend"),
        image(&project.run(&["render"]), "backend")
    );
    project.write("examples/todo-app/backend/app.txt", "changed");
    let changed = project.run(&["render"]);
    assert_ne!(image(&ignored, "backend"), image(&changed, "backend"));
    assert_eq!(
        image(&first, "frontend"),
        image(&changed, "frontend"),
        "only the changed service"
    );
    let tagged = project.run(&["render", "--tag", "v1.2.0"]);
    assert_eq!(image(&tagged, "backend"), "todo-backend:v1.2.0");
}

#[test]
fn a_config_or_secret_change_changes_the_pod_template() {
    let project = Project::new();
    let checksum = |run: &crate::support::Run| -> String {
        find(&documents(&run.stdout), "Deployment", "backend")["spec"]["template"]["metadata"]
            ["annotations"]["todo-deploy/config-checksum"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let base = project.run(&["render", "--tag", "t"]);
    let config = project.run(&[
        "render",
        "--tag",
        "t",
        "--set",
        "configMap.data.ENVIRONMENT=staging",
    ]);
    let mut command = project.command(&["render", "--tag", "t"]);
    command.env("COHERE_API_KEY", "another-key");
    let secret = crate::support::Run::from(command);
    assert_ne!(checksum(&base), checksum(&config));
    assert_ne!(checksum(&base), checksum(&secret));
    assert_eq!(
        checksum(&base),
        checksum(&project.run(&["render", "--tag", "t"]))
    );
}

#[test]
fn the_default_config_deploys_the_example_app() {
    // From the repository root, as a new user runs it: the real example contexts and Dockerfiles
    // (isolated in a throwaway project all the same).
    let sandbox = Project::new();
    let mut command = sandbox.command(&["render", "--tag", "t"]);
    command.current_dir(crate::support::repo_root());
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let docs = documents(&stdout);
    let backend =
        &find(&docs, "Deployment", "backend")["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(backend["image"], "todo-backend:t");
    assert_eq!(backend["ports"][0]["containerPort"], 8000);
    assert_eq!(backend["readinessProbe"]["httpGet"]["path"], "/api/health");
    assert_eq!(
        backend["livenessProbe"]["httpGet"]["path"],
        "/api/health/live"
    );
    let frontend =
        &find(&docs, "Deployment", "frontend")["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(frontend["image"], "todo-frontend:t");
    assert_eq!(frontend["ports"][0]["containerPort"], 3000);
    assert_eq!(frontend["readinessProbe"]["httpGet"]["path"], "/");
    let config = find(&docs, "ConfigMap", "todo-config");
    assert_eq!(config["data"]["ENVIRONMENT"], "production");
    assert_eq!(config["data"]["apiUrl"], "http://todo.local/api");
}
