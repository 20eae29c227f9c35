//! Reads the stored form `[version, seconds, nanoseconds, rows]`, accepting exactly what
//! `ciborium::from_reader::<(u8, i64, u32, Rows)>` accepts and building the same values.
//!
//! Where ciborium is lenient, so is this, on purpose: the stored bytes are defined by it.
//! - It reads the four elements and stops: a longer array, a missing break, or bytes after
//!   the value are never looked at.
//! - Tags in front of the array, the maps, the keys and the three integers are skipped, and
//!   those integers may be bignums (tags 2 and 3).
//! - Inside a field value, tag 2 or 3 on a definite byte string of at most 16 bytes is read as
//!   an integer: `Value::Integer` when it fits, else a bignum `Tag` with leading zeros dropped.
//! - Nesting is bounded by ciborium's recursion limit of 256, which the outer array and the two
//!   maps already use three of. Each array, map and (non-bignum) tag in a field value costs one.
//! - The writer refuses a value that breaks either of these two limits (nesting, and a negative
//!   bignum below i128::MIN), by the rules in `limits`.
//! - A repeated row id or field name keeps its first position and takes its last value, as
//!   `IndexMap::insert` does.

use super::limits::RECURSION_LIMIT;
use super::reader::{BIGNUM, Head, Malformed, NEGATIVE_BIGNUM, Reader};
use crate::rows::{Record, Rows, Value};

/// The four elements of the stored array, not yet checked against each other.
pub(super) struct Stored {
    pub(super) version: u8,
    pub(super) secs: i64,
    pub(super) nanos: u32,
    pub(super) rows: Rows,
}

impl Reader<'_> {
    pub(super) fn stored(&mut self) -> Result<Stored, Malformed> {
        let Head::Array(mut left) = self.untagged_head()? else {
            return Err(self.malformed("expected the stored array"));
        };
        let budget = self.nested(RECURSION_LIMIT)?;
        let mut element = |reader: &mut Self| match reader.has_next(&mut left)? {
            true => Ok(()),
            false => Err(reader.malformed("the stored array has fewer than 4 elements")),
        };
        element(self)?;
        let version = self.unsigned(u8::MAX.into())? as u8;
        element(self)?;
        let secs = self.signed()?;
        element(self)?;
        let nanos = self.unsigned(u32::MAX.into())? as u32;
        element(self)?;
        let rows = self.rows(budget)?;
        Ok(Stored {
            version,
            secs,
            nanos,
            rows,
        })
    }

    fn rows(&mut self, budget: usize) -> Result<Rows, Malformed> {
        let mut left = self.untagged_map()?;
        let budget = self.nested(budget)?;
        let mut rows = Rows::with_capacity(self.capacity(left, 2)?);
        while self.has_next(&mut left)? {
            let id = self.key()?;
            rows.insert(id, self.record(budget)?);
        }
        Ok(rows)
    }

    fn record(&mut self, budget: usize) -> Result<Record, Malformed> {
        let mut left = self.untagged_map()?;
        let budget = self.nested(budget)?;
        let mut record = Record::with_capacity(self.capacity(left, 2)?);
        while self.has_next(&mut left)? {
            let field = self.key()?;
            record.insert(field, self.value(budget)?);
        }
        Ok(record)
    }

    fn value(&mut self, budget: usize) -> Result<Value, Malformed> {
        Ok(match self.head()? {
            Head::Unsigned(n) => Value::Integer(n.into()),
            Head::Negative(n) => Value::from(-1 - i128::from(n)),
            Head::Bytes(len) => Value::Bytes(self.byte_string(len)?),
            Head::Text(len) => Value::Text(self.text_string(len)?),
            Head::Array(len) => self.array(len, self.nested(budget)?)?,
            Head::Map(len) => self.map(len, self.nested(budget)?)?,
            Head::Tag(tag) => self.tagged(tag, budget)?,
            Head::Simple(20) => Value::Bool(false),
            Head::Simple(21) => Value::Bool(true),
            // 22 is null, 23 undefined; ciborium reads both as `Null`.
            Head::Simple(22 | 23) => Value::Null,
            Head::Simple(_) => return Err(self.malformed("unknown simple value")),
            Head::Float(x) => Value::Float(x),
            Head::Break => return Err(self.malformed("unexpected break")),
        })
    }

    fn array(&mut self, mut left: Option<u64>, budget: usize) -> Result<Value, Malformed> {
        let mut items = Vec::with_capacity(self.capacity(left, 1)?);
        while self.has_next(&mut left)? {
            items.push(self.value(budget)?);
        }
        Ok(Value::Array(items))
    }

    fn map(&mut self, mut left: Option<u64>, budget: usize) -> Result<Value, Malformed> {
        let mut entries = Vec::with_capacity(self.capacity(left, 2)?);
        while self.has_next(&mut left)? {
            let key = self.value(budget)?;
            entries.push((key, self.value(budget)?));
        }
        Ok(Value::Map(entries))
    }

    fn tagged(&mut self, tag: u64, budget: usize) -> Result<Value, Malformed> {
        if tag == BIGNUM || tag == NEGATIVE_BIGNUM {
            let content = self.mark();
            match self.head()? {
                Head::Bytes(Some(len)) if len <= 16 => {
                    let magnitude = self.short_bignum(len)?;
                    return self.bignum(tag == NEGATIVE_BIGNUM, magnitude);
                }
                _ => self.rewind(content),
            }
        }
        let inner = self.value(self.nested(budget)?)?;
        Ok(Value::Tag(tag, Box::new(inner)))
    }

    /// The `Value` ciborium builds from a bignum (`From<u128>` or `From<i128>`).
    fn bignum(&self, negative: bool, magnitude: u128) -> Result<Value, Malformed> {
        if !negative {
            return Ok(Value::from(magnitude));
        }
        match i128::try_from(magnitude) {
            Ok(n) => Ok(Value::from(!n)),
            Err(_) => Err(self.malformed("negative bignum below i128::MIN")),
        }
    }

    /// The length of a map (a row, the rows) that ciborium reads as a Rust map.
    fn untagged_map(&mut self) -> Result<Option<u64>, Malformed> {
        match self.untagged_head()? {
            Head::Map(len) => Ok(len),
            _ => Err(self.malformed("expected a map")),
        }
    }

    /// A row id or field name.
    fn key(&mut self) -> Result<String, Malformed> {
        match self.untagged_head()? {
            Head::Text(len) => self.text_string(len),
            _ => Err(self.malformed("expected a text key")),
        }
    }

    fn unsigned(&mut self, max: u64) -> Result<u64, Malformed> {
        match self.integer()? {
            (false, n) if n <= u128::from(max) => Ok(n as u64),
            _ => Err(self.malformed("integer out of range")),
        }
    }

    fn signed(&mut self) -> Result<i64, Malformed> {
        let (negative, n) = self.integer()?;
        match i64::try_from(n) {
            Ok(n) if negative => Ok(!n),
            Ok(n) => Ok(n),
            Err(_) => Err(self.malformed("integer out of range")),
        }
    }

    /// The budget left inside one more level of nesting.
    fn nested(&self, budget: usize) -> Result<usize, Malformed> {
        (budget.checked_sub(1))
            .ok_or_else(|| self.malformed("nested deeper than ciborium's limit of 256"))
    }

    /// How many items to make room for: a definite length, once checked against the input
    /// left (each item takes at least `min_bytes`), so a forged length cannot reserve memory.
    fn capacity(&self, left: Option<u64>, min_bytes: usize) -> Result<usize, Malformed> {
        let room = self.remaining() / min_bytes;
        match left {
            None => Ok(0),
            Some(n) if n <= room as u64 => Ok(n as usize),
            Some(_) => Err(self.malformed("length runs past the end")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{decode, encode, reference};
    use crate::rows::{CachedRows, Value};

    /// Decodes with both codecs, asserts they agree, and returns this codec's answer.
    fn agreed(bytes: &[u8]) -> Result<CachedRows, String> {
        let ours = decode(bytes);
        let theirs = reference::decode(bytes);
        match (&ours, &theirs) {
            // Compared as bytes, so that row order and NaN payloads count.
            (Ok(a), Ok(b)) => assert_eq!(encode(a), encode(b), "{bytes:02x?}"),
            (Err(_), Err(_)) => {}
            _ => panic!("{bytes:02x?}: ours {ours:?}, ciborium {theirs:?}"),
        }
        ours
    }

    /// The stored form holding one row "r" with one field "f" whose value is `field`.
    fn with_field(field: &[u8]) -> Vec<u8> {
        [
            &[0x84, 0x01, 0x00, 0x00, 0xa1, 0x61, b'r', 0xa1, 0x61, b'f'],
            field,
        ]
        .concat()
    }

    /// The field value that `field` decodes to, in the stored form.
    fn field(field: &[u8]) -> Value {
        let rows = agreed(&with_field(field)).unwrap().rows;
        rows["r"]["f"].clone()
    }

    fn nested_arrays(depth: usize) -> Vec<u8> {
        [vec![0x81; depth], vec![0x00]].concat()
    }

    #[test]
    fn reads_only_the_four_elements_like_ciborium() {
        for bytes in [
            &[0x84, 0x01, 0x00, 0x00, 0xa0, 0xff, 0x00][..], // bytes after the value
            &[0x85, 0x01, 0x00, 0x00, 0xa0],                 // a fifth element never written
            &[0x9f, 0x01, 0x00, 0x00, 0xa0],                 // no break
        ] {
            assert!(agreed(bytes).unwrap().rows.is_empty());
        }
        assert!(agreed(&[0x83, 0x01, 0x00, 0x00]).is_err());
        assert!(agreed(&[0x9f, 0x01, 0x00, 0x00, 0xff]).is_err());
    }

    #[test]
    fn skips_tags_and_reads_bignums_where_ciborium_expects_rust_types() {
        let tagged = [
            0xc6, 0x84, // tag 6 on the array
            0xc2, 0x42, 0x00, 0x01, // version 1 as a bignum with a leading zero
            0xc3, 0x41, 0x04, // seconds -5 as a negative bignum
            0xd9, 0x01, 0x00, 0x18, 0x07, // nanoseconds 7 under tag 256
            0xc7, 0xa1, 0xc8, 0x61, b'r', 0xc9, 0xa0, // tags on the rows, an id, a record
        ];
        let value = agreed(&tagged).unwrap();
        assert_eq!(value.rows["r"].len(), 0);
        assert!(agreed(&[0x84, 0xc2, 0x01, 0x00, 0x00, 0xa0]).is_err()); // bignum of an int
    }

    #[test]
    fn reads_two_byte_simple_values_and_undefined() {
        assert_eq!(field(&[0xf8, 0x14]), Value::Bool(false));
        assert_eq!(field(&[0xf8, 0x15]), Value::Bool(true));
        assert_eq!(field(&[0xf8, 0x17]), Value::Null);
        assert_eq!(field(&[0xf7]), Value::Null);
        assert!(agreed(&with_field(&[0xf8, 0x20])).is_err());
        assert!(agreed(&with_field(&[0xf0])).is_err());
    }

    #[test]
    fn field_bignums_become_what_ciborium_makes_of_them() {
        assert_eq!(field(&[0xc2, 0x43, 0x00, 0x01, 0x02]), Value::from(0x102));
        assert_eq!(field(&[0xc3, 0x40]), Value::from(-1));
        let above_u64 = [&[0xc2, 0x50, 0x00][..], &[0xff; 15]].concat();
        assert_eq!(field(&above_u64), Value::from(u128::MAX >> 8));
        let below_i128 = [&[0xc3, 0x50, 0x80][..], &[0x00; 15]].concat();
        assert!(agreed(&with_field(&below_i128)).is_err());
        // Not a short definite byte string: kept as a tag, the bytes as written.
        let long = [&[0xc2, 0x51][..], &[0x00; 17]].concat();
        assert_eq!(
            field(&long),
            Value::Tag(2, Box::new(Value::Bytes(vec![0; 17])))
        );
        assert_eq!(
            field(&[0xc2, 0x5f, 0x41, 0x00, 0xff]),
            Value::Tag(2, Box::new(Value::Bytes(vec![0])))
        );
    }

    #[test]
    fn joins_nested_indefinite_strings_chunk_by_chunk() {
        let bytes = [0x5f, 0x41, 0x01, 0x5f, 0x41, 0x02, 0xff, 0x40, 0xff];
        assert_eq!(field(&bytes), Value::Bytes(vec![1, 2]));
        assert_eq!(
            field(&[0x7f, 0x62, 0xc3, 0xa9, 0x61, b'!', 0xff]),
            Value::Text("é!".into())
        );
        // A character split across two chunks is invalid in each.
        assert!(agreed(&with_field(&[0x7f, 0x61, 0xc3, 0x61, 0xa9, 0xff])).is_err());
        // A byte chunk inside a text string.
        assert!(agreed(&with_field(&[0x7f, 0x41, b'a', 0xff])).is_err());
    }

    #[test]
    fn nesting_stops_at_ciborium_s_limit() {
        // The outer array and the two maps use 3 of ciborium's 256 levels.
        assert!(agreed(&with_field(&nested_arrays(253))).is_ok());
        assert!(agreed(&with_field(&nested_arrays(254))).is_err());
        let tags = [vec![0xc6; 253], vec![0x00]].concat();
        assert!(agreed(&with_field(&tags)).is_ok());
        assert!(agreed(&with_field(&[vec![0xc6; 254], vec![0x00]].concat())).is_err());
        // Far deeper than the limit is an error, not a stack overflow.
        assert!(agreed(&with_field(&nested_arrays(1_000_000))).is_err());
    }

    #[test]
    fn repeated_keys_keep_the_first_place_and_the_last_value() {
        let bytes = [
            0x84, 0x01, 0x00, 0x00, 0xa3, //
            0x61, b'a', 0xa2, 0x61, b'x', 0x01, 0x61, b'x', 0x02, //
            0x61, b'b', 0xa0, //
            0x61, b'a', 0xa1, 0x61, b'y', 0x03,
        ];
        let rows = agreed(&bytes).unwrap().rows;
        assert_eq!(rows.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(rows["a"]["y"], Value::from(3));
    }

    #[test]
    fn rejects_what_ciborium_rejects() {
        for field in [
            &[0x1c][..],         // reserved additional information
            &[0x1f],             // indefinite integer
            &[0xff],             // a break where a value belongs
            &[0x62, 0xff, 0xfe], // invalid UTF-8
            &[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // length past the end
            &[0x9b, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00], // 2^32 items in 0 bytes
            &[0xc2],             // a tag with nothing after it
        ] {
            assert!(agreed(&with_field(field)).is_err(), "{field:02x?}");
        }
        for bytes in [
            &[0x84, 0x01, 0x00, 0x1a, 0x3b, 0x9a, 0xca, 0x00, 0xa0][..], // 10^9 nanoseconds
            &[0x84, 0x19, 0x01, 0x01, 0x00, 0x00, 0xa0],                 // version 257
            &[0x84, 0x01, 0x3b, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x00, 0xa0],  // seconds below i64
            &[0x84, 0x01, 0x00, 0x00, 0xa1, 0x41, b'r', 0xa0],           // a byte string id
            &[0x44, 0x01, 0x00, 0x00, 0x00],                             // bytes, not an array
        ] {
            assert!(agreed(bytes).is_err(), "{bytes:02x?}");
        }
    }
}
