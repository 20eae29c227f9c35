//! The master both processes use: one redb file, opened for each call and closed after it.
//!
//! redb lets one process hold a file at a time, so neither process may keep the master open.
//! Opening it per call is what a remote database does with a connection per request: both
//! processes see one table, and a write by either is there for the other's next read. When the
//! other process holds the file at that moment, the call waits its turn (bounded).

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use vlive::{Error, Master, Page, Record, Rows};

use crate::master::{MasterInUse, RedbMaster};

/// How long a call waits for the other process to release the file.
const TURN: Duration = Duration::from_secs(5);

/// See the module docs.
pub struct SharedMaster {
    dir: PathBuf,
    latency: Duration,
    calls: AtomicU64,
    last_write: Mutex<Option<SystemTime>>,
}

impl SharedMaster {
    /// The master in `dir/master.redb`, with `latency` per call (the "network").
    pub fn new(dir: PathBuf, latency: Duration) -> Self {
        SharedMaster {
            dir,
            latency,
            calls: AtomicU64::new(0),
            last_write: Mutex::new(None),
        }
    }

    /// Master calls this process made so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// When this process's last write was committed (wall clock, so the other process can
    /// measure from it).
    pub fn last_write(&self) -> Option<SystemTime> {
        *self.last_write.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces every row (one call).
    pub async fn reset(&self, rows: Rows) -> vlive::Result<()> {
        self.open().await?.reset(rows).await
    }

    /// One call: the latency, then the file, opened once the other process has let go of it.
    /// The returned master closes the file when dropped, at the end of the caller's statement.
    async fn open(&self) -> vlive::Result<RedbMaster> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.latency).await;
        let started = Instant::now();
        loop {
            let dir = self.dir.clone();
            let opened =
                tokio::task::spawn_blocking(move || RedbMaster::open(&dir, Duration::ZERO))
                    .await
                    .map_err(Error::master)?;
            match opened {
                Ok(master) => return Ok(master),
                Err(e) if e.is::<MasterInUse>() && started.elapsed() < TURN => {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                Err(e) => return Err(Error::master(DemoError(e))),
            }
        }
    }

    /// Records that a write just committed.
    fn wrote<T>(&self, result: vlive::Result<T>) -> vlive::Result<T> {
        if result.is_ok() {
            *self.last_write.lock().unwrap_or_else(|p| p.into_inner()) = Some(SystemTime::now());
        }
        result
    }
}

/// A demo error as the source of a `vlive::Error::Master`.
#[derive(Debug)]
struct DemoError(Box<dyn std::error::Error + Send + Sync>);

impl std::fmt::Display for DemoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for DemoError {}

#[async_trait]
impl Master for SharedMaster {
    async fn list(&self, page: Page) -> vlive::Result<Rows> {
        self.open().await?.list(page).await
    }

    async fn get(&self, id: &str) -> vlive::Result<Option<Record>> {
        self.open().await?.get(id).await
    }

    async fn insert(&self, id: &str, record: Record) -> vlive::Result<Record> {
        let written = self.open().await?.insert(id, record).await;
        self.wrote(written)
    }

    async fn replace(&self, id: &str, record: Record) -> vlive::Result<Record> {
        let written = self.open().await?.replace(id, record).await;
        self.wrote(written)
    }

    async fn patch(&self, id: &str, partial: Record) -> vlive::Result<Record> {
        let written = self.open().await?.patch(id, partial).await;
        self.wrote(written)
    }

    async fn delete(&self, id: &str) -> vlive::Result<()> {
        let written = self.open().await?.delete(id).await;
        self.wrote(written)
    }

    async fn delete_all(&self) -> vlive::Result<()> {
        let written = self.open().await?.delete_all().await;
        self.wrote(written)
    }
}
