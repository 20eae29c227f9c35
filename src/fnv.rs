//! 64-bit FNV-1a: a small, stable hash of bytes, the same in every process and on every
//! machine. For what must not change between runs (Redis shard placement) and for fixed-size
//! tables whose collisions only cost a little (`actor::read_beside`'s recent writes). Not for
//! maps that untrusted keys could flood: it has no seed.

/// The 64-bit FNV-1a hash of `bytes`.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn matches_the_published_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
