//! What a cell's rounds come to: the median throughput and its spread, vlive's batch sizes,
//! and the sleeper's wake-up lag.

use std::time::Duration;

use vlive::RedbCacheStats;

use crate::measure::Measured;

/// Wake-up lateness of the 1 ms sleeper.
#[derive(Clone, Copy, Debug)]
pub struct Lag {
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub samples: usize,
}

impl Lag {
    fn from_samples(mut lags: Vec<Duration>) -> Option<Self> {
        if lags.is_empty() {
            return None;
        }
        lags.sort_unstable();
        let at = |q: f64| lags[((lags.len() - 1) as f64 * q).round() as usize];
        Some(Lag {
            p50: at(0.50),
            p99: at(0.99),
            max: lags[lags.len() - 1],
            samples: lags.len(),
        })
    }
}

/// vlive's batches (transactions) within the measuring window.
#[derive(Clone, Copy, Debug, Default)]
pub struct Batches {
    pub batches: u64,
    pub ops: u64,
    /// The largest batch since the cache opened.
    pub max_ops: u64,
}

impl Batches {
    /// `None` when no batch ran (not vlive, or every get was answered beside the actor).
    pub fn between(before: Option<RedbCacheStats>, after: Option<RedbCacheStats>) -> Option<Self> {
        let (before, after) = (before?, after?);
        if after.batches == before.batches {
            return None;
        }
        Some(Batches {
            batches: after.batches - before.batches,
            ops: after.batched_ops - before.batched_ops,
            max_ops: after.max_batch_ops,
        })
    }

    pub fn mean_ops(&self) -> f64 {
        self.ops as f64 / self.batches.max(1) as f64
    }

    fn merge(self, other: Batches) -> Batches {
        Batches {
            batches: self.batches + other.batches,
            ops: self.ops + other.ops,
            max_ops: self.max_ops.max(other.max_ops),
        }
    }
}

/// A cell over all its rounds: the median throughput (robust against a round disturbed by
/// another process), the spread, the batches and the lags of all rounds together.
#[derive(Clone, Copy, Debug)]
pub struct Summary {
    pub ops_per_sec: f64,
    pub low: f64,
    pub high: f64,
    pub batches: Option<Batches>,
    pub lag: Option<Lag>,
}

impl Summary {
    pub fn of(rounds: &[Measured]) -> Option<Self> {
        let mut ops: Vec<f64> = rounds.iter().map(|m| m.ops_per_sec).collect();
        ops.sort_by(f64::total_cmp);
        let median = match ops.len() {
            0 => return None,
            n if n % 2 == 1 => ops[n / 2],
            n => (ops[n / 2 - 1] + ops[n / 2]) / 2.0,
        };
        let batches = rounds
            .iter()
            .filter_map(|m| m.batches)
            .reduce(Batches::merge);
        let lags = rounds.iter().flat_map(|m| m.lags.iter().copied()).collect();
        Some(Summary {
            ops_per_sec: median,
            low: ops[0],
            high: ops[ops.len() - 1],
            batches,
            lag: Lag::from_samples(lags),
        })
    }
}
