//! Interleaved rounds of back-to-back operations, for the micro benches: each operation warms
//! up, then the rounds of every operation alternate so a burst of load from another process
//! spoils one round of each rather than all of one; the median round is reported. Each target
//! includes this file with `#[path]`.

use std::time::{Duration, Instant};

use super::mode::Size;

/// How long each operation warms up and is measured.
pub struct Timing {
    pub warmup: Duration,
    pub window: Duration,
    pub rounds: usize,
}

impl Timing {
    /// 5 rounds of 1 s; 3 of 0.25 s when quick; a few ms in a smoke run.
    pub fn from_env() -> Self {
        let ms = Duration::from_millis;
        let (warmup, window, rounds) = match super::mode::size() {
            Size::Smoke => (ms(1), ms(5), 1),
            Size::Quick => (ms(100), ms(250), 3),
            Size::Full => (ms(500), ms(1000), 5),
        };
        Timing {
            warmup,
            window,
            rounds,
        }
    }

    /// The median rate (ops/s) of each operation over the rounds.
    pub fn measure(&self, ops: &mut [&mut dyn FnMut()]) -> Vec<f64> {
        for op in ops.iter_mut() {
            rate(*op, self.warmup);
        }
        let mut rounds = vec![Vec::new(); ops.len()];
        for _ in 0..self.rounds {
            for (op, rates) in ops.iter_mut().zip(&mut rounds) {
                rates.push(rate(*op, self.window));
            }
        }
        rounds.into_iter().map(median).collect()
    }
}

/// Operations per second of `op`, run back to back for `window`.
fn rate(op: &mut dyn FnMut(), window: Duration) -> f64 {
    let start = Instant::now();
    let (mut done, mut batch) = (0u64, 1u64);
    loop {
        // Batches keep the clock reads rare next to a few-microsecond operation.
        (0..batch).for_each(|_| op());
        done += batch;
        let elapsed = start.elapsed();
        if elapsed >= window {
            return done as f64 / elapsed.as_secs_f64();
        }
        batch = (batch * 2).min(256);
    }
}

fn median(mut rates: Vec<f64>) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}
