//! Shutdown races and faults: what happens around `close()`.
//!
//! - A put from another clone racing `close` is either acknowledged and kept, or refused with
//!   `Closed`; it never hangs. (The loom model `close_racing_a_put_never_loses_or_hangs_it`
//!   explores the interleavings exhaustively; this runs the real flume channel and redb.)
//! - `open` while another task is closing the same folder waits for the close and returns a
//!   working cache, not a handle to the dying actor.
//! - A panic while closing makes `close` fail with `ActorPanicked` and does not wedge later opens.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Faults, faulty, lazy_faulty, park_actor, value, wait_until, within};
use vlive::{Cache, Error, RedbCache};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn puts_racing_close_from_other_clones_are_kept_or_refused_never_hung() {
    for round in 0..50 {
        let dir = tempfile::tempdir().unwrap();
        let cache = RedbCache::open(dir.path()).unwrap();
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let cache = cache.clone();
                tokio::spawn(async move {
                    let mut outcomes = Vec::new();
                    for i in 0..8 {
                        let key = format!("w{w}/{i}");
                        let result = cache.put(&key, value(&key)).await;
                        outcomes.push((key, result));
                    }
                    outcomes
                })
            })
            .collect();
        tokio::task::yield_now().await;
        within("close", cache.close()).await.unwrap();
        let mut acknowledged = Vec::new();
        for writer in writers {
            for (key, result) in within("writer", writer).await.unwrap() {
                match result {
                    Ok(()) => acknowledged.push(key),
                    Err(Error::Closed) => {}
                    Err(other) => panic!("round {round}: {key}: unexpected {other}"),
                }
            }
        }
        let reopened = RedbCache::open(dir.path()).unwrap();
        for key in &acknowledged {
            assert!(
                reopened.get(key).await.unwrap().is_some(),
                "round {round}: acknowledged {key} was lost by the close"
            );
        }
        reopened.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_while_another_task_closes_waits_and_returns_a_working_cache() {
    let dir = tempfile::tempdir().unwrap();
    let faults: Arc<Faults> = Faults::new();
    let cache = faulty(dir.path(), &faults);
    // Hold the actor inside a commit so that the close below is queued, not yet served.
    let parked = park_actor(&cache, &faults).await;
    let closing = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.close().await })
    };
    wait_until("close queued", || cache.stats().queue_depth == 1).await;

    // Another part of the program opens the same folder meanwhile. `open` must wait for the
    // close to release the file (it blocks, so it runs on its own thread), then start afresh.
    let folder = dir.path().to_owned();
    let reopening = std::thread::spawn(move || RedbCache::open(&folder));
    faults.release();
    within("parked put", parked).await.unwrap().unwrap();
    within("close", closing).await.unwrap().unwrap();
    let reopened = reopening.join().unwrap().expect("open succeeds");
    within("put on the reopened cache", reopened.put("k", value("v")))
        .await
        .expect("the reopened cache works");
    assert!(reopened.get("hold/0").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_while_closing_neither_reports_ok_nor_wedges_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    // Lazy, so that close runs a checkpoint (an fsync) on the actor thread.
    let cache = lazy_faulty(dir.path(), &faults);
    cache.put("k", value("v")).await.unwrap();
    // Acknowledged when queued: wait for its (deferred) commit, so that the fsync that panics
    // is close's checkpoint, not the put's own commit.
    wait_until("the put's commit", || cache.stats().write_buffer_bytes == 0).await;

    faults.panic_sync.store(true, Ordering::SeqCst);
    let closed = cache.close().await;
    let close_reported_ok = closed.is_ok();
    drop(cache);

    // Reopen the folder (no handle of the old actor is left).
    let folder = dir.path().to_owned();
    // A plain thread (not spawn_blocking: the runtime would wait for it forever on shutdown).
    let (done_tx, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(RedbCache::open(&folder).map(drop));
    });
    let reopened = done.recv_timeout(Duration::from_secs(5));

    assert!(
        matches!(reopened, Ok(Ok(()))),
        "open after a panic while closing must not hang or fail: {reopened:?}"
    );
    assert!(
        !close_reported_ok && matches!(closed, Err(Error::Damaged { .. })),
        "a close that panicked must not report Ok: {closed:?}"
    );
}
