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

use redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, TableHandle,
    WriteTransaction,
};
use tracing::warn;

use crate::store::{Commit, Store, StoreBatch, StoreResult};

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

impl RedbStore {
    /// Takes an opened database and makes sure it holds the current format (resetting it if not).
    pub(crate) fn new(db: Database, folder: &Path) -> StoreResult<Self> {
        let store = RedbStore {
            db,
            folder: folder.to_owned(),
        };
        store.ensure_format()?;
        Ok(store)
    }

    fn ensure_format(&self) -> StoreResult<()> {
        let txn = self.db.begin_write()?;
        let found = match txn.open_table(META) {
            Ok(meta) => meta.get(FORMAT_KEY)?.map(|v| v.value()),
            Err(e) => return Err(e.into()),
        };
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
    type Batch<'s> = RedbBatch<'s>;

    fn begin(&mut self) -> RedbBatch<'_> {
        RedbBatch {
            db: &self.db,
            read: None,
            write: None,
        }
    }

    fn checkpoint(&mut self) -> StoreResult<()> {
        // An empty durable commit makes every earlier non-durable commit durable too.
        let mut txn = self.db.begin_write()?;
        txn.set_durability(redb::Durability::Immediate)?;
        txn.commit()?;
        Ok(())
    }

    fn close(self) -> StoreResult<()> {
        self.db.close()?;
        Ok(())
    }
}

/// A batch: a read transaction until the first write, then one write transaction.
///
/// Both see the same state at the point of switching, because the actor is the only writer.
pub(crate) struct RedbBatch<'s> {
    db: &'s Database,
    read: Option<ReadTransaction>,
    write: Option<WriteTransaction>,
}

impl RedbBatch<'_> {
    fn write_txn(&mut self) -> StoreResult<&WriteTransaction> {
        if self.write.is_none() {
            self.read = None;
            self.write = Some(self.db.begin_write()?);
        }
        Ok(self.write.as_ref().expect("just set"))
    }

    fn read_txn(&mut self) -> StoreResult<&ReadTransaction> {
        if self.read.is_none() {
            self.read = Some(self.db.begin_read()?);
        }
        Ok(self.read.as_ref().expect("just set"))
    }
}

impl StoreBatch for RedbBatch<'_> {
    fn get(&mut self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let (root, rest) = split_key(key);
        let name = table_name(root);
        let definition = DataTable::new(&name);
        if let Some(txn) = &self.write {
            // Opening a missing table in a write transaction would create it; ask first.
            let exists = txn.list_tables()?.any(|t| t.name() == name);
            if !exists {
                return Ok(None);
            }
            let table = txn.open_table(definition)?;
            return Ok(table.get(rest)?.map(|v| v.value().to_vec()));
        }
        let table = match self.read_txn()?.open_table(definition) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        Ok(table.get(rest)?.map(|v| v.value().to_vec()))
    }

    fn put(&mut self, key: &str, value: &[u8]) -> StoreResult<()> {
        let (root, rest) = split_key(key);
        let name = table_name(root);
        let mut table = self.write_txn()?.open_table(DataTable::new(&name))?;
        table.insert(rest, value)?;
        Ok(())
    }

    fn remove_prefix(&mut self, prefix: &str) -> StoreResult<()> {
        let txn = self.write_txn()?;
        match prefix.find('/') {
            None => {
                let covered = format!("{TABLE_PREFIX}{prefix}");
                let doomed: Vec<String> = txn
                    .list_tables()?
                    .map(|t| t.name().to_owned())
                    .filter(|name| name.starts_with(&covered))
                    .collect();
                for name in &doomed {
                    txn.delete_table(DataTable::new(name))?;
                }
            }
            Some(_) => {
                let (root, rest_prefix) = split_key(prefix);
                let name = table_name(root);
                if !txn.list_tables()?.any(|t| t.name() == name) {
                    return Ok(());
                }
                let mut table = txn.open_table(DataTable::new(&name))?;
                let doomed: Vec<String> = table
                    .range(rest_prefix..)?
                    .map(|entry| entry.map(|(k, _)| k.value().to_owned()))
                    .take_while(|k| k.as_ref().map_or(true, |k| k.starts_with(rest_prefix)))
                    .collect::<Result<_, _>>()?;
                for rest in &doomed {
                    table.remove(rest.as_str())?;
                }
            }
        }
        Ok(())
    }

    fn commit(self, durability: Commit) -> StoreResult<()> {
        let Some(mut txn) = self.write else {
            return Ok(());
        };
        txn.set_durability(match durability {
            Commit::Durable => redb::Durability::Immediate,
            Commit::Deferred => redb::Durability::None,
        })?;
        txn.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::split_key;

    #[test]
    fn keys_split_at_the_first_slash_and_keep_it() {
        assert_eq!(split_key("a"), ("a", ""));
        assert_eq!(split_key("a/"), ("a", "/"));
        assert_eq!(split_key("a/__root__"), ("a", "/__root__"));
        assert_eq!(split_key("a//b"), ("a", "//b"));
        assert_eq!(split_key("/x"), ("", "/x"));
        assert_eq!(split_key(""), ("", ""));
    }
}
