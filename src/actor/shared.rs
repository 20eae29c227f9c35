//! State shared by the handles and the actor: its lifecycle, its counters, the snapshot for
//! gets, and the receiver it leaves behind when it stops.

use std::path::PathBuf;

use super::access::AccessBits;
use super::command::Queued;
use super::config::ActorConfig;
use super::read_beside::ReadBeside;
use super::stats::Counters;
use crate::error::Error;
use crate::store::damage::DamageLog;
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::{Arc, Condvar, Mutex, Received, Semaphore, channel};

/// State shared by the handles and the actor.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) folder: PathBuf,
    pub(crate) counters: Counters,
    lifecycle: Mutex<Lifecycle>,
    lifecycle_changed: Condvar,
    /// The actor's receiver, once it has stopped. A command can slip into the channel after the
    /// actor's last look at it (flume keeps queued messages while any sender lives); its sender
    /// finds it here and answers it, instead of waiting forever.
    retired: Mutex<Option<channel::Receiver<Queued>>>,
    /// The channel's capacity: one permit per command waiting in it, lazy puts aside.
    pub(crate) slots: Semaphore,
    /// Lazy mode: puts are acknowledged when queued, and hold their bytes of this buffer until
    /// they settle.
    pub(crate) write_buffer: Option<WriteBuffer>,
    /// The free bytes above the reserve at the actor's last look (0 while short of space): a
    /// lazy put that would bring the write buffer's (doubled) bytes beyond it waits for its
    /// commit, which may refuse it, rather than be acknowledged and then lost.
    headroom: AtomicU64,
    /// Gets answered on the caller's thread when no write in flight affects them.
    pub(crate) beside: ReadBeside,
    /// The byte budget; with it, the access bits gets set for eviction.
    pub(crate) max_bytes: Option<u64>,
    pub(crate) access: Option<AccessBits>,
    pub(crate) time_to_live: Option<std::time::Duration>,
    /// Damaged values found by reads on any thread, for the actor to remove; resets counted.
    pub(crate) damage: Arc<DamageLog>,
    /// Batch sizes and commit times, under the cache's metrics name.
    #[cfg(all(feature = "metrics", not(loom)))]
    pub(crate) batch_histograms: crate::metrics::histograms::BatchHistograms,
}

/// The bytes lazy puts may hold between their acknowledgement and their commit.
#[derive(Debug)]
pub(crate) struct WriteBuffer {
    pub(crate) bytes: Semaphore,
}

impl WriteBuffer {
    /// The bytes held right now.
    pub(crate) fn held(&self) -> u64 {
        self.bytes.taken()
    }

    /// The most bytes it holds.
    pub(crate) fn capacity(&self) -> u32 {
        self.bytes.permits()
    }
}

/// Where the actor is in its life. Read by handles to explain a refusal, and by `open` to tell
/// whether an actor can be shared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lifecycle {
    Serving,
    /// A handle has sent `close`: serving what came before it, refusing new opens.
    Closing,
    /// The store is closed and its file released.
    Released,
    Panicked,
}

impl Shared {
    pub(crate) fn new(config: &ActorConfig, damage: Arc<DamageLog>) -> Self {
        let hot_bytes = config.hot_bytes;
        Shared {
            folder: config.folder.clone(),
            max_bytes: config.max_bytes,
            access: config.max_bytes.map(|_| AccessBits::new()),
            time_to_live: config.time_to_live,
            damage,
            counters: Counters::default(),
            lifecycle: Mutex::new(Lifecycle::Serving),
            lifecycle_changed: Condvar::new(),
            retired: Mutex::new(None),
            slots: Semaphore::new(u32::try_from(config.capacity).unwrap_or(u32::MAX)),
            write_buffer: config.acks_puts_when_queued().then(|| {
                // `validate` keeps it within u32.
                let capacity = u32::try_from(config.write_buffer_bytes).unwrap_or(u32::MAX);
                WriteBuffer {
                    bytes: Semaphore::new(capacity),
                }
            }),
            headroom: AtomicU64::new(u64::MAX),
            beside: ReadBeside::new(hot_bytes),
            #[cfg(all(feature = "metrics", not(loom)))]
            batch_histograms: crate::metrics::histograms::BatchHistograms::register(
                &config.metrics_name(),
            ),
        }
    }

    /// Whether the disk, at the actor's last look, had room for the write buffer's bytes
    /// plus `more` above its reserve, counting each buffered byte twice: a deferred commit's
    /// old pages stay allocated until the next checkpoint.
    pub(crate) fn has_headroom_for(&self, buffered: u64, more: u64) -> bool {
        let needed = buffered.saturating_add(more).saturating_mul(2);
        needed <= self.headroom.load(Ordering::Acquire)
    }

    pub(crate) fn set_headroom(&self, bytes: u64) {
        self.headroom.store(bytes, Ordering::Release);
    }

    /// Whether a caller waits for the actor: every command but a lazy put holds a slot from
    /// before it is sent until the actor takes it out of the channel.
    pub(crate) fn is_awaited(&self) -> bool {
        self.slots.taken() > 0
    }

    pub(crate) fn lifecycle(&self) -> Lifecycle {
        *self.lifecycle.lock()
    }

    /// Only ever to a state after `Serving`, so the write buffer stops answering gets too, and
    /// lazy puts queued from now on await their answer (see
    /// [`begin_closing`](Self::begin_closing)). That goes first: a lazy put that finds the
    /// registry still serving must be ahead of the actor's last look at the queue.
    pub(crate) fn set_lifecycle(&self, next: Lifecycle) {
        self.beside.stop_answering_from_buffer();
        *self.lifecycle.lock() = next;
        self.lifecycle_changed.notify_all();
    }

    /// `Serving` → `Closing`; any later state stays. From here on the write buffer answers no
    /// get (`ReadBeside::stop_answering_from_buffer`): a lazy put queued behind the `close` is
    /// refused, so its value must never be read; and a lazy put queued from here on awaits its
    /// answer. Called before the `close` is sent, so a put that found the registry serving is
    /// ahead of it.
    pub(crate) fn begin_closing(&self) {
        self.beside.stop_answering_from_buffer();
        let mut state = self.lifecycle.lock();
        if *state == Lifecycle::Serving {
            *state = Lifecycle::Closing;
        }
    }

    /// Whether the actor has let go of its store (for good).
    pub(crate) fn has_stopped(&self) -> bool {
        matches!(self.lifecycle(), Lifecycle::Released | Lifecycle::Panicked)
    }

    /// Blocks until the actor has let go of its store, or `timeout` has passed; whether it has.
    #[cfg(all(feature = "metrics", not(loom)))]
    pub(crate) fn wait_until_stopped_for(&self, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let mut state = self.lifecycle.lock();
        while matches!(*state, Lifecycle::Serving | Lifecycle::Closing) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self.lifecycle_changed.wait_timeout(state, left);
        }
        true
    }

    /// Blocks until the actor has let go of its store.
    #[cfg(not(loom))]
    pub(crate) fn wait_until_stopped(&self) {
        let mut state = self.lifecycle.lock();
        while matches!(*state, Lifecycle::Serving | Lifecycle::Closing) {
            state = self.lifecycle_changed.wait(state);
        }
    }

    /// Called by the actor as it exits (after setting a stopped lifecycle): keeps its receiver
    /// where late senders can reach it, and refuses what is queued.
    pub(crate) fn retire(&self, commands: channel::Receiver<Queued>) {
        *self.retired.lock() = Some(commands);
        self.refuse_leftovers();
    }

    /// Refuses every command still queued for a stopped actor.
    pub(crate) fn refuse_leftovers(&self) {
        let retired = self.retired.lock();
        if let Some(commands) = retired.as_ref() {
            while let Received::Message(queued) = commands.try_recv() {
                queued.take().reject(self.gone());
            }
        }
    }

    /// The error for a command the actor can no longer answer.
    pub(crate) fn gone(&self) -> Error {
        match self.lifecycle() {
            Lifecycle::Panicked => Error::ActorPanicked {
                folder: self.folder.clone(),
            },
            Lifecycle::Serving | Lifecycle::Closing | Lifecycle::Released => Error::Closed,
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_command_holding_a_slot_is_awaited_until_it_is_taken_out() {
        let mut config = ActorConfig::new("<test>");
        config.capacity = 4;
        let shared = Shared::new(&config, Arc::new(DamageLog::new("<test>".as_ref())));
        assert!(!shared.is_awaited(), "no command in the channel");
        let slot = shared.slots.acquire(1).await;
        assert!(shared.is_awaited(), "a sent command holds its slot");
        drop(slot);
        assert!(!shared.is_awaited(), "the actor took it out");
    }
}
