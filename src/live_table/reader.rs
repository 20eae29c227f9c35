//! The read path: the cache first; on a miss, one master read per key (single flight) that
//! fills the cache unless an invalidation overtook it (`docs/DESIGN.md` §4.3).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tracing::{Instrument, Span, debug, warn};

use super::master::MasterCall;
use super::single_flight::{Boarding, Role};
use super::staleness::Age;
use super::{Core, Table};
use crate::cache::{Cache, FillOutcome};
use crate::error::{Error, Result, chain};
use crate::rows::{CachedRows, Rows};

/// The read path shared by `list` and `get` (`op`); runs inside the caller's read span.
///
/// `fetch` reads the master; it is called once per flight this caller starts (at most
/// twice, see [`flight`]), and bounded by the table's master timeout.
pub(super) async fn read<F, Fut>(
    table: &Table,
    key: String,
    op: &'static str,
    fetch: F,
) -> Result<Arc<Rows>>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<Rows>> + Send + 'static,
{
    let core = &table.core;
    let span = Span::current();
    match core.cache.get(&key).await {
        Ok(Some(cached)) => match age(core, table.max_age, &cached) {
            Age::Fresh => {
                core.stats.hits.bump();
                span.record("outcome", "hit");
                return Ok(cached.rows);
            }
            Age::Stale => {
                core.stats.hits.bump();
                core.stats.stale_hits.bump();
                span.record("outcome", "stale");
                debug!(fetched_at = ?cached.fetched_at, "serving a stale entry; revalidating");
                revalidate(core, key, core.master_call(op), fetch);
                return Ok(cached.rows);
            }
            Age::TooOld => debug!(fetched_at = ?cached.fetched_at, "cached entry too old"),
        },
        Ok(None) => {}
        Err(e) => warn!(error = %chain(&e), "cache read failed; reading the master"),
    }
    core.stats.misses.bump();
    debug!(outcome = "miss", "cache miss");

    match flight(core, &key, core.master_call(op), fetch).await {
        Ok((rows, outcome)) => {
            span.record("outcome", outcome.as_str());
            Ok(rows)
        }
        Err(e) => {
            core.stats.failed_reads.bump();
            span.record("outcome", "failed");
            debug!(error = %chain(&e), "read failed");
            Err(e)
        }
    }
}

/// Reads `key` from the master through a single flight, and decides whether this caller may
/// use the flight's rows: always if it started the flight; if it joined, only when the fill
/// was stored, since a rejected (or failed) fill may hide an invalidation that completed before
/// this caller began. Otherwise it reads again, once: the second flight began after this call
/// did. The argument, case by case: `docs/DESIGN.md` §4.3.
async fn flight<F, Fut>(core: &Arc<Core>, key: &str, call: MasterCall, fetch: F) -> Result<Flight>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<Rows>> + Send + 'static,
{
    let mut first_attempt = true;
    loop {
        let cache = core.cache.clone();
        let fill_key = key.to_owned();
        let flight_core = Arc::downgrade(core);
        let fetch = fetch.clone();
        let call = call.clone();
        let (result, role) = core
            .flights
            .run(key, move |boarding| async move {
                // Counted as it starts, so that a flight that panics or is cancelled counts too.
                if let Some(core) = flight_core.upgrade() {
                    core.stats.master_reads.bump();
                }
                let outcome =
                    fetch_and_fill(cache.as_ref(), &fill_key, call.run(fetch()), boarding).await;
                if let Some(core) = flight_core.upgrade() {
                    match &outcome {
                        Ok((_, ReadOutcome::Filled)) => core.stats.fills.bump(),
                        Ok((_, ReadOutcome::RejectedStale)) => {
                            core.stats.rejected_stale.bump();
                        }
                        Ok((_, ReadOutcome::NotCached)) => core.stats.not_cached.bump(),
                        Err(Error::MasterTimeout { .. }) => core.stats.master_timeouts.bump(),
                        Err(_) => {}
                    }
                }
                outcome
            })
            .await;
        if role == Role::Started {
            return result;
        }
        match &result {
            Ok((_, outcome)) if first_attempt && *outcome != ReadOutcome::Filled => {
                debug!(
                    outcome = outcome.as_str(),
                    "the master read this one joined may predate an invalidation; \
                     reading again"
                );
                first_attempt = false;
            }
            _ => {
                debug!("joined a master read already in flight");
                return result;
            }
        }
    }
}

/// What a read may do with `cached`: answer with it, answer and revalidate, or read the master.
fn age(core: &Core, max_age: Option<Duration>, cached: &CachedRows) -> Age {
    let now = SystemTime::now();
    // An entry stamped in the future (clock skew) counts as just fetched.
    let fetched_at = cached.fetched_at.min(now);
    if let Some(revalidation) = &core.revalidation {
        return revalidation.age(max_age, fetched_at, now);
    }
    // A max_age too large to add is no limit.
    let fresh = max_age.is_none_or(|max_age| {
        fetched_at
            .checked_add(max_age)
            .is_none_or(|stale_at| stale_at >= now)
    });
    if fresh { Age::Fresh } else { Age::TooOld }
}

/// Reads `key` from the master in the background, through the key's single flight (a read
/// already under way is joined, not repeated), so that the next read finds fresh rows. A failed
/// read is logged; the stale entry stays until its grace period ends.
fn revalidate<F, Fut>(core: &Arc<Core>, key: String, call: MasterCall, fetch: F)
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<Rows>> + Send + 'static,
{
    let Some(revalidation) = &core.revalidation else {
        return;
    };
    if !revalidation.start(&key) {
        return;
    }
    core.stats.revalidations.bump();
    /// Releases the key's claim however the task ends.
    struct Claim(Arc<Core>, String);
    impl Drop for Claim {
        fn drop(&mut self) {
            if let Some(revalidation) = &self.0.revalidation {
                revalidation.finish(&self.1);
            }
        }
    }
    let claim = Claim(core.clone(), key);
    tokio::spawn(
        async move {
            let Claim(core, key) = &claim;
            if let Err(e) = flight(core, key, call, fetch).await {
                warn!(error = %chain(&e), key, "revalidating a stale entry failed; it is served until its grace period ends");
            }
        }
        .instrument(Span::current()),
    );
}

/// How a miss was resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ReadOutcome {
    /// The master's rows are in the cache.
    Filled,
    /// An invalidation overtook the read: the rows were returned but not cached.
    RejectedStale,
    /// The cache failed around the read: the rows were returned but not cached.
    NotCached,
}

impl ReadOutcome {
    fn as_str(self) -> &'static str {
        match self {
            ReadOutcome::Filled => "filled",
            ReadOutcome::RejectedStale => "rejected_stale",
            ReadOutcome::NotCached => "not_cached",
        }
    }
}

/// The rows a flight hands its waiters (shared: every waiter gets the same `Arc`, and so does
/// the cache it fills), and what became of them.
pub(super) type Flight = (Arc<Rows>, ReadOutcome);

/// The flight's work: take the fill token, read the master, stop taking joiners, fill unless
/// overtaken. `fetch` is the master read, bounded by the master timeout; like every future it
/// does nothing until awaited, so the read starts after the token is taken.
async fn fetch_and_fill(
    cache: &dyn Cache,
    key: &str,
    fetch: impl Future<Output = Result<Rows>>,
    boarding: Boarding<Flight>,
) -> Result<Flight> {
    // The token must be taken before the master read starts: an invalidation between the two
    // then rejects the fill.
    let token = match cache.fill_token(key).await {
        Ok(token) => Some(token),
        Err(e) => {
            warn!(error = %chain(&e), "cache failed to issue a fill token; the rows will not be cached");
            None
        }
    };
    let started = SystemTime::now();
    let rows = fetch.await;
    // Whoever joins from here on could be joining after the fill below has reached the cache,
    // and then the fill's outcome would say nothing about invalidations that came before them
    // (`docs/DESIGN.md` §4.3): they start a new flight instead.
    boarding.close();
    let rows = Arc::new(rows?);
    let Some(token) = token else {
        return Ok((rows, ReadOutcome::NotCached));
    };
    let cached = CachedRows::shared(rows.clone(), started);
    let outcome = match cache.fill(key, cached, token).await {
        Ok(FillOutcome::Stored) => ReadOutcome::Filled,
        Ok(FillOutcome::RejectedStale) => {
            debug!(
                key,
                "an invalidation overtook this read; not caching its rows"
            );
            ReadOutcome::RejectedStale
        }
        Err(e @ Error::ValueRefused { .. }) => {
            warn!(
                error = %chain(&e),
                key,
                "the cache refuses the master's rows for this key; every read of it goes to \
                 the master until they change"
            );
            ReadOutcome::NotCached
        }
        Err(e) => {
            warn!(error = %chain(&e), key, "cache fill failed; the rows are served uncached");
            ReadOutcome::NotCached
        }
    };
    Ok((rows, outcome))
}
