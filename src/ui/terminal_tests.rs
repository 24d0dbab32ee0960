//! What a terminal shows while a deploy runs: scripted events (the enums the stages send) drawn
//! into a 140x40 terminal emulator, its screen snapshotted at the moments that matter. Spinners
//! stand still and nothing is rate-limited, so each screen is a function of the events alone.

use std::time::Duration;

use super::testing::{Terminal, printer};
use super::{Event, Verbosity, Views};
use crate::build::BuildEvent;
use crate::load::LoadEvent;
use crate::rollout::{Counts, RolloutEvent};

const COLUMNS: u16 = 140;
const ROWS: u16 = 40;

/// A terminal and the UI drawing on it, at the normal verbosity.
fn terminal() -> (Terminal, Views) {
    let printer = printer(Verbosity::Normal, true);
    let terminal = Terminal::new(COLUMNS, ROWS);
    let views = Views::new(&printer, terminal.screen(&printer));
    (terminal, views)
}

fn show(views: &mut Views, events: impl IntoIterator<Item = Event>) {
    for event in events {
        views.show(event);
    }
}

fn started(service: &str) -> Event {
    BuildEvent::Started {
        service: service.to_owned(),
        image: format!("todo-{service}:9f3c2a1b7d4e"),
    }
    .into()
}

fn step(service: &str, step: u32, instruction: &str) -> Event {
    BuildEvent::Step {
        service: service.to_owned(),
        step,
        total: 3,
        instruction: instruction.to_owned(),
    }
    .into()
}

fn built(service: &str, millis: u64) -> Event {
    BuildEvent::Finished {
        service: service.to_owned(),
        image: format!("todo-{service}:9f3c2a1b7d4e"),
        elapsed: Duration::from_millis(millis),
    }
    .into()
}

/// `frontend` is up to date; `backend` builds, and is at its second step.
fn building() -> Vec<Event> {
    vec![
        BuildEvent::Reused {
            service: "frontend".to_owned(),
            image: "todo-frontend:4be1d07c9a21".to_owned(),
        }
        .into(),
        started("backend"),
        step("backend", 1, "FROM python:3.13-slim"),
        step(
            "backend",
            2,
            "RUN pip install --no-cache-dir -r requirements.txt",
        ),
    ]
}

/// The rest of the build, the load of `backend` into the node, and the apply.
fn built_loaded_applied() -> Vec<Event> {
    let image = "todo-backend:9f3c2a1b7d4e".to_owned();
    let mut events = vec![
        step("backend", 3, "COPY . /app"),
        built("backend", 12_340),
        LoadEvent::AlreadyPresent {
            service: "frontend".to_owned(),
            image: "todo-frontend:4be1d07c9a21".to_owned(),
            node: "minikube".to_owned(),
        }
        .into(),
        LoadEvent::Started {
            service: "backend".to_owned(),
            image: image.clone(),
            nodes: vec!["minikube".to_owned()],
            size: 180 * 1024 * 1024,
        }
        .into(),
        LoadEvent::Finished {
            service: "backend".to_owned(),
            image,
            nodes: vec!["minikube".to_owned()],
            bytes: 184 * 1024 * 1024,
            elapsed: Duration::from_millis(2_300),
        }
        .into(),
    ];
    for (object, verb) in [
        ("Namespace/todo", "unchanged"),
        ("Secret/todo-secrets", "unchanged"),
        ("Service/backend", "unchanged"),
        ("Service/frontend", "unchanged"),
        ("Deployment/backend", "configured"),
        ("Deployment/frontend", "unchanged"),
    ] {
        events.push(Event::Info(format!("{object} {verb}")));
    }
    events
}

fn progress(deployment: &str, counts: Counts, waiting_for: &str, latest: Option<&str>) -> Event {
    RolloutEvent::Progress {
        deployment: deployment.to_owned(),
        counts,
        observed: true,
        waiting_for: waiting_for.to_owned(),
        latest: latest.map(str::to_owned),
    }
    .into()
}

fn counts(updated: i32, ready: i32, available: i32, old: i32) -> Counts {
    Counts {
        desired: 2,
        updated,
        ready,
        available,
        old,
    }
}

/// An upgrade of `backend` (2 replicas, maxSurge 1, maxUnavailable 0) up to where one new
/// replica is ready and one old one is gone: the other old one keeps every replica available.
fn upgrading() -> Vec<Event> {
    let pulled =
        Some("Pulled: Container image \"todo-backend:9f3c2a1b7d4e\" already present on machine");
    vec![
        RolloutEvent::Ready {
            deployment: "frontend".to_owned(),
            elapsed: Duration::from_millis(80),
        }
        .into(),
        RolloutEvent::Progress {
            deployment: "backend".to_owned(),
            counts: counts(2, 2, 2, 0),
            observed: false,
            waiting_for: "the controller to observe the new spec".to_owned(),
            latest: None,
        }
        .into(),
        progress(
            "backend",
            counts(1, 2, 2, 2),
            "1 of 2 new replicas updated",
            None,
        ),
        progress(
            "backend",
            counts(1, 3, 3, 2),
            "1 of 2 new replicas updated",
            pulled,
        ),
        progress(
            "backend",
            counts(1, 2, 2, 1),
            "1 of 2 new replicas updated",
            pulled,
        ),
    ]
}

/// The rest of the upgrade, and the release's last word.
fn upgraded() -> Vec<Event> {
    let started = Some("Started: Started container backend");
    vec![
        progress("backend", counts(2, 2, 2, 1), "1 of 2 updated replicas available", started),
        progress("backend", counts(2, 3, 3, 1), "1 old replica pending termination", started),
        RolloutEvent::Ready {
            deployment: "backend".to_owned(),
            elapsed: Duration::from_millis(3_420),
        }
        .into(),
        Event::Info(
            "release `todo` revision 2 is ready in namespace `todo` (0 created, 1 configured, 5 unchanged)"
                .to_owned(),
        ),
    ]
}

/// During a build: what is done is a line; what runs is a bar with its step and instruction.
#[test]
fn during_a_build() {
    let (terminal, mut views) = terminal();
    show(&mut views, building());
    insta::assert_snapshot!(terminal.contents());
}

/// Mid-way through an upgrade with maxUnavailable 0: every replica is available (old ones), but
/// only one of two is updated, so the bar is half full and says the same number as its text.
#[test]
fn during_an_upgrade_the_bar_counts_rolled_out_replicas() {
    let (terminal, mut views) = terminal();
    show(&mut views, building());
    show(&mut views, built_loaded_applied());
    show(&mut views, upgrading());
    insta::assert_snapshot!(terminal.contents());
}

/// At the end: build, load, apply and rollout lines in the order they happened, each saying
/// what it says once.
#[test]
fn at_the_end_the_lines_are_in_the_order_things_happened() {
    let (terminal, mut views) = terminal();
    show(&mut views, building());
    show(&mut views, built_loaded_applied());
    show(&mut views, upgrading());
    show(&mut views, upgraded());
    insta::assert_snapshot!(terminal.contents());
}

/// Parallel builds: a row that finishes below a running one stays in its place; a line said
/// after it (a warning) comes after it, and the running row stays at the bottom.
#[test]
fn a_finished_row_keeps_its_place_until_a_later_line() {
    let (terminal, mut views) = terminal();
    show(
        &mut views,
        [
            started("backend"),
            started("frontend"),
            step("backend", 1, "FROM python:3.13-slim"),
            step("frontend", 3, "COPY dist /usr/share/nginx/html"),
            built("frontend", 4_100),
        ],
    );
    let in_place = terminal.contents();
    show(
        &mut views,
        [Event::Warning(
            "the lock is held by a run that stopped; taking it over".to_owned(),
        )],
    );
    insta::assert_snapshot!(format!(
        "{in_place}\n\n--- after a warning ---\n\n{}",
        terminal.contents()
    ));
}

/// A rollout's bar is never full before the rollout is done, not even for one frame: not for
/// the previous rollout's counts, not while an old replica is left, not as a row first appears.
#[test]
fn no_frame_shows_a_full_rollout_bar() {
    let (terminal, mut views) = terminal();
    show(&mut views, upgrading());
    show(&mut views, upgraded());
    let frames = terminal.frames();
    assert!(frames.len() > 5, "{} frames", frames.len());
    let full = frames
        .iter()
        .find(|frame| frame.contains("[====================]"));
    assert_eq!(full, None);
}

/// `dev` on a terminal: a status row per service stays at the bottom while the log lines, the
/// stages' results and the loop's notes scroll above it; a row says where its service is.
#[test]
fn dev_keeps_a_status_row_per_service_below_the_log_lines() {
    use crate::logs::LogEvent;
    use crate::watch::{DevEvent, ServiceState};
    let (terminal, mut views) = terminal();
    let at = jiff::Timestamp::UNIX_EPOCH;
    let state = |service: &str, state, took| -> Event {
        DevEvent::State {
            service: service.to_owned(),
            state,
            at,
            took,
        }
        .into()
    };
    let line = |service: &str, pod: &str, text: &str| -> Event {
        LogEvent::Line {
            service: service.to_owned(),
            pod: pod.to_owned(),
            container: service.to_owned(),
            text: text.to_owned(),
        }
        .into()
    };
    show(
        &mut views,
        [
            DevEvent::Watching {
                services: vec!["backend".to_owned(), "frontend".to_owned()],
                files: Vec::new(),
            }
            .into(),
            state(
                "backend",
                ServiceState::Ready,
                Some(Duration::from_millis(700)),
            ),
            state(
                "frontend",
                ServiceState::Ready,
                Some(Duration::from_millis(700)),
            ),
            line(
                "backend",
                "backend-6487df4b4d-d6tcm",
                "backend listening on 8000",
            ),
            state("backend", ServiceState::Building, None),
            line("frontend", "frontend-68567f5db8-h8wpb", "GET / 200"),
        ],
    );
    let shown = terminal.contents();
    let rows: Vec<&str> = shown.lines().collect();
    let last_two = &rows[rows.len() - 2..];
    assert!(last_two[0].contains("backend building (at "), "{shown}");
    assert!(
        last_two[1].contains("frontend ready in 0.7s (at "),
        "{shown}"
    );
    let log = rows
        .iter()
        .position(|r| *r == "backend d6tcm | backend listening on 8000")
        .expect("the backend's line");
    let later = rows
        .iter()
        .position(|r| *r == "frontend h8wpb | GET / 200")
        .expect("the frontend's line");
    assert!(log < later && later < rows.len() - 2, "{shown}");
}

/// A wait that stops before a rollout is complete (failed, or cut short in `dev`) leaves its row
/// as a line that says so, not a spinner waiting for ever.
#[test]
fn a_stopped_rollout_leaves_no_row_running() {
    let (terminal, mut views) = terminal();
    show(
        &mut views,
        [
            progress(
                "backend",
                counts(0, 0, 0, 0),
                "0 of 2 new replicas updated",
                None,
            ),
            RolloutEvent::Stopped {
                deployment: "backend".to_owned(),
            }
            .into(),
        ],
    );
    let shown = terminal.contents();
    assert!(
        shown.contains(
            "✗    backend not rolled out: 0/2 rolled out, waiting for 0 of 2 new replicas updated"
        ),
        "{shown}"
    );
    assert!(!shown.contains('['), "no bar left: {shown}");
}
