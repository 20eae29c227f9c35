//! What a [`LiveTable`](crate::LiveTable) has done: counters for reads, writes and events.

use crate::sync::Counter;

/// A snapshot of a [`LiveTable`](crate::LiveTable)'s counters, shared by all its clones, since
/// it was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LiveTableStats {
    /// Reads answered from the cache.
    pub hits: u64,
    /// Reads that missed (or found an entry older than `max_age`) and waited for the master.
    pub misses: u64,
    /// Reads that failed (the master's error reached the caller).
    pub failed_reads: u64,
    /// Master reads made: one per flight, however many misses waited on it. Counted when the
    /// flight starts, so a read that failed, timed out, panicked or was cancelled counts too.
    pub master_reads: u64,
    /// Master reads whose rows were stored in the cache.
    pub fills: u64,
    /// Master reads whose rows were dropped because an invalidation overtook them.
    pub rejected_stale: u64,
    /// Master reads whose rows were served but not cached, each logged at warn: the cache
    /// failed, or refused them ([`Error::ValueRefused`](crate::Error::ValueRefused): rows it
    /// could not read back). A key whose rows the cache refuses reads the master every time.
    pub not_cached: u64,
    /// Writes applied to the write target.
    pub writes: u64,
    /// Writes that failed at the write target: refused, panicked, or timed out (then their
    /// outcome is unknown; see `master_timeouts`).
    pub failed_writes: u64,
    /// Master calls (reads, one per flight, and writes) abandoned after the table's
    /// `master_timeout`.
    pub master_timeouts: u64,
    /// Invalidations of the cache key (after writes, events, or on request).
    pub invalidations: u64,
    /// Live events received, including gaps and the end of a stream.
    pub events: u64,
    /// Lost events and ended streams (each also invalidated the cache key, or, with
    /// serve-stale-while-revalidate, marked its entries stale).
    pub stream_gaps: u64,
    /// Reads answered with a stale entry while a background read revalidated it
    /// ([`serve_stale_while_revalidate`](crate::LiveTableBuilder::serve_stale_while_revalidate));
    /// counted in `hits` too.
    pub stale_hits: u64,
    /// Background reads started to revalidate a stale entry (concurrent ones for one key share
    /// one master read).
    pub revalidations: u64,
}

impl LiveTableStats {
    /// Reads (`list` and `get`) answered or failed: every read is a hit or a miss.
    pub fn reads(&self) -> u64 {
        self.hits + self.misses
    }
}

/// The live counters behind [`LiveTableStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) hits: Counter,
    pub(crate) misses: Counter,
    pub(crate) failed_reads: Counter,
    pub(crate) master_reads: Counter,
    pub(crate) fills: Counter,
    pub(crate) rejected_stale: Counter,
    pub(crate) not_cached: Counter,
    pub(crate) writes: Counter,
    pub(crate) failed_writes: Counter,
    pub(crate) master_timeouts: Counter,
    pub(crate) invalidations: Counter,
    pub(crate) events: Counter,
    pub(crate) stream_gaps: Counter,
    pub(crate) stale_hits: Counter,
    pub(crate) revalidations: Counter,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> LiveTableStats {
        LiveTableStats {
            hits: self.hits.get(),
            misses: self.misses.get(),
            failed_reads: self.failed_reads.get(),
            master_reads: self.master_reads.get(),
            fills: self.fills.get(),
            rejected_stale: self.rejected_stale.get(),
            not_cached: self.not_cached.get(),
            writes: self.writes.get(),
            failed_writes: self.failed_writes.get(),
            master_timeouts: self.master_timeouts.get(),
            invalidations: self.invalidations.get(),
            events: self.events.get(),
            stream_gaps: self.stream_gaps.get(),
            stale_hits: self.stale_hits.get(),
            revalidations: self.revalidations.get(),
        }
    }
}
