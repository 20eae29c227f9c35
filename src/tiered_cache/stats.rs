//! Counters of a [`TieredCache`](crate::TieredCache), for tests and operators.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A snapshot of a [`TieredCache`](crate::TieredCache)'s counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TieredCacheStats {
    /// Gets answered by the near tier.
    pub near_hits: u64,
    /// Gets that missed the near tier and read Redis.
    pub near_misses: u64,
    /// Gets that skipped the near tier because the log reader was not caught up.
    pub bypassed: u64,
    /// Log entries the reader applied to the near tier.
    pub log_entries: u64,
    /// Times the reader emptied the near tier (start, reconnect, gap, new incarnation, lost).
    pub flushes: u64,
    /// Reader sessions started (each one opens a connection and flushes first).
    pub sessions: u64,
    /// How long ago the reader's last caught-up round started; `None` while it is not caught up.
    pub caught_up_age: Option<Duration>,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) near_hits: AtomicU64,
    pub(crate) near_misses: AtomicU64,
    pub(crate) bypassed: AtomicU64,
    pub(crate) log_entries: AtomicU64,
    pub(crate) flushes: AtomicU64,
    pub(crate) sessions: AtomicU64,
}

pub(crate) fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn snapshot(&self, caught_up_age: Option<Duration>) -> TieredCacheStats {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TieredCacheStats {
            near_hits: read(&self.near_hits),
            near_misses: read(&self.near_misses),
            bypassed: read(&self.bypassed),
            log_entries: read(&self.log_entries),
            flushes: read(&self.flushes),
            sessions: read(&self.sessions),
            caught_up_age,
        }
    }
}
