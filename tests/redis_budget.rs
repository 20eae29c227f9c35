//! RedisCache's own budget (issue 19): `max_bytes` and `time_to_live`, kept by vlive's scripts
//! on a real server, whatever its eviction policy. Checked: the books (`stats().bytes`) match
//! what the namespace holds through overwrites, sweeps and flushes; churn stays within the
//! budget (and the server's memory with it) where the same churn without one runs the server
//! out of memory; eviction goes oldest-fetched first and in bounded steps; expired entries are
//! misses and are removed from Redis even when nothing is written.
#![cfg(feature = "redis")]

mod common;
#[path = "common/redis_server.rs"]
mod redis_server;

use std::time::{Duration, SystemTime};

use common::{rows, tag, value, within};
use redis_server::RedisServer;
use vlive::{Cache, CachedRows, Error, RedisCache, RedisFaultKind};

/// A value of about `size` bytes, fetched at `fetched`.
fn sized(tag: &str, size: usize, fetched: SystemTime) -> CachedRows {
    let mut rows = rows(tag);
    let record = rows.get_mut("1").unwrap();
    record.insert("pad".into(), vlive::Value::Text("x".repeat(size)));
    CachedRows::with_fetched_at(rows, fetched)
}

/// Key and value bytes of every entry of namespace `ns`, counted on the server.
async fn counted_bytes(server: &RedisServer, ns: &str) -> u64 {
    let client = redis::Client::open(server.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let all: Vec<(Vec<u8>, Vec<u8>)> = redis::cmd("HGETALL")
        .arg(format!("{{vlive:{ns}}}:v"))
        .query_async(&mut connection)
        .await
        .unwrap();
    all.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum()
}

/// `used_memory` of the server, in bytes.
async fn used_memory(server: &RedisServer) -> u64 {
    let info = match server.admin(&["INFO", "memory"]).await.unwrap() {
        redis::Value::BulkString(bytes) => String::from_utf8(bytes).unwrap(),
        other => panic!("INFO: {other:?}"),
    };
    info.lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_books_match_what_the_namespace_holds() {
    let server = RedisServer::start();
    let cache = RedisCache::builder(&server.url(), "ns")
        .max_bytes(1 << 30)
        .connect()
        .await
        .unwrap();
    let now = SystemTime::now();
    let check = |what: &'static str| {
        let (cache, server) = (cache.clone(), &server);
        async move {
            let stats = cache.stats().await.unwrap();
            assert_eq!(stats.bytes, counted_bytes(server, "ns").await, "{what}");
            stats
        }
    };
    for i in 0..50 {
        cache
            .put(&format!("a/{i}"), sized("a", 100 + i * 7, now))
            .await
            .unwrap();
    }
    assert_eq!(check("puts").await.entries, 50);
    for i in 0..50 {
        // Overwrites, larger and smaller.
        let size = if i % 2 == 0 { 10 } else { 900 };
        cache
            .put(&format!("a/{i}"), sized("b", size, now))
            .await
            .unwrap();
    }
    check("overwrites").await;
    let token = cache.fill_token("b/1").await.unwrap();
    cache
        .fill("b/1", sized("f", 300, now), token)
        .await
        .unwrap();
    check("fill").await;
    cache.invalidate_prefix("a/1").await.unwrap();
    assert_eq!(check("a prefix").await.entries, 50 - 11 + 1);
    cache.invalidate_prefix("").await.unwrap();
    let stats = check("everything").await;
    assert_eq!((stats.entries, stats.bytes), (0, 0));
    assert_eq!((stats.evictions, stats.expirations), (0, 0));
}

/// Puts `n` values of about 3 KB under fresh keys, each fetched 1 ms after the last; returns
/// the first error.
async fn churn(cache: &RedisCache, n: usize) -> Result<(), Error> {
    let start = SystemTime::now() - Duration::from_secs(3600);
    for i in 0..n {
        let fetched = start + Duration::from_millis(i as u64);
        cache
            .put(&format!("k/{i:06}"), sized("c", 3000, fetched))
            .await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_stays_within_the_budget_under_noeviction_and_volatile_lru() {
    const BUDGET: u64 = 1 << 20;
    for policy in ["noeviction", "volatile-lru"] {
        let server = RedisServer::start_with(&["--maxmemory", "8mb", "--maxmemory-policy", policy]);
        // Without a budget, 12 MB of puts run an 8 MB server out of memory.
        let unbounded = RedisCache::connect(&server.url(), "free").await.unwrap();
        match within("churn", churn(&unbounded, 4000)).await {
            Err(Error::Redis(fault)) => assert!(
                matches!(fault.kind, RedisFaultKind::OutOfMemory),
                "{policy}: {fault}"
            ),
            other => panic!("{policy}: an unbounded namespace filled 8 MB: {other:?}"),
        }
        unbounded.invalidate_prefix("").await.unwrap();
        // UNLINK frees in the background.
        within("the flushed namespace freed", async {
            while used_memory(&server).await > 4 << 20 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        let baseline = used_memory(&server).await;

        let cache = RedisCache::builder(&server.url(), "ns")
            .max_bytes(BUDGET)
            .connect()
            .await
            .unwrap();
        let mut peak = 0;
        for round in 0..8 {
            let start = round * 500;
            for i in start..start + 500 {
                let fetched =
                    SystemTime::now() - Duration::from_secs(3600) + Duration::from_millis(i as u64);
                cache
                    .put(&format!("k/{i:06}"), sized("c", 3000, fetched))
                    .await
                    .unwrap_or_else(|e| panic!("{policy}: put {i}: {e}"));
            }
            let stats = cache.stats().await.unwrap();
            assert!(stats.bytes <= BUDGET, "{policy}: {stats:?}");
            peak = peak.max(used_memory(&server).await);
        }
        let stats = cache.stats().await.unwrap();
        assert!(stats.evictions >= 4000 - 400, "{policy}: {stats:?}");
        assert_eq!(stats.bytes, counted_bytes(&server, "ns").await);
        // Redis' overhead per entry (hash fields, two sorted sets, the written-epoch hash, the
        // log) comes on top of the budget; well under 2x for 3 KB values.
        assert!(
            peak - baseline < 2 * BUDGET,
            "{policy}: the server grew by {} bytes for a budget of {BUDGET}",
            peak - baseline
        );
        // Oldest fetched went first; the newest are still there.
        assert_eq!(tag(&cache, "k/000000").await, None);
        assert_eq!(tag(&cache, "k/003999").await.as_deref(), Some("c"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lowered_budget_is_reached_in_bounded_steps() {
    let server = RedisServer::start();
    let roomy = RedisCache::connect(&server.url(), "ns").await.unwrap();
    within("churn", churn(&roomy, 1000)).await.unwrap();
    let tight = RedisCache::builder(&server.url(), "ns")
        .max_bytes(100_000)
        .connect()
        .await
        .unwrap();
    let mut steps = 0;
    loop {
        let before = tight.stats().await.unwrap().evictions;
        tight
            .put(&format!("new/{steps}"), value("n"))
            .await
            .unwrap();
        let stats = tight.stats().await.unwrap();
        assert!(
            stats.evictions - before <= 128,
            "one put evicted {} entries",
            stats.evictions - before
        );
        steps += 1;
        if stats.bytes <= 100_000 {
            break;
        }
        assert!(
            steps < 20,
            "still over budget after {steps} puts: {stats:?}"
        );
    }
    assert!(
        steps >= 3,
        "1000 entries over budget went in {steps} put(s)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_larger_than_the_budget_is_refused_and_bad_settings_too() {
    let server = RedisServer::start();
    let cache = RedisCache::builder(&server.url(), "ns")
        .max_bytes(1000)
        .connect()
        .await
        .unwrap();
    cache.put("small", value("s")).await.unwrap();
    let refused = cache.put("big", sized("b", 2000, SystemTime::now())).await;
    assert!(
        matches!(&refused, Err(Error::EntryTooLarge { key, max_bytes: 1000, .. }) if key == "big"),
        "{refused:?}"
    );
    assert_eq!(
        tag(&cache, "small").await.as_deref(),
        Some("s"),
        "nothing evicted for it"
    );
    assert_eq!(cache.stats().await.unwrap().evictions, 0);

    let zero_budget = RedisCache::builder(&server.url(), "ns")
        .max_bytes(0)
        .connect()
        .await;
    assert!(matches!(zero_budget, Err(Error::InvalidConfig { .. })));
    let zero_ttl = RedisCache::builder(&server.url(), "ns")
        .time_to_live(Duration::ZERO)
        .connect()
        .await;
    assert!(matches!(zero_ttl, Err(Error::InvalidConfig { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_entries_are_misses_and_are_removed_without_a_write() {
    let server = RedisServer::start();
    let cache = RedisCache::builder(&server.url(), "ns")
        .time_to_live(Duration::from_secs(60))
        .connect()
        .await
        .unwrap();
    // Written by a client without a time to live: no write of the TTL client removes them.
    let keeper = RedisCache::connect(&server.url(), "ns").await.unwrap();
    let now = SystemTime::now();
    let old = now - Duration::from_secs(120);
    for i in 0..200 {
        keeper
            .put(&format!("old/{i}"), sized("o", 10, old))
            .await
            .unwrap();
    }
    keeper.put("fresh", sized("f", 10, now)).await.unwrap();
    assert_eq!(tag(&keeper, "old/199").await.as_deref(), Some("o"));
    assert_eq!(tag(&cache, "fresh").await.as_deref(), Some("f"));
    assert_eq!(cache.stats().await.unwrap().entries, 201);
    // A get that meets an expired entry misses, and starts their removal.
    assert_eq!(
        tag(&cache, "old/199").await,
        None,
        "an expired entry was served"
    );
    within("expired entries removed", async {
        while cache.stats().await.unwrap().entries > 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let stats = cache.stats().await.unwrap();
    assert_eq!(stats.expirations, 200, "{stats:?}");
    assert_eq!(stats.bytes, counted_bytes(&server, "ns").await);
    assert_eq!(tag(&cache, "fresh").await.as_deref(), Some("f"));
    // A put of an entry fetched long ago stores it and removes it in the same call.
    cache.put("late", sized("l", 10, old)).await.unwrap();
    assert_eq!(cache.stats().await.unwrap().entries, 1);

    // A client without a time to live still sees "fresh"; one with a shorter one does not.
    let strict = RedisCache::builder(&server.url(), "ns")
        .time_to_live(Duration::from_millis(1))
        .connect()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(tag(&strict, "fresh").await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sharded_namespace_stays_within_the_whole_budget() {
    const BUDGET: u64 = 200_000;
    let server = RedisServer::start();
    let cache = RedisCache::builder(&server.url(), "ns")
        .shards(4)
        .max_bytes(BUDGET)
        .connect()
        .await
        .unwrap();
    within("churn", churn(&cache, 600)).await.unwrap();
    let stats = cache.stats().await.unwrap();
    assert!(stats.bytes <= BUDGET, "{stats:?}");
    assert!(
        stats.bytes > BUDGET / 2,
        "the shards kept far less than the budget: {stats:?}"
    );
    assert!(stats.evictions > 0);
    // An entry over one shard's share (50 KB) is refused, though under the whole budget.
    let refused = cache
        .put("big", sized("b", 60_000, SystemTime::now()))
        .await;
    assert!(
        matches!(
            refused,
            Err(Error::EntryTooLarge {
                max_bytes: 50_000,
                ..
            })
        ),
        "{refused:?}"
    );
}
