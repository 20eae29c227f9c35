//! Gets beside the actor: a get that no write in flight affects is answered on the caller's
//! thread from the snapshot of the last commit; any other get queues behind the writes that
//! affect it. These tests park the actor inside a commit (through a `StorageBackend` that holds
//! `sync_data`) to see which path a get took and what it answered.

mod common;

use std::time::Duration;

use common::{Faults, faulty, park_actor, parked_with_capacity, tag, value, wait_until, within};
use vlive::{Cache, RedbCache};

/// Spawns a get of `key`; returns its task.
fn spawn_get(cache: &RedbCache, key: &'static str) -> tokio::task::JoinHandle<Option<String>> {
    let cache = cache.clone();
    tokio::spawn(async move { tag(&cache, key).await })
}

/// A get beside the actor never waits for a commit in progress, not even one that grows the
/// file. (redb holds the lock that beginning a read transaction needs through the fsync of a
/// file growth; the snapshot the actor began after its last commit needs no lock of that kind.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_beside_the_actor_does_not_wait_for_a_commit_in_progress() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let cache = faulty(dir.path(), &faults);
    cache.put("a/1", value("one")).await.unwrap();

    // A value far larger than the file: its commit grows the file, and parks in that fsync.
    faults.hold();
    let big_put = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.put("big/1", value(&"x".repeat(8 << 20))).await })
    };
    wait_until("the actor to park in a commit", || faults.is_holding()).await;

    let before = cache.stats().snapshot_gets;
    let got = within("a get beside a parked actor", spawn_get(&cache, "a/1")).await;
    assert_eq!(got.unwrap().as_deref(), Some("one"));
    let missing = within("a miss beside a parked actor", spawn_get(&cache, "b/1")).await;
    assert_eq!(missing.unwrap(), None);
    assert_eq!(cache.stats().snapshot_gets, before + 2);
    assert!(faults.is_holding(), "the commit was still in progress");

    faults.release();
    within("the big put", big_put).await.unwrap().unwrap();
    cache.close().await.unwrap();
}

/// A get of a key with a put in flight queues behind the put and sees it; a get of another key
/// does not wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_waits_for_a_queued_put_of_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let cache = faulty(dir.path(), &faults);
    cache.put("a/1", value("old")).await.unwrap();
    cache.put("a/2", value("other")).await.unwrap();
    let parked = park_actor(&cache, &faults).await;

    let queued_put = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.put("a/1", value("new")).await })
    };
    wait_until("the put to queue", || cache.stats().queue_depth == 1).await;
    let same_key = spawn_get(&cache, "a/1");
    wait_until("the get to queue", || cache.stats().queue_depth == 2).await;
    let other_key = within("a get of another key", spawn_get(&cache, "a/2")).await;
    assert_eq!(other_key.unwrap().as_deref(), Some("other"));
    assert!(
        !same_key.is_finished(),
        "the get of a/1 read past the queued put"
    );

    faults.release();
    within("the parked put", parked).await.unwrap().unwrap();
    within("the queued put", queued_put).await.unwrap().unwrap();
    let got = within("the queued get", same_key).await.unwrap();
    assert_eq!(got.as_deref(), Some("new"));
    cache.close().await.unwrap();
}

/// A queued invalidation holds back the gets of every key under its prefix, and only those.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_waits_for_a_queued_invalidation_of_its_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let cache = faulty(dir.path(), &faults);
    for key in ["t/1", "t/10", "u/1"] {
        cache.put(key, value(key)).await.unwrap();
    }
    let parked = park_actor(&cache, &faults).await;

    let invalidation = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.invalidate_prefix("t/1").await })
    };
    wait_until("the invalidation to queue", || {
        cache.stats().queue_depth == 1
    })
    .await;
    let covered = [spawn_get(&cache, "t/1"), spawn_get(&cache, "t/10")];
    wait_until("the covered gets to queue", || {
        cache.stats().queue_depth == 3
    })
    .await;
    let outside = within("a get outside the prefix", spawn_get(&cache, "u/1")).await;
    assert_eq!(outside.unwrap().as_deref(), Some("u/1"));

    faults.release();
    within("the parked put", parked).await.unwrap().unwrap();
    within("the invalidation", invalidation)
        .await
        .unwrap()
        .unwrap();
    for get in covered {
        assert_eq!(within("a covered get", get).await.unwrap(), None);
    }
    cache.close().await.unwrap();
}

/// Writes leave no trace once settled: after a burst of concurrent puts (some cancelled while
/// they waited for room in the channel) has been served, every key is read beside the actor
/// again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settled_and_cancelled_writes_do_not_keep_gets_queued() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let (cache, parked) = parked_with_capacity(dir.path(), &faults, 2).await;

    // The channel holds 2; the other puts wait for room, and half of those are cancelled.
    let mut puts = Vec::new();
    for i in 0..40 {
        let cache = cache.clone();
        let key = format!("k/{i}");
        puts.push(tokio::spawn(
            async move { cache.put(&key, value(&key)).await },
        ));
    }
    wait_until("the channel to fill", || cache.stats().queue_depth == 2).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    for put in puts.iter().skip(1).step_by(2) {
        put.abort();
    }
    faults.release();
    within("the parked put", parked).await.unwrap().unwrap();
    let mut acknowledged = Vec::new();
    for (i, put) in puts.into_iter().enumerate() {
        match put.await {
            Ok(result) => {
                result.unwrap();
                acknowledged.push(i);
            }
            Err(e) => assert!(e.is_cancelled(), "put {i}: {e}"),
        }
    }
    assert!(acknowledged.len() >= 20, "only the odd puts were cancelled");
    // A cancelled put may still be in the queue: flume hands a waiting sender's message to the
    // actor when it makes room, whether or not that sender is still there. Such a put is a write
    // in flight until the actor answers it; the flush queues behind every one of them.
    cache.flush().await.unwrap();

    let before = cache.stats();
    for i in 0..40 {
        let key = format!("k/{i}");
        let got = tag(&cache, &key).await;
        if acknowledged.contains(&i) {
            assert_eq!(got.as_deref(), Some(key.as_str()));
        } else {
            // Cancelled: before it was queued (never stored), or after (stored all the same).
            assert!(
                got.is_none() || got.as_deref() == Some(key.as_str()),
                "{key}: {got:?}"
            );
        }
    }
    let after = cache.stats();
    assert_eq!(
        after.snapshot_gets - before.snapshot_gets,
        40,
        "some gets queued"
    );
    assert_eq!(
        after.batches, before.batches,
        "a get went through the actor"
    );
    cache.close().await.unwrap();
}

/// After `close`, no get is answered beside the actor: the snapshot went with the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_close_gets_are_refused_not_read_beside() {
    let dir = tempfile::tempdir().unwrap();
    let cache = RedbCache::open(dir.path()).unwrap();
    cache.put("a/1", value("one")).await.unwrap();
    assert_eq!(tag(&cache, "a/1").await.as_deref(), Some("one"));
    assert_eq!(cache.stats().snapshot_gets, 1);
    cache.close().await.unwrap();
    assert!(matches!(cache.get("a/1").await, Err(vlive::Error::Closed)));
    // The file is released: another open of the folder works at once.
    let reopened = RedbCache::open(dir.path()).unwrap();
    assert_eq!(tag(&reopened, "a/1").await.as_deref(), Some("one"));
    reopened.close().await.unwrap();
}
