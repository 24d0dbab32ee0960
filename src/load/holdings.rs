//! What a node holds, read from one listing: the image IDs each name resolves to and, for
//! containerd, the unpacked snapshots by chain ID. One listing answers every question the load
//! stage asks a node: does it have this image under this name, under another name (then a tag is
//! enough), and which of its layers (then only the layers above them are sent).
//!
//! containerd's listing is three tables: `ctr images ls` (name → the manifest or index it
//! points at), `ctr content ls` (each manifest's config and each index's manifests, from the
//! `containerd.io/gc.ref.content.*` labels containerd keeps on them) and `ctr snapshots ls`
//! (committed snapshots, keyed by chain ID). Docker's is `docker images` with full IDs.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::digest::{ChainId, Digest, ImageId};
use super::image::Image;
use super::names::normalize;

/// One node's images and unpacked layers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holdings {
    /// Normalized name → the image IDs it resolves to (one per platform of an index).
    names: BTreeMap<String, Vec<ImageId>>,
    /// Committed snapshots; `None` for a runtime without them (Docker).
    snapshots: Option<BTreeSet<ChainId>>,
}

/// The labels containerd puts on a manifest (its config) and an index (its manifests).
const CONFIG_LABEL: &str = "containerd.io/gc.ref.content.config";
const MANIFEST_LABEL: &str = "containerd.io/gc.ref.content.m.";

impl Holdings {
    /// From containerd's three tables (see the module's documentation).
    pub fn containerd(images: &str, content: &str, snapshots: &str) -> Holdings {
        let children = content_children(content);
        let config_of = |digest: &Digest| children.get(digest).and_then(|c| c.config);
        let mut names = BTreeMap::new();
        for (name, target) in
            rows(images, "REF").filter_map(|row| Some((*row.first()?, *row.get(2)?)))
        {
            let Some(target) = Digest::parse(target) else {
                continue;
            };
            let ids: Vec<ImageId> = match config_of(&target) {
                Some(config) => vec![ImageId(config)],
                None => children
                    .get(&target)
                    .map(|c| {
                        c.manifests
                            .iter()
                            .filter_map(config_of)
                            .map(ImageId)
                            .collect()
                    })
                    .unwrap_or_default(),
            };
            names.insert(name.to_owned(), ids);
        }
        let snapshots = rows(snapshots, "KEY")
            .filter(|row| row.last() == Some(&"Committed"))
            .filter_map(|row| ChainId::parse(row.first()?))
            .collect();
        Holdings {
            names,
            snapshots: Some(snapshots),
        }
    }

    /// From `docker images --no-trunc --format '{{.ID}} {{.Repository}}:{{.Tag}}'`.
    pub fn docker(images: &str) -> Holdings {
        let mut names: BTreeMap<String, Vec<ImageId>> = BTreeMap::new();
        for line in images.lines() {
            let mut columns = line.split_whitespace();
            let (Some(id), Some(name)) = (columns.next(), columns.next()) else {
                continue;
            };
            let Some(id) = ImageId::parse(id) else {
                continue;
            };
            if name.contains("<none>") {
                continue;
            }
            names.entry(normalize(name)).or_default().push(id);
        }
        Holdings {
            names,
            snapshots: None,
        }
    }

    /// The IDs `reference` (as built) resolves to here.
    pub fn ids(&self, reference: &str) -> &[ImageId] {
        self.names
            .get(&normalize(reference))
            .map_or(&[], Vec::as_slice)
    }

    /// Whether `reference` names `image` here, unpacked: nothing to send.
    pub fn holds(&self, reference: &str, image: &Image) -> bool {
        self.ids(reference).contains(&image.id) && self.complete(image)
    }

    /// Another name under which the node holds `image`, unpacked: tagging it is enough.
    pub fn other_name(&self, reference: &str, image: &Image) -> Option<&str> {
        if !self.complete(image) {
            return None;
        }
        let reference = normalize(reference);
        self.names
            .iter()
            .find(|(name, ids)| **name != reference && ids.contains(&image.id))
            .map(|(name, _)| name.as_str())
    }

    /// How many of `image`'s layers, bottom first, the node has unpacked: the longest chain it
    /// has (a chain's snapshot exists only on top of its parent's). A runtime without snapshots
    /// has none.
    pub fn unpacked(&self, image: &Image) -> usize {
        let Some(snapshots) = &self.snapshots else {
            return 0;
        };
        image
            .chain
            .iter()
            .rposition(|chain| snapshots.contains(chain))
            .map_or(0, |top| top + 1)
    }

    /// Whether every layer of `image` is unpacked here; always, for a runtime without snapshots
    /// (Docker unpacks as it loads).
    fn complete(&self, image: &Image) -> bool {
        self.snapshots.is_none() || self.unpacked(image) == image.chain.len()
    }

    /// Whether the node names `reference` at all (an import then replaces what it names).
    pub fn names(&self, reference: &str) -> bool {
        self.names.contains_key(&normalize(reference))
    }
}

/// What a manifest or index refers to, by its labels.
#[derive(Default)]
struct Children {
    config: Option<Digest>,
    manifests: Vec<Digest>,
}

/// `ctr content ls`: DIGEST SIZE AGE LABELS, the labels `k=v` joined by commas (AGE has spaces,
/// so the digest is the first column and the labels the last).
fn content_children(table: &str) -> HashMap<Digest, Children> {
    let mut children = HashMap::new();
    for row in rows(table, "DIGEST") {
        let (Some(digest), Some(labels)) = (row.first().and_then(|d| Digest::parse(d)), row.last())
        else {
            continue;
        };
        let mut found = Children::default();
        for (key, value) in labels.split(',').filter_map(|label| label.split_once('=')) {
            if key == CONFIG_LABEL {
                found.config = Digest::parse(value);
            } else if key.starts_with(MANIFEST_LABEL) {
                found.manifests.extend(Digest::parse(value));
            }
        }
        if found.config.is_some() || !found.manifests.is_empty() {
            children.insert(digest, found);
        }
    }
    children
}

/// The rows of a `ctr` table, split on whitespace, without its header (whose first column is
/// `header`).
fn rows<'a>(table: &'a str, header: &'a str) -> impl Iterator<Item = Vec<&'a str>> + 'a {
    table
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .filter(move |row| !row.is_empty() && row.first() != Some(&header))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::digest::{DiffId, chain_ids};

    const CONFIG: &str = "sha256:988cb58e923ba18b448bd7bef6db302f174ac53e4706b94fa69b940466e7e1b5";
    const MANIFEST: &str =
        "sha256:06052d988294b279f31e74cf0e285e4e1b366cd84e27cee859aa685dcc6fe6a3";
    const INDEX: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const OTHER: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn image(layers: &[&str]) -> Image {
        let diff_ids: Vec<DiffId> = layers.iter().map(|l| DiffId::parse(l).unwrap()).collect();
        Image::for_tests("big:v2", ImageId::parse(CONFIG).unwrap(), diff_ids)
    }

    const LAYERS: [&str; 3] = [
        "sha256:f2b80cf2339a0d70a306c52884d23585abfe7639e0c1ee7b8ff61bc00d1efa83",
        "sha256:aebb974d77aa5dad3e976c036a22d80140bec90f522bfdcaee75f83935a2942f",
        "sha256:2503bc6c18b4ab0514cf2f6bb0502605cc08c804e2454d579ec69670633788d8",
    ];

    /// Tables as containerd 1.6's `ctr` prints them (tabs and aligned spaces alike).
    fn listing(snapshots: &[&str]) -> Holdings {
        let images = format!(
            "REF                  TYPE                                                 DIGEST   SIZE      PLATFORMS   LABELS\n\
             docker.io/exp/big:v2 application/vnd.docker.distribution.manifest.v2+json {MANIFEST} 202.2 MiB linux/amd64 -\n\
             docker.io/library/multi:1 application/vnd.oci.image.index.v1+json {INDEX} 3.0 MiB linux/amd64,linux/arm64 -\n\
             docker.io/library/broken:1 application/vnd.oci.image.index.v1+json sha256:nope 3.0 MiB - -\n"
        );
        let content = format!(
            "DIGEST\tSIZE\tAGE\tLABELS\n\
             {MANIFEST}\t769B\tLess than a second\tcontainerd.io/gc.ref.content.l.0=sha256:f2b8,{CONFIG_LABEL}={CONFIG},containerd.io/gc.ref.content.l.1=x\n\
             {INDEX}\t500B\t3 minutes\tcontainerd.io/gc.ref.content.m.0={MANIFEST},containerd.io/gc.ref.content.m.1={OTHER}\n\
             {CONFIG}\t2.06kB\t2 days\tcontainerd.io/gc.ref.snapshot.overlayfs=sha256:5c65\n\
             {OTHER}\t12B\t2 days\t\n"
        );
        let chain = chain_ids(
            &LAYERS
                .iter()
                .map(|l| DiffId::parse(l).unwrap())
                .collect::<Vec<_>>(),
        );
        let mut table = "KEY PARENT KIND\n".to_owned();
        for wanted in snapshots {
            let index: usize = wanted.parse().unwrap();
            table.push_str(&format!("{} sha256:parent Committed\n", chain[index]));
        }
        table.push_str("extract-1-sha256:abc  Active\n");
        Holdings::containerd(&images, &content, &table)
    }

    #[test]
    fn names_resolve_to_configs_through_manifests_and_indexes() {
        let holdings = listing(&[]);
        let id = ImageId::parse(CONFIG).unwrap();
        assert_eq!(holdings.ids("exp/big:v2"), [id]);
        assert_eq!(
            holdings.ids("multi:1"),
            [id],
            "the index's manifest with a config"
        );
        assert_eq!(holdings.ids("broken:1"), []);
        assert_eq!(holdings.ids("absent:1"), []);
        assert!(holdings.names("docker.io/exp/big:v2"));
    }

    #[test]
    fn the_longest_unpacked_chain_decides_what_is_sent() {
        let image = image(&LAYERS);
        assert_eq!(listing(&[]).unpacked(&image), 0);
        assert_eq!(listing(&["0"]).unpacked(&image), 1);
        assert_eq!(listing(&["0", "1"]).unpacked(&image), 2);
        assert_eq!(listing(&["0", "1", "2"]).unpacked(&image), 3);
        assert!(listing(&["0", "1", "2"]).holds("exp/big:v2", &image));
        assert!(
            !listing(&["0", "1"]).holds("exp/big:v2", &image),
            "named but not unpacked: layers are missing"
        );
    }

    #[test]
    fn another_name_for_the_same_unpacked_image_is_found() {
        let image = image(&LAYERS);
        let holdings = listing(&["0", "1", "2"]);
        assert_eq!(
            holdings.other_name("big:v3", &image),
            Some("docker.io/exp/big:v2")
        );
        assert_eq!(
            holdings.other_name("exp/big:v2", &image),
            Some("docker.io/library/multi:1")
        );
        assert_eq!(listing(&["0"]).other_name("big:v3", &image), None);
    }

    #[test]
    fn docker_lists_ids_and_short_names() {
        let holdings = Holdings::docker(&format!(
            "{CONFIG} todo-backend:v1\n{CONFIG} todo-backend:v2\n{OTHER} <none>:<none>\nnot a line\n"
        ));
        let image = image(&LAYERS);
        assert!(holdings.holds("docker.io/library/todo-backend:v1", &image));
        assert_eq!(
            holdings.other_name("todo-backend:v3", &image),
            Some("docker.io/library/todo-backend:v1")
        );
        assert_eq!(holdings.unpacked(&image), 0);
    }
}
