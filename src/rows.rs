//! The data the cache holds: rows of records, stamped with when they were fetched.

use std::time::SystemTime;

/// A single field value. CBOR's data model: integers, text, bytes, floats, arrays, maps, …
pub use ciborium::Value;

/// One record: field name → value, in the master's field order.
pub type Record = indexmap::IndexMap<String, Value>;

/// Records by id, in the master's order.
pub type Rows = indexmap::IndexMap<String, Record>;

/// What the cache stores under one key: the rows and the moment they were fetched from the master.
#[derive(Clone, Debug, PartialEq)]
pub struct CachedRows {
    /// The rows themselves.
    pub rows: Rows,
    /// When the rows were read from the master; round-trips through every cache to at least
    /// millisecond precision (RedbCache keeps nanoseconds).
    pub fetched_at: SystemTime,
}

impl CachedRows {
    /// Rows fetched just now.
    pub fn new(rows: Rows) -> Self {
        CachedRows {
            rows,
            fetched_at: SystemTime::now(),
        }
    }

    /// Rows fetched at a given moment.
    pub fn with_fetched_at(rows: Rows, fetched_at: SystemTime) -> Self {
        CachedRows { rows, fetched_at }
    }
}
