//! `MemCache`: the in-memory reference implementation of the [`Cache`] contract.

use std::sync::Arc;

use async_trait::async_trait;
use tracing::debug;

use crate::cache::{Cache, FillOutcome, FillToken};
use crate::error::Result;
use crate::invalidation_log::InvalidationLog;
use crate::rows::CachedRows;
use crate::store::entry_map::EntryMap;
use crate::sync::{Mutex, MutexGuard};

/// An in-process cache in a `BTreeMap`. Clones share the same map.
///
/// It defines the reference semantics the other backends are tested against, and is a fine
/// choice when nothing needs to survive a restart.
#[derive(Clone, Default, Debug)]
pub struct MemCache {
    state: Arc<Mutex<MemState>>,
}

#[derive(Default, Debug)]
struct MemState {
    entries: EntryMap<CachedRows>,
    invalidations: InvalidationLog,
}

impl MemCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many keys are cached.
    pub fn len(&self) -> usize {
        self.lock().entries.totals().entries as usize
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, MemState> {
        self.state.lock()
    }
}

impl MemState {
    fn store(&mut self, key: &str, rows: CachedRows) {
        let fetched_ms = crate::codec::epoch_ms(rows.fetched_at);
        self.entries.insert(key, rows, 0, fetched_ms);
    }

    fn remove_prefix(&mut self, prefix: &str) {
        self.entries.remove_prefix(prefix);
        self.invalidations.record(prefix);
    }
}

#[async_trait]
impl Cache for MemCache {
    async fn get(&self, key: &str) -> Result<Option<CachedRows>> {
        let found = self.lock().entries.get(key).cloned();
        debug!(key, hit = found.is_some(), "mem cache get");
        Ok(found)
    }

    async fn put(&self, key: &str, rows: CachedRows) -> Result<()> {
        self.lock().store(key, rows);
        Ok(())
    }

    async fn invalidate_prefix(&self, prefix: &str) -> Result<()> {
        debug!(prefix, "mem cache invalidate");
        self.lock().remove_prefix(prefix);
        Ok(())
    }

    async fn fill_token(&self, _key: &str) -> Result<FillToken> {
        Ok(self.lock().invalidations.token())
    }

    async fn fill(&self, key: &str, rows: CachedRows, token: FillToken) -> Result<FillOutcome> {
        let mut state = self.lock();
        if state.invalidations.is_stale(key, token) {
            debug!(key, "mem cache fill rejected as stale");
            return Ok(FillOutcome::RejectedStale);
        }
        state.store(key, rows);
        Ok(FillOutcome::Stored)
    }
}
