//! A `TieredCache`'s counters and its reader's lag, from its stats.

use metrics::Gauge;

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
        let get = |outcome: &'static str| {
            Total::new(
                metrics::counter!(names::OPERATIONS, "cache" => cache.to_owned(),
                "tier" => names::TIER_NEAR, "op" => "get", "outcome" => outcome),
            )
        };
        let counter =
            |name: &'static str| Total::new(metrics::counter!(name, "cache" => cache.to_owned()));
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
