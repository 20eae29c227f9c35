//! Gets beside the actor: a get reads the latest committed snapshot on the caller's thread when
//! no write on its way to the store could change its answer.
//!
//! A write command's key (or prefix) is [`Tracked`] among the writes in flight from the moment
//! the command is built until the actor answers it, after its commit and the snapshot that shows
//! it; a get whose key a tracked write covers queues instead. Why that keeps every answer what
//! the queue would have given: `docs/DESIGN.md` §3.
//!
//! The hot tier of decoded entries (`hot`) sits under the same lock as the writes in flight, so
//! that a write's registration and a get's look at the tier exclusively order one another:
//! registering removes the keys the write covers and marks them written at a new epoch, and a
//! get adds what it read only if no write that may cover its key was marked since the epoch it
//! saw (`docs/DESIGN.md` §3.1).
//!
//! In lazy mode a put is acknowledged before its commit: it is registered *and* queued under
//! that same lock, and its value waits in the write buffer, where gets find it first, until
//! the put settles (`docs/DESIGN.md` §3.2).

use std::collections::HashMap;
use std::ops::Deref;
/// The key text a write shares with its entry among the writes in flight: one allocation a
/// write, not one per place that names it. Immutable data, so std's `Arc` even under loom.
type Text = std::sync::Arc<str>;
#[cfg(not(loom))]
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::hot::{HotTier, HotValue};
use crate::fnv::fnv1a;
use crate::store::Snapshot;
use crate::sync::{Arc, Mutex, Permit, RwLock};

/// The snapshot the actor publishes, and the writes that keep gets from using it.
pub(crate) struct ReadBeside {
    /// `Some` while the actor lets gets read beside it. A lookup holds the read lock while it
    /// reads the snapshot.
    snapshot: RwLock<Option<Box<dyn Snapshot>>>,
    registry: Arc<Mutex<Registry>>,
}

/// What the one lock guards: the writes in flight (with lazy mode's buffered values), and the
/// hot tier they keep coherent.
#[derive(Debug)]
struct Registry {
    in_flight: InFlight,
    hot: HotTier<HotValue>,
    /// Bumped by every registration of a write and by every withdraw: names a lazy put (its
    /// buffered value), and dates a get's ticket against `recent`.
    epoch: u64,
    /// At which epoch each key was last written (approximately: see [`RecentWrites`]).
    recent: RecentWrites,
    /// Set once the cache is closing (or its actor stopped), always before its lifecycle
    /// leaves `Serving`, so before a `close` is sent and before the actor's last look at the
    /// queue. Two things follow: the write buffer no longer answers gets (a lazy put queued
    /// behind the `close` is refused, and its value must not be read by anyone), and a lazy
    /// put that finds it set awaits its answer instead of being acknowledged
    /// ([`track_buffered`](ReadBeside::track_buffered)).
    closing: bool,
}

/// A value in the write buffer, and which put left it there (the registry's epoch at its
/// registration), so that an older put settling does not take a newer one's value with it.
#[derive(Debug)]
struct Buffered {
    value: HotValue,
    put: u64,
}

/// What a get found out beside the actor.
#[derive(Debug, PartialEq)]
pub(crate) enum Lookup {
    /// The latest acknowledged put's value, still in the write buffer (lazy mode).
    Buffered(HotValue),
    /// The decoded value, from the hot tier.
    Hot(HotValue),
    /// The answer, read from the snapshot.
    Answered(Option<Vec<u8>>, HotTicket),
    /// The get must go through the actor: no snapshot is published, a write in flight covers
    /// the key, or the lookup failed (the actor then reopens the store or reports the error).
    /// A ticket unless a write in flight covers the key: the queue may then answer with the
    /// value from before that write, which must not enter the tier.
    Queue(Option<HotTicket>),
}

/// Leave for a get that missed the hot tier to add what it read, as long as nothing happened
/// since its look that could have made that value old: see [`ReadBeside::keep_hot`].
#[derive(Clone, Copy, Debug, PartialEq)]
#[must_use]
pub(crate) struct HotTicket {
    epoch: u64,
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
            .field("registry", &*self.registry.lock())
            .finish()
    }
}

impl ReadBeside {
    /// No snapshot yet: every get goes through the actor until it publishes one. The hot
    /// tier keeps up to `hot_bytes` (0: off).
    pub(crate) fn new(hot_bytes: u64) -> Self {
        ReadBeside {
            snapshot: RwLock::new(None),
            registry: Arc::new(Mutex::new(Registry {
                in_flight: InFlight::default(),
                hot: HotTier::new(hot_bytes),
                epoch: 0,
                recent: RecentWrites::new(),
                closing: false,
            })),
        }
    }

    /// Looks `key` up in the write buffer, the hot tier, then the published snapshot, on this
    /// thread, unless the get must queue.
    ///
    /// The snapshot's lock is taken only once the registry has sent the get there, so that gets
    /// answered from memory never wait for the actor to publish. The gap between the two is
    /// safe: no write of `key` was in flight at the registry's look, so every earlier write of
    /// it had settled after publishing, and the snapshot read after that look is as new or
    /// newer (a write that registers in the gap marks `key`, and its value is not kept hot).
    pub(crate) fn lookup(&self, key: &str) -> Lookup {
        let ticket = {
            let registry = self.registry.lock();
            match registry.in_flight.of_key(key) {
                Some(KeyInFlight {
                    buffered: Some(buffered),
                    ..
                }) if !registry.closing => return Lookup::Buffered(buffered.value.clone()),
                Some(_) => return Lookup::Queue(None),
                None if registry.in_flight.covered_by_prefix(key) => return Lookup::Queue(None),
                None => {}
            }
            if let Some(value) = registry.hot.get(key) {
                return Lookup::Hot(value);
            }
            HotTicket {
                epoch: registry.epoch,
            }
        };
        let snapshot = self.snapshot.read();
        let Some(snapshot) = snapshot.as_ref() else {
            return Lookup::Queue(Some(ticket));
        };
        match get_without_unwinding(snapshot.as_ref(), key) {
            Some(Ok(value)) => Lookup::Answered(value, ticket),
            Some(Err(_)) | None => Lookup::Queue(Some(ticket)),
        }
    }

    /// Adds `value`, read under `ticket`, to the hot tier as `key`'s, unless a write that
    /// covers `key` was registered or the snapshot withdrawn since the ticket was issued.
    ///
    /// Why that is enough: when the ticket was issued no write of `key` was in flight, so every
    /// earlier write of it had settled and the value read is the latest one. A write of `key`
    /// registered since may already have been acknowledged with a newer value (and its
    /// registration found nothing in the tier to remove), so it refuses the insert. Writes of
    /// other keys do not: under a steady stream of writes, the keys they leave alone stay hot.
    pub(crate) fn keep_hot(&self, key: &str, value: HotValue, size: u64, ticket: HotTicket) {
        let mut registry = self.registry.lock();
        let gone = match registry.recent.written_since(key, ticket.epoch) {
            false => registry.hot.insert(key, value, size),
            true => Vec::new(),
        };
        // Freed after the lock: gets beside the actor wait for nothing but the tier's map.
        drop(registry);
        drop(gone);
    }

    /// Drops `key` from the hot tier (its entry expired).
    pub(crate) fn drop_hot(&self, key: &str) {
        let gone = self.registry.lock().hot.remove(key);
        drop(gone);
    }

    /// The hot tier's entries and their bytes.
    pub(crate) fn hot_usage(&self) -> (u64, u64) {
        let registry = self.registry.lock();
        (registry.hot.len() as u64, registry.hot.bytes())
    }

    /// A write's key, registered in flight until it settles.
    pub(crate) fn track_key(&self, key: &str) -> Tracked {
        self.track(key, Covers::Key)
    }

    /// An invalidation's prefix, registered in flight until it settles.
    pub(crate) fn track_prefix(&self, prefix: &str) -> Tracked {
        self.track(prefix, Covers::Prefix)
    }

    /// Registers the write and, under the same lock, removes the hot entries it covers and
    /// bumps the epoch: a get that looks after this queues behind the write, and one that
    /// looked before cannot add what it read. (Buffered values stay: an acknowledged lazy put
    /// was queued before any write registered after it, so it settles, and its value leaves
    /// the buffer, before that write is answered.)
    fn track(&self, text: &str, covers: Covers) -> Tracked {
        let (text, _, replaced) = self.register(&mut self.registry.lock(), text, covers, None);
        drop(replaced);
        self.tracked(text, covers, None)
    }

    /// Lazy mode: registers a put of `value` under `key`, makes the value the one gets of `key`
    /// find, and queues the put with `send`, all under the registry's lock, so that puts queue
    /// in the order their values became visible (the value a get finds is always the one the
    /// last queued put of its key will store). `claim` (the put's share of the write buffer) is
    /// released when the put settles. `send`'s error (the actor is gone) is returned after the
    /// lock is released: it carries the put, whose drop settles it.
    ///
    /// Returns whether the cache had begun closing when the put was queued. If not, the put is
    /// ahead of any `close` and of the actor's last look at the queue, since both come after
    /// `stop_answering_from_buffer` takes this lock: the actor will take it (and store it,
    /// unless it panics first, which loses lazy puts not yet committed). If so, its caller
    /// must await the answer, which may be a refusal.
    pub(crate) fn track_buffered<E>(
        &self,
        key: &str,
        value: HotValue,
        claim: Permit,
        send: impl FnOnce(Tracked) -> Result<(), E>,
    ) -> Result<bool, E> {
        let mut registry = self.registry.lock();
        let (key, put, replaced) = self.register(&mut registry, key, Covers::Key, Some(value));
        let sent = send(self.tracked(key, Covers::Key, Some(BufferClaim { put, _share: claim })));
        let closing = registry.closing;
        drop(registry);
        drop(replaced);
        sent.map(|()| closing)
    }

    /// The registration under the lock (see [`track`](Self::track)), with a lazy put's value
    /// if it has one; returns the shared text, the new epoch (which names the put) and the hot
    /// entry the write replaces. The caller drops that entry after releasing the lock: if no
    /// get holds it any more, that frees every string and map of its rows (hundreds of blocks),
    /// which under the lock held up every get and put beside the actor.
    fn register(
        &self,
        registry: &mut Registry,
        text: &str,
        covers: Covers,
        value: Option<HotValue>,
    ) -> (Text, u64, Option<HotValue>) {
        registry.epoch += 1;
        let put = registry.epoch;
        let buffered = value.map(|value| Buffered { value, put });
        let text = registry.in_flight.add(text, covers, buffered);
        let replaced = match covers {
            Covers::Key => {
                registry.recent.key_written(&text, put);
                registry.hot.remove(&text)
            }
            Covers::Prefix => {
                // Rare enough to free under the lock.
                registry.recent.all_written(put);
                registry.hot.remove_prefix(&text);
                None
            }
        };
        (text, put, replaced)
    }

    fn tracked(&self, text: Text, covers: Covers, buffered: Option<BufferClaim>) -> Tracked {
        Tracked {
            text,
            covers,
            buffered,
            registry: Some(self.registry.clone()),
        }
    }

    /// From now on a get of a key with a put in flight queues instead of reading the write
    /// buffer, and a lazy put queued from now on awaits its answer: called by `Shared` before
    /// the cache leaves `Serving` (before `close` is sent, or before the actor stops and takes
    /// its last look at the queue). The puts queued before the `close` are committed before
    /// it, so the queue still answers with their values; a put behind it is refused, and the
    /// buffer would otherwise have shown its value until then.
    pub(crate) fn stop_answering_from_buffer(&self) {
        self.registry.lock().closing = true;
    }

    /// The actor lets gets read `snapshot` beside it, in place of the one before.
    pub(crate) fn publish(&self, snapshot: Box<dyn Snapshot>) {
        let previous = self.snapshot.write().replace(snapshot);
        // Dropped (its read transaction ended) outside the lock, so no lookup waits for it.
        drop_without_unwinding(previous);
    }

    /// The actor takes its snapshot back; returns once no lookup is using it. The hot tier
    /// empties with it: the store is about to be closed, dropped, reopened or cleared, and
    /// what it holds afterwards may differ from what the tier read (lost lazy writes).
    pub(crate) fn withdraw(&self) {
        let mut snapshot = self.snapshot.write();
        let withdrawn = snapshot.take();
        {
            let mut registry = self.registry.lock();
            registry.hot.clear();
            registry.epoch += 1;
            let epoch = registry.epoch;
            registry.recent.all_written(epoch);
        }
        drop(snapshot);
        drop_without_unwinding(withdrawn);
    }
}

/// Drops a snapshot where a panic cannot escape: ending a read transaction of a database that
/// panicked may panic again (a poisoned lock), and the actor must outlive its store's damage.
fn drop_without_unwinding(snapshot: Option<Box<dyn Snapshot>>) {
    #[cfg(not(loom))]
    let _ = catch_unwind(AssertUnwindSafe(move || drop(snapshot)));
    #[cfg(loom)]
    drop(snapshot);
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
    text: Text,
    covers: Covers,
    /// A lazy put's value in the write buffer, and its share of the buffer.
    buffered: Option<BufferClaim>,
    /// `None` once settled.
    registry: Option<Arc<Mutex<Registry>>>,
}

/// A lazy put's hold on the write buffer: its value (found by the registry's epoch at the
/// put's registration) and its share of the buffer's bytes.
struct BufferClaim {
    put: u64,
    /// Held, not read: dropping it gives the bytes back.
    _share: Permit,
}

impl Tracked {
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// Removes the entry: gets of these keys may read beside the actor again. The actor calls
    /// this just before it answers the write, so the writer's next get already may.
    pub(crate) fn settle(&mut self) {
        let Some(registry) = self.registry.take() else {
            return;
        };
        let buffered = self.buffered.take();
        let put = buffered.as_ref().map(|claim| claim.put);
        registry
            .lock()
            .in_flight
            .remove(&self.text, self.covers, put);
        // The bytes go back to the buffer after the lock: waking a waiting put needs no lock.
        drop(buffered);
    }

    /// Whether this is a lazy put, acknowledged when it was queued.
    pub(crate) fn was_acknowledged(&self) -> bool {
        self.buffered.is_some()
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

/// The epoch of the latest write of each key, kept in a fixed number of slots a key hashes to,
/// and of the latest write that covered keys it did not name (an invalidated prefix, a
/// withdraw). Keys that share a slot look alike: a collision refuses an insert into the hot
/// tier that was safe, never admits one that was not. 8 KiB, whatever the number of keys.
#[derive(Debug)]
struct RecentWrites {
    slots: Box<[u64]>,
    unnamed: u64,
}

impl RecentWrites {
    /// Enough that a get rarely shares a slot with a write of another key registered while
    /// it decodes (a few microseconds).
    const SLOTS: usize = 1024;

    fn new() -> Self {
        RecentWrites {
            slots: vec![0; Self::SLOTS].into_boxed_slice(),
            unnamed: 0,
        }
    }

    fn key_written(&mut self, key: &str, epoch: u64) {
        self.slots[Self::slot(key)] = epoch;
    }

    fn all_written(&mut self, epoch: u64) {
        self.unnamed = epoch;
    }

    /// Whether a write that may cover `key` was registered after `epoch`.
    fn written_since(&self, key: &str, epoch: u64) -> bool {
        self.unnamed > epoch || self.slots[Self::slot(key)] > epoch
    }

    /// FNV-1a: a collision costs only a refused insert, so no seeded hash is needed.
    fn slot(key: &str) -> usize {
        let hash = fnv1a(key.as_bytes());
        (hash ^ (hash >> 32)) as usize % Self::SLOTS
    }
}

/// Writes sent to the actor and not yet settled, as multisets: two queued puts of one key keep
/// it covered until both have settled.
#[derive(Debug, Default)]
struct InFlight {
    /// One entry a key (its count and buffered value), so that a lazy put, a get beside the
    /// actor and a settling write each look the key up here once.
    keys: HashMap<Text, KeyInFlight>,
    /// Invalidated prefixes; few are in flight at once, so a list is enough.
    prefixes: Vec<Text>,
}

/// The writes of one key in flight.
#[derive(Debug, Default)]
struct KeyInFlight {
    writes: usize,
    /// Lazy mode: the latest acknowledged put's value, until that put settles.
    buffered: Option<Buffered>,
}

impl InFlight {
    /// Counts a write of `text` (with a lazy put's value, which becomes the key's latest);
    /// the text it is filed under.
    fn add(&mut self, text: &str, covers: Covers, buffered: Option<Buffered>) -> Text {
        let text = Text::from(text);
        match covers {
            Covers::Key => {
                let entry = self.keys.entry(text.clone()).or_default();
                entry.writes += 1;
                if buffered.is_some() {
                    entry.buffered = buffered;
                }
            }
            Covers::Prefix => self.prefixes.push(text.clone()),
        }
        text
    }

    /// Settles a write of `text`; `put` names a lazy put, whose value leaves the buffer unless
    /// a later put of the key replaced it.
    fn remove(&mut self, text: &str, covers: Covers, put: Option<u64>) {
        match covers {
            Covers::Key => {
                if let Some(entry) = self.keys.get_mut(text) {
                    entry.writes -= 1;
                    if put.is_some() && entry.buffered.as_ref().map(|b| b.put) == put {
                        entry.buffered = None;
                    }
                    if entry.writes == 0 {
                        self.keys.remove(text);
                    }
                }
            }
            Covers::Prefix => {
                if let Some(i) = self.prefixes.iter().position(|p| **p == *text) {
                    self.prefixes.swap_remove(i);
                }
            }
        }
    }

    fn of_key(&self, key: &str) -> Option<&KeyInFlight> {
        self.keys.get(key)
    }

    fn covered_by_prefix(&self, key: &str) -> bool {
        self.prefixes.iter().any(|p| key.starts_with(&**p))
    }

    /// Whether a write in flight could change what a get of `key` answers.
    #[cfg(test)]
    fn covers(&self, key: &str) -> bool {
        self.keys.contains_key(key) || self.covered_by_prefix(key)
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.prefixes.is_empty()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::sync::Semaphore;

    fn covers(beside: &ReadBeside, key: &str) -> bool {
        beside.registry.lock().in_flight.covers(key)
    }

    fn nothing_in_flight(beside: &ReadBeside) -> bool {
        beside.registry.lock().in_flight.is_empty()
    }

    #[test]
    fn a_key_stays_covered_until_every_write_of_it_settles() {
        let beside = ReadBeside::new(0);
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
        let beside = ReadBeside::new(0);
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
        let beside = ReadBeside::new(0);
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
        let beside = ReadBeside::new(0);
        assert_eq!(
            beside.lookup("a/1"),
            Lookup::Queue(Some(HotTicket { epoch: 0 }))
        );
    }

    fn hot(tag: &str) -> HotValue {
        let mut rows = crate::rows::Rows::new();
        rows.insert(tag.into(), crate::rows::Record::new());
        HotValue::new(rows)
    }

    fn ticket(beside: &ReadBeside, key: &str) -> HotTicket {
        match beside.lookup(key) {
            Lookup::Queue(Some(ticket)) => ticket,
            other => panic!("expected a miss with a ticket, got {other:?}"),
        }
    }

    fn is_hot(beside: &ReadBeside, key: &str) -> bool {
        matches!(beside.lookup(key), Lookup::Hot(_))
    }

    /// A lazy put of `value` under `key`, registered and "sent" as `track_buffered` does it.
    fn buffer(beside: &ReadBeside, key: &str, value: HotValue, bytes: &Semaphore) -> Tracked {
        buffer_telling_closing(beside, key, value, bytes).0
    }

    /// [`buffer`], and whether `track_buffered` said the cache was closing.
    fn buffer_telling_closing(
        beside: &ReadBeside,
        key: &str,
        value: HotValue,
        bytes: &Semaphore,
    ) -> (Tracked, bool) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let claim = runtime.block_on(bytes.acquire(1));
        let mut sent = None;
        let closing = beside
            .track_buffered(key, value, claim, |tracked| {
                sent = Some(tracked);
                Ok::<(), ()>(())
            })
            .unwrap();
        (sent.unwrap(), closing)
    }

    /// The tag of the buffered value a get of `key` finds, if it finds one.
    fn buffered(beside: &ReadBeside, key: &str) -> Option<String> {
        match beside.lookup(key) {
            Lookup::Buffered(value) => value.rows.keys().next().cloned(),
            _ => None,
        }
    }

    #[test]
    fn a_buffered_value_stays_until_its_own_put_settles() {
        let beside = ReadBeside::new(0);
        let bytes = Semaphore::new(10);
        let first = buffer(&beside, "k", hot("1"), &bytes);
        let second = buffer(&beside, "k", hot("2"), &bytes);
        assert_eq!(buffered(&beside, "k").as_deref(), Some("2"));
        drop(first);
        assert_eq!(
            buffered(&beside, "k").as_deref(),
            Some("2"),
            "the older put's settling took the newer value"
        );
        drop(second);
        assert!(matches!(beside.lookup("k"), Lookup::Queue(Some(_))));
        assert!(nothing_in_flight(&beside));
        assert_eq!(bytes.available(), 10, "a claim was not given back");
    }

    #[test]
    fn a_write_behind_a_buffered_put_keeps_its_key_covered() {
        let beside = ReadBeside::new(0);
        let bytes = Semaphore::new(10);
        let lazy = buffer(&beside, "k", hot("1"), &bytes);
        // A put that found no room in the buffer, or a fill: tracked, nothing buffered.
        let queued = beside.track_key("k");
        assert_eq!(buffered(&beside, "k").as_deref(), Some("1"));
        drop(lazy);
        assert_eq!(
            beside.lookup("k"),
            Lookup::Queue(None),
            "the write still in flight no longer covered its key"
        );
        drop(queued);
        assert!(nothing_in_flight(&beside));
    }

    #[test]
    fn a_lazy_put_queued_once_closing_began_is_told_so() {
        let beside = ReadBeside::new(0);
        let bytes = Semaphore::new(10);
        let (before, closing) = buffer_telling_closing(&beside, "a", hot("1"), &bytes);
        assert!(!closing, "queued while serving: the actor will take it");
        beside.stop_answering_from_buffer();
        let (after, closing) = buffer_telling_closing(&beside, "b", hot("2"), &bytes);
        assert!(
            closing,
            "queued once closing began: its caller must await the answer"
        );
        drop((before, after));
        assert!(nothing_in_flight(&beside));
    }

    #[test]
    fn once_closing_the_buffer_answers_no_get() {
        let beside = ReadBeside::new(0);
        let bytes = Semaphore::new(10);
        let put = buffer(&beside, "k", hot("1"), &bytes);
        beside.stop_answering_from_buffer();
        assert_eq!(beside.lookup("k"), Lookup::Queue(None));
        drop(put);
        assert!(nothing_in_flight(&beside));
    }

    #[test]
    fn a_value_read_before_a_write_of_its_key_registered_is_not_kept() {
        let beside = ReadBeside::new(1 << 20);
        let before = ticket(&beside, "k");
        let put = beside.track_key("k");
        drop(put);
        beside.keep_hot("k", hot("old"), 10, before);
        assert!(
            !is_hot(&beside, "k"),
            "the value from before the put was kept"
        );
        let after = ticket(&beside, "k");
        beside.keep_hot("k", hot("new"), 10, after);
        match beside.lookup("k") {
            Lookup::Hot(value) => assert_eq!(value.rows, hot("new").rows),
            other => panic!("expected a hot hit, got {other:?}"),
        }
        assert_eq!(beside.hot_usage(), (1, 10));
    }

    #[test]
    fn a_write_of_another_key_does_not_refuse_the_insert() {
        // Two keys of different slots: one slot would refuse, by design (the test below).
        assert_ne!(RecentWrites::slot("other"), RecentWrites::slot("k"));
        let beside = ReadBeside::new(1 << 20);
        let before = ticket(&beside, "k");
        drop(beside.track_key("other"));
        beside.keep_hot("k", hot("k"), 10, before);
        assert!(is_hot(&beside, "k"));
    }

    #[test]
    fn an_invalidation_or_a_withdraw_refuses_every_insert_read_before_it() {
        let beside = ReadBeside::new(1 << 20);
        let before = ticket(&beside, "k");
        drop(beside.track_prefix("unrelated/"));
        beside.keep_hot("k", hot("k"), 10, before);
        assert!(
            !is_hot(&beside, "k"),
            "an invalidation names no key: it refuses all"
        );
        let before = ticket(&beside, "k");
        beside.withdraw();
        beside.keep_hot("k", hot("k"), 10, before);
        assert_eq!(beside.hot_usage(), (0, 0));
    }

    #[test]
    fn keys_that_share_a_slot_refuse_each_others_inserts() {
        let key = "k";
        let twin = (0..)
            .map(|i| format!("twin/{i}"))
            .find(|other| RecentWrites::slot(other) == RecentWrites::slot(key))
            .unwrap();
        let beside = ReadBeside::new(1 << 20);
        let before = ticket(&beside, key);
        drop(beside.track_key(&twin));
        beside.keep_hot(key, hot(key), 10, before);
        assert!(
            !is_hot(&beside, key),
            "a collision must refuse, never admit"
        );
    }

    #[test]
    fn registering_a_write_removes_the_hot_entries_it_covers() {
        let beside = ReadBeside::new(1 << 20);
        for key in ["a/1", "a/2", "b/1"] {
            let t = ticket(&beside, key);
            beside.keep_hot(key, hot(key), 1, t);
        }
        let put = beside.track_key("b/1");
        assert_eq!(
            beside.lookup("b/1"),
            Lookup::Queue(None),
            "covered: queue, no ticket"
        );
        drop(put);
        let invalidation = beside.track_prefix("a/");
        assert_eq!(beside.lookup("a/2"), Lookup::Queue(None));
        drop(invalidation);
        assert_eq!(beside.hot_usage(), (0, 0));
        assert!(matches!(beside.lookup("a/1"), Lookup::Queue(Some(_))));
    }

    #[test]
    fn a_withdraw_empties_the_tier_and_refuses_tickets_issued_before_it() {
        let beside = ReadBeside::new(1 << 20);
        let t = ticket(&beside, "a");
        beside.keep_hot("a", hot("a"), 1, t);
        let before = ticket(&beside, "b");
        beside.withdraw();
        beside.keep_hot("b", hot("b"), 1, before);
        assert_eq!(beside.hot_usage(), (0, 0));
    }
}
