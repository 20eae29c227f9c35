//! Configuring and opening a [`RedbCache`].

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use redb::StorageBackend;
use redb::backends::FileBackend;

use super::RedbCache;
use super::registry;
use crate::actor::{ActorConfig, Durability, OnDamage};
use crate::error::{Error, Result};
use crate::store::redb_open::OpenOptions;

/// Configures and opens a [`RedbCache`].
pub struct RedbCacheBuilder {
    /// The folder is set by [`open`](RedbCacheBuilder::open).
    config: ActorConfig,
    store: OpenOptions,
}

impl fmt::Debug for RedbCacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbCacheBuilder")
            .field("capacity", &self.config.capacity)
            .field("batch", &self.config.batch)
            .field("durability", &self.config.durability)
            .field("max_bytes", &self.config.max_bytes)
            .field("time_to_live", &self.config.time_to_live)
            .field("hot_bytes", &self.config.hot_bytes)
            .field("on_damage", &self.config.on_damage)
            .field("disk_reserve", &self.config.disk_reserve)
            .field("page_cache_bytes", &self.store.page_cache_bytes)
            .field("backend_layer", &self.store.layer.is_some())
            .finish()
    }
}

impl Default for RedbCacheBuilder {
    fn default() -> Self {
        RedbCacheBuilder {
            config: ActorConfig::new(""),
            store: OpenOptions::default(),
        }
    }
}

impl RedbCacheBuilder {
    /// How many commands may wait in the actor's channel (default 1024). When it is full,
    /// callers wait asynchronously: backpressure instead of unbounded memory. Lazy puts are
    /// bounded by [`write_buffer_bytes`](Self::write_buffer_bytes) instead.
    pub fn capacity(mut self, commands: usize) -> Self {
        self.config.capacity = commands;
        self
    }

    /// The most commands one batch (one transaction) may hold (default 1024).
    pub fn max_batch_ops(mut self, ops: usize) -> Self {
        self.config.batch.max_ops = ops;
        self
    }

    /// A batch stops growing once its keys and values reach this many bytes (default 16 MiB).
    pub fn max_batch_bytes(mut self, bytes: usize) -> Self {
        self.config.batch.max_bytes = bytes;
        self
    }

    /// Lets a batch with a write wait this long for company before committing (default: none).
    pub fn linger(mut self, window: Duration) -> Self {
        self.config.batch.linger = Some(window);
        self
    }

    /// In [`Durability::Lazy`] mode, how many bytes of puts may be acknowledged and not yet
    /// committed (default 64 MiB; each put counts what it will take in the file, about 4 KiB
    /// for a 3.4 KB value; at most 4 GiB - 1). Gets find these puts at once, from any clone. A
    /// burst up to this size is absorbed at memory speed while the actor commits behind it;
    /// beyond it, puts wait for commits to free room (backpressure). A single put larger than
    /// the buffer waits for it to empty, and then goes alone. Unused in durable mode.
    pub fn write_buffer_bytes(mut self, bytes: u64) -> Self {
        self.config.write_buffer_bytes = bytes;
        self
    }

    /// Durability of acknowledged writes (default [`Durability::Immediate`]).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.config.durability = durability;
        self
    }

    /// Bounds the space the entries take in the file to `bytes` (default: unbounded). A batch
    /// that would exceed it evicts, in its own transaction before it answers, the entries least
    /// recently put or read (CLOCK: oldest first, a read earns one second chance). An entry
    /// larger than the whole budget is refused with [`Error::EntryTooLarge`]. Eviction is a
    /// later miss, never an older value.
    ///
    /// Each entry is charged its key, its value and its bookkeeping as redb lays them out, in
    /// whole pages (`stats().live_bytes`; a 3.4 KB value is charged about 4 KiB), so that
    /// the file's blocks on disk stay near the budget under churn (README: Budgets and expiry).
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.config.max_bytes = Some(bytes);
        self
    }

    /// Entries whose `fetched_at` is older than `ttl` are misses, on every path (default:
    /// they never expire). The actor removes them in bounded sweeps (at most 256 per batch, and
    /// on an idle timer), never in one unbounded transaction. Sweeps walk the eviction queue
    /// from its oldest end and stop at the first fresh entry, so an expired entry's space is
    /// reclaimed at the latest one `ttl` after it was put (or given a second chance).
    pub fn time_to_live(mut self, ttl: Duration) -> Self {
        self.config.time_to_live = Some(ttl);
        self
    }

    /// The budget of the hot tier: decoded entries kept in memory, shared by every handle,
    /// that answer a get without reading the store or decoding (default 8 MiB; `0` turns it
    /// off). Counted as key + encoded value bytes, evicted oldest first. Decoded rows take
    /// more memory than their encoding: for 20-row text values about 6.5x (an 8 MiB tier held
    /// about 55 MiB of RSS, `docs/page-cache.md`), so size it by RSS, not by this figure alone.
    ///
    /// It never answers with an older value than the store would: a write removes the keys it
    /// covers when it is sent, and a get keeps what it read only if no write was sent in the
    /// meantime (so under a steady stream of writes it keeps little). A key the store evicts or
    /// expires may stay in the tier: it is still the key's latest value, and the time to live
    /// applies to it all the same. See `stats().hot_hits`, `hot_entries`, `hot_bytes`.
    pub fn hot_bytes(mut self, bytes: u64) -> Self {
        self.config.hot_bytes = bytes;
        self
    }

    /// What `open` does with a cache file it finds damaged (default [`OnDamage::Reset`]: move
    /// it aside and start empty; [`OnDamage::Fail`]: fail with [`Error::Damaged`]). Damage
    /// found while serving is always moved aside: the cache goes on, empty.
    ///
    /// Builds with `panic = "abort"` cannot catch a panic inside redb (which a damaged page can
    /// cause): the process ends, and the next open finds the damage (redb's repair after an
    /// unclean shutdown checks every page) and applies this policy.
    pub fn on_damage(mut self, policy: OnDamage) -> Self {
        self.config.on_damage = policy;
        self
    }

    /// Free space the cache leaves on its disk (default 16 MiB; `0` turns the reserve off).
    /// Below it, puts and fills fail with [`Error::DiskFull`] while invalidations, which must
    /// never be lost, still commit; gets go on answering from what is stored. Writes resume by
    /// themselves once the disk has space again (after a commit failed for space: twice the
    /// reserve, so that a disk at the edge does not fail a commit every batch).
    pub fn disk_reserve(mut self, bytes: u64) -> Self {
        self.config.disk_reserve = bytes;
        self
    }

    /// The memory redb may use to cache the file's pages (default 1 MiB; redb's own default
    /// is 1 GiB); up to half of it buffers a commit's writes. Gets that miss the hot tier read
    /// through it: what it does not hold is read from the file, which the OS page cache
    /// usually holds, and the process holds up to this much besides the hot tier.
    /// `cargo bench --bench page_cache` measures cold gets, RSS and put bursts at five sizes
    /// (`docs/page-cache.md`): against 64 MiB, 1 MiB reads random keys of a 256 MiB file at
    /// about 0.95x, commits durable bursts as fast and lazy ones at 0.85-1.0x, for 67 MiB
    /// less RSS; a file the cache holds whole reads 10-20% faster. Raise it to the file's size
    /// when that fits in memory you can spare and cold gets matter.
    pub fn page_cache_bytes(mut self, bytes: usize) -> Self {
        self.store.page_cache_bytes = Some(bytes);
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
        self.store.layer = Some(Arc::new(move |file| Box::new(layer(file))));
        self
    }

    /// The `cache` label of this cache's metrics (default: the folder's name, `clients` for
    /// `/var/cache/clients`). Only with the `metrics` feature. Install the application's
    /// metrics recorder before opening: handles are registered once, at open.
    #[cfg(feature = "metrics")]
    pub fn metrics_name(mut self, name: impl Into<String>) -> Self {
        self.config.metrics_name = Some(name.into());
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
            folder,
            ..self.config
        };
        config.validate()?;
        let handle = registry::open(config, self.store)?;
        Ok(RedbCache { handle })
    }
}

fn prepare_folder(folder: &Path) -> Result<std::path::PathBuf> {
    std::fs::create_dir_all(folder).map_err(|e| Error::io(folder, "create the cache folder", e))?;
    folder
        .canonicalize()
        .map_err(|e| Error::io(folder, "resolve the cache folder", e))
}
