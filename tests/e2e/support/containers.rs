//! Running an image under the real Docker engine and looking at it the way a kubelet would:
//! HTTP GETs from inside the container (busybox `wget`, redirects on the same host followed),
//! the processes it runs, how it exits, what it printed, how long `docker stop` (SIGTERM) takes.
//! Every container carries `todo-deploy.e2e.scenario=<unique>`; they, and any image with that
//! label, are removed when the [`Containers`] goes.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, ListImagesOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, RemoveImageOptionsBuilder,
    StopContainerOptionsBuilder,
};
use futures_util::StreamExt;

use super::docker::SCENARIO_LABEL;

/// How long a container may take to reach the state a check waits for.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// What a GET got: the final HTTP status (after same-host redirects, as a kubelet's HTTP probe
/// follows them), or a refused connection (nothing listens on the port).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Status(u16),
    Refused,
}

/// How a container ended: `docker stop`'s duration (when stopped) and the exit code.
#[derive(Debug)]
pub struct Ended {
    pub took: Duration,
    pub exit_code: i64,
}

/// The containers of one test, all labelled `SCENARIO_LABEL=<unique>`.
pub struct Containers {
    pub docker: Docker,
    pub unique: String,
}

impl Containers {
    pub fn new(docker: Docker, unique: &str) -> Containers {
        Containers {
            docker,
            unique: unique.to_owned(),
        }
    }

    /// Creates and starts a container of `image` named `<unique>-<name>`; its name.
    pub async fn start(&self, image: &str, name: &str) -> String {
        let name = format!("todo-deploy-e2e-{}-{name}", self.unique);
        let body = ContainerCreateBody {
            image: Some(image.to_owned()),
            labels: Some(HashMap::from([(
                SCENARIO_LABEL.to_owned(),
                self.unique.clone(),
            )])),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::new().name(&name).build();
        self.docker
            .create_container(Some(options), body)
            .await
            .unwrap_or_else(|error| panic!("create `{name}` from `{image}`: {error}"));
        self.docker
            .start_container(&name, None)
            .await
            .unwrap_or_else(|error| panic!("start `{name}`: {error}"));
        name
    }

    /// Runs `argv` in `container`: its exit code and everything it printed. Panics, with the
    /// container's state and output, when the container is not running.
    pub async fn exec(&self, container: &str, argv: &[&str]) -> (i64, String) {
        let options = CreateExecOptions {
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            cmd: Some(argv.to_vec()),
            ..Default::default()
        };
        let exec = match self.docker.create_exec(container, options).await {
            Ok(exec) => exec,
            Err(error) => panic!(
                "exec in `{container}`: {error}\n{}",
                self.explain(container).await
            ),
        };
        let mut text = String::new();
        if let StartExecResults::Attached { mut output, .. } = self
            .docker
            .start_exec(&exec.id, None)
            .await
            .expect("the exec starts")
        {
            while let Some(Ok(frame)) = output.next().await {
                text.push_str(&String::from_utf8_lossy(&frame.into_bytes()));
            }
        }
        let inspected = self
            .docker
            .inspect_exec(&exec.id)
            .await
            .expect("inspect the exec");
        (inspected.exit_code.unwrap_or(-1), text)
    }

    /// `GET http://127.0.0.1:<port><path>` from inside `container`.
    pub async fn get(&self, container: &str, port: u16, path: &str) -> Answer {
        let url = format!("http://127.0.0.1:{port}{path}");
        let argv = ["/bin/busybox", "wget", "-S", "-q", "-O", "/dev/null", &url];
        let (code, output) = self.exec(container, &argv).await;
        if output.contains("Connection refused") {
            return Answer::Refused;
        }
        // `-S` prints each response's status line: the last one is the final answer.
        let status = output.lines().rev().find_map(|line| {
            let mut words = line.split_whitespace();
            let version = words.next()?;
            version
                .starts_with("HTTP/")
                .then(|| words.next()?.parse().ok())?
        });
        match status {
            Some(status) => Answer::Status(status),
            None => panic!("`wget {url}` in `{container}` exited {code}: {output}"),
        }
    }

    /// Like [`Containers::get`], once something listens on `port`: polled (each poll is an
    /// exec round trip) until the connection is no longer refused, within [`DEADLINE`].
    pub async fn get_when_listening(&self, container: &str, port: u16, path: &str) -> Answer {
        let end = Instant::now() + DEADLINE;
        loop {
            let answer = self.get(container, port, path).await;
            if answer != Answer::Refused {
                return answer;
            }
            assert!(
                Instant::now() < end,
                "nothing listened on port {port} in `{container}` within {DEADLINE:?}"
            );
        }
    }

    /// Waits (polling `ps`) until a process whose command line contains `command` runs in
    /// `container`, within [`DEADLINE`].
    pub async fn until_running(&self, container: &str, command: &str) {
        let end = Instant::now() + DEADLINE;
        loop {
            let (_, processes) = self
                .exec(container, &["/bin/busybox", "ps", "-o", "args"])
                .await;
            if processes.lines().any(|line| line.contains(command)) {
                return;
            }
            assert!(
                Instant::now() < end,
                "`{command}` did not run in `{container}` within {DEADLINE:?}:\n{processes}"
            );
        }
    }

    /// The TCP sockets listening in `container`'s network namespace (`netstat -ltn`).
    pub async fn listening(&self, container: &str) -> Vec<String> {
        let (code, output) = self
            .exec(container, &["/bin/busybox", "netstat", "-ltn"])
            .await;
        assert_eq!(code, 0, "netstat in `{container}`: {output}");
        output
            .lines()
            .filter(|line| line.contains("LISTEN"))
            .map(str::to_owned)
            .collect()
    }

    /// `docker stop` with a 10 s grace period: how long it took and the exit code (0 from the
    /// fixtures' `trap 'exit 0' TERM`; 137 would be the SIGKILL after the grace period).
    pub async fn stop(&self, container: &str) -> Ended {
        let options = StopContainerOptionsBuilder::new().t(10).build();
        let started = Instant::now();
        self.docker
            .stop_container(container, Some(options))
            .await
            .unwrap_or_else(|error| panic!("stop `{container}`: {error}"));
        let took = started.elapsed();
        Ended {
            took,
            exit_code: self.exit_code(container).await,
        }
    }

    /// Waits, within [`DEADLINE`], until `container` exits by itself; its exit code.
    pub async fn wait_exit(&self, container: &str) -> i64 {
        let mut waiting = self.docker.wait_container(container, None);
        match tokio::time::timeout(DEADLINE, waiting.next()).await {
            Ok(Some(Ok(response))) => response.status_code,
            // bollard reports a non-zero exit as an error carrying the code.
            Ok(Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. }))) => code,
            Ok(other) => panic!("wait for `{container}`: {other:?}"),
            Err(_) => panic!(
                "`{container}` still runs after {DEADLINE:?}\n{}",
                self.explain(container).await
            ),
        }
    }

    /// The exit code of a container that has stopped.
    pub async fn exit_code(&self, container: &str) -> i64 {
        let inspected = self
            .docker
            .inspect_container(container, None)
            .await
            .unwrap_or_else(|error| panic!("inspect `{container}`: {error}"));
        let state = inspected.state.unwrap_or_default();
        assert_ne!(state.running, Some(true), "`{container}` still runs");
        state.exit_code.expect("an exit code")
    }

    /// Whether `container` is running.
    pub async fn running(&self, container: &str) -> bool {
        let inspected = self.docker.inspect_container(container, None).await;
        inspected
            .ok()
            .and_then(|c| c.state)
            .and_then(|s| s.running)
            .unwrap_or(false)
    }

    /// Every line `container` printed, stdout and stderr.
    pub async fn logs(&self, container: &str) -> Vec<String> {
        let options = LogsOptionsBuilder::new().stdout(true).stderr(true).build();
        let mut stream = self.docker.logs(container, Some(options));
        let mut text = String::new();
        while let Some(frame) = stream.next().await {
            let frame: LogOutput = frame.unwrap_or_else(|error| panic!("logs: {error}"));
            text.push_str(&String::from_utf8_lossy(&frame.into_bytes()));
        }
        text.lines().map(str::to_owned).collect()
    }

    /// The state and output of `container`, for a failure message.
    async fn explain(&self, container: &str) -> String {
        let state = match self.docker.inspect_container(container, None).await {
            Ok(inspected) => format!("{:?}", inspected.state),
            Err(error) => format!("cannot inspect: {error}"),
        };
        format!("state: {state}\nlogs: {:?}", self.logs(container).await)
    }
}

impl Drop for Containers {
    fn drop(&mut self) {
        let (docker, label) = (
            self.docker.clone(),
            format!("{SCENARIO_LABEL}={}", self.unique),
        );
        // Drop cannot await, and runs inside the test's runtime: clean up on a thread.
        let cleaning = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(remove_labelled(&docker, &label));
        });
        let _ = cleaning.join();
    }
}

/// Removes every container with `label`, then every image with it, newest first (a step goes
/// once the images built on it are gone). The label (from a build's labels) is in their content,
/// so no other test's image is among them. Unlabelled parents stay (`noprune`): those are the
/// build steps the scenarios' images of the same Dockerfiles share, in use by builds running
/// beside this one.
async fn remove_labelled(docker: &Docker, label: &str) {
    let filters = HashMap::from([("label".to_owned(), vec![label.to_owned()])]);
    let containers = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    for container in docker
        .list_containers(Some(containers))
        .await
        .unwrap_or_default()
    {
        let force = RemoveContainerOptionsBuilder::new().force(true).build();
        if let Some(id) = container.id {
            let _ = docker.remove_container(&id, Some(force)).await;
        }
    }
    let images = ListImagesOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    // Creation times are in seconds: a step and the image built on it can tie, and the step
    // cannot go first. Passes until one removes nothing.
    loop {
        let mut listed = docker
            .list_images(Some(images.clone()))
            .await
            .unwrap_or_default();
        listed.sort_by_key(|image| std::cmp::Reverse(image.created));
        let mut removed = false;
        for image in listed {
            let keep_parents = RemoveImageOptionsBuilder::new().noprune(true).build();
            let removal = docker.remove_image(&image.id, Some(keep_parents), None);
            removed |= removal.await.is_ok();
        }
        if !removed {
            return;
        }
    }
}
