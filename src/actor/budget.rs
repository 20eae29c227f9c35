//! The eviction and expiry policies, written once against the bookkeeping primitives
//! ([`Ledger`]) so that redb, the in-memory store (which the loom models run on) and `MemCache`
//! (whose `EntryMap` has the same primitives) share them, and so evict the same keys.
//!
//! Eviction is CLOCK, the second-chance FIFO: entries queue in insertion order (a put or fill
//! queues its key at the newest end); the hand takes the oldest; if the key was read since the
//! hand last passed it (its access bit, see `access`), it is requeued at the newest end with its
//! bit cleared, otherwise evicted. Why CLOCK rather than exact LRU: a hit must not write to the
//! store (gets beside the actor never reach it, and a write per get would turn reads into
//! commits); CLOCK needs one bit per entry, set lock-free by the reader, and does its bookkeeping
//! only when it evicts, in the write transaction that needs the room. Why not S3-FIFO: its
//! ghost queue would be a third persistent index, for gains on scan-heavy loads that a cache of
//! query results sees less of.
//!
//! The actor runs both policies in the batch's own write transaction, after its commands and
//! before the commit, so a batch never commits (or answers) over budget. Neither records an
//! invalidation: an entry evicted or expired is a later miss, and a fill taken before it is not
//! stale.

use std::time::{Duration, SystemTime};

use tracing::debug;

use super::access::AccessBits;
use crate::store::{Ledger, Oldest, StoreResult};

/// Whether rows fetched at `fetched_at` have outlived `ttl`: a miss on every path, swept or not.
pub(crate) fn has_expired(fetched_at: SystemTime, ttl: Duration) -> bool {
    // A `fetched_at` in the future (clock skew) is fresh, not an error.
    fetched_at.elapsed().is_ok_and(|age| age > ttl)
}

/// The `fetched_ms` before which an entry has outlived `ttl`, as of now: what [`expire`] takes.
pub(crate) fn expiry_cutoff_ms(ttl: Duration) -> i64 {
    SystemTime::now()
        .checked_sub(ttl)
        .map_or(i64::MIN, crate::codec::epoch_ms)
}

/// The fetch time an entry is queued with, for the sweeps ([`expire`]): its rows' `fetched_at`,
/// or now if that lies in the future (clock skew), so that no entry stands fresh at the head of
/// the queue for longer than one time to live and holds back the sweep of those behind it.
pub(crate) fn queued_fetched_ms(fetched_at: SystemTime) -> i64 {
    crate::codec::epoch_ms(fetched_at.min(SystemTime::now()))
}

/// Most expired entries one batch removes: a sweep never becomes one unbounded transaction.
pub(crate) const SWEEP_LIMIT: usize = 256;

/// Most second chances one batch gives: a batch's transaction stays bounded however large the
/// cache is.
const SECOND_CHANCE_LIMIT: u64 = 1024;

/// Evicts until the live bytes fit `max_bytes`; returns how many entries went.
///
/// Second chances are bounded: once as many keys have been requeued as there were entries when
/// eviction started (a whole pass of the hand), or [`SECOND_CHANCE_LIMIT`], the oldest goes
/// whether it was read or not, so a cache whose every entry is hot still makes room.
pub(crate) fn evict<L: Ledger + ?Sized>(
    txn: &mut L,
    access: &AccessBits,
    max_bytes: u64,
) -> StoreResult<u64> {
    let mut chances = txn.usage().entries.min(SECOND_CHANCE_LIMIT);
    let mut evicted = 0;
    while txn.usage().live_bytes > max_bytes {
        let Some(Oldest { key, .. }) = txn.oldest()? else {
            break;
        };
        if chances > 0 && access.take(&key) {
            chances -= 1;
            txn.requeue(&key)?;
            continue;
        }
        txn.remove(&key)?;
        evicted += 1;
    }
    if evicted > 0 {
        debug!(evicted, "cache evicted entries to stay within max_bytes");
    }
    Ok(evicted)
}

/// Removes up to [`SWEEP_LIMIT`] entries fetched before `cutoff_ms` from the head of the
/// insertion order, stopping at the first fresh one; returns how many went and whether more may
/// be left.
///
/// The sweep walks the eviction queue, not an index by fetch time, so that no put pays for a
/// second ordered index. What that bounds: an entry's rows were fetched no later than it joined
/// the queue (a put, a fill or a second chance), so every entry ahead of it has expired by the
/// time it has, one time to live after it joined; an expired entry's space is reclaimed by then
/// (plus the sweeps' pace), even when fresher entries briefly stand before it. Reads never wait
/// for that: an expired entry is a miss on every path, swept or not.
pub(crate) fn expire<L: Ledger + ?Sized>(txn: &mut L, cutoff_ms: i64) -> StoreResult<(u64, bool)> {
    let mut expired = 0;
    while let Some(Oldest { key, fetched_ms }) = txn.oldest()? {
        if fetched_ms >= cutoff_ms {
            return Ok((expired, false));
        }
        if expired as usize == SWEEP_LIMIT {
            return Ok((expired, true));
        }
        txn.remove(&key)?;
        expired += 1;
    }
    Ok((expired, false))
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::store::mem_store::MemStore;
    use crate::store::{Commit, Store};

    /// What one entry of `store_with` (a 1-byte key, a 1-byte value) is charged.
    fn one() -> u64 {
        crate::store::entry_size("a", 1)
    }

    /// A store holding `keys` in that order, each entry [`one`] charged byte budget.
    fn store_with(keys: &[&str]) -> (MemStore, crate::store::mem_store::MemStoreProbe) {
        let (mut store, probe) = MemStore::new();
        store
            .write_batch(Commit::Durable, |txn| {
                for (i, key) in keys.iter().enumerate() {
                    txn.put(key, b"v", 0, i as i64)?;
                }
                Ok(())
            })
            .unwrap();
        (store, probe)
    }

    fn evict_to(store: &mut MemStore, access: &AccessBits, max_bytes: u64) -> u64 {
        store
            .write_batch(Commit::Durable, |txn| evict(txn, access, max_bytes))
            .unwrap()
    }

    fn present(probe: &crate::store::mem_store::MemStoreProbe, keys: &[&str]) -> Vec<String> {
        keys.iter()
            .filter(|k| probe.committed(k).is_some())
            .map(|k| k.to_string())
            .collect()
    }

    #[test]
    fn the_oldest_unread_entries_go_first() {
        let keys = ["a", "b", "c", "d"];
        let (mut store, probe) = store_with(&keys);
        let access = AccessBits::new();
        assert_eq!(evict_to(&mut store, &access, 2 * one()), 2);
        assert_eq!(present(&probe, &keys), ["c", "d"]);
        assert_eq!(store.usage().live_bytes, 2 * one());
    }

    #[test]
    fn a_read_entry_gets_a_second_chance_once() {
        let keys = ["a", "b", "c", "d"];
        let (mut store, probe) = store_with(&keys);
        let access = AccessBits::new();
        access.touch("a");
        assert_eq!(evict_to(&mut store, &access, 3 * one()), 1);
        assert_eq!(
            present(&probe, &keys),
            ["a", "c", "d"],
            "b went instead of a"
        );
        // `a` was requeued behind d with its bit cleared: now c goes, then d, then a.
        assert_eq!(evict_to(&mut store, &access, one()), 2);
        assert_eq!(present(&probe, &keys), ["a"]);
    }

    #[test]
    fn when_every_entry_was_read_a_whole_pass_still_makes_room() {
        let keys = ["a", "b", "c"];
        let (mut store, probe) = store_with(&keys);
        let access = AccessBits::new();
        for key in keys {
            access.touch(key);
        }
        assert_eq!(evict_to(&mut store, &access, 2 * one()), 1);
        assert_eq!(present(&probe, &keys), ["b", "c"]);
    }

    #[test]
    fn a_fetch_time_in_the_future_is_queued_as_now() {
        let hour = Duration::from_secs(3600);
        let past = SystemTime::now() - hour;
        assert_eq!(queued_fetched_ms(past), crate::codec::epoch_ms(past));
        let before = crate::codec::epoch_ms(SystemTime::now());
        let queued = queued_fetched_ms(SystemTime::now() + hour);
        let after = crate::codec::epoch_ms(SystemTime::now());
        assert!(
            (before..=after).contains(&queued),
            "{before} ≤ {queued} ≤ {after}"
        );
    }

    #[test]
    fn a_sweep_removes_only_what_is_older_than_the_cutoff() {
        let keys = ["a", "b", "c"];
        // Fetched at 0, 1, 2 ms.
        let (mut store, probe) = store_with(&keys);
        let swept = store
            .write_batch(Commit::Durable, |txn| expire(txn, 2))
            .unwrap();
        assert_eq!(swept, (2, false));
        assert_eq!(present(&probe, &keys), ["c"]);
    }

    #[test]
    fn a_sweep_stops_at_its_limit_and_says_so() {
        let keys: Vec<String> = (0..SWEEP_LIMIT + 3).map(|i| format!("k{i}")).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let (mut store, _probe) = store_with(&refs);
        let sweep = |store: &mut MemStore| {
            store
                .write_batch(Commit::Durable, |txn| expire(txn, i64::MAX))
                .unwrap()
        };
        assert_eq!(sweep(&mut store), (SWEEP_LIMIT as u64, true));
        assert_eq!(sweep(&mut store), (3, false));
        assert_eq!(store.usage().entries, 0);
    }
}
