//! A [`MemCache`](crate::MemCache)'s gauges and counters, from its stats.

use metrics::Gauge;

use super::names::{self, TIER_MEMORY};
use super::publisher::{Polled, Read, Total, spawn};
use crate::MemCacheStats;

/// Publishes what `read` finds under the name `cache`.
pub(crate) fn publish(cache: &str, read: impl FnMut() -> Read<MemCacheStats> + Send + 'static) {
    let mut figures = Figures::register(cache);
    spawn(
        cache,
        Polled {
            read,
            set: move |stats: &MemCacheStats| figures.set(stats),
        },
    );
}

struct Figures {
    entries: Gauge,
    live_bytes: Gauge,
    evictions: Total,
    expirations: Total,
}

impl Figures {
    fn register(cache: &str) -> Self {
        Figures {
            entries: metrics::gauge!(names::ENTRIES, "cache" => cache.to_owned(), "tier" => TIER_MEMORY),
            live_bytes: metrics::gauge!(names::BYTES, "cache" => cache.to_owned(), "kind" => "live"),
            evictions: Total::of_cache(names::EVICTIONS, cache),
            expirations: Total::of_cache(names::EXPIRATIONS, cache),
        }
    }

    fn set(&mut self, stats: &MemCacheStats) {
        self.entries.set(stats.entries as f64);
        self.live_bytes.set(stats.live_bytes as f64);
        self.evictions.set(stats.evictions);
        self.expirations.set(stats.expirations);
    }
}
