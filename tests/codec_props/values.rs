//! Strategies for `CachedRows` whose field values reach every corner of ciborium's `Value`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::collection::vec;
use proptest::prelude::*;
use vlive::{CachedRows, Record, Rows, Value};

/// Integers where CBOR heads change width, and the ends of `Value::Integer`'s range
/// (-2^64 ..= 2^64 - 1) and of i64.
const INTEGER_EDGES: &[i128] = &[
    0,
    23,
    24,
    255,
    256,
    65_535,
    65_536,
    0xffff_ffff,
    0x1_0000_0000,
    i64::MAX as i128,
    i64::MAX as i128 + 1,
    u64::MAX as i128,
    -1,
    -24,
    -25,
    -256,
    -257,
    -65_537,
    i64::MIN as i128,
    i64::MIN as i128 - 1,
    -(1 << 64),
];

/// Just outside `Value::Integer`'s range, where ciborium makes a bignum tag instead, and the ends
/// of i128 and u128.
const BIGNUM_EDGES: &[i128] = &[
    1 << 64,
    (1 << 64) + 1,
    -(1 << 64) - 1,
    -(1 << 64) - 2,
    i128::MAX,
    i128::MIN,
    i128::MIN + 1,
];

fn integer() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(|n| Value::from(-1 - i128::from(n))),
        prop::sample::select(INTEGER_EDGES).prop_map(Value::from),
    ]
}

/// `Value::from` an i128 or u128 beyond 64 bits: a tag 2 or 3 over the trimmed magnitude.
fn bignum() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(BIGNUM_EDGES).prop_map(Value::from),
        Just(Value::from(u128::MAX)),
        any::<i128>().prop_map(Value::from),
        any::<u128>().prop_map(Value::from),
        // Hand-made bignum tags, with leading zeros or wider than 16 bytes.
        (2..=3u64, vec(any::<u8>(), 0..20))
            .prop_map(|(tag, bytes)| tag_on(tag, Value::Bytes(bytes))),
    ]
}

/// Floats of every class: each width ciborium may shrink to, NaNs with and without payloads.
fn float() -> impl Strategy<Value = f64> {
    let specials = [
        f64::NAN,
        -f64::NAN,
        f64::from_bits(0x7ff0_0000_0000_0001), // signalling NaN
        f64::from_bits(0x7ff4_0000_0000_0000), // signalling NaN with an f16-sized payload
        f64::from_bits(0x7ffc_0000_0000_0000), // quiet NaN with an f16-sized payload
        f64::from_bits(0xfff8_0000_2000_0000), // quiet NaN with an f32-sized payload
        f64::INFINITY,
        f64::NEG_INFINITY,
        0.0,
        -0.0,
        f64::MIN_POSITIVE,
        5e-324,
        65_504.0,
        65_520.0,
        2f64.powi(-24),
        2f64.powi(-25),
        f64::from(f32::MIN_POSITIVE),
        f64::from(f32::from_bits(1)),
        f64::MAX,
    ];
    prop_oneof![
        prop::sample::select(specials.to_vec()),
        any::<u64>().prop_map(f64::from_bits),
        any::<u32>().prop_map(|bits| f64::from(f32::from_bits(bits))),
        // ±m·2^e with an 11-bit m: exactly an f16 across its range, and a little past it.
        (any::<bool>(), 0..2048u32, -26..=6i32).prop_map(|(negative, m, e)| {
            let x = f64::from(m) * 2f64.powi(e);
            if negative { -x } else { x }
        }),
        any::<f64>(),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => integer(),
        1 => bignum(),
        3 => float().prop_map(Value::Float),
        2 => "\\PC{0,24}".prop_map(Value::Text),
        1 => vec(any::<u8>(), 0..300).prop_map(Value::Bytes),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => Just(Value::Null),
    ]
}

/// A field value with nothing inside it: what most tables hold, and what `encoded_len`
/// counts on its fast path.
fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => integer(),
        3 => float().prop_map(Value::Float),
        3 => prop_oneof!["\\PC{0,24}", "\\PC{0,300}"].prop_map(Value::Text),
        1 => vec(any::<u8>(), 0..300).prop_map(Value::Bytes),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => Just(Value::Null),
    ]
}

fn tag_number() -> impl Strategy<Value = u64> {
    prop_oneof![Just(2), Just(3), 0..30u64, any::<u64>()]
}

fn tag_on(tag: u64, value: Value) -> Value {
    Value::Tag(tag, Box::new(value))
}

/// A field value: a leaf, or arrays, maps (any value as a key) and tags a few levels deep.
pub fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            vec((inner.clone(), inner.clone()), 0..5).prop_map(Value::Map),
            (tag_number(), inner).prop_map(|(tag, value)| tag_on(tag, value)),
        ]
    })
}

/// A value nested `depth` containers deep, around ciborium's recursion limit; `kinds` picks the
/// container at each level (array, map value, map key, tag), cycling.
pub fn nested(depth: usize, kinds: &[u8]) -> Value {
    let mut value = Value::Null;
    for level in 0..depth {
        value = match kinds[level % kinds.len()] % 4 {
            0 => Value::Array(vec![value]),
            1 => Value::Map(vec![(Value::Null, value)]),
            2 => Value::Map(vec![(value, Value::Null)]),
            _ => tag_on(level as u64, value),
        };
    }
    value
}

/// Row ids and field names; short lowercase ones collide often, so repeats get exercised.
fn key() -> impl Strategy<Value = String> {
    prop_oneof!["[a-c]{0,2}", "\\PC{0,12}"]
}

fn record() -> impl Strategy<Value = Record> {
    vec((key(), value()), 0..6).prop_map(|fields| fields.into_iter().collect())
}

fn rows() -> impl Strategy<Value = Rows> {
    vec((key(), record()), 0..5).prop_map(|rows| rows.into_iter().collect())
}

/// A timestamp anywhere within ±2^40 s of the epoch, to the nanosecond.
pub fn fetched_at() -> impl Strategy<Value = SystemTime> {
    (-(1i64 << 40)..(1i64 << 40), 0..1_000_000_000u32).prop_map(|(secs, nanos)| {
        let whole = Duration::from_secs(secs.unsigned_abs());
        let base = if secs < 0 {
            UNIX_EPOCH - whole
        } else {
            UNIX_EPOCH + whole
        };
        base + Duration::from_nanos(nanos.into())
    })
}

/// Rows of scalar field values only (any number of rows and fields, up to 30 of each, so
/// counts cross the one-byte head), fetched at an arbitrary time.
pub fn flat_cached_rows() -> impl Strategy<Value = CachedRows> {
    let record = vec((key(), scalar()), 0..30).prop_map(|f| f.into_iter().collect::<Record>());
    let rows = vec((key(), record), 0..30).prop_map(|r| r.into_iter().collect::<Rows>());
    (rows, fetched_at()).prop_map(|(rows, at)| CachedRows::with_fetched_at(rows, at))
}

/// Rows of arbitrary field values, fetched at an arbitrary time.
pub fn cached_rows() -> impl Strategy<Value = CachedRows> {
    (rows(), fetched_at()).prop_map(|(rows, at)| CachedRows::with_fetched_at(rows, at))
}
