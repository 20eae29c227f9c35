//! Counters, updated by handles (hits, misses, …) and by the actor (batches).

use crate::store::Usage;
use crate::store::damage::DamageLog;
use crate::sync::Counter;

/// A snapshot of a [`RedbCache`](crate::RedbCache)'s counters since it was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct RedbCacheStats {
    /// Gets that found a value.
    pub hits: u64,
    /// Gets that found nothing.
    pub misses: u64,
    /// Gets answered from the snapshot of the last commit, on the caller's thread (no write in
    /// flight affected them); the others queued through the actor.
    pub snapshot_gets: u64,
    /// Gets answered from the hot tier of decoded entries (no snapshot read, no decoding).
    pub hot_hits: u64,
    /// Gets answered from the write buffer: lazy puts acknowledged and not yet committed.
    pub buffered_gets: u64,
    /// Entries in the hot tier right now.
    pub hot_entries: u64,
    /// Their bytes (key + encoded value) right now: what `hot_bytes` bounds.
    pub hot_bytes: u64,
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
    /// Commands waiting in the channel right now (lazy puts included).
    pub queue_depth: u64,
    /// Lazy mode: the bytes of puts acknowledged and not yet committed, right now (what
    /// `write_buffer_bytes` bounds).
    pub write_buffer_bytes: u64,
    /// Lazy mode: puts acknowledged and then not stored (a failed commit, or no room left on
    /// the disk); their keys were removed, and the next `flush` or `close` reported it.
    pub lazy_writes_lost: u64,
    /// Entries stored, as of the last commit.
    pub entries: u64,
    /// What they are charged against `max_bytes`, as of the last commit: the space they take
    /// in the file (keys, values and bookkeeping, rounded to redb's pages), which is at least
    /// their key + value bytes.
    pub live_bytes: u64,
    /// The blocks the database file takes on disk, read when `stats()` is called. (Its
    /// apparent length is larger: redb doubles it as it grows and leaves the tail sparse.)
    pub file_bytes: u64,
    /// Entries evicted to keep `live_bytes` within `max_bytes`.
    pub evictions: u64,
    /// Expired entries removed by the actor's sweeps.
    pub expirations: u64,
    /// Times the database file was compacted.
    pub compactions: u64,
    /// Reads that found a stored value damaged (its checksum failed, or it would not decode):
    /// each was answered as a miss, and the entry removed with the next write batch.
    pub damaged_reads: u64,
    /// Times the cache file was discarded and the cache started empty: found damaged (moved
    /// aside as `vlive.redb.damaged-<unix-ms>`), or unable to take an invalidation (deleted).
    pub resets: u64,
    /// Puts and fills refused because the disk was below the free-space reserve.
    pub refused_for_space: u64,
}

impl RedbCacheStats {
    /// `get` calls answered: hits plus misses.
    pub fn gets(&self) -> u64 {
        self.hits + self.misses
    }

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
    pub(crate) hits: Counter,
    pub(crate) misses: Counter,
    pub(crate) snapshot_gets: Counter,
    pub(crate) hot_hits: Counter,
    pub(crate) buffered_gets: Counter,
    pub(crate) lazy_writes_lost: Counter,
    pub(crate) puts: Counter,
    pub(crate) fills: Counter,
    pub(crate) stale_fills_rejected: Counter,
    pub(crate) invalidations: Counter,
    pub(crate) batches: Counter,
    pub(crate) batched_ops: Counter,
    pub(crate) max_batch_ops: Counter,
    pub(crate) entries: Counter,
    pub(crate) live_bytes: Counter,
    pub(crate) evictions: Counter,
    pub(crate) expirations: Counter,
    pub(crate) compactions: Counter,
    pub(crate) refused_for_space: Counter,
}

impl Counters {
    pub(crate) fn record_batch(&self, ops: usize) {
        self.batches.bump();
        self.batched_ops.add(ops as u64);
        self.max_batch_ops.raise_to(ops as u64);
    }

    /// The store's totals after a commit (or an open).
    pub(crate) fn record_usage(&self, usage: Usage) {
        self.entries.set(usage.entries);
        self.live_bytes.set(usage.live_bytes);
    }

    /// `hot` is the hot tier's (entries, bytes) right now; `buffered` the write buffer's bytes;
    /// `file_bytes` the file's size on disk; `damage` what was found damaged.
    pub(crate) fn snapshot(
        &self,
        queue_depth: usize,
        hot: (u64, u64),
        buffered: u64,
        file_bytes: u64,
        damage: &DamageLog,
    ) -> RedbCacheStats {
        RedbCacheStats {
            hits: self.hits.get(),
            misses: self.misses.get(),
            snapshot_gets: self.snapshot_gets.get(),
            hot_hits: self.hot_hits.get(),
            buffered_gets: self.buffered_gets.get(),
            write_buffer_bytes: buffered,
            lazy_writes_lost: self.lazy_writes_lost.get(),
            hot_entries: hot.0,
            hot_bytes: hot.1,
            puts: self.puts.get(),
            fills: self.fills.get(),
            stale_fills_rejected: self.stale_fills_rejected.get(),
            invalidations: self.invalidations.get(),
            batches: self.batches.get(),
            batched_ops: self.batched_ops.get(),
            max_batch_ops: self.max_batch_ops.get(),
            queue_depth: queue_depth as u64,
            entries: self.entries.get(),
            live_bytes: self.live_bytes.get(),
            file_bytes,
            evictions: self.evictions.get(),
            expirations: self.expirations.get(),
            compactions: self.compactions.get(),
            damaged_reads: damage.found(),
            resets: damage.resets(),
            refused_for_space: self.refused_for_space.get(),
        }
    }
}
