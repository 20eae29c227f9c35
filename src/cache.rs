//! The `Cache` contract every backend keeps.

use async_trait::async_trait;

use crate::error::Result;
use crate::rows::CachedRows;

/// A key-value cache of [`CachedRows`], shared by many tasks.
///
/// The contract, which every backend is tested against (with [`MemCache`](crate::MemCache) as
/// the reference):
/// - `get` returns `Ok(None)` on a miss; `Err` only for a real fault.
/// - `put` replaces whatever was under the key.
/// - `invalidate_prefix(p)` removes exactly the keys that start with `p`: `""` removes
///   everything, `"cli"` removes `clients/…` and `clinic/…`.
/// - Keys are any UTF-8 strings; `"a"`, `"a/"` and `"a/__root__"` are three different keys.
/// - Once a `put` or `invalidate_prefix` has returned `Ok`, every later `get`, from any clone
///   of the cache, sees its effect.
/// - An `Err` from a write means its outcome is unknown, not that it did not happen: a commit
///   whose fsync failed may still have reached the disk. Read again to find out.
/// - `put` and `fill` refuse, with [`Error::ValueRefused`](crate::Error::ValueRefused), rows
///   that could not be read back (nested deeper than the decoder reads, say), on every backend
///   alike: nothing is stored and the key keeps what it held. That error, unlike the others,
///   says the write did not happen.
/// - A get answered from memory, without awaiting I/O, spends Tokio's cooperative budget, so
///   a task looping on hits still lets the other tasks of its runtime run.
///
/// The stale-fill guard ([`fill_token`](Cache::fill_token) and [`fill`](Cache::fill)) closes
/// the classic cache-aside race: a reader that misses, reads the master, and writes the result
/// back must not overwrite an invalidation that happened while it was reading.
#[async_trait]
pub trait Cache: Send + Sync {
    /// The rows under `key`, or `None` on a miss.
    async fn get(&self, key: &str) -> Result<Option<CachedRows>>;

    /// Stores `rows` under `key`, replacing what was there.
    async fn put(&self, key: &str, rows: CachedRows) -> Result<()>;

    /// Removes every key that starts with `prefix`.
    async fn invalidate_prefix(&self, prefix: &str) -> Result<()>;

    /// A token to take *before* reading the master for `key`; hand it to [`fill`](Cache::fill).
    ///
    /// `key` lets a backend scope the token to the key it will fill (a distributed backend may
    /// track invalidation epochs per prefix); the backends in this crate issue one token for
    /// the whole cache and ignore it.
    async fn fill_token(&self, key: &str) -> Result<FillToken>;

    /// Stores `rows` under `key` unless an invalidation covering `key` happened since `token`
    /// was taken, in which case the rows are dropped and `FillOutcome::RejectedStale` returned.
    async fn fill(&self, key: &str, rows: CachedRows, token: FillToken) -> Result<FillOutcome>;
}

/// A point in a cache's invalidation history, taken before a master read.
///
/// Opaque: only the cache instance that issued it can interpret it. A token from another
/// instance (for example one taken before the cache was closed and reopened) makes every fill
/// stale, since the invalidations in between are unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FillToken {
    pub(crate) instance: u64,
    pub(crate) epoch: u64,
}

/// What became of a [`Cache::fill`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FillOutcome {
    /// The rows are in the cache.
    Stored,
    /// An invalidation covering the key happened after the token was taken; nothing was stored.
    RejectedStale,
}
