//! Not public API: for the crate's own benches and tests; no semver promise.
//!
//! The throughput bench's baselines read and write vlive's files the way vlive does. They reach
//! the real layout and value encoding through here instead of keeping a copy, so the two can
//! never drift apart.

/// The value encoding: a CBOR array `[version, seconds, nanoseconds, rows]`.
pub mod codec {
    pub use crate::codec::{decode, encode, reference};
}

/// The redb file layout: which table holds a key, and under which key in that table.
#[cfg(not(loom))]
pub mod layout {
    pub use crate::store::redb_store::locate;
}
