//! The reference: raw redb, one table of key → vlive's encoded bytes, no actor, no async. Its
//! puts commit in transactions of the batch size vlive reached on the same workload, so the
//! ratio prices vlive's machinery, not a different batching.

use std::path::Path;

use redb::{Database, Durability, ReadableDatabase, TableDefinition};
use vlive::CachedRows;

use crate::params::PAGE_CACHE;
use crate::payload::key;
use crate::sample::decode;

const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("peers");

/// A redb file of its own.
pub struct RawRedb {
    db: Database,
}

impl RawRedb {
    pub fn create(folder: &Path) -> Self {
        RawRedb {
            db: redb::Builder::new()
                .set_cache_size(PAGE_CACHE)
                .create(folder.join("raw.redb"))
                .expect("open redb"),
        }
    }

    /// Entries `0..count`, 512 to a durable transaction.
    pub fn fill(&self, count: u64, bytes: &[u8]) {
        let keys: Vec<u64> = (0..count).collect();
        for chunk in keys.chunks(512) {
            self.commit(chunk, bytes, Durability::Immediate);
        }
    }

    /// One transaction putting `bytes` under each key.
    pub fn commit(&self, keys: &[u64], bytes: &[u8], durability: Durability) {
        let mut txn = self.db.begin_write().expect("begin_write");
        txn.set_durability(durability).expect("durability");
        {
            let mut table = txn.open_table(TABLE).expect("open table");
            for &i in keys {
                table.insert(key(i).as_str(), bytes).expect("insert");
            }
        }
        txn.commit().expect("commit");
    }

    /// A read transaction and vlive's decoding, as a cold get must do at least.
    pub fn get(&self, key: &str) -> Option<CachedRows> {
        let txn = self.db.begin_read().expect("begin_read");
        let table = txn.open_table(TABLE).expect("open table");
        let bytes = table.get(key).expect("get")?;
        Some(decode(bytes.value()))
    }
}
