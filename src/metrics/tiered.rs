//! A `TieredCache`'s counters and its reader's lag, from its stats; and the near-tier lag
//! histogram, recorded as the reader applies log entries.

use std::time::{SystemTime, UNIX_EPOCH};

use metrics::{Gauge, Histogram};

use super::names;
use super::publisher::{Polled, Read, Total, spawn};
use crate::TieredCacheStats;

/// Publishes what `read` finds under the name `cache`.
pub(crate) fn publish(cache: &str, read: impl FnMut() -> Read<TieredCacheStats> + Send + 'static) {
    let mut figures = Figures::register(cache);
    spawn(
        cache,
        Polled {
            read,
            set: move |stats: &TieredCacheStats| figures.set(stats),
        },
    );
}

/// How late the near tier applies log entries, registered once per cache.
pub(crate) fn near_lag(cache: &str) -> Histogram {
    metrics::histogram!(names::TIERED_NEAR_LAG, "cache" => cache.to_owned())
}

/// Records, for entries the server wrote at `written_us` (Unix µs, its clock), how long ago
/// that was by this host's clock: their lag, now that they are applied. Clamped at zero: a
/// server clock ahead of ours would otherwise give negative seconds.
pub(crate) fn record_lag(lag: &Histogram, written_us: impl Iterator<Item = u64>) {
    let now_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |now| now.as_micros() as u64);
    for written in written_us {
        lag.record(now_us.saturating_sub(written) as f64 / 1e6);
    }
}

struct Figures {
    near_hits: Total,
    near_misses: Total,
    bypassed: Total,
    log_entries: Total,
    flushes: Total,
    sessions: Total,
    caught_up_age: Gauge,
}

impl Figures {
    fn register(cache: &str) -> Self {
        let get = |outcome: &'static str| Total::operation(cache, names::TIER_NEAR, "get", outcome);
        let counter = |name: &'static str| Total::of_cache(name, cache);
        Figures {
            near_hits: get("hit"),
            near_misses: get("miss"),
            bypassed: get("bypassed"),
            log_entries: counter(names::TIERED_LOG_ENTRIES),
            flushes: counter(names::TIERED_FLUSHES),
            sessions: counter(names::TIERED_SESSIONS),
            caught_up_age: metrics::gauge!(names::TIERED_CAUGHT_UP_AGE, "cache" => cache.to_owned()),
        }
    }

    fn set(&mut self, stats: &TieredCacheStats) {
        self.near_hits.set(stats.near_hits);
        self.near_misses.set(stats.near_misses);
        self.bypassed.set(stats.bypassed);
        self.log_entries.set(stats.log_entries);
        self.flushes.set(stats.flushes);
        self.sessions.set(stats.sessions);
        // Not caught up: +Inf, so that an alert on a bound fires.
        let age = stats
            .caught_up_age
            .map_or(f64::INFINITY, |age| age.as_secs_f64());
        self.caught_up_age.set(age);
    }
}
