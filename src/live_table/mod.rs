//! `LiveTable`: a write-through table over any [`Master`], cached in any [`Cache`], kept fresh
//! by its own writes and by [`LiveEvent`]s.
//!
//! ```text
//!  list/get ──▶ cache hit? ──yes──▶ rows
//!                  │ no
//!                  ▼
//!           single flight (one master read per key, however many callers miss it)
//!                  │ fill_token → master read → fill (rejected if an invalidation overtook it;
//!                  │ then whoever joined the read, rather than started it, reads again)
//!                  ▼
//!                 rows
//!
//!  insert/replace/patch/delete ──▶ write queue ──▶ worker: apply to the write target,
//!                                                  invalidate `{cache_key}/`, reply
//!  LiveStream ──▶ event consumer: invalidate `{cache_key}/` once per group of events
//!                 (every event, gap or end waiting when it wakes)
//! ```
//!
//! Cache keys: a page is cached under `{cache_key}/page_{number}_{per_page}`, a row under
//! `{cache_key}/id/{id}` (ids may contain `/`). Writes and events invalidate the prefix
//! `{cache_key}/`, so give each view of the master (each filter or sort order) its own
//! `cache_key`; nested keys (`clients` and `clients/active`) let one table's invalidations
//! cover another's. Callers choose distinct cache keys, and one more rule applies: no
//! `cache_key` may be another's followed by `/id` or `/id/…`. Table `clients/id` would cache
//! its first page under `clients/id/page_1_20`, which is also where table `clients` caches the
//! row whose id is `page_1_20`, and each table would read the other's entry as its own.
//!
//! ```
//! use std::sync::Arc;
//! use vlive::{Cache, LiveEvent, LiveTable, ManualLiveStream, MemCache, Page, Record, Value};
//! # use std::sync::Mutex;
//! # use std::sync::atomic::{AtomicUsize, Ordering};
//! # use vlive::{Master, Rows};
//! #
//! # /// A tiny in-memory master that counts its reads.
//! # #[derive(Default)]
//! # struct MemMaster { rows: Mutex<Rows>, reads: AtomicUsize }
//! #
//! # #[async_trait::async_trait]
//! # impl Master for MemMaster {
//! #     async fn list(&self, page: Page) -> vlive::Result<Rows> {
//! #         self.reads.fetch_add(1, Ordering::SeqCst);
//! #         let rows = self.rows.lock().unwrap();
//! #         Ok(rows.iter().skip(page.offset() as usize).take(page.per_page as usize)
//! #             .map(|(id, r)| (id.clone(), r.clone())).collect())
//! #     }
//! #     async fn get(&self, id: &str) -> vlive::Result<Option<Record>> {
//! #         self.reads.fetch_add(1, Ordering::SeqCst);
//! #         Ok(self.rows.lock().unwrap().get(id).cloned())
//! #     }
//! #     async fn insert(&self, id: &str, record: Record) -> vlive::Result<Record> {
//! #         self.rows.lock().unwrap().insert(id.into(), record.clone());
//! #         Ok(record)
//! #     }
//! #     async fn replace(&self, id: &str, record: Record) -> vlive::Result<Record> {
//! #         self.insert(id, record).await
//! #     }
//! #     async fn patch(&self, id: &str, partial: Record) -> vlive::Result<Record> {
//! #         let mut rows = self.rows.lock().unwrap();
//! #         let row = rows.entry(id.into()).or_default();
//! #         row.extend(partial);
//! #         Ok(row.clone())
//! #     }
//! #     async fn delete(&self, id: &str) -> vlive::Result<()> {
//! #         self.rows.lock().unwrap().shift_remove(id);
//! #         Ok(())
//! #     }
//! #     async fn delete_all(&self) -> vlive::Result<()> {
//! #         self.rows.lock().unwrap().clear();
//! #         Ok(())
//! #     }
//! # }
//! # fn record(name: &str) -> Record {
//! #     Record::from([("name".to_string(), Value::Text(name.into()))])
//! # }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> vlive::Result<()> {
//! let master = Arc::new(MemMaster::default()); // any `impl Master`
//! let events = Arc::new(ManualLiveStream::new());
//! let table = LiveTable::builder(master.clone(), "clients", Arc::new(MemCache::new()))
//!     .live_stream(events.clone())
//!     .build()?;
//!
//! // Writes go through the table's queue to the master, then invalidate "clients/".
//! table.insert("1", record("Ada")).await?;
//!
//! // The first read misses and asks the master; the second is served by the cache.
//! let page = Page::first(20);
//! assert_eq!(table.list(page).await?["1"]["name"], Value::Text("Ada".into()));
//! table.list(page).await?;
//! assert_eq!(master.reads.load(Ordering::SeqCst), 1);
//! assert_eq!(table.stats().hits, 1);
//!
//! // A change made elsewhere arrives as a live event, which invalidates the cache key.
//! master.patch("1", record("Ada Lovelace")).await?;
//! events.push(LiveEvent::Updated { id: "1".into() });
//! # while table.stats().invalidations < 2 { tokio::task::yield_now().await; }
//! let row = table.get("1").await?.expect("row 1 exists");
//! assert_eq!(row["name"], Value::Text("Ada Lovelace".into()));
//! # Ok(())
//! # }
//! ```
//!
//! The table spawns Tokio tasks (the write worker on the first write, a fetch per cache miss,
//! an event consumer per live stream), so use it inside a Tokio runtime.

mod builder;
mod events;
mod master;
mod reader;
mod single_flight;
mod stats;
mod trace;
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
use crate::rows::{Record, Rows};
use reader::Flight;
use single_flight::SingleFlight;
use stats::Counters;
use trace::op_span;
use writer::{Applied, WriteJob, WriteOp};

/// A write-through, cached view of a [`Master`] table.
///
/// - **Reads** ([`list`](LiveTable::list), [`get`](LiveTable::get)) are served from the cache
///   when it holds a fresh entry, without calling the master. A miss reads the master once per
///   key however many callers miss it at the same time (single flight), fills the cache and
///   hands the rows to every waiter. Errors are handed to every waiter and never cached. A fill
///   is dropped if an invalidation of the key happened after the master read started (the
///   stale-fill guard of [`Cache::fill`]), so a slow read never brings back rows a write has
///   made stale. A read that starts after a write (or an invalidation of the key) has
///   completed sees it, even one through another table whose cache key covers this one's
///   (`clients` over `clients/active`) or a direct [`Cache::invalidate_prefix`]: a caller
///   that joined a master read whose fill was rejected (or could not be stored) does not
///   trust its rows and reads again, once; the caller that started the read, which began
///   before the invalidation, gets its rows. When the cache itself fails, reads fall back to
///   the master (and log at `warn!`): the cache speeds things up, it never stands in the way.
///
///   With [`NoCache`](crate::NoCache), which answers every fill with "stored", only this
///   table's own writes, events and [`invalidate`](LiveTable::invalidate) keep a later read
///   from joining an earlier master read: a write through *another* table over the same
///   master may not be seen by a read on this one that starts right after it, if that read
///   joins a master read already running. Use one table per master (or a real cache) when
///   that matters.
/// - **Writes** ([`insert`](LiveTable::insert), [`replace`](LiveTable::replace),
///   [`patch`](LiveTable::patch), [`delete`](LiveTable::delete),
///   [`delete_all`](LiveTable::delete_all)) go through a per-table queue to a worker that
///   applies them to the write target in FIFO order. On success it invalidates the cache key
///   before the caller's future resolves, so a read that starts afterwards sees the write; on
///   failure the cache is untouched and the master's error is returned. Once queued, a write
///   is carried out even if its caller stops waiting.
/// - **Events** from a [`LiveStream`] invalidate the cache key; so do a gap in the stream
///   ([`LiveEvent::Lagged`]) and its end, which are logged at `warn!`. Events that arrive
///   together share one invalidation: a burst costs one cache commit, not one per event.
///
/// Clones share everything: configuration, cache, queue, worker, single flights, statistics.
/// The worker and the event consumers stop when the last clone is dropped.
///
/// # Errors
///
/// - [`Error::Master`]: the master (or write target) failed; its error is the source. Nothing
///   was cached, and a failed write did not touch the cache.
/// - Any other variant from a write comes from the cache: the write *was applied*, but the
///   invalidation after it failed, so cached entries may be stale until the next successful
///   invalidation (or their `max_age`).
/// - [`Error::WriteWorkerGone`] from a write: the worker is gone, which only happens while the
///   Tokio runtime shuts down.
///
/// Every operation runs in a `tracing` span (`live_table.read`, `live_table.write`,
/// `live_table.worker`/`live_table.apply`, `live_table.events`/`live_table.event`) with the
/// fields `cache_key`, `op`, `page`/`id`, and `outcome` = `hit`, `filled`, `rejected_stale`,
/// `not_cached` (served from the master but not cached because the cache failed),
/// `invalidated` or `failed`.
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
    flights: SingleFlight<Flight>,
    stats: Counters,
}

impl Core {
    fn new(cache: Arc<dyn Cache>, cache_key: String) -> Self {
        Core {
            cache,
            prefix: format!("{cache_key}/"),
            cache_key,
            flights: SingleFlight::default(),
            stats: Counters::default(),
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
            .finish_non_exhaustive()
    }
}

impl LiveTable {
    /// Starts configuring a table that reads and writes `master`, caching in `cache` under
    /// `cache_key`; finish with [`build`](LiveTableBuilder::build).
    ///
    /// Pages are cached under `{cache_key}/page_{number}_{per_page}`
    /// ([`page_key`](LiveTable::page_key)), rows under `{cache_key}/id/{id}`
    /// ([`id_key`](LiveTable::id_key)); writes and events invalidate the prefix `{cache_key}/`.
    /// Give each view of the master (each filter or sort order) its own `cache_key`. Nested
    /// keys (`clients` and `clients/active`) let the outer table's invalidations cover the
    /// inner table's entries. [`build`](LiveTableBuilder::build) rejects an empty `cache_key`,
    /// and one with an `id` segment after its first (`clients/id`, `clients/id/x`): table
    /// `clients/id` would cache its first page under `clients/id/page_1_20`, which is also
    /// where table `clients` caches the row whose id is `page_1_20`, and each table would read
    /// the other's entry as its own.
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
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for page number 0 (pages count from 1: page 0 would be a
    /// second cache entry for page 1's rows), without reading the cache or the master.
    pub async fn list(&self, page: Page) -> Result<Rows> {
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
        reader::read(&self.table, self.page_key(page), fetch)
            .instrument(span)
            .await
    }

    /// The row `id`, or `None` if the master has none: from the cache if it holds a fresh
    /// answer (absence is cached too), else from the master.
    pub async fn get(&self, id: &str) -> Result<Option<Record>> {
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
        let rows = reader::read(&self.table, self.id_key(id), fetch)
            .instrument(span)
            .await?;
        Ok(rows.into_values().next())
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
