//! How a bench was started: a full run, a quick one, or a smoke run; and its runtime.

/// How large a run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    /// `cargo bench`: the figures the docs quote.
    Full,
    /// `VLIVE_BENCH_QUICK=1 cargo bench` (anything but empty or `0`): a short run.
    Quick,
    /// `cargo test --benches` (CI, a debug build): small enough to show that the bench runs.
    Smoke,
}

/// This run's size. A bench's child processes see the same: `run_self` passes them the
/// arguments, and they inherit the environment.
pub fn size() -> Size {
    if !benching() {
        Size::Smoke
    } else if std::env::var("VLIVE_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0") {
        Size::Quick
    } else {
        Size::Full
    }
}

/// Anything shorter than a full run.
pub fn quick() -> bool {
    size() != Size::Full
}

/// Started by `cargo bench`, which passes `--bench`; `cargo test --benches` does not, and
/// then a bench only smoke-tests itself.
pub fn benching() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// A tokio multi-thread runtime with `workers` worker threads and its timers and I/O on.
pub fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}
