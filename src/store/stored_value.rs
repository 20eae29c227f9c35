//! How `RedbStore` keeps an entry's bookkeeping and checksum in its value: a fixed header in
//! front of the encoded rows.
//!
//! Why in the value, not in tables of their own: every put already rewrites the value's leaf,
//! so a header costs no B-tree update; each bookkeeping table cost one to two more per put, and
//! put-burst throughput halved under format 2's three of them (`cargo bench --bench
//! throughput`, against the commit before it). The size needs no field: it follows from the
//! key and the value's length.
//!
//! Why a checksum (format 4): redb keeps a checksum per page but checks it only in
//! `check_integrity` and in the repair after a crash, never on a read, so a flipped bit in a
//! value came back as data: a different value, as `Ok`. The checksum covers the key too, so a
//! damaged key cannot serve one key's rows under another, and the header, so a damaged sequence
//! number or fetch time is caught as well.

use xxhash_rust::xxh3::Xxh3Default;

use crate::store::value_sum;

/// The header's length: the entry's sequence number, its rows' fetch time and the checksum,
/// each 8 bytes little-endian.
pub(crate) const HEADER_LEN: usize = 24;

/// What the header says about an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    /// Its place in the insertion order: its key's row in the clock table.
    pub(crate) seq: u64,
    /// When its rows were fetched, in milliseconds since the Unix epoch (for expiry).
    pub(crate) fetched_ms: i64,
}

/// `value` with `header` in front, as it is stored under `key`. `sum` is
/// [`value_sum`] of `value`, taken by the caller.
pub(crate) fn join(key: &str, header: Header, value: &[u8], sum: u64) -> Vec<u8> {
    let mut stored = Vec::with_capacity(HEADER_LEN + value.len());
    stored.extend_from_slice(&header.seq.to_le_bytes());
    stored.extend_from_slice(&header.fetched_ms.to_le_bytes());
    stored.extend_from_slice(&checksum(key, header, sum).to_le_bytes());
    stored.extend_from_slice(value);
    stored
}

/// A stored value that passed its check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Checked<'a> {
    pub(crate) header: Header,
    /// The encoded rows.
    pub(crate) payload: &'a [u8],
    /// Their [`value_sum`], computed by the check: a rewrite of the header reuses it.
    pub(crate) payload_sum: u64,
}

/// A value stored under `key`, if its checksum holds; `None` if it is damaged (too short for a
/// header, or any bit of key, header or rows changed).
pub(crate) fn verify<'a>(key: &str, stored: &'a [u8]) -> Option<Checked<'a>> {
    let header = header(stored)?;
    let sum = u64::from_le_bytes(stored.get(16..HEADER_LEN)?.try_into().ok()?);
    let payload = &stored[HEADER_LEN..];
    let payload_sum = value_sum(payload);
    (checksum(key, header, payload_sum) == sum).then_some(Checked {
        header,
        payload,
        payload_sum,
    })
}

/// The header of a stored value, unchecked: bookkeeping only (which clock row to unqueue when
/// the value goes), never to serve. `None` if it is too short to have one.
pub(crate) fn header(stored: &[u8]) -> Option<Header> {
    let seq = stored.get(..8)?.try_into().ok()?;
    let fetched_ms = stored.get(8..16)?.try_into().ok()?;
    stored.get(..HEADER_LEN)?;
    Some(Header {
        seq: u64::from_le_bytes(seq),
        fetched_ms: i64::from_le_bytes(fetched_ms),
    })
}

/// The length of the encoded rows in a stored value of `stored_len` bytes.
pub(crate) fn payload_len(stored_len: usize) -> usize {
    stored_len.saturating_sub(HEADER_LEN)
}

/// xxh3 over the key's length, the key, the header's fields and the rows' own xxh3: the length
/// first, so that no split of the same bytes between key and rows sums alike. Built on the
/// rows' sum, which the caller of a put takes, so the actor hashes only the small parts.
fn checksum(key: &str, header: Header, payload_sum: u64) -> u64 {
    let mut hasher = Xxh3Default::new();
    hasher.update(&(key.len() as u64).to_le_bytes());
    hasher.update(key.as_bytes());
    hasher.update(&header.seq.to_le_bytes());
    hasher.update(&header.fetched_ms.to_le_bytes());
    hasher.update(&payload_sum.to_le_bytes());
    hasher.digest()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: Header = Header {
        seq: u64::MAX - 3,
        fetched_ms: -42,
    };

    #[test]
    fn a_value_reads_back_what_was_joined() {
        let stored = join("k", HEADER, b"rows", value_sum(b"rows"));
        assert_eq!(stored.len(), HEADER_LEN + 4);
        assert_eq!(header(&stored), Some(HEADER));
        let checked = verify("k", &stored).expect("a sound value");
        assert_eq!((checked.header, checked.payload), (HEADER, &b"rows"[..]));
        assert_eq!(checked.payload_sum, value_sum(b"rows"));
        assert_eq!(payload_len(stored.len()), 4);
    }

    #[test]
    fn a_value_too_short_for_a_header_fails_its_check() {
        for short in [&b""[..], b"abc", &[0u8; HEADER_LEN - 1]] {
            assert_eq!(header(short), None);
            assert_eq!(verify("k", short), None);
            assert_eq!(payload_len(short.len()), 0);
        }
    }

    /// Every single-bit flip anywhere in the stored bytes is caught, in the header and in the
    /// rows alike.
    #[test]
    fn every_flipped_bit_fails_the_check() {
        let rows = b"twenty rows of text";
        let stored = join("clients/1", HEADER, rows, value_sum(rows));
        for bit in 0..stored.len() * 8 {
            let mut damaged = stored.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                verify("clients/1", &damaged),
                None,
                "bit {bit} went unnoticed"
            );
        }
    }

    /// A value is bound to its key: read under another key (a damaged key in a leaf), it fails.
    #[test]
    fn a_value_read_under_another_key_fails_the_check() {
        let stored = join("clients/1", HEADER, b"rows", value_sum(b"rows"));
        for other in ["clients/2", "clients/1/", "", "clients/10", "dlients/1"] {
            assert_eq!(verify(other, &stored), None, "{other}");
        }
    }
}
