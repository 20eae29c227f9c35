//! The `Cache` contract (DESIGN.md §1), as one suite of checks over `&dyn Cache`, run against
//! `MemCache` (module `mem`) and `RedbCache` (module `redb`): misses, replacement, prefix
//! invalidation exactly by `k.starts_with(p)` (empty prefix, prefixes cutting through roots,
//! prefixes with `/`, bare keys), keys that a root/rest layout could confuse, `fetched_at`
//! precision, rich values, the stale-fill guard, and values the decoder would refuse (put and
//! fill refuse them). `NoCache` gets its own checks: everything succeeds and everything misses.
//! With the `redis` feature: RedisCache on one server (plain, TLS, split into shards) and on a
//! Redis Cluster, and TieredCache.

mod common;
#[cfg(feature = "redis")]
#[path = "common/redis_cluster.rs"]
mod redis_cluster;
#[cfg(feature = "redis")]
#[path = "common/redis_server.rs"]
mod redis_server;
#[cfg(feature = "redis")]
#[path = "common/tls.rs"]
mod tls;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{rows, tag, value};
use vlive::{Cache, CachedRows, FillOutcome, NoCache, Record, Rows, Value};

/// Keys chosen to stress a layout that splits keys at the first `/` into a root and a rest.
const KEYS: &[&str] = &[
    "",
    "a",
    "a/",
    "a/b",
    "a//b",
    "a/__root__",
    "ab",
    "ab/c",
    "__root__",
    "/x",
    "/",
    "//",
    "b",
    "clients",
    "clients/",
    "clients/1",
    "clients/page",
    "clients/page_1",
    "clients/page_10",
    "clinic/7",
    "cli",
    "cl",
    "c",
    "other/cli",
    "xcli",
    "é",
    "é/ü",
    "éa/b",
    "日本/語",
    "vlive_meta",
    "__vlive__a",
];

async fn get(cache: &dyn Cache, key: &str) -> Option<CachedRows> {
    cache
        .get(key)
        .await
        .unwrap_or_else(|e| panic!("get {key:?} failed: {e}"))
}

async fn put(cache: &dyn Cache, key: &str, tag: &str) {
    cache
        .put(key, value(tag))
        .await
        .unwrap_or_else(|e| panic!("put {key:?} failed: {e}"));
}

async fn invalidate(cache: &dyn Cache, prefix: &str) {
    cache
        .invalidate_prefix(prefix)
        .await
        .unwrap_or_else(|e| panic!("invalidate {prefix:?} failed: {e}"));
}

/// Empties the cache, stores every key of [`KEYS`] under its own tag, invalidates `prefix`, and
/// checks that exactly `removed` went away while every other key still has its own value.
/// `removed` is written out by hand and also cross-checked against `starts_with`, so a mistake
/// in the expectation cannot hide a mistake in the cache.
async fn check_invalidation(cache: &dyn Cache, prefix: &str, removed: &[&str]) {
    let by_rule: Vec<&str> = KEYS
        .iter()
        .copied()
        .filter(|k| k.starts_with(prefix))
        .collect();
    let mut expected = removed.to_vec();
    expected.sort_unstable();
    let mut by_rule_sorted = by_rule.clone();
    by_rule_sorted.sort_unstable();
    assert_eq!(
        expected, by_rule_sorted,
        "test data: the hand-written removal list for {prefix:?} disagrees with starts_with"
    );

    invalidate(cache, "").await;
    for key in KEYS {
        put(cache, key, &format!("v:{key}")).await;
    }
    invalidate(cache, prefix).await;
    for key in KEYS {
        let found = tag(cache, key).await;
        if removed.contains(key) {
            assert_eq!(
                found, None,
                "invalidate_prefix({prefix:?}) must remove {key:?}"
            );
        } else {
            assert_eq!(
                found.as_deref(),
                Some(format!("v:{key}").as_str()),
                "invalidate_prefix({prefix:?}) must keep {key:?} (and its own value)"
            );
        }
    }
}

async fn a_miss_is_none(cache: &dyn Cache) {
    for key in KEYS {
        assert_eq!(get(cache, key).await, None, "fresh cache must miss {key:?}");
    }
    put(cache, "a/b", "x").await;
    for key in KEYS.iter().filter(|k| **k != "a/b") {
        assert_eq!(get(cache, key).await, None, "{key:?} was never put");
    }
}

async fn put_replaces_the_value(cache: &dyn Cache) {
    put(cache, "clients/1", "first").await;
    put(cache, "clients/2", "other").await;
    assert_eq!(tag(cache, "clients/1").await.as_deref(), Some("first"));
    put(cache, "clients/1", "second").await;
    assert_eq!(tag(cache, "clients/1").await.as_deref(), Some("second"));
    assert_eq!(tag(cache, "clients/2").await.as_deref(), Some("other"));
    // Replacing with a smaller value must not leave bits of the bigger one behind.
    let big = CachedRows::with_fetched_at(
        (0..50)
            .map(|i| (i.to_string(), rows(&"x".repeat(100))["1"].clone()))
            .collect(),
        common::stamp(),
    );
    cache.put("clients/1", big.clone()).await.unwrap();
    assert_eq!(get(cache, "clients/1").await, Some(big));
    put(cache, "clients/1", "small").await;
    assert_eq!(get(cache, "clients/1").await, Some(value("small")));
}

async fn the_empty_prefix_removes_everything(cache: &dyn Cache) {
    check_invalidation(cache, "", KEYS).await;
    // The cache stays usable afterwards, for every kind of key.
    for key in KEYS {
        put(cache, key, "again").await;
    }
    for key in KEYS {
        assert_eq!(tag(cache, key).await.as_deref(), Some("again"), "{key:?}");
    }
}

async fn a_prefix_cutting_through_roots(cache: &dyn Cache) {
    check_invalidation(
        cache,
        "cli",
        &[
            "clients",
            "clients/",
            "clients/1",
            "clients/page",
            "clients/page_1",
            "clients/page_10",
            "clinic/7",
            "cli",
        ],
    )
    .await;
    check_invalidation(
        cache,
        "a",
        &["a", "a/", "a/b", "a//b", "a/__root__", "ab", "ab/c"],
    )
    .await;
    check_invalidation(cache, "ab", &["ab", "ab/c"]).await;
    check_invalidation(cache, "é", &["é", "é/ü", "éa/b"]).await;
    check_invalidation(cache, "__", &["__root__", "__vlive__a"]).await;
    check_invalidation(cache, "vlive", &["vlive_meta"]).await;
    check_invalidation(cache, "zzz", &[]).await;
}

async fn a_prefix_with_a_slash(cache: &dyn Cache) {
    check_invalidation(
        cache,
        "clients/page_",
        &["clients/page_1", "clients/page_10"],
    )
    .await;
    check_invalidation(
        cache,
        "clients/",
        &[
            "clients/",
            "clients/1",
            "clients/page",
            "clients/page_1",
            "clients/page_10",
        ],
    )
    .await;
    check_invalidation(cache, "a/", &["a/", "a/b", "a//b", "a/__root__"]).await;
    check_invalidation(cache, "a//", &["a//b"]).await;
    check_invalidation(cache, "/", &["/", "//", "/x"]).await;
    check_invalidation(cache, "//", &["//"]).await;
    check_invalidation(cache, "é/", &["é/ü"]).await;
    check_invalidation(cache, "nothing/here", &[]).await;
}

async fn a_whole_key_as_prefix(cache: &dyn Cache) {
    check_invalidation(
        cache,
        "clients/page_1",
        &["clients/page_1", "clients/page_10"],
    )
    .await;
    check_invalidation(cache, "clients/1", &["clients/1"]).await;
    check_invalidation(cache, "a/__root__", &["a/__root__"]).await;
    check_invalidation(cache, "__root__", &["__root__"]).await;
    check_invalidation(cache, "日本/語", &["日本/語"]).await;
    check_invalidation(cache, "xcli", &["xcli"]).await;
    // A bare root name covers the root itself and everything under it.
    check_invalidation(
        cache,
        "clients",
        &[
            "clients",
            "clients/",
            "clients/1",
            "clients/page",
            "clients/page_1",
            "clients/page_10",
        ],
    )
    .await;
}

async fn tricky_keys_are_distinct(cache: &dyn Cache) {
    for key in KEYS {
        put(cache, key, &format!("v:{key}")).await;
    }
    for key in KEYS {
        assert_eq!(
            tag(cache, key).await,
            Some(format!("v:{key}")),
            "{key:?} must hold its own value"
        );
    }
    // Replacing one of them touches no other.
    put(cache, "a", "new-a").await;
    put(cache, "", "new-empty").await;
    for key in KEYS {
        let expected = match *key {
            "a" => "new-a".to_owned(),
            "" => "new-empty".to_owned(),
            other => format!("v:{other}"),
        };
        assert_eq!(tag(cache, key).await, Some(expected), "{key:?}");
    }
}

async fn fetched_at_round_trips_to_the_millisecond(cache: &dyn Cache) {
    let moments = [
        SystemTime::now(),
        common::stamp(),
        UNIX_EPOCH,
        UNIX_EPOCH + Duration::new(0, 999_999),
        UNIX_EPOCH + Duration::new(4_000_000_000, 987_654_321),
        UNIX_EPOCH - Duration::new(5, 250_000_000),
        UNIX_EPOCH - Duration::from_secs(7),
    ];
    for (i, at) in moments.iter().enumerate() {
        let key = format!("t/{i}");
        cache
            .put(&key, CachedRows::with_fetched_at(rows("t"), *at))
            .await
            .unwrap();
        let back = get(cache, &key).await.expect("just put");
        let drift = match back.fetched_at.duration_since(*at) {
            Ok(later) => later,
            Err(earlier) => earlier.duration(),
        };
        assert!(
            drift < Duration::from_millis(1),
            "fetched_at {at:?} came back as {:?} (off by {drift:?})",
            back.fetched_at
        );
        assert_eq!(*back.rows, rows("t"));
    }
}

async fn rich_values_round_trip_in_order(cache: &dyn Cache) {
    let mut record = Record::new();
    record.insert("z-first".into(), Value::Null);
    record.insert("bool".into(), Value::Bool(true));
    record.insert("neg".into(), Value::Integer((-5i64).into()));
    record.insert("big".into(), Value::Integer(u64::MAX.into()));
    record.insert("float".into(), Value::Float(1.5));
    record.insert("bytes".into(), Value::Bytes(vec![0, 255, 7]));
    record.insert("text".into(), Value::Text("Ünïcødé ✓".into()));
    record.insert(
        "array".into(),
        Value::Array(vec![Value::Integer(1.into()), Value::Text("two".into())]),
    );
    record.insert(
        "map".into(),
        Value::Map(vec![(Value::Text("k".into()), Value::Bool(false))]),
    );
    let mut rows = Rows::new();
    for id in ["10", "2", "1", "b", "a"] {
        rows.insert(id.into(), record.clone());
    }
    rows.insert("empty".into(), Record::new());
    let stored = CachedRows::with_fetched_at(rows, common::stamp());
    cache.put("rich/1", stored.clone()).await.unwrap();
    cache
        .put(
            "rich/empty",
            CachedRows::with_fetched_at(Rows::new(), common::stamp()),
        )
        .await
        .unwrap();

    let back = get(cache, "rich/1").await.expect("just put");
    assert_eq!(back, stored);
    // IndexMap equality ignores order; the master's order must survive too.
    let ids = |r: &CachedRows| r.rows.keys().cloned().collect::<Vec<_>>();
    assert_eq!(ids(&back), ids(&stored), "row order");
    let fields = |r: &CachedRows| r.rows["10"].keys().cloned().collect::<Vec<_>>();
    assert_eq!(fields(&back), fields(&stored), "field order");
    assert_eq!(
        get(cache, "rich/empty").await.map(|r| r.rows.len()),
        Some(0),
        "an empty row set is a hit, not a miss"
    );
}

async fn a_stale_fill_is_rejected_after_a_covering_invalidation(cache: &dyn Cache) {
    // Covered by a prefix that cuts through the root.
    put(cache, "clients/1", "old").await;
    let token = cache.fill_token("clients/1").await.unwrap();
    invalidate(cache, "cli").await;
    let outcome = cache
        .fill("clients/1", value("stale"), token)
        .await
        .unwrap();
    assert_eq!(outcome, FillOutcome::RejectedStale);
    assert_eq!(
        get(cache, "clients/1").await,
        None,
        "the stale fill was stored"
    );

    // A newer put after the invalidation must not be overwritten by the stale fill.
    let token = cache.fill_token("clients/1").await.unwrap();
    invalidate(cache, "clients/1").await;
    put(cache, "clients/1", "fresh").await;
    let outcome = cache
        .fill("clients/1", value("stale"), token)
        .await
        .unwrap();
    assert_eq!(outcome, FillOutcome::RejectedStale);
    assert_eq!(tag(cache, "clients/1").await.as_deref(), Some("fresh"));

    // The empty prefix covers every key; a covering invalidation among unrelated ones counts.
    let token = cache.fill_token("a/__root__").await.unwrap();
    invalidate(cache, "zzz/").await;
    invalidate(cache, "").await;
    invalidate(cache, "yyy").await;
    let outcome = cache
        .fill("a/__root__", value("stale"), token)
        .await
        .unwrap();
    assert_eq!(outcome, FillOutcome::RejectedStale);
    assert_eq!(get(cache, "a/__root__").await, None);

    // A shorter key covers a longer one ("clients/1" covers "clients/10").
    let token = cache.fill_token("clients/10").await.unwrap();
    invalidate(cache, "clients/1").await;
    let outcome = cache
        .fill("clients/10", value("stale"), token)
        .await
        .unwrap();
    assert_eq!(outcome, FillOutcome::RejectedStale);
    assert_eq!(get(cache, "clients/10").await, None);
}

async fn a_fill_is_accepted_after_an_unrelated_invalidation(cache: &dyn Cache) {
    // No invalidation at all.
    let token = cache.fill_token("clients/1").await.unwrap();
    let outcome = cache.fill("clients/1", value("one"), token).await.unwrap();
    assert_eq!(outcome, FillOutcome::Stored);
    assert_eq!(tag(cache, "clients/1").await.as_deref(), Some("one"));

    // Invalidations that do not cover the key: another root, a sibling, a longer key, a
    // prefix of the root name that is not a prefix of the key.
    let token = cache.fill_token("clients/1").await.unwrap();
    for prefix in [
        "orders/",
        "clients/2",
        "clients/10",
        "clients/1/x",
        "clientsx",
        "b",
    ] {
        invalidate(cache, prefix).await;
    }
    let outcome = cache.fill("clients/1", value("two"), token).await.unwrap();
    assert_eq!(outcome, FillOutcome::Stored);
    assert_eq!(tag(cache, "clients/1").await.as_deref(), Some("two"));

    // A covering invalidation *before* the token was taken does not make the fill stale.
    invalidate(cache, "clients/").await;
    let token = cache.fill_token("clients/1").await.unwrap();
    let outcome = cache
        .fill("clients/1", value("three"), token)
        .await
        .unwrap();
    assert_eq!(outcome, FillOutcome::Stored);
    assert_eq!(tag(cache, "clients/1").await.as_deref(), Some("three"));
}

/// The deepest nesting of arrays, maps and tags a field value may have: the decoder's recursion
/// limit of 256, less the stored array and the two maps around a field.
const MAX_DEPTH: usize = 253;

/// Rows whose one field nests `depth` levels of arrays, maps and tags around `tag`'s value, so
/// every kind of level counts.
fn nested(tag: &str, depth: usize) -> CachedRows {
    let leaf = Value::Text(tag.to_owned());
    let value = (0..depth).fold(leaf, |inner, level| match level % 3 {
        0 => Value::Array(vec![inner]),
        1 => Value::Map(vec![(Value::Null, inner)]),
        _ => Value::Tag(40, Box::new(inner)),
    });
    let mut record = Record::new();
    record.insert("tag".into(), Value::Text(tag.to_owned()));
    record.insert("deep".into(), value);
    let mut rows = Rows::new();
    rows.insert("1".into(), record);
    CachedRows::with_fetched_at(rows, common::stamp())
}

fn assert_refused(result: vlive::Result<impl std::fmt::Debug>, key: &str) {
    match result {
        Err(vlive::Error::ValueRefused {
            key: refused,
            reason: vlive::Refusal::TooDeep { max_depth, .. },
        }) => assert_eq!((&refused[..], max_depth), (key, MAX_DEPTH)),
        other => panic!("{key}: expected ValueRefused (too deep), got {other:?}"),
    }
}

/// Put refuses what get would refuse (issue 17): a value nested one level deeper than the
/// decoder reads is a typed error at `put` and at `fill`, and the key keeps what it held: a
/// miss where there was nothing, the previous value where there was one.
async fn a_value_get_would_refuse_is_refused_by_put_and_fill(cache: &dyn Cache) {
    let too_deep = nested("deep", MAX_DEPTH + 1);
    assert_refused(cache.put("new", too_deep.clone()).await, "new");
    assert_eq!(
        get(cache, "new").await,
        None,
        "a refused put stored something"
    );
    let token = cache.fill_token("new").await.unwrap();
    assert_refused(cache.fill("new", too_deep.clone(), token).await, "new");
    assert_eq!(
        get(cache, "new").await,
        None,
        "a refused fill stored something"
    );

    put(cache, "old", "previous").await;
    assert_refused(cache.put("old", too_deep.clone()).await, "old");
    assert_eq!(tag(cache, "old").await.as_deref(), Some("previous"));
    let token = cache.fill_token("old").await.unwrap();
    assert_refused(cache.fill("old", too_deep, token).await, "old");
    assert_eq!(tag(cache, "old").await.as_deref(), Some("previous"));
}

/// One level less than [`a_value_get_would_refuse_is_refused_by_put_and_fill`] is stored and
/// read back whole.
async fn a_value_at_the_nesting_limit_round_trips(cache: &dyn Cache) {
    let deepest = nested("deepest", MAX_DEPTH);
    cache.put("deepest", deepest.clone()).await.unwrap();
    assert_eq!(get(cache, "deepest").await, Some(deepest.clone()));
    let token = cache.fill_token("filled").await.unwrap();
    let outcome = cache.fill("filled", deepest.clone(), token).await.unwrap();
    assert_eq!(outcome, FillOutcome::Stored);
    assert_eq!(get(cache, "filled").await, Some(deepest));
}

/// Generates one `#[tokio::test]` per check and backend: `mem::<check>`, `redb::<check>` and,
/// with the `redis` feature, `redis_cache::<check>`, `redis_cache_tls::<check>` and
/// `tiered_cache::<check>`.
macro_rules! contract_suite {
    ($($check:ident),* $(,)?) => {
        mod mem {
            $(
                #[tokio::test]
                async fn $check() {
                    let cache = vlive::MemCache::new();
                    super::$check(&cache).await;
                }
            )*
        }

        mod redb {
            $(
                #[tokio::test]
                async fn $check() {
                    let dir = tempfile::tempdir().unwrap();
                    let cache = vlive::RedbCache::open(dir.path().join("cache")).unwrap();
                    super::$check(&cache).await;
                    cache.close().await.unwrap();
                }
            )*
        }

        /// One throwaway redis-server per check (`tests/common/redis_server.rs`).
        #[cfg(feature = "redis")]
        mod redis_cache {
            $(
                #[tokio::test]
                async fn $check() {
                    let server = super::redis_server::RedisServer::start();
                    let cache = vlive::RedisCache::connect(&server.url(), "contract")
                        .await
                        .unwrap();
                    super::$check(&cache).await;
                }
            )*
        }

        /// The same over TLS: a server with `--tls-port` and certificates of a private CA.
        #[cfg(feature = "redis")]
        mod redis_cache_tls {
            $(
                #[tokio::test]
                async fn $check() {
                    let ca = super::tls::Ca::new("contract CA");
                    let server = super::tls::TlsServer::start(&ca, false);
                    let cache = vlive::RedisCache::builder(&server.url(), "contract")
                        .tls_ca_pem(ca.pem())
                        .connect()
                        .await
                        .unwrap();
                    super::$check(&cache).await;
                }
            )*
        }

        /// One server, the namespace split into 4 shards (a cluster's layout, on one node).
        #[cfg(feature = "redis")]
        mod redis_cache_sharded {
            $(
                #[tokio::test]
                async fn $check() {
                    let server = super::redis_server::RedisServer::start();
                    let cache = vlive::RedisCache::builder(&server.url(), "contract")
                        .shards(4)
                        .connect()
                        .await
                        .unwrap();
                    super::$check(&cache).await;
                }
            )*
        }

        /// Every check on one Redis Cluster (3 masters, 3 replicas; 16 shards), a namespace
        /// each: a cluster per check would cost six servers each.
        #[cfg(feature = "redis")]
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn redis_cluster_keeps_the_contract() {
            use redis_cluster::RedisCluster;
            let cluster = RedisCluster::start().await;
            let seeds = cluster.seeds();
            $(
                let cache = vlive::RedisCache::cluster_builder(
                    &RedisCluster::seed_refs(&seeds),
                    stringify!($check),
                )
                .connect()
                .await
                .unwrap();
                $check(&cache).await;
            )*
        }

        /// A MemCache near tier in front of Redis.
        #[cfg(feature = "redis")]
        mod tiered_cache {
            $(
                #[tokio::test]
                async fn $check() {
                    let server = super::redis_server::RedisServer::start();
                    let far = vlive::RedisCache::connect(&server.url(), "contract")
                        .await
                        .unwrap();
                    let cache = vlive::TieredCache::new(vlive::MemCache::new(), far);
                    super::$check(&cache).await;
                }
            )*
        }
    };
}

contract_suite!(
    a_miss_is_none,
    put_replaces_the_value,
    the_empty_prefix_removes_everything,
    a_prefix_cutting_through_roots,
    a_prefix_with_a_slash,
    a_whole_key_as_prefix,
    tricky_keys_are_distinct,
    fetched_at_round_trips_to_the_millisecond,
    rich_values_round_trip_in_order,
    a_stale_fill_is_rejected_after_a_covering_invalidation,
    a_fill_is_accepted_after_an_unrelated_invalidation,
    a_value_get_would_refuse_is_refused_by_put_and_fill,
    a_value_at_the_nesting_limit_round_trips,
);

/// The RedbCache keeps nanoseconds (its documented promise, stronger than the contract's).
#[tokio::test]
async fn redb_keeps_fetched_at_to_the_nanosecond() {
    let dir = tempfile::tempdir().unwrap();
    let cache = vlive::RedbCache::open(dir.path()).unwrap();
    let at = UNIX_EPOCH + Duration::new(1_234_567_890, 123_456_789);
    let before = UNIX_EPOCH - Duration::new(3, 1);
    cache
        .put("n/1", CachedRows::with_fetched_at(rows("n"), at))
        .await
        .unwrap();
    cache
        .put("n/2", CachedRows::with_fetched_at(rows("n"), before))
        .await
        .unwrap();
    assert_eq!(cache.get("n/1").await.unwrap().unwrap().fetched_at, at);
    assert_eq!(cache.get("n/2").await.unwrap().unwrap().fetched_at, before);
    cache.close().await.unwrap();
}

#[tokio::test]
async fn no_cache_misses_everything_and_accepts_everything() {
    let cache = NoCache;
    for key in KEYS {
        cache.put(key, value("x")).await.unwrap();
        assert_eq!(cache.get(key).await.unwrap(), None, "{key:?}");
    }
    for prefix in ["", "cli", "clients/", "a"] {
        cache.invalidate_prefix(prefix).await.unwrap();
    }
    let token = cache.fill_token("clients/1").await.unwrap();
    cache.invalidate_prefix("cli").await.unwrap();
    // Whatever the outcome, nothing may be stored.
    cache.fill("clients/1", value("x"), token).await.unwrap();
    let token = cache.fill_token("clients/1").await.unwrap();
    cache.fill("clients/1", value("x"), token).await.unwrap();
    assert_eq!(cache.get("clients/1").await.unwrap(), None);
}
