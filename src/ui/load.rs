//! How load events look. On a terminal: a bar per image with the bytes sent, the image's size
//! and the throughput, then what was sent where. Elsewhere (a pipe, CI): a line when an image is
//! already on a node, when sending starts and when it ends, with the throughput.

use std::collections::BTreeMap;
use std::time::Duration;

use indicatif::{BinaryBytes, MultiProgress, ProgressBar, ProgressStyle};

use super::Printer;
use super::style::{done_style, style};
use crate::load::LoadEvent;

pub struct LoadView {
    printer: Printer,
    /// The bars, on a terminal.
    bars: Option<MultiProgress>,
    /// Per service: the bar sending its image.
    sending: BTreeMap<String, ProgressBar>,
    /// Per service: the bar saying which nodes had the image already, and those nodes.
    present: BTreeMap<String, (ProgressBar, Vec<String>)>,
}

impl LoadView {
    /// `bars` is the UI's shared set of bars; hidden, it means plain lines.
    pub fn new(printer: &Printer, bars: &MultiProgress) -> Self {
        LoadView {
            printer: printer.clone(),
            bars: (!bars.is_hidden()).then(|| bars.clone()),
            sending: BTreeMap::new(),
            present: BTreeMap::new(),
        }
    }

    pub fn handle(&mut self, event: LoadEvent) {
        if self.bars.is_some() {
            self.draw(event);
        } else if let Some(line) = line(event) {
            self.printer.info(&line);
        }
    }

    fn draw(&mut self, event: LoadEvent) {
        let color = self.printer.color;
        match event {
            LoadEvent::AlreadyPresent {
                service,
                image,
                node,
            } => {
                let bar = match self.present.remove(&service) {
                    Some((bar, mut nodes)) => {
                        nodes.push(node);
                        (bar, nodes)
                    }
                    None => (self.add_bar(&service, 0), vec![node]),
                };
                bar.0.set_style(done_style(color, true));
                bar.0
                    .finish_with_message(format!("`{image}` is already on {}", listed(&bar.1)));
                self.present.insert(service, bar);
            }
            LoadEvent::Started {
                service,
                image,
                nodes,
                size,
            } => {
                let bar = self.add_bar(&service, size);
                bar.set_style(running_style(color));
                bar.set_message(format!("`{image}` to {}", listed(&nodes)));
                bar.enable_steady_tick(Duration::from_millis(120));
                self.sending.insert(service, bar);
            }
            LoadEvent::Progress { service, sent } => {
                if let Some(bar) = self.sending.get(&service) {
                    // The size is the engine's estimate; the archive can be larger.
                    if bar.length().is_some_and(|length| sent > length) {
                        bar.set_length(sent);
                    }
                    bar.set_position(sent);
                }
            }
            LoadEvent::Finished {
                service,
                image,
                nodes,
                bytes,
                elapsed,
            } => {
                if let Some(bar) = self.sending.remove(&service) {
                    bar.set_style(done_style(color, true));
                    bar.finish_with_message(format!(
                        "`{image}` sent to {}: {}",
                        listed(&nodes),
                        rate(bytes, elapsed)
                    ));
                }
            }
            LoadEvent::Layers { ref service, .. } | LoadEvent::Tagged { ref service, .. } => {
                let bar = match self.sending.remove(service) {
                    Some(bar) => bar,
                    None => self.add_bar(service, 0),
                };
                bar.set_style(done_style(color, true));
                // The plain line without its `load SERVICE: `, which the bar's prefix says.
                let message = line(event).unwrap_or_default();
                let message = message.split_once(": ").map_or("", |(_, rest)| rest);
                bar.finish_with_message(message.to_owned());
            }
            LoadEvent::Failed { service } => {
                if let Some(bar) = self.sending.remove(&service) {
                    bar.set_style(done_style(color, false));
                    bar.abandon_with_message("failed");
                }
            }
        }
    }

    fn add_bar(&self, service: &str, length: u64) -> ProgressBar {
        let bar = ProgressBar::new(length).with_prefix(service.to_owned());
        match &self.bars {
            Some(bars) => bars.add(bar),
            None => bar,
        }
    }
}

impl Drop for LoadView {
    /// A bar still running when the UI stops is left as it was, not animated forever.
    fn drop(&mut self) {
        for bar in self.sending.values() {
            if !bar.is_finished() {
                bar.abandon();
            }
        }
    }
}

/// The plain line for an event, if it gets one.
fn line(event: LoadEvent) -> Option<String> {
    let line = match event {
        LoadEvent::AlreadyPresent {
            service,
            image,
            node,
        } => format!("load {service}: `{image}` is already on `{node}`"),
        LoadEvent::Started {
            service,
            image,
            nodes,
            size,
        } => format!(
            "load {service}: sending `{image}` ({}) to {}",
            BinaryBytes(size),
            listed(&nodes)
        ),
        LoadEvent::Progress { .. } => return None,
        LoadEvent::Finished {
            service,
            image,
            nodes,
            bytes,
            elapsed,
        } => format!(
            "load {service}: sent `{image}` to {}: {}",
            listed(&nodes),
            rate(bytes, elapsed)
        ),
        LoadEvent::Layers {
            service,
            image,
            nodes,
            layers,
            total,
            bytes,
            size,
            elapsed,
        } => format!(
            "load {service}: sent {layers} of {total} layers of `{image}` ({} of {}) to {} in {:.1}s",
            BinaryBytes(bytes),
            BinaryBytes(size),
            listed(&nodes),
            elapsed.as_secs_f64()
        ),
        LoadEvent::Tagged {
            service,
            image,
            from,
            node,
        } => format!("load {service}: tagged `{image}` on `{node}` from `{from}` (0 bytes)"),
        LoadEvent::Failed { service } => format!("load {service}: failed"),
    };
    Some(line)
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

fn running_style(color: bool) -> ProgressStyle {
    let template = if color {
        "{spinner:.cyan} {prefix:>10.bold} [{bar:20.cyan/blue}] {binary_bytes:>10}/{binary_total_bytes:<10} {binary_bytes_per_sec:>12} {wide_msg}"
    } else {
        "{spinner} {prefix:>10} [{bar:20}] {binary_bytes:>10}/{binary_total_bytes:<10} {binary_bytes_per_sec:>12} {wide_msg}"
    };
    style(template).progress_chars("=> ")
}

#[cfg(test)]
mod tests {
    use super::*;

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
                bytes: 4096,
                size: 305 * 1024 * 1024,
                elapsed: Duration::from_millis(300),
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
        let lines: Vec<String> = events().into_iter().filter_map(line).collect();
        assert_eq!(
            lines,
            [
                "load frontend: `todo-frontend:def` is already on `minikube`",
                "load backend: sending `todo-backend:abc` (3.00 MiB) to `minikube`, `minikube-m02`",
                "load backend: sent `todo-backend:abc` to `minikube`, `minikube-m02`: 4.00 MiB in 0.5s (8.00 MiB/s)",
                "load backend: sent 1 of 12 layers of `todo-backend:abc` (4.00 KiB of 305.00 MiB) to `minikube` in 0.3s",
                "load frontend: tagged `todo-frontend:v1.2.0` on `minikube` from `docker.io/library/todo-frontend:v1.1.0` (0 bytes)",
                "load backend: failed",
            ]
        );
    }

    #[test]
    fn bars_take_every_event() {
        let printer = Printer {
            verbosity: super::super::Verbosity::Normal,
            color: false,
            interactive: true,
        };
        let bars = MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::hidden());
        let mut view = LoadView::new(&printer, &bars);
        // Hidden bars mean plain lines; force the bar path to check it keeps its state.
        view.bars = Some(bars);
        for event in events() {
            view.draw(event);
        }
        assert!(view.sending.is_empty());
        assert_eq!(view.present["frontend"].1, ["minikube"]);
    }
}
