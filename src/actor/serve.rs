//! The actor's loop, top to bottom:
//!
//! 1. wait for the first command (or for a lazy-mode checkpoint to fall due);
//! 2. gather what is already queued, up to the batch limits;
//! 3. apply the batch in order inside one transaction and commit it once;
//! 4. answer every command of the batch — only now, after the commit;
//! 5. on `close` or when the last handle is gone: close the store, tell the stragglers.
//!
//! Gets may also be answered beside the actor (`read_beside`): after each commit the actor
//! publishes a snapshot for them, and it withdraws that snapshot before reopening or closing the
//! store.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use tracing::{Span, debug, debug_span, error, field, trace, warn};

use super::command::{Answer, Command, Reply};
use super::config::{ActorConfig, Durability};
use super::handle::{Handle, Lifecycle, Shared};
use crate::cache::FillOutcome;
use crate::error::{Error, Result, chain};
use crate::invalidation_log::InvalidationLog;
use crate::store::{Commit, Store, StoreBatch};
#[cfg(any(loom, test))]
use crate::sync::thread;
use crate::sync::{Arc, Received, channel};

/// Starts an actor over an already-open store. Returns a handle and the actor thread.
#[cfg(any(loom, test))]
pub(crate) fn spawn<S: Store>(
    config: ActorConfig,
    store: S,
) -> Result<(Handle, thread::JoinHandle<()>)> {
    config.validate()?;
    let (commands_tx, commands) = channel::bounded(config.capacity);
    let shared = Arc::new(Shared::new(config.folder.clone()));
    let actor = Actor::new(config, store, shared.clone());
    let thread = thread::spawn(move || actor.run(commands));
    Ok((Handle::new(commands_tx, shared), thread))
}

/// Starts an actor whose thread opens the store itself and reports how that went: the store
/// never crosses threads, and `open` fails fast with the opener's error.
#[cfg(not(loom))]
pub(crate) fn spawn_opening<S: Store>(
    config: ActorConfig,
    open: impl FnOnce() -> Result<S> + Send + 'static,
) -> Result<Handle> {
    config.validate()?;
    let (commands_tx, commands) = channel::bounded(config.capacity);
    let shared = Arc::new(Shared::new(config.folder.clone()));
    let (opened_tx, opened) = std::sync::mpsc::sync_channel(1);
    let actor_shared = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("vlive-cache".into())
        .spawn(move || match open() {
            Ok(store) => {
                let _ = opened_tx.send(Ok(()));
                Actor::new(config, store, actor_shared).run(commands);
            }
            Err(e) => {
                actor_shared.set_lifecycle(Lifecycle::Released);
                let _ = opened_tx.send(Err(e));
            }
        });
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

/// What a batch holds, tallied once as it is gathered (not rescanned per command).
#[derive(Clone, Copy, Debug, Default)]
struct Shape {
    writes: bool,
    flush: bool,
    /// An invalidation or a flush: lazy mode must commit this batch durably.
    must_be_durable: bool,
    bytes: usize,
}

impl Shape {
    fn add(&mut self, command: &Command) {
        self.writes |= command.writes();
        self.flush |= matches!(command, Command::Flush { .. });
        self.must_be_durable |= command.needs_durable_commit();
        self.bytes += command.payload_bytes();
    }
}

/// What the actor waits for between batches.
enum Work {
    Command(Command),
    CheckpointDue,
    Disconnected,
}

struct Actor<S: Store> {
    /// `None` once closed.
    store: Option<S>,
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
    /// The last batch or checkpoint hit an I/O error; redb needs reopening before it writes again.
    needs_recovery: bool,
    /// A reopen may have lost deferred (lazy) commits, and with them the removal of older
    /// values: the store must be cleared before it serves anything again.
    must_clear: bool,
    /// Lazy-mode writes were lost to an I/O error; the next `flush` or `close` reports it.
    lost_writes: bool,
}

impl<S: Store> Actor<S> {
    fn new(config: ActorConfig, store: S, shared: Arc<Shared>) -> Self {
        let actor = Actor {
            store: Some(store),
            batch: Vec::with_capacity(config.batch.max_ops),
            config,
            shared,
            invalidations: InvalidationLog::default(),
            close_reply: None,
            unsynced_since: None,
            needs_recovery: false,
            must_clear: false,
            lost_writes: false,
        };
        actor.refresh_snapshot();
        actor
    }

    /// The thread's body: serve, shut down — or die if either panics — then retire.
    fn run(mut self, commands: channel::Receiver<Command>) {
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
    fn serve(&mut self, commands: &channel::Receiver<Command>) {
        loop {
            match self.wait_for_work(commands) {
                Work::Command(first) => self.batch.push(first),
                Work::CheckpointDue => {
                    self.checkpoint();
                    continue;
                }
                Work::Disconnected => return,
            }
            let shape = self.gather_batch(commands);
            self.execute_batch(shape);
            if self.close_reply.is_some() {
                return;
            }
        }
    }

    fn wait_for_work(&self, commands: &channel::Receiver<Command>) -> Work {
        let received = match self.checkpoint_deadline() {
            None => commands
                .recv()
                .map_or(Received::Disconnected, Received::Message),
            Some(deadline) => commands.recv_deadline(deadline),
        };
        match received {
            Received::Message(command) => Work::Command(command),
            Received::Empty => Work::CheckpointDue,
            Received::Disconnected => Work::Disconnected,
        }
    }

    /// Adds already-queued commands to the batch, within its limits. A `close` ends the batch.
    fn gather_batch(&mut self, commands: &channel::Receiver<Command>) -> Shape {
        let limits = self.config.batch;
        let started = Instant::now();
        let mut shape = Shape::default();
        shape.add(&self.batch[0]);
        while self.batch.len() < limits.max_ops && shape.bytes < limits.max_bytes {
            if self.batch.last().is_some_and(Command::is_close) {
                break;
            }
            // Lingering only pays off for commits; a batch of reads goes at once.
            let next = match limits.linger.filter(|_| shape.writes) {
                Some(linger) => commands.recv_deadline(started + linger),
                None => commands.try_recv(),
            };
            let Received::Message(command) = next else {
                break;
            };
            shape.add(&command);
            self.batch.push(command);
        }
        shape
    }

    /// Runs the batch in one transaction and answers every command in it.
    fn execute_batch(&mut self, shape: Shape) {
        if let Some(Command::Close { .. }) = self.batch.last() {
            if let Some(Command::Close { reply }) = self.batch.pop() {
                self.close_reply = Some(reply);
            }
        }
        let ops = self.batch.len();
        if ops == 0 {
            return;
        }
        self.recover_if_needed();
        let durability = self.commit_durability(shape);
        // A flush with no write still commits (empty, durable) when there is something to sync:
        // that commit is the checkpoint.
        let commits = shape.writes || (shape.flush && self.unsynced_since.is_some());
        let span = debug_span!(
            "cache_batch",
            folder = %self.config.folder.display(),
            ops,
            bytes = shape.bytes,
            durable = commits && durability == Commit::Durable,
            batch_us = field::Empty,
        );
        let _entered = span.enter();
        // A store that lost lazy writes is cleared before anything else runs.
        #[cfg(vlive_mutant = "settle_before_commit")]
        self.batch.iter_mut().for_each(Command::settle_too_early);
        let result = self
            .clear_if_needed()
            .and_then(|()| self.apply_and_commit(commits.then_some(durability), &span));
        // Before any write is answered (and settled): gets beside the actor must find it.
        #[cfg(not(vlive_mutant = "no_snapshot_after_commit"))]
        if commits && result.is_ok() {
            self.refresh_snapshot();
        }
        self.shared.counters.record_batch(ops);
        match result {
            Ok(answers) => {
                if commits {
                    self.note_commit(durability);
                }
                let lost = if shape.flush {
                    self.take_lost_writes().err()
                } else {
                    None
                };
                for (command, answer) in self.batch.drain(..).zip(answers) {
                    match (&command, &lost) {
                        (Command::Flush { .. }, Some(lost)) => command.reject(lost.clone()),
                        _ => command.answer(answer),
                    }
                }
            }
            Err(e) => {
                error!(error = %chain(&e), ops, "cache batch failed; failing all its commands");
                // Reopen before answering: a caller that sees this error must not then read,
                // beside the actor, a snapshot holding lazy writes the failure may have lost.
                self.recover_if_needed();
                #[cfg(not(vlive_mutant = "fail_only_first"))]
                for command in self.batch.drain(..) {
                    command.reject(e.clone());
                }
                #[cfg(vlive_mutant = "fail_only_first")]
                for (i, command) in self.batch.drain(..).enumerate() {
                    match i {
                        0 => command.reject(e.clone()),
                        _ => command.answer(Answer::Done),
                    }
                }
            }
        }
    }

    /// Applies every command of the batch, in order, then commits once (`commit: None`: the
    /// batch only reads).
    fn apply_and_commit(&mut self, commit: Option<Commit>, span: &Span) -> Result<Vec<Answer>> {
        let Actor {
            store,
            config,
            invalidations,
            batch,
            needs_recovery,
            ..
        } = self;
        let store = store.as_mut().ok_or(Error::Closed)?;
        #[cfg(vlive_mutant = "reads_first")]
        batch.sort_by_key(|c| !matches!(c, Command::Get { .. }));
        let started = Instant::now();
        let answers = store
            .batch(commit, |txn| {
                let answers =
                    batch
                        .iter()
                        .map(|command| match apply(txn, invalidations, command) {
                            // An error that concerns only this command's key (a table of the
                            // wrong type, a value too large) fails that command alone.
                            Err(e) if S::affects_one_command(&e) => Ok(Answer::Failed(
                                Error::storage(&config.folder, command.name(), e),
                            )),
                            other => other,
                        })
                        .collect::<crate::store::StoreResult<Vec<Answer>>>()?;
                #[cfg(vlive_mutant = "reply_before_commit")]
                for (command, answer) in batch.drain(..).zip(answers) {
                    command.answer(answer);
                }
                #[cfg(vlive_mutant = "reply_before_commit")]
                let answers = Vec::new();
                Ok(answers)
            })
            .map_err(|e| {
                *needs_recovery = S::needs_recovery(&e);
                Error::storage(&config.folder, "execute a batch", e)
            })?;
        span.record("batch_us", started.elapsed().as_micros() as u64);
        Ok(answers)
    }

    /// Durable unless lazy mode lets this batch wait for a checkpoint.
    fn commit_durability(&self, shape: Shape) -> Commit {
        let Durability::Lazy { max_delay } = self.config.durability else {
            return Commit::Durable;
        };
        let overdue = self
            .unsynced_since
            .is_some_and(|since| since.elapsed() >= max_delay);
        if overdue || self.close_reply.is_some() || shape.must_be_durable {
            Commit::Durable
        } else {
            Commit::Deferred
        }
    }

    /// Tracks what is not yet durable, after a batch that committed.
    fn note_commit(&mut self, durability: Commit) {
        match durability {
            Commit::Durable => self.unsynced_since = None,
            Commit::Deferred => {
                self.unsynced_since.get_or_insert_with(Instant::now);
            }
        }
    }

    fn checkpoint_deadline(&self) -> Option<Instant> {
        match self.config.durability {
            Durability::Lazy { max_delay } => self.unsynced_since.map(|since| since + max_delay),
            Durability::Immediate => None,
        }
    }

    /// Lazy mode: makes every deferred commit durable.
    fn checkpoint(&mut self) {
        let Some(store) = self.store.as_mut() else {
            return;
        };
        match store.checkpoint() {
            Ok(()) => {
                debug!("cache checkpoint");
                self.unsynced_since = None;
            }
            Err(e) => {
                error!(error = %chain(&e), "cache checkpoint failed; retrying after max_delay");
                self.needs_recovery = S::needs_recovery(&e);
                // Still unsynced, but not overdue again until max_delay has passed.
                self.unsynced_since = Some(Instant::now());
                self.recover_if_needed();
            }
        }
    }

    /// Reopens the store after an I/O error. On failure, the next batch tries again (and fails
    /// with the store's error meanwhile).
    fn recover_if_needed(&mut self) {
        if !self.needs_recovery {
            return;
        }
        // The store is reopened from its file: no snapshot may hold the old one.
        self.shared.beside.withdraw();
        let Some(store) = self.store.as_mut() else {
            return;
        };
        match store.recover() {
            Ok(()) => {
                warn!(folder = %self.config.folder.display(), "cache database reopened after an I/O error");
                self.needs_recovery = false;
                if self.unsynced_since.take().is_some() {
                    // Deferred commits may be gone, and a lost put may have replaced an older
                    // value that would now resurface. Only an empty cache is surely not stale.
                    self.must_clear = true;
                    self.lost_writes = true;
                }
                self.refresh_snapshot();
            }
            Err(e) => error!(error = %chain(&e), "reopening the cache database failed"),
        }
    }

    /// Publishes what is committed now for gets beside the actor — or withdraws the snapshot,
    /// while the store waits to be reopened or holds values that lost lazy writes may have made
    /// stale: then every get queues, and the actor answers or reports the error.
    fn refresh_snapshot(&self) {
        let sound = !self.needs_recovery && !self.must_clear;
        match self.store.as_ref().filter(|_| sound).map(S::snapshot) {
            Some(Ok(snapshot)) => self.shared.beside.publish(snapshot),
            Some(Err(e)) => {
                debug!(error = %chain(&e), "no snapshot for gets beside the actor");
                self.shared.beside.withdraw();
            }
            None => self.shared.beside.withdraw(),
        }
    }

    /// Durably empties the store after lazy-mode writes were lost. Until this succeeds no batch
    /// runs (each fails with its error).
    fn clear_if_needed(&mut self) -> Result<()> {
        if !self.must_clear {
            return Ok(());
        }
        let folder = &self.config.folder;
        let store = self.store.as_mut().ok_or(Error::Closed)?;
        match store.batch(Some(Commit::Durable), |txn| txn.remove_prefix("")) {
            Ok(()) => {
                warn!(folder = %folder.display(), "lazy-mode writes were lost to an I/O error; cache cleared");
                self.invalidations.record("");
                self.must_clear = false;
                self.refresh_snapshot();
                Ok(())
            }
            Err(e) => {
                self.needs_recovery = S::needs_recovery(&e);
                Err(Error::storage(folder, "clear after lost writes", e))
            }
        }
    }

    /// The error a `flush` or `close` reports once after lazy-mode writes were lost.
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
        // Like any batch, the close gets one more chance to reopen a store that hit an I/O error,
        // and must not leave behind values that lost lazy writes would let resurface.
        self.recover_if_needed();
        let cleared = self.clear_if_needed();
        // Closing needs the store to itself: take the snapshot back, waiting out lookups. Before
        // the store leaves `self`, so that a panic below cannot drop it under a lookup either.
        #[cfg(not(vlive_mutant = "close_before_withdraw"))]
        self.shared.beside.withdraw();
        let Some(mut store) = self.store.take() else {
            return Ok(());
        };
        let folder = &self.config.folder;
        // A failed checkpoint still closes the store; its error is what `close` reports.
        let checkpointed = match self.unsynced_since {
            Some(_) => store
                .checkpoint()
                .map_err(|e| Error::storage(folder, "checkpoint", e)),
            None => Ok(()),
        };
        let closed = store
            .close()
            .map_err(|e| Error::storage(folder, "close", e));
        #[cfg(vlive_mutant = "close_before_withdraw")]
        self.shared.beside.withdraw();
        cleared.and(checkpointed).and(closed)
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
        self.store = None;
        self.shared.set_lifecycle(Lifecycle::Panicked);
        for command in self.batch.drain(..) {
            command.reject(dead.clone());
        }
        if let Some(reply) = self.close_reply.take() {
            reply.send(Err(dead));
        }
    }
}

/// Applies one command to the open transaction.
fn apply(
    txn: &mut dyn StoreBatch,
    invalidations: &mut InvalidationLog,
    command: &Command,
) -> crate::store::StoreResult<Answer> {
    Ok(match command {
        Command::Get { key, .. } => {
            let value = txn.get(key)?;
            debug!(key = key.as_str(), hit = value.is_some(), "cache get");
            Answer::Value(value)
        }
        Command::Put { key, value, .. } => {
            trace!(key = key.as_str(), bytes = value.len(), "cache put");
            txn.put(key, value)?;
            Answer::Done
        }
        Command::Fill {
            key, value, token, ..
        } => {
            #[cfg(not(vlive_mutant = "no_stale_check"))]
            if invalidations.is_stale(key, *token) {
                debug!(
                    key = key.as_str(),
                    "cache fill rejected: invalidated meanwhile"
                );
                return Ok(Answer::Filled(FillOutcome::RejectedStale));
            }
            let _ = token;
            txn.put(key, value)?;
            Answer::Filled(FillOutcome::Stored)
        }
        Command::FillToken { .. } => Answer::Token(invalidations.token()),
        Command::Invalidate { prefix, .. } => {
            debug!(prefix = prefix.as_str(), "cache invalidate");
            txn.remove_prefix(prefix)?;
            invalidations.record(prefix);
            Answer::Done
        }
        Command::Flush { .. } | Command::Close { .. } => Answer::Done,
        #[cfg(feature = "test-hooks")]
        Command::Panic { .. } => panic!("test hook: actor panic requested"),
    })
}

#[cfg(test)]
mod tests {
    //! The loop over the in-memory store, without redb: quick checks of the batch rules.

    use super::*;
    use crate::store::mem_store::MemStore;

    fn start(max_ops: usize) -> (Handle, crate::store::mem_store::MemStoreProbe) {
        let (store, probe) = MemStore::new();
        let mut config = ActorConfig::new("<test>");
        config.batch.max_ops = max_ops;
        let (handle, _thread) = spawn(config, store).unwrap();
        (handle, probe)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commands_queued_in_order_see_each_other() {
        let (cache, _probe) = start(64);
        let put = cache
            .submit(|reply| Command::Put {
                key: cache.track_key("k"),
                value: b"1".to_vec(),
                reply,
            })
            .await
            .unwrap();
        assert_eq!(cache.get("k").await.unwrap(), Some(b"1".to_vec()));
        put.wait().await.unwrap();
        cache.invalidate_prefix("").await.unwrap();
        assert_eq!(cache.get("k").await.unwrap(), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_commit_fails_the_batch_and_the_next_one_works() {
        let (cache, probe) = start(64);
        probe.fail_next_commit();
        let err = cache.put("a", b"1".to_vec()).await.unwrap_err();
        assert!(matches!(err, Error::Storage { .. }), "{err}");
        assert_eq!(probe.committed("a"), None);
        cache.put("a", b"2".to_vec()).await.unwrap();
        assert_eq!(probe.committed("a"), Some(b"2".to_vec()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn close_answers_and_later_calls_are_refused() {
        let (cache, probe) = start(64);
        let other = cache.clone();
        cache.put("a", b"1".to_vec()).await.unwrap();
        cache.close().await.unwrap();
        assert!(matches!(other.get("a").await, Err(Error::Closed)));
        assert!(matches!(other.put("b", vec![]).await, Err(Error::Closed)));
        assert_eq!(probe.committed("b"), None);
        // Closing again is a no-op.
        other.close().await.unwrap();
    }
}
