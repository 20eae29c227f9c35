//! Faults under RedisCache and TieredCache: the server killed mid-stream and restarted, a
//! connection cut and healed, a network blackhole longer than the staleness bound, the log
//! reader's connection killed, the server stopped (SIGSTOP) under `sync`, an invalidation that
//! cannot reach the server or is abandoned (replayed later; a TieredCache drops its near tier),
//! the server out of memory, unsupported settings, and errors that must name the server but
//! never a password.
//!
//! Timing is asserted once, as the promise: `sync` returns within `max_lag` and a
//! generous margin while the server is stopped. Otherwise [`within`] and [`wait_until`] are hang
//! detectors (30 s). The one sleep (in the blackhole test) waits for the staleness bound to pass,
//! after which the stale answer must be impossible however slow the machine is.
#![cfg(feature = "redis")]

mod common;
#[path = "common/near.rs"]
mod near;
#[path = "common/redis_server.rs"]
mod redis_server;
#[path = "common/tcp_proxy.rs"]
mod tcp_proxy;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{tag, value, wait_until, within};
use near::cache_in_near;
use redis_server::RedisServer;
use tcp_proxy::{Mode, TcpProxy};
use vlive::{
    Cache, Error, FillOutcome, MemCache, RedisCache, RedisFault, RedisFaultKind, TieredCache,
};

/// Short timeouts, so calls against a dead or silent server fail quickly.
async fn redis(url: &str) -> RedisCache {
    RedisCache::builder(url, "ns")
        .connect_timeout(Duration::from_millis(500))
        .response_timeout(Duration::from_secs(1))
        .connect()
        .await
        .unwrap()
}

fn tiered(far: RedisCache, max_lag: Duration) -> TieredCache {
    TieredCache::builder(MemCache::new(), far)
        .max_lag(max_lag)
        .poll_interval(Duration::from_millis(50))
        .build()
        .unwrap()
}

fn fault(error: Error) -> RedisFault {
    match error {
        Error::Redis(fault) => fault,
        other => panic!("expected Error::Redis, got {other:?}"),
    }
}

/// Calls until one succeeds (the client redials after a failure).
async fn until_ok<T, F: std::future::Future<Output = vlive::Result<T>>>(
    what: &str,
    mut call: impl FnMut() -> F,
) -> T {
    within(what, async {
        loop {
            if let Ok(answer) = call().await {
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_answers_while_the_server_is_killed_and_restarted() {
    let mut server = RedisServer::start();
    let cache = redis(&server.url()).await;
    let near = tiered(redis(&server.url()).await, Duration::from_secs(2));
    let old_token = cache.fill_token("k/0").await.unwrap();
    let (calls, failures) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));

    let mut workers = Vec::new();
    for worker in 0..6 {
        let caches: [Arc<dyn Cache>; 2] = [Arc::new(cache.clone()), Arc::new(near.clone())];
        let (calls, failures) = (calls.clone(), failures.clone());
        workers.push(tokio::spawn(async move {
            for round in 0..300usize {
                let c = caches[worker % 2].as_ref();
                let key = format!("k/{}", round % 7);
                // Each call must answer, Ok or Err; a hang fails the test.
                let ok = within("a call while the server dies", async {
                    match round % 4 {
                        0 => c.put(&key, value("x")).await.is_ok(),
                        1 => c.get(&key).await.is_ok(),
                        2 => c.invalidate_prefix(&key).await.is_ok(),
                        _ => match c.fill_token(&key).await {
                            Ok(token) => c.fill(&key, value("f"), token).await.is_ok(),
                            Err(_) => false,
                        },
                    }
                })
                .await;
                calls.fetch_add(1, Ordering::SeqCst);
                if !ok {
                    failures.fetch_add(1, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }));
    }
    wait_until("calls before the kill", || {
        calls.load(Ordering::SeqCst) > 200
    })
    .await;
    server.kill();
    wait_until("calls failing", || failures.load(Ordering::SeqCst) > 0).await;
    server.restart();
    for worker in workers {
        within("a worker", worker).await.unwrap();
    }
    assert!(
        failures.load(Ordering::SeqCst) > 0,
        "the kill did not happen mid-stream"
    );

    // The handles recover by themselves, and a token from before the restart is stale.
    until_ok("a put after the restart", || {
        cache.put("k/0", value("after"))
    })
    .await;
    assert_eq!(tag(&cache, "k/0").await.as_deref(), Some("after"));
    assert_eq!(
        cache.fill("k/0", value("old"), old_token).await.unwrap(),
        FillOutcome::RejectedStale
    );
    until_ok("a tiered put after the restart", || {
        near.put("k/1", value("t"))
    })
    .await;
    assert_eq!(tag(&near, "k/1").await.as_deref(), Some("t"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_flushes_near_tiers_and_stales_old_tokens() {
    let mut server = RedisServer::start();
    let writer = redis(&server.url()).await;
    let reader = tiered(redis(&server.url()).await, Duration::from_secs(2));
    writer.put("k", value("v1")).await.unwrap();
    assert_eq!(cache_in_near(&reader, "k").await.as_deref(), Some("v1"));
    let token = reader.fill_token("k").await.unwrap();
    let sessions = reader.stats().sessions;

    server.restart();
    wait_until("the reader's next session", || {
        reader.stats().sessions > sessions && reader.stats().caught_up_age.is_some()
    })
    .await;
    reader.sync().await;
    // The restarted server is empty; a near tier that kept "v1" would answer it.
    assert_eq!(
        until_ok("a get after the restart", || reader.get("k")).await,
        None
    );
    assert_eq!(
        until_ok("a fill after the restart", || reader.fill(
            "k",
            value("old"),
            token
        ))
        .await,
        FillOutcome::RejectedStale,
        "a token from before the restart was accepted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_connection_heals_and_the_near_tier_catches_up() {
    let server = RedisServer::start();
    let proxy = TcpProxy::start(server.port()).await;
    let writer = redis(&server.url()).await;
    let cut_off = tiered(redis(&proxy.url()).await, Duration::from_secs(2));
    writer.put("k", value("v1")).await.unwrap();
    assert_eq!(cache_in_near(&cut_off, "k").await.as_deref(), Some("v1"));
    let sessions = cut_off.stats().sessions;

    proxy.set(Mode::Cut);
    writer.put("k", value("v2")).await.unwrap();
    let during = within("a put across the cut", cut_off.put("other", value("x"))).await;
    assert!(matches!(
        during.map_err(|e| fault(e).kind),
        Err(RedisFaultKind::Connection(_) | RedisFaultKind::Timeout)
    ));

    proxy.set(Mode::Pass);
    wait_until("the reader to reconnect", || {
        cut_off.stats().sessions > sessions && cut_off.stats().caught_up_age.is_some()
    })
    .await;
    cut_off.sync().await;
    assert_eq!(
        until_ok("a get after healing", || cut_off.get("k"))
            .await
            .as_ref()
            .map(common::tag_of),
        Some("v2".into()),
        "the near tier still served the value from before the cut"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_lag_a_silent_partition_never_serves_the_stale_value() {
    let server = RedisServer::start();
    let proxy = TcpProxy::start(server.port()).await;
    let writer = redis(&server.url()).await;
    let max_lag = Duration::from_millis(300);
    let partitioned = tiered(redis(&proxy.url()).await, max_lag);
    writer.put("k", value("v1")).await.unwrap();
    assert_eq!(
        cache_in_near(&partitioned, "k").await.as_deref(),
        Some("v1")
    );

    // Nothing reaches the reader any more; no round can complete from here on.
    proxy.set(Mode::Blackhole);
    writer.put("k", value("v2")).await.unwrap();
    tokio::time::sleep(max_lag).await;
    let bypassed = partitioned.stats().bypassed;
    for _ in 0..3 {
        let answer = within("a get in the partition", partitioned.get("k")).await;
        // Redis is unreachable, so an Err is right; the near tier's "v1" would be wrong.
        assert!(
            !matches!(&answer, Ok(Some(rows)) if common::tag_of(rows) == "v1"),
            "served the stale value more than max_lag after the write"
        );
    }
    assert!(partitioned.stats().bypassed >= bypassed + 3);

    proxy.set(Mode::Pass);
    let healed = until_ok("a get after healing", || async {
        partitioned.sync().await;
        partitioned.get("k").await
    })
    .await;
    assert_eq!(healed.as_ref().map(common::tag_of).as_deref(), Some("v2"));
}

/// The reader's connection, found by its name in CLIENT LIST.
async fn reader_client_id(server: &RedisServer) -> Option<String> {
    let list = server.admin(&["CLIENT", "LIST"]).await.unwrap();
    let redis::Value::BulkString(bytes) = list else {
        panic!("CLIENT LIST: {list:?}")
    };
    String::from_utf8(bytes)
        .unwrap()
        .lines()
        .find(|line| line.contains("name=vlive-near-reader"))
        .and_then(|line| line.split(' ').find_map(|f| f.strip_prefix("id=")))
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_reader_reconnects_flushes_and_follows_the_log_again() {
    let server = RedisServer::start();
    let writer = redis(&server.url()).await;
    let cache = tiered(redis(&server.url()).await, Duration::from_secs(2));
    writer.put("k", value("v1")).await.unwrap();
    assert_eq!(cache_in_near(&cache, "k").await.as_deref(), Some("v1"));
    let before = cache.stats();

    let id = reader_client_id(&server)
        .await
        .expect("the reader's connection");
    server.admin(&["CLIENT", "KILL", "ID", &id]).await.unwrap();
    wait_until("a new reader session", || {
        let now = cache.stats();
        now.sessions > before.sessions && now.flushes > before.flushes
    })
    .await;
    assert_ne!(
        reader_client_id(&server).await,
        Some(id),
        "the same connection"
    );

    writer.put("k", value("v2")).await.unwrap();
    assert_eq!(cache_in_near(&cache, "k").await.as_deref(), Some("v2"));
}

#[tokio::test]
async fn out_of_memory_refuses_puts_and_fills_whole_but_not_invalidations() {
    let server = RedisServer::start();
    let cache = redis(&server.url()).await;
    let near = tiered(redis(&server.url()).await, Duration::from_secs(2));
    cache.put("kept/1", value("a")).await.unwrap();
    cache.put("gone/1", value("b")).await.unwrap();
    let token = cache.fill_token("new/1").await.unwrap();
    server
        .admin(&["CONFIG", "SET", "maxmemory", "1"])
        .await
        .unwrap();

    let refused = fault(cache.put("new/1", value("c")).await.unwrap_err());
    assert!(
        matches!(refused.kind, RedisFaultKind::OutOfMemory),
        "{refused}"
    );
    assert_eq!(refused.op, "put");
    assert_eq!(refused.key.as_deref(), Some("new/1"));
    let refused = fault(cache.fill("new/1", value("c"), token).await.unwrap_err());
    assert!(
        matches!(refused.kind, RedisFaultKind::OutOfMemory),
        "{refused}"
    );
    let refused = fault(near.put("new/2", value("c")).await.unwrap_err());
    assert!(
        matches!(refused.kind, RedisFaultKind::OutOfMemory),
        "{refused}"
    );

    // Reads, tokens and invalidations still work.
    assert_eq!(tag(&cache, "kept/1").await.as_deref(), Some("a"));
    cache.fill_token("new/1").await.unwrap();
    cache.invalidate_prefix("gone/").await.unwrap();
    near.invalidate_prefix("kept/").await.unwrap();
    assert_eq!(tag(&cache, "gone/1").await, None);
    assert_eq!(tag(&cache, "kept/1").await, None);

    // Nothing of the refused writes was half-applied: no value, no index entry.
    server
        .admin(&["CONFIG", "SET", "maxmemory", "0"])
        .await
        .unwrap();
    for key in ["new/1", "new/2"] {
        assert_eq!(tag(&cache, key).await, None, "{key}");
    }
    let indexed = server.admin(&["ZCARD", "{vlive:ns}:i"]).await.unwrap();
    let values = server.admin(&["HLEN", "{vlive:ns}:v"]).await.unwrap();
    assert_eq!(indexed, redis::Value::Int(0));
    assert_eq!(values, redis::Value::Int(0));
    cache.put("new/1", value("c")).await.unwrap();
    assert_eq!(tag(&cache, "new/1").await.as_deref(), Some("c"));
}

#[tokio::test]
async fn an_eviction_policy_that_could_drop_the_index_is_refused() {
    let server = RedisServer::start_with(&["--maxmemory-policy", "allkeys-lru"]);
    let refused = fault(RedisCache::connect(&server.url(), "ns").await.unwrap_err());
    assert_eq!(refused.op, "connect");
    match &refused.kind {
        RedisFaultKind::Unsupported(reason) => assert!(reason.contains("allkeys-lru"), "{reason}"),
        other => panic!("expected Unsupported, got {other:?}"),
    }
    // Someone who checked the policy another way can vouch for it.
    RedisCache::builder(&server.url(), "ns")
        .trust_eviction_policy(true)
        .connect()
        .await
        .unwrap();
    let volatile = RedisServer::start_with(&["--maxmemory-policy", "volatile-lru"]);
    RedisCache::connect(&volatile.url(), "ns").await.unwrap();
}

#[tokio::test]
async fn errors_name_the_server_and_namespace_but_never_the_password() {
    let server = RedisServer::start_with(&["--requirepass", "right"]);
    let url = format!("redis://:hunter2@127.0.0.1:{}/", server.port());
    let error = RedisCache::connect(&url, "orders").await.unwrap_err();
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains("hunter2"), "the password leaked: {shown}");
    assert!(
        shown.contains(&format!("127.0.0.1:{}", server.port())),
        "{shown}"
    );
    assert!(shown.contains("orders"), "{shown}");

    let good = format!("redis://:right@127.0.0.1:{}/", server.port());
    let cache = RedisCache::connect(&good, "orders").await.unwrap();
    assert!(!format!("{cache:?}").contains("right@"));

    let unparsable = RedisCache::connect("redis://:hunter2@[::1", "ns")
        .await
        .unwrap_err();
    assert!(
        matches!(unparsable, Error::InvalidConfig { .. }),
        "{unparsable:?}"
    );
    assert!(!format!("{unparsable} {unparsable:?}").contains("hunter2"));

    let mut gone = RedisServer::start();
    let port = gone.port();
    gone.kill();
    let refused = fault(
        RedisCache::connect(&format!("redis://127.0.0.1:{port}/"), "ns")
            .await
            .unwrap_err(),
    );
    assert!(
        matches!(refused.kind, RedisFaultKind::Connection(_)),
        "{refused}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_the_log_was_trimmed_past_flushes_without_reconnecting() {
    let server = RedisServer::start();
    let proxy = TcpProxy::start(server.port()).await;
    // A short log: XADD MAXLEN ~ 1 keeps only the newest stream node (100 entries).
    let writer = RedisCache::builder(&server.url(), "ns")
        .log_len(1)
        .connect()
        .await
        .unwrap();
    // Long timeouts: the blackhole below must not end the reader's session.
    let far = RedisCache::builder(&proxy.url(), "ns")
        .response_timeout(Duration::from_secs(20))
        .connect()
        .await
        .unwrap();
    let lagging = tiered(far, Duration::from_secs(20));
    writer.put("k", value("v1")).await.unwrap();
    assert_eq!(cache_in_near(&lagging, "k").await.as_deref(), Some("v1"));
    let before = lagging.stats();

    // While the reader hears nothing, "k" changes and its entry is trimmed away.
    proxy.set(Mode::Blackhole);
    writer.put("k", value("v2")).await.unwrap();
    for n in 0..300 {
        writer.put(&format!("other/{n}"), value("x")).await.unwrap();
    }
    proxy.set(Mode::Pass);

    wait_until("the reader to notice the gap", || {
        lagging.stats().flushes > before.flushes
    })
    .await;
    assert_eq!(
        lagging.stats().sessions,
        before.sessions,
        "it reconnected instead"
    );
    lagging.sync().await;
    assert_eq!(tag(&lagging, "k").await.as_deref(), Some("v2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_returns_within_max_lag_while_the_server_is_stopped_and_trusts_nothing_it_missed() {
    let server = RedisServer::start();
    let writer = redis(&server.url()).await;
    // The far tier's calls wait up to 3 s for an answer: an unbounded read of the log's head
    // would take that long, past max_lag.
    let far = RedisCache::builder(&server.url(), "ns")
        .connect_timeout(Duration::from_millis(500))
        .response_timeout(Duration::from_secs(3))
        .connect()
        .await
        .unwrap();
    let max_lag = Duration::from_secs(1);
    let cache = tiered(far, max_lag);
    writer.put("k", value("v1")).await.unwrap();
    assert_eq!(cache_in_near(&cache, "k").await.as_deref(), Some("v1"));
    // Acknowledged just before the stop: the near tier may or may not have heard of it.
    writer.put("k", value("v2")).await.unwrap();

    let paused = server.pause();
    let started = Instant::now();
    within("sync against a stopped server", cache.sync()).await;
    let took = started.elapsed();
    assert!(
        took < max_lag + Duration::from_secs(1),
        "sync took {took:?} with max_lag {max_lag:?}"
    );
    // Unconfirmed, the near tier must not answer: "v1" would be the value v2 replaced.
    let near_hits = cache.stats().near_hits;
    let answer = within("a get while stopped", cache.get("k")).await;
    assert!(
        !matches!(&answer, Ok(Some(rows)) if common::tag_of(rows) == "v1"),
        "served the replaced value after sync"
    );
    assert_eq!(cache.stats().near_hits, near_hits, "the near tier answered");

    paused.resume();
    let healed = until_ok("a get after the resume", || async {
        cache.sync().await;
        cache.get("k").await
    })
    .await;
    assert_eq!(healed.as_ref().map(common::tag_of).as_deref(), Some("v2"));
    assert_eq!(cache_in_near(&cache, "k").await.as_deref(), Some("v2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidation_that_never_reached_the_server_is_replayed_before_its_keys_are_read() {
    let server = RedisServer::start();
    let proxy = TcpProxy::start(server.port()).await;
    let inspector = redis(&server.url()).await;
    let cache = redis(&proxy.url()).await;
    cache.put("clients/1", value("old")).await.unwrap();
    cache.put("clinic/1", value("kept")).await.unwrap();
    let token = cache.fill_token("clients/2").await.unwrap();

    proxy.set(Mode::Cut);
    let failed = within("an invalidation across the cut", async {
        cache.invalidate_prefix("clients/").await
    })
    .await;
    assert_eq!(fault(failed.unwrap_err()).op, "invalidate_prefix");
    assert_eq!(
        tag(&inspector, "clients/1").await.as_deref(),
        Some("old"),
        "the invalidation reached the server after all"
    );

    // While it cannot be replayed, a key it covers is a miss (not the stale value, not an
    // error); another key's get fails as a get; writes do not reach the server.
    let covered = within("a covered get", cache.get("clients/1")).await;
    assert!(matches!(covered, Ok(None)), "{covered:?}");
    let other = fault(
        within("another get", cache.get("clinic/1"))
            .await
            .unwrap_err(),
    );
    assert_eq!((other.op, other.key.as_deref()), ("get", Some("clinic/1")));
    let put = fault(
        within("a put", cache.put("clients/1", value("new")))
            .await
            .unwrap_err(),
    );
    assert_eq!((put.op, put.key.as_deref()), ("put", Some("clients/1")));

    // Back in touch, the next call replays it first, removing exactly what it covers.
    proxy.set(Mode::Pass);
    within("the replay", async {
        loop {
            let answer = cache.get("clients/1").await;
            assert!(matches!(answer, Ok(None) | Err(_)), "{answer:?}");
            if tag(&inspector, "clients/1").await.is_none() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert_eq!(tag(&inspector, "clinic/1").await.as_deref(), Some("kept"));
    assert_eq!(tag(&cache, "clinic/1").await.as_deref(), Some("kept"));
    // The replay bumped the guard: a fill read before the invalidation is stale.
    assert_eq!(
        cache
            .fill("clients/2", value("stale"), token)
            .await
            .unwrap(),
        FillOutcome::RejectedStale
    );
    cache.put("clients/1", value("new")).await.unwrap();
    assert_eq!(tag(&cache, "clients/1").await.as_deref(), Some("new"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidation_that_fails_in_redis_drops_the_whole_near_tier() {
    let server = RedisServer::start();
    let proxy = TcpProxy::start(server.port()).await;
    let inspector = redis(&server.url()).await;
    // A long max_lag: the near tier keeps answering while the reader is cut off too.
    let cache = tiered(redis(&proxy.url()).await, Duration::from_secs(20));
    cache.put("a/1", value("old")).await.unwrap();
    cache.put("b/1", value("b")).await.unwrap();
    assert_eq!(cache_in_near(&cache, "a/1").await.as_deref(), Some("old"));
    assert_eq!(cache_in_near(&cache, "b/1").await.as_deref(), Some("b"));

    proxy.set(Mode::Cut);
    let failed = within("a tiered invalidation across the cut", async {
        cache.invalidate_prefix("a/").await
    })
    .await;
    assert!(failed.is_err());
    let near_hits = cache.stats().near_hits;
    let covered = within("a covered get", cache.get("a/1")).await;
    assert!(matches!(covered, Ok(None)), "{covered:?}");
    let other = within("another get", cache.get("b/1")).await;
    assert!(other.is_err(), "{other:?}: only Redis could answer it");
    assert_eq!(cache.stats().near_hits, near_hits, "the near tier answered");

    proxy.set(Mode::Pass);
    assert_eq!(
        until_ok("a get after healing", || cache.get("b/1"))
            .await
            .as_ref()
            .map(common::tag_of)
            .as_deref(),
        Some("b")
    );
    within("the replay", async {
        while tag(&inspector, "a/1").await.is_some() {
            let _ = cache.get("a/1").await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert_eq!(tag(&cache, "a/1").await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidation_abandoned_mid_call_is_treated_as_failed() {
    let server = RedisServer::start();
    let proxy = TcpProxy::start(server.port()).await;
    let inspector = redis(&server.url()).await;
    let cache = tiered(redis(&proxy.url()).await, Duration::from_secs(20));
    cache.put("a/1", value("old")).await.unwrap();
    assert_eq!(cache_in_near(&cache, "a/1").await.as_deref(), Some("old"));

    // The call goes out into a blackhole, and its caller stops waiting; then the held bytes
    // are dropped, so the invalidation never reaches the server.
    proxy.set(Mode::Blackhole);
    let abandoned =
        tokio::time::timeout(Duration::from_millis(100), cache.invalidate_prefix("a/")).await;
    assert!(abandoned.is_err(), "the call answered: {abandoned:?}");
    proxy.set(Mode::Cut);
    assert_eq!(tag(&inspector, "a/1").await.as_deref(), Some("old"));

    let near_hits = cache.stats().near_hits;
    let covered = within("a covered get", cache.get("a/1")).await;
    assert!(matches!(covered, Ok(None)), "{covered:?}");
    assert_eq!(cache.stats().near_hits, near_hits, "the near tier answered");

    proxy.set(Mode::Pass);
    within("the replay", async {
        while tag(&inspector, "a/1").await.is_some() {
            let answer = cache.get("a/1").await;
            assert!(matches!(answer, Ok(None) | Err(_)), "{answer:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}
