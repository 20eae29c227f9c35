//! # Page cache: what redb's page cache buys cold gets, and what it costs in memory
//!
//! `cargo bench --bench page_cache` writes 256 MiB of entries (3.4 KB values, 20 rows), closes
//! the cache, then, for each page-cache size (1 MiB: vlive's default, 4, 16 and 64 MiB, 1 GiB:
//! redb's default), opens it in a child process of its own with the hot tier off and reads
//! random keys from 2 tasks for 10 s: cold gets, in the sense that the hot tier never answers
//! them. It prints gets per second and the child's peak RSS (`VmHWM`) over them, so each size
//! is measured from a fresh process. Then, since redb's write path works through the same cache
//! (up to half of it buffers a transaction's pages), the child times a burst of 10,000 puts of
//! the same value from 64 tasks into a fresh cache with that page cache, durable and lazy (for
//! lazy: until acknowledged, and until `flush` returned). `VLIVE_BENCH_QUICK=1` writes 32 MiB,
//! reads for 2 s per size (4, 16 and 64 MiB caches) and bursts 2,000 puts.

#[path = "common/mod.rs"]
#[allow(dead_code)] // each bench uses a part of the harness
mod common;

use std::time::{Duration, Instant};

use common::child::{run_self, status_kib};
use common::fill::{fill_to, key};
use common::mode::{Size, runtime, size};
use common::sample::sample_rows;
use common::tasks::fan_out;
use vlive::{Cache, CachedRows, Durability, RedbCache};

const CHILD: &str = "VLIVE_PAGE_CACHE_CHILD";
const MIB: u64 = 1 << 20;
/// Tasks putting a burst.
const BURST_TASKS: u64 = 64;

fn main() {
    if let Ok(spec) = std::env::var(CHILD) {
        child(&spec);
        return;
    }
    let (data_mib, seconds, sizes, burst): (u64, u64, &[u64], u64) = match size() {
        Size::Smoke => (4, 1, &[1, 8], 128),
        Size::Quick => (32, 2, &[4, 16, 64], 2_000),
        Size::Full => (256, 10, &[1, 4, 16, 64, 1024], 10_000),
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
    println!("bursts: {burst} puts from {BURST_TASKS} tasks into a fresh cache, puts/s");
    println!(
        "page cache MiB   gets/s   peak RSS MiB   durable burst   lazy acknowledged   lazy until flush"
    );
    for &cache_mib in sizes {
        let spec = format!(
            "{} {entries} {cache_mib} {seconds} {burst}",
            dir.path().display()
        );
        let line = run_self(CHILD, &spec);
        let f: Vec<&str> = line.split_whitespace().collect();
        println!(
            "{cache_mib:>14}  {:>7}  {:>13}  {:>14}  {:>18}  {:>16}",
            f[0], f[1], f[2], f[3], f[4]
        );
    }
}

/// In the child: `folder entries cache_mib seconds burst`; prints `gets/s peak_rss_mib
/// durable_burst/s lazy_acknowledged/s lazy_flushed/s`.
fn child(spec: &str) {
    let parts: Vec<&str> = spec.split(' ').collect();
    let folder = parts[0].to_owned();
    let entries: u64 = parts[1].parse().unwrap();
    let cache_mib: u64 = parts[2].parse().unwrap();
    let seconds: u64 = parts[3].parse().unwrap();
    let burst: u64 = parts[4].parse().unwrap();
    let rt = runtime(2);
    let gets = rt.block_on(cold_gets(folder, entries, cache_mib, seconds));
    // Before the bursts: a lazy burst holds its values in memory until they commit.
    let peak_rss_mib = status_kib("VmHWM").map_or(0, |kib| kib / 1024);
    let (durable, _) = rt.block_on(put_burst(Durability::Immediate, cache_mib, burst));
    let lazy = Durability::Lazy {
        max_delay: Duration::from_millis(100),
    };
    let (acknowledged, flushed) = rt.block_on(put_burst(lazy, cache_mib, burst));
    println!(
        "{} {peak_rss_mib} {durable:.0} {acknowledged:.0} {flushed:.0}",
        gets / seconds.max(1)
    );
}

/// Random gets of `folder`'s `entries` from 2 tasks for `seconds`, hot tier off; how many.
async fn cold_gets(folder: String, entries: u64, cache_mib: u64, seconds: u64) -> u64 {
    let cache = RedbCache::builder()
        .hot_bytes(0)
        .page_cache_bytes((cache_mib * MIB) as usize)
        .open(&folder)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let gets = fan_out(2, |t| {
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
}

/// `count` puts of the sample value to distinct keys from [`BURST_TASKS`] tasks, into a fresh
/// cache with `cache_mib` of page cache; puts per second until every put was acknowledged, and
/// until `flush` returned after them.
async fn put_burst(durability: Durability, cache_mib: u64, count: u64) -> (f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let cache = RedbCache::builder()
        .durability(durability)
        .page_cache_bytes((cache_mib * MIB) as usize)
        .open(dir.path())
        .unwrap();
    let value = CachedRows::new(sample_rows());
    let started = Instant::now();
    fan_out(BURST_TASKS, |t| {
        let (cache, value) = (cache.clone(), value.clone());
        async move {
            for i in (t..count).step_by(BURST_TASKS as usize) {
                cache.put(&key(i), value.clone()).await.unwrap();
            }
        }
    })
    .await;
    let acknowledged = started.elapsed();
    cache.flush().await.unwrap();
    let flushed = started.elapsed();
    cache.close().await.unwrap();
    let rate = |d: Duration| count as f64 / d.as_secs_f64();
    (rate(acknowledged), rate(flushed))
}
