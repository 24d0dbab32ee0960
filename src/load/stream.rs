//! One image, streamed into several nodes' imports at once. It is read by a task of its own
//! (beside the writes, on another core, as `docker save | …` would) that turns it into pieces,
//! each for some of the nodes: the whole `docker save` stream for every node ([`whole`]), or for
//! containerd nodes an OCI archive holding only what each lacks ([`layered`], see `archive`),
//! its layers read from the engine's storage (`storage`) or, where that cannot be read, cut
//! from the export. A piece goes to all its nodes before the next is taken, so the slowest node
//! paces the reading and memory holds a few pieces, never the image.

use std::time::{Duration, Instant};

use bollard::Docker;
use futures_util::StreamExt;
use futures_util::future::join_all;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use bytes::Bytes;

use super::archive::{Assembler, Piece, Targets, Totals, blob_name};
use super::error::LoadError;
use super::events::ReadFrom;
use super::exec::{Finished, Started};
use super::holdings::Holdings;
use super::image::Image;
use super::nodes::Node;
use super::storage::Stored;
use super::tarstream::{Entry, Item, Kind, Reader};

/// How many pieces may wait to be sent.
const READ_AHEAD: usize = 16;
/// How much is gathered before a write to a node.
const WRITE_BUFFER: usize = 256 * 1024;
/// How often progress is reported while sending.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// What the reading task sends.
pub enum Message {
    Piece(Piece),
    /// The archive is complete; for a layered one, what the whole image amounts to.
    Done(Option<Totals>),
    /// Reading stopped: the imports get a truncated archive, which imports nothing.
    Failed(LoadError),
}

type Sender = mpsc::Sender<Message>;

/// The reading task: its messages, and the task itself, stopped when this is dropped.
pub struct Source {
    messages: mpsc::Receiver<Message>,
    _task: AbortOnDrop,
}

/// What one node got.
#[derive(Debug)]
pub struct Delivered {
    pub bytes: u64,
    /// What the node holds after the import.
    pub holdings: Holdings,
}

/// The `docker save` stream of `reference`, whole, for every node.
pub fn whole(docker: &Docker, reference: &str, nodes: usize) -> Source {
    let (sender, messages) = mpsc::channel(READ_AHEAD);
    let export = docker.export_image(reference);
    let reference = reference.to_owned();
    let all = Targets::all(nodes);
    let task = tokio::spawn(async move {
        let mut export = std::pin::pin!(export);
        while let Some(chunk) = export.next().await {
            let message = match chunk {
                Ok(bytes) => Message::Piece(Piece {
                    bytes,
                    targets: all.clone(),
                }),
                Err(source) => Message::Failed(LoadError::Export {
                    image: reference.clone(),
                    source,
                }),
            };
            let failed = matches!(message, Message::Failed(_));
            if sender.send(message).await.is_err() || failed {
                return;
            }
        }
        let _ = sender.send(Message::Done(None)).await;
    });
    Source {
        messages,
        _task: AbortOnDrop(task),
    }
}

/// An OCI archive of `image` for each node, holding the layers above the `unpacked[i]` it has:
/// read from the engine's storage when it is on this machine (`storage`), else cut from the
/// export.
pub fn layered(docker: &Docker, image: &Image, unpacked: Vec<usize>) -> Source {
    let (sender, messages) = mpsc::channel(READ_AHEAD);
    let docker = docker.clone();
    let image = image.clone();
    let task = tokio::spawn(async move {
        let lowest = unpacked.iter().copied().min().unwrap_or(0);
        match open_stored(&image, lowest).await {
            Ok(stored) => {
                let failed = sender.clone();
                let reference = image.reference.clone();
                let reading = tokio::task::spawn_blocking(move || {
                    from_storage(&stored, &image, unpacked, &sender);
                });
                if reading.await.is_err() {
                    let reason = "reading the engine's storage stopped".to_owned();
                    let error = LoadError::Archive {
                        image: reference,
                        reason,
                    };
                    let _ = failed.send(Message::Failed(error)).await;
                }
            }
            Err(why) => from_export(&docker, &image, unpacked, &sender, why).await,
        }
    });
    Source {
        messages,
        _task: AbortOnDrop(task),
    }
}

/// The image in the engine's storage, with every file the layers from `lowest` up need; why
/// not, when it cannot be read from here.
async fn open_stored(image: &Image, lowest: usize) -> Result<Stored, String> {
    let Some(upper) = image.upper.clone() else {
        return Err("the engine did not report an overlay2 layer directory".to_owned());
    };
    let image = image.clone();
    let opened = tokio::task::spawn_blocking(move || {
        let stored = Stored::open(&image, &upper, lowest)?;
        stored.check_from(lowest)?;
        Ok(stored)
    });
    opened.await.map_err(|e| e.to_string())?
}

/// The archive from the engine's storage (a blocking task: it reads files).
fn from_storage(stored: &Stored, image: &Image, unpacked: Vec<usize>, sender: &Sender) {
    let mut assembler = Assembler::new(image, unpacked);
    let mut pieces = Vec::new();
    let send = |pieces: &mut Vec<Piece>| {
        pieces
            .drain(..)
            .all(|piece| sender.blocking_send(Message::Piece(piece)).is_ok())
    };
    let assemble = || -> Result<Option<Totals>, String> {
        let config = Bytes::copy_from_slice(stored.config());
        let size = config.len() as u64;
        assembler.item(start(blob_name(image.id.0), size), &mut pieces)?;
        assembler.item(Item::Data(config), &mut pieces)?;
        assembler.item(Item::End, &mut pieces)?;
        for (position, diff) in image.diff_ids.iter().enumerate() {
            let size = stored.size(position).ok_or("a layer the storage lacks")?;
            assembler.item(start(blob_name(diff.0), size), &mut pieces)?;
            if assembler.forwarding() {
                let mut refused = None;
                stored.read(position, *diff, &mut |bytes| match assembler
                    .item(Item::Data(bytes), &mut pieces)
                {
                    Ok(()) => send(&mut pieces),
                    Err(reason) => {
                        refused = Some(reason);
                        false
                    }
                })?;
                if let Some(reason) = refused {
                    return Err(reason);
                }
            }
            assembler.item(Item::End, &mut pieces)?;
            if !send(&mut pieces) {
                return Ok(None);
            }
        }
        let (trailer, totals) = assembler.finish(&image.reference, ReadFrom::Storage)?;
        pieces.extend(trailer);
        Ok(send(&mut pieces).then_some(totals))
    };
    let message = match assemble() {
        Ok(Some(totals)) => Message::Done(Some(totals)),
        Ok(None) => return,
        Err(reason) => Message::Failed(LoadError::Archive {
            image: image.reference.clone(),
            reason,
        }),
    };
    let _ = sender.blocking_send(message);
}

fn start(name: String, size: u64) -> Item {
    Item::Start(Entry {
        name,
        kind: Kind::File,
        size,
    })
}

/// The archive cut from the engine's export as it is read; `why` the storage was not read.
async fn from_export(
    docker: &Docker,
    image: &Image,
    unpacked: Vec<usize>,
    sender: &Sender,
    why: String,
) {
    let export = docker.export_image(&image.reference);
    let mut assembler = Assembler::new(image, unpacked);
    let mut reader = Reader::default();
    let mut export = std::pin::pin!(export);
    let failed = |reason: String| {
        Message::Failed(LoadError::Archive {
            image: image.reference.clone(),
            reason,
        })
    };
    let mut pieces = Vec::new();
    while let Some(chunk) = export.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(source) => {
                let reference = image.reference.clone();
                let error = LoadError::Export {
                    image: reference,
                    source,
                };
                let _ = sender.send(Message::Failed(error)).await;
                return;
            }
        };
        let read = reader.push(&chunk).map_err(|e| e.0).and_then(|items| {
            items
                .into_iter()
                .try_for_each(|item| assembler.item(item, &mut pieces))
        });
        if let Err(reason) = read {
            let _ = sender.send(failed(reason)).await;
            return;
        }
        for piece in pieces.drain(..) {
            if sender.send(Message::Piece(piece)).await.is_err() {
                return;
            }
        }
    }
    let end = reader.finish().map_err(|e| e.0);
    let read = ReadFrom::Export { why };
    match end.and_then(|()| assembler.finish(&image.reference, read)) {
        Ok((trailer, totals)) => {
            for piece in trailer {
                if sender.send(Message::Piece(piece)).await.is_err() {
                    return;
                }
            }
            let _ = sender.send(Message::Done(Some(totals))).await;
        }
        Err(reason) => {
            let _ = sender.send(failed(reason)).await;
        }
    }
}

/// Streams `source` into each node's import, started with `scripts[i]` (a script that ends with
/// the node's listing). Per node: what it got, or why not; and the source's end.
pub async fn send(
    reference: &str,
    nodes: &[&Node],
    scripts: Vec<Vec<String>>,
    source: Source,
    progress: &(dyn Fn(u64) + Sync),
) -> (
    Vec<Result<Delivered, LoadError>>,
    Result<Option<Totals>, LoadError>,
) {
    let mut sinks = Vec::new();
    let mut imports = Vec::new();
    for (node, argv) in nodes.iter().zip(scripts) {
        match node.place.start(&argv).await {
            Ok(Started { input, done }) => {
                sinks.push(Sink::open(node, input));
                imports.push(Some(done));
            }
            Err(error) => {
                sinks.push(Sink::failed(node, error));
                imports.push(None);
            }
        }
    }
    let waiting = join_all(imports.into_iter().map(|done| async move {
        match done {
            Some(done) => Some(done.await),
            None => None,
        }
    }));
    let (end, finished) = tokio::join!(pump(reference, &mut sinks, source, progress), waiting);
    let results = sinks
        .into_iter()
        .zip(finished)
        .map(|(sink, finished)| sink.result(reference, finished))
        .collect();
    (results, end)
}

/// Moves pieces from `source` to the sinks until it ends; then closes every sink (an archive
/// cut short imports nothing).
async fn pump(
    reference: &str,
    sinks: &mut [Sink<'_>],
    mut source: Source,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Option<Totals>, LoadError> {
    let mut sent = 0u64;
    let mut reported = Instant::now();
    let end = loop {
        let Some(message) = source.messages.recv().await else {
            break Err(LoadError::Archive {
                image: reference.to_owned(),
                reason: "reading the export stopped".to_owned(),
            });
        };
        match message {
            Message::Piece(piece) => {
                let writes = sinks
                    .iter_mut()
                    .enumerate()
                    .filter(|(i, _)| piece.targets.includes(*i))
                    .map(|(_, sink)| sink.write(&piece.bytes));
                join_all(writes).await;
                if sinks.iter().all(|sink| sink.input.is_none()) {
                    break Ok(None);
                }
                sent += piece.bytes.len() as u64;
                if reported.elapsed() >= PROGRESS_EVERY {
                    reported = Instant::now();
                    progress(sent);
                }
            }
            Message::Done(totals) => break Ok(totals),
            Message::Failed(error) => break Err(error),
        }
    };
    drop(source);
    join_all(sinks.iter_mut().map(Sink::close)).await;
    end
}

/// A node's import while the archive is sent: its stdin, until it fails or is closed.
struct Sink<'a> {
    node: &'a Node,
    input: Option<std::pin::Pin<Box<dyn AsyncWrite + Send>>>,
    written: u64,
    broken: Option<std::io::Error>,
    /// The import could not even start.
    refused: Option<LoadError>,
}

impl<'a> Sink<'a> {
    fn open(node: &'a Node, input: std::pin::Pin<Box<dyn AsyncWrite + Send>>) -> Sink<'a> {
        // Written in pieces of `WRITE_BUFFER`, not of the export's chunks (some 30 KiB).
        let input = tokio::io::BufWriter::with_capacity(WRITE_BUFFER, input);
        Sink {
            node,
            input: Some(Box::pin(input)),
            written: 0,
            broken: None,
            refused: None,
        }
    }

    fn failed(node: &'a Node, error: LoadError) -> Sink<'a> {
        Sink {
            node,
            input: None,
            written: 0,
            broken: None,
            refused: Some(error),
        }
    }

    async fn write(&mut self, bytes: &[u8]) {
        let Some(input) = &mut self.input else {
            return;
        };
        match input.write_all(bytes).await {
            Ok(()) => self.written += bytes.len() as u64,
            Err(error) => {
                self.broken = Some(error);
                self.close().await;
            }
        }
    }

    /// Flushes and half-closes the input. A failure here is not reported: an import that got
    /// less than the whole archive fails, and one that succeeded is checked afterwards anyway.
    async fn close(&mut self) {
        if let Some(mut input) = self.input.take() {
            let _ = input.shutdown().await;
        }
    }

    /// How the import ended: an import's own failure explains a broken pipe better than the
    /// pipe does.
    fn result(
        self,
        reference: &str,
        finished: Option<Result<Finished, LoadError>>,
    ) -> Result<Delivered, LoadError> {
        if let Some(error) = self.refused {
            return Err(error);
        }
        let finished = finished.ok_or_else(|| LoadError::Archive {
            image: reference.to_owned(),
            reason: "the import did not start".to_owned(),
        })??;
        let command = self.node.runtime.import_command().join(" ");
        if finished.code == 0
            && let Some(source) = self.broken
        {
            return Err(LoadError::Send {
                image: reference.to_owned(),
                node: self.node.describe(),
                source,
            });
        }
        let holdings = self.node.listed(&command, finished)?;
        Ok(Delivered {
            bytes: self.written,
            holdings,
        })
    }
}

/// A task that ends when its handle is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
