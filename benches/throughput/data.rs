//! What is stored: the sample value, its keys, a generator to pick them, and the encoding
//! vlive gives the value (the crate's own codec).

use crate::params::ROOTS;
pub use crate::sample::{decode, encode, sample_rows};

/// The key of one value: `r07/page_042`.
pub fn key(root: u64, page: u64) -> String {
    format!("r{root:02}/page_{page:03}")
}

pub use crate::rng::Rng;

/// A key picked at random among the first `pages` of every root.
pub fn random_key(rng: &mut Rng, pages: u64) -> String {
    key(rng.below(ROOTS), rng.below(pages))
}
