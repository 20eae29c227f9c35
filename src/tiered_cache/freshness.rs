//! When the near tier was last known to be caught up with the log.
//!
//! The reader stamps the moment it *sent* a round whose answer it has fully applied: every
//! write Redis acknowledged before that moment is then reflected in the near tier. A get may
//! use the near tier only while that stamp is younger than `max_lag`, which bounds how stale a
//! near-tier answer can be.
//!
//! When the near tier may have missed a change (a near write failed), [`Freshness::lost`]
//! clears the stamp and bumps a ticket. The reader stamps with the ticket it flushed under, so
//! a round that was already in flight cannot reopen the near tier: only a new flush can.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub(crate) struct Freshness {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    caught_up: Option<Instant>,
    losses: u64,
}

/// Which flush the reader works under; see [`Freshness::lost`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ticket(u64);

impl Freshness {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update is a plain assignment: a poisoned lock still holds a consistent state.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The ticket to flush under; a later `lost` makes it stale.
    pub(crate) fn ticket(&self) -> Ticket {
        Ticket(self.lock().losses)
    }

    /// Everything acknowledged before `round_start` is applied to the near tier, which was
    /// flushed under `ticket`. Returns `false` (and stamps nothing) if the near tier was lost
    /// since: the reader must flush again.
    pub(crate) fn caught_up_at(&self, round_start: Instant, ticket: Ticket) -> bool {
        let mut state = self.lock();
        if state.losses != ticket.0 {
            return false;
        }
        // A stamp never moves backwards.
        state.caught_up = state.caught_up.max(Some(round_start));
        true
    }

    /// The near tier may have missed a change: stop using it until the reader flushes it.
    pub(crate) fn lost(&self) {
        let mut state = self.lock();
        state.caught_up = None;
        state.losses += 1;
    }

    /// How long ago the last caught-up round started; `None` if never (or since `lost`).
    pub(crate) fn age(&self) -> Option<Duration> {
        self.lock().caught_up.map(|at| at.elapsed())
    }

    /// Whether a round that started at or after `moment` has been fully applied.
    pub(crate) fn caught_up_since(&self, moment: Instant) -> bool {
        self.lock().caught_up.is_some_and(|at| at >= moment)
    }

    /// Whether the near tier may answer now.
    pub(crate) fn within(&self, max_lag: Duration) -> bool {
        self.age().is_some_and(|age| age < max_lag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn never_caught_up_is_never_fresh() {
        let freshness = Freshness::default();
        assert!(!freshness.within(HOUR));
        assert!(freshness.caught_up_at(Instant::now(), freshness.ticket()));
        assert!(freshness.within(HOUR));
    }

    #[test]
    fn a_stamp_older_than_the_bound_is_stale() {
        let freshness = Freshness::default();
        assert!(freshness.caught_up_at(Instant::now(), freshness.ticket()));
        assert!(!freshness.within(Duration::ZERO));
    }

    #[test]
    fn a_loss_closes_the_near_tier_until_a_flush_under_a_new_ticket() {
        let freshness = Freshness::default();
        let before = freshness.ticket();
        assert!(freshness.caught_up_at(Instant::now(), before));
        freshness.lost();
        assert!(!freshness.within(HOUR));
        assert!(
            !freshness.caught_up_at(Instant::now(), before),
            "an old round reopened it"
        );
        assert!(!freshness.within(HOUR));
        assert!(freshness.caught_up_at(Instant::now(), freshness.ticket()));
        assert!(freshness.within(HOUR));
    }
}
