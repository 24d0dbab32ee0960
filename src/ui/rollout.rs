//! How a rollout looks. On a terminal: a row per Deployment (available of desired, with updated
//! and ready counts) with the newest event of its new pods below; it ends as
//! `✓ backend ready in 3.4s`. Elsewhere: one line per change.

use std::collections::BTreeMap;

use super::screen::{Row, Screen};
use super::style;
use super::{Level, Printer};
use crate::rollout::{Counts, RolloutEvent};

/// Where the newest pod event starts, below a row: under its bar.
const LATEST_INDENT: usize = 13;

pub struct RolloutView {
    color: bool,
    rows: BTreeMap<String, Row>,
}

impl RolloutView {
    pub fn new(printer: &Printer) -> Self {
        RolloutView {
            color: printer.color,
            rows: BTreeMap::new(),
        }
    }

    /// Shows `event` both ways: as a row on a terminal, as plain lines elsewhere.
    pub fn handle(&mut self, event: RolloutEvent, screen: &mut Screen) {
        match event {
            RolloutEvent::Progress {
                deployment,
                counts,
                waiting_for,
                latest,
            } => {
                let text = describe(&counts, &waiting_for);
                let after = latest.as_ref().map(|l| format!(" — {l}"));
                let line = format!("rollout {deployment}: {text}{}", after.unwrap_or_default());
                screen.plain(Level::Info, &line);
                let below = latest.map(|l| format!("\n{:LATEST_INDENT$}{l}", ""));
                let row = self.row(&deployment, screen);
                row.bar.update(|bar| {
                    bar.set_len(u64::try_from(counts.desired).unwrap_or(0));
                    bar.set_pos(u64::try_from(counts.available).unwrap_or(0));
                });
                row.bar
                    .set_message(format!("{text}{}", below.unwrap_or_default()));
            }
            RolloutEvent::Ready {
                deployment,
                elapsed,
            } => {
                let text = format!("ready in {:.1}s", elapsed.as_secs_f64());
                screen.plain(Level::Info, &format!("rollout {deployment}: {text}"));
                match self.rows.remove(&deployment) {
                    Some(row) => screen.finish(&row, true, &text),
                    None => screen.done(&deployment, true, &text),
                }
            }
        }
    }

    /// The Deployment's row, added below the others the first time.
    fn row(&mut self, deployment: &str, screen: &mut Screen) -> Row {
        self.rows
            .entry(deployment.to_owned())
            .or_insert_with(|| {
                let style = style::running(self.color, "{pos}/{len} available  {msg}");
                screen.add(deployment, style, String::new())
            })
            .clone()
    }
}

/// The plain line's counts: `1/2 updated, 1/2 ready, 2/2 available (what it waits for)`.
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
