//! A [`LiveTable`](crate::LiveTable)'s counters, from its stats.

use super::names;
use super::publisher::{Polled, Read, Total, spawn};
use crate::LiveTableStats;

/// Publishes what `read` finds under the name `cache`.
pub(crate) fn publish(cache: &str, read: impl FnMut() -> Read<LiveTableStats> + Send + 'static) {
    let mut figures = Figures::register(cache);
    spawn(
        cache,
        Polled {
            read,
            set: move |stats: &LiveTableStats| figures.set(stats),
        },
    );
}

/// The seconds each master call takes, registered once per table.
pub(crate) fn master_seconds(cache: &str) -> metrics::Histogram {
    metrics::histogram!(names::MASTER_SECONDS, "cache" => cache.to_owned())
}

struct Figures {
    hits: Total,
    stale_hits: Total,
    misses: Total,
    failed_reads: Total,
    master_reads: Total,
    writes: Total,
    failed_writes: Total,
    timeouts: Total,
    stored: Total,
    rejected_stale: Total,
    not_cached: Total,
    invalidations: Total,
    events: Total,
    stream_gaps: Total,
}

impl Figures {
    fn register(cache: &str) -> Self {
        let read = |outcome: &'static str| {
            Total::new(
                metrics::counter!(names::LIVE_TABLE_READS, "cache" => cache.to_owned(), "outcome" => outcome),
            )
        };
        let call = |call: &'static str, outcome: &'static str| {
            Total::new(
                metrics::counter!(names::MASTER_CALLS, "cache" => cache.to_owned(), "call" => call,
                "outcome" => outcome),
            )
        };
        let fill = |outcome: &'static str| {
            Total::new(
                metrics::counter!(names::LIVE_TABLE_FILLS, "cache" => cache.to_owned(), "outcome" => outcome),
            )
        };
        let counter = |name: &'static str| Total::of_cache(name, cache);
        Figures {
            hits: read("hit"),
            stale_hits: read("stale_hit"),
            misses: read("miss"),
            failed_reads: read("failed"),
            master_reads: call("read", "started"),
            writes: call("write", "ok"),
            failed_writes: call("write", "failed"),
            timeouts: counter(names::MASTER_TIMEOUTS),
            stored: fill("stored"),
            rejected_stale: fill("rejected_stale"),
            not_cached: fill("not_cached"),
            invalidations: counter(names::LIVE_TABLE_INVALIDATIONS),
            events: counter(names::LIVE_TABLE_EVENTS),
            stream_gaps: counter(names::LIVE_TABLE_STREAM_GAPS),
        }
    }

    fn set(&mut self, stats: &LiveTableStats) {
        // Stale hits are hits too: counted under their own outcome only, so outcomes add up.
        self.hits.set(stats.hits.saturating_sub(stats.stale_hits));
        self.stale_hits.set(stats.stale_hits);
        self.misses.set(stats.misses);
        self.failed_reads.set(stats.failed_reads);
        self.master_reads.set(stats.master_reads);
        self.writes.set(stats.writes);
        self.failed_writes.set(stats.failed_writes);
        self.timeouts.set(stats.master_timeouts);
        self.stored.set(stats.fills);
        self.rejected_stale.set(stats.rejected_stale);
        self.not_cached.set(stats.not_cached);
        self.invalidations.set(stats.invalidations);
        self.events.set(stats.events);
        self.stream_gaps.set(stats.stream_gaps);
    }
}
