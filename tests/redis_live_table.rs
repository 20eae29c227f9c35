//! LiveTable, unchanged, over RedisCache and TieredCache: reads fill, hits skip the master,
//! writes invalidate; and across two caches on one namespace (two "processes" sharing a
//! master): a write through one table reaches the other's near tier, and a master read that a
//! write overtook does not land in either tier.
#![cfg(feature = "redis")]

#[path = "common/redis_server.rs"]
mod redis_server;
#[path = "live_table/support.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use redis_server::RedisServer;
use support::{TestMaster, reach, record, seed_rows};
use vlive::{Cache, LiveTable, MemCache, RedisCache, TieredCache};

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
