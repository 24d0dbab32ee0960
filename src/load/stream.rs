//! One image into the nodes that lack it: `docker save` (the engine's `export_image`) streamed
//! into every node's import command at once. A chunk goes to all nodes before the next is read,
//! so the slowest node paces the engine and memory holds one chunk, never the image.

use std::time::{Duration, Instant};

use bollard::Docker;
use futures_util::StreamExt;
use futures_util::future::join_all;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::build::{BuiltImage, Outcome};
use crate::progress::Events;

use super::error::LoadError;
use super::events::LoadEvent;
use super::exec::{Finished, Started};
use super::memory::Memory;
use super::nodes::Node;
use super::runtime::{Presence, failed};
use super::{NodeLoad, NodeOutcome};

/// How many chunks of the export (some 30 KiB each) may wait to be sent.
const READ_AHEAD: usize = 8;
/// How much is gathered before a write to a node.
const WRITE_BUFFER: usize = 256 * 1024;
/// How often progress is reported while sending.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// Loads `image` into every node that does not hold its ID yet. A node is not asked when it is
/// remembered holding the ID (`known`), nor when the image was just built (its ID is new, so no
/// node can hold it).
pub async fn load(
    docker: &Docker,
    nodes: &[Node],
    image: &BuiltImage,
    known: &Memory,
    events: &Events,
) -> Result<Vec<NodeLoad>, LoadError> {
    let result = load_inner(docker, nodes, image, known, events).await;
    if result.is_err() {
        events.send(LoadEvent::Failed {
            service: image.service.clone(),
        });
    }
    result
}

async fn load_inner(
    docker: &Docker,
    nodes: &[Node],
    image: &BuiltImage,
    known: &Memory,
    events: &Events,
) -> Result<Vec<NodeLoad>, LoadError> {
    let reference = image.image.to_string();
    let presences =
        futures_util::future::try_join_all(nodes.iter().map(|node| holds(node, image, known)))
            .await?;
    let mut results = Vec::new();
    let mut missing = Vec::new();
    for (node, holds) in nodes.iter().zip(presences) {
        if holds {
            events.send(LoadEvent::AlreadyPresent {
                service: image.service.clone(),
                image: reference.clone(),
                node: node.name.clone(),
            });
            results.push(result(image, node, NodeOutcome::AlreadyPresent));
        } else {
            missing.push(node);
        }
    }
    if missing.is_empty() {
        return Ok(results);
    }

    // Exported by reference, so the archive names the tag; it must still be the image built.
    let inspected = docker
        .inspect_image(&reference)
        .await
        .map_err(|source| LoadError::Engine {
            action: format!("inspect `{reference}`"),
            source,
        })?;
    let found = inspected.id.unwrap_or_default();
    if found != image.id {
        return Err(LoadError::Retagged {
            image: reference,
            expected: image.id.clone(),
            found,
        });
    }
    let names: Vec<String> = missing.iter().map(|node| node.name.clone()).collect();
    events.send(LoadEvent::Started {
        service: image.service.clone(),
        image: reference.clone(),
        nodes: names.clone(),
        size: inspected.size.map_or(0, |size| size.max(0) as u64),
    });
    let started = Instant::now();
    let bytes = send(docker, &missing, image, &reference, events).await?;
    let elapsed = started.elapsed();

    // The import said it worked; the runtime must now hold this very ID under the tag.
    for node in &missing {
        let presence = node.presence(&reference).await?;
        if !presence.has(&image.id) {
            return Err(LoadError::NotImported {
                node: node.describe(),
                image: reference,
                expected: image.id.clone(),
                found: Presence::first(&presence),
            });
        }
        results.push(result(image, node, NodeOutcome::Loaded { bytes }));
    }
    events.send(LoadEvent::Finished {
        service: image.service.clone(),
        image: reference,
        nodes: names,
        bytes,
        elapsed,
    });
    Ok(results)
}

/// Whether `node` holds `image`: remembered, or impossible for a fresh build, or asked.
async fn holds(node: &Node, image: &BuiltImage, known: &Memory) -> Result<bool, LoadError> {
    let reference = image.image.to_string();
    let remembered = node
        .instance
        .as_ref()
        .is_some_and(|instance| known.knows(instance, &reference, &image.id));
    match (remembered, image.outcome) {
        (true, _) => Ok(true),
        (false, Outcome::Built) => Ok(false),
        (false, Outcome::Reused) => Ok(node.presence(&reference).await?.has(&image.id)),
    }
}

fn result(image: &BuiltImage, node: &Node, outcome: NodeOutcome) -> NodeLoad {
    NodeLoad {
        service: image.service.clone(),
        image: image.image.to_string(),
        id: image.id.clone(),
        instance: node.instance.clone(),
        node: node.name.clone(),
        outcome,
    }
}

/// A node's import while the archive is sent: its stdin, until it fails or is closed.
struct Sink<'a> {
    node: &'a Node,
    input: Option<std::pin::Pin<Box<dyn AsyncWrite + Send>>>,
    broken: Option<std::io::Error>,
}

/// Streams the archive into every node's import; returns the bytes sent.
async fn send(
    docker: &Docker,
    nodes: &[&Node],
    image: &BuiltImage,
    reference: &str,
    events: &Events,
) -> Result<u64, LoadError> {
    let mut sinks = Vec::new();
    let mut imports = Vec::new();
    for node in nodes {
        let argv = node.runtime.import_command();
        let Started { input, done } = node.place.start(&argv).await?;
        // Written in pieces of `WRITE_BUFFER`, not of the export's chunks (some 30 KiB).
        let input = tokio::io::BufWriter::with_capacity(WRITE_BUFFER, input);
        sinks.push(Sink {
            node,
            input: Some(Box::pin(input)),
            broken: None,
        });
        imports.push(async move { (argv, done.await) });
    }
    // The export is read a few chunks ahead by a task of its own, so decoding the engine's
    // response runs beside writing to the nodes (on another core, as `docker save | …` would);
    // the channel's bound keeps the backpressure. Dropping the guard stops the task.
    let (chunks, mut received) = tokio::sync::mpsc::channel(READ_AHEAD);
    let export = docker.export_image(reference);
    let _reading = AbortOnDrop(tokio::spawn(async move {
        let mut export = std::pin::pin!(export);
        while let Some(chunk) = export.next().await {
            let failed = chunk.is_err();
            // The writer is gone when every node failed: stop reading.
            if chunks.send(chunk).await.is_err() || failed {
                break;
            }
        }
    }));
    let sending = async {
        let mut sent = 0u64;
        let mut reported = Instant::now();
        let mut outcome = Ok(());
        while let Some(chunk) = received.recv().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(source) => {
                    outcome = Err(LoadError::Export {
                        image: reference.to_owned(),
                        source,
                    });
                    break;
                }
            };
            join_all(sinks.iter_mut().map(|sink| sink.write(&chunk))).await;
            if sinks.iter().all(|sink| sink.input.is_none()) {
                break;
            }
            sent += chunk.len() as u64;
            if reported.elapsed() >= PROGRESS_EVERY {
                reported = Instant::now();
                events.send(LoadEvent::Progress {
                    service: image.service.clone(),
                    sent,
                });
            }
        }
        drop(received);
        // End of the archive: the imports see EOF. After an error they see a truncated
        // archive, fail, and exit; either way nothing is left waiting for input.
        join_all(sinks.iter_mut().map(Sink::close)).await;
        outcome.map(|()| sent)
    };
    let (sent, finished) = tokio::join!(sending, join_all(imports));
    // The engine failing to export explains the truncated archive the imports complained of;
    // an import's own failure explains a broken pipe better than the pipe does.
    let sent = sent?;
    for ((argv, finished), sink) in finished.into_iter().zip(&mut sinks) {
        let finished: Finished = finished?;
        if finished.code != 0 {
            return Err(failed(&sink.node.describe(), &argv, finished));
        }
        if let Some(source) = sink.broken.take() {
            return Err(LoadError::Send {
                image: reference.to_owned(),
                node: sink.node.describe(),
                source,
            });
        }
    }
    Ok(sent)
}

impl Sink<'_> {
    async fn write(&mut self, chunk: &[u8]) {
        let Some(input) = &mut self.input else {
            return;
        };
        if let Err(error) = input.write_all(chunk).await {
            self.broken = Some(error);
            self.close().await;
        }
    }

    /// Flushes and half-closes the input. A failure here is not reported: an import that got
    /// less than the whole archive fails, and one that succeeded is checked afterwards anyway.
    async fn close(&mut self) {
        if let Some(mut input) = self.input.take() {
            let _ = input.shutdown().await;
        }
    }
}

/// A task that ends when its handle is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
