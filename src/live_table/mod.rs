//! `LiveTable`: a write-through table over any [`Master`], cached in any [`Cache`], kept fresh
//! by its own writes and by [`LiveEvent`]s. The public type and the state its clones share
//! live here; the read path in `reader.rs`, the write queue in `writer.rs`, live events in
//! `events.rs`. How they fit and why they are correct: `docs/DESIGN.md` §4.

mod builder;
mod events;
mod master;
mod reader;
mod single_flight;
mod staleness;
mod stats;
mod trace;
#[cfg(feature = "serde")]
mod typed;
mod writer;

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tracing::Instrument;

pub use builder::LiveTableBuilder;
pub use events::{LiveEvent, LiveEvents, LiveStream, ManualLiveStream};
pub use master::{Master, Page};
pub use stats::LiveTableStats;

use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::rows::{Record, Rows, SharedRecord};
use master::MasterCall;
use reader::Flight;
use single_flight::SingleFlight;
use staleness::Revalidation;
use stats::Counters;
use trace::op_span;
use writer::{Applied, WriteJob, WriteOp};

/// A write-through, cached view of a [`Master`] table.
///
/// - **Reads** ([`list`](LiveTable::list), [`get`](LiveTable::get)) are served from the cache
///   when it holds a fresh entry. Concurrent misses on one key share one master read (single
///   flight), which fills the cache; errors reach every waiter and are never cached. A read
///   sees every write and invalidation of its key that completed before it began, and falls
///   back to the master (with a `warn!`) if the cache fails.
/// - **Writes** ([`insert`](LiveTable::insert), [`replace`](LiveTable::replace),
///   [`patch`](LiveTable::patch), [`delete`](LiveTable::delete),
///   [`delete_all`](LiveTable::delete_all)) go through a queue to a worker that applies them in
///   order to the write target, then invalidates the cache key before the caller's future
///   resolves. A queued write completes even if its caller stops waiting.
/// - **Events** from a [`LiveStream`] invalidate the cache key, and so do a gap
///   ([`LiveEvent::Lagged`]) and the stream's end, at `warn!`.
///
/// With [`NoCache`](crate::NoCache) a read may miss a write made through *another* table over
/// the same master, if it joins a master read already running; use one table per master there.
/// Why these guarantees hold: `docs/DESIGN.md` §4.
///
/// Clones share everything, configuration included; the table's tasks stop with the last clone.
///
/// Every call to the master (or write target) is bounded by the table's
/// [`master_timeout`](LiveTableBuilder::master_timeout) (default 30 s), so a hung master fails
/// its readers and writers instead of hanging them.
///
/// # Errors
///
/// - [`Error::Master`]: the master (or write target) failed, with its error as the source;
///   nothing was cached, and a failed write did not touch the cache.
/// - [`Error::MasterTimeout`]: the master gave no answer within `master_timeout`. From a write,
///   its outcome at the master is unknown; the cache key was invalidated all the same.
/// - [`Error::WriteAppliedInvalidationFailed`] from a write: the write *was applied* (do not
///   retry it as if it had failed), but the invalidation after it failed, with the cache's
///   error as the source. The cache keeps what the write replaced from being served
///   (`docs/DESIGN.md` §4.5).
/// - [`Error::WriteWorkerGone`] from a write: the Tokio runtime is shutting down.
///
/// # Panics
///
/// Reads and writes run on Tokio: called outside a Tokio runtime, or on one built without its
/// time driver (which bounds master calls), they panic. `#[tokio::main]` and `Runtime::new()`
/// enable it; a runtime `Builder` needs `enable_time()` (or `enable_all()`).
///
/// Every operation runs in a `tracing` span (`live_table.read`, `live_table.write`,
/// `live_table.worker`/`live_table.apply`, `live_table.events`/`live_table.event`) with the
/// fields `cache_key`, `op`, `page`/`id`, and `outcome` = `hit`, `filled`, `rejected_stale`,
/// `not_cached` (served from the master but not cached because the cache failed),
/// `invalidated` or `failed`.
///
/// # Example
///
/// ```
/// use std::sync::Arc;
/// use vlive::{LiveEvent, LiveTable, ManualLiveStream, MemCache, Page, Record, Value};
/// # use std::sync::{Mutex, atomic::{AtomicUsize, Ordering::SeqCst}};
/// # use vlive::{Master, Rows};
/// # #[derive(Default)] // a tiny in-memory master that counts its reads
/// # struct MemMaster { rows: Mutex<Rows>, reads: AtomicUsize }
/// # #[async_trait::async_trait]
/// # impl Master for MemMaster {
/// #     async fn list(&self, _page: Page) -> vlive::Result<Rows> { // one page is all there is
/// #         self.reads.fetch_add(1, SeqCst);
/// #         Ok(self.rows.lock().unwrap().clone())
/// #     }
/// #     async fn get(&self, id: &str) -> vlive::Result<Option<Record>> {
/// #         self.reads.fetch_add(1, SeqCst);
/// #         Ok(self.rows.lock().unwrap().get(id).cloned())
/// #     }
/// #     async fn insert(&self, id: &str, record: Record) -> vlive::Result<Record> {
/// #         self.rows.lock().unwrap().insert(id.into(), record.clone());
/// #         Ok(record)
/// #     }
/// #     async fn replace(&self, id: &str, r: Record) -> vlive::Result<Record> {
/// #         self.insert(id, r).await
/// #     }
/// #     async fn patch(&self, id: &str, partial: Record) -> vlive::Result<Record> {
/// #         let mut rows = self.rows.lock().unwrap();
/// #         let row = rows.entry(id.into()).or_default();
/// #         row.extend(partial);
/// #         Ok(row.clone())
/// #     }
/// #     async fn delete(&self, id: &str) -> vlive::Result<()> {
/// #         Ok(drop(self.rows.lock().unwrap().shift_remove(id)))
/// #     }
/// #     async fn delete_all(&self) -> vlive::Result<()> {
/// #         Ok(self.rows.lock().unwrap().clear())
/// #     }
/// # }
/// # fn record(name: &str) -> Record { Record::from([("name".into(), Value::Text(name.into()))]) }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> vlive::Result<()> {
/// let master = Arc::new(MemMaster::default()); // any `impl Master`
/// let events = Arc::new(ManualLiveStream::new());
/// let table = LiveTable::builder(master.clone(), "clients", Arc::new(MemCache::new()))
///     .live_stream(events.clone())
///     .build()?;
///
/// // Writes go through the table's queue to the master, then invalidate "clients/".
/// table.insert("1", record("Ada")).await?;
///
/// // The first read misses and asks the master; the second is served by the cache.
/// let page = Page::first(20);
/// assert_eq!(table.list(page).await?["1"]["name"], Value::Text("Ada".into()));
/// table.list(page).await?;
/// assert_eq!(master.reads.load(SeqCst), 1);
/// assert_eq!(table.stats().hits, 1);
///
/// // A change made elsewhere arrives as a live event, which invalidates the cache key.
/// master.patch("1", record("Ada Lovelace")).await?;
/// events.push(LiveEvent::Updated { id: "1".into() });
/// # while table.stats().invalidations < 2 { tokio::task::yield_now().await; }
/// let row = table.get("1").await?.expect("row 1 exists");
/// assert_eq!(row["name"], Value::Text("Ada Lovelace".into()));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct LiveTable {
    table: Arc<Table>,
}

/// What all clones of a table share, configuration included: clones cannot differ.
struct Table {
    core: Arc<Core>,
    master: Arc<dyn Master>,
    /// Where writes go: the master unless the builder named another target.
    write_target: Arc<dyn Master>,
    /// Entries fetched longer ago than this are misses; `None`: entries never age.
    max_age: Option<Duration>,
    /// The write queue, started with its worker on the first write.
    writes: OnceLock<mpsc::Sender<WriteJob>>,
    /// Never sent on: its receivers (the event consumers) see it close when the table goes.
    alive: watch::Sender<()>,
}

/// What the worker and the event consumers need: the cache side of the table.
pub(crate) struct Core {
    cache: Arc<dyn Cache>,
    cache_key: String,
    /// `{cache_key}/`: the prefix every key of this table starts with.
    prefix: String,
    /// How long one master call (read or write) may take.
    master_timeout: Duration,
    flights: SingleFlight<Flight>,
    /// Shared with the metrics publisher (feature `metrics`), which outlives the table by up
    /// to a second to publish its last figures.
    stats: Arc<Counters>,
    /// Serve-stale-while-revalidate: its grace period and stale marks; `None` when off.
    revalidation: Option<Revalidation>,
    /// Seconds per master call (feature `metrics`), registered once by the builder.
    #[cfg(feature = "metrics")]
    master_seconds: Option<metrics::Histogram>,
}

impl Core {
    fn new(
        cache: Arc<dyn Cache>,
        cache_key: String,
        master_timeout: Duration,
        revalidation: Option<Revalidation>,
    ) -> Self {
        Core {
            cache,
            prefix: format!("{cache_key}/"),
            cache_key,
            master_timeout,
            flights: SingleFlight::default(),
            stats: Arc::default(),
            revalidation,
            #[cfg(feature = "metrics")]
            master_seconds: None,
        }
    }

    /// Records every master call's seconds in `histogram` (feature `metrics`).
    #[cfg(feature = "metrics")]
    fn set_master_seconds(&mut self, histogram: metrics::Histogram) {
        self.master_seconds = Some(histogram);
    }

    /// The master call `op` of this table, bounded by its master timeout.
    fn master_call(&self, op: &'static str) -> MasterCall {
        MasterCall {
            cache_key: self.cache_key.clone(),
            op,
            limit: self.master_timeout,
            #[cfg(feature = "metrics")]
            seconds: self.master_seconds.clone(),
        }
    }

    /// Invalidates every entry of the table, then detaches running reads so that later callers
    /// start fresh ones.
    async fn invalidate(&self) -> Result<()> {
        let result = self.cache.invalidate_prefix(&self.prefix).await;
        self.flights.forget_all();
        if result.is_ok() {
            self.stats.invalidations.bump();
        }
        result
    }
}

impl fmt::Debug for LiveTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveTable")
            .field("cache_key", &self.table.core.cache_key)
            .field("max_age", &self.table.max_age)
            .field("master_timeout", &self.table.core.master_timeout)
            .finish_non_exhaustive()
    }
}

impl LiveTable {
    /// Starts configuring a table that reads and writes `master`, caching in `cache` under
    /// `cache_key`; finish with [`build`](LiveTableBuilder::build).
    ///
    /// Entries live under `{cache_key}/page_{number}_{per_page}` and `{cache_key}/id/{id}`;
    /// writes and events invalidate `{cache_key}/`. Give each view of the master (each filter
    /// or sort order) its own key; a nested key (`clients/active`) is covered by its outer
    /// table's invalidations. `build` rejects an empty key, and one with an `id` segment after
    /// its first: table `clients/id` would cache its first page under `clients/id/page_1_20`,
    /// where table `clients` caches the row `page_1_20` (`docs/DESIGN.md` §4.2).
    pub fn builder(
        master: Arc<dyn Master>,
        cache_key: impl Into<String>,
        cache: Arc<dyn Cache>,
    ) -> LiveTableBuilder {
        LiveTableBuilder::new(master, cache_key.into(), cache)
    }

    /// A table with the default configuration: `LiveTable::builder(master, cache_key,
    /// cache).build()`.
    ///
    /// # Errors
    ///
    /// As [`LiveTableBuilder::build`].
    pub fn new(
        master: Arc<dyn Master>,
        cache_key: impl Into<String>,
        cache: Arc<dyn Cache>,
    ) -> Result<Self> {
        Self::builder(master, cache_key, cache).build()
    }

    /// The cache key this table's entries live under (see [`builder`](LiveTable::builder) for
    /// the rules cache keys must keep).
    pub fn cache_key(&self) -> &str {
        &self.table.core.cache_key
    }

    /// The cache key of a page: `{cache_key}/page_{number}_{per_page}`.
    pub fn page_key(&self, page: Page) -> String {
        format!(
            "{}page_{}_{}",
            self.table.core.prefix, page.number, page.per_page
        )
    }

    /// The cache key of a row: `{cache_key}/id/{id}`.
    pub fn id_key(&self, id: &str) -> String {
        format!("{}id/{id}", self.table.core.prefix)
    }

    /// Counters since the table was created, shared by all clones.
    pub fn stats(&self) -> LiveTableStats {
        self.table.core.stats.snapshot()
    }

    /// Invalidates every cached entry of this table now, e.g. after changing the master behind
    /// the table's back with no live event to say so.
    pub async fn invalidate(&self) -> Result<()> {
        self.table.core.invalidate().await
    }

    // ----- reads ------------------------------------------------------------------------------

    /// One page of rows: from the cache if it holds a fresh copy, else from the master.
    ///
    /// The rows are shared, not copied: a hit hands out the cache's own `Arc` (with `RedbCache`'s
    /// hot tier or `MemCache`, the same decoded rows every reader gets), and concurrent misses
    /// share the one master read. `Arc::unwrap_or_clone` gives an owned copy when one is needed.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for page number 0 (pages count from 1: page 0 would be a
    /// second cache entry for page 1's rows), without reading the cache or the master.
    pub async fn list(&self, page: Page) -> Result<Arc<Rows>> {
        if page.number == 0 {
            return Err(Error::InvalidArgument {
                reason: format!(
                    "LiveTable {:?}: page numbers count from 1, page 0 was asked for",
                    self.cache_key()
                ),
            });
        }
        let span = op_span!(
            "live_table.read",
            self.cache_key(),
            "list",
            None::<&str>,
            page = page.number,
            per_page = page.per_page,
        );
        let master = self.table.master.clone();
        let fetch = move || {
            let master = master.clone();
            async move { master.list(page).await }
        };
        reader::read(&self.table, self.page_key(page), "list", fetch)
            .instrument(span)
            .await
    }

    /// The row `id`, or `None` if the master has none: from the cache if it holds a fresh
    /// answer (absence is cached too), else from the master. Like [`list`](LiveTable::list), it
    /// shares the cached entry rather than copying it: a [`SharedRecord`] reads as the
    /// [`Record`], and [`into_record`](SharedRecord::into_record) copies it out.
    pub async fn get(&self, id: &str) -> Result<Option<SharedRecord>> {
        let span = op_span!("live_table.read", self.cache_key(), "get", Some(id));
        let master = self.table.master.clone();
        let owned_id = id.to_owned();
        let fetch = move || {
            let master = master.clone();
            let id = owned_id.clone();
            async move {
                let found = master.get(&id).await?;
                Ok(found
                    .map(|record| Rows::from([(id, record)]))
                    .unwrap_or_default())
            }
        };
        let rows = reader::read(&self.table, self.id_key(id), "get", fetch)
            .instrument(span)
            .await?;
        Ok(SharedRecord::only(rows))
    }

    // ----- writes -----------------------------------------------------------------------------

    /// Creates the row `id` through the write queue; returns what the write target stored.
    pub async fn insert(&self, id: &str, record: Record) -> Result<Record> {
        let op = WriteOp::Insert {
            id: id.to_owned(),
            record,
        };
        self.write_record(op).await
    }

    /// Replaces the whole row `id` through the write queue; returns what the write target
    /// stored.
    pub async fn replace(&self, id: &str, record: Record) -> Result<Record> {
        let op = WriteOp::Replace {
            id: id.to_owned(),
            record,
        };
        self.write_record(op).await
    }

    /// Sets the fields of `partial` on row `id` through the write queue; returns the whole
    /// record the write target stored.
    pub async fn patch(&self, id: &str, partial: Record) -> Result<Record> {
        let op = WriteOp::Patch {
            id: id.to_owned(),
            partial,
        };
        self.write_record(op).await
    }

    /// Removes the row `id` through the write queue.
    pub async fn delete(&self, id: &str) -> Result<()> {
        writer::submit(&self.table, WriteOp::Delete { id: id.to_owned() })
            .await
            .map(drop)
    }

    /// Removes every row through the write queue.
    pub async fn delete_all(&self) -> Result<()> {
        writer::submit(&self.table, WriteOp::DeleteAll)
            .await
            .map(drop)
    }

    async fn write_record(&self, op: WriteOp) -> Result<Record> {
        match writer::submit(&self.table, op).await? {
            Applied::Record(record) => Ok(record),
            Applied::Done => Err(Error::Internal {
                what: "a record-returning write was answered without a record",
            }),
        }
    }
}
