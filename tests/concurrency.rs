//! Concurrency of `RedbCache`: many tasks over many clones each get their own values back;
//! read-your-writes across clones and across a second in-process `open`; backpressure with a
//! tiny channel; group commit really batching (made deterministic by holding the actor inside a
//! commit while commands pile up) within the batch limits; what happens to commands queued
//! around `close`; `Error::Closed` on every clone after `close`; reopening at once after
//! `close` and after dropping every handle (the in-process registry waits for the old actor).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{Faults, faulty, park_actor, parked_with_capacity, tag, value, wait_until, within};
use tokio::task::JoinHandle;
use vlive::{Cache, Error, FillOutcome, RedbCache};

/// Spawns one put per key, each on its own clone.
fn spawn_puts(cache: &RedbCache, keys: &[String]) -> Vec<JoinHandle<vlive::Result<()>>> {
    keys.iter()
        .map(|key| {
            let cache = cache.clone();
            let key = key.clone();
            tokio::spawn(async move { cache.put(&key, value(&key)).await })
        })
        .collect()
}

async fn join_all<T>(tasks: Vec<JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        out.push(within("a task", task).await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_tasks_over_clones_each_get_their_own_values() {
    let dir = tempfile::tempdir().unwrap();
    let cache = RedbCache::open(dir.path()).unwrap();
    let clones: Vec<RedbCache> = (0..5).map(|_| cache.clone()).collect();
    let start = Arc::new(tokio::sync::Barrier::new(200));
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let cache = clones[i % clones.len()].clone();
            let start = start.clone();
            tokio::spawn(async move {
                // Half the tasks share one root, half own a root (a bare key): both layouts.
                let key = if i % 2 == 0 {
                    format!("shared/{i}")
                } else {
                    format!("own{i}")
                };
                start.wait().await;
                for round in 0..5 {
                    let mine = format!("{i}:{round}");
                    cache.put(&key, value(&mine)).await.unwrap();
                    assert_eq!(
                        tag(&cache, &key).await.as_deref(),
                        Some(mine.as_str()),
                        "task {i} read back something else in round {round}"
                    );
                }
                key
            })
        })
        .collect();
    let keys = join_all(tasks).await;
    // A second open in this process shares the actor (its gets count in the same stats).
    let another_handle = RedbCache::open(dir.path()).unwrap();
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(tag(&another_handle, key).await, Some(format!("{i}:4")));
    }
    let stats = cache.stats();
    assert_eq!(stats.puts, 1000);
    assert_eq!(stats.gets(), 1000 + 200);
    assert_eq!(stats.hits, 1000 + 200);
    cache.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_visible_at_once_from_every_clone() {
    let dir = tempfile::tempdir().unwrap();
    let a = RedbCache::open(dir.path()).unwrap();
    let b = a.clone();
    // A second open in the same process is another way to get a handle to the same cache.
    let c = RedbCache::open(dir.path()).unwrap();

    // Background traffic, so the checked commands share batches with others.
    let stop = Arc::new(AtomicBool::new(false));
    let noise: Vec<_> = (0..8)
        .map(|n| {
            let cache = a.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("noise/{n}/{}", i % 5);
                    cache.put(&key, value("n")).await.unwrap();
                    cache.get(&key).await.unwrap();
                    if i % 7 == 0 {
                        cache
                            .invalidate_prefix(&format!("noise/{n}/"))
                            .await
                            .unwrap();
                    }
                    i += 1;
                }
            })
        })
        .collect();

    for i in 0..100 {
        let key = format!("ryw/{i}");
        let (writer, reader, other) = match i % 3 {
            0 => (&a, &b, &c),
            1 => (&b, &c, &a),
            _ => (&c, &a, &b),
        };
        writer.put(&key, value(&format!("w{i}"))).await.unwrap();
        assert_eq!(tag(reader, &key).await, Some(format!("w{i}")), "step {i}");
        other.invalidate_prefix(&key).await.unwrap();
        assert_eq!(tag(writer, &key).await, None, "step {i}: invalidated");
        assert_eq!(tag(reader, &key).await, None, "step {i}: invalidated");
        reader.put(&key, value(&format!("r{i}"))).await.unwrap();
        assert_eq!(tag(other, &key).await, Some(format!("r{i}")), "step {i}");
        // A fill token from one clone is understood by another (same actor).
        let token = writer.fill_token(&key).await.unwrap();
        other.invalidate_prefix("ryw/").await.unwrap();
        let outcome = reader.fill(&key, value("stale"), token).await.unwrap();
        assert_eq!(outcome, FillOutcome::RejectedStale, "step {i}");
        assert_eq!(tag(writer, &key).await, None, "step {i}: stale fill stored");
    }
    stop.store(true, Ordering::Relaxed);
    join_all(noise).await;
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_channel_makes_callers_wait_without_losing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let cache = RedbCache::builder().capacity(1).open(dir.path()).unwrap();

    let done = Arc::new(AtomicBool::new(false));
    let monitor = {
        let cache = cache.clone();
        let done = done.clone();
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                let depth = cache.stats().queue_depth;
                assert!(depth <= 1, "queue depth {depth} exceeds the capacity of 1");
                tokio::task::yield_now().await;
            }
        })
    };
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let cache = cache.clone();
            tokio::spawn(async move {
                for round in 0..5 {
                    let key = format!("bp/{i}");
                    cache.put(&key, value(&format!("{round}"))).await.unwrap();
                }
            })
        })
        .collect();
    join_all(tasks).await;
    done.store(true, Ordering::Relaxed);
    within("the monitor", monitor).await.unwrap();
    for i in 0..100 {
        assert_eq!(tag(&cache, &format!("bp/{i}")).await.as_deref(), Some("4"));
    }
    assert_eq!(cache.stats().puts, 500);
    cache.close().await.unwrap();
}

/// Deterministic backpressure: with the actor stuck in a commit, at most `capacity` commands
/// wait in the channel; the other callers wait (asynchronously) and none of them is answered
/// until the actor moves on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_actor_holds_callers_at_the_channel_capacity() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let (cache, parked) = parked_with_capacity(dir.path(), &faults, 2).await;

    let started = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let cache = cache.clone();
            let started = started.clone();
            let finished = finished.clone();
            tokio::spawn(async move {
                started.fetch_add(1, Ordering::SeqCst);
                let result = cache.put(&format!("bp/{i}"), value("x")).await;
                finished.fetch_add(1, Ordering::SeqCst);
                result
            })
        })
        .collect();
    wait_until("every caller to start", || {
        started.load(Ordering::SeqCst) == 10
    })
    .await;
    wait_until("the channel to fill", || cache.stats().queue_depth == 2).await;
    // Give the other callers every chance to (wrongly) get past a full channel.
    for _ in 0..50 {
        tokio::task::yield_now().await;
        assert!(cache.stats().queue_depth <= 2, "more queued than capacity");
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(cache.stats().queue_depth <= 2, "more queued than capacity");
    assert_eq!(
        finished.load(Ordering::SeqCst),
        0,
        "a caller was answered while the actor was stuck"
    );
    assert!(
        !parked.is_finished(),
        "a put was acknowledged before its commit's fsync returned"
    );

    faults.release();
    within("the parked put", parked).await.unwrap().unwrap();
    for result in join_all(tasks).await {
        result.unwrap();
    }
    for i in 0..10 {
        assert_eq!(tag(&cache, &format!("bp/{i}")).await.as_deref(), Some("x"));
    }
    cache.close().await.unwrap();
}

/// Group commit, made deterministic: the actor is held inside one commit while 50 puts queue
/// up; released, it must take them in one batch (one transaction) and acknowledge them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_writes_commit_together_in_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let cache = faulty(dir.path(), &faults);
    let parked = park_actor(&cache, &faults).await;
    let batches_before = cache.stats().batches;

    let keys: Vec<String> = (0..50).map(|i| format!("g/{i}")).collect();
    let tasks = spawn_puts(&cache, &keys);
    wait_until("50 queued puts", || cache.stats().queue_depth == 50).await;
    faults.release();

    within("the parked put", parked).await.unwrap().unwrap();
    for result in join_all(tasks).await {
        result.unwrap();
    }
    let stats = cache.stats();
    assert!(
        stats.max_batch_ops >= 50,
        "50 queued puts were not taken as one batch: {stats:?}"
    );
    // The parked batch finished, then exactly one more batch carried the 50 puts.
    assert_eq!(stats.batches, batches_before + 2, "{stats:?}");
    for key in &keys {
        assert_eq!(tag(&cache, key).await.as_deref(), Some(key.as_str()));
    }
    cache.close().await.unwrap();
}

/// Group commit without any help: many concurrent puts on a multi-thread runtime share
/// batches. A round where every put happened to find an empty queue is retried, so only a
/// cache that never batches fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_puts_share_batches() {
    let dir = tempfile::tempdir().unwrap();
    let cache = RedbCache::open(dir.path()).unwrap();
    for round in 0..5 {
        let start = Arc::new(tokio::sync::Barrier::new(300));
        let tasks: Vec<_> = (0..300)
            .map(|i| {
                let cache = cache.clone();
                let start = start.clone();
                tokio::spawn(async move {
                    start.wait().await;
                    cache.put(&format!("c/{round}/{i}"), value("x")).await
                })
            })
            .collect();
        for result in join_all(tasks).await {
            result.unwrap();
        }
        if cache.stats().max_batch_ops > 1 {
            break;
        }
    }
    let stats = cache.stats();
    assert!(stats.max_batch_ops > 1, "no batching at all: {stats:?}");
    assert!(stats.batches < stats.batched_ops, "{stats:?}");
    cache.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_stay_within_max_batch_ops() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, stats) =
        puts_queued_behind_a_parked_actor(RedbCache::builder().max_batch_ops(8), dir.path(), 50)
            .await;
    assert_eq!(stats.max_batch_ops, 8, "{stats:?}");
    cache.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_stay_within_max_batch_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, stats) =
        puts_queued_behind_a_parked_actor(RedbCache::builder().max_batch_bytes(1), dir.path(), 20)
            .await;
    assert_eq!(
        stats.max_batch_ops, 1,
        "every put exceeds 1 byte, so none may share a batch: {stats:?}"
    );
    cache.close().await.unwrap();
}

/// Opens a cache from `builder`, queues `count` puts while the actor is parked in a commit, lets
/// them run, checks every one landed, and returns the cache with its stats at that point.
async fn puts_queued_behind_a_parked_actor(
    builder: vlive::RedbCacheBuilder,
    folder: &std::path::Path,
    count: usize,
) -> (RedbCache, vlive::RedbCacheStats) {
    let faults = Faults::new();
    let cache = builder.backend_layer(faults.layer()).open(folder).unwrap();
    let parked = park_actor(&cache, &faults).await;
    let keys: Vec<String> = (0..count).map(|i| format!("q/{i}")).collect();
    let tasks = spawn_puts(&cache, &keys);
    wait_until("the puts to queue", || {
        cache.stats().queue_depth == count as u64
    })
    .await;
    faults.release();
    within("the parked put", parked).await.unwrap().unwrap();
    for result in join_all(tasks).await {
        result.unwrap();
    }
    let stats = cache.stats();
    for key in &keys {
        assert_eq!(tag(&cache, key).await.as_deref(), Some(key.as_str()));
    }
    (cache, stats)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_a_folder_twice_in_process_shares_the_actor() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("cache");
    let a = RedbCache::open(&folder).unwrap();
    // Another spelling of the same folder.
    let b = RedbCache::open(dir.path().join(".").join("cache")).unwrap();
    assert_eq!(a.folder(), b.folder());

    a.put("k", value("from-a")).await.unwrap();
    assert_eq!(tag(&b, "k").await.as_deref(), Some("from-a"));
    b.put("k", value("from-b")).await.unwrap();
    assert_eq!(tag(&a, "k").await.as_deref(), Some("from-b"));
    // Same actor, same counters.
    assert_eq!(a.stats().puts, 2);
    assert_eq!(b.stats().gets(), 2);
    // A fill token taken through one is judged by the other's invalidations.
    let token = a.fill_token("k").await.unwrap();
    b.invalidate_prefix("k").await.unwrap();
    assert_eq!(
        a.fill("k", value("stale"), token).await.unwrap(),
        FillOutcome::RejectedStale
    );

    // Closing through one closes the other.
    b.close().await.unwrap();
    let got = within("get after close", a.get("k")).await;
    assert!(matches!(got, Err(Error::Closed)), "{got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_close_every_clone_gets_closed() {
    let dir = tempfile::tempdir().unwrap();
    let a = RedbCache::open(dir.path()).unwrap();
    let b = a.clone();
    let c = RedbCache::open(dir.path()).unwrap();
    a.put("k", value("v")).await.unwrap();
    let token = a.fill_token("k").await.unwrap();

    a.close().await.unwrap();
    for (name, cache) in [("a", &a), ("b", &b), ("c", &c)] {
        let closed = |r: &vlive::Result<()>| matches!(r, Err(Error::Closed));
        let got = within("get after close", cache.get("k")).await;
        assert!(matches!(got, Err(Error::Closed)), "{name}: get {got:?}");
        let got = within("put after close", cache.put("k", value("w"))).await;
        assert!(closed(&got), "{name}: put {got:?}");
        let got = within("invalidate after close", cache.invalidate_prefix("")).await;
        assert!(closed(&got), "{name}: invalidate {got:?}");
        let got = within("fill_token after close", cache.fill_token("k")).await;
        assert!(
            matches!(got, Err(Error::Closed)),
            "{name}: fill_token {got:?}"
        );
        let got = within("fill after close", cache.fill("k", value("w"), token)).await;
        assert!(matches!(got, Err(Error::Closed)), "{name}: fill {got:?}");
        let got = within("flush after close", cache.flush()).await;
        assert!(closed(&got), "{name}: flush {got:?}");
        // Closing again is a no-op, from any clone.
        within("close again", cache.close()).await.unwrap();
    }
    // The data is still there for the next open.
    let reopened = RedbCache::open(dir.path()).unwrap();
    assert_eq!(tag(&reopened, "k").await.as_deref(), Some("v"));
    reopened.close().await.unwrap();
}

/// Opens the folder for round `i` of a reopen loop, checking that it holds round `i - 1`'s put.
async fn reopen_after_round(folder: &std::path::Path, i: usize) -> RedbCache {
    let cache = RedbCache::open(folder).unwrap();
    if i > 0 {
        assert_eq!(
            tag(&cache, "k").await,
            Some(format!("{}", i - 1)),
            "round {i}"
        );
    }
    cache
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_then_reopen_at_once() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..20 {
        let cache = reopen_after_round(dir.path(), i).await;
        cache.put("k", value(&format!("{i}"))).await.unwrap();
        let clone = cache.clone();
        cache.close().await.unwrap();
        // The old clone stays closed even though the folder is open again.
        let again = RedbCache::open(dir.path()).unwrap();
        let got = within("get after close", clone.get("k")).await;
        assert!(matches!(got, Err(Error::Closed)), "{got:?}");
        assert_eq!(tag(&again, "k").await, Some(format!("{i}")));
        again.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_every_handle_then_reopening_at_once() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..20 {
        let cache = reopen_after_round(dir.path(), i).await;
        let clones: Vec<_> = (0..3).map(|_| cache.clone()).collect();
        clones[i % 3]
            .put("k", value(&format!("{i}")))
            .await
            .unwrap();
        drop(clones);
        drop(cache);
    }
    // The last round's put is read back too.
    reopen_after_round(dir.path(), 20).await;
}

/// The last handle goes away while writes are still queued behind a stuck commit: the actor
/// drains and commits them, and an `open` meanwhile waits for it instead of failing on the lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopening_waits_for_an_old_actor_that_is_still_draining() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let cache = faulty(dir.path(), &faults);
    let parked = park_actor(&cache, &faults).await;
    let keys: Vec<String> = (0..10).map(|i| format!("d/{i}")).collect();
    let tasks = spawn_puts(&cache, &keys);
    wait_until("10 queued puts", || cache.stats().queue_depth == 10).await;
    // Cancel the callers (their commands stay queued) and drop every handle.
    for task in tasks.iter().chain([&parked]) {
        task.abort();
    }
    for task in tasks.into_iter().chain([parked]) {
        let _ = within("an aborted task", task).await;
    }
    drop(cache);

    let releaser = {
        let faults = faults.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            faults.release();
        })
    };
    let folder = dir.path().to_owned();
    let reopened = within(
        "reopen",
        tokio::task::spawn_blocking(move || RedbCache::open(folder)),
    )
    .await
    .unwrap()
    .expect("reopen while the old actor drains");
    releaser.join().unwrap();
    assert_eq!(tag(&reopened, "hold/0").await.as_deref(), Some("hold"));
    for key in &keys {
        assert_eq!(
            tag(&reopened, key).await.as_deref(),
            Some(key.as_str()),
            "a write queued before the last handle dropped was lost"
        );
    }
    reopened.close().await.unwrap();
}

/// `close` serves what was queued before it and turns away what came after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_serves_what_is_queued_before_it_and_refuses_what_follows() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let cache = faulty(dir.path(), &faults);
    let parked = park_actor(&cache, &faults).await;

    let before: Vec<String> = (0..10).map(|i| format!("before/{i}")).collect();
    let before_tasks = spawn_puts(&cache, &before);
    wait_until("puts before close", || cache.stats().queue_depth == 10).await;
    let closing = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.close().await })
    };
    wait_until("close queued", || cache.stats().queue_depth == 11).await;
    let after: Vec<String> = (0..5).map(|i| format!("after/{i}")).collect();
    let after_tasks = spawn_puts(&cache, &after);
    wait_until("puts after close", || cache.stats().queue_depth == 16).await;
    faults.release();

    within("the parked put", parked).await.unwrap().unwrap();
    for result in join_all(before_tasks).await {
        result.expect("a put queued before close must be served");
    }
    within("close", closing).await.unwrap().unwrap();
    for result in join_all(after_tasks).await {
        assert!(
            matches!(result, Err(Error::Closed)),
            "a put queued after close must get Closed, got {result:?}"
        );
    }

    let reopened = RedbCache::open(dir.path()).unwrap();
    for key in &before {
        assert_eq!(tag(&reopened, key).await.as_deref(), Some(key.as_str()));
    }
    for key in &after {
        assert_eq!(
            tag(&reopened, key).await,
            None,
            "{key} was refused yet stored"
        );
    }
    reopened.close().await.unwrap();
}

/// Dropping a caller's future after its command was queued does not cancel the command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_put_still_commits() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let cache = faulty(dir.path(), &faults);
    let parked = park_actor(&cache, &faults).await;
    let tasks = spawn_puts(&cache, &["cancelled/1".to_owned()]);
    wait_until("the put to queue", || cache.stats().queue_depth == 1).await;
    for task in &tasks {
        task.abort();
    }
    faults.release();
    within("the parked put", parked).await.unwrap().unwrap();
    assert_eq!(
        tag(&cache, "cancelled/1").await.as_deref(),
        Some("cancelled/1")
    );
    cache.close().await.unwrap();
}

/// A second open of a folder this process has open shares the first actor, and the first open's
/// configuration stays in force: here its batch limit of one command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_open_keeps_the_first_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let first = RedbCache::builder()
        .max_batch_ops(1)
        .backend_layer(faults.layer())
        .open(dir.path())
        .unwrap();
    let second = RedbCache::builder()
        .max_batch_ops(64)
        .open(dir.path())
        .unwrap();

    // Ten puts queue behind a parked commit; under the second open's limit they would run as
    // one batch.
    let parked = park_actor(&second, &faults).await;
    let puts: Vec<_> = (0..10)
        .map(|i| {
            let second = second.clone();
            tokio::spawn(async move { second.put(&format!("k/{i}"), value("v")).await })
        })
        .collect();
    wait_until("the puts to queue", || second.stats().queue_depth == 10).await;
    faults.release();
    within("the parked put", parked).await.unwrap().unwrap();
    for put in puts {
        within("a queued put", put).await.unwrap().unwrap();
    }
    assert_eq!(second.stats().max_batch_ops, 1);
    drop(first);
    second.close().await.unwrap();
}
