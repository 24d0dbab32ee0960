//! The build context: which files go to the Docker engine, and the digest of all build inputs
//! that names an image by its content.
//!
//! The walk follows what the `docker` CLI does: `.dockerignore` at the context root decides, an
//! excluded directory is skipped unless an exception could rescue something inside it, and the
//! Dockerfile and `.dockerignore` are always sent. Entries come out sorted, so the same inputs
//! always give the same digest and the same tar stream.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::ignore::{BadPattern, DockerIgnore};
pub use crate::plan::BuildInputs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EntryKind {
    Dir,
    File,
    Symlink,
}

/// One path of the context, relative to its root with `/` separators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub kind: EntryKind,
    pub mode: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("cannot read `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot use `{}`", path.display())]
    Ignore {
        path: PathBuf,
        #[source]
        source: BadPattern,
    },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> ContextError + '_ {
    move |source| ContextError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The `.dockerignore` rules of a context (none if it has no such file).
pub fn read_ignore(context: &Path) -> Result<DockerIgnore, ContextError> {
    let path = context.join(".dockerignore");
    match fs::read_to_string(&path) {
        Ok(text) => {
            DockerIgnore::parse(&text).map_err(|source| ContextError::Ignore { path, source })
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(DockerIgnore::empty()),
        Err(source) => Err(ContextError::Io { path, source }),
    }
}

/// Every entry sent to the engine, sorted by path.
pub fn collect(inputs: &BuildInputs) -> Result<Vec<Entry>, ContextError> {
    let ignore = read_ignore(&inputs.context)?;
    let always: Vec<String> = [
        Some(".dockerignore".to_owned()),
        dockerfile_in_context(inputs),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut entries = Vec::new();
    walk(&inputs.context, "", &ignore, &always, &mut entries)?;
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(entries)
}

/// The Dockerfile's path inside the context, if it is inside.
pub fn dockerfile_in_context(inputs: &BuildInputs) -> Option<String> {
    // `context/../Dockerfile.backend` (a config's `dockerfile: ../Dockerfile.backend`) starts
    // with the context's path but lies outside it.
    let dockerfile = lexically_normal(&inputs.dockerfile);
    let relative = dockerfile
        .strip_prefix(lexically_normal(&inputs.context))
        .ok()?;
    Some(
        relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/"),
    )
}

/// `path` without `.` and with each `..` taking away the component before it (also the path
/// the file watcher reports for a Dockerfile reached through `..`).
pub fn lexically_normal(path: &Path) -> PathBuf {
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                normal.pop();
            }
            other => normal.push(other),
        }
    }
    normal
}

fn walk(
    root: &Path,
    prefix: &str,
    ignore: &DockerIgnore,
    always: &[String],
    entries: &mut Vec<Entry>,
) -> Result<(), ContextError> {
    let dir = root.join(prefix);
    let mut children: Vec<_> = fs::read_dir(&dir)
        .map_err(io_error(&dir))?
        .collect::<Result<_, _>>()
        .map_err(io_error(&dir))?;
    children.sort_by_key(|child| child.file_name());
    for child in children {
        let name = child.file_name().to_string_lossy().into_owned();
        let path = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let metadata = fs::symlink_metadata(child.path()).map_err(io_error(&child.path()))?;
        let excluded = ignore.is_excluded(&path) && !always.contains(&path);
        let kind = if metadata.is_dir() {
            EntryKind::Dir
        } else if metadata.file_type().is_symlink() {
            EntryKind::Symlink
        } else if metadata.is_file() {
            EntryKind::File
        } else {
            // Sockets, FIFOs and devices cannot be sent (and reading a FIFO would block).
            continue;
        };
        if kind == EntryKind::Dir {
            let holds_kept = always.iter().any(|a| a.starts_with(&format!("{path}/")));
            if excluded && !ignore.may_hold_exceptions(&path) && !holds_kept {
                continue;
            }
            if !excluded {
                entries.push(Entry {
                    path: path.clone(),
                    kind,
                    mode: metadata.permissions().mode() & 0o7777,
                });
            }
            walk(root, &path, ignore, always, entries)?;
        } else if !excluded {
            entries.push(Entry {
                path,
                kind,
                mode: metadata.permissions().mode() & 0o7777,
            });
        }
    }
    Ok(())
}

/// A digest of everything that decides the image: the context's entries and contents, the
/// Dockerfile, build args, target and labels. Hex-encoded SHA-256.
pub fn input_digest(inputs: &BuildInputs) -> Result<String, ContextError> {
    let mut hasher = Sha256::new();
    hasher.update(b"todo-deploy build inputs v1\n");
    for entry in collect(inputs)? {
        let path = inputs.context.join(&entry.path);
        hasher.update(format!(
            "{:?} {} {:o}\n",
            entry.kind, entry.path, entry.mode
        ));
        match entry.kind {
            EntryKind::Dir => {}
            EntryKind::Symlink => {
                let target = fs::read_link(&path).map_err(io_error(&path))?;
                hasher.update(target.to_string_lossy().as_bytes());
            }
            EntryKind::File => hash_file(&mut hasher, &path)?,
        }
        hasher.update(b"\n");
    }
    hasher.update(b"dockerfile\n");
    hash_file(&mut hasher, &inputs.dockerfile)?;
    for (key, value) in &inputs.args {
        hasher.update(format!("arg {key}={value}\n"));
    }
    for (key, value) in &inputs.labels {
        hasher.update(format!("label {key}={value}\n"));
    }
    if let Some(target) = &inputs.target {
        hasher.update(format!("target {target}\n"));
    }
    Ok(hex(&hasher.finalize()))
}

fn hash_file(hasher: &mut Sha256, path: &Path) -> Result<(), ContextError> {
    let mut file = fs::File::open(path).map_err(io_error(path))?;
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = file.read(&mut buffer).map_err(io_error(path))?;
        if read == 0 {
            return Ok(());
        }
        hasher.update(&buffer[..read]);
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, path: &str, text: &str) {
        let full = root.join(path);
        fs::create_dir_all(full.parent().unwrap()).unwrap();
        fs::write(full, text).unwrap();
    }

    fn inputs(root: &Path) -> BuildInputs {
        BuildInputs {
            context: root.to_path_buf(),
            dockerfile: root.join("Dockerfile"),
            args: Default::default(),
            target: None,
            labels: Default::default(),
        }
    }

    fn files(root: &Path) -> Vec<String> {
        collect(&inputs(root))
            .unwrap()
            .into_iter()
            .filter(|e| e.kind != EntryKind::Dir)
            .map(|e| e.path)
            .collect()
    }

    #[test]
    fn honours_dockerignore_and_keeps_build_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "Dockerfile", "FROM scratch\n");
        write(
            root,
            ".dockerignore",
            "Dockerfile\n.dockerignore\nnode_modules\n**/*.log\ndocs\n!docs/keep.md\n",
        );
        write(root, "app/main.py", "print()\n");
        write(root, "app/debug.log", "x\n");
        write(root, "node_modules/pkg/index.js", "x\n");
        write(root, "docs/keep.md", "keep\n");
        write(root, "docs/drop.md", "drop\n");
        assert_eq!(
            files(root),
            [".dockerignore", "Dockerfile", "app/main.py", "docs/keep.md"]
        );
    }

    #[test]
    fn a_dockerfile_reached_through_dotdot_is_outside() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("ctx");
        write(&root, "Dockerfile", "FROM scratch\n");
        write(dir.path(), "Dockerfile.backend", "FROM scratch\n");
        let mut outside = inputs(&root);
        outside.dockerfile = root.join("../Dockerfile.backend");
        assert_eq!(dockerfile_in_context(&outside), None);
        let mut inside = inputs(&root);
        inside.dockerfile = root.join("./sub/../Dockerfile");
        assert_eq!(
            dockerfile_in_context(&inside).as_deref(),
            Some("Dockerfile")
        );
    }

    #[test]
    fn special_files_are_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "Dockerfile", "FROM scratch\n");
        let fifo = root.join("pipe");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        let _socket = std::os::unix::net::UnixListener::bind(root.join("sock")).unwrap();
        assert_eq!(files(root), ["Dockerfile"]);
        assert!(input_digest(&inputs(root)).is_ok(), "no hang, no error");
    }

    #[test]
    fn digest_follows_contents_args_and_ignored_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "Dockerfile", "FROM scratch\n");
        write(root, ".dockerignore", "*.tmp\n");
        write(root, "a.txt", "one\n");
        let first = input_digest(&inputs(root)).unwrap();
        assert_eq!(first, input_digest(&inputs(root)).unwrap());
        write(root, "scratch.tmp", "ignored\n");
        assert_eq!(
            first,
            input_digest(&inputs(root)).unwrap(),
            "ignored files do not count"
        );
        write(root, "a.txt", "two\n");
        let second = input_digest(&inputs(root)).unwrap();
        assert_ne!(first, second);
        let mut with_arg = inputs(root);
        with_arg.args.insert("VERSION".into(), "1".into());
        assert_ne!(second, input_digest(&with_arg).unwrap());
        write(root, "Dockerfile", "FROM scratch\nCOPY a.txt /\n");
        assert_ne!(second, input_digest(&inputs(root)).unwrap());
    }
}
