//! Not public API: for the crate's own benches and tests; no semver promise.
//!
//! The throughput bench's baselines read and write vlive's files the way vlive does. They reach
//! the real layout and value encoding through here instead of keeping a copy, so the two can
//! never drift apart.

/// The value encoding: a CBOR array `[version, seconds, nanoseconds, rows]`.
pub mod codec {
    pub use crate::codec::{decode, encode, encoded_len, reference};
}

/// The redb file layout: which table holds a key, under which key in that table, and the
/// header in front of each stored value.
#[cfg(not(loom))]
pub mod layout {
    pub use crate::store::redb_store::locate;

    /// The encoded rows of a value stored under `key`, behind its header, checked as a store
    /// checks it (a baseline pays what vlive pays); `None` if the check fails.
    pub fn payload<'a>(key: &str, stored: &'a [u8]) -> Option<&'a [u8]> {
        crate::store::stored_value::verify(key, stored).map(|checked| checked.payload)
    }

    /// `value` as a store would keep it under `key`, behind a header with a zero sequence and
    /// fetch time (the baselines keep no eviction queue) and its checksum.
    pub fn stored(key: &str, value: &[u8]) -> Vec<u8> {
        use crate::store::stored_value::{Header, join};
        let header = Header {
            seq: 0,
            fetched_ms: 0,
        };
        join(key, header, value, crate::store::value_sum(value))
    }
}

/// Metrics publisher threads running in this process: tests check that none outlives its
/// cache.
#[cfg(all(feature = "metrics", not(loom)))]
pub fn metrics_publishers_running() -> usize {
    crate::metrics::publisher::running()
}
