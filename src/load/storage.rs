//! An image's config and layers read straight from a Docker engine's `overlay2` storage on this
//! machine, for a layered load that must not wait for `docker save`: Docker 20.10 writes every
//! layer of the image to a temporary directory before the export's first byte (about a second
//! per 200 MB), while what a node lacks after a one-file change is a few kilobytes.
//!
//! The engine keeps, for each layer, its files unpacked (`<root>/overlay2/<cache ID>/diff`) and
//! a tar-split record (`<root>/image/overlay2/layerdb/sha256/<chain ID>/tar-split.json.gz`):
//! gzipped JSON lines, each either a segment (`"type":2`, raw bytes of the tar in base64:
//! headers, padding, the end) or a file (`"type":1`, a name and a size, whose content is the
//! file of that name in the diff directory). In order they are the layer's tar byte for byte;
//! `docker save` rebuilds layers the same way. The config is the file named by the image ID
//! under `<root>/image/overlay2/imagedb/content/sha256/`.
//!
//! Nothing is trusted: the config must hash to the image ID, and every layer read is hashed
//! against its diff ID as it streams (a layer that is not is an error, which ends the archive
//! before `index.json`, so a node imports nothing). A file is read only if every part of its
//! name below the diff directory is a real directory and it is a regular file: an image's
//! symbolic links (`x -> /root`, then a file `x/key`, unpacked harmlessly inside the layer)
//! must not make this process read the host's files. The storage is found from the `UpperDir`
//! the engine reports for the image and checked against the top layer's cache ID; an engine
//! elsewhere (a VM, another host), another storage driver, or files this user cannot open mean
//! `open` says why and the load reads the export instead. Only the records of the layers that
//! may be sent are kept; the others are read for their length.
//!
//! Written here rather than taken from a crate: no Rust crate reads tar-split records (the
//! format is Go's `vbatts/tar-split`), and reading it is this one file.

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use flate2::read::GzDecoder;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::digest::{DiffId, Digest};
use super::image::Image;

/// How much of a file is read at once.
const CHUNK: usize = 256 * 1024;
/// A tar-split line longer than this is not a record of an image layer.
const LINE_LIMIT: usize = 16 * 1024 * 1024;

/// An image found in the engine's storage, every layer's record read.
#[derive(Debug)]
pub struct Stored {
    config: Vec<u8>,
    /// Bottom first, as the image's diff IDs.
    layers: Vec<Layer>,
}

/// One layer: its diff directory and its tar, as parts.
#[derive(Debug)]
struct Layer {
    dir: PathBuf,
    parts: Vec<Part>,
    /// The tar's length.
    size: u64,
}

#[derive(Debug, PartialEq, Eq)]
enum Part {
    Raw(Bytes),
    /// `size` bytes of the file at this path below the diff directory.
    File {
        path: PathBuf,
        size: u64,
    },
}

/// One line of a tar-split record.
#[derive(Deserialize)]
struct Record {
    #[serde(rename = "type")]
    kind: u8,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    name_raw: Option<String>,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    payload: Option<String>,
}

impl Stored {
    /// Finds `image` in the storage its engine reported (`upper`: the top layer's diff
    /// directory), keeping the records of the layers from `lowest` up; why not, when it cannot
    /// be read from here.
    pub fn open(image: &Image, upper: &Path, lowest: usize) -> Result<Stored, String> {
        let root = root_of(upper)?;
        let config = std::fs::read(
            root.join("image/overlay2/imagedb/content/sha256")
                .join(image.id.0.hex()),
        )
        .map_err(|e| format!("the image's config in `{}`: {e}", root.display()))?;
        if Digest::of(&config) != image.id.0 {
            return Err("the stored config is not the image's".to_owned());
        }
        let mut layers = Vec::new();
        for (position, chain) in image.chain.iter().enumerate() {
            let record = root
                .join("image/overlay2/layerdb/sha256")
                .join(chain.0.hex());
            let read = |name: &str| {
                std::fs::read_to_string(record.join(name))
                    .map_err(|e| format!("`{}`: {e}", record.join(name).display()))
            };
            let cache = read("cache-id")?;
            let cache = cache.trim();
            if cache.is_empty() || cache.contains(['/', '.']) {
                return Err(format!("the cache ID `{cache}` of layer `{chain}`"));
            }
            let dir = root.join("overlay2").join(cache).join("diff");
            let split = File::open(record.join("tar-split.json.gz"))
                .map_err(|e| format!("the tar-split record of layer `{chain}`: {e}"))?;
            let keep = position >= lowest;
            let (parts, size) = parts(BufReader::new(GzDecoder::new(split)), keep)
                .map_err(|e| format!("the tar-split record of layer `{chain}`: {e}"))?;
            layers.push(Layer { dir, parts, size });
        }
        if layers.last().map(|l| l.dir.as_path()) != Some(upper) {
            return Err(format!(
                "the top layer's files are not in `{}`, where the engine said",
                upper.display()
            ));
        }
        Ok(Stored { config, layers })
    }

    pub fn config(&self) -> &[u8] {
        &self.config
    }

    /// The tar length of the layer at `position`.
    pub fn size(&self, position: usize) -> Option<u64> {
        self.layers.get(position).map(|l| l.size)
    }

    /// Checks that every file the layers from `position` up need is there, a regular file
    /// reached through real directories, openable, and of its recorded size.
    pub fn check_from(&self, position: usize) -> Result<(), String> {
        for layer in self.layers.iter().skip(position) {
            for part in &layer.parts {
                if let Part::File { path, size } = part {
                    let (_, length) = open_beneath(&layer.dir, path)?;
                    if length != *size {
                        let shown = layer.dir.join(path);
                        let shown = shown.display();
                        return Err(format!("`{shown}` is {length} bytes, recorded {size}"));
                    }
                }
            }
        }
        Ok(())
    }

    /// The tar of the layer at `position`, in pieces given to `out` (which returns false to
    /// stop), hashed: an error when it is not `diff`.
    pub fn read(
        &self,
        position: usize,
        diff: DiffId,
        out: &mut dyn FnMut(Bytes) -> bool,
    ) -> Result<(), String> {
        let layer = self
            .layers
            .get(position)
            .ok_or_else(|| format!("no layer at {position}"))?;
        let mut hash = Sha256::new();
        let mut give = |bytes: Bytes| {
            hash.update(&bytes);
            out(bytes)
        };
        for part in &layer.parts {
            let going = match part {
                Part::Raw(bytes) => give(bytes.clone()),
                Part::File { path, size } => copy(&layer.dir, path, *size, &mut give)?,
            };
            if !going {
                return Ok(());
            }
        }
        let found = Digest::finish(hash);
        if found != diff.0 {
            return Err(format!(
                "the layer rebuilt from the engine's storage hashes to `{found}`, not `{diff}`"
            ));
        }
        Ok(())
    }
}

/// The storage root from a diff directory `<root>/overlay2/<cache ID>/diff`.
fn root_of(upper: &Path) -> Result<PathBuf, String> {
    let shown = upper.display();
    let mut up = upper.ancestors().skip(1);
    let (Some(cache), Some(driver)) = (up.next(), up.next()) else {
        return Err(format!("`{shown}` is not an overlay2 diff directory"));
    };
    let named = |p: &Path, name: &str| p.file_name().is_some_and(|n| n == name);
    if !named(upper, "diff") || !named(driver, "overlay2") || cache.file_name().is_none() {
        return Err(format!("`{shown}` is not an overlay2 diff directory"));
    }
    driver
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("`{shown}` has no storage root"))
}

/// A tar-split record's parts (none unless `keep`) and the tar's length.
fn parts(mut reader: impl BufRead, keep: bool) -> Result<(Vec<Part>, u64), String> {
    let mut parts = Vec::new();
    let mut size = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = (&mut reader)
            .take(LINE_LIMIT as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| e.to_string())?;
        if read == 0 {
            break;
        }
        if line.len() > LINE_LIMIT {
            return Err("a line longer than 16 MiB".to_owned());
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let record: Record = serde_json::from_slice(&line).map_err(|e| e.to_string())?;
        let part = part(record)?;
        let length = match &part {
            Some(Part::Raw(bytes)) => bytes.len() as u64,
            Some(Part::File { size, .. }) => *size,
            None => 0,
        };
        size = size.checked_add(length).ok_or("a tar longer than 2^64")?;
        if keep {
            parts.extend(part);
        }
    }
    Ok((parts, size))
}

/// What one record adds to the tar: nothing for an empty file.
fn part(record: Record) -> Result<Option<Part>, String> {
    match record.kind {
        2 => {
            let payload = record.payload.unwrap_or_default();
            let bytes = STANDARD
                .decode(payload)
                .map_err(|e| format!("a segment's payload: {e}"))?;
            Ok(Some(Part::Raw(Bytes::from(bytes))))
        }
        1 if record.size == 0 => Ok(None),
        1 => {
            let name = match (record.name, record.name_raw) {
                (Some(name), _) => name.into_bytes(),
                (None, Some(raw)) => STANDARD.decode(raw).map_err(|e| e.to_string())?,
                (None, None) => return Err("a file without a name".to_owned()),
            };
            Ok(Some(Part::File {
                path: relative(OsStr::from_bytes(&name))?,
                size: record.size,
            }))
        }
        other => Err(format!("a record of unknown type {other}")),
    }
}

/// A tar entry's name as a path that stays below the diff directory.
fn relative(name: &OsStr) -> Result<PathBuf, String> {
    let path = Path::new(name);
    if path
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        Ok(path.to_path_buf())
    } else {
        Err(format!(
            "the file name `{}` leaves the layer",
            path.display()
        ))
    }
}

/// Opens the regular file `path` below `dir` and gives its length, refusing a name any part of
/// which is a symbolic link (or not a directory), and anything but a regular file (a FIFO
/// would block the read forever).
fn open_beneath(dir: &Path, path: &Path) -> Result<(File, u64), String> {
    let file = dir.join(path);
    let shown = || file.display().to_string();
    let mut walked = dir.to_path_buf();
    let mut parts = path.components().peekable();
    while let Some(part) = parts.next() {
        walked.push(part);
        if parts.peek().is_some() {
            let kind = std::fs::symlink_metadata(&walked)
                .map_err(|e| format!("`{}`: {e}", walked.display()))?
                .file_type();
            if !kind.is_dir() {
                let walked = walked.display();
                return Err(format!(
                    "`{walked}` is not a directory (a link?), for `{}`",
                    shown()
                ));
            }
        }
    }
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&file)
        .map_err(|e| format!("`{}`: {e}", shown()))?;
    let metadata = opened
        .metadata()
        .map_err(|e| format!("`{}`: {e}", shown()))?;
    if !metadata.is_file() {
        return Err(format!("`{}` is not a regular file", shown()));
    }
    Ok((opened, metadata.len()))
}

/// Gives exactly `size` bytes of the file `path` below `dir` to `give`; whether to go on.
fn copy(
    dir: &Path,
    path: &Path,
    size: u64,
    give: &mut dyn FnMut(Bytes) -> bool,
) -> Result<bool, String> {
    let file = dir.join(path);
    let shown = || file.display().to_string();
    let (mut reader, _) = open_beneath(dir, path)?;
    let mut left = size;
    while left > 0 {
        let mut buffer = vec![0; CHUNK.min(usize::try_from(left).unwrap_or(CHUNK))];
        let read = reader
            .read(&mut buffer)
            .map_err(|e| format!("`{}`: {e}", shown()))?;
        if read == 0 {
            return Err(format!("`{}` ended {left} bytes short", shown()));
        }
        buffer.truncate(read);
        left -= read as u64;
        if !give(Bytes::from(buffer)) {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;
    use crate::load::digest::{DiffId, ImageId, chain_ids};

    /// A layer tar of `files` (a directory entry first) and its tar-split record, as the
    /// engine writes it: the bytes between file contents as segments, each content a file.
    fn layer(files: &[(&str, &[u8])]) -> (Vec<u8>, Vec<u8>) {
        let mut builder = tar::Builder::new(Vec::new());
        let mut dir = tar::Header::new_gnu();
        dir.set_entry_type(tar::EntryType::Directory);
        dir.set_mode(0o755);
        dir.set_size(0);
        builder.append_data(&mut dir, "app/", &[][..]).unwrap();
        for (name, content) in files {
            let mut header = tar::Header::new_gnu();
            header.set_mode(0o644);
            header.set_size(content.len() as u64);
            builder.append_data(&mut header, name, *content).unwrap();
        }
        let tar = builder.into_inner().unwrap();
        let mut lines = Vec::new();
        let mut at = 0usize;
        let mut archive = tar::Archive::new(&tar[..]);
        let segment = |lines: &mut Vec<u8>, bytes: &[u8]| {
            let payload = STANDARD.encode(bytes);
            writeln!(lines, r#"{{"type":2,"payload":"{payload}"}}"#).unwrap();
        };
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let start = entry.raw_file_position() as usize;
            let size = entry.size() as usize;
            let name = entry.path().unwrap().display().to_string();
            segment(&mut lines, &tar[at..start]);
            writeln!(lines, r#"{{"type":1,"name":"{name}","size":{size}}}"#).unwrap();
            at = start + size;
        }
        segment(&mut lines, &tar[at..]);
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(&lines).unwrap();
        (tar, gz.finish().unwrap())
    }

    /// An engine's storage under `root` holding an image of `layers`; the image.
    fn storage(root: &Path, layers: &[&[(&str, &[u8])]]) -> (Image, Vec<Vec<u8>>) {
        let built: Vec<(Vec<u8>, Vec<u8>)> = layers.iter().map(|files| layer(files)).collect();
        let diff_ids: Vec<DiffId> = built
            .iter()
            .map(|(tar, _)| DiffId(Digest::of(tar)))
            .collect();
        let chain = chain_ids(&diff_ids);
        let listed: Vec<String> = diff_ids.iter().map(ToString::to_string).collect();
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": listed},
        }))
        .unwrap();
        let id = ImageId(Digest::of(&config));
        let images = root.join("image/overlay2/imagedb/content/sha256");
        std::fs::create_dir_all(&images).unwrap();
        std::fs::write(images.join(id.0.hex()), &config).unwrap();
        let mut upper = PathBuf::new();
        for (i, ((_, split), files)) in built.iter().zip(layers).enumerate() {
            let record = root
                .join("image/overlay2/layerdb/sha256")
                .join(chain[i].0.hex());
            std::fs::create_dir_all(&record).unwrap();
            std::fs::write(record.join("cache-id"), format!("cache{i}")).unwrap();
            std::fs::write(record.join("tar-split.json.gz"), split).unwrap();
            upper = root.join(format!("overlay2/cache{i}/diff"));
            for (name, content) in *files {
                let file = upper.join(name);
                std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                std::fs::write(file, content).unwrap();
            }
        }
        let image = Image {
            upper: Some(upper),
            ..Image::for_tests("app:v1", id, diff_ids)
        };
        (image, built.into_iter().map(|(tar, _)| tar).collect())
    }

    fn read_all(stored: &Stored, image: &Image, position: usize) -> Result<Vec<u8>, String> {
        let mut bytes = Vec::new();
        stored.read(position, image.diff_ids[position], &mut |piece| {
            bytes.extend_from_slice(&piece);
            true
        })?;
        Ok(bytes)
    }

    #[test]
    fn every_layer_is_rebuilt_byte_for_byte_from_its_files_and_record() {
        let root = tempfile::tempdir().unwrap();
        let big = vec![7u8; 3 * CHUNK + 5];
        let long = format!("app/{}/deep.txt", "n".repeat(120));
        let files: [&[(&str, &[u8])]; 2] = [
            &[("app/big.bin", &big), ("app/empty", b"")],
            &[("app/version", b"two\n"), (&long, b"long name\n")],
        ];
        let (image, tars) = storage(root.path(), &files);
        let stored = Stored::open(&image, image.upper.as_deref().unwrap(), 0).unwrap();
        stored.check_from(0).unwrap();
        assert_eq!(stored.config().len() as u64, {
            let path = root.path().join("image/overlay2/imagedb/content/sha256");
            std::fs::metadata(path.join(image.id.0.hex()))
                .unwrap()
                .len()
        });
        for (position, tar) in tars.iter().enumerate() {
            assert_eq!(stored.size(position), Some(tar.len() as u64));
            assert_eq!(&read_all(&stored, &image, position).unwrap(), tar);
        }
    }

    #[test]
    fn a_changed_or_missing_file_is_found_before_or_while_reading() {
        let root = tempfile::tempdir().unwrap();
        let files: [&[(&str, &[u8])]; 1] = [&[("app/version", b"one\n")]];
        let (image, _) = storage(root.path(), &files);
        let upper = image.upper.clone().unwrap();
        // Same length, other bytes: only the hash can tell.
        std::fs::write(upper.join("app/version"), b"two\n").unwrap();
        let stored = Stored::open(&image, &upper, 0).unwrap();
        stored.check_from(0).unwrap();
        let error = read_all(&stored, &image, 0).unwrap_err();
        assert!(
            error.contains("hashes to") && error.contains("not `sha256:"),
            "{error}"
        );
        std::fs::write(upper.join("app/version"), b"longer\n").unwrap();
        let error = stored.check_from(0).unwrap_err();
        assert!(error.contains("is 7 bytes, recorded 4"), "{error}");
        std::fs::remove_file(upper.join("app/version")).unwrap();
        let error = stored.check_from(0).unwrap_err();
        assert!(error.contains("app/version"), "{error}");
    }

    #[test]
    fn a_link_in_a_files_name_or_a_file_that_is_not_regular_is_never_read() {
        // The layer, unpacked, holds `app -> <outside>` and then `app/version`: inside the
        // engine's jail a harmless file, on this host the outside file of the same length.
        let root = tempfile::tempdir().unwrap();
        let files: [&[(&str, &[u8])]; 1] = [&[("app/version", b"one\n")]];
        let (image, _) = storage(root.path(), &files);
        let upper = image.upper.clone().unwrap();
        let outside = root.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("version"), b"key!").unwrap();
        std::fs::remove_dir_all(upper.join("app")).unwrap();
        std::os::unix::fs::symlink(&outside, upper.join("app")).unwrap();
        let stored = Stored::open(&image, &upper, 0).unwrap();
        let error = stored.check_from(0).unwrap_err();
        assert!(error.contains("is not a directory (a link?)"), "{error}");
        let mut read = Vec::new();
        let error = stored
            .read(0, image.diff_ids[0], &mut |piece| {
                read.extend_from_slice(&piece);
                true
            })
            .unwrap_err();
        assert!(error.contains("a link?"), "{error}");
        assert!(
            !read.windows(4).any(|w| w == b"key!"),
            "the outside file was read"
        );

        // The file itself a link, or a FIFO (which would block a read forever).
        std::fs::remove_file(upper.join("app")).unwrap();
        std::fs::create_dir_all(upper.join("app")).unwrap();
        std::os::unix::fs::symlink(outside.join("version"), upper.join("app/version")).unwrap();
        assert!(stored.check_from(0).is_err());
        std::fs::remove_file(upper.join("app/version")).unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(upper.join("app/version"))
            .status()
            .unwrap();
        assert!(made.success());
        let error = stored.check_from(0).unwrap_err();
        assert!(error.contains("not a regular file"), "{error}");
    }

    #[test]
    fn the_layers_below_the_lowest_sent_are_measured_not_kept() {
        let root = tempfile::tempdir().unwrap();
        let files: [&[(&str, &[u8])]; 2] = [&[("app/base", b"base\n")], &[("app/top", b"top\n")]];
        let (image, tars) = storage(root.path(), &files);
        let stored = Stored::open(&image, image.upper.as_deref().unwrap(), 1).unwrap();
        assert_eq!(stored.size(0), Some(tars[0].len() as u64));
        assert!(stored.layers[0].parts.is_empty());
        assert_eq!(read_all(&stored, &image, 1).unwrap(), tars[1]);
    }

    #[test]
    fn storage_that_is_not_the_engines_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let files: [&[(&str, &[u8])]; 1] = [&[("app/version", b"one\n")]];
        let (image, _) = storage(root.path(), &files);
        let elsewhere = root.path().join("overlay2/other/diff");
        let error = Stored::open(&image, &elsewhere, 0).unwrap_err();
        assert!(error.contains("not in"), "{error}");
        let error = Stored::open(&image, Path::new("/var/lib/docker/vfs/dir/x"), 0).unwrap_err();
        assert!(error.contains("not an overlay2 diff directory"), "{error}");
        let error =
            Stored::open(&image, &root.path().join("nothing/overlay2/c/diff"), 0).unwrap_err();
        assert!(error.contains("config"), "{error}");
    }

    #[test]
    fn records_that_leave_the_layer_or_are_not_records_are_errors() {
        let outside = r#"{"type":1,"name":"../etc/passwd","size":5}"#;
        let error = parts(outside.as_bytes(), true).unwrap_err();
        assert!(error.contains("leaves the layer"), "{error}");
        let absolute = r#"{"type":1,"name":"/etc/passwd","size":5}"#;
        assert!(parts(absolute.as_bytes(), true).is_err());
        assert!(
            parts(&br#"{"type":3}"#[..], true)
                .unwrap_err()
                .contains("unknown type 3")
        );
        assert!(parts(&b"not json"[..], true).is_err());
        let empty = "{\"type\":1,\"name\":\"a/\",\"payload\":null,\"position\":1}\n\n";
        assert_eq!(parts(empty.as_bytes(), true).unwrap(), (Vec::new(), 0));
    }
}
