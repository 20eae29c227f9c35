//! What is stored: the sample value, its keys, a generator to pick them, and the encoding
//! vlive gives the value (the crate's own codec).

use vlive::__private::codec;
use vlive::{CachedRows, Record, Rows, Value};

use crate::params::{FIELDS, ROOTS, ROWS};

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

/// The key of one value: `r07/page_042`.
pub fn key(root: u64, page: u64) -> String {
    format!("r{root:02}/page_{page:03}")
}

/// xorshift64*: a fast, seedable generator, so no task waits on a shared one.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) % n
    }

    pub fn key(&mut self, pages: u64) -> String {
        key(self.below(ROOTS), self.below(pages))
    }
}

/// vlive's value encoding, through the crate's own codec.
pub fn encode(value: &CachedRows) -> Vec<u8> {
    codec::encode(value).expect("encode")
}

/// The crate's own decoding, as vlive's `get` does it.
pub fn decode(bytes: &[u8]) -> CachedRows {
    codec::decode(bytes).expect("decode")
}
