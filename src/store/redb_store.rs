//! The production store: one redb database, one data table keyed by the full key.
//!
//! Layout (format version 2):
//! - `vlive_entries: &str -> &[u8]`: the values, keyed by the cache key as it is. redb orders
//!   `&str` keys bytewise, so the keys that start with a prefix `p` are one range, from `p` up
//!   to the first key that does not start with it: `remove_prefix` is a range walk for every
//!   prefix, `""` included (which drops the tables instead).
//! - `vlive_entry_meta: &str -> (seq, size, fetched_ms)`: per entry, its place in the insertion
//!   order, its size (key + value bytes) and when its rows were fetched.
//! - `vlive_clock: seq -> &str`: the insertion order, oldest first (eviction's queue).
//! - `vlive_by_age: (fetched_ms, &str) -> ()`: entries by fetch time, oldest first (expiry).
//! - `vlive_meta: &str -> u64`: the format version, and the totals (`entries`, `live_bytes`,
//!   `next_seq`), so an open reads three numbers instead of scanning.
//!
//! Why not a table per key root, as format 1 did: every bare key (no `/`) was a table of its
//! own, and a table costs pages: 10,000 bare keys made a 68 MB file against 1.1 MB for the
//! same keys under one root.

use std::path::{Path, PathBuf};

use redb::{
    Database, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable, Table,
    TableDefinition, TableHandle, WriteTransaction,
};
use tracing::warn;

use crate::error::{Error, Result};
use crate::redb_cache::DB_FILE_NAME;
use crate::store::redb_open::{BackendLayer, open_database};
use crate::store::{
    Commit, Ledger, Snapshot, Store, StoreBatch, StoreReads, StoreResult, Usage, entry_size,
};

/// Format version and totals.
const META: TableDefinition<&str, u64> = TableDefinition::new("vlive_meta");
/// The one data table: the full key → the encoded value.
const ENTRIES_TABLE: &str = "vlive_entries";
const ENTRIES: TableDefinition<&str, &[u8]> = TableDefinition::new(ENTRIES_TABLE);
/// Per key: (seq, size, fetched_ms).
const ENTRY_META: TableDefinition<&str, (u64, u64, i64)> = TableDefinition::new("vlive_entry_meta");
const CLOCK: TableDefinition<u64, &str> = TableDefinition::new("vlive_clock");
const BY_AGE: TableDefinition<(i64, &str), ()> = TableDefinition::new("vlive_by_age");

const FORMAT_KEY: &str = "format_version";
const ENTRIES_KEY: &str = "entries";
const LIVE_BYTES_KEY: &str = "live_bytes";
const NEXT_SEQ_KEY: &str = "next_seq";
/// The on-disk layout version. A folder with any other version is reset, never misread.
pub(crate) const FORMAT_VERSION: u64 = 2;

/// Where `key` lives in the file: its table, and its key in that table. Layout 2 keeps every
/// key, whole, in one table; the bench's baselines read and write through this.
pub fn locate(key: &str) -> (&'static str, &str) {
    (ENTRIES_TABLE, key)
}

pub(crate) struct RedbStore {
    db: Database,
    folder: PathBuf,
    /// As of the last commit.
    totals: Totals,
}

/// What `vlive_meta` keeps besides the format version.
#[derive(Clone, Copy, Debug, Default)]
struct Totals {
    usage: Usage,
    next_seq: u64,
}

impl RedbStore {
    /// Opens the folder's database and makes sure it holds the current format (resetting it if
    /// not).
    pub(crate) fn open(folder: &Path, layer: Option<&BackendLayer>) -> Result<Self> {
        let db = open_database(folder, layer)?;
        let mut store = RedbStore {
            db,
            folder: folder.to_owned(),
            totals: Totals::default(),
        };
        store.totals = store
            .ensure_format()
            .map_err(|e| Error::storage(folder, "prepare the cache file", e))?;
        Ok(store)
    }

    /// Resets a folder of another format; returns the stored totals.
    fn ensure_format(&self) -> StoreResult<Totals> {
        let txn = self.db.begin_write()?;
        let found = txn.open_table(META)?.get(FORMAT_KEY)?.map(|v| v.value());
        let other_tables: Vec<String> = txn
            .list_tables()?
            .map(|t| t.name().to_owned())
            .filter(|name| name != META.name())
            .collect();
        match found {
            Some(FORMAT_VERSION) => {
                drop(txn);
                return self.read_totals();
            }
            None if other_tables.is_empty() => {}
            other => {
                warn!(
                    folder = %self.folder.display(),
                    found = ?other,
                    expected = FORMAT_VERSION,
                    "cache folder has another format version; resetting it"
                );
                for name in &other_tables {
                    // The type does not matter to `delete_table`; only the name does.
                    txn.delete_table(TableDefinition::<&str, &[u8]>::new(name))?;
                }
                txn.delete_table(META)?;
            }
        }
        txn.open_table(META)?.insert(FORMAT_KEY, FORMAT_VERSION)?;
        txn.commit()?;
        Ok(Totals::default())
    }

    fn read_totals(&self) -> StoreResult<Totals> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let read = |key| -> StoreResult<u64> { Ok(meta.get(key)?.map_or(0, |v| v.value())) };
        Ok(Totals {
            usage: Usage {
                entries: read(ENTRIES_KEY)?,
                live_bytes: read(LIVE_BYTES_KEY)?,
            },
            next_seq: read(NEXT_SEQ_KEY)?,
        })
    }
}

impl Store for RedbStore {
    fn snapshot(&self) -> StoreResult<Box<dyn Snapshot>> {
        Ok(Box::new(RedbSnapshot(self.db.begin_read()?)))
    }

    fn read_batch<R>(
        &self,
        work: impl FnOnce(&mut dyn StoreReads) -> StoreResult<R>,
    ) -> StoreResult<R> {
        let txn = self.db.begin_read()?;
        let entries = open_read_table(&txn)?;
        work(&mut ReadBatch(entries))
    }

    fn write_batch<R>(
        &mut self,
        durability: Commit,
        work: impl FnOnce(&mut dyn StoreBatch) -> StoreResult<R>,
    ) -> StoreResult<R> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(match durability {
            Commit::Durable => redb::Durability::Immediate,
            Commit::Deferred => redb::Durability::None,
        })?;
        // The batch's open tables borrow the transaction; they are gone before the commit.
        let (result, totals) = {
            let mut batch = WriteBatch {
                txn: &txn,
                tables: None,
                totals: self.totals,
            };
            let result = work(&mut batch)?;
            batch.save_totals()?;
            (result, batch.totals)
        };
        txn.commit()?;
        self.totals = totals;
        Ok(result)
    }

    fn checkpoint(&mut self) -> StoreResult<()> {
        // An empty durable commit makes every earlier non-durable commit durable too.
        let mut txn = self.db.begin_write()?;
        txn.set_durability(redb::Durability::Immediate)?;
        txn.commit()?;
        Ok(())
    }

    fn close(self) -> StoreResult<()> {
        self.db.close().map_err(Into::into)
    }

    fn usage(&self) -> Usage {
        self.totals.usage
    }

    /// The blocks the file takes on disk. Its apparent length is larger: redb doubles it as it
    /// grows, and leaves the tail unwritten (sparse) until it needs it.
    fn file_bytes(&self) -> u64 {
        let Ok(file) = std::fs::metadata(self.folder.join(DB_FILE_NAME)) else {
            return 0;
        };
        #[cfg(unix)]
        return std::os::unix::fs::MetadataExt::blocks(&file) * 512;
        #[cfg(not(unix))]
        file.len()
    }
}

/// What is committed at one moment, for gets beside the actor: a read transaction begun by the
/// actor right after a commit. Lookups in it never wait on redb's locks that a commit in
/// progress holds (beginning a read transaction can: a commit that grows the file holds the
/// lock `begin_read` needs through an fsync).
struct RedbSnapshot(ReadTransaction);

impl Snapshot for RedbSnapshot {
    fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        match open_read_table(&self.0)? {
            Some(table) => Ok(table.get(key)?.map(|v| v.value().to_vec())),
            None => Ok(None),
        }
    }
}

/// The data table in a read transaction; `None` before anything was written (or after `""`
/// was invalidated): every key misses.
fn open_read_table(
    txn: &ReadTransaction,
) -> StoreResult<Option<ReadOnlyTable<&'static str, &'static [u8]>>> {
    match txn.open_table(ENTRIES) {
        Ok(table) => Ok(Some(table)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A batch of reads: one read transaction, the data table opened once.
struct ReadBatch(Option<ReadOnlyTable<&'static str, &'static [u8]>>);

impl StoreReads for ReadBatch {
    fn get(&mut self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        match &self.0 {
            Some(table) => Ok(table.get(key)?.map(|v| v.value().to_vec())),
            None => Ok(None),
        }
    }
}

/// The tables a write batch works on, opened together.
struct Tables<'t> {
    entries: Table<'t, &'static str, &'static [u8]>,
    meta: Table<'t, &'static str, (u64, u64, i64)>,
    clock: Table<'t, u64, &'static str>,
    by_age: Table<'t, (i64, &'static str), ()>,
}

/// A batch with writes: one write transaction.
struct WriteBatch<'t> {
    txn: &'t WriteTransaction,
    /// Opened on first use; `None` again after `remove_prefix("")` deleted them.
    tables: Option<Tables<'t>>,
    totals: Totals,
}

impl<'t> WriteBatch<'t> {
    fn tables(&mut self) -> StoreResult<&mut Tables<'t>> {
        if self.tables.is_none() {
            self.tables = Some(Tables {
                entries: self.txn.open_table(ENTRIES)?,
                meta: self.txn.open_table(ENTRY_META)?,
                clock: self.txn.open_table(CLOCK)?,
                by_age: self.txn.open_table(BY_AGE)?,
            });
        }
        Ok(self.tables.as_mut().expect("just opened"))
    }

    fn next_seq(&mut self) -> u64 {
        let seq = self.totals.next_seq;
        self.totals.next_seq += 1;
        seq
    }

    fn save_totals(&mut self) -> StoreResult<()> {
        let mut meta = self.txn.open_table(META)?;
        meta.insert(ENTRIES_KEY, self.totals.usage.entries)?;
        meta.insert(LIVE_BYTES_KEY, self.totals.usage.live_bytes)?;
        meta.insert(NEXT_SEQ_KEY, self.totals.next_seq)?;
        Ok(())
    }

    /// Removes `key`'s metadata and value, and takes it out of the totals.
    fn forget(&mut self, key: &str) -> StoreResult<bool> {
        let tables = self.tables()?;
        let Some((seq, size, fetched_ms)) = tables.meta.remove(key)?.map(|v| v.value()) else {
            return Ok(false);
        };
        tables.clock.remove(seq)?;
        tables.by_age.remove((fetched_ms, key))?;
        tables.entries.remove(key)?;
        let usage = &mut self.totals.usage;
        usage.entries -= 1;
        usage.live_bytes -= size;
        Ok(true)
    }

    /// Deletes every table of the cache's data: the quick way to remove everything.
    fn remove_all(&mut self) -> StoreResult<()> {
        // redb refuses to delete a table that is open.
        self.tables = None;
        self.txn.delete_table(ENTRIES)?;
        self.txn.delete_table(ENTRY_META)?;
        self.txn.delete_table(CLOCK)?;
        self.txn.delete_table(BY_AGE)?;
        self.totals.usage = Usage::default();
        Ok(())
    }
}

impl StoreReads for WriteBatch<'_> {
    fn get(&mut self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.tables()?.entries.get(key)?.map(|v| v.value().to_vec()))
    }
}

impl StoreBatch for WriteBatch<'_> {
    fn put(&mut self, key: &str, value: &[u8], fetched_ms: i64) -> StoreResult<()> {
        self.forget(key)?;
        let seq = self.next_seq();
        let size = entry_size(key, value.len());
        let tables = self.tables()?;
        tables.entries.insert(key, value)?;
        tables.meta.insert(key, (seq, size, fetched_ms))?;
        tables.clock.insert(seq, key)?;
        tables.by_age.insert((fetched_ms, key), ())?;
        let usage = &mut self.totals.usage;
        usage.entries += 1;
        usage.live_bytes += size;
        Ok(())
    }

    fn remove_prefix(&mut self, prefix: &str) -> StoreResult<()> {
        if prefix.is_empty() {
            return self.remove_all();
        }
        let doomed: Vec<String> = self
            .tables()?
            .meta
            .range(prefix..)?
            .map(|entry| entry.map(|(k, _)| k.value().to_owned()))
            .take_while(|k| k.as_ref().map_or(true, |k| k.starts_with(prefix)))
            .collect::<Result<_, _>>()?;
        for key in &doomed {
            self.forget(key)?;
        }
        Ok(())
    }
}

impl Ledger for WriteBatch<'_> {
    fn remove(&mut self, key: &str) -> StoreResult<bool> {
        self.forget(key)
    }

    fn oldest(&mut self) -> StoreResult<Option<String>> {
        let first = self.tables()?.clock.first()?;
        Ok(first.map(|(_, key)| key.value().to_owned()))
    }

    fn requeue(&mut self, key: &str) -> StoreResult<()> {
        let seq = self.next_seq();
        let tables = self.tables()?;
        let Some((old_seq, size, fetched_ms)) = tables.meta.get(key)?.map(|v| v.value()) else {
            return Ok(());
        };
        tables.clock.remove(old_seq)?;
        tables.clock.insert(seq, key)?;
        tables.meta.insert(key, (seq, size, fetched_ms))?;
        Ok(())
    }

    fn oldest_fetched(&mut self) -> StoreResult<Option<(i64, String)>> {
        let first = self.tables()?.by_age.first()?;
        Ok(first.map(|(k, _)| {
            let (fetched_ms, key) = k.value();
            (fetched_ms, key.to_owned())
        }))
    }

    fn usage(&self) -> Usage {
        self.totals.usage
    }
}
