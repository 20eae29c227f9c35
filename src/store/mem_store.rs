//! An in-memory store: the actor's storage in loom models and unit tests.
//!
//! A batch works on a copy of the map and swaps it in on commit, so a failed commit leaves
//! nothing behind. A snapshot is a copy of the committed map, as a redb read transaction keeps
//! seeing the commit it began after. A [`MemStoreProbe`] lets a model look at what is committed,
//! make the next commit fail, damage the store (as a damaged redb file: commits and checks fail
//! with `Corrupted` until it is discarded), and count lookups that ran on a closed store.

use crate::store::entry_map::EntryMap;
use crate::store::{
    Commit, Snapshot, Store, StoreBatch, StoreReads, StoreResult, Usage, entry_size,
};
use crate::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use crate::sync::{Arc, Mutex};

/// Everything a commit swaps in at once: the values with the metadata `RedbStore` keeps in its
/// other tables (the same map `MemCache` keeps its rows in).
type Map = EntryMap<Vec<u8>>;

/// The store the actor owns.
#[derive(Debug)]
pub struct MemStore {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    committed: Mutex<Map>,
    /// How many of the coming commits must fail.
    failing_commits: AtomicUsize,
    /// Set by `close`. redb must not be closed under a lookup, so a snapshot that finds the
    /// store closed counts a bug.
    closed: AtomicBool,
    reads_after_close: AtomicUsize,
    /// Damaged, until discarded.
    damaged: AtomicBool,
    discards: AtomicUsize,
}

/// A view of a [`MemStore`] for tests: what is committed, and fault injection.
#[derive(Clone, Debug)]
pub struct MemStoreProbe {
    shared: Arc<Shared>,
}

impl MemStore {
    /// An empty store and a probe into it.
    pub fn new() -> (MemStore, MemStoreProbe) {
        let shared = Arc::new(Shared {
            committed: Mutex::new(Map::default()),
            failing_commits: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            reads_after_close: AtomicUsize::new(0),
            damaged: AtomicBool::new(false),
            discards: AtomicUsize::new(0),
        });
        (
            MemStore {
                shared: shared.clone(),
            },
            MemStoreProbe { shared },
        )
    }

    /// The same store opened again, as the actor does after an I/O error: what is committed
    /// stays.
    pub fn reopen(&self) -> MemStore {
        MemStore {
            shared: self.shared.clone(),
        }
    }

    /// Empties the store, as discarding a redb file and opening a new one does; heals damage.
    pub(crate) fn discard(&self) {
        *self.shared.committed.lock() = Map::default();
        self.shared.damaged.store(false, Ordering::SeqCst);
        self.shared.discards.fetch_add(1, Ordering::SeqCst);
    }
}

impl MemStoreProbe {
    /// The committed value under `key`.
    pub fn committed(&self, key: &str) -> Option<Vec<u8>> {
        self.shared.committed.lock().get(key).cloned()
    }

    /// The committed totals.
    #[cfg_attr(not(loom), allow(dead_code))]
    pub fn live_bytes(&self) -> u64 {
        self.shared.committed.lock().totals().live_bytes
    }

    /// Makes the next commit of a writing batch fail.
    pub fn fail_next_commit(&self) {
        self.shared.failing_commits.fetch_add(1, Ordering::SeqCst);
    }

    /// Damages the store: every commit, and the integrity check, fail with `Corrupted` until the
    /// actor discards it.
    pub fn damage(&self) {
        self.shared.damaged.store(true, Ordering::SeqCst);
    }

    /// How many times the actor discarded the store.
    #[cfg_attr(not(loom), allow(dead_code))]
    pub fn discards(&self) -> usize {
        self.shared.discards.load(Ordering::SeqCst)
    }

    /// How many lookups beside the actor ran after the store was closed (a correct protocol
    /// withdraws the snapshot, and waits for lookups in progress, before it closes).
    #[cfg_attr(not(loom), allow(dead_code))]
    pub fn reads_after_close(&self) -> usize {
        self.shared.reads_after_close.load(Ordering::SeqCst)
    }
}

impl Store for MemStore {
    fn snapshot(&self) -> StoreResult<Box<dyn Snapshot>> {
        Ok(Box::new(MemSnapshot {
            map: self.shared.committed.lock().clone(),
            store: self.shared.clone(),
        }))
    }

    fn read_batch<R>(
        &self,
        work: impl FnOnce(&mut dyn StoreReads) -> StoreResult<R>,
    ) -> StoreResult<R> {
        work(&mut self.shared.committed.lock().clone())
    }

    fn write_batch<R>(
        &mut self,
        _durability: Commit,
        work: impl FnOnce(&mut dyn StoreBatch) -> StoreResult<R>,
    ) -> StoreResult<R> {
        let mut staged = self.shared.committed.lock().clone();
        let result = work(&mut staged)?;
        if self.shared.damaged.load(Ordering::SeqCst) {
            return Err(redb::Error::Corrupted("planted damage".into()));
        }
        let planted_failure = self
            .shared
            .failing_commits
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if planted_failure {
            return Err(redb::Error::Io(std::io::Error::other(
                "injected commit failure",
            )));
        }
        *self.shared.committed.lock() = staged;
        Ok(result)
    }

    fn checkpoint(&mut self) -> StoreResult<()> {
        Ok(())
    }

    fn verify(&mut self) -> StoreResult<()> {
        match self.shared.damaged.load(Ordering::SeqCst) {
            true => Err(redb::Error::Corrupted("planted damage".into())),
            false => Ok(()),
        }
    }

    fn close(self) -> StoreResult<()> {
        self.shared.closed.store(true, Ordering::SeqCst);
        Ok(())
    }

    fn usage(&self) -> Usage {
        self.shared.committed.lock().totals()
    }
}

/// The committed map as it was when the snapshot was taken.
struct MemSnapshot {
    map: Map,
    store: Arc<Shared>,
}

impl Snapshot for MemSnapshot {
    fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        if self.store.closed.load(Ordering::SeqCst) {
            self.store.reads_after_close.fetch_add(1, Ordering::SeqCst);
            return Err(redb::Error::DatabaseClosed);
        }
        Ok(self.map.get(key).cloned())
    }
}

/// A batch over a [`MemStore`] is a private copy of the committed map: eviction and expiry
/// use the map's own [`Ledger`], the writes below.
impl StoreReads for Map {
    fn get(&mut self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(EntryMap::get(self, key).cloned())
    }
}

impl StoreBatch for Map {
    fn put(&mut self, key: &str, value: &[u8], _sum: u64, fetched_ms: i64) -> StoreResult<()> {
        let size = entry_size(key, value.len());
        self.insert(key, value.to_vec(), size, fetched_ms);
        Ok(())
    }

    fn remove_prefix(&mut self, prefix: &str) -> StoreResult<()> {
        EntryMap::remove_prefix(self, prefix);
        Ok(())
    }
}
