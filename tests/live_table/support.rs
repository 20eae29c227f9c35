//! Test doubles for the LiveTable tests: a master whose reads and writes can be held at a gate,
//! failed or made to panic, and a cache wrapper that reports what happened to it.
//!
//! Everything synchronizes on explicit signals (watch counters, gates), never on sleeps.

#![allow(dead_code)]

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{oneshot, watch};
use vlive::{Cache, CachedRows, Error, FillOutcome, FillToken, Master, Page, Record, Rows, Value};

/// Every cache backend a LiveTable test runs against, by name; the redb one lives in the
/// returned folder (keep it alive as long as the cache).
pub fn backends() -> Vec<(&'static str, Arc<dyn Cache>, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let redb = vlive::RedbCache::open(dir.path().join("cache")).unwrap();
    vec![
        ("mem", Arc::new(vlive::MemCache::new()), None),
        ("redb", Arc::new(redb), Some(dir)),
    ]
}

/// Waiting longer than this means the code under test hung: fail instead of hanging CI. This is
/// a hang guard, not a timing assertion — every wait below is for a signal that must come.
pub const HANG_GUARD: Duration = Duration::from_secs(30);

/// Waits until `counter` reaches `at_least`.
pub async fn reach(counter: &watch::Sender<usize>, at_least: usize) {
    let mut seen = counter.subscribe();
    tokio::time::timeout(HANG_GUARD, seen.wait_for(|n| *n >= at_least))
        .await
        .unwrap_or_else(|_| panic!("hung waiting for a counter to reach {at_least}"))
        .expect("counter sender alive");
}

/// Bumps a watch counter.
pub fn bump(counter: &watch::Sender<usize>) {
    counter.send_modify(|n| *n += 1);
}

/// A record `{name: <name>}`.
pub fn record(name: &str) -> Record {
    Record::from([("name".to_string(), Value::Text(name.into()))])
}

/// A record with one integer field.
pub fn int_record(field: &str, value: i64) -> Record {
    Record::from([(field.to_string(), Value::Integer(value.into()))])
}

/// `n` rows `r01..rNN`, named `name-01..`.
pub fn seed_rows(n: usize) -> Rows {
    (1..=n)
        .map(|i| (format!("r{i:02}"), record(&format!("name-{i:02}"))))
        .collect()
}

/// Polls `futures` in order, on every wake, until all are done: the first poll of each happens
/// in list order, so writes are queued in list order.
pub async fn join_in_order<'a, T>(
    futures: Vec<Pin<Box<dyn Future<Output = T> + Send + 'a>>>,
) -> Vec<T> {
    let mut futures: Vec<_> = futures.into_iter().map(Some).collect();
    let mut results: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    poll_fn(|cx| {
        let mut pending = false;
        for (slot, result) in futures.iter_mut().zip(results.iter_mut()) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => {
                        *result = Some(value);
                        *slot = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    results.into_iter().map(Option::unwrap).collect()
}

/// A gate that held operations wait at until it is opened.
#[derive(Clone, Debug)]
pub struct Gate(Arc<watch::Sender<bool>>);

impl Default for Gate {
    fn default() -> Self {
        Gate(Arc::new(watch::channel(false).0))
    }
}

impl Gate {
    pub fn open(&self) {
        self.0.send_replace(true);
    }

    /// Waits until the gate is open.
    pub async fn pass(&self) {
        let mut open = self.0.subscribe();
        open.wait_for(|open| *open).await.expect("gate alive");
    }
}

/// The error a [`TestMaster`] fails with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestError(pub String);

impl fmt::Display for TestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TestError {}

/// The `TestError` inside an `Error::Master`, if that is what `error` is.
pub fn master_source(error: &Error) -> Option<&TestError> {
    match error {
        Error::Master(source) => source.downcast_ref::<TestError>(),
        _ => None,
    }
}

/// An in-memory master with knobs.
pub struct TestMaster {
    rows: Mutex<Rows>,
    /// Master reads (`list` + `get`) begun.
    pub reads: watch::Sender<usize>,
    pub list_calls: AtomicUsize,
    pub get_calls: AtomicUsize,
    /// Writes begun (counted before the gate).
    pub writes_started: watch::Sender<usize>,
    /// Writes applied, in order: `"insert r01"`, `"patch r01"`, …
    pub write_log: Mutex<Vec<String>>,
    hold_next_read: Mutex<Option<Gate>>,
    hold_next_write: Mutex<Option<Gate>>,
    fail_reads: Mutex<Option<String>>,
    fail_next_write: Mutex<Option<String>>,
    panic_next_write: AtomicBool,
    panic_next_read: AtomicBool,
}

impl TestMaster {
    pub fn new(rows: Rows) -> Arc<Self> {
        Arc::new(TestMaster {
            rows: Mutex::new(rows),
            reads: watch::channel(0).0,
            list_calls: AtomicUsize::new(0),
            get_calls: AtomicUsize::new(0),
            writes_started: watch::channel(0).0,
            write_log: Mutex::default(),
            hold_next_read: Mutex::default(),
            hold_next_write: Mutex::default(),
            fail_reads: Mutex::default(),
            fail_next_write: Mutex::default(),
            panic_next_write: AtomicBool::new(false),
            panic_next_read: AtomicBool::new(false),
        })
    }

    pub fn list_calls(&self) -> usize {
        self.list_calls.load(Ordering::SeqCst)
    }

    pub fn get_calls(&self) -> usize {
        self.get_calls.load(Ordering::SeqCst)
    }

    pub fn rows(&self) -> Rows {
        self.rows.lock().unwrap().clone()
    }

    pub fn write_log(&self) -> Vec<String> {
        self.write_log.lock().unwrap().clone()
    }

    /// The next read takes its snapshot of the rows, then waits at the returned gate: a
    /// response already computed but still in flight from a remote master.
    pub fn hold_next_read(&self) -> Gate {
        let gate = Gate::default();
        *self.hold_next_read.lock().unwrap() = Some(gate.clone());
        gate
    }

    /// The next write waits at the returned gate before it is applied.
    pub fn hold_next_write(&self) -> Gate {
        let gate = Gate::default();
        *self.hold_next_write.lock().unwrap() = Some(gate.clone());
        gate
    }

    /// Every read fails with `message` until `None` is set.
    pub fn fail_reads(&self, message: Option<&str>) {
        *self.fail_reads.lock().unwrap() = message.map(str::to_owned);
    }

    pub fn fail_next_write(&self, message: &str) {
        *self.fail_next_write.lock().unwrap() = Some(message.to_owned());
    }

    pub fn panic_next_write(&self) {
        self.panic_next_write.store(true, Ordering::SeqCst);
    }

    /// The next read panics (after it is counted and passes its gate, if one is armed).
    pub fn panic_next_read(&self) {
        self.panic_next_read.store(true, Ordering::SeqCst);
    }

    /// Changes a row behind the table's back (an out-of-band change).
    pub fn set_out_of_band(&self, id: &str, record: Record) {
        self.rows.lock().unwrap().insert(id.to_owned(), record);
    }

    /// Counts the read, snapshots with `snapshot`, then waits at the gate if one is armed.
    async fn read<T>(&self, snapshot: impl FnOnce(&Rows) -> T) -> vlive::Result<T> {
        let failure = self.fail_reads.lock().unwrap().clone();
        let result = {
            let rows = self.rows.lock().unwrap();
            snapshot(&rows)
        };
        let gate = self.hold_next_read.lock().unwrap().take();
        bump(&self.reads);
        if let Some(gate) = gate {
            gate.pass().await;
        }
        if self.panic_next_read.swap(false, Ordering::SeqCst) {
            panic!("planted panic in a master read");
        }
        match failure {
            Some(message) => Err(Error::master(TestError(message))),
            None => Ok(result),
        }
    }

    async fn write<T>(
        &self,
        entry: String,
        apply: impl FnOnce(&mut Rows) -> Result<T, String>,
    ) -> vlive::Result<T> {
        bump(&self.writes_started);
        let gate = self.hold_next_write.lock().unwrap().take();
        if let Some(gate) = gate {
            gate.pass().await;
        }
        if self.panic_next_write.swap(false, Ordering::SeqCst) {
            panic!("planted panic in the master during {entry}");
        }
        if let Some(message) = self.fail_next_write.lock().unwrap().take() {
            return Err(Error::master(TestError(message)));
        }
        let mut rows = self.rows.lock().unwrap();
        let result = apply(&mut rows).map_err(|m| Error::master(TestError(m)))?;
        self.write_log.lock().unwrap().push(entry);
        Ok(result)
    }
}

#[async_trait]
impl Master for TestMaster {
    async fn list(&self, page: Page) -> vlive::Result<Rows> {
        self.list_calls.fetch_add(1, Ordering::SeqCst);
        self.read(|rows| {
            rows.iter()
                .skip(page.offset() as usize)
                .take(page.per_page as usize)
                .map(|(id, r)| (id.clone(), r.clone()))
                .collect()
        })
        .await
    }

    async fn get(&self, id: &str) -> vlive::Result<Option<Record>> {
        self.get_calls.fetch_add(1, Ordering::SeqCst);
        self.read(|rows| rows.get(id).cloned()).await
    }

    async fn insert(&self, id: &str, record: Record) -> vlive::Result<Record> {
        self.write(format!("insert {id}"), |rows| {
            if rows.contains_key(id) {
                return Err(format!("{id} already exists"));
            }
            rows.insert(id.to_owned(), record.clone());
            Ok(record)
        })
        .await
    }

    async fn replace(&self, id: &str, record: Record) -> vlive::Result<Record> {
        self.write(format!("replace {id}"), |rows| {
            let row = rows.get_mut(id).ok_or(format!("no row {id}"))?;
            *row = record.clone();
            Ok(record)
        })
        .await
    }

    async fn patch(&self, id: &str, partial: Record) -> vlive::Result<Record> {
        self.write(format!("patch {id}"), |rows| {
            let row = rows.get_mut(id).ok_or(format!("no row {id}"))?;
            row.extend(partial);
            Ok(row.clone())
        })
        .await
    }

    async fn delete(&self, id: &str) -> vlive::Result<()> {
        self.write(format!("delete {id}"), |rows| {
            rows.shift_remove(id)
                .map(drop)
                .ok_or(format!("no row {id}"))
        })
        .await
    }

    async fn delete_all(&self) -> vlive::Result<()> {
        self.write("delete_all".to_owned(), |rows| {
            rows.clear();
            Ok(())
        })
        .await
    }
}

/// Wraps a cache and reports what reached it: completed gets (and misses), invalidations, fills,
/// and when the wrapper itself is dropped (which tells that every task holding it has stopped).
/// Fills can also be made to fail, or be held after the inner cache has taken them.
pub struct ObservedCache {
    inner: Arc<dyn Cache>,
    pub gets: watch::Sender<usize>,
    pub misses: AtomicUsize,
    pub invalidations: watch::Sender<usize>,
    /// Fills completed by the inner cache (stored, rejected or failed).
    pub fills: watch::Sender<usize>,
    fail_fills: AtomicBool,
    fail_invalidations: AtomicBool,
    hold_next_fill: Mutex<Option<Gate>>,
    dropped: Mutex<Option<oneshot::Sender<()>>>,
}

impl ObservedCache {
    pub fn new(inner: Arc<dyn Cache>) -> Arc<Self> {
        Self::with_drop_signal(inner).0
    }

    /// Also returns a receiver that resolves when the wrapper is dropped.
    pub fn with_drop_signal(inner: Arc<dyn Cache>) -> (Arc<Self>, oneshot::Receiver<()>) {
        let (signal, dropped) = oneshot::channel();
        let cache = Arc::new(ObservedCache {
            inner,
            gets: watch::channel(0).0,
            misses: AtomicUsize::new(0),
            invalidations: watch::channel(0).0,
            fills: watch::channel(0).0,
            fail_fills: AtomicBool::new(false),
            fail_invalidations: AtomicBool::new(false),
            hold_next_fill: Mutex::default(),
            dropped: Mutex::new(Some(signal)),
        });
        (cache, dropped)
    }

    pub fn invalidations(&self) -> usize {
        *self.invalidations.borrow()
    }

    pub fn fills(&self) -> usize {
        *self.fills.borrow()
    }

    /// Every fill fails with `Error::Closed` (without reaching the inner cache) until reset.
    pub fn fail_fills(&self, fail: bool) {
        self.fail_fills.store(fail, Ordering::SeqCst);
    }

    /// Every invalidation fails with `Error::Closed` (without reaching the inner cache, which
    /// keeps its entries: this wrapper does not keep the contract's promise that nothing stale
    /// is served after a failed invalidation) until reset.
    pub fn fail_invalidations(&self, fail: bool) {
        self.fail_invalidations.store(fail, Ordering::SeqCst);
    }

    /// The next fill reaches the inner cache (and is counted), then waits at the returned gate
    /// before it answers: a fill already committed whose reply has not reached the caller yet.
    pub fn hold_next_fill(&self) -> Gate {
        let gate = Gate::default();
        *self.hold_next_fill.lock().unwrap() = Some(gate.clone());
        gate
    }
}

impl Drop for ObservedCache {
    fn drop(&mut self) {
        if let Some(signal) = self.dropped.lock().unwrap().take() {
            let _ = signal.send(());
        }
    }
}

#[async_trait]
impl Cache for ObservedCache {
    async fn get(&self, key: &str) -> vlive::Result<Option<CachedRows>> {
        let found = self.inner.get(key).await;
        if matches!(found, Ok(None)) {
            self.misses.fetch_add(1, Ordering::SeqCst);
        }
        bump(&self.gets);
        found
    }

    async fn put(&self, key: &str, rows: CachedRows) -> vlive::Result<()> {
        self.inner.put(key, rows).await
    }

    async fn invalidate_prefix(&self, prefix: &str) -> vlive::Result<()> {
        let result = if self.fail_invalidations.load(Ordering::SeqCst) {
            Err(Error::Closed)
        } else {
            self.inner.invalidate_prefix(prefix).await
        };
        bump(&self.invalidations);
        result
    }

    async fn fill_token(&self, key: &str) -> vlive::Result<FillToken> {
        self.inner.fill_token(key).await
    }

    async fn fill(
        &self,
        key: &str,
        rows: CachedRows,
        token: FillToken,
    ) -> vlive::Result<FillOutcome> {
        let outcome = if self.fail_fills.load(Ordering::SeqCst) {
            Err(Error::Closed)
        } else {
            self.inner.fill(key, rows, token).await
        };
        let gate = self.hold_next_fill.lock().unwrap().take();
        bump(&self.fills);
        if let Some(gate) = gate {
            gate.pass().await;
        }
        outcome
    }
}

/// A cache whose every operation fails, as a closed or broken cache does.
pub struct BrokenCache;

#[async_trait]
impl Cache for BrokenCache {
    async fn get(&self, _key: &str) -> vlive::Result<Option<CachedRows>> {
        Err(Error::Closed)
    }
    async fn put(&self, _key: &str, _rows: CachedRows) -> vlive::Result<()> {
        Err(Error::Closed)
    }
    async fn invalidate_prefix(&self, _prefix: &str) -> vlive::Result<()> {
        Err(Error::Closed)
    }
    async fn fill_token(&self, _key: &str) -> vlive::Result<FillToken> {
        Err(Error::Closed)
    }
    async fn fill(
        &self,
        _key: &str,
        _rows: CachedRows,
        _token: FillToken,
    ) -> vlive::Result<FillOutcome> {
        Err(Error::Closed)
    }
}
