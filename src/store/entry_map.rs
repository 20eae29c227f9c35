//! An in-memory map that keeps, beside each value, what eviction and expiry need — the same
//! bookkeeping `RedbStore` keeps in its value headers and clock table — so that `actor::budget`
//! runs on it unchanged.
//!
//! Two users: `MemStore` (the actor's store in loom models and unit tests) holds encoded bytes
//! in it, and `MemCache` holds rows. Sharing one map is what makes `MemCache` evict the same
//! keys as `RedbCache`: both queue a put at the newest end, requeue a second chance the same
//! way, and count the same sizes (the caller says what an entry counts for).

use std::collections::BTreeMap;
use std::ops::Bound;

use super::{Ledger, Oldest, StoreResult, Usage};

/// Values of type `V` by key, with an insertion order (the CLOCK queue) and running totals.
#[derive(Clone, Debug)]
pub(crate) struct EntryMap<V> {
    entries: BTreeMap<String, Entry<V>>,
    /// The insertion order: seq → key, oldest first.
    clock: BTreeMap<u64, String>,
    usage: Usage,
    next_seq: u64,
}

#[derive(Clone, Debug)]
struct Entry<V> {
    value: V,
    /// What it counts for in `usage.live_bytes`, fixed when it was inserted.
    size: u64,
    seq: u64,
    fetched_ms: i64,
}

// Not derived: a derive would demand `V: Default`, which an empty map does not need.
impl<V> Default for EntryMap<V> {
    fn default() -> Self {
        EntryMap {
            entries: BTreeMap::new(),
            clock: BTreeMap::new(),
            usage: Usage::default(),
            next_seq: 0,
        }
    }
}

impl<V> EntryMap<V> {
    pub(crate) fn get(&self, key: &str) -> Option<&V> {
        self.entries.get(key).map(|entry| &entry.value)
    }

    /// Stores `value` under `key` as the newest entry, counting `size` bytes; an entry already
    /// there is replaced and leaves the queue (an overwrite starts afresh, as in redb).
    pub(crate) fn insert(&mut self, key: &str, value: V, size: u64, fetched_ms: i64) {
        self.remove_key(key);
        let seq = self.take_seq();
        self.clock.insert(seq, key.to_owned());
        self.usage.entries += 1;
        self.usage.live_bytes += size;
        let entry = Entry {
            value,
            size,
            seq,
            fetched_ms,
        };
        self.entries.insert(key.to_owned(), entry);
    }

    /// Removes one key; whether it was there.
    pub(crate) fn remove_key(&mut self, key: &str) -> bool {
        let Some(entry) = self.entries.remove(key) else {
            return false;
        };
        self.clock.remove(&entry.seq);
        self.usage.entries -= 1;
        self.usage.live_bytes -= entry.size;
        true
    }

    /// Removes every key that starts with `prefix`.
    pub(crate) fn remove_prefix(&mut self, prefix: &str) {
        // Keys starting with `prefix` are contiguous in key order, from `prefix` itself on.
        let doomed: Vec<String> = self
            .entries
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .map(|(key, _)| key)
            .take_while(|key| key.starts_with(prefix))
            .cloned()
            .collect();
        for key in doomed {
            self.remove_key(&key);
        }
    }

    pub(crate) fn totals(&self) -> Usage {
        self.usage
    }

    fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }
}

/// Infallible: an in-memory map has no I/O to fail.
impl<V> Ledger for EntryMap<V> {
    fn remove(&mut self, key: &str) -> StoreResult<bool> {
        Ok(self.remove_key(key))
    }

    fn oldest(&mut self) -> StoreResult<Option<Oldest>> {
        let Some(key) = self.clock.values().next() else {
            return Ok(None);
        };
        // Every queued key has its entry: `insert` and `remove_key` change both together.
        let fetched_ms = self
            .entries
            .get(key)
            .map_or(i64::MIN, |entry| entry.fetched_ms);
        Ok(Some(Oldest {
            key: key.clone(),
            fetched_ms,
        }))
    }

    fn requeue(&mut self, key: &str) -> StoreResult<()> {
        if let Some(entry) = self.entries.get_mut(key) {
            // Not `take_seq`: `entry` borrows `self.entries` meanwhile.
            let seq = self.next_seq;
            self.next_seq += 1;
            self.clock.remove(&entry.seq);
            self.clock.insert(seq, key.to_owned());
            entry.seq = seq;
        }
        Ok(())
    }

    fn usage(&self) -> Usage {
        self.usage
    }
}
