//! The actor's loop, top to bottom:
//!
//! 1. wait for the first command (or for a lazy-mode checkpoint to fall due);
//! 2. in lazy mode, if it is an acknowledged put, hold back while more keep coming, until a
//!    full batch is queued or a caller waits (`hold_back`);
//! 3. gather what is already queued, up to the batch limits;
//! 4. run the batch: restore the store if it is unwell, apply the commands in order inside one
//!    transaction, then upkeep (expire, then evict down to the byte budget: `budget`), commit
//!    once, publish a snapshot of the commit;
//! 5. answer every command of the batch, only now, after the commit;
//! 6. on `close` or when the last handle is gone: close the store, tell the stragglers.
//!
//! Between batches, timers: a lazy-mode checkpoint, and an expiry sweep when entries expire.
//!
//! Gets may also be answered beside the actor (`read_beside`): the actor publishes a snapshot
//! while the store is [`Health::Sound`] and withdraws it otherwise, and before closing. The
//! arguments behind health, restore and lazy recovery are in `docs/DESIGN.md` §2; what each
//! fault costs a caller is in `docs/failure-modes.md`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use tracing::{debug, debug_span, error, field, trace, warn};

use super::access::AccessBits;
use super::budget;
use super::checkpoint::Checkpoints;
use super::command::{Answer, Command, PutValue, Queued, Reply};
use super::config::{ActorConfig, Durability, OnDamage};
use super::fault::{
    Failure, Room, SpaceGuard, contain, contain_open, drop_contained, name_full_disk,
};
use super::handle::Handle;
use super::hold_back::{self, Bounds, HoldBack, Look};
use super::shared::{Lifecycle, Shared};
use crate::cache::FillOutcome;
use crate::error::{Error, Result, chain};
use crate::invalidation_log::InvalidationLog;
use crate::store::damage::DamageLog;
use crate::store::{Commit, Discard, Store, StoreBatch, StoreReads, StoreResult, value_sum};
#[cfg(any(loom, test))]
use crate::sync::thread;
use crate::sync::{Arc, Received, channel};

/// Opens the store (at start, after an I/O error, after a discard), and gets a store that
/// cannot be trusted or written any more out of the way.
pub(crate) trait Opener<S>: Send + 'static {
    /// The folder's store as it is; an empty one if there is none. A damaged file is
    /// `Error::Damaged`.
    fn open(&self) -> Result<S>;
    /// Removes the store's file, so that the next `open` starts empty.
    fn discard(&self, how: Discard) -> Result<()>;
}

/// Starts an actor over a store opened on this thread. Returns a handle and the actor thread.
#[cfg(any(loom, test))]
pub(crate) fn spawn<S: Store>(
    config: ActorConfig,
    opener: impl Opener<S>,
) -> Result<(Handle, thread::JoinHandle<()>)> {
    let damage = Arc::new(DamageLog::new(&config.folder));
    let (commands_tx, commands, shared) = connect(&config, damage)?;
    let store = open_first(&opener, &config, &shared.damage)?;
    let actor = Actor::new(config, store, Box::new(opener), shared.clone());
    let thread = thread::spawn(move || actor.run(commands));
    Ok((Handle::new(commands_tx, shared), thread))
}

/// An in-memory store opens itself again: what it committed stays, until it is discarded.
#[cfg(any(loom, test))]
impl Opener<crate::store::mem_store::MemStore> for crate::store::mem_store::MemStore {
    fn open(&self) -> Result<crate::store::mem_store::MemStore> {
        Ok(self.reopen())
    }

    fn discard(&self, _how: Discard) -> Result<()> {
        crate::store::mem_store::MemStore::discard(self);
        Ok(())
    }
}

/// The first open, under the configured [`OnDamage`] policy.
fn open_first<S: Store>(
    opener: &dyn Opener<S>,
    config: &ActorConfig,
    damage: &DamageLog,
) -> Result<S> {
    let folder = &config.folder;
    match contain_open(folder, || opener.open()) {
        Err(Error::Damaged { reason, .. }) if config.on_damage == OnDamage::Reset => {
            error!(folder = %folder.display(), reason, "the cache file is damaged; starting with an empty one");
            opener.discard(Discard::KeepAside)?;
            damage.note_reset();
            contain_open(folder, || opener.open())
        }
        other => other,
    }
}

/// Starts an actor whose thread opens the store itself and reports how that went: the store
/// never crosses threads, and `open` fails fast with the opener's error.
#[cfg(not(loom))]
pub(crate) fn spawn_opening<S: Store>(
    config: ActorConfig,
    damage: Arc<DamageLog>,
    opener: impl Opener<S>,
) -> Result<Handle> {
    let (commands_tx, commands, shared) = connect(&config, damage)?;
    let (opened_tx, opened) = std::sync::mpsc::sync_channel(1);
    let actor_shared = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("vlive-cache".into())
        .spawn(
            move || match open_first(&opener, &config, &actor_shared.damage) {
                Ok(store) => {
                    // Built before `open` returns: its first snapshot and the store's totals are
                    // published by then.
                    let actor = Actor::new(config, store, Box::new(opener), actor_shared);
                    let _ = opened_tx.send(Ok(()));
                    actor.run(commands);
                }
                Err(e) => {
                    actor_shared.set_lifecycle(Lifecycle::Released);
                    let _ = opened_tx.send(Err(e));
                }
            },
        );
    if let Err(e) = spawned {
        return Err(Error::io(&shared.folder, "spawn the cache thread", e));
    }
    match opened.recv() {
        Ok(Ok(())) => Ok(Handle::new(commands_tx, shared)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(Error::ActorPanicked {
            folder: shared.folder.clone(),
        }),
    }
}

/// The channel and the state both sides share, for a validated configuration.
fn connect(
    config: &ActorConfig,
    damage: Arc<DamageLog>,
) -> Result<(
    channel::Sender<Queued>,
    channel::Receiver<Queued>,
    Arc<Shared>,
)> {
    config.validate()?;
    // Bounded by the handles' permits (`Shared::slots`, `Shared::write_buffer`), not here: a
    // lazy put must be queued at once, under the lock that orders it (`read_beside`).
    let (commands_tx, commands) = channel::unbounded();
    Ok((commands_tx, commands, Arc::new(Shared::new(config, damage))))
}

/// What a batch holds, tallied once as it is gathered (not rescanned per command).
#[derive(Clone, Copy, Debug, Default)]
struct Shape {
    ops: usize,
    writes: bool,
    /// A put or a fill: what the free-space reserve refuses.
    stores: bool,
    flush: bool,
    /// An invalidation or a flush: lazy mode must commit this batch durably.
    must_be_durable: bool,
    bytes: usize,
    /// What its writes may leave allocated until a durable commit (lazy mode checkpoints by it).
    pages_replaced: u64,
    /// It stopped at a limit, not because the queue ran dry.
    cut_short: bool,
}

impl Shape {
    fn add(&mut self, command: &Command) {
        self.ops += 1;
        self.writes |= command.writes();
        self.stores |= matches!(command, Command::Put { .. } | Command::Fill { .. });
        self.flush |= matches!(command, Command::Flush { .. });
        self.must_be_durable |= command.needs_durable_commit();
        self.bytes += command.payload_bytes();
        self.pages_replaced += command.pages_replaced();
    }
}

/// What the actor waits for between batches.
enum Work {
    Command(Command),
    /// A checkpoint or a sweep is due.
    TimerDue,
    Disconnected,
}

/// What expiry and eviction did in a batch: counted once the batch has committed.
#[derive(Clone, Copy, Debug, Default)]
struct Upkeep {
    expired: u64,
    evicted: u64,
    /// The sweep stopped at its limit: sweep again soon.
    more_expired: bool,
}

/// How often an idle actor looks for expired entries, at most (a quarter of the TTL, within
/// these bounds): often enough that expired entries do not linger for long, rarely enough that
/// an idle cache does not commit all the time.
const SWEEP_EVERY: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(60));

fn sweep_interval(ttl: Duration) -> Duration {
    (ttl / 4).clamp(SWEEP_EVERY.0, SWEEP_EVERY.1)
}

/// Whether the store can serve, and what it takes to make it so. Only a sound store has a
/// snapshot published for gets beside the actor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Health {
    Sound,
    /// An I/O error, or a `Corrupted` error, which can also follow a failed commit: redb
    /// refuses every write until the database is opened again. `then_clear`: not-yet-durable
    /// (lazy) commits were lost with it. `verify`: check the whole file before trusting it.
    Reopen {
        then_clear: bool,
        verify: bool,
    },
    /// Lazy commits were lost, and with them the removal of older values, which could now
    /// resurface: only an empty cache is surely not stale.
    Clear,
    /// The file is damaged, or could not take an invalidation: get rid of it and start empty.
    Replace(Discard),
}

/// Steps `restore` takes at most (replace, reopen, clear, and one more replace if the clear
/// fails) before it gives up until the next batch.
const RESTORE_STEPS: usize = 5;

struct Actor<S: Store> {
    /// `None` once closed, or while a reopen has failed (`Health::Reopen`).
    store: Option<S>,
    open: Box<dyn Opener<S>>,
    health: Health,
    /// The file passed a full check when it was last reopened, and no batch has succeeded
    /// since: a `Corrupted` error now is damage, not the echo of a failed commit.
    verified: bool,
    space: SpaceGuard,
    config: ActorConfig,
    shared: Arc<Shared>,
    invalidations: InvalidationLog,
    /// The batch being executed. It lives here, not in a local, so that after a panic the actor
    /// still holds every command and can answer it.
    batch: Vec<Command>,
    /// Set when a `close` arrived; answered after the store is closed.
    close_reply: Option<Reply<()>>,
    /// Lazy mode: when the oldest not-yet-durable commit happened (or the last failed
    /// checkpoint, so that a failing disk is retried every `max_delay`, not in a tight loop).
    unsynced_since: Option<Instant>,
    /// When lazy mode checkpoints, and what deferred commits have replaced since the last one.
    checkpoints: Checkpoints,
    /// Lazy-mode writes were lost to an I/O error; the next `flush` or `close` reports it once.
    lost_writes: bool,
    /// With a TTL: when the idle actor sweeps for expired entries next.
    sweep_due: Option<Instant>,
}

impl<S: Store> Actor<S> {
    fn new(config: ActorConfig, store: S, open: Box<dyn Opener<S>>, shared: Arc<Shared>) -> Self {
        // Entries may have expired while the cache was closed: the first sweep comes one
        // interval after opening (gets treat them as misses meanwhile).
        let sweep_due = config
            .time_to_live
            .map(|ttl| Instant::now() + sweep_interval(ttl));
        let mut actor = Actor {
            store: Some(store),
            open,
            health: Health::Sound,
            verified: false,
            space: SpaceGuard::new(&config.folder, config.disk_reserve),
            batch: Vec::with_capacity(config.batch.max_ops),
            checkpoints: Checkpoints::new(config.durability, config.max_bytes),
            config,
            shared,
            invalidations: InvalidationLog::default(),
            close_reply: None,
            unsynced_since: None,
            lost_writes: false,
            sweep_due,
        };
        actor.publish_snapshot();
        // What lazy puts may buffer, until the first batch with puts looks again.
        actor.space.room();
        actor.shared.set_headroom(actor.space.headroom());
        actor
    }

    /// The thread's body: serve, shut down — or die if either panics — then retire.
    fn run(mut self, commands: channel::Receiver<Queued>) {
        let lived = catch_unwind(AssertUnwindSafe(|| {
            self.serve(&commands);
            self.shut_down();
        }));
        if lived.is_err() {
            self.die();
        }
        self.shared.retire(commands);
        debug!(folder = %self.config.folder.display(), "cache actor stopped");
    }

    /// Serves batches until `close` or until every handle is gone.
    fn serve(&mut self, commands: &channel::Receiver<Queued>) {
        // The last batch stopped at a limit with more queued: the next one goes at once.
        let mut backlog = false;
        loop {
            match self.wait_for_work(commands) {
                Work::Command(first) => {
                    if first.was_acknowledged() && !backlog {
                        self.hold_back(commands);
                    }
                    let shape = self.gather_batch(first, commands);
                    backlog = shape.cut_short;
                    self.execute_batch(shape);
                    if self.close_reply.is_some() {
                        return;
                    }
                }
                Work::TimerDue => {
                    backlog = false;
                    self.on_timer();
                }
                Work::Disconnected => return,
            }
        }
    }

    fn wait_for_work(&self, commands: &channel::Receiver<Queued>) -> Work {
        let deadline = match (self.checkpoint_deadline(), self.sweep_due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let received = match deadline {
            None => commands
                .recv()
                .map_or(Received::Disconnected, Received::Message),
            Some(deadline) => commands.recv_deadline(deadline),
        };
        match received {
            Received::Message(queued) => Work::Command(queued.take()),
            Received::Empty => Work::TimerDue,
            Received::Disconnected => Work::Disconnected,
        }
    }

    /// Lazy mode: sleeps while acknowledged puts keep arriving, so that they commit in full
    /// batches (see `hold_back`).
    fn hold_back(&self, commands: &channel::Receiver<Queued>) {
        let (Some(buffer), Durability::Lazy { max_delay }) =
            (self.shared.write_buffer.as_ref(), self.config.durability)
        else {
            return;
        };
        if cfg!(loom) {
            return;
        }
        let bounds = Bounds {
            batch_ops: hold_back::full_batch_ops(
                self.config.batch.max_ops,
                self.checkpoints.allowance(),
            ),
            batch_bytes: self.config.batch.max_bytes as u64,
            buffer: buffer.capacity().into(),
            max_delay,
        };
        let mut hold = HoldBack::new(Instant::now(), bounds, self.checkpoint_deadline());
        let look = || Look {
            now: Instant::now(),
            queued: commands.queued(),
            held: buffer.held(),
            awaited: self.shared.is_awaited(),
        };
        while let Some(nap) = hold.next_nap(look()) {
            std::thread::sleep(nap);
        }
    }

    /// Fills the batch with `first` and what is already queued, within its limits. A `close`
    /// ends the batch and waits, in `close_reply`, for the store to close.
    fn gather_batch(&mut self, first: Command, commands: &channel::Receiver<Queued>) -> Shape {
        let limits = self.config.batch;
        let replaceable = self.checkpoints.allowance().unwrap_or(u64::MAX);
        let started = Instant::now();
        let mut shape = Shape::default();
        let mut next = Received::Message(first);
        while let Received::Message(command) = next {
            if let Command::Close { reply } = command {
                self.close_reply = Some(reply);
                break;
            }
            shape.add(&command);
            self.batch.push(command);
            if shape.ops >= limits.max_ops
                || shape.bytes >= limits.max_bytes
                || shape.pages_replaced >= replaceable
            {
                shape.cut_short = true;
                break;
            }
            // Lingering only pays off for commits; a batch of reads goes at once.
            let received = match limits.linger.filter(|_| shape.writes) {
                Some(linger) => commands.recv_deadline(started + linger),
                None => commands.try_recv(),
            };
            next = received.map(Queued::take);
        }
        shape
    }

    /// Runs the batch, then answers every command in it.
    fn execute_batch(&mut self, shape: Shape) {
        if shape.ops == 0 {
            return;
        }
        // Outside every store call: a panic there is damage, this one is the actor's own.
        #[cfg(feature = "test-hooks")]
        if self
            .batch
            .iter()
            .any(|c| matches!(c, Command::Panic { .. }))
        {
            panic!("test hook: actor panic requested");
        }
        let result = self.run_batch(shape);
        self.shared.counters.record_batch(shape.ops);
        self.answer_batch(result, shape);
    }

    /// Restores the store if needed, applies every command in order inside one transaction,
    /// commits once and publishes the commit for gets beside the actor.
    fn run_batch(&mut self, shape: Shape) -> Result<Vec<Answer>> {
        self.restore()
            .map_err(|e| name_full_disk(e, "reopen the cache file"))?;
        let shape = self.refuse_stores_without_space(shape);
        let durability = self.commit_durability(shape);
        // A flush with no write still commits (empty, durable) when there is something to sync:
        // that commit is the checkpoint.
        let commits = shape.writes || (shape.flush && self.unsynced_since.is_some());
        let span = debug_span!(
            "cache_batch",
            folder = %self.config.folder.display(),
            ops = shape.ops,
            bytes = shape.bytes,
            durable = commits && durability == Commit::Durable,
            batch_us = field::Empty,
        );
        let _entered = span.enter();
        let started = Instant::now();
        let applied = if commits {
            self.apply_and_commit(durability)
        } else {
            self.apply_reads()
        };
        span.record("batch_us", started.elapsed().as_micros() as u64);
        #[cfg(all(feature = "metrics", not(loom)))]
        self.shared
            .batch_histograms
            .record(shape.ops, commits.then(|| started.elapsed()));
        let (answers, upkeep) = match applied {
            Ok(applied) => applied,
            Err(failure) => {
                let e = self.fall_ill(failure, "execute a batch");
                // Restore at once rather than at the next batch: the store serves again as soon
                // as it can (a failure here is retried then).
                let _ = self.restore();
                return Err(e);
            }
        };
        self.verified = false;
        if commits {
            self.note_commit(durability, shape.pages_replaced);
            self.note_upkeep(upkeep);
            // Before any write is answered (and settled): gets beside the actor must find it.
            self.publish_snapshot();
            // After the snapshot moved on: the checkpoint frees what the commits replaced.
            if self.checkpoints.over_budget() {
                self.checkpoint();
            }
        }
        Ok(answers)
    }

    /// Below the free-space reserve, answers the batch's puts and fills with `DiskFull` at
    /// once and takes them out of it: invalidations and gets go on. A lazy put already
    /// acknowledged cannot be refused: its key is removed instead (`Forget`), and the loss
    /// reported. Returns the new shape.
    fn refuse_stores_without_space(&mut self, shape: Shape) -> Shape {
        if !shape.stores || self.has_room() {
            return shape;
        }
        let refused = Error::DiskFull {
            folder: self.config.folder.clone(),
            op: "put",
        };
        let mut kept = Shape::default();
        for command in std::mem::take(&mut self.batch) {
            let command = match command {
                Command::Put { key, reply, .. } if key.was_acknowledged() => {
                    // Only a caller racing `close` still listens.
                    reply.send(Err(refused.clone()));
                    self.lose_acknowledged(1);
                    Command::Forget { key }
                }
                Command::Put { .. } | Command::Fill { .. } => {
                    self.shared.counters.refused_for_space.bump();
                    command.reject(refused.clone());
                    continue;
                }
                command => command,
            };
            kept.add(&command);
            self.batch.push(command);
        }
        debug!(
            kept = kept.ops,
            "puts refused: the disk is below the free-space reserve"
        );
        kept
    }

    /// Lazy puts acknowledged and then not stored: counted, and reported once by the next
    /// `flush` or `close`.
    fn lose_acknowledged(&mut self, puts: u64) {
        self.shared.counters.lazy_writes_lost.add(puts);
        self.lost_writes = true;
    }

    /// Whether the disk has room for puts: free space above the reserve and, after a commit
    /// failed for space, a durable commit that went through. Lazy puts wait for their commit
    /// while it has not.
    fn has_room(&mut self) -> bool {
        let room = self.look_for_room();
        self.shared.set_headroom(self.space.headroom());
        room
    }

    fn look_for_room(&mut self) -> bool {
        match self.space.room() {
            Room::Enough => true,
            Room::Short => false,
            Room::Probe => {
                let Some(store) = self.store.as_mut() else {
                    return false;
                };
                match contain(|| store.checkpoint()) {
                    Ok(()) => {
                        self.note_commit(Commit::Durable, 0);
                        self.space.space_back();
                        true
                    }
                    Err(failure) => {
                        let e = self.fall_ill(failure, "probe for free space");
                        debug!(error = %chain(&e), "still no room on the disk");
                        let _ = self.restore();
                        false
                    }
                }
            }
        }
    }

    /// Sends every command of the batch its answer. When the batch failed: its gets are misses
    /// (a failed write never turns a get into an error), its invalidations, and the keys of
    /// its acknowledged lazy puts, are removed again on their own, and its other writes fail
    /// with the batch's error (their outcome is unknown).
    fn answer_batch(&mut self, result: Result<Vec<Answer>>, shape: Shape) {
        let answers = match result {
            Ok(answers) => answers,
            Err(e) => return self.answer_failed_batch(e, shape),
        };
        let lost = answers
            .iter()
            .filter(|a| matches!(a, Answer::Lost(_)))
            .count();
        if lost > 0 {
            self.lose_acknowledged(lost as u64);
        }
        let lost_writes = self.lost_writes_to_report(shape);
        for (command, answer) in self.batch.drain(..).zip(answers) {
            match (&command, &lost_writes) {
                (Command::Flush { .. }, Some(lost)) => command.reject(lost.clone()),
                _ => command.answer(answer),
            }
        }
    }

    fn answer_failed_batch(&mut self, e: Error, shape: Shape) {
        error!(error = %chain(&e), ops = shape.ops, "cache batch failed; failing its writes");
        let lost = self.batch.iter().filter(|c| c.was_acknowledged()).count();
        if lost > 0 {
            self.lose_acknowledged(lost as u64);
        }
        let removed = self.redo_removals();
        // A flush answers what it exists to tell: lazy writes lost (these or earlier ones).
        let lost_writes = self.lost_writes_to_report(shape);
        for command in std::mem::take(&mut self.batch) {
            match command {
                Command::Flush { .. } => {
                    command.reject(lost_writes.clone().unwrap_or_else(|| e.clone()))
                }
                Command::Get { .. } => command.answer(Answer::Value(None)),
                Command::FillToken { .. } => {
                    command.answer(Answer::Token(self.invalidations.token()))
                }
                Command::Invalidate { .. } if removed => command.answer(Answer::Done),
                command => command.reject(e.clone()),
            }
        }
    }

    /// Applies the batch in one write transaction, keeps the store within its budget, and
    /// commits.
    fn apply_and_commit(&mut self, durability: Commit) -> Result<(Vec<Answer>, Upkeep), Failure> {
        let Actor {
            store,
            config,
            invalidations,
            batch,
            shared,
            ..
        } = self;
        let store = store.as_mut().ok_or(redb::Error::DatabaseClosed)?;
        contain(|| {
            store.write_batch(durability, |txn| {
                remove_damaged(txn, &shared.damage)?;
                let answers = batch
                    .iter()
                    .map(|command| {
                        let applied = apply(txn, invalidations, command);
                        let answer = isolate::<S>(applied, config, command)?;
                        forget_if_lost(txn, command, answer)
                    })
                    .collect::<StoreResult<_>>()?;
                let upkeep = upkeep(txn, config, shared.access.as_ref())?;
                Ok((answers, upkeep))
            })
        })
    }

    /// Counts what expiry and eviction did in a committed batch, and schedules the next sweep.
    fn note_upkeep(&mut self, upkeep: Upkeep) {
        let counters = &self.shared.counters;
        counters.evictions.add(upkeep.evicted);
        counters.expirations.add(upkeep.expired);
        if let Some(ttl) = self.config.time_to_live {
            let wait = match upkeep.more_expired {
                true => Duration::ZERO,
                false => sweep_interval(ttl),
            };
            self.sweep_due = Some(Instant::now() + wait);
        }
    }

    /// Between batches: runs the checkpoint or the sweep that is due.
    fn on_timer(&mut self) {
        let now = Instant::now();
        if self.checkpoint_deadline().is_some_and(|due| due <= now) {
            self.checkpoint();
        }
        if self.sweep_due.is_some_and(|due| due <= now) {
            self.sweep();
        }
    }

    /// An idle sweep: a batch with no commands, only upkeep.
    fn sweep(&mut self) {
        if self.restore().is_err() {
            // Retried at the next sweep; the batches meanwhile report the error.
            self.note_upkeep(Upkeep::default());
            return;
        }
        let durability = self.commit_durability(Shape::default());
        let Actor {
            store,
            config,
            shared,
            ..
        } = self;
        let Some(store) = store.as_mut() else {
            return;
        };
        let swept = contain(|| {
            store.write_batch(durability, |txn| {
                remove_damaged(txn, &shared.damage)?;
                upkeep(txn, config, shared.access.as_ref())
            })
        });
        match swept {
            Ok(upkeep) => {
                self.note_commit(durability, 0);
                self.note_upkeep(upkeep);
                self.publish_snapshot();
            }
            Err(e) => {
                self.note_upkeep(Upkeep::default());
                let e = self.fall_ill(e, "sweep expired entries");
                error!(error = %chain(&e), "cache expiry sweep failed");
                let _ = self.restore();
            }
        }
    }

    /// Answers a batch without writes from one read transaction.
    fn apply_reads(&mut self) -> Result<(Vec<Answer>, Upkeep), Failure> {
        let Actor {
            store,
            config,
            invalidations,
            batch,
            ..
        } = self;
        let store = store.as_ref().ok_or(redb::Error::DatabaseClosed)?;
        let answers = contain(|| {
            store.read_batch(|txn| {
                batch
                    .iter()
                    .map(|command| {
                        let applied = apply_read(txn, invalidations, command);
                        isolate::<S>(applied, config, command)
                    })
                    .collect()
            })
        })?;
        Ok((answers, Upkeep::default()))
    }

    /// Durable unless lazy mode lets this batch wait for a checkpoint.
    fn commit_durability(&self, shape: Shape) -> Commit {
        let due = self.checkpoints.is_due(self.unsynced_since, Instant::now());
        if due || self.close_reply.is_some() || shape.must_be_durable {
            Commit::Durable
        } else {
            Commit::Deferred
        }
    }

    /// Tracks what is not yet durable, after a batch that committed (replacing `pages_replaced`).
    fn note_commit(&mut self, durability: Commit, pages_replaced: u64) {
        self.checkpoints.committed(durability, pages_replaced);
        match durability {
            Commit::Durable => self.unsynced_since = None,
            Commit::Deferred => {
                self.unsynced_since.get_or_insert_with(Instant::now);
            }
        }
    }

    fn checkpoint_deadline(&self) -> Option<Instant> {
        self.checkpoints.deadline(self.unsynced_since)
    }

    /// Lazy mode: makes every deferred commit durable.
    fn checkpoint(&mut self) {
        let Some(store) = self.store.as_mut() else {
            return;
        };
        match contain(|| store.checkpoint()) {
            Ok(()) => {
                debug!("cache checkpoint");
                self.note_commit(Commit::Durable, 0);
            }
            Err(e) => {
                // Still unsynced, but not overdue again until max_delay has passed (unless the
                // error loses the deferred commits, which clears them).
                self.unsynced_since = Some(Instant::now());
                let e = self.fall_ill(e, "checkpoint");
                error!(error = %chain(&e), "cache checkpoint failed");
                let _ = self.restore();
            }
        }
    }

    /// Takes in a failed store call: what it says about the store decides how the store is
    /// restored (`Health`), and the snapshot is withdrawn at once, before any caller hears of
    /// the error, so that no get reads what the failure may have lost. Returns the error for
    /// the callers.
    fn fall_ill(&mut self, failure: Failure, op: &'static str) -> Error {
        let next = match &failure {
            Failure::Panicked(_) => Some(Health::Replace(Discard::KeepAside)),
            Failure::Store(redb::Error::Corrupted(_)) if self.verified => {
                Some(Health::Replace(Discard::KeepAside))
            }
            Failure::Store(redb::Error::Corrupted(_)) => Some(Health::Reopen {
                then_clear: false,
                verify: true,
            }),
            // redb's own state is broken: only a new database can serve.
            Failure::Store(redb::Error::LockPoisoned(_) | redb::Error::TransactionPoisoned) => {
                Some(Health::Replace(Discard::KeepAside))
            }
            Failure::Store(e) if S::needs_reopen(e) => Some(Health::Reopen {
                then_clear: false,
                verify: false,
            }),
            Failure::Store(_) => None,
        };
        if failure.is_disk_full() {
            self.space.ran_out();
            self.shared.set_headroom(0);
        }
        if let Some(next) = next {
            self.become_unwell(next);
        }
        self.error_for(failure, op)
    }

    /// Moves to an unwell state, keeping the strongest remedy already pending: a replace over
    /// a reopen, a verifying reopen over a plain one.
    fn become_unwell(&mut self, next: Health) {
        let lost = self.unsynced_since.take().is_some();
        self.lost_writes |= lost;
        let then_clear = lost || self.health != Health::Sound;
        self.health = match (self.health, next) {
            (Health::Replace(pending), Health::Reopen { .. }) => Health::Replace(pending),
            (Health::Reopen { verify: was, .. }, Health::Reopen { verify, .. }) => Health::Reopen {
                then_clear,
                verify: was || verify,
            },
            (_, Health::Reopen { verify, .. }) => Health::Reopen { then_clear, verify },
            (_, next) => next,
        };
        self.shared.beside.withdraw();
    }

    /// The error callers get for a failed store call.
    fn error_for(&self, failure: Failure, op: &'static str) -> Error {
        let folder = self.config.folder.clone();
        if failure.is_disk_full() {
            return Error::DiskFull { folder, op };
        }
        match failure {
            Failure::Panicked(reason) | Failure::Store(redb::Error::Corrupted(reason)) => {
                Error::Damaged { folder, reason }
            }
            Failure::Store(e) => Error::storage(folder, op, e),
        }
    }

    /// Brings an unwell store back to sound: discards it if it must go, opens it afresh, then
    /// clears it if lazy writes were lost. Every batch, checkpoint and close runs this first;
    /// on `Err` it tries again next time and fails what needed the store meanwhile.
    fn restore(&mut self) -> Result<()> {
        if self.health == Health::Sound {
            return Ok(());
        }
        let restored = self.restore_steps();
        self.publish_snapshot();
        restored
    }

    fn restore_steps(&mut self) -> Result<()> {
        for _ in 0..RESTORE_STEPS {
            match self.health {
                Health::Sound => return Ok(()),
                Health::Replace(how) => self.discard(how)?,
                Health::Reopen { then_clear, verify } => self.reopen(then_clear, verify)?,
                Health::Clear => self.clear(),
            }
        }
        Err(Error::Damaged {
            folder: self.config.folder.clone(),
            reason: "the cache file could not be restored; trying again with the next batch"
                .to_owned(),
        })
    }

    /// Gets rid of the store's file; an empty one is opened next. Fills whose master reads
    /// began before now must not land in it: they may predate invalidations that went with
    /// the old file.
    fn discard(&mut self, how: Discard) -> Result<()> {
        self.shared.beside.withdraw();
        drop_contained(self.store.take());
        self.invalidations.record("");
        self.open.discard(how)?;
        self.shared.damage.note_reset();
        error!(folder = %self.config.folder.display(), ?how, "cache reset: its file was discarded, the cache starts empty");
        self.health = Health::Reopen {
            then_clear: false,
            verify: false,
        };
        Ok(())
    }

    fn reopen(&mut self, then_clear: bool, verify: bool) -> Result<()> {
        // Release the file (and redb's lock) before opening it again.
        drop_contained(self.store.take());
        let folder = &self.config.folder;
        let mut store = match contain_open(folder, || self.open.open()) {
            Ok(store) => store,
            // The file was ours a moment ago: if it no longer reads as a database, it is
            // damaged (moved aside, so nothing is lost), not someone else's.
            Err(e @ (Error::Damaged { .. } | Error::NotADatabase { .. })) => {
                error!(folder = %folder.display(), error = %chain(&e), "the cache file is damaged");
                self.health = Health::Replace(Discard::KeepAside);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        if verify {
            let started = Instant::now();
            match contain(|| store.verify()) {
                Ok(()) => self.verified = true,
                Err(Failure::Store(e)) if !matches!(e, redb::Error::Corrupted(_)) => {
                    drop_contained(store);
                    return Err(Error::storage(folder, "check the cache file", e));
                }
                Err(damage) => {
                    error!(folder = %folder.display(), ?damage, "the cache file failed its integrity check");
                    drop_contained(store);
                    self.health = Health::Replace(Discard::KeepAside);
                    return Ok(());
                }
            }
            warn!(folder = %folder.display(), elapsed_ms = started.elapsed().as_millis() as u64, "cache file checked after a Corrupted error: sound");
        }
        self.store = Some(store);
        warn!(folder = %folder.display(), "cache database reopened after an error");
        self.health = match then_clear {
            true => Health::Clear,
            false => Health::Sound,
        };
        Ok(())
    }

    /// Empties the store after lost lazy writes. If even that cannot commit (a full disk), its
    /// file is discarded instead: a stale value must never be served, now or after a restart.
    fn clear(&mut self) {
        let Some(store) = self.store.as_mut() else {
            self.health = Health::Replace(Discard::Delete);
            return;
        };
        match contain(|| store.write_batch(Commit::Durable, |txn| txn.remove_prefix(""))) {
            Ok(()) => {
                warn!(folder = %self.config.folder.display(), "lazy-mode writes were lost to an I/O error; cache cleared");
                self.invalidations.record("");
                self.health = Health::Sound;
            }
            Err(failure) => {
                let e = self.error_for(failure, "clear after lost writes");
                error!(error = %chain(&e), "cannot clear the cache; discarding its file");
                self.health = Health::Replace(Discard::Delete);
            }
        }
    }

    /// After a failed batch: its invalidations must still take effect, or a value they removed
    /// could be served (and, on disk, outlive a restart); and the keys of its acknowledged lazy
    /// puts must not keep an older value. Commits those removals on their own, durably, on the
    /// restored store; if that fails too, the store's file is discarded, and the callers get
    /// the batch's error. Whether the removals committed.
    fn redo_removals(&mut self) -> bool {
        let prefixes: Vec<String> = self
            .batch
            .iter()
            .filter_map(|command| match command {
                Command::Invalidate { prefix, .. } => Some(prefix.as_str().to_owned()),
                _ => None,
            })
            .collect();
        let keys: Vec<String> = self
            .batch
            .iter()
            .filter_map(|command| command.acknowledged_key().map(str::to_owned))
            .collect();
        if prefixes.is_empty() && keys.is_empty() {
            return false;
        }
        // Fills that took their token before these must not land, whatever happens next.
        for prefix in &prefixes {
            self.invalidations.record(prefix);
        }
        if self.restore().is_ok() {
            if let Some(store) = self.store.as_mut() {
                let redone = contain(|| {
                    store.write_batch(Commit::Durable, |txn| {
                        prefixes.iter().try_for_each(|p| txn.remove_prefix(p))?;
                        keys.iter().try_for_each(|k| txn.remove(k).map(drop))
                    })
                });
                match redone {
                    Ok(()) => {
                        self.note_commit(Commit::Durable, 0);
                        self.publish_snapshot();
                        return true;
                    }
                    Err(failure) => {
                        let e = self.fall_ill(failure, "invalidate again");
                        error!(error = %chain(&e), "an invalidation failed twice; discarding the cache file");
                    }
                }
            }
        }
        if !matches!(self.health, Health::Replace(_)) {
            self.become_unwell(Health::Replace(Discard::Delete));
        }
        // Once the old file is gone, nothing it held can be served; until then no get reads it
        // (the snapshot is withdrawn while the store is unwell).
        let _ = self.restore();
        false
    }

    /// Publishes what is committed now for gets beside the actor, while the store is sound;
    /// otherwise every get queues, and the actor restores the store or reports the error.
    fn publish_snapshot(&self) {
        if let Some(store) = &self.store {
            let counters = &self.shared.counters;
            counters.record_usage(store.usage());
        }
        let store = self.store.as_ref().filter(|_| self.health == Health::Sound);
        match store.map(|store| contain(|| store.snapshot())) {
            Some(Ok(snapshot)) => self.shared.beside.publish(snapshot),
            Some(Err(e)) => {
                debug!(error = ?e, "no snapshot for gets beside the actor");
                self.shared.beside.withdraw();
            }
            None => self.shared.beside.withdraw(),
        }
    }

    /// The error a `flush` or `close` reports once after lazy-mode writes were lost.
    /// `LazyWritesLost`, taken for the batch's flush to report, if it has one.
    fn lost_writes_to_report(&mut self, shape: Shape) -> Option<Error> {
        shape.flush.then(|| self.take_lost_writes().err()).flatten()
    }

    fn take_lost_writes(&mut self) -> Result<()> {
        if std::mem::take(&mut self.lost_writes) {
            return Err(Error::LazyWritesLost {
                folder: self.config.folder.clone(),
            });
        }
        Ok(())
    }

    /// Normal exit: close the store, then answer `close`. (What raced with it is refused when
    /// the actor retires.)
    fn shut_down(&mut self) {
        let closed = self.close_store().and(self.take_lost_writes());
        self.shared.set_lifecycle(Lifecycle::Released);
        if let Some(reply) = self.close_reply.take() {
            reply.send(closed);
        }
    }

    fn close_store(&mut self) -> Result<()> {
        // Like any batch, the close restores an unwell store first: values that lost lazy
        // writes would let resurface must not outlive it.
        let restored = self.restore();
        // Closing needs the store to itself: take the snapshot back, waiting out lookups. Before
        // the store leaves `self`, so that a panic below cannot drop it under a lookup either.
        self.shared.beside.withdraw();
        let Some(mut store) = self.store.take() else {
            return restored;
        };
        // A failed checkpoint still closes the store; its error is what `close` reports.
        let checkpointed = match self.unsynced_since {
            Some(_) => contain(|| store.checkpoint()).map_err(|e| self.error_for(e, "checkpoint")),
            None => Ok(()),
        };
        let closed = contain(|| store.close()).map_err(|e| self.error_for(e, "close"));
        restored.and(checkpointed).and(closed)
    }

    /// After a panic: release the store, fail everything pending. (What is queued is refused
    /// when the actor retires.)
    fn die(&mut self) {
        error!(folder = %self.config.folder.display(), "cache actor panicked");
        let dead = Error::ActorPanicked {
            folder: self.config.folder.clone(),
        };
        // Dropping (not closing) the store: its state after a panic is unknown, and redb
        // recovers from an unclean drop on the next open. The snapshot goes first: no lookup may
        // run against a dropped store.
        self.shared.beside.withdraw();
        drop_contained(self.store.take());
        self.shared.set_lifecycle(Lifecycle::Panicked);
        for command in self.batch.drain(..) {
            command.reject(dead.clone());
        }
        if let Some(reply) = self.close_reply.take() {
            reply.send(Err(dead));
        }
    }
}

/// After a batch's commands, in its transaction: removes expired entries (a bounded sweep),
/// then evicts down to the byte budget.
fn upkeep(
    txn: &mut dyn StoreBatch,
    config: &ActorConfig,
    access: Option<&AccessBits>,
) -> StoreResult<Upkeep> {
    let mut upkeep = Upkeep::default();
    if let Some(ttl) = config.time_to_live {
        let cutoff = budget::expiry_cutoff_ms(ttl);
        (upkeep.expired, upkeep.more_expired) = budget::expire(txn, cutoff)?;
    }
    if let (Some(max_bytes), Some(access)) = (config.max_bytes, access) {
        upkeep.evicted = budget::evict(txn, access, max_bytes)?;
    }
    Ok(upkeep)
}

/// Removes the keys reads found damaged since the last write batch, if their values are still
/// damaged (a put may have replaced one since).
fn remove_damaged(txn: &mut dyn StoreBatch, damage: &DamageLog) -> StoreResult<()> {
    for damaged in damage.take() {
        if txn.remove_if_damaged(&damaged)? {
            debug!(key = damaged.key, "damaged cache entry removed");
        }
    }
    Ok(())
}

/// An error that concerns only this put's key (a value too large, a table of the wrong type)
/// fails that put alone; any other fails the batch. Never an invalidation's or a get's: a
/// failed batch redoes its invalidations (or discards the file) and answers its gets as
/// misses, and an invalidation failed alone would leave its values to be served.
fn isolate<S: Store>(
    applied: StoreResult<Answer>,
    config: &ActorConfig,
    command: &Command,
) -> StoreResult<Answer> {
    let stores = matches!(command, Command::Put { .. } | Command::Fill { .. });
    match applied {
        Err(e) if stores && S::affects_one_command(&e) => Ok(Answer::Failed(Error::storage(
            &config.folder,
            command.name(),
            e,
        ))),
        other => other,
    }
}

/// An acknowledged lazy put that failed alone (its value too large, say) must not leave the
/// key's older value to be served: its key is removed in its place, and it is answered `Lost`.
fn forget_if_lost(
    txn: &mut dyn StoreBatch,
    command: &Command,
    answer: Answer,
) -> StoreResult<Answer> {
    match (answer, command.acknowledged_key()) {
        (Answer::Failed(error), Some(key)) => {
            txn.remove(key)?;
            Ok(Answer::Lost(error))
        }
        (answer, _) => Ok(answer),
    }
}

/// Applies one command to the open write transaction.
fn apply(
    txn: &mut dyn StoreBatch,
    invalidations: &mut InvalidationLog,
    command: &Command,
) -> StoreResult<Answer> {
    Ok(match command {
        Command::Put {
            key,
            value,
            fetched_ms,
            ..
        } => {
            trace!(key = key.as_str(), bytes = value.len(), "cache put");
            match store_value(txn, key, value, *fetched_ms)? {
                Ok(()) => Answer::Done,
                Err(unwritable) => Answer::Failed(unwritable),
            }
        }
        Command::Fill {
            key,
            value,
            fetched_ms,
            token,
            ..
        } => {
            if invalidations.is_stale(key, *token) {
                debug!(
                    key = key.as_str(),
                    "cache fill rejected: invalidated meanwhile"
                );
                return Ok(Answer::Filled(FillOutcome::RejectedStale));
            }
            match store_value(txn, key, value, *fetched_ms)? {
                Ok(()) => Answer::Filled(FillOutcome::Stored),
                Err(unwritable) => Answer::Failed(unwritable),
            }
        }
        Command::Invalidate { prefix, .. } => {
            debug!(prefix = prefix.as_str(), "cache invalidate");
            txn.remove_prefix(prefix)?;
            invalidations.record(prefix);
            Answer::Done
        }
        Command::Forget { key } => {
            debug!(key = key.as_str(), "cache put lost: its key is removed");
            txn.remove(key)?;
            Answer::Done
        }
        _ => return apply_read(txn, invalidations, command),
    })
}

/// Encodes a put's value and stores it. A value that will not encode (the caller measured it,
/// so only a bug gets here) fails its command alone: the inner error.
fn store_value(
    txn: &mut dyn StoreBatch,
    key: &str,
    value: &PutValue,
    fetched_ms: i64,
) -> StoreResult<Result<()>> {
    let bytes = match value.encode(key) {
        Ok(bytes) => bytes,
        Err(unwritable) => return Ok(Err(unwritable)),
    };
    txn.put(key, &bytes, value_sum(&bytes), fetched_ms)?;
    Ok(Ok(()))
}

/// Applies one command that does not write.
fn apply_read<T: StoreReads + ?Sized>(
    txn: &mut T,
    invalidations: &InvalidationLog,
    command: &Command,
) -> StoreResult<Answer> {
    Ok(match command {
        Command::Get { key, .. } => {
            let value = txn.get(key)?;
            debug!(key = key.as_str(), hit = value.is_some(), "cache get");
            Answer::Value(value)
        }
        Command::FillToken { .. } => Answer::Token(invalidations.token()),
        Command::Flush { .. } | Command::Close { .. } => Answer::Done,
        Command::Put { .. }
        | Command::Fill { .. }
        | Command::Invalidate { .. }
        | Command::Forget { .. } => Answer::Failed(Error::Internal {
            what: "a write reached a batch without a write transaction",
        }),
        #[cfg(feature = "test-hooks")]
        Command::Panic { .. } => Answer::Done,
    })
}

#[cfg(test)]
mod tests {
    //! The loop over the in-memory store, without redb: quick checks of the batch rules.

    use super::*;
    use crate::actor::Fetched;
    use crate::store::mem_store::MemStore;

    fn start(max_ops: usize) -> (Handle, crate::store::mem_store::MemStoreProbe) {
        let (store, probe) = MemStore::new();
        let mut config = ActorConfig::new("<test>");
        config.batch.max_ops = max_ops;
        let (handle, _thread) = spawn(config, store).unwrap();
        (handle, probe)
    }

    /// The rows a test puts: one field holding `text`.
    fn rows(text: &str) -> crate::rows::CachedRows {
        let mut record = crate::rows::Record::new();
        record.insert("v".into(), crate::rows::Value::Text(text.into()));
        let at = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        crate::rows::CachedRows::with_fetched_at([("1".to_owned(), record)].into(), at)
    }

    /// A put's value holding `text`.
    fn value(text: &str) -> PutValue {
        let rows = rows(text);
        let len = crate::codec::encode(&rows).unwrap().len();
        PutValue::new(rows, len)
    }

    /// What the store holds for [`value`]`(text)`.
    fn encoded(text: &str) -> Vec<u8> {
        crate::codec::encode(&rows(text)).unwrap()
    }

    /// The stored bytes a get found (these tests never keep anything hot).
    fn stored(fetched: Fetched) -> Option<Vec<u8>> {
        match fetched {
            Fetched::Stored { bytes, .. } => bytes,
            Fetched::Hot(_) | Fetched::Buffered(_) => panic!("nothing was kept hot or buffered"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commands_queued_in_order_see_each_other() {
        let (cache, _probe) = start(64);
        let put = cache
            .submit(|reply| Command::put(cache.track_key("k"), value("1"), 0, reply))
            .await
            .unwrap();
        assert_eq!(stored(cache.get("k").await.unwrap()), Some(encoded("1")));
        put.wait().await.unwrap();
        cache.invalidate_prefix("").await.unwrap();
        assert_eq!(stored(cache.get("k").await.unwrap()), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_commit_fails_the_batch_and_the_next_one_works() {
        let (cache, probe) = start(64);
        probe.fail_next_commit();
        let err = cache.put("a", value("1"), 0).await.unwrap_err();
        assert!(matches!(err, Error::Storage { .. }), "{err}");
        assert_eq!(probe.committed("a"), None);
        cache.put("a", value("2"), 0).await.unwrap();
        assert_eq!(probe.committed("a"), Some(encoded("2")));
    }

    /// Damage found by a commit: the batch's writes fail with `Damaged`, its gets miss, the
    /// store is discarded (a fresh, empty one serves at once), and a fill whose token predates
    /// the reset is rejected: it may carry what an invalidation lost with the old file removed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn damage_resets_the_store_and_makes_earlier_fill_tokens_stale() {
        let (cache, probe) = start(64);
        cache.put("kept", value("1"), 0).await.unwrap();
        let token = cache.fill_token().await.unwrap();
        probe.damage();
        let err = cache.put("a", value("2"), 0).await.unwrap_err();
        assert!(matches!(err, Error::Damaged { .. }), "{err}");
        assert_eq!(probe.discards(), 1, "the damaged store was not discarded");
        assert_eq!(cache.stats().resets, 1);
        assert_eq!(stored(cache.get("kept").await.unwrap()), None);
        let late = cache.fill("f", value("old"), 0, token).await.unwrap();
        assert_eq!(late, FillOutcome::RejectedStale);
        assert_eq!(probe.committed("f"), None);
        cache.put("a", value("3"), 0).await.unwrap();
        assert_eq!(stored(cache.get("a").await.unwrap()), Some(encoded("3")));
    }

    /// A batch that fails to commit answers its gets as misses, never with the commit's error.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_batch_answers_its_gets_as_misses() {
        let (cache, probe) = start(64);
        cache.put("k", value("1"), 0).await.unwrap();
        probe.fail_next_commit();
        let put = cache
            .submit(|reply| Command::put(cache.track_key("k"), value("2"), 0, reply))
            .await
            .unwrap();
        // Covered by the put in flight: this get queues into the failing batch (or the next).
        let got = cache.get("k").await.unwrap();
        assert!(put.wait().await.is_err());
        let got = stored(got);
        assert!(got.is_none() || got == Some(encoded("1")), "{got:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn close_answers_and_later_calls_are_refused() {
        let (cache, probe) = start(64);
        let other = cache.clone();
        cache.put("a", value("1"), 0).await.unwrap();
        cache.close().await.unwrap();
        assert!(matches!(other.get("a").await, Err(Error::Closed)));
        assert!(matches!(
            other.put("b", value(""), 0).await,
            Err(Error::Closed)
        ));
        assert_eq!(probe.committed("b"), None);
        // Closing again is a no-op.
        other.close().await.unwrap();
    }
}
