//! # Peers: vlive beside moka, foyer and raw redb, on the same workloads, in one run
//!
//! `cargo bench --bench peers` (from the repository root) measures vlive's `RedbCache` (durable,
//! the default, and lazy), moka's `future::Cache`, foyer's `HybridCache` on disk (with a serde
//! codec of the rows, and "foyer-raw" holding the encoded bytes) and raw redb (durable and not;
//! a reference) on hot gets, cold gets, a fixed burst of puts from 64 tasks and from one, puts
//! from one task, sustained puts beyond vlive's write buffer, and 90/10 gets and puts. It
//! prints ops/s per subject and workload (median of 3 rounds, interleaved across subjects; a
//! burst cell is itself the median of 5 bursts, each in a child process of its own),
//! the ratios issue 18's targets name, RSS after the cold run, and what each subject's
//! acknowledgement means. `docs/peers.md` says how each is configured and why.
//!
//! Every subject gets an 8 MiB memory tier, a 2-worker tokio runtime and the same values
//! (20-row, about 3.4 KB, and 1-row, from `benches/common/sample.rs`); each cell runs in a child
//! process of its own, so its RSS is its own. `VLIVE_BENCH_QUICK=1` runs one short round (about
//! 40 s); `cargo test --benches` (no `--bench` argument, CI's smoke run) a smaller one still.
//!
//! Layout: `params.rs` the numbers; `payload.rs` the values in each subject's form;
//! `subjects.rs` the subjects, `foyer_peer.rs` and `raw_redb.rs` the two that need setting up;
//! `workloads.rs` the workloads and their task loops; `cell.rs` one cell, run by `child.rs` in
//! a child process; `report.rs` the medians, table and ratios.

mod cell;
mod child;
#[path = "../common/mod.rs"]
#[allow(dead_code)] // each bench uses a part of the harness
mod common;
mod foyer_peer;
mod params;
mod payload;
mod raw_redb;
mod report;
mod subjects;
mod workloads;

use std::collections::HashMap;
use std::time::Instant;

use common::{number, rng, run_info, sample};

use crate::params::{Params, TASKS, WORKERS};
use crate::payload::Payload;
use crate::report::Results;
use crate::subjects::Name;
use crate::workloads::Workload;

fn main() {
    let params = Params::from_env();
    if let Ok(spec) = std::env::var(child::CHILD) {
        child::run(&spec, &params);
        return;
    }
    print_header(&params);
    let started = Instant::now();
    let mut results = Results::default();
    // Rounds go over every cell in turn, so drift and bursts of load from other processes hit
    // every subject alike, and the median shrugs off a spoiled round.
    for round in 1..=params.rounds {
        for workload in Workload::ALL {
            eprint!("round {round}/{}: {} ", params.rounds, workload.label());
            let mut batches = HashMap::new();
            for name in Name::ALL.into_iter().filter(|n| n.runs(workload)) {
                let batch = name.paired_with().and_then(|v| batches.get(&v)).copied();
                let figures = median_run(params.repeats(workload), || {
                    child::spawn(name, workload, batch.unwrap_or(1.0))
                });
                if let Some(b) = figures.batch {
                    batches.insert(name, b);
                }
                eprint!(".");
                results.add(workload, name, figures);
            }
            eprintln!();
        }
    }
    report::print(&results);
    println!("\n(run took {:.0} s)", started.elapsed().as_secs_f64());
}

/// The run with the median rate of `repeats` runs, each in a child process of its own (a
/// burst lasts 10-20 ms, and bursts in one process warm it for the next), all its figures its
/// own.
fn median_run(repeats: usize, mut run: impl FnMut() -> child::Figures) -> child::Figures {
    let mut runs: Vec<_> = (0..repeats.max(1)).map(|_| run()).collect();
    runs.sort_by(|a, b| a.ops.total_cmp(&b.ops));
    common::stats::quantile(&runs, 0.5)
}

fn print_header(params: &Params) {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("vlive peers bench; commit {}", run_info::commit());
    println!(
        "mode: {} ({} round(s), warm-up {:?}, window {:?}); load average at start: {}",
        format!("{:?}", params.size).to_lowercase(),
        params.rounds,
        params.warmup,
        params.window,
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    );
    println!(
        "every subject: {} MiB memory tier, tokio multi-thread runtime with {WORKERS} workers, \
         {TASKS} tasks; values {} bytes (20 rows) and {} bytes (1 row) encoded",
        params.memory_tier >> 20,
        Payload::new(20).bytes.len(),
        Payload::new(1).bytes.len(),
    );
    println!(
        "burst: {} puts ({} for the durable subjects from one task), the median of {} \
         burst(s) per cell; sustained: {} MiB",
        params.burst,
        params.durable_one_task_burst,
        params.burst_repeats,
        params.sustained_bytes >> 20
    );
}
