//! Gets beside the actor: a get reads the latest committed snapshot on the caller's thread when
//! no write on its way to the store could change its answer.
//!
//! Why: a warm get that queues pays two thread hand-offs (caller → actor → caller) for a lookup
//! that takes microseconds. On 2 cores that made warm get(64) 0.80× a plain `Arc<Database>`
//! cache (`benches/throughput.rs`, README).
//!
//! Why the answers stay what the queue would have given:
//! - A handle registers each write here *before* sending it. The actor settles it only *after*
//!   the write's batch committed (or failed), and after publishing a snapshot of that commit.
//! - A get whose key a registered write covers queues behind it, as every get used to. So a get
//!   still sees every write that reached the queue before it.
//! - Otherwise every earlier write to its key has settled, so it is in the published snapshot.
//! - The actor publishes snapshots only while the store is sound. It withdraws them before it
//!   closes or reopens the store, after a panic, and until lost lazy writes are cleared.
//!   Withdrawing takes the lock that every lookup holds, so no lookup outlives it.
//!
//! The actor still owns the database: it alone begins transactions (a snapshot is a read
//! transaction it began), so a get never waits on redb's own locks while a commit is in progress.
//! `loom-tests` models this path (`read_your_writes_across_handles`,
//! `close_waits_for_lookups_beside_the_actor`) and plants its bugs.

use std::collections::HashMap;

use super::command::Command;
use crate::store::Snapshot;
use crate::sync::{Mutex, RwLock, lock, read, write};

/// The snapshot the actor publishes, and the writes that keep gets from using it.
pub(crate) struct ReadBeside {
    /// `Some` while the actor lets gets read beside it. Each lookup holds the read lock.
    snapshot: RwLock<Option<Box<dyn Snapshot>>>,
    in_flight: Mutex<InFlight>,
}

impl std::fmt::Debug for ReadBeside {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadBeside")
            .field("published", &read(&self.snapshot).is_some())
            .field("in_flight", &*lock(&self.in_flight))
            .finish()
    }
}

impl ReadBeside {
    /// No snapshot yet: every get goes through the actor until it publishes one.
    pub(crate) fn new() -> Self {
        ReadBeside {
            snapshot: RwLock::new(None),
            in_flight: Mutex::new(InFlight::default()),
        }
    }

    /// The answer to a get of `key`, read on this thread; `None` when the get must go through
    /// the actor: no snapshot is published, a write in flight covers `key`, or the lookup failed
    /// (the actor then reopens the store or reports the error, as for any get).
    pub(crate) fn get(&self, key: &str) -> Option<Option<Vec<u8>>> {
        let snapshot = read(&self.snapshot);
        let snapshot = snapshot.as_ref()?;
        #[cfg(not(vlive_mutant = "ignore_in_flight"))]
        if lock(&self.in_flight).covers(key) {
            return None;
        }
        snapshot.get(key).ok()
    }

    /// Registers `command`'s write before a handle sends it. The registration lasts until the
    /// actor settles the write, unless the returned guard drops before
    /// [`Unsent::sent`]: then the command never reached the queue (the send failed or the
    /// caller gave up waiting for room) and its registration goes with it.
    pub(crate) fn sending(&self, command: &Command) -> Unsent<'_> {
        let extent = Extent::of(command).map(|extent| {
            lock(&self.in_flight).add(extent);
            extent.to_owned()
        });
        Unsent {
            beside: self,
            extent,
        }
    }

    /// These commands' writes are committed or failed: gets of their keys may read beside the
    /// actor again.
    pub(crate) fn settled<'c>(&self, commands: impl IntoIterator<Item = &'c Command>) {
        let mut in_flight = lock(&self.in_flight);
        for extent in commands.into_iter().filter_map(Extent::of) {
            in_flight.remove(extent);
        }
    }

    /// The actor lets gets read `snapshot` beside it, in place of the one before.
    pub(crate) fn publish(&self, snapshot: Box<dyn Snapshot>) {
        let previous = write(&self.snapshot).replace(snapshot);
        // Dropped (its read transaction ended) outside the lock, so no lookup waits for it.
        drop(previous);
    }

    /// The actor takes its snapshot back; returns once no lookup is using it.
    pub(crate) fn withdraw(&self) {
        let withdrawn = write(&self.snapshot).take();
        drop(withdrawn);
    }
}

/// A write registered by [`ReadBeside::sending`] and not yet in the queue.
#[derive(Debug)]
pub(crate) struct Unsent<'b> {
    beside: &'b ReadBeside,
    extent: Option<(String, bool)>,
}

impl Unsent<'_> {
    /// The command is queued: from now on the actor settles it.
    pub(crate) fn sent(mut self) {
        self.extent = None;
    }
}

impl Drop for Unsent<'_> {
    fn drop(&mut self) {
        if let Some((text, is_prefix)) = &self.extent {
            lock(&self.beside.in_flight).remove(Extent::new(text, *is_prefix));
        }
    }
}

/// The keys a write can change: one key, or every key under a prefix.
#[derive(Clone, Copy, Debug)]
enum Extent<'a> {
    Key(&'a str),
    Prefix(&'a str),
}

impl<'a> Extent<'a> {
    fn of(command: &'a Command) -> Option<Self> {
        match command {
            Command::Put { key, .. } | Command::Fill { key, .. } => Some(Extent::Key(key)),
            Command::Invalidate { prefix, .. } => Some(Extent::Prefix(prefix)),
            _ => None,
        }
    }

    fn new(text: &'a str, is_prefix: bool) -> Self {
        match is_prefix {
            true => Extent::Prefix(text),
            false => Extent::Key(text),
        }
    }

    fn to_owned(self) -> (String, bool) {
        match self {
            Extent::Key(key) => (key.to_owned(), false),
            Extent::Prefix(prefix) => (prefix.to_owned(), true),
        }
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
    fn add(&mut self, extent: Extent<'_>) {
        match extent {
            Extent::Key(key) => *self.keys.entry(key.to_owned()).or_default() += 1,
            Extent::Prefix(prefix) => self.prefixes.push(prefix.to_owned()),
        }
    }

    fn remove(&mut self, extent: Extent<'_>) {
        match extent {
            Extent::Key(key) => {
                if let Some(count) = self.keys.get_mut(key) {
                    *count -= 1;
                    if *count == 0 {
                        self.keys.remove(key);
                    }
                }
            }
            Extent::Prefix(prefix) => {
                if let Some(i) = self.prefixes.iter().position(|p| p == prefix) {
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
    use crate::sync::oneshot;

    fn put(key: &str) -> Command {
        Command::Put {
            key: key.into(),
            value: vec![1],
            reply: oneshot::channel().0,
        }
    }

    fn invalidate(prefix: &str) -> Command {
        Command::Invalidate {
            prefix: prefix.into(),
            reply: oneshot::channel().0,
        }
    }

    fn covers(beside: &ReadBeside, key: &str) -> bool {
        lock(&beside.in_flight).covers(key)
    }

    #[test]
    fn a_key_stays_covered_until_every_write_of_it_settles() {
        let beside = ReadBeside::new();
        let (first, second) = (put("a/1"), put("a/1"));
        beside.sending(&first).sent();
        beside.sending(&second).sent();
        beside.settled([&first]);
        assert!(covers(&beside, "a/1"), "one put of a/1 is still in flight");
        assert!(!covers(&beside, "a/2"));
        assert!(!covers(&beside, "a/10"), "a put covers its own key only");
        beside.settled([&second]);
        assert!(!covers(&beside, "a/1"));
        assert!(lock(&beside.in_flight).is_empty());
    }

    #[test]
    fn an_invalidation_covers_every_key_under_its_prefix() {
        let beside = ReadBeside::new();
        let (whole, part) = (invalidate("a"), invalidate("b/1"));
        beside.sending(&whole).sent();
        beside.sending(&part).sent();
        assert!(covers(&beside, "a"));
        assert!(covers(&beside, "ab/7"));
        assert!(covers(&beside, "b/10"));
        assert!(!covers(&beside, "b/2"));
        beside.settled([&whole]);
        assert!(!covers(&beside, "a/1"));
        assert!(covers(&beside, "b/1"));
        beside.settled([&part]);
        assert!(lock(&beside.in_flight).is_empty());
    }

    #[test]
    fn a_write_that_never_reached_the_queue_does_not_stay_registered() {
        let beside = ReadBeside::new();
        let unsent = put("a/1");
        let registration = beside.sending(&unsent);
        assert!(covers(&beside, "a/1"));
        drop(registration);
        assert!(lock(&beside.in_flight).is_empty());
    }

    #[test]
    fn reads_and_bookkeeping_commands_are_not_tracked() {
        let beside = ReadBeside::new();
        let get = Command::Get {
            key: "a".into(),
            reply: oneshot::channel().0,
        };
        beside.sending(&get).sent();
        beside
            .sending(&Command::Flush {
                reply: oneshot::channel().0,
            })
            .sent();
        assert!(lock(&beside.in_flight).is_empty());
    }

    #[test]
    fn no_snapshot_published_means_every_get_goes_through_the_actor() {
        let beside = ReadBeside::new();
        assert_eq!(beside.get("a/1"), None);
    }
}
