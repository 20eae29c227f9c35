//! The tables a run prints, in Markdown: throughput with the ratios,
//! responsiveness, vlive's batch sizes and the target verdicts.

use std::fmt::Write as _;
use std::time::Duration;

use crate::figures::{Lag, Summary};
use crate::params::PROBED_CONCURRENCY;
use crate::results::Results;
use crate::subjects::{CACHES, Impl, TABLE_IMPLS};
use crate::verdicts::verdicts;
use crate::workloads::Workload;

/// The ratio columns: numerator, denominator, heading.
pub const RATIOS: [(Impl, Impl, &str); 5] = [
    (Impl::VliveImmediate, Impl::Direct, "immediate/direct"),
    (Impl::VliveCold, Impl::Direct, "cold/direct"),
    (Impl::VliveLazy, Impl::Direct, "lazy/direct"),
    (Impl::VliveImmediate, Impl::Ceiling, "immediate/ceiling"),
    (Impl::VliveLazy, Impl::Ceiling, "lazy/ceiling"),
];

/// The four tables of a run, as Markdown.
pub struct Report {
    pub throughput: String,
    pub lags: String,
    pub batches: String,
    pub verdicts: String,
}

impl Report {
    pub fn of(results: &Results) -> Self {
        Report {
            throughput: throughput_markdown(results),
            lags: lag_markdown(results),
            batches: batch_markdown(results),
            verdicts: verdicts(results),
        }
    }

    pub fn print(&self) {
        println!("\n## Throughput (ops/s)\n\n{}", self.throughput);
        println!(
            "## Responsiveness: a 1 ms sleeper's wake-up lag\n\n{}",
            self.lags
        );
        println!(
            "## vlive batches (commands per transaction, within the window)\n\n{}",
            self.batches
        );
        println!("## Targets\n\n{}", self.verdicts);
    }
}

pub use crate::number::thousands;

/// Milliseconds, two decimals, no unit (the tables name it).
pub fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

/// What a table shows for a figure that was not measured.
pub fn or_dash(value: Option<String>) -> String {
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
