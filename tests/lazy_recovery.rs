//! Lazy durability meets a failing disk (found in review).
//!
//! A failed checkpoint makes the actor reopen redb (redb refuses writes after an I/O error), and
//! the reopen drops every acknowledged but not yet durable put. No crash happened, so this must
//! not pass silently, and it must never bring back a value such a put had replaced. The
//! contract: the cache is cleared (a lost put reads as a miss, never as an older value), and
//! `Error::LazyWritesLost` is reported once: by the failing `flush` itself, else by the next
//! `flush` or `close`.

mod common;

use std::sync::atomic::Ordering;

use common::{Faults, lazy_faulty, value};
use vlive::{Cache, Error, RedbCache};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_lazy_puts_are_reported_by_the_next_flush_and_read_as_misses() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let cache = lazy_faulty(dir.path(), &faults);
    cache.put("clients/1", value("acked")).await.unwrap();

    // A transient I/O error during the checkpoint: the acknowledged put did not survive the
    // reopen, and that flush says so.
    faults.fail_write.store(true, Ordering::SeqCst);
    let flushed = cache.flush().await;
    assert!(
        matches!(flushed, Err(Error::LazyWritesLost { .. })),
        "{flushed:?}"
    );
    faults.fail_write.store(false, Ordering::SeqCst);

    // The disk is fine again: the key reads as a miss, and the loss was reported once.
    assert!(cache.get("clients/1").await.unwrap().is_none());
    cache.flush().await.unwrap();

    // Business as usual afterwards.
    cache.put("clients/2", value("after")).await.unwrap();
    cache.flush().await.unwrap();
    cache.close().await.unwrap();
    let reopened = RedbCache::open(dir.path()).unwrap();
    assert!(reopened.get("clients/2").await.unwrap().is_some());
    assert!(reopened.get("clients/1").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_replaced_by_a_lost_put_never_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let cache = lazy_faulty(dir.path(), &faults);
    cache.put("k", value("old")).await.unwrap();
    cache.flush().await.unwrap(); // "old" is durable
    cache.put("k", value("new")).await.unwrap(); // acknowledged, not yet durable

    faults.fail_write.store(true, Ordering::SeqCst);
    let flushed = cache.flush().await;
    assert!(
        matches!(flushed, Err(Error::LazyWritesLost { .. })),
        "{flushed:?}"
    );
    faults.fail_write.store(false, Ordering::SeqCst);

    let got = common::tag(&cache, "k").await;
    assert_eq!(
        got, None,
        "after lost lazy writes, a miss; never the replaced value"
    );
    // The flush reported the loss; close does not report it again.
    cache.close().await.unwrap();
    // And the old value does not come back from disk either.
    let reopened = RedbCache::open(dir.path()).unwrap();
    assert!(reopened.get("k").await.unwrap().is_none());
}

/// The caller that gets the I/O error must not then read, beside the actor, the snapshot that
/// still holds the lazy writes the error lost: the actor reopens the store (withdrawing that
/// snapshot) before it answers. The reopen waits at a gate here, which the test opens only once
/// the reopen has begun; an answer sent before the reopen would find the gate still shut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_told_of_the_failure_never_reads_the_lost_writes_beside_the_actor() {
    use std::sync::atomic::AtomicUsize;
    use std::sync::{Arc, Condvar, Mutex};
    use std::time::Duration;

    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let opens = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new((Mutex::new(false), Condvar::new()));
    let layer = {
        let (faulty, opens, gate) = (faults.layer(), opens.clone(), gate.clone());
        move |inner| {
            // The first open passes; a reopen waits until the test opens the gate.
            if opens.fetch_add(1, Ordering::SeqCst) > 0 {
                let (open, opened) = &*gate;
                let guard = open.lock().unwrap();
                let _ = opened
                    .wait_timeout_while(guard, common::HANG, |open| !*open)
                    .unwrap();
            }
            faulty(inner)
        }
    };
    let cache = RedbCache::builder()
        .durability(vlive::Durability::Lazy {
            max_delay: Duration::from_secs(3600),
        })
        .backend_layer(layer)
        .open(dir.path())
        .unwrap();
    cache.put("k", value("old")).await.unwrap();
    cache.flush().await.unwrap();
    cache.put("k", value("new")).await.unwrap(); // acknowledged, not yet durable

    faults.fail_write.store(true, Ordering::SeqCst);
    let caller = {
        let (cache, gate) = (cache.clone(), gate.clone());
        tokio::spawn(async move {
            let flushed = cache.flush().await;
            let reopen_had_begun = *gate.0.lock().unwrap();
            let read_after = common::tag(&cache, "k").await;
            (flushed, reopen_had_begun, read_after)
        })
    };
    common::wait_until("the actor to start reopening", || {
        opens.load(Ordering::SeqCst) == 2
    })
    .await;
    faults.fail_write.store(false, Ordering::SeqCst);
    let (open, opened) = &*gate;
    *open.lock().unwrap() = true;
    opened.notify_all();

    let (flushed, reopen_had_begun, read_after) =
        common::within("the failing flush", caller).await.unwrap();
    assert!(
        matches!(flushed, Err(Error::LazyWritesLost { .. })),
        "{flushed:?}"
    );
    assert!(
        reopen_had_begun,
        "the error was answered before the store was reopened"
    );
    assert_eq!(read_after, None, "the caller read a write the failure lost");
    // Reported once, by the flush.
    cache.close().await.unwrap();
}

/// Lazy mode makes acknowledged puts durable on its own, without a `flush`: a checkpoint (an
/// fsync) comes once `max_delay` has passed since the first put not yet durable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lazy_put_is_checkpointed_without_a_flush() {
    use std::time::Duration;

    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let cache = RedbCache::builder()
        .durability(vlive::Durability::Lazy {
            max_delay: Duration::from_millis(50),
        })
        .backend_layer(faults.layer())
        .open(dir.path())
        .unwrap();
    let syncs = faults.syncs.load(Ordering::SeqCst);
    cache.put("k", value("v")).await.unwrap();
    assert_eq!(
        faults.syncs.load(Ordering::SeqCst),
        syncs,
        "a lazy put was synced at once"
    );
    common::wait_until("the checkpoint", || {
        faults.syncs.load(Ordering::SeqCst) > syncs
    })
    .await;
    cache.close().await.unwrap();
}
