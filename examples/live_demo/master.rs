//! The "remote" master: a redb file (`<dir>/master.redb`) behind the `Master` trait, with an
//! artificial latency on every call, so the demo needs no network.

use std::error::Error as StdError;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use vlive::{Error, Master, Page, Record, Rows};

use crate::demo::DemoResult;

const CLIENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("clients");

/// The "remote" table: a redb database that sleeps `latency` before every call.
pub struct RedbMaster {
    db: Arc<Database>,
    path: PathBuf,
    latency: Duration,
    calls: AtomicU64,
}

/// What the demo master refuses or fails at.
#[derive(Debug)]
enum MasterError {
    NotFound(String),
    AlreadyExists(String),
    Storage(redb::Error),
    Decode(String),
    Crashed(String),
}

impl fmt::Display for MasterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MasterError::NotFound(id) => write!(f, "there is no client {id:?}"),
            MasterError::AlreadyExists(id) => {
                write!(f, "client {id:?} already exists (pick another id)")
            }
            MasterError::Storage(e) => write!(f, "master database error: {e}"),
            MasterError::Decode(e) => write!(f, "a stored client is unreadable: {e}"),
            MasterError::Crashed(e) => write!(f, "the master call crashed: {e}"),
        }
    }
}

impl StdError for MasterError {}

impl<E: Into<redb::Error>> From<E> for MasterError {
    fn from(e: E) -> Self {
        MasterError::Storage(e.into())
    }
}

/// The master file is held by another process (redb locks a file to one process at a time).
/// A type of its own so that the two-process demo, which shares the file, can wait its turn.
#[derive(Debug)]
pub struct MasterInUse(PathBuf);

impl fmt::Display for MasterInUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is in use by another live_demo process; wait for it or use --dir",
            self.0.display()
        )
    }
}

impl StdError for MasterInUse {}

fn encode(record: &Record) -> Vec<u8> {
    let mut bytes = Vec::new();
    ciborium::into_writer(record, &mut bytes).expect("a Record always encodes");
    bytes
}

fn decode(bytes: &[u8]) -> Result<Record, MasterError> {
    ciborium::from_reader(bytes).map_err(|e| MasterError::Decode(e.to_string()))
}

impl RedbMaster {
    pub fn open(dir: &Path, latency: Duration) -> DemoResult<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create the demo folder {}: {e}", dir.display()))?;
        let path = dir.join("master.redb");
        let db = Database::create(&path).map_err(|e| -> Box<dyn StdError + Send + Sync> {
            match e {
                redb::DatabaseError::DatabaseAlreadyOpen => Box::new(MasterInUse(path.clone())),
                other => format!("cannot open the master {}: {other}", path.display()).into(),
            }
        })?;
        // Create the table only when missing: a write transaction costs an fsync, and the
        // two-process demo opens the master for every call.
        if db.begin_read()?.open_table(CLIENTS).is_err() {
            let txn = db.begin_write()?;
            txn.open_table(CLIENTS)?;
            txn.commit()?;
        }
        Ok(RedbMaster {
            db: Arc::new(db),
            path,
            latency,
            calls: AtomicU64::new(0),
        })
    }

    /// The master's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The artificial latency of every "remote" call.
    pub fn latency(&self) -> Duration {
        self.latency
    }

    /// Master calls made so far (through the `Master` trait).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// How many clients there are (a local peek, not a "remote" call).
    pub fn len(&self) -> DemoResult<u64> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(CLIENTS)?.len()?)
    }

    /// Every id, in order (a local peek).
    pub async fn ids(&self) -> DemoResult<Vec<String>> {
        // Local bookkeeping, not a "remote" call (no latency, not counted), but still database
        // I/O: on a blocking thread, like every other read of the master.
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || -> DemoResult<Vec<String>> {
            let txn = db.begin_read()?;
            let table = txn.open_table(CLIENTS)?;
            let mut ids = Vec::new();
            for entry in table.iter()? {
                ids.push(entry?.0.value().to_owned());
            }
            Ok(ids)
        })
        .await?
    }

    /// Replaces everything with `rows` in one transaction (one "remote" call).
    pub async fn reset(&self, rows: Rows) -> vlive::Result<()> {
        self.call(move |db| {
            let txn = db.begin_write()?;
            txn.delete_table(CLIENTS)?;
            {
                let mut table = txn.open_table(CLIENTS)?;
                for (id, record) in &rows {
                    table.insert(id.as_str(), encode(record).as_slice())?;
                }
            }
            txn.commit()?;
            Ok(())
        })
        .await
    }

    /// One "remote" call: the latency, then the database work on a blocking thread.
    async fn call<T, F>(&self, work: F) -> vlive::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, MasterError> + Send + 'static,
    {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.latency).await;
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || work(&db))
            .await
            .map_err(|e| Error::master(MasterError::Crashed(e.to_string())))?
            .map_err(Error::master)
    }

    /// Writes one row: `change` gets the current record (if any) and returns the new one.
    async fn write_row(
        &self,
        id: &str,
        change: impl FnOnce(Option<Record>) -> Result<Record, MasterError> + Send + 'static,
    ) -> vlive::Result<Record> {
        let id = id.to_owned();
        self.call(move |db| {
            let txn = db.begin_write()?;
            let stored = {
                let mut table = txn.open_table(CLIENTS)?;
                let current = match table.get(id.as_str())? {
                    Some(bytes) => Some(decode(bytes.value())?),
                    None => None,
                };
                let next = change(current)?;
                table.insert(id.as_str(), encode(&next).as_slice())?;
                next
            };
            txn.commit()?;
            Ok(stored)
        })
        .await
    }
}

#[async_trait]
impl Master for RedbMaster {
    async fn list(&self, page: Page) -> vlive::Result<Rows> {
        self.call(move |db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(CLIENTS)?;
            let mut rows = Rows::new();
            let wanted = table
                .iter()?
                .skip(page.offset() as usize)
                .take(page.per_page as usize);
            for entry in wanted {
                let (id, bytes) = entry?;
                rows.insert(id.value().to_owned(), decode(bytes.value())?);
            }
            Ok(rows)
        })
        .await
    }

    async fn get(&self, id: &str) -> vlive::Result<Option<Record>> {
        let id = id.to_owned();
        self.call(move |db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(CLIENTS)?;
            match table.get(id.as_str())? {
                Some(bytes) => Ok(Some(decode(bytes.value())?)),
                None => Ok(None),
            }
        })
        .await
    }

    async fn insert(&self, id: &str, record: Record) -> vlive::Result<Record> {
        let owned = id.to_owned();
        self.write_row(id, move |current| match current {
            Some(_) => Err(MasterError::AlreadyExists(owned)),
            None => Ok(record),
        })
        .await
    }

    async fn replace(&self, id: &str, record: Record) -> vlive::Result<Record> {
        let owned = id.to_owned();
        self.write_row(id, move |current| match current {
            Some(_) => Ok(record),
            None => Err(MasterError::NotFound(owned)),
        })
        .await
    }

    async fn patch(&self, id: &str, partial: Record) -> vlive::Result<Record> {
        let owned = id.to_owned();
        self.write_row(id, move |current| {
            let mut record = current.ok_or(MasterError::NotFound(owned))?;
            record.extend(partial);
            Ok(record)
        })
        .await
    }

    async fn delete(&self, id: &str) -> vlive::Result<()> {
        let id = id.to_owned();
        self.call(move |db| {
            let txn = db.begin_write()?;
            let removed = txn.open_table(CLIENTS)?.remove(id.as_str())?.is_some();
            if !removed {
                return Err(MasterError::NotFound(id));
            }
            txn.commit()?;
            Ok(())
        })
        .await
    }

    async fn delete_all(&self) -> vlive::Result<()> {
        self.reset(Rows::new()).await
    }
}
