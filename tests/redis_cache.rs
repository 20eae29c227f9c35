//! RedisCache beyond the shared contract: one connection for all clones and concurrent calls,
//! the guard's bounded memory, namespace isolation, undecodable values (misses), the log's
//! bound, and scripts flushed from the server.
#![cfg(feature = "redis")]

mod common;
#[path = "common/redis_server.rs"]
mod redis_server;

use common::{tag, value, within};
use redis_server::{RedisServer, int};
use vlive::{Cache, FillOutcome, RedisCache};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clones_pipeline_concurrent_calls_on_one_connection() {
    let server = RedisServer::start();
    let cache = RedisCache::connect(&server.url(), "ns").await.unwrap();
    let tasks: Vec<_> = (0..64)
        .map(|task| {
            let cache = cache.clone();
            tokio::spawn(async move {
                for round in 0..20 {
                    let key = format!("k/{task}/{round}");
                    cache.put(&key, value("x")).await.unwrap();
                    assert_eq!(tag(&cache, &key).await.as_deref(), Some("x"));
                }
            })
        })
        .collect();
    for task in tasks {
        within("a task", task).await.unwrap();
    }
    // CLIENT LIST from a fresh connection: that one, plus the cache's single connection.
    let redis::Value::BulkString(list) = server.admin(&["CLIENT", "LIST"]).await.unwrap() else {
        panic!("CLIENT LIST is not a string")
    };
    let clients = String::from_utf8(list).unwrap().lines().count();
    assert_eq!(clients, 2, "the cache opened more than one connection");
}

#[tokio::test]
async fn a_token_older_than_the_remembered_prefixes_is_stale() {
    let server = RedisServer::start();
    let cache = RedisCache::builder(&server.url(), "ns")
        .remembered_prefixes(3)
        .connect()
        .await
        .unwrap();
    let token = cache.fill_token("clients/1").await.unwrap();
    for prefix in ["x", "y", "z"] {
        cache.invalidate_prefix(prefix).await.unwrap();
    }
    assert_eq!(
        cache.fill("clients/1", value("ok"), token).await.unwrap(),
        FillOutcome::Stored,
        "three unrelated prefixes are still remembered"
    );
    let token = cache.fill_token("clients/1").await.unwrap();
    for prefix in ["q", "u", "v", "w"] {
        cache.invalidate_prefix(prefix).await.unwrap();
    }
    // "q" was forgotten: it might have covered the key, so the guard must say stale.
    assert_eq!(
        cache
            .fill("clients/1", value("unsure"), token)
            .await
            .unwrap(),
        FillOutcome::RejectedStale
    );
    let token = cache.fill_token("clients/1").await.unwrap();
    assert_eq!(
        cache.fill("clients/1", value("new"), token).await.unwrap(),
        FillOutcome::Stored
    );
}

#[tokio::test]
async fn namespaces_share_nothing() {
    let server = RedisServer::start();
    let orders = RedisCache::connect(&server.url(), "orders").await.unwrap();
    let users = RedisCache::connect(&server.url(), "users").await.unwrap();
    orders.put("k", value("o")).await.unwrap();
    users.put("k", value("u")).await.unwrap();
    let token = orders.fill_token("k").await.unwrap();
    users.invalidate_prefix("").await.unwrap();
    assert_eq!(tag(&orders, "k").await.as_deref(), Some("o"));
    assert_eq!(tag(&users, "k").await, None);
    assert_eq!(
        orders.fill("k", value("o2"), token).await.unwrap(),
        FillOutcome::Stored
    );
    // A token of one namespace means nothing in another.
    let foreign = orders.fill_token("k").await.unwrap();
    assert_eq!(
        users.fill("k", value("x"), foreign).await.unwrap(),
        FillOutcome::RejectedStale
    );
}

/// An undecodable value (another writer in the namespace, another version) is a miss for its
/// own key only, never an error or another value; a put replaces it.
#[tokio::test]
async fn an_undecodable_value_is_a_miss_of_its_own_key_only() {
    let server = RedisServer::start();
    let cache = RedisCache::connect(&server.url(), "ns").await.unwrap();
    cache.put("good", value("g")).await.unwrap();
    cache.put("bad", value("b")).await.unwrap();
    server
        .admin(&["HSET", "{vlive:ns}:v", "bad", "not cbor"])
        .await
        .unwrap();
    let got = cache.get("bad").await;
    assert!(matches!(got, Ok(None)), "expected a miss, got {got:?}");
    assert_eq!(tag(&cache, "good").await.as_deref(), Some("g"));
    cache.put("bad", value("mended")).await.unwrap();
    assert_eq!(tag(&cache, "bad").await.as_deref(), Some("mended"));
}

#[tokio::test]
async fn the_invalidation_log_stays_bounded() {
    let server = RedisServer::start();
    let cache = RedisCache::builder(&server.url(), "ns")
        .log_len(100)
        .connect()
        .await
        .unwrap();
    for n in 0..1000 {
        cache.put(&format!("k/{n}"), value("x")).await.unwrap();
    }
    // MAXLEN ~ trims whole stream nodes (100 entries each by default), so allow one node more.
    let length = int(server.admin(&["XLEN", "{vlive:ns}:log"]).await.unwrap());
    assert!((100..=200).contains(&length), "log length {length}");
}

#[tokio::test]
async fn scripts_flushed_from_the_server_are_loaded_again() {
    let server = RedisServer::start();
    let cache = RedisCache::connect(&server.url(), "ns").await.unwrap();
    server.admin(&["SCRIPT", "FLUSH"]).await.unwrap();
    cache.put("k", value("v")).await.unwrap();
    let token = cache.fill_token("k").await.unwrap();
    cache.invalidate_prefix("k").await.unwrap();
    assert_eq!(
        cache.fill("k", value("s"), token).await.unwrap(),
        FillOutcome::RejectedStale
    );
}

/// A value over `max_value_bytes` is refused with `ValueTooLarge` before anything is sent: with
/// the server stopped, the put still answers at once with that error, not a timeout. One at the
/// limit is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_over_max_value_bytes_is_refused_before_it_is_sent() {
    let server = RedisServer::start();
    let at_limit = value(&"x".repeat(1000));
    let limit = vlive::__private::codec::encoded_len(&at_limit).unwrap() as u64;
    let cache = RedisCache::builder(&server.url(), "ns")
        .max_value_bytes(limit)
        .response_timeout(std::time::Duration::from_secs(30))
        .connect()
        .await
        .unwrap();
    cache.put("fits", at_limit.clone()).await.unwrap();
    assert_eq!(
        tag(&cache, "fits").await.as_deref(),
        Some("x".repeat(1000).as_str())
    );

    let over = value(&"x".repeat(1001));
    let token = cache.fill_token("big").await.unwrap();
    let paused = server.pause();
    for result in [
        within("put", cache.put("big", over.clone())).await,
        within("fill", cache.fill("big", over.clone(), token))
            .await
            .map(drop),
    ] {
        match result {
            Err(vlive::Error::ValueTooLarge {
                key,
                bytes,
                max_value_bytes,
            }) => {
                assert_eq!(key, "big");
                assert_eq!((bytes, max_value_bytes), (limit + 1, limit));
            }
            other => panic!("expected ValueTooLarge, got {other:?}"),
        }
    }
    paused.resume();
    assert_eq!(tag(&cache, "big").await, None);
}

#[tokio::test]
async fn a_zero_max_value_bytes_is_a_configuration_error() {
    let server = RedisServer::start();
    let connect = RedisCache::builder(&server.url(), "ns")
        .max_value_bytes(0)
        .connect();
    assert!(matches!(
        connect.await,
        Err(vlive::Error::InvalidConfig { .. })
    ));
}
