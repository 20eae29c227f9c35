//! # Owner mode: what sharing the file with readers would cost the cache that owns it
//!
//! `cargo bench --bench owner_mode` decides whether the `vlive` CLI may open a folder a running
//! cache holds (docs/cli.md). redb 4.6's `ConcurrencyMode::SingleWriter` lets other processes
//! open a database read-only and follow its commits, but the owner must open in that mode too.
//! This measures the owner's side, on redb directly with vlive's own 3.4 KB values: durable
//! single-put commits (vlive's default mode) under the default `ExclusiveWriter` and under
//! `SingleWriter`, alone and with a follower reading, interleaved round by round so that the
//! disk's drift hits every mode alike; and whether `SingleWriter` accepts the non-durable
//! commits vlive's lazy mode is built on. `VLIVE_BENCH_QUICK=1`: 3 rounds of 100 commits.

#[path = "common/mode.rs"]
#[allow(dead_code)] // the shared file also builds runtimes, which this bench does not use
mod mode;
#[path = "common/rng.rs"]
mod rng;
#[path = "common/sample.rs"]
#[allow(dead_code)] // the shared sample file also has the decoder other benches use
mod sample;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use redb::{
    ConcurrencyMode, Database, Durability, ReadableDatabase, ReadableTableMetadata, TableDefinition,
};
use vlive::CachedRows;

const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("bench");
/// Distinct keys the puts land on.
const KEYS: u64 = 1000;

fn main() {
    let (rounds, commits) = if mode::quick() { (3, 100) } else { (7, 500) };
    let value = sample::encode(&CachedRows::new(sample::sample_rows()));
    let modes = [
        (
            "exclusive (vlive today)",
            ConcurrencyMode::ExclusiveWriter,
            false,
        ),
        (
            "single-writer, no reader",
            ConcurrencyMode::SingleWriter,
            false,
        ),
        (
            "single-writer + follower",
            ConcurrencyMode::SingleWriter,
            true,
        ),
    ];
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
    for round in 0..rounds {
        for (i, (_, mode, follower)) in modes.iter().enumerate() {
            rates[i].push(durable_puts(*mode, *follower, commits, &value, round));
        }
    }
    println!(
        "owner: durable single-put commits of {} B values, median of {rounds} rounds of {commits}",
        value.len()
    );
    println!("{:<26} {:>10} {:>14}", "mode", "puts/s", "vs exclusive");
    let base = median(&mut rates[0].clone());
    for (i, (name, _, _)) in modes.iter().enumerate() {
        let rate = median(&mut rates[i]);
        println!("{name:<26} {rate:>10.0} {:>13.2}x", rate / base);
    }
    println!(
        "single-writer accepts non-durable commits (lazy mode): {}",
        lazy_commit_accepted()
    );
}

/// Durable commits per second of an owner opened in `mode`, with a reader following it in
/// another handle if `follower`.
fn durable_puts(
    mode: ConcurrencyMode,
    follower: bool,
    commits: u64,
    value: &[u8],
    seed: u64,
) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.redb");
    let db = open(&path, mode);
    let stop = Arc::new(AtomicBool::new(false));
    let reader = follower.then(|| follow(&path, mode, stop.clone()));
    let mut rng = rng::Rng::new(seed + 1);
    let start = Instant::now();
    for _ in 0..commits {
        let key = format!("clients/page_{}", rng.below(KEYS));
        let mut txn = db.begin_write().unwrap();
        txn.set_durability(Durability::Immediate).unwrap();
        txn.open_table(TABLE)
            .unwrap()
            .insert(key.as_str(), value)
            .unwrap();
        txn.commit().unwrap();
    }
    let rate = commits as f64 / start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    if let Some(reader) = reader {
        let reads = reader.join().unwrap();
        assert!(reads > 0, "the follower read nothing");
    }
    rate
}

fn open(path: &Path, mode: ConcurrencyMode) -> Database {
    let mut builder = redb::Builder::new();
    builder.set_concurrency_mode(mode);
    let db = builder.create(path).unwrap();
    // The table exists before a follower opens it.
    let txn = db.begin_write().unwrap();
    txn.open_table(TABLE).unwrap();
    txn.commit().unwrap();
    db
}

/// A read-only handle that reads the table's newest commit in a loop until `stop`, as a CLI
/// following a live folder would; returns how many reads it made.
fn follow(
    path: &Path,
    mode: ConcurrencyMode,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    let mut builder = redb::Builder::new();
    builder.set_concurrency_mode(mode);
    let reader = builder.open_read_only(path).unwrap();
    std::thread::spawn(move || {
        let mut reads = 0;
        while !stop.load(Ordering::Relaxed) {
            let txn = reader.begin_read().unwrap();
            let table = txn.open_table(TABLE).unwrap();
            reads += table.len().unwrap().min(1) + 1;
        }
        reads
    })
}

/// Whether an owner in `SingleWriter` mode may commit with `Durability::None`.
fn lazy_commit_accepted() -> bool {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir.path().join("lazy.redb"), ConcurrencyMode::SingleWriter);
    let mut txn = db.begin_write().unwrap();
    txn.set_durability(Durability::None).is_ok()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
