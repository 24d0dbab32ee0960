//! Proof that the fixture images behave as the stand-in simulates them. Each [`App`]'s images
//! are built from the very contexts and Dockerfiles the scenarios deploy
//! (`cluster::write_fixture_app`, `cluster::write_dockerfiles`), by the build stage `up` runs,
//! then run under the real Docker engine and checked against the behaviour the stand-in is told
//! for them (`cluster::behavior`): what answers 200 and what 404 on the ports and probe paths of
//! `e2e-values.yaml`, what the image prints and how it exits, and that SIGTERM stops it at once
//! (a real kubelet's rollouts and deletes would otherwise wait out the grace period). The
//! `tests/e2e/fixtures/httpd` image is checked too. Docker is required in CI, as for every
//! Docker test; without it on a laptop these skip.

use std::time::Duration;

use k8s_standin::Behavior;
use todo_deploy::build::{BuildOptions, build_all};
use todo_deploy::plan::ServicePlan;
use todo_deploy::progress::Events;

use crate::support::Project;
use crate::support::cluster::{self, App, FIXTURE_SERVICES};
use crate::support::containers::{Answer, Containers};
use crate::support::docker::{self, SCENARIO_LABEL, Scenario};

/// How long `docker stop` (SIGTERM, then SIGKILL after 10 s) may take for a fixture.
const STOPS_WITHIN: Duration = Duration::from_secs(1);

/// One [`App`]'s images, built as `up` builds them (under repositories and with a label of
/// their own), and the containers run from them; all removed when it goes.
struct Fixture {
    containers: Containers,
    /// Each service's plan (port, probes) and the image built for it.
    images: Vec<(ServicePlan, String)>,
    _project: Project,
}

impl Fixture {
    /// `None` (after saying why) without Docker on a laptop; a failure in CI.
    async fn build(app: App) -> Option<Fixture> {
        let engine = docker::engine().await?;
        let unique = format!("fixture-{}", unique());
        let project = Project::new();
        cluster::write_fixture_app(&project);
        cluster::write_dockerfiles(&project, app);
        let label_key = SCENARIO_LABEL.replace('.', "\\.");
        let mut sets = Vec::new();
        for service in FIXTURE_SERVICES.iter().map(|s| s.name) {
            sets.push(format!(
                "services.{service}.image=todo-deploy-e2e/{unique}-{service}"
            ));
            sets.push(format!(
                "services.{service}.build.labels.{label_key}={unique}"
            ));
        }
        let plan = docker::plan(&project, &["e2e-values.yaml"], &sets, None);
        let containers = Containers::new(engine, &unique);
        let (events, _receiver) = Events::channel();
        let built = build_all(
            &containers.docker,
            &plan.services,
            &BuildOptions::default(),
            &events,
        )
        .await
        .unwrap_or_else(|error| panic!("the {app:?} fixture images build: {error}"));
        let images = plan
            .services
            .into_iter()
            .map(|service| {
                let image = built
                    .iter()
                    .find(|image| image.service == service.name)
                    .expect("an image per service");
                (service, image.image.to_string())
            })
            .collect();
        Some(Fixture {
            containers,
            images,
            _project: project,
        })
    }

    /// Runs every service's image and checks it against the stand-in's behaviour for it.
    async fn behaves_as_simulated(&self, app: App) {
        for (service, image) in &self.images {
            let config = self.containers.docker.inspect_image(image).await;
            let user = config.expect("inspect").config.and_then(|c| c.user);
            assert_eq!(
                user.unwrap_or_default(),
                cluster::image_user(app),
                "{app:?} {image}: the USER the stand-in is told"
            );
            let behavior = cluster::behavior(app, &service.name);
            let container = self.containers.start(image, &service.name).await;
            let what = format!("{app:?} {} (`{image}`)", service.name);
            match behavior {
                Behavior::Serve {
                    ok_paths,
                    port,
                    log_lines,
                } => {
                    self.serves(&what, &container, service, &ok_paths, port, &log_lines)
                        .await
                }
                Behavior::Crash {
                    exit_code,
                    log_lines,
                    ..
                } => {
                    let code = self.containers.wait_exit(&container).await;
                    assert_eq!(code, i64::from(exit_code), "{what}: exit code");
                    let logs = self.containers.logs(&container).await;
                    assert_eq!(logs, log_lines, "{what}: exactly these lines");
                }
                Behavior::SlowStart { .. } => self.listens_on_nothing(&what, &container).await,
            }
        }
    }

    /// Serving: the ok paths answer 200, the probe paths that are not among them 404, it
    /// prints what the stand-in prints, and SIGTERM stops it at once.
    async fn serves(
        &self,
        what: &str,
        container: &str,
        service: &ServicePlan,
        ok_paths: &[String],
        port: u16,
        log_lines: &[String],
    ) {
        assert_eq!(
            port, service.port,
            "{what}: the stand-in's port is the Deployment's"
        );
        let probes = [
            &service.probes.readiness.path,
            &service.probes.liveness.path,
        ];
        let first = self
            .containers
            .get_when_listening(container, port, probes[0])
            .await;
        let expected = |path: &String| match ok_paths.contains(path) {
            true => Answer::Status(200),
            false => Answer::Status(404),
        };
        assert_eq!(first, expected(probes[0]), "{what}: GET {}", probes[0]);
        for path in ok_paths.iter().chain(probes) {
            let answer = self.containers.get(container, port, path).await;
            assert_eq!(answer, expected(path), "{what}: GET {path} on {port}");
        }
        assert_eq!(
            self.containers.logs(container).await,
            log_lines,
            "{what}: its output"
        );
        self.stops_at_once(what, container).await;
    }

    /// Starting slowly: once its command runs, nothing listens on any port.
    async fn listens_on_nothing(&self, what: &str, container: &str) {
        self.containers.until_running(container, "sleep 3600").await;
        let listening = self.containers.listening(container).await;
        assert!(listening.is_empty(), "{what}: listens: {listening:?}");
        assert!(
            self.containers.running(container).await,
            "{what}: still runs"
        );
        self.stops_at_once(what, container).await;
    }

    async fn stops_at_once(&self, what: &str, container: &str) {
        let ended = self.containers.stop(container).await;
        assert!(
            ended.took < STOPS_WITHIN,
            "{what}: `docker stop` took {:?} (SIGTERM must end PID 1 at once)",
            ended.took
        );
        assert_eq!(ended.exit_code, 0, "{what}: the TERM trap's `exit 0`");
    }
}

fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.subsec_nanos());
    format!("{}-{nanos}", std::process::id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_images_answer_their_probes_and_stop_at_once_on_sigterm() {
    let Some(fixture) = Fixture::build(App::Healthy).await else {
        return;
    };
    fixture.behaves_as_simulated(App::Healthy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashing_images_print_their_two_lines_and_exit_3() {
    let Some(fixture) = Fixture::build(App::Crashing).await else {
        return;
    };
    fixture.behaves_as_simulated(App::Crashing).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_images_answer_404_on_readiness_only() {
    let Some(fixture) = Fixture::build(App::NotReady).await else {
        return;
    };
    fixture.behaves_as_simulated(App::NotReady).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_live_images_answer_404_on_readiness_and_liveness() {
    let Some(fixture) = Fixture::build(App::NotLive).await else {
        return;
    };
    // On a real kubelet (and the stand-in's) its liveness probe gets it restarted.
    fixture.behaves_as_simulated(App::NotLive).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_images_name_no_user_and_serve() {
    let Some(fixture) = Fixture::build(App::Root).await else {
        return;
    };
    fixture.behaves_as_simulated(App::Root).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_images_listen_on_nothing() {
    let Some(fixture) = Fixture::build(App::Slow).await else {
        return;
    };
    fixture.behaves_as_simulated(App::Slow).await;
}

/// `tests/e2e/fixtures/httpd`, as its README says: serves `www/` on 8000, exits at once on SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_httpd_fixture_serves_www_on_8000_and_stops_at_once() {
    let Some(engine) = docker::engine().await else {
        return;
    };
    let scenario = Scenario::new("fixture-httpd", "httpd");
    let plan = scenario.project.plan(None);
    let backend = plan.service("backend").expect("a backend").clone();
    let built = scenario
        .build(&engine, &[backend], &BuildOptions::default())
        .await
        .expect("the httpd fixture builds");
    let containers = Containers::new(engine, &format!("fixture-httpd-{}", unique()));
    let image = built[0].image.to_string();
    let container = containers.start(&image, "httpd").await;
    let answer = containers.get_when_listening(&container, 8000, "/").await;
    assert_eq!(answer, Answer::Status(200), "GET / on 8000");
    let (_, page) = containers
        .exec(
            &container,
            &[
                "/bin/busybox",
                "wget",
                "-q",
                "-O-",
                "http://127.0.0.1:8000/",
            ],
        )
        .await;
    assert_eq!(page, "<h1>backend</h1>\n", "www/index.html");
    let ended = containers.stop(&container).await;
    assert!(
        ended.took < STOPS_WITHIN,
        "`docker stop` took {:?}",
        ended.took
    );
    assert_eq!(ended.exit_code, 0, "the TERM trap's `exit 0`");
}
