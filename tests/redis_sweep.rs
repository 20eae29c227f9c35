//! Prefix invalidation on Redis in bounded steps (issue 19): one call marks the prefix, and
//! sweeps delete its entries a chunk (100 index keys) at a time. Checked against a real
//! server: every entry under the prefix goes and nothing else; entries written after the mark
//! survive; a mark a crashed client left hides its entries and is swept by the next client;
//! and, under concurrent puts, gets and invalidations, no put is lost that no invalidation
//! could have covered. What the sweep costs other clients is measured in the redis bench.
#![cfg(feature = "redis")]

mod common;
#[path = "common/redis_server.rs"]
mod redis_server;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::{tag, value, within};
use redis_server::{RedisServer, int};
use vlive::{Cache, RedisCache};

/// HLEN / ZCARD of one of the namespace's keys (layout: `src/redis_cache/keyspace.rs`).
async fn count(server: &RedisServer, command: &str, namespace: &str, suffix: &str) -> i64 {
    let name = format!("{{vlive:{namespace}}}:{suffix}");
    int(server.admin(&[command, &name]).await.unwrap())
}

/// Entries, index keys, write epochs and marks of `namespace`.
async fn layout(server: &RedisServer, namespace: &str) -> [i64; 4] {
    [
        count(server, "HLEN", namespace, "v").await,
        count(server, "ZCARD", namespace, "i").await,
        count(server, "HLEN", namespace, "w").await,
        count(server, "ZCARD", namespace, "s").await,
    ]
}

/// Puts `n` keys `prefix{i}` with a pipeline of concurrent calls.
async fn put_many(cache: &RedisCache, prefix: &str, n: usize) {
    let tasks: Vec<_> = (0..16)
        .map(|task| {
            let (cache, prefix) = (cache.clone(), prefix.to_owned());
            tokio::spawn(async move {
                for i in (task..n).step_by(16) {
                    cache
                        .put(&format!("{prefix}{i:05}"), value("v"))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        within("puts", task).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidation_of_many_chunks_removes_exactly_its_prefix() {
    let server = RedisServer::start();
    let cache = RedisCache::connect(&server.url(), "ns").await.unwrap();
    put_many(&cache, "a/", 2500).await;
    put_many(&cache, "a", 10).await; // "a00000".. : under "a", not under "a/"
    put_many(&cache, "b/", 100).await;
    within("invalidate", cache.invalidate_prefix("a/"))
        .await
        .unwrap();
    assert_eq!(layout(&server, "ns").await, [110, 110, 110, 0]);
    assert_eq!(tag(&cache, "a/00000").await, None);
    assert_eq!(tag(&cache, "a/02499").await, None);
    assert_eq!(tag(&cache, "a00001").await.as_deref(), Some("v"));
    assert_eq!(tag(&cache, "b/00099").await.as_deref(), Some("v"));
}

/// Plays a client that marked a prefix and died before sweeping: what its INVALIDATE script
/// leaves (a new epoch, and the prefix marked at it). The marked entries read as misses at
/// once; an entry put after the mark is served; the next client to connect sweeps the rest
/// and keeps that entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mark_left_by_a_dead_client_hides_its_entries_until_the_next_client_sweeps() {
    let server = RedisServer::start();
    let cache = RedisCache::connect(&server.url(), "ns").await.unwrap();
    put_many(&cache, "p/", 1500).await;
    put_many(&cache, "q/", 5).await;
    let epoch = int(server
        .admin(&["HINCRBY", "{vlive:ns}:m", "epoch", "1"])
        .await
        .unwrap());
    server
        .admin(&["ZADD", "{vlive:ns}:s", &epoch.to_string(), "p/"])
        .await
        .unwrap();

    assert_eq!(
        tag(&cache, "p/00007").await,
        None,
        "a marked entry was served"
    );
    assert_eq!(tag(&cache, "q/00001").await.as_deref(), Some("v"));
    cache.put("p/00007", value("after the mark")).await.unwrap();
    cache.put("p/new", value("new")).await.unwrap();
    assert_eq!(
        tag(&cache, "p/00007").await.as_deref(),
        Some("after the mark")
    );
    assert_eq!(layout(&server, "ns").await, [1506, 1506, 1506, 1]);

    let next = within("connect", RedisCache::connect(&server.url(), "ns"))
        .await
        .unwrap();
    assert_eq!(
        layout(&server, "ns").await,
        [7, 7, 7, 0],
        "not swept, or swept too much"
    );
    assert_eq!(
        tag(&next, "p/00007").await.as_deref(),
        Some("after the mark")
    );
    assert_eq!(tag(&next, "p/new").await.as_deref(), Some("new"));
    assert_eq!(tag(&next, "p/00008").await, None);
}

/// Concurrent puts (each followed by a get of its key), gets and invalidations over a prefix
/// with more than one chunk of entries. A put whose get found nothing must have had an
/// invalidation in flight at some moment between the put's start and the get's end; the
/// invalidator counts its starts and ends, so the check is exact, not statistical. At the end
/// the layout is consistent: no index key without its entry, no mark left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_puts_survive_every_sweep_that_started_before_them() {
    let server = RedisServer::start();
    let cache = RedisCache::connect(&server.url(), "ns").await.unwrap();
    put_many(&cache, "p/old/", 3000).await;
    // Bumped on every start and every end of an invalidation: odd while one is in flight.
    let phase = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let invalidator = {
        let (cache, phase, stop) = (cache.clone(), phase.clone(), stop.clone());
        tokio::spawn(async move {
            let mut rounds = 0;
            while !stop.load(Ordering::SeqCst) || rounds < 3 {
                phase.fetch_add(1, Ordering::SeqCst);
                cache.invalidate_prefix("p/").await.unwrap();
                phase.fetch_add(1, Ordering::SeqCst);
                rounds += 1;
                // Refill, so that every round has chunks to sweep.
                for i in 0..1500 {
                    cache
                        .put(&format!("p/old/{i:05}"), value("old"))
                        .await
                        .unwrap();
                }
            }
            rounds
        })
    };
    let (mut checked, mut missed) = (0, 0);
    for i in 0..3000 {
        let key = format!("p/new/{i:05}");
        let before = phase.load(Ordering::SeqCst);
        cache.put(&key, value("new")).await.unwrap();
        let found = tag(&cache, &key).await;
        let after = phase.load(Ordering::SeqCst);
        if before % 2 == 0 && before == after {
            checked += 1;
            assert_eq!(
                found.as_deref(),
                Some("new"),
                "{key}: lost with no invalidation in flight"
            );
        } else if found.is_none() {
            missed += 1;
        }
    }
    stop.store(true, Ordering::SeqCst);
    let rounds = within("invalidator", invalidator).await.unwrap();
    assert!(
        rounds >= 3 && checked > 0,
        "rounds {rounds}, checked {checked}"
    );
    let [entries, index, written, marks] = layout(&server, "ns").await;
    assert_eq!(
        (entries, marks),
        (index, 0),
        "index and entries disagree, or a mark is left"
    );
    assert_eq!(written, entries);
    eprintln!("{rounds} invalidations; {checked} puts checked, {missed} covered by one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_prefix_invalidated_over_and_over_never_traps_a_sweep() {
    // Every invalidation of a prefix restarts its sweep from the first key. A sweeper that
    // waited for the prefix's mark to go would chase it for as long as other clients keep
    // invalidating the prefix; each sweep must serve its own mark only.
    let server = RedisServer::start();
    let cache = RedisCache::connect(&server.url(), "ns").await.unwrap();
    put_many(&cache, "hot/", 5000).await;
    // Keys rewritten all the time, as a hot prefix has: each carries an epoch newer than any
    // mark below, so every sweep walks all 5000 of them (5 chunks) and keeps them.
    let mut rewritten = redis::cmd("HSET");
    rewritten.arg("{vlive:ns}:w");
    for i in 0..5000 {
        rewritten.arg(format!("hot/{i:05}")).arg(1u64 << 40);
    }
    let client = redis::Client::open(server.url()).unwrap();
    let mut admin = client.get_multiplexed_async_connection().await.unwrap();
    let _: i64 = rewritten.query_async(&mut admin).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    // Another client invalidating "hot/" without pause: what INVALIDATE does to the mark
    // (a new epoch, the mark moved to it, the sweep's cursor reset), as raw commands.
    let remarker = tokio::spawn({
        let (url, stop) = (server.url(), stop.clone());
        async move {
            let client = redis::Client::open(url).unwrap();
            let mut connection = client.get_multiplexed_async_connection().await.unwrap();
            while !stop.load(Ordering::Relaxed) {
                let epoch: u64 = redis::cmd("HINCRBY")
                    .arg("{vlive:ns}:m")
                    .arg("epoch")
                    .arg(1)
                    .query_async(&mut connection)
                    .await
                    .unwrap();
                let () = redis::pipe()
                    .cmd("ZADD")
                    .arg("{vlive:ns}:s")
                    .arg(epoch)
                    .arg("hot/")
                    .ignore()
                    .cmd("HDEL")
                    .arg("{vlive:ns}:c")
                    .arg("hot/")
                    .ignore()
                    .query_async(&mut connection)
                    .await
                    .unwrap();
            }
        }
    });
    within(
        "an invalidation of a prefix others keep invalidating",
        cache.invalidate_prefix("hot/"),
    )
    .await
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    remarker.await.unwrap();
    // Written after every mark: kept.
    assert_eq!(tag(&cache, "hot/04999").await.as_deref(), Some("v"));
}
