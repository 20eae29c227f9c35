//! Failover and gaps (issue 19): what a near tier and an acknowledged invalidation survive when
//! the server's history is not what it was. Against real servers:
//! - a near tier whose reader stays connected while the namespace is rolled back to an older
//!   state (as a replica promoted without the last writes looks through a proxy) and then grows
//!   past where the reader was: it must notice and flush, not skip the new entries;
//! - `wait_replicas`: an acknowledged invalidation has reached the replica; one the replica does
//!   not confirm in time fails with `NotReplicated`, is kept for replay (its keys read as
//!   misses), and does not hold up gets meanwhile.
#![cfg(feature = "redis")]

mod common;
#[path = "common/redis_server.rs"]
mod redis_server;

use std::time::Duration;

use common::{tag, value, within};
use redis_server::RedisServer;
use vlive::{Cache, Error, MemCache, RedisCache, RedisFaultKind, TieredCache};

/// The namespace's Redis keys (layout: `src/redis_cache/keyspace.rs`).
fn namespace_keys(namespace: &str) -> Vec<String> {
    ["m", "v", "i", "g", "log", "w", "s", "c", "o"]
        .iter()
        .map(|suffix| format!("{{vlive:{namespace}}}:{suffix}"))
        .collect()
}

/// `DUMP` of every key of the namespace (`None`: the key does not exist).
async fn snapshot(server: &RedisServer, namespace: &str) -> Vec<(String, Option<Vec<u8>>)> {
    let mut dumps = Vec::new();
    for key in namespace_keys(namespace) {
        let dump = match server.admin(&["DUMP", &key]).await.unwrap() {
            redis::Value::BulkString(bytes) => Some(bytes),
            redis::Value::Nil => None,
            other => panic!("DUMP {key}: {other:?}"),
        };
        dumps.push((key, dump));
    }
    dumps
}

/// Puts the namespace back as `snapshot` found it, in one transaction: what a client of a
/// promoted replica that missed the last writes sees.
async fn roll_back(server: &RedisServer, snapshot: &[(String, Option<Vec<u8>>)]) {
    let client = redis::Client::open(server.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let mut transaction = redis::pipe();
    transaction.atomic();
    for (key, dump) in snapshot {
        match dump {
            Some(bytes) => transaction
                .cmd("RESTORE")
                .arg(key)
                .arg(0)
                .arg(bytes)
                .arg("REPLACE")
                .ignore(),
            None => transaction.cmd("DEL").arg(key).ignore(),
        };
    }
    let () = transaction.query_async(&mut connection).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_outlives_a_rollback_flushes_instead_of_skipping_the_new_history() {
    let server = RedisServer::start();
    let writer = RedisCache::connect(&server.url(), "ns").await.unwrap();
    // A long poll: the reader stays blocked in one XREAD through the rollback and the writes
    // after it, as a reader behind a proxy that hides the failover would.
    let near = TieredCache::builder(
        MemCache::new(),
        RedisCache::connect(&server.url(), "ns").await.unwrap(),
    )
    .poll_interval(Duration::from_secs(5))
    .max_lag(Duration::from_secs(20))
    .build()
    .unwrap();
    within("first sync", near.sync()).await;

    writer.put("k", value("old")).await.unwrap();
    within("sync", near.sync()).await;
    assert_eq!(tag(&near, "k").await.as_deref(), Some("old"));
    let hits = near.stats().near_hits;
    assert_eq!(tag(&near, "k").await.as_deref(), Some("old"));
    assert_eq!(near.stats().near_hits, hits + 1, "k is in the near tier");

    let before = snapshot(&server, "ns").await;
    for i in 0..3 {
        writer.put(&format!("lost/{i}"), value("x")).await.unwrap();
    }
    within("sync", near.sync()).await;
    roll_back(&server, &before).await;
    // The new history: k replaced (its log entry reuses the first lost sequence number), then
    // enough writes to carry the log past where the reader was.
    writer.put("k", value("new")).await.unwrap();
    for i in 0..3 {
        writer.put(&format!("after/{i}"), value("y")).await.unwrap();
    }
    within("sync", near.sync()).await;
    let flushes = near.stats().flushes;
    assert_eq!(
        tag(&near, "k").await.as_deref(),
        Some("new"),
        "the near tier kept a value the new history replaced"
    );
    assert!(
        flushes >= 2,
        "the reader flushed for the rollback: {flushes}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_sees_the_log_go_back_flushes() {
    let server = RedisServer::start();
    let writer = RedisCache::connect(&server.url(), "ns").await.unwrap();
    let near = TieredCache::builder(
        MemCache::new(),
        RedisCache::connect(&server.url(), "ns").await.unwrap(),
    )
    .poll_interval(Duration::from_millis(50))
    .max_lag(Duration::from_secs(20))
    .build()
    .unwrap();
    writer.put("k", value("old")).await.unwrap();
    let before = snapshot(&server, "ns").await;
    writer.put("gone", value("x")).await.unwrap();
    writer.put("gone", value("x")).await.unwrap();
    within("sync", near.sync()).await;
    assert_eq!(tag(&near, "k").await.as_deref(), Some("old"));
    let flushes = near.stats().flushes;

    roll_back(&server, &before).await;
    // Behind the reader now, and a write that does not carry it past: only the head says so.
    writer.put("k", value("new")).await.unwrap();
    common::wait_until("the reader flushes", || near.stats().flushes > flushes).await;
    within("sync", near.sync()).await;
    assert_eq!(tag(&near, "k").await.as_deref(), Some("new"));
}

/// The namespace's invalidation epoch on `server` (0 before the first).
async fn epoch(server: &RedisServer) -> i64 {
    match server
        .admin(&["HGET", "{vlive:ns}:m", "epoch"])
        .await
        .unwrap()
    {
        redis::Value::BulkString(text) => String::from_utf8(text).unwrap().parse().unwrap(),
        redis::Value::Nil => 0,
        other => panic!("HGET epoch: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fill_token_from_before_a_rollback_is_stale() {
    let server = RedisServer::start();
    let cache = RedisCache::connect(&server.url(), "ns").await.unwrap();
    cache.put("k", value("v")).await.unwrap();
    let before = snapshot(&server, "ns").await;
    cache.invalidate_prefix("other/").await.unwrap();
    // A token of the epoch the rollback is about to lose.
    let token = cache.fill_token("k").await.unwrap();
    roll_back(&server, &before).await;
    assert_eq!(
        cache
            .fill("k", value("from the lost history"), token)
            .await
            .unwrap(),
        vlive::FillOutcome::RejectedStale
    );
    let fresh = cache.fill_token("k").await.unwrap();
    assert_eq!(
        cache.fill("k", value("now"), fresh).await.unwrap(),
        vlive::FillOutcome::Stored
    );
}

/// A primary with one replica, replicating.
async fn primary_and_replica() -> (RedisServer, RedisServer) {
    let primary = RedisServer::start();
    let port = primary.port().to_string();
    let replica = RedisServer::start_with(&["--replicaof", "127.0.0.1", &port]);
    wait_for_replicas(&primary, 1).await;
    (primary, replica)
}

async fn wait_for_replicas(primary: &RedisServer, replicas: i64) {
    within("the replica to connect", async {
        loop {
            let info = match primary.admin(&["INFO", "replication"]).await.unwrap() {
                redis::Value::BulkString(bytes) => String::from_utf8(bytes).unwrap(),
                redis::Value::VerbatimString { text, .. } => text,
                other => panic!("INFO: {other:?}"),
            };
            let online = info
                .lines()
                .filter(|line| line.starts_with("slave") && line.contains("state=online"))
                .count() as i64;
            if online >= replicas {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_invalidation_has_reached_the_replica() {
    let (primary, replica) = primary_and_replica().await;
    let cache = RedisCache::builder(&primary.url(), "ns")
        .wait_replicas(1, Duration::from_secs(5))
        .connect()
        .await
        .unwrap();
    for round in 1..=20 {
        cache.put("a/1", value("v")).await.unwrap();
        cache.invalidate_prefix("a/").await.unwrap();
        // Read at once from the replica: WAIT returned only once it had the invalidation.
        assert_eq!(
            epoch(&replica).await,
            round,
            "the replica lacks invalidation {round}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unconfirmed_invalidation_is_reported_replayed_and_holds_up_no_get() {
    let (primary, replica) = primary_and_replica().await;
    let cache = RedisCache::builder(&primary.url(), "ns")
        .wait_replicas(1, Duration::from_secs(2))
        .connect()
        .await
        .unwrap();
    cache.put("b/1", value("b")).await.unwrap();
    cache.put("c/1", value("c")).await.unwrap();

    let paused = replica.pause();
    let invalidation = tokio::spawn({
        let cache = cache.clone();
        async move { cache.invalidate_prefix("b/").await }
    });
    // While the invalidation waits for the replica, gets go on (another connection).
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(tag(&cache, "c/1").await.as_deref(), Some("c"));
    assert!(
        !invalidation.is_finished(),
        "the invalidation did not wait for the replica"
    );
    let failed = within("the invalidation", invalidation).await.unwrap();
    match failed {
        Err(Error::Redis(fault)) => assert!(
            matches!(
                fault.kind,
                RedisFaultKind::NotReplicated {
                    confirmed: 0,
                    wanted: 1
                }
            ),
            "{fault}"
        ),
        other => panic!("an unconfirmed invalidation returned {other:?}"),
    }
    // On the primary, but not confirmed: kept for replay, so its keys are misses and other
    // calls fail until a replay is confirmed.
    assert_eq!(within("get", cache.get("b/1")).await.unwrap(), None);
    assert!(within("get", cache.get("c/1")).await.is_err());

    paused.resume();
    wait_for_replicas(&primary, 1).await;
    assert_eq!(tag(&cache, "c/1").await.as_deref(), Some("c"), "replayed");
    assert_eq!(tag(&cache, "b/1").await, None);
    assert_eq!(
        epoch(&replica).await,
        epoch(&primary).await,
        "the replay reached the replica"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asking_for_more_replicas_than_confirm_fails_and_zero_is_refused() {
    let (primary, _replica) = primary_and_replica().await;
    let two = RedisCache::builder(&primary.url(), "ns")
        .wait_replicas(2, Duration::from_millis(200))
        .connect()
        .await
        .unwrap();
    match within("invalidate", two.invalidate_prefix("x/")).await {
        Err(Error::Redis(fault)) => assert!(
            matches!(
                fault.kind,
                RedisFaultKind::NotReplicated {
                    confirmed: 1,
                    wanted: 2
                }
            ),
            "{fault}"
        ),
        other => panic!("{other:?}"),
    }
    for (replicas, timeout) in [(0, Duration::from_secs(1)), (1, Duration::ZERO)] {
        let refused = RedisCache::builder(&primary.url(), "ns")
            .wait_replicas(replicas, timeout)
            .connect()
            .await;
        assert!(
            matches!(refused, Err(Error::InvalidConfig { .. })),
            "{replicas} replicas within {timeout:?}: {refused:?}"
        );
    }
}
