//! # Redis: RedisCache and TieredCache against a direct client, side by side, in one run
//!
//! `cargo bench --bench redis --features redis` starts its own `redis-server` (loopback, free
//! port, no persistence; the same harness as the tests) and measures, cell after cell in one
//! process:
//!
//! - **`direct`**: the hand-written baseline: one `GET` or `SET` per operation on one
//!   multiplexed connection, the value encoded and decoded inline with vlive's own codec
//!   (`benches/common/sample.rs`). It keeps no index, no guard and no log, so it cannot
//!   invalidate a prefix without SCAN: it is the floor, not a rival.
//! - **`redis`**: [`RedisCache`]: `get` is one HGET; `put` one script (HSET, ZADD, XADD).
//! - **`tiered`**: [`TieredCache`] with a [`MemCache`] near tier over a `RedisCache`: warm gets
//!   are near hits; `put` is the Redis script plus a near-tier invalidation.
//! - **`tiered-redb`**: the same with a [`RedbCache`] near tier (default, durable commits): each
//!   put's near invalidation, and each log round the reader applies, is a redb commit.
//! - **`redis-tls`**: `redis` over TLS (`rediss://`, a server with `--tls-port` and a private CA
//!   made at start), beside the plain one.
//! - **`redis-cluster`**: `redis` on a Redis Cluster of 3 masters and 3 replicas (the tests'
//!   harness, started once), through `RedisCache::cluster_builder` with its default 16 shards.
//!
//! A second table gives `redis-tls` and `redis-cluster` as ratios to `redis` (one server), cell
//! by cell in the same run.
//!
//! Then **what a large value costs other clients**: one task puts values of 64 KiB to 16 MiB
//! through a `RedisCache` (its `max_value_bytes` raised) while another client PINGs the same
//! server on its own connection; the table gives the PING latency (p50, p99, max) and the puts'
//! rate. Redis runs one command at a time, so the PINGs wait behind each put: this is what
//! `max_value_bytes` (default 1 MiB) bounds.
//!
//! Workloads, over 1024 keys prefilled with 20-row values (about 3.4 KB of CBOR): **get(c)**
//! random gets, **put(c)** random puts, **mixed(c)** 90% gets / 10% puts, with `c` concurrent
//! tasks on a 2-worker tokio runtime, each yielding after every operation. Each cell warms up for 0.5 s and counts completed
//! operations over 2 s. `VLIVE_BENCH_QUICK=1` makes 0.1 s + 0.3 s cells (noisy, same shape).
//! The machine's other load shows in the numbers: compare within one run.
//!
//! Last, **what a large prefix invalidation costs other clients** (issue 19's stall; the
//! target is PING max <= 50 ms): a namespace is filled with `N` keys under one prefix (small
//! values, `put`s from 64 concurrent tasks through `RedisCache`, so the layout is the real one),
//! then `invalidate_prefix(prefix)` runs while a plain client, on a thread and a blocking
//! connection of its own, PINGs the server every 0.25 ms. Per row: the fill's time, the
//! invalidation's, how many PINGs were in flight during it and their latency (p50, p99, max),
//! the script calls the server ran meanwhile (count × mean, from `INFO commandstats`) and the
//! longest command (from `SLOWLOG`). Rows: one server, the namespace in one shard (the
//! default) and in 16 (16 sweeps at once, as on a cluster); one server deleting the same keys in
//! one Lua call, as before the sweep existed (`ONE_CALL`, a raw EVAL, on a namespace filled the
//! same way); the cluster with 16 shards (the default) and with 3 (one per master), every
//! master PINGed. `N` is 1,000,000, 20,000 in quick mode, or `VLIVE_BENCH_STALL_KEYS`.

#[path = "common/mod.rs"]
#[allow(dead_code)] // each bench uses a part of the harness
mod common;
#[path = "../tests/common/redis_cluster.rs"]
mod redis_cluster;
#[path = "../tests/common/redis_server.rs"]
mod redis_server;
#[path = "../tests/common/tls.rs"]
mod tls;
use common::number::{ms, thousands};
use common::sample::{decode, encode, sample_rows};
use common::{mode, rng::Rng, stats::quantile as at, tasks::fan_out};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use redis_cluster::RedisCluster;
use redis_server::RedisServer;
use vlive::{
    Cache, CachedRows, FillOutcome, FillToken, MemCache, RedbCache, RedisCache, TieredCache,
};

const KEYS: u64 = 1024;

/// The targets of the first table, in column order.
const TARGETS: [&str; 6] = [
    "direct",
    "redis",
    "redis-tls",
    "redis-cluster",
    "tiered",
    "tiered-redb",
];

/// A workload: its name and how many of every 10 operations are puts (the rest are gets).
#[derive(Clone, Copy, Debug)]
struct Workload(&'static str, u64);

const GET: Workload = Workload("get", 0);
const PUT: Workload = Workload("put", 10);
const MIXED: Workload = Workload("mixed 90/10", 1);

struct Window {
    warm_up: Duration,
    measure: Duration,
}

/// The servers the caches under test connect to.
struct Servers<'a> {
    tls: &'a tls::TlsServer,
    ca: &'a tls::Ca,
    cluster: &'a RedisCluster,
}

fn main() {
    let size = mode::size();
    let ms = Duration::from_millis;
    let window = match size {
        mode::Size::Smoke => Window {
            warm_up: ms(10),
            measure: ms(30),
        },
        mode::Size::Quick => Window {
            warm_up: ms(100),
            measure: ms(300),
        },
        mode::Size::Full => Window {
            warm_up: ms(500),
            measure: ms(2000),
        },
    };
    let stall_keys = std::env::var("VLIVE_BENCH_STALL_KEYS")
        .ok()
        .map(|n| n.parse().expect("VLIVE_BENCH_STALL_KEYS: a number of keys"))
        .unwrap_or(match size {
            mode::Size::Smoke => 1_000,
            mode::Size::Quick => 20_000,
            mode::Size::Full => 1_000_000,
        });
    let ca = tls::Ca::new("bench CA");
    let tls_server = tls::TlsServer::start(&ca, false);
    let server = &tls_server.server;
    let runtime = mode::runtime(2);
    let cells = [(GET, 1), (GET, 16), (PUT, 1), (PUT, 16), (MIXED, 16)];
    runtime.block_on(async {
        let started = Instant::now();
        let cluster = RedisCluster::start().await;
        println!(
            "redis bench: {} server; cluster of 3 masters + 3 replicas (started in {:.1} s); \
             2 tokio workers; ops/s (mean latency)",
            server.url(),
            started.elapsed().as_secs_f64()
        );
        let servers = Servers {
            tls: &tls_server,
            ca: &ca,
            cluster: &cluster,
        };
        print!("{:<14} {:>4}", "workload", "c");
        for target in TARGETS {
            print!(" {target:>22}");
        }
        println!();
        let mut rates = Vec::new();
        for (n, (workload, concurrency)) in cells.into_iter().enumerate() {
            let mut row = format!("{:<14} {concurrency:>4}", workload.0);
            let mut rates_of_cell = [0.0; TARGETS.len()];
            for (target, rate_of) in TARGETS.into_iter().zip(&mut rates_of_cell) {
                let folder = tempfile::tempdir().unwrap();
                let namespace = format!("bench{n}-{target}");
                let cache = open(target, &servers, &namespace, &folder).await;
                prefill(cache.as_ref()).await;
                let (ops, elapsed) = measure(&cache, workload, concurrency, &window).await;
                let rate = ops as f64 / elapsed.as_secs_f64();
                let latency = elapsed.as_secs_f64() * concurrency as f64 / ops.max(1) as f64;
                row += &format!(" {:>12.0} ({:>6.1} µs)", rate, latency * 1e6);
                *rate_of = rate;
            }
            println!("{row}");
            rates.push(rates_of_cell);
        }
        println!();
        ratios(&cells, &rates);
        println!();
        large_values(server, &window).await;
        println!();
        stalls(&cluster, stall_keys).await;
    });
}

/// `redis-tls` and `redis-cluster` against `redis` (one server), cell by cell.
fn ratios(cells: &[(Workload, usize)], rates: &[[f64; TARGETS.len()]]) {
    let column = |name| TARGETS.iter().position(|t| *t == name).unwrap();
    let base = column("redis");
    let compared = ["redis-tls", "redis-cluster"];
    println!("the same, ops/s as a ratio to redis (one server) in this run");
    print!("{:<14} {:>4}", "workload", "c");
    for name in compared {
        print!(" {name:>14}");
    }
    println!();
    for ((workload, concurrency), rates) in cells.iter().zip(rates) {
        print!("{:<14} {concurrency:>4}", workload.0);
        for name in compared {
            print!(" {:>13.2}×", rates[column(name)] / rates[base]);
        }
        println!();
    }
}

/// The cache under test; a redb near tier lives in `folder`.
async fn open(
    target: &str,
    servers: &Servers<'_>,
    namespace: &str,
    folder: &tempfile::TempDir,
) -> Arc<dyn Cache> {
    let server = &servers.tls.server;
    let url = server.url();
    let far = || RedisCache::connect(&url, namespace);
    let tiered = match target {
        "direct" => return Arc::new(Direct::connect(server, namespace).await),
        "redis" => return Arc::new(far().await.unwrap()),
        "redis-tls" => {
            let cache = RedisCache::builder(&servers.tls.url(), namespace)
                .tls_ca_pem(servers.ca.pem())
                .connect()
                .await
                .unwrap();
            return Arc::new(cache);
        }
        "redis-cluster" => {
            let seeds = servers.cluster.seeds();
            let cache = RedisCache::cluster_builder(&RedisCluster::seed_refs(&seeds), namespace)
                .connect()
                .await
                .unwrap();
            return Arc::new(cache);
        }
        "tiered" => TieredCache::new(MemCache::new(), far().await.unwrap()),
        _ => TieredCache::new(
            RedbCache::open(folder.path()).unwrap(),
            far().await.unwrap(),
        ),
    };
    tiered.sync().await;
    Arc::new(tiered)
}

async fn prefill(cache: &dyn Cache) {
    let rows = sample_rows();
    for k in 0..KEYS {
        cache
            .put(&key(k), CachedRows::new(rows.clone()))
            .await
            .unwrap();
    }
    // Warm the near tier (a tiered get fills it); for the others this is one more read pass.
    for k in 0..KEYS {
        cache.get(&key(k)).await.unwrap().expect("prefilled");
    }
}

/// Runs `concurrency` tasks on `workload` through the warm-up, then counts over the window.
async fn measure(
    cache: &Arc<dyn Cache>,
    workload: Workload,
    concurrency: usize,
    window: &Window,
) -> (u64, Duration) {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let rows = sample_rows();
    let tasks: Vec<_> = (0..concurrency)
        .map(|task| {
            let (cache, done, stop, rows) =
                (cache.clone(), done.clone(), stop.clone(), rows.clone());
            tokio::spawn(async move {
                let mut rng = Rng::new(task as u64 + 1);
                while !stop.load(Ordering::Relaxed) {
                    let k = key(rng.below(KEYS));
                    if rng.below(10) < workload.1 {
                        cache.put(&k, CachedRows::new(rows.clone())).await.unwrap();
                    } else {
                        std::hint::black_box(cache.get(&k).await.unwrap());
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                    // A near hit never waits; without a yield one task would hold a worker
                    // (and starve the others and the log reader).
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    tokio::time::sleep(window.warm_up).await;
    let (start, before) = (Instant::now(), done.load(Ordering::Relaxed));
    tokio::time::sleep(window.measure).await;
    let (elapsed, after) = (start.elapsed(), done.load(Ordering::Relaxed));
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    (after - before, elapsed)
}

// ---------------------------------------------------------------------------------------------
// What a large value costs other clients
// ---------------------------------------------------------------------------------------------

/// For each size: puts of that size from one task, PINGs from another client, side by side.
async fn large_values(server: &RedisServer, window: &Window) {
    println!("large values: one task putting, another client PINGing the same server");
    println!(
        "{:>10} {:>10} {:>12} {:>12} {:>12}",
        "value", "puts/s", "PING p50", "PING p99", "PING max"
    );
    for kib in [64u64, 256, 1024, 4096, 16384] {
        let cache = RedisCache::builder(&server.url(), &format!("large-{kib}"))
            .max_value_bytes(64 << 20)
            .response_timeout(Duration::from_secs(30))
            .connect()
            .await
            .unwrap();
        let value = CachedRows::new(one_blob(kib << 10));
        let stop = Arc::new(AtomicBool::new(false));
        let putter = {
            let (cache, stop) = (cache.clone(), stop.clone());
            tokio::spawn(async move {
                let mut puts = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    cache.put(&key(puts % 8), value.clone()).await.unwrap();
                    puts += 1;
                }
                puts
            })
        };
        let client = redis::Client::open(server.url()).unwrap();
        let mut pinger = client.get_multiplexed_async_connection().await.unwrap();
        tokio::time::sleep(window.warm_up).await;
        let start = Instant::now();
        let mut latencies = Vec::new();
        while start.elapsed() < window.measure {
            let sent = Instant::now();
            let _: String = redis::cmd("PING").query_async(&mut pinger).await.unwrap();
            latencies.push(sent.elapsed());
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        stop.store(true, Ordering::Relaxed);
        let puts = putter.await.unwrap();
        let rate = puts as f64 / (start.elapsed() + window.warm_up).as_secs_f64();
        latencies.sort();
        println!(
            "{:>7} KiB {:>10.1} {:>12} {:>12} {:>12}",
            kib,
            rate,
            ms(at(&latencies, 0.5)),
            ms(at(&latencies, 0.99)),
            ms(at(&latencies, 1.0))
        );
    }
}

/// One row holding `bytes` of binary data: a value of about that size, encoded.
fn one_blob(bytes: u64) -> vlive::Rows {
    let mut record = vlive::Record::new();
    record.insert(
        "blob".into(),
        vlive::Value::Bytes(vec![7u8; bytes as usize]),
    );
    [("1".to_owned(), record)].into_iter().collect()
}

// ---------------------------------------------------------------------------------------------
// What a large prefix invalidation costs other clients
// ---------------------------------------------------------------------------------------------

/// Every key of the stall measurement is under this prefix.
const STALL_PREFIX: &str = "stall/";
/// Tasks putting at once while a namespace is filled.
const FILLERS: u64 = 64;
/// The pause between one PING's reply and the next PING.
const PING_EVERY: Duration = Duration::from_micros(250);

/// Prefix invalidation as it was before the sweep (the script of commit 91895af): every entry
/// under `ARGV[1]` deleted in one call, here from today's four per-entry structures (`KEYS`:
/// values, written, index, order). Meta's byte count is left as it was. Returns how many
/// entries went.
const ONE_CALL: &str = r#"
local p = ARGV[1]
local lo, hi = '[' .. p, '(' .. p .. '\255'
local doomed = redis.call('ZRANGEBYLEX', KEYS[3], lo, hi)
for n = 1, #doomed, 1000 do
  local last = math.min(n + 999, #doomed)
  redis.call('HDEL', KEYS[1], unpack(doomed, n, last))
  redis.call('HDEL', KEYS[2], unpack(doomed, n, last))
  redis.call('ZREM', KEYS[4], unpack(doomed, n, last))
end
redis.call('ZREMRANGEBYLEX', KEYS[3], lo, hi)
return #doomed
"#;

/// Fills a namespace with `keys` small values under one prefix and deletes them, while plain
/// clients PING, one row each: `invalidate_prefix` on one server (one shard, then 16), one Lua
/// call on one server ([`ONE_CALL`]), and `invalidate_prefix` on the cluster (16 shards, then
/// 3), every master PINGed.
async fn stalls(cluster: &RedisCluster, keys: u64) {
    println!(
        "prefix invalidation of {} keys under one prefix while a plain client PINGs the server",
        thousands(keys as f64)
    );
    println!(
        "{:<42} {:>18} {:>9} {:>7} {:>10} {:>10} {:>10} {:>18} {:>12}",
        "",
        "fill",
        "took",
        "PINGs",
        "PING p50",
        "PING p99",
        "PING max",
        "script calls",
        "longest call"
    );
    let server = RedisServer::start();
    let urls = [server.url()];
    // 16 shards on one server: 16 sweeps at once, as a cluster's masters get them.
    for shards in [1, 16] {
        let namespace = format!("stall-{shards}");
        let cache = RedisCache::builder(&server.url(), &namespace)
            .shards(shards)
            .connect()
            .await
            .unwrap();
        let plural = if shards == 1 { "" } else { "s" };
        let label = format!("one server, {shards} shard{plural}, invalidate_prefix");
        invalidation(&label, &cache, &urls, keys).await;
    }

    let old = RedisCache::connect(&server.url(), "stall-old")
        .await
        .unwrap();
    let filled = fill(&old, keys).await;
    let client = redis::Client::open(server.url()).unwrap();
    // A blocking connection: no response timeout to outlast.
    let mut connection = client.get_connection().unwrap();
    let (deleted, stall) = during(&urls, async move {
        tokio::task::spawn_blocking(move || {
            let tag = "{vlive:stall-old}";
            let deleted: u64 = redis::cmd("EVAL")
                .arg(ONE_CALL)
                .arg(4)
                .arg(
                    ["v", "w", "i", "o"]
                        .map(|suffix| format!("{tag}:{suffix}"))
                        .to_vec(),
                )
                .arg(STALL_PREFIX)
                .query(&mut connection)
                .unwrap();
            deleted
        })
        .await
        .unwrap()
    })
    .await;
    assert_eq!(deleted, keys, "the one call deleted {deleted} entries");
    stall.print("one server, one Lua call (before)", keys, filled);
    drop(server);

    // 16 shards (the default): five or six per master; 3: one per master.
    let seeds = cluster.seeds();
    for shards in [16, 3] {
        let namespace = format!("stall-{shards}");
        let cache = RedisCache::cluster_builder(&RedisCluster::seed_refs(&seeds), &namespace)
            .shards(shards)
            .connect()
            .await
            .unwrap();
        let masters = cluster.masters().await;
        let urls: Vec<String> = masters.iter().map(|&i| cluster.nodes[i].url()).collect();
        let label = format!("cluster, {shards} shards, invalidate_prefix");
        invalidation(&label, &cache, &urls, keys).await;
        if cluster.masters().await != masters {
            println!("(the cluster failed over during the measurement: masters changed)");
        }
    }
}

/// One row: fills `cache` with `keys` entries, then invalidates them all while `urls` are
/// PINGed.
async fn invalidation(label: &str, cache: &RedisCache, urls: &[String], keys: u64) {
    let filled = fill(cache, keys).await;
    let ((), stall) = during(urls, async {
        cache.invalidate_prefix(STALL_PREFIX).await.unwrap();
    })
    .await;
    assert_eq!(
        entries(cache).await,
        0,
        "entries left after the invalidation"
    );
    stall.print(label, keys, filled);
}

/// Puts `keys` small values (one row of 16 bytes) under [`STALL_PREFIX`] from [`FILLERS`]
/// tasks; how long that took.
async fn fill(cache: &RedisCache, keys: u64) -> Duration {
    let value = CachedRows::new(one_blob(16));
    let start = Instant::now();
    fan_out(FILLERS, |task| {
        let (cache, value) = (cache.clone(), value.clone());
        async move {
            for i in (task..keys).step_by(FILLERS as usize) {
                let key = format!("{STALL_PREFIX}{i:07}");
                cache.put(&key, value.clone()).await.unwrap();
            }
        }
    })
    .await;
    let took = start.elapsed();
    assert_eq!(entries(cache).await, keys, "entries after the fill");
    took
}

async fn entries(cache: &RedisCache) -> u64 {
    cache.stats().await.unwrap().entries
}

/// PINGs that were in flight while something ran, and how long it took.
struct Stall {
    took: Duration,
    /// Sorted.
    pings: Vec<Duration>,
    /// PINGs answered `BUSY` (a script past `busy-reply-threshold`, 5 s by default).
    busy: usize,
    /// The longest command any of the servers ran meanwhile (their SLOWLOG), if one took 1 ms
    /// or more: the server's time from its start to its end.
    longest: Option<Duration>,
    /// Script calls the servers ran meanwhile, and their total time in µs.
    scripts: u64,
    script_micros: u64,
}

impl Stall {
    /// One row: `keys` were filled in `filled`, then deleted while the PINGs went.
    fn print(&self, label: &str, keys: u64, filled: Duration) {
        let quantile = |q| {
            if self.pings.is_empty() {
                "-".to_owned()
            } else {
                ms(at(&self.pings, q))
            }
        };
        println!(
            "{:<42} {:>18} {:>9} {:>7} {:>10} {:>10} {:>10} {:>18} {:>12}{}",
            label,
            format!(
                "{:.1} s ({}/s)",
                filled.as_secs_f64(),
                thousands(keys as f64 / filled.as_secs_f64())
            ),
            format!("{:.2} s", self.took.as_secs_f64()),
            self.pings.len(),
            quantile(0.5),
            quantile(0.99),
            quantile(1.0),
            format!(
                "{} × {:.2} ms",
                self.scripts,
                self.script_micros as f64 / self.scripts.max(1) as f64 / 1e3
            ),
            self.longest.map_or_else(|| "< 1 ms".to_owned(), ms),
            if self.busy > 0 {
                format!(" ({} answered BUSY)", self.busy)
            } else {
                String::new()
            }
        );
    }
}

/// Runs `work` while plain clients PING every server of `urls`, each from a thread of its own;
/// what it returned, and the PINGs in flight at any moment of it.
async fn during<T>(urls: &[String], work: impl Future<Output = T>) -> (T, Stall) {
    let pinger = Pinger::start(urls);
    // The pingers connected and PINGing before the work starts.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut admins: Vec<redis::Connection> = urls
        .iter()
        .map(|url| {
            let client = redis::Client::open(url.as_str()).unwrap();
            let mut admin = client.get_connection().unwrap();
            redis::pipe()
                .cmd("CONFIG")
                .arg(&["SET", "slowlog-log-slower-than", "1000"][..])
                .cmd("CONFIG")
                .arg(&["SET", "slowlog-max-len", "100000"][..])
                .cmd("SLOWLOG")
                .arg("RESET")
                .cmd("CONFIG")
                .arg("RESETSTAT")
                .exec(&mut admin)
                .unwrap();
            admin
        })
        .collect();
    let start = Instant::now();
    let out = work.await;
    let end = Instant::now();
    let longest = admins.iter_mut().filter_map(longest_call).max();
    let (scripts, script_micros) = admins
        .iter_mut()
        .map(script_calls)
        .fold((0, 0), |(n, us), (m, vs)| (n + m, us + vs));
    let in_flight: Vec<Ping> = pinger
        .stop()
        .into_iter()
        .filter(|ping| ping.sent < end && ping.sent + ping.took > start)
        .collect();
    let busy = in_flight.iter().filter(|ping| ping.busy).count();
    let mut pings: Vec<Duration> = in_flight.iter().map(|ping| ping.took).collect();
    pings.sort();
    let took = end - start;
    (
        out,
        Stall {
            took,
            pings,
            busy,
            longest,
            scripts,
            script_micros,
        },
    )
}

/// Script calls (EVAL, EVALSHA) the server ran since its stats were reset, and their time in
/// µs (from `INFO commandstats`).
fn script_calls(admin: &mut redis::Connection) -> (u64, u64) {
    let info: String = redis::cmd("INFO").arg("commandstats").query(admin).unwrap();
    let field = |line: &str, name: &str| -> u64 {
        line.split([':', ','])
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {line:?}"))
    };
    info.lines()
        .filter(|line| line.starts_with("cmdstat_eval:") || line.starts_with("cmdstat_evalsha:"))
        .map(|line| (field(line, "calls"), field(line, "usec")))
        .fold((0, 0), |(n, us), (m, vs)| (n + m, us + vs))
}

/// The longest command in the server's SLOWLOG.
fn longest_call(admin: &mut redis::Connection) -> Option<Duration> {
    // Each entry: id, time, duration in µs, arguments, client address, client name.
    let entries: Vec<Vec<redis::Value>> = redis::cmd("SLOWLOG")
        .arg(&["GET", "-1"][..])
        .query(admin)
        .unwrap();
    entries
        .iter()
        .map(|entry| match entry[2] {
            redis::Value::Int(micros) => Duration::from_micros(micros as u64),
            ref other => panic!("SLOWLOG entry without a duration: {other:?}"),
        })
        .max()
}

struct Ping {
    sent: Instant,
    took: Duration,
    busy: bool,
}

/// One thread per server, PINGing it on a blocking connection of its own, [`PING_EVERY`]
/// apart, so that nothing in the bench's runtime delays a PING.
struct Pinger {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<Vec<Ping>>>,
}

impl Pinger {
    fn start(urls: &[String]) -> Pinger {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = urls
            .iter()
            .map(|url| {
                let client = redis::Client::open(url.as_str()).unwrap();
                let mut connection = client.get_connection().unwrap();
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut pings = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let sent = Instant::now();
                        let reply: redis::RedisResult<String> =
                            redis::cmd("PING").query(&mut connection);
                        let took = sent.elapsed();
                        let busy = match reply {
                            Ok(_) => false,
                            Err(e) if e.code() == Some("BUSY") => true,
                            Err(e) => panic!("PING failed: {e}"),
                        };
                        pings.push(Ping { sent, took, busy });
                        std::thread::sleep(PING_EVERY);
                    }
                    pings
                })
            })
            .collect();
        Pinger { stop, threads }
    }

    /// Every PING sent, once the threads have stopped.
    fn stop(self) -> Vec<Ping> {
        self.stop.store(true, Ordering::Relaxed);
        self.threads
            .into_iter()
            .flat_map(|thread| thread.join().unwrap())
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The direct client
// ---------------------------------------------------------------------------------------------

/// One GET or SET per operation; keys `NS:key`. Only get and put are benchmarked.
struct Direct {
    connection: MultiplexedConnection,
    namespace: String,
}

impl Direct {
    async fn connect(server: &RedisServer, namespace: &str) -> Direct {
        let client = redis::Client::open(server.url()).unwrap();
        Direct {
            connection: client.get_multiplexed_async_connection().await.unwrap(),
            namespace: namespace.to_owned(),
        }
    }
}

#[async_trait]
impl Cache for Direct {
    async fn get(&self, key: &str) -> vlive::Result<Option<CachedRows>> {
        let bytes: Option<Vec<u8>> = redis::cmd("GET")
            .arg(format!("{}:{key}", self.namespace))
            .query_async(&mut self.connection.clone())
            .await
            .unwrap();
        Ok(bytes.map(|bytes| decode(&bytes)))
    }

    async fn put(&self, key: &str, rows: CachedRows) -> vlive::Result<()> {
        let () = redis::cmd("SET")
            .arg(format!("{}:{key}", self.namespace))
            .arg(encode(&rows))
            .query_async(&mut self.connection.clone())
            .await
            .unwrap();
        Ok(())
    }

    async fn invalidate_prefix(&self, _prefix: &str) -> vlive::Result<()> {
        Err(not_measured(
            "invalidate_prefix (one command per op would need SCAN)",
        ))
    }

    async fn fill_token(&self, _key: &str) -> vlive::Result<FillToken> {
        Err(not_measured("fill_token"))
    }

    async fn fill(&self, _: &str, _: CachedRows, _: FillToken) -> vlive::Result<FillOutcome> {
        Err(not_measured("fill"))
    }
}

/// The direct baseline has no index, guard or log: the workloads never call what needs them.
fn not_measured(op: &str) -> vlive::Error {
    vlive::Error::InvalidArgument {
        reason: format!("the direct redis baseline does not implement {op}"),
    }
}

fn key(n: u64) -> String {
    format!("r{:02}/page_{:03}", n % 16, n / 16)
}
