//! The container runtime inside a node and the three things the load stage has it do, each one
//! `sh -c` script so that one `docker exec` (some 100 ms) asks or does everything: list what the
//! node holds, import an archive read on stdin, tag an image it has. An import or a tag ends with
//! the listing, which proves it worked without another round trip. `ctr` for containerd (kind,
//! k3d, Minikube's containerd, a local socket), `docker` for Minikube's docker runtime.
//!
//! An import into containerd names the image as soon as its blobs are in, before unpacking;
//! one that fails later would leave the name on a broken image, or take it from the image it
//! named. So the script keeps that image under a backup name (`todo-deploy-backup.invalid/…`)
//! while importing and restores the name if the import fails (or removes the name it did not
//! have, waiting for containerd's garbage collection): a failed import leaves the node as it was.

use super::digest::ImageId;
use super::error::LoadError;
use super::exec::Finished;
use super::holdings::Holdings;
use super::names::normalize;

/// Marks the start of each table of a listing in a script's output.
const SECTION: &str = "--- todo-deploy ";
/// The registry part of backup names: `.invalid` can never be a real one.
const BACKUP: &str = "todo-deploy-backup.invalid";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runtime {
    Containerd {
        /// The program: `ctr`, or a path.
        ctr: String,
        /// Global flags: the namespace, and `--address` for a local socket.
        global: Vec<String>,
        /// Flags of `images import`.
        import: Vec<String>,
    },
    Docker,
}

impl Runtime {
    /// containerd in a kind or k3d node: the flags `kind load docker-image` uses, but for
    /// `--digests`, whose `import-DATE@sha256:…` names a failed import would leave behind (and
    /// which no deployment of this tool refers to).
    pub fn kind() -> Runtime {
        Runtime::Containerd {
            ctr: "ctr".to_owned(),
            global: vec!["--namespace=k8s.io".to_owned()],
            import: ["--all-platforms", "--snapshotter=overlayfs"]
                .map(String::from)
                .to_vec(),
        }
    }

    /// containerd in a Minikube node.
    pub fn minikube_containerd() -> Runtime {
        Runtime::Containerd {
            ctr: "ctr".to_owned(),
            global: vec!["-n=k8s.io".to_owned()],
            import: Vec::new(),
        }
    }

    /// containerd on this host, at `socket`, through the program `ctr`.
    pub fn local_containerd(ctr: &str, socket: &std::path::Path) -> Runtime {
        Runtime::Containerd {
            ctr: ctr.to_owned(),
            global: vec![
                "--address".to_owned(),
                socket.display().to_string(),
                "--namespace=k8s.io".to_owned(),
            ],
            import: Vec::new(),
        }
    }

    /// The command that reads an image archive (`docker save`'s format) on stdin.
    pub fn import_command(&self) -> Vec<String> {
        match self {
            Runtime::Containerd {
                ctr,
                global,
                import,
            } => {
                let mut argv = vec![ctr.clone()];
                argv.extend(global.iter().cloned());
                argv.extend(["images".to_owned(), "import".to_owned()]);
                argv.extend(import.iter().cloned());
                argv.push("-".to_owned());
                argv
            }
            Runtime::Docker => vec!["docker".to_owned(), "load".to_owned()],
        }
    }

    /// Asks the runtime for its version (`ctr version`, `docker version`): whether it answers.
    pub fn version_command(&self) -> Vec<String> {
        match self {
            Runtime::Containerd { ctr, global, .. } => {
                let mut argv = vec![ctr.clone()];
                argv.extend(global.iter().cloned());
                argv.push("version".to_owned());
                argv
            }
            Runtime::Docker => vec!["docker".to_owned(), "version".to_owned()],
        }
    }

    pub fn is_containerd(&self) -> bool {
        matches!(self, Runtime::Containerd { .. })
    }

    /// The script that prints what the node holds (see [`Runtime::holdings`]).
    pub fn listing_command(&self) -> Vec<String> {
        shell(&self.listing())
    }

    /// The script that imports an archive read on stdin as `reference` and lists the node;
    /// `replaces` when the node names `reference` already (see the module's documentation).
    pub fn import_script(&self, reference: &str, replaces: bool) -> Vec<String> {
        let import: Vec<String> = self.import_command().iter().map(|a| quote(a)).collect();
        let import = import.join(" ");
        let body = match self {
            Runtime::Docker => format!("{import} && {}", self.listing()),
            Runtime::Containerd { .. } => {
                let ctr =
                    |args: String| format!("{} {args} </dev/null >/dev/null 2>&1", self.ctr());
                let name = quote(&normalize(reference));
                let backup = quote(&format!("{BACKUP}/{}", normalize(reference)));
                let (before, after) = if replaces {
                    let keep = ctr(format!("images tag --force {name} {backup}"));
                    let restore = ctr(format!("images tag --force {backup} {name}"));
                    let drop_synced = ctr(format!("images rm --sync {backup}"));
                    let drop = ctr(format!("images rm {backup}"));
                    (
                        format!("if {keep}; then kept=1; else kept=0; fi\n"),
                        format!(
                            "if [ $kept = 1 ]; then\n  if [ $s -ne 0 ]; then {restore}; {drop_synced}; else {drop}; fi\nfi\n"
                        ),
                    )
                } else {
                    let remove = ctr(format!("images rm --sync {name}"));
                    (
                        String::new(),
                        format!("if [ $s -ne 0 ]; then {remove}; fi\n"),
                    )
                };
                format!(
                    "{before}{import}\ns=$?\n{after}[ $s -eq 0 ] || exit $s\n{}",
                    self.listing()
                )
            }
        };
        shell(&body)
    }

    /// The script that names the image `from` (whose ID is `id`) also `to`, replacing what
    /// `to` named, and lists the node. Docker tags by ID; containerd by name.
    pub fn tag_script(&self, from: &str, id: &ImageId, to: &str) -> Vec<String> {
        let body = match self {
            Runtime::Docker => format!(
                "docker tag {} {} && {}",
                quote(&id.to_string()),
                quote(to),
                self.listing()
            ),
            Runtime::Containerd { .. } => format!(
                "{} images tag --force {} {} >/dev/null && {}",
                self.ctr(),
                quote(&normalize(from)),
                quote(&normalize(to)),
                self.listing()
            ),
        };
        shell(&body)
    }

    /// The listing, for messages.
    pub fn listing_description(&self) -> String {
        match self {
            Runtime::Docker => "docker images".to_owned(),
            Runtime::Containerd { .. } => {
                format!("{} images ls (and content ls, snapshots ls)", self.ctr())
            }
        }
    }

    /// The tag, for messages.
    pub fn tag_description(&self, from: &str, id: &ImageId, to: &str) -> String {
        match self {
            Runtime::Docker => format!("docker tag {id} {to}"),
            Runtime::Containerd { .. } => format!(
                "{} images tag --force {} {}",
                self.ctr(),
                normalize(from),
                normalize(to)
            ),
        }
    }

    /// What the node holds, from the output of a script that ends with the listing.
    pub fn holdings(&self, output: &str) -> Result<Holdings, String> {
        let start = output
            .rfind(&format!("{SECTION}images\n"))
            .ok_or("its listing is missing")?;
        let mut tables = std::collections::HashMap::new();
        let mut current: Option<&str> = None;
        for line in output[start..].lines() {
            if let Some(table) = line.strip_prefix(SECTION) {
                current = Some(table);
                tables.entry(table).or_insert_with(String::new);
            } else if let Some(table) = current {
                let text = tables.entry(table).or_insert_with(String::new);
                text.push_str(line);
                text.push('\n');
            }
        }
        let table = |name: &str| {
            tables
                .get(name)
                .map(String::as_str)
                .ok_or_else(|| format!("its listing has no `{name}` table"))
        };
        Ok(match self {
            Runtime::Docker => Holdings::docker(table("images")?),
            Runtime::Containerd { .. } => {
                Holdings::containerd(table("images")?, table("content")?, table("snapshots")?)
            }
        })
    }

    /// The listing: `docker images` with full IDs; `ctr`'s images, content and snapshots (of
    /// the snapshotter imports unpack into).
    fn listing(&self) -> String {
        let section = |name: &str| format!("echo '{SECTION}{name}'");
        match self {
            Runtime::Docker => format!(
                "{} && docker images --no-trunc --format '{{{{.ID}}}} {{{{.Repository}}}}:{{{{.Tag}}}}'",
                section("images")
            ),
            Runtime::Containerd { import, .. } => {
                let snapshotter = import
                    .iter()
                    .find_map(|flag| flag.strip_prefix("--snapshotter="))
                    .map(|name| format!(" --snapshotter {}", quote(name)))
                    .unwrap_or_default();
                let ctr = self.ctr();
                format!(
                    "{} && {ctr} images ls && {} && {ctr} content ls && {} && {ctr} snapshots{snapshotter} ls",
                    section("images"),
                    section("content"),
                    section("snapshots")
                )
            }
        }
    }

    /// `ctr` and its global flags, quoted for the shell.
    fn ctr(&self) -> String {
        match self {
            Runtime::Containerd { ctr, global, .. } => std::iter::once(ctr)
                .chain(global)
                .map(|arg| quote(arg))
                .collect::<Vec<_>>()
                .join(" "),
            Runtime::Docker => String::new(),
        }
    }
}

/// The error for a command that ran and failed.
pub fn failed(node: &str, argv: &[String], finished: Finished) -> LoadError {
    LoadError::Runtime {
        node: node.to_owned(),
        command: argv.join(" "),
        code: finished.code,
        output: finished.complaint(),
    }
}

/// `sh -c BODY`.
fn shell(body: &str) -> Vec<String> {
    vec!["sh".to_owned(), "-c".to_owned(), body.to_owned()]
}

/// `arg` as one shell word: plain when it is safe, else single-quoted.
fn quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+".contains(c));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_commands() {
        assert_eq!(
            Runtime::kind().import_command().join(" "),
            "ctr --namespace=k8s.io images import --all-platforms --snapshotter=overlayfs -"
        );
        assert_eq!(
            Runtime::minikube_containerd().import_command().join(" "),
            "ctr -n=k8s.io images import -"
        );
        assert_eq!(
            Runtime::local_containerd("ctr", std::path::Path::new("/run/k3s/c.sock"))
                .import_command()
                .join(" "),
            "ctr --address /run/k3s/c.sock --namespace=k8s.io images import -"
        );
        assert_eq!(Runtime::Docker.import_command().join(" "), "docker load");
    }
}
