//! One process's side of the two-process demo: a LiveTable over a TieredCache (its own near
//! tier in front of the shared Redis namespace) over the shared master, and a read that says
//! which layer answered it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use vlive::{Cache, LiveTable, Page, RedisCache, Rows, TieredCache};

use super::shared_master::SharedMaster;
use crate::demo::{DemoResult, VIEW};

/// How long a fresh near tier may take to be usable (its log reader's first session).
const READY: Duration = Duration::from_secs(10);

/// Which layer answered a read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Served {
    /// This process's near tier: no network at all.
    Near,
    /// Missed the near tier, found in Redis (filled there by either process).
    Redis,
    /// Missed both: the master answered, and both tiers were filled.
    Master,
}

impl Served {
    /// One word, for the peer's answers.
    pub fn word(self) -> &'static str {
        match self {
            Served::Near => "near",
            Served::Redis => "redis",
            Served::Master => "master",
        }
    }

    pub fn from_word(word: &str) -> Option<Served> {
        [Served::Near, Served::Redis, Served::Master]
            .into_iter()
            .find(|s| s.word() == word)
    }

    /// For people.
    pub fn describe(self) -> &'static str {
        match self {
            Served::Near => "near-tier hit",
            Served::Redis => "near miss, Redis hit",
            Served::Master => "miss → master",
        }
    }
}

/// A read of the view: what it returned, which layer answered, how long it took.
pub struct Read {
    pub rows: Rows,
    pub served: Served,
    pub elapsed: Duration,
    pub master_calls: u64,
}

/// See the module docs.
pub struct Side {
    pub master: Arc<SharedMaster>,
    pub tiered: TieredCache,
    pub table: LiveTable,
}

impl Side {
    /// Connects to the namespace, puts `near` in front of it and waits until its log reader
    /// has caught up, so that reads may use the near tier from the first one.
    pub async fn open(
        master: SharedMaster,
        near: impl Cache + 'static,
        redis_url: &str,
        namespace: &str,
    ) -> DemoResult<Side> {
        let far = RedisCache::connect(redis_url, namespace).await?;
        let tiered = TieredCache::new(near, far);
        let master = Arc::new(master);
        let table = LiveTable::new(master.clone(), VIEW, Arc::new(tiered.clone()))?;
        let side = Side {
            master,
            tiered,
            table,
        };
        side.until_caught_up().await?;
        Ok(side)
    }

    async fn until_caught_up(&self) -> DemoResult<()> {
        let started = Instant::now();
        while self.tiered.stats().caught_up_age.is_none() {
            if started.elapsed() > READY {
                return Err("the near tier's log reader did not catch up within 10 s".into());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }

    /// Reads `page` through the table and tells which layer answered.
    pub async fn read(&self, page: Page) -> DemoResult<Read> {
        let (near_hits, hits) = (self.tiered.stats().near_hits, self.table.stats().hits);
        let calls = self.master.calls();
        let started = Instant::now();
        let rows = std::sync::Arc::unwrap_or_clone(self.table.list(page).await?);
        let elapsed = started.elapsed();
        let served = if self.tiered.stats().near_hits > near_hits {
            Served::Near
        } else if self.table.stats().hits > hits {
            Served::Redis
        } else {
            Served::Master
        };
        Ok(Read {
            rows,
            served,
            elapsed,
            master_calls: self.master.calls() - calls,
        })
    }
}
