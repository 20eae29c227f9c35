//! Half-precision floats, the one number format Rust has no conversion for.
//!
//! ciborium writes a float in the shortest of f16, f32 and f64 that gives back the very same
//! `f64` bits, and widens every float it reads to `f64`. Its f16 conversions (the `half` crate)
//! always quiet a NaN: widening sets the top mantissa bit and shifts the ten payload bits to the
//! top of the `f64` mantissa. These two functions reproduce exactly that, bit for bit; the tests
//! check every one of the 65,536 half-precision patterns against ciborium.

const F64_MANTISSA_BITS: u32 = 52;
const F64_EXP_MASK: u64 = 0x7ff;
const F64_EXP_BIAS: i64 = 1023;
/// The bits an f16 mantissa cannot hold: the low 42 of the 52 `f64` mantissa bits.
const LOW_42: u64 = (1 << 42) - 1;
const F64_QUIET: u64 = 1 << 51;
const F16_EXP_BIAS: i64 = 15;

/// A float in the width ciborium writes it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Narrowest {
    Half(u16),
    Single(f32),
    Double(f64),
}

impl Narrowest {
    /// The shortest of f16, f32 and f64 that keeps every bit of `x`.
    pub(super) fn of(x: f64) -> Self {
        if let Some(half) = narrow_to_f16(x) {
            return Narrowest::Half(half);
        }
        // The same casts ciborium makes, so a NaN payload is kept or lost exactly as it is there.
        let single = x as f32;
        if f64::from(single).to_bits() == x.to_bits() {
            Narrowest::Single(single)
        } else {
            Narrowest::Double(x)
        }
    }
}

/// The f16 bits that widen back to exactly `x`, if there are any.
fn narrow_to_f16(x: f64) -> Option<u16> {
    let bits = x.to_bits();
    let sign = ((bits >> 63) as u16) << 15;
    let exp = ((bits >> F64_MANTISSA_BITS) & F64_EXP_MASK) as i64;
    let mantissa = bits & ((1 << F64_MANTISSA_BITS) - 1);
    if exp == F64_EXP_MASK as i64 {
        // Infinity, or a NaN that is already quiet and carries only the payload bits f16 keeps.
        let keeps = mantissa == 0 || (mantissa & F64_QUIET != 0 && mantissa & LOW_42 == 0);
        return keeps.then_some(sign | 0x7c00 | (mantissa >> 42) as u16);
    }
    if exp == 0 {
        // ±0 fits; an f64 subnormal is far below the smallest f16.
        return (mantissa == 0).then_some(sign);
    }
    let unbiased = exp - F64_EXP_BIAS;
    match unbiased {
        -14..=15 => (mantissa & LOW_42 == 0)
            .then(|| sign | (((unbiased + F16_EXP_BIAS) as u16) << 10) | (mantissa >> 42) as u16),
        -24..=-15 => {
            // An f16 subnormal is m × 2^-24 with m < 1024: the whole significand, implicit bit
            // included, must survive the shift down to that scale.
            let significand = mantissa | (1 << F64_MANTISSA_BITS);
            let shift = (28 - unbiased) as u32;
            (significand & ((1 << shift) - 1) == 0).then(|| sign | (significand >> shift) as u16)
        }
        _ => None,
    }
}

/// The `f64` that ciborium gives for the f16 bits `h`.
pub(super) fn widen_f16(h: u16) -> f64 {
    let sign = u64::from(h >> 15) << 63;
    let exp = (h >> 10) & 0x1f;
    let mantissa = u64::from(h & 0x3ff);
    let magnitude = match exp {
        0x1f if mantissa == 0 => f64::INFINITY,
        0x1f => f64::from_bits(0x7ff0 << 48 | F64_QUIET | mantissa << 42),
        // Subnormal: m × 2^-24, exact in f64.
        0 => mantissa as f64 * (1.0 / 16_777_216.0),
        _ => {
            let biased = exp as u64 + (F64_EXP_BIAS - F16_EXP_BIAS) as u64;
            f64::from_bits(biased << F64_MANTISSA_BITS | mantissa << 42)
        }
    };
    f64::from_bits(magnitude.to_bits() | sign)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What ciborium makes of a CBOR half-precision float.
    fn ciborium_widen(h: u16) -> f64 {
        let [hi, lo] = h.to_be_bytes();
        match ciborium::from_reader(&[0xf9, hi, lo][..]).unwrap() {
            ciborium::Value::Float(x) => x,
            other => panic!("f16 {h:#06x} read as {other:?}"),
        }
    }

    /// What ciborium writes for `x`: 0xf9, 0xfa or 0xfb for f16, f32, f64, then the bits.
    fn ciborium_bytes(x: f64) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(&ciborium::Value::Float(x), &mut out).unwrap();
        out
    }

    #[test]
    fn widening_matches_ciborium_for_every_f16() {
        for h in 0..=u16::MAX {
            assert_eq!(
                widen_f16(h).to_bits(),
                ciborium_widen(h).to_bits(),
                "{h:#06x}"
            );
        }
    }

    #[test]
    fn narrowing_writes_the_f16_ciborium_writes() {
        for h in 0..=u16::MAX {
            let x = ciborium_widen(h);
            let bytes = ciborium_bytes(x);
            let expected = (bytes[0] == 0xf9).then(|| u16::from_be_bytes([bytes[1], bytes[2]]));
            assert_eq!(narrow_to_f16(x), expected, "{h:#06x}");
        }
    }

    #[test]
    fn narrowing_refuses_what_f16_cannot_hold() {
        let signalling_nan = f64::from_bits(0x7ff0_0400_0000_0000);
        let nan_with_low_payload = f64::from_bits(0x7ff8_0000_0000_0001);
        for x in [
            0.1,
            65520.0,
            1e-8,
            f64::MIN_POSITIVE,
            2f64.powi(-25),
            1.0 + 2f64.powi(-11),
            signalling_nan,
            nan_with_low_payload,
        ] {
            assert_eq!(narrow_to_f16(x), None, "{x:e} ({:#018x})", x.to_bits());
            assert_ne!(ciborium_bytes(x)[0], 0xf9, "{x:e}");
        }
    }
}
