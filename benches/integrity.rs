//! # Integrity: what a whole-file check and the per-value checksum cost
//!
//! `cargo bench --bench integrity` fills a cache with 3.4 KB values to 64 MiB and 256 MiB of
//! entries, closes it, and times redb's `Database::check_integrity` over the file (a walk of
//! every page that verifies its checksum), which vlive runs only after a `Corrupted` error
//! (docs/failure-modes.md). For scale it also times the open of the same file, and reading every
//! value back through the cache (each read checks the value's own checksum). `VLIVE_BENCH_QUICK=1`
//! measures 16 MiB only (a few seconds).

#[path = "common/mod.rs"]
#[allow(dead_code)] // each bench uses a part of the harness
mod common;

use std::time::{Duration, Instant};

use common::fill::{fill_to, key};
use common::mode::{Size, runtime, size};
use vlive::{Cache, RedbCache};

fn main() {
    let sizes: &[u64] = match size() {
        Size::Smoke => &[2],
        Size::Quick => &[16],
        Size::Full => &[64, 256],
    };
    let runtime = runtime(2);
    println!(
        "entries MiB  file MiB  open ms  check_integrity ms  check MB/s  read all ms  read MB/s"
    );
    for &mib in sizes {
        let dir = tempfile::tempdir().unwrap();
        let lazy = vlive::Durability::Lazy {
            max_delay: Duration::from_secs(60),
        };
        let cache = RedbCache::builder().durability(lazy).open(dir.path());
        let entries = runtime.block_on(fill_to(cache.unwrap(), mib << 20));
        let path = dir.path().join(vlive::DB_FILE_NAME);
        let file_mib = std::fs::metadata(&path).unwrap().len() as f64 / (1 << 20) as f64;

        let started = Instant::now();
        let mut db = redb::Database::open(&path).unwrap();
        let open_ms = started.elapsed().as_secs_f64() * 1e3;
        let started = Instant::now();
        assert!(
            db.check_integrity().unwrap(),
            "a sound file failed its check"
        );
        let check = started.elapsed();
        drop(db);

        let read = runtime.block_on(async {
            let cache = RedbCache::builder().hot_bytes(0).open(dir.path()).unwrap();
            let started = Instant::now();
            for i in 0..entries {
                assert!(cache.get(&key(i)).await.unwrap().is_some());
            }
            let read = started.elapsed();
            cache.close().await.unwrap();
            read
        });
        let mb = (mib << 20) as f64 / 1e6;
        println!(
            "{mib:>11}  {file_mib:>8.1}  {open_ms:>7.1}  {:>18.1}  {:>10.0}  {:>11.1}  {:>9.0}",
            check.as_secs_f64() * 1e3,
            mb / check.as_secs_f64(),
            read.as_secs_f64() * 1e3,
            mb / read.as_secs_f64(),
        );
    }
}
