//! What the release stage (revision records and the lock) reports.

#[derive(Debug, Clone, PartialEq)]
pub enum ReleaseEvent {
    /// A revision record could not be read; it is skipped.
    RecordUnreadable {
        name: String,
        namespace: String,
        reason: String,
    },
    /// A pending revision whose run stopped was marked failed.
    Abandoned { revision: u32 },
    /// `down` kept the history and marked this revision uninstalled.
    Uninstalled { revision: u32 },
    /// Where the lock is kept: a `Lease`, or a `ConfigMap` when Leases may not be written.
    LockIn { kind: &'static str, name: String },
    /// The run took over the lock of a run that stopped renewing it.
    LockTakenOver {
        previous: String,
        lease_seconds: i32,
    },
    /// Another run took the lock from this one.
    LockLost,
    /// Renewing the lock failed; it is retried.
    LockRenewalRetried { error: String },
    /// The lock was not renewed for its whole duration (said once until it is renewed again).
    LockMayHaveExpired { lease_seconds: i32, error: String },
}
