//! Metric names and label values, Prometheus style (`_total` counters, base units).

/// Cache operations by `cache`, `tier`, `op` and `outcome`.
pub(crate) const OPERATIONS: &str = "vlive_cache_operations_total";
/// Entries stored, by `cache` and `tier`.
pub(crate) const ENTRIES: &str = "vlive_cache_entries";
/// Bytes, by `cache` and `kind` (`live`, `file`, `hot`, `write_buffer`).
pub(crate) const BYTES: &str = "vlive_cache_bytes";
/// Commands waiting for the actor, by `cache`.
pub(crate) const QUEUE_DEPTH: &str = "vlive_cache_queue_depth";
/// Entries evicted to keep within the byte budget.
pub(crate) const EVICTIONS: &str = "vlive_cache_evictions_total";
/// Expired entries removed.
pub(crate) const EXPIRATIONS: &str = "vlive_cache_expirations_total";
/// Cache files discarded (damaged, or unable to take an invalidation).
pub(crate) const RESETS: &str = "vlive_cache_resets_total";
/// Stored values whose checksum failed (or that would not decode).
pub(crate) const CHECKSUM_FAILURES: &str = "vlive_cache_checksum_failures_total";
/// Commands per actor batch (one transaction each).
pub(crate) const BATCH_OPS: &str = "vlive_cache_batch_ops";
/// Seconds each batch took to apply and commit.
pub(crate) const COMMIT_SECONDS: &str = "vlive_cache_commit_seconds";
/// LiveTable calls to the master, by `cache`, `call` and `outcome`.
pub(crate) const MASTER_CALLS: &str = "vlive_live_table_master_calls_total";
/// LiveTable master calls abandoned after the table's master timeout.
pub(crate) const MASTER_TIMEOUTS: &str = "vlive_live_table_master_timeouts_total";
/// Seconds each LiveTable call to the master took, by `cache`.
pub(crate) const MASTER_SECONDS: &str = "vlive_live_table_master_seconds";
/// LiveTable reads by `cache` and `outcome`.
pub(crate) const LIVE_TABLE_READS: &str = "vlive_live_table_reads_total";
/// What became of the rows of LiveTable master reads, by `cache` and `outcome`.
pub(crate) const LIVE_TABLE_FILLS: &str = "vlive_live_table_fills_total";
/// LiveTable invalidations of its entries.
pub(crate) const LIVE_TABLE_INVALIDATIONS: &str = "vlive_live_table_invalidations_total";
/// LiveTable live events received.
pub(crate) const LIVE_TABLE_EVENTS: &str = "vlive_live_table_events_total";
/// LiveTable lost events and ended streams.
pub(crate) const LIVE_TABLE_STREAM_GAPS: &str = "vlive_live_table_stream_gaps_total";

/// The `tier` label of a [`RedbCache`](crate::RedbCache)'s hot tier (decoded, in memory).
pub(crate) const TIER_HOT: &str = "hot";
/// The `tier` label of what a [`RedbCache`](crate::RedbCache) keeps on disk.
pub(crate) const TIER_DISK: &str = "disk";
/// TieredCache: log entries its reader applied to the near tier.
#[cfg(feature = "redis")]
pub(crate) const TIERED_LOG_ENTRIES: &str = "vlive_tiered_log_entries_total";
/// TieredCache: times its reader emptied the near tier.
#[cfg(feature = "redis")]
pub(crate) const TIERED_FLUSHES: &str = "vlive_tiered_flushes_total";
/// TieredCache: reader sessions started.
#[cfg(feature = "redis")]
pub(crate) const TIERED_SESSIONS: &str = "vlive_tiered_sessions_total";
/// TieredCache: seconds since the reader's last caught-up round began (+Inf: not caught up).
#[cfg(feature = "redis")]
pub(crate) const TIERED_CAUGHT_UP_AGE: &str = "vlive_tiered_caught_up_age_seconds";
/// TieredCache: seconds from the server writing a log entry to the near tier applying it.
#[cfg(feature = "redis")]
pub(crate) const TIERED_NEAR_LAG: &str = "vlive_tiered_near_lag_seconds";
/// The `tier` label (and `kind`, of bytes) of a `RedisCache`.
#[cfg(feature = "redis")]
pub(crate) const TIER_REDIS: &str = "redis";
/// The `tier` label of a `TieredCache`'s near tier.
#[cfg(feature = "redis")]
pub(crate) const TIER_NEAR: &str = "near";

/// The `tier` label of a [`MemCache`](crate::MemCache).
pub(crate) const TIER_MEMORY: &str = "memory";
