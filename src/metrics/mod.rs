//! Metrics through the `metrics` facade (feature `metrics`): the application installs a
//! recorder (Prometheus, StatsD, …), vlive records into it. `docs/metrics.md` lists every
//! metric.
//!
//! Gets must stay near a microsecond, so nothing here runs on a get: the counters and gauges
//! are copied from each cache's `stats()` (which it keeps anyway) by a publisher thread once a
//! second, and the few histograms are recorded per batch or per master call, through handles
//! registered once when the cache is built (never a label lookup per event).
//!
//! - `names`: the metric names and label values, in one place.
//! - `publisher`: the thread that copies a cache's stats, and stops with the cache.
//! - `histograms`: the handles recorded at the event.
//! - `mem`, `live_table`, `tiered`, `redis`: the figures of a `MemCache`, a `LiveTable`, a
//!   `TieredCache`, a `RedisCache` (the last a Tokio task: its server figures are a round
//!   trip). (`RedbCache`'s live beside its actor, in `redb_cache::metrics`.)

pub(crate) mod histograms;
pub(crate) mod live_table;
pub(crate) mod mem;
pub(crate) mod names;
pub(crate) mod publisher;
#[cfg(feature = "redis")]
pub(crate) mod redis;
#[cfg(feature = "redis")]
pub(crate) mod tiered;

pub(crate) use publisher::{Source, spawn};

/// The name a cache in `folder` reports as its `cache` label unless given one: the folder's
/// own name (`/var/cache/clients` → `clients`).
pub(crate) fn folder_name(folder: &std::path::Path) -> String {
    folder.file_name().map_or_else(
        || folder.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    )
}
