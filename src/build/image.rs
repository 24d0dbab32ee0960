//! One image: reused when the engine holds an image under its reference whose inputs label
//! equals the current input digest, else built through the engine's `/build` endpoint (the classic
//! builder) with the context streamed as a tar, its progress reported as [`BuildEvent`]s.
//!
//! Dropping the future drops the HTTP exchange; the engine sees the connection close and stops
//! the build, and the tar writer stops when its channel closes.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::errors::Error as DockerApiError;
use bollard::models::BuildInfo;
use bollard::query_parameters::{BuildImageOptions, BuildImageOptionsBuilder};
use futures_util::StreamExt;
use tokio::task::JoinHandle;

use super::context::ContextError;
use super::error::{BuildError, FailedBuild};
use super::output::{Output, failure_message, parse_step};
use super::{BuildEvent, BuildOptions, BuiltImage, INPUTS_LABEL, Outcome, tar};
use crate::plan::ServicePlan;
use crate::progress::Events;

pub(super) async fn build(
    docker: &Docker,
    service: &ServicePlan,
    options: &BuildOptions,
    events: &Events,
) -> Result<BuiltImage, BuildError> {
    let reference = service.image.to_string();
    let digest = service.input_digest.clone();
    let reused = match options.no_cache {
        true => None,
        false => existing(docker, &reference, &digest).await?,
    };
    let (id, outcome) = match reused {
        Some(id) => {
            events.send(BuildEvent::Reused {
                service: service.name.clone(),
                image: reference,
            });
            (id, Outcome::Reused)
        }
        None => (
            run(docker, service, &digest, options, events).await?,
            Outcome::Built,
        ),
    };
    Ok(BuiltImage {
        service: service.name.clone(),
        image: service.image.clone(),
        id,
        input_digest: digest,
        outcome,
    })
}

/// Runs the build and returns the new image's ID.
async fn run(
    docker: &Docker,
    service: &ServicePlan,
    digest: &str,
    options: &BuildOptions,
    events: &Events,
) -> Result<String, BuildError> {
    let name = &service.name;
    let reference = service.image.to_string();
    let dockerfile =
        tar::dockerfile_name(&service.build).map_err(|source| context_error(service, source))?;
    let query = query(service, &dockerfile, digest, options);
    let mut in_flight = InFlight {
        events,
        service: name,
        settled: false,
    };
    events.send(BuildEvent::Started {
        service: name.clone(),
        image: reference.clone(),
    });
    let started = Instant::now();
    let (body, writer) = tar::stream(service.build.clone());
    let mut stream = docker.build_image(query, None, Some(bollard::body_try_stream(body)));
    let mut output = Output::new(options.failure_tail);
    let mut id = None;
    let failure = loop {
        match stream.next().await {
            None => break None,
            Some(Ok(info)) => {
                for line in lines(&mut output, &info) {
                    report(events, name, line);
                }
                if let Some(aux_id) = info.aux.and_then(|aux| aux.id) {
                    id = Some(aux_id);
                }
            }
            Some(Err(error)) => break Some(error),
        }
    };
    drop(stream);
    if let Some(line) = output.finish() {
        report(events, name, line);
    }
    let id = match (failure, id) {
        (Some(error), _) => Err(failed(service, error, &output, writer).await),
        (None, Some(id)) => Ok(id),
        // Engines that do not send the ID: the image under the reference, if it is this build.
        (None, None) => existing(docker, &reference, digest).await.and_then(|id| {
            id.ok_or_else(|| BuildError::Engine {
                image: reference.clone(),
                source: DockerApiError::DockerStreamError {
                    error: "the build ended without an image".to_owned(),
                },
            })
        }),
    };
    in_flight.settled = true;
    events.send(match &id {
        Ok(_) => BuildEvent::Finished {
            service: name.clone(),
            image: reference,
            elapsed: started.elapsed(),
        },
        Err(_) => BuildEvent::Failed {
            service: name.clone(),
        },
    });
    id
}

/// The `/build` query: where the Dockerfile is in the archive, the tag, args, target, labels.
fn query(
    service: &ServicePlan,
    dockerfile: &str,
    digest: &str,
    options: &BuildOptions,
) -> BuildImageOptions {
    let inputs = &service.build;
    let pairs = |map: &BTreeMap<String, String>| -> HashMap<String, String> {
        map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    };
    let mut labels = pairs(&inputs.labels);
    labels.insert(INPUTS_LABEL.to_owned(), digest.to_owned());
    BuildImageOptionsBuilder::default()
        .dockerfile(dockerfile)
        .t(&service.image.to_string())
        .buildargs(&pairs(&inputs.args))
        .labels(&labels)
        .target(inputs.target.as_deref().unwrap_or(""))
        .nocache(options.no_cache)
        .rm(true)
        .forcerm(true)
        .build()
}

/// Why a build stopped: its context could not be read, the engine failed it (a step, or the
/// Dockerfile), or the engine went away.
async fn failed(
    service: &ServicePlan,
    error: DockerApiError,
    output: &Output,
    writer: JoinHandle<Result<(), ContextError>>,
) -> BuildError {
    // A context that could not be read fails the upload; that is the cause to report.
    if let Ok(Ok(Err(source))) = tokio::time::timeout(Duration::from_secs(2), writer).await
        && !abandoned(&source)
    {
        return context_error(service, source);
    }
    match error {
        DockerApiError::DockerStreamError { error: message }
        | DockerApiError::DockerResponseServerError { message, .. } => FailedBuild {
            service: service.name.clone(),
            image: service.image.to_string(),
            dockerfile: service.build.dockerfile.clone(),
            context: service.build.context.clone(),
            step: output.step().cloned(),
            message: failure_message(&message),
            tail: output.tail(),
        }
        .into(),
        source => BuildError::Engine {
            image: service.image.to_string(),
            source,
        },
    }
}

fn context_error(service: &ServicePlan, source: ContextError) -> BuildError {
    BuildError::Context {
        service: service.name.clone(),
        source,
    }
}

/// The ID of the image under `reference`, if it was built from inputs with this digest.
async fn existing(
    docker: &Docker,
    reference: &str,
    digest: &str,
) -> Result<Option<String>, BuildError> {
    match docker.inspect_image(reference).await {
        Ok(image) => {
            let labels = image.config.and_then(|config| config.labels);
            let same = labels
                .is_some_and(|labels| labels.get(INPUTS_LABEL).map(String::as_str) == Some(digest));
            Ok(image.id.filter(|_| same))
        }
        Err(DockerApiError::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(None),
        Err(source) => Err(BuildError::Inspect {
            image: reference.to_owned(),
            source,
        }),
    }
}

/// The output lines one engine message completes.
fn lines(output: &mut Output, info: &BuildInfo) -> Vec<String> {
    if let Some(text) = &info.stream {
        return output.push(text);
    }
    // Pull progress (`FROM` an image not present): each new status, not every percent.
    let counting = info
        .progress_detail
        .as_ref()
        .is_some_and(|detail| detail.current.is_some());
    match (&info.status, &info.id) {
        (Some(_), _) if counting => Vec::new(),
        (Some(status), Some(id)) => output.push(&format!("{id}: {status}\n")),
        (Some(status), None) => output.push(&format!("{status}\n")),
        (None, _) => Vec::new(),
    }
}

fn report(events: &Events, service: &str, line: String) {
    if let Some(step) = parse_step(&line) {
        events.send(BuildEvent::Step {
            service: service.to_owned(),
            step: step.number,
            total: step.total,
            instruction: step.instruction,
        });
    }
    events.send(BuildEvent::Output {
        service: service.to_owned(),
        line,
    });
}

/// Whether the writer stopped only because the request went away.
fn abandoned(error: &ContextError) -> bool {
    matches!(error, ContextError::Io { source, .. } if source.kind() == io::ErrorKind::BrokenPipe)
}

/// Reports a build that was dropped before it settled (Ctrl-C, or another image failed).
struct InFlight<'a> {
    events: &'a Events,
    service: &'a str,
    settled: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.events.send(BuildEvent::Cancelled {
                service: self.service.to_owned(),
            });
        }
    }
}
