//! Least privilege: every command as a ServiceAccount with only the built-in `edit` ClusterRole
//! bound in the release's namespace (no Leases, no Namespace writes); a refusal before any
//! write that lists every missing permission; the Role `todo-deploy rbac` prints lets a
//! ServiceAccount with nothing else deploy, and each of its rules is asked for by name when
//! it is missing. On a real cluster (`TODO_DEPLOY_E2E_KUBECONFIG`) the ServiceAccount and its
//! token come from the same API calls.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DynamicObject, ListParams};
use kube::discovery::ApiResource;
use serde_json::Value;

use crate::support::cluster::{App, Env, patient};
use crate::support::rbac::{Account, Grant};

const LOCK: &str = "todo-deploy.todo";

/// Every object in the namespace (kind/name → resourceVersion), as the admin reads it.
async fn snapshot(env: &Env) -> BTreeMap<String, String> {
    use k8s_openapi::api::{apps::v1 as apps, core::v1 as core, networking::v1 as net};
    let kinds = [
        ApiResource::erase::<core::ConfigMap>(&()),
        ApiResource::erase::<core::Secret>(&()),
        ApiResource::erase::<core::Service>(&()),
        ApiResource::erase::<apps::Deployment>(&()),
        ApiResource::erase::<net::Ingress>(&()),
        ApiResource::erase::<net::NetworkPolicy>(&()),
        ApiResource::erase::<Lease>(&()),
    ];
    let mut all = BTreeMap::new();
    for kind in kinds {
        let api: Api<DynamicObject> =
            Api::namespaced_with(env.client.clone(), &env.namespace, &kind);
        for object in api.list(&ListParams::default()).await.expect("list").items {
            let name = object.metadata.name.unwrap_or_default();
            let version = object.metadata.resource_version.unwrap_or_default();
            all.insert(format!("{}/{name}", kind.kind), version);
        }
    }
    all
}

/// The `status.revision` entries of `history -o json`.
async fn revisions(env: &Env, account: &Account) -> Vec<(u64, String)> {
    let run = env.run_as(account, &["history", "-o", "json"]).await;
    run.expect_code(0);
    let rows: Vec<Value> = serde_json::from_str(&run.stdout).expect("history JSON");
    rows.iter()
        .map(|r| {
            let revision = r["revision"].as_u64().unwrap_or(0);
            (revision, r["status"].as_str().unwrap_or("").to_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_in_one_namespace_is_enough_for_every_command() {
    let env = Env::start("edit").await;
    let dev = env.account("developer", Grant::ClusterRole("edit")).await;
    env.provide(App::Healthy, &[]).await;
    env.provide(App::Healthy, &["--tag", "v2"]).await;

    let up = env.run_as(&dev, &["up", "-v"]).await;
    up.expect_code(0);
    assert!(up.stderr.contains("access check: "), "{}", up.stderr);
    assert!(up.stderr.contains(", 0 missing"), "{}", up.stderr);
    assert!(
        up.stderr
            .contains(&format!("release lock: ConfigMap `{LOCK}`")),
        "{}",
        up.stderr
    );
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &env.namespace);
    assert!(
        leases.get_opt(LOCK).await.expect("read").is_none(),
        "no Lease"
    );
    let namespace = env
        .get_json("/api/v1/namespaces/{ns}")
        .await
        .expect("the namespace");
    assert!(
        namespace
            .pointer("/metadata/labels/app.kubernetes.io~1managed-by")
            .is_none(),
        "the existing namespace is not patched: {namespace}"
    );

    let again = env.run_as(&dev, &["up"]).await;
    again.expect_code(0);
    assert!(
        again.stderr.contains("is up to date (revision 1)"),
        "{}",
        again.stderr
    );

    env.run_as(&dev, &["upgrade", "--tag", "v2"])
        .await
        .expect_code(0);

    env.provide(App::Crashing, &["--tag", "bad"]).await;
    let bad = env.run_as(&dev, &["upgrade", "--tag", "bad"]).await;
    bad.expect_code(1);
    assert!(
        bad.stderr
            .contains("revision 3 failed; rolling back to revision 2"),
        "{}",
        bad.stderr
    );
    assert!(!bad.stderr.contains("forbidden"), "{}", bad.stderr);

    let status = env.run_as(&dev, &["status", "-o", "json"]).await;
    status.expect_code(0);
    let history = revisions(&env, &dev).await;
    let statuses: Vec<&str> = history.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(
        statuses,
        ["superseded", "superseded", "rolled-back", "deployed"],
        "{history:?}"
    );

    let rollback = env.run_as(&dev, &["rollback", "1"]).await;
    rollback.expect_code(0);

    down_and_keep_the_namespace(&env, &dev).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_edit_a_second_run_is_refused_by_the_configmap_lock() {
    let env = Env::start("edit-lock").await;
    let dev = env.account("developer", Grant::ClusterRole("edit")).await;
    env.provide(App::Slow, &[]).await;
    let args = patient(&["up"]);
    let first = env
        .command_as(&dev.kubeconfig, &args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the first run starts");
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    env.eventually("the lock", Duration::from_secs(30), || async {
        maps.get_opt(LOCK).await.ok().flatten().is_some()
    })
    .await;
    let second = env.run_as(&dev, &args).await;
    second.expect_code(5);
    assert!(
        second
            .stderr
            .contains("release `todo` is being changed by "),
        "{}",
        second.stderr
    );
    let pid = first.id().expect("a pid").to_string();
    std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill");
    let output = first.wait_with_output().await.expect("the first run ends");
    assert_eq!(output.status.code(), Some(130));
}

/// The rules of the Role `todo-deploy rbac` prints.
async fn rbac_rules(env: &Env) -> Value {
    let run = env.run(&["rbac", "--service-account", "deployer"]).await;
    run.expect_code(0);
    let documents: Vec<Value> = run
        .stdout
        .split("\n---\n")
        .filter(|d| d.contains("kind: Role\n"))
        .map(|d| serde_saphyr::from_str(d).expect("YAML"))
        .collect();
    documents
        .first()
        .map(|role| role["rules"].clone())
        .expect("a Role")
}

/// `rules` without `verb` on `resource` of `group`, as `(rules, "verb resource.group")`.
fn without(rules: &Value, group: &str, resource: &str, verb: &str) -> Value {
    let mut out = Vec::new();
    for rule in rules.as_array().into_iter().flatten() {
        let groups: Vec<&str> = rule["apiGroups"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let resources: Vec<&str> = rule["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let verbs: Vec<&str> = rule["verbs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if !(groups == [group] && resources.contains(&resource) && verbs.contains(&verb)) {
            out.push(rule.clone());
            continue;
        }
        // Split the rule: the other resources keep every verb, this one loses `verb`.
        let others: Vec<&str> = resources
            .iter()
            .copied()
            .filter(|r| *r != resource)
            .collect();
        if !others.is_empty() {
            out.push(serde_json::json!({"apiGroups": groups, "resources": others, "verbs": verbs}));
        }
        let rest: Vec<&str> = verbs.iter().copied().filter(|v| *v != verb).collect();
        if !rest.is_empty() {
            out.push(
                serde_json::json!({"apiGroups": groups, "resources": [resource], "verbs": rest}),
            );
        }
    }
    Value::Array(out)
}

/// Every (group, resource, verb) the rules grant.
fn grants(rules: &Value) -> Vec<(String, String, String)> {
    let mut all = Vec::new();
    for rule in rules.as_array().into_iter().flatten() {
        let group = rule["apiGroups"][0].as_str().unwrap_or("").to_owned();
        for resource in rule["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            for verb in rule["verbs"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                all.push((group.clone(), resource.to_owned(), verb.to_owned()));
            }
        }
    }
    all
}

fn named(group: &str, resource: &str, verb: &str) -> String {
    match group {
        "" => format!("{verb} {resource}"),
        group => format!("{verb} {resource}.{group}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lacking_create_deployments_is_refused_before_any_write() {
    let env = Env::start("no-create").await;
    let rules = rbac_rules(&env).await;
    let fewer = without(
        &without(&rules, "apps", "deployments", "create"),
        "networking.k8s.io",
        "ingresses",
        "patch",
    );
    let user = env.account("deployer", Grant::Rules(fewer)).await;
    env.provide(App::Healthy, &[]).await;
    let before = snapshot(&env).await;
    let run = env.run_as(&user, &["up"]).await;
    run.expect_code(1);
    let expected = format!(
        "missing: create deployments.apps, patch ingresses.networking.k8s.io in namespace {}",
        env.namespace
    );
    assert!(run.stderr.contains(&expected), "{}", run.stderr);
    assert!(
        run.stderr.contains("todo-deploy rbac --namespace"),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stderr.matches("missing:").count(),
        1,
        "one line lists them all: {}",
        run.stderr
    );
    assert!(!run.stderr.contains("Status {"), "{}", run.stderr);
    assert_eq!(snapshot(&env).await, before, "the cluster is unchanged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rbac_role_is_enough_and_each_rule_is_asked_for_by_name() {
    let env = Env::start("rbac-role").await;
    let rules = rbac_rules(&env).await;
    let user = env.account("deployer", Grant::Nothing).await;
    env.provide(App::Healthy, &[]).await;

    // With no rights at all, status and history say so in one line each.
    for command in ["status", "history"] {
        let run = env.run_as(&user, &[command]).await;
        run.expect_code(1);
        assert!(
            run.stderr
                .contains("is forbidden: User \"system:serviceaccount:"),
            "{}",
            run.stderr
        );
        assert_eq!(run.stderr.matches("forbidden").count(), 1, "{}", run.stderr);
        assert!(!run.stderr.contains("Status {"), "{}", run.stderr);
    }

    // Every rule missing alone: `up` names it and changes nothing.
    let before = snapshot(&env).await;
    let all = grants(&rules);
    assert!(all.len() > 30, "{all:?}");
    for (group, resource, verb) in &all {
        env.grant(
            &user.name,
            Grant::Rules(without(&rules, group, resource, verb)),
        )
        .await;
        let run = env.run_as(&user, &["up"]).await;
        let name = named(group, resource, verb);
        assert_eq!(run.code, 1, "without {name}: {}", run.stderr);
        assert!(
            run.stderr
                .contains(&format!("missing: {name} in namespace")),
            "without {name}: {}",
            run.stderr
        );
    }
    assert_eq!(
        snapshot(&env).await,
        before,
        "no refused run changed anything"
    );

    // The whole Role: a ServiceAccount with nothing else deploys, looks and removes.
    env.grant(&user.name, Grant::Rules(rules)).await;
    env.run_as(&user, &["up"]).await.expect_code(0);
    env.run_as(&user, &["status"]).await.expect_code(0);
    assert_eq!(revisions(&env, &user).await, [(1, "deployed".to_owned())]);
    env.run_as(&user, &["down"]).await.expect_code(0);
    assert!(env.deployment("backend").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_access_reviews_the_refusing_call_says_it_once() {
    let env = Env::start("no-review").await;
    let Some(standin) = env.standin_only("taking SelfSubjectAccessReview away from everyone")
    else {
        return;
    };
    let rules = rbac_rules(&env).await;
    let fewer = without(&rules, "apps", "deployments", "create");
    let user = env.account("deployer", Grant::Rules(fewer)).await;
    env.provide(App::Healthy, &[]).await;
    let path = "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/system:basic-user";
    let bindings =
        k8s_standin::resources::find("rbac.authorization.k8s.io", "v1", "clusterrolebindings")
            .expect("served");
    assert!(standin.get(path).is_some());
    standin
        .api()
        .delete(
            bindings,
            "",
            "system:basic-user",
            &k8s_standin::DeleteOpts::default(),
        )
        .expect("delete the binding");
    let run = env.run_as(&user, &["up", "-v"]).await;
    run.expect_code(1);
    assert!(
        run.stderr.contains("access check skipped"),
        "{}",
        run.stderr
    );
    // The real patch handler's words for a create it refuses: RBAC gives no reason.
    let denied = "caused by: deployments.apps \"backend\" is forbidden:  (403 Forbidden)\n";
    assert!(
        run.stderr
            .contains("error: cannot apply Deployment/backend\n"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(denied), "{}", run.stderr);
    assert_eq!(
        run.stderr.matches("is forbidden").count(),
        2,
        "the -v note and the cause: {}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("these credentials may not apply Deployment/backend"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("Status {"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_right_at_all_in_a_missing_namespace_is_said_in_one_line() {
    let env = Env::start("no-ns").await;
    let user = env.account("deployer", Grant::ClusterRole("edit")).await;
    env.provide(App::Healthy, &[]).await;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(env.client.clone());
    namespaces
        .delete(&env.namespace, &kube::api::DeleteParams::default())
        .await
        .expect("delete the namespace");
    env.eventually("the namespace to go", Duration::from_secs(30), || async {
        env.get_json("/api/v1/namespaces/{ns}").await.is_none()
    })
    .await;
    let run = env.run_as(&user, &["up"]).await;
    run.expect_code(1);
    let all = format!(
        "missing: all 50 permissions `up` needs in namespace {}: none is granted there\n",
        env.namespace
    );
    assert!(run.stderr.contains(&all), "{}", run.stderr);
    assert!(
        run.stderr.contains("check the namespace exists"),
        "{}",
        run.stderr
    );
    assert!(env.get_json("/api/v1/namespaces/{ns}").await.is_none());
}

/// The optional kinds, so that a lifecycle applies and prunes every kind a release may hold.
const EVERY_KIND: [&str; 6] = [
    "--set",
    "autoscaling.enabled=true",
    "--set",
    "podDisruptionBudget.enabled=true",
    "--set",
    "networkPolicy.enabled=true",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lifecycle_uses_every_rule_of_the_rbac_role_and_nothing_else() {
    let env = Env::start("rbac-audit").await;
    let Some(standin) = env.standin_only("reading the API server's audit of RBAC decisions") else {
        return;
    };
    let rules = rbac_rules(&env).await;
    let user = env.account("deployer", Grant::Rules(rules.clone())).await;
    // A lock left by a killed run, long expired: taken over (`update`), as renewal would.
    let stale: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": LOCK},
        "data": {"holderIdentity": "gone@nowhere pid 1", "leaseDurationSeconds": "30",
            "acquireTime": "2020-01-01T00:00:00Z", "renewTime": "2020-01-01T00:00:00Z"}
    }))
    .expect("a ConfigMap");
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    maps.create(&kube::api::PostParams::default(), &stale)
        .await
        .expect("the stale lock");

    let mut every = vec!["up"];
    every.extend(EVERY_KIND);
    env.provide(App::Healthy, &every[1..]).await;
    env.run_as(&user, &every).await.expect_code(0);
    let mut bad = vec!["upgrade", "--tag", "bad"];
    bad.extend(EVERY_KIND);
    env.provide(App::Crashing, &bad[1..]).await;
    let failed = env.run_as(&user, &bad).await;
    failed.expect_code(1);
    assert!(
        failed.stderr.contains("rolling back to revision 1"),
        "{}",
        failed.stderr
    );
    // Without the optional kinds: they are pruned.
    env.provide(App::Healthy, &[]).await;
    env.run_as(&user, &["up"]).await.expect_code(0);
    env.run_as(&user, &["status"]).await.expect_code(0);
    env.run_as(&user, &["history"]).await.expect_code(0);
    env.run_as(&user, &["logs", "backend"]).await.expect_code(0);
    env.run_as(&user, &["down", "--purge"]).await.expect_code(0);

    let who = format!("system:serviceaccount:{}:deployer", env.namespace);
    let (used, refused) = audited(standin, &who);
    // Refused and expected: the Lease (the lock falls back to a ConfigMap), and the cluster-wide
    // lists of `up`'s capacity check (nodes, and every pod on them), which a Role cannot grant and
    // which the check then leaves to the scheduler.
    let expected = |r: &String| r.ends_with(" leases") || r == "list nodes" || r == "list pods";
    assert!(
        refused.iter().all(expected),
        "only the Lease and the capacity check's cluster-wide lists are refused: {refused:?}"
    );
    let granted: std::collections::BTreeSet<(String, String, String)> =
        grants(&rules).into_iter().collect();
    let unused: Vec<String> = granted
        .difference(&used)
        .map(|(g, r, v)| named(g, r, v))
        .collect();
    let beyond: Vec<String> = used
        .difference(&granted)
        .map(|(g, r, v)| named(g, r, v))
        .collect();
    assert!(unused.is_empty(), "granted but never used: {unused:?}");
    assert!(beyond.is_empty(), "used but not granted: {beyond:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_rollback_and_dev_are_refused_before_any_write_too() {
    let env = Env::start("refusals").await;
    let rules = rbac_rules(&env).await;
    let user = env.account("deployer", Grant::Rules(rules.clone())).await;
    env.provide(App::Healthy, &[]).await;
    env.provide(App::Healthy, &["--tag", "v2"]).await;
    env.run_as(&user, &["up"]).await.expect_code(0);
    env.run_as(&user, &["upgrade", "--tag", "v2"])
        .await
        .expect_code(0);
    let before = snapshot(&env).await;
    let cases = [
        (vec!["down"], ("apps", "deployments", "delete")),
        (vec!["rollback"], ("apps", "deployments", "patch")),
        (vec!["dev", "--no-logs"], ("", "pods/log", "get")),
    ];
    for (args, (group, resource, verb)) in cases {
        env.grant(
            &user.name,
            Grant::Rules(without(&rules, group, resource, verb)),
        )
        .await;
        let run = env.run_as(&user, &args).await;
        let name = named(group, resource, verb);
        assert_eq!(run.code, 1, "{args:?} without {name}: {}", run.stderr);
        let missing = format!("missing: {name} in namespace {}\n", env.namespace);
        assert!(run.stderr.contains(&missing), "{args:?}: {}", run.stderr);
        assert_eq!(snapshot(&env).await, before, "{args:?} changed nothing");
    }
}

/// What `who` was allowed to do, as (group, resource[/subresource], verb), and what it was
/// refused, by the stand-in's audit (its access reviews left out).
fn audited(
    standin: &k8s_standin::StandIn,
    who: &str,
) -> (
    std::collections::BTreeSet<(String, String, String)>,
    Vec<String>,
) {
    let decisions: Vec<_> = standin
        .audit()
        .into_iter()
        .filter(|d| d.user == who && d.attributes.resource != "selfsubjectaccessreviews")
        .collect();
    let refused = decisions
        .iter()
        .filter(|d| !d.allowed)
        .map(|d| format!("{} {}", d.attributes.verb, d.attributes.resource))
        .collect();
    let used = decisions
        .iter()
        .filter(|d| d.allowed)
        .map(|d| {
            let a = &d.attributes;
            let resource = match a.subresource.as_str() {
                "" => a.resource.clone(),
                sub => format!("{}/{sub}", a.resource),
            };
            (a.group.clone(), resource, a.verb.clone())
        })
        .collect();
    (used, refused)
}

/// `down` as `dev` (`edit`): everything goes but the namespace, which `edit` may not delete.
async fn down_and_keep_the_namespace(env: &Env, dev: &Account) {
    let down = env.run_as(dev, &["down"]).await;
    down.expect_code(0);
    assert!(env.deployment("backend").await.is_none());
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    assert!(
        maps.get_opt(LOCK).await.expect("read").is_none(),
        "the lock is gone"
    );

    let namespace = env.run_as(dev, &["down", "--delete-namespace"]).await;
    namespace.expect_code(1);
    assert!(
        namespace
            .stderr
            .contains("these credentials may not delete the namespace"),
        "{}",
        namespace.stderr
    );
}

#[test]
fn the_rbac_output_is_a_role_and_its_binding() {
    let project = crate::support::Project::new();
    let run = project.run(&["rbac", "--namespace", "todo", "--user", "alice"]);
    run.expect_code(0);
    insta::assert_snapshot!("rbac_for_a_user", run.stdout);
    let account = project.run(&["rbac", "-n", "team", "--service-account", "ci"]);
    account.expect_code(0);
    assert!(
        account
            .stdout
            .contains("- kind: ServiceAccount\n  name: ci\n  namespace: team\n"),
        "{}",
        account.stdout
    );
    let both = project.run(&["rbac", "--user", "a", "--service-account", "b"]);
    both.expect_code(2);

    project.write("rbac.yaml", &run.stdout);
    let validator = std::process::Command::new("kubernetes-validate")
        .args(["--strict", "-k", "1.24.0", "rbac.yaml"])
        .current_dir(project.path())
        .output();
    let Ok(output) = validator else {
        let what = "kubernetes-validate (pip install kubernetes-validate==1.24.1)";
        assert!(
            !crate::support::required_in_ci(what),
            "{what} is not installed"
        );
        return;
    };
    let report = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{report}");
    assert_eq!(report.matches("passed for resource").count(), 2, "{report}");
}
