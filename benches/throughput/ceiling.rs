//! The ceiling: raw redb on one thread, no async, no channel, no encoding per insert: what
//! batched durable puts can reach on this disk at all.

use std::path::Path;
use std::time::{Duration, Instant};

use redb::{Database, Table};
use vlive::__private::layout;
use vlive::{CachedRows, Rows};

use crate::data::{Rng, encode, key};
use crate::direct::DataTable;
use crate::figures::Batches;
use crate::measure::{Measured, scratch_folder};
use crate::params::{PUT_PAGES, ROOTS, Timing};

/// Raw redb on one thread: transactions of `batch` durable inserts, value pre-encoded. Counts
/// the inserts of the transactions committed within the window. With 512 inserts per
/// transaction this is the ceiling.
pub fn raw_redb(timing: Timing, rows: &Rows, batch: usize) -> Measured {
    let dir = scratch_folder();
    let mut writer = RawWriter::create(dir.path(), rows);
    let started = Instant::now();
    let mut inserted = 0u64;
    let mut window_start: Option<(Instant, u64)> = None;
    loop {
        writer.commit(batch);
        inserted += batch as u64;
        let now = Instant::now();
        match window_start {
            None if now - started >= timing.warmup => window_start = Some((now, inserted)),
            Some((start, before)) if now - start >= timing.window => {
                return measured(inserted - before, now - start, batch);
            }
            _ => {}
        }
    }
}

/// `ops` inserts in transactions of `batch`, committed within `elapsed`.
fn measured(ops: u64, elapsed: Duration, batch: usize) -> Measured {
    Measured {
        ops_per_sec: ops as f64 / elapsed.as_secs_f64(),
        batches: Some(Batches {
            batches: ops / batch as u64,
            ops,
            max_ops: batch as u64,
        }),
        lags: Vec::new(),
    }
}

/// A redb file in vlive's layout, written to directly with one value encoded up front.
struct RawWriter {
    db: Database,
    /// The data table (vlive's layout keeps every key in one).
    table: &'static str,
    value: Vec<u8>,
    rng: Rng,
}

impl RawWriter {
    fn create(folder: &Path, rows: &Rows) -> Self {
        RawWriter {
            db: Database::create(folder.join(vlive::DB_FILE_NAME)).expect("open redb"),
            table: layout::locate(&key(0, 0)).0,
            value: encode(&CachedRows::new(rows.clone())),
            rng: Rng::new(1),
        }
    }

    /// One durable transaction of `batch` inserts to random put-burst keys.
    fn commit(&mut self, batch: usize) {
        let mut txn = self.db.begin_write().expect("begin_write");
        txn.set_durability(redb::Durability::Immediate)
            .expect("durability");
        {
            let mut table: Table<&str, &[u8]> = txn
                .open_table(DataTable::new(self.table))
                .expect("open table");
            for _ in 0..batch {
                let key = key(self.rng.below(ROOTS), self.rng.below(PUT_PAGES));
                let (_, in_table) = layout::locate(&key);
                table
                    .insert(in_table, self.value.as_slice())
                    .expect("insert");
            }
        }
        txn.commit().expect("commit");
    }
}
