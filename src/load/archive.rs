//! The OCI image layout a containerd node imports instead of the whole `docker save` archive:
//! built entry by entry as the image is read (from the export, or from the engine's storage in
//! the same entries), for several nodes at once, each getting only the layers above the
//! longest chain it has unpacked.
//!
//! The layout, as containerd 1.6's `ctr images import` reads it (`images/archive/importer.go`:
//! every regular file but `oci-layout`, `index.json` and `manifest.json` is stored as a blob
//! under the digest of its content, whatever its name; with an `oci-layout`, `index.json` is
//! the image): `blobs/sha256/<digest>` for the config (verbatim, so the image ID stays), the
//! layers sent (uncompressed tars, named by diff ID) and the manifest; then `oci-layout` and
//! `index.json`, whose one manifest carries the annotation `io.containerd.image.name`. The
//! manifest is Docker's schema 2 with every layer, media type
//! `application/vnd.docker.image.rootfs.diff.tar` and the diff ID as digest: unpacking checks
//! each layer's chain ID against the snapshots and reads only the blobs of missing ones.
//!
//! `index.json` comes last: an archive cut short anywhere is not an image, so a broken transfer
//! imports nothing. Layers are passed on without being hashed here: containerd checks each layer
//! it unpacks against its diff ID, and every layer sent is one it unpacks (hashing them again
//! would cost a core a second per 1.5 GB on a 2-core node). The config, small, is checked: its
//! digest is the image ID.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;

use super::digest::{DiffId, Digest};
use super::events::ReadFrom;
use super::export::{Catalog, Role};
use super::image::Image;
use super::names::normalize;
use super::tarstream::{END, Entry, Item, file_header, padding_of};

const MANIFEST_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";
const CONFIG_TYPE: &str = "application/vnd.docker.container.image.v1+json";
const LAYER_TYPE: &str = "application/vnd.docker.image.rootfs.diff.tar";
const INDEX_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// Larger configs or legacy `json` files are not an image's.
const JSON_LIMIT: u64 = 16 * 1024 * 1024;

/// Which of the nodes a piece of the archive goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Targets(Arc<[bool]>);

impl Targets {
    /// Every one of `nodes` nodes.
    pub fn all(nodes: usize) -> Targets {
        Targets(vec![true; nodes].into())
    }

    pub fn includes(&self, node: usize) -> bool {
        self.0.get(node).copied().unwrap_or(false)
    }

    fn any(&self) -> bool {
        self.0.iter().any(|&t| t)
    }
}

/// Bytes of the archive for some of the nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub bytes: Bytes,
    pub targets: Targets,
}

/// What the whole image amounts to, once the export is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totals {
    /// The config and every layer, as a whole archive would carry them.
    pub size: u64,
    pub layers: usize,
    /// Where the layers were read.
    pub read: ReadFrom,
}

/// Builds the archives from the export's entries.
pub struct Assembler<'a> {
    image: &'a Image,
    catalog: Catalog<'a>,
    /// Per node: how many layers, bottom first, it has unpacked.
    unpacked: Vec<usize>,
    all: Targets,
    /// Sizes of the layers seen, by diff ID.
    sizes: HashMap<DiffId, u64>,
    /// Layers forwarded (and verified).
    sent: Vec<DiffId>,
    config: Option<Bytes>,
    current: Current,
}

enum Current {
    Skip,
    Forward {
        diff: DiffId,
        targets: Targets,
        size: u64,
    },
    Collect {
        role: Role,
        bytes: Vec<u8>,
    },
}

impl<'a> Assembler<'a> {
    /// For nodes that have `unpacked[i]` layers of `image` each.
    pub fn new(image: &'a Image, unpacked: Vec<usize>) -> Assembler<'a> {
        let all = Targets::all(unpacked.len());
        Assembler {
            image,
            catalog: Catalog::new(image),
            unpacked,
            all,
            sizes: HashMap::new(),
            sent: Vec::new(),
            config: None,
            current: Current::Skip,
        }
    }

    /// The nodes that lack the layer `diff`: those whose unpacked chain ends below a position
    /// that holds it.
    fn lacking(&self, diff: DiffId) -> Targets {
        let targets: Vec<bool> = self
            .unpacked
            .iter()
            .map(|&have| self.image.diff_ids.iter().skip(have).any(|d| *d == diff))
            .collect();
        Targets(targets.into())
    }

    /// Whether the data of the entry started last goes to some node.
    pub fn forwarding(&self) -> bool {
        matches!(self.current, Current::Forward { .. })
    }

    /// Takes one item of the export; what to send, appended to `out`.
    pub fn item(&mut self, item: Item, out: &mut Vec<Piece>) -> Result<(), String> {
        match item {
            Item::Start(entry) => self.start(&entry, out),
            Item::Data(data) => {
                match &mut self.current {
                    Current::Skip => {}
                    Current::Forward { targets, .. } => {
                        out.push(Piece {
                            bytes: data,
                            targets: targets.clone(),
                        });
                    }
                    Current::Collect { bytes, .. } => bytes.extend_from_slice(&data),
                }
                Ok(())
            }
            Item::End => self.end(out),
        }
    }

    fn start(&mut self, entry: &Entry, out: &mut Vec<Piece>) -> Result<(), String> {
        self.current = match self.catalog.role(entry) {
            Role::Other => Current::Skip,
            role @ (Role::Config | Role::LegacyJson(_)) => {
                if entry.size > JSON_LIMIT {
                    return Err(format!(
                        "`{}` in the export is {} bytes, too large for an image's JSON",
                        entry.name, entry.size
                    ));
                }
                Current::Collect {
                    role,
                    bytes: Vec::new(),
                }
            }
            Role::Layer(position) => {
                let Some(&diff) = self.image.diff_ids.get(position) else {
                    self.current = Current::Skip;
                    return Ok(());
                };
                self.sizes.insert(diff, entry.size);
                let targets = self.lacking(diff);
                if self.sent.contains(&diff) || !targets.any() {
                    Current::Skip
                } else {
                    out.push(header(&blob_name(diff.0), entry.size, &targets)?);
                    Current::Forward {
                        diff,
                        targets,
                        size: entry.size,
                    }
                }
            }
        };
        Ok(())
    }

    fn end(&mut self, out: &mut Vec<Piece>) -> Result<(), String> {
        match std::mem::replace(&mut self.current, Current::Skip) {
            Current::Skip => {}
            Current::Forward {
                diff,
                targets,
                size,
            } => {
                out.push(padding(size, &targets));
                self.sent.push(diff);
            }
            Current::Collect {
                role: Role::LegacyJson(dir),
                bytes,
            } => self.catalog.learn(&dir, &bytes),
            Current::Collect { bytes, .. } => {
                self.check_config(&bytes)?;
                let bytes = Bytes::from(bytes);
                let length = bytes.len() as u64;
                let targets = self.all.clone();
                out.push(header(&blob_name(self.image.id.0), length, &targets)?);
                out.push(Piece {
                    bytes: bytes.clone(),
                    targets: targets.clone(),
                });
                out.push(padding(length, &targets));
                self.config = Some(bytes);
            }
        }
        Ok(())
    }

    /// The config must be the image's (its digest is the ID) and list the same layers.
    fn check_config(&self, bytes: &[u8]) -> Result<(), String> {
        let found = Digest::of(bytes);
        if found != self.image.id.0 {
            return Err(format!(
                "the export's config hashes to `{found}`, not the image ID `{}`",
                self.image.id
            ));
        }
        let config: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| format!("the config is not JSON: {e}"))?;
        let listed: Vec<Option<DiffId>> = config["rootfs"]["diff_ids"]
            .as_array()
            .map(|ids| {
                ids.iter()
                    .map(|id| id.as_str().and_then(DiffId::parse))
                    .collect()
            })
            .unwrap_or_default();
        let expected: Vec<Option<DiffId>> = self.image.diff_ids.iter().copied().map(Some).collect();
        if listed != expected {
            return Err("the config lists other layers than the engine reported".to_owned());
        }
        Ok(())
    }

    /// The export is read: the manifest, `oci-layout` and `index.json` (under the name the
    /// image is imported as), and the end of the archive, for every node. An error when
    /// something a node needs never came.
    pub fn finish(self, name: &str, read: ReadFrom) -> Result<(Vec<Piece>, Totals), String> {
        let config = self
            .config
            .as_ref()
            .ok_or("the export holds no config for the image")?;
        let mut layers = Vec::new();
        let mut size = config.len() as u64;
        for diff in &self.image.diff_ids {
            let layer_size = *self.sizes.get(diff).ok_or_else(|| {
                format!("the export names no layer `{diff}` in a way this tool can tell (compressed layers, from Docker's containerd image store?)")
            })?;
            size += layer_size;
            layers.push(Descriptor::new(LAYER_TYPE, *diff, layer_size));
        }
        for diff in &self.image.diff_ids {
            if self.lacking(*diff).any() && !self.sent.contains(diff) {
                return Err(format!("the export's layer `{diff}` was never sent"));
            }
        }
        let manifest = serde_json::to_vec(&Manifest {
            schema_version: 2,
            media_type: MANIFEST_TYPE,
            config: Descriptor::new(CONFIG_TYPE, self.image.id, config.len() as u64),
            layers,
        })
        .map_err(|e| e.to_string())?;
        let index = index(self.image, &manifest, name)?;
        let mut pieces = Vec::new();
        let all = &self.all;
        let manifest_name = blob_name(Digest::of(&manifest));
        for (file, bytes) in [
            (manifest_name.as_str(), manifest),
            ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
            ("index.json", index),
        ] {
            pieces.push(header(file, bytes.len() as u64, all)?);
            let length = bytes.len() as u64;
            pieces.push(Piece {
                bytes: Bytes::from(bytes),
                targets: all.clone(),
            });
            pieces.push(padding(length, all));
        }
        pieces.push(Piece {
            bytes: Bytes::from_static(&END),
            targets: all.clone(),
        });
        let totals = Totals {
            size,
            layers: self.image.diff_ids.len(),
            read,
        };
        Ok((pieces, totals))
    }
}

/// `blobs/sha256/<hex>`: where an OCI layout keeps the blob of `digest`.
pub fn blob_name(digest: Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

fn header(name: &str, size: u64, targets: &Targets) -> Result<Piece, String> {
    let block = file_header(name, size).map_err(|e| e.0)?;
    Ok(Piece {
        bytes: Bytes::copy_from_slice(&block),
        targets: targets.clone(),
    })
}

fn padding(size: u64, targets: &Targets) -> Piece {
    static ZEROS: [u8; 512] = [0; 512];
    let length = usize::try_from(padding_of(size)).unwrap_or(0);
    Piece {
        bytes: Bytes::from_static(&ZEROS[..length.min(ZEROS.len())]),
        targets: targets.clone(),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    schema_version: u32,
    media_type: &'static str,
    config: Descriptor,
    layers: Vec<Descriptor>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: &'static str,
    digest: String,
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<HashMap<&'static str, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    platform: Option<PlatformJson>,
}

impl Descriptor {
    fn new(media_type: &'static str, digest: impl std::fmt::Display, size: u64) -> Descriptor {
        Descriptor {
            media_type,
            digest: digest.to_string(),
            size,
            annotations: None,
            platform: None,
        }
    }
}

#[derive(Serialize)]
struct PlatformJson {
    architecture: String,
    os: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    schema_version: u32,
    media_type: &'static str,
    manifests: Vec<Descriptor>,
}

/// `index.json`: the one manifest, named `name` (normalized, as containerd stores it).
fn index(image: &Image, manifest: &[u8], name: &str) -> Result<Vec<u8>, String> {
    let mut descriptor =
        Descriptor::new(MANIFEST_TYPE, Digest::of(manifest), manifest.len() as u64);
    descriptor.annotations = Some(HashMap::from([(
        "io.containerd.image.name",
        normalize(name),
    )]));
    if !image.platform.architecture.is_empty() {
        descriptor.platform = Some(PlatformJson {
            architecture: image.platform.architecture.clone(),
            os: image.platform.os.clone(),
            variant: image.platform.variant.clone(),
        });
    }
    serde_json::to_vec(&Index {
        schema_version: 2,
        media_type: INDEX_TYPE,
        manifests: vec![descriptor],
    })
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::digest::ImageId;
    use crate::load::tarstream::Reader;

    /// A layer: a tar holding one file.
    fn layer(content: &[u8]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_ustar();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, "file", content).unwrap();
        builder.into_inner().unwrap()
    }

    /// An image of three layers and the export Docker 25 would write of it (OCI layout).
    fn export() -> (Image, Vec<u8>) {
        let layers = [layer(b"bottom"), layer(&[7u8; 3000]), layer(b"top")];
        let diff_ids: Vec<DiffId> = layers.iter().map(|l| DiffId(Digest::of(l))).collect();
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
            diff_ids
                .iter()
                .map(|d| format!("\"{d}\""))
                .collect::<Vec<_>>()
                .join(",")
        );
        let id = ImageId(Digest::of(config.as_bytes()));
        let mut builder = tar::Builder::new(Vec::new());
        let mut add = |name: String, data: &[u8]| {
            let mut header = tar::Header::new_ustar();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, name, data).unwrap();
        };
        add(format!("blobs/sha256/{}", id.0.hex()), config.as_bytes());
        for (diff, bytes) in diff_ids.iter().zip(&layers).rev() {
            add(format!("blobs/sha256/{}", diff.0.hex()), bytes);
        }
        add("index.json".to_owned(), b"{}");
        add("manifest.json".to_owned(), b"[]");
        let export = builder.into_inner().unwrap();
        let image = Image::for_tests("app:v2", id, diff_ids);
        (image, export)
    }

    /// Each node's archive, from `export` read in chunks of `chunk`.
    fn assemble(
        image: &Image,
        export: &[u8],
        unpacked: Vec<usize>,
        chunk: usize,
    ) -> Result<(Vec<Vec<u8>>, Totals), String> {
        let nodes = unpacked.len();
        let mut assembler = Assembler::new(image, unpacked);
        let mut reader = Reader::default();
        let mut pieces = Vec::new();
        for bytes in export.chunks(chunk) {
            for item in reader.push(&Bytes::copy_from_slice(bytes)).unwrap() {
                assembler.item(item, &mut pieces)?;
            }
        }
        let read = ReadFrom::Export { why: String::new() };
        let (trailer, totals) = assembler.finish(&image.reference, read)?;
        pieces.extend(trailer);
        let archives = (0..nodes)
            .map(|node| {
                pieces
                    .iter()
                    .filter(|p| p.targets.includes(node))
                    .flat_map(|p| p.bytes.to_vec())
                    .collect()
            })
            .collect();
        Ok((archives, totals))
    }

    /// An archive's files, in order, as the `tar` crate reads them.
    fn files(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut archive = tar::Archive::new(archive);
        archive
            .entries()
            .unwrap()
            .map(|entry| {
                let mut entry = entry.unwrap();
                let name = entry.path().unwrap().display().to_string();
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
                (name, bytes)
            })
            .collect()
    }

    #[test]
    fn each_node_gets_the_layers_above_its_chain_and_the_whole_manifest() {
        let (image, export) = export();
        let (archives, totals) = assemble(&image, &export, vec![0, 2, 3], 100).unwrap();
        let blob = |d: &dyn std::fmt::Display| format!("blobs/sha256/{}", &d.to_string()[7..]);
        let names = |archive: &[u8]| -> Vec<String> {
            files(archive).into_iter().map(|(name, _)| name).collect()
        };
        let full = names(&archives[0]);
        assert_eq!(full[0], blob(&image.id));
        assert_eq!(
            &full[1..4],
            [
                blob(&image.diff_ids[2]),
                blob(&image.diff_ids[1]),
                blob(&image.diff_ids[0])
            ]
        );
        assert_eq!(&full[5..], ["oci-layout", "index.json"]);
        assert_eq!(
            &names(&archives[1])[..2],
            [blob(&image.id), blob(&image.diff_ids[2])]
        );
        assert_eq!(
            names(&archives[2]).len(),
            4,
            "config, manifest, layout, index"
        );

        let top = files(&archives[1]);
        let manifest: serde_json::Value = serde_json::from_slice(&top[2].1).unwrap();
        assert_eq!(
            top[2].0,
            format!("blobs/sha256/{}", Digest::of(&top[2].1).hex())
        );
        assert_eq!(manifest["mediaType"], MANIFEST_TYPE);
        assert_eq!(manifest["config"]["digest"], image.id.to_string());
        let layers = manifest["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 3, "every layer, sent or not");
        assert_eq!(layers[1]["mediaType"], LAYER_TYPE);
        assert_eq!(layers[1]["digest"], image.diff_ids[1].to_string());
        assert_eq!(layers[1]["size"], layer(&[7u8; 3000]).len());
        let index: serde_json::Value = serde_json::from_slice(&top[4].1).unwrap();
        let entry = &index["manifests"][0];
        assert_eq!(entry["digest"], Digest::of(&top[2].1).to_string());
        assert_eq!(
            entry["annotations"]["io.containerd.image.name"],
            "docker.io/library/app:v2"
        );
        assert_eq!(entry["platform"]["architecture"], "amd64");
        assert_eq!(totals.layers, 3);
        let layer_bytes: u64 = [b"bottom".to_vec(), vec![7u8; 3000], b"top".to_vec()]
            .iter()
            .map(|c| layer(c).len() as u64)
            .sum();
        assert_eq!(totals.size, layer_bytes + top[0].1.len() as u64);
    }

    #[test]
    fn a_damaged_config_or_a_missing_layer_is_an_error() {
        let (image, export) = export();
        assert!(assemble(&image, &export, vec![0], 4096).is_ok());
        let at = export.windows(5).position(|w| w == b"amd64").unwrap();
        let mut damaged = export.clone();
        damaged[at..at + 5].copy_from_slice(b"arm64");
        let error = assemble(&image, &damaged, vec![0], 4096).unwrap_err();
        assert!(error.contains("not the image ID"), "{error}");
        let mut other = image.clone();
        other.diff_ids.push(DiffId(Digest::of(b"elsewhere")));
        let error = assemble(&other, &export, vec![0], 4096).unwrap_err();
        assert!(error.contains("other layers"), "{error}");
        // The middle layer's blob left out of the export.
        let middle = format!("blobs/sha256/{}", image.diff_ids[1].0.hex());
        let mut builder = tar::Builder::new(Vec::new());
        for (name, bytes) in files(&export).into_iter().filter(|(n, _)| *n != middle) {
            let mut header = tar::Header::new_ustar();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder
                .append_data(&mut header, name, bytes.as_slice())
                .unwrap();
        }
        let without = builder.into_inner().unwrap();
        let error = assemble(&image, &without, vec![0], 4096).unwrap_err();
        assert!(error.contains("names no layer"), "{error}");
        assert!(
            assemble(&image, &without, vec![2], 4096)
                .unwrap_err()
                .contains("names no layer"),
            "its size is needed even where it is not sent"
        );
    }
}
