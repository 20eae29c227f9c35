//! A [`LiveTable`](crate::LiveTable)'s counters, from its stats.

use metrics::Counter;

use super::names;
use super::publisher::{Polled, spawn};
use crate::LiveTableStats;

/// Publishes what `read` gives (`None` once the table is dropped) under the name `cache`.
pub(crate) fn publish(cache: &str, read: impl FnMut() -> Option<LiveTableStats> + Send + 'static) {
    let figures = Figures::register(cache);
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
    hits: Counter,
    stale_hits: Counter,
    misses: Counter,
    failed_reads: Counter,
    master_reads: Counter,
    writes: Counter,
    failed_writes: Counter,
    timeouts: Counter,
    stored: Counter,
    rejected_stale: Counter,
    not_cached: Counter,
    invalidations: Counter,
    events: Counter,
    stream_gaps: Counter,
}

impl Figures {
    fn register(cache: &str) -> Self {
        let read = |outcome: &'static str| metrics::counter!(names::LIVE_TABLE_READS, "cache" => cache.to_owned(), "outcome" => outcome);
        let call = |call: &'static str, outcome: &'static str| {
            metrics::counter!(names::MASTER_CALLS, "cache" => cache.to_owned(), "call" => call,
                "outcome" => outcome)
        };
        let fill = |outcome: &'static str| metrics::counter!(names::LIVE_TABLE_FILLS, "cache" => cache.to_owned(), "outcome" => outcome);
        let counter = |name: &'static str| metrics::counter!(name, "cache" => cache.to_owned());
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

    fn set(&self, stats: &LiveTableStats) {
        // Stale hits are hits too: counted under their own outcome only, so outcomes add up.
        self.hits
            .absolute(stats.hits.saturating_sub(stats.stale_hits));
        self.stale_hits.absolute(stats.stale_hits);
        self.misses.absolute(stats.misses);
        self.failed_reads.absolute(stats.failed_reads);
        self.master_reads.absolute(stats.master_reads);
        self.writes.absolute(stats.writes);
        self.failed_writes.absolute(stats.failed_writes);
        self.timeouts.absolute(stats.master_timeouts);
        self.stored.absolute(stats.fills);
        self.rejected_stale.absolute(stats.rejected_stale);
        self.not_cached.absolute(stats.not_cached);
        self.invalidations.absolute(stats.invalidations);
        self.events.absolute(stats.events);
        self.stream_gaps.absolute(stats.stream_gaps);
    }
}
