//! Budgets and expiry: the totals a `RedbCache` keeps (`stats()`), how they survive a reopen
//! without a scan, and that `MemCache` with the same budget evicts the same keys.

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

/// Keys with shared prefixes, so that invalidations cut across the eviction queue.
const SAME_KEYS: &[&str] = &["a", "a/1", "a/2", "ab", "b/1", "b/2", "c", "c/x/y"];
const SAME_PREFIXES: &[&str] = &["", "a", "a/", "b/", "c/x", "zz"];

/// One step of the same-eviction comparison.
#[derive(Clone, Debug)]
enum Step {
    /// A key and a tag length: entries differ in size, and the longest exceed the budget alone.
    Put(usize, usize),
    Get(usize),
    Invalidate(usize),
}

/// The budget of the comparison: some two to four entries (each is charged about 130 bytes of
/// header, clock row and leaf space plus 1.75 × its tag), and the longest tags exceed it alone.
const SAME_MAX_BYTES: u64 = 1000;

/// Runs `steps` on a `MemCache` and a `RedbCache` with the same budget and checks, after every
/// step, that they answered alike and hold the same totals, and at the end that they hold the
/// same keys: the same puts and gets evict the same keys from both. Returns the evictions.
async fn same_evictions(steps: &[Step], folder: &std::path::Path) -> u64 {
    use vlive::MemCache;
    let mem = MemCache::with_max_bytes(SAME_MAX_BYTES);
    // The hot tier off: what is compared is the store's eviction. With it on, a key the store
    // evicted may still be answered from memory (its latest value), which MemCache does not
    // model; `tests/hot_tier.rs` covers that.
    let redb = RedbCache::builder()
        .max_bytes(SAME_MAX_BYTES)
        .hot_bytes(0)
        .open(folder)
        .unwrap();
    for (i, step) in steps.iter().enumerate() {
        match *step {
            Step::Put(k, len) => {
                let rows = value(&"x".repeat(len));
                let on_mem = mem.put(SAME_KEYS[k], rows.clone()).await;
                let on_redb = redb.put(SAME_KEYS[k], rows).await;
                // Both succeed, or both refuse the same entry as too large.
                assert_eq!(
                    format!("{on_mem:?}"),
                    format!("{on_redb:?}"),
                    "step {i} {step:?}"
                );
            }
            Step::Get(k) => {
                // The gets set the same access bits on both: part of what is compared.
                let on_mem = tag(&mem, SAME_KEYS[k]).await;
                let on_redb = tag(&redb, SAME_KEYS[k]).await;
                assert_eq!(on_mem, on_redb, "step {i} {step:?}");
            }
            Step::Invalidate(p) => {
                mem.invalidate_prefix(SAME_PREFIXES[p]).await.unwrap();
                redb.invalidate_prefix(SAME_PREFIXES[p]).await.unwrap();
            }
        }
        let (m, r) = (mem.stats(), redb.stats());
        assert_eq!(
            (m.entries, m.live_bytes, m.evictions),
            (r.entries, r.live_bytes, r.evictions),
            "totals after step {i} {step:?}"
        );
        assert!(m.live_bytes <= SAME_MAX_BYTES);
    }
    // Only now look at every key: reading them all earlier would give each a second chance.
    for key in SAME_KEYS {
        assert_eq!(
            tag(&mem, key).await,
            tag(&redb, key).await,
            "{key:?} at the end"
        );
    }
    within("close", redb.close()).await.unwrap();
    mem.stats().evictions
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        6 => (0..SAME_KEYS.len(), 0..600usize).prop_map(|(k, len)| Step::Put(k, len)),
        4 => (0..SAME_KEYS.len()).prop_map(Step::Get),
        1 => (0..SAME_PREFIXES.len()).prop_map(Step::Invalidate),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]

    #[test]
    fn mem_cache_and_redb_cache_evict_the_same_keys(
        steps in proptest::collection::vec(step(), 1..80)
    ) {
        let dir = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(same_evictions(&steps, dir.path()));
    }
}

/// One long fixed sequence that must evict, so the comparison above cannot pass by evicting
/// nothing on both sides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_sequence_evicts_the_same_keys_from_both() {
    // A fixed xorshift: the same sequence on every run.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move |below: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % below as u64) as usize
    };
    let steps: Vec<Step> = (0..400)
        .map(|_| match next(10) {
            0..=5 => Step::Put(next(SAME_KEYS.len()), next(40)),
            6..=8 => Step::Get(next(SAME_KEYS.len())),
            _ => Step::Invalidate(next(SAME_PREFIXES.len())),
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let evictions = same_evictions(&steps, dir.path()).await;
    assert!(
        evictions > 20,
        "only {evictions} evictions: the budget is too loose"
    );
}
