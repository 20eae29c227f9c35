//! TieredCache coherence within one test process: two caches on one Redis namespace, each with
//! its own near tier, stand in for two processes (they share nothing but the server). Writes
//! through one must reach the other's near tier through the log; a FLUSHALL or a persistent
//! near tier's leftovers must never be served; fills stay guarded across instances.
//! `tests/redis_processes.rs` repeats the key checks with a real second process.
#![cfg(feature = "redis")]

mod common;
#[path = "common/near.rs"]
mod near;
#[path = "common/redis_server.rs"]
mod redis_server;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::time::Duration;

use common::{tag, value, wait_until};
use near::cache_in_near;
use proptest::prelude::*;
use redis_server::RedisServer;
use vlive::{Cache, FillOutcome, MemCache, RedbCache, RedisCache, TieredCache};

async fn far(server: &RedisServer, namespace: &str) -> RedisCache {
    RedisCache::connect(&server.url(), namespace).await.unwrap()
}

/// A tiered cache whose reader polls often, so idle rounds (and tests) move quickly.
async fn tiered(server: &RedisServer, namespace: &str) -> TieredCache {
    TieredCache::builder(MemCache::new(), far(server, namespace).await)
        .poll_interval(Duration::from_millis(50))
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_write_through_one_cache_reaches_the_others_near_tier() {
    let server = RedisServer::start();
    let (a, b) = (tiered(&server, "ns").await, tiered(&server, "ns").await);

    a.put("clients/1", value("v1")).await.unwrap();
    assert_eq!(cache_in_near(&b, "clients/1").await.as_deref(), Some("v1"));

    a.put("clients/1", value("v2")).await.unwrap();
    b.sync().await;
    assert_eq!(tag(&b, "clients/1").await.as_deref(), Some("v2"), "put");

    assert_eq!(cache_in_near(&b, "clients/1").await.as_deref(), Some("v2"));
    a.invalidate_prefix("cli").await.unwrap();
    b.sync().await;
    assert_eq!(tag(&b, "clients/1").await, None, "invalidate_prefix");
    assert!(b.stats().log_entries >= 2, "{:?}", b.stats());
}

#[tokio::test]
async fn a_write_is_visible_to_the_writers_next_get_at_once() {
    let server = RedisServer::start();
    let a = tiered(&server, "ns").await;
    a.put("k", value("v1")).await.unwrap();
    assert_eq!(cache_in_near(&a, "k").await.as_deref(), Some("v1"));
    // No sync: the writer's own near tier drops the key before the write returns.
    a.put("k", value("v2")).await.unwrap();
    assert_eq!(tag(&a, "k").await.as_deref(), Some("v2"));
    a.invalidate_prefix("k").await.unwrap();
    assert_eq!(tag(&a, "k").await, None);
}

#[tokio::test]
async fn a_flushall_empties_every_near_tier_and_stales_old_tokens() {
    let server = RedisServer::start();
    let (a, b) = (tiered(&server, "ns").await, tiered(&server, "ns").await);
    a.put("k", value("v1")).await.unwrap();
    assert_eq!(cache_in_near(&b, "k").await.as_deref(), Some("v1"));
    let token = b.fill_token("k").await.unwrap();
    let flushes = b.stats().flushes;

    server.admin(&["FLUSHALL"]).await.unwrap();
    wait_until("b's reader to see the new incarnation", || {
        b.stats().flushes > flushes
    })
    .await;
    assert_eq!(
        tag(&b, "k").await,
        None,
        "a near tier served a flushed value"
    );
    assert_eq!(
        b.fill("k", value("old"), token).await.unwrap(),
        FillOutcome::RejectedStale,
        "a token from before the FLUSHALL was accepted"
    );
    let fresh = b.fill_token("k").await.unwrap();
    assert_eq!(
        b.fill("k", value("new"), fresh).await.unwrap(),
        FillOutcome::Stored
    );
    a.sync().await;
    assert_eq!(tag(&a, "k").await.as_deref(), Some("new"));
}

#[tokio::test]
async fn a_persistent_near_tier_is_flushed_at_start() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let near = RedbCache::open(dir.path()).unwrap();
    near.put("k", value("left over")).await.unwrap();
    let cache = TieredCache::builder(near.clone(), far(&server, "ns").await)
        .poll_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    // sync waits for the reader's first session, which flushes before anything else.
    cache.sync().await;
    assert!(
        cache.stats().flushes > 0,
        "sync returned before the first flush"
    );
    assert_eq!(
        tag(&cache, "k").await,
        None,
        "served what the near tier held before start"
    );
    assert_eq!(tag(&near, "k").await, None);
    drop(cache);
    near.close().await.unwrap();
}

#[tokio::test]
async fn the_fill_guard_holds_between_caches() {
    let server = RedisServer::start();
    let (a, b) = (tiered(&server, "ns").await, tiered(&server, "ns").await);
    let token = a.fill_token("clients/1").await.unwrap();
    b.invalidate_prefix("clients/").await.unwrap();
    assert_eq!(
        a.fill("clients/1", value("stale"), token).await.unwrap(),
        FillOutcome::RejectedStale
    );
    let token = a.fill_token("clients/1").await.unwrap();
    b.invalidate_prefix("orders/").await.unwrap();
    assert_eq!(
        a.fill("clients/1", value("fresh"), token).await.unwrap(),
        FillOutcome::Stored
    );
    b.sync().await;
    assert_eq!(tag(&b, "clients/1").await.as_deref(), Some("fresh"));
}

#[tokio::test]
async fn a_filled_near_entry_is_dropped_by_anothers_put() {
    // A fill stores in both tiers; another cache's later put must still reach the near copy.
    let server = RedisServer::start();
    let (a, b) = (tiered(&server, "ns").await, tiered(&server, "ns").await);
    b.sync().await;
    let token = b.fill_token("k").await.unwrap();
    assert_eq!(
        b.fill("k", value("v1"), token).await.unwrap(),
        FillOutcome::Stored
    );
    assert_eq!(cache_in_near(&b, "k").await.as_deref(), Some("v1"));
    a.put("k", value("v2")).await.unwrap();
    b.sync().await;
    assert_eq!(tag(&b, "k").await.as_deref(), Some("v2"));
}

type Model = BTreeMap<String, String>;

#[derive(Clone, Debug)]
enum Op {
    Put(usize, u8),
    Get(usize),
    Invalidate(usize),
    /// Go on through the other cache (after `sync`, as a reader in another process would).
    Switch,
}

const KEYS: &[&str] = &["", "a", "a/", "a/b", "ab", "é", "é/ü", "b/1", "b/10"];
const PREFIXES: &[&str] = &["", "a", "a/", "b/1", "é", "x"];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..KEYS.len(), any::<u8>()).prop_map(|(k, v)| Op::Put(k, v)),
        5 => (0..KEYS.len()).prop_map(Op::Get),
        2 => (0..PREFIXES.len()).prop_map(Op::Invalidate),
        2 => Just(Op::Switch),
    ]
}

async fn run_model(ops: &[Op], caches: [&TieredCache; 2]) {
    let mut model = Model::new();
    let current = Cell::new(0);
    for (step, op) in ops.iter().enumerate() {
        let cache = caches[current.get()];
        match *op {
            Op::Put(k, v) => {
                cache.put(KEYS[k], value(&v.to_string())).await.unwrap();
                model.insert(KEYS[k].into(), v.to_string());
            }
            Op::Get(k) => assert_eq!(
                tag(cache, KEYS[k]).await,
                model.get(KEYS[k]).cloned(),
                "get {:?} at step {step} through cache {}",
                KEYS[k],
                current.get()
            ),
            Op::Invalidate(p) => {
                cache.invalidate_prefix(PREFIXES[p]).await.unwrap();
                model.retain(|k, _| !k.starts_with(PREFIXES[p]));
            }
            Op::Switch => {
                current.set(1 - current.get());
                caches[current.get()].sync().await;
            }
        }
    }
}

/// Two caches against one model: every get, after a switch and a `sync`, must see exactly the
/// writes made through either cache. A near tier that missed a log entry answers wrong.
#[test]
fn two_tiered_caches_match_the_model() {
    use proptest::test_runner::{Config, TestRunner};
    let server = RedisServer::start();
    let mut runner = TestRunner::new(Config::with_cases(32));
    let cases = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&proptest::collection::vec(op(), 1..40), |ops| {
            let namespace = format!(
                "m{}",
                cases.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            );
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let (a, b) = (
                    tiered(&server, &namespace).await,
                    tiered(&server, &namespace).await,
                );
                a.sync().await;
                b.sync().await;
                run_model(&ops, [&a, &b]).await;
            });
            Ok(())
        })
        .unwrap();
}

/// A MemCache whose invalidations fail while `failing` is set.
#[derive(Clone, Default)]
struct FlakyNear {
    inner: MemCache,
    failing: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

#[async_trait::async_trait]
impl Cache for FlakyNear {
    async fn get(&self, key: &str) -> vlive::Result<Option<vlive::CachedRows>> {
        self.inner.get(key).await
    }
    async fn put(&self, key: &str, rows: vlive::CachedRows) -> vlive::Result<()> {
        self.inner.put(key, rows).await
    }
    async fn invalidate_prefix(&self, prefix: &str) -> vlive::Result<()> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(vlive::Error::Closed);
        }
        self.inner.invalidate_prefix(prefix).await
    }
    async fn fill_token(&self, key: &str) -> vlive::Result<vlive::FillToken> {
        self.inner.fill_token(key).await
    }
    async fn fill(
        &self,
        key: &str,
        rows: vlive::CachedRows,
        token: vlive::FillToken,
    ) -> vlive::Result<FillOutcome> {
        self.inner.fill(key, rows, token).await
    }
}

#[tokio::test]
async fn a_near_tier_that_fails_to_drop_a_key_is_bypassed_until_flushed() {
    let server = RedisServer::start();
    let near = FlakyNear::default();
    let cache = TieredCache::builder(near.clone(), far(&server, "ns").await)
        .poll_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    cache.put("k", value("v1")).await.unwrap();
    assert_eq!(cache_in_near(&cache, "k").await.as_deref(), Some("v1"));

    near.failing
        .store(true, std::sync::atomic::Ordering::SeqCst);
    cache.put("k", value("v2")).await.unwrap();
    // The near tier still holds "v1"; it must not be asked.
    assert_eq!(tag(&near.inner, "k").await.as_deref(), Some("v1"));
    let bypassed = cache.stats().bypassed;
    assert_eq!(tag(&cache, "k").await.as_deref(), Some("v2"));
    assert_eq!(cache.stats().bypassed, bypassed + 1);

    let flushes = cache.stats().flushes;
    near.failing
        .store(false, std::sync::atomic::Ordering::SeqCst);
    wait_until("the reader to flush the near tier again", || {
        cache.stats().flushes > flushes && cache.stats().caught_up_age.is_some()
    })
    .await;
    assert_eq!(cache_in_near(&cache, "k").await.as_deref(), Some("v2"));
}
