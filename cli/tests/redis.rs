//! The `vlive redis …` verbs, run end to end against a redis-server of the test's own.

mod common;
#[path = "../../tests/common/redis_cluster.rs"]
mod redis_cluster;
#[path = "../../tests/common/redis_server.rs"]
mod redis_server;

use common::{KEYS, demo_rows, listed_keys, vlive, vlive_json};
use redis_cluster::RedisCluster;
use redis_server::RedisServer;
use vlive::{Cache, RedisCache};

const NS: &str = "orders";

async fn filled(server: &RedisServer) -> RedisCache {
    let cache = RedisCache::connect(&server.url(), NS).await.unwrap();
    for key in KEYS {
        cache.put(key, demo_rows(key)).await.unwrap();
    }
    cache
}

#[tokio::test]
async fn stats_ls_get_invalidate_and_check_on_a_namespace() {
    let server = RedisServer::start();
    let cache = filled(&server).await;
    let url = server.url();

    let stats = vlive_json(&["redis", "stats", &url, NS]);
    assert_eq!(stats["entries"], 4);
    assert_eq!(stats["namespace"], NS);
    assert_eq!(stats["shards"], 1);

    let listed = vlive_json(&["redis", "ls", &url, NS, "clients/id/"]);
    let keys = listed_keys(&listed);
    assert_eq!(keys, ["clients/id/c-0007", "clients/id/c-0008"]);
    assert_eq!(listed[1]["rows"], 1);
    let limited = vlive_json(&["redis", "ls", &url, NS, "--limit", "3"]);
    assert_eq!(limited.as_array().unwrap().len(), 3);

    let page = vlive_json(&["redis", "get", &url, NS, "clients/page_2_10"]);
    assert_eq!(page["rows"]["c-0001"]["city"], "London");
    let table = vlive(&["redis", "get", &url, NS, "clients/id/c-0007"]);
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(
        table.stdout.contains("c-0007  client c-0007"),
        "{}",
        table.stdout
    );

    let run = vlive(&["redis", "invalidate", &url, NS, "clients/page"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // A client of the namespace sees the invalidation, and the listing no longer has them.
    assert!(cache.get("clients/page_1_10").await.unwrap().is_none());
    assert!(cache.get("clients/id/c-0007").await.unwrap().is_some());
    let after = vlive_json(&["redis", "ls", &url, NS]);
    assert_eq!(after.as_array().unwrap().len(), 2, "{after}");

    let check = vlive(&["redis", "check", &url, NS]);
    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);
    assert!(
        check.stdout.contains("sound: 2 entries checked"),
        "{}",
        check.stdout
    );
}

#[tokio::test]
async fn check_names_a_value_that_does_not_decode() {
    let server = RedisServer::start();
    let _cache = filled(&server).await;
    let url = server.url();
    // Garbage where c-0008's value was: what another program writing into the namespace, or
    // a damaged restore, would leave.
    server
        .admin(&[
            "HSET",
            "{vlive:orders}:v",
            "clients/id/c-0008",
            "\u{1}garbage",
        ])
        .await
        .unwrap();

    let check = vlive(&["redis", "check", &url, NS]);
    assert_eq!(check.code, 1, "{}{}", check.stdout, check.stderr);
    assert!(
        check.stdout.contains("clients/id/c-0008"),
        "{}",
        check.stdout
    );
    assert!(
        check.stdout.contains("DAMAGED: 1 of 4 entries"),
        "{}",
        check.stdout
    );
    let get = vlive(&["redis", "get", &url, NS, "clients/id/c-0008"]);
    assert_eq!(get.code, 2);
    assert!(get.stderr.contains("corrupt value"), "{}", get.stderr);
}

#[tokio::test]
async fn a_missing_namespace_is_an_error_and_is_not_created() {
    let server = RedisServer::start();
    let url = server.url();
    for verb in ["stats", "ls", "check"] {
        let run = vlive(&["redis", verb, &url, "nothing-here"]);
        assert_eq!(run.code, 2, "{verb}");
        assert!(
            run.stderr.contains("no such namespace on the server"),
            "{verb}: {}",
            run.stderr
        );
    }
    let keys = server.admin(&["DBSIZE"]).await.unwrap();
    assert_eq!(redis_server::int(keys), 0, "looking created nothing");
}

#[tokio::test]
async fn the_verbs_work_on_a_cluster_namespace_spread_over_shards() {
    let cluster = RedisCluster::start().await;
    let seeds = cluster.seeds();
    let cache = RedisCache::cluster_builder(&RedisCluster::seed_refs(&seeds), NS)
        .connect()
        .await
        .unwrap();
    for key in KEYS {
        cache.put(key, demo_rows(key)).await.unwrap();
    }
    let seeds = seeds.join(",");

    let stats = vlive_json(&["redis", "--cluster", "stats", &seeds, NS]);
    assert_eq!(stats["entries"], 4);
    assert_eq!(
        stats["shards"], 16,
        "the shard count is read from the namespace"
    );
    // Keys from every shard come back merged in key order.
    let listed = vlive_json(&["redis", "--cluster", "ls", &seeds, NS]);
    let keys = listed_keys(&listed);
    assert_eq!(keys, KEYS);
    let run = vlive(&[
        "redis",
        "--cluster",
        "invalidate",
        &seeds,
        NS,
        "clients/id/",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(cache.get("clients/id/c-0008").await.unwrap().is_none());
    let check = vlive(&["redis", "--cluster", "check", &seeds, NS]);
    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);
    assert!(
        check.stdout.contains("sound: 2 entries checked"),
        "{}",
        check.stdout
    );
}
