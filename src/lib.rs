//! # vlive — a locally-cached, write-through table layer
//!
//! Read a table that lives somewhere slow (a database, a REST API: the *master*) through a
//! [`LiveTable`]: reads come from a local cache, a miss asks the master once and fills the
//! cache, writes go to the master and then invalidate the cache, and a live event stream
//! invalidates on changes made elsewhere.
//!
//! ## Quickstart
//!
//! The heart is [`RedbCache`], a persistent cache on the embedded database redb, run as an
//! actor: one thread owns the database and commits writes in batches (group commit), while any
//! number of async tasks share cheap handles.
//!
//! ```
//! use vlive::{Cache, CachedRows, Record, RedbCache, Rows, Value};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> vlive::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! # let folder = dir.path().join("cache");
//! let cache = RedbCache::open(&folder)?;
//!
//! let mut rows = Rows::new();
//! rows.insert("1".into(), Record::from([("name".into(), Value::Text("Ada".into()))]));
//!
//! cache.put("clients/page_1", CachedRows::new(rows.clone())).await?;
//! assert_eq!(*cache.get("clients/page_1").await?.unwrap().rows, rows);
//!
//! cache.invalidate_prefix("clients/").await?;
//! assert!(cache.get("clients/page_1").await?.is_none());
//!
//! cache.close().await?;
//! # Ok(())
//! # }
//! ```
//!
//! [`LiveTable`]'s own page has a runnable example over a [`Master`] of your own.
//!
//! ## Pick a backend
//!
//! Every backend implements [`Cache`], and [`LiveTable`] takes any of them:
//! - [`RedbCache`]: on disk, survives restarts, one process.
//! - [`MemCache`]: in memory, one process; the reference semantics.
//! - `RedisCache` (feature `redis`): one cache in Redis for every process on it.
//! - `TieredCache` (feature `redis`): a near tier kept coherent with a `RedisCache`.
//! - [`NoCache`]: caching off; every read goes to the master.
//!
//! ## What it promises
//!
//! A write is acknowledged once committed, durably by default ([`Durability`]); every later
//! get, from any clone, sees it. A get never returns a wrong value: a damaged value is a miss,
//! a damaged file is moved aside ([`OnDamage`]), a full disk fails puts with
//! [`Error::DiskFull`] while gets keep answering. `invalidate_prefix` removes exactly the keys
//! starting with the prefix; a fill that started before an invalidation is rejected
//! ([`Cache::fill_token`]). The full list is in the repository's `docs/guarantees.md`.
//!
//! ## Features
//!
//! - `redis`: `RedisCache` and `TieredCache` (Redis 7.0+, TLS, Cluster).
//! - `postgres`: `PostgresMaster` and `PostgresLiveStream`, a LiveTable over a Postgres table.
//! - `serde`: typed rows, `to_record`/`from_record` and `LiveTable::get_as` and friends, with
//!   errors that name the row and the field.
//! - `metrics`: counters, gauges and histograms through the `metrics` facade, under a `cache`
//!   label set by each builder's `metrics_name` (the repository's `docs/metrics.md`).

// A loom build exercises only the actor protocol; the rest of the crate idles there.
#![cfg_attr(loom, allow(dead_code, unused_imports))]

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
mod actor;
mod cache;
mod codec;
mod error;
mod fnv;
#[cfg(not(loom))]
pub mod inspect;
mod invalidation_log;
#[cfg(not(loom))]
mod live_table;
#[cfg(loom)]
#[doc(hidden)]
pub mod loom_support;
mod mem_cache;
#[cfg(all(feature = "metrics", not(loom)))]
mod metrics;
mod no_cache;
#[cfg(all(feature = "postgres", not(loom)))]
mod postgres;
#[cfg(not(loom))]
mod redb_cache;
#[cfg(all(feature = "redis", not(loom)))]
mod redis_cache;
mod rows;
mod store;
mod sync;
#[cfg(all(feature = "redis", not(loom)))]
mod tiered_cache;
#[cfg(feature = "serde")]
mod typed_rows;

pub use actor::{Durability, OnDamage, RedbCacheStats};
pub use cache::{Cache, FillOutcome, FillToken};
pub use error::{Error, Refusal, Result};
#[cfg(not(loom))]
pub use live_table::{
    LiveEvent, LiveEvents, LiveStream, LiveTable, LiveTableBuilder, LiveTableStats,
    ManualLiveStream, Master, Page,
};
pub use mem_cache::{MemCache, MemCacheStats};
pub use no_cache::NoCache;
#[cfg(all(feature = "postgres", not(loom)))]
pub use postgres::{
    LISTENER_APPLICATION_NAME, PostgresLiveStream, PostgresLiveStreamStats, PostgresMaster,
};
#[cfg(not(loom))]
pub use redb_cache::{DB_FILE_NAME, RedbCache, RedbCacheBuilder};
#[cfg(all(feature = "redis", not(loom)))]
pub use redis_cache::{RedisCache, RedisCacheBuilder, RedisCacheStats, RedisFault, RedisFaultKind};
pub use rows::{CachedRows, Record, Rows, SharedRecord, Value};
#[cfg(all(feature = "redis", not(loom)))]
pub use tiered_cache::{TieredCache, TieredCacheBuilder, TieredCacheStats};
#[cfg(feature = "serde")]
pub use typed_rows::{from_record, from_rows, from_value, to_record, to_value};
