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
    let server = RedisServer::start();
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
    let targets = ["direct", "redis", "tiered", "tiered-redb"];
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
                let cache = open(target, &server, &format!("bench{n}-{target}"), &folder).await;
                prefill(cache.as_ref()).await;
                let (ops, elapsed) = measure(&cache, workload, concurrency, &window).await;
                let rate = ops as f64 / elapsed.as_secs_f64();
                let latency = elapsed.as_secs_f64() * concurrency as f64 / ops.max(1) as f64;
                row += &format!(" {:>12.0} ({:>6.1} µs)", rate, latency * 1e6);
            }
            println!("{row}");
        }
    });
}

/// The cache under test; a redb near tier lives in `folder`.
async fn open(
    target: &str,
    server: &RedisServer,
    namespace: &str,
    folder: &tempfile::TempDir,
) -> Arc<dyn Cache> {
    let url = server.url();
    let far = || RedisCache::connect(&url, namespace);
    let tiered = match target {
        "direct" => return Arc::new(Direct::connect(server, namespace).await),
        "redis" => return Arc::new(far().await.unwrap()),
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
