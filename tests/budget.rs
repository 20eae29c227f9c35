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
