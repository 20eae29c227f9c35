//! Writes the stored form byte for byte as ciborium's serializer would.
//!
//! ciborium's choices, all reproduced here: every head (integer, length, tag) in its shortest
//! form; every string, array and map with a definite length; integers as major type 0 or 1
//! (a `Value::Integer` always fits 64 bits plus sign, so never a bignum); a float in the
//! shortest of f16, f32, f64 that keeps its exact bits; `Null` as 0xf6.
//!
//! Unlike ciborium, it refuses a field value the reader would not read back (`limits`), and
//! does not descend past the limit, so no value, however deep, can exhaust the stack.
//!
//! Two ways to count the bytes without writing them: [`Writer`] over a [`Count`], for any
//! value, and [`flat_stored_len`], for rows whose field values are all scalars.

use super::EncodeError;
use super::float::Narrowest;
use super::limits::{self, FIELD_BUDGET, Limit};
use super::wire::{
    ARRAY, BYTES, F16, F32, F64, FALSE, MAP, NEGATIVE, NULL, TAG, TEXT, TRUE, UNSIGNED,
};
use crate::rows::{Record, Rows, Value};

/// Where a [`Writer`]'s bytes go: a buffer, or a count of them. Counting first lets a put be
/// measured (and refused) in the caller's task while the actor writes the bytes later
/// (`actor::command::PutValue`).
pub(super) trait Sink {
    fn push(&mut self, byte: u8);
    fn extend_from_slice(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    #[inline(always)]
    fn push(&mut self, byte: u8) {
        Vec::push(self, byte);
    }

    #[inline(always)]
    fn extend_from_slice(&mut self, bytes: &[u8]) {
        Vec::extend_from_slice(self, bytes);
    }
}

impl<S: Sink + ?Sized> Sink for &mut S {
    #[inline(always)]
    fn push(&mut self, byte: u8) {
        (**self).push(byte);
    }

    #[inline(always)]
    fn extend_from_slice(&mut self, bytes: &[u8]) {
        (**self).extend_from_slice(bytes);
    }
}

/// Counts the bytes a [`Writer`] would write.
#[derive(Default)]
pub(super) struct Count(pub(super) usize);

impl Sink for Count {
    #[inline(always)]
    fn push(&mut self, _byte: u8) {
        self.0 += 1;
    }

    #[inline(always)]
    fn extend_from_slice(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }
}

/// Appends CBOR items to a [`Sink`].
pub(super) struct Writer<O: Sink> {
    out: O,
    /// Why a value could not be written, if one could not.
    failed: Option<EncodeError>,
    /// Whether some field value breaks a limit: the output is then unusable, and `stored`
    /// finds out which field.
    broken: bool,
}

impl<O: Sink> Writer<O> {
    pub(super) fn new(out: O) -> Self {
        Writer {
            out,
            failed: None,
            broken: false,
        }
    }

    /// The bytes written (or their count), or why some value could not be.
    pub(super) fn finish(self) -> Result<O, EncodeError> {
        match self.failed {
            None => Ok(self.out),
            Some(reason) => Err(reason),
        }
    }

    /// The stored form: `[version, seconds, nanoseconds, rows]`.
    pub(super) fn stored(&mut self, version: u8, secs: i64, nanos: u32, rows: &Rows) {
        self.head(ARRAY, 4);
        self.head(UNSIGNED, version.into());
        self.signed(secs.into());
        self.head(UNSIGNED, nanos.into());
        self.head(MAP, rows.len() as u64);
        for (id, record) in rows {
            self.text(id);
            self.record(record);
        }
        if self.broken {
            // Rare: walk the rows again to say which field. (Keeping the field at hand while
            // writing measured a tenth slower on every encode.)
            self.failed = Some(match limits::check(rows) {
                Err((row, field, limit)) => EncodeError::refused(row, field, limit),
                Ok(()) => {
                    EncodeError::Unwritable("a field value breaks the reader's limits".into())
                }
            });
        }
    }

    fn record(&mut self, record: &Record) {
        self.head(MAP, record.len() as u64);
        for (field, value) in record {
            self.text(field);
            self.value(value, FIELD_BUDGET);
        }
    }

    /// A field value, or one within it; `budget` is the nesting left (see `limits`).
    fn value(&mut self, value: &Value, budget: usize) {
        match value {
            Value::Integer(n) => self.signed(i128::from(*n)),
            Value::Bytes(bytes) => {
                self.head(BYTES, bytes.len() as u64);
                self.out.extend_from_slice(bytes);
            }
            Value::Float(x) => self.float(*x),
            Value::Text(text) => self.text(text),
            Value::Bool(false) => self.out.push(FALSE),
            Value::Bool(true) => self.out.push(TRUE),
            Value::Null => self.out.push(NULL),
            Value::Tag(tag, inner) => {
                let Some(inside) = self.within(limits::tagged(*tag, inner, budget)) else {
                    return;
                };
                self.head(TAG, *tag);
                self.value(inner, inside);
            }
            Value::Array(items) => {
                let Some(inside) = self.within(limits::nested(budget)) else {
                    return;
                };
                self.head(ARRAY, items.len() as u64);
                items.iter().for_each(|item| self.value(item, inside));
            }
            Value::Map(entries) => {
                let Some(inside) = self.within(limits::nested(budget)) else {
                    return;
                };
                self.head(MAP, entries.len() as u64);
                for (key, value) in entries {
                    self.value(key, inside);
                    self.value(value, inside);
                }
            }
            other => self.delegate(other),
        }
    }

    /// The budget inside a container, or `None` (the output marked broken) if it breaks a
    /// limit: the writer then skips the container's contents.
    #[inline]
    fn within(&mut self, inside: Result<usize, Limit>) -> Option<usize> {
        match inside {
            Ok(inside) => Some(inside),
            Err(_) => {
                self.broken = true;
                None
            }
        }
    }

    /// `Value` is non-exhaustive: a kind added by a later ciborium is written by ciborium
    /// itself, which defines the format.
    #[cold]
    fn delegate(&mut self, value: &Value) {
        let mut out = Vec::new();
        match ciborium::into_writer(value, &mut out) {
            Ok(()) => self.out.extend_from_slice(&out),
            Err(e) => {
                self.failed
                    .get_or_insert_with(|| EncodeError::Unwritable(e.to_string()));
            }
        }
    }

    /// An integer in `-2^64 ..= 2^64 - 1`, the range of a `Value::Integer`.
    fn signed(&mut self, n: i128) {
        // CBOR stores a negative n as the unsigned -1 - n, which is !n in two's complement.
        match u64::try_from(n) {
            Ok(unsigned) => self.head(UNSIGNED, unsigned),
            Err(_) => self.head(NEGATIVE, !n as u64),
        }
    }

    // `text`, `fixed` and `head` are forced inline: left to itself the compiler kept `head` out
    // of line, and inlining the three measured about a fifth faster on a typical value.
    #[inline(always)]
    fn text(&mut self, text: &str) {
        self.head(TEXT, text.len() as u64);
        self.out.extend_from_slice(text.as_bytes());
    }

    fn float(&mut self, x: f64) {
        match Narrowest::of(x) {
            Narrowest::Half(half) => self.fixed(F16, half.to_be_bytes()),
            Narrowest::Single(single) => self.fixed(F32, single.to_be_bytes()),
            Narrowest::Double(double) => self.fixed(F64, double.to_be_bytes()),
        }
    }

    /// An initial byte followed by a fixed-width big-endian argument.
    #[inline(always)]
    fn fixed<const N: usize>(&mut self, initial: u8, arg: [u8; N]) {
        self.out.push(initial);
        self.out.extend_from_slice(&arg);
    }

    /// A major type with its argument in the fewest bytes: inline below 24, else 1, 2, 4 or 8
    /// bytes after the initial byte.
    #[inline(always)]
    fn head(&mut self, major: u8, arg: u64) {
        let major = major << 5;
        match arg {
            0..=23 => self.out.push(major | arg as u8),
            24..=0xff => self.fixed(major | 24, [arg as u8]),
            0x100..=0xffff => self.fixed(major | 25, (arg as u16).to_be_bytes()),
            0x1_0000..=0xffff_ffff => self.fixed(major | 26, (arg as u32).to_be_bytes()),
            _ => self.fixed(major | 27, arg.to_be_bytes()),
        }
    }
}

/// The bytes `Writer::stored` writes for `rows`, if every field value is a plain scalar: the
/// common case, counted in one tight pass. An array, a map, a tag or a kind this writer hands
/// to ciborium gives `None`, which sends the caller to the general walk: only it knows the
/// limits such values can break.
pub(super) fn flat_stored_len(version: u8, secs: i64, nanos: u32, rows: &Rows) -> Option<usize> {
    let mut len = head_len(4) + head_len(version.into()) + signed_len(secs.into());
    len += head_len(nanos.into()) + head_len(rows.len() as u64);
    for (id, record) in rows {
        len += text_len(id) + head_len(record.len() as u64);
        for (field, value) in record {
            len += text_len(field) + scalar_len(value)?;
        }
    }
    Some(len)
}

#[inline(always)]
fn text_len(text: &str) -> usize {
    head_len(text.len() as u64) + text.len()
}

#[inline(always)]
fn scalar_len(value: &Value) -> Option<usize> {
    Some(match value {
        Value::Text(text) => text_len(text),
        Value::Integer(n) => signed_len(i128::from(*n)),
        Value::Bytes(bytes) => head_len(bytes.len() as u64) + bytes.len(),
        Value::Float(x) => match Narrowest::of(*x) {
            Narrowest::Half(_) => 1 + 2,
            Narrowest::Single(_) => 1 + 4,
            Narrowest::Double(_) => 1 + 8,
        },
        Value::Bool(_) | Value::Null => 1,
        _ => return None,
    })
}

/// The bytes `Writer::signed` writes for `n`.
#[inline(always)]
fn signed_len(n: i128) -> usize {
    head_len(u64::try_from(n).unwrap_or(!n as u64))
}

/// The bytes of a head with argument `arg` (see `Writer::head`).
#[inline(always)]
fn head_len(arg: u64) -> usize {
    match arg {
        0..=23 => 1,
        24..=0xff => 2,
        0x100..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(value: &Value) -> Vec<u8> {
        let mut writer = Writer::new(Vec::new());
        writer.value(value, FIELD_BUDGET);
        let bytes = writer.finish().unwrap();
        let mut counter = Writer::new(Count::default());
        counter.value(value, FIELD_BUDGET);
        assert_eq!(
            counter.finish().unwrap().0,
            bytes.len(),
            "counted as written"
        );
        if let Some(len) = scalar_len(value) {
            assert_eq!(len, bytes.len(), "counted on the fast path as written");
        }
        bytes
    }

    fn ciborium(value: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(value, &mut out).unwrap();
        out
    }

    #[test]
    fn only_rows_of_scalars_take_the_fast_count() {
        let rows_with = |value: Value| -> Rows {
            let record: Record = [("f".to_owned(), value)].into_iter().collect();
            [("r".to_owned(), record)].into_iter().collect()
        };
        for scalar in [
            Value::Text("x".into()),
            Value::Bytes(vec![1]),
            Value::from(-7),
            Value::Float(0.5),
            Value::Bool(true),
            Value::Null,
        ] {
            let rows = rows_with(scalar.clone());
            // What `stored` writes for the same rows: the count must be its length.
            let mut writer = Writer::new(Vec::new());
            writer.stored(1, 0, 0, &rows);
            let written = writer.finish().unwrap().len();
            assert_eq!(flat_stored_len(1, 0, 0, &rows), Some(written), "{scalar:?}");
        }
        for inside in [
            Value::Array(vec![]),
            Value::Map(vec![]),
            Value::Tag(2, Box::new(Value::Bytes(vec![1]))),
        ] {
            // Containers and tags carry limits only the general walk checks.
            assert_eq!(flat_stored_len(1, 0, 0, &rows_with(inside)), None);
        }
    }

    #[test]
    fn heads_switch_width_exactly_where_ciborium_does() {
        for n in [
            0u64,
            23,
            24,
            255,
            256,
            65535,
            65536,
            0xffff_ffff,
            0x1_0000_0000,
            u64::MAX,
        ] {
            for value in [
                Value::from(n),
                Value::from(-1 - i128::from(n)),
                Value::Tag(n, Box::new(Value::Null)),
            ] {
                assert_eq!(encoded(&value), ciborium(&value), "{value:?}");
            }
        }
    }

    #[test]
    fn integer_range_edges_match_ciborium() {
        for n in [
            i128::from(i64::MIN),
            i128::from(i64::MIN) - 1,
            -(1i128 << 64),
            i128::from(u64::MAX),
        ] {
            let value = Value::from(n);
            assert_eq!(encoded(&value), ciborium(&value), "{n}");
        }
    }

    #[test]
    fn floats_pick_the_width_ciborium_picks() {
        for x in [
            0.0,
            -0.0,
            1.5,
            0.1,
            1e300,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            5e-324,
            1.0e-7,
            f64::from(0.1f32),
            f64::from(f32::MAX),
        ] {
            let value = Value::Float(x);
            assert_eq!(encoded(&value), ciborium(&value), "{x:e}");
        }
    }

    #[test]
    fn strings_and_simple_values_alone_match_ciborium() {
        for value in [Value::Bool(true), Value::Bool(false), Value::Null] {
            assert_eq!(encoded(&value), ciborium(&value), "{value:?}");
        }
        for len in [0, 23, 24, 255, 256, 65535, 65536] {
            for value in [
                Value::Text("a".repeat(len)),
                Value::Text("é".repeat(len / 2)),
                Value::Bytes(vec![7; len]),
            ] {
                assert_eq!(encoded(&value), ciborium(&value), "about {len} bytes");
            }
        }
    }

    #[test]
    fn containers_strings_and_simple_values_match_ciborium() {
        let value = Value::Array(vec![
            Value::Map(vec![(
                Value::Bytes(vec![1, 2]),
                Value::Text("é".repeat(20)),
            )]),
            Value::Bool(true),
            Value::Bool(false),
            Value::Null,
            Value::Array(vec![]),
            Value::Map(vec![]),
            Value::Bytes(vec![0; 300]),
        ]);
        assert_eq!(encoded(&value), ciborium(&value));
    }
}
