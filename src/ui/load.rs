//! How load events look. On a terminal: a row per image sent, with the bytes sent, the image's
//! size and the throughput, that ends saying what was sent where; a line per node that had the
//! image already. Elsewhere (a pipe, CI): a line when an image is already on a node, when
//! sending starts and when it ends, with the throughput.

use std::collections::BTreeMap;
use std::time::Duration;

use indicatif::{BinaryBytes, ProgressBar};

use super::screen::{Row, Screen};
use super::style;
use super::{Level, Printer};
use crate::load::{LoadEvent, ReadFrom};

pub struct LoadView {
    color: bool,
    /// Per service: the row sending its image.
    sending: BTreeMap<String, Row>,
}

impl LoadView {
    pub fn new(printer: &Printer) -> Self {
        LoadView {
            color: printer.color,
            sending: BTreeMap::new(),
        }
    }

    /// Shows `event` both ways: as a row on a terminal, as plain lines elsewhere.
    pub fn handle(&mut self, event: LoadEvent, screen: &mut Screen) {
        match event {
            LoadEvent::AlreadyPresent {
                service,
                image,
                node,
            } => {
                let text = format!("`{image}` is already on `{node}`");
                screen.plain(Level::Info, &format!("load {service}: {text}"));
                screen.done(&service, true, &text);
            }
            LoadEvent::Started {
                service,
                image,
                nodes,
                size,
            } => self.start(screen, service, &image, &nodes, size),
            LoadEvent::Progress { service, sent } => {
                if let Some(row) = self.sending.get(&service) {
                    row.bar.update(|bar| {
                        // The size is the engine's estimate; the archive can be larger.
                        if bar.len().is_some_and(|length| sent > length) {
                            bar.set_len(sent);
                        }
                        bar.set_pos(sent);
                    });
                }
            }
            LoadEvent::Finished {
                service,
                image,
                nodes,
                bytes,
                elapsed,
            } => {
                let text = format!(
                    "sent `{image}` to {}: {}",
                    listed(&nodes),
                    rate(bytes, elapsed)
                );
                self.end(screen, &service, true, &text);
            }
            LoadEvent::Layers {
                service,
                image,
                nodes,
                layers,
                total,
                bytes,
                size,
                elapsed,
                read,
            } => {
                if let Some(read) = read {
                    screen.plain(Level::Detail, &read_from(&service, &read));
                }
                let text = format!(
                    "sent {layers} of {total} layers of `{image}` ({} of {}) to {} in {:.1}s",
                    BinaryBytes(bytes),
                    BinaryBytes(size),
                    listed(&nodes),
                    elapsed.as_secs_f64()
                );
                self.end(screen, &service, true, &text);
            }
            LoadEvent::Tagged {
                service,
                image,
                from,
                node,
            } => {
                let text = format!("tagged `{image}` on `{node}` from `{from}` (0 bytes)");
                self.end(screen, &service, true, &text);
            }
            LoadEvent::Failed { service } => self.end(screen, &service, false, "failed"),
        }
    }

    /// A load begins: its plain line, and a row that counts the bytes sent.
    fn start(
        &mut self,
        screen: &mut Screen,
        service: String,
        image: &str,
        nodes: &[String],
        size: u64,
    ) {
        let nodes = listed(nodes);
        let line = format!(
            "load {service}: sending `{image}` ({}) to {nodes}",
            BinaryBytes(size)
        );
        screen.plain(Level::Info, &line);
        let bar = ProgressBar::hidden()
            .with_prefix(service.clone())
            .with_style(style::running(
                self.color,
                "{binary_bytes:>10}/{binary_total_bytes:<10} {binary_bytes_per_sec:>12} {wide_msg}",
            ))
            .with_message(format!("`{image}` to {nodes}"));
        bar.set_length(size);
        self.sending.insert(service, screen.add(bar));
    }

    /// The end of a load: its plain line, or its row's last look.
    fn end(&mut self, screen: &mut Screen, service: &str, ok: bool, text: &str) {
        screen.plain(Level::Info, &format!("load {service}: {text}"));
        match self.sending.remove(service) {
            Some(row) => screen.finish(&row, ok, text),
            None => screen.done(service, ok, text),
        }
    }
}

/// `-v`: where a layered load read its layers.
fn read_from(service: &str, read: &ReadFrom) -> String {
    match read {
        ReadFrom::Storage => format!("load {service}: layers read from the engine's storage"),
        ReadFrom::Export { why } => {
            format!(
                "load {service}: layers read from `docker save` (not the engine's storage: {why})"
            )
        }
    }
}

fn listed(nodes: &[String]) -> String {
    let names: Vec<String> = nodes.iter().map(|node| format!("`{node}`")).collect();
    names.join(", ")
}

/// `104.9 MiB in 1.2s (87.4 MiB/s)`.
fn rate(bytes: u64, elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64();
    let per_second = if seconds > 0.0 {
        (bytes as f64 / seconds) as u64
    } else {
        0
    };
    format!(
        "{} in {seconds:.1}s ({}/s)",
        BinaryBytes(bytes),
        BinaryBytes(per_second)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::Verbosity;
    use crate::ui::testing::{Captured, Terminal, printer};

    fn events() -> Vec<LoadEvent> {
        let service = || "backend".to_owned();
        let image = || "todo-backend:abc".to_owned();
        vec![
            LoadEvent::AlreadyPresent {
                service: "frontend".to_owned(),
                image: "todo-frontend:def".to_owned(),
                node: "minikube".to_owned(),
            },
            LoadEvent::Started {
                service: service(),
                image: image(),
                nodes: vec!["minikube".to_owned(), "minikube-m02".to_owned()],
                size: 3 * 1024 * 1024,
            },
            LoadEvent::Progress {
                service: service(),
                sent: 1024,
            },
            LoadEvent::Finished {
                service: service(),
                image: image(),
                nodes: vec!["minikube".to_owned(), "minikube-m02".to_owned()],
                bytes: 4 * 1024 * 1024,
                elapsed: Duration::from_millis(500),
            },
            LoadEvent::Layers {
                service: service(),
                image: image(),
                nodes: vec!["minikube".to_owned()],
                layers: 1,
                total: 12,
                bytes: 4 * 1024,
                size: 305 * 1024 * 1024,
                elapsed: Duration::from_millis(300),
                read: Some(ReadFrom::Storage),
            },
            LoadEvent::Tagged {
                service: "frontend".to_owned(),
                image: "todo-frontend:v1.2.0".to_owned(),
                from: "docker.io/library/todo-frontend:v1.1.0".to_owned(),
                node: "minikube".to_owned(),
            },
            LoadEvent::Failed { service: service() },
        ]
    }

    #[test]
    fn plain_lines_say_where_and_how_fast() {
        let printer = printer(Verbosity::Normal, false);
        let captured = Captured::default();
        let mut screen = captured.screen(&printer);
        let mut view = LoadView::new(&printer);
        for event in events() {
            view.handle(event, &mut screen);
        }
        assert_eq!(
            captured.text(),
            "load frontend: `todo-frontend:def` is already on `minikube`\n\
             load backend: sending `todo-backend:abc` (3.00 MiB) to `minikube`, `minikube-m02`\n\
             load backend: sent `todo-backend:abc` to `minikube`, `minikube-m02`: 4.00 MiB in 0.5s (8.00 MiB/s)\n\
             load backend: sent 1 of 12 layers of `todo-backend:abc` (4.00 KiB of 305.00 MiB) to `minikube` in 0.3s\n\
             load frontend: tagged `todo-frontend:v1.2.0` on `minikube` from `docker.io/library/todo-frontend:v1.1.0` (0 bytes)\n\
             load backend: failed\n"
        );
    }

    #[test]
    fn rows_end_as_lines_saying_what_was_sent_where() {
        let printer = printer(Verbosity::Normal, true);
        let terminal = Terminal::new(140, 10);
        let mut screen = terminal.screen(&printer);
        let mut view = LoadView::new(&printer);
        for event in events() {
            view.handle(event, &mut screen);
        }
        assert!(view.sending.is_empty());
        assert_eq!(
            terminal.contents(),
            "✓   frontend `todo-frontend:def` is already on `minikube`\n\
             ✓    backend sent `todo-backend:abc` to `minikube`, `minikube-m02`: 4.00 MiB in 0.5s (8.00 MiB/s)\n\
             ✓    backend sent 1 of 12 layers of `todo-backend:abc` (4.00 KiB of 305.00 MiB) to `minikube` in 0.3s\n\
             ✓   frontend tagged `todo-frontend:v1.2.0` on `minikube` from `docker.io/library/todo-frontend:v1.1.0` (0 bytes)\n\
             ✗    backend failed"
        );
    }
}
