//! # Churn probe: does a redb file stay near its live data when a cache evicts for months?
//!
//! Issue 10 wants the cache to live on a fixed byte budget. This probe simulates that with raw
//! redb (no vlive code: it measures the engine the redesign will sit on) and prints how the file
//! size follows the live bytes, what `Database::compact()` does, and what opening costs.
//!
//! ```text
//! cargo run --release --example churn_probe -- --value-bytes 3400 --budget-mib 64 --durability immediate
//! cargo run --release --example churn_probe -- --value-bytes 3400 --budget-mib 64 --durability none
//! cargo run --release --example churn_probe -- --value-bytes 3400 --budget-mib 64 --index seq-meta
//! ```
//!
//! ## The workload
//!
//! One table `&str -> &[u8]` (keys like `clients/page_00001234`, 21 bytes). Value sizes are
//! uniform in `[(1 - jitter) × value-bytes, (1 + jitter) × value-bytes]` (default jitter 0.5).
//! Keys are drawn uniformly from a key space of `2 × budget / mean entry` keys, so that about half
//! the puts overwrite a live key and half insert a new one. Live bytes (key + value of every
//! entry) are held at the budget the way an evicting cache would: after each put, while the live
//! bytes exceed the budget, the oldest entry (least recently written) is deleted, in the same
//! transaction. Transactions hold `--batch` puts (default 32). The run writes `--volume` times
//! the budget (default 10) of key + value bytes.
//!
//! - `--durability immediate`: every transaction commits with `Durability::Immediate`.
//! - `--durability none`: transactions commit with `Durability::None`, and an empty
//!   `Durability::Immediate` commit runs whenever `--checkpoint-ms` (default 100) have passed
//!   since the last one — vlive's lazy mode.
//! - `--index seq-meta`: two more tables carry the metadata that eviction and expiry need,
//!   updated in the same transaction: `by_seq: u64 -> &str` (write order; eviction pops its
//!   first entry) and `meta: &str -> (u64, u64, u64)` (seq, size, fetched_ms).
//! - `--index seq`: only `by_seq`; seq and fetched_ms go in a 16-byte header in front of each
//!   value (written in place with `insert_reserve`), so a put finds the old seq in the value it
//!   replaces. Live bytes count key + payload in every mode: the header is metadata.
//! - `--reader`: a read transaction is begun after every commit and held until the next one
//!   (vlive's actor publishes such a snapshot for gets beside it); it is dropped before
//!   `compact()`.
//! - `--quick-repair`: durable commits record redb's allocator state (`set_quick_repair`), so an
//!   unclean open loads it instead of walking every tree.
//!
//! ## What it prints
//!
//! A sample line every quarter budget written: written / budget, live MiB, file MiB (its
//! length), on-disk MiB (its allocated blocks: redb grows the file with `set_len`, which leaves
//! the new end sparse until written), allocated MiB (redb's allocated pages, from `stats()`),
//! file / live, allocated / live and the put rate since the last sample. Then:
//!
//! 1. the plateau: the largest file over the second half of the run, against live bytes and
//!    against `1.25 × budget + 1 MiB`; and per put, the CPU time and the bytes written to the
//!    file (Linux `/proc/self/stat` and `/proc/self/io` `wchar`: figures that a busy machine
//!    does not skew the way it skews puts/s);
//! 2. `compact()` with a read transaction alive (the error), then without: time, file size and
//!    allocated bytes before and after;
//! 3. `--after-compact` budgets (default 2) more churn: does the file grow back?
//! 4. a clean close, then the time to open the file (`Database::create` and a first write
//!    transaction begun and dropped, as vlive's open does);
//! 5. an unclean image — the file copied while the database is open, right after a durable
//!    commit (a live writer keeps redb's "recovery required" flag set in the header, so the copy
//!    is what a SIGKILL leaves) — and the time to open it, with whether redb repaired it;
//! 6. space reclaim: half the keys invalidated in one transaction, scattered through the file
//!    (those whose last digit is odd), then a clean close, then `compact()`: file, on-disk and
//!    allocated bytes after each step;
//! 7. one summary row (Markdown) for the report.
//!
//! Data lives in a temporary folder (under `$TMPDIR`), removed at the end.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, ValueEnum};
use redb::{
    CompactionError, Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable,
    TableDefinition, WriteTransaction,
};

const DATA: TableDefinition<&str, &[u8]> = TableDefinition::new("data");
const BY_SEQ: TableDefinition<u64, &str> = TableDefinition::new("by_seq");
const META: TableDefinition<&str, (u64, u64, u64)> = TableDefinition::new("meta");
const MIB: u64 = 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
enum Mode {
    /// Every transaction commits durably.
    Immediate,
    /// Non-durable commits, a durable checkpoint every `--checkpoint-ms`.
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
enum Index {
    /// The data table alone.
    None,
    /// `by_seq: u64 -> key` and `meta: key -> (seq, size, fetched_ms)` beside the data table.
    SeqMeta,
    /// `by_seq: u64 -> key`; seq and fetched_ms in a 16-byte header in front of each value.
    Seq,
}

/// The value header of `--index seq`: seq and fetched_ms, little-endian.
const HEADER: usize = 16;

fn header_seq(value: &[u8]) -> u64 {
    u64::from_le_bytes(value[..8].try_into().expect("header"))
}

#[derive(Parser, Debug)]
#[command(about = "Churn a budget-bounded redb table and watch the file size")]
struct Args {
    /// Mean value size in bytes.
    #[arg(long, default_value_t = 3400)]
    value_bytes: usize,
    /// Value sizes are uniform in mean × [1 - jitter, 1 + jitter].
    #[arg(long, default_value_t = 0.5)]
    jitter: f64,
    /// Live key + value bytes are held at this budget.
    #[arg(long, default_value_t = 64)]
    budget_mib: u64,
    /// Key + value bytes written, as a multiple of the budget.
    #[arg(long, default_value_t = 10.0)]
    volume: f64,
    /// Puts per transaction.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    #[arg(long, value_enum, default_value_t = Mode::Immediate)]
    durability: Mode,
    /// With `--durability none`: the longest time between durable commits.
    #[arg(long, default_value_t = 100)]
    checkpoint_ms: u64,
    /// The metadata kept for eviction and expiry.
    #[arg(long, value_enum, default_value_t = Index::None)]
    index: Index,
    /// Hold a read transaction begun after every commit (dropping the previous one), as vlive's
    /// actor does for gets beside it.
    #[arg(long)]
    reader: bool,
    /// Record the allocator state in durable commits.
    #[arg(long)]
    quick_repair: bool,
    /// Churn after the compaction, as a multiple of the budget.
    #[arg(long, default_value_t = 2.0)]
    after_compact: f64,
    /// Seed of the key and size generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// xorshift64*: fast and seedable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB as f64
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64
}

#[cfg(unix)]
fn disk_blocks_len(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).expect("metadata").blocks() * 512
}

#[cfg(not(unix))]
fn disk_blocks_len(_path: &Path) -> u64 {
    0
}

/// This process's CPU time (user + system), from `/proc/self/stat` (Linux; ticks of 10 ms).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which ends with the last ')'): state is field 3, utime 14.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// Bytes this process has handed to `write`/`pwrite` (`wchar` in `/proc/self/io`, Linux).
fn bytes_written() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("wchar: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

fn key_of(n: u64) -> String {
    format!("clients/page_{n:08}")
}

/// The cache being simulated: the database plus the bookkeeping that says what is live.
struct Churn {
    db: Database,
    path: PathBuf,
    args: Args,
    rng: Rng,
    /// Random bytes that values are cut from.
    noise: Vec<u8>,
    key_space: u64,
    budget: u64,
    /// key -> (seq, entry bytes); the source of truth for live bytes.
    live: HashMap<String, (u64, u64)>,
    /// seq -> key: write order, oldest first.
    order: BTreeMap<u64, String>,
    live_bytes: u64,
    seq: u64,
    written: u64,
    puts: u64,
    evictions: u64,
    last_durable: Instant,
    /// Durable commits made (transactions or checkpoints).
    durable_commits: u64,
    commits: u64,
    /// The longest `stats()` call (it walks every tree).
    stats_time: Duration,
    /// With `--reader`: the snapshot of the latest commit.
    reader: Option<ReadTransaction>,
}

impl Churn {
    fn new(path: PathBuf, args: Args) -> Self {
        let db = Database::create(&path).expect("create");
        let budget = args.budget_mib * MIB;
        let mean_entry = (args.value_bytes + key_of(0).len()) as u64;
        let max_value = (args.value_bytes as f64 * (1.0 + args.jitter)).ceil() as usize + 1;
        let mut rng = Rng(args.seed.max(1) * 0x9e37_79b9_7f4a_7c15);
        let noise = (0..2 * max_value).map(|_| rng.next() as u8).collect();
        Churn {
            db,
            path,
            key_space: 2 * budget / mean_entry,
            budget,
            rng,
            noise,
            live: HashMap::new(),
            order: BTreeMap::new(),
            live_bytes: 0,
            seq: 0,
            written: 0,
            puts: 0,
            evictions: 0,
            last_durable: Instant::now(),
            durable_commits: 0,
            commits: 0,
            stats_time: Duration::ZERO,
            reader: None,
            args,
        }
    }

    fn file_len(&self) -> u64 {
        std::fs::metadata(&self.path).expect("metadata").len()
    }

    /// Bytes the file occupies on disk (it is sparse where redb grew it but never wrote).
    /// Blocks are never given back short of truncation, so this is a high-water mark.
    fn disk_len(&self) -> u64 {
        disk_blocks_len(&self.path)
    }

    fn allocated(&self) -> u64 {
        allocated_of(&self.db)
    }

    fn value_len(&mut self) -> usize {
        let mean = self.args.value_bytes as f64;
        let spread = (2.0 * self.args.jitter * mean) as u64;
        let low = (mean * (1.0 - self.args.jitter)) as u64;
        (low + self.rng.below(spread + 1)).max(1) as usize
    }

    fn begin(&mut self, durable: bool) -> WriteTransaction {
        let mut txn = self.db.begin_write().expect("begin");
        txn.set_durability(if durable {
            Durability::Immediate
        } else {
            Durability::None
        })
        .expect("durability");
        if durable && self.args.quick_repair {
            txn.set_quick_repair(true);
        }
        txn
    }

    fn commit(&mut self, txn: WriteTransaction, durable: bool) {
        txn.commit().expect("commit");
        if self.args.reader {
            self.reader = Some(self.db.begin_read().expect("read"));
        }
        self.commits += 1;
        if durable {
            self.durable_commits += 1;
            self.last_durable = Instant::now();
        }
    }

    /// One transaction of `batch` puts, with the evictions they make necessary.
    fn step(&mut self) {
        let durable = self.args.durability == Mode::Immediate;
        let txn = self.begin(durable);
        {
            let mut data = txn.open_table(DATA).expect("data");
            let mut by_seq =
                (self.args.index != Index::None).then(|| txn.open_table(BY_SEQ).expect("by_seq"));
            let mut meta =
                (self.args.index == Index::SeqMeta).then(|| txn.open_table(META).expect("meta"));
            for _ in 0..self.args.batch {
                let key = key_of(self.rng.below(self.key_space));
                let len = self.value_len();
                let offset = self.rng.below((self.noise.len() - len) as u64) as usize;
                let payload = &self.noise[offset..offset + len];
                let entry = (key.len() + len) as u64;
                self.seq += 1;
                let seq = self.seq;
                match self.args.index {
                    Index::None => {
                        data.insert(key.as_str(), payload).expect("insert");
                    }
                    Index::SeqMeta => {
                        let (by_seq, meta) = (by_seq.as_mut().unwrap(), meta.as_mut().unwrap());
                        let old = meta.get(key.as_str()).expect("get").map(|m| m.value().0);
                        if let Some(old) = old {
                            by_seq.remove(old).expect("remove");
                        }
                        by_seq.insert(seq, key.as_str()).expect("insert");
                        meta.insert(key.as_str(), (seq, len as u64, now_ms()))
                            .expect("insert");
                        data.insert(key.as_str(), payload).expect("insert");
                    }
                    Index::Seq => {
                        let by_seq = by_seq.as_mut().unwrap();
                        let old = data
                            .get(key.as_str())
                            .expect("get")
                            .map(|v| header_seq(v.value()));
                        if let Some(old) = old {
                            by_seq.remove(old).expect("remove");
                        }
                        by_seq.insert(seq, key.as_str()).expect("insert");
                        // The header and the payload written in place: no copy of the value.
                        let mut slot = data
                            .insert_reserve(key.as_str(), HEADER + len)
                            .expect("reserve");
                        let bytes = slot.as_mut();
                        bytes[..8].copy_from_slice(&seq.to_le_bytes());
                        bytes[8..HEADER].copy_from_slice(&now_ms().to_le_bytes());
                        bytes[HEADER..].copy_from_slice(payload);
                    }
                }
                if let Some((old_seq, old_entry)) = self.live.insert(key.clone(), (seq, entry)) {
                    self.order.remove(&old_seq);
                    self.live_bytes -= old_entry;
                }
                self.order.insert(seq, key);
                self.live_bytes += entry;
                self.written += entry;
                self.puts += 1;
                while self.live_bytes > self.budget {
                    let (_, oldest) = self.order.pop_first().expect("something is live");
                    if let Some(by_seq) = by_seq.as_mut() {
                        // The index decides, as it would after a restart; it must agree.
                        let popped = by_seq.pop_first().expect("pop").expect("indexed");
                        assert_eq!(popped.1.value(), oldest, "index and model disagree");
                    }
                    if let Some(meta) = meta.as_mut() {
                        meta.remove(oldest.as_str()).expect("remove");
                    }
                    data.remove(oldest.as_str()).expect("remove");
                    let (_, entry) = self.live.remove(&oldest).expect("live");
                    self.live_bytes -= entry;
                    self.evictions += 1;
                }
            }
        }
        self.commit(txn, durable);
        if !durable && self.last_durable.elapsed() >= Duration::from_millis(self.args.checkpoint_ms)
        {
            let txn = self.begin(true);
            self.commit(txn, true);
        }
    }

    /// Churns until `volume` budgets more are written, printing samples; returns the largest
    /// file size seen after `watch_from` budgets of this call.
    fn run(&mut self, volume: f64, watch_from: f64) -> (u64, f64) {
        let start_written = self.written;
        let target = (volume * self.budget as f64) as u64;
        let sample_every = self.budget / 4;
        let mut next_sample = sample_every;
        let mut max_file = 0;
        let mut last = (Instant::now(), self.puts);
        let mut busy = Duration::ZERO;
        let puts_before = self.puts;
        while self.written - start_written < target {
            let started = Instant::now();
            self.step();
            busy += started.elapsed();
            let done = self.written - start_written;
            let in_watch = done as f64 >= watch_from * self.budget as f64;
            if in_watch {
                max_file = max_file.max(self.file_len());
            }
            if done >= next_sample || done >= target {
                next_sample += sample_every;
                let (at, puts) = last;
                let rate = (self.puts - puts) as f64 / at.elapsed().as_secs_f64();
                let file = self.file_len();
                let stats_started = Instant::now();
                let allocated = self.allocated();
                self.stats_time = self.stats_time.max(stats_started.elapsed());
                println!(
                    "  {:>5.2} budgets  live {:>7.1} MiB  file {:>7.1} MiB  on disk {:>7.1} MiB  \
                     allocated {:>7.1} MiB  file/live {:>5.2}  alloc/live {:>5.2}  {:>7.0} puts/s",
                    done as f64 / self.budget as f64,
                    mib(self.live_bytes),
                    mib(file),
                    mib(self.disk_len()),
                    mib(allocated),
                    file as f64 / self.live_bytes as f64,
                    allocated as f64 / self.live_bytes as f64,
                    rate
                );
                last = (Instant::now(), self.puts);
            }
        }
        let rate = (self.puts - puts_before) as f64 / busy.as_secs_f64();
        (max_file, rate)
    }

    fn checkpoint(&mut self) {
        let txn = self.begin(true);
        self.commit(txn, true);
    }
}

/// Pages redb has allocated, in bytes (`stats()` walks every tree: tens of ms per 100 MiB).
fn allocated_of(db: &Database) -> u64 {
    let txn = db.begin_write().expect("begin");
    let stats = txn.stats().expect("stats");
    let bytes = stats.allocated_pages() * stats.page_size() as u64;
    txn.abort().expect("abort");
    bytes
}

/// The keys that a scattered mass invalidation keeps: those whose last digit is even.
fn kept(key: &str) -> bool {
    key.as_bytes().last().is_some_and(|b| b % 2 == 0)
}

/// Opens `path` as vlive's open would (the database, then a write transaction begun and
/// dropped); returns the time and whether redb ran a repair.
fn timed_open(path: &Path) -> (Duration, bool, Database) {
    let repaired = Arc::new(AtomicUsize::new(0));
    let seen = repaired.clone();
    let started = Instant::now();
    let db = Database::builder()
        .set_repair_callback(move |_| {
            seen.fetch_add(1, Ordering::Relaxed);
        })
        .create(path)
        .expect("open");
    db.begin_write().expect("begin").abort().expect("abort");
    let took = started.elapsed();
    (took, repaired.load(Ordering::Relaxed) > 0, db)
}

fn main() {
    let args = Args::parse();
    let dir = tempfile::Builder::new()
        .prefix("vlive-churn-")
        .tempdir()
        .expect("tempdir");
    let path = dir.path().join("churn.redb");
    let label = format!(
        "value {} B ±{:.0}%, budget {} MiB, {}{}{}{}, {} puts/txn",
        args.value_bytes,
        args.jitter * 100.0,
        args.budget_mib,
        match args.durability {
            Mode::Immediate => "Immediate".to_owned(),
            Mode::None => format!("None + durable every {} ms", args.checkpoint_ms),
        },
        match args.index {
            Index::None => ", 1 table",
            Index::SeqMeta => ", data + by_seq + meta tables",
            Index::Seq => ", data (16 B header) + by_seq table",
        },
        if args.quick_repair {
            ", quick-repair"
        } else {
            ""
        },
        if args.reader { ", reader held" } else { "" },
        args.batch
    );
    println!("churn probe: {label}");
    let volume = args.volume;
    let after_compact = args.after_compact;
    let mut churn = Churn::new(path.clone(), args);
    println!(
        "  key space {} keys; writing {volume} × budget",
        churn.key_space
    );

    // 1. Churn, and the plateau over the second half.
    let started = Instant::now();
    let (cpu_before, written_before, puts_before) = (cpu_time(), bytes_written(), churn.puts);
    let (plateau, put_rate) = churn.run(volume, volume / 2.0);
    let churn_time = started.elapsed();
    let puts = (churn.puts - puts_before) as f64;
    // Includes the stats() calls of the samples: a few ms each.
    let cpu_per_put = (cpu_time() - cpu_before).as_secs_f64() * 1e6 / puts;
    let written_per_put = (bytes_written() - written_before) as f64 / puts;
    churn.checkpoint();
    let live = churn.live_bytes;
    let limit = churn.budget + churn.budget / 4 + MIB;
    let alloc_end = churn.allocated();
    let disk_end = churn.disk_len();
    println!(
        "plateau: largest file over the second half {:.1} MiB = {:.2} × live, {:.2} × (1.25 × budget + 1 MiB); \
         allocated {:.1} MiB = {:.2} × live; on disk {:.1} MiB = {:.2} × live; \
         {} puts ({:.0}/s), {} evictions, {} commits ({} durable) in {:.1} s; slowest stats() {:.1} ms; \
         per put: {:.1} µs CPU, {:.0} bytes written to the file",
        mib(plateau),
        plateau as f64 / live as f64,
        plateau as f64 / limit as f64,
        mib(alloc_end),
        alloc_end as f64 / live as f64,
        mib(disk_end),
        disk_end as f64 / live as f64,
        churn.puts,
        put_rate,
        churn.evictions,
        churn.commits,
        churn.durable_commits,
        churn_time.as_secs_f64(),
        churn.stats_time.as_secs_f64() * 1e3,
        cpu_per_put,
        written_per_put
    );

    // 2. Compaction: refused while a read transaction lives, then done.
    let reader = match churn.reader.take() {
        Some(reader) => reader,
        None => churn.db.begin_read().expect("read"),
    };
    match churn.db.compact() {
        Err(CompactionError::TransactionInProgress) => {
            println!("compact() with a read transaction alive: Err(TransactionInProgress)")
        }
        other => println!("compact() with a read transaction alive: {other:?} (unexpected)"),
    }
    drop(reader);
    let (file_before, alloc_before) = (churn.file_len(), churn.allocated());
    let started = Instant::now();
    let compacted = churn.db.compact().expect("compact");
    let compact_time = started.elapsed();
    let (file_after, alloc_after) = (churn.file_len(), churn.allocated());
    println!(
        "compact() -> {compacted} in {:.0} ms: file {:.1} -> {:.1} MiB, allocated {:.1} -> {:.1} MiB (live {:.1} MiB)",
        compact_time.as_secs_f64() * 1e3,
        mib(file_before),
        mib(file_after),
        mib(alloc_before),
        mib(alloc_after),
        mib(churn.live_bytes)
    );

    // 3. Does the file grow back?
    let mut regrown = file_after;
    if after_compact > 0.0 {
        println!("churn after compact:");
        let (max_after, _) = churn.run(after_compact, 0.0);
        regrown = max_after;
        println!(
            "after {after_compact} more budgets: largest file {:.1} MiB = {:.2} × live",
            mib(max_after),
            max_after as f64 / churn.live_bytes as f64
        );
    }

    // 4. Clean close, then open.
    churn.checkpoint();
    let Churn {
        db, args, reader, ..
    } = churn;
    drop(reader);
    db.close().expect("close");
    let closed_len = std::fs::metadata(&path).expect("metadata").len();
    let (clean_open, clean_repaired, db) = timed_open(&path);
    println!(
        "clean close: file {:.1} MiB; open {:.1} ms (repair: {clean_repaired})",
        mib(closed_len),
        clean_open.as_secs_f64() * 1e3
    );

    // 5. An unclean image: copied while open, right after a durable commit.
    let mut txn = db.begin_write().expect("begin");
    txn.set_durability(Durability::Immediate)
        .expect("durability");
    if args.quick_repair {
        txn.set_quick_repair(true);
    }
    txn.open_table(DATA)
        .expect("data")
        .insert("probe/unclean", b"x".as_slice())
        .expect("insert");
    txn.commit().expect("commit");
    let crashed = dir.path().join("crashed.redb");
    std::fs::copy(&path, &crashed).expect("copy");
    db.close().expect("close");
    let (unclean_open, unclean_repaired, db) = timed_open(&crashed);
    let found = db
        .begin_read()
        .expect("read")
        .open_table(DATA)
        .expect("data")
        .get("probe/unclean")
        .expect("get")
        .is_some();
    db.close().expect("close");
    println!(
        "unclean image: open {:.1} ms (repair: {unclean_repaired}; last commit kept: {found})",
        unclean_open.as_secs_f64() * 1e3
    );

    std::fs::remove_file(&crashed).expect("remove the copy");

    // 6. Space reclaim: invalidate half the keys, scattered through the file (one durable
    // transaction), close; then compact.
    let sizes = |db: Option<&Database>| {
        format!(
            "file {:.1} MiB, on disk {:.1} MiB{}",
            mib(std::fs::metadata(&path).expect("metadata").len()),
            mib(disk_blocks_len(&path)),
            db.map_or(String::new(), |db| format!(
                ", allocated {:.1} MiB",
                mib(allocated_of(db))
            ))
        )
    };
    let db = Database::create(&path).expect("open");
    println!("before invalidating half: {}", sizes(Some(&db)));
    let started = Instant::now();
    let mut txn = db.begin_write().expect("begin");
    txn.set_durability(Durability::Immediate)
        .expect("durability");
    txn.open_table(DATA)
        .expect("data")
        .retain(|key, _| kept(key))
        .expect("retain");
    if args.index != Index::None {
        txn.open_table(BY_SEQ)
            .expect("by_seq")
            .retain(|_, key| kept(key))
            .expect("retain");
    }
    if args.index == Index::SeqMeta {
        txn.open_table(META)
            .expect("meta")
            .retain(|key, _| kept(key))
            .expect("retain");
    }
    txn.commit().expect("commit");
    let invalidate_time = started.elapsed();
    println!(
        "invalidated half the keys in {:.0} ms: {}",
        invalidate_time.as_secs_f64() * 1e3,
        sizes(Some(&db))
    );
    db.close().expect("close");
    let half_closed = std::fs::metadata(&path).expect("metadata").len();
    println!("after a clean close: {}", sizes(None));
    let mut db = Database::create(&path).expect("open");
    let started = Instant::now();
    db.compact().expect("compact");
    let reclaim_compact = started.elapsed();
    println!(
        "compact() in {:.0} ms: {}",
        reclaim_compact.as_secs_f64() * 1e3,
        sizes(Some(&db))
    );
    db.close().expect("close");
    let compacted_closed = std::fs::metadata(&path).expect("metadata").len();
    println!("after a clean close: {}", sizes(None));

    // 7. One row for the report.
    println!();
    println!(
        "| setup | puts/s | CPU µs/put | bytes written/put | live MiB | alloc / live | on disk / live | plateau file MiB | plateau / live | compact ms \
         | file after compact MiB | regrown MiB | clean open ms | unclean open ms \
         | half invalidated: file MiB | then compacted: file MiB | compact ms |"
    );
    println!(
        "| {label} | {put_rate:.0} | {cpu_per_put:.1} | {written_per_put:.0} | {:.1} | {:.2} | {:.2} | {:.1} | {:.2} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} \
         | {:.1} | {:.1} | {:.0} |",
        mib(live),
        alloc_end as f64 / live as f64,
        disk_end as f64 / live as f64,
        mib(plateau),
        plateau as f64 / live as f64,
        compact_time.as_secs_f64() * 1e3,
        mib(file_after),
        mib(regrown),
        clean_open.as_secs_f64() * 1e3,
        unclean_open.as_secs_f64() * 1e3,
        mib(half_closed),
        mib(compacted_closed),
        reclaim_compact.as_secs_f64() * 1e3
    );
}
