//! How `RedbStore` keeps an entry's bookkeeping in its value: a fixed header in front of the
//! encoded rows.
//!
//! Why in the value, not in tables of their own: every put already rewrites the value's leaf,
//! so a header costs no B-tree update; each bookkeeping table cost one to two more per put, and
//! put-burst throughput halved under format 2's three of them (`cargo bench --bench
//! throughput`, against the commit before it). The size needs no field: it follows from the
//! key and the value's length.

/// The header's length: the entry's sequence number and its rows' fetch time, both 8 bytes
/// little-endian.
pub(crate) const HEADER_LEN: usize = 16;

/// What the header says about an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    /// Its place in the insertion order: its key's row in the clock table.
    pub(crate) seq: u64,
    /// When its rows were fetched, in milliseconds since the Unix epoch (for expiry).
    pub(crate) fetched_ms: i64,
}

/// `value` with `header` in front, as it is stored.
pub(crate) fn join(header: Header, value: &[u8]) -> Vec<u8> {
    let mut stored = Vec::with_capacity(HEADER_LEN + value.len());
    stored.extend_from_slice(&header.seq.to_le_bytes());
    stored.extend_from_slice(&header.fetched_ms.to_le_bytes());
    stored.extend_from_slice(value);
    stored
}

/// The header of a stored value; `None` if it is too short to have one (a damaged file).
pub(crate) fn header(stored: &[u8]) -> Option<Header> {
    let seq = stored.get(..8)?.try_into().ok()?;
    let fetched_ms = stored.get(8..HEADER_LEN)?.try_into().ok()?;
    Some(Header {
        seq: u64::from_le_bytes(seq),
        fetched_ms: i64::from_le_bytes(fetched_ms),
    })
}

/// The encoded rows of a stored value. A value too short for a header is handed on whole, so
/// that decoding reports it as corrupt with its key, rather than the store guessing.
pub(crate) fn payload(stored: &[u8]) -> &[u8] {
    stored.get(HEADER_LEN..).unwrap_or(stored)
}

/// The length of the encoded rows in a stored value of `stored_len` bytes.
pub(crate) fn payload_len(stored_len: usize) -> usize {
    stored_len.saturating_sub(HEADER_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_reads_back_what_was_joined() {
        let header_in = Header {
            seq: u64::MAX - 3,
            fetched_ms: -42,
        };
        let stored = join(header_in, b"rows");
        assert_eq!(stored.len(), HEADER_LEN + 4);
        assert_eq!(header(&stored), Some(header_in));
        assert_eq!(payload(&stored), b"rows");
        assert_eq!(payload_len(stored.len()), 4);
    }

    #[test]
    fn a_value_too_short_for_a_header_has_none_and_is_its_own_payload() {
        for short in [&b""[..], b"abc", &[0u8; HEADER_LEN - 1]] {
            assert_eq!(header(short), None);
            assert_eq!(payload(short), short);
            assert_eq!(payload_len(short.len()), 0);
        }
    }
}
