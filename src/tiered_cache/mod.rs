//! `TieredCache`: a local near tier in front of a shared [`RedisCache`], kept coherent across
//! processes by the namespace's invalidation log.
//!
//! ```text
//!  get ──▶ reader caught up within max_lag? ──no──▶ Redis (bypass)
//!              │ yes
//!              ▼
//!          near hit? ──yes──▶ rows
//!              │ no: near token, then Redis, then near fill (guarded by the token)
//!  put / invalidate_prefix ──▶ Redis (script also appends to the log) ──▶ drop from near
//!  fill ──▶ near token ──▶ Redis fill (the cross-process guard) ──▶ if stored, near fill
//!  reader task ──▶ XREAD the log ──▶ drop each entry's prefix from near (see `reader`)
//! ```

mod freshness;
mod log_entry;
mod reader;
mod stats;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tracing::{Instrument, debug, debug_span, warn};

use crate::cache::{Cache, FillOutcome, FillToken};
use crate::error::{Error, Result};
use crate::redis_cache::RedisCache;
use crate::rows::CachedRows;
use reader::{Reader, Shared};
pub use stats::TieredCacheStats;
use stats::bump;

/// A near tier ([`MemCache`](crate::MemCache) or [`RedbCache`](crate::RedbCache)) in front of
/// a [`RedisCache`], coherent across every process that uses the same Redis namespace.
///
/// **Writes** (`put`, `invalidate_prefix`) go to Redis first; the same Lua script appends an
/// entry to the namespace's invalidation log. Then the key (for a put: the key and the keys it
/// prefixes) is dropped from this process's near tier, so the next get reads Redis. Other
/// processes' near tiers drop it when their reader applies the log entry.
///
/// **The reader** is one task per `TieredCache` on its own connection (`XREAD BLOCK`). It
/// flushes the near tier at the start of every session (so at startup and after any
/// reconnect), when the log has a gap (it was trimmed past the reader), and when the server
/// has a new incarnation (a restart without persistence, a FLUSHALL).
///
/// **Staleness bound.** A get answered by the near tier reflects every write that Redis
/// acknowledged more than `max_lag` (default 2 s) before the get began: the near tier answers
/// only while the reader's last fully applied round *started* less than `max_lag` ago, and
/// otherwise gets bypass it and read Redis. Normally the lag is the log's delivery time, a few
/// milliseconds. Within one process, a write is visible to every get that starts after it
/// returned, as with every backend.
///
/// **Fills** keep the stale-fill guard in both tiers: the token is Redis' (so it holds across
/// processes), and the near fill uses a near token taken before the Redis fill, so an entry the
/// reader applies in between rejects it.
///
/// A persistent near tier ([`RedbCache`](crate::RedbCache)) is flushed at start: what it held
/// before cannot be trusted. If the near tier fails to drop a key, or a write is abandoned
/// before it has, the near tier is bypassed until the reader has flushed it; if the reader task
/// itself dies (a near tier that panics), the near tier stays bypassed and every get reads
/// Redis. If an invalidation fails in Redis, the whole near tier is dropped, and Redis replays
/// the invalidation before it is next read (see [`RedisCache`]): until then the keys it covers
/// are misses.
///
/// Costs: a put drops the key *and every key it prefixes* from the near tier (the `Cache` trait
/// has no exact-key removal), and the writer's reader applies the writer's own log entries
/// again; with a RedbCache near tier each of those is a durable commit.
#[derive(Clone)]
pub struct TieredCache {
    inner: Arc<Inner>,
}

struct Inner {
    near: Arc<dyn Cache>,
    far: RedisCache,
    shared: Arc<Shared>,
    max_lag: Duration,
    /// One per shard.
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.readers.iter().for_each(|reader| reader.abort());
    }
}

impl std::fmt::Debug for TieredCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TieredCache")
            .field("far", &self.inner.far)
            .field("max_lag", &self.inner.max_lag)
            .finish_non_exhaustive()
    }
}

/// Settings for [`TieredCache`]; start with [`TieredCache::builder`].
#[must_use]
pub struct TieredCacheBuilder {
    near: Arc<dyn Cache>,
    far: RedisCache,
    max_lag: Duration,
    poll: Duration,
    #[cfg(feature = "metrics")]
    metrics_name: Option<String>,
}

impl std::fmt::Debug for TieredCacheBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TieredCacheBuilder")
            .field("far", &self.far)
            .field("max_lag", &self.max_lag)
            .field("poll", &self.poll)
            .finish_non_exhaustive()
    }
}

impl TieredCacheBuilder {
    /// The staleness bound (default 2 s): how old the reader's last caught-up round may be for
    /// the near tier to answer. Must exceed the poll interval.
    pub fn max_lag(mut self, max_lag: Duration) -> Self {
        self.max_lag = max_lag;
        self
    }

    /// How long one log read waits for news (default 500 ms). An idle reader completes a round
    /// this often, which is what keeps it within `max_lag`.
    pub fn poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// The `cache` label of this cache's metrics (default: the Redis namespace). Only with the
    /// `metrics` feature. Install the application's metrics recorder before `build`.
    #[cfg(feature = "metrics")]
    pub fn metrics_name(mut self, name: impl Into<String>) -> Self {
        self.metrics_name = Some(name.into());
        self
    }

    /// Starts the reader task and returns the cache. Fails if `max_lag` does not exceed the
    /// poll interval (an idle reader could then never count as caught up).
    ///
    /// # Panics
    /// Outside a Tokio runtime (the reader is a Tokio task).
    pub fn build(self) -> Result<TieredCache> {
        if self.max_lag <= self.poll || self.poll.is_zero() {
            return Err(Error::InvalidConfig {
                reason: format!(
                    "tiered cache: max_lag {:?} must exceed the poll interval {:?} (> 0)",
                    self.max_lag, self.poll
                ),
            });
        }
        #[cfg(feature = "metrics")]
        let metrics_name = self
            .metrics_name
            .unwrap_or_else(|| self.far.namespace().to_owned());
        #[cfg_attr(not(feature = "metrics"), allow(unused_mut))]
        let mut shared = Shared::new(self.far.shards());
        #[cfg(feature = "metrics")]
        {
            shared.near_lag = crate::metrics::tiered::near_lag(&metrics_name);
        }
        let shared = Arc::new(shared);
        let readers = (0..self.far.shards())
            .map(|shard| {
                let reader = Reader {
                    far: self.far.clone(),
                    shard,
                    near: self.near.clone(),
                    shared: shared.clone(),
                    block: self.poll,
                };
                tokio::spawn(reader.run())
            })
            .collect();
        let inner = Arc::new(Inner {
            near: self.near,
            far: self.far,
            shared,
            max_lag: self.max_lag,
            readers,
        });
        #[cfg(feature = "metrics")]
        publish_metrics(&metrics_name, &inner);
        Ok(TieredCache { inner })
    }
}

/// Starts the publisher of `inner`'s figures: it holds the counters, not the cache, and
/// publishes the last figures once the cache is dropped.
#[cfg(feature = "metrics")]
fn publish_metrics(name: &str, inner: &Arc<Inner>) {
    use crate::metrics::publisher::Read;
    let alive = Arc::downgrade(inner);
    let shared = inner.shared.clone();
    crate::metrics::tiered::publish(name, move || {
        let stats = shared.counters.snapshot(shared.freshness.age());
        if alive.strong_count() > 0 {
            Read::Alive(stats)
        } else {
            Read::Last(stats)
        }
    });
}

impl TieredCache {
    /// `near` in front of `far`, with the default staleness bound (2 s).
    ///
    /// # Panics
    /// Outside a Tokio runtime (the reader is a Tokio task).
    pub fn new(near: impl Cache + 'static, far: RedisCache) -> TieredCache {
        Self::builder(near, far)
            .build()
            .expect("the default settings are valid")
    }

    /// Settings beyond the defaults.
    pub fn builder(near: impl Cache + 'static, far: RedisCache) -> TieredCacheBuilder {
        TieredCacheBuilder {
            near: Arc::new(near),
            far,
            max_lag: Duration::from_secs(2),
            poll: Duration::from_millis(500),
            #[cfg(feature = "metrics")]
            metrics_name: None,
        }
    }

    /// The shared tier.
    pub fn far(&self) -> &RedisCache {
        &self.inner.far
    }

    /// The counters, and how far behind the reader is.
    pub fn stats(&self) -> TieredCacheStats {
        let shared = &self.inner.shared;
        shared.counters.snapshot(shared.freshness.age())
    }

    /// Waits until every write Redis acknowledged before this call is reflected in the near
    /// tier, so that later gets here see them: until the reader has applied the log up to the
    /// newest entry at the time of the call (or a round that started after the call).
    ///
    /// Returns within `max_lag` (and a few milliseconds) whatever Redis does: the read of the
    /// log's head is bounded by what is left of it too. Returning without confirmation is safe:
    /// the reader's last completed round then started before the call, so more than `max_lag`
    /// ago, and gets bypass the near tier (reading Redis) until a round that started after the
    /// call has been applied, which is the same guarantee.
    pub async fn sync(&self) {
        let called = tokio::time::Instant::now();
        let deadline = called + self.inner.max_lag;
        let shared = &self.inner.shared;
        let far = &self.inner.far;
        let heads = tokio::time::timeout_at(deadline, async {
            let mut heads = Vec::with_capacity(far.shards());
            for shard in 0..far.shards() {
                heads.push(far.log_head(shard).await?);
            }
            Ok::<_, Error>(heads)
        })
        .await
        .ok()
        .and_then(Result::ok);
        let called = called.into_std();
        loop {
            let applied = |heads: &Vec<_>| {
                (heads.iter().enumerate()).all(|(shard, head)| shared.has_applied(shard, head))
            };
            if heads.as_ref().is_some_and(applied) || shared.freshness.caught_up_since(called) {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                debug!(
                    "sync: the near tier could not be confirmed within max_lag; gets bypass it until it is"
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Whether the near tier may answer now (the reader is caught up within `max_lag`).
    fn near_is_fresh(&self) -> bool {
        self.inner.shared.freshness.within(self.inner.max_lag)
    }

    /// Drops `prefix` from the near tier after a write. If that fails the near tier may hold
    /// what Redis no longer has: stop using it until the reader flushes it.
    async fn drop_from_near(&self, prefix: &str) {
        if let Err(error) = self.inner.near.invalidate_prefix(prefix).await {
            warn!(%error, prefix, "near tier invalidation failed; bypassing it until a flush");
            self.inner.shared.freshness.lost();
        }
    }

    /// Reads Redis and, while the near tier is fresh, fills it under `near_token`.
    async fn read_through(&self, key: &str, near_token: FillToken) -> Result<Option<CachedRows>> {
        bump(&self.inner.shared.counters.near_misses, 1);
        let found = self.inner.far.get(key).await?;
        if let Some(rows) = &found
            && self.near_is_fresh()
            && let Err(error) = self.inner.near.fill(key, rows.clone(), near_token).await
        {
            warn!(%error, key, "near tier fill failed");
        }
        Ok(found)
    }

    fn op_span(&self, op: &'static str, key: &str) -> tracing::Span {
        debug_span!(
            "tiered_cache",
            op,
            key,
            namespace = self.inner.far.namespace()
        )
    }
}

/// A write's duty to drop its key from the near tier. A write abandoned before it has (its
/// caller stopped waiting) leaves the near tier possibly holding what Redis no longer has:
/// dropped undone, this stops gets from using the near tier until the reader flushes it.
struct NearDropDue<'a>(Option<&'a Shared>);

impl<'a> NearDropDue<'a> {
    fn new(shared: &'a Shared) -> Self {
        NearDropDue(Some(shared))
    }

    fn done(mut self) {
        self.0 = None;
    }
}

impl Drop for NearDropDue<'_> {
    fn drop(&mut self) {
        if let Some(shared) = self.0 {
            shared.freshness.lost();
        }
    }
}

#[async_trait]
impl Cache for TieredCache {
    async fn get(&self, key: &str) -> Result<Option<CachedRows>> {
        async {
            if !self.near_is_fresh() {
                bump(&self.inner.shared.counters.bypassed, 1);
                debug!(key, "near tier bypassed: reader not caught up");
                return self.inner.far.get(key).await;
            }
            match self.inner.near.get(key).await {
                Ok(Some(rows)) => {
                    bump(&self.inner.shared.counters.near_hits, 1);
                    debug!(key, "near tier hit");
                    // vlive's near tiers spend the budget themselves; any other `Cache` may
                    // not, and a near hit must not hold the thread either way.
                    crate::sync::spend_budget().await;
                    return Ok(Some(rows));
                }
                Ok(None) => debug!(key, "near tier miss"),
                Err(error) => warn!(%error, key, "near tier get failed; reading Redis"),
            }
            match self.inner.near.fill_token(key).await {
                Ok(token) => self.read_through(key, token).await,
                Err(_) => self.inner.far.get(key).await,
            }
        }
        .instrument(self.op_span("get", key))
        .await
    }

    async fn put(&self, key: &str, rows: CachedRows) -> Result<()> {
        async {
            let due = NearDropDue::new(&self.inner.shared);
            let written = self.inner.far.put(key, rows).await;
            // Even after an Err: the write may have happened.
            self.drop_from_near(key).await;
            due.done();
            written
        }
        .instrument(self.op_span("put", key))
        .await
    }

    async fn invalidate_prefix(&self, prefix: &str) -> Result<()> {
        async {
            let due = NearDropDue::new(&self.inner.shared);
            let written = self.inner.far.invalidate_prefix(prefix).await;
            match &written {
                Ok(()) => self.drop_from_near(prefix).await,
                Err(error) => {
                    // Redis keeps the invalidation for a replay (`RedisCache`); the near tier,
                    // copied from a Redis whose state is now in doubt, goes whole.
                    warn!(%error, prefix, "invalidation failed in Redis; dropping the whole near tier");
                    self.drop_from_near("").await;
                }
            }
            due.done();
            written
        }
        .instrument(self.op_span("invalidate_prefix", prefix))
        .await
    }

    async fn fill_token(&self, key: &str) -> Result<FillToken> {
        self.inner.far.fill_token(key).await
    }

    async fn fill(&self, key: &str, rows: CachedRows, token: FillToken) -> Result<FillOutcome> {
        async {
            // Before the Redis fill: a log entry applied after this rejects the near fill.
            let near_token = self.inner.near.fill_token(key).await.ok();
            let outcome = self.inner.far.fill(key, rows.clone(), token).await?;
            if outcome == FillOutcome::Stored
                && let Some(near_token) = near_token
                && self.near_is_fresh()
                && let Err(error) = self.inner.near.fill(key, rows, near_token).await
            {
                warn!(%error, key, "near tier fill failed");
            }
            Ok(outcome)
        }
        .instrument(self.op_span("fill", key))
        .await
    }
}
