//! What every subcommand and the story share: the master, the cache, the table over them and
//! its live events, and a timed read.

use std::error::Error as StdError;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vlive::{LiveEvent, LiveTable, ManualLiveStream, Record};

use crate::Cli;
use crate::args::CacheChoice;
use crate::cache::DemoCache;
use crate::master::RedbMaster;

/// What the demo's errors look like: anything with a clear message.
pub type DemoResult<T> = Result<T, Box<dyn StdError + Send + Sync>>;

/// The cache key of the demo's one view: every client, in id order.
pub const VIEW: &str = "clients";

/// A read through the table: what it returned, how long it took, whether the cache answered
/// it (`"hit"` or `"miss"`) and how many master calls it made.
pub struct Timed<T> {
    pub value: T,
    pub elapsed: Duration,
    pub outcome: &'static str,
    pub master_calls: u64,
}

/// Everything a subcommand needs.
pub struct Demo {
    pub master: Arc<RedbMaster>,
    pub cache: DemoCache,
    choice: CacheChoice,
    /// Where the demo's live events come from: it pushes them itself.
    events: Arc<ManualLiveStream>,
    pub table: LiveTable,
}

impl Demo {
    pub fn open(cli: &Cli) -> DemoResult<Self> {
        let master = Arc::new(RedbMaster::open(
            &cli.dir,
            Duration::from_millis(cli.latency_ms),
        )?);
        let choice = cli
            .cache
            .clone()
            .unwrap_or_else(|| CacheChoice::Folder(cli.dir.join("cache")));
        let cache = DemoCache::open(&choice)?;
        let events = Arc::new(ManualLiveStream::new());
        let table = Self::table(&master, &cache, &events)?;
        Ok(Demo {
            master,
            cache,
            choice,
            events,
            table,
        })
    }

    fn table(
        master: &Arc<RedbMaster>,
        cache: &DemoCache,
        events: &Arc<ManualLiveStream>,
    ) -> vlive::Result<LiveTable> {
        LiveTable::builder(master.clone(), VIEW, cache.shared())
            .live_stream(events.clone())
            .build()
    }

    pub async fn close(self) -> DemoResult<()> {
        drop(self.table);
        self.cache.close().await
    }

    /// Closes the cache and opens it again, as a restart would, with a new table over it.
    pub async fn reopen_cache(mut self) -> DemoResult<Self> {
        drop(self.table);
        self.cache = self.cache.close_and_reopen(&self.choice).await?;
        self.table = Self::table(&self.master, &self.cache, &self.events)?;
        Ok(self)
    }

    pub fn master_path(&self) -> String {
        self.master.path().display().to_string()
    }

    /// Runs a read through the table, timed, and tells whether the cache answered it.
    pub async fn timed_read<T>(
        &self,
        read: impl Future<Output = vlive::Result<T>>,
    ) -> DemoResult<Timed<T>> {
        let before = self.table.stats();
        let calls = self.master.calls();
        let start = Instant::now();
        let value = read.await?;
        let elapsed = start.elapsed();
        let after = self.table.stats();
        let outcome = if after.hits > before.hits {
            "hit"
        } else {
            "miss"
        };
        Ok(Timed {
            value,
            elapsed,
            outcome,
            master_calls: self.master.calls() - calls,
        })
    }

    /// Reads row `id` through the table, timed, as an owned record (the table shares it).
    pub async fn timed_get(&self, id: &str) -> DemoResult<Timed<Option<Record>>> {
        let read = self.timed_read(self.table.get(id)).await?;
        Ok(Timed {
            value: read.value.map(vlive::SharedRecord::into_record),
            elapsed: read.elapsed,
            outcome: read.outcome,
            master_calls: read.master_calls,
        })
    }

    /// Delivers the live event that says client `id` changed, then reads it through the table
    /// again.
    pub async fn announce_update(&self, id: &str) -> DemoResult<Timed<Option<Record>>> {
        self.deliver(LiveEvent::Updated { id: id.to_owned() })
            .await?;
        self.timed_get(id).await
    }

    /// Sends `event` and waits until the table's consumer has invalidated for it.
    pub async fn deliver(&self, event: LiveEvent) -> DemoResult<()> {
        let before = self.table.stats().invalidations;
        self.events.push(event);
        let waited = tokio::time::timeout(Duration::from_secs(10), async {
            while self.table.stats().invalidations == before {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await;
        waited.map_err(|_| "the live event was not processed within 10 s".into())
    }
}
