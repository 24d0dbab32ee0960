//! What each node was seen to hold, remembered between runs, so that an unchanged `up` asks no
//! node anything: checking a node costs `docker exec` round trips (some 100 ms each), remembering
//! costs a file read.
//!
//! An entry is keyed by the node container's ID, which changes when the node is recreated
//! (`minikube delete`, `kind delete cluster`) while its image store survives restarts; and it
//! names the image *ID* under each reference, so a rebuilt image under a reused tag is never
//! taken for the old one. A rollout that finds an image missing anyway forgets it ([`forget`]),
//! so the next run checks the node again. The file lives in the user's cache directory; losing
//! it only costs the checks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::outcome::NodeLoad;

/// Held while this process reads, changes and writes the file.
static WRITING: Mutex<()> = Mutex::new(());

/// Node container ID → reference → image ID.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    nodes: BTreeMap<String, BTreeMap<String, String>>,
}

/// `$XDG_CACHE_HOME/todo-deploy/nodes.json`, else `$HOME/.cache/todo-deploy/nodes.json`.
pub fn path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let base = env("XDG_CACHE_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|home| Path::new(&home).join(".cache")))?;
    Some(base.join("todo-deploy").join("nodes.json"))
}

impl Memory {
    /// The remembered state, or nothing if the file is missing or unreadable.
    pub fn read(path: Option<&Path>) -> Memory {
        path.and_then(|p| std::fs::read(p).ok())
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Adds what `loaded` put on the nodes to the file at `path`: read, changed and written
    /// under one lock, so loads that end at the same time (one per image, while other images
    /// still build) all stay remembered.
    pub fn remember_all(path: Option<&Path>, loaded: &[NodeLoad]) {
        let _writing = WRITING
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut known = Memory::read(path);
        for load in loaded {
            if let Some(instance) = &load.instance {
                known.remember(instance, &load.image, &load.id);
            }
        }
        known.write(path);
    }

    /// Best effort: a cache that cannot be written only means checking next time.
    pub fn write(&self, path: Option<&Path>) {
        let Some(path) = path else { return };
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Ok(bytes) = serde_json::to_vec(self) {
            // A name of this process's own: two runs writing at once never share a half file.
            let temporary = path.with_extension(format!("json.{}.tmp", std::process::id()));
            if std::fs::write(&temporary, bytes).is_ok() {
                let _ = std::fs::rename(&temporary, path);
            }
        }
    }

    /// Whether the node container `instance` was seen holding `id` under `reference`.
    pub fn knows(&self, instance: &str, reference: &str, id: &str) -> bool {
        self.nodes
            .get(instance)
            .and_then(|images| images.get(reference))
            .is_some_and(|known| known == id)
    }

    pub fn remember(&mut self, instance: &str, reference: &str, id: &str) {
        self.nodes
            .entry(instance.to_owned())
            .or_default()
            .insert(reference.to_owned(), id.to_owned());
    }
}

/// Forgets `references` on every node: a rollout found one missing despite what was remembered.
pub fn forget(path: Option<&Path>, references: &[String]) {
    let _writing = WRITING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut memory = Memory::read(path);
    for images in memory.nodes.values_mut() {
        for reference in references {
            images.remove(reference);
        }
    }
    memory.write(path);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_ids_per_node_instance_and_forgets() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("todo-deploy").join("nodes.json");
        let mut memory = Memory::read(Some(&file));
        assert!(!memory.knows("c1", "app:1", "sha256:a"));
        memory.remember("c1", "app:1", "sha256:a");
        memory.write(Some(&file));
        let again = Memory::read(Some(&file));
        assert!(again.knows("c1", "app:1", "sha256:a"));
        assert!(
            !again.knows("c1", "app:1", "sha256:b"),
            "a rebuilt image under the same tag"
        );
        assert!(!again.knows("c2", "app:1", "sha256:a"), "a recreated node");
        forget(Some(&file), &["app:1".to_owned()]);
        assert!(!Memory::read(Some(&file)).knows("c1", "app:1", "sha256:a"));
    }

    #[test]
    fn the_cache_directory_follows_xdg() {
        let env = |key: &str| match key {
            "XDG_CACHE_HOME" => Some("/x".to_owned()),
            "HOME" => Some("/home/u".to_owned()),
            _ => None,
        };
        assert_eq!(path(&env), Some(PathBuf::from("/x/todo-deploy/nodes.json")));
        let home = |key: &str| (key == "HOME").then(|| "/home/u".to_owned());
        assert_eq!(
            path(&home),
            Some(PathBuf::from("/home/u/.cache/todo-deploy/nodes.json"))
        );
    }
}
