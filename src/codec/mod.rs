//! CBOR encoding of [`CachedRows`].
//!
//! Decoding runs in the caller's task. A `RedbCache` put is measured there (`measure_entry`,
//! which also refuses what could not be read back) and encoded by the actor as it stores it
//! (`actor::command::PutValue` says why). The stored form is
//! a CBOR array `[version, seconds, nanoseconds, rows]` where the time is relative to the Unix
//! epoch (seconds may be negative for times before it) and `rows` is a map of maps of
//! `ciborium::Value`s.
//!
//! The format is whatever `ciborium` writes for the tuple `(u8, i64, u32, &Rows)` and reads back
//! into `(u8, i64, u32, Rows)` ([`reference`](mod@reference) keeps that path). The codec here writes the same
//! bytes and accepts the same inputs without serde's generic machinery or ciborium's `Value`
//! round trip, which is where a warm get used to spend most of its time:
//! - `encode` — the writer, one pass over the rows, into a buffer or a byte count (and a
//!   tighter count for rows of scalars);
//! - `reader` — CBOR items off a byte slice; `decode` — the stored form built from them;
//! - `float` — the half-precision conversions Rust lacks; `epoch` — the timestamp pair;
//! - `limits` — what the reader refuses in a well-formed value, which the writer refuses too.

mod decode;
mod encode;
mod epoch;
mod float;
mod limits;
mod reader;
pub mod reference;
mod wire;

use std::time::SystemTime;

use crate::error::{Error, Refusal};
use crate::rows::CachedRows;
use encode::{Count, Writer};
pub(crate) use epoch::epoch_ms;
use epoch::{from_epoch_parts, to_epoch_parts};
use limits::{FIELD_BUDGET, Limit};
use reader::Reader;

/// Bumped when the value layout changes; a value of another version is reported as corrupt.
const VALUE_VERSION: u8 = 1;

/// Why a value cannot be stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// It could be written, but [`decode()`] would refuse it.
    Refused(Refusal),
    /// It cannot be written at all (a `fetched_at` out of range).
    Unwritable(String),
}

impl EncodeError {
    fn refused(row: &str, field: &str, limit: Limit) -> Self {
        let (row, field) = (row.to_owned(), field.to_owned());
        EncodeError::Refused(match limit {
            Limit::Depth => Refusal::TooDeep {
                row,
                field,
                max_depth: FIELD_BUDGET,
            },
            Limit::Bignum => Refusal::BignumOutOfRange { row, field },
        })
    }

    /// The error a `put` or `fill` of `key` returns.
    pub(crate) fn for_key(self, key: &str) -> Error {
        let key = key.to_owned();
        match self {
            EncodeError::Refused(reason) => Error::ValueRefused { key, reason },
            EncodeError::Unwritable(reason) => Error::Encode { key, reason },
        }
    }
}

/// Encodes rows for storage, refusing what `decode` would not read back.
pub fn encode(value: &CachedRows) -> Result<Vec<u8>, EncodeError> {
    // Sizing the output exactly first measured slower than letting the vector grow.
    let mut out = Vec::with_capacity(256);
    encode_into(value, &mut out)?;
    Ok(out)
}

/// [`encode()`], appending to `out`. On an error `out` holds a partial value.
pub(crate) fn encode_into(value: &CachedRows, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let (secs, nanos) = epoch_parts(value.fetched_at)?;
    let mut writer = Writer::new(out);
    writer.stored(VALUE_VERSION, secs, nanos, &value.rows);
    writer.finish().map(drop)
}

/// How many bytes `encode` would write for `value`, or its error: a walk over the rows that
/// writes nothing. Rows whose field values are all scalars (the usual table) are counted by a
/// tighter walk of their own, since a lazy put's caller pays for this count (docs/DESIGN.md
/// §2.1).
pub fn encoded_len(value: &CachedRows) -> Result<usize, EncodeError> {
    let (secs, nanos) = epoch_parts(value.fetched_at)?;
    if let Some(len) = encode::flat_stored_len(VALUE_VERSION, secs, nanos, &value.rows) {
        return Ok(len);
    }
    let mut writer = Writer::new(Count::default());
    writer.stored(VALUE_VERSION, secs, nanos, &value.rows);
    writer.finish().map(|count| count.0)
}

/// [`encoded_len`], with the error a `put` or `fill` of `key` returns.
pub(crate) fn measure_entry(key: &str, value: &CachedRows) -> Result<usize, Error> {
    encoded_len(value).map_err(|e| e.for_key(key))
}

/// [`encode()`], with the error a `put` or `fill` of `key` returns (`RedisCache` encodes in the
/// caller; `RedbCache`'s actor encodes through [`PutValue`](crate::actor::PutValue)).
#[cfg(any(feature = "redis", test))]
pub(crate) fn encode_entry(key: &str, value: &CachedRows) -> Result<Vec<u8>, Error> {
    encode(value).map_err(|e| e.for_key(key))
}

/// Whether `value` could be stored under `key`: the error `encode_entry` would return, if
/// any, without encoding. For a cache that keeps values as they are (`MemCache`) and still
/// refuses what the others refuse.
pub(crate) fn check_entry(key: &str, value: &CachedRows) -> Result<(), Error> {
    epoch_parts(value.fetched_at).map_err(|e| e.for_key(key))?;
    limits::check(&value.rows)
        .map_err(|(row, field, limit)| EncodeError::refused(row, field, limit).for_key(key))
}

/// The stored time pair, if [`decode()`] can read it back.
fn epoch_parts(t: SystemTime) -> Result<(i64, u32), EncodeError> {
    (to_epoch_parts(t))
        .filter(|&(secs, nanos)| from_epoch_parts(secs, nanos).is_some())
        .ok_or_else(|| EncodeError::Unwritable(format!("fetched_at out of range: {t:?}")))
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

    /// One row "r" with one field "f" holding `value`.
    fn one_field(value: Value) -> CachedRows {
        let mut record = Record::new();
        record.insert("f".into(), value);
        let mut rows = Rows::new();
        rows.insert("r".into(), record);
        CachedRows::with_fetched_at(rows, UNIX_EPOCH)
    }

    /// Arrays, maps and tags nested `depth` levels around a null.
    fn nested(depth: usize, kind: usize) -> Value {
        (0..depth).fold(Value::Null, |inner, _| match kind {
            0 => Value::Array(vec![inner]),
            1 => Value::Map(vec![(inner, Value::Null)]),
            _ => Value::Tag(7, Box::new(inner)),
        })
    }

    /// Both ways of refusing agree with each other and with what decode makes of ciborium's
    /// bytes for the same value.
    fn refusal(value: &CachedRows) -> Option<Error> {
        let readable = decode(&reference::encode(value).unwrap()).is_ok();
        let written = encode_entry("k", value);
        let checked = check_entry("k", value);
        assert_eq!(written.is_ok(), readable, "{:?}", written.err());
        assert_eq!(checked.is_ok(), readable, "{:?}", checked.err());
        assert_eq!(
            format!("{:?}", written.err()),
            format!("{:?}", checked.clone().err())
        );
        checked.err()
    }

    #[test]
    fn refuses_nesting_one_level_past_what_decode_reads() {
        for kind in 0..3 {
            assert!(refusal(&one_field(nested(FIELD_BUDGET, kind))).is_none());
            let error = refusal(&one_field(nested(FIELD_BUDGET + 1, kind))).unwrap();
            let Error::ValueRefused { key, reason } = &error else {
                panic!("{error:?}")
            };
            assert_eq!(key, "k");
            let Refusal::TooDeep {
                row,
                field,
                max_depth,
            } = reason
            else {
                panic!("{reason:?}")
            };
            assert_eq!((&row[..], &field[..], *max_depth), ("r", "f", 253));
            assert!(error.to_string().contains("253 levels"), "{error}");
        }
        // Far deeper is refused as well: both walks stop at the limit. (ciborium, the
        // reference, would recurse all the way down.)
        let far_deeper = one_field(nested(5_000, 0));
        assert!(encode_entry("k", &far_deeper).is_err());
        assert!(check_entry("k", &far_deeper).is_err());
    }

    #[test]
    fn refuses_a_negative_bignum_below_i128_min_and_nothing_near_it() {
        let bignum =
            |tag, bytes: Vec<u8>| one_field(Value::Tag(tag, Box::new(Value::Bytes(bytes))));
        let too_low = refusal(&bignum(3, [vec![0x80], vec![0; 15]].concat())).unwrap();
        assert!(matches!(
            too_low,
            Error::ValueRefused {
                reason: Refusal::BignumOutOfRange { .. },
                ..
            }
        ));
        for fits in [
            bignum(3, [vec![0x7f], vec![0xff; 15]].concat()), // i128::MIN
            bignum(3, vec![0xff; 15]),
            bignum(2, vec![0xff; 16]), // u128::MAX
            bignum(3, vec![0x80; 17]), // not a bignum to decode: a tag over bytes
        ] {
            assert!(refusal(&fits).is_none());
        }
        // A bignum costs no level of nesting; under 252 levels it still fits.
        let deep = (0..FIELD_BUDGET)
            .fold(Value::Tag(3, Box::new(Value::Bytes(vec![1]))), |v, _| {
                Value::Array(vec![v])
            });
        assert!(refusal(&one_field(deep)).is_none());
    }

    #[test]
    fn unknown_version_is_rejected() {
        let mut bytes = Vec::new();
        ciborium::into_writer(&(9u8, 0i64, 0u32, Rows::new()), &mut bytes).unwrap();
        assert!(decode(&bytes).unwrap_err().contains("version 9"));
    }
}
