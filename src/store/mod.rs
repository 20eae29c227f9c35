//! The storage engine under the actor.
//!
//! The actor sees storage only through these traits, so the same batch loop runs on redb in
//! production and on an in-memory map under loom. Keys here are the cache's keys; how a store
//! lays them out is its own business.
//!
//! Besides values, a store keeps what eviction and expiry need, in the same transaction as the
//! values: each entry's place in the insertion order (a sequence number, the CLOCK hand's queue)
//! and when its rows were fetched; and the totals ([`Usage`]), so that neither an open nor a
//! batch has to scan for them.

pub(crate) mod damage;
pub(crate) mod entry_map;
#[cfg(any(loom, test))]
pub(crate) mod mem_store;
#[cfg(not(loom))]
pub(crate) mod redb_open;
#[cfg(not(loom))]
pub(crate) mod redb_store;
#[cfg(not(loom))]
pub(crate) mod stored_value;

/// Errors of a store: redb's, which an in-memory store can build too (`redb::Error::Io`).
pub(crate) type StoreResult<T> = Result<T, redb::Error>;

/// What becomes of a database that cannot be trusted or written any more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Discard {
    /// Damaged: moved aside, for whoever wants to look at it, and replaced by an empty one.
    KeepAside,
    /// Could not take an invalidation (a full disk): deleted, which also frees its space. Only an
    /// empty cache is surely not stale then, and a tombstone in memory would not survive a
    /// crash.
    Delete,
}

/// How durable a commit must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Commit {
    /// On disk when `commit` returns (fsync).
    Durable,
    /// Visible at once, on disk at the next durable commit or checkpoint.
    Deferred,
}

/// The xxh3 of an encoded value. Callers take it before sending a put, so that the actor does
/// not hash values; a stored value's checksum builds on it (`stored_value`).
pub(crate) fn value_sum(value: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(value)
}

/// What the store held at one commit, for lookups on the callers' threads (gets beside the
/// actor). It stays valid, and unchanged, while later batches commit.
pub(crate) trait Snapshot: Send + Sync + 'static {
    fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>>;
}

/// A storage engine owned by the actor thread.
///
/// After an I/O error the actor drops the store and opens a new one (redb refuses every write
/// after one until reopened), so a store has no recovery of its own.
pub(crate) trait Store: Send + 'static {
    /// What is committed now. The actor takes one after each commit for gets beside it, and
    /// drops every snapshot (waiting out lookups in progress) before it closes or drops the
    /// store.
    fn snapshot(&self) -> StoreResult<Box<dyn Snapshot>>;

    /// Runs `work` inside one read transaction.
    fn read_batch<R>(
        &self,
        work: impl FnOnce(&mut dyn StoreReads) -> StoreResult<R>,
    ) -> StoreResult<R>;

    /// Runs `work` inside one write transaction, then commits it once with `durability`. On
    /// any `Err` nothing of the batch is kept.
    fn write_batch<R>(
        &mut self,
        durability: Commit,
        work: impl FnOnce(&mut dyn StoreBatch) -> StoreResult<R>,
    ) -> StoreResult<R>;

    /// Makes every earlier commit durable.
    fn checkpoint(&mut self) -> StoreResult<()>;

    /// Checks the whole file against its page checksums (slow: it reads every page). `Err`
    /// (`Corrupted`) when the file is damaged beyond repair. Needs no snapshot alive.
    fn verify(&mut self) -> StoreResult<()> {
        Ok(())
    }

    /// Whether `error` leaves the store unusable, so the actor must open it afresh.
    fn needs_reopen(error: &redb::Error) -> bool {
        matches!(
            error,
            redb::Error::Io(_) | redb::Error::PreviousIo | redb::Error::DatabaseClosed
        )
    }

    /// Whether `error` concerns only the command that hit it and leaves the transaction usable,
    /// so the rest of the batch can go on.
    fn affects_one_command(error: &redb::Error) -> bool {
        matches!(
            error,
            redb::Error::TableTypeMismatch { .. }
                | redb::Error::TableIsMultimap { .. }
                | redb::Error::TypeDefinitionChanged { .. }
                | redb::Error::ValueTooLarge { .. }
        )
    }

    /// Releases the storage; a clean close means no repair on the next open.
    fn close(self) -> StoreResult<()>;

    /// The totals as of the last commit.
    fn usage(&self) -> Usage;
}

/// The totals a store keeps up to date with every write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    /// Entries stored.
    pub(crate) entries: u64,
    /// What they are charged against the byte budget, added up (see [`entry_size`]).
    pub(crate) live_bytes: u64,
}

/// redb's page size.
const PAGE: u64 = 4096;
/// What redb adds to each entry of a leaf: the end offsets of its key and of its value.
const LEAF_ENTRY_OVERHEAD: u64 = 8;
/// The header `redb_store` keeps in front of each value (`stored_value`).
const VALUE_HEADER: u64 = 24;
/// The entry's row in the clock table besides its key: the sequence number.
const CLOCK_ROW_FIXED: u64 = 8;

/// The size an entry is charged against a byte budget: the space it takes in redb's file, not
/// just its key and value bytes, so that `max_bytes` bounds the file (`benches/churn`).
///
/// redb allocates whole pages: an entry bigger than half a page gets a leaf of its own, rounded
/// up to a power of two of pages (a 3.4 KB value takes a 4 KiB page); smaller entries share
/// leaves, which run about 4/7 full under churn (the churn probe measured 1.74× for 200 B
/// values). The entry's clock row is a small entry too. The same function charges `MemCache`'s
/// entries, so one budget evicts the same keys on both backends.
pub(crate) fn entry_size(key: &str, value_len: usize) -> u64 {
    let key = key.len() as u64;
    let data = key + VALUE_HEADER + value_len as u64 + LEAF_ENTRY_OVERHEAD;
    let clock_row = key + CLOCK_ROW_FIXED + LEAF_ENTRY_OVERHEAD;
    in_leaves(data) + shared_leaf(clock_row)
}

/// The file space a put may leave allocated until the next durable commit, when it commits
/// without one (lazy mode checkpoints by these bytes: `actor::checkpoint`): an estimate of the
/// pages it makes redb replace, for random keys. A large value's own pages (the value it
/// overwrites, or the entry its eviction removes, is about as large), or for a small one the
/// whole leaf it lands in; and one more page: the leaf of the entry it evicts, or of its old
/// clock row. Measured, not only argued: without the extra page the file reached 1.63 × the
/// budget under one writer's churn of 100-400 B values and 1.50 × under 2.1-6 KB ones; with it,
/// 1.32 × and 1.28 × (`tests/lazy_budget.rs` with `VALUE_BYTES` set to those sizes, in a release
/// build; 1.19-1.25 × for 4-32 KB values, where durable mode takes 1.02-1.03 ×).
pub(crate) fn pages_replaced(key: &str, value_len: usize) -> u64 {
    let data = key.len() as u64 + VALUE_HEADER + value_len as u64 + LEAF_ENTRY_OVERHEAD;
    in_leaves(data).max(PAGE) + PAGE
}

/// The file space of an entry of `bytes` in a B-tree leaf.
fn in_leaves(bytes: u64) -> u64 {
    if bytes <= PAGE / 2 {
        return shared_leaf(bytes);
    }
    bytes.div_ceil(PAGE).next_power_of_two() * PAGE
}

/// The file space of a small entry, sharing leaves that run about 4/7 full.
fn shared_leaf(bytes: u64) -> u64 {
    bytes * 7 / 4
}

/// The reads of one batch.
pub(crate) trait StoreReads {
    fn get(&mut self, key: &str) -> StoreResult<Option<Vec<u8>>>;
}

/// What eviction and expiry work on (`actor::budget`): the insertion order, removal and the
/// totals. Every write batch has them, and so does [`entry_map::EntryMap`], which is how
/// `MemCache` runs the same policy as the stores without being a store.
pub(crate) trait Ledger {
    /// Removes one key; whether it was there.
    fn remove(&mut self, key: &str) -> StoreResult<bool>;
    /// The entry that has waited longest in the insertion order.
    fn oldest(&mut self) -> StoreResult<Option<Oldest>>;
    /// Moves `key` to the newest end of the insertion order (a second chance).
    fn requeue(&mut self, key: &str) -> StoreResult<()>;
    /// The totals, this batch's writes included.
    fn usage(&self) -> Usage;
}

/// The entry at the head of the insertion order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Oldest {
    pub(crate) key: String,
    /// When its rows were fetched (milliseconds since the Unix epoch).
    pub(crate) fetched_ms: i64,
}

/// The operations of one write batch. Reads see the batch's earlier writes.
pub(crate) trait StoreBatch: StoreReads + Ledger {
    /// Stores `value` under `key` as the newest entry. `fetched_ms`: when its rows were fetched
    /// (milliseconds since the Unix epoch), for expiry.
    /// `value_sum`: [`value_sum`] of `value`, taken by the caller, off the actor.
    fn put(&mut self, key: &str, value: &[u8], value_sum: u64, fetched_ms: i64) -> StoreResult<()>;
    /// Removes every key that starts with `prefix`.
    fn remove_prefix(&mut self, prefix: &str) -> StoreResult<()>;
    /// Removes a key reported damaged if its stored value still is: it fails its check, or
    /// its rows are still the undecodable ones reported. Whether it did.
    fn remove_if_damaged(&mut self, damaged: &damage::Damaged) -> StoreResult<bool> {
        let _ = damaged;
        Ok(false)
    }
}
