//! CBOR encoding of [`CachedRows`].
//!
//! Runs in the caller's task, never on the actor: the actor only moves bytes. The stored form is
//! a CBOR array `[version, seconds, nanoseconds, rows]` where the time is relative to the Unix
//! epoch (seconds may be negative for times before it) and `rows` is a map of maps of
//! `ciborium::Value`s.
//!
//! The format is whatever `ciborium` writes for the tuple `(u8, i64, u32, &Rows)` and reads back
//! into `(u8, i64, u32, Rows)` ([`reference`] keeps that path). The codec here writes the same
//! bytes and accepts the same inputs without serde's generic machinery or ciborium's `Value`
//! round trip, which is where a warm get used to spend most of its time:
//! - `encode` — the writer, one pass over the rows;
//! - `reader` — CBOR items off a byte slice; `decode` — the stored form built from them;
//! - `float` — the half-precision conversions Rust lacks; `epoch` — the timestamp pair.

mod decode;
mod encode;
mod epoch;
mod float;
mod reader;
pub mod reference;
mod wire;

use crate::rows::CachedRows;
use encode::Writer;
pub(crate) use epoch::epoch_ms;
use epoch::{from_epoch_parts, to_epoch_parts};
use reader::Reader;

/// Bumped when the value layout changes; a value of another version is reported as corrupt.
const VALUE_VERSION: u8 = 1;

/// Encodes rows for storage.
pub fn encode(value: &CachedRows) -> Result<Vec<u8>, String> {
    let (secs, nanos) = to_epoch_parts(value.fetched_at)
        .ok_or_else(|| format!("fetched_at out of range: {:?}", value.fetched_at))?;
    // Sizing the output exactly first measured slower than letting the vector grow.
    let mut writer = Writer::with_capacity(256);
    writer.stored(VALUE_VERSION, secs, nanos, &value.rows);
    writer.finish()
}

/// Decodes stored bytes; any malformed input is an `Err`, never a panic.
pub fn decode(bytes: &[u8]) -> Result<CachedRows, String> {
    let stored = Reader::new(bytes).stored().map_err(|e| e.to_string())?;
    let (version, secs, nanos) = (stored.version, stored.secs, stored.nanos);
    if version != VALUE_VERSION {
        return Err(format!("unknown value version {version}"));
    }
    let fetched_at = from_epoch_parts(secs, nanos)
        .ok_or_else(|| format!("timestamp out of range: {secs}s {nanos}ns"))?;
    Ok(CachedRows::with_fetched_at(stored.rows, fetched_at))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use super::*;
    use crate::rows::{Record, Rows, Value};

    fn sample(fetched_at: SystemTime) -> CachedRows {
        let mut record = Record::new();
        record.insert("name".into(), Value::Text("Ada".into()));
        record.insert("age".into(), Value::Integer(36.into()));
        let mut rows = Rows::new();
        rows.insert("1".into(), record);
        CachedRows::with_fetched_at(rows, fetched_at)
    }

    #[test]
    fn round_trips_with_nanosecond_precision() {
        for t in [
            UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789),
            UNIX_EPOCH - Duration::new(5, 250_000_000),
            UNIX_EPOCH - Duration::from_secs(7),
            UNIX_EPOCH,
        ] {
            let value = sample(t);
            assert_eq!(decode(&encode(&value).unwrap()).unwrap(), value);
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode(b"").is_err());
        assert!(decode(&[0xff, 0x00, 0x13]).is_err());
        let mut bytes = encode(&sample(UNIX_EPOCH)).unwrap();
        bytes.truncate(bytes.len() / 2);
        assert!(decode(&bytes).is_err());
    }

    #[test]
    fn unknown_version_is_rejected() {
        let mut bytes = Vec::new();
        ciborium::into_writer(&(9u8, 0i64, 0u32, Rows::new()), &mut bytes).unwrap();
        assert!(decode(&bytes).unwrap_err().contains("version 9"));
    }
}
