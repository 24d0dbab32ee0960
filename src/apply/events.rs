//! What the apply stage reports, and the words of its vocabulary (what an apply changed, why
//! an object is removed), which the report and the events share.

use crate::render::kind::ObjectKey;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Created,
    Configured,
    Unchanged,
}

impl Change {
    pub fn verb(self, dry_run: bool) -> &'static str {
        match (self, dry_run) {
            (Change::Created, false) => "created",
            (Change::Configured, false) => "configured",
            (Change::Unchanged, _) => "unchanged",
            (Change::Created, true) => "would be created",
            (Change::Configured, true) => "would be configured",
        }
    }
}

/// Why objects are deleted, for what the user is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// No longer in the config.
    Prune,
    /// `down`.
    Down,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ApplyEvent {
    /// An object was applied (or, in a dry run, would be).
    Applied {
        key: ObjectKey,
        change: Change,
        dry_run: bool,
    },
    /// An object was deleted (or would be).
    Removed {
        key: ObjectKey,
        removal: Removal,
        dry_run: bool,
    },
}
