//! Which misses a full hot tier takes in: a key is admitted over an older entry only on its
//! second miss within a window (a doorkeeper, as in TinyLFU).
//!
//! Why: with a working set larger than the tier, admitting every miss evicts an entry per miss,
//! and freeing a decoded 20-row entry (about 300 strings and maps, usually allocated by another
//! thread) cost more than reading and decoding it: with an 8 MiB tier over a uniform 32 MiB
//! working set, cold gets ran at a third of their rate with the tier off. A key read once is
//! seldom worth an eviction; one read twice in the window is admitted. The tier's hit share on
//! that workload stayed the same (`docs/cold-reads.md`).
//!
//! A key that fits without evicting is always admitted: a tier that is not full fills as before.

use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};

/// Bits in the doorkeeper: 8 KiB, allocated on its first use. At the window's largest useful
/// size (a few thousand keys) one key in twenty or so is admitted on a false first sighting.
const BITS: usize = 1 << 16;

/// Keys that missed recently, as bits of their hashes; cleared once it has recorded as many keys
/// as the window holds, so a key is admitted on a second miss within about that many misses.
#[derive(Debug, Default)]
pub(crate) struct Doorkeeper {
    bits: Vec<u64>,
    recorded: usize,
}

impl Doorkeeper {
    /// Whether `key` has missed before within the window of `window` recorded keys; if not, it
    /// is recorded now and refused.
    pub(crate) fn admit(&mut self, key: &str, window: usize) -> bool {
        if self.bits.is_empty() {
            self.bits = vec![0; BITS / 64];
        }
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(key) as usize % BITS;
        let (word, bit) = (hash / 64, 1u64 << (hash % 64));
        if self.bits[word] & bit != 0 {
            return true;
        }
        self.bits[word] |= bit;
        self.recorded += 1;
        if self.recorded >= window {
            self.bits.fill(0);
            self.recorded = 0;
        }
        false
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_admitted_on_its_second_miss_within_the_window() {
        let mut door = Doorkeeper::default();
        assert!(!door.admit("a", 10));
        assert!(door.admit("a", 10));
        assert!(!door.admit("b", 10));
    }

    #[test]
    fn the_window_forgets_keys_once_full() {
        let mut door = Doorkeeper::default();
        assert!(!door.admit("a", 2));
        assert!(
            !door.admit("b", 2),
            "the second key fills the window and clears it"
        );
        assert!(!door.admit("a", 2), "a was forgotten");
    }
}
