//! RedisCache and TieredCache on a real Redis Cluster (three masters, three replicas; issue 19):
//! a namespace spreads over every master; exact prefix invalidation, fill guards and near-tier
//! coherence hold across shards; a client with another shard count is refused; and through a
//! graceful failover and a kill -9 of a master every call returns within its timeouts and the
//! service resumes once a replica is promoted, with near tiers coherent.
//! (The contract and model suites also run on a cluster: tests/contract.rs, tests/model.rs.)
#![cfg(feature = "redis")]

mod common;
#[path = "common/redis_cluster.rs"]
mod redis_cluster;
#[path = "common/redis_server.rs"]
mod redis_server;

use std::time::Duration;

use common::{tag, value, within};
use redis_cluster::RedisCluster;
use redis_server::int;
use vlive::{Cache, Error, FillOutcome, MemCache, RedisCache, TieredCache};

async fn connect(cluster: &RedisCluster, namespace: &str) -> RedisCache {
    let seeds = cluster.seeds();
    RedisCache::cluster_builder(&RedisCluster::seed_refs(&seeds), namespace)
        .response_timeout(Duration::from_secs(2))
        .connect()
        .await
        .unwrap()
}

/// Entries of `namespace` held by each master (HLEN of every shard's values hash, asked of
/// every master: a master that does not own a shard answers MOVED).
async fn entries_per_master(cluster: &RedisCluster, namespace: &str, shards: usize) -> Vec<i64> {
    let mut per_master = Vec::new();
    for master in cluster.masters().await {
        let mut held = 0;
        for shard in 0..shards {
            // The tags `src/redis_cache/shards.rs` picks: ask each candidate key; only the
            // owner answers.
            let key = shard_values_key(namespace, shard, shards);
            if let Ok(reply) = cluster.nodes[master].admin(&["HLEN", &key]).await {
                held += int(reply);
            }
        }
        per_master.push(held);
    }
    per_master
}

/// Shard `shard`'s values hash, found as RedisCache finds it: the first `vlive:NS:shard.j` tag
/// whose slot lies in the shard's slot range.
fn shard_values_key(namespace: &str, shard: usize, shards: usize) -> String {
    let (low, high) = (shard * 16384 / shards, (shard + 1) * 16384 / shards);
    (0..)
        .map(|j| format!("{{vlive:{namespace}:{shard}.{j}}}:v"))
        .find(|key| (low..high).contains(&(slot(key) as usize)))
        .unwrap()
}

/// The slot of a `{tag}…` key (CRC16/XMODEM of the tag, mod 16384).
fn slot(key: &str) -> u16 {
    let tag = &key[1..key.find('}').unwrap()];
    let mut crc: u16 = 0;
    for &byte in tag.as_bytes() {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16384
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_spreads_over_every_master_and_keeps_exact_prefixes() {
    let cluster = RedisCluster::start().await;
    let cache = connect(&cluster, "spread").await;
    assert_eq!(cache.shards(), 16);
    for i in 0..1500 {
        cache.put(&format!("users/{i}"), value("u")).await.unwrap();
    }
    let per_master = entries_per_master(&cluster, "spread", 16).await;
    assert_eq!(per_master.len(), 3);
    assert_eq!(per_master.iter().sum::<i64>(), 1500, "{per_master:?}");
    assert!(
        per_master.iter().all(|&n| n >= 350),
        "a master holds less than a fair share: {per_master:?}"
    );

    // Exact prefixes across shards.
    cache.put("users", value("root")).await.unwrap();
    cache.put("usersx/1", value("x")).await.unwrap();
    cache.invalidate_prefix("users/1").await.unwrap();
    for i in [1, 10, 19, 100, 1499] {
        assert_eq!(tag(&cache, &format!("users/{i}")).await, None, "users/{i}");
    }
    for i in [0, 2, 20, 200, 999] {
        assert_eq!(
            tag(&cache, &format!("users/{i}")).await.as_deref(),
            Some("u")
        );
    }
    cache.invalidate_prefix("users/").await.unwrap();
    assert_eq!(tag(&cache, "users/0").await, None);
    assert_eq!(tag(&cache, "users").await.as_deref(), Some("root"));
    assert_eq!(tag(&cache, "usersx/1").await.as_deref(), Some("x"));
    let stats = cache.stats().await.unwrap();
    assert_eq!(stats.entries, 2, "{stats:?}");

    // The fill guard, through another client: a token taken before an invalidation that
    // covers the key is stale, one after it is not.
    let other = connect(&cluster, "spread").await;
    let token = cache.fill_token("orders/7").await.unwrap();
    other.invalidate_prefix("orders/").await.unwrap();
    assert_eq!(
        cache.fill("orders/7", value("stale"), token).await.unwrap(),
        FillOutcome::RejectedStale
    );
    let token = cache.fill_token("orders/7").await.unwrap();
    assert_eq!(
        cache.fill("orders/7", value("fresh"), token).await.unwrap(),
        FillOutcome::Stored
    );
    assert_eq!(tag(&other, "orders/7").await.as_deref(), Some("fresh"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_shard_count_is_refused() {
    let cluster = RedisCluster::start().await;
    let seeds = cluster.seeds();
    let seeds = RedisCluster::seed_refs(&seeds);
    RedisCache::cluster_builder(&seeds, "ns")
        .shards(8)
        .connect()
        .await
        .unwrap();
    let other = RedisCache::cluster_builder(&seeds, "ns").connect().await;
    match other {
        Err(Error::InvalidConfig { reason }) => {
            assert!(reason.contains("8 shards"), "{reason}")
        }
        other => panic!("a client with 16 shards on an 8-shard namespace: {other:?}"),
    }
    let bad_seed = RedisCache::cluster_builder(&[], "ns").connect().await;
    assert!(matches!(bad_seed, Err(Error::InvalidConfig { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_tiers_stay_coherent_across_shards() {
    let cluster = RedisCluster::start().await;
    let writer = TieredCache::new(MemCache::new(), connect(&cluster, "tiered").await);
    // Its first seed is dead: its log readers must find the shards' nodes through the others.
    let mut seeds = vec![format!("redis://127.0.0.1:{}/", redis_server::free_port())];
    seeds.extend(cluster.seeds());
    let far = RedisCache::cluster_builder(&RedisCluster::seed_refs(&seeds), "tiered")
        .connect_timeout(Duration::from_millis(500))
        .connect()
        .await
        .unwrap();
    let reader = TieredCache::new(MemCache::new(), far);
    within("sync", reader.sync()).await;
    for i in 0..64 {
        writer.put(&format!("k/{i}"), value("one")).await.unwrap();
    }
    within("sync", reader.sync()).await;
    for i in 0..64 {
        assert_eq!(
            tag(&reader, &format!("k/{i}")).await.as_deref(),
            Some("one")
        );
    }
    let near_hits = reader.stats().near_hits;
    for i in 0..64 {
        assert_eq!(
            tag(&reader, &format!("k/{i}")).await.as_deref(),
            Some("one")
        );
    }
    assert_eq!(
        reader.stats().near_hits,
        near_hits + 64,
        "served by the near tier"
    );
    writer.invalidate_prefix("k/").await.unwrap();
    for i in 0..64 {
        writer.put(&format!("k/{i}"), value("two")).await.unwrap();
    }
    within("sync", reader.sync()).await;
    for i in 0..64 {
        assert_eq!(
            tag(&reader, &format!("k/{i}")).await.as_deref(),
            Some("two"),
            "k/{i} stale in the near tier"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_replicas_waits_on_the_shards_own_nodes() {
    let cluster = RedisCluster::start().await;
    let seeds = cluster.seeds();
    let seeds = RedisCluster::seed_refs(&seeds);
    let one = RedisCache::cluster_builder(&seeds, "replicated")
        .wait_replicas(1, Duration::from_secs(2))
        .connect()
        .await
        .unwrap();
    one.put("a/1", value("v")).await.unwrap();
    one.invalidate_prefix("a/").await.unwrap();
    assert_eq!(tag(&one, "a/1").await, None);
    let two = RedisCache::cluster_builder(&seeds, "replicated")
        .wait_replicas(2, Duration::from_millis(200))
        .connect()
        .await
        .unwrap();
    match within("invalidate", two.invalidate_prefix("b/")).await {
        Err(Error::Redis(fault)) => assert!(
            matches!(
                fault.kind,
                vlive::RedisFaultKind::NotReplicated {
                    confirmed: 1,
                    wanted: 2
                }
            ),
            "{fault}"
        ),
        other => panic!("each master has one replica, two were asked for: {other:?}"),
    }
}

/// Calls go on while `failover` runs; every call returns within the timeouts (an error is
/// allowed while a master is missing), and once the cluster is whole again puts, gets,
/// invalidations and the near tier work.
async fn service_resumes_after(
    cluster: &RedisCluster,
    namespace: &str,
    failover: impl AsyncFnOnce(),
) {
    let cache = connect(cluster, namespace).await;
    let near = TieredCache::new(MemCache::new(), connect(cluster, namespace).await);
    for i in 0..200 {
        cache.put(&format!("k/{i}"), value("before")).await.unwrap();
    }
    let load = tokio::spawn({
        let cache = cache.clone();
        async move {
            let (mut ok, mut failed) = (0u32, 0u32);
            for round in 0..400 {
                let key = format!("k/{}", round % 200);
                // Bounded: 2 s response, connect 2 s, a few retries.
                let put =
                    tokio::time::timeout(Duration::from_secs(15), cache.put(&key, value("during")))
                        .await
                        .expect("a put hung through the failover");
                match put {
                    Ok(()) => ok += 1,
                    Err(_) => failed += 1,
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (ok, failed)
        }
    });
    failover().await;
    cluster.wait_until_ok().await;
    let (ok, failed) = within("the load", load).await.unwrap();
    eprintln!("{namespace}: {ok} puts ok, {failed} failed during the failover");
    // Service resumes: every shard takes writes again (possibly after a last redirect).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut all = true;
        for i in 0..200 {
            all &= cache.put(&format!("k/{i}"), value("after")).await.is_ok();
        }
        if all {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "puts still fail after the failover"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    within("sync", near.sync()).await;
    assert_eq!(tag(&near, "k/5").await.as_deref(), Some("after"));
    cache.invalidate_prefix("k/").await.unwrap();
    within("sync", near.sync()).await;
    for i in 0..200 {
        assert_eq!(
            tag(&near, &format!("k/{i}")).await,
            None,
            "k/{i} survived the invalidation"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_failover_keeps_the_service() {
    let cluster = RedisCluster::start().await;
    service_resumes_after(&cluster, "graceful", async || {
        // A replica takes over from its master (CLUSTER FAILOVER, run on the replica).
        let masters = cluster.masters().await;
        let replica = (0..cluster.nodes.len())
            .find(|i| !masters.contains(i))
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        // A manual failover is abandoned if the replica cannot catch up in time (a busy
        // machine): an operator asks again, and so does this test.
        'promoted: while tokio::time::Instant::now() < deadline {
            cluster.nodes[replica]
                .admin(&["CLUSTER", "FAILOVER"])
                .await
                .unwrap();
            for _ in 0..100 {
                if cluster.masters().await.contains(&replica) {
                    break 'promoted;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        assert!(
            cluster.masters().await.contains(&replica),
            "the replica was not promoted:\n{}",
            cluster.nodes[replica].log_tail(30)
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_master_is_replaced_and_the_service_resumes() {
    let mut cluster = RedisCluster::start().await;
    let victim = cluster.masters().await[0];
    // Take the node out of `cluster` while killing it, so the closure borrows only `cluster`.
    let mut killed = cluster.nodes.remove(victim);
    service_resumes_after(&cluster, "killed", async || {
        tokio::time::sleep(Duration::from_millis(300)).await;
        killed.kill();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while cluster.masters().await.len() < 3 {
            if tokio::time::Instant::now() >= deadline {
                let nodes = cluster.nodes[0].admin(&["CLUSTER", "NODES"]).await;
                panic!("no replica was promoted: {nodes:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}
