//! Building a [`LiveTable`]: its configuration, checked once and then shared by every clone.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::watch;

use super::events::{self, LiveStream};
use super::master::Master;
use super::staleness::Revalidation;
use super::{Core, LiveTable, Table};
use crate::cache::Cache;
use crate::error::{Error, Result};

/// Configures and builds a [`LiveTable`]; start with [`LiveTable::builder`].
///
/// Nothing happens until [`build`](LiveTableBuilder::build): the setters only record.
pub struct LiveTableBuilder {
    master: Arc<dyn Master>,
    cache_key: String,
    cache: Arc<dyn Cache>,
    max_age: Option<Duration>,
    grace: Option<Duration>,
    master_timeout: Duration,
    write_target: Option<Arc<dyn Master>>,
    live_streams: Vec<Arc<dyn LiveStream>>,
    #[cfg(feature = "metrics")]
    metrics_name: Option<String>,
}

/// How long a master call may take by default: long enough for any healthy master, short enough
/// that a hung one frees its callers.
const DEFAULT_MASTER_TIMEOUT: Duration = Duration::from_secs(30);

impl fmt::Debug for LiveTableBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveTableBuilder")
            .field("cache_key", &self.cache_key)
            .field("max_age", &self.max_age)
            .field("serve_stale_while_revalidate", &self.grace)
            .field("master_timeout", &self.master_timeout)
            .field("custom_write_target", &self.write_target.is_some())
            .field("live_streams", &self.live_streams.len())
            .finish_non_exhaustive()
    }
}

impl LiveTableBuilder {
    pub(super) fn new(master: Arc<dyn Master>, cache_key: String, cache: Arc<dyn Cache>) -> Self {
        LiveTableBuilder {
            master,
            cache_key,
            cache,
            max_age: None,
            grace: None,
            master_timeout: DEFAULT_MASTER_TIMEOUT,
            write_target: None,
            live_streams: Vec::new(),
            #[cfg(feature = "metrics")]
            metrics_name: None,
        }
    }

    /// Treats cache entries fetched more than `max_age` ago as misses (default: entries never
    /// age; only invalidations remove them).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// Serves a stale entry for up to `grace` after it went stale, while one background read
    /// (shared by every caller, as a miss's is) fetches the new rows; after `grace` a read
    /// waits for the master as for a miss. Default: off (a stale entry is a miss).
    ///
    /// An entry goes stale `max_age` after it was fetched, and also:
    /// - **at a restart**: whatever a persistent cache holds when the table is built is stale,
    ///   so it is served at once and revalidated;
    /// - **at a gap in a live stream** ([`LiveEvent::Lagged`](crate::LiveEvent::Lagged), e.g.
    ///   a change feed that reconnected): the table's entries are marked stale, to be
    ///   revalidated, instead of being deleted. Other events still invalidate.
    ///
    /// A failed revalidation keeps the stale entry until `grace` runs out; the next read after
    /// that waits for the master and gets its error. This trades the "never stale after a gap"
    /// promise for availability: a stale answer is at most `grace` past its staleness, and is
    /// counted in [`LiveTableStats::stale_hits`](crate::LiveTableStats::stale_hits).
    pub fn serve_stale_while_revalidate(mut self, grace: Duration) -> Self {
        self.grace = Some(grace);
        self
    }

    /// How long one call to the master (or the write target) may take before the table gives
    /// up on it with [`Error::MasterTimeout`] (default 30 s; must be more than zero).
    ///
    /// A read that times out fails every caller waiting on that master read, and the next read
    /// asks again. A write that times out has an unknown outcome at the master; the table still
    /// invalidates its cache key before answering. The bound is per call: a write queued behind
    /// a hung one waits for that one's timeout first (writes are applied in order), and a read
    /// that joined a master read and must read again (`docs/DESIGN.md` §4.3) may wait for two.
    pub fn master_timeout(mut self, timeout: Duration) -> Self {
        self.master_timeout = timeout;
        self
    }

    /// Sends writes to `target` instead of the master (for example a write endpoint or a
    /// message queue in front of the master). Reads still come from the master.
    pub fn write_target(mut self, target: Arc<dyn Master>) -> Self {
        self.write_target = Some(target);
        self
    }

    /// Listens to `stream`: every event invalidates the cache key, for as long as any clone of
    /// the table exists. Call it again to listen to several streams. The table subscribes in
    /// [`build`](LiveTableBuilder::build), so it sees every event sent after `build` returns.
    ///
    /// Events already waiting when the table's consumer wakes share one invalidation, so
    /// [`LiveTableStats::invalidations`](crate::LiveTableStats::invalidations) may grow by less
    /// than [`LiveTableStats::events`](crate::LiveTableStats::events).
    pub fn live_stream(mut self, stream: Arc<dyn LiveStream>) -> Self {
        self.live_streams.push(stream);
        self
    }

    /// The `cache` label of this table's metrics (default: its cache key). Only with the
    /// `metrics` feature. Install the application's metrics recorder before `build`: handles
    /// are registered once, there.
    #[cfg(feature = "metrics")]
    pub fn metrics_name(mut self, name: impl Into<String>) -> Self {
        self.metrics_name = Some(name.into());
        self
    }

    /// Checks the configuration, subscribes to the live streams and starts their consumers.
    ///
    /// This is the one step that may need a Tokio runtime: only for live streams, whose
    /// consumers are tasks. A table without them can be built anywhere; its write worker starts
    /// on the runtime of its first write.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidConfig`] if the cache key breaks a rule of [`LiveTable::builder`], or
    ///   the master timeout is zero.
    /// - [`Error::NoRuntime`] if live streams were given and no Tokio runtime is running here.
    pub fn build(self) -> Result<LiveTable> {
        check_cache_key(&self.cache_key)?;
        check_master_timeout(&self.cache_key, self.master_timeout)?;
        let runtime = self.runtime_for_streams()?;
        #[cfg(feature = "metrics")]
        let metrics_name = self
            .metrics_name
            .clone()
            .unwrap_or_else(|| self.cache_key.clone());
        #[cfg_attr(not(feature = "metrics"), allow(unused_mut))]
        let mut core = Core::new(
            self.cache,
            self.cache_key,
            self.master_timeout,
            self.grace.map(Revalidation::new),
        );
        #[cfg(feature = "metrics")]
        core.set_master_seconds(crate::metrics::live_table::master_seconds(&metrics_name));
        let core = Arc::new(core);
        #[cfg(feature = "metrics")]
        {
            use crate::metrics::publisher::Read;
            // The counters, not the table: the last figures are published after it is dropped.
            let alive = Arc::downgrade(&core);
            let stats = core.stats.clone();
            crate::metrics::live_table::publish(&metrics_name, move || {
                if alive.strong_count() > 0 {
                    Read::Alive(stats.snapshot())
                } else {
                    Read::Last(stats.snapshot())
                }
            });
        }
        let table = Table {
            core,
            write_target: self.write_target.unwrap_or_else(|| self.master.clone()),
            master: self.master,
            max_age: self.max_age,
            writes: OnceLock::new(),
            alive: watch::channel(()).0,
        };
        if let Some(runtime) = runtime {
            for stream in &self.live_streams {
                let alive = table.alive.subscribe();
                events::spawn_consumer(&runtime, &table.core, stream.subscribe(), alive);
            }
        }
        Ok(LiveTable {
            table: Arc::new(table),
        })
    }

    /// The runtime to spawn the stream consumers on; `None` when there are no streams.
    fn runtime_for_streams(&self) -> Result<Option<Handle>> {
        if self.live_streams.is_empty() {
            return Ok(None);
        }
        let missing = |_| Error::NoRuntime {
            cache_key: self.cache_key.clone(),
        };
        Handle::try_current().map(Some).map_err(missing)
    }
}

/// Rejects the cache keys [`LiveTable::builder`] rules out, saying why.
fn check_cache_key(cache_key: &str) -> Result<()> {
    let reason = if cache_key.is_empty() {
        "the cache key is empty (the table's entries would sit at the cache's root, \"/\")"
            .to_owned()
    } else if let Some(owner) = row_space_owner(cache_key) {
        format!(
            "cache key {cache_key:?} lies where table {owner:?} caches its rows \
             (\"{owner}/id/…\"): each table would read the other's entries as its own"
        )
    } else {
        return Ok(());
    };
    Err(Error::InvalidConfig {
        reason: format!("LiveTable: {reason}"),
    })
}

/// Rejects a zero master timeout: every master call would fail before it began.
fn check_master_timeout(cache_key: &str, timeout: Duration) -> Result<()> {
    if timeout.is_zero() {
        return Err(Error::InvalidConfig {
            reason: format!(
                "LiveTable {cache_key:?}: master_timeout must be more than zero (every master \
                 call would time out at once)"
            ),
        });
    }
    Ok(())
}

/// The table whose rows (`{owner}/id/{id}`, and ids may hold `/`) share their keys with a table
/// named `cache_key`: all of `cache_key` before its first `id` segment that is not its first.
fn row_space_owner(cache_key: &str) -> Option<&str> {
    cache_key
        .match_indices("/id")
        .map(|(at, _)| at)
        .find(|&at| matches!(cache_key[at + 3..].chars().next(), None | Some('/')))
        .map(|at| &cache_key[..at])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_key_with_an_id_segment_names_the_table_it_collides_with() {
        assert_eq!(row_space_owner("clients/id"), Some("clients"));
        assert_eq!(row_space_owner("clients/id/x/y"), Some("clients"));
        assert_eq!(row_space_owner("a/b/id"), Some("a/b"));
        assert_eq!(row_space_owner("/id"), Some(""));
        assert_eq!(row_space_owner("id"), None, "a first segment is a root");
        assert_eq!(row_space_owner("id/x"), None);
        assert_eq!(row_space_owner("clients/idle"), None);
        assert_eq!(row_space_owner("clients/ids/id2"), None);
        assert_eq!(row_space_owner("clients/active"), None);
    }
}
