//! Helpers shared by the integration tests: sample values, a hang detector, polling, and a redb
//! storage backend that can fail or hold its I/O on demand (fault injection and deterministic
//! batching).
//!
//! Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::future::Future;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redb::StorageBackend;
use redb::backends::FileBackend;
use vlive::{CachedRows, Record, Rows, Value};

/// How long any single await may take before a test calls it a hang. Only a hang detector: no
/// test asserts anything about speed.
pub const HANG: Duration = Duration::from_secs(30);

/// A fixed timestamp with sub-millisecond digits, so precision loss would show.
/// A runtime with the 2 workers of the machines the tests run on, for tests that drive the cache
/// from synchronous code (child processes, `main`s of their own).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

pub fn stamp() -> SystemTime {
    UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789)
}

/// Rows that carry `tag`, so a value read back can be traced to the put that wrote it.
pub fn rows(tag: &str) -> Rows {
    let mut record = Record::new();
    record.insert("tag".into(), Value::Text(tag.to_owned()));
    record.insert("len".into(), Value::Integer((tag.len() as u64).into()));
    let mut rows = Rows::new();
    rows.insert("1".into(), record);
    rows
}

/// A cached value tagged `tag`, fetched at [`stamp`].
pub fn value(tag: &str) -> CachedRows {
    CachedRows::with_fetched_at(rows(tag), stamp())
}

/// The tag of a value built by [`value`] (panics on anything else).
pub fn tag_of(value: &CachedRows) -> String {
    match value.rows.get("1").and_then(|record| record.get("tag")) {
        Some(Value::Text(tag)) => tag.clone(),
        other => panic!("not a tagged test value: {other:?}"),
    }
}

/// The tag of the value stored under `key`, if any (panics if the get fails).
pub async fn tag(cache: &dyn vlive::Cache, key: &str) -> Option<String> {
    cache
        .get(key)
        .await
        .unwrap_or_else(|e| panic!("get {key:?}: {e}"))
        .as_ref()
        .map(tag_of)
}

/// Awaits `fut`, failing the test if it takes longer than [`HANG`].
pub async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(HANG, fut).await {
        Ok(output) => output,
        Err(_) => panic!("hang: {what} did not finish within {HANG:?}"),
    }
}

/// Polls `condition` until it holds, failing the test after [`HANG`].
pub async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + HANG;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "hang: waited {HANG:?} for {what}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The switches of a [`FaultyBackend`], shared with the test.
#[derive(Debug, Default)]
pub struct Faults {
    /// While set, `write` fails with an I/O error (without writing).
    pub fail_write: AtomicBool,
    /// While set, `sync_data` fails with an I/O error (without syncing).
    pub fail_sync: AtomicBool,
    /// When set, the next `sync_data` panics (once).
    pub panic_sync: AtomicBool,
    /// `sync_data` calls seen (including failed ones).
    pub syncs: AtomicUsize,
    /// While set, `write` and `set_len` fail as a full disk does (`ENOSPC`).
    pub disk_full: AtomicBool,
    /// When set, the next `read` panics (once), as redb does on a damaged page.
    pub panic_read: AtomicBool,
    /// While `true`, a successful `sync_data` does not return: the actor stays inside its
    /// commit, so commands pile up in the channel and form one known batch.
    hold: Mutex<bool>,
    released: Condvar,
    /// How many threads wait inside `sync_data` right now.
    holding: AtomicUsize,
}

impl Faults {
    /// Fresh switches: no fault, no hold.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// From now on, the next successful `sync_data` blocks until [`release`](Faults::release).
    pub fn hold(&self) {
        *self.hold.lock().unwrap() = true;
    }

    /// Lets held `sync_data` calls return, and stops holding.
    pub fn release(&self) {
        *self.hold.lock().unwrap() = false;
        self.released.notify_all();
    }

    /// Whether a thread (the actor) is blocked inside `sync_data`.
    pub fn is_holding(&self) -> bool {
        self.holding.load(Ordering::SeqCst) > 0
    }

    fn wait_while_held(&self) {
        let mut held = self.hold.lock().unwrap();
        if !*held {
            return;
        }
        self.holding.fetch_add(1, Ordering::SeqCst);
        // Never block forever, even if a failing test forgets to release.
        let deadline = Instant::now() + HANG * 2;
        while *held && Instant::now() < deadline {
            held = self
                .released
                .wait_timeout(held, Duration::from_millis(100))
                .unwrap()
                .0;
        }
        self.holding.fetch_sub(1, Ordering::SeqCst);
    }

    /// A layer for [`vlive::RedbCacheBuilder::backend_layer`].
    pub fn layer(
        self: &Arc<Self>,
    ) -> impl Fn(FileBackend) -> FaultyBackend + Send + Sync + 'static {
        let faults = self.clone();
        move |inner| FaultyBackend {
            inner,
            faults: faults.clone(),
        }
    }
}

/// Wraps redb's file backend; every method delegates, except when a [`Faults`] switch says
/// otherwise.
#[derive(Debug)]
pub struct FaultyBackend {
    inner: FileBackend,
    faults: Arc<Faults>,
}

/// What a write to a full disk gets from the kernel.
fn no_space() -> std::io::Error {
    std::io::Error::from_raw_os_error(28)
}

fn injected(what: &str) -> std::io::Error {
    std::io::Error::other(format!("injected {what} fault"))
}

impl StorageBackend for FaultyBackend {
    fn len(&self) -> std::io::Result<u64> {
        self.inner.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        if self.faults.panic_read.swap(false, Ordering::SeqCst) {
            panic!("planted panic in read");
        }
        self.inner.read(offset, out)
    }

    fn set_len(&self, len: u64) -> std::io::Result<()> {
        if self.faults.disk_full.load(Ordering::SeqCst) && len > self.inner.len()? {
            return Err(no_space());
        }
        self.inner.set_len(len)
    }

    fn sync_data(&self) -> std::io::Result<()> {
        if self.faults.panic_sync.swap(false, Ordering::SeqCst) {
            panic!("planted panic in sync_data");
        }
        self.faults.syncs.fetch_add(1, Ordering::SeqCst);
        if self.faults.fail_sync.load(Ordering::SeqCst) {
            return Err(injected("sync_data"));
        }
        self.inner.sync_data()?;
        self.faults.wait_while_held();
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        if self.faults.fail_write.load(Ordering::SeqCst) {
            return Err(injected("write"));
        }
        if self.faults.disk_full.load(Ordering::SeqCst) {
            return Err(no_space());
        }
        self.inner.write(offset, data)
    }

    fn close(&self) -> std::io::Result<()> {
        self.inner.close()
    }

    fn try_lock_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, redb::BackendError> {
        self.inner.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, redb::BackendError> {
        self.inner.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), redb::BackendError> {
        self.inner.lock_range(start, end)
    }

    fn lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<(), redb::BackendError> {
        self.inner.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), redb::BackendError> {
        self.inner.unlock_range(start, end)
    }

    fn query_lock_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, redb::BackendError> {
        self.inner.query_lock_range(start, end)
    }
}

/// Opens a cache over a [`FaultyBackend`] driven by `faults`.
pub fn faulty(folder: &std::path::Path, faults: &Arc<Faults>) -> vlive::RedbCache {
    vlive::RedbCache::builder()
        .backend_layer(faults.layer())
        .open(folder)
        .unwrap()
}

/// Opens a cache whose channel holds `capacity` commands, over a [`FaultyBackend`] driven by
/// `faults`, and parks its actor in a commit: callers beyond `capacity` wait for room.
pub async fn parked_with_capacity(
    folder: &std::path::Path,
    faults: &Arc<Faults>,
    capacity: usize,
) -> (vlive::RedbCache, tokio::task::JoinHandle<vlive::Result<()>>) {
    let cache = vlive::RedbCache::builder()
        .capacity(capacity)
        .backend_layer(faults.layer())
        .open(folder)
        .unwrap();
    let parked = park_actor(&cache, faults).await;
    (cache, parked)
}

/// Opens a lazy-durability cache (checkpoint interval far longer than any test) over a
/// [`FaultyBackend`] driven by `faults`.
pub fn lazy_faulty(folder: &std::path::Path, faults: &Arc<Faults>) -> vlive::RedbCache {
    vlive::RedbCache::builder()
        .durability(vlive::Durability::Lazy {
            max_delay: Duration::from_secs(3600),
        })
        .backend_layer(faults.layer())
        .open(folder)
        .unwrap()
}

/// Parks the actor inside the commit of a put of `hold/0`; commands sent from now on queue up
/// until `faults.release()`. Returns the parked put's task.
pub async fn park_actor(
    cache: &vlive::RedbCache,
    faults: &Arc<Faults>,
) -> tokio::task::JoinHandle<vlive::Result<()>> {
    use vlive::Cache;
    faults.hold();
    let parked = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.put("hold/0", value("hold")).await })
    };
    wait_until("the actor to park in a commit", || faults.is_holding()).await;
    parked
}
