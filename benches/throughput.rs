//! # Throughput: the vlive actor against the direct designs, side by side, in one run
//!
//! `cargo bench --bench throughput` measures every implementation on every workload in the same
//! process, one cell after another, and prints one table (ops/s, with the ratios vlive/direct and
//! vlive/ceiling), a responsiveness table, vlive's batch sizes and the target verdicts. It writes
//! them as CSV (`throughput.csv`: the table; `cells.csv`: every cell with its spread;
//! `responsiveness.csv`), as Markdown (`results.md`) and as an SVG chart (`throughput.svg`:
//! throughput against concurrency, one line per implementation) under `<target dir>/vlive-bench/`.
//!
//! The run makes 3 rounds over all cells (0.5 s warm-up and a 1.5 s window each) and reports each
//! cell's median round, so that a burst of load from another process spoils one round of a few
//! cells, not the table; a full run takes about four minutes. `VLIVE_BENCH_QUICK=1` makes one
//! round of 0.15 s + 0.5 s cells, well under a minute (noisier numbers, same shape);
//! `VLIVE_BENCH_ROUNDS=n` sets the number of rounds. `VLIVE_BENCH_ONLY=<text>` runs only the cells
//! whose label (`put-burst/64/vlive-lazy`, `get (warm)/1/direct`, `ceiling`, `raw-small`, `idle`) contains the
//! text, e.g. to profile one of them; such a partial run writes no files. Under `cargo test
//! --benches` (no `--bench` argument) every cell runs once for a few milliseconds as a smoke test.
//!
//! ## Implementations
//!
//! - **`vlive-immediate`**: [`RedbCache`] with its defaults: one actor thread owns the database
//!   and commits each batch of queued commands in one transaction with an fsync (group commit).
//!   CBOR encoding runs in the calling task before the command is sent, decoding after the reply.
//! - **`vlive-lazy`**: the same with `Durability::Lazy { max_delay: 100 ms }`: puts commit without
//!   an fsync; a durable checkpoint runs at least every 100 ms (and on every invalidation).
//! - **`direct`**: the straightforward design. An `Arc<redb::Database>`; every get, put and
//!   invalidation runs its own redb transaction synchronously inside the `async fn` (a put is
//!   `begin_write`, insert, commit with `Durability::Immediate`), CBOR encoded and decoded inline.
//!   It blocks a tokio worker thread for the whole operation, fsync included.
//! - **`blocking`**: `direct`, but every operation (encoding and decoding included) runs inside
//!   `tokio::task::spawn_blocking`, so the worker threads stay free while the blocking pool waits.
//! - **`ceiling`**: raw redb on one thread — no async, no channel, no encoding (the value is
//!   encoded once, up front): transactions of 512 inserts each, committed with
//!   `Durability::Immediate`. The physical ceiling for batched durable puts on this disk; it does
//!   not depend on a concurrency, so one measurement stands against every put-burst row. The
//!   same loop with 64 inserts per transaction (`raw-small`) is reported beside it: the most any
//!   design can get from one transaction per 64 waiting callers.
//!
//! All of them use vlive's file layout: file [`vlive::DB_FILE_NAME`] in the cache folder, table
//! `__vlive__{root}` per key root, keyed by the rest of the key after the root (leading `/`
//! included), value the CBOR array `[1, seconds, nanoseconds, rows]` that vlive's codec writes.
//! They get both from the crate itself (`vlive::__private`: the store's own key mapping and the
//! codec), not from a copy that could drift. The baselines even read the files vlive prefilled.
//!
//! ## Workloads
//!
//! Each cell runs on a fresh tokio multi-thread runtime with 2 worker threads, over a fresh
//! temporary folder. `concurrency` tasks loop on their operation until told to stop, yielding to
//! the scheduler after each one (as a task with other work would; a `direct` task that never
//! yields would hold a worker forever, since its operations never return `Pending`); the cell
//! warms up, then counts completed operations over a fixed window. Values are 20-row [`CachedRows`] of 6 text fields each,
//! about 3.4 KB of CBOR; keys spread over 16 roots (`r00/…` to `r15/…`). Every put hands the
//! cache a fresh clone of the rows, as a caller would.
//!
//! - **put-burst(c)**, c = 1, 8, 64, 256: every task puts to random keys (4096 keys over the 16
//!   roots), back to back.
//! - **get(c)**, c = 1, 8, 64, warm cache: 1024 keys (64 per root) are prefilled (through vlive,
//!   then the folder is reopened by the implementation under test) and every task gets random
//!   ones; every get hits and decodes.
//! - **mixed(64)**: over the same prefilled keys, each operation is a get with probability 90%, a
//!   put with 9% and an `invalidate_prefix` with 1% (a prefix such as `r07/page_03`, which covers
//!   10 of the root's 64 keys).
//! - **responsiveness**: during put-burst(64), one more task sleeps 1 ms in a loop and records how
//!   late each wake-up is. p50/p99/max per implementation, next to an idle runtime's (tokio's
//!   timer has a 1 ms resolution, so even an idle runtime wakes up to 1 ms late).
//!
//! For vlive the bench also reports the mean batch size (commands per transaction) within the
//! measuring window, from [`RedbCache::stats`].

use std::error::Error;
use std::fmt::Write as _;
use std::future::Future;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use plotters::coord::Shift;
use plotters::prelude::*;
use redb::{
    Database, ReadableDatabase, ReadableTable, Table, TableDefinition, TableError, TableHandle,
};
use tokio::runtime::Runtime;
use vlive::__private::{codec, layout};
use vlive::{Cache, CachedRows, Durability, Record, RedbCache, RedbCacheStats, Rows, Value};

// ---------------------------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------------------------

/// Key roots: `r00` … `r15`.
const ROOTS: u64 = 16;
/// put-burst keys per root (4096 keys in all).
const PUT_PAGES: u64 = 256;
/// Prefilled keys per root for get and mixed (1024 keys in all).
const WARM_PAGES: u64 = 64;
/// Rows per value and text fields per row.
const ROWS: usize = 20;
const FIELDS: [&str; 6] = ["name", "email", "city", "company", "phone", "notes"];
/// Inserts per transaction of the ceiling.
const CEILING_BATCH: usize = 512;
/// Inserts per transaction of the reference that shows what a transaction per 64 callers can
/// give at best: a closed loop of 64 callers never has more than 64 puts to commit at once.
const RAW_SMALL_BATCH: usize = 64;
/// The responsiveness probe's sleep.
const PROBE_SLEEP: Duration = Duration::from_millis(1);
/// Lazy mode's checkpoint interval.
const LAZY_MAX_DELAY: Duration = Duration::from_millis(100);
/// The table's rows.
const PUT_CONCURRENCY: [usize; 4] = [1, 8, 64, 256];
const GET_CONCURRENCY: [usize; 3] = [1, 8, 64];
const MIXED_CONCURRENCY: usize = 64;
const PROBED_CONCURRENCY: usize = 64;

/// How long each cell warms up and measures.
#[derive(Clone, Copy, Debug)]
struct Timing {
    warmup: Duration,
    window: Duration,
    /// Every cell is measured once per round; the table shows the median.
    rounds: usize,
}

impl Timing {
    fn from_env() -> (Self, bool) {
        let quick = std::env::var("VLIVE_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        let mut timing = if quick {
            Timing {
                warmup: Duration::from_millis(150),
                window: Duration::from_millis(500),
                rounds: 1,
            }
        } else {
            Timing {
                warmup: Duration::from_millis(500),
                window: Duration::from_millis(1500),
                rounds: 3,
            }
        };
        if let Some(rounds) = std::env::var("VLIVE_BENCH_ROUNDS")
            .ok()
            .and_then(|r| r.parse().ok())
        {
            timing.rounds = rounds;
        }
        (timing, quick)
    }
}

// ---------------------------------------------------------------------------------------------
// Implementations
// ---------------------------------------------------------------------------------------------

/// The implementations compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Impl {
    VliveImmediate,
    VliveLazy,
    Direct,
    Blocking,
    Ceiling,
}

/// The implementations behind the async cache interface (the ceiling is a loop of its own).
const CACHES: [Impl; 4] = [
    Impl::VliveImmediate,
    Impl::VliveLazy,
    Impl::Direct,
    Impl::Blocking,
];

impl Impl {
    fn name(self) -> &'static str {
        match self {
            Impl::VliveImmediate => "vlive-immediate",
            Impl::VliveLazy => "vlive-lazy",
            Impl::Direct => "direct",
            Impl::Blocking => "blocking",
            Impl::Ceiling => "ceiling",
        }
    }

    fn color(self) -> RGBColor {
        match self {
            Impl::VliveImmediate => RGBColor(0x1f, 0x77, 0xb4),
            Impl::VliveLazy => RGBColor(0x2c, 0xa0, 0x2c),
            Impl::Direct => RGBColor(0xd6, 0x27, 0x28),
            Impl::Blocking => RGBColor(0xff, 0x7f, 0x0e),
            Impl::Ceiling => RGBColor(0x55, 0x55, 0x55),
        }
    }

    /// Opens the cache under test over `folder` (must be called inside the runtime).
    fn open(self, folder: &Path) -> Subject {
        match self {
            Impl::VliveImmediate => Subject::Vlive(
                RedbCache::builder()
                    .durability(Durability::Immediate)
                    .open(folder)
                    .expect("open vlive"),
            ),
            Impl::VliveLazy => Subject::Vlive(
                RedbCache::builder()
                    .durability(Durability::Lazy {
                        max_delay: LAZY_MAX_DELAY,
                    })
                    .open(folder)
                    .expect("open vlive"),
            ),
            Impl::Direct => Subject::Direct(DirectCache::open(folder)),
            Impl::Blocking => Subject::Blocking(DirectCache::open(folder)),
            Impl::Ceiling => unreachable!("the ceiling is not a cache"),
        }
    }
}

/// An open cache under test: vlive, or one of the two baselines.
#[derive(Clone)]
enum Subject {
    Vlive(RedbCache),
    Direct(DirectCache),
    Blocking(DirectCache),
}

impl Subject {
    async fn get(&self, key: String) -> Option<CachedRows> {
        match self {
            Subject::Vlive(cache) => cache.get(&key).await.expect("vlive get"),
            Subject::Direct(direct) => direct.get(&key),
            Subject::Blocking(direct) => {
                let direct = direct.clone();
                tokio::task::spawn_blocking(move || direct.get(&key))
                    .await
                    .expect("blocking get")
            }
        }
    }

    async fn put(&self, key: String, rows: CachedRows) {
        match self {
            Subject::Vlive(cache) => cache.put(&key, rows).await.expect("vlive put"),
            Subject::Direct(direct) => direct.put(&key, &rows),
            Subject::Blocking(direct) => {
                let direct = direct.clone();
                tokio::task::spawn_blocking(move || direct.put(&key, &rows))
                    .await
                    .expect("blocking put")
            }
        }
    }

    async fn invalidate_prefix(&self, prefix: String) {
        match self {
            Subject::Vlive(cache) => cache
                .invalidate_prefix(&prefix)
                .await
                .expect("vlive invalidate"),
            Subject::Direct(direct) => direct.invalidate_prefix(&prefix),
            Subject::Blocking(direct) => {
                let direct = direct.clone();
                tokio::task::spawn_blocking(move || direct.invalidate_prefix(&prefix))
                    .await
                    .expect("blocking invalidate")
            }
        }
    }

    fn stats(&self) -> Option<RedbCacheStats> {
        match self {
            Subject::Vlive(cache) => Some(cache.stats()),
            Subject::Direct(_) | Subject::Blocking(_) => None,
        }
    }

    /// Releases the file (the baselines close their database when the last clone drops).
    async fn close(self) {
        if let Subject::Vlive(cache) = self {
            cache.close().await.expect("vlive close");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The baselines: vlive's file layout and value encoding, one redb transaction per operation
// ---------------------------------------------------------------------------------------------

type DataTable<'a> = TableDefinition<'a, &'static str, &'static [u8]>;

/// vlive's value encoding, through the crate's own codec.
fn encode(value: &CachedRows) -> Vec<u8> {
    codec::encode(value).expect("encode")
}

fn decode(bytes: &[u8]) -> CachedRows {
    codec::decode(bytes).expect("decode")
}

/// The direct design: a shared database, one synchronous transaction per operation.
#[derive(Clone)]
struct DirectCache {
    db: Arc<Database>,
}

impl DirectCache {
    fn open(folder: &Path) -> Self {
        let db = Database::create(folder.join(vlive::DB_FILE_NAME)).expect("open redb");
        DirectCache { db: Arc::new(db) }
    }

    fn get(&self, key: &str) -> Option<CachedRows> {
        let (name, rest) = layout::locate(key);
        let txn = self.db.begin_read().expect("begin_read");
        let table = match txn.open_table(DataTable::new(&name)) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return None,
            Err(e) => panic!("open table: {e}"),
        };
        let value = table.get(rest).expect("get")?;
        Some(decode(value.value()))
    }

    fn put(&self, key: &str, rows: &CachedRows) {
        let bytes = encode(rows);
        let (name, rest) = layout::locate(key);
        let mut txn = self.db.begin_write().expect("begin_write");
        txn.set_durability(redb::Durability::Immediate)
            .expect("durability");
        {
            let mut table = txn.open_table(DataTable::new(&name)).expect("open table");
            table.insert(rest, bytes.as_slice()).expect("insert");
        }
        txn.commit().expect("commit");
    }

    fn invalidate_prefix(&self, prefix: &str) {
        let mut txn = self.db.begin_write().expect("begin_write");
        txn.set_durability(redb::Durability::Immediate)
            .expect("durability");
        // With a '/': one table and a range of it; without: the start of every covered name.
        let (covered, rest_prefix) = layout::locate(prefix);
        match prefix.find('/') {
            // A prefix without '/' covers whole roots: drop their tables.
            None => {
                let doomed: Vec<String> = txn
                    .list_tables()
                    .expect("list tables")
                    .map(|t| t.name().to_owned())
                    .filter(|name| name.starts_with(&covered))
                    .collect();
                for name in &doomed {
                    txn.delete_table(DataTable::new(name))
                        .expect("delete table");
                }
            }
            // Otherwise it names one root and a range of the rest.
            Some(_) => match txn.open_table(DataTable::new(&covered)) {
                Ok(mut table) => {
                    let doomed: Vec<String> = table
                        .range(rest_prefix..)
                        .expect("range")
                        .map(|entry| entry.expect("entry").0.value().to_owned())
                        .take_while(|k| k.starts_with(rest_prefix))
                        .collect();
                    for rest in &doomed {
                        table.remove(rest.as_str()).expect("remove");
                    }
                }
                Err(e) => panic!("open table: {e}"),
            },
        }
        txn.commit().expect("commit");
    }
}

// ---------------------------------------------------------------------------------------------
// Data
// ---------------------------------------------------------------------------------------------

/// 20 rows of 6 text fields: about 3.4 KB of CBOR.
fn sample_rows() -> Rows {
    (0..ROWS)
        .map(|row| {
            let record: Record = FIELDS
                .iter()
                .map(|field| {
                    let text = format!("{field} of row {row:02} ~~~~~~~~~~~~~~");
                    (field.to_string(), Value::Text(text[..21].to_owned()))
                })
                .collect();
            (format!("{row}"), record)
        })
        .collect()
}

fn key(root: u64, page: u64) -> String {
    format!("r{root:02}/page_{page:03}")
}

/// xorshift64*: a fast, seedable generator, so no task waits on a shared one.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) % n
    }

    fn key(&mut self, pages: u64) -> String {
        key(self.below(ROOTS), self.below(pages))
    }
}

// ---------------------------------------------------------------------------------------------
// Measuring a cell
// ---------------------------------------------------------------------------------------------

/// Shared between the driver and a cell's tasks.
#[derive(Default)]
struct Control {
    stop: AtomicBool,
    measuring: AtomicBool,
    ops: AtomicU64,
}

impl Control {
    fn running(&self) -> bool {
        !self.stop.load(Relaxed)
    }

    /// Counts a completed operation and yields to the scheduler, as a task with other work to
    /// do would. Without the yield a `direct` task never returns `Pending` (its operations are
    /// synchronous), so two of them would keep both workers forever and starve everything else.
    async fn done(&self) {
        self.ops.fetch_add(1, Relaxed);
        tokio::task::yield_now().await;
    }
}

/// Wake-up lateness of the 1 ms sleeper.
#[derive(Clone, Copy, Debug)]
struct Lag {
    p50: Duration,
    p99: Duration,
    max: Duration,
    samples: usize,
}

impl Lag {
    fn from_samples(mut lags: Vec<Duration>) -> Option<Self> {
        if lags.is_empty() {
            return None;
        }
        lags.sort_unstable();
        let at = |q: f64| lags[((lags.len() - 1) as f64 * q).round() as usize];
        Some(Lag {
            p50: at(0.50),
            p99: at(0.99),
            max: lags[lags.len() - 1],
            samples: lags.len(),
        })
    }
}

/// vlive's batches (transactions) within the measuring window.
#[derive(Clone, Copy, Debug, Default)]
struct Batches {
    batches: u64,
    ops: u64,
    /// The largest batch since the cache opened.
    max_ops: u64,
}

impl Batches {
    /// `None` when no batch ran (not vlive, or every get was answered beside the actor).
    fn between(before: Option<RedbCacheStats>, after: Option<RedbCacheStats>) -> Option<Self> {
        let (before, after) = (before?, after?);
        if after.batches == before.batches {
            return None;
        }
        Some(Batches {
            batches: after.batches - before.batches,
            ops: after.batched_ops - before.batched_ops,
            max_ops: after.max_batch_ops,
        })
    }

    fn mean_ops(&self) -> f64 {
        self.ops as f64 / self.batches.max(1) as f64
    }

    fn merge(self, other: Batches) -> Batches {
        Batches {
            batches: self.batches + other.batches,
            ops: self.ops + other.ops,
            max_ops: self.max_ops.max(other.max_ops),
        }
    }
}

/// What one round of one cell measured.
#[derive(Clone, Debug)]
struct Measured {
    ops_per_sec: f64,
    batches: Option<Batches>,
    /// The lag probe's wake-up lags, if it ran.
    lags: Vec<Duration>,
}

/// A cell over all its rounds: the median throughput (robust against a round disturbed by
/// another process), the spread, the batches and the lags of all rounds together.
#[derive(Clone, Copy, Debug)]
struct Summary {
    ops_per_sec: f64,
    low: f64,
    high: f64,
    batches: Option<Batches>,
    lag: Option<Lag>,
}

impl Summary {
    fn of(rounds: &[Measured]) -> Option<Self> {
        let mut ops: Vec<f64> = rounds.iter().map(|m| m.ops_per_sec).collect();
        ops.sort_by(f64::total_cmp);
        let median = match ops.len() {
            0 => return None,
            n if n % 2 == 1 => ops[n / 2],
            n => (ops[n / 2 - 1] + ops[n / 2]) / 2.0,
        };
        let batches = rounds
            .iter()
            .filter_map(|m| m.batches)
            .reduce(Batches::merge);
        let lags = rounds.iter().flat_map(|m| m.lags.iter().copied()).collect();
        Some(Summary {
            ops_per_sec: median,
            low: ops[0],
            high: ops[ops.len() - 1],
            batches,
            lag: Lag::from_samples(lags),
        })
    }
}

/// A fresh runtime for each cell (no blocking-pool threads left over from the last one), with
/// the 2 worker threads the issue prescribes.
fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The 1 ms sleeper: how late is each wake-up?
async fn lag_probe(control: Arc<Control>) -> Vec<Duration> {
    let mut lags = Vec::with_capacity(8192);
    while control.running() {
        // A sleep that starts within the window counts, however late it wakes up: a runtime
        // that starves the sleeper for the whole window shows as one huge lag, not as none.
        let counted = control.measuring.load(Relaxed);
        let start = Instant::now();
        tokio::time::sleep(PROBE_SLEEP).await;
        let lag = start.elapsed().saturating_sub(PROBE_SLEEP);
        if counted {
            lags.push(lag);
        }
    }
    lags
}

/// Runs `concurrency` copies of `task` (plus the lag probe if asked) on `rt`, warms up, counts
/// the operations completed within the window, stops the tasks and waits for them.
///
/// The driver times the window on its own thread (not in the runtime), so a runtime whose
/// workers are blocked cannot stretch it unnoticed.
fn measure<F, Fut>(
    rt: &Runtime,
    timing: Timing,
    concurrency: usize,
    probe: bool,
    stats: impl Fn() -> Option<RedbCacheStats>,
    task: F,
) -> Measured
where
    F: Fn(u64, Arc<Control>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let control = Arc::new(Control::default());
    let tasks: Vec<_> = (0..concurrency as u64)
        .map(|i| rt.spawn(task(i, control.clone())))
        .collect();
    let probe = probe.then(|| rt.spawn(lag_probe(control.clone())));

    std::thread::sleep(timing.warmup);
    let stats_before = stats();
    let start = Instant::now();
    let ops_before = control.ops.load(Relaxed);
    control.measuring.store(true, Relaxed);
    std::thread::sleep(timing.window);
    let ops_after = control.ops.load(Relaxed);
    let elapsed = start.elapsed();
    control.measuring.store(false, Relaxed);
    let stats_after = stats();
    control.stop.store(true, Relaxed);

    let lags = rt.block_on(async {
        for task in tasks {
            task.await.expect("a benchmark task panicked");
        }
        match probe {
            Some(probe) => probe.await.expect("the probe panicked"),
            None => Vec::new(),
        }
    });
    Measured {
        ops_per_sec: (ops_after - ops_before) as f64 / elapsed.as_secs_f64(),
        batches: Batches::between(stats_before, stats_after),
        lags,
    }
}

fn scratch_folder() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("vlive-bench-")
        .tempdir()
        .expect("temp folder")
}

// ---------------------------------------------------------------------------------------------
// Workloads
// ---------------------------------------------------------------------------------------------

/// One cell: `imp` opened on a fresh folder (prefilled first when `prefilled`), on a fresh
/// runtime; `concurrency` copies of `task` (plus the lag probe when `probed`) run through
/// [`measure`]; then it is closed.
fn run_cell<F, Fut>(
    imp: Impl,
    concurrency: usize,
    timing: Timing,
    prefilled: Option<&Rows>,
    probed: bool,
    task: F,
) -> Measured
where
    F: Fn(u64, Arc<Control>, Subject) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = scratch_folder();
    if let Some(rows) = prefilled {
        prefill(dir.path(), rows);
    }
    let rt = runtime();
    let subject = rt.block_on(async { imp.open(dir.path()) });
    let measured = measure(
        &rt,
        timing,
        concurrency,
        probed,
        || subject.stats(),
        |i, control| task(i, control, subject.clone()),
    );
    rt.block_on(subject.close());
    measured
}

/// put-burst(c): `concurrency` tasks put fresh clones of the rows to random keys, back to back.
/// At `PROBED_CONCURRENCY` the lag probe runs alongside.
fn put_burst(imp: Impl, concurrency: usize, timing: Timing, rows: &Rows) -> Measured {
    let probed = concurrency == PROBED_CONCURRENCY;
    run_cell(
        imp,
        concurrency,
        timing,
        None,
        probed,
        |i, control, subject| {
            let rows = rows.clone();
            async move {
                let mut rng = Rng::new(i + 1);
                while control.running() {
                    let value = CachedRows::new(rows.clone());
                    subject.put(rng.key(PUT_PAGES), value).await;
                    control.done().await;
                }
            }
        },
    )
}

/// Fills `WARM_PAGES` keys per root through vlive (fast: group commit, lazy durability), closes
/// it, so that every implementation then opens the same prefilled file.
fn prefill(folder: &Path, rows: &Rows) {
    let rt = runtime();
    rt.block_on(async {
        let cache = Impl::VliveLazy.open(folder);
        let mut puts = tokio::task::JoinSet::new();
        for root in 0..ROOTS {
            let (cache, rows) = (cache.clone(), rows.clone());
            puts.spawn(async move {
                for page in 0..WARM_PAGES {
                    cache
                        .put(key(root, page), CachedRows::new(rows.clone()))
                        .await;
                }
            });
        }
        while let Some(done) = puts.join_next().await {
            done.expect("prefill task");
        }
        cache.close().await;
    });
}

/// get(c) on a warm cache: every get hits and decodes the rows.
fn get_warm(imp: Impl, concurrency: usize, timing: Timing, rows: &Rows) -> Measured {
    run_cell(
        imp,
        concurrency,
        timing,
        Some(rows),
        false,
        |i, control, subject| async move {
            let mut rng = Rng::new(i + 1);
            while control.running() {
                let found = subject.get(rng.key(WARM_PAGES)).await;
                assert!(black_box(found).is_some(), "a warm get missed");
                control.done().await;
            }
        },
    )
}

/// mixed(c): 90% get, 9% put, 1% `invalidate_prefix` over the prefilled keys.
fn mixed(imp: Impl, concurrency: usize, timing: Timing, rows: &Rows) -> Measured {
    run_cell(
        imp,
        concurrency,
        timing,
        Some(rows),
        false,
        |i, control, subject| {
            let rows = rows.clone();
            async move {
                let mut rng = Rng::new(i + 1);
                while control.running() {
                    match rng.below(100) {
                        0..90 => {
                            black_box(subject.get(rng.key(WARM_PAGES)).await);
                        }
                        90..99 => {
                            let value = CachedRows::new(rows.clone());
                            subject.put(rng.key(WARM_PAGES), value).await;
                        }
                        _ => {
                            // `r07/page_03` covers `r07/page_030` … `r07/page_039`.
                            let prefix = format!("r{:02}/page_0{}", rng.below(ROOTS), rng.below(7));
                            subject.invalidate_prefix(prefix).await;
                        }
                    }
                    control.done().await;
                }
            }
        },
    )
}

/// Raw redb on one thread: transactions of `batch` durable inserts, value pre-encoded. Counts
/// the inserts of the transactions committed within the window. With 512 inserts per
/// transaction this is the ceiling.
fn raw_redb(timing: Timing, rows: &Rows, batch: usize) -> Measured {
    let dir = scratch_folder();
    let db = Database::create(dir.path().join(vlive::DB_FILE_NAME)).expect("open redb");
    let bytes = encode(&CachedRows::new(rows.clone()));
    let names: Vec<String> = (0..ROOTS).map(|r| layout::locate(&key(r, 0)).0).collect();
    let mut rng = Rng::new(1);
    let started = Instant::now();
    let mut inserted = 0u64;
    let mut window_start: Option<(Instant, u64)> = None;
    loop {
        let mut txn = db.begin_write().expect("begin_write");
        txn.set_durability(redb::Durability::Immediate)
            .expect("durability");
        {
            let mut tables: Vec<Table<&str, &[u8]>> = names
                .iter()
                .map(|name| txn.open_table(DataTable::new(name)).expect("open table"))
                .collect();
            for _ in 0..batch {
                let root = rng.below(ROOTS);
                let key = key(root, rng.below(PUT_PAGES));
                let (_, rest) = layout::locate(&key);
                tables[root as usize]
                    .insert(rest, bytes.as_slice())
                    .expect("insert");
            }
        }
        txn.commit().expect("commit");
        inserted += batch as u64;
        let now = Instant::now();
        match window_start {
            None if now - started >= timing.warmup => window_start = Some((now, inserted)),
            Some((start, before)) if now - start >= timing.window => {
                let ops = inserted - before;
                return Measured {
                    ops_per_sec: ops as f64 / (now - start).as_secs_f64(),
                    batches: Some(Batches {
                        batches: ops / batch as u64,
                        ops,
                        max_ops: batch as u64,
                    }),
                    lags: Vec::new(),
                };
            }
            _ => {}
        }
    }
}

/// The lag probe on an idle runtime: the floor every responsiveness number stands on.
fn idle_lag(timing: Timing) -> Measured {
    let rt = runtime();
    measure(&rt, timing, 0, true, || None, |_, _| async {})
}

// ---------------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Workload {
    PutBurst,
    Get,
    Mixed,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::PutBurst => "put-burst",
            Workload::Get => "get (warm)",
            Workload::Mixed => "mixed 90/9/1",
        }
    }

    /// How the targets name a cell: `put-burst(64)`, `get(1)`.
    fn target_label(self, tasks: usize) -> String {
        let short = match self {
            Workload::PutBurst => "put-burst",
            Workload::Get => "get",
            Workload::Mixed => "mixed",
        };
        format!("{short}({tasks})")
    }
}

/// One cell of the table and what each round measured.
struct Cell {
    workload: Workload,
    concurrency: usize,
    imp: Impl,
    rounds: Vec<Measured>,
}

#[derive(Default)]
struct Results {
    cells: Vec<Cell>,
    ceiling: Vec<Measured>,
    /// Raw redb at `RAW_SMALL_BATCH` inserts per transaction.
    raw_small: Vec<Measured>,
    idle: Vec<Measured>,
}

impl Results {
    fn record(&mut self, workload: Workload, concurrency: usize, imp: Impl, measured: Measured) {
        let same =
            |c: &&mut Cell| c.workload == workload && c.concurrency == concurrency && c.imp == imp;
        match self.cells.iter_mut().find(same) {
            Some(cell) => cell.rounds.push(measured),
            None => self.cells.push(Cell {
                workload,
                concurrency,
                imp,
                rounds: vec![measured],
            }),
        }
    }

    /// Every round measured for one cell (the ceiling stands for every put-burst row).
    fn rounds(&self, workload: Workload, concurrency: usize, imp: Impl) -> &[Measured] {
        match (imp, workload) {
            (Impl::Ceiling, Workload::PutBurst) => &self.ceiling,
            (Impl::Ceiling, _) => &[],
            _ => self
                .cells
                .iter()
                .find(|c| c.workload == workload && c.concurrency == concurrency && c.imp == imp)
                .map_or(&[], |c| &c.rounds),
        }
    }

    fn find(&self, workload: Workload, concurrency: usize, imp: Impl) -> Option<Summary> {
        Summary::of(self.rounds(workload, concurrency, imp))
    }

    fn ops(&self, workload: Workload, concurrency: usize, imp: Impl) -> Option<f64> {
        self.find(workload, concurrency, imp).map(|m| m.ops_per_sec)
    }

    fn ratio(&self, workload: Workload, concurrency: usize, num: Impl, den: Impl) -> Option<f64> {
        Some(self.ops(workload, concurrency, num)? / self.ops(workload, concurrency, den)?)
    }

    /// The table's rows, in order.
    fn rows() -> Vec<(Workload, usize)> {
        let puts = PUT_CONCURRENCY.iter().map(|&c| (Workload::PutBurst, c));
        let gets = GET_CONCURRENCY.iter().map(|&c| (Workload::Get, c));
        puts.chain(gets)
            .chain([(Workload::Mixed, MIXED_CONCURRENCY)])
            .collect()
    }
}

const TABLE_IMPLS: [Impl; 5] = [
    Impl::VliveImmediate,
    Impl::VliveLazy,
    Impl::Direct,
    Impl::Blocking,
    Impl::Ceiling,
];
const RATIOS: [(Impl, Impl, &str); 4] = [
    (Impl::VliveImmediate, Impl::Direct, "immediate/direct"),
    (Impl::VliveLazy, Impl::Direct, "lazy/direct"),
    (Impl::VliveImmediate, Impl::Ceiling, "immediate/ceiling"),
    (Impl::VliveLazy, Impl::Ceiling, "lazy/ceiling"),
];

fn thousands(n: f64) -> String {
    let digits = format!("{:.0}", n);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

fn or_dash(value: Option<String>) -> String {
    value.unwrap_or_else(|| "—".into())
}

/// The main table as Markdown: ops/s per implementation and the ratios.
fn throughput_markdown(results: &Results) -> String {
    let mut out = String::from("| workload | tasks |");
    for imp in TABLE_IMPLS {
        let _ = write!(out, " {} |", imp.name());
    }
    for (_, _, name) in RATIOS {
        let _ = write!(out, " {name} |");
    }
    out.push_str("\n|---|---:|");
    out.push_str(&"---:|".repeat(TABLE_IMPLS.len() + RATIOS.len()));
    out.push('\n');
    for (workload, concurrency) in Results::rows() {
        let _ = write!(out, "| {} | {concurrency} |", workload.name());
        for imp in TABLE_IMPLS {
            let ops = results.ops(workload, concurrency, imp).map(thousands);
            let _ = write!(out, " {} |", or_dash(ops));
        }
        for (num, den, _) in RATIOS {
            let ratio = results.ratio(workload, concurrency, num, den);
            let _ = write!(out, " {} |", or_dash(ratio.map(|r| format!("{r:.2}×"))));
        }
        out.push('\n');
    }
    out
}

fn throughput_csv(results: &Results) -> String {
    let mut out = String::from("workload,tasks");
    for imp in TABLE_IMPLS {
        let _ = write!(out, ",{}", imp.name());
    }
    for (_, _, name) in RATIOS {
        let _ = write!(out, ",{name}");
    }
    for imp in [Impl::VliveImmediate, Impl::VliveLazy] {
        let _ = write!(out, ",{}_mean_batch_ops", imp.name());
    }
    out.push('\n');
    for (workload, concurrency) in Results::rows() {
        let _ = write!(out, "{},{concurrency}", workload.name());
        for imp in TABLE_IMPLS {
            let ops = results.ops(workload, concurrency, imp);
            let _ = write!(out, ",{}", ops.map_or(String::new(), |o| format!("{o:.0}")));
        }
        for (num, den, _) in RATIOS {
            let ratio = results.ratio(workload, concurrency, num, den);
            let _ = write!(
                out,
                ",{}",
                ratio.map_or(String::new(), |r| format!("{r:.3}"))
            );
        }
        for imp in [Impl::VliveImmediate, Impl::VliveLazy] {
            let batches = results
                .find(workload, concurrency, imp)
                .and_then(|m| m.batches);
            let _ = write!(
                out,
                ",{}",
                batches.map_or(String::new(), |b| format!("{:.1}", b.mean_ops()))
            );
        }
        out.push('\n');
    }
    out
}

/// Every cell in long form, with the spread over the rounds.
fn cells_csv(results: &Results) -> String {
    let mut out = String::from(
        "workload,tasks,implementation,ops_per_sec_median,ops_per_sec_min,ops_per_sec_max,\
         rounds,mean_batch_ops\n",
    );
    for (workload, concurrency) in Results::rows() {
        for imp in TABLE_IMPLS {
            let Some(summary) = results.find(workload, concurrency, imp) else {
                continue;
            };
            let rounds = results.rounds(workload, concurrency, imp).len();
            let _ = writeln!(
                out,
                "{},{concurrency},{},{:.0},{:.0},{:.0},{rounds},{}",
                workload.name(),
                imp.name(),
                summary.ops_per_sec,
                summary.low,
                summary.high,
                summary
                    .batches
                    .map_or(String::new(), |b| format!("{:.1}", b.mean_ops()))
            );
        }
    }
    if let Some(raw) = Summary::of(&results.raw_small) {
        let _ = writeln!(
            out,
            "put-burst,,raw redb {RAW_SMALL_BATCH}/txn,{:.0},{:.0},{:.0},{},{RAW_SMALL_BATCH}",
            raw.ops_per_sec,
            raw.low,
            raw.high,
            results.raw_small.len()
        );
    }
    out
}

/// The lag rows: the idle runtime, then every implementation under put-burst(64).
fn lag_rows(results: &Results) -> Vec<(String, Option<Lag>)> {
    let idle = Summary::of(&results.idle).and_then(|s| s.lag);
    let mut rows = vec![("idle runtime".to_owned(), idle)];
    for imp in CACHES {
        let lag = results
            .find(Workload::PutBurst, PROBED_CONCURRENCY, imp)
            .and_then(|m| m.lag);
        rows.push((format!("{} under put-burst(64)", imp.name()), lag));
    }
    rows
}

fn lag_markdown(results: &Results) -> String {
    let mut out = String::from(
        "| 1 ms sleeper | p50 lag (ms) | p99 lag (ms) | max lag (ms) | wake-ups |\n\
         |---|---:|---:|---:|---:|\n",
    );
    for (name, lag) in lag_rows(results) {
        match lag {
            Some(l) => {
                let _ = writeln!(
                    out,
                    "| {name} | {} | {} | {} | {} |",
                    ms(l.p50),
                    ms(l.p99),
                    ms(l.max),
                    l.samples
                );
            }
            None => {
                let _ = writeln!(out, "| {name} | — | — | — | 0 |");
            }
        }
    }
    out
}

fn lag_csv(results: &Results) -> String {
    let mut out = String::from("probe,p50_ms,p99_ms,max_ms,wakeups\n");
    for (name, lag) in lag_rows(results) {
        if let Some(l) = lag {
            let _ = writeln!(
                out,
                "{name},{:.3},{:.3},{:.3},{}",
                l.p50.as_secs_f64() * 1e3,
                l.p99.as_secs_f64() * 1e3,
                l.max.as_secs_f64() * 1e3,
                l.samples
            );
        }
    }
    out
}

fn batch_markdown(results: &Results) -> String {
    let mut out = String::from(
        "| workload | tasks | vlive-immediate mean/max batch | vlive-lazy mean/max batch |\n\
         |---|---:|---:|---:|\n",
    );
    for (workload, concurrency) in Results::rows() {
        let _ = write!(out, "| {} | {concurrency} |", workload.name());
        for imp in [Impl::VliveImmediate, Impl::VliveLazy] {
            let batches = results
                .find(workload, concurrency, imp)
                .and_then(|m| m.batches);
            let text = batches.map(|b| format!("{:.1} / {}", b.mean_ops(), b.max_ops));
            let _ = write!(out, " {} |", or_dash(text));
        }
        out.push('\n');
    }
    out
}

/// The ratio targets: workload, tasks, the denominator, how the target reads, the
/// least ratio that meets it, the unit printed after the ratio.
const RATIO_TARGETS: [(Workload, usize, Impl, &str, f64, &str); 5] = [
    (
        Workload::PutBurst,
        64,
        Impl::Direct,
        "direct ≥ 10×",
        10.0,
        "×",
    ),
    (
        Workload::PutBurst,
        64,
        Impl::Ceiling,
        "ceiling ≥ 0.50",
        0.5,
        "",
    ),
    (
        Workload::PutBurst,
        1,
        Impl::Direct,
        "direct ≥ 0.8×",
        0.8,
        "×",
    ),
    (Workload::Get, 64, Impl::Direct, "direct ≥ 1.0×", 1.0, "×"),
    (Workload::Get, 1, Impl::Direct, "direct ≥ 0.5×", 0.5, "×"),
];

/// The targets, checked against this run's numbers.
fn verdicts(results: &Results) -> String {
    let mut out = String::new();
    let mut check = |what: String, value: Option<f64>, pass: &dyn Fn(f64) -> bool, unit: &str| {
        let line = match value {
            Some(v) => format!(
                "{} {what}: {v:.2}{unit}",
                if pass(v) { "PASS" } else { "MISS" }
            ),
            None => format!("n/a  {what}: not measured"),
        };
        let _ = writeln!(out, "- {line}");
    };
    for (imp, mode) in [
        (Impl::VliveImmediate, "immediate"),
        (Impl::VliveLazy, "lazy"),
    ] {
        for (workload, tasks, against, target, min, unit) in RATIO_TARGETS {
            check(
                format!("{} {mode}/{target}", workload.target_label(tasks)),
                results.ratio(workload, tasks, imp, against),
                &|v| v >= min,
                unit,
            );
        }
        let p99 = results
            .find(Workload::PutBurst, PROBED_CONCURRENCY, imp)
            .and_then(|m| m.lag)
            .map(|l| l.p99.as_secs_f64() * 1e3);
        check(
            format!("p99 lag under put-burst(64), {mode} ≤ 2 ms"),
            p99,
            &|v| v <= 2.0,
            " ms",
        );
    }
    let ceiling = Summary::of(&results.ceiling).map(|s| s.ops_per_sec);
    let small = Summary::of(&results.raw_small).map(|s| s.ops_per_sec);
    if let (Some(ceiling), Some(small)) = (ceiling, small) {
        let _ = writeln!(
            out,
            "- info raw redb at {RAW_SMALL_BATCH} inserts per transaction (the largest transaction \
             64 waiting callers can fill): {} ops/s = {:.2} of the ceiling",
            thousands(small),
            small / ceiling
        );
    }
    for imp in [Impl::Direct, Impl::Blocking] {
        let p99 = results
            .find(Workload::PutBurst, PROBED_CONCURRENCY, imp)
            .and_then(|m| m.lag)
            .map(|l| l.p99.as_secs_f64() * 1e3);
        let _ = writeln!(
            out,
            "- info {} p99 lag under put-burst(64): {}",
            imp.name(),
            or_dash(p99.map(|v| format!("{v:.2} ms")))
        );
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The chart
// ---------------------------------------------------------------------------------------------

fn draw_chart(path: &Path, results: &Results) -> Result<(), Box<dyn Error>> {
    let root = SVGBackend::new(path, (1200, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let (title, body) = root.split_vertically(40);
    title.titled(
        "vlive RedbCache vs direct redb: throughput against concurrency (2 worker threads)",
        ("sans-serif", 20),
    )?;
    let (left, right) = body.split_horizontally(600);
    draw_panel(&left, results, Workload::PutBurst, &PUT_CONCURRENCY)?;
    draw_panel(&right, results, Workload::Get, &GET_CONCURRENCY)?;
    root.present()?;
    Ok(())
}

fn draw_panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    results: &Results,
    workload: Workload,
    concurrency: &[usize],
) -> Result<(), Box<dyn Error>> {
    let impls: &[Impl] = match workload {
        Workload::PutBurst => &TABLE_IMPLS,
        _ => &CACHES,
    };
    let values: Vec<f64> = impls
        .iter()
        .flat_map(|&imp| concurrency.iter().map(move |&c| (imp, c)))
        .filter_map(|(imp, c)| results.ops(workload, c, imp))
        .chain(
            Summary::of(&results.raw_small)
                .filter(|_| workload == Workload::PutBurst)
                .map(|raw| raw.ops_per_sec),
        )
        .filter(|v| *v > 0.0)
        .collect();
    if values.is_empty() {
        return Ok(());
    }
    let low = values.iter().copied().fold(f64::INFINITY, f64::min) / 1.5;
    // Head room above the lines for the legend.
    let high = values.iter().copied().fold(0.0, f64::max) * 6.0;
    let x_max = *concurrency.last().expect("concurrency levels") as f64;
    // Labels at 1, 2 and 5 times each power of ten within the range.
    let y_keys: Vec<f64> = (0..8)
        .flat_map(|exp| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(exp)))
        .filter(|y| (low..=high).contains(y))
        .collect();
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("{} (ops/s, log-log)", workload.name()),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (0.8..x_max * 1.25)
                .log_scale()
                .with_key_points(concurrency.iter().map(|&c| c as f64).collect()),
            (low..high).log_scale().with_key_points(y_keys),
        )?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .x_desc("concurrent tasks")
        .y_desc("ops/s")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| thousands(*y))
        .draw()?;
    for &imp in impls {
        let points: Vec<(f64, f64)> = concurrency
            .iter()
            .filter_map(|&c| Some((c as f64, results.ops(workload, c, imp)?)))
            .collect();
        let color = imp.color();
        let style = if imp == Impl::Ceiling {
            color.stroke_width(1)
        } else {
            color.stroke_width(2)
        };
        chart
            .draw_series(LineSeries::new(points, style).point_size(3))?
            .label(imp.name())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    // The most one transaction per 64 waiting callers can give, at 64 tasks.
    if let (Workload::PutBurst, Some(raw)) = (workload, Summary::of(&results.raw_small)) {
        let color = Impl::Ceiling.color();
        let at = (RAW_SMALL_BATCH as f64, raw.ops_per_sec);
        chart
            .draw_series([Cross::new(at, 6, color.stroke_width(2))])?
            .label(format!("raw redb, {RAW_SMALL_BATCH} inserts/txn"))
            .legend(move |(x, y)| Cross::new((x + 10, y), 5, color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

/// Every cell of the run, in order: (workload, tasks, implementation).
fn plan() -> Vec<(Workload, usize, Impl)> {
    Results::rows()
        .into_iter()
        .flat_map(|(workload, concurrency)| CACHES.map(|imp| (workload, concurrency, imp)))
        .collect()
}

/// Where the outputs go: `<target dir>/vlive-bench`, the target dir found from this binary's
/// own path (`<target>/release/deps/throughput-…`), unless `CARGO_TARGET_DIR` says.
fn output_folder() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            Some(exe.parent()?.parent()?.parent()?.to_owned())
        })
        .unwrap_or_else(|| PathBuf::from("target"));
    target.join("vlive-bench")
}

/// CPU, cores, memory, kernel: what the README quotes next to the numbers.
fn machine() -> String {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown CPU".into(), |s| s.trim().to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gib = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.split_whitespace().next()?.parse::<f64>().ok())
        .map_or("?".into(), |kib| format!("{:.0}", kib / 1024.0 / 1024.0));
    let kernel = read("/proc/sys/kernel/osrelease");
    format!(
        "{cpu}, {cores} cores, {mem_gib} GiB RAM, Linux {}, temp folder {}",
        kernel.trim(),
        std::env::temp_dir().display()
    )
}

/// The commit measured (`git describe --always --dirty`), so quoted numbers can name it.
fn commit() -> String {
    std::process::Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map_or_else(|| "unknown".into(), |s| s.trim().to_owned())
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: then only smoke-test.
    let benching = std::env::args().any(|a| a == "--bench");
    let (mut timing, quick) = Timing::from_env();
    if !benching {
        timing = Timing {
            warmup: Duration::from_millis(20),
            window: Duration::from_millis(50),
            rounds: 1,
        };
    }
    let rows = sample_rows();
    let value_bytes = encode(&CachedRows::new(rows.clone())).len();
    let started = Instant::now();
    let machine = format!("{}; commit {}", machine(), commit());
    println!("vlive throughput bench");
    println!("machine: {machine}");
    println!(
        "mode: {} ({} rounds; warm-up {:?}, window {:?} per cell and round); value: {ROWS} rows × {} text fields = \
         {value_bytes} bytes CBOR; keys over {ROOTS} roots; runtime: tokio multi-thread, 2 workers",
        if quick { "quick" } else { "full" },
        timing.rounds,
        timing.warmup,
        timing.window,
        FIELDS.len(),
    );

    let only = std::env::var("VLIVE_BENCH_ONLY")
        .ok()
        .filter(|f| !f.is_empty());
    let selected = |label: &str| only.as_deref().is_none_or(|f| label.contains(f));
    let mut results = Results::default();
    // Rounds go over every cell in turn, so a burst of load from another process spoils one
    // round of a few cells, and the median of the rounds shrugs it off.
    for round in 1..=timing.rounds {
        println!("round {round} of {}", timing.rounds);
        for (workload, concurrency, imp) in plan() {
            let label = format!("{}/{concurrency}/{}", workload.name(), imp.name());
            if !selected(&label) {
                continue;
            }
            let measured = match workload {
                Workload::PutBurst => put_burst(imp, concurrency, timing, &rows),
                Workload::Get => get_warm(imp, concurrency, timing, &rows),
                Workload::Mixed => mixed(imp, concurrency, timing, &rows),
            };
            println!(
                "  {:<13} {:>3} tasks  {:<16} {:>10} ops/s{}",
                workload.name(),
                concurrency,
                imp.name(),
                thousands(measured.ops_per_sec),
                measured.batches.map_or(String::new(), |b| format!(
                    "  (mean batch {:.1})",
                    b.mean_ops()
                ))
            );
            results.record(workload, concurrency, imp, measured);
        }
        if selected("ceiling") {
            let ceiling = raw_redb(timing, &rows, CEILING_BATCH);
            println!(
                "  ceiling: {} durable inserts/s in transactions of {CEILING_BATCH}",
                thousands(ceiling.ops_per_sec)
            );
            results.ceiling.push(ceiling);
        }
        if selected("raw-small") {
            let raw = raw_redb(timing, &rows, RAW_SMALL_BATCH);
            println!(
                "  raw redb: {} durable inserts/s in transactions of {RAW_SMALL_BATCH}",
                thousands(raw.ops_per_sec)
            );
            results.raw_small.push(raw);
        }
        if selected("idle") {
            results.idle.push(idle_lag(timing));
        }
    }

    let table = throughput_markdown(&results);
    let lags = lag_markdown(&results);
    let batches = batch_markdown(&results);
    let verdicts = verdicts(&results);
    println!("\n## Throughput (ops/s)\n\n{table}");
    println!("## Responsiveness: a 1 ms sleeper's wake-up lag\n\n{lags}");
    println!("## vlive batches (commands per transaction, within the window)\n\n{batches}");
    println!("## Targets\n\n{verdicts}");

    if !benching || only.is_some() {
        println!(
            "(a smoke run under `cargo test`, or a VLIVE_BENCH_ONLY selection: no files written)"
        );
        return;
    }
    let out = output_folder();
    std::fs::create_dir_all(&out).expect("create the output folder");
    let write = |name: &str, text: &str| {
        std::fs::write(out.join(name), text).unwrap_or_else(|e| panic!("write {name}: {e}"));
    };
    write("throughput.csv", &throughput_csv(&results));
    write("cells.csv", &cells_csv(&results));
    write("responsiveness.csv", &lag_csv(&results));
    write(
        "results.md",
        &format!("Machine: {machine}\n\n{table}\n{lags}\n{batches}\n{verdicts}"),
    );
    let chart = out.join("throughput.svg");
    if let Err(e) = draw_chart(&chart, &results) {
        eprintln!("could not draw the chart: {e}");
    }
    println!(
        "wrote throughput.csv, cells.csv, responsiveness.csv, results.md and throughput.svg to {} \
         ({:.0} s in all)",
        out.display(),
        started.elapsed().as_secs_f64()
    );
}
