//! Single flight: concurrent misses on one key share one master read.
//!
//! The first caller to miss a key starts a *flight*: the fetch runs in a task of its own, and
//! everyone who misses the same key while it runs waits for that task's result instead of
//! reading the master again. Because the fetch is a spawned task, cancelling any waiter —
//! including the one that started it — strands nobody: the task finishes and the others get
//! its result (or its error; errors are handed out, never remembered).
//!
//! An invalidation calls [`SingleFlight::forget_all`]: flights already running finish for the
//! callers who joined them, but a caller arriving afterwards starts a fresh read, so it never
//! receives rows read before a write it has already seen acknowledged.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;
use tracing::{Instrument, error};

use crate::error::{Error, Result};

/// Who started the flight a caller waited on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// This caller started the fetch.
    Started,
    /// This caller joined a fetch another caller had started.
    Joined,
}

/// The slot a flight's result lands in: `None` while the fetch runs.
type Slot<T> = watch::Receiver<Option<Result<T>>>;

/// The flights in progress, by key.
pub(crate) struct SingleFlight<T> {
    flights: Arc<Mutex<Flights<T>>>,
}

struct Flights<T> {
    next_id: u64,
    running: HashMap<String, (u64, Slot<T>)>,
}

impl<T> fmt::Debug for SingleFlight<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SingleFlight")
            .field("running", &self.lock().running.len())
            .finish()
    }
}

impl<T> Default for SingleFlight<T> {
    fn default() -> Self {
        SingleFlight {
            flights: Arc::new(Mutex::new(Flights {
                next_id: 0,
                running: HashMap::new(),
            })),
        }
    }
}

impl<T> SingleFlight<T> {
    fn lock(&self) -> MutexGuard<'_, Flights<T>> {
        // Every critical section is a single map operation: a poisoned lock is still consistent.
        self.flights.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Detaches every running flight: their current waiters still get their results, but later
    /// callers start new fetches.
    pub(crate) fn forget_all(&self) {
        self.lock().running.clear();
    }
}

impl<T: Clone + Send + Sync + 'static> SingleFlight<T> {
    /// Waits for the flight on `key`, starting one with `fetch` if none is running.
    ///
    /// `fetch` is called only when this caller starts the flight; its future runs in a spawned
    /// task (so a Tokio runtime is required), instrumented with the caller's current span.
    pub(crate) async fn run<F, Fut>(&self, key: &str, fetch: F) -> (Result<T>, Role)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        let (mut slot, role) = self.join_or_start(key, fetch);
        let result = match slot.wait_for(Option::is_some).await {
            Ok(done) => done.clone().expect("waited for a result"),
            Err(_closed) => Err(Error::master(FetchAborted {
                key: key.to_owned(),
            })),
        };
        (result, role)
    }

    /// The slot to wait on. No await point: a caller that missed the cache joins or starts a
    /// flight in the same poll.
    fn join_or_start<F, Fut>(&self, key: &str, fetch: F) -> (Slot<T>, Role)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        let mut flights = self.lock();
        if let Some((_, slot)) = flights.running.get(key) {
            return (slot.clone(), Role::Joined);
        }
        flights.next_id += 1;
        let id = flights.next_id;
        let (sender, slot) = watch::channel(None);
        flights.running.insert(key.to_owned(), (id, slot.clone()));
        drop(flights);

        let landing = Landing {
            flights: self.flights.clone(),
            key: key.to_owned(),
            id,
        };
        let fetch = fetch();
        tokio::spawn(
            async move {
                let result = fetch.await;
                sender.send_replace(Some(result));
                // The flight leaves the map when `landing` drops: here, or on a panic in `fetch`
                // (then the dropped sender tells the waiters the fetch was aborted).
                drop(landing);
            }
            .in_current_span(),
        );
        (slot, Role::Started)
    }
}

/// Removes a finished flight from the map, unless an invalidation already detached it (then a
/// newer flight may be under the same key, and it is not ours to remove).
struct Landing<T> {
    flights: Arc<Mutex<Flights<T>>>,
    key: String,
    id: u64,
}

impl<T> Drop for Landing<T> {
    fn drop(&mut self) {
        let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
        if flights
            .running
            .get(&self.key)
            .is_some_and(|(id, _)| *id == self.id)
        {
            flights.running.remove(&self.key);
        }
        if std::thread::panicking() {
            error!(key = %self.key, "the master read panicked");
        }
    }
}

/// The fetch task ended without a result: it panicked, or the runtime shut down under it.
#[derive(Debug)]
struct FetchAborted {
    key: String,
}

impl fmt::Display for FetchAborted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the master read for cache key {:?} panicked or was aborted",
            self.key
        )
    }
}

impl std::error::Error for FetchAborted {}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::sync::Notify;

    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn joiners_share_one_fetch_and_a_forgotten_flight_is_not_joined() {
        let flights: Arc<SingleFlight<u32>> = Arc::default();
        let calls = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(Notify::new());
        let fetch = |value: u32| {
            let calls = calls.clone();
            let gate = gate.clone();
            move || async move {
                calls.fetch_add(1, Ordering::SeqCst);
                gate.notified().await;
                Ok(value)
            }
        };
        let (first, role) = flights.join_or_start("k", fetch(1));
        assert_eq!(role, Role::Started);
        let (second, role) = flights.join_or_start("k", fetch(2));
        assert_eq!(role, Role::Joined);
        flights.forget_all();
        let (third, role) = flights.join_or_start("k", fetch(3));
        assert_eq!(role, Role::Started);

        // Let both fetches reach the gate, then open it for both.
        while calls.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        gate.notify_waiters();
        let read = |mut slot: Slot<u32>| async move {
            slot.wait_for(Option::is_some)
                .await
                .unwrap()
                .clone()
                .unwrap()
                .unwrap()
        };
        assert_eq!(read(first).await, 1);
        assert_eq!(read(second).await, 1);
        assert_eq!(read(third).await, 3);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_panicking_fetch_fails_its_waiters_and_leaves_the_map() {
        let flights: SingleFlight<u32> = SingleFlight::default();
        let (result, _) = flights
            .run("k", || async { panic!("planted panic in a fetch") })
            .await;
        let error = result.unwrap_err();
        assert!(
            error.to_string().contains("panicked or was aborted"),
            "{error}"
        );
        assert!(flights.lock().running.is_empty());
        let (result, role) = flights.run("k", || async { Ok(7) }).await;
        assert_eq!((result.unwrap(), role), (7, Role::Started));
    }
}
