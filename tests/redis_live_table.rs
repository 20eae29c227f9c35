//! LiveTable, unchanged, over RedisCache and TieredCache: reads fill, hits skip the master,
//! writes invalidate; across two caches on one namespace (two "processes" sharing a master): a
//! write through one table reaches the other's near tier, and a master read that a write
//! overtook does not land in either tier; and a write whose invalidation cannot reach Redis
//! (connection cut, server stopped) says it was applied, and the row it replaced is never
//! served again.
#![cfg(feature = "redis")]

#[path = "common/redis_server.rs"]
mod redis_server;
#[path = "live_table/support.rs"]
mod support;
#[path = "common/tcp_proxy.rs"]
mod tcp_proxy;

use std::sync::Arc;
use std::time::Duration;

use redis_server::RedisServer;
use support::{HANG_GUARD, TestMaster, reach, record, seed_rows};
use tcp_proxy::{Mode, TcpProxy};
use vlive::{Cache, Error, LiveTable, MemCache, Record, RedisCache, TieredCache};

async fn tiered(server: &RedisServer) -> TieredCache {
    let far = RedisCache::connect(&server.url(), "live").await.unwrap();
    let cache = TieredCache::builder(MemCache::new(), far)
        .poll_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    cache.sync().await;
    cache
}

async fn backends(server: &RedisServer) -> Vec<(&'static str, Arc<dyn Cache>)> {
    let redis = RedisCache::connect(&server.url(), "live-plain")
        .await
        .unwrap();
    vec![
        ("redis", Arc::new(redis)),
        ("tiered", Arc::new(tiered(server).await)),
    ]
}

#[tokio::test]
async fn reads_fill_hits_skip_the_master_and_writes_invalidate() {
    let server = RedisServer::start();
    for (name, cache) in backends(&server).await {
        let master = TestMaster::new(seed_rows(3));
        let table = LiveTable::new(master.clone(), "clients", cache).unwrap();
        assert_eq!(
            table.get("r01").await.unwrap().as_deref(),
            Some(&record("name-01")),
            "{name}"
        );
        assert_eq!(
            table.get("r01").await.unwrap().as_deref(),
            Some(&record("name-01")),
            "{name}"
        );
        assert_eq!(
            master.get_calls(),
            1,
            "{name}: the second get read the master"
        );

        table.replace("r01", record("renamed")).await.unwrap();
        assert_eq!(
            table.get("r01").await.unwrap().as_deref(),
            Some(&record("renamed")),
            "{name}"
        );
        assert_eq!(master.get_calls(), 2, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_through_one_table_reaches_the_other_tables_near_tier() {
    let server = RedisServer::start();
    let master = TestMaster::new(seed_rows(3));
    let (near_a, near_b) = (tiered(&server).await, tiered(&server).await);
    let a = LiveTable::new(master.clone(), "clients", Arc::new(near_a)).unwrap();
    let b = LiveTable::new(master.clone(), "clients", Arc::new(near_b.clone())).unwrap();

    assert_eq!(
        b.get("r01").await.unwrap().as_deref(),
        Some(&record("name-01"))
    );
    near_b.sync().await;
    let hits = near_b.stats().near_hits;
    assert_eq!(
        b.get("r01").await.unwrap().as_deref(),
        Some(&record("name-01"))
    );
    assert!(
        near_b.stats().near_hits > hits,
        "b's near tier did not hold the row"
    );

    a.replace("r01", record("renamed")).await.unwrap();
    near_b.sync().await;
    assert_eq!(
        b.get("r01").await.unwrap().as_deref(),
        Some(&record("renamed"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_read_overtaken_by_anothers_write_fills_neither_tier() {
    let server = RedisServer::start();
    let master = TestMaster::new(seed_rows(3));
    let (near_a, near_b) = (tiered(&server).await, tiered(&server).await);
    let a = LiveTable::new(master.clone(), "clients", Arc::new(near_a)).unwrap();
    let b = LiveTable::new(master.clone(), "clients", Arc::new(near_b.clone())).unwrap();

    // b misses and reads the master, which snapshots the old row and waits at the gate.
    let gate = master.hold_next_read();
    let slow_read = tokio::spawn(async move { b.get("r01").await });
    reach(&master.reads, 1).await;
    a.replace("r01", record("renamed")).await.unwrap();
    gate.open();
    // Its caller began before the write: the old row is a valid answer for it…
    assert_eq!(
        slow_read.await.unwrap().unwrap().as_deref(),
        Some(&record("name-01"))
    );
    // …but it must not have been cached, in Redis or in b's near tier.
    near_b.sync().await;
    let fresh = LiveTable::new(master.clone(), "clients", Arc::new(near_b)).unwrap();
    assert_eq!(
        fresh.get("r01").await.unwrap().as_deref(),
        Some(&record("renamed"))
    );
}

/// A RedisCache on `url` whose calls give up quickly on a silent or unreachable server.
async fn impatient(url: &str, namespace: &str) -> RedisCache {
    RedisCache::builder(url, namespace)
        .connect_timeout(Duration::from_millis(500))
        .response_timeout(Duration::from_millis(500))
        .connect()
        .await
        .unwrap()
}

/// RedisCache and TieredCache reaching Redis at `url`, each on a namespace of its own (named).
async fn impatient_backends(url: &str) -> Vec<(&'static str, Arc<dyn Cache>)> {
    let tiered = TieredCache::builder(MemCache::new(), impatient(url, "tiered").await)
        .poll_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    tiered.sync().await;
    vec![
        ("redis", Arc::new(impatient(url, "redis").await)),
        ("tiered", Arc::new(tiered)),
    ]
}

/// The row `clients` caches for id `r01` in Redis itself, read past every handle under test.
async fn row_in_redis(inspector: &RedisCache) -> Option<Record> {
    let cached = inspector.get("clients/id/r01").await.unwrap()?;
    cached.rows.get("r01").cloned()
}

/// Reads `r01` through `table` (always the renamed row: never the one it replaced) until Redis
/// no longer holds the replaced row, which takes the replay of the failed invalidation.
async fn read_until_redis_lets_go(table: &LiveTable, inspector: &RedisCache, name: &str) {
    let replayed = async {
        while row_in_redis(inspector).await == Some(record("name-01")) {
            assert_eq!(
                table.get("r01").await.unwrap().as_deref(),
                Some(&record("renamed")),
                "{name}: served the replaced row"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(HANG_GUARD, replayed)
        .await
        .unwrap_or_else(|_| panic!("{name}: the failed invalidation was never replayed"));
}

/// `error` says the replace was applied and only the invalidation failed, in Redis.
fn assert_applied_but_not_invalidated(error: &Error, name: &str) {
    match error {
        Error::WriteAppliedInvalidationFailed {
            cache_key,
            op,
            source,
        } => {
            assert_eq!((cache_key.as_str(), *op), ("clients", "replace"), "{name}");
            assert!(matches!(**source, Error::Redis(_)), "{name}: {source:?}");
        }
        other => panic!("{name}: expected WriteAppliedInvalidationFailed, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_invalidation_never_reached_redis_is_reported_and_its_old_row_never_served() {
    let server = RedisServer::start();
    let proxy = TcpProxy::start(server.port()).await;
    for (name, cache) in impatient_backends(&proxy.url()).await {
        let inspector = RedisCache::connect(&server.url(), name).await.unwrap();
        let master = TestMaster::new(seed_rows(3));
        let table = LiveTable::new(master.clone(), "clients", cache).unwrap();
        assert_eq!(
            table.get("r01").await.unwrap().as_deref(),
            Some(&record("name-01"))
        );
        assert_eq!(row_in_redis(&inspector).await, Some(record("name-01")));

        proxy.set(Mode::Cut);
        let error = table.replace("r01", record("renamed")).await.unwrap_err();
        assert_applied_but_not_invalidated(&error, name);
        assert_eq!(master.rows()["r01"], record("renamed"), "{name}: applied");
        assert_eq!(
            row_in_redis(&inspector).await,
            Some(record("name-01")),
            "{name}: the invalidation reached Redis after all"
        );
        // Cut off, the table reads the master: the replaced row is in Redis, but not served.
        assert_eq!(
            table.get("r01").await.unwrap().as_deref(),
            Some(&record("renamed")),
            "{name}"
        );

        // In touch again, the failed invalidation is replayed before Redis is read.
        proxy.set(Mode::Pass);
        read_until_redis_lets_go(&table, &inspector, name).await;
        assert_eq!(
            table.get("r01").await.unwrap().as_deref(),
            Some(&record("renamed")),
            "{name}"
        );
    }
}

/// A stopped server still holds the timed-out invalidation in its socket buffer and runs it when
/// it resumes: this test checks what callers see; the one above checks the replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_stopped_a_write_reports_its_failed_invalidation_and_reads_stay_fresh() {
    let server = RedisServer::start();
    for (name, cache) in impatient_backends(&server.url()).await {
        let inspector = RedisCache::connect(&server.url(), name).await.unwrap();
        let master = TestMaster::new(seed_rows(3));
        let table = LiveTable::new(master.clone(), "clients", cache).unwrap();
        table.get("r01").await.unwrap();
        assert_eq!(row_in_redis(&inspector).await, Some(record("name-01")));

        let paused = server.pause();
        let error = table.replace("r01", record("renamed")).await.unwrap_err();
        assert_applied_but_not_invalidated(&error, name);
        assert_eq!(
            table.get("r01").await.unwrap().as_deref(),
            Some(&record("renamed")),
            "{name}: served the replaced row while Redis was stopped"
        );
        paused.resume();

        read_until_redis_lets_go(&table, &inspector, name).await;
        assert_eq!(
            table.get("r01").await.unwrap().as_deref(),
            Some(&record("renamed")),
            "{name}"
        );
    }
}
