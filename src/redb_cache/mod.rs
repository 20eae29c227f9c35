//! `RedbCache`: the persistent cache, a handle to the storage actor over a redb file.

mod builder;
#[cfg(feature = "metrics")]
mod metrics;
mod registry;

use std::fmt;
use std::path::Path;

use async_trait::async_trait;
use tracing::{Instrument, debug, debug_span, trace};

use crate::actor::{Fetched, Handle, PutValue, RedbCacheStats, budget};
use crate::cache::{Cache, FillOutcome, FillToken};
use crate::codec;
use crate::error::Result;
use crate::rows::CachedRows;

pub use builder::RedbCacheBuilder;

pub use crate::store::redb_open::DB_FILE_NAME;

/// A persistent cache in a folder, served by one actor thread that owns the redb database.
///
/// Clones are cheap handles to the same actor. Every write is acknowledged only after the batch
/// it joined has committed (durably, by default). A get that no write in flight affects reads
/// the snapshot the actor published after its last commit, on the caller's thread; any other
/// get queues behind those writes ([`RedbCacheStats::snapshot_gets`] counts the first kind). In
/// front of both, a bounded hot tier of decoded entries answers repeated gets without decoding
/// ([`RedbCacheBuilder::hot_bytes`], [`RedbCacheStats::hot_hits`]). The actor stops when the
/// last handle is dropped or when [`close`](RedbCache::close) is called.
///
/// Opening a folder this process already has open returns a handle to the same actor (the
/// first open's configuration stays in force). Another process gets
/// [`Error::AlreadyOpen`](crate::Error::AlreadyOpen).
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
    /// [`Durability::Immediate`](crate::Durability::Immediate) mode).
    ///
    /// # Errors
    /// [`Error::LazyWritesLost`](crate::Error::LazyWritesLost) when lazy puts acknowledged
    /// since the last successful `flush` were not stored (a failed commit or sync; their keys
    /// read as misses), reported once; other errors when the durable commit itself fails.
    pub async fn flush(&self) -> Result<()> {
        self.handle.flush().await
    }

    /// Serves what is queued, commits, closes the database and releases the file. After `Ok`,
    /// the folder can be opened again at once; every later call on any clone returns
    /// [`Error::Closed`](crate::Error::Closed). Closing again is a no-op.
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

    /// Whether `rows` were fetched longer ago than the time to live.
    fn is_expired(&self, rows: &CachedRows) -> bool {
        self.handle
            .time_to_live()
            .is_some_and(|ttl| budget::has_expired(rows.fetched_at, ttl))
    }
}

#[async_trait]
impl Cache for RedbCache {
    async fn get(&self, key: &str) -> Result<Option<CachedRows>> {
        async {
            let (rows, keep) = match self.handle.get(key).await? {
                Fetched::Hot(rows) | Fetched::Buffered(rows) => (rows, None),
                Fetched::Stored { bytes: None, .. } => {
                    self.handle.record_get(key, false);
                    debug!("miss");
                    return Ok(None);
                }
                Fetched::Stored {
                    bytes: Some(bytes),
                    ticket,
                } => match codec::decode(&bytes) {
                    Ok(rows) => (rows, Some((ticket, bytes.len()))),
                    // Its checksum held, so the bytes are what was written: a value this
                    // version cannot read. A miss all the same, never an error or a guess.
                    Err(reason) => {
                        self.handle.report_undecodable(key, &bytes, &reason);
                        self.handle.record_get(key, false);
                        return Ok(None);
                    }
                },
            };
            // Every get, from the hot tier, the snapshot or through the actor, passes here: an
            // entry the sweeps have not removed yet is a miss all the same.
            if self.is_expired(&rows) {
                if keep.is_none() {
                    self.handle.drop_hot(key);
                }
                self.handle.record_get(key, false);
                debug!("expired");
                return Ok(None);
            }
            if let Some((Some(ticket), encoded_len)) = keep {
                self.handle.keep_hot(key, rows.clone(), encoded_len, ticket);
            }
            self.handle.record_get(key, true);
            debug!(rows = rows.rows.len(), "hit");
            trace!(?rows, "cached rows");
            Ok(Some(rows))
        }
        .instrument(debug_span!("cache_get", key))
        .await
    }

    async fn put(&self, key: &str, rows: CachedRows) -> Result<()> {
        let fetched_ms = budget::queued_fetched_ms(rows.fetched_at);
        let encoded_len = codec::measure_entry(key, &rows)?;
        let value = PutValue::new(rows, encoded_len);
        self.handle
            .put(key, value, fetched_ms)
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
        let fetched_ms = budget::queued_fetched_ms(rows.fetched_at);
        let encoded_len = codec::measure_entry(key, &rows)?;
        let value = PutValue::new(rows, encoded_len);
        self.handle
            .fill(key, value, fetched_ms, token)
            .instrument(debug_span!("cache_fill", key))
            .await
    }
}
