//! An in-memory store: the actor's storage in loom models and unit tests.
//!
//! A batch works on a copy of the map and swaps it in on commit, so a failed commit leaves
//! nothing behind. A [`MemStoreProbe`] lets a model look at what is committed and make the next
//! commit fail.

use std::collections::BTreeMap;

use crate::store::{Commit, Store, StoreBatch, StoreResult};
use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::{Arc, Mutex, lock};

type Map = BTreeMap<String, Vec<u8>>;

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
            committed: Mutex::new(Map::new()),
            failing_commits: AtomicUsize::new(0),
        });
        (
            MemStore {
                shared: shared.clone(),
            },
            MemStoreProbe { shared },
        )
    }
}

impl MemStoreProbe {
    /// The committed value under `key`.
    pub fn committed(&self, key: &str) -> Option<Vec<u8>> {
        lock(&self.shared.committed).get(key).cloned()
    }

    /// Makes the next commit that has writes fail.
    pub fn fail_next_commit(&self) {
        self.shared.failing_commits.fetch_add(1, Ordering::SeqCst);
    }
}

impl Store for MemStore {
    type Batch<'s> = MemBatch<'s>;

    fn begin(&mut self) -> MemBatch<'_> {
        MemBatch {
            store: self,
            staged: None,
        }
    }

    fn checkpoint(&mut self) -> StoreResult<()> {
        Ok(())
    }

    fn close(self) -> StoreResult<()> {
        Ok(())
    }
}

/// A batch over a [`MemStore`]: a private copy of the map, made at the first write.
pub struct MemBatch<'s> {
    store: &'s mut MemStore,
    staged: Option<Map>,
}

impl MemBatch<'_> {
    fn staged(&mut self) -> &mut Map {
        let shared = &self.store.shared;
        self.staged
            .get_or_insert_with(|| lock(&shared.committed).clone())
    }
}

impl StoreBatch for MemBatch<'_> {
    fn get(&mut self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(match &self.staged {
            Some(map) => map.get(key).cloned(),
            None => lock(&self.store.shared.committed).get(key).cloned(),
        })
    }

    fn put(&mut self, key: &str, value: &[u8]) -> StoreResult<()> {
        self.staged().insert(key.to_owned(), value.to_vec());
        Ok(())
    }

    fn remove_prefix(&mut self, prefix: &str) -> StoreResult<()> {
        self.staged().retain(|key, _| !key.starts_with(prefix));
        Ok(())
    }

    fn commit(self, _durability: Commit) -> StoreResult<()> {
        let Some(map) = self.staged else {
            return Ok(());
        };
        let failing = &self.store.shared.failing_commits;
        let planted_failure = failing
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if planted_failure {
            return Err(redb::Error::Io(std::io::Error::other(
                "injected commit failure",
            )));
        }
        *lock(&self.store.shared.committed) = map;
        Ok(())
    }
}
