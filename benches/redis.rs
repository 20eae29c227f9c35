//! # Redis: RedisCache and TieredCache against a direct client, side by side, in one run
//!
//! `cargo bench --bench redis --features redis` starts its own `redis-server` (loopback, free
//! port, no persistence; the same harness as the tests) and measures, cell after cell in one
//! process:
//!
//! - **`direct`**: the hand-written baseline: one `GET` or `SET` per operation on one
//!   multiplexed connection, the value CBOR-encoded and decoded inline in vlive's format
//!   (reimplemented with ciborium, since the codec is private). It keeps no index, no guard and
//!   no log, so it cannot invalidate a prefix without SCAN: it is the floor, not a rival.
//! - **`redis`**: [`RedisCache`]: `get` is one HGET; `put` one script (HSET, ZADD, XADD).
//! - **`tiered`**: [`TieredCache`] with a [`MemCache`] near tier over a `RedisCache`: warm gets
//!   are near hits; `put` is the Redis script plus a near-tier invalidation.
//! - **`tiered-redb`**: the same with a [`RedbCache`] near tier (default, durable commits): each
//!   put's near invalidation, and each log round the reader applies, is a redb commit.
//! - **`redis-tls`**: `redis` over TLS (`rediss://`, a server with `--tls-port` and a private CA
//!   made at start), beside the plain one.
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

#[path = "../tests/common/redis_server.rs"]
mod redis_server;
#[path = "common/sample.rs"]
mod sample;
#[path = "../tests/common/tls.rs"]
mod tls;
use sample::{decode, encode, sample_rows};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use redis_server::RedisServer;
use vlive::{
    Cache, CachedRows, FillOutcome, FillToken, MemCache, RedbCache, RedisCache, TieredCache,
};

const KEYS: u64 = 1024;

#[derive(Clone, Copy, Debug)]
enum Workload {
    Get,
    Put,
    Mixed,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Get => "get",
            Workload::Put => "put",
            Workload::Mixed => "mixed 90/10",
        }
    }
}

struct Window {
    warm_up: Duration,
    measure: Duration,
}

fn main() {
    let quick = std::env::var("VLIVE_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    let window = if quick {
        Window {
            warm_up: Duration::from_millis(100),
            measure: Duration::from_millis(300),
        }
    } else {
        Window {
            warm_up: Duration::from_millis(500),
            measure: Duration::from_secs(2),
        }
    };
    let ca = tls::Ca::new("bench CA");
    let tls_server = tls::TlsServer::start(&ca, false);
    let server = &tls_server.server;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cells = [
        (Workload::Get, 1),
        (Workload::Get, 16),
        (Workload::Put, 1),
        (Workload::Put, 16),
        (Workload::Mixed, 16),
    ];
    println!(
        "redis bench: {} server, 2 tokio workers, ops/s (mean latency)",
        server.url()
    );
    let targets = ["direct", "redis", "redis-tls", "tiered", "tiered-redb"];
    print!("{:<14} {:>4}", "workload", "c");
    for target in targets {
        print!(" {target:>22}");
    }
    println!();
    runtime.block_on(async {
        for (n, (workload, concurrency)) in cells.into_iter().enumerate() {
            let mut row = format!("{:<14} {concurrency:>4}", workload.name());
            for target in targets {
                let folder = tempfile::tempdir().unwrap();
                let namespace = format!("bench{n}-{target}");
                let cache = open(target, &tls_server, &ca, &namespace, &folder).await;
                prefill(cache.as_ref()).await;
                let (ops, elapsed) = measure(&cache, workload, concurrency, &window).await;
                let rate = ops as f64 / elapsed.as_secs_f64();
                let latency = elapsed.as_secs_f64() * concurrency as f64 / ops.max(1) as f64;
                row += &format!(" {:>12.0} ({:>6.1} µs)", rate, latency * 1e6);
            }
            println!("{row}");
        }
        println!();
        large_values(server, &window).await;
    });
}

/// The cache under test; a redb near tier lives in `folder`.
async fn open(
    target: &str,
    tls_server: &tls::TlsServer,
    ca: &tls::Ca,
    namespace: &str,
    folder: &tempfile::TempDir,
) -> Arc<dyn Cache> {
    let server = &tls_server.server;
    let url = server.url();
    let far = || RedisCache::connect(&url, namespace);
    let tiered = match target {
        "direct" => return Arc::new(Direct::connect(server, namespace).await),
        "redis" => return Arc::new(far().await.unwrap()),
        "redis-tls" => {
            let cache = RedisCache::builder(&tls_server.url(), namespace)
                .tls_ca_pem(ca.pem())
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
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (task as u64 + 1));
                while !stop.load(Ordering::Relaxed) {
                    let k = key(rng.next() % KEYS);
                    let put = match workload {
                        Workload::Get => false,
                        Workload::Put => true,
                        Workload::Mixed => rng.next() % 10 == 0,
                    };
                    if put {
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
        let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
        let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1e3);
        println!(
            "{:>7} KiB {:>10.1} {:>12} {:>12} {:>12}",
            kib,
            rate,
            ms(at(0.5)),
            ms(at(0.99)),
            ms(*latencies.last().unwrap())
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

/// xorshift64*: a fast, seedable generator, so no task waits on a shared one.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}
