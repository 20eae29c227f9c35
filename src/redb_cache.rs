//! `RedbCache`: the persistent cache, a handle to the storage actor over a redb file.

use std::collections::HashMap;
use std::fmt;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use redb::StorageBackend;
use redb::backends::FileBackend;
use tracing::{Instrument, debug, debug_span, trace};

use crate::actor::{self, ActorConfig, BatchLimits, CacheStats, Durability, Handle, WeakHandle};
use crate::cache::{Cache, FillOutcome, FillToken};
use crate::codec;
use crate::error::{Error, Result};
use crate::rows::CachedRows;
use crate::store::redb_store::RedbStore;

/// The database file inside a cache folder.
pub const DB_FILE_NAME: &str = "vlive.redb";

/// A persistent cache in a folder, served by one actor thread that owns the redb database.
///
/// Clones are cheap handles to the same actor. Every write is acknowledged only after the batch
/// it joined has committed (durably, by default). The actor stops when the last handle is
/// dropped or when [`close`](RedbCache::close) is called.
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

/// Wraps redb's file backend, e.g. to inject faults or count I/O.
type BackendLayer = Box<dyn FnOnce(FileBackend) -> Box<dyn StorageBackend> + Send>;

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
    pub fn backend_layer<B, F>(mut self, layer: F) -> Self
    where
        B: StorageBackend,
        F: FnOnce(FileBackend) -> B + Send + 'static,
    {
        self.backend_layer = Some(Box::new(move |file| Box::new(layer(file))));
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
            label: folder.clone(),
            capacity: self.capacity,
            batch: self.batch,
            durability: self.durability,
        };
        config.validate()?;
        let mut registry = registry().lock().unwrap_or_else(|p| p.into_inner());
        registry.retain(|_, actor| !actor.has_stopped());
        if let Some(previous) = registry.get(&folder) {
            if let Some(handle) = previous.upgrade() {
                debug!(folder = %folder.display(), "cache already open here; sharing its actor");
                return Ok(RedbCache { handle });
            }
            // Its last handle is gone but it may still be draining: wait for the file.
            previous.wait_until_stopped();
        }
        let layer = self.backend_layer;
        let store_folder = folder.clone();
        let handle = actor::spawn_opening(config, move || open_store(&store_folder, layer))?;
        registry.insert(folder, handle.downgrade());
        Ok(RedbCache { handle })
    }
}

/// Folders this process has open, so a second `open` shares the actor instead of failing on
/// redb's file lock.
fn registry() -> &'static Mutex<HashMap<PathBuf, WeakHandle>> {
    static OPEN: OnceLock<Mutex<HashMap<PathBuf, WeakHandle>>> = OnceLock::new();
    OPEN.get_or_init(Default::default)
}

fn prepare_folder(folder: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(folder).map_err(|e| Error::io(folder, "create the cache folder", e))?;
    folder
        .canonicalize()
        .map_err(|e| Error::io(folder, "resolve the cache folder", e))
}

/// Runs on the actor thread: opens the file, takes redb's lock, checks the format.
fn open_store(folder: &Path, layer: Option<BackendLayer>) -> Result<RedbStore> {
    let path = folder.join(DB_FILE_NAME);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::io(&path, "open the cache file", e))?;
    let backend = FileBackend::new(file).map_err(|e| open_error(folder, &path, e))?;
    let builder = redb::Builder::new();
    let db = match layer {
        Some(layer) => builder.create_with_backend(LayeredBackend(layer(backend))),
        None => builder.create_with_backend(backend),
    }
    .map_err(|e| open_error(folder, &path, e))?;
    RedbStore::new(db, folder).map_err(|e| Error::storage(folder, "prepare the cache file", e))
}

fn open_error(folder: &Path, path: &Path, error: redb::DatabaseError) -> Error {
    use redb::{DatabaseError, StorageError};
    match error {
        DatabaseError::DatabaseAlreadyOpen => Error::AlreadyOpen {
            folder: folder.to_owned(),
        },
        DatabaseError::Storage(StorageError::Io(io))
            if io.kind() != std::io::ErrorKind::InvalidData =>
        {
            Error::io(path, "open the database", io)
        }
        // redb reports a foreign file as InvalidData ("magic number mismatch").
        DatabaseError::Storage(StorageError::Io(_) | StorageError::Corrupted(_))
        | DatabaseError::UpgradeRequired(_) => Error::NotADatabase {
            path: path.to_owned(),
            source: Arc::new(error),
        },
        other => Error::storage(folder, "open", other),
    }
}

/// A boxed backend (redb takes backends by value, not as trait objects).
#[derive(Debug)]
struct LayeredBackend(Box<dyn StorageBackend>);

impl StorageBackend for LayeredBackend {
    fn len(&self) -> std::io::Result<u64> {
        self.0.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        self.0.read(offset, out)
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.0.set_len(len)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        self.0.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.0.write(offset, data)
    }
    fn close(&self) -> std::io::Result<()> {
        self.0.close()
    }
    fn try_lock_range(
        &self,
        start: std::ops::Bound<u64>,
        end: std::ops::Bound<u64>,
    ) -> std::result::Result<bool, redb::BackendError> {
        self.0.try_lock_range(start, end)
    }
    fn try_lock_shared_range(
        &self,
        start: std::ops::Bound<u64>,
        end: std::ops::Bound<u64>,
    ) -> std::result::Result<bool, redb::BackendError> {
        self.0.try_lock_shared_range(start, end)
    }
    fn lock_range(
        &self,
        start: std::ops::Bound<u64>,
        end: std::ops::Bound<u64>,
    ) -> std::result::Result<(), redb::BackendError> {
        self.0.lock_range(start, end)
    }
    fn lock_shared_range(
        &self,
        start: std::ops::Bound<u64>,
        end: std::ops::Bound<u64>,
    ) -> std::result::Result<(), redb::BackendError> {
        self.0.lock_shared_range(start, end)
    }
    fn unlock_range(
        &self,
        start: std::ops::Bound<u64>,
        end: std::ops::Bound<u64>,
    ) -> std::result::Result<(), redb::BackendError> {
        self.0.unlock_range(start, end)
    }
    fn query_lock_range(
        &self,
        start: std::ops::Bound<u64>,
        end: std::ops::Bound<u64>,
    ) -> std::result::Result<bool, redb::BackendError> {
        self.0.query_lock_range(start, end)
    }
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
    pub fn stats(&self) -> CacheStats {
        self.handle.stats()
    }

    /// The cache folder (canonicalized).
    pub fn folder(&self) -> &Path {
        self.handle.label()
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
