//! The baselines' storage: vlive's file, layout and value encoding (taken from the crate
//! itself), with one redb transaction per operation, as a straightforward design would do it.
//! Values keep vlive's 16-byte header, zeroed, so that both read the same prefilled file.

use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, TableError};
use vlive::__private::layout;
use vlive::CachedRows;

use crate::data::{decode, encode};

/// A data table as vlive's store declares it: key in the table → encoded value.
pub type DataTable<'a> = TableDefinition<'a, &'static str, &'static [u8]>;

/// The direct design: a shared database, one synchronous transaction per operation.
#[derive(Clone)]
pub struct DirectCache {
    db: Arc<Database>,
}

impl DirectCache {
    pub fn open(folder: &Path) -> Self {
        let db = Database::create(folder.join(vlive::DB_FILE_NAME)).expect("open redb");
        DirectCache { db: Arc::new(db) }
    }

    pub fn get(&self, key: &str) -> Option<CachedRows> {
        let (name, rest) = layout::locate(key);
        let txn = self.db.begin_read().expect("begin_read");
        let table = match txn.open_table(DataTable::new(name)) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return None,
            Err(e) => panic!("open table: {e}"),
        };
        let value = table.get(rest).expect("get")?;
        Some(decode(
            layout::payload(key, value.value()).expect("checksum"),
        ))
    }

    pub fn put(&self, key: &str, rows: &CachedRows) {
        let bytes = layout::stored(key, &encode(rows));
        let (name, rest) = layout::locate(key);
        let mut txn = self.db.begin_write().expect("begin_write");
        txn.set_durability(redb::Durability::Immediate)
            .expect("durability");
        {
            let mut table = txn.open_table(DataTable::new(name)).expect("open table");
            table.insert(rest, bytes.as_slice()).expect("insert");
        }
        txn.commit().expect("commit");
    }

    pub fn invalidate_prefix(&self, prefix: &str) {
        let mut txn = self.db.begin_write().expect("begin_write");
        txn.set_durability(redb::Durability::Immediate)
            .expect("durability");
        let (name, start) = layout::locate(prefix);
        match txn.open_table(DataTable::new(name)) {
            Ok(mut table) => {
                let doomed: Vec<String> = table
                    .range(start..)
                    .expect("range")
                    .map(|entry| entry.expect("entry").0.value().to_owned())
                    .take_while(|k| k.starts_with(start))
                    .collect();
                for key in &doomed {
                    table.remove(key.as_str()).expect("remove");
                }
            }
            Err(e) => panic!("open table: {e}"),
        }
        txn.commit().expect("commit");
    }
}
