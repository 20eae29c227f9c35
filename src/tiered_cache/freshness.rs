//! When the near tier was last known to be caught up with the log (of every shard).
//!
//! Each shard's reader stamps the moment it *sent* a round whose answer it has fully applied:
//! every write that shard acknowledged before that moment is then reflected in the near tier.
//! The near tier is as fresh as its least fresh shard. A get may
//! use the near tier only while that stamp is younger than `max_lag`, which bounds how stale a
//! near-tier answer can be.
//!
//! When the near tier may have missed a change (a near write failed), [`Freshness::lost`]
//! clears the stamp and bumps a ticket. The reader stamps with the ticket it flushed under, so
//! a round that was already in flight cannot reopen the near tier: only a new flush can.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub(crate) struct Freshness {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Per shard.
    caught_up: Vec<Option<Instant>>,
    losses: u64,
}

/// Which flush the reader works under; see [`Freshness::lost`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ticket(u64);

impl Freshness {
    /// Never caught up, for `shards` shards.
    pub(crate) fn new(shards: usize) -> Self {
        Freshness {
            state: Mutex::new(State {
                caught_up: vec![None; shards.max(1)],
                losses: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update is a plain assignment: a poisoned lock still holds a consistent state.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The ticket to flush under; a later `lost` makes it stale.
    pub(crate) fn ticket(&self) -> Ticket {
        Ticket(self.lock().losses)
    }

    /// Everything `shard` acknowledged before `round_start` is applied to the near tier,
    /// which was flushed under `ticket`. Returns `false` (and stamps nothing) if the near tier
    /// was lost since: the reader must flush again.
    pub(crate) fn caught_up_at(&self, shard: usize, round_start: Instant, ticket: Ticket) -> bool {
        let mut state = self.lock();
        if state.losses != ticket.0 {
            return false;
        }
        let stamp = &mut state.caught_up[shard];
        // A stamp never moves backwards.
        *stamp = (*stamp).max(Some(round_start));
        true
    }

    /// The near tier may have missed a change: stop using it until every reader flushes it.
    pub(crate) fn lost(&self) {
        let mut state = self.lock();
        state.caught_up.iter_mut().for_each(|stamp| *stamp = None);
        state.losses += 1;
    }

    /// The oldest shard's stamp: everything acknowledged before it is reflected. `None` if a
    /// shard never caught up (or since `lost`).
    fn oldest(&self) -> Option<Instant> {
        let state = self.lock();
        state.caught_up.iter().copied().min().flatten()
    }

    /// How long ago the least fresh shard's last caught-up round started; `None` if a shard
    /// never caught up (or since `lost`).
    pub(crate) fn age(&self) -> Option<Duration> {
        self.oldest().map(|at| at.elapsed())
    }

    /// Whether, on every shard, a round that started at or after `moment` has been applied.
    pub(crate) fn caught_up_since(&self, moment: Instant) -> bool {
        self.oldest().is_some_and(|at| at >= moment)
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
        let freshness = Freshness::new(1);
        assert!(!freshness.within(HOUR));
        assert!(freshness.caught_up_at(0, Instant::now(), freshness.ticket()));
        assert!(freshness.within(HOUR));
    }

    #[test]
    fn a_stamp_older_than_the_bound_is_stale() {
        let freshness = Freshness::new(1);
        assert!(freshness.caught_up_at(0, Instant::now(), freshness.ticket()));
        assert!(!freshness.within(Duration::ZERO));
    }

    #[test]
    fn the_near_tier_is_as_fresh_as_its_least_fresh_shard() {
        let freshness = Freshness::new(2);
        let ticket = freshness.ticket();
        assert!(freshness.caught_up_at(1, Instant::now(), ticket));
        assert!(!freshness.within(HOUR), "shard 0 never caught up");
        let early = Instant::now();
        assert!(freshness.caught_up_at(0, early, ticket));
        assert!(freshness.within(HOUR));
        let later = Instant::now();
        assert!(freshness.caught_up_at(1, later, ticket));
        assert!(!freshness.caught_up_since(later) || early >= later);
        assert!(freshness.caught_up_since(early));
        freshness.lost();
        assert!(!freshness.within(HOUR));
    }

    #[test]
    fn a_loss_closes_the_near_tier_until_a_flush_under_a_new_ticket() {
        let freshness = Freshness::new(1);
        let before = freshness.ticket();
        assert!(freshness.caught_up_at(0, Instant::now(), before));
        freshness.lost();
        assert!(!freshness.within(HOUR));
        assert!(
            !freshness.caught_up_at(0, Instant::now(), before),
            "an old round reopened it"
        );
        assert!(!freshness.within(HOUR));
        assert!(freshness.caught_up_at(0, Instant::now(), freshness.ticket()));
        assert!(freshness.within(HOUR));
    }
}
