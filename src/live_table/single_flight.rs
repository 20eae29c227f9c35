//! Single flight: concurrent misses on one key share one master read.
//!
//! The first caller to miss a key starts a *flight*: the fetch runs in a task of its own, and
//! everyone who misses the same key while it is *boarding* waits for that task's result instead
//! of reading the master again. Because the fetch is a spawned task, cancelling any waiter —
//! including the one that started it — strands nobody: the task finishes and the others get
//! its result (or its error; errors are handed out, never remembered).
//!
//! A flight stops taking joiners (it leaves the map, and the next caller starts a new one) when
//! the first of these happens:
//! - its fetch closes boarding with the [`Boarding`] pass it was handed (or drops the pass);
//!   the LiveTable's fetch does so when the master has answered, *before* it writes the rows to
//!   the cache, so that everyone who joined a flight joined before its fill reached the cache
//!   (the read path in `reader.rs` relies on that to decide whether a follower may use the rows,
//!   `docs/DESIGN.md` §4.3);
//! - its fetch finishes: the result is published only after the flight has left the map, so
//!   nobody can join a flight whose result is already out;
//! - an invalidation calls [`SingleFlight::forget_all`]: flights already running finish for
//!   the callers who joined them, but a caller arriving afterwards starts a fresh read.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use crate::sync::{Mutex, MutexGuard};

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
    /// The flights still taking joiners.
    boarding: HashMap<String, (u64, Slot<T>)>,
}

impl<T> Flights<T> {
    /// Takes flight `id` off `key`, unless it has already gone (then a newer flight may be
    /// under the same key, and it is not ours to remove).
    fn close(&mut self, key: &str, id: u64) {
        if self
            .boarding
            .get(key)
            .is_some_and(|(boarding, _)| *boarding == id)
        {
            self.boarding.remove(key);
        }
    }
}

impl<T> fmt::Debug for SingleFlight<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SingleFlight")
            .field("boarding", &self.lock().boarding.len())
            .finish()
    }
}

impl<T> Default for SingleFlight<T> {
    fn default() -> Self {
        SingleFlight {
            flights: Arc::new(Mutex::new(Flights {
                next_id: 0,
                boarding: HashMap::new(),
            })),
        }
    }
}

impl<T> SingleFlight<T> {
    fn lock(&self) -> MutexGuard<'_, Flights<T>> {
        self.flights.lock()
    }

    /// Detaches every running flight: their current waiters still get their results, but later
    /// callers start new fetches.
    pub(crate) fn forget_all(&self) {
        self.lock().boarding.clear();
    }
}

impl<T: Clone + Send + Sync + 'static> SingleFlight<T> {
    /// Waits for the flight on `key`, starting one with `fetch` if none is boarding.
    ///
    /// `fetch` is called only when this caller starts the flight, with the flight's
    /// [`Boarding`] pass; its future runs in a spawned task (so a Tokio runtime is required),
    /// instrumented with the caller's current span.
    pub(crate) async fn run<F, Fut>(&self, key: &str, fetch: F) -> (Result<T>, Role)
    where
        F: FnOnce(Boarding<T>) -> Fut,
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
        F: FnOnce(Boarding<T>) -> Fut,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        let mut flights = self.lock();
        if let Some((_, slot)) = flights.boarding.get(key) {
            return (slot.clone(), Role::Joined);
        }
        flights.next_id += 1;
        let id = flights.next_id;
        let (sender, slot) = watch::channel(None);
        flights.boarding.insert(key.to_owned(), (id, slot.clone()));
        drop(flights);

        let boarding = Boarding {
            flights: self.flights.clone(),
            key: key.to_owned(),
            id,
        };
        // The task's own hold on the flight: whatever the fetch did with its pass, the flight
        // leaves the map before its result is published.
        let guard = PanicLogGuard(Boarding {
            flights: self.flights.clone(),
            key: key.to_owned(),
            id,
        });
        let fetch = fetch(boarding);
        tokio::spawn(
            async move {
                let result = fetch.await;
                drop(guard);
                sender.send_replace(Some(result));
                // On a panic in `fetch`, the guard logs it, and the dropped sender tells the
                // waiters that the fetch was aborted.
            }
            .in_current_span(),
        );
        (slot, Role::Started)
    }
}

/// A flight's hold on its place in the map: while it exists (and no invalidation has detached
/// the flight), callers who miss the same key join the flight. Closing or dropping it takes the
/// flight off the map; its waiters still get its result.
pub(crate) struct Boarding<T> {
    flights: Arc<Mutex<Flights<T>>>,
    key: String,
    id: u64,
}

impl<T> Boarding<T> {
    /// Takes no more joiners: callers who miss from now on start a new flight.
    pub(crate) fn close(self) {
        // The work is done in `drop`, which also runs when the fetch panics or is dropped.
    }
}

impl<T> Drop for Boarding<T> {
    fn drop(&mut self) {
        self.flights.lock().close(&self.key, self.id);
    }
}

/// A drop guard that logs a panic in the fetch task; it holds the task's own [`Boarding`].
struct PanicLogGuard<T>(Boarding<T>);

impl<T> Drop for PanicLogGuard<T> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            error!(key = %self.0.key, "the master read panicked");
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

    /// What a slot finally holds.
    async fn read(mut slot: Slot<u32>) -> u32 {
        slot.wait_for(Option::is_some)
            .await
            .unwrap()
            .clone()
            .unwrap()
            .unwrap()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn joiners_share_one_fetch_and_a_forgotten_flight_is_not_joined() {
        let flights: Arc<SingleFlight<u32>> = Arc::default();
        let calls = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(Notify::new());
        let fetch = |value: u32| {
            let calls = calls.clone();
            let gate = gate.clone();
            move |boarding: Boarding<u32>| async move {
                let _boarding = boarding; // boards until the fetch ends
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
        assert_eq!(read(first).await, 1);
        assert_eq!(read(second).await, 1);
        assert_eq!(read(third).await, 3);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert!(flights.lock().boarding.is_empty(), "landed flights leave");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_flight_whose_boarding_closed_takes_no_joiners_but_still_answers_its_own() {
        let flights: Arc<SingleFlight<u32>> = Arc::default();
        let closed = Arc::new(Notify::new());
        let gate = Arc::new(Notify::new());
        let (first, role) = flights.join_or_start("k", {
            let closed = closed.clone();
            let gate = gate.clone();
            move |boarding: Boarding<u32>| async move {
                boarding.close();
                closed.notify_one();
                gate.notified().await; // still running after boarding closed
                Ok(1)
            }
        });
        assert_eq!(role, Role::Started);
        let (joined, role) = flights.join_or_start("k", |_| async { Ok(99) });
        assert_eq!(
            role,
            Role::Joined,
            "boarding is open until the fetch closes it"
        );

        closed.notified().await;
        let (late, role) = flights.join_or_start("k", |boarding: Boarding<u32>| async move {
            drop(boarding);
            Ok(2)
        });
        assert_eq!(role, Role::Started, "a closed flight is not joined");
        gate.notify_one();
        assert_eq!(read(first).await, 1);
        assert_eq!(read(joined).await, 1, "who joined in time gets the result");
        assert_eq!(read(late).await, 2);
        assert!(flights.lock().boarding.is_empty());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_panicking_fetch_fails_its_waiters_and_leaves_the_map() {
        let flights: SingleFlight<u32> = SingleFlight::default();
        let (result, _) = flights
            .run("k", |boarding: Boarding<u32>| async move {
                let _boarding = boarding;
                panic!("planted panic in a fetch")
            })
            .await;
        let error = result.unwrap_err();
        let cause = crate::error::chain(&error).to_string();
        assert!(cause.contains("panicked or was aborted"), "{cause}");
        assert!(flights.lock().boarding.is_empty());
        let (result, role) = flights.run("k", |_| async { Ok(7) }).await;
        assert_eq!((result.unwrap(), role), (7, Role::Started));
    }
}
