//! State shared by the handles and the actor: its lifecycle, its counters, the snapshot for
//! gets, and the receiver it leaves behind when it stops.

use std::path::PathBuf;

use super::access::AccessBits;
use super::command::Command;
use super::config::ActorConfig;
use super::read_beside::ReadBeside;
use super::stats::Counters;
use crate::error::Error;
use crate::store::damage::DamageLog;
use crate::sync::{Arc, Condvar, Mutex, Received, channel};

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
    retired: Mutex<Option<channel::Receiver<Command>>>,
    /// Gets answered on the caller's thread when no write in flight affects them.
    pub(crate) beside: ReadBeside,
    /// The byte budget; with it, the access bits gets set for eviction.
    pub(crate) max_bytes: Option<u64>,
    pub(crate) access: Option<AccessBits>,
    pub(crate) time_to_live: Option<std::time::Duration>,
    /// Damaged values found by reads on any thread, for the actor to remove; resets counted.
    pub(crate) damage: Arc<DamageLog>,
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
            beside: ReadBeside::new(hot_bytes),
        }
    }

    pub(crate) fn lifecycle(&self) -> Lifecycle {
        *self.lifecycle.lock()
    }

    pub(crate) fn set_lifecycle(&self, next: Lifecycle) {
        *self.lifecycle.lock() = next;
        self.lifecycle_changed.notify_all();
    }

    /// `Serving` → `Closing`; any later state stays.
    pub(crate) fn begin_closing(&self) {
        let mut state = self.lifecycle.lock();
        if *state == Lifecycle::Serving {
            *state = Lifecycle::Closing;
        }
    }

    /// Whether the actor has let go of its store (for good).
    pub(crate) fn has_stopped(&self) -> bool {
        matches!(self.lifecycle(), Lifecycle::Released | Lifecycle::Panicked)
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
    pub(crate) fn retire(&self, commands: channel::Receiver<Command>) {
        *self.retired.lock() = Some(commands);
        self.refuse_leftovers();
    }

    /// Refuses every command still queued for a stopped actor.
    pub(crate) fn refuse_leftovers(&self) {
        let retired = self.retired.lock();
        if let Some(commands) = retired.as_ref() {
            while let Received::Message(command) = commands.try_recv() {
                command.reject(self.gone());
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
