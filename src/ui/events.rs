//! Progress events: how stages tell the user what is happening without printing. A stage gets an
//! [`Events`] sender and reports what it does; the UI task turns events into bars or lines, and
//! tests collect them instead.

use tokio::sync::mpsc;

use crate::build::BuildEvent;
use crate::load::LoadEvent;
use crate::rollout::RolloutEvent;

/// Everything a stage can report.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Build(BuildEvent),
    Load(LoadEvent),
    Rollout(RolloutEvent),
    /// A step worth a line in the normal output (`applied Deployment/backend`).
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
