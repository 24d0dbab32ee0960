//! The build context as a tar stream: the entries [`collect`] chose, written on a blocking thread
//! in 64 KiB chunks through a small channel, so a large context is never held in memory and a
//! build that is dropped stops the writing (the channel closes).
//!
//! Like the `docker` CLI, the archive carries each file's mode and modification time with owner
//! `0:0`; a Dockerfile outside the context goes in under a generated name that is also added to
//! `.dockerignore`, which tells the engine to drop it from the context once it has read it.

use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::UNIX_EPOCH;

use bytes::Bytes;
use futures_util::Stream;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::context::{
    BuildInputs, ContextError, Entry, EntryKind, collect, dockerfile_in_context, hex,
};

const CHUNK: usize = 64 * 1024;
/// Chunks in flight between the writer thread and the HTTP body.
const CHUNKS_AHEAD: usize = 4;

/// Where the engine finds the Dockerfile in the archive: its path when it lies inside the
/// context, else `.dockerfile.<digest of its contents>`.
pub fn dockerfile_name(inputs: &BuildInputs) -> Result<String, ContextError> {
    if let Some(inside) = dockerfile_in_context(inputs) {
        return Ok(inside);
    }
    let text = read(&inputs.dockerfile)?;
    Ok(format!(
        ".dockerfile.{}",
        &hex(&Sha256::digest(&text))[..20]
    ))
}

/// The archive as a stream of chunks for the request body, and the task writing it. The stream
/// ends with an error when the writer fails; the task's result says why.
pub fn stream(
    inputs: BuildInputs,
) -> (
    impl Stream<Item = io::Result<Bytes>> + Send + 'static,
    JoinHandle<Result<(), ContextError>>,
) {
    let (sender, receiver) = mpsc::channel(CHUNKS_AHEAD);
    let writer = tokio::task::spawn_blocking(move || {
        let mut out = ChannelWriter {
            sender: sender.clone(),
            buffer: Vec::with_capacity(CHUNK),
        };
        let result = collect(&inputs).and_then(|entries| write(&inputs, &entries, &mut out));
        let result = result.and_then(|()| out.flush().map_err(io_error(&inputs.context)));
        if let Err(error) = &result {
            // Fails the upload, so the engine does not build from half a context.
            let _ = sender.blocking_send(Err(io::Error::other(error.to_string())));
        }
        result
    });
    let chunks = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });
    (chunks, writer)
}

/// Writes the archive of `entries` (from [`collect`]) to `out`.
pub fn write(inputs: &BuildInputs, entries: &[Entry], out: impl Write) -> Result<(), ContextError> {
    let context = &inputs.context;
    let outside = match dockerfile_in_context(inputs) {
        Some(_) => None,
        None => Some(dockerfile_name(inputs)?),
    };
    let mut archive = tar::Builder::new(out);
    let mut has_ignore_file = false;
    for entry in entries {
        let path = context.join(&entry.path);
        let metadata = fs::symlink_metadata(&path).map_err(io_error(&path))?;
        let mut header = header(entry.mode, &metadata);
        let written = match (entry.kind, &outside) {
            (EntryKind::Dir, _) => {
                header.set_entry_type(tar::EntryType::Directory);
                archive.append_data(&mut header, &entry.path, io::empty())
            }
            (EntryKind::Symlink, _) => {
                let target = fs::read_link(&path).map_err(io_error(&path))?;
                header.set_entry_type(tar::EntryType::Symlink);
                archive.append_link(&mut header, &entry.path, target)
            }
            (EntryKind::File, Some(name)) if entry.path == ".dockerignore" => {
                has_ignore_file = true;
                let mut text = read(&path)?;
                text.extend_from_slice(format!("\n{name}\n").as_bytes());
                header.set_size(text.len() as u64);
                archive.append_data(&mut header, &entry.path, text.as_slice())
            }
            (EntryKind::File, _) => {
                let file = fs::File::open(&path).map_err(io_error(&path))?;
                let size = file.metadata().map_err(io_error(&path))?.len();
                header.set_size(size);
                archive.append_data(&mut header, &entry.path, Exact { file, left: size })
            }
        };
        written.map_err(io_error(&path))?;
    }
    if let Some(name) = &outside {
        let dockerfile = &inputs.dockerfile;
        let metadata = fs::metadata(dockerfile).map_err(io_error(dockerfile))?;
        if !has_ignore_file {
            let text = format!(".dockerignore\n{name}\n");
            let mut header = header(0o644, &metadata);
            header.set_size(text.len() as u64);
            archive
                .append_data(&mut header, ".dockerignore", text.as_bytes())
                .map_err(io_error(context))?;
        }
        let text = read(dockerfile)?;
        let mut header = header(0o644, &metadata);
        header.set_size(text.len() as u64);
        archive
            .append_data(&mut header, name, text.as_slice())
            .map_err(io_error(dockerfile))?;
    }
    archive
        .into_inner()
        .and_then(|mut out| out.flush())
        .map_err(io_error(context))
}

/// A regular-file header with the entry's mode and mtime, owned by `0:0`.
fn header(mode: u32, metadata: &fs::Metadata) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_size(0);
    let mtime = metadata
        .modified()
        .ok()
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |since| since.as_secs());
    header.set_mtime(mtime);
    header
}

fn read(path: &Path) -> Result<Vec<u8>, ContextError> {
    fs::read(path).map_err(io_error(path))
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> ContextError + '_ {
    move |source| ContextError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A file's contents, exactly as many bytes as its header announced: a file that shrinks while
/// it is sent is an error, not a corrupt archive.
struct Exact {
    file: fs::File,
    left: u64,
}

impl Read for Exact {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let limit = buffer
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let read = self.file.read(&mut buffer[..limit])?;
        if read == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file got shorter while it was sent",
            ));
        }
        self.left -= read as u64;
        Ok(read)
    }
}

/// Hands full chunks to the async side; fails once nobody reads any more.
struct ChannelWriter {
    sender: mpsc::Sender<io::Result<Bytes>>,
    buffer: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK));
        self.sender
            .blocking_send(Ok(Bytes::from(chunk)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the build was abandoned"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.buffer.len();
        let taken = data.len().min(room);
        self.buffer.extend_from_slice(&data[..taken]);
        if self.buffer.len() == CHUNK {
            self.send()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.send()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::os::unix::fs::{PermissionsExt, symlink};
    use std::path::PathBuf;

    use futures_util::StreamExt;

    use super::*;

    fn write_file(root: &Path, path: &str, text: &str) {
        let full = root.join(path);
        fs::create_dir_all(full.parent().unwrap()).unwrap();
        fs::write(full, text).unwrap();
    }

    fn inputs(context: &Path, dockerfile: PathBuf) -> BuildInputs {
        BuildInputs {
            context: context.to_path_buf(),
            dockerfile,
            args: BTreeMap::new(),
            target: None,
            labels: BTreeMap::new(),
        }
    }

    /// Path, type, mode and contents of each archive member.
    fn members_of(bytes: &[u8]) -> Vec<(String, tar::EntryType, u32, String)> {
        let mut archive = tar::Archive::new(bytes);
        archive
            .entries()
            .unwrap()
            .map(|entry| {
                let mut entry = entry.unwrap();
                let header = entry.header().clone();
                let mut text = String::new();
                let kind = header.entry_type();
                if kind == tar::EntryType::Symlink {
                    text = entry.link_name().unwrap().unwrap().display().to_string();
                } else {
                    entry.read_to_string(&mut text).unwrap();
                }
                let path = entry.path().unwrap().display().to_string();
                (path, kind, header.mode().unwrap(), text)
            })
            .collect()
    }

    fn archive(inputs: &BuildInputs) -> Vec<u8> {
        let mut bytes = Vec::new();
        write(inputs, &collect(inputs).unwrap(), &mut bytes).unwrap();
        bytes
    }

    #[test]
    fn members_keep_modes_links_and_long_paths() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write_file(root, "Dockerfile", "FROM scratch\n");
        write_file(root, "bin/run.sh", "#!/bin/sh\n");
        fs::set_permissions(root.join("bin/run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
        symlink("bin/run.sh", root.join("run")).unwrap();
        let long = format!("deep/{}/file.txt", "d".repeat(120));
        write_file(root, &long, "long\n");
        let members = members_of(&archive(&inputs(root, root.join("Dockerfile"))));
        let find = |path: &str| {
            members
                .iter()
                .find(|m| m.0.trim_end_matches('/') == path)
                .unwrap_or_else(|| panic!("no `{path}` in {members:?}"))
        };
        assert_eq!(find("bin").1, tar::EntryType::Directory);
        assert_eq!(find("bin/run.sh").2, 0o755);
        assert_eq!(find("bin/run.sh").3, "#!/bin/sh\n");
        assert_eq!(find("run").1, tar::EntryType::Symlink);
        assert_eq!(find("run").3, "bin/run.sh");
        assert_eq!(find(&long).3, "long\n");
        assert_eq!(find("Dockerfile").3, "FROM scratch\n");
    }

    #[test]
    fn an_outside_dockerfile_goes_in_under_a_name_the_engine_drops() {
        let dir = tempfile::tempdir().unwrap();
        let context = dir.path().join("ctx");
        write_file(&context, "app.txt", "app\n");
        write_file(dir.path(), "Dockerfile.app", "FROM scratch\nCOPY . /app\n");
        let outside = inputs(&context, dir.path().join("Dockerfile.app"));
        let name = dockerfile_name(&outside).unwrap();
        assert!(name.starts_with(".dockerfile."), "{name}");
        let members = members_of(&archive(&outside));
        let paths: Vec<&str> = members.iter().map(|m| m.0.as_str()).collect();
        assert_eq!(paths, ["app.txt", ".dockerignore", name.as_str()]);
        assert_eq!(members[1].3, format!(".dockerignore\n{name}\n"));
        assert_eq!(members[2].3, "FROM scratch\nCOPY . /app\n");

        write_file(&context, ".dockerignore", "*.log");
        let again = members_of(&archive(&outside));
        let ignore = again.iter().find(|m| m.0 == ".dockerignore").unwrap();
        assert_eq!(
            ignore.3,
            format!("*.log\n{name}\n"),
            "appended to the user's"
        );
    }

    #[tokio::test]
    async fn the_stream_carries_the_same_archive_in_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write_file(root, "Dockerfile", "FROM scratch\n");
        write_file(root, "big.bin", &"x".repeat(3 * CHUNK + 17));
        let inputs = inputs(root, root.join("Dockerfile"));
        let expected = archive(&inputs);
        let (chunks, writer) = stream(inputs);
        let chunks: Vec<Bytes> = chunks.map(Result::unwrap).collect().await;
        writer.await.unwrap().unwrap();
        assert!(chunks.len() > 3);
        assert_eq!(chunks.concat(), expected);
    }

    #[tokio::test]
    async fn a_dropped_stream_stops_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write_file(root, "Dockerfile", "FROM scratch\n");
        write_file(root, "big.bin", &"x".repeat(64 * CHUNK));
        let (chunks, writer) = stream(inputs(root, root.join("Dockerfile")));
        drop(chunks);
        let error = writer.await.unwrap().unwrap_err();
        assert!(matches!(error, ContextError::Io { .. }), "{error:?}");
    }

    #[tokio::test]
    async fn an_unreadable_context_fails_the_stream() {
        let dir = tempfile::tempdir().unwrap();
        let (chunks, writer) = stream(inputs(&dir.path().join("gone"), PathBuf::from("/x")));
        let items: Vec<io::Result<Bytes>> = chunks.collect().await;
        assert!(items.last().unwrap().is_err());
        assert!(writer.await.unwrap().is_err());
    }
}
