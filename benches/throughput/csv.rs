//! The CSV files of a full run: the table, and every cell with its spread.

use std::fmt::Write as _;

use crate::figures::Summary;
use crate::params::RAW_SMALL_BATCH;
use crate::report::RATIOS;
use crate::results::Results;
use crate::subjects::{Impl, TABLE_IMPLS};

/// The main table: ops/s per implementation, the ratios, vlive's mean batch sizes.
pub fn throughput_csv(results: &Results) -> String {
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
pub fn cells_csv(results: &Results) -> String {
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
