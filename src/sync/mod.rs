//! The concurrency primitives the actor protocol is written against.
//!
//! Production builds get std, flume and tokio's oneshot. Under `--cfg loom` the same names are
//! loom's primitives and a small channel and oneshot built on them (flume and tokio are not
//! loom-aware), so `loom-tests/` model-checks the production handle and actor code, not a copy.
//! This module is the only place the two worlds differ.

#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Condvar, Mutex, RwLock, atomic};
#[cfg(loom)]
pub(crate) use loom::thread;

#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, Condvar, Mutex, RwLock, atomic};
#[cfg(all(not(loom), test))]
pub(crate) use std::thread;

#[cfg(loom)]
mod loom_channel;
#[cfg(loom)]
pub(crate) use loom_channel::{channel, oneshot};

#[cfg(not(loom))]
mod std_channel;
#[cfg(not(loom))]
pub(crate) use std_channel::{channel, oneshot};

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

/// Locks a mutex, ignoring poisoning: the shim's users keep their state consistent across
/// panics (each critical section is a single assignment or queue operation).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuardOf<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Takes a shared lock, ignoring poisoning (as [`lock`]).
pub(crate) fn read<T>(rw: &RwLock<T>) -> ReadGuardOf<'_, T> {
    match rw.read() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Takes an exclusive lock, ignoring poisoning (as [`lock`]).
pub(crate) fn write<T>(rw: &RwLock<T>) -> WriteGuardOf<'_, T> {
    match rw.write() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

#[cfg(loom)]
pub(crate) type MutexGuardOf<'a, T> = loom::sync::MutexGuard<'a, T>;
#[cfg(not(loom))]
pub(crate) type MutexGuardOf<'a, T> = std::sync::MutexGuard<'a, T>;
#[cfg(loom)]
pub(crate) type ReadGuardOf<'a, T> = loom::sync::RwLockReadGuard<'a, T>;
#[cfg(not(loom))]
pub(crate) type ReadGuardOf<'a, T> = std::sync::RwLockReadGuard<'a, T>;
#[cfg(loom)]
pub(crate) type WriteGuardOf<'a, T> = loom::sync::RwLockWriteGuard<'a, T>;
#[cfg(not(loom))]
pub(crate) type WriteGuardOf<'a, T> = std::sync::RwLockWriteGuard<'a, T>;
