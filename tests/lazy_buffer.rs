//! Lazy puts are acknowledged once queued in the write buffer (issue 18, item 1): before their
//! commit, visible at once to every clone, bounded in bytes (a full buffer makes puts wait, and
//! drops nothing), and never turned into an older value when their commit fails.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{Faults, tag, tag_of, value, wait_until, within};
use vlive::{Cache, Durability, Error, RedbCache, RedbCacheBuilder};

fn lazy() -> RedbCacheBuilder {
    RedbCache::builder().durability(Durability::Lazy {
        max_delay: Duration::from_secs(3600),
    })
}

/// A lazy cache on a fault-injecting backend whose key `k` holds "old", durably.
async fn lazy_with_durable_old_value() -> (tempfile::TempDir, Arc<Faults>, RedbCache) {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let cache = lazy()
        .backend_layer(faults.layer())
        .open(dir.path())
        .unwrap();
    cache.put("k", value("old")).await.unwrap();
    cache.flush().await.unwrap();
    (dir, faults, cache)
}

/// Parks the actor inside the fsync of a `flush` (of a put, so that there is one); returns the
/// flush's task.
async fn park_in_flush(
    cache: &RedbCache,
    faults: &Arc<Faults>,
) -> tokio::task::JoinHandle<vlive::Result<()>> {
    cache.put("park", value("park")).await.unwrap();
    // Its own commit first: the only commit that can then park is the flush's.
    wait_until("the put to leave the write buffer", || {
        cache.stats().write_buffer_bytes == 0
    })
    .await;
    faults.hold();
    let flushing = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.flush().await })
    };
    wait_until("the actor to park in a flush", || faults.is_holding()).await;
    flushing
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lazy_puts_are_acknowledged_before_their_commit_and_seen_by_every_clone() {
    let (dir, faults, cache) = lazy_with_durable_old_value().await;
    let flushing = park_in_flush(&cache, &faults).await;

    // The actor cannot commit anything now, yet the puts are acknowledged, and another clone
    // reads them.
    let other = cache.clone();
    for i in 0..100 {
        let key = format!("burst/{i}");
        within("a lazy put", cache.put(&key, value(&key)))
            .await
            .unwrap();
        assert_eq!(tag(&other, &key).await.as_deref(), Some(key.as_str()));
    }
    within("a lazy put", cache.put("k", value("new")))
        .await
        .unwrap();
    assert_eq!(tag(&other, "k").await.as_deref(), Some("new"));
    let stats = other.stats();
    assert!(stats.buffered_gets >= 101, "{stats:?}");
    assert!(stats.write_buffer_bytes > 0, "{stats:?}");
    assert_eq!(
        stats.puts,
        102 + 1,
        "the burst, k, and the put before the flush"
    );

    faults.release();
    // The park may be in a sync redb makes while growing the file inside the flush's batch;
    // then the flush's own commit fails too (and it reports the lazy commit before it lost).
    // Either way, `k` is in the next batch.
    let flushed = within("the parked flush", flushing).await.unwrap();
    assert!(
        matches!(flushed, Ok(()) | Err(Error::LazyWritesLost { .. })),
        "{flushed:?}"
    );
    cache.flush().await.unwrap();
    assert_eq!(cache.stats().write_buffer_bytes, 0);
    cache.close().await.unwrap();

    let reopened = RedbCache::open(dir.path()).unwrap();
    assert_eq!(tag(&reopened, "k").await.as_deref(), Some("new"));
    for i in 0..100 {
        let key = format!("burst/{i}");
        assert_eq!(tag(&reopened, &key).await.as_deref(), Some(key.as_str()));
    }
    reopened.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_write_buffer_makes_puts_wait_and_drops_nothing() {
    const PUTS: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    // Room for a few of these values, far fewer than PUTS.
    let limit = 4096;
    let cache = lazy()
        .write_buffer_bytes(limit)
        .backend_layer(faults.layer())
        .open(dir.path())
        .unwrap();
    let flushing = park_in_flush(&cache, &faults).await;

    let acknowledged = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (cache, acknowledged) = (cache.clone(), acknowledged.clone());
        tokio::spawn(async move {
            for i in 0..PUTS {
                cache.put(&format!("p/{i}"), value("v")).await?;
                acknowledged.fetch_add(1, Ordering::SeqCst);
            }
            Ok::<_, Error>(())
        })
    };
    wait_until("the buffer to fill", || {
        cache.stats().write_buffer_bytes > limit / 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let before_release = acknowledged.load(Ordering::SeqCst);
    assert!(
        before_release < PUTS,
        "every put was acknowledged with the actor parked and a buffer of {limit} bytes"
    );
    assert!(cache.stats().write_buffer_bytes <= limit);

    faults.release();
    within("the writer", writer).await.unwrap().unwrap();
    // The park may be in a sync redb makes while growing the file inside the flush's batch;
    // then the flush's own commit fails too (and it reports the lazy commit before it lost).
    // Either way, `k` is in the next batch.
    let flushed = within("the parked flush", flushing).await.unwrap();
    assert!(
        matches!(flushed, Ok(()) | Err(Error::LazyWritesLost { .. })),
        "{flushed:?}"
    );
    cache.flush().await.unwrap();
    for i in 0..PUTS {
        assert_eq!(tag(&cache, &format!("p/{i}")).await.as_deref(), Some("v"));
    }
    cache.close().await.unwrap();
    let reopened = RedbCache::open(dir.path()).unwrap();
    for i in 0..PUTS {
        assert!(
            tag(&reopened, &format!("p/{i}")).await.is_some(),
            "p/{i} was dropped"
        );
    }
    reopened.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_larger_than_the_buffer_goes_alone() {
    let dir = tempfile::tempdir().unwrap();
    let cache = lazy().write_buffer_bytes(4096).open(dir.path()).unwrap();
    let big = common::rows(&"x".repeat(20_000));
    within(
        "a put larger than the buffer",
        cache.put("big", vlive::CachedRows::new(big)),
    )
    .await
    .unwrap();
    within("a small put behind it", cache.put("small", value("s")))
        .await
        .unwrap();
    assert!(tag(&cache, "big").await.is_some());
    assert_eq!(tag(&cache, "small").await.as_deref(), Some("s"));
    cache.close().await.unwrap();
}

/// The commit of a batch holding an acknowledged lazy put fails (here an invalidation made it
/// durable, and the fsync fails, then fails again for the redo): the put is lost, counted and
/// reported, and its key reads as a miss, never as the value it replaced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lazy_put_whose_commit_fails_reads_as_a_miss_never_the_older_value() {
    let (_dir, faults, cache) = lazy_with_durable_old_value().await;
    let flushing = park_in_flush(&cache, &faults).await;

    cache.put("k", value("new")).await.unwrap();
    let invalidating = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.invalidate_prefix("unrelated/").await })
    };
    wait_until("the put and the invalidation to queue", || {
        cache.stats().queue_depth >= 2
    })
    .await;
    faults.fail_sync.store(true, Ordering::SeqCst);
    faults.release();
    // The park may be in a sync redb makes while growing the file inside the flush's batch;
    // then the flush's own commit fails too (and it reports the lazy commit before it lost).
    // Either way, `k` is in the next batch.
    let flushed = within("the parked flush", flushing).await.unwrap();
    assert!(
        matches!(flushed, Ok(()) | Err(Error::LazyWritesLost { .. })),
        "{flushed:?}"
    );
    let invalidated = within("the invalidation", invalidating).await.unwrap();
    assert!(invalidated.is_err(), "its commit failed: {invalidated:?}");
    faults.fail_sync.store(false, Ordering::SeqCst);

    assert_eq!(tag(&cache, "k").await, None, "the replaced value came back");
    assert_eq!(cache.stats().lazy_writes_lost, 1);
    let flushed = cache.flush().await;
    assert!(
        matches!(flushed, Err(Error::LazyWritesLost { .. })),
        "the loss was not reported: {flushed:?}"
    );
    cache.flush().await.unwrap();
    cache.put("k", value("again")).await.unwrap();
    assert_eq!(tag(&cache, "k").await.as_deref(), Some("again"));
    cache.close().await.unwrap();
}

/// A lazy put sent behind another clone's `close` is refused, so no get may read its value: not
/// from the write buffer while the close is in progress, nor after it. (The buffer used to show
/// it until the actor refused the put, after answering the close.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_refused_by_close_is_never_read() {
    let (dir, faults, cache) = lazy_with_durable_old_value().await;
    let flushing = park_in_flush(&cache, &faults).await;
    let closing = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.close().await })
    };
    wait_until("the close to queue", || cache.stats().queue_depth >= 1).await;
    let putting = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.put("k", value("refused")).await })
    };
    wait_until("the put to be in the buffer", || {
        cache.stats().write_buffer_bytes > 0
    })
    .await;
    let getting = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.get("k").await })
    };
    // The get has looked while the close is still in progress: it answered, or it queued
    // behind the close and the put.
    wait_until("the get to answer or queue", || {
        getting.is_finished() || cache.stats().queue_depth >= 3
    })
    .await;
    faults.release();
    within("the parked flush", flushing).await.unwrap().unwrap();
    within("the close", closing).await.unwrap().unwrap();
    let put = within("the put", putting).await.unwrap();
    assert!(matches!(put, Err(Error::Closed)), "{put:?}");
    let got = within("the get", getting).await.unwrap();
    assert!(
        matches!(got, Err(Error::Closed)),
        "a get during the close read {:?}",
        got.map(|rows| rows.as_ref().map(tag_of))
    );
    assert!(matches!(cache.get("k").await, Err(Error::Closed)));

    let reopened = lazy().open(dir.path()).unwrap();
    assert_eq!(tag(&reopened, "k").await.as_deref(), Some("old"));
    reopened.close().await.unwrap();
}

/// A lazy put awaits nothing when the buffer has room, so a task putting in a loop would hold
/// a current-thread runtime for the whole loop; it spends the coop budget instead.
#[test]
fn a_task_putting_in_a_loop_lets_other_tasks_run() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let cache = lazy().open(dir.path()).unwrap();
        let ran = Arc::new(AtomicBool::new(false));
        let other = {
            let ran = ran.clone();
            tokio::spawn(async move { ran.store(true, Ordering::SeqCst) })
        };
        let mut puts_before_the_other_task_ran = None;
        for i in 0..2000 {
            cache.put(&format!("loop/{i}"), value("v")).await.unwrap();
            if ran.load(Ordering::SeqCst) {
                puts_before_the_other_task_ran = Some(i);
                break;
            }
        }
        assert!(
            puts_before_the_other_task_ran.is_some(),
            "2000 lazy puts in a loop never let another task run"
        );
        other.await.unwrap();
        cache.close().await.unwrap();
    });
}

/// Steady lazy puts from a caller slower than the actor never queue up: the actor holds back
/// only until a full batch is queued, and not at all while a queue is left over from a batch
/// cut at a limit, so it keeps up. (A hold before every batch whatever the queue held, as first
/// written, committed at most one batch per 20 ms hold while puts kept coming, 800 puts a
/// second here, and let the queue grow toward half the write buffer, with every flush,
/// invalidation and fill waiting behind it. Either rule alone prevents that.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_lazy_puts_never_queue_up_behind_the_hold_back() {
    let dir = tempfile::tempdir().unwrap();
    let cache = lazy().max_batch_ops(16).open(dir.path()).unwrap();
    // A put every 0.2 ms for a second, from a thread of its own: closer than the actor's ticks,
    // so that puts keep coming (a putter that falls behind catches up at once), at about six
    // times what one batch per hold commits and a fraction of what full batches commit.
    let runtime = tokio::runtime::Handle::current();
    let putter = {
        let cache = cache.clone();
        std::thread::spawn(move || {
            let started = std::time::Instant::now();
            let (mut puts, mut deepest) = (0u32, 0);
            while puts < 5000 {
                let key = format!("steady/{puts}");
                runtime.block_on(cache.put(&key, value("v"))).unwrap();
                puts += 1;
                deepest = deepest.max(cache.stats().queue_depth);
                let due = started + Duration::from_micros(200) * puts;
                std::thread::sleep(due.saturating_duration_since(std::time::Instant::now()));
            }
            (puts, deepest)
        })
    };
    let (puts, deepest) = tokio::task::spawn_blocking(move || putter.join().unwrap())
        .await
        .unwrap();
    // Under a quarter of a second of puts: only an actor stalled that long gets near it.
    assert!(
        deepest < 1000,
        "{deepest} commands queued behind the actor under {puts} steady puts"
    );
    cache.flush().await.unwrap();
    assert_eq!(cache.stats().entries, u64::from(puts));
    cache.close().await.unwrap();
}
