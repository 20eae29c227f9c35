//! Rows built from the fuzzer's bytes: the hand-written encoder must write exactly ciborium's
//! bytes, and both decoders must read those bytes back alike.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use vlive::__private::codec::{decode, encode, reference};
use vlive::{CachedRows, Record, Rows, Value};

/// Deep enough to cross ciborium's recursion limit (253 levels inside a field).
const MAX_DEPTH: u32 = 300;

fn value(u: &mut Unstructured, depth: u32) -> Result<Value> {
    let kinds = if depth == 0 { 7 } else { 10 };
    Ok(match u.choose_index(kinds)? {
        0 => Value::from(u.arbitrary::<u64>()?),
        1 => Value::from(-1 - i128::from(u.arbitrary::<u64>()?)),
        // Beyond 64 bits ciborium makes a bignum tag.
        2 => Value::from(u.arbitrary::<i128>()?),
        3 => Value::Float(f64::from_bits(u.arbitrary()?)),
        4 => Value::Text(u.arbitrary()?),
        5 => Value::Bytes(u.arbitrary()?),
        6 => [Value::Null, Value::Bool(false), Value::Bool(true)][u.choose_index(3)?].clone(),
        7 => Value::Array(items(u, |u| value(u, depth - 1))?),
        8 => Value::Map(items(u, |u| {
            Ok((value(u, depth - 1)?, value(u, depth - 1)?))
        })?),
        _ => Value::Tag(u.arbitrary()?, Box::new(value(u, depth - 1)?)),
    })
}

/// A few items, fewer when the input runs low.
fn items<T>(
    u: &mut Unstructured,
    mut item: impl FnMut(&mut Unstructured) -> Result<T>,
) -> Result<Vec<T>> {
    let len = u.int_in_range(0..=4)?;
    (0..len).map(|_| item(u)).collect()
}

fn cached_rows(u: &mut Unstructured) -> Result<CachedRows> {
    let mut rows = Rows::new();
    for _ in 0..u.int_in_range(0..=3)? {
        let mut record = Record::new();
        for _ in 0..u.int_in_range(0..=4)? {
            record.insert(u.arbitrary()?, value(u, MAX_DEPTH)?);
        }
        rows.insert(u.arbitrary()?, record);
    }
    let since = Duration::new(
        u.int_in_range(0..=1 << 40)?,
        u.int_in_range(0..=999_999_999)?,
    );
    let fetched_at = if u.arbitrary()? {
        UNIX_EPOCH + since
    } else {
        UNIX_EPOCH - since
    };
    Ok(CachedRows::with_fetched_at(rows, fetched_at))
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = cached_rows(&mut Unstructured::new(data)) else {
        return;
    };
    let bytes = reference::encode(&value).unwrap();
    assert_eq!(encode(&value).unwrap(), bytes, "encoded differently");
    match (decode(&bytes), reference::decode(&bytes)) {
        (Ok(ours), Ok(theirs)) => {
            assert_eq!(
                reference::encode(&ours).unwrap(),
                reference::encode(&theirs).unwrap()
            )
        }
        (Err(_), Err(_)) => {}
        (ours, theirs) => panic!("disagree: ours {ours:?}, ciborium {theirs:?}"),
    }
});
