//! Access bits: which entries were read since the eviction hand last passed them.
//!
//! Gets set a key's bit on the caller's thread — gets beside the actor included, which the actor
//! never sees — and the actor test-and-clears it when the key reaches the head of the eviction
//! queue (`budget`). The bits are a fixed array indexed by a hash of the key, lock-free and
//! bounded whatever the number of keys. Two keys may share a bit: a read of one then gives the
//! other an undeserved second chance, never an early eviction, so a collision costs hit rate,
//! not correctness.
//!
//! The bits live in memory only. After a reopen the eviction order itself is intact (it is
//! stored, in the insertion-order table) and every bit starts clear: the access metadata is
//! rebuilt without a scan, at the cost of one round of second chances.

use std::hash::{DefaultHasher, Hash, Hasher};

use crate::sync::atomic::{AtomicU64, Ordering};

/// 2^20 bits (128 KiB) in production; one word under loom, whose atomics are costly to model.
#[cfg(not(loom))]
const WORDS: usize = (1 << 20) / 64;
#[cfg(loom)]
const WORDS: usize = 1;

/// A fixed-size, shared set of access bits.
pub(crate) struct AccessBits {
    words: Box<[AtomicU64]>,
}

impl std::fmt::Debug for AccessBits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessBits")
            .field("bits", &(self.words.len() * 64))
            .finish()
    }
}

impl AccessBits {
    /// All bits clear.
    pub(crate) fn new() -> Self {
        AccessBits {
            words: (0..WORDS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Records a read of `key`.
    pub(crate) fn touch(&self, key: &str) {
        let (word, mask) = self.slot(key);
        // A hot key is read far more often than it is evicted: a load spares the cache line.
        if self.words[word].load(Ordering::Relaxed) & mask == 0 {
            self.words[word].fetch_or(mask, Ordering::Relaxed);
        }
    }

    /// Whether `key` was read since the last call for it (or a key sharing its bit); clears it.
    pub(crate) fn take(&self, key: &str) -> bool {
        let (word, mask) = self.slot(key);
        self.words[word].fetch_and(!mask, Ordering::Relaxed) & mask != 0
    }

    fn slot(&self, key: &str) -> (usize, u64) {
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        let bit = hasher.finish() as usize % (self.words.len() * 64);
        (bit / 64, 1 << (bit % 64))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_bit_is_taken_once_per_touch() {
        let bits = AccessBits::new();
        assert!(!bits.take("a"));
        bits.touch("a");
        bits.touch("a");
        assert!(bits.take("a"));
        assert!(!bits.take("a"));
    }
}
