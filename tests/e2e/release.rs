//! Releases: revisions and history, rollback, the atomic upgrade, the lock, and `status`.

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Duration;

use base64::Engine;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ListParams, ObjectMeta, PostParams};
use serde_json::Value;

use crate::support::SECRETS;
use crate::support::cluster::{App, Env, patient};

async fn history(env: &Env) -> Vec<Value> {
    let run = env.run(&["history", "-o", "json"]).await;
    run.expect_code(0);
    serde_json::from_str(&run.stdout).expect("history JSON")
}

fn statuses(history: &[Value]) -> Vec<(u64, String)> {
    history
        .iter()
        .map(|r| {
            (
                r["revision"].as_u64().unwrap(),
                r["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn backend_image(env: &Env) -> String {
    let deployment = env.deployment("backend").await.expect("backend");
    deployment.spec.unwrap().template.spec.unwrap().containers[0]
        .image
        .clone()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_upgrades_then_history_and_rollback_to_the_first() {
    let env = Env::start("history").await;
    env.provide(App::Healthy, &[]).await;
    let first = backend_image_of(&env, &[]).await;
    for tag in ["v2", "v3", "v4"] {
        env.provide(App::Healthy, &["--tag", tag]).await;
    }
    env.run(&["up"]).await.expect_code(0);
    for tag in ["v2", "v3", "v4"] {
        env.run(&["upgrade", "--tag", tag]).await.expect_code(0);
    }
    let records = history(&env).await;
    assert_eq!(
        statuses(&records),
        [
            (1, "superseded".into()),
            (2, "superseded".into()),
            (3, "superseded".into()),
            (4, "deployed".into())
        ]
    );
    assert_eq!(records[3]["images"][0]["reference"], "todo-e2e-backend:v4");
    let table = env.run(&["history"]).await;
    assert!(
        table.stdout.starts_with("REVISION  UPDATED"),
        "{}",
        table.stdout
    );
    assert_eq!(table.stdout.lines().count(), 5, "{}", table.stdout);

    let rollback = env.run(&["rollback", "1"]).await;
    rollback.expect_code(0);
    assert!(
        rollback
            .stderr
            .contains("rolled back to revision 1 (recorded as revision 5)"),
        "{}",
        rollback.stderr
    );
    assert_eq!(backend_image(&env).await, first);
    let records = history(&env).await;
    assert_eq!(records[4]["description"], "Rollback to 1");
    assert_eq!(records[4]["status"], "deployed");
    assert_eq!(records[3]["status"], "superseded");

    let missing = env.run(&["rollback", "9"]).await;
    missing.expect_code(2);
    assert!(
        missing
            .stderr
            .contains("revision 9 is not in the history (it has 1, 2, 3, 4, 5)"),
        "{}",
        missing.stderr
    );
}

async fn backend_image_of(env: &Env, extra: &[&str]) -> String {
    env.images(extra)
        .await
        .into_iter()
        .find(|i| i.starts_with("todo-e2e-backend"))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_upgrade_rolls_back_and_keeps_serving() {
    let env = Env::start("atomic").await;
    env.provide(App::Healthy, &[]).await;
    env.run(&["up"]).await.expect_code(0);
    let good = backend_image(&env).await;
    env.provide(App::Crashing, &["--tag", "bad"]).await;
    let run = env.run(&["upgrade", "--tag", "bad"]).await;
    run.expect_code(1);
    assert!(
        run.stderr.contains("keeps crashing (CrashLoopBackOff"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("revision 2 failed; rolling back to revision 1"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("rolled back to revision 1 (recorded as revision 3); it is serving"),
        "{}",
        run.stderr
    );
    assert_eq!(backend_image(&env).await, good);
    assert_eq!(
        statuses(&history(&env).await),
        [
            (1, "superseded".into()),
            (2, "rolled-back".into()),
            (3, "deployed".into())
        ]
    );
    if let Some(standin) = env.standin() {
        // No moment without a ready backend pod once the first rollout was done.
        let mut ready: BTreeMap<String, bool> = BTreeMap::new();
        let mut serving = false;
        for record in standin
            .pod_history()
            .iter()
            .filter(|r| r.deployment.as_deref() == Some("backend"))
        {
            ready.insert(
                record.name.clone(),
                record.ready && record.phase != "Deleted",
            );
            let count = ready.values().filter(|r| **r).count();
            serving |= count == 2;
            assert!(
                !serving || count >= 1,
                "no ready backend pod at {}",
                record.time
            );
        }
        assert!(serving);
    }
    let status = env.run(&["status"]).await;
    status.expect_code(0);

    // With --no-rollback the failed revision stays, for debugging.
    let kept = env.run(&["upgrade", "--tag", "bad", "--no-rollback"]).await;
    kept.expect_code(1);
    assert!(
        kept.stderr.contains("left in place (`--no-rollback`)"),
        "{}",
        kept.stderr
    );
    assert_eq!(backend_image(&env).await, "todo-e2e-backend:bad");
    let degraded = env.run(&["status", "-o", "json"]).await;
    degraded.expect_code(3);
    let report: Value = serde_json::from_str(&degraded.stdout).unwrap();
    assert_eq!(report["health"], "degraded");
    assert_eq!(report["revision"]["number"], 4);
    assert_eq!(report["revision"]["status"], "failed");
    let reasons: Vec<&str> = report["pods"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["reason"].as_str())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("CrashLoopBackOff") || r.contains("CrashLoop")),
        "{reasons:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_is_refused_while_the_first_holds_the_lock() {
    let env = Env::start("lock").await;
    env.provide(App::Slow, &[]).await;
    let patient = [
        "--set",
        "services.backend.probes.readiness.failureThreshold=1000",
        "--set",
        "services.frontend.probes.readiness.failureThreshold=1000",
        "--set",
        "services.backend.probes.liveness.initialDelaySeconds=600",
        "--set",
        "services.frontend.probes.liveness.initialDelaySeconds=600",
    ];
    let mut args = vec!["up"];
    args.extend(patient);
    let first = env
        .command(&args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &env.namespace);
    env.eventually("the lock", Duration::from_secs(30), || async {
        leases
            .get_opt("todo-deploy.todo")
            .await
            .ok()
            .flatten()
            .is_some()
    })
    .await;
    let second = env.run(&args).await;
    second.expect_code(5);
    assert!(
        second
            .stderr
            .contains("release `todo` is being changed by "),
        "{}",
        second.stderr
    );
    assert!(
        second
            .stderr
            .contains(&format!("pid {}", first.id().unwrap())),
        "{}",
        second.stderr
    );
    assert!(
        second.stderr.contains("wait for that run to finish"),
        "{}",
        second.stderr
    );
    std::process::Command::new("kill")
        .args(["-INT", &first.id().unwrap().to_string()])
        .status()
        .unwrap();
    let output = first.wait_with_output().await.unwrap();
    assert_eq!(output.status.code(), Some(130));
    assert!(
        leases.get_opt("todo-deploy.todo").await.unwrap().is_none(),
        "the lock is released"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_lock_expires() {
    let env = Env::start("stale-lock").await;
    env.provide(App::Healthy, &[]).await;
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(env.namespace.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();
    let an_hour_ago = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(3600);
    let stale = Lease {
        metadata: ObjectMeta {
            name: Some("todo-deploy.todo".into()),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some("ghost@nowhere pid 1".into()),
            lease_duration_seconds: Some(30),
            acquire_time: Some(MicroTime(an_hour_ago)),
            renew_time: Some(MicroTime(an_hour_ago)),
            ..Default::default()
        }),
    };
    Api::<Lease>::namespaced(env.client.clone(), &env.namespace)
        .create(&PostParams::default(), &stale)
        .await
        .unwrap();
    let run = env.run(&["up"]).await;
    run.expect_code(0);
    assert!(
        run.stderr
            .contains("taking over the expired lock of ghost@nowhere pid 1"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_of_an_absent_and_a_healthy_release() {
    let env = Env::start("status").await;
    let absent = env.run(&["status", "-o", "json"]).await;
    absent.expect_code(4);
    let report: Value = serde_json::from_str(&absent.stdout).unwrap();
    assert_eq!(report["health"], "not-deployed");
    let table = env.run(&["status"]).await;
    table.expect_code(4);
    assert!(
        table
            .stdout
            .contains("nothing is deployed; `todo-deploy up` installs it"),
        "{}",
        table.stdout
    );

    env.provide(App::Healthy, &[]).await;
    env.run(&["up"]).await.expect_code(0);
    let healthy = env.run(&["status", "-o", "json"]).await;
    healthy.expect_code(0);
    let report: Value = serde_json::from_str(&healthy.stdout).unwrap();
    assert_eq!(report["health"], "healthy");
    assert_eq!(report["release"], "todo");
    assert_eq!(report["namespace"], env.namespace);
    assert_eq!(report["revision"]["number"], 1);
    assert_eq!(report["revision"]["status"], "deployed");
    let deployments = report["deployments"].as_array().unwrap();
    assert_eq!(deployments.len(), 2);
    assert!(
        deployments
            .iter()
            .all(|d| d["rollout"] == "complete" && d["available"] == 2)
    );
    let pods = report["pods"].as_array().unwrap();
    assert_eq!(
        pods.iter().filter(|p| p["ready"] == "1/1").count(),
        4,
        "{pods:?}"
    );
    assert_eq!(report["services"].as_array().unwrap().len(), 2);
    assert_eq!(report["ingress"]["url"], "http://todo.local");
    let table = env.run(&["status"]).await;
    table.expect_code(0);
    assert!(
        table.stdout.contains("revision 1 deployed at"),
        "{}",
        table.stdout
    );
    assert!(
        table.stdout.contains("DEPLOYMENT  IMAGE"),
        "{}",
        table.stdout
    );
    assert!(
        table.stdout.contains("minikube ip) todo.local"),
        "{}",
        table.stdout
    );
    let yaml = env.run(&["status", "-o", "yaml"]).await;
    yaml.expect_code(0);
    assert!(yaml.stdout.contains("health: healthy"), "{}", yaml.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_value_in_records_history_or_status() {
    let env = Env::start("record-secrets").await;
    env.provide(App::Healthy, &[]).await;
    env.provide(App::Healthy, &["--tag", "v2"]).await;
    env.run(&["up"]).await.expect_code(0);
    env.run(&["upgrade", "--tag", "v2"]).await.expect_code(0);
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.namespace);
    let records = secrets
        .list(&ListParams::default().labels("todo-deploy.io/owner=todo-deploy"))
        .await
        .unwrap()
        .items;
    assert_eq!(records.len(), 2);
    let mut texts = Vec::new();
    for record in records {
        assert_eq!(record.type_.as_deref(), Some("todo-deploy.io/release.v1"));
        let gz = &record.data.unwrap()["release"].0;
        let mut json = String::new();
        flate2::read::GzDecoder::new(gz.as_slice())
            .read_to_string(&mut json)
            .unwrap();
        assert!(
            json.contains("\"kind\":\"Secret\""),
            "the record has the Secret's shape"
        );
        assert!(json.contains("sha256:"), "with digests for values");
        texts.push(json);
    }
    texts.push(env.run(&["history", "-o", "json"]).await.all_output());
    texts.push(env.run(&["status", "-o", "json"]).await.all_output());
    texts.push(env.run(&["status"]).await.all_output());
    for text in texts {
        for (key, value) in SECRETS {
            let encoded = base64::engine::general_purpose::STANDARD.encode(value);
            assert!(
                !text.contains(value) && !text.contains(&encoded),
                "{key} leaked:\n{text}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_purge_removes_the_history() {
    let env = Env::start("purge").await;
    env.provide(App::Healthy, &[]).await;
    env.run(&["up"]).await.expect_code(0);
    env.run(&["down"]).await.expect_code(0);
    assert_eq!(history(&env).await.len(), 1, "down keeps the history");
    let purge = env.run(&["down", "--purge"]).await;
    purge.expect_code(0);
    assert!(
        purge
            .stderr
            .contains("release history purged (1 revisions)"),
        "{}",
        purge.stderr
    );
    assert!(history(&env).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_max_keeps_the_newest_revisions() {
    let env = Env::start("history-max").await;
    env.provide(App::Healthy, &[]).await;
    for tag in ["v2", "v3"] {
        env.provide(App::Healthy, &["--tag", tag]).await;
    }
    env.run(&["up"]).await.expect_code(0);
    env.run(&["upgrade", "--tag", "v2", "--history-max", "2"])
        .await
        .expect_code(0);
    env.run(&["upgrade", "--tag", "v3", "--history-max", "2"])
        .await
        .expect_code(0);
    assert_eq!(
        statuses(&history(&env).await),
        [(2, "superseded".into()), (3, "deployed".into())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_upgrade_takes_nothing_away() {
    let env = Env::start("nothing-away").await;
    env.provide(App::Healthy, &[]).await;
    env.run(&["up", "--set", "podDisruptionBudget.enabled=true"])
        .await
        .expect_code(0);
    // The failing upgrade drops the PodDisruptionBudget and changes a secret value.
    env.provide(App::Crashing, &["--tag", "bad"]).await;
    let run = env
        .run_with(&["upgrade", "--tag", "bad"], |command| {
            command.env("COHERE_API_KEY", "a-replaced-planted-key-77");
        })
        .await;
    run.expect_code(1);
    assert!(run.stderr.contains("it is serving"), "{}", run.stderr);
    assert!(
        !run.stderr.contains("PodDisruptionBudget/backend pruned"),
        "{}",
        run.stderr
    );
    assert!(
        env.get_json("/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets/backend")
            .await
            .is_some(),
        "nothing is pruned before a rollout succeeds"
    );
    let secret: Secret = Api::namespaced(env.client.clone(), &env.namespace)
        .get("todo-secrets")
        .await
        .unwrap();
    let key = &secret.data.unwrap()["COHERE_API_KEY"];
    assert_eq!(key.0, SECRETS[2].1.as_bytes(), "the previous value is back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_logs_never_show_a_secret_value() {
    let env = Env::start("crash-secret").await;
    let Some(standin) = env.standin_only("a crashing app that logs its configuration") else {
        return;
    };
    let leaked = format!("connecting to {} failed", SECRETS[0].1);
    for image in env.images(&[]).await {
        standin.node_images().add_image(
            &image,
            k8s_standin::Behavior::crash(1, &["starting", &leaked]),
        );
    }
    let run = env.run(&["up"]).await;
    run.expect_code(1);
    assert!(
        run.stderr.contains("| connecting to *** failed"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains(SECRETS[0].1), "{}", run.stderr);
}

/// Real-cluster finding 3: after `down` (history kept) the last revision is `uninstalled`,
/// `status` says nothing is deployed (exit 4) and names it, and `up` installs a new revision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_marks_the_revision_uninstalled_and_up_installs_again() {
    let env = Env::start("uninstalled").await;
    env.provide(App::Healthy, &[]).await;
    env.run(&["up"]).await.expect_code(0);
    env.run(&["down"]).await.expect_code(0);
    let status = env.run(&["status"]).await;
    status.expect_code(4);
    assert!(
        status.stdout.contains("revision 1 uninstalled at "),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains("nothing is deployed"),
        "{}",
        status.stdout
    );
    let json = env.run(&["status", "-o", "json"]).await;
    json.expect_code(4);
    let report: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(report["health"], "not-deployed");
    assert_eq!(report["revision"]["status"], "uninstalled");
    assert_eq!(
        statuses(&history(&env).await),
        [(1, "uninstalled".to_owned())]
    );

    env.run(&["up"]).await.expect_code(0);
    let after = history(&env).await;
    assert_eq!(
        statuses(&after),
        [(1, "uninstalled".to_owned()), (2, "deployed".to_owned())]
    );
    assert_eq!(after[1]["description"], "Install", "{after:?}");
    env.run(&["status"]).await.expect_code(0);
}

/// Sets the release lock's renewal an hour back, as if its holder had died long ago.
async fn expire_lock(env: &Env) {
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &env.namespace);
    let mut lease = leases.get("todo-deploy.todo").await.expect("the lock");
    let an_hour_ago = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(3600);
    let spec = lease.spec.get_or_insert_default();
    spec.renew_time = Some(MicroTime(an_hour_ago));
    spec.acquire_time = Some(MicroTime(an_hour_ago));
    leases
        .replace("todo-deploy.todo", &PostParams::default(), &lease)
        .await
        .expect("expire the lock");
}

/// Real-cluster finding 9: a killed run leaves its revision pending; once its lock has expired
/// nobody owns it: `history` shows it failed (abandoned), and the next run marks it so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_runs_pending_revision_is_abandoned() {
    let env = Env::start("abandoned").await;
    env.provide(App::Healthy, &[]).await;
    env.run(&["up"]).await.expect_code(0);
    env.provide(App::Slow, &["--tag", "slow"]).await;
    let args = patient(&["upgrade", "--tag", "slow"]);
    let mut killed = env
        .command(&args)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    env.eventually("revision 2 pending", Duration::from_secs(60), || async {
        env.get_json("/api/v1/namespaces/{ns}/secrets/todo-deploy.todo.v2")
            .await
            .is_some()
    })
    .await;
    killed.kill().await.expect("SIGKILL");
    killed.wait().await.unwrap();
    // Its lock is still live: a run may still own the revision.
    assert_eq!(statuses(&history(&env).await)[1], (2, "pending".to_owned()));
    expire_lock(&env).await;
    let shown = history(&env).await;
    assert_eq!(statuses(&shown)[1], (2, "failed".to_owned()));
    assert!(
        shown[1]["description"]
            .as_str()
            .unwrap()
            .contains("abandoned: the run holding the lock stopped"),
        "{shown:?}"
    );

    env.provide(App::Healthy, &[]).await;
    let next = env.run(&["up"]).await;
    next.expect_code(0);
    assert!(
        next.stderr
            .contains("revision 2 was left pending by a run that stopped; it is marked failed"),
        "{}",
        next.stderr
    );
    let stored = statuses(&history(&env).await);
    assert_eq!(
        stored,
        [
            (1, "superseded".to_owned()),
            (2, "failed".to_owned()),
            (3, "deployed".to_owned())
        ]
    );
}
