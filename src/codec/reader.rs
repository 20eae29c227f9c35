//! Reads CBOR items off a byte slice: heads, strings, integers.
//!
//! What is accepted is exactly what ciborium's decoder accepts, which is a little more than
//! RFC 8949 allows: a simple value in its two-byte form (`f8 14` is `false`), and
//! indefinite-length strings nested inside one another. Every read is bounds-checked; nothing
//! here panics or allocates more than the input could fill.

use std::fmt;

use super::float::widen_f16;
use super::wire::{ARRAY, BREAK, BYTES, MAP, NEGATIVE, TAG, TEXT, UNSIGNED};

/// Why, and at which byte offset, the input is not a value ciborium would accept.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Malformed {
    pub(super) at: usize,
    pub(super) what: &'static str,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed CBOR at byte {}: {}", self.at, self.what)
    }
}

/// The head of one CBOR item: its major type and argument. `None` lengths are indefinite.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Head {
    Unsigned(u64),
    /// Stands for -1 - n.
    Negative(u64),
    Bytes(Option<u64>),
    Text(Option<u64>),
    Array(Option<u64>),
    Map(Option<u64>),
    Tag(u64),
    Simple(u8),
    Float(f64),
    Break,
}

/// The tag of a positive bignum: a byte string holding the big-endian magnitude.
pub(super) const BIGNUM: u64 = 2;
/// The tag of a negative bignum -1 - n, its byte string holding n.
pub(super) const NEGATIVE_BIGNUM: u64 = 3;

/// A cursor over the input.
pub(super) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    /// An error at the current position.
    pub(super) fn malformed(&self, what: &'static str) -> Malformed {
        Malformed { at: self.pos, what }
    }

    pub(super) fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// Where the next item starts; [`Reader::rewind`] goes back to it.
    pub(super) fn mark(&self) -> usize {
        self.pos
    }

    pub(super) fn rewind(&mut self, mark: usize) {
        self.pos = mark;
    }

    pub(super) fn head(&mut self) -> Result<Head, Malformed> {
        let initial = self.byte()?;
        let info = initial & 0x1f;
        let arg = match info {
            0..=23 => Some(u64::from(info)),
            24 => Some(u64::from(self.byte()?)),
            25 => Some(u64::from(u16::from_be_bytes(self.fixed()?))),
            26 => Some(u64::from(u32::from_be_bytes(self.fixed()?))),
            27 => Some(u64::from_be_bytes(self.fixed()?)),
            31 => None,
            _ => return Err(self.malformed("reserved additional information (28..=30)")),
        };
        let definite = |arg: Option<u64>| {
            arg.ok_or_else(|| self.malformed("indefinite length where none is allowed"))
        };
        Ok(match initial >> 5 {
            UNSIGNED => Head::Unsigned(definite(arg)?),
            NEGATIVE => Head::Negative(definite(arg)?),
            BYTES => Head::Bytes(arg),
            TEXT => Head::Text(arg),
            ARRAY => Head::Array(arg),
            MAP => Head::Map(arg),
            TAG => Head::Tag(definite(arg)?),
            _ => match (info, arg) {
                (_, None) => Head::Break,
                (25, Some(bits)) => Head::Float(widen_f16(bits as u16)),
                (26, Some(bits)) => Head::Float(f64::from(f32::from_bits(bits as u32))),
                (27, Some(bits)) => Head::Float(f64::from_bits(bits)),
                (_, Some(simple)) => Head::Simple(simple as u8),
            },
        })
    }

    /// The first head that is not a tag. ciborium ignores tags wherever it expects a Rust
    /// string, map or sequence rather than a `Value`.
    pub(super) fn untagged_head(&mut self) -> Result<Head, Malformed> {
        loop {
            match self.head()? {
                Head::Tag(_) => continue,
                head => return Ok(head),
            }
        }
    }

    /// Whether a container has another item, given its items still to come (`None` for
    /// indefinite length, which ends at a break, consumed here).
    pub(super) fn has_next(&mut self, left: &mut Option<u64>) -> Result<bool, Malformed> {
        match left {
            Some(0) => Ok(false),
            Some(n) => {
                *n -= 1;
                Ok(true)
            }
            None if self.peek()? == BREAK => {
                self.pos += 1;
                Ok(false)
            }
            None => Ok(true),
        }
    }

    /// The byte string after a [`Head::Bytes`] with this length.
    pub(super) fn byte_string(&mut self, len: Option<u64>) -> Result<Vec<u8>, Malformed> {
        match len {
            Some(len) => Ok(self.take(len)?.to_vec()),
            None => {
                let mut bytes = Vec::new();
                self.chunks(BYTES, |chunk| {
                    bytes.extend_from_slice(chunk);
                    Ok(())
                })?;
                Ok(bytes)
            }
        }
    }

    /// The text after a [`Head::Text`] with this length. Each chunk of an indefinite-length
    /// string must be valid UTF-8 by itself: a character may not straddle two chunks.
    pub(super) fn text_string(&mut self, len: Option<u64>) -> Result<String, Malformed> {
        let at = self.pos;
        let utf8 = |bytes| {
            std::str::from_utf8(bytes).map_err(|_| Malformed {
                at,
                what: "text is not UTF-8",
            })
        };
        match len {
            Some(len) => Ok(utf8(self.take(len)?)?.to_owned()),
            None => {
                let mut text = String::new();
                self.chunks(TEXT, |chunk| {
                    text.push_str(utf8(chunk)?);
                    Ok(())
                })?;
                Ok(text)
            }
        }
    }

    /// A Rust integer as ciborium reads one: tags are skipped, except that tags 2 and 3 make
    /// a bignum of the byte string that follows. Returns (is negative, n) for n or -1 - n.
    pub(super) fn integer(&mut self) -> Result<(bool, u128), Malformed> {
        let negative = loop {
            match self.head()? {
                Head::Unsigned(n) => return Ok((false, n.into())),
                Head::Negative(n) => return Ok((true, n.into())),
                Head::Tag(BIGNUM) => break false,
                Head::Tag(NEGATIVE_BIGNUM) => break true,
                Head::Tag(_) => continue,
                _ => return Err(self.malformed("expected an integer")),
            }
        };
        let Head::Bytes(len) = self.head()? else {
            return Err(self.malformed("a bignum tag not followed by a byte string"));
        };
        let mut magnitude = Magnitude::default();
        let too_large = self.malformed("bignum wider than 128 bits");
        match len {
            Some(len) => magnitude.extend(self.take(len)?).ok_or(too_large)?,
            None => self.chunks(BYTES, |chunk| magnitude.extend(chunk).ok_or(too_large))?,
        }
        Ok((negative, magnitude.value))
    }

    /// The magnitude of a bignum whose byte string has a definite length of at most 16.
    pub(super) fn short_bignum(&mut self, len: u64) -> Result<u128, Malformed> {
        let mut magnitude = Magnitude::default();
        let too_large = self.malformed("bignum wider than 128 bits");
        magnitude.extend(self.take(len)?).ok_or(too_large)?;
        Ok(magnitude.value)
    }

    /// Feeds each chunk of an indefinite-length string of major type `major` to `each`, up to
    /// its break. Like ciborium, a chunk may itself be indefinite; a counter, not recursion,
    /// tracks that nesting, so no input can exhaust the stack.
    fn chunks(
        &mut self,
        major: u8,
        mut each: impl FnMut(&'a [u8]) -> Result<(), Malformed>,
    ) -> Result<(), Malformed> {
        let mut open = 1u64;
        while open > 0 {
            match (major, self.head()?) {
                (_, Head::Break) => open -= 1,
                (BYTES, Head::Bytes(Some(len))) | (TEXT, Head::Text(Some(len))) => {
                    each(self.take(len)?)?
                }
                (BYTES, Head::Bytes(None)) | (TEXT, Head::Text(None)) => open += 1,
                _ => return Err(self.malformed("a chunk of another type in an indefinite string")),
            }
        }
        Ok(())
    }

    fn take(&mut self, len: u64) -> Result<&'a [u8], Malformed> {
        match usize::try_from(len) {
            Ok(len) if len <= self.remaining() => {
                let taken = &self.bytes[self.pos..self.pos + len];
                self.pos += len;
                Ok(taken)
            }
            _ => Err(self.malformed("string runs past the end")),
        }
    }

    fn peek(&self) -> Result<u8, Malformed> {
        (self.bytes.get(self.pos).copied()).ok_or_else(|| self.malformed("unexpected end of input"))
    }

    fn byte(&mut self) -> Result<u8, Malformed> {
        let byte = self.peek()?;
        self.pos += 1;
        Ok(byte)
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        let bytes = self.take(N as u64)?;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }
}

/// A bignum's magnitude, fed its big-endian bytes. As in ciborium, leading zeros do not count
/// toward the 16-byte limit.
#[derive(Default)]
struct Magnitude {
    value: u128,
    digits: u8,
}

impl Magnitude {
    /// `None` once the magnitude needs more than 16 bytes.
    fn extend(&mut self, bytes: &[u8]) -> Option<()> {
        for &byte in bytes {
            if self.digits == 0 && byte == 0 {
                continue;
            }
            if self.digits == 16 {
                return None;
            }
            self.value = self.value << 8 | u128::from(byte);
            self.digits += 1;
        }
        Some(())
    }
}
