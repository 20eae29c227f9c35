//! What the 64 tasks do: the values they put, the keys they pick, the prefixes they
//! invalidate, and the loop that runs until the volume is written.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use vlive::__private::codec;
use vlive::{Cache, CachedRows, Record, RedbCache, Rows, Value};

use crate::params::{
    GET_PER_MILLE, HOT_FRACTION, HOT_GET_PER_MILLE, INVALIDATE_PER_MILLE, KEY_SPACE_BUDGETS, ROOTS,
    Workload,
};
use crate::samples::Sampler;

/// Rows per value and text fields per row: about 3.4 KB of CBOR, as in the throughput bench.
const ROWS: usize = 20;
const FIELDS: [&str; 6] = ["name", "email", "city", "company", "phone", "notes"];
/// Values in the pool; their `notes` lengths differ, so entry sizes spread over a few hundred
/// bytes instead of all landing on one page-size boundary.
const POOL: usize = 64;
/// Invalidation shapes as the number of trailing key digits dropped (an exact key, then 10,
/// 100 and 1000 consecutive pages of a root) and their share in per mille. Wider prefixes are
/// rarer: at 1% of ops, a whole root each time would empty the cache faster than the puts fill
/// it, and the budget would never bind.
const SHAPES: [(usize, u64); 4] = [(0, 500), (1, 350), (2, 140), (3, 10)];
/// What a blob row's encoding adds to its bytes (the row id, the field name, the CBOR heads and
/// `fetched_at`), about: the encoded values land near whole kilobytes.
const BLOB_OVERHEAD: usize = 40;

/// A value ready to put, with its stored size (the CBOR that vlive writes).
pub struct Sized {
    pub rows: CachedRows,
    pub bytes: u64,
}

/// The values the tasks put: built once, cloned per put as a caller hands over fresh rows.
/// One `fetched_at` for all, so each value's encoded size is known exactly.
pub fn value_pool(workload: Workload) -> Vec<Sized> {
    let fetched_at = SystemTime::now();
    (0..POOL)
        .map(|variant| {
            let rows = match workload {
                Workload::Mixed => sample_rows(variant),
                Workload::WriteOnly => blob_rows((variant + 1) * 1000),
                Workload::WriteOnlySmall => blob_rows(100 + variant * 5),
            };
            let rows = CachedRows::with_fetched_at(rows, fetched_at);
            let bytes = codec::encode(&rows).expect("encode").len() as u64;
            Sized { rows, bytes }
        })
        .collect()
}

/// One row holding one blob, encoded in about `bytes`. Write-only pools span 1 to 64 KB evenly
/// (from values that share a leaf with others up to ones that take 32 pages of their own), or
/// 100 to 415 bytes.
fn blob_rows(bytes: usize) -> Rows {
    let len = bytes - BLOB_OVERHEAD;
    let blob: Vec<u8> = (0..len).map(|i| (i * 31 + bytes) as u8).collect();
    let record: Record = [("blob".to_owned(), Value::Bytes(blob))]
        .into_iter()
        .collect();
    [("0".to_owned(), record)].into_iter().collect()
}

fn sample_rows(variant: usize) -> Rows {
    (0..ROWS)
        .map(|row| {
            let record: Record = FIELDS
                .iter()
                .map(|&field| (field.to_owned(), Value::Text(text(field, row, variant))))
                .collect();
            (row.to_string(), record)
        })
        .collect()
}

/// 21 characters per field; `notes` 0 to 42 by variant (21 on average).
fn text(field: &str, row: usize, variant: usize) -> String {
    let len = if field == "notes" {
        (variant * 7 + row * 3) % 43
    } else {
        21
    };
    format!("{field} of row {row:02} v{variant:02} ")
        .chars()
        .cycle()
        .take(len)
        .collect()
}

pub use crate::rng::Rng;

/// The keys: `r07/page_001234`, `pages` per root.
#[derive(Clone, Copy, Debug)]
pub struct KeySpace {
    pub pages: u64,
}

impl KeySpace {
    /// Twice as many keys as the budget holds at the pool's mean value size.
    pub fn for_budget(budget: u64, mean_value: u64) -> Self {
        let mean_entry = Self::key(0, 0).len() as u64 + mean_value;
        let keys = KEY_SPACE_BUDGETS * budget / mean_entry;
        KeySpace {
            pages: (keys / ROOTS).max(10),
        }
    }

    pub fn keys(self) -> u64 {
        self.pages * ROOTS
    }

    fn key(root: u64, page: u64) -> String {
        format!("r{root:02}/page_{page:06}")
    }

    fn any(self, rng: &mut Rng) -> String {
        Self::key(rng.below(ROOTS), rng.below(self.pages))
    }

    fn for_get(self, rng: &mut Rng) -> String {
        if rng.below(1000) < HOT_GET_PER_MILLE {
            Self::key(
                rng.below(ROOTS),
                rng.below((self.pages / HOT_FRACTION).max(1)),
            )
        } else {
            self.any(rng)
        }
    }

    fn prefix(self, rng: &mut Rng) -> String {
        let mut key = self.any(rng);
        key.truncate(key.len() - shape(rng.below(1000)));
        key
    }
}

/// The digits an invalidation drops from a key, for a roll in `0..1000`.
fn shape(roll: u64) -> usize {
    let mut below = 0;
    for (dropped, share) in SHAPES {
        below += share;
        if roll < below {
            return dropped;
        }
    }
    0
}

/// What the tasks share.
pub struct Run {
    pub cache: RedbCache,
    pub space: KeySpace,
    pub pool: Vec<Sized>,
    /// Key + value bytes acknowledged so far.
    pub written: AtomicU64,
    pub volume: u64,
    pub sampler: Sampler,
    pub workload: Workload,
}

/// One task: gets, puts and invalidations at random (or puts alone, write-only) until the
/// volume is written.
pub async fn writer(run: Arc<Run>, seed: u64) {
    let mut rng = Rng::new(seed);
    while run.written.load(Ordering::Relaxed) < run.volume {
        let roll = match run.workload {
            Workload::Mixed => rng.below(1000),
            Workload::WriteOnly | Workload::WriteOnlySmall => 1000,
        };
        if roll < INVALIDATE_PER_MILLE {
            let prefix = run.space.prefix(&mut rng);
            run.cache
                .invalidate_prefix(&prefix)
                .await
                .expect("invalidate");
        } else if roll < INVALIDATE_PER_MILLE + GET_PER_MILLE {
            let key = run.space.for_get(&mut rng);
            run.cache.get(&key).await.expect("get");
        } else {
            put(&run, &mut rng).await;
        }
    }
}

async fn put(run: &Run, rng: &mut Rng) {
    let key = run.space.any(rng);
    let value = &run.pool[rng.below(run.pool.len() as u64) as usize];
    run.cache.put(&key, value.rows.clone()).await.expect("put");
    let bytes = key.len() as u64 + value.bytes;
    let before = run.written.fetch_add(bytes, Ordering::Relaxed);
    run.sampler.after_write(&run.cache, before, before + bytes);
}
