//! `RedbCache`: the persistent cache, a handle to the storage actor over a redb file.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use redb::StorageBackend;
use redb::backends::FileBackend;
use tracing::{Instrument, debug, debug_span, trace, warn};

use crate::actor::{
    self, ActorConfig, BatchLimits, Durability, Handle, RedbCacheStats, WeakHandle,
};
use crate::cache::{Cache, FillOutcome, FillToken};
use crate::codec;
use crate::error::{Error, Result};
use crate::rows::CachedRows;
use crate::store::redb_open::BackendLayer;
use crate::store::redb_store::RedbStore;
use crate::sync::Mutex;

/// The database file inside a cache folder.
pub const DB_FILE_NAME: &str = "vlive.redb";

/// A persistent cache in a folder, served by one actor thread that owns the redb database.
///
/// Clones are cheap handles to the same actor. Every write is acknowledged only after the batch
/// it joined has committed (durably, by default). A get that no write in flight affects reads
/// the snapshot the actor published after its last commit, on the caller's thread; any other
/// get queues behind those writes ([`RedbCacheStats::snapshot_gets`] counts the first kind). The
/// actor stops when the last handle is dropped or when [`close`](RedbCache::close) is called.
///
/// Opening a folder this process already has open returns a handle to the same actor (the
/// first open's configuration stays in force). Another process gets [`Error::AlreadyOpen`].
#[derive(Clone)]
pub struct RedbCache {
    handle: Handle,
}

impl fmt::Debug for RedbCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbCache")
            .field("folder", &self.folder())
            .finish_non_exhaustive()
    }
}

/// Configures and opens a [`RedbCache`].
pub struct RedbCacheBuilder {
    capacity: usize,
    batch: BatchLimits,
    durability: Durability,
    backend_layer: Option<BackendLayer>,
}

impl fmt::Debug for RedbCacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbCacheBuilder")
            .field("capacity", &self.capacity)
            .field("batch", &self.batch)
            .field("durability", &self.durability)
            .field("backend_layer", &self.backend_layer.is_some())
            .finish()
    }
}

impl Default for RedbCacheBuilder {
    fn default() -> Self {
        let defaults = ActorConfig::new("");
        RedbCacheBuilder {
            capacity: defaults.capacity,
            batch: defaults.batch,
            durability: defaults.durability,
            backend_layer: None,
        }
    }
}

impl RedbCacheBuilder {
    /// How many commands may wait in the actor's channel (default 1024). When it is full,
    /// callers wait asynchronously: backpressure instead of unbounded memory.
    pub fn capacity(mut self, commands: usize) -> Self {
        self.capacity = commands;
        self
    }

    /// The most commands one batch (one transaction) may hold (default 1024).
    pub fn max_batch_ops(mut self, ops: usize) -> Self {
        self.batch.max_ops = ops;
        self
    }

    /// A batch stops growing once its keys and values reach this many bytes (default 16 MiB).
    pub fn max_batch_bytes(mut self, bytes: usize) -> Self {
        self.batch.max_bytes = bytes;
        self
    }

    /// Lets a batch with a write wait this long for company before committing (default: none).
    pub fn linger(mut self, window: Duration) -> Self {
        self.batch.linger = Some(window);
        self
    }

    /// Durability of acknowledged writes (default [`Durability::Immediate`]).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Wraps redb's file backend in a backend of your own (fault injection, I/O metrics, …).
    /// Delegate the lock methods to the file backend, or the cross-process lock is lost.
    ///
    /// The layer is called again whenever the actor reopens the database (after an I/O error).
    pub fn backend_layer<B, F>(mut self, layer: F) -> Self
    where
        B: StorageBackend,
        F: Fn(FileBackend) -> B + Send + Sync + 'static,
    {
        self.backend_layer = Some(Arc::new(move |file| Box::new(layer(file))));
        self
    }

    /// Opens (or creates) the cache in `folder` and starts its actor.
    ///
    /// Blocks the calling thread until the actor has opened the database (milliseconds for a
    /// clean file; a file left by a crash is repaired first). Call it at start-up, or through
    /// `tokio::task::spawn_blocking` on a busy runtime.
    pub fn open(self, folder: impl AsRef<Path>) -> Result<RedbCache> {
        let folder = prepare_folder(folder.as_ref())?;
        let config = ActorConfig {
            folder: folder.clone(),
            capacity: self.capacity,
            batch: self.batch,
            durability: self.durability,
        };
        config.validate()?;
        loop {
            let mut registry = registry().lock();
            registry.retain(|_, open| !open.actor.has_stopped());
            if let Some(open) = registry.get(&folder) {
                if let Some(handle) = open.actor.upgrade() {
                    if open.config != config {
                        warn!(folder = %folder.display(), "cache already open here with another \
                              configuration; sharing its actor, the new configuration is ignored");
                    }
                    debug!(folder = %folder.display(), "cache already open here; sharing its actor");
                    return Ok(RedbCache { handle });
                }
                // It is closing, or its last handle is gone and it is draining. Wait for the file
                // without holding up every other open in the process, then look again.
                let stopped = open.actor.stop_signal();
                drop(registry);
                stopped.wait();
                continue;
            }
            // Opening under the lock: two racing opens of one folder must not both spawn.
            let layer = self.backend_layer;
            let store_folder = folder.clone();
            let handle = actor::spawn_opening(config.clone(), move || {
                RedbStore::open(&store_folder, layer)
            })?;
            let actor = handle.downgrade();
            registry.insert(folder, OpenFolder { actor, config });
            return Ok(RedbCache { handle });
        }
    }
}

/// An actor this process started, and the configuration it was opened with.
#[derive(Debug)]
struct OpenFolder {
    actor: WeakHandle,
    config: ActorConfig,
}

/// Folders this process has open, so a second `open` shares the actor instead of failing on
/// redb's file lock.
fn registry() -> &'static Mutex<HashMap<PathBuf, OpenFolder>> {
    static OPEN: OnceLock<Mutex<HashMap<PathBuf, OpenFolder>>> = OnceLock::new();
    OPEN.get_or_init(Default::default)
}

fn prepare_folder(folder: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(folder).map_err(|e| Error::io(folder, "create the cache folder", e))?;
    folder
        .canonicalize()
        .map_err(|e| Error::io(folder, "resolve the cache folder", e))
}

impl RedbCache {
    /// Opens (or creates) a cache in `folder` with the default configuration.
    pub fn open(folder: impl AsRef<Path>) -> Result<Self> {
        Self::builder().open(folder)
    }

    /// A builder for channel capacity, batch limits, durability and storage layering.
    pub fn builder() -> RedbCacheBuilder {
        RedbCacheBuilder::default()
    }

    /// Returns once everything acknowledged so far is durable (a no-op cost in the default
    /// [`Durability::Immediate`] mode).
    pub async fn flush(&self) -> Result<()> {
        self.handle.flush().await
    }

    /// Serves what is queued, commits, closes the database and releases the file. After `Ok`,
    /// the folder can be opened again at once; every later call on any clone returns
    /// [`Error::Closed`]. Closing again is a no-op.
    pub async fn close(&self) -> Result<()> {
        self.handle.close().await
    }

    /// Counters since the cache was opened.
    pub fn stats(&self) -> RedbCacheStats {
        self.handle.stats()
    }

    /// The cache folder (canonicalized).
    pub fn folder(&self) -> &Path {
        self.handle.folder()
    }

    /// Test hook: makes the actor panic. Only with the `test-hooks` feature.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub async fn inject_actor_panic(&self) -> Result<()> {
        self.handle.panic_actor().await
    }

    fn corrupt(&self, key: &str, reason: String) -> Error {
        Error::Corrupt {
            folder: self.folder().to_owned(),
            key: key.to_owned(),
            reason,
        }
    }

    fn encode(key: &str, rows: &CachedRows) -> Result<Vec<u8>> {
        codec::encode(rows).map_err(|reason| Error::Encode {
            key: key.to_owned(),
            reason,
        })
    }
}

#[async_trait]
impl Cache for RedbCache {
    async fn get(&self, key: &str) -> Result<Option<CachedRows>> {
        async {
            let Some(bytes) = self.handle.get(key).await? else {
                debug!("miss");
                return Ok(None);
            };
            let rows = codec::decode(&bytes).map_err(|reason| self.corrupt(key, reason))?;
            debug!(rows = rows.rows.len(), "hit");
            trace!(?rows, "cached rows");
            Ok(Some(rows))
        }
        .instrument(debug_span!("cache_get", key))
        .await
    }

    async fn put(&self, key: &str, rows: CachedRows) -> Result<()> {
        let bytes = Self::encode(key, &rows)?;
        self.handle
            .put(key, bytes)
            .instrument(debug_span!("cache_put", key))
            .await
    }

    async fn invalidate_prefix(&self, prefix: &str) -> Result<()> {
        self.handle
            .invalidate_prefix(prefix)
            .instrument(debug_span!("cache_invalidate", prefix))
            .await
    }

    async fn fill_token(&self, _key: &str) -> Result<FillToken> {
        self.handle.fill_token().await
    }

    async fn fill(&self, key: &str, rows: CachedRows, token: FillToken) -> Result<FillOutcome> {
        let bytes = Self::encode(key, &rows)?;
        self.handle
            .fill(key, bytes, token)
            .instrument(debug_span!("cache_fill", key))
            .await
    }
}
