//! What the bench measures with: key space, value size, concurrency levels and timing.

use std::time::Duration;

/// Key roots: `r00` … `r15`.
pub const ROOTS: u64 = 16;
/// put-burst keys per root (4096 keys in all).
pub const PUT_PAGES: u64 = 256;
/// Prefilled keys per root for get and mixed (1024 keys in all).
pub const WARM_PAGES: u64 = 64;
/// Inserts per transaction of the ceiling.
pub const CEILING_BATCH: usize = 512;
/// Inserts per transaction of the reference that shows what a transaction per 64 callers can
/// give at best: a closed loop of 64 callers never has more than 64 puts to commit at once.
pub const RAW_SMALL_BATCH: usize = 64;
/// The responsiveness probe's sleep.
pub const PROBE_SLEEP: Duration = Duration::from_millis(1);
/// Lazy mode's checkpoint interval.
pub const LAZY_MAX_DELAY: Duration = Duration::from_millis(100);
/// `vlive-lazy-8mib`'s byte budget: about half of what put-burst's 4096 keys take, so that it
/// binds.
pub const LAZY_BUDGET: u64 = 8 << 20;
/// The table's rows.
pub const PUT_CONCURRENCY: [usize; 4] = [1, 8, 64, 256];
pub const GET_CONCURRENCY: [usize; 3] = [1, 8, 64];
pub const MIXED_CONCURRENCY: usize = 64;
pub const PROBED_CONCURRENCY: usize = 64;

/// How long each cell warms up and measures.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub warmup: Duration,
    pub window: Duration,
    /// Every cell is measured once per round; the table shows the median.
    pub rounds: usize,
}

impl Timing {
    /// The full run, or a quick one under `VLIVE_BENCH_QUICK`; `VLIVE_BENCH_ROUNDS` overrides
    /// the rounds. Also says whether the run is quick.
    pub fn from_env() -> (Self, bool) {
        let quick = crate::mode::quick();
        let mut timing = if quick {
            Timing {
                warmup: Duration::from_millis(150),
                window: Duration::from_millis(500),
                rounds: 1,
            }
        } else {
            Timing {
                warmup: Duration::from_millis(500),
                window: Duration::from_millis(1500),
                rounds: 3,
            }
        };
        if let Some(rounds) = std::env::var("VLIVE_BENCH_ROUNDS")
            .ok()
            .and_then(|r| r.parse().ok())
        {
            timing.rounds = rounds;
        }
        (timing, quick)
    }

    /// Under `cargo test --benches`: every cell once, for a few milliseconds.
    pub fn smoke() -> Self {
        Timing {
            warmup: Duration::from_millis(20),
            window: Duration::from_millis(50),
            rounds: 1,
        }
    }
}
