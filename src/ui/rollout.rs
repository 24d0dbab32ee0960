//! How a rollout looks. On a terminal: a row per Deployment whose bar fills as its replicas roll
//! out (updated and available, with no old replica left beside them, which is what
//! `kubectl rollout status` waits for), saying how many have and what it waits for, with the
//! newest event of its new pods below; it ends as `✓ backend ready in 3.4s`. Elsewhere: one
//! line per change.

use std::collections::BTreeMap;

use indicatif::ProgressBar;

use super::screen::{Row, Screen};
use super::style;
use super::words;
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
                observed,
                waiting_for,
                latest,
            } => {
                let after = latest.as_ref().map(|l| format!(" — {l}"));
                let line = format!(
                    "rollout {deployment}: {}{}",
                    describe(&counts, &waiting_for),
                    after.unwrap_or_default()
                );
                screen.plain(Level::Info, &line);
                let (position, length) = filled(&counts, observed);
                let text = match observed {
                    true => format!(
                        "{position}/{} rolled out, waiting for {waiting_for}",
                        counts.desired
                    ),
                    false => format!("waiting for {waiting_for}"),
                };
                let below = latest.map(|l| format!("\n{:LATEST_INDENT$}{l}", ""));
                let message = format!("{text}{}", below.unwrap_or_default());
                self.draw(screen, deployment, (position, length), message);
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
            RolloutEvent::Stopped { deployment } => {
                // The outcome is reported apart: a plain log has said the counts already.
                if let Some(row) = self.rows.remove(&deployment) {
                    let message = row.bar.message();
                    let last = message.lines().next().unwrap_or_default();
                    let text = format!("not rolled out: {last}");
                    screen.finish(&row, false, &text);
                }
            }
            RolloutEvent::WatchResumed { error } => {
                screen.say(Level::Detail, &format!("watch interrupted, resuming: {error}"));
            }
            RolloutEvent::ConnectionLost { server } => screen.say(
                Level::Warning,
                &format!(
                    "lost the connection to the API server at `{server}`; waiting for it to answer again"
                ),
            ),
            RolloutEvent::ConnectionBack { server, after } => screen.say(
                Level::Warning,
                &format!(
                    "the API server at `{server}` answers again (after {}s)",
                    after.as_secs()
                ),
            ),
            RolloutEvent::Terminating { pods } => {
                let noun = if pods == 1 { "pod" } else { "pods" };
                screen.say(Level::Info, &format!("waiting for {pods} {noun} to terminate"));
            }
            RolloutEvent::Slow(slowness) => screen.say(Level::Info, &words::slowness(&slowness)),
        }
    }

    /// The Deployment's row at `filled`, saying `message`: added below the others the first
    /// time, set up before it is drawn.
    fn draw(
        &mut self,
        screen: &mut Screen,
        deployment: String,
        filled: (u64, u64),
        message: String,
    ) {
        let (position, length) = filled;
        match self.rows.get(&deployment) {
            Some(row) => {
                row.bar.update(|bar| {
                    bar.set_len(length);
                    bar.set_pos(position);
                });
                row.bar.set_message(message);
            }
            None => {
                let bar = ProgressBar::hidden()
                    .with_prefix(deployment.clone())
                    .with_style(style::running(self.color, "{msg}"))
                    .with_message(message)
                    .with_position(position);
                bar.set_length(length);
                self.rows.insert(deployment, screen.add(bar));
            }
        }
    }
}

/// How full a Deployment's bar is, as `(position, length)`: a replica counts once it is updated
/// and available with no old replica left in its place. So the bar is full exactly when
/// `kubectl rollout status` would say done: every desired replica updated and available, no
/// old one left, no updated one unavailable. Counts not yet `observed` are the previous
/// rollout's: an empty bar.
fn filled(counts: &Counts, observed: bool) -> (u64, u64) {
    let Counts {
        desired,
        updated,
        available,
        old,
        ..
    } = *counts;
    let length = u64::try_from(desired.max(1)).unwrap_or(1);
    if !observed {
        return (0, length);
    }
    // Old replicas may be available too: at least this many new ones are.
    let new_available = available - old;
    let rolled_out = updated
        .min(new_available)
        // Every old replica left holds a place.
        .min(desired - old)
        // So does every updated replica that is not available.
        .min(desired - (updated - new_available))
        .clamp(0, desired.max(0));
    (u64::try_from(rolled_out).unwrap_or(0), length)
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

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::Deployment;

    use super::*;
    use crate::rollout::RolloutState;
    use crate::rollout::conditions::{counts, rollout_state};
    use crate::ui::Verbosity;
    use crate::ui::testing::{Captured, printer};

    fn deployment(desired: i32, replicas: i32, updated: i32, available: i32) -> Deployment {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "generation": 2},
            "spec": {"replicas": desired, "selector": {}, "template": {}},
            "status": {
                "observedGeneration": 2,
                "replicas": replicas,
                "updatedReplicas": updated,
                "readyReplicas": available,
                "availableReplicas": available,
            },
        }))
        .expect("a Deployment")
    }

    /// Over every small status a Deployment can report, the bar is full exactly when the
    /// rollout is complete as `kubectl rollout status` judges it (`conditions::rollout_state`).
    #[test]
    fn the_bar_is_full_exactly_when_the_rollout_is_complete() {
        let mut checked = 0;
        for desired in 0..=3 {
            for replicas in 0..=5 {
                for updated in 0..=4 {
                    for available in 0..=replicas {
                        let d = deployment(desired, replicas, updated, available);
                        let complete = rollout_state(Some(&d)) == RolloutState::Complete;
                        let (position, length) = filled(&counts(&d), true);
                        let full = position == length;
                        // A Deployment of no replicas is complete at once: it never gets a bar.
                        let expected = complete && desired > 0;
                        assert_eq!(
                            full, expected,
                            "desired {desired}, replicas {replicas}, updated {updated}, \
                             available {available}: bar {position}/{length}"
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 300);
    }

    #[test]
    fn counts_the_controller_has_not_observed_leave_the_bar_empty() {
        // The previous rollout's counts: complete, but not about this one.
        let d = deployment(2, 2, 2, 2);
        assert_eq!(filled(&counts(&d), false), (0, 2));
        assert_eq!(filled(&counts(&d), true), (2, 2));
    }

    #[test]
    fn an_upgrade_with_max_unavailable_0_fills_as_new_replicas_replace_old_ones() {
        // 2 replicas, maxSurge 1: every replica stays available throughout.
        let steps = [
            // (replicas, updated, available) -> position
            ((3, 1, 2), 0), // a new pod starts beside both old ones
            ((3, 1, 3), 0), // it is available; both old ones are still there
            ((2, 1, 2), 1), // one old one is gone: one replica rolled out
            ((3, 2, 2), 1), // the second new pod starts
            ((3, 2, 3), 1), // it is available; the last old one is still there
            ((2, 2, 2), 2), // done
        ];
        for ((replicas, updated, available), position) in steps {
            let d = deployment(2, replicas, updated, available);
            assert_eq!(
                filled(&counts(&d), true),
                (position, 2),
                "{replicas}/{updated}/{available}"
            );
        }
    }

    #[test]
    fn plain_lines_keep_their_counts_and_say_ready_once() {
        let printer = printer(Verbosity::Normal, false);
        let captured = Captured::default();
        let mut screen = captured.screen(&printer);
        let mut view = RolloutView::new(&printer);
        let events = [
            RolloutEvent::Progress {
                deployment: "backend".to_owned(),
                counts: Counts {
                    desired: 2,
                    updated: 1,
                    ready: 2,
                    available: 2,
                    old: 1,
                },
                observed: true,
                waiting_for: "1 of 2 new replicas updated".to_owned(),
                latest: Some("Pulled: Container image \"b\" already present on machine".to_owned()),
            },
            RolloutEvent::Ready {
                deployment: "backend".to_owned(),
                elapsed: std::time::Duration::from_millis(3_420),
            },
        ];
        for event in events {
            view.handle(event, &mut screen);
        }
        assert_eq!(
            captured.text(),
            "rollout backend: 1/2 updated, 2/2 ready, 2/2 available (1 of 2 new replicas updated) \
             — Pulled: Container image \"b\" already present on machine\n\
             rollout backend: ready in 3.4s\n"
        );
    }
}
