//! The targets we set ourselves, checked against a run's numbers: one PASS/MISS line each,
//! plus the reference figures that explain them.

use std::fmt::Write as _;

use crate::figures::Summary;
use crate::params::{PROBED_CONCURRENCY, RAW_SMALL_BATCH};
use crate::report::{or_dash, thousands};
use crate::results::Results;
use crate::subjects::Impl;
use crate::workloads::Workload;

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

/// Issue 11's get targets: tasks, the implementation measured against `direct`, how the target
/// reads, the least ratio that meets it. `vlive-immediate`'s gets hit the hot tier (the warm
/// keys fit its default 8 MiB); `vlive-cold` has it off.
const GET_TARGETS: [(usize, Impl, &str, f64); 3] = [
    (64, Impl::VliveImmediate, "hot/direct ≥ 10×", 10.0),
    (1, Impl::VliveImmediate, "hot/direct ≥ 5×", 5.0),
    (64, Impl::VliveCold, "cold/direct ≥ 1.5×", 1.5),
];

/// The targets, checked against this run's numbers.
pub fn verdicts(results: &Results) -> String {
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
    for (tasks, imp, target, min) in GET_TARGETS {
        check(
            format!("{} {target}", Workload::Get.target_label(tasks)),
            results.ratio(Workload::Get, tasks, imp, Impl::Direct),
            &|v| v >= min,
            "×",
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
