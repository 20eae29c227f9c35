//! What a run prints and writes: the sample table, the verdicts, the CSV.

use std::fmt::Write as _;
use std::time::Duration;

use crate::params::{MIB, OPEN_TARGET, Params};
use crate::samples::{Measure, Phase, Sample};

/// One cell's outcome.
pub struct CellResult {
    pub name: &'static str,
    pub samples: Vec<Sample>,
    /// The reopen after a clean close.
    pub open_time: Duration,
    pub churn_time: Duration,
}

impl CellResult {
    fn during(&self, phase: Phase) -> impl Iterator<Item = &Sample> {
        self.samples.iter().filter(move |s| s.phase == phase)
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB as f64
}

pub fn print_table_header() {
    println!(
        "{:<8} {:>7} {:>8} {:>9} {:>8} {:>9} {:>9} {:>9} {:>6} {:>6} {:>9} {:>6}",
        "phase",
        "time s",
        "written",
        "live MiB",
        "entries",
        "stat MiB",
        "len MiB",
        "disk MiB",
        "len/b",
        "disk/b",
        "evicted",
        "expired"
    );
}

/// One table row; `written` and the sizes also as multiples of the budget (`/b`).
pub fn print_sample(s: &Sample, budget: u64) {
    let ratio = |bytes: u64| bytes as f64 / budget as f64;
    println!(
        "{:<8} {:>7.1} {:>7.2}x {:>9.1} {:>8} {:>9.1} {:>9.1} {:>9.1} {:>6.2} {:>6.2} {:>9} {:>6}",
        s.phase.name(),
        s.elapsed_s,
        ratio(s.written),
        mib(s.stats.live_bytes),
        s.stats.entries,
        mib(s.stats.file_bytes),
        mib(s.file_len),
        mib(s.disk_bytes),
        ratio(s.file_len),
        ratio(s.disk_bytes),
        s.stats.evictions,
        s.stats.expirations
    );
}

/// The verdicts against the targets, one line per measure.
pub fn print_verdicts(params: &Params, cell: &CellResult) {
    let target = params.target();
    println!(
        "\nverdicts, {}, {} (budget {:.0} MiB, target file <= 1.25 x budget + {:.0} MiB = {:.0} MiB):",
        cell.name,
        params.workload.name(),
        mib(params.budget),
        mib(params.workload.slack()),
        mib(target)
    );
    // The file is judged against the target; live bytes, a sanity check, against the budget.
    let measures: [(&str, Measure, u64); 3] = [
        ("apparent length", |s| s.file_len, target),
        ("disk blocks", |s| s.disk_bytes, target),
        (
            "live bytes (vs the budget)",
            |s| s.stats.live_bytes,
            params.budget,
        ),
    ];
    for (name, measure, limit) in measures {
        let churn = cell.during(Phase::Churn).map(measure).max().unwrap_or(0);
        let reopened = cell.during(Phase::Reopened).map(measure).max().unwrap_or(0);
        println!(
            "  {name:<31} max {:>8.1} MiB while churning, {:>8.1} MiB after reopen \
             (max {:.2} x budget): {}",
            mib(churn),
            mib(reopened),
            churn.max(reopened) as f64 / params.budget as f64,
            verdict(churn.max(reopened) <= limit)
        );
    }
    println!(
        "  {:<31} {:>8.1} ms (target < {} s): {}",
        "open after a clean close",
        cell.open_time.as_secs_f64() * 1e3,
        OPEN_TARGET.as_secs(),
        verdict(cell.open_time < OPEN_TARGET)
    );
    print_rates(cell);
}

fn verdict(held: bool) -> &'static str {
    if held { "MET" } else { "MISSED" }
}

/// Operation rates and the hit rate, so a run on a slow or busy machine shows as one.
fn print_rates(cell: &CellResult) {
    let Some(last) = cell.during(Phase::Churn).last() else {
        return;
    };
    let secs = cell.churn_time.as_secs_f64().max(1e-9);
    let stats = last.stats;
    println!(
        "  churn: {:.0} s, {:.0} puts/s, {:.0} gets/s ({:.0}% hits, {:.0}% beside the actor), \
         {} invalidations, {:.1} commands per batch",
        secs,
        stats.puts as f64 / secs,
        stats.gets() as f64 / secs,
        100.0 * stats.hits as f64 / stats.gets().max(1) as f64,
        100.0 * stats.snapshot_gets as f64 / stats.gets().max(1) as f64,
        stats.invalidations,
        stats.mean_batch_ops()
    );
}

/// Every sample of every cell, long form.
pub fn churn_csv(params: &Params, cells: &[CellResult]) -> String {
    let mut out = String::from(
        "cell,phase,elapsed_s,written_bytes,written_over_budget,budget_bytes,target_bytes,\
         live_bytes,entries,stats_file_bytes,file_len_bytes,disk_bytes,evictions,expirations,\
         puts,gets,hits,invalidations,open_ms\n",
    );
    for cell in cells {
        for s in &cell.samples {
            let open_ms = match s.phase {
                Phase::Reopened => format!("{:.3}", cell.open_time.as_secs_f64() * 1e3),
                Phase::Churn => String::new(),
            };
            let _ = writeln!(
                out,
                "{},{},{:.3},{},{:.4},{},{},{},{},{},{},{},{},{},{},{},{},{},{open_ms}",
                cell.name,
                s.phase.name(),
                s.elapsed_s,
                s.written,
                s.written as f64 / params.budget as f64,
                params.budget,
                params.target(),
                s.stats.live_bytes,
                s.stats.entries,
                s.stats.file_bytes,
                s.file_len,
                s.disk_bytes,
                s.stats.evictions,
                s.stats.expirations,
                s.stats.puts,
                s.stats.gets(),
                s.stats.hits,
                s.stats.invalidations
            );
        }
    }
    out
}
