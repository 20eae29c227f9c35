//! # Cold get: a get the hot tier does not answer, whole and in its steps
//!
//! `cargo bench --bench cold_get` writes 32 MiB of 20-row values (about 3.4 KB each: four times
//! an 8 MiB hot tier), closes the cache, then measures, from 2 tasks reading random keys:
//! - `get, hot on`: `RedbCache::get` with an 8 MiB hot tier (about 3 gets in 4 miss it);
//! - `get, hot off`: the same with the tier off, every get cold;
//! - `redb read`: the value's bytes alone, from a read transaction on the same file opened with
//!   redb directly, its checksum verified and the payload copied out (what the store does
//!   before decoding; no actor, no hot tier);
//! - `decode`: `codec::decode` of one value's bytes, nothing else.
//!
//! Each is measured for 2 s in each of 3 rounds, interleaved so a burst of load from another
//! process spoils one round of each rather than all of one; the table shows the median round.
//! `VLIVE_BENCH_QUICK=1`: 8 MiB of values, a 2 MiB tier, 0.5 s rounds; under `cargo test
//! --benches`, a smoke run of a few milliseconds a step. `VLIVE_COLD_ONLY=2`
//! measures the second step only (for a profiler: `docs/cold-reads.md`); the others print 0.

#[path = "common/number.rs"]
mod number;
#[path = "common/rng.rs"]
mod rng;
#[path = "common/run_info.rs"]
mod run_info;
#[path = "common/sample.rs"]
mod sample;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redb::{Database, ReadableDatabase, TableDefinition};
use vlive::__private::layout;
use vlive::{Cache, CachedRows, RedbCache};

const MIB: u64 = 1 << 20;
const TASKS: u64 = 2;
const STEPS: [&str; 4] = ["get, hot on", "get, hot off", "redb read", "decode"];

fn main() {
    let quick = std::env::var("VLIVE_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    // `cargo test --benches` passes no `--bench`: then a smoke run, its figures meaningless.
    let benching = std::env::args().any(|a| a == "--bench");
    let (hot_mib, window) = match (benching, quick) {
        (false, _) => (1, Duration::from_millis(20)),
        (true, true) => (2, Duration::from_millis(500)),
        (true, false) => (8, Duration::from_secs(2)),
    };
    let dir = tempfile::tempdir().unwrap();
    let entries = fill(dir.path(), 4 * hot_mib);
    let bytes = sample::encode(&CachedRows::new(sample::sample_rows()));
    let mut rounds = vec![Vec::new(); STEPS.len()];
    let only: usize = std::env::var("VLIVE_COLD_ONLY").map_or(0, |v| v.parse().unwrap());
    for _ in 0..3 {
        for (step, rates) in rounds.iter_mut().enumerate() {
            rates.push(match step + 1 {
                n if only != 0 && n != only => 0.0,
                1 => gets(dir.path(), entries, hot_mib * MIB, window),
                2 => gets(dir.path(), entries, 0, window),
                3 => redb_reads(dir.path(), entries, window),
                _ => on_threads(window, |_| {
                    std::hint::black_box(sample::decode(std::hint::black_box(&bytes)));
                }),
            });
        }
    }
    println!(
        "cold_get at {}: {entries} entries of {} bytes ({} MiB), hot tier {hot_mib} MiB, {TASKS} tasks, median of 3 rounds of {window:?}",
        run_info::commit(),
        bytes.len(),
        4 * hot_mib
    );
    for (step, mut rates) in STEPS.iter().zip(rounds) {
        rates.sort_by(f64::total_cmp);
        let rate = rates[1];
        println!(
            "{step:<16} {:>10} op/s {:>8.2} µs/op per task",
            number::thousands(rate),
            1e6 * TASKS as f64 / rate
        );
    }
}

fn key(i: u64) -> String {
    format!("k/{i:08}")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(TASKS as usize)
        .enable_all()
        .build()
        .unwrap()
}

/// Writes entries until `mib` MiB are charged; returns how many.
fn fill(folder: &Path, mib: u64) -> u64 {
    runtime().block_on(async {
        let cache = RedbCache::builder().hot_bytes(0).open(folder).unwrap();
        let value = CachedRows::new(sample::sample_rows());
        let mut n = 0;
        while cache.stats().live_bytes < mib * MIB {
            cache.put(&key(n), value.clone()).await.unwrap();
            n += 1;
        }
        cache.close().await.unwrap();
        n
    })
}

/// Gets per second of random keys through `RedbCache::get`, after a warm-up that fills the
/// hot tier.
fn gets(folder: &Path, entries: u64, hot_bytes: u64, window: Duration) -> f64 {
    runtime().block_on(async {
        let cache = RedbCache::builder()
            .hot_bytes(hot_bytes)
            .open(folder)
            .unwrap();
        read_for(&cache, entries, window / 2).await;
        let rate = read_for(&cache, entries, window).await;
        cache.close().await.unwrap();
        rate
    })
}

/// Gets per second from `TASKS` tasks for `window`.
async fn read_for(cache: &RedbCache, entries: u64, window: Duration) -> f64 {
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let cache = cache.clone();
            tokio::spawn(async move {
                let mut rng = rng::Rng::new(t + 1);
                let (start, mut done) = (Instant::now(), 0u64);
                while start.elapsed() < window {
                    let found = cache.get(&key(rng.below(entries))).await.unwrap();
                    assert!(found.is_some(), "every key was written");
                    done += 1;
                }
                done as f64 / start.elapsed().as_secs_f64()
            })
        })
        .collect();
    let mut sum = 0.0;
    for task in tasks {
        sum += task.await.unwrap();
    }
    sum
}

/// Reads per second of random keys' checked payloads, straight from redb.
fn redb_reads(folder: &Path, entries: u64, window: Duration) -> f64 {
    let db = Database::open(folder.join(vlive::DB_FILE_NAME)).unwrap();
    let txn = db.begin_read().unwrap();
    let (table, _) = layout::locate("");
    let table = txn
        .open_table(TableDefinition::<&str, &[u8]>::new(table))
        .unwrap();
    let table = Arc::new(table);
    on_threads(window, |rng| {
        let key = key(rng.below(entries));
        let stored = table.get(key.as_str()).unwrap().unwrap();
        let payload = layout::payload(&key, stored.value()).expect("checksum");
        std::hint::black_box(payload.to_vec());
    })
}

/// Operations per second of `op`, run back to back on `TASKS` threads for `window`.
fn on_threads(window: Duration, op: impl Fn(&mut rng::Rng) + Sync) -> f64 {
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..TASKS)
            .map(|t| {
                let op = &op;
                scope.spawn(move || {
                    let mut rng = rng::Rng::new(t + 1);
                    let (start, mut done) = (Instant::now(), 0u64);
                    while start.elapsed() < window {
                        op(&mut rng);
                        done += 1;
                    }
                    done as f64 / start.elapsed().as_secs_f64()
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).sum()
    })
}
