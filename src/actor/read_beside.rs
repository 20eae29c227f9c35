//! Gets beside the actor: a get reads the latest committed snapshot on the caller's thread when
//! no write on its way to the store could change its answer.
//!
//! A write command's key (or prefix) is [`Tracked`] among the writes in flight from the moment
//! the command is built until the actor answers it, after its commit and the snapshot that shows
//! it; a get whose key a tracked write covers queues instead. Why that keeps every answer what
//! the queue would have given: `docs/DESIGN.md` §3.

use std::collections::HashMap;
use std::ops::Deref;
#[cfg(not(loom))]
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::store::Snapshot;
use crate::sync::{Arc, Mutex, RwLock};

/// The snapshot the actor publishes, and the writes that keep gets from using it.
pub(crate) struct ReadBeside {
    /// `Some` while the actor lets gets read beside it. Each lookup holds the read lock.
    snapshot: RwLock<Option<Box<dyn Snapshot>>>,
    in_flight: Arc<Mutex<InFlight>>,
}

/// What a get found out beside the actor.
#[derive(Debug, PartialEq)]
pub(crate) enum Lookup {
    /// The answer, read from the snapshot.
    Answered(Option<Vec<u8>>),
    /// The get must go through the actor: no snapshot is published, a write in flight covers
    /// the key, or the lookup failed (the actor then reopens the store or reports the error).
    Queue,
}

/// The keys a write can change: one key, or every key that starts with a prefix.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Covers {
    Key,
    Prefix,
}

impl std::fmt::Debug for ReadBeside {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadBeside")
            .field("published", &self.snapshot.read().is_some())
            .field("in_flight", &*self.in_flight.lock())
            .finish()
    }
}

impl ReadBeside {
    /// No snapshot yet: every get goes through the actor until it publishes one.
    pub(crate) fn new() -> Self {
        ReadBeside {
            snapshot: RwLock::new(None),
            in_flight: Arc::new(Mutex::new(InFlight::default())),
        }
    }

    /// Looks `key` up in the published snapshot, on this thread, unless the get must queue.
    pub(crate) fn lookup(&self, key: &str) -> Lookup {
        let snapshot = self.snapshot.read();
        let Some(snapshot) = snapshot.as_ref() else {
            return Lookup::Queue;
        };
        if self.in_flight.lock().covers(key) {
            return Lookup::Queue;
        }
        match get_without_unwinding(snapshot.as_ref(), key) {
            Some(Ok(value)) => Lookup::Answered(value),
            Some(Err(_)) | None => Lookup::Queue,
        }
    }

    /// A write's key, registered in flight until it settles.
    pub(crate) fn track_key(&self, key: &str) -> Tracked {
        self.track(key, Covers::Key)
    }

    /// An invalidation's prefix, registered in flight until it settles.
    pub(crate) fn track_prefix(&self, prefix: &str) -> Tracked {
        self.track(prefix, Covers::Prefix)
    }

    fn track(&self, text: &str, covers: Covers) -> Tracked {
        self.in_flight.lock().add(text, covers);
        Tracked {
            text: text.to_owned(),
            covers,
            in_flight: Some(self.in_flight.clone()),
        }
    }

    /// The actor lets gets read `snapshot` beside it, in place of the one before.
    pub(crate) fn publish(&self, snapshot: Box<dyn Snapshot>) {
        let previous = self.snapshot.write().replace(snapshot);
        // Dropped (its read transaction ended) outside the lock, so no lookup waits for it.
        drop(previous);
    }

    /// The actor takes its snapshot back; returns once no lookup is using it.
    pub(crate) fn withdraw(&self) {
        let withdrawn = self.snapshot.write().take();
        drop(withdrawn);
    }
}

/// A lookup in `snapshot`; `None` if it panicked. redb may panic on a file corrupted behind
/// its back: on the actor that becomes `ActorPanicked`, so the get goes there rather than
/// unwind the caller's task. (Under loom a panic is a model failure: let it through.)
fn get_without_unwinding(
    snapshot: &dyn Snapshot,
    key: &str,
) -> Option<crate::store::StoreResult<Option<Vec<u8>>>> {
    #[cfg(not(loom))]
    return catch_unwind(AssertUnwindSafe(|| snapshot.get(key))).ok();
    #[cfg(loom)]
    Some(snapshot.get(key))
}

/// A write command's key (or an invalidation's prefix), registered among the writes in flight
/// for as long as it is: the command owns it, so the entry is removed exactly once, by
/// [`settle`](Tracked::settle) when the actor answers the write or when the command is dropped
/// unanswered (unsent, refused, drained). Reads as the `&str` it holds.
pub(crate) struct Tracked {
    text: String,
    covers: Covers,
    /// `None` once settled.
    in_flight: Option<Arc<Mutex<InFlight>>>,
}

impl Tracked {
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// Removes the entry: gets of these keys may read beside the actor again. The actor calls
    /// this just before it answers the write, so the writer's next get already may.
    pub(crate) fn settle(&mut self) {
        if let Some(in_flight) = self.in_flight.take() {
            in_flight.lock().remove(&self.text, self.covers);
        }
    }
}

impl Deref for Tracked {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Debug for Tracked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.text.fmt(f)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.settle();
    }
}

/// Writes sent to the actor and not yet settled, as multisets: two queued puts of one key keep
/// it covered until both have settled.
#[derive(Debug, Default)]
struct InFlight {
    keys: HashMap<String, usize>,
    /// Invalidated prefixes; few are in flight at once, so a list is enough.
    prefixes: Vec<String>,
}

impl InFlight {
    fn add(&mut self, text: &str, covers: Covers) {
        match covers {
            Covers::Key => *self.keys.entry(text.to_owned()).or_default() += 1,
            Covers::Prefix => self.prefixes.push(text.to_owned()),
        }
    }

    fn remove(&mut self, text: &str, covers: Covers) {
        match covers {
            Covers::Key => {
                if let Some(count) = self.keys.get_mut(text) {
                    *count -= 1;
                    if *count == 0 {
                        self.keys.remove(text);
                    }
                }
            }
            Covers::Prefix => {
                if let Some(i) = self.prefixes.iter().position(|p| p == text) {
                    self.prefixes.swap_remove(i);
                }
            }
        }
    }

    /// Whether a write in flight could change what a get of `key` answers.
    fn covers(&self, key: &str) -> bool {
        self.keys.contains_key(key) || self.prefixes.iter().any(|p| key.starts_with(p.as_str()))
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.prefixes.is_empty()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn covers(beside: &ReadBeside, key: &str) -> bool {
        beside.in_flight.lock().covers(key)
    }

    fn nothing_in_flight(beside: &ReadBeside) -> bool {
        beside.in_flight.lock().is_empty()
    }

    #[test]
    fn a_key_stays_covered_until_every_write_of_it_settles() {
        let beside = ReadBeside::new();
        let mut first = beside.track_key("a/1");
        let second = beside.track_key("a/1");
        first.settle();
        assert!(covers(&beside, "a/1"), "one put of a/1 is still in flight");
        assert!(!covers(&beside, "a/2"));
        assert!(!covers(&beside, "a/10"), "a put covers its own key only");
        drop(second);
        assert!(!covers(&beside, "a/1"));
        assert!(nothing_in_flight(&beside));
    }

    /// The bug this shape prevents: a write removed twice (say, once by a caller that gave up
    /// and once by the actor that received it anyway) took another write's entry with it.
    #[test]
    fn a_write_settled_and_then_dropped_removes_only_itself() {
        let beside = ReadBeside::new();
        let mut cancelled = beside.track_key("k");
        let queued = beside.track_key("k");
        cancelled.settle();
        drop(cancelled);
        assert!(covers(&beside, "k"), "the other put of k lost its entry");
        drop(queued);
        assert!(nothing_in_flight(&beside));
    }

    #[test]
    fn an_invalidation_covers_every_key_under_its_prefix() {
        let beside = ReadBeside::new();
        let whole = beside.track_prefix("a");
        let part = beside.track_prefix("b/1");
        assert!(covers(&beside, "a"));
        assert!(covers(&beside, "ab/7"));
        assert!(covers(&beside, "b/10"));
        assert!(!covers(&beside, "b/2"));
        drop(whole);
        assert!(!covers(&beside, "a/1"));
        assert!(covers(&beside, "b/1"));
        drop(part);
        assert!(nothing_in_flight(&beside));
    }

    #[test]
    fn no_snapshot_published_means_every_get_queues() {
        let beside = ReadBeside::new();
        assert_eq!(beside.lookup("a/1"), Lookup::Queue);
    }
}
