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
//! `VLIVE_BENCH_ROUNDS=n` sets the number of rounds. `VLIVE_BENCH_ONLY=<text>` runs only the
//! cells whose label (`put-burst/64/vlive-lazy`, `get (warm)/1/direct`, `ceiling`, `raw-small`,
//! `idle`) contains the text, e.g. to profile one of them; such a partial run writes no files.
//! Under `cargo test --benches` (no `--bench` argument) every cell runs once for a few
//! milliseconds as a smoke test.
//!
//! ## Implementations
//!
//! - **`vlive-immediate`**: [`vlive::RedbCache`] with its defaults: one actor thread owns the
//!   database and commits each batch of queued commands in one transaction with an fsync (group
//!   commit).
//!   CBOR encoding runs in the calling task before the command is sent, decoding after the reply.
//! - **`vlive-lazy`**: the same with `Durability::Lazy { max_delay: 100 ms }`: puts commit without
//!   an fsync; a durable checkpoint runs at least every 100 ms (and on every invalidation).
//! - **`vlive-lazy-8mib`** (put-burst rows only): `vlive-lazy` with `max_bytes(8 MiB)`, about
//!   half of what put-burst's keys take: every put evicts, and checkpoints also come by bytes
//!   written (issue 17), which is what this cell prices.
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
//! warms up, then counts completed operations over a fixed window. Values are 20-row
//! [`vlive::CachedRows`] of 6 text fields each, about 3.4 KB of CBOR; keys spread over 16 roots
//! (`r00/…` to `r15/…`). Every put hands the cache a fresh clone of the rows, as a caller would.
//!
//! - **put-burst(c)**, c = 1, 8, 64, 256: every task puts to random keys (4096 keys over the 16
//!   roots), back to back.
//! - **get(c)**, c = 1, 8, 64, warm cache: 1024 keys (64 per root) are prefilled (through vlive,
//!   then the folder is reopened by the implementation under test) and every task gets random
//!   ones; every get hits. The key set (about 3.5 MB) fits vlive's default hot tier, so once
//!   warm, `vlive-immediate` and `vlive-lazy` answer from it without decoding (hot get);
//!   `vlive-cold` (get rows only) is `vlive-immediate` with the tier off (`hot_bytes(0)`), so
//!   every get reads the snapshot and decodes (cold get), as the baselines do.
//! - **mixed(64)**: over the same prefilled keys, each operation is a get with probability 90%, a
//!   put with 9% and an `invalidate_prefix` with 1% (a prefix such as `r07/page_03`, which covers
//!   10 of the root's 64 keys).
//! - **responsiveness**: during put-burst(64), one more task sleeps 1 ms in a loop and records how
//!   late each wake-up is. p50/p99/max per implementation, next to an idle runtime's (tokio's
//!   timer has a 1 ms resolution, so even an idle runtime wakes up to 1 ms late).
//!
//! For vlive the bench also reports the mean batch size (commands per transaction) within the
//! measuring window, from [`vlive::RedbCache::stats`].
//!
//! ## Layout
//!
//! `main.rs` runs the rounds and prints; `params.rs` holds the numbers above; `subjects.rs` the
//! implementations behind one interface, `direct.rs` the baselines' storage and `ceiling.rs` the
//! raw redb loop; `data.rs` the value, its keys and its encoding; `workloads.rs` what a cell's
//! tasks do and `measure.rs` how a cell is timed; `figures.rs` and `results.rs` what the rounds
//! come to; `report.rs`, `verdicts.rs`, `csv.rs`, `chart.rs` and `files.rs` the output.

mod ceiling;
mod chart;
#[path = "../common/mod.rs"]
#[allow(dead_code)] // each bench uses a part of the harness
mod common;
mod csv;
mod data;
mod direct;
mod figures;
mod files;
mod measure;
mod params;
mod report;
mod results;
mod subjects;
mod verdicts;
mod workloads;

use std::time::Instant;

use common::{mode, number, rng, run_info, sample};
use vlive::{CachedRows, Rows};

use crate::ceiling::raw_redb;
use crate::data::{encode, sample_rows};
use crate::measure::Measured;
use crate::params::{CEILING_BATCH, RAW_SMALL_BATCH, ROOTS, Timing};
use crate::report::{Report, thousands};
use crate::results::Results;
use crate::sample::{FIELDS, ROWS};
use crate::subjects::{CACHES, GET_ONLY, Impl, PUT_ONLY};
use crate::workloads::{Workload, idle_lag};

fn main() {
    // Under `cargo test --benches`, only a smoke test.
    let benching = mode::benching();
    let (timing, quick) = match Timing::from_env() {
        (_, quick) if !benching => (Timing::smoke(), quick),
        chosen => chosen,
    };
    let rows = sample_rows();
    let started = Instant::now();
    let machine = format!("{}; commit {}", run_info::machine(), run_info::commit());
    print_header(&machine, timing, quick, &rows);

    let only = std::env::var("VLIVE_BENCH_ONLY")
        .ok()
        .filter(|f| !f.is_empty());
    let selected = |label: &str| only.as_deref().is_none_or(|f| label.contains(f));
    let mut results = Results::default();
    // Rounds go over every cell in turn, so a burst of load from another process spoils one
    // round of a few cells, and the median of the rounds shrugs it off.
    for round in 1..=timing.rounds {
        println!("round {round} of {}", timing.rounds);
        run_cells(&mut results, timing, &rows, &selected);
        run_references(&mut results, timing, &rows, &selected);
    }

    let report = Report::of(&results);
    report.print();
    if !benching || only.is_some() {
        println!(
            "(a smoke run under `cargo test`, or a VLIVE_BENCH_ONLY selection: no files written)"
        );
        return;
    }
    files::write_all(&results, started);
}

fn print_header(machine: &str, timing: Timing, quick: bool, rows: &Rows) {
    let value_bytes = encode(&CachedRows::new(rows.clone())).len();
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
}

/// Every cell of the run, in order: (workload, tasks, implementation). The get rows also
/// measure vlive with its hot tier off, next to the default (on, and the warm key set fits it);
/// the put-burst rows also lazy vlive with a byte budget that binds.
fn plan() -> Vec<(Workload, usize, Impl)> {
    Results::rows()
        .into_iter()
        .flat_map(|(workload, concurrency)| {
            let extra: &[Impl] = match workload {
                Workload::Get => &GET_ONLY,
                Workload::PutBurst => &PUT_ONLY,
                _ => &[],
            };
            CACHES
                .iter()
                .chain(extra)
                .map(move |&imp| (workload, concurrency, imp))
        })
        .collect()
}

/// One round of every selected cell, each printed as it completes.
fn run_cells(results: &mut Results, timing: Timing, rows: &Rows, selected: &dyn Fn(&str) -> bool) {
    for (workload, concurrency, imp) in plan() {
        let label = format!("{}/{concurrency}/{}", workload.name(), imp.name());
        if !selected(&label) {
            continue;
        }
        let measured = workload.run(imp, concurrency, timing, rows);
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
}

/// One round of the references the cells are judged against: raw redb at two transaction
/// sizes, and the sleeper on an idle runtime.
fn run_references(
    results: &mut Results,
    timing: Timing,
    rows: &Rows,
    selected: &dyn Fn(&str) -> bool,
) {
    if selected("ceiling") {
        let ceiling = raw_round(timing, rows, "ceiling", CEILING_BATCH);
        results.ceiling.push(ceiling);
    }
    if selected("raw-small") {
        let raw = raw_round(timing, rows, "raw redb", RAW_SMALL_BATCH);
        results.raw_small.push(raw);
    }
    if selected("idle") {
        results.idle.push(idle_lag(timing));
    }
}

/// One round of raw redb at `batch` inserts per transaction, printed as `name`.
fn raw_round(timing: Timing, rows: &Rows, name: &str, batch: usize) -> Measured {
    let raw = raw_redb(timing, rows, batch);
    println!(
        "  {name}: {} durable inserts/s in transactions of {batch}",
        thousands(raw.ops_per_sec)
    );
    raw
}
