//! What each entry of the engine's `docker save` stream is, told from its name before its data
//! arrives, so that a layer a node has is skipped without being read, let alone hashed.
//!
//! Two layouts exist. Docker 25 and later write an OCI layout: `blobs/sha256/<digest>`, where an
//! uncompressed layer's digest is its diff ID and the config's is the image ID. Docker up to 24
//! writes one directory per layer, `<v1 ID>/json` then `<v1 ID>/layer.tar`, in the name order of
//! the v1 IDs, with `manifest.json` (the only map from directories to layers) last of all. A v1
//! ID is a digest of the directory's `json` with its `id` left out and the layer's chain ID
//! added (`layer_id`, its parent as `sha256:…`, and `os` only for the top layer), the top-level
//! keys sorted: recomputing it for each chain ID tells which layer the `layer.tar` that follows
//! holds. An entry that cannot be told is skipped; if a layer a node needs was among them, the
//! archive is incomplete and the load falls back to sending the whole image.

use std::collections::HashMap;

use super::digest::{ChainId, Digest};
use super::image::Image;
use super::tarstream::{Entry, Kind};

/// What an entry of the export holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// The image's config (its digest is the image ID).
    Config,
    /// The layer at this position of the image (the first with its diff ID).
    Layer(usize),
    /// A legacy directory's `json`: read it to tell what its `layer.tar` holds.
    LegacyJson(String),
    Other,
}

/// The entries told so far.
pub struct Catalog<'a> {
    image: &'a Image,
    /// Legacy directory → the layer position its `layer.tar` holds.
    legacy: HashMap<String, usize>,
}

impl<'a> Catalog<'a> {
    pub fn new(image: &'a Image) -> Catalog<'a> {
        Catalog {
            image,
            legacy: HashMap::new(),
        }
    }

    /// What `entry` holds.
    pub fn role(&self, entry: &Entry) -> Role {
        if entry.kind != Kind::File {
            return Role::Other;
        }
        let name = entry.name.trim_start_matches("./");
        let id = self.image.id.0.hex();
        if let Some(hex) = name.strip_prefix("blobs/sha256/") {
            if hex == id {
                return Role::Config;
            }
            return self.position(hex).map_or(Role::Other, Role::Layer);
        }
        if name.strip_suffix(".json") == Some(id.as_str()) {
            return Role::Config;
        }
        match name.split_once('/') {
            Some((dir, "json")) if Digest::from_hex(dir).is_some() => {
                Role::LegacyJson(dir.to_owned())
            }
            Some((dir, "layer.tar")) => self
                .legacy
                .get(dir)
                .map_or(Role::Other, |&i| Role::Layer(i)),
            _ => Role::Other,
        }
    }

    /// Learns which layer the legacy directory `dir` holds from its `json`.
    pub fn learn(&mut self, dir: &str, json: &[u8]) {
        if let Some(position) = legacy_position(dir, json, &self.image.chain) {
            self.legacy.insert(dir.to_owned(), position);
        }
    }

    /// The first position of the layer whose diff ID has the hex digits `hex`.
    fn position(&self, hex: &str) -> Option<usize> {
        let digest = Digest::from_hex(hex)?;
        self.image.diff_ids.iter().position(|diff| diff.0 == digest)
    }
}

/// Which layer (by position) the legacy directory `dir` holds: the chain ID whose v1 ID, as
/// Docker computes it from `json`, is `dir`.
pub fn legacy_position(dir: &str, json: &[u8], chain: &[ChainId]) -> Option<usize> {
    let wanted = Digest::from_hex(dir)?;
    let fields = top_level(json)?;
    let mut base: Vec<(&str, String)> = Vec::new();
    for (key, raw) in &fields {
        match *key {
            "id" | "layer_id" => {}
            "parent" => {
                let parent: String = serde_json::from_slice(raw).ok()?;
                let parent = if parent.starts_with("sha256:") {
                    parent
                } else {
                    format!("sha256:{parent}")
                };
                base.push(("parent", serde_json::to_string(&parent).ok()?));
            }
            _ => base.push((key, String::from_utf8_lossy(raw).into_owned())),
        }
    }
    // `os` is set after the ID is computed, except on the top layer, whose json is the image's.
    for with_os in [false, true] {
        for (position, chain_id) in chain.iter().enumerate() {
            let mut hashed: Vec<(&str, String)> = base
                .iter()
                .filter(|(key, _)| with_os || *key != "os")
                .cloned()
                .collect();
            hashed.push(("layer_id", format!("\"{chain_id}\"")));
            hashed.sort_by(|a, b| a.0.cmp(b.0));
            let body: Vec<String> = hashed
                .iter()
                .map(|(key, value)| format!("\"{key}\":{value}"))
                .collect();
            if Digest::of(format!("{{{}}}", body.join(",")).as_bytes()) == wanted {
                return Some(position);
            }
        }
    }
    None
}

/// The top-level keys of a JSON object and the raw text of each value, as written. Keys with
/// escapes are not expected (Docker's are plain) and make the whole object unreadable.
fn top_level(json: &[u8]) -> Option<Vec<(&str, &[u8])>> {
    let mut at = skip_space(json, 0);
    if json.get(at) != Some(&b'{') {
        return None;
    }
    at = skip_space(json, at + 1);
    let mut fields = Vec::new();
    if json.get(at) == Some(&b'}') {
        return Some(fields);
    }
    loop {
        let key_end = string_end(json, at)?;
        let key = std::str::from_utf8(json.get(at + 1..key_end - 1)?).ok()?;
        if key.contains('\\') {
            return None;
        }
        at = skip_space(json, key_end);
        if json.get(at) != Some(&b':') {
            return None;
        }
        let start = skip_space(json, at + 1);
        let end = value_end(json, start)?;
        fields.push((key, json.get(start..end)?));
        at = skip_space(json, end);
        match json.get(at) {
            Some(b',') => at = skip_space(json, at + 1),
            Some(b'}') => return Some(fields),
            _ => return None,
        }
    }
}

fn skip_space(json: &[u8], mut at: usize) -> usize {
    while json.get(at).is_some_and(|b| b.is_ascii_whitespace()) {
        at += 1;
    }
    at
}

/// Where the string starting at `at` (its opening quote) ends, past its closing quote.
fn string_end(json: &[u8], at: usize) -> Option<usize> {
    if json.get(at) != Some(&b'"') {
        return None;
    }
    let mut i = at + 1;
    loop {
        match json.get(i)? {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
}

/// Where the value starting at `at` ends.
fn value_end(json: &[u8], at: usize) -> Option<usize> {
    match json.get(at)? {
        b'"' => string_end(json, at),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = at;
            loop {
                match json.get(i)? {
                    b'"' => {
                        i = string_end(json, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.checked_sub(1)?;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            let mut i = at;
            while json
                .get(i)
                .is_some_and(|b| !matches!(b, b',' | b'}' | b']') && !b.is_ascii_whitespace())
            {
                i += 1;
            }
            (i > at).then_some(i)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::digest::{DiffId, ImageId};

    /// The three layer directories of a `docker save` by Docker 20.10 (engine API 1.41) of
    /// `FROM scratch` + busybox + 210 MB + one small file, with that image's diff IDs.
    const TOP: &str = "13996120dc387ee49c2cd2f8a5b30efdd5b3a40c993fc48a546ae97259ea30fc";
    const TOP_JSON: &str = r##"{"id":"13996120dc387ee49c2cd2f8a5b30efdd5b3a40c993fc48a546ae97259ea30fc","parent":"94d8db7f9f7c1c83f236a694bd37e7baa0f52793f3ad079c3227469b5d1f1559","created":"2026-12-02T09:43:41.678112997Z","container":"30151ea14e569bf220194d596a84d6c65ae4f69b09d18fb769ac0a9b3190657d","container_config":{"Hostname":"30151ea14e56","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["/bin/sh","-c","#(nop) ","CMD [\"/bin/busybox\" \"cat\" \"/app/app.txt\"]"],"Image":"sha256:0f33ea5f25eabff9f042dfe7d465b8c7908e2713097ca800651b4076a1e67462","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{}},"docker_version":"20.10.24+dfsg1","config":{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["/bin/busybox","cat","/app/app.txt"],"Image":"sha256:0f33ea5f25eabff9f042dfe7d465b8c7908e2713097ca800651b4076a1e67462","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null},"architecture":"amd64","os":"linux"}"##;
    const MIDDLE: &str = "94d8db7f9f7c1c83f236a694bd37e7baa0f52793f3ad079c3227469b5d1f1559";
    const MIDDLE_JSON: &str = r##"{"id":"94d8db7f9f7c1c83f236a694bd37e7baa0f52793f3ad079c3227469b5d1f1559","parent":"d4a9c42e405b824277d73c42aa84b72b4063dc384ccd7cc2d18e348ecadd15a8","created":"1970-01-01T00:00:00Z","container_config":{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null},"os":"linux"}"##;
    const BOTTOM: &str = "d4a9c42e405b824277d73c42aa84b72b4063dc384ccd7cc2d18e348ecadd15a8";
    const BOTTOM_JSON: &str = r##"{"id":"d4a9c42e405b824277d73c42aa84b72b4063dc384ccd7cc2d18e348ecadd15a8","created":"1970-01-01T00:00:00Z","container_config":{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null},"os":"linux"}"##;

    fn image() -> Image {
        let diff_ids: Vec<DiffId> = [
            "sha256:f2b80cf2339a0d70a306c52884d23585abfe7639e0c1ee7b8ff61bc00d1efa83",
            "sha256:aebb974d77aa5dad3e976c036a22d80140bec90f522bfdcaee75f83935a2942f",
            "sha256:4b0ff2601da08b2e4776f9663d73741cd036642372d4455f6fb28857f506dc55",
        ]
        .iter()
        .map(|d| DiffId::parse(d).unwrap())
        .collect();
        let id = "sha256:2cad18b2ddfb67dab6675adad55731fee84cf2bfd7bce759775d7c89fa3f7c36";
        Image::for_tests("exp/big:v1", ImageId::parse(id).unwrap(), diff_ids)
    }

    fn file(name: &str) -> Entry {
        Entry {
            name: name.to_owned(),
            kind: Kind::File,
            size: 1,
        }
    }

    #[test]
    fn legacy_directories_are_told_from_their_json() {
        let image = image();
        assert_eq!(
            legacy_position(BOTTOM, BOTTOM_JSON.as_bytes(), &image.chain),
            Some(0)
        );
        assert_eq!(
            legacy_position(MIDDLE, MIDDLE_JSON.as_bytes(), &image.chain),
            Some(1)
        );
        assert_eq!(
            legacy_position(TOP, TOP_JSON.as_bytes(), &image.chain),
            Some(2)
        );
        // Another image's chain, a changed byte, a wrong directory: not told.
        assert_eq!(
            legacy_position(TOP, TOP_JSON.as_bytes(), &image.chain[..2]),
            None
        );
        let changed = TOP_JSON.replace("amd64", "arm64");
        assert_eq!(legacy_position(TOP, changed.as_bytes(), &image.chain), None);
        assert_eq!(
            legacy_position(MIDDLE, TOP_JSON.as_bytes(), &image.chain),
            None
        );
        assert_eq!(
            legacy_position("nothex", TOP_JSON.as_bytes(), &image.chain),
            None
        );
    }

    #[test]
    fn entries_are_told_by_name_in_both_layouts() {
        let image = image();
        let mut catalog = Catalog::new(&image);
        let top_layer = file(&format!("{TOP}/layer.tar"));
        assert_eq!(catalog.role(&top_layer), Role::Other, "before its json");
        assert_eq!(
            catalog.role(&file(&format!("{TOP}/json"))),
            Role::LegacyJson(TOP.to_owned())
        );
        catalog.learn(TOP, TOP_JSON.as_bytes());
        assert_eq!(catalog.role(&top_layer), Role::Layer(2));
        let config = "2cad18b2ddfb67dab6675adad55731fee84cf2bfd7bce759775d7c89fa3f7c36";
        assert_eq!(catalog.role(&file(&format!("{config}.json"))), Role::Config);
        assert_eq!(
            catalog.role(&file(&format!("blobs/sha256/{config}"))),
            Role::Config
        );
        assert_eq!(
            catalog.role(&file(
                "blobs/sha256/aebb974d77aa5dad3e976c036a22d80140bec90f522bfdcaee75f83935a2942f"
            )),
            Role::Layer(1)
        );
        assert_eq!(catalog.role(&file("blobs/sha256/1234")), Role::Other);
        assert_eq!(catalog.role(&file("manifest.json")), Role::Other);
        let link = Entry {
            kind: Kind::Link,
            ..top_layer
        };
        assert_eq!(catalog.role(&link), Role::Other, "a duplicate's symlink");
    }

    #[test]
    fn top_level_fields_keep_their_raw_values() {
        let fields =
            top_level(br#" { "a" : {"x":[1,"}"]} , "b":"q\"uote", "c":null,"d":-1.5e3}"#).unwrap();
        let fields: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (*k, std::str::from_utf8(v).unwrap()))
            .collect();
        assert_eq!(
            fields,
            [
                ("a", r#"{"x":[1,"}"]}"#),
                ("b", r#""q\"uote""#),
                ("c", "null"),
                ("d", "-1.5e3")
            ]
        );
        for bad in [
            &b""[..],
            b"[]",
            b"{",
            b"{\"a\"",
            b"{\"a\":",
            b"{\"a\":1",
            b"{\"a\":{]",
            b"{\"a\":1 2}",
            b"{\"\\u0061\":1}",
        ] {
            assert_eq!(top_level(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(top_level(b"{}"), Some(Vec::new()));
    }
}
