//! A [`RedbCache`](crate::RedbCache)'s counters and gauges, copied from its stats by a
//! publisher thread (`crate::metrics::publisher`).

use std::time::Duration;

use metrics::Gauge;

use crate::actor::{RedbCacheStats, WeakHandle};
use crate::metrics::names::{self, TIER_DISK, TIER_HOT};
use crate::metrics::publisher::Total;

/// Starts the publisher of the actor behind `actor`, under the name `cache`.
pub(super) fn publish(cache: &str, actor: WeakHandle) {
    let source = Publisher {
        actor,
        figures: Figures::register(cache),
    };
    crate::metrics::spawn(cache, source);
}

struct Publisher {
    actor: WeakHandle,
    figures: Figures,
}

impl crate::metrics::Source for Publisher {
    fn publish(&mut self) -> bool {
        self.figures.set(&self.actor.stats());
        !self.actor.has_stopped()
    }

    fn wait(&self, period: Duration) -> bool {
        self.actor.wait_until_stopped_for(period)
    }
}

/// Every handle, registered once.
struct Figures {
    hot_hits: Total,
    disk_hits: Total,
    misses: Total,
    puts: Total,
    puts_refused: Total,
    lazy_puts_lost: Total,
    fills: Total,
    fills_rejected: Total,
    invalidations: Total,
    evictions: Total,
    expirations: Total,
    resets: Total,
    checksum_failures: Total,
    disk_entries: Gauge,
    hot_entries: Gauge,
    live_bytes: Gauge,
    file_bytes: Gauge,
    hot_bytes: Gauge,
    write_buffer_bytes: Gauge,
    queue_depth: Gauge,
}

impl Figures {
    fn register(cache: &str) -> Self {
        let op = |tier, op, outcome| Total::operation(cache, tier, op, outcome);
        let counter = |name: &'static str| Total::of_cache(name, cache);
        let bytes = |kind: &'static str| metrics::gauge!(names::BYTES, "cache" => cache.to_owned(), "kind" => kind);
        let entries = |tier: &'static str| metrics::gauge!(names::ENTRIES, "cache" => cache.to_owned(), "tier" => tier);
        Figures {
            hot_hits: op(TIER_HOT, "get", "hit"),
            disk_hits: op(TIER_DISK, "get", "hit"),
            misses: op(TIER_DISK, "get", "miss"),
            puts: op(TIER_DISK, "put", "ok"),
            puts_refused: op(TIER_DISK, "put", "refused"),
            lazy_puts_lost: op(TIER_DISK, "put", "lost"),
            fills: op(TIER_DISK, "fill", "ok"),
            fills_rejected: op(TIER_DISK, "fill", "rejected"),
            invalidations: op(TIER_DISK, "invalidate", "ok"),
            evictions: counter(names::EVICTIONS),
            expirations: counter(names::EXPIRATIONS),
            resets: counter(names::RESETS),
            checksum_failures: counter(names::CHECKSUM_FAILURES),
            disk_entries: entries(TIER_DISK),
            hot_entries: entries(TIER_HOT),
            live_bytes: bytes("live"),
            file_bytes: bytes("file"),
            hot_bytes: bytes("hot"),
            write_buffer_bytes: bytes("write_buffer"),
            queue_depth: metrics::gauge!(names::QUEUE_DEPTH, "cache" => cache.to_owned()),
        }
    }

    fn set(&mut self, stats: &RedbCacheStats) {
        // A hit from the hot tier is counted there only: the tiers add up to every hit.
        self.hot_hits.set(stats.hot_hits);
        self.disk_hits
            .set(stats.hits.saturating_sub(stats.hot_hits));
        self.misses.set(stats.misses);
        self.puts.set(stats.puts);
        self.puts_refused.set(stats.refused_for_space);
        self.lazy_puts_lost.set(stats.lazy_writes_lost);
        self.fills.set(stats.fills);
        self.fills_rejected.set(stats.stale_fills_rejected);
        self.invalidations.set(stats.invalidations);
        self.evictions.set(stats.evictions);
        self.expirations.set(stats.expirations);
        self.resets.set(stats.resets);
        self.checksum_failures.set(stats.damaged_reads);
        self.disk_entries.set(stats.entries as f64);
        self.hot_entries.set(stats.hot_entries as f64);
        self.live_bytes.set(stats.live_bytes as f64);
        self.file_bytes.set(stats.file_bytes as f64);
        self.hot_bytes.set(stats.hot_bytes as f64);
        self.write_buffer_bytes.set(stats.write_buffer_bytes as f64);
        self.queue_depth.set(stats.queue_depth as f64);
    }
}
