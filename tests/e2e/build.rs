//! The build stage against the real Docker engine, through the library (`build::build_all`) with
//! the plan `up` makes: parallel builds, content tags that skip unchanged images, `.dockerignore`
//! checked against the files in the image, a Dockerfile outside its context with args, target
//! and labels, the error of a failing step, and cancellation.
//!
//! Without an engine these tests skip on a laptop and fail in CI (`CI` set).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use todo_deploy::build::{
    BuildError, BuildEvent, BuildOptions, BuiltImage, INPUTS_LABEL, Outcome, build_all,
};
use todo_deploy::outcome::Diagnose;

use crate::support::docker::{CountingProxy, Scenario, engine, files_in_image, fixtures};

fn outcomes(built: &[BuiltImage]) -> Vec<(&str, Outcome)> {
    built
        .iter()
        .map(|image| (image.service.as_str(), image.outcome))
        .collect()
}

/// The engine's own socket, for the proxy to forward to.
fn engine_socket() -> PathBuf {
    match std::env::var("DOCKER_HOST") {
        Ok(host) if host.starts_with("unix://") => PathBuf::from(&host["unix://".len()..]),
        _ => PathBuf::from("/var/run/docker.sock"),
    }
}

fn builds(requests: &[String]) -> Vec<&String> {
    requests
        .iter()
        .filter(|request| request.starts_with("POST /build"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_images_build_at_the_same_time() {
    let Some(docker) = engine().await else { return };
    let mut scenario = Scenario::new("parallel", "httpd");
    let plan = scenario.project.plan(None);

    let built = scenario
        .build(&docker, &plan.services, &BuildOptions::default())
        .await
        .expect("both build");

    assert_eq!(
        outcomes(&built),
        [("backend", Outcome::Built), ("frontend", Outcome::Built)]
    );
    let events = scenario.take();
    let position = |wanted: &dyn Fn(&BuildEvent) -> bool| {
        events.iter().position(wanted).expect("the event was sent")
    };
    let first_finished = position(&|e| matches!(e, BuildEvent::Finished { .. }));
    for service in ["backend", "frontend"] {
        let started =
            position(&|e| matches!(e, BuildEvent::Started { service: s, .. } if s == service));
        assert!(
            started < first_finished,
            "both builds run at once: {events:#?}"
        );
        // Six instructions, the scenario's label, and the labels the builder adds last.
        assert!(events.iter().any(|e| matches!(
            e,
            BuildEvent::Step { service: s, step: 4, total: 8, instruction }
                if s == service && instruction.starts_with("RUN")
        )));
    }
    for (image, service) in built.iter().zip(&plan.services) {
        assert_eq!(image.image, service.image);
        assert_eq!(
            service.image.tag,
            image.input_digest[..12],
            "the content tag"
        );
        let inspected = docker
            .inspect_image(&image.image.to_string())
            .await
            .expect("tagged");
        assert_eq!(inspected.id.as_deref(), Some(image.id.as_str()));
        let labels = inspected.config.and_then(|c| c.labels).unwrap_or_default();
        assert_eq!(labels.get(INPUTS_LABEL), Some(&image.input_digest));
    }
    let files = files_in_image(&docker, &built[1].image.to_string()).await;
    assert_eq!(files["/www/index.html"], b"<h1>frontend</h1>\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_inputs_make_no_build_call() {
    let Some(docker) = engine().await else { return };
    let mut scenario = Scenario::new("unchanged", "httpd");
    let options = BuildOptions::default();
    let plan = scenario.project.plan(None);
    let first = scenario
        .build(&docker, &plan.services, &options)
        .await
        .expect("the first build");
    scenario.take();

    let proxy = CountingProxy::start(engine_socket());
    let through_proxy = proxy.client().await;
    let plan = scenario.project.plan(None);
    let again = scenario
        .build(&through_proxy, &plan.services, &options)
        .await
        .expect("the second run");

    assert_eq!(
        outcomes(&again),
        [("backend", Outcome::Reused), ("frontend", Outcome::Reused)]
    );
    for (before, after) in first.iter().zip(&again) {
        assert_eq!((&before.id, &before.image), (&after.id, &after.image));
    }
    let requests = proxy.requests();
    assert!(builds(&requests).is_empty(), "no build call: {requests:#?}");
    for image in &again {
        let inspect = format!("GET /images/{}/json", image.image);
        assert!(requests.contains(&inspect), "{inspect} in {requests:#?}");
    }
    let events = scenario.take();
    assert!(
        events
            .iter()
            .all(|e| matches!(e, BuildEvent::Reused { .. })),
        "{events:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_in_one_context_rebuilds_only_that_image() {
    let Some(docker) = engine().await else { return };
    let scenario = Scenario::new("one-change", "httpd");
    let options = BuildOptions::default();
    let plan = scenario.project.plan(None);
    let first = scenario
        .build(&docker, &plan.services, &options)
        .await
        .expect("the first build");

    let project = &scenario.project;
    project.write("frontend", "www/index.html", "<h1>frontend v2</h1>\n");
    project.write(
        "backend",
        "notes.tmp",
        "left out by .dockerignore: no change\n",
    );
    let proxy = CountingProxy::start(engine_socket());
    let plan = project.plan(None);
    let again = scenario
        .build(&proxy.client().await, &plan.services, &options)
        .await
        .expect("the second run");

    assert_eq!(
        outcomes(&again),
        [("backend", Outcome::Reused), ("frontend", Outcome::Built)]
    );
    assert_eq!(again[0].id, first[0].id);
    assert_ne!(again[1].id, first[1].id);
    assert_ne!(again[1].image.tag, first[1].image.tag, "a new content tag");
    let requests = proxy.requests();
    let builds = builds(&requests);
    assert_eq!(builds.len(), 1, "{requests:#?}");
    let frontend = plan.services[1].image.repository.replace('/', "%2F");
    assert!(builds[0].contains(&frontend), "{builds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_tag_is_rebuilt_when_its_inputs_change() {
    let Some(docker) = engine().await else { return };
    let scenario = Scenario::new("fixed-tag", "httpd");
    let options = BuildOptions::default();
    let tag = Some("v1.2.0");
    let plan = scenario.project.plan(tag);
    let first = scenario
        .build(&docker, &plan.services, &options)
        .await
        .expect("the first build");
    let same = scenario
        .build(&docker, &plan.services, &options)
        .await
        .expect("the same inputs");
    assert_eq!(
        outcomes(&same),
        [("backend", Outcome::Reused), ("frontend", Outcome::Reused)]
    );

    let project = &scenario.project;
    project.write("backend", "www/index.html", "<h1>backend, changed</h1>\n");
    let plan = project.plan(tag);
    let changed = scenario
        .build(&docker, &plan.services, &options)
        .await
        .expect("the changed inputs");
    assert_eq!(
        outcomes(&changed),
        [("backend", Outcome::Built), ("frontend", Outcome::Reused)]
    );
    assert_eq!(changed[0].image.tag, "v1.2.0");
    assert_ne!(changed[0].id, first[0].id);
    assert_ne!(changed[0].input_digest, first[0].input_digest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dockerignore_decides_what_lands_in_the_image() {
    let Some(docker) = engine().await else { return };
    let scenario = Scenario::new("dockerignore", "httpd");
    let project = &scenario.project;
    let files = [
        "app/main.py",
        "app/debug.log",
        "app/__pycache__/main.cpython-312.pyc",
        "deep/a/b/__pycache__/x.pyc",
        "top.log",
        "keep.log",
        "x.tmp",
        "a/b/c.tmp",
        "secrets/private.key",
        "secrets/public.pem",
        "node_modules/pkg/index.js",
        "docs/guide.md",
        "docs/keep.md",
        "docs/sub/keep.md",
        "build/out.o",
        "build/keep",
    ];
    for file in files {
        project.write("backend", file, file);
    }
    project.write(
        "backend",
        ".dockerignore",
        "# what the image must not get\n\
         *.log\n\
         !keep.log\n\
         **/*.tmp\n\
         **/__pycache__\n\
         secrets\n\
         !secrets/public.pem\n\
         node_modules/\n\
         docs/**\n\
         !docs/keep.md\n\
         !docs/**/keep.md\n\
         build/*\n\
         !build/keep\n\
         Dockerfile\n\
         .dockerignore\n",
    );
    project.dockerfile("backend", "FROM scratch\nCOPY . /ctx/\n");
    let plan = project.plan(None);

    let built = scenario
        .build(&docker, &plan.services, &BuildOptions::default())
        .await
        .expect("builds");

    let in_image: BTreeSet<String> = files_in_image(&docker, &built[0].image.to_string())
        .await
        .into_keys()
        .filter_map(|path| path.strip_prefix("/ctx/").map(str::to_owned))
        .filter(|path| !path.starts_with("root/"))
        .collect();
    // `docs/sub/keep.md` stays out although `!docs/**/keep.md` matches it: like the `docker` CLI
    // with the classic builder, an excluded directory is entered only for exceptions that start
    // with its path. The Dockerfile and `.dockerignore` reach the engine, which drops them as
    // listed.
    let expected = [
        "app/debug.log",
        "app/main.py",
        "build/keep",
        "docs/keep.md",
        "keep.log",
        "secrets/public.pem",
        "www/index.html",
    ];
    assert_eq!(
        in_image,
        expected
            .iter()
            .map(|s| (*s).to_owned())
            .collect::<BTreeSet<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outside_dockerfile_with_args_target_and_labels() {
    let Some(docker) = engine().await else { return };
    let mut scenario = Scenario::new("outside", "httpd");
    let project = &mut scenario.project;
    let dockerfile = std::fs::read_to_string(fixtures().join("stages.Dockerfile")).expect("read");
    let dockerfile = project.labelled(&dockerfile);
    project
        .project
        .write("docker/Dockerfile.backend", &dockerfile);
    for own in ["Dockerfile", ".dockerignore"] {
        std::fs::remove_file(project.context("backend").join(own)).expect("remove");
    }
    project.sets.extend([
        "services.backend.build.dockerfile=../../../docker/Dockerfile.backend".to_owned(),
        "services.backend.build.args.VERSION=1.2.3".to_owned(),
        "services.backend.build.target=base".to_owned(),
        "services.backend.build.labels.team=platform".to_owned(),
    ]);
    let plan = project.plan(None);

    let built = scenario
        .build(&docker, &plan.services, &BuildOptions::default())
        .await
        .expect("builds");

    let backend = &built[0];
    let files = files_in_image(&docker, &backend.image.to_string()).await;
    assert_eq!(files["/version"], b"1.2.3\n", "the build arg");
    assert!(!files.contains_key("/debug"), "the target stops at `base`");
    let copied: Vec<&String> = files
        .keys()
        .filter(|p| p.starts_with("/ctx/") && !p.starts_with("/ctx/root/"))
        .collect();
    assert_eq!(
        copied,
        ["/ctx/www/index.html"],
        "neither the generated Dockerfile nor `.dockerignore` is copied"
    );
    let inspected = docker
        .inspect_image(&backend.image.to_string())
        .await
        .expect("tagged");
    let labels = inspected.config.and_then(|c| c.labels).unwrap_or_default();
    assert_eq!(labels.get("team").map(String::as_str), Some("platform"));
    assert_eq!(labels.get(INPUTS_LABEL), Some(&backend.input_digest));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_step_names_the_image_the_step_and_the_last_lines() {
    let Some(docker) = engine().await else { return };
    let mut scenario = Scenario::new("failing", "httpd");
    let failing = std::fs::read_to_string(fixtures().join("failing.Dockerfile")).expect("read");
    scenario.project.dockerfile("backend", &failing);
    let plan = scenario.project.plan(None);

    let error = scenario
        .build(&docker, &plan.services, &BuildOptions::default())
        .await
        .expect_err("the build fails");

    let BuildError::Failed(failed) = &error else {
        panic!("a failed build: {error:?}");
    };
    assert_eq!(failed.service, "backend");
    assert_eq!(failed.step.as_ref().map(|s| s.number), Some(4));
    assert!(
        failed.tail.iter().any(|line| line.contains("expected ;")),
        "{failed:?}"
    );
    let events = scenario.take();
    assert!(events.contains(&BuildEvent::Failed {
        service: "backend".to_owned()
    }));
    let message = format!(
        "{error}\nhint: {}",
        error.hint().expect("a failed build has a hint")
    );
    insta::assert_snapshot!(scenario.project.redact(&message));
    assert!(
        docker
            .inspect_image(&plan.services[0].image.to_string())
            .await
            .is_err(),
        "nothing is tagged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dockerfile_the_engine_cannot_parse() {
    let Some(docker) = engine().await else { return };
    let scenario = Scenario::new("unparsable", "httpd");
    let project = &scenario.project;
    project.dockerfile("frontend", "FROM scratch\nCOPPY www /www\n");
    let plan = project.plan(None);

    let error = scenario
        .build(&docker, &plan.services, &BuildOptions::default())
        .await
        .expect_err("the build fails");

    let BuildError::Failed(failed) = &error else {
        panic!("a failed build: {error:?}");
    };
    assert_eq!(failed.service, "frontend");
    assert_eq!(failed.step, None);
    let message = error.to_string();
    assert!(message.contains("unknown instruction"), "{message}");
    assert!(message.contains("COPPY"), "{message}");
    assert!(
        error.hint().is_some_and(|hint| hint.contains("Dockerfile")),
        "{:?}",
        error.hint()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_build_stops_it_in_the_engine() {
    let Some(docker) = engine().await else { return };
    let mut scenario = Scenario::new("cancel", "httpd");
    let marker = format!("slow-step-{}", std::process::id());
    scenario.project.dockerfile(
        "backend",
        &format!(
            "FROM scratch\nCOPY root /\n\
             RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo {marker}; exec /bin/busybox sleep 300\"]\n"
        ),
    );
    let plan = scenario.project.plan(None);
    let options = BuildOptions::default();

    // What `up` does with Ctrl-C: race the stage and drop it.
    let events = scenario.events.clone();
    let started = Instant::now();
    let stage = build_all(&docker, &plan.services, &options, &events);
    let step_running = async {
        while let Some(event) = scenario.next().await {
            if matches!(&event, BuildEvent::Output { line, .. } if line.contains(&marker)) {
                return;
            }
        }
    };
    tokio::select! {
        result = stage => panic!("the build ended by itself: {result:?}"),
        () = step_running => {}
        () = tokio::time::sleep(Duration::from_secs(60)) => panic!("the slow step never ran"),
    }

    let cancelled = scenario.take();
    assert!(
        cancelled.contains(&BuildEvent::Cancelled {
            service: "backend".to_owned()
        }),
        "{cancelled:#?}"
    );
    // The engine kills and removes the step's container once the connection is gone.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let containers = docker
            .list_containers(Some(
                bollard::query_parameters::ListContainersOptionsBuilder::new()
                    .all(true)
                    .build(),
            ))
            .await
            .expect("containers");
        let running = containers.iter().any(|c| {
            c.command
                .as_deref()
                .is_some_and(|cmd| cmd.contains(&marker))
        });
        if !running {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the step's container is still there"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "stopped long before the step's 300 s"
    );
    assert!(
        docker
            .inspect_image(&plan.services[0].image.to_string())
            .await
            .is_err(),
        "nothing is tagged"
    );
}

/// The numbers for the stage's closing note, not a check: `scripts/measure-build` runs it.
/// Medians of `RUNS` (default 5) runs of: both fixture images built at once, the same two one
/// after the other (both without the layer cache, so every step runs), and a stage with nothing
/// changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: scripts/measure-build"]
async fn measure_build_times() {
    let Some(docker) = engine().await else { return };
    let mut scenario = Scenario::new("measure", "httpd");
    let plan = scenario.project.plan(None);
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|runs| runs.parse().ok())
        .unwrap_or(5);
    let fresh = BuildOptions {
        no_cache: true,
        ..BuildOptions::default()
    };
    let cached = BuildOptions::default();
    let (mut parallel, mut sequential, mut unchanged) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let started = Instant::now();
        scenario
            .build(&docker, &plan.services, &fresh)
            .await
            .expect("builds");
        parallel.push(started.elapsed());
        let started = Instant::now();
        for service in plan.services.chunks(1) {
            scenario
                .build(&docker, service, &fresh)
                .await
                .expect("builds");
        }
        sequential.push(started.elapsed());
        let started = Instant::now();
        scenario
            .build(&docker, &plan.services, &cached)
            .await
            .expect("reused");
        unchanged.push(started.elapsed());
        scenario.take();
    }
    for (name, times) in [
        ("both images in parallel", &mut parallel),
        ("one after the other", &mut sequential),
        ("nothing changed", &mut unchanged),
    ] {
        let runs: Vec<String> = times
            .iter()
            .map(|t| format!("{:.2}", t.as_secs_f64()))
            .collect();
        times.sort();
        println!(
            "{name:>24}: median {:.3} s  (runs: {})",
            times[times.len() / 2].as_secs_f64(),
            runs.join(" ")
        );
    }
}
