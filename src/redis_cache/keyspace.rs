//! The Redis keys one shard of a vlive namespace owns (a namespace of one shard: all of them).
//!
//! All nine share one hash tag (`{vlive:NS}`, or a shard's: see `shards.rs`), so they live in
//! one slot (a Lua script may only touch keys of one slot on a cluster, and every script here
//! declares all nine). Values live
//! in one hash rather than a string per cache key, so no cache key ever needs escaping and no
//! script touches a key it did not declare.
//!
//! | key          | type   | content                                                        |
//! |--------------|--------|----------------------------------------------------------------|
//! | `…:m` meta   | hash   | `inc`, `epoch`, `floor`, `seq`, `link` (newest log entry),     |
//! |              |        | `bytes` charged, `evicted` and `expired` counts                 |
//! | `…:v` values | hash   | cache key → CBOR value (`crate::codec`)                        |
//! | `…:i` index  | zset   | every cache key at score 0: lexicographic order for prefixes   |
//! | `…:g` guard  | zset   | prefix → epoch of its latest invalidation (the last G prefixes)|
//! | `…:log`      | stream | id `seq-0`; `p` prefix to drop, `i` incarnation, `l`/`b` links |
//! | `…:w` written| hash   | cache key → the epoch when its value was written (none: 0)     |
//! | `…:s` marks  | zset   | prefix → epoch of an invalidation still sweeping its entries   |
//! | `…:c` cursors| hash   | prefix → the last index key its sweep has passed               |
//! | `…:o` order  | zset   | cache key → its rows' fetch time (Unix ms): expiry and eviction |
//!
//! The last three make prefix invalidation bounded work per call (`scripts::INVALIDATE`,
//! `scripts::SWEEP`): a mark hides every entry under its prefix written before it, and sweeps
//! delete them a chunk at a time.

/// The key names of one namespace, in the order every script takes them as `KEYS[1..9]`.
#[derive(Clone, Debug)]
pub(crate) struct Keyspace {
    pub(crate) meta: String,
    pub(crate) values: String,
    pub(crate) index: String,
    pub(crate) guard: String,
    pub(crate) log: String,
    pub(crate) written: String,
    pub(crate) marks: String,
    pub(crate) cursors: String,
    pub(crate) order: String,
}

impl Keyspace {
    /// The keys under the hash tag `{tag}`.
    pub(crate) fn with_tag(tag: &str) -> Self {
        let tag = format!("{{{tag}}}");
        Keyspace {
            meta: format!("{tag}:m"),
            values: format!("{tag}:v"),
            index: format!("{tag}:i"),
            guard: format!("{tag}:g"),
            log: format!("{tag}:log"),
            written: format!("{tag}:w"),
            marks: format!("{tag}:s"),
            cursors: format!("{tag}:c"),
            order: format!("{tag}:o"),
        }
    }

    /// `KEYS[1..9]` of every script.
    pub(crate) fn all(&self) -> [&str; 9] {
        [
            &self.meta,
            &self.values,
            &self.index,
            &self.guard,
            &self.log,
            &self.written,
            &self.marks,
            &self.cursors,
            &self.order,
        ]
    }
}

/// A fresh random incarnation id, proposed anew by every write script call.
///
/// Fresh per call, not per process: after a FLUSHALL the next script starts a new incarnation
/// with whatever id its caller proposed, and a reused id would make tokens from before the
/// flush look valid again. Never 0.
pub(crate) fn fresh_incarnation() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{SystemTime, UNIX_EPOCH};

    static CALLS: AtomicU64 = AtomicU64::new(0);
    // RandomState's keys come from the OS once per thread and change with every `new()`.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(CALLS.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    hasher.write_u128(now.as_nanos());
    hasher.finish() | 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_keys_share_one_hash_tag() {
        let keys = Keyspace::with_tag("vlive:orders");
        for key in keys.all() {
            assert!(key.starts_with("{vlive:orders}:"), "{key}");
        }
    }

    #[test]
    fn incarnations_differ_and_are_never_zero() {
        let ids: std::collections::HashSet<u64> = (0..1000).map(|_| fresh_incarnation()).collect();
        assert_eq!(ids.len(), 1000);
        assert!(!ids.contains(&0));
    }
}
