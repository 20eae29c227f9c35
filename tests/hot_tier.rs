//! The hot tier of decoded entries in front of `RedbCache` (`docs/DESIGN.md` §3.1): a repeated
//! get is answered from memory, sharing the decoded rows, and no write from any handle leaves
//! an older value there. The races are modelled under loom (`hot_tier_never_keeps_a_replaced_value`).

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::{rows, tag, value};
use vlive::{Cache, CachedRows, RedbCache};

#[tokio::test]
async fn a_repeated_get_is_a_hot_hit_that_shares_the_decoded_rows() {
    let dir = tempfile::tempdir().unwrap();
    let cache = RedbCache::open(dir.path()).unwrap();
    cache.put("clients/1", value("a")).await.unwrap();
    let first = cache.get("clients/1").await.unwrap().unwrap();
    let second = cache.get("clients/1").await.unwrap().unwrap();
    let stats = cache.stats();
    assert_eq!((stats.snapshot_gets, stats.hot_hits), (1, 1));
    assert_eq!((stats.hits, stats.hot_entries), (2, 1));
    assert!(stats.hot_bytes > "clients/1".len() as u64, "{stats:?}");
    assert!(
        Arc::ptr_eq(&first.rows, &second.rows),
        "a hit copies a pointer, not the rows"
    );
    assert_eq!(second, value("a"));
    cache.close().await.unwrap();
}

#[tokio::test]
async fn a_write_from_any_handle_replaces_or_removes_the_hot_entry() {
    let dir = tempfile::tempdir().unwrap();
    let a = RedbCache::open(dir.path()).unwrap();
    let b = a.clone();
    a.put("clients/1", value("old")).await.unwrap();
    a.put("clinic/1", value("other")).await.unwrap();
    for _ in 0..2 {
        assert_eq!(tag(&a, "clients/1").await.as_deref(), Some("old"));
        assert_eq!(tag(&a, "clinic/1").await.as_deref(), Some("other"));
    }
    assert_eq!(a.stats().hot_entries, 2);

    b.put("clients/1", value("new")).await.unwrap();
    assert_eq!(tag(&a, "clients/1").await.as_deref(), Some("new"));
    assert_eq!(
        tag(&a, "clients/1").await.as_deref(),
        Some("new"),
        "now hot"
    );

    b.invalidate_prefix("cli").await.unwrap();
    assert_eq!(
        a.stats().hot_entries,
        0,
        "the invalidation emptied the tier"
    );
    assert_eq!(tag(&a, "clients/1").await, None);
    assert_eq!(tag(&a, "clinic/1").await, None);
    a.close().await.unwrap();
}

#[tokio::test]
async fn hot_bytes_zero_turns_the_tier_off() {
    let dir = tempfile::tempdir().unwrap();
    let cache = RedbCache::builder().hot_bytes(0).open(dir.path()).unwrap();
    cache.put("k", value("a")).await.unwrap();
    for _ in 0..3 {
        assert_eq!(tag(&cache, "k").await.as_deref(), Some("a"));
    }
    let stats = cache.stats();
    assert_eq!(
        (stats.hot_hits, stats.hot_entries, stats.snapshot_gets),
        (0, 0, 3)
    );
    cache.close().await.unwrap();
}

#[tokio::test]
async fn the_tier_stays_within_its_budget() {
    let dir = tempfile::tempdir().unwrap();
    let cache = RedbCache::open(dir.path()).unwrap();
    cache.put("k0", value("a")).await.unwrap();
    tag(&cache, "k0").await;
    let one = cache.stats().hot_bytes;
    cache.close().await.unwrap();

    // Room for two entries of this size, not three.
    let budget = 2 * one + one / 2;
    let cache = RedbCache::builder()
        .hot_bytes(budget)
        .open(dir.path())
        .unwrap();
    for key in ["k0", "k1", "k2"] {
        cache.put(key, value("a")).await.unwrap();
        // Twice: a full tier takes a key in over an older one on its second miss.
        tag(&cache, key).await;
        tag(&cache, key).await;
    }
    let stats = cache.stats();
    assert_eq!(stats.hot_entries, 2, "{stats:?}");
    assert!(stats.hot_bytes <= budget, "{stats:?}");
    // The oldest went first: k0 is read from the store again, all three are still there.
    let before = cache.stats();
    assert_eq!(tag(&cache, "k0").await.as_deref(), Some("a"));
    let after = cache.stats();
    assert_eq!(
        (after.snapshot_gets, after.hot_hits),
        (before.snapshot_gets + 1, before.hot_hits),
        "k0 was not read from the store"
    );
    for key in ["k0", "k1", "k2"] {
        assert_eq!(tag(&cache, key).await.as_deref(), Some("a"));
    }
    cache.close().await.unwrap();
}

/// The store may evict a key the tier still holds: the tier then answers with the key's latest
/// value (any write of it would have removed the entry), never an older one.
#[tokio::test]
async fn the_tier_may_keep_a_key_the_store_evicted_at_its_latest_value() {
    let dir = tempfile::tempdir().unwrap();
    let cache = RedbCache::open(dir.path()).unwrap();
    cache.put("k1", value("a")).await.unwrap();
    let one = cache.stats().live_bytes;
    cache.invalidate_prefix("").await.unwrap();
    cache.close().await.unwrap();

    let cache = RedbCache::builder()
        .max_bytes(one + one / 2)
        .open(dir.path())
        .unwrap();
    cache.put("k1", value("a")).await.unwrap();
    assert_eq!(tag(&cache, "k1").await.as_deref(), Some("a"), "now hot");
    cache.put("k2", value("b")).await.unwrap();
    assert_eq!(cache.stats().evictions, 1, "k1 left the store");
    assert_eq!(tag(&cache, "k1").await.as_deref(), Some("a"));
    assert_eq!(cache.stats().hot_hits, 1);
    cache.close().await.unwrap();
}

/// The time to live applies to hot entries too: an expired one is a miss, and leaves the tier.
#[tokio::test]
async fn an_expired_hot_entry_is_a_miss_and_leaves_the_tier() {
    let dir = tempfile::tempdir().unwrap();
    let ttl = Duration::from_millis(200);
    let cache = RedbCache::builder()
        .time_to_live(ttl)
        .open(dir.path())
        .unwrap();
    let fetched_at = SystemTime::now();
    let fresh = CachedRows::with_fetched_at(rows("a"), fetched_at);
    cache.put("k", fresh).await.unwrap();
    // Usually a hit kept hot; on a slow machine the entry may have expired already, and the
    // assertions below hold all the same.
    tag(&cache, "k").await;
    while fetched_at.elapsed().unwrap_or_default() <= ttl {
        tokio::time::sleep(ttl / 4).await;
    }
    assert_eq!(tag(&cache, "k").await, None);
    assert_eq!(cache.stats().hot_entries, 0);
    cache.close().await.unwrap();
}
