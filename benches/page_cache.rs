//! # Page cache: what redb's page cache buys cold gets, and what it costs in memory
//!
//! `cargo bench --bench page_cache` writes 256 MiB of entries (3.4 KB values, 20 rows), closes
//! the cache, then, for each page-cache size (16 MiB, 128 MiB, 1 GiB: redb's default), opens it
//! in a child process of its own with the hot tier off and reads random keys from 2 tasks for
//! 10 s: cold gets, in the sense that the hot tier never answers them. It prints gets per
//! second and the child's peak RSS (`VmHWM`), so each size is measured from a fresh process.
//! `VLIVE_BENCH_QUICK=1` writes 32 MiB and reads for 2 s per size (4, 16 and 64 MiB caches).

#[path = "common/rng.rs"]
mod rng;
#[path = "common/sample.rs"]
#[allow(dead_code)] // the shared sample file also has the encoder other benches use
mod sample;

use std::process::Command;
use std::time::{Duration, Instant};

use vlive::{Cache, CachedRows, RedbCache};

const CHILD: &str = "VLIVE_PAGE_CACHE_CHILD";
const MIB: u64 = 1 << 20;

fn main() {
    if let Ok(spec) = std::env::var(CHILD) {
        child(&spec);
        return;
    }
    let quick = std::env::var_os("VLIVE_BENCH_QUICK").is_some();
    let (data_mib, seconds, sizes): (u64, u64, &[u64]) = if quick {
        (32, 2, &[4, 16, 64])
    } else {
        (256, 10, &[16, 64, 1024])
    };
    let dir = tempfile::tempdir().unwrap();
    let entries = fill(dir.path(), data_mib);
    println!(
        "{entries} entries, {data_mib} MiB charged; random gets from 2 tasks, hot tier off, {seconds} s per size"
    );
    println!("page cache MiB   gets/s   peak RSS MiB");
    for &cache_mib in sizes {
        let spec = format!("{} {entries} {cache_mib} {seconds}", dir.path().display());
        let out = Command::new(std::env::current_exe().unwrap())
            .env(CHILD, spec)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = String::from_utf8_lossy(&out.stdout);
        let fields: Vec<&str> = line.split_whitespace().collect();
        println!("{cache_mib:>14}  {:>7}  {:>13}", fields[0], fields[1]);
    }
}

/// Writes entries until `mib` MiB are charged; returns how many.
fn fill(folder: &std::path::Path, mib: u64) -> u64 {
    runtime().block_on(async {
        let cache = RedbCache::builder()
            .durability(vlive::Durability::Lazy {
                max_delay: Duration::from_secs(60),
            })
            .open(folder)
            .unwrap();
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

fn key(i: u64) -> String {
    format!("k/{i:08}")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// In the child: `folder entries cache_mib seconds`; prints `gets/s peak_rss_mib`.
fn child(spec: &str) {
    let parts: Vec<&str> = spec.split(' ').collect();
    let folder = parts[0].to_owned();
    let entries: u64 = parts[1].parse().unwrap();
    let cache_mib: u64 = parts[2].parse().unwrap();
    let seconds: u64 = parts[3].parse().unwrap();
    let gets = runtime().block_on(async move {
        let cache = RedbCache::builder()
            .hot_bytes(0)
            .page_cache_bytes((cache_mib * MIB) as usize)
            .open(&folder)
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let tasks: Vec<_> = (0..2u64)
            .map(|t| {
                let cache = cache.clone();
                tokio::spawn(async move {
                    let mut rng = rng::Rng::new(t + 1);
                    let mut gets = 0u64;
                    while Instant::now() < deadline {
                        let found = cache.get(&key(rng.below(entries))).await.unwrap();
                        assert!(found.is_some(), "every key was written");
                        gets += 1;
                    }
                    gets
                })
            })
            .collect();
        let mut gets = 0;
        for task in tasks {
            gets += task.await.unwrap();
        }
        cache.close().await.unwrap();
        gets
    });
    let rate = gets / seconds.max(1);
    println!("{rate} {}", peak_rss_mib());
}

/// The process's peak resident set, from `/proc/self/status` (Linux); 0 elsewhere.
fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}
