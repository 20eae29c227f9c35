//! Faults, and how `RedbCache` reports them: I/O errors injected through redb's
//! `StorageBackend` (a failed `write` or `sync_data` fails every caller of its batch, nobody
//! hangs, and the cache is usable again afterwards), lazy-mode flush and checkpoint failures, a
//! damaged stored value (a miss for that key only, removed by the next write), a file
//! that is not a redb database (`Error::NotADatabase`, file untouched), an unknown
//! `format_version` (the folder is reset), a folder path that is a file, and an actor panic
//! (pending and later calls fail with `Error::ActorPanicked`; the folder reopens).

mod common;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{Faults, faulty, lazy_faulty, park_actor, tag, tag_of, value, wait_until, within};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use tokio::task::JoinHandle;
use vlive::{Cache, DB_FILE_NAME, Durability, Error, FillOutcome, RedbCache};

/// What a queued command answered, reduced to something comparable.
type Outcome = vlive::Result<String>;

/// Queues a varied batch behind the parked actor, in this order: puts, a get of one of them, a
/// fill, an invalidation (or, without `invalidating`, another get), a fill token, a flush, a
/// put, a get. Returns the tasks in that order.
async fn queue_mixed_batch(
    cache: &RedbCache,
    root: &str,
    token: vlive::FillToken,
    invalidating: bool,
) -> Vec<JoinHandle<Outcome>> {
    let mut tasks = Vec::new();
    for i in 0..12 {
        let handle = cache.clone();
        let root = root.to_owned();
        let task = tokio::spawn(async move {
            let cache = handle;
            let key = format!("{root}/{}", i % 5);
            match i {
                0..=4 => cache.put(&key, value(&key)).await.map(|()| "put".into()),
                5 => cache
                    .get(&format!("{root}/1"))
                    .await
                    .map(|v| format!("{:?}", v.map(|v| tag_of(&v)))),
                6 => cache
                    .fill(&format!("{root}/fill"), value("fill"), token)
                    .await
                    .map(|o| format!("{o:?}")),
                7 if invalidating => cache
                    .invalidate_prefix(&format!("{root}/2"))
                    .await
                    .map(|()| "invalidated".into()),
                8 => cache.fill_token("y").await.map(|_| "token".into()),
                9 => cache.flush().await.map(|()| "flushed".into()),
                10 => cache.put(&key, value("late")).await.map(|()| "put".into()),
                _ => cache
                    .get(&format!("{root}/2"))
                    .await
                    .map(|v| format!("{:?}", v.map(|v| tag_of(&v)))),
            }
        });
        tasks.push(task);
        // One at a time, so the channel holds them in this order.
        let queued = i as u64 + 1;
        wait_until("the command to queue", || {
            cache.stats().queue_depth == queued
        })
        .await;
    }
    tasks
}

async fn outcomes(tasks: Vec<JoinHandle<Outcome>>) -> Vec<Outcome> {
    let mut out = Vec::new();
    for task in tasks {
        out.push(within("a queued command", task).await.unwrap());
    }
    out
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    Write,
    Sync,
}

impl Fault {
    fn set(self, faults: &Faults, on: bool) {
        match self {
            Fault::Write => faults.fail_write.store(on, Ordering::SeqCst),
            Fault::Sync => faults.fail_sync.store(on, Ordering::SeqCst),
        }
    }
}

/// A batch whose commit hits an I/O error: every write in it gets an `Err` (none hangs, none is
/// told `Ok`), its gets are misses (never errors, never the failed writes' values), and the
/// folder holds everything committed before the fault after a reopen.
async fn a_failed_commit_fails_its_whole_batch(fault: Fault) {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let cache = faulty(dir.path(), &faults);
    cache.put("before/1", value("before/1")).await.unwrap();
    // The parked commit must do no I/O after the sync it is held in, or the fault planted below
    // fails it too. A commit that grows this young file does (redb flushes twice in it): the
    // first puts of `hold/0` did, under layouts 2 and 3; once the file has room for the pages a
    // replacing put needs, it does not.
    for _ in 0..3 {
        cache.put("hold/0", value("hold")).await.unwrap();
    }

    let token = cache.fill_token("f/fill").await.unwrap();
    let parked = park_actor(&cache, &faults).await;
    let tasks = queue_mixed_batch(&cache, "f", token, false).await;
    fault.set(&faults, true);
    // The parked batch is still running, so not counted yet.
    let batches_before = cache.stats().batches;
    faults.release();
    within("the parked put", parked).await.unwrap().unwrap();
    let results = outcomes(tasks).await;
    assert_eq!(
        cache.stats().batches,
        batches_before + 2,
        "the queued commands were meant to form one batch after the parked one"
    );
    for (i, result) in results.iter().enumerate() {
        match (i, result) {
            // Gets: misses (`f/1`, `f/2` were never committed), never the batch's error.
            (5 | 7 | 11, Ok(found)) => assert_eq!(found, "None", "get {i}"),
            (8, Ok(token)) => assert_eq!(token, "token"),
            (_, Err(Error::Storage { folder, .. })) => assert_eq!(folder, cache.folder()),
            other => panic!("{fault:?} fault: command {i} of the failed batch got {other:?}"),
        }
    }
    fault.set(&faults, false);

    // Whatever state the cache is in now, no call may hang.
    let _ = within("a put after the fault", cache.put("after/1", value("x"))).await;
    let _ = within("close after the fault", cache.close()).await;

    // A fresh open (no fault layer) finds what was committed before the fault.
    let reopened = RedbCache::open(dir.path()).unwrap();
    assert_eq!(
        tag(&reopened, "before/1").await.as_deref(),
        Some("before/1")
    );
    assert_eq!(tag(&reopened, "hold/0").await.as_deref(), Some("hold"));
    // A failed write may or may not have reached the disk (a failed fsync is ambiguous), but
    // whatever is there is a value that was written, never garbage.
    for i in 0..5 {
        let key = format!("f/{i}");
        if let Some(found) = tag(&reopened, &key).await {
            assert!(found == key || found == "late", "{key}: {found}");
        }
    }
    reopened.put("f/1", value("works")).await.unwrap();
    assert_eq!(tag(&reopened, "f/1").await.as_deref(), Some("works"));
    reopened.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_fails_every_command_of_its_batch() {
    a_failed_commit_fails_its_whole_batch(Fault::Write).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fsync_fails_every_command_of_its_batch() {
    a_failed_commit_fails_its_whole_batch(Fault::Sync).await;
}

/// Many concurrent writers while the disk fails: every one gets an error, none hangs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_all_get_errors_while_the_disk_fails() {
    for fault in [Fault::Write, Fault::Sync] {
        let dir = tempfile::tempdir().unwrap();
        let faults = Faults::new();
        let cache = faulty(dir.path(), &faults);
        fault.set(&faults, true);
        let tasks: Vec<_> = (0..100)
            .map(|i| {
                let cache = cache.clone();
                tokio::spawn(async move { cache.put(&format!("w/{i}"), value("x")).await })
            })
            .collect();
        for task in tasks {
            let result = within("a put on a failing disk", task).await.unwrap();
            // The batch's commit fails (Storage), or, once the actor has dropped the broken
            // database, opening it again fails (Io): either way the disk's error, never a hang.
            assert!(
                matches!(result, Err(Error::Storage { .. } | Error::Io { .. })),
                "{fault:?}: got {result:?}"
            );
        }
        let _ = within("close", cache.close()).await;
    }
}

/// The contract says the actor goes on serving after a failed commit. Once the fault is gone,
/// the next batch must work again, without the caller having to reopen the cache.
///
/// redb latches any failed `write`/`sync_data` (`StorageError::PreviousIo` from then on, until
/// the `Database` is dropped), so this only passes if vlive reopens the database after such an
/// error.
async fn the_next_batch_works_once_the_fault_is_gone(fault: Fault) {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let cache = faulty(dir.path(), &faults);
    cache.put("before/1", value("before/1")).await.unwrap();
    fault.set(&faults, true);
    assert!(
        cache.put("during/1", value("x")).await.is_err(),
        "the put during the fault"
    );
    fault.set(&faults, false);

    let after = within(
        "a put after the fault",
        cache.put("after/1", value("after/1")),
    )
    .await;
    assert!(
        after.is_ok(),
        "{fault:?} fault cleared, but the next put still fails: {after:?}"
    );
    assert_eq!(tag(&cache, "after/1").await.as_deref(), Some("after/1"));
    assert_eq!(tag(&cache, "before/1").await.as_deref(), Some("before/1"));
    cache.invalidate_prefix("before/").await.unwrap();
    assert_eq!(tag(&cache, "before/1").await, None);
    cache.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_failed_write_the_next_batch_works() {
    the_next_batch_works_once_the_fault_is_gone(Fault::Write).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_failed_fsync_the_next_batch_works() {
    the_next_batch_works_once_the_fault_is_gone(Fault::Sync).await;
}

/// The way out that works today: after a failed commit, reads still answer, `close` returns
/// (reporting the error) and releases the folder, and a reopen serves reads and writes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_failed_commit_close_and_reopen_recovers() {
    for fault in [Fault::Write, Fault::Sync] {
        let dir = tempfile::tempdir().unwrap();
        let faults = Faults::new();
        let cache = faulty(dir.path(), &faults);
        cache.put("before/1", value("before/1")).await.unwrap();
        fault.set(&faults, true);
        assert!(cache.put("during/1", value("x")).await.is_err());
        fault.set(&faults, false);
        assert_eq!(
            tag(&cache, "before/1").await.as_deref(),
            Some("before/1"),
            "{fault:?}: reads after the fault"
        );
        let _ = within("close after the fault", cache.close()).await;
        let got = within("get after close", cache.get("before/1")).await;
        assert!(matches!(got, Err(Error::Closed)), "{got:?}");

        let reopened = faulty(dir.path(), &faults);
        assert_eq!(
            tag(&reopened, "before/1").await.as_deref(),
            Some("before/1")
        );
        reopened.put("after/1", value("after/1")).await.unwrap();
        reopened.invalidate_prefix("before/").await.unwrap();
        reopened.close().await.unwrap();
        let reopened = RedbCache::open(dir.path()).unwrap();
        assert_eq!(tag(&reopened, "after/1").await.as_deref(), Some("after/1"));
        assert_eq!(tag(&reopened, "before/1").await, None);
        reopened.close().await.unwrap();
    }
}

/// Lazy mode: puts do not sync, so they succeed on a disk whose fsync fails; `flush` must then
/// report the put lost instead of claiming durability.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lazy_flush_reports_a_failed_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let cache = lazy_faulty(dir.path(), &faults);
    faults.fail_sync.store(true, Ordering::SeqCst);
    cache.put("lazy/1", value("lazy/1")).await.unwrap();
    let flushed = within("flush", cache.flush()).await;
    assert!(
        matches!(flushed, Err(Error::LazyWritesLost { .. })),
        "flush claimed durability over a failed fsync: {flushed:?}"
    );
    let closed = within("close", cache.close()).await;
    assert!(
        closed.is_err(),
        "close claimed a clean, durable close over a failed fsync"
    );
}

/// Lazy mode, fsync failing: the periodic checkpoint fails. The actor must then wait for its
/// next deadline (or for work) instead of retrying in a tight loop.
///
/// Counted, not timed: over the window, a scheduled retry makes a handful of sync attempts per
/// `max_delay`, a spinning actor tens of thousands. A slow machine can only lower the count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_lazy_checkpoint_does_not_spin() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let max_delay = Duration::from_millis(20);
    let cache = RedbCache::builder()
        .durability(Durability::Lazy { max_delay })
        .backend_layer(faults.layer())
        .open(dir.path())
        .unwrap();
    cache.put("lazy/1", value("lazy/1")).await.unwrap();
    let syncs = faults.syncs.load(Ordering::SeqCst);
    faults.fail_sync.store(true, Ordering::SeqCst);
    // Leaves a commit to checkpoint. On a loaded machine its batch may itself come due for a
    // durable commit (max_delay is short), or follow a checkpoint that already failed; then
    // the put fails on the failing fsync, which is the failure this test needs all the same.
    let _ = cache.put("lazy/2", value("lazy/2")).await;
    wait_until("a checkpoint to fail", || {
        faults.syncs.load(Ordering::SeqCst) > syncs
    })
    .await;

    let started = Instant::now();
    let before = faults.syncs.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let attempts = faults.syncs.load(Ordering::SeqCst) - before;
    let window = started.elapsed();
    // Each retry (a checkpoint, maybe a reopen) syncs a few times; allow 10 per max_delay.
    let allowed = 10 * (window.as_millis() / max_delay.as_millis()) as usize + 20;
    assert!(
        attempts <= allowed,
        "{attempts} sync attempts in {window:?} with a checkpoint due every {max_delay:?}: \
         the actor is retrying in a loop"
    );
    faults.fail_sync.store(false, Ordering::SeqCst);
    // `lazy/2` was acknowledged but never made durable: the close owns up to it.
    let closed = within("close", cache.close()).await;
    assert!(
        matches!(closed, Err(Error::LazyWritesLost { .. })),
        "{closed:?}"
    );
}

/// Damaged values (bytes overwritten behind the cache's back, so that their checksum fails, or
/// well-formed bytes this version cannot decode) are misses for their own keys only, counted,
/// and removed by the next write; a put over one repairs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_values_are_misses_of_their_own_keys_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let cache = RedbCache::open(dir.path()).unwrap();
    for key in ["good/1", "bad/1", "bad/2", "bad", "bad/3", "bad/4", "bad/5"] {
        cache.put(key, value(key)).await.unwrap();
    }
    let folder = cache.folder().to_owned();
    cache.close().await.unwrap();

    // Overwrite some values behind the cache's back, with redb itself.
    {
        let db = redb::Database::create(folder.join(DB_FILE_NAME)).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut table = txn.open_table(ENTRIES).unwrap();
            // Not a stored value at all.
            table
                .insert("bad/1", [0xffu8, 0x00, 0x13].as_slice())
                .unwrap();
            // The bare key `bad`: empty bytes.
            table.insert("bad", [].as_slice()).unwrap();
            // Well-formed CBOR of an unknown value version, behind a header whose checksum
            // holds: only the decoder can tell.
            let mut unknown = Vec::new();
            ciborium::into_writer(&(9u8, 0i64, 0u32, vlive::Rows::new()), &mut unknown).unwrap();
            let stored = vlive::__private::layout::stored("bad/3", &unknown);
            table.insert("bad/3", stored.as_slice()).unwrap();
            // A value cut in half.
            let whole = table.get("bad/4").unwrap().unwrap().value().to_vec();
            table.insert("bad/4", &whole[..whole.len() / 2]).unwrap();
            // One bit flipped in the rows.
            let mut flipped = table.get("bad/5").unwrap().unwrap().value().to_vec();
            let last = flipped.len() - 1;
            flipped[last] ^= 0x10;
            table.insert("bad/5", flipped.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }

    let cache = RedbCache::open(dir.path()).unwrap();
    for key in ["bad/1", "bad", "bad/3", "bad/4", "bad/5"] {
        let got = cache.get(key).await;
        assert!(
            matches!(got, Ok(None)),
            "{key}: expected a miss, got {got:?}"
        );
    }
    assert_eq!(cache.stats().damaged_reads, 5);
    assert_eq!(tag(&cache, "bad/2").await.as_deref(), Some("bad/2"));
    assert_eq!(tag(&cache, "good/1").await.as_deref(), Some("good/1"));
    // Concurrent gets of good and damaged keys (likely one batch): each gets its own answer.
    let (good, bad) = tokio::join!(cache.get("bad/2"), cache.get("bad/1"));
    assert_eq!(good.unwrap().as_ref().map(tag_of).as_deref(), Some("bad/2"));
    assert!(matches!(bad, Ok(None)));
    // A put over a damaged value repairs it; the next write removes the others.
    cache.put("bad/1", value("fixed")).await.unwrap();
    assert_eq!(tag(&cache, "bad/1").await.as_deref(), Some("fixed"));
    cache.close().await.unwrap();
    let db = redb::Database::create(folder.join(DB_FILE_NAME)).unwrap();
    let txn = db.begin_read().unwrap();
    let table = txn.open_table(ENTRIES).unwrap();
    for key in ["bad", "bad/3", "bad/4", "bad/5"] {
        assert!(table.get(key).unwrap().is_none(), "{key} was not removed");
    }
    assert!(table.get("bad/2").unwrap().is_some());
}

#[test]
fn a_file_that_is_not_a_database_is_refused_and_left_untouched() {
    for size in [1usize, 100, 4096, 5000, 1 << 20] {
        for zeros in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(DB_FILE_NAME);
            let bytes: Vec<u8> = (0..size)
                .map(|i| {
                    if zeros {
                        0
                    } else {
                        b"not a database\n"[i % 15]
                    }
                })
                .collect();
            std::fs::write(&path, &bytes).unwrap();
            for attempt in 0..2 {
                match RedbCache::open(dir.path()) {
                    Err(Error::NotADatabase { path: reported, .. }) => {
                        assert_eq!(reported, path.canonicalize().unwrap());
                    }
                    other => panic!(
                        "{size} bytes (zeros: {zeros}), attempt {attempt}: expected \
                         NotADatabase, got {other:?}"
                    ),
                }
                assert!(
                    std::fs::read(&path).unwrap() == bytes,
                    "{size} bytes (zeros: {zeros}): the file was modified"
                );
            }
        }
    }
}

/// An empty `vlive.redb` (say, created by a crash right after the file was made) is a new
/// cache, not a foreign file.
#[tokio::test]
async fn an_empty_file_becomes_a_new_cache() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(DB_FILE_NAME), b"").unwrap();
    let cache = RedbCache::open(dir.path()).unwrap();
    cache.put("k", value("k")).await.unwrap();
    assert_eq!(tag(&cache, "k").await.as_deref(), Some("k"));
    cache.close().await.unwrap();
}

#[test]
fn a_folder_path_that_is_a_file_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"hello").unwrap();
    match RedbCache::open(&file) {
        Err(Error::Io { .. }) => {}
        other => panic!("expected Io, got {other:?}"),
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"hello");
}

const META: TableDefinition<&str, u64> = TableDefinition::new("vlive_meta");

/// Writes a cache with some data, closes it, then lets `tamper` edit the raw database.
async fn cache_then_tamper(folder: &Path, tamper: impl FnOnce(&redb::WriteTransaction)) {
    let cache = RedbCache::open(folder).unwrap();
    for key in ["a", "a/1", "b/2", ""] {
        cache.put(key, value(key)).await.unwrap();
    }
    cache.close().await.unwrap();
    let db = redb::Database::create(folder.join(DB_FILE_NAME)).unwrap();
    {
        let txn = db.begin_read().unwrap();
        let meta = txn.open_table(META).unwrap();
        assert_eq!(
            meta.get("format_version").unwrap().map(|v| v.value()),
            Some(4),
            "the layout this test knows"
        );
    }
    let txn = db.begin_write().unwrap();
    tamper(&txn);
    txn.commit().unwrap();
}

fn stored_format_version(folder: &Path) -> Option<u64> {
    let db = redb::Database::create(folder.join(DB_FILE_NAME)).unwrap();
    let txn = db.begin_read().unwrap();
    let meta = txn.open_table(META).unwrap();
    meta.get("format_version").unwrap().map(|v| v.value())
}

async fn expect_reset(folder: &Path, what: &str) {
    let cache = RedbCache::open(folder).unwrap();
    for key in ["a", "a/1", "b/2", ""] {
        assert_eq!(
            tag(&cache, key).await,
            None,
            "{what}: {key:?} survived a reset"
        );
    }
    cache.put("a/1", value("new")).await.unwrap();
    assert_eq!(tag(&cache, "a/1").await.as_deref(), Some("new"));
    cache.close().await.unwrap();
    assert_eq!(stored_format_version(folder), Some(4), "{what}");
    let cache = RedbCache::open(folder).unwrap();
    assert_eq!(
        tag(&cache, "a/1").await.as_deref(),
        Some("new"),
        "{what}: data written after the reset must not be reset again"
    );
    cache.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_format_version_resets_the_folder() {
    for version in [0u64, 1, 2, 3, 5, u64::MAX] {
        let dir = tempfile::tempdir().unwrap();
        cache_then_tamper(dir.path(), |txn| {
            txn.open_table(META)
                .unwrap()
                .insert("format_version", version)
                .unwrap();
        })
        .await;
        expect_reset(dir.path(), &format!("format_version {version}")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_without_a_format_version_resets_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    cache_then_tamper(dir.path(), |txn| {
        txn.open_table(META)
            .unwrap()
            .remove("format_version")
            .unwrap();
    })
    .await;
    expect_reset(dir.path(), "no format_version").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_totals_row_resets_the_folder() {
    const CLOCK: TableDefinition<u64, &[u8]> = TableDefinition::new("vlive_clock");
    let dir = tempfile::tempdir().unwrap();
    cache_then_tamper(dir.path(), |txn| {
        let mut clock = txn.open_table(CLOCK).unwrap();
        let totals = clock.get(u64::MAX).unwrap().map(|row| row.value().len());
        assert_eq!(totals, Some(24), "the layout this test knows");
        clock.insert(u64::MAX, &b"not 24 bytes"[..]).unwrap();
    })
    .await;
    expect_reset(dir.path(), "a damaged totals row").await;
}

/// The totals row has no checksum of its own; totals no file of this size could hold (a high
/// bit flipped in `live_bytes` would keep the cache over budget, evicting everything, for good)
/// reset the folder too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implausible_totals_reset_the_folder() {
    const CLOCK: TableDefinition<u64, &[u8]> = TableDefinition::new("vlive_clock");
    let dir = tempfile::tempdir().unwrap();
    cache_then_tamper(dir.path(), |txn| {
        let mut clock = txn.open_table(CLOCK).unwrap();
        let mut row = clock.get(u64::MAX).unwrap().unwrap().value().to_vec();
        row[15] ^= 0x40; // the top byte of live_bytes
        clock.insert(u64::MAX, row.as_slice()).unwrap();
    })
    .await;
    expect_reset(dir.path(), "live_bytes far beyond the file").await;
}

const ENTRIES: TableDefinition<&str, &[u8]> = TableDefinition::new("vlive_entries");

/// Damaged bookkeeping in a value's header never panics, never misreads, and never strands an
/// entry outside the eviction queue: a value too short for a header, or whose header was
/// changed, is a miss that a put repairs, and a header naming another entry's place in the
/// queue leaves that entry evictable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_headers_are_errors_or_repaired_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    cache_then_tamper(dir.path(), |txn| {
        let mut entries = txn.open_table(ENTRIES).unwrap();
        // `b/2`'s header, with its place in the queue, copied over `a`'s.
        let b2 = entries.get("b/2").unwrap().unwrap().value().to_vec();
        let mut a = entries.get("a").unwrap().unwrap().value().to_vec();
        a[..8].copy_from_slice(&b2[..8]);
        entries.insert("a", a.as_slice()).unwrap();
        entries.insert("a/1", &b"short"[..]).unwrap();
    })
    .await;
    let cache = RedbCache::open(dir.path()).unwrap();
    for key in ["a/1", "a"] {
        let got = cache.get(key).await;
        assert!(
            matches!(got, Ok(None)),
            "{key}: expected a miss, got {got:?}"
        );
    }
    assert_eq!(cache.stats().damaged_reads, 2);
    cache.put("a/1", value("mended")).await.unwrap();
    assert_eq!(tag(&cache, "a/1").await.as_deref(), Some("mended"));
    // Replacing `a` must not take `b/2` out of the queue: it would never be evicted.
    cache.put("a", value("a again")).await.unwrap();
    cache.close().await.unwrap();

    // A budget of a few entries, and enough new ones to push every old one out. (The damaged
    // value's length no longer matches what it was charged, so the totals keep a small
    // residue; the budget leaves room for it.)
    let entry_bytes = {
        let scratch = tempfile::tempdir().unwrap();
        let cache = RedbCache::open(scratch.path()).unwrap();
        cache.put("n/00", value("n/00")).await.unwrap();
        let bytes = cache.stats().live_bytes;
        cache.close().await.unwrap();
        bytes
    };
    let small = RedbCache::builder()
        .max_bytes(4 * entry_bytes)
        .open(dir.path())
        .unwrap();
    for i in 0..20 {
        let key = format!("n/{i:02}");
        small.put(&key, value(&key)).await.unwrap();
    }
    for key in ["a", "a/1", "b/2", ""] {
        assert_eq!(tag(&small, key).await, None, "{key:?} escaped eviction");
    }
    assert_eq!(tag(&small, "n/19").await.as_deref(), Some("n/19"));
    small.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_actor_panic_fails_the_panicking_call_and_everything_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let cache = RedbCache::open(dir.path()).unwrap();
    let clone = cache.clone();
    cache.put("before/1", value("before/1")).await.unwrap();
    let panicked = within("the panicking call", cache.inject_actor_panic()).await;
    assert!(panicked.is_err(), "the panicking call got {panicked:?}");
    let folder = cache.folder().to_owned();
    for handle in [&cache, &clone] {
        match within("a get after the panic", handle.get("before/1")).await {
            Err(Error::ActorPanicked { folder: f }) => assert_eq!(f, folder),
            other => panic!("expected ActorPanicked, got {other:?}"),
        }
        let got = within("a put after the panic", handle.put("x", value("x"))).await;
        assert!(matches!(got, Err(Error::ActorPanicked { .. })), "{got:?}");
    }
    let closed = within("close after a panic", cache.close()).await;
    assert!(
        matches!(closed, Err(Error::ActorPanicked { .. })),
        "close after a panic: {closed:?}"
    );

    let reopened = within(
        "reopen",
        tokio::task::spawn_blocking(move || RedbCache::open(folder)),
    )
    .await
    .unwrap()
    .expect("reopen after a panic");
    assert_eq!(
        tag(&reopened, "before/1").await.as_deref(),
        Some("before/1")
    );
    reopened.put("after/1", value("after/1")).await.unwrap();
    // The dead handles stay dead: they are not silently rerouted to the new actor.
    let got = within("a dead handle's get", clone.get("after/1")).await;
    assert!(matches!(got, Err(Error::ActorPanicked { .. })), "{got:?}");
    reopened.close().await.unwrap();
}

/// Lazy mode acknowledges a put once it is queued, so after a panic the put must learn that
/// nobody will take it: the dying actor marks the cache closing before it stops, and a put
/// that finds it so awaits its answer (here the refusal) instead of hearing `Ok` for a value
/// that would never be stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_actor_panic_a_lazy_put_is_refused_not_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let cache = RedbCache::builder()
        .durability(Durability::Lazy {
            max_delay: Duration::from_millis(50),
        })
        .open(dir.path())
        .unwrap();
    cache.put("before/1", value("before/1")).await.unwrap();
    let panicked = within("the panicking call", cache.inject_actor_panic()).await;
    assert!(panicked.is_err(), "the panicking call got {panicked:?}");
    for key in ["after/1", "after/2"] {
        let got = within("a lazy put after the panic", cache.put(key, value(key))).await;
        assert!(
            matches!(got, Err(Error::ActorPanicked { .. })),
            "a lazy put after the panic was answered {got:?}"
        );
    }
    let flushed = within("flush after a panic", cache.flush()).await;
    assert!(
        matches!(flushed, Err(Error::ActorPanicked { .. })),
        "{flushed:?}"
    );
}

/// The panic strikes a batch with commands before and after it, while more wait in the channel:
/// every one of them is answered with an error, none hangs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_actor_panic_fails_every_pending_call() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let cache = RedbCache::builder()
        .max_batch_ops(8)
        .backend_layer(faults.layer())
        .open(dir.path())
        .unwrap();
    let token = cache.fill_token("p/x").await.unwrap();
    let parked = park_actor(&cache, &faults).await;

    // 3 commands, the panic, 20 more: the batch of 8 holds the panic; the rest stay in the
    // channel. Except the gets that no queued write covers: those are answered beside the
    // actor (all of them but `p/21`, which the invalidation of `p/2` covers).
    let answered_beside = |i: usize| i % 4 == 1 && i != 21;
    let mut tasks: Vec<JoinHandle<vlive::Result<()>>> = Vec::new();
    let mut queued = 0;
    for i in 0..24 {
        let handle = cache.clone();
        tasks.push(tokio::spawn(async move {
            let cache = handle;
            let key = format!("p/{i}");
            match i {
                3 => cache.inject_actor_panic().await,
                i if i % 4 == 1 => cache.get(&key).await.map(|_| ()),
                i if i % 4 == 2 => cache.invalidate_prefix(&key).await,
                5 => cache.fill(&key, value("x"), token).await.map(|_| ()),
                _ => cache.put(&key, value("x")).await,
            }
        }));
        if answered_beside(i) {
            let task = tasks.last().expect("just pushed");
            wait_until("the get to be answered", || task.is_finished()).await;
        } else {
            queued += 1;
            wait_until("the command to queue", || {
                cache.stats().queue_depth == queued
            })
            .await;
        }
    }
    faults.release();
    within("the parked put", parked).await.unwrap().unwrap();
    let folder = cache.folder().to_owned();
    for (i, task) in tasks.into_iter().enumerate() {
        let result = within("a pending call", task).await.unwrap();
        match (i, result) {
            (3, Err(_)) => {}
            (i, Ok(())) if answered_beside(i) => {}
            (i, Err(Error::ActorPanicked { folder: f })) if !answered_beside(i) => {
                assert_eq!(f, folder)
            }
            (_, other) => panic!("pending call {i} got {other:?}"),
        }
    }
    let got = within("a get after the panic", cache.get("hold/0")).await;
    assert!(matches!(got, Err(Error::ActorPanicked { .. })), "{got:?}");
    drop(cache);

    let reopened = RedbCache::open(dir.path()).expect("reopen after a panic");
    assert_eq!(tag(&reopened, "hold/0").await.as_deref(), Some("hold"));
    let token = reopened.fill_token("p/1").await.unwrap();
    assert_eq!(
        reopened.fill("p/1", value("p/1"), token).await.unwrap(),
        FillOutcome::Stored
    );
    reopened.close().await.unwrap();
}
