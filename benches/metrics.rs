//! # The cost of metrics (feature `metrics`)
//!
//! `cargo bench --bench metrics --features metrics` opens two caches side by side in one
//! process: one built with no recorder installed (its metric handles are no-ops) and one built
//! under a Prometheus recorder (`metrics-exporter-prometheus`, as an application would run
//! it). Then, interleaved in 3 rounds so that a burst of load from elsewhere spoils one round of
//! each rather than all of one, it measures on each:
//! - `get (hot)`: gets of 100 keys the hot tier answers, from one task: the fastest path, where
//!   any per-call cost would show most;
//! - `put (lazy)`: lazy puts of a 3.4 KB value, flushed at the end of the window: one batch
//!   histogram sample per actor batch.
//!
//! and prints each median round and the ratio (recorder / none; 1.00 = no cost). Gets and puts
//! touch no metric at all: counters and gauges are copied from `stats()` by a publisher thread
//! once a second. With the feature off nothing is compiled in (`cfg`), so there is no third
//! column to measure. `VLIVE_BENCH_QUICK=1`: 0.3 s windows; under `cargo test --benches`, a
//! smoke run of a few milliseconds a step.

#[path = "common/mode.rs"]
#[allow(dead_code)] // the shared file also builds runtimes, which this bench does not use
mod mode;
#[path = "common/run_info.rs"]
mod run_info;
#[path = "common/sample.rs"]
mod sample;

use std::path::Path;
use std::time::{Duration, Instant};

use vlive::{Cache, CachedRows, Durability, RedbCache};

const KEYS: u64 = 100;

fn main() {
    let window = match mode::size() {
        mode::Size::Smoke => Duration::from_millis(10),
        mode::Size::Quick => Duration::from_millis(300),
        mode::Size::Full => Duration::from_secs(2),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let plain = open(&dir.path().join("plain"));
    // Registered under the recorder: vlive's handles are bound when a cache is built. Leaked:
    // the recorder must outlive every handle, which lives as long as the process here.
    let recorder: &'static _ = Box::leak(Box::new(
        metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder(),
    ));
    let recorded = metrics::with_local_recorder(recorder, || open(&dir.path().join("recorded")));

    let value = CachedRows::new(sample::sample_rows());
    let mut rates = [[Vec::new(), Vec::new()], [Vec::new(), Vec::new()]];
    runtime.block_on(async {
        for cache in [&plain, &recorded] {
            for key in 0..KEYS {
                cache.put(&format!("k{key}"), value.clone()).await.unwrap();
            }
        }
        for _ in 0..3 {
            for (side, cache) in [&plain, &recorded].into_iter().enumerate() {
                rates[0][side].push(gets(cache, window).await);
                rates[1][side].push(puts(cache, &value, window).await);
            }
        }
    });
    let rendered = recorder.handle().render();
    assert!(
        rendered.contains(r#"vlive_cache_batch_ops_count{cache="recorded"}"#),
        "the recorded cache's figures reached the recorder"
    );

    println!("metrics cost, commit {}", run_info::commit());
    println!(
        "{:<12} {:>14} {:>14} {:>8}",
        "op", "no recorder", "prometheus", "ratio"
    );
    for (name, [none, with]) in ["get (hot)", "put (lazy)"].iter().zip(rates) {
        let (none, with) = (median(none), median(with));
        println!(
            "{name:<12} {:>10.0} op/s {:>10.0} op/s {:>8.2}",
            none,
            with,
            with / none
        );
    }
    runtime.block_on(async {
        plain.close().await.unwrap();
        recorded.close().await.unwrap();
    });
}

fn open(folder: &Path) -> RedbCache {
    RedbCache::builder()
        .durability(Durability::Lazy {
            max_delay: Duration::from_secs(1),
        })
        .open(folder)
        .unwrap()
}

/// Gets per second over `window`, keys round robin (all in the hot tier after the first pass).
async fn gets(cache: &RedbCache, window: Duration) -> f64 {
    let keys: Vec<String> = (0..KEYS).map(|k| format!("k{k}")).collect();
    let started = Instant::now();
    let mut done = 0u64;
    while started.elapsed() < window {
        for key in &keys {
            assert!(cache.get(key).await.unwrap().is_some());
        }
        done += KEYS;
    }
    done as f64 / started.elapsed().as_secs_f64()
}

/// Lazy puts per second over `window`, their flush included.
async fn puts(cache: &RedbCache, value: &CachedRows, window: Duration) -> f64 {
    let started = Instant::now();
    let mut done = 0u64;
    while started.elapsed() < window {
        cache
            .put(&format!("k{}", done % KEYS), value.clone())
            .await
            .unwrap();
        done += 1;
    }
    cache.flush().await.unwrap();
    done as f64 / started.elapsed().as_secs_f64()
}

fn median(mut rates: Vec<f64>) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}
