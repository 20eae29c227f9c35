//! CBOR encoding of [`CachedRows`].
//!
//! Runs in the caller's task, never on the actor: the actor only moves bytes. The stored form is
//! a CBOR array `[version, seconds, nanoseconds, rows]` where the time is relative to the Unix
//! epoch (seconds may be negative for times before it).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::rows::{CachedRows, Rows};

/// Bumped when the value layout changes; a value of another version is reported as corrupt.
const VALUE_VERSION: u8 = 1;

/// Encodes rows for storage.
pub fn encode(value: &CachedRows) -> Result<Vec<u8>, String> {
    let (secs, nanos) = to_epoch_parts(value.fetched_at)
        .ok_or_else(|| format!("fetched_at out of range: {:?}", value.fetched_at))?;
    let mut bytes = Vec::with_capacity(256);
    ciborium::into_writer(&(VALUE_VERSION, secs, nanos, &value.rows), &mut bytes)
        .map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// Decodes stored bytes; any malformed input is an `Err`, never a panic.
pub fn decode(bytes: &[u8]) -> Result<CachedRows, String> {
    let (version, secs, nanos, rows): (u8, i64, u32, Rows) =
        ciborium::from_reader(bytes).map_err(|e| e.to_string())?;
    if version != VALUE_VERSION {
        return Err(format!("unknown value version {version}"));
    }
    let fetched_at = from_epoch_parts(secs, nanos)
        .ok_or_else(|| format!("timestamp out of range: {secs}s {nanos}ns"))?;
    Ok(CachedRows { rows, fetched_at })
}

/// Seconds and nanoseconds since the epoch; `None` if the seconds do not fit an `i64`.
fn to_epoch_parts(t: SystemTime) -> Option<(i64, u32)> {
    match t.duration_since(UNIX_EPOCH) {
        Ok(after) => Some((i64::try_from(after.as_secs()).ok()?, after.subsec_nanos())),
        Err(before) => {
            // -(s + n) = (-s - 1) + (1e9 - n) when n > 0, so nanos stay non-negative.
            let d = before.duration();
            let secs = 0i64.checked_sub_unsigned(d.as_secs())?;
            match d.subsec_nanos() {
                0 => Some((secs, 0)),
                n => Some((secs.checked_sub(1)?, 1_000_000_000 - n)),
            }
        }
    }
}

/// Milliseconds since the Unix epoch (negative before it), saturating: what the store keeps
/// of `fetched_at` for expiry.
pub(crate) fn epoch_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

fn from_epoch_parts(secs: i64, nanos: u32) -> Option<SystemTime> {
    if nanos >= 1_000_000_000 {
        return None;
    }
    if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::new(secs as u64, nanos))
    } else {
        UNIX_EPOCH
            .checked_sub(Duration::from_secs(secs.unsigned_abs()))?
            .checked_add(Duration::from_nanos(nanos as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::{Record, Value};

    fn sample(fetched_at: SystemTime) -> CachedRows {
        let mut record = Record::new();
        record.insert("name".into(), Value::Text("Ada".into()));
        record.insert("age".into(), Value::Integer(36.into()));
        let mut rows = Rows::new();
        rows.insert("1".into(), record);
        CachedRows { rows, fetched_at }
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
