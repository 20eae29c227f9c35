//! What can go wrong under the actor, told apart so that each fault costs what it must and no
//! more (`docs/failure-modes.md`):
//!
//! - a panic inside the storage engine (redb reaching `unreachable!` on a damaged page) is
//!   caught around every store call and becomes a [`Failure::Panicked`], which the actor treats
//!   as damage, never as its own death;
//! - a full disk is recognised in redb's I/O errors, and a free-space reserve refuses puts
//!   before the disk is so full that invalidations could not commit either.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::store::StoreResult;

/// A store call that did not succeed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The store returned an error.
    Store(redb::Error),
    /// The store panicked: its state, and its file, cannot be trusted.
    Panicked(String),
}

impl Failure {
    /// Whether the disk is full.
    pub(crate) fn is_disk_full(&self) -> bool {
        matches!(self, Failure::Store(e) if is_disk_full(e))
    }
}

impl From<redb::Error> for Failure {
    fn from(error: redb::Error) -> Self {
        Failure::Store(error)
    }
}

/// Runs a store call, catching a panic inside it. Under `panic = "abort"` nothing can be
/// caught: the process ends, and the next open finds the file as the panic left it.
pub(crate) fn contain<R>(call: impl FnOnce() -> StoreResult<R>) -> Result<R, Failure> {
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(result) => result.map_err(Failure::Store),
        Err(payload) => Err(Failure::Panicked(panic_message(payload.as_ref()))),
    }
}

/// Runs an opener, catching a panic inside it: a file that makes redb panic as it opens is
/// damaged like one it reports `Corrupted`.
pub(crate) fn contain_open<S>(folder: &Path, open: impl FnOnce() -> Result<S>) -> Result<S> {
    match catch_unwind(AssertUnwindSafe(open)) {
        Ok(opened) => opened,
        Err(payload) => Err(Error::Damaged {
            folder: folder.to_owned(),
            reason: panic_message(payload.as_ref()),
        }),
    }
}

/// Drops what a store left behind (the store itself, a snapshot) where a panic cannot escape:
/// dropping a redb `Database` that has panicked may panic again.
pub(crate) fn drop_contained<T>(value: T) {
    let _ = catch_unwind(AssertUnwindSafe(move || drop(value)));
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        return format!("the storage engine panicked: {text}");
    }
    if let Some(text) = payload.downcast_ref::<String>() {
        return format!("the storage engine panicked: {text}");
    }
    "the storage engine panicked".to_owned()
}

/// Whether `error` says the disk (or the user's quota) is full.
pub(crate) fn is_disk_full(error: &redb::Error) -> bool {
    matches!(error, redb::Error::Io(io) if is_out_of_space(io))
}

fn is_out_of_space(io: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(io.kind(), ErrorKind::StorageFull | ErrorKind::QuotaExceeded)
}

/// `error` as `DiskFull` if a full disk is what caused it (an open or a repair that could not
/// write, say), as it is otherwise.
pub(crate) fn name_full_disk(error: Error, op: &'static str) -> Error {
    let folder = match &error {
        Error::Io { path, source, .. } if is_out_of_space(source) => {
            path.parent().map(Path::to_owned)
        }
        Error::Storage { folder, source, .. } if is_disk_full(source) => Some(folder.clone()),
        _ => None,
    };
    match folder {
        Some(folder) => Error::DiskFull { folder, op },
        None => error,
    }
}

/// The free-space reserve: puts are refused while the disk under the folder has less than
/// `reserve` bytes free, so that invalidations (which must never be lost) still find room.
///
/// After a commit failed for space, puts are refused until a durable commit (a probe, at most
/// every [`PROBE_EVERY`], once the disk shows twice the reserve free) shows there is room
/// again. Lazy puts most need this: they are acknowledged before they reach the disk, so a put
/// let through onto a full disk would be acknowledged and then lost. (Free space alone cannot
/// tell: a quota, or a filesystem that reports space it will not give, fails writes with room
/// to spare.)
#[derive(Debug)]
pub(crate) struct SpaceGuard {
    folder: PathBuf,
    reserve: u64,
    /// A commit failed for space, and no durable commit has succeeded since.
    ran_out: bool,
    last_probe: Option<Instant>,
    /// Free bytes above the reserve at the last look (`u64::MAX` where they cannot be read).
    headroom: u64,
}

/// How often a disk that ran out of space is probed for room, at most.
const PROBE_EVERY: Duration = Duration::from_millis(100);

/// Whether puts may go on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Room {
    Enough,
    Short,
    /// Space ran out before and may be back: commit durably first, then decide.
    Probe,
}

impl SpaceGuard {
    pub(crate) fn new(folder: &Path, reserve: u64) -> Self {
        SpaceGuard {
            folder: folder.to_owned(),
            reserve,
            ran_out: false,
            last_probe: None,
            headroom: u64::MAX,
        }
    }

    /// What lazy puts may still bring to the disk beyond the reserve, as of the last look: 0
    /// while space is short or has run out.
    pub(crate) fn headroom(&self) -> u64 {
        match self.ran_out {
            true => 0,
            false => self.headroom,
        }
    }

    /// A commit failed for space.
    pub(crate) fn ran_out(&mut self) {
        self.ran_out = true;
    }

    /// A durable commit succeeded: the disk took it.
    pub(crate) fn space_back(&mut self) {
        self.ran_out = false;
    }

    /// Whether puts may be applied now. One `statvfs` per batch with puts: next to a commit,
    /// nothing.
    pub(crate) fn room(&mut self) -> Room {
        let wanted = match self.ran_out {
            true => (self.reserve * 2).max(1 << 20),
            false => self.reserve,
        };
        // Where free space cannot be read, only a commit can tell.
        let free = free_bytes(&self.folder).unwrap_or(u64::MAX);
        self.headroom = free.saturating_sub(wanted);
        if free < wanted {
            return Room::Short;
        }
        if !self.ran_out {
            return Room::Enough;
        }
        if self.last_probe.is_some_and(|at| at.elapsed() < PROBE_EVERY) {
            return Room::Short;
        }
        self.last_probe = Some(Instant::now());
        Room::Probe
    }
}

/// The bytes an unprivileged writer can still use on the folder's filesystem.
#[cfg(unix)]
fn free_bytes(folder: &Path) -> Option<u64> {
    let stats = rustix::fs::statvfs(folder).ok()?;
    Some(stats.f_bavail.saturating_mul(stats.f_frsize))
}

#[cfg(not(unix))]
fn free_bytes(_folder: &Path) -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_in_a_store_call_is_caught_and_described() {
        let failed = contain::<()>(|| panic!("entered unreachable code"));
        match failed {
            Err(Failure::Panicked(why)) => assert!(why.contains("unreachable"), "{why}"),
            other => panic!("expected a caught panic, got {other:?}"),
        }
    }

    #[test]
    fn enospc_is_a_full_disk_and_other_io_errors_are_not() {
        let full = redb::Error::Io(std::io::Error::from_raw_os_error(28));
        assert!(is_disk_full(&full));
        let other = redb::Error::Io(std::io::Error::other("EIO"));
        assert!(!is_disk_full(&other));
        assert!(!is_disk_full(&redb::Error::PreviousIo));
    }

    #[test]
    fn a_reserve_larger_than_any_disk_refuses_puts_and_none_allows_them() {
        let dir = std::env::temp_dir();
        assert_eq!(SpaceGuard::new(&dir, u64::MAX).room(), Room::Short);
        assert_eq!(SpaceGuard::new(&dir, 0).room(), Room::Enough);
    }

    #[test]
    fn after_running_out_puts_wait_for_a_probe_at_most_every_interval() {
        let mut guard = SpaceGuard::new(&std::env::temp_dir(), 0);
        guard.ran_out();
        assert_eq!(guard.room(), Room::Probe);
        assert_eq!(guard.room(), Room::Short, "a second probe at once");
        guard.space_back();
        assert_eq!(guard.room(), Room::Enough);
    }
}
