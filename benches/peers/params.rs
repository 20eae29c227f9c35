//! The numbers every subject runs with: memory tier, runtime, key counts, timing.

use std::time::Duration;

use crate::common::mode::{Size, size};
use crate::workloads::Workload;

/// Every subject's memory tier: vlive's hot tier, moka's capacity, foyer's memory capacity.
/// 8 MiB, and 1 MiB in a smoke run.
pub fn memory_tier() -> u64 {
    Params::from_env().memory_tier
}
/// Worker threads of every subject's tokio runtime.
pub const WORKERS: usize = 2;
/// Tasks of the concurrent workloads (gets, bursts, sustained puts, mixed).
pub const TASKS: usize = 64;
/// The cold working set, as a multiple of the memory tier.
pub const COLD_FACTOR: u64 = 4;
/// The hot working set, as a fraction of the memory tier: half, so that no subject's sharding
/// or bookkeeping pushes a key of it out.
pub const HOT_DIVISOR: u64 = 2;
/// Keys of the sustained puts (overwritten in turn): about 64 MiB of 20-row values.
pub const SUSTAINED_KEYS: u64 = 16_384;
/// foyer's disk: room for the cold working set and the sustained key set several times over.
pub const FOYER_DISK: usize = 512 << 20;
/// redb's page cache, for vlive's subjects and the raw redb reference alike: vlive's default
/// (redb's own is 1 GiB). The reference prices vlive's machinery, so it runs with the same
/// cache: the cache's size alone moved raw redb's rates by a third (docs/peers.md).
pub const PAGE_CACHE: usize = 1 << 20;
/// vlive lazy's checkpoint interval (puts are acknowledged in the write buffer regardless).
pub const LAZY_MAX_DELAY: Duration = Duration::from_millis(100);

/// What the run's size depends on: full (`cargo bench`), quick (`VLIVE_BENCH_QUICK=1`, about
/// 40 s in a release build), or a smoke run (`cargo test --benches`, a debug build:
/// small enough to show that every cell runs, and no more).
#[derive(Clone, Copy, Debug)]
pub struct Params {
    pub size: Size,
    pub rounds: usize,
    /// Before a timed window: for the caches to warm and the writers to reach a steady state.
    pub warmup: Duration,
    pub window: Duration,
    /// Puts of the fixed burst.
    pub burst: u64,
    /// Puts of the burst from one task for the durable subjects, each waiting for its own
    /// fsync: 10,000 of them would take most of the run.
    pub durable_one_task_burst: u64,
    /// Bursts per burst cell and round, each in a child process of its own; the cell reports
    /// the median one. A lazy burst lasts 10-20 ms, short enough for one descheduling to halve
    /// its rate.
    pub burst_repeats: usize,
    /// Bytes put by the sustained workload (beyond the 64 MiB write buffer).
    pub sustained_bytes: u64,
    /// See [`memory_tier`].
    pub memory_tier: u64,
}

impl Params {
    /// Runs per cell and round: [`burst_repeats`](Params::burst_repeats) for a burst, else 1.
    pub fn repeats(&self, workload: Workload) -> usize {
        match workload {
            Workload::Burst(_) => self.burst_repeats,
            _ => 1,
        }
    }

    pub fn from_env() -> Self {
        let full = Params {
            size: Size::Full,
            rounds: 3,
            warmup: Duration::from_millis(500),
            window: Duration::from_millis(1500),
            burst: 10_000,
            durable_one_task_burst: 1_000,
            burst_repeats: 5,
            sustained_bytes: 200 << 20,
            memory_tier: 8 << 20,
        };
        let quick = Params {
            size: Size::Quick,
            rounds: 1,
            warmup: Duration::from_millis(100),
            window: Duration::from_millis(300),
            durable_one_task_burst: 200,
            burst_repeats: 3,
            sustained_bytes: 80 << 20,
            ..full
        };
        match size() {
            Size::Full => full,
            Size::Quick => quick,
            Size::Smoke => Params {
                size: Size::Smoke,
                warmup: Duration::from_millis(20),
                window: Duration::from_millis(50),
                burst: 500,
                durable_one_task_burst: 20,
                burst_repeats: 1,
                sustained_bytes: 2 << 20,
                memory_tier: 1 << 20,
                ..quick
            },
        }
    }
}
