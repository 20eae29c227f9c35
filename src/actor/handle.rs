//! The caller's side of the actor: send a command, await its reply.

use std::path::Path;

use super::command::{Command, PutValue, Queued, Reply};
use super::hot::HotValue;
use super::read_beside::{HotTicket, Lookup, Tracked};
use super::shared::{Lifecycle, Shared, WriteBuffer};
use super::stats::RedbCacheStats;
use crate::cache::{FillOutcome, FillToken};
use crate::error::{Error, Result};
use crate::store::entry_size;
use crate::sync::{self, Arc, channel, oneshot};

/// A cloneable handle to one actor. The actor shuts down when the last handle is dropped.
#[derive(Clone, Debug)]
pub(crate) struct Handle {
    commands: channel::Sender<Queued>,
    shared: Arc<Shared>,
}

impl Handle {
    pub(crate) fn new(commands: channel::Sender<Queued>, shared: Arc<Shared>) -> Self {
        Handle { commands, shared }
    }

    pub(crate) fn folder(&self) -> &Path {
        &self.shared.folder
    }

    pub(crate) fn stats(&self) -> RedbCacheStats {
        stats_of(&self.shared, self.commands.queued())
    }

    /// Sends a command built around a fresh reply channel and waits for the answer.
    ///
    /// Cancelling the returned future after the command was queued does not cancel the command:
    /// a write still commits; only its answer is dropped.
    async fn call<T>(&self, command: impl FnOnce(Reply<T>) -> Command) -> Result<T> {
        self.submit(command).await?.wait().await
    }

    /// Queues a command (waiting for room in the channel) without waiting for its answer.
    pub(crate) async fn submit<T>(
        &self,
        command: impl FnOnce(Reply<T>) -> Command,
    ) -> Result<Pending<T>> {
        let slot = self.shared.slots.acquire(1).await;
        let (reply, answer) = oneshot::channel();
        if self
            .commands
            .send(Queued::new(command(reply), Some(slot)))
            .is_err()
        {
            return Err(self.shared.gone());
        }
        self.answer_leftovers_if_stopped();
        Ok(self.pending(answer))
    }

    /// The actor sets its lifecycle before its last look at the queue. If it has stopped, that
    /// look may have come before our send: answer what is left ourselves. If not, the actor
    /// will see our command.
    fn answer_leftovers_if_stopped(&self) {
        if self.shared.has_stopped() {
            self.shared.refuse_leftovers();
        }
    }

    fn pending<T>(&self, answer: oneshot::Receiver<Result<T>>) -> Pending<T> {
        Pending {
            answer,
            shared: self.shared.clone(),
        }
    }

    /// The value under `key`: decoded from the hot tier, or stored bytes (from the snapshot or
    /// through the actor) with, when the tier may take them once decoded, a ticket for
    /// [`keep_hot`](Handle::keep_hot). A get answered beside the actor spends the runtime's
    /// budget, as one through the actor would by waiting.
    pub(crate) async fn get(&self, key: &str) -> Result<Fetched> {
        let fetched = match self.shared.beside.lookup(key) {
            Lookup::Buffered(value) => {
                self.shared.counters.buffered_gets.bump();
                sync::spend_budget().await;
                Fetched::Buffered(value)
            }
            Lookup::Hot(value) => {
                self.shared.counters.hot_hits.bump();
                sync::spend_budget().await;
                Fetched::Hot(value)
            }
            Lookup::Answered(bytes, ticket) => {
                self.shared.counters.snapshot_gets.bump();
                sync::spend_budget().await;
                Fetched::Stored {
                    bytes,
                    ticket: Some(ticket),
                }
            }
            Lookup::Queue(ticket) => {
                let key = key.to_owned();
                let bytes = self.call(|reply| Command::Get { key, reply }).await?;
                Fetched::Stored { bytes, ticket }
            }
        };
        Ok(fetched)
    }

    /// Adds a value a get read (and decoded) to the hot tier, if its ticket is still good.
    /// `encoded_len` is what the value's bytes weighed: with the key, its cost in the budget.
    pub(crate) fn keep_hot(
        &self,
        key: &str,
        value: HotValue,
        encoded_len: usize,
        ticket: HotTicket,
    ) {
        let size = (key.len() + encoded_len) as u64;
        self.shared.beside.keep_hot(key, value, size, ticket);
    }

    /// Reports a value that was read but would not decode: a miss, removed with the next write.
    pub(crate) fn report_undecodable(&self, key: &str, rows: &[u8], why: &str) {
        self.shared.damage.report_undecodable(key, rows, why);
    }

    /// Drops an expired entry from the hot tier.
    pub(crate) fn drop_hot(&self, key: &str) {
        self.shared.beside.drop_hot(key);
    }

    /// Counts a get's outcome, once the caller knows it (an entry past its time to live is a
    /// miss, and earns no second chance). A hit sets the key's access bit for eviction.
    pub(crate) fn record_get(&self, key: &str, hit: bool) {
        if !hit {
            self.shared.counters.misses.bump();
            return;
        }
        self.shared.counters.hits.bump();
        if let Some(access) = &self.shared.access {
            access.touch(key);
        }
    }

    /// How long entries stay fresh, if they expire.
    pub(crate) fn time_to_live(&self) -> Option<std::time::Duration> {
        self.shared.time_to_live
    }

    /// Refuses, before it reaches the actor, an entry that alone exceeds the byte budget: no
    /// eviction could make room for it.
    fn check_size(&self, key: &str, value: &PutValue) -> Result<()> {
        let bytes = entry_size(key, value.len());
        match self.shared.max_bytes {
            Some(max_bytes) if bytes > max_bytes => Err(Error::EntryTooLarge {
                key: key.to_owned(),
                bytes,
                max_bytes,
            }),
            _ => Ok(()),
        }
    }

    /// A write's key, registered in flight before its command is built (see `read_beside`).
    pub(crate) fn track_key(&self, key: &str) -> Tracked {
        self.shared.beside.track_key(key)
    }

    /// Stores `value` under `key`. Answered after the commit, or in lazy mode as soon as it
    /// is queued in the write buffer (see [`put_buffered`](Self::put_buffered)).
    pub(crate) async fn put(&self, key: &str, value: PutValue, fetched_ms: i64) -> Result<()> {
        self.check_size(key, &value)?;
        match self.buffer_with_headroom(key, &value) {
            Some(buffer) => self.put_buffered(key, value, fetched_ms, buffer).await?,
            None => {
                let key = self.track_key(key);
                self.call(|reply| Command::put(key, value, fetched_ms, reply))
                    .await?
            }
        }
        self.shared.counters.puts.bump();
        Ok(())
    }

    /// Lazy mode's write buffer, if this put may be acknowledged before its commit: not when
    /// the disk, at the actor's last look, could not take what the buffer would then hold.
    fn buffer_with_headroom(&self, key: &str, value: &PutValue) -> Option<&WriteBuffer> {
        let buffer = self.shared.write_buffer.as_ref()?;
        let more = entry_size(key, value.len());
        self.shared
            .has_headroom_for(buffer.held(), more)
            .then_some(buffer)
    }

    /// Lazy mode: waits for room in the write buffer, then registers the put, makes its value
    /// what gets of `key` find, and queues it, in one step (`ReadBeside::track_buffered`).
    /// Answered then, before the commit: a commit that fails later is reported by `flush` or
    /// `close` (`LazyWritesLost`), and the key then misses. Only if the registry says closing
    /// (a `close` began, or the actor stopped or panicked) is the put's own answer awaited,
    /// since the actor may refuse it.
    async fn put_buffered(
        &self,
        key: &str,
        value: PutValue,
        fetched_ms: i64,
        buffer: &WriteBuffer,
    ) -> Result<()> {
        let bytes = u32::try_from(entry_size(key, value.len())).unwrap_or(u32::MAX);
        // A value larger than the whole buffer takes all of it, and goes alone.
        let claim = buffer.bytes.acquire(bytes.min(buffer.capacity())).await;
        let (reply, answer) = oneshot::channel();
        let queued = self
            .shared
            .beside
            .track_buffered(key, value.value().clone(), claim, |key| {
                let put = Command::put(key, value, fetched_ms, reply);
                // Boxed, not dropped: the unsent put holds a registration that must be
                // dropped after the registry's lock is released.
                self.commands.send(Queued::new(put, None)).map_err(Box::new)
            });
        let closing = match queued {
            Ok(closing) => closing,
            Err(unsent) => {
                drop(unsent);
                return Err(self.shared.gone());
            }
        };
        if closing {
            self.answer_leftovers_if_stopped();
            return self.pending(answer).wait().await;
        }
        // Answered without awaiting anything: a task putting in a loop must still yield.
        sync::spend_budget().await;
        Ok(())
    }

    pub(crate) async fn fill(
        &self,
        key: &str,
        value: PutValue,
        fetched_ms: i64,
        token: FillToken,
    ) -> Result<FillOutcome> {
        self.check_size(key, &value)?;
        let key = self.track_key(key);
        let outcome = self
            .call(|reply| Command::fill(key, value, fetched_ms, token, reply))
            .await?;
        match outcome {
            FillOutcome::Stored => self.shared.counters.fills.bump(),
            FillOutcome::RejectedStale => self.shared.counters.stale_fills_rejected.bump(),
        }
        Ok(outcome)
    }

    pub(crate) async fn fill_token(&self) -> Result<FillToken> {
        self.call(|reply| Command::FillToken { reply }).await
    }

    pub(crate) async fn invalidate_prefix(&self, prefix: &str) -> Result<()> {
        let prefix = self.shared.beside.track_prefix(prefix);
        self.call(|reply| Command::Invalidate { prefix, reply })
            .await?;
        self.shared.counters.invalidations.bump();
        Ok(())
    }

    pub(crate) async fn flush(&self) -> Result<()> {
        self.call(|reply| Command::Flush { reply }).await
    }

    /// Closes the store; `Ok` once its file is released. Closing twice is fine: a close that
    /// finds the actor already closed is `Ok`, since the file is released either way.
    pub(crate) async fn close(&self) -> Result<()> {
        self.shared.begin_closing();
        match self.call(|reply| Command::Close { reply }).await {
            Err(Error::Closed) => Ok(()),
            other => other,
        }
    }

    #[cfg(feature = "test-hooks")]
    pub(crate) async fn panic_actor(&self) -> Result<()> {
        self.call(|reply| Command::Panic { reply }).await
    }

    #[cfg(not(loom))]
    pub(crate) fn downgrade(&self) -> WeakHandle {
        WeakHandle {
            commands: self.commands.downgrade(),
            shared: self.shared.clone(),
        }
    }
}

/// The counters of the actor behind `shared`, with `queued` commands in its channel.
fn stats_of(shared: &Shared, queued: usize) -> RedbCacheStats {
    let hot = shared.beside.hot_usage();
    #[cfg(not(loom))]
    let file_bytes = crate::store::redb_store::file_bytes(&shared.folder);
    #[cfg(loom)]
    let file_bytes = 0;
    let buffered = shared.write_buffer.as_ref().map_or(0, WriteBuffer::held);
    shared
        .counters
        .snapshot(queued, hot, buffered, file_bytes, &shared.damage)
}

/// What a get found: see [`Handle::get`].
#[derive(Debug)]
pub(crate) enum Fetched {
    /// From the write buffer, as it was put: a lazy put acknowledged and not yet settled.
    /// Never kept hot: it is about to be in the store.
    Buffered(HotValue),
    /// Decoded, from the hot tier.
    Hot(HotValue),
    /// The stored bytes (`None`: a miss), and leave to keep them hot once decoded.
    Stored {
        bytes: Option<Vec<u8>>,
        ticket: Option<HotTicket>,
    },
}

/// A queued command's answer, to be awaited.
#[derive(Debug)]
pub(crate) struct Pending<T> {
    answer: oneshot::Receiver<Result<T>>,
    shared: Arc<Shared>,
}

impl<T> Pending<T> {
    pub(crate) async fn wait(self) -> Result<T> {
        match self.answer.recv().await {
            Some(result) => result,
            // The actor dropped the command unanswered: it stopped, or panicked.
            None => Err(self.shared.gone()),
        }
    }
}

/// A handle that does not keep the actor alive: the registry of open folders holds these.
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct WeakHandle {
    commands: channel::WeakSender<Queued>,
    shared: Arc<Shared>,
}

#[cfg(not(loom))]
impl WeakHandle {
    /// A live handle, if the actor is still serving.
    pub(crate) fn upgrade(&self) -> Option<Handle> {
        let commands = self.commands.upgrade()?;
        (self.shared.lifecycle() == Lifecycle::Serving).then(|| Handle {
            commands,
            shared: self.shared.clone(),
        })
    }

    /// Whether the actor has let go of its store.
    pub(crate) fn has_stopped(&self) -> bool {
        self.shared.has_stopped()
    }

    /// The counters, without keeping the actor alive (no commands queued once it has stopped).
    #[cfg(feature = "metrics")]
    pub(crate) fn stats(&self) -> RedbCacheStats {
        let queued = self.commands.upgrade().map_or(0, |c| c.queued());
        stats_of(&self.shared, queued)
    }

    /// Waits until the actor has let go of its store, at most `timeout`; whether it has.
    #[cfg(feature = "metrics")]
    pub(crate) fn wait_until_stopped_for(&self, timeout: std::time::Duration) -> bool {
        self.shared.wait_until_stopped_for(timeout)
    }

    /// Something to wait on, without holding this handle, until the actor has let go.
    pub(crate) fn stop_signal(&self) -> StopSignal {
        StopSignal(self.shared.clone())
    }
}

/// Waits for an actor to release its store.
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct StopSignal(Arc<Shared>);

#[cfg(not(loom))]
impl StopSignal {
    /// Blocks until the actor has released its store.
    pub(crate) fn wait(&self) {
        self.0.wait_until_stopped();
    }
}
