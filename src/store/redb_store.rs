//! The production store: one redb database, one data table keyed by the full key.
//!
//! Layout (format version 4):
//! - `vlive_entries: &str -> &[u8]`: the values, keyed by the cache key as it is, each behind a
//!   24-byte header (`stored_value`): its sequence number, when its rows were fetched, and a
//!   checksum over key, header and rows, checked on every read (a mismatch is a miss). redb
//!   orders `&str` keys bytewise, so the keys that start with a prefix `p` are one range, from
//!   `p` up to the first key that does not start with it: `remove_prefix` is a range walk for
//!   every prefix, `""` included (which drops the tables instead).
//! - `vlive_clock: seq -> key bytes`: the insertion order, oldest first: eviction's queue, and
//!   the order expiry sweeps in. Its last row, at seq `u64::MAX`, holds the totals (`entries`,
//!   `live_bytes`, `next_seq`), so an open reads one row instead of scanning. They ride there,
//!   not in a table of their own, because every put already rewrites the queue's last leaf: a
//!   commit touches two tables instead of three. (The gain is within this machine's noise:
//!   `VLIVE_BENCH_ONLY=put-burst/1/vlive-lazy bash benches/before_after.sh cc45aaa 7`, which
//!   also covers moving `file_bytes` out of the commit, measured 1.00×.)
//! - `vlive_meta: &str -> u64`: the format version.
//!
//! A put is two B-tree updates and an append: the value, and its clock row moved to the end.
//! Format 2 also kept a metadata row and an index by fetch time per entry, and halved put-burst
//! throughput for it (`stored_value` says why the header replaced them).
//!
//! Why not a table per key root, as format 1 did: every bare key (no `/`) was a table of its
//! own, and a table costs pages: 10,000 bare keys made a 68 MB file against 1.1 MB for the
//! same keys under one root.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{
    Database, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable, Table,
    TableDefinition, TableHandle, WriteTransaction,
};
use tracing::warn;

use crate::error::{Error, Result};
use crate::store::damage::{DamageLog, Damaged};
use crate::store::redb_open::{DB_FILE_NAME, OpenOptions, open_database};
use crate::store::stored_value::{self, Header};
use crate::store::{
    Commit, Ledger, Oldest, Snapshot, Store, StoreBatch, StoreReads, StoreResult, Usage, entry_size,
};

/// Format version and totals.
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("vlive_meta");
/// The one data table: the full key → the header and the encoded value.
const ENTRIES_TABLE: &str = "vlive_entries";
pub(crate) const ENTRIES: TableDefinition<&str, &[u8]> = TableDefinition::new(ENTRIES_TABLE);
/// The insertion order: seq → key.
const CLOCK: TableDefinition<u64, &[u8]> = TableDefinition::new("vlive_clock");
/// The clock row that holds the totals rather than a key: after every real seq.
const TOTALS_ROW: u64 = u64::MAX;

pub(crate) const FORMAT_KEY: &str = "format_version";
/// The on-disk layout version. A folder with any other version is reset, never misread.
pub(crate) const FORMAT_VERSION: u64 = 4;

/// Where `key` lives in the file: its table, and its key in that table. Layouts 2 and 3 keep
/// every key, whole, in one table; the bench's baselines read and write through this.
pub fn locate(key: &str) -> (&'static str, &str) {
    (ENTRIES_TABLE, key)
}

pub(crate) struct RedbStore {
    db: Database,
    folder: PathBuf,
    /// Where reads report values that fail their checksum.
    damaged: Arc<DamageLog>,
    /// As of the last commit.
    totals: Totals,
}

/// What the clock's last row keeps.
#[derive(Clone, Copy, Debug, Default)]
struct Totals {
    usage: Usage,
    next_seq: u64,
}

impl Totals {
    /// Three little-endian u64: entries, live bytes, next seq.
    fn to_row(self) -> [u8; 24] {
        let mut row = [0; 24];
        row[..8].copy_from_slice(&self.usage.entries.to_le_bytes());
        row[8..16].copy_from_slice(&self.usage.live_bytes.to_le_bytes());
        row[16..].copy_from_slice(&self.next_seq.to_le_bytes());
        row
    }

    /// Whether the totals could describe a file of `file_len` bytes. The row has no checksum of
    /// its own: a flipped high bit in `live_bytes` would keep the cache over its budget for
    /// good (evicting everything), one in `next_seq` would reuse queue rows.
    fn plausible(&self, file_len: u64) -> bool {
        let usage = self.usage;
        self.next_seq < 1 << 62
            && usage.entries <= usage.live_bytes
            && usage.live_bytes <= file_len.saturating_mul(2).saturating_add(1 << 20)
    }

    /// `None` if the row is not 24 bytes (a damaged file).
    fn from_row(row: &[u8]) -> Option<Self> {
        let word = |i: usize| Some(u64::from_le_bytes(row.get(i..i + 8)?.try_into().ok()?));
        (row.len() == 24).then_some(())?;
        Some(Totals {
            usage: Usage {
                entries: word(0)?,
                live_bytes: word(8)?,
            },
            next_seq: word(16)?,
        })
    }
}

impl RedbStore {
    /// Opens the folder's database and makes sure it holds the current format (resetting it if
    /// not).
    pub(crate) fn open(
        folder: &Path,
        options: &OpenOptions,
        damaged: Arc<DamageLog>,
    ) -> Result<Self> {
        let db = open_database(folder, options)?;
        let mut store = RedbStore {
            db,
            folder: folder.to_owned(),
            damaged,
            totals: Totals::default(),
        };
        store.totals = store.ensure_format().map_err(|e| match e {
            redb::Error::Corrupted(reason) => Error::Damaged {
                folder: folder.to_owned(),
                reason,
            },
            e => Error::storage(folder, "prepare the cache file", e),
        })?;
        Ok(store)
    }

    /// The file's apparent length (0 if it cannot be read).
    fn file_len(&self) -> u64 {
        std::fs::metadata(self.folder.join(DB_FILE_NAME)).map_or(0, |m| m.len())
    }

    /// Resets a folder of another format, or whose totals are damaged; returns the stored
    /// totals.
    fn ensure_format(&self) -> StoreResult<Totals> {
        let txn = self.db.begin_write()?;
        let found = txn.open_table(META)?.get(FORMAT_KEY)?.map(|v| v.value());
        let other_tables: Vec<String> = txn
            .list_tables()?
            .map(|t| t.name().to_owned())
            .filter(|name| name != META.name())
            .collect();
        let reason = match found {
            Some(FORMAT_VERSION) => match stored_totals(&txn)? {
                // Nothing to change: dropping the transaction aborts it.
                Some(totals) if totals.plausible(self.file_len()) => return Ok(totals),
                Some(_) | None => "its totals row is damaged",
            },
            None if other_tables.is_empty() => "",
            _ => "it has another format version",
        };
        if !reason.is_empty() {
            warn!(
                folder = %self.folder.display(),
                found = ?found,
                expected = FORMAT_VERSION,
                "resetting the cache folder: {reason}"
            );
            for name in &other_tables {
                // The type does not matter to `delete_table`; only the name does.
                txn.delete_table(TableDefinition::<&str, &[u8]>::new(name))?;
            }
            txn.delete_table(META)?;
        }
        txn.open_table(META)?.insert(FORMAT_KEY, FORMAT_VERSION)?;
        txn.commit()?;
        Ok(Totals::default())
    }
}

/// The totals as last committed (zero before the first write, or after `""` was
/// invalidated); `None` if their row is damaged.
fn stored_totals(txn: &WriteTransaction) -> StoreResult<Option<Totals>> {
    if !txn.list_tables()?.any(|t| t.name() == CLOCK.name()) {
        return Ok(Some(Totals::default()));
    }
    let clock = match txn.open_table(CLOCK) {
        Ok(clock) => clock,
        Err(redb::TableError::TableTypeMismatch { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let row = clock.get(TOTALS_ROW)?;
    Ok(match row {
        Some(row) => Totals::from_row(row.value()),
        None => Some(Totals::default()),
    })
}

/// The totals as committed, read in a read transaction (`inspect` reads a folder it does not
/// own): zero when nothing was written; `None` if their row is damaged.
pub(crate) fn committed_usage(txn: &ReadTransaction) -> StoreResult<Option<Usage>> {
    let clock = match txn.open_table(CLOCK) {
        Ok(clock) => clock,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Some(Usage::default())),
        Err(redb::TableError::TableTypeMismatch { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let row = clock.get(TOTALS_ROW)?;
    Ok(match row {
        Some(row) => Totals::from_row(row.value()).map(|totals| totals.usage),
        None => Some(Usage::default()),
    })
}

impl Store for RedbStore {
    fn snapshot(&self) -> StoreResult<Box<dyn Snapshot>> {
        let txn = self.db.begin_read()?;
        let table = open_read_table(&txn)?;
        Ok(Box::new(RedbSnapshot(table, self.damaged.clone())))
    }

    fn read_batch<R>(
        &self,
        work: impl FnOnce(&mut dyn StoreReads) -> StoreResult<R>,
    ) -> StoreResult<R> {
        let txn = self.db.begin_read()?;
        let entries = open_read_table(&txn)?;
        work(&mut ReadBatch(entries, &self.damaged))
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
                damaged: &self.damaged,
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

    fn verify(&mut self) -> StoreResult<()> {
        // `Ok(false)`: damaged pages were found and the file repaired, which may mean rolled
        // back to an older commit: one whose values pass their checksums but which an
        // acknowledged invalidation had removed. Not to be trusted either.
        match self.db.check_integrity()? {
            true => Ok(()),
            false => Err(redb::Error::Corrupted(
                "the integrity check had to repair the file (it may have rolled back)".into(),
            )),
        }
    }

    fn close(self) -> StoreResult<()> {
        self.db.close().map_err(Into::into)
    }

    fn usage(&self) -> Usage {
        self.totals.usage
    }
}

/// The blocks the cache file in `folder` takes on disk (0 if there is none). Its apparent length
/// is larger: redb doubles it as it grows, and leaves the tail unwritten (sparse) until it needs
/// it. Read when `stats()` asks, on the caller's thread, not by the actor after every commit:
/// the figure is current, and the actor makes no syscall for a number nobody may read.
pub(crate) fn file_bytes(folder: &Path) -> u64 {
    let Ok(file) = std::fs::metadata(folder.join(DB_FILE_NAME)) else {
        return 0;
    };
    #[cfg(unix)]
    return std::os::unix::fs::MetadataExt::blocks(&file) * 512;
    #[cfg(not(unix))]
    file.len()
}

/// What is committed at one moment, for gets beside the actor: the data table in a read
/// transaction begun by the actor right after a commit (the table keeps its transaction open).
/// Lookups in it never wait on redb's locks that a commit in progress holds (beginning a read
/// transaction can: a commit that grows the file holds the lock `begin_read` needs through an
/// fsync), and the table is opened once per commit, not once per get.
struct RedbSnapshot(Option<EntriesReader>, Arc<DamageLog>);

type EntriesReader = ReadOnlyTable<&'static str, &'static [u8]>;

impl Snapshot for RedbSnapshot {
    fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        read_value(self.0.as_ref(), key, &self.1)
    }
}

/// The data table in a read transaction; `None` before anything was written (or after `""`
/// was invalidated): every key misses.
fn open_read_table(txn: &ReadTransaction) -> StoreResult<Option<EntriesReader>> {
    match txn.open_table(ENTRIES) {
        Ok(table) => Ok(Some(table)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// `key`'s encoded value, without its header; a miss if the table has none.
fn read_value(
    table: Option<&EntriesReader>,
    key: &str,
    damaged: &DamageLog,
) -> StoreResult<Option<Vec<u8>>> {
    let Some(table) = table else { return Ok(None) };
    Ok(table
        .get(key)?
        .and_then(|stored| checked_payload(key, stored.value(), damaged)))
}

/// The rows of a value stored under `key`, if it passes its check; a damaged value is reported
/// and reads as a miss, never as data.
fn checked_payload(key: &str, stored: &[u8], damaged: &DamageLog) -> Option<Vec<u8>> {
    match stored_value::verify(key, stored) {
        Some(checked) => Some(checked.payload.to_vec()),
        None => {
            damaged.report(key, "checksum mismatch");
            None
        }
    }
}

/// A batch of reads: one read transaction, the data table opened once.
struct ReadBatch<'a>(Option<EntriesReader>, &'a DamageLog);

impl StoreReads for ReadBatch<'_> {
    fn get(&mut self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        read_value(self.0.as_ref(), key, self.1)
    }
}

/// The tables a write batch works on, opened together.
struct Tables<'t> {
    entries: Table<'t, &'static str, &'static [u8]>,
    clock: Table<'t, u64, &'static [u8]>,
}

impl Tables<'_> {
    /// Takes `key`'s row, found through its (unchecked) header, out of the insertion order. A
    /// header that names another key's row (a damaged value) leaves that row in place, and no
    /// row is removed for a value too short for a header: `oldest` drops rows whose entry has
    /// moved on.
    fn unqueue(&mut self, key: &str, header: Option<Header>) -> StoreResult<()> {
        let Some(header) = header else { return Ok(()) };
        if header.seq == TOTALS_ROW {
            return Ok(());
        }
        let removed = self.clock.remove(header.seq)?.map(|k| k.value().to_vec());
        if let Some(other) = removed.filter(|other| other != key.as_bytes()) {
            self.clock.insert(header.seq, other.as_slice())?;
        }
        Ok(())
    }

    /// The head of the insertion order, dropping rows left behind by a damaged entry on the way.
    fn oldest(&mut self) -> StoreResult<Option<Oldest>> {
        loop {
            let Some((seq, key)) = self
                .clock
                .first()?
                .map(|(seq, key)| (seq.value(), String::from_utf8(key.value().to_vec())))
            else {
                return Ok(None);
            };
            if seq == TOTALS_ROW {
                return Ok(None);
            }
            let header = match &key {
                Ok(key) => self
                    .entries
                    .get(key.as_str())?
                    .and_then(|stored| stored_value::header(stored.value())),
                Err(_) => None,
            };
            match (key, header) {
                (Ok(key), Some(header)) if header.seq == seq => {
                    let fetched_ms = header.fetched_ms;
                    return Ok(Some(Oldest { key, fetched_ms }));
                }
                (_, _) => {
                    warn!(
                        seq,
                        "dropping an eviction queue row whose entry has moved on"
                    );
                    self.clock.remove(seq)?;
                }
            }
        }
    }
}

/// A batch with writes: one write transaction.
struct WriteBatch<'t> {
    txn: &'t WriteTransaction,
    /// Opened on first use; `None` again after `remove_prefix("")` deleted them.
    tables: Option<Tables<'t>>,
    totals: Totals,
    damaged: &'t DamageLog,
}

impl<'t> WriteBatch<'t> {
    fn tables(&mut self) -> StoreResult<&mut Tables<'t>> {
        if self.tables.is_none() {
            self.tables = Some(Tables {
                entries: self.txn.open_table(ENTRIES)?,
                clock: self.txn.open_table(CLOCK)?,
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
        let row = self.totals.to_row();
        self.tables()?.clock.insert(TOTALS_ROW, row.as_slice())?;
        Ok(())
    }

    /// Takes an entry whose stored value was `stored_len` bytes out of the totals.
    fn count_out(&mut self, key: &str, stored_len: usize) {
        let usage = &mut self.totals.usage;
        usage.entries = usage.entries.saturating_sub(1);
        let size = entry_size(key, stored_value::payload_len(stored_len));
        usage.live_bytes = usage.live_bytes.saturating_sub(size);
    }

    /// Removes `key`'s value and its place in the queue, and takes it out of the totals.
    fn forget(&mut self, key: &str) -> StoreResult<bool> {
        let tables = self.tables()?;
        let Some((stored_len, header)) = tables
            .entries
            .remove(key)?
            .map(|old| (old.value().len(), stored_value::header(old.value())))
        else {
            return Ok(false);
        };
        tables.unqueue(key, header)?;
        self.count_out(key, stored_len);
        Ok(true)
    }

    /// Deletes every table of the cache's data: the quick way to remove everything.
    fn remove_all(&mut self) -> StoreResult<()> {
        // redb refuses to delete a table that is open.
        self.tables = None;
        self.txn.delete_table(ENTRIES)?;
        self.txn.delete_table(CLOCK)?;
        self.totals.usage = Usage::default();
        Ok(())
    }
}

impl StoreReads for WriteBatch<'_> {
    fn get(&mut self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let damaged = self.damaged;
        let entries = &self.tables()?.entries;
        Ok(entries
            .get(key)?
            .and_then(|stored| checked_payload(key, stored.value(), damaged)))
    }
}

impl StoreBatch for WriteBatch<'_> {
    fn put(&mut self, key: &str, value: &[u8], sum: u64, fetched_ms: i64) -> StoreResult<()> {
        let seq = self.next_seq();
        let stored = stored_value::join(key, Header { seq, fetched_ms }, value, sum);
        let tables = self.tables()?;
        // One update stores the value and hands back the one it replaced.
        let replaced = tables
            .entries
            .insert(key, stored.as_slice())?
            .map(|old| (old.value().len(), stored_value::header(old.value())));
        if let Some((stored_len, header)) = replaced {
            tables.unqueue(key, header)?;
            self.count_out(key, stored_len);
        }
        self.tables()?.clock.insert(seq, key.as_bytes())?;
        let usage = &mut self.totals.usage;
        usage.entries += 1;
        usage.live_bytes += entry_size(key, value.len());
        Ok(())
    }

    fn remove_prefix(&mut self, prefix: &str) -> StoreResult<()> {
        if prefix.is_empty() {
            return self.remove_all();
        }
        let doomed: Vec<String> = self
            .tables()?
            .entries
            .range(prefix..)?
            .map(|entry| entry.map(|(k, _)| k.value().to_owned()))
            .take_while(|k| k.as_ref().map_or(true, |k| k.starts_with(prefix)))
            .collect::<Result<_, _>>()?;
        for key in &doomed {
            self.forget(key)?;
        }
        Ok(())
    }

    fn remove_if_damaged(&mut self, reported: &Damaged) -> StoreResult<bool> {
        let key = reported.key.as_str();
        let still_damaged = match self.tables()?.entries.get(key)? {
            Some(stored) => match stored_value::verify(key, stored.value()) {
                None => true,
                Some(checked) => reported.undecodable == Some(checked.payload_sum),
            },
            None => false,
        };
        if still_damaged {
            self.forget(key)?;
        }
        Ok(still_damaged)
    }
}

impl Ledger for WriteBatch<'_> {
    fn remove(&mut self, key: &str) -> StoreResult<bool> {
        self.forget(key)
    }

    fn oldest(&mut self) -> StoreResult<Option<Oldest>> {
        self.tables()?.oldest()
    }

    /// Moves `key`'s row to the end of the queue and rewrites its header with the new place. A
    /// damaged value is removed instead: rewriting it would give it a checksum that holds.
    fn requeue(&mut self, key: &str) -> StoreResult<()> {
        let seq = self.next_seq();
        let tables = self.tables()?;
        let Some(stored) = tables.entries.get(key)?.map(|v| v.value().to_vec()) else {
            return Ok(());
        };
        let Some(checked) = stored_value::verify(key, &stored) else {
            self.damaged.report(key, "checksum mismatch");
            self.forget(key)?;
            return Ok(());
        };
        tables.unqueue(key, Some(checked.header))?;
        tables.clock.insert(seq, key.as_bytes())?;
        let requeued = Header {
            seq,
            ..checked.header
        };
        let stored = stored_value::join(key, requeued, checked.payload, checked.payload_sum);
        tables.entries.insert(key, stored.as_slice())?;
        Ok(())
    }

    fn usage(&self) -> Usage {
        self.totals.usage
    }
}
