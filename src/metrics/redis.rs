//! A [`RedisCache`](crate::RedisCache)'s figures: this process's calls by outcome, and what the
//! server counts for the namespace. Reading the latter is a round trip, so the publisher is a
//! Tokio task (started at connect) rather than a thread; it holds no handle between looks and
//! stops once the cache is dropped, after publishing its last call counts.

use std::future::Future;
use std::sync::Arc;

use metrics::Gauge;
use tracing::debug;

use super::names;
use super::publisher::{PERIOD, Running, Total};
use crate::RedisCacheStats;
use crate::error::{Result, chain};
use crate::redis_cache::calls::{Call, Calls, KINDS};

/// Publishes `calls` and what `stats` reads under the name `cache`, once a second. `stats`
/// returns `None` once the cache is gone, which stops the task.
pub(crate) fn publish<S, F>(cache: &str, calls: Arc<Calls>, mut stats: S)
where
    S: FnMut() -> Option<F> + Send + 'static,
    F: Future<Output = Result<RedisCacheStats>> + Send,
{
    let mut figures = Figures::register(cache);
    let running = Running::start();
    let cache = cache.to_owned();
    tokio::spawn(async move {
        let _running = running;
        let mut tick = tokio::time::interval(PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let read = stats();
            figures.calls(&calls.snapshot());
            let Some(read) = read else { return };
            match read.await {
                Ok(stats) => figures.server(&stats),
                // The cache's own calls report the outage; the gauges keep their last value.
                Err(error) => {
                    debug!(cache, error = %chain(&error), "redis cache figures not read this time")
                }
            }
        }
    });
}

struct Figures {
    calls: Vec<Total>,
    entries: Gauge,
    bytes: Gauge,
    evictions: Total,
    expirations: Total,
}

impl Figures {
    fn register(cache: &str) -> Self {
        let calls = Call::ALL
            .iter()
            .map(|call| {
                let (op, outcome) = call.labels();
                Total::operation(cache, names::TIER_REDIS, op, outcome)
            })
            .collect();
        Figures {
            calls,
            entries: metrics::gauge!(names::ENTRIES, "cache" => cache.to_owned(), "tier" => names::TIER_REDIS),
            bytes: metrics::gauge!(names::BYTES, "cache" => cache.to_owned(), "kind" => names::TIER_REDIS),
            evictions: Total::of_cache(names::EVICTIONS, cache),
            expirations: Total::of_cache(names::EXPIRATIONS, cache),
        }
    }

    fn calls(&mut self, totals: &[u64; KINDS]) {
        for (total, now) in self.calls.iter_mut().zip(totals) {
            total.set(*now);
        }
    }

    /// The namespace's figures, as every client of it sees them.
    fn server(&mut self, stats: &RedisCacheStats) {
        self.entries.set(stats.entries as f64);
        self.bytes.set(stats.bytes as f64);
        self.evictions.set(stats.evictions);
        self.expirations.set(stats.expirations);
    }
}
