//! # Layout: what one redb table per key root costs, against one table for every key
//!
//! Issue 10 asks what today's layout (a key splits at its first `/`; root `r` gets its own table
//! `__vlive__{r}`) costs when a cache holds many keys with no `/` — every such key is a root, so
//! 100,000 bare keys are 100,000 tables — and what the candidate layout (one data table keyed by
//! the full key) would cost instead. `cargo bench --bench layout` prints two tables:
//!
//! - **fill**: per variant, the put rate while writing N keys, the file size after a clean
//!   close and the bytes redb has allocated in it (each also as a ratio to the live key + value
//!   bytes: the file grows in steps, so its size says less than the allocation), and the time to
//!   open the closed file (median of 3 opens; the file is in the OS page cache, as it is after a
//!   restart that did not reboot). For vlive that is `RedbCache::open` (which begins a write
//!   transaction and lists the tables to check the format); for raw redb, `Database::create`,
//!   one write transaction begun and dropped, and one get.
//! - **remove**: how long removing every key takes, by the operation each layout would use for
//!   an `invalidate_prefix` that covers them all, and the file size after it and a clean close.
//!
//! N is 100,000 (`VLIVE_BENCH_QUICK=1`: 2,000, a few seconds; under `cargo test --benches`, with
//! no `--bench` argument: 200, as a smoke test). A full run takes a minute or two.
//!
//! ## Variants
//!
//! Values are 20-row [`CachedRows`] of 6 text fields, about 3.4 KB of CBOR, in vlive's stored
//! form (`[1, seconds, nanoseconds, rows]`).
//!
//! - **`vlive bare`**: [`RedbCache`] with its defaults (`Durability::Immediate`: every batch is
//!   one transaction with an fsync), keys `k000000` … — no `/`, so one table per key. 64 tasks
//!   put concurrently on a 2-worker tokio runtime, each encoding its own clone of the rows (the
//!   actor commits about one transaction per 30 puts, see `benches/throughput.rs`).
//! - **`vlive 1 root`**: the same with keys `root/k000000` …: one table.
//! - **`raw per-root bare`**: today's layout written with raw redb from one thread, 64 inserts
//!   per `Durability::Immediate` transaction, the value encoded once up front: the layout's own
//!   cost without the actor, channel and encoding.
//! - **`raw 1 table`**: the candidate layout: one table `&str -> &[u8]` keyed by the full key
//!   (`root/k000000` …), written the same way.
//! - **`raw 1 table + 2 idx`**: the candidate with the metadata an evicting cache needs, kept in
//!   two more tables in the same transaction: `seq (u64) -> key` (eviction order) and
//!   `key -> (seq, size, fetched_ms)` (`(u64, u64, u64)`).
//!
//! ## Removals
//!
//! - `vlive bare`: `invalidate_prefix("")` — deletes 100,000 tables.
//! - `vlive 1 root`: `invalidate_prefix("root/")` — collects the 100,000 keys of the table, then
//!   removes them one by one (today's code for a prefix with a `/`); and, on a copy of the file
//!   made before, `invalidate_prefix("root")` — deletes the one table.
//! - `raw per-root bare`: `delete_table` for every table, one transaction.
//! - `raw 1 table`: `retain_in("root/".."root0", false)` (a range delete, the candidate's way for
//!   any prefix: the range from the prefix up to its successor); and, on a copy, `delete_table`.
//! - `raw 1 table + 2 idx`: the range delete, keeping the indexes in step: read each key's seq
//!   from `key -> meta`, remove it from `seq -> key`, then range-delete the data and meta tables.
//!
//! Every removal commits with `Durability::Immediate`; its time includes the commit.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    TableHandle, WriteTransaction,
};
use vlive::{Cache, CachedRows, DB_FILE_NAME, RedbCache, Rows};

#[path = "common/sample.rs"]
mod sample;
use sample::{FIELDS, ROWS, encode, sample_rows};

/// Concurrent writers through the vlive API.
const WRITERS: usize = 64;
/// Inserts per transaction for the raw-redb variants (what 64 waiting writers could give).
const RAW_BATCH: usize = 64;

/// Today's layout: `__vlive__{root}`, keyed by the rest of the key.
const TABLE_PREFIX: &str = "__vlive__";
/// The candidate: one table keyed by the full key.
const DATA: TableDefinition<&str, &[u8]> = TableDefinition::new("data");
const BY_SEQ: TableDefinition<u64, &str> = TableDefinition::new("by_seq");
const META: TableDefinition<&str, (u64, u64, u64)> = TableDefinition::new("meta");

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64
}

fn file_len(folder: &Path) -> u64 {
    std::fs::metadata(folder.join(DB_FILE_NAME))
        .map(|m| m.len())
        .unwrap_or(0)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The smallest string above every string that starts with `prefix`; `None` if there is none
/// (`""`, or a prefix of only `char::MAX`). UTF-8 orders bytes as code points, so incrementing
/// the last char that can be incremented (and dropping what follows) gives the bound.
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            c => char::from_u32(c as u32 + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// One fill result.
struct Fill {
    name: &'static str,
    keys: usize,
    tables: usize,
    put_rate: f64,
    live_bytes: u64,
    file_bytes: u64,
    /// Pages in use (redb's `allocated_pages` × page size): the file without its free space.
    allocated_bytes: u64,
    open: Duration,
}

/// One removal result.
struct Removal {
    name: &'static str,
    operation: &'static str,
    removed: usize,
    took: Duration,
    file_after: u64,
}

/// redb's count of allocated pages, in bytes, for the closed file in `folder`.
fn allocated_bytes(folder: &Path) -> u64 {
    let db = Database::create(folder.join(DB_FILE_NAME)).expect("open");
    let txn = db.begin_write().expect("begin");
    let stats = txn.stats().expect("stats");
    let bytes = stats.allocated_pages() * stats.page_size() as u64;
    txn.abort().expect("abort");
    db.close().expect("close");
    bytes
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

// ---------------------------------------------------------------------------------------------
// Through vlive
// ---------------------------------------------------------------------------------------------

fn vlive_fill(
    rt: &tokio::runtime::Runtime,
    name: &'static str,
    folder: &Path,
    keys: Arc<Vec<String>>,
    rows: &Arc<Rows>,
    tables: usize,
) -> Fill {
    let cache = RedbCache::open(folder).expect("open");
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..WRITERS {
            let (cache, keys, next, rows) =
                (cache.clone(), keys.clone(), next.clone(), rows.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(key) = keys.get(i) else { break };
                    let value = CachedRows::new(Rows::clone(&rows));
                    cache.put(key, value).await.expect("put");
                }
            }));
        }
        for task in tasks {
            task.await.expect("writer");
        }
    });
    let took = started.elapsed();
    rt.block_on(cache.close()).expect("close");
    drop(cache);
    let value_len = encode(&CachedRows::new(Rows::clone(rows))).len() as u64;
    let live_bytes = keys.iter().map(|k| k.len() as u64 + value_len).sum();
    let open = median(
        (0..3)
            .map(|_| {
                let started = Instant::now();
                let cache = RedbCache::open(folder).expect("reopen");
                let took = started.elapsed();
                rt.block_on(cache.close()).expect("close");
                took
            })
            .collect(),
    );
    Fill {
        name,
        keys: keys.len(),
        tables,
        put_rate: keys.len() as f64 / took.as_secs_f64(),
        live_bytes,
        file_bytes: file_len(folder),
        allocated_bytes: allocated_bytes(folder),
        open,
    }
}

fn vlive_remove(
    rt: &tokio::runtime::Runtime,
    name: &'static str,
    operation: &'static str,
    folder: &Path,
    prefix: &str,
    removed: usize,
) -> Removal {
    let cache = RedbCache::open(folder).expect("open");
    let started = Instant::now();
    rt.block_on(cache.invalidate_prefix(prefix))
        .expect("invalidate");
    let took = started.elapsed();
    rt.block_on(cache.close()).expect("close");
    Removal {
        name,
        operation,
        removed,
        took,
        file_after: file_len(folder),
    }
}

// ---------------------------------------------------------------------------------------------
// Raw redb
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq)]
enum RawLayout {
    /// Today's: one table per root, keyed by the rest.
    PerRoot,
    /// One table keyed by the full key.
    OneTable,
    /// One data table and the two index tables.
    Indexed,
}

fn raw_open(folder: &Path) -> Database {
    std::fs::create_dir_all(folder).expect("folder");
    Database::create(folder.join(DB_FILE_NAME)).expect("create")
}

fn split_key(key: &str) -> (&str, &str) {
    match key.find('/') {
        Some(slash) => key.split_at(slash),
        None => (key, ""),
    }
}

fn raw_put(txn: &WriteTransaction, layout: RawLayout, key: &str, value: &[u8], seq: u64) {
    match layout {
        RawLayout::PerRoot => {
            let (root, rest) = split_key(key);
            let name = format!("{TABLE_PREFIX}{root}");
            let mut table = txn
                .open_table(TableDefinition::<&str, &[u8]>::new(&name))
                .expect("table");
            table.insert(rest, value).expect("insert");
        }
        RawLayout::OneTable => {
            txn.open_table(DATA)
                .expect("table")
                .insert(key, value)
                .expect("insert");
        }
        RawLayout::Indexed => {
            let mut meta = txn.open_table(META).expect("meta");
            let mut by_seq = txn.open_table(BY_SEQ).expect("by_seq");
            let old = meta.get(key).expect("get").map(|m| m.value().0);
            if let Some(old) = old {
                by_seq.remove(old).expect("remove");
            }
            by_seq.insert(seq, key).expect("insert");
            meta.insert(key, (seq, value.len() as u64, now_ms()))
                .expect("insert");
            txn.open_table(DATA)
                .expect("table")
                .insert(key, value)
                .expect("insert");
        }
    }
}

fn raw_fill(
    name: &'static str,
    folder: &Path,
    layout: RawLayout,
    keys: &[String],
    value: &[u8],
    tables: usize,
) -> Fill {
    let db = raw_open(folder);
    let started = Instant::now();
    let mut seq = 0;
    for chunk in keys.chunks(RAW_BATCH) {
        let mut txn = db.begin_write().expect("begin");
        txn.set_durability(Durability::Immediate)
            .expect("durability");
        for key in chunk {
            seq += 1;
            raw_put(&txn, layout, key, value, seq);
        }
        txn.commit().expect("commit");
    }
    let took = started.elapsed();
    db.close().expect("close");
    let live_bytes = keys.iter().map(|k| (k.len() + value.len()) as u64).sum();
    let probe = &keys[keys.len() / 2];
    let open = median(
        (0..3)
            .map(|_| {
                let started = Instant::now();
                let db = raw_open(folder);
                // Open, begin (and drop) a write transaction as vlive's open does, and read one
                // key: what a restart pays before its first get.
                db.begin_write().expect("begin").abort().expect("abort");
                let txn = db.begin_read().expect("read");
                let found = match layout {
                    RawLayout::PerRoot => {
                        let (root, rest) = split_key(probe);
                        let name = format!("{TABLE_PREFIX}{root}");
                        let table = txn
                            .open_table(TableDefinition::<&str, &[u8]>::new(&name))
                            .expect("table");
                        table.get(rest).expect("get").is_some()
                    }
                    _ => {
                        let table = txn.open_table(DATA).expect("table");
                        table.get(probe.as_str()).expect("get").is_some()
                    }
                };
                assert!(found);
                let took = started.elapsed();
                drop(txn);
                db.close().expect("close");
                took
            })
            .collect(),
    );
    Fill {
        name,
        keys: keys.len(),
        tables,
        put_rate: keys.len() as f64 / took.as_secs_f64(),
        live_bytes,
        file_bytes: file_len(folder),
        allocated_bytes: allocated_bytes(folder),
        open,
    }
}

/// Removes every key under `prefix` the way the layout would, in one durable transaction.
fn raw_remove(
    name: &'static str,
    operation: &'static str,
    folder: &Path,
    work: impl FnOnce(&WriteTransaction) -> usize,
) -> Removal {
    let db = raw_open(folder);
    let started = Instant::now();
    let mut txn = db.begin_write().expect("begin");
    txn.set_durability(Durability::Immediate)
        .expect("durability");
    let removed = work(&txn);
    txn.commit().expect("commit");
    let took = started.elapsed();
    db.close().expect("close");
    Removal {
        name,
        operation,
        removed,
        took,
        file_after: file_len(folder),
    }
}

fn delete_all_tables(txn: &WriteTransaction) -> usize {
    let names: Vec<String> = txn
        .list_tables()
        .expect("list")
        .map(|t| t.name().to_owned())
        .filter(|n| n.starts_with(TABLE_PREFIX))
        .collect();
    for name in &names {
        txn.delete_table(TableDefinition::<&str, &[u8]>::new(name))
            .expect("delete");
    }
    names.len()
}

fn range_delete(txn: &WriteTransaction, prefix: &str, indexed: bool) -> usize {
    let end = prefix_end(prefix).expect("bounded prefix");
    let range = prefix..end.as_str();
    let mut data = txn.open_table(DATA).expect("data");
    let before = data.len().expect("len");
    if indexed {
        let mut meta = txn.open_table(META).expect("meta");
        let mut by_seq = txn.open_table(BY_SEQ).expect("by_seq");
        let seqs: Vec<u64> = meta
            .range(range.clone())
            .expect("range")
            .map(|entry| entry.expect("entry").1.value().0)
            .collect();
        for seq in seqs {
            by_seq.remove(seq).expect("remove");
        }
        meta.retain_in(range.clone(), |_, _| false).expect("retain");
    }
    data.retain_in(range, |_, _| false).expect("retain");
    (before - data.len().expect("len")) as usize
}

fn copy_folder(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("folder");
    std::fs::copy(from.join(DB_FILE_NAME), to.join(DB_FILE_NAME)).expect("copy");
}

// ---------------------------------------------------------------------------------------------

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: then only smoke-test.
    let benching = std::env::args().any(|a| a == "--bench");
    let quick = std::env::var("VLIVE_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    let n = match (benching, quick) {
        (false, _) => 200,
        (true, true) => 2_000,
        (true, false) => 100_000,
    };
    // The range bound every range delete here relies on.
    assert_eq!(prefix_end("root/").as_deref(), Some("root0"));
    assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
    assert_eq!(prefix_end("\u{D7FF}").as_deref(), Some("\u{E000}"));
    assert_eq!(prefix_end(""), None);
    let rows = Arc::new(sample_rows());
    let value = encode(&CachedRows::new(Rows::clone(&rows)));
    println!(
        "vlive layout bench: N = {n} keys, values {} bytes CBOR ({ROWS} rows × {} fields); \
         vlive: {WRITERS} writers, Durability::Immediate; raw: {RAW_BATCH} inserts per \
         Durability::Immediate transaction",
        value.len(),
        FIELDS.len()
    );
    let bare: Arc<Vec<String>> = Arc::new((0..n).map(|i| format!("k{i:06}")).collect());
    let rooted: Arc<Vec<String>> = Arc::new((0..n).map(|i| format!("root/k{i:06}")).collect());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = |name: &str| -> PathBuf { dir.path().join(name) };
    let mut fills = Vec::new();
    let mut removals = Vec::new();
    let report = |fill: &Fill| {
        println!(
            "  {:<20} {:>8.0} puts/s  file {:>7.1} MiB  allocated {:>7.1} MiB  open {:>8.2} ms",
            fill.name,
            fill.put_rate,
            mib(fill.file_bytes),
            mib(fill.allocated_bytes),
            ms(fill.open)
        )
    };
    let report_removal = |r: &Removal| {
        println!(
            "  {:<20} {:<28} {:>8.1} ms  file after {:>7.1} MiB",
            r.name,
            r.operation,
            ms(r.took),
            mib(r.file_after)
        )
    };

    // vlive, bare keys: one table per key.
    let f = folder("vlive-bare");
    fills.push(vlive_fill(&rt, "vlive bare", &f, bare.clone(), &rows, n));
    report(fills.last().unwrap());
    removals.push(vlive_remove(
        &rt,
        "vlive bare",
        "invalidate_prefix(\"\")",
        &f,
        "",
        n,
    ));
    report_removal(removals.last().unwrap());
    std::fs::remove_dir_all(&f).ok();

    // vlive, one root: one table.
    let f = folder("vlive-root");
    fills.push(vlive_fill(
        &rt,
        "vlive 1 root",
        &f,
        rooted.clone(),
        &rows,
        1,
    ));
    report(fills.last().unwrap());
    let copy = folder("vlive-root-copy");
    copy_folder(&f, &copy);
    removals.push(vlive_remove(
        &rt,
        "vlive 1 root",
        "invalidate_prefix(\"root/\")",
        &f,
        "root/",
        n,
    ));
    report_removal(removals.last().unwrap());
    removals.push(vlive_remove(
        &rt,
        "vlive 1 root",
        "invalidate_prefix(\"root\")",
        &copy,
        "root",
        n,
    ));
    report_removal(removals.last().unwrap());
    std::fs::remove_dir_all(&f).ok();
    std::fs::remove_dir_all(&copy).ok();

    // Raw redb, today's layout with bare keys.
    let f = folder("raw-per-root");
    fills.push(raw_fill(
        "raw per-root bare",
        &f,
        RawLayout::PerRoot,
        &bare,
        &value,
        n,
    ));
    report(fills.last().unwrap());
    removals.push(raw_remove(
        "raw per-root bare",
        "delete_table × N",
        &f,
        delete_all_tables,
    ));
    report_removal(removals.last().unwrap());
    std::fs::remove_dir_all(&f).ok();

    // Raw redb, one table keyed by the full key.
    let f = folder("raw-one");
    fills.push(raw_fill(
        "raw 1 table",
        &f,
        RawLayout::OneTable,
        &rooted,
        &value,
        1,
    ));
    report(fills.last().unwrap());
    let copy = folder("raw-one-copy");
    copy_folder(&f, &copy);
    removals.push(raw_remove(
        "raw 1 table",
        "retain_in(prefix range)",
        &f,
        |txn| range_delete(txn, "root/", false),
    ));
    report_removal(removals.last().unwrap());
    removals.push(raw_remove("raw 1 table", "delete_table", &copy, |txn| {
        let count = txn.open_table(DATA).expect("data").len().expect("len") as usize;
        txn.delete_table(DATA).expect("delete");
        count
    }));
    report_removal(removals.last().unwrap());
    std::fs::remove_dir_all(&f).ok();
    std::fs::remove_dir_all(&copy).ok();

    // Raw redb, one data table and two index tables.
    let f = folder("raw-indexed");
    fills.push(raw_fill(
        "raw 1 table + 2 idx",
        &f,
        RawLayout::Indexed,
        &rooted,
        &value,
        3,
    ));
    report(fills.last().unwrap());
    removals.push(raw_remove(
        "raw 1 table + 2 idx",
        "range delete + index upkeep",
        &f,
        |txn| range_delete(txn, "root/", true),
    ));
    report_removal(removals.last().unwrap());
    std::fs::remove_dir_all(&f).ok();

    println!();
    println!(
        "| variant | keys | tables | puts/s | live MiB | file MiB | file / live | allocated MiB \
         | allocated / live | open ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for f in &fills {
        println!(
            "| {} | {} | {} | {:.0} | {:.1} | {:.1} | {:.2} | {:.1} | {:.2} | {:.2} |",
            f.name,
            f.keys,
            f.tables,
            f.put_rate,
            mib(f.live_bytes),
            mib(f.file_bytes),
            f.file_bytes as f64 / f.live_bytes as f64,
            mib(f.allocated_bytes),
            f.allocated_bytes as f64 / f.live_bytes as f64,
            ms(f.open)
        );
    }
    println!();
    println!("| variant | removal | keys removed | ms | file after MiB |");
    println!("|---|---|---:|---:|---:|");
    for r in &removals {
        println!(
            "| {} | {} | {} | {:.1} | {:.1} |",
            r.name,
            r.operation,
            r.removed,
            ms(r.took),
            mib(r.file_after)
        );
    }
}
