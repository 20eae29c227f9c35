//! Budgets and expiry: the totals a `RedbCache` keeps (`stats()`), and how they survive a
//! reopen without a scan.

mod common;

use common::{tag, value, within};
use vlive::{Cache, RedbCache};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_totals_follow_every_write_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let cache = RedbCache::open(dir.path()).unwrap();
    assert_eq!((cache.stats().entries, cache.stats().live_bytes), (0, 0));
    for key in ["a", "a/1", "a/2", "b/1"] {
        cache.put(key, value(key)).await.unwrap();
    }
    let four = cache.stats();
    assert_eq!(four.entries, 4);
    assert!(four.live_bytes > 0 && four.file_bytes > 0, "{four:?}");
    // An overwrite with a value of the same size changes nothing.
    cache.put("a/1", value("a/9")).await.unwrap();
    assert_eq!(cache.stats().live_bytes, four.live_bytes);
    cache.invalidate_prefix("a/").await.unwrap();
    assert_eq!(cache.stats().entries, 2);
    let two = cache.stats().live_bytes;
    assert!(two < four.live_bytes);
    within("close", cache.close()).await.unwrap();

    let cache = RedbCache::open(dir.path()).unwrap();
    assert_eq!((cache.stats().entries, cache.stats().live_bytes), (2, two));
    assert_eq!(tag(&cache, "b/1").await.as_deref(), Some("b/1"));
    cache.invalidate_prefix("").await.unwrap();
    assert_eq!((cache.stats().entries, cache.stats().live_bytes), (0, 0));
    cache.put("c", value("c")).await.unwrap();
    assert_eq!(cache.stats().entries, 1);
    within("close", cache.close()).await.unwrap();
}

/// The bytes one entry `k0` … `k9` (tag = key) counts for: measured, not assumed, since it
/// includes the CBOR encoding.
async fn entry_bytes(folder: &std::path::Path) -> u64 {
    let cache = RedbCache::open(folder).unwrap();
    cache.put("k0", value("k0")).await.unwrap();
    let bytes = cache.stats().live_bytes;
    cache.invalidate_prefix("").await.unwrap();
    within("close", cache.close()).await.unwrap();
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_cache_evicts_the_oldest_unread_entry_first() {
    let dir = tempfile::tempdir().unwrap();
    let one = entry_bytes(dir.path()).await;
    let cache = RedbCache::builder()
        .max_bytes(3 * one)
        .open(dir.path())
        .unwrap();
    for key in ["k0", "k1", "k2"] {
        cache.put(key, value(key)).await.unwrap();
    }
    assert_eq!(cache.stats().evictions, 0);
    // A read (here beside the actor) earns k0 a second chance.
    assert_eq!(tag(&cache, "k0").await.as_deref(), Some("k0"));
    cache.put("k3", value("k3")).await.unwrap();
    let stats = cache.stats();
    assert_eq!((stats.evictions, stats.entries), (1, 3));
    assert!(stats.live_bytes <= 3 * one, "{stats:?}");
    assert_eq!(
        tag(&cache, "k1").await,
        None,
        "k1 was the oldest unread entry"
    );
    for key in ["k0", "k2", "k3"] {
        assert_eq!(tag(&cache, key).await.as_deref(), Some(key));
    }
    // The order survives a reopen (every access bit starts clear): k2 is oldest now.
    within("close", cache.close()).await.unwrap();
    let cache = RedbCache::builder()
        .max_bytes(3 * one)
        .open(dir.path())
        .unwrap();
    cache.put("k4", value("k4")).await.unwrap();
    assert_eq!(tag(&cache, "k2").await, None);
    assert_eq!(tag(&cache, "k0").await.as_deref(), Some("k0"));
    within("close", cache.close()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_larger_than_the_budget_is_refused_before_the_actor() {
    let dir = tempfile::tempdir().unwrap();
    let one = entry_bytes(dir.path()).await;
    let cache = RedbCache::builder()
        .max_bytes(one - 1)
        .open(dir.path())
        .unwrap();
    match cache.put("k0", value("k0")).await {
        Err(vlive::Error::EntryTooLarge {
            key,
            bytes,
            max_bytes,
        }) => assert_eq!((key.as_str(), bytes, max_bytes), ("k0", one, one - 1)),
        other => panic!("expected EntryTooLarge, got {other:?}"),
    }
    let token = cache.fill_token("k0").await.unwrap();
    assert!(matches!(
        cache.fill("k0", value("k0"), token).await,
        Err(vlive::Error::EntryTooLarge { .. })
    ));
    assert_eq!(
        cache.stats().batches,
        1,
        "only the fill token reached the actor"
    );
    within("close", cache.close()).await.unwrap();
}

/// Rows fetched `ago` before now.
fn fetched_ago(tag: &str, ago: std::time::Duration) -> vlive::CachedRows {
    vlive::CachedRows::with_fetched_at(common::rows(tag), std::time::SystemTime::now() - ago)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_entry_is_a_miss_and_the_next_batch_sweeps_it() {
    use std::time::Duration;
    let hour = Duration::from_secs(3600);
    let dir = tempfile::tempdir().unwrap();
    let cache = RedbCache::builder()
        .time_to_live(hour)
        .open(dir.path())
        .unwrap();
    cache
        .put("old", fetched_ago("old", 2 * hour))
        .await
        .unwrap();
    cache
        .put("new", fetched_ago("new", Duration::ZERO))
        .await
        .unwrap();
    // The batch that stored `old` expired it too: every batch sweeps after its commands.
    let stats = cache.stats();
    assert_eq!((stats.expirations, stats.entries), (1, 1), "{stats:?}");
    assert_eq!(tag(&cache, "old").await, None);
    assert_eq!(tag(&cache, "new").await.as_deref(), Some("new"));
    within("close", cache.close()).await.unwrap();

    // The TTL applies at get time too, before any sweep: store an old entry without a TTL, then
    // reopen with one (its first sweep comes a second after opening) and read it beside the
    // actor.
    let cache = RedbCache::open(dir.path()).unwrap();
    cache
        .put("old", fetched_ago("old", 2 * hour))
        .await
        .unwrap();
    assert_eq!(tag(&cache, "old").await.as_deref(), Some("old"));
    within("close", cache.close()).await.unwrap();
    let cache = RedbCache::builder()
        .time_to_live(hour)
        .open(dir.path())
        .unwrap();
    assert_eq!(tag(&cache, "old").await, None, "expired, swept or not");
    assert_eq!(cache.stats().snapshot_gets, 1);
    within("close", cache.close()).await.unwrap();
}
