//! The kubelet's container restart back-off (one `flowcontrol.Backoff` entry
//! per container): 10 s, doubled on every restart that had to wait, capped at
//! 300 s, forgotten after 600 s without restarts; measured from when the
//! latest exited instance of the container finished.

use std::time::Instant;

use crate::util::TimeScale;

const INITIAL_SECS: u64 = 10;
const MAX_SECS: u64 = 300;

/// One container's back-off entry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Backoff {
    /// The current back-off, in simulated seconds.
    pub secs: u64,
    /// When the entry was last moved on (real instant).
    last_update: Instant,
}

/// The back-off entry of a container, if any (`None` until its first restart).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct RestartBackoff(Option<Backoff>);

impl RestartBackoff {
    /// The entry, unless `exited` came more than twice the cap after its last update.
    fn live(&self, exited: Instant, clock: &TimeScale) -> Option<Backoff> {
        self.0.filter(|b| {
            exited.saturating_duration_since(b.last_update) <= clock.secs((2 * MAX_SECS) as f64)
        })
    }

    /// doBackOff: may the container start at `now`, given when the latest exited
    /// instance the kubelet sees finished (`None`: no exited instance, so no back-off
    /// and no step)? `Err(secs)` while in back-off; otherwise the entry moves on
    /// (10 s, then doubled, capped) and the container starts.
    pub fn check(
        &mut self,
        exited: Option<Instant>,
        now: Instant,
        clock: &TimeScale,
    ) -> Result<(), u64> {
        let Some(exited) = exited else {
            return Ok(());
        };
        let live = self.live(exited, clock);
        if let Some(b) = live
            && now.saturating_duration_since(exited) < clock.secs(b.secs as f64)
        {
            return Err(b.secs);
        }
        let secs = match live {
            Some(b) => (b.secs * 2).min(MAX_SECS),
            None => INITIAL_SECS,
        };
        self.0 = Some(Backoff {
            secs,
            last_update: now,
        });
        Ok(())
    }

    /// The current back-off in simulated seconds.
    #[cfg(test)]
    fn secs(&self) -> u64 {
        self.0.map_or(INITIAL_SECS, |b| b.secs)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_crash_loop_backs_off_10_20_40() {
        // Scale 0.001: 1 simulated second is 1 ms.
        let clock = TimeScale::new(0.001);
        let s = |n: u64| Duration::from_millis(n);
        let t0 = Instant::now();
        let mut b = RestartBackoff::default();
        // Exit at 0, the next sync at 1 restarts at once and starts the entry at 10 s.
        assert_eq!(b.check(Some(t0), t0 + s(1), &clock), Ok(()));
        assert_eq!(b.secs(), 10);
        // That instance exits at 1: the sync at 2 is in back-off until 11.
        assert_eq!(b.check(Some(t0 + s(1)), t0 + s(2), &clock), Err(10));
        assert_eq!(b.check(Some(t0 + s(1)), t0 + s(10), &clock), Err(10));
        assert_eq!(b.check(Some(t0 + s(1)), t0 + s(11), &clock), Ok(()));
        assert_eq!(b.secs(), 20);
        assert_eq!(b.check(Some(t0 + s(11)), t0 + s(12), &clock), Err(20));
        assert_eq!(b.check(Some(t0 + s(11)), t0 + s(31), &clock), Ok(()));
        assert_eq!(b.secs(), 40);
    }

    #[test]
    fn liveness_kills_restart_at_once_until_the_snapshot_is_too_recent() {
        // 10 (d): kills at 9, 19, 29 restart at once, the kill at 39 backs off 20 s.
        let clock = TimeScale::new(0.001);
        let s = |n: u64| Duration::from_millis(n);
        let t0 = Instant::now();
        let mut b = RestartBackoff::default();
        // The kill's sync sees the previous exited instance (none at the first kill).
        assert_eq!(b.check(None, t0 + s(9), &clock), Ok(()));
        assert_eq!(b.secs(), 10, "no entry yet");
        assert_eq!(b.check(Some(t0 + s(9)), t0 + s(19), &clock), Ok(()));
        assert_eq!(b.check(Some(t0 + s(19)), t0 + s(29), &clock), Ok(()));
        assert_eq!(b.secs(), 20);
        assert_eq!(b.check(Some(t0 + s(29)), t0 + s(39), &clock), Err(20));
        // Retried when the killed instance (exited at 39) has waited 20 s.
        assert_eq!(b.check(Some(t0 + s(39)), t0 + s(59), &clock), Ok(()));
        assert_eq!(b.secs(), 40);
    }

    #[test]
    fn capped_at_300_and_forgotten_after_600() {
        let clock = TimeScale::new(0.001);
        let s = |n: u64| Duration::from_millis(n);
        let t0 = Instant::now();
        let mut b = RestartBackoff::default();
        let mut t = t0;
        for _ in 0..8 {
            let _ = b.check(Some(t), t + s(1000), &clock);
            t += s(1000);
        }
        assert_eq!(b.secs(), 300);
        // An instance that ran for more than 600 s after the last restart starts afresh.
        assert_eq!(b.check(Some(t + s(601)), t + s(602), &clock), Ok(()));
        assert_eq!(b.secs(), 10);
    }
}
