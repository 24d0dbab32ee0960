//! Measurements, not tests: `cargo test --test e2e -- --ignored measure --nocapture` prints them.
//! `scripts/bench` runs the fuller comparison.

use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};

use crate::support::cluster::{App, Env};

fn complete(d: &Deployment) -> bool {
    let status = d.status.clone().unwrap_or_default();
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    status.observed_generation >= d.metadata.generation
        && status.updated_replicas == Some(desired)
        && status.available_replicas == Some(desired)
        && status.replicas == Some(desired)
}

/// The delay between the server showing the last Deployment available and `up` returning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement"]
async fn measure_readiness_delay_and_no_change_up() {
    let mut delays = Vec::new();
    let mut no_change = Vec::new();
    let mut unchecked = Vec::new();
    for round in 0..5 {
        let env = Env::start(&format!("measure-{round}")).await;
        env.provide(App::Healthy, &[]).await;
        let api: Api<Deployment> = Api::namespaced(env.client.clone(), &env.namespace);
        let watch = async {
            let mut done = std::collections::BTreeMap::new();
            let mut stream = watcher(api.clone(), watcher::Config::default())
                .applied_objects()
                .boxed();
            while let Some(Ok(d)) = stream.next().await {
                done.insert(d.metadata.name.clone().unwrap_or_default(), complete(&d));
                if done.len() == 2 && done.values().all(|c| *c) {
                    return Instant::now();
                }
            }
            Instant::now()
        };
        let child = async {
            let output = env.command(&["up"]).output().await.unwrap();
            assert_eq!(
                output.status.code(),
                Some(0),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            Instant::now()
        };
        let (available, exited) = tokio::join!(watch, child);
        delays.push(exited.saturating_duration_since(available));
        // With and without the checks `up` runs first (`doctor`'s capacity check), in turn.
        for skip in [round % 2 == 0, round % 2 != 0] {
            let args: &[&str] = if skip {
                &["up", "--skip-checks"]
            } else {
                &["up"]
            };
            let started = Instant::now();
            env.run(args).await.expect_code(0);
            match skip {
                true => unchecked.push(started.elapsed()),
                false => no_change.push(started.elapsed()),
            }
        }
    }
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    println!(
        "readiness delay (server available -> up exited), median of 5: {} ms",
        median(delays).as_millis()
    );
    println!(
        "no-change `up`, start to exit, median of 5: {} ms",
        median(no_change).as_millis()
    );
    println!(
        "no-change `up --skip-checks` (as before the checks), median of 5: {} ms",
        median(unchecked).as_millis()
    );
}
