//! A namespace split into shards, each a [`Keyspace`] under its own hash tag, so that on a Redis
//! Cluster a namespace spreads over every master instead of living in one slot.
//!
//! A key belongs to one shard, by a hash of the whole key (FNV-1a: stable across processes,
//! versions and platforms, which `std`'s hasher is not). So a prefix can match keys in every
//! shard, and a prefix invalidation runs in each.
//!
//! Tags are picked so their slots spread evenly: shard `i` of `n` gets the first tag
//! `vlive:NS:i.j` (j = 0, 1, …) whose slot falls in the `i`-th of `n` equal slot ranges.
//! `redis-cli --cluster create` gives each master one contiguous range, so the shards spread
//! over the masters as evenly as the counts allow. One shard keeps the tag `vlive:NS`, the
//! layout before shards existed: a single-node namespace from then reads on.

use super::keyspace::Keyspace;
use crate::error::{Error, Result};
use crate::fnv::fnv1a;

/// Slots in a Redis Cluster.
const SLOTS: u32 = 16384;

/// The most shards a namespace may have: more buys no spread on any real cluster and costs
/// every prefix invalidation one script call per shard.
pub(crate) const MAX_SHARDS: u16 = 1024;

/// The shards of one namespace.
#[derive(Clone, Debug)]
pub(crate) struct Shards {
    keyspaces: Vec<Keyspace>,
    /// Where the shard count is recorded (`…:shards`, beside shard 0's tag when there is one
    /// shard, else under the namespace's own tag).
    pub(crate) count_key: String,
}

impl Shards {
    /// The `count` shards of `namespace`; refuses a namespace that would break the hash tags
    /// and a count out of `1..=MAX_SHARDS`.
    pub(crate) fn new(namespace: &str, count: u16) -> Result<Self> {
        if namespace.is_empty() || namespace.contains(['{', '}']) {
            return Err(Error::InvalidConfig {
                reason: format!(
                    "redis namespace {namespace:?} must be non-empty and contain no '{{' or '}}'"
                ),
            });
        }
        if count == 0 || count > MAX_SHARDS {
            return Err(Error::InvalidConfig {
                reason: format!("redis shards must be 1 to {MAX_SHARDS}, not {count}"),
            });
        }
        let keyspaces = match count {
            1 => vec![Keyspace::with_tag(&format!("vlive:{namespace}"))],
            _ => (0..count)
                .map(|shard| Keyspace::with_tag(&spread_tag(namespace, shard, count)))
                .collect(),
        };
        Ok(Shards {
            keyspaces,
            count_key: format!("{{vlive:{namespace}}}:shards"),
        })
    }

    /// Every shard, in order.
    pub(crate) fn all(&self) -> &[Keyspace] {
        &self.keyspaces
    }

    /// How many there are.
    pub(crate) fn count(&self) -> usize {
        self.keyspaces.len()
    }

    /// The shard `key` lives in.
    pub(crate) fn of(&self, key: &str) -> usize {
        (fnv1a(key.as_bytes()) % self.keyspaces.len() as u64) as usize
    }
}

/// The first tag `vlive:NS:shard.j` whose slot lies in the `shard`-th of `count` equal ranges.
fn spread_tag(namespace: &str, shard: u16, count: u16) -> String {
    let (low, high) = (
        u32::from(shard) * SLOTS / u32::from(count),
        (u32::from(shard) + 1) * SLOTS / u32::from(count),
    );
    (0u32..)
        .map(|j| format!("vlive:{namespace}:{shard}.{j}"))
        .find(|tag| {
            let slot = u32::from(key_slot(format!("{{{tag}}}").as_bytes()));
            (low..high).contains(&slot)
        })
        .expect("CRC16 reaches every range")
}

/// The cluster slot of `key`: CRC16 (XMODEM) of its hash tag (the bytes between the first `{`
/// and the next `}`, if not empty) or of the whole key, mod 16384. As the Redis Cluster
/// specification defines it; the redis crate computes it too but does not expose the number.
pub(crate) fn key_slot(key: &[u8]) -> u16 {
    let hashed = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            let close = rest.iter().position(|&b| b == b'}')?;
            (close > 0).then(|| &rest[..close])
        })
        .unwrap_or(key);
    crc16_xmodem(hashed) % SLOTS as u16
}

fn crc16_xmodem(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in bytes {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    use redis::cluster_routing::{Route, SlotAddr};

    fn slot(tag_key: &str) -> u32 {
        u32::from(key_slot(tag_key.as_bytes()))
    }

    #[test]
    fn slots_are_the_cluster_specifications() {
        assert_eq!(crc16_xmodem(b"123456789"), 0x31c3, "the spec's check value");
        for key in [
            "",
            "a",
            "{user1000}.following",
            "foo{}{bar}",
            "foo{{bar}}zap",
            "{}x",
        ] {
            let mine = Route::new(key_slot(key.as_bytes()), SlotAddr::Master);
            assert_eq!(mine, Route::with_key(key, SlotAddr::Master), "{key:?}");
        }
        assert_eq!(
            key_slot(b"{user1000}.following"),
            key_slot(b"{user1000}.followers")
        );
    }

    #[test]
    fn one_shard_keeps_the_layout_from_before_shards() {
        let shards = Shards::new("orders", 1).unwrap();
        assert_eq!(shards.all()[0].meta, "{vlive:orders}:m");
        assert_eq!(shards.of("anything"), 0);
    }

    #[test]
    fn shards_spread_over_equal_slot_ranges() {
        for count in [2u16, 3, 16, 100] {
            let shards = Shards::new("orders", count).unwrap();
            for (i, keyspace) in shards.all().iter().enumerate() {
                let range = i as u32 * SLOTS / count as u32..(i as u32 + 1) * SLOTS / count as u32;
                assert!(
                    range.contains(&slot(&keyspace.meta)),
                    "shard {i} of {count}"
                );
                for key in keyspace.all() {
                    assert_eq!(slot(key), slot(&keyspace.meta), "{key}: one slot per shard");
                }
            }
        }
    }

    #[test]
    fn keys_spread_over_shards_and_stay_put() {
        let shards = Shards::new("ns", 16).unwrap();
        let mut per_shard = [0u32; 16];
        for i in 0..16_000 {
            per_shard[shards.of(&format!("users/{i}"))] += 1;
        }
        assert!(
            per_shard.iter().all(|&n| (800..1200).contains(&n)),
            "{per_shard:?}"
        );
        // Fixed forever: a change would strand every stored entry.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(
            fnv1a(b"a"),
            0xaf63_dc4c_8601_ec8c,
            "FNV-1a's published vector"
        );
    }

    #[test]
    fn bad_namespaces_and_counts_are_refused() {
        for bad in ["", "a{b", "a}b"] {
            assert!(matches!(
                Shards::new(bad, 1),
                Err(Error::InvalidConfig { .. })
            ));
        }
        for bad in [0, MAX_SHARDS + 1] {
            assert!(matches!(
                Shards::new("ns", bad),
                Err(Error::InvalidConfig { .. })
            ));
        }
    }
}
