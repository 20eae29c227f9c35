//! Measuring one cell: tasks run on a fresh runtime, warm up, then the driver counts the
//! operations they complete within a fixed window (and, if asked, how late a 1 ms sleeper
//! wakes up meanwhile).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;
use vlive::RedbCacheStats;

use crate::figures::Batches;
use crate::params::{PROBE_SLEEP, Timing};

/// Shared between the driver and a cell's tasks.
#[derive(Default)]
pub struct Control {
    stop: AtomicBool,
    measuring: AtomicBool,
    ops: AtomicU64,
}

impl Control {
    pub fn running(&self) -> bool {
        !self.stop.load(Relaxed)
    }

    /// Counts a completed operation and yields to the scheduler, as a task with other work to
    /// do would. Without the yield a `direct` task never returns `Pending` (its operations are
    /// synchronous), so two of them would keep both workers forever and starve everything else.
    pub async fn done(&self) {
        self.ops.fetch_add(1, Relaxed);
        tokio::task::yield_now().await;
    }
}

/// What one round of one cell measured.
#[derive(Clone, Debug)]
pub struct Measured {
    pub ops_per_sec: f64,
    pub batches: Option<Batches>,
    /// The lag probe's wake-up lags, if it ran.
    pub lags: Vec<Duration>,
}

/// A fresh runtime for each cell (no blocking-pool threads left over from the last one), with
/// the 2 worker threads the issue prescribes.
pub fn runtime() -> Runtime {
    crate::mode::runtime(2)
}

/// The 1 ms sleeper: how late is each wake-up?
async fn lag_probe(control: Arc<Control>) -> Vec<Duration> {
    let mut lags = Vec::with_capacity(8192);
    while control.running() {
        // A sleep that starts within the window counts, however late it wakes up: a runtime
        // that starves the sleeper for the whole window shows as one huge lag, not as none.
        let counted = control.measuring.load(Relaxed);
        let start = Instant::now();
        tokio::time::sleep(PROBE_SLEEP).await;
        let lag = start.elapsed().saturating_sub(PROBE_SLEEP);
        if counted {
            lags.push(lag);
        }
    }
    lags
}

/// Runs `concurrency` copies of `task` (plus the lag probe if asked) on `rt`, warms up, counts
/// the operations completed within the window, stops the tasks and waits for them.
///
/// The driver times the window on its own thread (not in the runtime), so a runtime whose
/// workers are blocked cannot stretch it unnoticed.
pub fn measure<F, Fut>(
    rt: &Runtime,
    timing: Timing,
    concurrency: usize,
    probe: bool,
    stats: impl Fn() -> Option<RedbCacheStats>,
    task: F,
) -> Measured
where
    F: Fn(u64, Arc<Control>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let control = Arc::new(Control::default());
    let tasks: Vec<_> = (0..concurrency as u64)
        .map(|i| rt.spawn(task(i, control.clone())))
        .collect();
    let probe = probe.then(|| rt.spawn(lag_probe(control.clone())));

    std::thread::sleep(timing.warmup);
    let stats_before = stats();
    let start = Instant::now();
    let ops_before = control.ops.load(Relaxed);
    control.measuring.store(true, Relaxed);
    std::thread::sleep(timing.window);
    let ops_after = control.ops.load(Relaxed);
    let elapsed = start.elapsed();
    control.measuring.store(false, Relaxed);
    let stats_after = stats();
    control.stop.store(true, Relaxed);

    let lags = rt.block_on(async {
        for task in tasks {
            task.await.expect("a benchmark task panicked");
        }
        match probe {
            Some(probe) => probe.await.expect("the probe panicked"),
            None => Vec::new(),
        }
    });
    Measured {
        ops_per_sec: (ops_after - ops_before) as f64 / elapsed.as_secs_f64(),
        batches: Batches::between(stats_before, stats_after),
        lags,
    }
}

pub fn scratch_folder() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("vlive-bench-")
        .tempdir()
        .expect("temp folder")
}
