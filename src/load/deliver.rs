//! Every image onto every node, for the fewest bytes. Each node is asked once what it holds (one
//! listing answers for all images, so even an image just built is checked: a build can give an
//! ID a node has), unless it is remembered holding the image (`memory`), or, for images loaded
//! one at a time in one run, this run saw what it holds already (the last listing, import or
//! tag: [`Listing::LastSeen`]). Then, per image and
//! node, the cheapest of:
//!
//! - nothing: the node has the image under its name, unpacked;
//! - a tag: it has the image under another name (`ctr images tag`, `docker tag`), 0 bytes;
//! - for containerd, an OCI archive with only the layers above the longest chain it has
//!   unpacked (`archive`), its layers read from the engine's storage where this machine can
//!   (`storage`), else from the export; checked afterwards: the name gives the image ID, the
//!   top layer's chain is unpacked;
//! - the whole `docker save` archive: for Docker nodes, and for a containerd node when the
//!   layered load failed for any reason, which a warning says.

use std::time::Instant;

use bollard::Docker;
use futures_util::future::{join_all, try_join_all};

use crate::build::BuiltImage;
use crate::progress::{Event, Events};

use super::error::LoadError;
use super::events::LoadEvent;
use super::holdings::Holdings;
use super::image::{self, Image};
use super::memory::Memory;
use super::nodes::Node;
use super::outcome::{NodeLoad, NodeOutcome};
use super::stream::{self, Delivered};

/// What one node needs for one image.
enum Need {
    Nothing,
    Tag {
        from: String,
    },
    /// `unpacked` layers are on the node (`None`: a runtime that takes whole archives only);
    /// `replaces` when the node names the reference already.
    Send {
        unpacked: Option<usize>,
        replaces: bool,
    },
}

/// A node an image is sent to.
struct Target<'a> {
    node: &'a Node,
    unpacked: Option<usize>,
    replaces: bool,
}

/// Whether a node is asked what it holds, or what this run last saw it holding will do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    Fresh,
    LastSeen,
}

/// Loads `images` into `nodes`; `known` is what they were seen holding before.
pub async fn load_all(
    docker: &Docker,
    nodes: &[Node],
    images: &[BuiltImage],
    known: &Memory,
    listing: Listing,
    events: &Events,
) -> Result<Vec<NodeLoad>, LoadError> {
    let remembered = |node: &Node, image: &BuiltImage| {
        node.instance
            .as_ref()
            .is_some_and(|instance| known.knows(instance, &image.image.to_string(), &image.id))
    };
    let listings = try_join_all(nodes.iter().map(|node| async {
        if images.iter().all(|image| remembered(node, image)) {
            Ok(None)
        } else if listing == Listing::LastSeen {
            node.holdings_seen().await.map(Some)
        } else {
            node.holdings().await.map(Some)
        }
    }));
    let inspected = try_join_all(images.iter().map(|image| async {
        if nodes.iter().all(|node| remembered(node, image)) {
            Ok(None)
        } else {
            image::inspect(docker, image).await.map(Some)
        }
    }));
    let (listings, inspected) = tokio::try_join!(listings, inspected)?;
    let (listings, remembered) = (&listings, &remembered);
    let loaded = try_join_all(
        images
            .iter()
            .zip(&inspected)
            .map(|(built, image)| async move {
                let needs: Vec<Need> = nodes
                    .iter()
                    .zip(listings)
                    .map(
                        |(node, holdings)| match (remembered(node, built), holdings, image) {
                            (false, Some(holdings), Some(image)) => need(node, holdings, image),
                            _ => Need::Nothing,
                        },
                    )
                    .collect();
                let result = load_image(docker, nodes, needs, built, image.as_ref(), events).await;
                if result.is_err() {
                    events.send(LoadEvent::Failed {
                        service: built.service.clone(),
                    });
                }
                result
            }),
    )
    .await?;
    Ok(loaded.into_iter().flatten().collect())
}

/// What `node`, holding `holdings`, needs for `image`.
fn need(node: &Node, holdings: &Holdings, image: &Image) -> Need {
    if holdings.holds(&image.reference, image) {
        return Need::Nothing;
    }
    if let Some(from) = holdings.other_name(&image.reference, image) {
        return Need::Tag {
            from: from.to_owned(),
        };
    }
    Need::Send {
        unpacked: node
            .runtime
            .is_containerd()
            .then(|| holdings.unpacked(image)),
        replaces: holdings.names(&image.reference),
    }
}

/// One image onto the nodes, as `needs` (one per node) says.
async fn load_image(
    docker: &Docker,
    nodes: &[Node],
    needs: Vec<Need>,
    built: &BuiltImage,
    image: Option<&Image>,
    events: &Events,
) -> Result<Vec<NodeLoad>, LoadError> {
    let reference = built.image.to_string();
    let result = |node: &Node, outcome| NodeLoad {
        service: built.service.clone(),
        image: reference.clone(),
        id: built.id.clone(),
        instance: node.instance.clone(),
        node: node.name.clone(),
        outcome,
    };
    let mut results = Vec::new();
    let mut tags = Vec::new();
    let mut targets = Vec::new();
    for (node, need) in nodes.iter().zip(needs) {
        match need {
            Need::Nothing => {
                events.send(LoadEvent::AlreadyPresent {
                    service: built.service.clone(),
                    image: reference.clone(),
                    node: node.name.clone(),
                });
                results.push(result(node, NodeOutcome::AlreadyPresent));
            }
            Need::Tag { from } => tags.push((node, from)),
            Need::Send { unpacked, replaces } => targets.push(Target {
                node,
                unpacked,
                replaces,
            }),
        }
    }
    let Some(image) = image else {
        return Ok(results);
    };
    for (node, tagged) in join_all(tags.iter().map(|(node, from)| tag(node, from, image))).await {
        match tagged {
            Ok(from) => {
                events.send(LoadEvent::Tagged {
                    service: built.service.clone(),
                    image: reference.clone(),
                    from: from.clone(),
                    node: node.name.clone(),
                });
                results.push(result(node, NodeOutcome::Tagged { from }));
            }
            Err(error) => {
                let what = "tagging the image it holds under another name";
                warn(events, &built.service, node, &error, what, "sending it");
                let holdings = node.holdings().await?;
                if let Need::Send { unpacked, replaces } = need(node, &holdings, image) {
                    targets.push(Target {
                        node,
                        unpacked,
                        replaces,
                    });
                }
            }
        }
    }
    if !targets.is_empty() {
        for (node, outcome) in send(docker, image, targets, &built.service, events).await? {
            results.push(result(node, outcome));
        }
    }
    Ok(results)
}

/// Tags the image on `node` from the name `from`, checking that the reference then names it.
async fn tag<'a>(
    node: &'a Node,
    from: &str,
    image: &Image,
) -> (&'a Node, Result<String, LoadError>) {
    let tagged = node
        .tag(from, &image.id, &image.reference)
        .await
        .and_then(|holdings| {
            if holdings.holds(&image.reference, image) {
                Ok(from.to_owned())
            } else {
                Err(not_there(node, image, &holdings))
            }
        });
    (node, tagged)
}

/// Sends `image` to `targets`: only the missing layers where the runtime allows it, the whole
/// image elsewhere and wherever that failed.
async fn send<'a>(
    docker: &Docker,
    image: &Image,
    targets: Vec<Target<'a>>,
    service: &str,
    events: &Events,
) -> Result<Vec<(&'a Node, NodeOutcome)>, LoadError> {
    events.send(LoadEvent::Started {
        service: service.to_owned(),
        image: image.reference.clone(),
        nodes: targets.iter().map(|t| t.node.name.clone()).collect(),
        size: image.size,
    });
    let (layered, mut whole): (Vec<Target>, Vec<Target>) =
        targets.into_iter().partition(|t| t.unpacked.is_some());
    let mut outcomes = Vec::new();
    if !layered.is_empty() {
        let (sent, failed) = send_layers(docker, image, layered, service, events).await;
        outcomes.extend(sent);
        for (target, error) in failed {
            let what = "sending only the layers it lacks";
            warn(
                events,
                service,
                target.node,
                &error,
                what,
                "sending the whole image",
            );
            whole.push(target);
        }
    }
    if !whole.is_empty() {
        outcomes.extend(send_whole(docker, image, whole, service, events).await?);
    }
    Ok(outcomes)
}

/// The layered load: what each target got, and the targets it failed for, with why.
async fn send_layers<'a>(
    docker: &Docker,
    image: &Image,
    targets: Vec<Target<'a>>,
    service: &str,
    events: &Events,
) -> (Vec<(&'a Node, NodeOutcome)>, Vec<(Target<'a>, LoadError)>) {
    let started = Instant::now();
    let unpacked: Vec<usize> = targets.iter().map(|t| t.unpacked.unwrap_or(0)).collect();
    let source = stream::layered(docker, image, unpacked);
    let (results, end) = deliver(image, &targets, source, service, events).await;
    let elapsed = started.elapsed();
    let mut sent = Vec::new();
    let mut failed = Vec::new();
    let mut groups: Vec<(usize, u64, Vec<String>)> = Vec::new();
    for (target, delivered) in targets.into_iter().zip(results) {
        let checked = match (&end, delivered) {
            // The export's failure explains the truncated archive the imports complained of.
            (Err(error), _) => Err(LoadError::Archive {
                image: image.reference.clone(),
                reason: error.with_causes(),
            }),
            (Ok(_), delivered) => delivered.and_then(|d| verified(target.node, image, d)),
        };
        match checked {
            Ok(bytes) => {
                let layers = image
                    .diff_ids
                    .len()
                    .saturating_sub(target.unpacked.unwrap_or(0));
                match groups.iter_mut().find(|g| g.0 == layers && g.1 == bytes) {
                    Some(group) => group.2.push(target.node.name.clone()),
                    None => groups.push((layers, bytes, vec![target.node.name.clone()])),
                }
                let total = image.diff_ids.len();
                sent.push((
                    target.node,
                    NodeOutcome::Layers {
                        layers,
                        total,
                        bytes,
                    },
                ));
            }
            Err(error) => failed.push((target, error)),
        }
    }
    let (size, read) = match end.ok().flatten() {
        Some(totals) => (totals.size, Some(totals.read)),
        None => (image.size, None),
    };
    for (layers, bytes, nodes) in groups {
        events.send(LoadEvent::Layers {
            service: service.to_owned(),
            image: image.reference.clone(),
            nodes,
            layers,
            total: image.diff_ids.len(),
            bytes,
            size,
            elapsed,
            read: read.clone(),
        });
    }
    (sent, failed)
}

/// The whole `docker save` archive to `targets`; every one must take it.
async fn send_whole<'a>(
    docker: &Docker,
    image: &Image,
    targets: Vec<Target<'a>>,
    service: &str,
    events: &Events,
) -> Result<Vec<(&'a Node, NodeOutcome)>, LoadError> {
    let started = Instant::now();
    let source = stream::whole(docker, &image.reference, targets.len());
    let (results, end) = deliver(image, &targets, source, service, events).await;
    end?;
    let mut outcomes = Vec::new();
    let mut bytes = 0;
    for (target, delivered) in targets.iter().zip(results) {
        let sent = delivered.and_then(|d| verified(target.node, image, d))?;
        bytes = bytes.max(sent);
        outcomes.push((target.node, NodeOutcome::Loaded { bytes: sent }));
    }
    events.send(LoadEvent::Finished {
        service: service.to_owned(),
        image: image.reference.clone(),
        nodes: targets.iter().map(|t| t.node.name.clone()).collect(),
        bytes,
        elapsed: started.elapsed(),
    });
    Ok(outcomes)
}

/// Streams `source` into the targets' imports, reporting progress.
async fn deliver(
    image: &Image,
    targets: &[Target<'_>],
    source: stream::Source,
    service: &str,
    events: &Events,
) -> (
    Vec<Result<Delivered, LoadError>>,
    Result<Option<super::archive::Totals>, LoadError>,
) {
    let nodes: Vec<&Node> = targets.iter().map(|t| t.node).collect();
    let scripts = targets
        .iter()
        .map(|t| t.node.runtime.import_script(&image.reference, t.replaces))
        .collect();
    let progress = |sent| {
        events.send(LoadEvent::Progress {
            service: service.to_owned(),
            sent,
        })
    };
    stream::send(&image.reference, &nodes, scripts, source, &progress).await
}

/// The bytes a node got, once what it holds shows the import worked.
fn verified(node: &Node, image: &Image, delivered: Delivered) -> Result<u64, LoadError> {
    if delivered.holdings.holds(&image.reference, image) {
        Ok(delivered.bytes)
    } else {
        Err(not_there(node, image, &delivered.holdings))
    }
}

fn not_there(node: &Node, image: &Image, holdings: &Holdings) -> LoadError {
    LoadError::NotImported {
        node: node.describe(),
        image: image.reference.clone(),
        expected: image.id.to_string(),
        found: holdings
            .ids(&image.reference)
            .first()
            .map(|id| id.to_string()),
    }
}

/// Says that `what` failed on `node` and `instead` is done, and why.
fn warn(events: &Events, service: &str, node: &Node, error: &LoadError, what: &str, instead: &str) {
    events.send(Event::Warning(format!(
        "load {service}: {what} failed on {}, {instead} instead: {}",
        node.describe(),
        error.with_causes()
    )));
}
