//! The serde + ciborium path the hand-written codec replaced, kept as its oracle.
//!
//! The stored bytes are defined by what this path writes and reads: the differential tests,
//! the fuzz targets and the codec benchmark all compare against it. Production code never
//! calls it.

use super::VALUE_VERSION;
use super::epoch::{from_epoch_parts, to_epoch_parts};
use crate::rows::{CachedRows, Rows};

/// Encodes `value` with ciborium, exactly as vlive stored values before the hand-written codec.
///
/// # Errors
/// A `fetched_at` whose seconds since the epoch do not fit an `i64`.
pub fn encode(value: &CachedRows) -> Result<Vec<u8>, String> {
    let (secs, nanos) = to_epoch_parts(value.fetched_at)
        .ok_or_else(|| format!("fetched_at out of range: {:?}", value.fetched_at))?;
    let mut bytes = Vec::with_capacity(256);
    ciborium::into_writer(&(VALUE_VERSION, secs, nanos, &*value.rows), &mut bytes)
        .map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// Decodes `bytes` with ciborium, exactly as vlive read stored values before the hand-written
/// codec.
///
/// # Errors
/// Anything ciborium rejects, an unknown version, or a timestamp out of range.
pub fn decode(bytes: &[u8]) -> Result<CachedRows, String> {
    let (version, secs, nanos, rows): (u8, i64, u32, Rows) =
        ciborium::from_reader(bytes).map_err(|e| e.to_string())?;
    if version != VALUE_VERSION {
        return Err(format!("unknown value version {version}"));
    }
    let fetched_at = from_epoch_parts(secs, nanos)
        .ok_or_else(|| format!("timestamp out of range: {secs}s {nanos}ns"))?;
    Ok(CachedRows::with_fetched_at(rows, fetched_at))
}
