//! Integers and floats read out of a [`Value`], range-checked for the Rust type asked for.

use crate::rows::Value;

/// The CBOR tags of a positive and a negative bignum (RFC 8949 §3.4.3).
const BIGNUM: u64 = 2;
const NEGATIVE_BIGNUM: u64 = 3;

/// An integer as stored: a plain `Integer` (−2⁶⁴ ..= 2⁶⁴−1) or a bignum.
#[derive(Clone, Copy)]
pub(super) enum Int {
    Signed(i128),
    /// Above `i128::MAX`.
    Unsigned(u128),
    /// Wider than 128 bits, or below `i128::MIN`: no Rust integer holds it.
    Huge,
}

impl Int {
    /// The integer `value` holds, if it holds one.
    #[inline]
    pub(super) fn of(value: &Value) -> Option<Int> {
        match value {
            Value::Integer(n) => Some(Int::Signed(i128::from(*n))),
            Value::Tag(tag @ (BIGNUM | NEGATIVE_BIGNUM), inner) => match &**inner {
                Value::Bytes(bytes) => Some(bignum(*tag == NEGATIVE_BIGNUM, bytes)),
                _ => None,
            },
            _ => None,
        }
    }

    /// The integer as a `T`, if `T` holds it.
    pub(super) fn to<T: TryFrom<i128> + TryFrom<u128>>(self) -> Option<T> {
        match self {
            Int::Signed(n) => T::try_from(n).ok(),
            Int::Unsigned(n) => T::try_from(n).ok(),
            Int::Huge => None,
        }
    }
}

/// A bignum of big-endian magnitude `bytes`: `n`, or `-1 - n` when `negative`.
fn bignum(negative: bool, bytes: &[u8]) -> Int {
    let significant = bytes.iter().skip_while(|byte| **byte == 0).count();
    if significant > 16 {
        return Int::Huge;
    }
    let magnitude = bytes[bytes.len() - significant..]
        .iter()
        .fold(0u128, |n, byte| (n << 8) | u128::from(*byte));
    match (negative, i128::try_from(magnitude)) {
        (false, Ok(n)) => Int::Signed(n),
        (false, Err(_)) => Int::Unsigned(magnitude),
        (true, Ok(n)) => Int::Signed(-1 - n),
        (true, Err(_)) => Int::Huge,
    }
}

/// `int` as a float with `mantissa_bits` bits of precision (53 for `f64`, 24 for `f32`), if
/// the float holds it exactly: a column of whole numbers reads into a float field, but never
/// rounded.
pub(super) fn exact_float(int: Int, mantissa_bits: u32) -> Option<f64> {
    match int {
        Int::Signed(n) if n.unsigned_abs() <= 1u128 << mantissa_bits => Some(n as f64),
        _ => None,
    }
}
