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

#[path = "common/mod.rs"]
#[allow(dead_code)] // each bench uses a part of the harness
mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::fill::{fill_to, key};
use common::mode::{Size, runtime, size};
use common::{number::thousands, run_info, sample, stats::median, tasks};
use redb::{Database, ReadableDatabase, TableDefinition};
use vlive::__private::layout;
use vlive::{Cache, CachedRows, RedbCache};

const MIB: u64 = 1 << 20;
const TASKS: u64 = 2;
const STEPS: [&str; 4] = ["get, hot on", "get, hot off", "redb read", "decode"];

fn main() {
    // Under `cargo test --benches`: a smoke run, its figures meaningless.
    let (hot_mib, window) = match size() {
        Size::Smoke => (1, Duration::from_millis(20)),
        Size::Quick => (2, Duration::from_millis(500)),
        Size::Full => (8, Duration::from_secs(2)),
    };
    let dir = tempfile::tempdir().unwrap();
    let cache = RedbCache::builder().hot_bytes(0).open(dir.path()).unwrap();
    let entries = runtime(2).block_on(fill_to(cache, 4 * hot_mib * MIB));
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
                _ => tasks::on_threads(TASKS, window, |_| {
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
    for (step, rates) in STEPS.iter().zip(rounds) {
        let rate = median(rates);
        println!(
            "{step:<16} {:>10} op/s {:>8.2} µs/op per task",
            thousands(rate),
            1e6 * TASKS as f64 / rate
        );
    }
}

/// Gets per second of random keys through `RedbCache::get`, after a warm-up that fills the
/// hot tier.
fn gets(folder: &Path, entries: u64, hot_bytes: u64, window: Duration) -> f64 {
    runtime(TASKS as usize).block_on(async {
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
    let rates = tasks::fan_out(TASKS, |t| {
        let cache = cache.clone();
        async move {
            let mut rng = common::rng::Rng::new(t + 1);
            let (start, mut done) = (Instant::now(), 0u64);
            while start.elapsed() < window {
                let found = cache.get(&key(rng.below(entries))).await.unwrap();
                assert!(found.is_some(), "every key was written");
                done += 1;
            }
            done as f64 / start.elapsed().as_secs_f64()
        }
    });
    rates.await.into_iter().sum()
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
    tasks::on_threads(TASKS, window, |rng| {
        let key = key(rng.below(entries));
        let stored = table.get(key.as_str()).unwrap().unwrap();
        let payload = layout::payload(&key, stored.value()).expect("checksum");
        std::hint::black_box(payload.to_vec());
    })
}
