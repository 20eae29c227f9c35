//! The production store: one redb database, one table per key root.
//!
//! A key splits at its first `/` into a root and the rest: `clients/7` → (`clients`, `/7`), and
//! a key with no `/` is a root with an empty rest (`a` → (`a`, ``)). The rest keeps its leading
//! slash, so `a`, `a/` and `a/__root__` land on three distinct table keys (``, `/`, `/__root__`)
//! without any reserved marker. Root `r` lives in table `__vlive__{r}`.
//!
//! `remove_prefix(p)` follows from that: a prefix with no `/` covers whole roots (drop every
//! table whose root starts with `p`); a prefix with a `/` names one root and a range of rests.

use std::path::{Path, PathBuf};

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;

use redb::{
    Database, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable, Table,
    TableDefinition, TableHandle, WriteTransaction,
};
use tracing::warn;

use crate::error::{Error, Result};
use crate::store::redb_open::{BackendLayer, open_database};
use crate::store::{Commit, Snapshot, Store, StoreBatch, StoreReads, StoreResult};

/// Data tables are named this followed by the root.
const TABLE_PREFIX: &str = "__vlive__";
/// Metadata; its name has no `__vlive__` prefix so no root can collide with it.
const META: TableDefinition<&str, u64> = TableDefinition::new("vlive_meta");
const FORMAT_KEY: &str = "format_version";
/// The on-disk layout version. A folder with any other version is reset, never misread.
pub(crate) const FORMAT_VERSION: u64 = 1;

type DataTable<'a> = TableDefinition<'a, &'static str, &'static [u8]>;

pub(crate) struct RedbStore {
    db: Database,
    folder: PathBuf,
}

fn split_key(key: &str) -> (&str, &str) {
    match key.find('/') {
        Some(slash) => key.split_at(slash),
        None => (key, ""),
    }
}

fn table_name(root: &str) -> String {
    format!("{TABLE_PREFIX}{root}")
}

/// Where `key` is stored: its root's table and its key in that table (`clients/7` →
/// (`__vlive__clients`, `/7`)). For a prefix with no `/`, the table name is the prefix of the
/// names of every table that prefix covers.
///
/// The one place the layout is decided: the store calls it for every key, and the crate's
/// benchmark reaches it through [`crate::__private::layout`] (hence `pub`; the module is private).
pub fn locate(key: &str) -> (String, &str) {
    let (root, rest) = split_key(key);
    (table_name(root), rest)
}

impl RedbStore {
    /// Opens the folder's database and makes sure it holds the current format (resetting it if
    /// not).
    pub(crate) fn open(folder: &Path, layer: Option<&BackendLayer>) -> Result<Self> {
        let db = open_database(folder, layer)?;
        let store = RedbStore {
            db,
            folder: folder.to_owned(),
        };
        store
            .ensure_format()
            .map_err(|e| Error::storage(folder, "prepare the cache file", e))?;
        Ok(store)
    }

    fn ensure_format(&self) -> StoreResult<()> {
        let txn = self.db.begin_write()?;
        let found = txn.open_table(META)?.get(FORMAT_KEY)?.map(|v| v.value());
        let data_tables: Vec<String> = txn
            .list_tables()?
            .map(|t| t.name().to_owned())
            .filter(|name| name.starts_with(TABLE_PREFIX))
            .collect();
        match found {
            Some(FORMAT_VERSION) => return Ok(()),
            None if data_tables.is_empty() => {}
            other => {
                warn!(
                    folder = %self.folder.display(),
                    found = ?other,
                    expected = FORMAT_VERSION,
                    "cache folder has another format version; resetting it"
                );
                for name in &data_tables {
                    txn.delete_table(DataTable::new(name))?;
                }
            }
        }
        txn.open_table(META)?.insert(FORMAT_KEY, FORMAT_VERSION)?;
        txn.commit()?;
        Ok(())
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
        work(&mut ReadBatch {
            txn: &txn,
            tables: HashMap::new(),
        })
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
        let result = work(&mut WriteBatch::new(&txn))?;
        txn.commit()?;
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
}

/// What is committed at one moment, for gets beside the actor: a read transaction begun by the
/// actor right after a commit. Lookups in it never wait on redb's locks that a commit in
/// progress holds (beginning a read transaction can: a commit that grows the file holds the
/// lock `begin_read` needs through an fsync).
struct RedbSnapshot(ReadTransaction);

impl Snapshot for RedbSnapshot {
    fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let (name, rest) = locate(key);
        match open_read_table(&self.0, &name)? {
            Some(table) => Ok(table.get(rest)?.map(|v| v.value().to_vec())),
            None => Ok(None),
        }
    }
}

/// A root's table in a read transaction; `None` if the root has none (every key misses).
fn open_read_table(
    txn: &ReadTransaction,
    name: &str,
) -> StoreResult<Option<ReadOnlyTable<&'static str, &'static [u8]>>> {
    match txn.open_table(DataTable::new(name)) {
        Ok(table) => Ok(Some(table)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A batch of reads: one read transaction, each root's table opened once.
struct ReadBatch<'t> {
    txn: &'t ReadTransaction,
    /// `None`: the root has no table, so every key under it misses.
    tables: HashMap<String, Option<ReadOnlyTable<&'static str, &'static [u8]>>>,
}

impl StoreReads for ReadBatch<'_> {
    fn get(&mut self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let (name, rest) = locate(key);
        if !self.tables.contains_key(&name) {
            let table = open_read_table(self.txn, &name)?;
            self.tables.insert(name.clone(), table);
        }
        match &self.tables[&name] {
            Some(table) => Ok(table.get(rest)?.map(|v| v.value().to_vec())),
            None => Ok(None),
        }
    }
}

/// A batch with writes: one write transaction, each root's table opened once.
struct WriteBatch<'t> {
    txn: &'t WriteTransaction,
    tables: HashMap<String, Table<'t, &'static str, &'static [u8]>>,
    /// The data tables in the file, listed on first need (opening a table in a write
    /// transaction creates it, so reads must ask first).
    existing: Option<BTreeSet<String>>,
}

impl<'t> WriteBatch<'t> {
    fn new(txn: &'t WriteTransaction) -> Self {
        WriteBatch {
            txn,
            tables: HashMap::new(),
            existing: None,
        }
    }

    fn existing(&mut self) -> StoreResult<&mut BTreeSet<String>> {
        if self.existing.is_none() {
            let names = self
                .txn
                .list_tables()?
                .map(|t| t.name().to_owned())
                .filter(|name| name.starts_with(TABLE_PREFIX))
                .collect();
            self.existing = Some(names);
        }
        Ok(self.existing.as_mut().expect("just listed"))
    }

    /// The root's table, created if `create`; `None` if it does not exist and may not be made.
    fn table(
        &mut self,
        name: &str,
        create: bool,
    ) -> StoreResult<Option<&mut Table<'t, &'static str, &'static [u8]>>> {
        if !self.tables.contains_key(name) {
            if !create && !self.existing()?.contains(name) {
                return Ok(None);
            }
            let table = self.txn.open_table(DataTable::new(name))?;
            if let Some(existing) = self.existing.as_mut() {
                existing.insert(name.to_owned());
            }
            self.tables.insert(name.to_owned(), table);
        }
        Ok(self.tables.get_mut(name))
    }
}

impl StoreReads for WriteBatch<'_> {
    fn get(&mut self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let (name, rest) = locate(key);
        match self.table(&name, false)? {
            Some(table) => Ok(table.get(rest)?.map(|v| v.value().to_vec())),
            None => Ok(None),
        }
    }
}

impl StoreBatch for WriteBatch<'_> {
    fn put(&mut self, key: &str, value: &[u8]) -> StoreResult<()> {
        let (name, rest) = locate(key);
        if let Some(table) = self.table(&name, true)? {
            table.insert(rest, value)?;
        }
        Ok(())
    }

    fn remove_prefix(&mut self, prefix: &str) -> StoreResult<()> {
        // With a `/`: one table and a range of it; without: the start of every covered name.
        let (covered, rest_prefix) = locate(prefix);
        if !prefix.contains('/') {
            // Covers whole roots: drop every table whose root starts with the prefix.
            let doomed: Vec<String> = self
                .existing()?
                .range::<str, _>((Bound::Included(covered.as_str()), Bound::Unbounded))
                .take_while(|name| name.starts_with(&covered))
                .cloned()
                .collect();
            for name in doomed {
                // redb refuses to delete a table that is open.
                self.tables.remove(&name);
                self.txn.delete_table(DataTable::new(&name))?;
                self.existing()?.remove(&name);
            }
            return Ok(());
        }
        let Some(table) = self.table(&covered, false)? else {
            return Ok(());
        };
        let doomed: Vec<String> = table
            .range(rest_prefix..)?
            .map(|entry| entry.map(|(k, _)| k.value().to_owned()))
            .take_while(|k| k.as_ref().map_or(true, |k| k.starts_with(rest_prefix)))
            .collect::<Result<_, _>>()?;
        for rest in &doomed {
            table.remove(rest.as_str())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{locate, split_key};

    #[test]
    fn keys_split_at_the_first_slash_and_keep_it() {
        assert_eq!(split_key("a"), ("a", ""));
        assert_eq!(split_key("a/"), ("a", "/"));
        assert_eq!(split_key("a/__root__"), ("a", "/__root__"));
        assert_eq!(split_key("a//b"), ("a", "//b"));
        assert_eq!(split_key("/x"), ("", "/x"));
        assert_eq!(split_key(""), ("", ""));
    }

    #[test]
    fn a_key_is_located_in_its_roots_table() {
        assert_eq!(locate("clients/7"), ("__vlive__clients".to_owned(), "/7"));
        assert_eq!(locate("a"), ("__vlive__a".to_owned(), ""));
    }
}
