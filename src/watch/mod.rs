//! The watch stage: which saved files `dev` reacts to. The build contexts are watched whole
//! and their changes judged by the same `.dockerignore` rules as the context tar (so a file the
//! image never sees triggers nothing), with each service's Dockerfile wherever it is, and the
//! configuration files (`--config`, every `-f`, the env file). Bursts of saves are debounced by
//! `notify-debouncer-full` (a maintained crate: inotify, kqueue or FSEvents, and the renames an
//! editor's atomic save makes, handled for us); the batches arrive on a channel.

pub mod events;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify_debouncer_full::notify::event::{MetadataKind, ModifyKind};
use notify_debouncer_full::notify::{EventKind, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use tokio::sync::mpsc;

pub use events::{DevEvent, Report, ServiceState};

use crate::build::context::{dockerfile_in_context, lexically_normal, read_ignore};
use crate::build::ignore::DockerIgnore;
use crate::plan::ServicePlan;

/// How long the files must be quiet before a burst of saves is handled.
pub const DEBOUNCE: Duration = Duration::from_millis(200);

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot watch `{}` for changes", path.display())]
    Watch {
        path: PathBuf,
        #[source]
        source: notify_debouncer_full::notify::Error,
    },
}

impl crate::outcome::Diagnose for WatchError {
    fn hint(&self) -> Option<String> {
        Some("on Linux, raise the inotify limits: `sudo sysctl fs.inotify.max_user_watches=524288 fs.inotify.max_user_instances=512`".to_owned())
    }
}

/// One service's inputs as the watch judges them.
#[derive(Debug, Clone)]
struct Inputs {
    name: String,
    context: PathBuf,
    dockerfile: PathBuf,
    /// The Dockerfile's path in the context, when it is inside: always sent, like
    /// `.dockerignore`.
    dockerfile_inside: Option<String>,
    ignore: DockerIgnore,
}

/// What is watched, and what a changed path means.
#[derive(Debug, Clone)]
pub struct Watched {
    services: Vec<Inputs>,
    files: BTreeSet<PathBuf>,
}

/// What a batch of changed paths means.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Triggers {
    /// The services whose inputs changed.
    pub services: BTreeSet<String>,
    /// Whether a configuration file changed.
    pub config: bool,
    /// The paths that count, and those ignored.
    pub relevant: Vec<PathBuf>,
    pub ignored: Vec<PathBuf>,
}

impl Triggers {
    pub fn is_empty(&self) -> bool {
        self.services.is_empty() && !self.config
    }
}

impl Watched {
    /// The services' contexts (each with its `.dockerignore` as it is now; one that cannot be
    /// read ignores nothing, and resolving the plan reports it) and the configuration files.
    pub fn new(services: &[ServicePlan], files: &[PathBuf]) -> Watched {
        let services = services
            .iter()
            .map(|s| Inputs {
                name: s.name.clone(),
                context: s.build.context.clone(),
                dockerfile: lexically_normal(&s.build.dockerfile),
                dockerfile_inside: dockerfile_in_context(&s.build),
                ignore: read_ignore(&s.build.context).unwrap_or_else(|_| DockerIgnore::empty()),
            })
            .collect();
        Watched {
            services,
            files: files.iter().cloned().collect(),
        }
    }

    /// What `paths` trigger.
    pub fn classify(&self, paths: &[PathBuf]) -> Triggers {
        let mut triggers = Triggers::default();
        for path in paths {
            let mut counts = false;
            if self.files.contains(path) {
                triggers.config = true;
                counts = true;
            }
            for service in self.services.iter().filter(|s| s.triggered_by(path)) {
                triggers.services.insert(service.name.clone());
                counts = true;
            }
            let place = match counts {
                true => &mut triggers.relevant,
                false => &mut triggers.ignored,
            };
            if !place.contains(path) {
                place.push(path.clone());
            }
        }
        triggers
    }

    /// The directories to watch: each context whole; the directory of each file and of each
    /// Dockerfile outside its context, alone. A directory inside a context is not watched twice.
    pub fn roots(&self) -> Vec<(PathBuf, RecursiveMode)> {
        let contexts: BTreeSet<PathBuf> = self.services.iter().map(|s| s.context.clone()).collect();
        let inside = |dir: &Path| contexts.iter().any(|c| dir.starts_with(c));
        let mut roots: Vec<(PathBuf, RecursiveMode)> = contexts
            .iter()
            .map(|c| (c.clone(), RecursiveMode::Recursive))
            .collect();
        let singles = self
            .files
            .iter()
            .chain(self.services.iter().map(|s| &s.dockerfile))
            .filter_map(|file| file.parent())
            .filter(|dir| !inside(dir))
            .map(Path::to_path_buf)
            .collect::<BTreeSet<_>>();
        roots.extend(
            singles
                .into_iter()
                .map(|d| (d, RecursiveMode::NonRecursive)),
        );
        roots
    }
}

impl Inputs {
    /// Whether a change of `path` can change this service's image: its Dockerfile, its
    /// `.dockerignore`, the context itself (gone, or back), or a file the context sends.
    fn triggered_by(&self, path: &Path) -> bool {
        if path == self.dockerfile || path == self.context {
            return true;
        }
        let Ok(relative) = path.strip_prefix(&self.context) else {
            return false;
        };
        let relative: Vec<String> = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let relative = relative.join("/");
        relative == ".dockerignore"
            || self.dockerfile_inside.as_deref() == Some(relative.as_str())
            || !self.ignore.is_excluded(&relative)
    }
}

/// Whether an event can change what a file holds: not a read (which digesting the contexts does
/// all the time) nor an access time.
fn changes_content(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(_) | EventKind::Other => false,
        EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)) => false,
        EventKind::Any | EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => true,
    }
}

/// A batch of changed paths after a quiet spell, or what the watcher could not read.
pub type Batch = Result<Vec<PathBuf>, String>;

/// The running watch: dropping it stops it.
pub struct FileWatch {
    debouncer: Debouncer<RecommendedWatcher, RecommendedCache>,
}

impl FileWatch {
    /// Starts watching `roots`; batches arrive on the receiver, each after `debounce` of quiet.
    pub fn start(
        roots: &[(PathBuf, RecursiveMode)],
        debounce: Duration,
    ) -> Result<(FileWatch, mpsc::UnboundedReceiver<Batch>), WatchError> {
        let (sender, receiver) = mpsc::unbounded_channel();
        let handler = move |result: DebounceEventResult| {
            let batch = match result {
                Ok(events) => Ok(events
                    .into_iter()
                    .filter(|e| changes_content(&e.event.kind))
                    .flat_map(|e| e.event.paths)
                    .collect::<Vec<_>>()),
                Err(errors) => Err(errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")),
            };
            // The receiver is gone only when the loop has ended.
            let _ = sender.send(batch);
        };
        let debouncer =
            new_debouncer(debounce, None, handler).map_err(|source| WatchError::Watch {
                path: PathBuf::from("."),
                source,
            })?;
        let mut watch = FileWatch { debouncer };
        for (root, mode) in roots {
            watch.add(root, *mode)?;
        }
        Ok((watch, receiver))
    }

    /// Watches `root` (again: a context that was deleted and made anew needs its watches back).
    pub fn add(&mut self, root: &Path, mode: RecursiveMode) -> Result<(), WatchError> {
        self.debouncer
            .watch(root, mode)
            .map_err(|source| WatchError::Watch {
                path: root.to_path_buf(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::BuildInputs;

    fn inputs(context: &Path, dockerfile: &Path) -> Inputs {
        let build = BuildInputs {
            context: context.to_path_buf(),
            dockerfile: dockerfile.to_path_buf(),
            args: Default::default(),
            target: None,
            labels: Default::default(),
        };
        Inputs {
            name: "backend".to_owned(),
            context: context.to_path_buf(),
            dockerfile: lexically_normal(dockerfile),
            dockerfile_inside: dockerfile_in_context(&build),
            ignore: DockerIgnore::parse("*.log\nnode_modules\nDockerfile\n.dockerignore\n")
                .expect("patterns"),
        }
    }

    fn watched(dockerfile: &str) -> Watched {
        let context = Path::new("/p/backend");
        Watched {
            services: vec![inputs(context, &context.join(dockerfile))],
            files: BTreeSet::from([
                PathBuf::from("/p/config/todo-deploy.yaml"),
                PathBuf::from("/p/.env"),
            ]),
        }
    }

    fn services(triggers: &Triggers) -> Vec<&str> {
        triggers.services.iter().map(String::as_str).collect()
    }

    #[test]
    fn the_context_counts_as_its_dockerignore_says() {
        let watched = watched("Dockerfile");
        let changed = watched.classify(&[PathBuf::from("/p/backend/app/main.py")]);
        assert_eq!(services(&changed), ["backend"]);
        assert!(!changed.config);
        for ignored in ["/p/backend/debug.log", "/p/backend/node_modules/x/index.js"] {
            let triggers = watched.classify(&[PathBuf::from(ignored)]);
            assert!(triggers.is_empty(), "{ignored}");
            assert_eq!(triggers.ignored, [PathBuf::from(ignored)]);
        }
    }

    #[test]
    fn the_dockerfile_and_dockerignore_count_even_when_ignored() {
        let watched = watched("Dockerfile");
        for path in [
            "/p/backend/Dockerfile",
            "/p/backend/.dockerignore",
            "/p/backend",
        ] {
            let triggers = watched.classify(&[PathBuf::from(path)]);
            assert_eq!(services(&triggers), ["backend"], "{path}");
        }
    }

    #[test]
    fn a_dockerfile_outside_the_context_counts_and_its_directory_is_watched() {
        let watched = watched("../Dockerfile.backend");
        let triggers = watched.classify(&[PathBuf::from("/p/Dockerfile.backend")]);
        assert_eq!(services(&triggers), ["backend"]);
        let roots = watched.roots();
        assert!(roots.contains(&(PathBuf::from("/p/backend"), RecursiveMode::Recursive)));
        assert!(roots.contains(&(PathBuf::from("/p/config"), RecursiveMode::NonRecursive)));
        assert!(roots.contains(&(PathBuf::from("/p"), RecursiveMode::NonRecursive)));
    }

    #[test]
    fn configuration_files_count_and_their_neighbours_do_not() {
        let watched = watched("Dockerfile");
        let triggers = watched.classify(&[
            PathBuf::from("/p/.env"),
            PathBuf::from("/p/config/notes.txt"),
        ]);
        assert!(triggers.config);
        assert!(triggers.services.is_empty());
        assert_eq!(triggers.ignored, [PathBuf::from("/p/config/notes.txt")]);
    }

    #[test]
    fn reads_are_not_changes() {
        use notify_debouncer_full::notify::event::{AccessKind, AccessMode, CreateKind};
        let read = EventKind::Access(AccessKind::Close(AccessMode::Read));
        assert!(
            !changes_content(&read),
            "digesting a context reads every file"
        );
        let atime = EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime));
        assert!(!changes_content(&atime));
        assert!(changes_content(&EventKind::Create(CreateKind::File)));
        assert!(changes_content(&EventKind::Modify(ModifyKind::Any)));
    }

    /// The real watcher, on a real directory: a file written in it arrives as one batch after
    /// the quiet spell.
    #[tokio::test]
    async fn a_write_arrives_as_a_batch() {
        let dir = tempfile::tempdir().expect("a dir");
        let root = dir.path().to_path_buf();
        let roots = [(root.clone(), RecursiveMode::Recursive)];
        let (_watch, mut batches) =
            FileWatch::start(&roots, Duration::from_millis(50)).expect("watching");
        let file = root.join("main.py");
        std::fs::write(&file, "print()\n").expect("write");
        let batch = batches.recv().await.expect("a batch").expect("no error");
        assert!(batch.contains(&file), "{batch:?}");
    }
}
