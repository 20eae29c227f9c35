//! The cache behind the demo's table: a persistent `RedbCache`, a `MemCache`, or none.

use std::sync::Arc;

use vlive::{Cache, MemCache, NoCache, RedbCache, RedbCacheStats};

use crate::args::CacheChoice;
use crate::demo::DemoResult;

/// The cache behind the table, kept concretely for its statistics and for close/reopen.
pub enum DemoCache {
    Redb(RedbCache),
    Mem(MemCache),
    None,
}

impl DemoCache {
    pub fn open(choice: &CacheChoice) -> DemoResult<Self> {
        Ok(match choice {
            CacheChoice::Mem => DemoCache::Mem(MemCache::new()),
            CacheChoice::None => DemoCache::None,
            CacheChoice::Folder(folder) => DemoCache::Redb(RedbCache::open(folder)?),
        })
    }

    pub fn shared(&self) -> Arc<dyn Cache> {
        match self {
            DemoCache::Redb(cache) => Arc::new(cache.clone()),
            DemoCache::Mem(cache) => Arc::new(cache.clone()),
            DemoCache::None => Arc::new(NoCache),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            DemoCache::Redb(cache) => format!("RedbCache in {}", cache.folder().display()),
            DemoCache::Mem(_) => "MemCache (in memory, gone when the process exits)".into(),
            DemoCache::None => "NoCache (caching off: every read goes to the master)".into(),
        }
    }

    pub fn stats(&self) -> Option<RedbCacheStats> {
        match self {
            DemoCache::Redb(cache) => Some(cache.stats()),
            _ => None,
        }
    }

    /// Closes the cache; the returned value is what "reopening" gives.
    pub async fn close_and_reopen(self, choice: &CacheChoice) -> DemoResult<Self> {
        match self {
            DemoCache::Redb(cache) => {
                cache.close().await?;
                DemoCache::open(choice)
            }
            // A memory cache does not survive its process: reopening starts empty.
            DemoCache::Mem(_) => Ok(DemoCache::Mem(MemCache::new())),
            DemoCache::None => Ok(DemoCache::None),
        }
    }

    pub async fn close(self) -> DemoResult<()> {
        if let DemoCache::Redb(cache) = self {
            cache.close().await?;
        }
        Ok(())
    }
}
