//! The value every benchmark stores, and vlive's encoding of it (the crate's own codec), shared
//! by the bench targets so they measure the same thing and cannot drift from the real format.

use vlive::__private::codec;
use vlive::{CachedRows, Record, Rows, Value};

/// Rows per value.
pub const ROWS: usize = 20;
/// Text fields per row.
pub const FIELDS: [&str; 6] = ["name", "email", "city", "company", "phone", "notes"];

/// 20 rows of 6 text fields: about 3.4 KB of CBOR.
pub fn sample_rows() -> Rows {
    (0..ROWS)
        .map(|row| {
            let record: Record = FIELDS
                .iter()
                .map(|field| {
                    let text = format!("{field} of row {row:02} ~~~~~~~~~~~~~~");
                    (field.to_string(), Value::Text(text[..21].to_owned()))
                })
                .collect();
            (format!("{row}"), record)
        })
        .collect()
}

/// vlive's value encoding, through the crate's own codec.
#[allow(dead_code)] // not every bench encodes values itself
pub fn encode(value: &CachedRows) -> Vec<u8> {
    codec::encode(value).expect("encode")
}

/// The crate's own decoding, as vlive's `get` does it.
#[allow(dead_code)] // not every bench reads values back
pub fn decode(bytes: &[u8]) -> CachedRows {
    codec::decode(bytes).expect("decode")
}
