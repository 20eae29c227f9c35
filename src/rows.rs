//! The data the cache holds: rows of records, stamped with when they were fetched.

use std::ops::Deref;
use std::sync::Arc;
use std::time::SystemTime;

/// A single field value. CBOR's data model: integers, text, bytes, floats, arrays, maps, …
pub use ciborium::Value;

/// One record: field name → value, in the master's field order.
pub type Record = indexmap::IndexMap<String, Value>;

/// Records by id, in the master's order.
pub type Rows = indexmap::IndexMap<String, Record>;

/// What the cache stores under one key: the rows and the moment they were fetched from the master.
///
/// Cloning is cheap: the rows sit behind an [`Arc`], so a cache can hand the same decoded rows to
/// every reader (a hit copies a pointer, not the records). Read through `rows` as if it were the
/// [`Rows`] themselves (`cached.rows["1"]`, `cached.rows.len()`); to change them, take a copy
/// with `Arc::unwrap_or_clone(cached.rows)` or `Arc::make_mut(&mut cached.rows)`.
#[derive(Clone, Debug, PartialEq)]
pub struct CachedRows {
    /// The rows themselves, shared.
    pub rows: Arc<Rows>,
    /// When the rows were read from the master; round-trips through every cache to at least
    /// millisecond precision (RedbCache keeps nanoseconds).
    pub fetched_at: SystemTime,
}

impl CachedRows {
    /// Rows fetched just now.
    pub fn new(rows: Rows) -> Self {
        Self::with_fetched_at(rows, SystemTime::now())
    }

    /// Rows fetched at a given moment.
    pub fn with_fetched_at(rows: Rows, fetched_at: SystemTime) -> Self {
        Self::shared(Arc::new(rows), fetched_at)
    }

    /// Rows already shared (say, with the reader that fetched them), fetched at a given moment.
    pub fn shared(rows: Arc<Rows>, fetched_at: SystemTime) -> Self {
        CachedRows { rows, fetched_at }
    }
}

/// One row read through a `LiveTable`: the record, sharing the cached entry it came from
/// rather than copying it. Reads as the [`Record`] (`row["name"]`); `into_record` copies it out.
#[derive(Clone, Debug, PartialEq)]
pub struct SharedRecord {
    /// An entry of exactly one row.
    rows: Arc<Rows>,
}

impl SharedRecord {
    /// The only record of `rows`, if it has one.
    pub(crate) fn only(rows: Arc<Rows>) -> Option<Self> {
        (!rows.is_empty()).then_some(SharedRecord { rows })
    }

    /// The row's id.
    pub fn id(&self) -> &str {
        self.entry().0
    }

    /// The record, copied out of the shared entry.
    pub fn into_record(self) -> Record {
        self.entry().1.clone()
    }

    fn entry(&self) -> (&String, &Record) {
        self.rows
            .first()
            .expect("a SharedRecord is built from a non-empty entry")
    }
}

impl Deref for SharedRecord {
    type Target = Record;

    fn deref(&self) -> &Record {
        self.entry().1
    }
}

impl PartialEq<Record> for SharedRecord {
    fn eq(&self, other: &Record) -> bool {
        **self == *other
    }
}
