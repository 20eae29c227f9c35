//! A thread per cache that copies its `stats()` into counters and gauges once a second, and
//! stops when the cache is closed or dropped. It holds nothing that keeps the cache alive.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tracing::warn;

/// How often figures are copied: Prometheus scrapes every 15 s or so, and a second keeps the
/// cost (one `stats()` call) far out of sight.
pub(crate) const PERIOD: Duration = Duration::from_secs(1);

/// A cache whose figures a publisher copies.
pub(crate) trait Source: Send + 'static {
    /// Copies the figures as they are now; `false` once the cache is gone (closed or dropped),
    /// which stops the publisher.
    fn publish(&mut self) -> bool;

    /// Waits up to `period`; `true` if the cache stopped meanwhile. A source that can be woken
    /// by its cache stopping overrides it; the default sleeps, and `publish` tells.
    fn wait(&self, period: Duration) -> bool {
        std::thread::sleep(period);
        false
    }
}

/// Publishers running now, for tests that check none outlives its cache.
static RUNNING: AtomicUsize = AtomicUsize::new(0);

/// How many publisher threads are running in this process.
pub(crate) fn running() -> usize {
    RUNNING.load(Ordering::Acquire)
}

/// Starts a publisher for `source`, named `cache` in logs. Metrics are not worth failing a
/// cache for: a thread that cannot start is logged, and the cache serves without figures.
pub(crate) fn spawn(cache: &str, source: impl Source) {
    let running = Running::start();
    let spawned = std::thread::Builder::new()
        .name("vlive-metrics".into())
        .spawn(move || {
            let _running = running;
            run(source);
        });
    if let Err(e) = spawned {
        warn!(cache, error = %e, "metrics publisher not started: this cache's figures stay unpublished");
    }
}

fn run(mut source: impl Source) {
    while source.publish() {
        if source.wait(PERIOD) {
            // The last figures, as the cache left them.
            source.publish();
            return;
        }
    }
}

/// Counts a publisher (a thread, or a task) in while it lives, and out however it ends.
pub(crate) struct Running(());

impl Running {
    pub(crate) fn start() -> Running {
        RUNNING.fetch_add(1, Ordering::AcqRel);
        Running(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What a polled source's `read` found.
pub(crate) enum Read<T> {
    /// The cache lives: these are its stats now.
    Alive(T),
    /// The cache is gone, and these are its stats as it left them (the counters outlive it).
    Last(T),
    /// The cache is gone with its stats.
    Gone,
}

/// A source read through a weak reference, each second: `read` says what it found, `set`
/// copies stats into the figures.
pub(crate) struct Polled<R, S> {
    pub(crate) read: R,
    pub(crate) set: S,
}

impl<T, R, S> Source for Polled<R, S>
where
    R: FnMut() -> Read<T> + Send + 'static,
    S: FnMut(&T) + Send + 'static,
{
    fn publish(&mut self) -> bool {
        match (self.read)() {
            Read::Alive(stats) => {
                (self.set)(&stats);
                true
            }
            Read::Last(stats) => {
                (self.set)(&stats);
                false
            }
            Read::Gone => false,
        }
    }
}

/// A counter fed from a cache's running total. It adds what the total grew by since the last
/// look, rather than setting it (`Counter::absolute`): a cache closed and reopened under the
/// same name starts its totals again at zero, and the counter must still only go up.
pub(crate) struct Total {
    counter: metrics::Counter,
    last: u64,
}

impl Total {
    pub(crate) fn new(counter: metrics::Counter) -> Self {
        Total { counter, last: 0 }
    }

    /// `name{cache}`: a counter labelled by the cache alone.
    pub(crate) fn of_cache(name: &'static str, cache: &str) -> Self {
        Total::new(metrics::counter!(name, "cache" => cache.to_owned()))
    }

    /// `vlive_cache_operations_total{cache, tier, op, outcome}`, the one series every backend
    /// counts its operations in.
    pub(crate) fn operation(
        cache: &str,
        tier: &'static str,
        op: &'static str,
        outcome: &'static str,
    ) -> Self {
        Total::new(
            metrics::counter!(super::names::OPERATIONS, "cache" => cache.to_owned(),
            "tier" => tier, "op" => op, "outcome" => outcome),
        )
    }

    /// The cache's total is now `now`.
    pub(crate) fn set(&mut self, now: u64) {
        self.counter.increment(now.saturating_sub(self.last));
        self.last = now;
    }
}
