//! The hot tier: recently read entries, already decoded, kept in memory in front of the store.
//!
//! A warm get spends most of its time decoding CBOR; a hit here hands out the decoded rows (an
//! `Arc` inside, so a clone copies a pointer). The tier itself is a plain bounded map: it knows
//! nothing of writes. What keeps it coherent with the store lives in `read_beside`, which holds
//! it under the same lock as the writes in flight: registering a write removes the keys it
//! covers, and a get may add what it read only if no write registered (and no withdraw
//! happened) since it looked (`docs/DESIGN.md` §3.1).
//!
//! Eviction is FIFO within a byte budget: simple, and the store's own CLOCK still decides what
//! stays on disk. A full tier takes a new key in only on its second miss (`admission`). An entry the store evicts or sweeps may stay here; it is still the latest
//! value of its key (any write of the key would have removed it), so serving it is never
//! stale, and a time to live still applies to it on every hit.

use std::collections::{HashMap, VecDeque};

use super::admission::Doorkeeper;

/// What the tier holds for a key: decoded rows in production; under loom, where values are raw
/// bytes and no codec runs, the bytes themselves.
#[cfg(not(loom))]
pub(crate) type HotValue = crate::rows::CachedRows;
#[cfg(loom)]
pub(crate) type HotValue = Vec<u8>;

/// A bounded map of entries, evicted oldest-inserted first to stay within a byte budget.
#[derive(Debug)]
pub(crate) struct HotTier<V> {
    /// `0` turns the tier off: nothing is ever kept.
    budget: u64,
    bytes: u64,
    entries: HashMap<String, Slot<V>>,
    /// Keys in insertion order, each with the stamp of the entry it was pushed for. Removing an
    /// entry leaves its key here; eviction skips a key whose stamp no longer matches.
    order: VecDeque<(String, u64)>,
    next_stamp: u64,
    /// Decides which misses may evict to get in.
    doorkeeper: Doorkeeper,
}

#[derive(Debug)]
struct Slot<V> {
    value: V,
    size: u64,
    stamp: u64,
}

impl<V: Clone> HotTier<V> {
    pub(crate) fn new(budget: u64) -> Self {
        HotTier {
            budget,
            bytes: 0,
            entries: HashMap::new(),
            order: VecDeque::new(),
            next_stamp: 0,
            doorkeeper: Doorkeeper::default(),
        }
    }

    /// A copy of the value under `key` (cheap for `CachedRows`: its rows are shared).
    pub(crate) fn get(&self, key: &str) -> Option<V> {
        self.entries.get(key).map(|slot| slot.value.clone())
    }

    /// Keeps `value` under `key`, counting `size` bytes against the budget, evicting the oldest
    /// entries to make room. An entry larger than the whole budget is not kept.
    ///
    /// Returns the values let go (the one replaced, those evicted, or `value` itself when it is
    /// not kept) for the caller to drop after it releases its lock: dropping a decoded entry
    /// frees each of its strings and maps, several microseconds for a 20-row value, and under
    /// the registry's lock every other get waited for it (`docs/cold-reads.md`).
    #[must_use = "drop the values let go outside the lock"]
    pub(crate) fn insert(&mut self, key: &str, value: V, size: u64) -> Vec<V> {
        if size > self.budget || !self.admits(key, size) {
            return vec![value];
        }
        let mut gone: Vec<V> = self.remove(key).into_iter().collect();
        while self.bytes + size > self.budget {
            match self.evict_oldest() {
                Some(value) => gone.push(value),
                None => break,
            }
        }
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        self.bytes += size;
        self.entries
            .insert(key.to_owned(), Slot { value, size, stamp });
        self.order.push_back((key.to_owned(), stamp));
        self.compact_order();
        gone
    }

    /// Whether `key` may come in: always if it fits or replaces its own entry; over older
    /// entries only on its second miss in a window as long as the tier (`admission`).
    fn admits(&mut self, key: &str, size: u64) -> bool {
        self.bytes + size <= self.budget
            || self.entries.contains_key(key)
            || self.doorkeeper.admit(key, self.entries.len().max(64))
    }

    /// Removes `key`'s entry; returns its value, to be dropped outside any lock (see `insert`).
    pub(crate) fn remove(&mut self, key: &str) -> Option<V> {
        let slot = self.entries.remove(key)?;
        self.bytes -= slot.size;
        Some(slot.value)
    }

    /// Removes every key that starts with `prefix` (all of them for `""`).
    pub(crate) fn remove_prefix(&mut self, prefix: &str) {
        if prefix.is_empty() {
            return self.clear();
        }
        let bytes = &mut self.bytes;
        self.entries.retain(|key, slot| {
            let keep = !key.starts_with(prefix);
            if !keep {
                *bytes -= slot.size;
            }
            keep
        });
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
        self.bytes = 0;
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Evicts the oldest entry still present and returns its value; `None` if there is none.
    fn evict_oldest(&mut self) -> Option<V> {
        while let Some((key, stamp)) = self.order.pop_front() {
            if self
                .entries
                .get(&key)
                .is_some_and(|slot| slot.stamp == stamp)
            {
                return self.remove(&key);
            }
        }
        None
    }

    /// Drops the keys of removed entries from the insertion order once they outnumber the live
    /// ones, so that a tier whose entries are mostly replaced or invalidated (and never evicted)
    /// does not grow its order without bound.
    fn compact_order(&mut self) {
        if self.order.len() > 2 * self.entries.len() + 64 {
            let entries = &self.entries;
            self.order
                .retain(|(key, stamp)| entries.get(key).is_some_and(|slot| slot.stamp == *stamp));
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn tier(budget: u64) -> HotTier<&'static str> {
        HotTier::new(budget)
    }

    #[test]
    fn the_oldest_entries_make_room_within_the_budget() {
        let mut hot = tier(10);
        let _ = hot.insert("a", "1", 4);
        let _ = hot.insert("b", "2", 4);
        assert_eq!(
            hot.insert("c", "3", 4),
            ["3"],
            "c's first miss may not evict"
        );
        let gone = hot.insert("c", "3", 4);
        assert_eq!(
            gone,
            ["1"],
            "a, the oldest, is handed back to be dropped outside the lock"
        );
        assert_eq!(hot.get("a"), None);
        assert_eq!((hot.get("b"), hot.get("c")), (Some("2"), Some("3")));
        assert_eq!((hot.len(), hot.bytes()), (2, 8));
    }

    #[test]
    fn replacing_a_key_counts_its_bytes_once() {
        let mut hot = tier(10);
        let _ = hot.insert("a", "1", 4);
        assert_eq!(hot.insert("a", "2", 6), ["1"], "the value replaced");
        assert_eq!((hot.get("a"), hot.len(), hot.bytes()), (Some("2"), 1, 6));
        // The stale order entry of the first "a" must not evict the second.
        let _ = hot.insert("b", "3", 4);
        assert_eq!((hot.get("a"), hot.get("b")), (Some("2"), Some("3")));
    }

    #[test]
    fn an_entry_larger_than_the_budget_is_not_kept_and_a_zero_budget_keeps_nothing() {
        let mut hot = tier(10);
        assert_eq!(hot.insert("a", "1", 11), ["1"], "not kept: handed back");
        assert_eq!((hot.get("a"), hot.len()), (None, 0));
        let mut off = tier(0);
        let _ = off.insert("a", "1", 1);
        assert_eq!(off.get("a"), None);
    }

    #[test]
    fn a_prefix_removes_exactly_the_keys_that_start_with_it() {
        let mut hot = tier(100);
        for key in ["clients/1", "clinic/1", "a", "a/", "b"] {
            let _ = hot.insert(key, key, 1);
        }
        hot.remove_prefix("cli");
        assert_eq!((hot.get("clients/1"), hot.get("clinic/1")), (None, None));
        hot.remove_prefix("a/");
        assert_eq!((hot.get("a"), hot.get("a/")), (Some("a"), None));
        assert_eq!((hot.len(), hot.bytes()), (2, 2));
        hot.remove_prefix("");
        assert_eq!((hot.len(), hot.bytes()), (0, 0));
    }

    #[test]
    fn churn_without_eviction_keeps_the_order_bounded() {
        let mut hot = tier(1 << 20);
        for i in 0..10_000 {
            let _ = hot.insert("k", "v", 1);
            if i % 2 == 0 {
                let _ = hot.remove("k");
            }
        }
        assert!(hot.order.len() <= 2 * hot.len() + 65, "{}", hot.order.len());
    }
}
