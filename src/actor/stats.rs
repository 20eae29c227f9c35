//! Counters, updated by handles (hits, misses, …) and by the actor (batches).

use crate::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of a cache's counters since it was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CacheStats {
    /// `get` calls answered.
    pub gets: u64,
    /// Gets that found a value.
    pub hits: u64,
    /// Gets that found nothing.
    pub misses: u64,
    /// Gets answered beside the actor, by a lookup on the caller's thread (no write in flight
    /// affected them); the others queued.
    pub gets_beside: u64,
    /// Puts acknowledged.
    pub puts: u64,
    /// Conditional fills stored.
    pub fills: u64,
    /// Conditional fills rejected because an invalidation overtook them.
    pub stale_fills_rejected: u64,
    /// Prefix invalidations acknowledged.
    pub invalidations: u64,
    /// Batches executed (one transaction each).
    pub batches: u64,
    /// Commands executed in those batches.
    pub batched_ops: u64,
    /// The largest batch so far, in commands.
    pub max_batch_ops: u64,
    /// Commands waiting in the channel right now.
    pub queue_depth: u64,
}

impl CacheStats {
    /// Mean commands per batch: how much group commit is saving.
    pub fn mean_batch_ops(&self) -> f64 {
        if self.batches == 0 {
            0.0
        } else {
            self.batched_ops as f64 / self.batches as f64
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) gets: AtomicU64,
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) gets_beside: AtomicU64,
    pub(crate) puts: AtomicU64,
    pub(crate) fills: AtomicU64,
    pub(crate) stale_fills_rejected: AtomicU64,
    pub(crate) invalidations: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) batched_ops: AtomicU64,
    pub(crate) max_batch_ops: AtomicU64,
}

/// Adds one; counters are statistics, so relaxed ordering is enough.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn record_batch(&self, ops: usize) {
        bump(&self.batches);
        self.batched_ops.fetch_add(ops as u64, Ordering::Relaxed);
        self.max_batch_ops.fetch_max(ops as u64, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, queue_depth: usize) -> CacheStats {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CacheStats {
            gets: read(&self.gets),
            hits: read(&self.hits),
            misses: read(&self.misses),
            gets_beside: read(&self.gets_beside),
            puts: read(&self.puts),
            fills: read(&self.fills),
            stale_fills_rejected: read(&self.stale_fills_rejected),
            invalidations: read(&self.invalidations),
            batches: read(&self.batches),
            batched_ops: read(&self.batched_ops),
            max_batch_ops: read(&self.max_batch_ops),
            queue_depth: queue_depth as u64,
        }
    }
}
