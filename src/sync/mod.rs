//! The concurrency primitives the actor protocol is written against.
//!
//! Production builds get std, flume, and tokio's oneshot and semaphore. Under `--cfg loom` the
//! same names are loom's primitives and a small channel, oneshot and semaphore built on them
//! (flume and tokio are not loom-aware), so `loom-tests/` model-checks the production handle and actor code, not a copy.
//! This module is the only place the two worlds differ.
//!
//! The locks here do not poison: their users keep their state consistent across panics (each
//! critical section is a single assignment or collection operation), so a panic elsewhere must
//! not turn every later lock into a second panic. That decision is made once, here.

#[cfg(loom)]
pub(crate) use loom::sync::{Arc, atomic};
#[cfg(loom)]
pub(crate) use loom::thread;

#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, atomic};
#[cfg(all(not(loom), test))]
pub(crate) use std::thread;

#[cfg(loom)]
use loom::sync as inner;
#[cfg(not(loom))]
use std::sync as inner;

#[cfg(loom)]
mod loom_channel;
#[cfg(loom)]
pub(crate) use loom_channel::{channel, oneshot};

#[cfg(not(loom))]
mod std_channel;
#[cfg(not(loom))]
pub(crate) use std_channel::{channel, oneshot};

mod counter;
pub(crate) use counter::Counter;

mod semaphore;
pub(crate) use semaphore::{Permit, Semaphore};

/// Spends one unit of Tokio's cooperative budget, yielding to the runtime once the task has
/// spent it all. A get answered from memory awaits nothing, so without this a task looping on
/// hits would hold its worker thread (a current-thread runtime: every other task) for as long
/// as it loops. Outside a runtime, and under loom, it is free and never yields.
pub(crate) async fn spend_budget() {
    #[cfg(not(loom))]
    tokio::task::coop::consume_budget().await;
}

/// What a non-blocking or deadline-bounded receive found.
#[derive(Debug)]
pub(crate) enum Received<T> {
    /// A message.
    Message(T),
    /// Nothing queued right now (or before the deadline).
    Empty,
    /// Every sender is gone and the queue is drained.
    Disconnected,
}

impl<T> Received<T> {
    /// The same outcome, with `f` applied to a message.
    pub(crate) fn map<U>(self, f: impl FnOnce(T) -> U) -> Received<U> {
        match self {
            Received::Message(message) => Received::Message(f(message)),
            Received::Empty => Received::Empty,
            Received::Disconnected => Received::Disconnected,
        }
    }
}

/// A mutex that ignores poisoning (see the module doc).
#[derive(Debug, Default)]
pub(crate) struct Mutex<T>(inner::Mutex<T>);

/// The guard of [`Mutex`].
pub(crate) type MutexGuard<'a, T> = inner::MutexGuard<'a, T>;

impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Self {
        Mutex(inner::Mutex::new(value))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A condition variable for [`Mutex`], ignoring poisoning likewise.
#[derive(Debug, Default)]
pub(crate) struct Condvar(inner::Condvar);

impl Condvar {
    pub(crate) fn new() -> Self {
        Condvar(inner::Condvar::new())
    }

    pub(crate) fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.0
            .wait(guard)
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits for a notification or `timeout`, whichever comes first.
    #[cfg(all(feature = "metrics", not(loom)))]
    pub(crate) fn wait_timeout<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: std::time::Duration,
    ) -> MutexGuard<'a, T> {
        match self.0.wait_timeout(guard, timeout) {
            Ok((guard, _)) => guard,
            Err(poisoned) => poisoned.into_inner().0,
        }
    }

    pub(crate) fn notify_all(&self) {
        self.0.notify_all();
    }

    #[cfg(loom)]
    pub(crate) fn notify_one(&self) {
        self.0.notify_one();
    }
}

/// A reader-writer lock that ignores poisoning (see the module doc).
#[derive(Debug, Default)]
pub(crate) struct RwLock<T>(inner::RwLock<T>);

impl<T> RwLock<T> {
    pub(crate) fn new(value: T) -> Self {
        RwLock(inner::RwLock::new(value))
    }

    pub(crate) fn read(&self) -> inner::RwLockReadGuard<'_, T> {
        self.0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn write(&self) -> inner::RwLockWriteGuard<'_, T> {
        self.0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
