//! How a rollout looks: a bar per Deployment (available of desired, with updated and ready
//! counts and the newest pod event) on a terminal; one line per change elsewhere.

use std::collections::BTreeMap;

use indicatif::{MultiProgress, ProgressBar};

use super::Printer;
use super::style::style;
use crate::rollout::{Counts, RolloutEvent};

pub struct RolloutView {
    printer: Printer,
    bars: MultiProgress,
    bar: BTreeMap<String, ProgressBar>,
}

impl RolloutView {
    pub fn new(printer: &Printer, bars: &MultiProgress) -> Self {
        RolloutView {
            printer: printer.clone(),
            bars: bars.clone(),
            bar: BTreeMap::new(),
        }
    }

    pub fn handle(&mut self, event: RolloutEvent) {
        match event {
            RolloutEvent::Progress {
                deployment,
                counts,
                waiting_for,
                latest,
            } => {
                let text = describe(&counts, &waiting_for);
                if self.printer.interactive {
                    let bar = self.bar(&deployment);
                    bar.set_length(counts.desired.max(0) as u64);
                    bar.set_position(counts.available.max(0) as u64);
                    let latest = latest.map(|l| format!("\n    {l}")).unwrap_or_default();
                    bar.set_message(format!("{text}{latest}"));
                } else {
                    let latest = latest.map(|l| format!(" — {l}")).unwrap_or_default();
                    self.printer
                        .info(&format!("rollout {deployment}: {text}{latest}"));
                }
            }
            RolloutEvent::Ready {
                deployment,
                elapsed,
            } => {
                let text = format!(
                    "rollout {deployment}: ready in {:.1}s",
                    elapsed.as_secs_f64()
                );
                match self.bar.remove(&deployment) {
                    Some(bar) => bar.finish_with_message(text),
                    None => self.printer.info(&text),
                }
            }
        }
    }

    fn bar(&mut self, deployment: &str) -> ProgressBar {
        self.bar
            .entry(deployment.to_owned())
            .or_insert_with(|| {
                let bar = self.bars.add(ProgressBar::new(0));
                let style = style("{prefix:>12.bold} [{bar:20}] {pos}/{len} available  {msg}")
                    .progress_chars("=> ");
                bar.set_style(style);
                bar.set_prefix(deployment.to_owned());
                bar
            })
            .clone()
    }
}

fn describe(counts: &Counts, waiting_for: &str) -> String {
    format!(
        "{}/{} updated, {}/{} ready, {}/{} available ({waiting_for})",
        counts.updated,
        counts.desired,
        counts.ready,
        counts.desired,
        counts.available,
        counts.desired
    )
}
