//! How a bench was started: a full run, a quick one, or a smoke run; and its runtime.

/// A short run: `VLIVE_BENCH_QUICK` is set to anything but empty or `0`, or the bench was not
/// started by `cargo bench` (`cargo test --benches`, CI's smoke run in a debug build).
pub fn quick() -> bool {
    std::env::var("VLIVE_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0") || !benching()
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
