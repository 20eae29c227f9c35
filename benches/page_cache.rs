//! # Page cache: what redb's page cache buys cold gets, and what it costs in memory
//!
//! `cargo bench --bench page_cache` writes 256 MiB of entries (3.4 KB values, 20 rows), closes
//! the cache, then, for each page-cache size (1 MiB: vlive's default, 4, 16 and 64 MiB, 1 GiB:
//! redb's default), opens it in a child process of its own with the hot tier off and reads
//! random keys from 2 tasks for 10 s: cold gets, in the sense that the hot tier never answers
//! them. It prints gets per second and the child's peak RSS (`VmHWM`), so each size is measured
//! from a fresh process. `VLIVE_BENCH_QUICK=1` writes 32 MiB and reads for 2 s per size (4, 16
//! and 64 MiB caches).

#[path = "common/mod.rs"]
#[allow(dead_code)] // each bench uses a part of the harness
mod common;

use std::time::{Duration, Instant};

use common::child::{run_self, status_kib};
use common::fill::{fill_to, key};
use common::mode::{Size, runtime, size};
use vlive::{Cache, RedbCache};

const CHILD: &str = "VLIVE_PAGE_CACHE_CHILD";
const MIB: u64 = 1 << 20;

fn main() {
    if let Ok(spec) = std::env::var(CHILD) {
        child(&spec);
        return;
    }
    let (data_mib, seconds, sizes): (u64, u64, &[u64]) = match size() {
        Size::Smoke => (4, 1, &[1, 8]),
        Size::Quick => (32, 2, &[4, 16, 64]),
        Size::Full => (256, 10, &[1, 4, 16, 64, 1024]),
    };
    let dir = tempfile::tempdir().unwrap();
    let lazy = vlive::Durability::Lazy {
        max_delay: Duration::from_secs(60),
    };
    let cache = RedbCache::builder().durability(lazy).open(dir.path());
    let entries = runtime(2).block_on(fill_to(cache.unwrap(), data_mib * MIB));
    println!(
        "{entries} entries, {data_mib} MiB charged; random gets from 2 tasks, hot tier off, {seconds} s per size"
    );
    println!("page cache MiB   gets/s   peak RSS MiB");
    for &cache_mib in sizes {
        let spec = format!("{} {entries} {cache_mib} {seconds}", dir.path().display());
        let line = run_self(CHILD, &spec);
        let fields: Vec<&str> = line.split_whitespace().collect();
        println!("{cache_mib:>14}  {:>7}  {:>13}", fields[0], fields[1]);
    }
}

/// In the child: `folder entries cache_mib seconds`; prints `gets/s peak_rss_mib`.
fn child(spec: &str) {
    let parts: Vec<&str> = spec.split(' ').collect();
    let folder = parts[0].to_owned();
    let entries: u64 = parts[1].parse().unwrap();
    let cache_mib: u64 = parts[2].parse().unwrap();
    let seconds: u64 = parts[3].parse().unwrap();
    let gets: u64 = runtime(2).block_on(async move {
        let cache = RedbCache::builder()
            .hot_bytes(0)
            .page_cache_bytes((cache_mib * MIB) as usize)
            .open(&folder)
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let gets = common::tasks::fan_out(2, |t| {
            let cache = cache.clone();
            async move {
                let mut rng = common::rng::Rng::new(t + 1);
                let mut gets = 0u64;
                while Instant::now() < deadline {
                    let found = cache.get(&key(rng.below(entries))).await.unwrap();
                    assert!(found.is_some(), "every key was written");
                    gets += 1;
                }
                gets
            }
        });
        let gets = gets.await.into_iter().sum();
        cache.close().await.unwrap();
        gets
    });
    let peak_rss_mib = status_kib("VmHWM").map_or(0, |kib| kib / 1024);
    println!("{} {peak_rss_mib}", gets / seconds.max(1));
}
