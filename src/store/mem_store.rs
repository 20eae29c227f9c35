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

    /// Makes the next commit of a writing batch fail.
    pub fn fail_next_commit(&self) {
        self.shared.failing_commits.fetch_add(1, Ordering::SeqCst);
    }
}

impl Store for MemStore {
    fn batch<R>(
        &mut self,
        commit: Option<Commit>,
        work: impl FnOnce(&mut dyn StoreBatch) -> StoreResult<R>,
    ) -> StoreResult<R> {
        let mut staged = MemBatch(lock(&self.shared.committed).clone());
        let result = work(&mut staged)?;
        if commit.is_some() {
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
            *lock(&self.shared.committed) = staged.0;
        }
        Ok(result)
    }

    fn checkpoint(&mut self) -> StoreResult<()> {
        Ok(())
    }

    fn recover(&mut self) -> crate::error::Result<()> {
        Ok(())
    }

    fn close(self) -> StoreResult<()> {
        Ok(())
    }
}

/// A batch over a [`MemStore`]: a private copy of the map.
struct MemBatch(Map);

impl StoreBatch for MemBatch {
    fn get(&mut self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.0.get(key).cloned())
    }

    fn put(&mut self, key: &str, value: &[u8]) -> StoreResult<()> {
        self.0.insert(key.to_owned(), value.to_vec());
        Ok(())
    }

    fn remove_prefix(&mut self, prefix: &str) -> StoreResult<()> {
        self.0.retain(|key, _| !key.starts_with(prefix));
        Ok(())
    }
}
