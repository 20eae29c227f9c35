//! What is stored: the sample value, its keys, a generator to pick them, and the encoding
//! vlive gives the value (the crate's own codec).

use crate::params::ROOTS;
pub use crate::sample::{decode, encode, sample_rows};

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
