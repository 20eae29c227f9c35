//! When lazy mode makes its commits durable (a checkpoint): the commit after the oldest
//! deferred one is `max_delay` old is durable; and under a byte budget, once deferred commits
//! have replaced an eighth of it, the actor checkpoints right after the commit that crossed it.
//! (Invalidations, `flush` and `close` are durable whatever this says: `serve`.)
//!
//! Why bytes as well as time (read from redb 4.6, `src/transactions.rs`): a commit with
//! `Durability::None` may reuse a page it frees only if a non-durable commit wrote that page
//! after the last durable one (`non_durable_commit` → `process_freed_pages_nondurable` →
//! `free_if_unpersisted`). The pages the last durable commit names must stay intact, because a
//! crash rolls the file back to it, so freeing one is only recorded, in memory
//! (`record_unpersisted_data_freed`); the next durable commit writes those records out and frees
//! the pages after it commits (`process_data_freed_pages_after_commit`), those that no live read
//! transaction still needs. Until then every page a deferred commit replaces stays allocated,
//! and its replacement comes from free space or from the end of the file. If the cache rewrites
//! its whole budget between two checkpoints, every page is replaced once and the file doubles:
//! write-only churn of 1-64 KB values outran a 100 ms checkpoint interval and left the file at
//! 2.2 × `max_bytes` (issue 17; `VLIVE_CHURN_WORKLOAD=write-only cargo bench --bench churn`).
//! Time alone cannot bound that, since how much is written in `max_delay` depends on the
//! machine and the load; bytes can. See docs/DESIGN.md §2.3.
//!
//! Why a checkpoint after the commit rather than a durable commit of the batch that crosses the
//! line, as time does: a durable commit cannot free the pages it replaces itself (the snapshot
//! of the commit before it still reads them), and they would stay allocated until the next
//! durable commit, another eighth of the budget later. The checkpoint runs once the snapshot
//! has moved on to the deferred commit, so it frees everything replaced until then. At 16 MiB
//! under 64 writers of 1-64 KB values that is the difference between 1.40-1.44 × the budget
//! and 1.24-1.30 × (durable mode: 1.29-1.38 ×).
//!
//! The bytes counted are [`crate::store::pages_replaced`] per put, an estimate of the pages it
//! makes redb replace. Pinned pages also break up the free space, so the file outgrows durable
//! mode's by more than an eighth of the budget: by 0.14 to 0.31 × under one writer's churn of
//! values from 100 B to 64 KB at 8 MiB (`tests/lazy_budget.rs` with those sizes), within issue
//! 17's 1.25 × + 2 MiB. A checkpoint per quarter budget was not: 1.63 × for 100-400 B values,
//! 1.52 × for 2.1-6 KB ones, against a bound of 1.5 × at 8 MiB.

use std::time::{Duration, Instant};

use super::config::Durability;
use crate::store::Commit;

/// The share of the byte budget that deferred commits may replace before a checkpoint.
const BUDGET_SHARE: u64 = 8;

/// The checkpoint policy, and what deferred commits have replaced since the last durable one.
/// When the oldest of them committed is the actor's to track (`unsynced_since`), since losing
/// them is part of its health.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Checkpoints {
    /// `None` in durable mode: every commit is durable.
    max_delay: Option<Duration>,
    /// With a byte budget: how many bytes deferred commits may replace before a checkpoint.
    max_deferred_bytes: Option<u64>,
    /// What deferred commits have replaced since the last durable commit.
    deferred_bytes: u64,
}

impl Checkpoints {
    pub(crate) fn new(durability: Durability, max_bytes: Option<u64>) -> Self {
        let max_delay = match durability {
            Durability::Immediate => None,
            Durability::Lazy { max_delay } => Some(max_delay),
        };
        Checkpoints {
            max_delay,
            max_deferred_bytes: max_bytes.map(|budget| (budget / BUDGET_SHARE).max(1)),
            deferred_bytes: 0,
        }
    }

    /// Whether the next commit must be durable: always in durable mode; in lazy mode once the
    /// oldest deferred commit (made at `unsynced_since`) is `max_delay` old at `now`.
    pub(crate) fn is_due(&self, unsynced_since: Option<Instant>, now: Instant) -> bool {
        let Some(max_delay) = self.max_delay else {
            return true;
        };
        unsynced_since.is_some_and(|since| now.duration_since(since) >= max_delay)
    }

    /// Whether deferred commits have replaced their share of the budget: a checkpoint is due
    /// right after the commit that crossed it.
    pub(crate) fn over_budget(&self) -> bool {
        self.max_deferred_bytes
            .is_some_and(|max| self.deferred_bytes >= max)
    }

    /// What deferred commits may still replace before the checkpoint by bytes: a batch stops
    /// growing there, so that a burst of lazy puts cannot carry one batch far past it (each
    /// batch's pages stay allocated until the checkpoint after it). `None`: no limit.
    pub(crate) fn allowance(&self) -> Option<u64> {
        self.max_delay?;
        let max = self.max_deferred_bytes?;
        Some(max.saturating_sub(self.deferred_bytes).max(1))
    }

    /// When the actor, idle, checkpoints by time: `max_delay` after the oldest deferred commit.
    /// (Bytes only grow with commits, so a commit, not a timer, is what they make durable.)
    pub(crate) fn deadline(&self, unsynced_since: Option<Instant>) -> Option<Instant> {
        Some(unsynced_since? + self.max_delay?)
    }

    /// Counts a commit that succeeded, which replaced `bytes`.
    pub(crate) fn committed(&mut self, durability: Commit, bytes: u64) {
        self.deferred_bytes = match durability {
            Commit::Durable => 0,
            Commit::Deferred => self.deferred_bytes.saturating_add(bytes),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn lazy(max_delay_ms: u64, max_bytes: Option<u64>) -> Checkpoints {
        let max_delay = Duration::from_millis(max_delay_ms);
        Checkpoints::new(Durability::Lazy { max_delay }, max_bytes)
    }

    #[test]
    fn durable_mode_makes_every_commit_durable() {
        let checkpoints = Checkpoints::new(Durability::Immediate, Some(8 * MIB));
        assert!(checkpoints.is_due(None, Instant::now()));
        assert_eq!(checkpoints.deadline(Some(Instant::now())), None);
    }

    #[test]
    fn a_checkpoint_falls_due_max_delay_after_the_oldest_deferred_commit() {
        let checkpoints = lazy(100, None);
        let since = Instant::now();
        assert!(!checkpoints.is_due(None, since), "nothing to make durable");
        assert!(!checkpoints.is_due(Some(since), since + Duration::from_millis(99)));
        assert!(checkpoints.is_due(Some(since), since + Duration::from_millis(100)));
        assert_eq!(
            checkpoints.deadline(Some(since)),
            Some(since + Duration::from_millis(100))
        );
        assert_eq!(checkpoints.deadline(None), None);
    }

    #[test]
    fn without_a_budget_bytes_never_call_for_one() {
        let mut checkpoints = lazy(100, None);
        checkpoints.committed(Commit::Deferred, u64::MAX);
        assert!(!checkpoints.over_budget());
    }

    #[test]
    fn under_a_budget_one_falls_due_once_an_eighth_of_it_is_replaced() {
        let mut checkpoints = lazy(3_600_000, Some(8 * MIB));
        checkpoints.committed(Commit::Deferred, MIB - 10);
        assert!(!checkpoints.over_budget());
        checkpoints.committed(Commit::Deferred, 10);
        assert!(checkpoints.over_budget());
        // A durable commit, of a batch or of a checkpoint, starts the count again.
        checkpoints.committed(Commit::Durable, 0);
        assert!(!checkpoints.over_budget());
        // A durable batch's own bytes are durable with it.
        checkpoints.committed(Commit::Durable, 2 * MIB);
        assert!(!checkpoints.over_budget());
    }

    #[test]
    fn a_tiny_budget_checkpoints_after_every_commit_that_writes() {
        let mut checkpoints = lazy(100, Some(3));
        checkpoints.committed(Commit::Deferred, 0);
        assert!(!checkpoints.over_budget());
        checkpoints.committed(Commit::Deferred, 4096);
        assert!(checkpoints.over_budget());
    }
}
