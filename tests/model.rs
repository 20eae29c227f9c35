//! Model-based tests: random sequences of put / get / invalidate_prefix over keys and prefixes
//! chosen to stress the root/rest layout, compared step by step with a `BTreeMap` model of the
//! contract (`invalidate_prefix(p)` removes exactly the keys with `k.starts_with(p)`).
//! `RedbCache` additionally gets close-and-reopen and drop-and-reopen steps in the middle, so
//! the model also checks what survives a restart. `MemCache`, the reference, is checked against
//! the same model.
//!
//! A bounded mode runs the same operations against a `RedbCache`, and a `MemCache`, with a small
//! `max_bytes`:
//! there the model says what a get *may* return — the last value put, or a miss (an eviction) —
//! never an older value nor one invalidated, and once a key was seen missing it stays missing
//! until put again. `stats().live_bytes` stays within the budget after every operation.
//!
//! A second RedbCache model test runs the operations in *batches*: the actor is held inside a
//! commit while a group of commands queues up in a known order, so each group executes as one
//! transaction; every answer must still be the model's answer at that point of the sequence.

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

use std::collections::BTreeMap;
#[cfg(feature = "redis")]
use std::sync::atomic::Ordering;

use common::{Faults, park_actor, tag_of, value, wait_until, within};
use proptest::prelude::*;
use vlive::{Cache, MemCache, RedbCache};

/// Keys: empty, bare roots, roots that prefix other roots, trailing and doubled slashes, the
/// names a layout might reserve, non-ASCII, an empty root.
const KEYS: &[&str] = &[
    "",
    "a",
    "ab",
    "a/",
    "a/b",
    "a/bc",
    "a/__root__",
    "__root__",
    "a//b",
    "é",
    "é/ü",
    "ab/c",
    "/x",
    "/",
    "b/a",
    "vlive_meta",
];

/// Prefixes: every key, plus prefixes that cut through roots or through rests.
const PREFIXES: &[&str] = &[
    "", "a", "a/", "a/b", "ab", "é", "é/", "/", "__", "b", "b/", "x", "a//",
];

#[derive(Clone, Debug)]
enum Op {
    Put(usize, u8),
    Get(usize),
    Invalidate(usize),
    /// `true`: `close()` then reopen; `false`: drop every handle then reopen at once.
    Reopen(bool),
}

fn op() -> impl Strategy<Value = Op> {
    let prefix_count = KEYS.len() + PREFIXES.len();
    prop_oneof![
        6 => (0..KEYS.len(), any::<u8>()).prop_map(|(k, v)| Op::Put(k, v)),
        4 => (0..KEYS.len()).prop_map(Op::Get),
        3 => (0..prefix_count).prop_map(Op::Invalidate),
        1 => any::<bool>().prop_map(Op::Reopen),
    ]
}

fn prefix(index: usize) -> &'static str {
    KEYS.get(index)
        .copied()
        .unwrap_or_else(|| PREFIXES[index - KEYS.len()])
}

type Model = BTreeMap<&'static str, String>;

/// Checks every key of the universe against the model.
async fn check_all(cache: &dyn Cache, model: &Model, when: &str) {
    for key in KEYS {
        let found = cache
            .get(key)
            .await
            .unwrap_or_else(|e| panic!("get {key:?} {when}: {e}"));
        assert_eq!(
            found.as_ref().map(tag_of),
            model.get(key).cloned(),
            "key {key:?} {when}"
        );
    }
}

/// Runs `ops` against `cache` and against the model, and returns the cache (the last one
/// opened). `reopen` is `None` for a backend that cannot be reopened (its reopen steps are
/// skipped).
async fn run<C: Cache + 'static>(ops: &[Op], mut cache: C, reopen: Option<&dyn Fn() -> C>) -> C {
    let mut model = Model::new();
    for (step, op) in ops.iter().enumerate() {
        let when = format!("after step {step} ({op:?})");
        match *op {
            Op::Put(k, v) => {
                let tag = format!("{v}");
                cache.put(KEYS[k], value(&tag)).await.unwrap();
                model.insert(KEYS[k], tag);
            }
            Op::Get(k) => {
                let found = cache.get(KEYS[k]).await.unwrap();
                assert_eq!(
                    found.as_ref().map(tag_of),
                    model.get(KEYS[k]).cloned(),
                    "get {:?} at step {step}",
                    KEYS[k]
                );
            }
            Op::Invalidate(p) => {
                let p = prefix(p);
                cache.invalidate_prefix(p).await.unwrap();
                model.retain(|k, _| !k.starts_with(p));
            }
            Op::Reopen(close) => {
                let Some(reopen) = reopen else { continue };
                if close {
                    within("close", close_if_redb(&cache)).await;
                }
                drop(cache);
                cache = reopen();
                check_all(&cache, &model, &when).await;
            }
        }
    }
    check_all(&cache, &model, "at the end").await;
    cache
}

/// `close()` for a RedbCache, nothing for others.
async fn close_if_redb<C: Cache + 'static>(cache: &C) {
    if let Some(redb) = (cache as &dyn std::any::Any).downcast_ref::<RedbCache>() {
        redb.close().await.unwrap();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn redb_cache_matches_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("cache");
        runtime().block_on(async {
            let open = || RedbCache::open(&folder).unwrap();
            let cache = run(&ops, open(), Some(&open)).await;
            within("final close", cache.close()).await.unwrap();
        });
    }

    #[test]
    fn mem_cache_matches_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        runtime().block_on(run(&ops, MemCache::new(), None));
    }
}

/// A budget of a few entries (each here is some 40–50 bytes of key and CBOR, charged about
/// 270 with its bookkeeping in redb's leaves).
const BOUNDED_MAX_BYTES: u64 = 960;

/// A cache with a byte budget: what it says it holds.
trait Bounded: Cache + 'static {
    fn live_bytes(&self) -> u64;
}

impl Bounded for RedbCache {
    fn live_bytes(&self) -> u64 {
        self.stats().live_bytes
    }
}

impl Bounded for MemCache {
    fn live_bytes(&self) -> u64 {
        self.stats().live_bytes
    }
}

/// Runs `ops` against a bounded cache; the model holds what each key may still return. Returns
/// the cache (the last one opened); `reopen` as in [`run`].
async fn run_bounded<C: Bounded>(ops: &[Op], mut cache: C, reopen: Option<&dyn Fn() -> C>) -> C {
    let mut model = Model::new();
    for (step, op) in ops.iter().enumerate() {
        match *op {
            Op::Put(k, v) => {
                let tag = format!("{v}");
                cache.put(KEYS[k], value(&tag)).await.unwrap();
                model.insert(KEYS[k], tag);
            }
            Op::Get(k) => {
                let found = cache.get(KEYS[k]).await.unwrap().as_ref().map(tag_of);
                match found {
                    None => {
                        // Evicted (or never there): it must stay a miss until put again.
                        model.remove(KEYS[k]);
                    }
                    Some(tag) => assert_eq!(
                        Some(&tag),
                        model.get(KEYS[k]),
                        "get {:?} at step {step}: an older or invalidated value",
                        KEYS[k]
                    ),
                }
            }
            Op::Invalidate(p) => {
                let p = prefix(p);
                cache.invalidate_prefix(p).await.unwrap();
                model.retain(|k, _| !k.starts_with(p));
            }
            Op::Reopen(close) => {
                let Some(reopen) = reopen else { continue };
                if close {
                    within("close", close_if_redb(&cache)).await;
                }
                drop(cache);
                cache = reopen();
            }
        }
        let live_bytes = cache.live_bytes();
        assert!(
            live_bytes <= BOUNDED_MAX_BYTES,
            "after step {step} ({op:?}): {live_bytes} live bytes"
        );
    }
    cache
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn a_bounded_redb_cache_returns_the_last_value_or_a_miss(
        ops in proptest::collection::vec(op(), 1..60)
    ) {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("cache");
        runtime().block_on(async {
            let open = || {
                RedbCache::builder()
                    .max_bytes(BOUNDED_MAX_BYTES)
                    .open(&folder)
                    .unwrap()
            };
            let cache = run_bounded(&ops, open(), Some(&open)).await;
            within("final close", cache.close()).await.unwrap();
        });
    }

    #[test]
    fn a_bounded_mem_cache_returns_the_last_value_or_a_miss(
        ops in proptest::collection::vec(op(), 1..80)
    ) {
        let cache = MemCache::with_max_bytes(BOUNDED_MAX_BYTES);
        runtime().block_on(run_bounded(&ops, cache, None));
    }
}

/// RedisCache against the model, a fresh namespace per case (`{name}-N`), through `connect`.
/// Its "reopen" step switches to a second handle with its own connection, so every later
/// answer must come from what the server holds, not from anything kept by the first handle.
#[cfg(feature = "redis")]
fn redis_cache_cases<F, Fut>(cases: u32, name: &str, connect: F)
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = vlive::Result<vlive::RedisCache>>,
{
    use proptest::test_runner::{Config, TestRunner};
    let mut runner = TestRunner::new(Config::with_cases(cases));
    let count = std::sync::atomic::AtomicUsize::new(0);
    let strategy = proptest::collection::vec(op(), 1..40);
    runner
        .run(&strategy, |ops| {
            let namespace = format!("{name}-{}", count.fetch_add(1, Ordering::Relaxed));
            runtime().block_on(async {
                let first = connect(namespace.clone()).await.unwrap();
                let second = connect(namespace).await.unwrap();
                let reopen = || second.clone();
                run(&ops, first, Some(&reopen)).await;
            });
            Ok(())
        })
        .unwrap();
}

#[cfg(feature = "redis")]
#[test]
fn redis_cache_matches_the_model() {
    let server = redis_server::RedisServer::start();
    let url = server.url();
    redis_cache_cases(64, "model", |namespace| {
        let url = url.clone();
        async move { vlive::RedisCache::connect(&url, &namespace).await }
    });
}

/// The same over TLS (a private CA, a server with `--tls-port`), fewer cases: the protocol is
/// the plain one's, and this checks that nothing of it depends on the transport.
#[cfg(feature = "redis")]
#[test]
fn redis_cache_over_tls_matches_the_model() {
    let ca = tls::Ca::new("model CA");
    let server = tls::TlsServer::start(&ca, false);
    let (url, ca_pem) = (server.url(), ca.pem());
    redis_cache_cases(16, "model-tls", |namespace| {
        let builder = vlive::RedisCache::builder(&url, &namespace).tls_ca_pem(ca_pem.clone());
        builder.connect()
    });
}

/// The same with the namespace split into shards on one server: prefixes, tokens and the
/// reopened handle must not depend on which shard a key lives in.
#[cfg(feature = "redis")]
#[test]
fn sharded_redis_cache_matches_the_model() {
    let server = redis_server::RedisServer::start();
    let url = server.url();
    redis_cache_cases(32, "model-sharded", |namespace| {
        vlive::RedisCache::builder(&url, &namespace)
            .shards(3)
            .connect()
    });
}

/// And on a Redis Cluster (3 masters, 3 replicas; 16 shards over them).
#[cfg(feature = "redis")]
#[test]
fn redis_cache_on_a_cluster_matches_the_model() {
    let cluster = runtime().block_on(redis_cluster::RedisCluster::start());
    let seeds = cluster.seeds();
    redis_cache_cases(16, "model-cluster", |namespace| {
        let seeds = redis_cluster::RedisCluster::seed_refs(&seeds);
        vlive::RedisCache::cluster_builder(&seeds, &namespace).connect()
    });
}

/// TieredCache (a MemCache near tier in front of Redis; half the cases on a namespace split
/// into shards) against the model. Its "reopen" step
/// switches to a second TieredCache with its own near tier and connections, as another process
/// would have: what it answers must agree with every write the first one made.
#[cfg(feature = "redis")]
#[test]
fn tiered_cache_matches_the_model() {
    use proptest::test_runner::{Config, TestRunner};
    let server = redis_server::RedisServer::start();
    let mut runner = TestRunner::new(Config::with_cases(32));
    let cases = std::sync::atomic::AtomicUsize::new(0);
    let strategy = proptest::collection::vec(op(), 1..40);
    runner
        .run(&strategy, |ops| {
            let case = cases.fetch_add(1, Ordering::Relaxed);
            let namespace = format!("tiered-{case}");
            // Every other case splits the namespace into shards: one log reader per shard.
            let shards = if case % 2 == 0 { 1 } else { 3 };
            runtime().block_on(async {
                let url = server.url();
                let connect = || {
                    vlive::RedisCache::builder(&url, &namespace)
                        .shards(shards)
                        .connect()
                };
                let first = vlive::TieredCache::new(MemCache::new(), connect().await.unwrap());
                let second = vlive::TieredCache::new(MemCache::new(), connect().await.unwrap());
                let reopen = || second.clone();
                run(&ops, first, Some(&reopen)).await;
            });
            Ok(())
        })
        .unwrap();
}

/// One command of a batch.
#[derive(Clone, Debug)]
enum BatchOp {
    Put(usize, u8),
    Get(usize),
    Invalidate(usize),
}

fn batch_op() -> impl Strategy<Value = BatchOp> {
    let prefix_count = KEYS.len() + PREFIXES.len();
    prop_oneof![
        5 => (0..KEYS.len(), any::<u8>()).prop_map(|(k, v)| BatchOp::Put(k, v)),
        4 => (0..KEYS.len()).prop_map(BatchOp::Get),
        3 => (0..prefix_count).prop_map(BatchOp::Invalidate),
    ]
}

impl BatchOp {
    /// Whether this op, queued, keeps a later get of `key` from reading beside the actor.
    fn covers(&self, key: &str) -> bool {
        match *self {
            BatchOp::Put(k, _) => KEYS[k] == key,
            BatchOp::Get(_) => false,
            BatchOp::Invalidate(p) => key.starts_with(prefix(p)),
        }
    }
}

/// Queues `ops` behind a held actor, in order, then lets them run as one batch; checks every
/// answer against the model. A get that no earlier op of the batch covers does not queue: it is
/// answered beside the actor at once, and must then give the answer of its place in the order.
async fn run_batch(
    cache: &RedbCache,
    faults: &std::sync::Arc<Faults>,
    ops: &[BatchOp],
    model: &mut Model,
) {
    let parked = park_actor(cache, faults).await;
    let mut tasks = Vec::new();
    let mut queued = 0;
    for (i, op) in ops.iter().enumerate() {
        let handle = cache.clone();
        let task = tokio::spawn({
            let op = op.clone();
            async move {
                let cache = handle;
                match op {
                    BatchOp::Put(k, v) => cache
                        .put(KEYS[k], value(&v.to_string()))
                        .await
                        .map(|()| None),
                    BatchOp::Get(k) => cache
                        .get(KEYS[k])
                        .await
                        .map(|found| found.as_ref().map(tag_of)),
                    BatchOp::Invalidate(p) => {
                        cache.invalidate_prefix(prefix(p)).await.map(|()| None)
                    }
                }
            }
        });
        match *op {
            BatchOp::Get(k) if !ops[..i].iter().any(|earlier| earlier.covers(KEYS[k])) => {
                // Beside the actor: from the snapshot, or from the hot tier in front of it.
                let answered_beside = || {
                    let stats = cache.stats();
                    stats.snapshot_gets + stats.hot_hits
                };
                let beside = answered_beside();
                wait_until("the get to be answered beside the actor", || {
                    task.is_finished()
                })
                .await;
                assert_eq!(answered_beside(), beside + 1);
            }
            _ => {
                queued += 1;
                wait_until("the command to queue", || {
                    cache.stats().queue_depth == queued
                })
                .await;
            }
        }
        tasks.push(task);
    }
    // The parked batch is not counted until it finishes.
    let batches_before = cache.stats().batches;
    faults.release();
    within("the parked put", parked).await.unwrap().unwrap();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(within("a batched command", task).await.unwrap().unwrap());
    }
    assert_eq!(
        cache.stats().batches,
        batches_before + 1 + u64::from(queued > 0),
        "the queued commands did not run as one batch"
    );
    for (i, (op, answer)) in ops.iter().zip(answers).enumerate() {
        match *op {
            BatchOp::Put(k, v) => {
                model.insert(KEYS[k], v.to_string());
            }
            BatchOp::Get(k) => assert_eq!(
                answer,
                model.get(KEYS[k]).cloned(),
                "command {i} of the batch {ops:?}: get {:?}",
                KEYS[k]
            ),
            BatchOp::Invalidate(p) => {
                let p = prefix(p);
                model.retain(|k, _| !k.starts_with(p));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn redb_cache_matches_the_model_batch_by_batch(
        batches in proptest::collection::vec(
            (proptest::collection::vec(batch_op(), 1..12), 0..4u8),
            1..6,
        )
    ) {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("cache");
        let faults = Faults::new();
        let open = || {
            RedbCache::builder()
                .backend_layer(faults.layer())
                .open(&folder)
                .unwrap()
        };
        runtime().block_on(async {
            let mut cache = open();
            let mut model = Model::new();
            for (ops, reopen) in &batches {
                run_batch(&cache, &faults, ops, &mut model).await;
                check_all(&cache, &model, &format!("after the batch {ops:?}")).await;
                // Now and then restart between batches: 0 close, 1 drop, else keep going.
                if *reopen < 2 {
                    if *reopen == 0 {
                        within("close", cache.close()).await.unwrap();
                    }
                    drop(cache);
                    cache = open();
                    check_all(&cache, &model, "after a reopen").await;
                }
            }
            within("final close", cache.close()).await.unwrap();
        });
    }
}
