//! # vlive — a locally-cached, write-through table layer
//!
//! Read a remote table through a local cache; write through to the master; invalidate on
//! writes and on live events. The heart is [`RedbCache`], a persistent cache on the embedded
//! database redb, run as an actor: one thread owns the database and commits writes in batches
//! (group commit), while any number of async tasks share cheap handles.
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
//! let mut ada = Record::new();
//! ada.insert("name".into(), Value::Text("Ada".into()));
//! let mut rows = Rows::new();
//! rows.insert("1".into(), ada);
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
//! Backends: [`RedbCache`] (persistent), [`MemCache`] (in memory, the reference semantics),
//! [`NoCache`] (caching off). All implement [`Cache`].

// A loom build exercises only the actor protocol; the rest of the crate idles there.
#![cfg_attr(loom, allow(dead_code, unused_imports))]

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
mod actor;
mod cache;
mod codec;
mod error;
mod invalidation_log;
#[cfg(not(loom))]
mod live_table;
#[cfg(loom)]
#[doc(hidden)]
pub mod loom_support;
mod mem_cache;
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
