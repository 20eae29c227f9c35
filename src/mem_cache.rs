//! `MemCache`: the in-memory reference implementation of the [`Cache`] contract.
//!
//! Bounded (`with_max_bytes`) or expiring (`with_time_to_live`), it runs `RedbCache`'s own
//! policies (`actor::budget`) over the same bookkeeping (`EntryMap`), after every write as the
//! actor does after every write batch, so that it evicts the same keys in the same order and
//! stays the reference for bounded caches too.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tracing::debug;

use crate::actor::access::AccessBits;
use crate::actor::budget;
use crate::cache::{Cache, FillOutcome, FillToken};
use crate::codec;
use crate::error::{Error, Result};
use crate::invalidation_log::InvalidationLog;
use crate::rows::CachedRows;
use crate::store::entry_map::EntryMap;
use crate::store::{StoreResult, entry_size};
use crate::sync::{self, Mutex, MutexGuard};

/// An in-process cache in an ordered map. Clones share the same map.
///
/// It defines the reference semantics the other backends are tested against, and is a fine
/// choice when nothing needs to survive a restart. [`MemCache::new`] is unbounded;
/// [`with_max_bytes`](MemCache::with_max_bytes) and
/// [`with_time_to_live`](MemCache::with_time_to_live) behave as `RedbCache`'s builder options of
/// the same names.
#[derive(Clone, Default, Debug)]
pub struct MemCache {
    state: Arc<Mutex<MemState>>,
    /// Fixed at construction, so read without the lock.
    limits: Limits,
}

#[derive(Clone, Copy, Default, Debug)]
struct Limits {
    max_bytes: Option<u64>,
    time_to_live: Option<Duration>,
}

#[derive(Default, Debug)]
struct MemState {
    entries: EntryMap<CachedRows>,
    invalidations: InvalidationLog,
    /// With a byte budget: the entries gets have read since eviction last passed them.
    access: Option<AccessBits>,
    evictions: u64,
    expirations: u64,
}

/// A snapshot of a [`MemCache`]'s totals and counters (the subset of
/// [`RedbCacheStats`](crate::RedbCacheStats) that an in-memory cache has).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemCacheStats {
    /// Entries held, expired ones not yet swept included.
    pub entries: u64,
    /// What they are charged against `max_bytes`, exactly as `RedbCache` charges them (the key
    /// and the CBOR-encoded value as redb would lay them out, in whole pages). Counted only with
    /// a byte budget, and 0 without one, because counting means encoding every put.
    pub live_bytes: u64,
    /// Entries evicted to keep `live_bytes` within `max_bytes`.
    pub evictions: u64,
    /// Expired entries removed by sweeps.
    pub expirations: u64,
}

impl MemCache {
    /// An empty, unbounded cache: entries stay until invalidated.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty cache that holds at most `max_bytes`, charging each entry as `RedbCache` does
    /// (its key and its rows' CBOR encoding, as redb would lay them out), so one budget holds the
    /// same entries on both.
    ///
    /// A write that takes it over budget evicts before it returns, by CLOCK as `RedbCache` does:
    /// oldest put first, except that an entry read since the last pass gets one second chance.
    /// The same puts, gets and invalidations, made one at a time, evict the same keys from
    /// both (concurrent writes may differ: the actor evicts once per batch of them). An entry
    /// larger than the whole budget is refused with [`Error::EntryTooLarge`]. Eviction is a
    /// later miss, never an older value, and does not make fills stale.
    pub fn with_max_bytes(max_bytes: u64) -> Self {
        Self::with_limits(Limits {
            max_bytes: Some(max_bytes),
            time_to_live: None,
        })
    }

    /// An empty, unbounded cache whose entries are misses once their `fetched_at` is older than
    /// `ttl`. Every write removes up to 256 expired entries, oldest first (as each `RedbCache`
    /// batch does); there is no timer, so expired entries may stay in memory, as misses, until
    /// the next write.
    pub fn with_time_to_live(ttl: Duration) -> Self {
        Self::with_limits(Limits {
            max_bytes: None,
            time_to_live: Some(ttl),
        })
    }

    fn with_limits(limits: Limits) -> Self {
        let state = MemState {
            // 128 KiB of bits: only a bounded cache pays for them.
            access: limits.max_bytes.map(|_| AccessBits::new()),
            ..MemState::default()
        };
        MemCache {
            state: Arc::new(Mutex::new(state)),
            limits,
        }
    }

    /// Publishes this cache's figures as metrics under the `cache` label `name` (feature
    /// `metrics`; docs/metrics.md), from a thread that stops once every clone is dropped.
    /// Install the application's metrics recorder first: handles are registered here, once.
    #[cfg(all(feature = "metrics", not(loom)))]
    pub fn with_metrics_name(self, name: impl Into<String>) -> Self {
        let state = Arc::downgrade(&self.state);
        // Dropped, its last figures go with it: at most a second's changes unpublished.
        crate::metrics::mem::publish(&name.into(), move || match state.upgrade() {
            Some(state) => crate::metrics::publisher::Read::Alive(stats_of(&state.lock())),
            None => crate::metrics::publisher::Read::Gone,
        });
        self
    }

    /// How many keys are held (expired ones not yet swept included).
    pub fn len(&self) -> usize {
        self.lock().entries.totals().entries as usize
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The totals now, and what eviction and expiry have removed since the cache was created.
    pub fn stats(&self) -> MemCacheStats {
        stats_of(&self.lock())
    }

    fn lock(&self) -> MutexGuard<'_, MemState> {
        self.state.lock()
    }

    /// What an entry counts for against the budget; 0 without one. Refuses what the other
    /// backends refuse, though nothing here is decoded, so that the reference keeps their
    /// contract. Outside the lock: measuring walks the whole value.
    fn measure(&self, key: &str, rows: &CachedRows) -> Result<u64> {
        let Some(max_bytes) = self.limits.max_bytes else {
            codec::check_entry(key, rows)?;
            return Ok(0);
        };
        let bytes = entry_size(key, codec::measure_entry(key, rows)?);
        if bytes > max_bytes {
            // No eviction could make room for it.
            return Err(Error::EntryTooLarge {
                key: key.to_owned(),
                bytes,
                max_bytes,
            });
        }
        Ok(bytes)
    }

    fn is_expired(&self, rows: &CachedRows) -> bool {
        self.limits
            .time_to_live
            .is_some_and(|ttl| budget::has_expired(rows.fetched_at, ttl))
    }
}

impl MemState {
    fn store(&mut self, limits: Limits, key: &str, rows: CachedRows, size: u64) -> Result<()> {
        let fetched_ms = budget::queued_fetched_ms(rows.fetched_at);
        self.entries.insert(key, rows, size, fetched_ms);
        self.upkeep(limits)
    }

    fn remove_prefix(&mut self, limits: Limits, prefix: &str) -> Result<()> {
        self.entries.remove_prefix(prefix);
        self.invalidations.record(prefix);
        self.upkeep(limits)
    }

    /// After every write, as the actor after every write batch: a bounded expiry sweep, then
    /// eviction down to the budget. Neither records an invalidation (see `actor::budget`).
    fn upkeep(&mut self, limits: Limits) -> Result<()> {
        if let Some(ttl) = limits.time_to_live {
            let cutoff = budget::expiry_cutoff_ms(ttl);
            let (expired, _more) = infallible(budget::expire(&mut self.entries, cutoff))?;
            self.expirations += expired;
        }
        if let (Some(max_bytes), Some(access)) = (limits.max_bytes, &self.access) {
            self.evictions += infallible(budget::evict(&mut self.entries, access, max_bytes))?;
        }
        Ok(())
    }
}

/// The budget functions speak the stores' error type; an `EntryMap` never returns one.
fn infallible<T>(result: StoreResult<T>) -> Result<T> {
    result.map_err(|_| Error::Internal {
        what: "the in-memory entry map reported a storage error",
    })
}

fn stats_of(state: &MemState) -> MemCacheStats {
    let totals = state.entries.totals();
    MemCacheStats {
        entries: totals.entries,
        live_bytes: totals.live_bytes,
        evictions: state.evictions,
        expirations: state.expirations,
    }
}

#[async_trait]
impl Cache for MemCache {
    async fn get(&self, key: &str) -> Result<Option<CachedRows>> {
        let found = {
            let state = self.lock();
            let found = (state.entries.get(key))
                .filter(|rows| !self.is_expired(rows))
                .cloned();
            if let (Some(access), Some(_)) = (&state.access, &found) {
                access.touch(key);
            }
            found
        };
        debug!(key, hit = found.is_some(), "mem cache get");
        sync::spend_budget().await;
        Ok(found)
    }

    async fn put(&self, key: &str, rows: CachedRows) -> Result<()> {
        let size = self.measure(key, &rows)?;
        self.lock().store(self.limits, key, rows, size)
    }

    async fn invalidate_prefix(&self, prefix: &str) -> Result<()> {
        debug!(prefix, "mem cache invalidate");
        self.lock().remove_prefix(self.limits, prefix)
    }

    async fn fill_token(&self, _key: &str) -> Result<FillToken> {
        Ok(self.lock().invalidations.token())
    }

    async fn fill(&self, key: &str, rows: CachedRows, token: FillToken) -> Result<FillOutcome> {
        let size = self.measure(key, &rows)?;
        let mut state = self.lock();
        if state.invalidations.is_stale(key, token) {
            debug!(key, "mem cache fill rejected as stale");
            return Ok(FillOutcome::RejectedStale);
        }
        state.store(self.limits, key, rows, size)?;
        Ok(FillOutcome::Stored)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    //! Quick checks of the bounded modes; `tests/model.rs` and `tests/budget.rs` compare them
    //! with `RedbCache`.

    use std::time::SystemTime;

    use super::*;
    use crate::rows::{Record, Rows, Value};

    fn rows_fetched_ago(tag: &str, ago: Duration) -> CachedRows {
        let mut record = Record::new();
        record.insert("tag".into(), Value::Text(tag.to_owned()));
        let mut rows = Rows::new();
        rows.insert("1".into(), record);
        CachedRows::with_fetched_at(rows, SystemTime::now() - ago)
    }

    fn rows(tag: &str) -> CachedRows {
        rows_fetched_ago(tag, Duration::ZERO)
    }

    async fn hit(cache: &MemCache, key: &str) -> bool {
        cache.get(key).await.unwrap().is_some()
    }

    #[tokio::test]
    async fn unbounded_counts_no_bytes_and_never_evicts() {
        let cache = MemCache::new();
        for i in 0..100 {
            cache.put(&format!("k{i}"), rows("v")).await.unwrap();
        }
        let stats = cache.stats();
        assert_eq!(
            (stats.entries, stats.live_bytes, stats.evictions),
            (100, 0, 0)
        );
    }

    #[tokio::test]
    async fn the_budget_counts_the_key_and_the_encoded_rows() {
        let cache = MemCache::with_max_bytes(1 << 20);
        let value = rows("v");
        let encoded = codec::encode(&value).unwrap();
        cache.put("k", value).await.unwrap();
        assert_eq!(
            cache.stats().live_bytes,
            crate::store::entry_size("k", encoded.len())
        );
    }

    #[tokio::test]
    async fn a_read_entry_outlives_an_unread_older_one() {
        let one = crate::store::entry_size("k0", codec::encode(&rows("v")).unwrap().len());
        let cache = MemCache::with_max_bytes(3 * one);
        for key in ["k0", "k1", "k2"] {
            cache.put(key, rows("v")).await.unwrap();
        }
        assert!(hit(&cache, "k0").await);
        cache.put("k3", rows("v")).await.unwrap();
        assert_eq!(cache.stats().evictions, 1);
        assert!(!hit(&cache, "k1").await, "k1 was the oldest unread entry");
        for key in ["k0", "k2", "k3"] {
            assert!(hit(&cache, key).await, "{key}");
        }
    }

    #[tokio::test]
    async fn an_entry_larger_than_the_budget_is_refused_and_changes_nothing() {
        let cache = MemCache::with_max_bytes(8);
        let token = cache.fill_token("k").await.unwrap();
        let put = cache.put("k", rows("v")).await;
        let fill = cache.fill("k", rows("v"), token).await;
        for refused in [put.map(|()| FillOutcome::Stored), fill] {
            match refused {
                Err(Error::EntryTooLarge { key, max_bytes, .. }) => {
                    assert_eq!((key.as_str(), max_bytes), ("k", 8));
                }
                other => panic!("expected EntryTooLarge, got {other:?}"),
            }
        }
        assert!(cache.is_empty());
    }

    /// The contract suite checks an unbounded `MemCache`, which only checks a value; a bounded
    /// one encodes it, and must refuse the same.
    #[tokio::test]
    async fn bounded_or_not_it_refuses_what_the_decoder_would() {
        let unreadable = Value::Tag(3, Box::new(Value::Bytes(vec![0xff; 16])));
        let mut value = rows("v");
        Arc::make_mut(&mut value.rows)["1"].insert("bignum".into(), unreadable);
        for cache in [MemCache::new(), MemCache::with_max_bytes(1 << 20)] {
            match cache.put("k", value.clone()).await {
                Err(Error::ValueRefused { key, reason }) => {
                    assert_eq!(key, "k");
                    assert!(matches!(reason, crate::Refusal::BignumOutOfRange { .. }));
                }
                other => panic!("expected ValueRefused, got {other:?}"),
            }
            assert!(cache.is_empty());
        }
    }

    #[tokio::test]
    async fn an_expired_entry_is_a_miss_and_the_next_write_sweeps_it() {
        let hour = Duration::from_secs(3600);
        let cache = MemCache::with_time_to_live(hour);
        // Held but not swept, like an entry that expired while nothing was written.
        let old = rows_fetched_ago("old", 2 * hour);
        let fetched_ms = codec::epoch_ms(old.fetched_at);
        cache.lock().entries.insert("old", old, 0, fetched_ms);
        assert_eq!(cache.len(), 1);
        assert!(!hit(&cache, "old").await, "expired, swept or not");

        cache.put("new", rows("new")).await.unwrap();
        let stats = cache.stats();
        assert_eq!((stats.entries, stats.expirations), (1, 1), "{stats:?}");
        assert!(hit(&cache, "new").await);
        // Rows that arrive expired are a miss at once, but queue behind `new`: the sweep walks
        // the insertion order and stops at the first fresh entry. They go once it has gone.
        cache
            .put("late", rows_fetched_ago("late", 2 * hour))
            .await
            .unwrap();
        assert!(!hit(&cache, "late").await, "expired on arrival");
        assert_eq!((cache.stats().expirations, cache.len()), (1, 2));
        cache.invalidate_prefix("new").await.unwrap();
        assert_eq!((cache.stats().expirations, cache.len()), (2, 0));
    }
}
