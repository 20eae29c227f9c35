//! Feature `metrics`: every operation moves the right counter under the right labels, the
//! histograms get samples at the event, and no publisher thread outlives its cache. Read back
//! through metrics-util's DebuggingRecorder, installed once for this binary.
#![cfg(feature = "metrics")]

mod common;
#[cfg(feature = "redis")]
#[path = "common/redis_server.rs"]
mod redis_server;
#[path = "live_table/support.rs"]
mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::{HANG, value};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use vlive::{__private::metrics_publishers_running, Cache, LiveTable, MemCache, Page, RedbCache};

/// Every figure seen so far. The recorder's snapshots take what they read (counters and
/// gauges swap to zero, histograms drain), so every test reads through this one merged view:
/// counters summed, gauges at the highest value seen, histogram samples all kept.
#[derive(Default)]
struct Seen {
    values: HashMap<String, f64>,
    samples: HashMap<String, Vec<f64>>,
}

fn snapshotter() -> &'static Snapshotter {
    static SNAPSHOTTER: OnceLock<Snapshotter> = OnceLock::new();
    SNAPSHOTTER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder
            .install()
            .expect("the only recorder of this binary");
        snapshotter
    })
}

fn seen() -> &'static Mutex<Seen> {
    static SEEN: OnceLock<Mutex<Seen>> = OnceLock::new();
    SEEN.get_or_init(Default::default)
}

/// `name{k=v,…}` with the labels sorted, as the tests name a series.
fn series(name: &str, labels: &[(&str, &str)]) -> String {
    let mut labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    labels.sort();
    format!("{name}{{{}}}", labels.join(","))
}

/// Takes a snapshot into [`Seen`] and reads from it.
fn read<T>(look: impl FnOnce(&Seen) -> T) -> T {
    let snapshot = snapshotter().snapshot();
    let mut seen = seen().lock().unwrap();
    for (key, _, _, value) in snapshot.into_vec() {
        let labels: Vec<(&str, &str)> = key
            .key()
            .labels()
            .map(|label| (label.key(), label.value()))
            .collect();
        let name = series(key.key().name(), &labels);
        match value {
            // Counters are added to (each snapshot took what was added since the last).
            DebugValue::Counter(n) => *seen.values.entry(name).or_default() += n as f64,
            DebugValue::Gauge(x) => raise(&mut seen.values, name, x.into_inner()),
            DebugValue::Histogram(xs) => seen
                .samples
                .entry(name)
                .or_default()
                .extend(xs.into_iter().map(|x| x.into_inner())),
        }
    }
    look(&seen)
}

fn raise(values: &mut HashMap<String, f64>, name: String, value: f64) {
    let slot = values.entry(name).or_insert(value);
    *slot = slot.max(value);
}

/// Waits (publishers copy once a second) until the series `name{labels}` has reached `at_least`.
async fn wait_value(name: &str, labels: &[(&str, &str)], at_least: f64) {
    let key = series(name, labels);
    let what = format!("{key} >= {at_least}");
    wait_for(&what, || {
        read(|seen| seen.values.get(&key).is_some_and(|v| *v >= at_least))
    })
    .await;
}

/// Waits until the histogram `name{labels}` holds at least one sample; returns them.
async fn wait_samples(name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
    let key = series(name, labels);
    wait_for(&format!("samples of {key}"), || {
        read(|seen| seen.samples.get(&key).is_some_and(|xs| !xs.is_empty()))
    })
    .await;
    read(|seen| seen.samples[&key].clone())
}

/// Polls `condition`, failing after [`HANG`] (a hang detector: nothing here asserts speed).
async fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + HANG;
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "hang: waited {HANG:?} for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The tests that count publisher threads run one at a time, apart from those that start them.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const OPS: &str = "vlive_cache_operations_total";

#[tokio::test]
async fn each_redb_cache_operation_moves_its_counter_under_its_labels() {
    let _serial = SERIAL.lock().await;
    snapshotter();
    let dir = tempfile::tempdir().unwrap();
    let cache = RedbCache::builder()
        .metrics_name("ops")
        .open(dir.path().join("c"))
        .unwrap();
    cache.put("k/1", value("a")).await.unwrap();
    cache.put("k/2", value("b")).await.unwrap();
    for _ in 0..3 {
        assert!(cache.get("k/1").await.unwrap().is_some());
    }
    assert!(cache.get("absent").await.unwrap().is_none());
    cache.invalidate_prefix("k/2").await.unwrap();

    let op = |tier, op, outcome| {
        [
            ("cache", "ops"),
            ("tier", tier),
            ("op", op),
            ("outcome", outcome),
        ]
    };
    wait_value(OPS, &op("disk", "put", "ok"), 2.0).await;
    wait_value(OPS, &op("disk", "get", "miss"), 1.0).await;
    wait_value(OPS, &op("disk", "invalidate", "ok"), 1.0).await;
    // The first get reads the store and keeps the entry hot; the others find it there.
    wait_value(OPS, &op("disk", "get", "hit"), 1.0).await;
    wait_value(OPS, &op("hot", "get", "hit"), 2.0).await;
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.hot_hits, stats.misses), (3, 2, 1));
    read(|seen| {
        let value = |labels: [(&str, &str); 4]| seen.values[&series(OPS, &labels)];
        assert_eq!(
            value(op("disk", "get", "hit")) + value(op("hot", "get", "hit")),
            3.0
        );
        assert_eq!(value(op("disk", "put", "ok")), 2.0, "no put counted twice");
    });
    let gauges = [
        ("vlive_cache_entries", ("tier", "disk")),
        ("vlive_cache_bytes", ("kind", "live")),
        ("vlive_cache_bytes", ("kind", "file")),
        ("vlive_cache_bytes", ("kind", "hot")),
    ];
    for (name, label) in gauges {
        wait_value(name, &[("cache", "ops"), label], 1.0).await;
    }
    cache.close().await.unwrap();
}

#[tokio::test]
async fn batches_record_their_size_and_commit_seconds() {
    let _serial = SERIAL.lock().await;
    snapshotter();
    let dir = tempfile::tempdir().unwrap();
    let cache = RedbCache::builder()
        .metrics_name("batches")
        .open(dir.path().join("c"))
        .unwrap();
    cache.put("k", value("a")).await.unwrap();
    let ops = wait_samples("vlive_cache_batch_ops", &[("cache", "batches")]).await;
    assert!(ops.iter().all(|n| *n >= 1.0), "{ops:?}");
    let seconds = wait_samples("vlive_cache_commit_seconds", &[("cache", "batches")]).await;
    assert!(seconds.iter().all(|s| *s >= 0.0), "{seconds:?}");
    cache.close().await.unwrap();
}

#[tokio::test]
async fn a_cache_is_named_after_its_folder_unless_given_a_name() {
    let _serial = SERIAL.lock().await;
    snapshotter();
    let dir = tempfile::tempdir().unwrap();
    let cache = RedbCache::open(dir.path().join("clients_by_folder")).unwrap();
    cache.put("k", value("a")).await.unwrap();
    let labels = [
        ("cache", "clients_by_folder"),
        ("tier", "disk"),
        ("op", "put"),
        ("outcome", "ok"),
    ];
    wait_value(OPS, &labels, 1.0).await;
    cache.close().await.unwrap();
}

#[tokio::test]
async fn live_table_reads_and_master_seconds_are_recorded() {
    let _serial = SERIAL.lock().await;
    snapshotter();
    let master = support::TestMaster::new(support::seed_rows(3));
    let cache = Arc::new(MemCache::new().with_metrics_name("table_mem"));
    let table = LiveTable::builder(master.clone(), "clients", cache)
        .metrics_name("table")
        .build()
        .unwrap();
    let page = Page::first(20);
    table.list(page).await.unwrap(); // a miss: one master read
    table.list(page).await.unwrap(); // a hit
    let reads = "vlive_live_table_reads_total";
    wait_value(reads, &[("cache", "table"), ("outcome", "miss")], 1.0).await;
    wait_value(reads, &[("cache", "table"), ("outcome", "hit")], 1.0).await;
    let calls = [("cache", "table"), ("call", "read"), ("outcome", "started")];
    wait_value("vlive_live_table_master_calls_total", &calls, 1.0).await;
    let seconds = wait_samples("vlive_live_table_master_seconds", &[("cache", "table")]).await;
    assert_eq!(seconds.len(), 1, "one master call, one sample: {seconds:?}");
    // The table's cache publishes its own figures, under its own name.
    let entries = [("cache", "table_mem"), ("tier", "memory")];
    wait_value("vlive_cache_entries", &entries, 1.0).await;
}

#[tokio::test]
async fn no_publisher_outlives_its_cache() {
    let _serial = SERIAL.lock().await;
    snapshotter();
    // Those of earlier tests wind down (a MemCache's notices its drop within a second).
    wait_for("earlier publishers to stop", || {
        metrics_publishers_running() == 0
    })
    .await;
    let dir = tempfile::tempdir().unwrap();

    // Closed: the publisher is woken by the actor's stop.
    let cache = RedbCache::open(dir.path().join("closed")).unwrap();
    assert_eq!(metrics_publishers_running(), 1);
    let clone = cache.clone();
    cache.close().await.unwrap();
    wait_for("the closed cache's publisher to stop", || {
        metrics_publishers_running() == 0
    })
    .await;
    drop(clone);

    // Dropped: the publisher holds no handle, so the actor stops and so does it.
    let cache = RedbCache::open(dir.path().join("dropped")).unwrap();
    cache.put("k", value("a")).await.unwrap();
    assert_eq!(metrics_publishers_running(), 1);
    drop(cache);
    wait_for("the dropped cache's publisher to stop", || {
        metrics_publishers_running() == 0
    })
    .await;
    // And the folder is free again: nothing kept the actor (and its file lock) alive.
    let reopened = RedbCache::open(dir.path().join("dropped")).unwrap();
    assert_eq!(common::tag(&reopened, "k").await.as_deref(), Some("a"));
    reopened.close().await.unwrap();
    wait_for("the reopened cache's publisher to stop", || {
        metrics_publishers_running() == 0
    })
    .await;

    // A MemCache and a LiveTable: dropped, their publishers notice at their next look.
    let master = support::TestMaster::new(support::seed_rows(1));
    let mem = Arc::new(MemCache::new().with_metrics_name("gone_mem"));
    let table = LiveTable::new(master, "gone", mem.clone()).unwrap();
    assert_eq!(metrics_publishers_running(), 2);
    drop(table);
    drop(mem);
    wait_for("the table's and MemCache's publishers to stop", || {
        metrics_publishers_running() == 0
    })
    .await;
}

/// Opening a folder this process already has open shares its actor, and its publisher.
#[tokio::test]
async fn a_second_open_of_a_folder_shares_the_publisher() {
    let _serial = SERIAL.lock().await;
    snapshotter();
    wait_for("earlier publishers to stop", || {
        metrics_publishers_running() == 0
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let first = RedbCache::open(dir.path().join("shared")).unwrap();
    let second = RedbCache::open(dir.path().join("shared")).unwrap();
    assert_eq!(metrics_publishers_running(), 1);
    second.put("k", value("a")).await.unwrap();
    assert!(first.get("k").await.unwrap().is_some());
    first.close().await.unwrap();
    wait_for("the shared publisher to stop", || {
        metrics_publishers_running() == 0
    })
    .await;
}

/// A cache reopened under the same name starts its stats at zero; its counters still only grow.
#[tokio::test]
async fn counters_keep_growing_across_a_close_and_reopen() {
    let _serial = SERIAL.lock().await;
    snapshotter();
    let dir = tempfile::tempdir().unwrap();
    for round in 0..2 {
        let cache = RedbCache::builder()
            .metrics_name("reopened")
            .open(dir.path().join("c"))
            .unwrap();
        cache.put(&format!("k{round}"), value("a")).await.unwrap();
        assert_eq!(cache.stats().puts, 1);
        cache.close().await.unwrap();
    }
    let puts = [
        ("cache", "reopened"),
        ("tier", "disk"),
        ("op", "put"),
        ("outcome", "ok"),
    ];
    wait_value(OPS, &puts, 2.0).await;
    read(|seen| assert_eq!(seen.values[&series(OPS, &puts)], 2.0));
}

/// A TieredCache names itself after its Redis namespace; near-tier gets are counted by outcome.
#[cfg(feature = "redis")]
#[tokio::test]
async fn tiered_cache_gets_are_counted_under_its_namespace() {
    let _serial = SERIAL.lock().await;
    snapshotter();
    let server = redis_server::RedisServer::start();
    let far = vlive::RedisCache::connect(&server.url(), "tiered_ns")
        .await
        .unwrap();
    let cache = vlive::TieredCache::builder(MemCache::new(), far)
        .poll_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    cache.put("k", value("a")).await.unwrap();
    // Until the reader has caught up, gets bypass the near tier: wait for a near hit.
    let deadline = std::time::Instant::now() + HANG;
    while cache.stats().near_hits == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "hang: no near-tier hit"
        );
        assert!(cache.get("k").await.unwrap().is_some());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let hit = [
        ("cache", "tiered_ns"),
        ("tier", "near"),
        ("op", "get"),
        ("outcome", "hit"),
    ];
    wait_value(OPS, &hit, 1.0).await;
    wait_value(
        "vlive_tiered_sessions_total",
        &[("cache", "tiered_ns")],
        1.0,
    )
    .await;
}

/// A write through one TieredCache is applied by another's reader, which records how late it
/// applied it (the server's TIME in the log entry against this host's clock).
#[cfg(feature = "redis")]
#[tokio::test]
async fn the_near_tier_records_how_late_it_applies_another_writers_entry() {
    let _serial = SERIAL.lock().await;
    snapshotter();
    let server = redis_server::RedisServer::start();
    let tiered = |name: &'static str| {
        let url = server.url();
        async move {
            let far = vlive::RedisCache::connect(&url, "lag_ns").await.unwrap();
            vlive::TieredCache::builder(MemCache::new(), far)
                .poll_interval(Duration::from_millis(50))
                .metrics_name(name)
                .build()
                .unwrap()
        }
    };
    let (writer, reader) = (tiered("lag_writer").await, tiered("lag_reader").await);
    // The reader's first session flushes and starts after the head: wait until it has.
    reader.sync().await;
    writer.put("k", value("a")).await.unwrap();
    let lags = wait_samples("vlive_tiered_near_lag_seconds", &[("cache", "lag_reader")]).await;
    assert!(
        lags.iter().all(|lag| lag.is_finite() && *lag >= 0.0),
        "lags are seconds, clamped at zero: {lags:?}"
    );
    assert!(reader.stats().log_entries >= 1);
}

/// A RedisCache counts its own calls by outcome under its namespace, and publishes what the
/// server holds for it; its publisher task stops when it is dropped.
#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_cache_calls_are_counted_under_its_namespace() {
    use vlive::FillOutcome;
    let _serial = SERIAL.lock().await;
    snapshotter();
    wait_for("earlier publishers to stop", || {
        metrics_publishers_running() == 0
    })
    .await;
    let mut server = redis_server::RedisServer::start();
    let cache = vlive::RedisCache::connect(&server.url(), "redis_ns")
        .await
        .unwrap();
    assert_eq!(metrics_publishers_running(), 1, "one task for the cache");
    assert!(cache.get("k").await.unwrap().is_none());
    cache.put("k", value("a")).await.unwrap();
    assert!(cache.get("k").await.unwrap().is_some());
    let token = cache.fill_token("f").await.unwrap();
    let filled = cache.fill("f", value("b"), token).await.unwrap();
    assert_eq!(filled, FillOutcome::Stored);
    let token = cache.fill_token("f").await.unwrap();
    cache.invalidate_prefix("f").await.unwrap();
    let filled = cache.fill("f", value("c"), token).await.unwrap();
    assert_eq!(filled, FillOutcome::RejectedStale);

    let op = |op: &'static str, outcome: &'static str| {
        [
            ("cache", "redis_ns"),
            ("tier", "redis"),
            ("op", op),
            ("outcome", outcome),
        ]
    };
    for (name, outcome) in [
        ("get", "hit"),
        ("get", "miss"),
        ("put", "ok"),
        ("fill", "ok"),
        ("fill", "rejected"),
        ("invalidate", "ok"),
    ] {
        wait_value(OPS, &op(name, outcome), 1.0).await;
    }
    // The server's figures for the namespace: "k" is there.
    let entries = [("cache", "redis_ns"), ("tier", "redis")];
    wait_value("vlive_cache_entries", &entries, 1.0).await;
    let bytes = [("cache", "redis_ns"), ("kind", "redis")];
    wait_value("vlive_cache_bytes", &bytes, 1.0).await;

    // A call the server cannot answer is an error, under its op.
    server.kill();
    assert!(cache.get("k").await.is_err());
    wait_value(OPS, &op("get", "error"), 1.0).await;

    drop(cache);
    wait_for("the dropped RedisCache's publisher to stop", || {
        metrics_publishers_running() == 0
    })
    .await;
}

/// `RedisCacheBuilder::metrics_name` replaces the namespace as the `cache` label.
#[cfg(feature = "redis")]
#[tokio::test]
async fn a_redis_cache_may_be_given_a_metrics_name() {
    let _serial = SERIAL.lock().await;
    snapshotter();
    let server = redis_server::RedisServer::start();
    let cache = vlive::RedisCache::builder(&server.url(), "plain_ns")
        .metrics_name("named_redis")
        .connect()
        .await
        .unwrap();
    cache.put("k", value("a")).await.unwrap();
    let puts = [
        ("cache", "named_redis"),
        ("tier", "redis"),
        ("op", "put"),
        ("outcome", "ok"),
    ];
    wait_value(OPS, &puts, 1.0).await;
    let unnamed = series(
        OPS,
        &[
            ("cache", "plain_ns"),
            ("tier", "redis"),
            ("op", "put"),
            ("outcome", "ok"),
        ],
    );
    read(|seen| assert!(!seen.values.contains_key(&unnamed)));
}
