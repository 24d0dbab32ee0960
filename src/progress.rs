//! Progress events: how stages tell the user what is happening without printing. A stage gets an
//! [`Events`] sender and reports what it does, in its own typed events; the `ui` task turns them
//! into bars or lines (the wording lives there), and tests collect them instead. A leaf: it
//! knows the stages' event types (each in a file of its own) and nothing else of theirs.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::adopt::events::AdoptEvent;
use crate::apply::events::ApplyEvent;
use crate::build::events::BuildEvent;
use crate::load::events::LoadEvent;
use crate::logs::events::LogEvent;
use crate::release::events::ReleaseEvent;
use crate::rollout::events::RolloutEvent;
use crate::watch::events::DevEvent;

/// Everything a stage can report.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Build(BuildEvent),
    Load(LoadEvent),
    Apply(ApplyEvent),
    Rollout(RolloutEvent),
    Release(ReleaseEvent),
    Adopt(AdoptEvent),
    Logs(LogEvent),
    Dev(DevEvent),
    /// An API call failed in a way worth another try, which comes after `wait`.
    Retrying {
        what: String,
        attempt: u32,
        attempts: u32,
        wait: Duration,
        error: String,
    },
    /// A command's step worth a line in the normal output.
    Info(String),
    /// Detail for `-v`: choices made and why.
    Detail(String),
    /// Something the user should know about but that does not stop the run.
    Warning(String),
}

impl From<BuildEvent> for Event {
    fn from(event: BuildEvent) -> Self {
        Event::Build(event)
    }
}

impl From<LoadEvent> for Event {
    fn from(event: LoadEvent) -> Self {
        Event::Load(event)
    }
}

impl From<RolloutEvent> for Event {
    fn from(event: RolloutEvent) -> Self {
        Event::Rollout(event)
    }
}

impl From<ApplyEvent> for Event {
    fn from(event: ApplyEvent) -> Self {
        Event::Apply(event)
    }
}

impl From<AdoptEvent> for Event {
    fn from(event: AdoptEvent) -> Self {
        Event::Adopt(event)
    }
}

impl From<ReleaseEvent> for Event {
    fn from(event: ReleaseEvent) -> Self {
        Event::Release(event)
    }
}

impl From<LogEvent> for Event {
    fn from(event: LogEvent) -> Self {
        Event::Logs(event)
    }
}

impl From<DevEvent> for Event {
    fn from(event: DevEvent) -> Self {
        Event::Dev(event)
    }
}

/// The sending half given to stages; cheap to clone. Sending never blocks and never fails: if
/// nobody listens any more, events are dropped.
#[derive(Debug, Clone)]
pub struct Events {
    sender: Option<mpsc::UnboundedSender<Event>>,
}

impl Events {
    /// Events that go nowhere.
    pub fn none() -> Self {
        Events { sender: None }
    }

    /// A sender and the receiver that reads what it sends.
    pub fn channel() -> (Self, mpsc::UnboundedReceiver<Event>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (
            Events {
                sender: Some(sender),
            },
            receiver,
        )
    }

    pub fn send(&self, event: impl Into<Event>) {
        if let Some(sender) = &self.sender {
            let _ = sender.send(event.into());
        }
    }
}
