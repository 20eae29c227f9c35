//! What travels from a handle to the actor, and how the actor answers.

use super::hot::HotValue;
use super::read_beside::Tracked;
use crate::cache::{FillOutcome, FillToken};
use crate::error::{Error, Result};
use crate::store::pages_replaced;
use crate::sync::{Permit, oneshot};

/// A value on its way to the store, as the caller handed it over (decoded rows, which the
/// write buffer shares for gets), and the length of its encoding, which the caller measured,
/// validating it on the way. The actor encodes it as it applies the put.
///
/// Why the actor and not the caller: an encoded copy made in the caller's task is a fresh
/// allocation per put, freed later by the actor thread; with glibc's allocator that cross-thread
/// churn (heap growth, page faults, arena lock) cost a lazy put about three times what the rest
/// of it does (docs/DESIGN.md §2.1). Encoding on the actor reuses its own memory, and the
/// rows are shared, not copied.
#[derive(Clone, Debug)]
pub(crate) struct PutValue {
    value: HotValue,
    encoded_len: usize,
}

impl PutValue {
    /// `encoded_len` must be what [`encode`](Self::encode) writes (`codec::measure_entry`).
    pub(crate) fn new(value: HotValue, encoded_len: usize) -> Self {
        PutValue { value, encoded_len }
    }

    /// The value as the caller gave it.
    pub(crate) fn value(&self) -> &HotValue {
        &self.value
    }

    /// How many bytes its encoding takes.
    pub(crate) fn len(&self) -> usize {
        self.encoded_len
    }

    /// The stored bytes. Under loom the value is its own encoding.
    pub(crate) fn encode(&self, key: &str) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.encoded_len);
        #[cfg(not(loom))]
        {
            crate::codec::encode_into(&self.value, &mut out).map_err(|e| e.for_key(key))?;
            // A miscount would skew every byte budget silently; the tests run with this on.
            debug_assert_eq!(out.len(), self.encoded_len, "the caller's count of {key}");
        }
        #[cfg(loom)]
        {
            let _ = key;
            out.extend_from_slice(&self.value);
        }
        Ok(out)
    }
}

/// Where the actor sends one command's result.
pub(crate) type Reply<T> = oneshot::Sender<Result<T>>;

/// A command in the channel, with the slot it holds there (`None`: a lazy put, which the write
/// buffer bounds instead). The slot is given back when the actor takes the command out.
#[derive(Debug)]
pub(crate) struct Queued {
    command: Command,
    slot: Option<Permit>,
}

impl Queued {
    pub(crate) fn new(command: Command, slot: Option<Permit>) -> Self {
        Queued { command, slot }
    }

    /// The command, out of the channel: its slot is free again.
    pub(crate) fn take(self) -> Command {
        drop(self.slot);
        self.command
    }
}

/// One request. A put's value travels decoded and is encoded by the actor ([`PutValue`]).
/// A write's key or prefix is [`Tracked`] among the writes in flight (`read_beside`), and
/// settled as the write is answered.
#[derive(Debug)]
pub(crate) enum Command {
    Get {
        key: String,
        reply: Reply<Option<Vec<u8>>>,
    },
    /// In lazy mode the caller was answered when the put was queued (`key.was_acknowledged()`):
    /// its reply matters only if the actor stopped before taking it.
    Put {
        key: Tracked,
        value: PutValue,
        /// When the value's rows were fetched (ms since the Unix epoch), for expiry.
        fetched_ms: i64,
        reply: Reply<()>,
    },
    /// A put that is dropped if an invalidation covering `key` happened since `token`.
    Fill {
        key: Tracked,
        value: PutValue,
        fetched_ms: i64,
        token: FillToken,
        reply: Reply<FillOutcome>,
    },
    FillToken {
        reply: Reply<FillToken>,
    },
    /// An acknowledged lazy put that could not be stored (no room on the disk): its key is
    /// removed instead, so that no older value is served, and settles once that commits.
    Forget {
        key: Tracked,
    },
    Invalidate {
        prefix: Tracked,
        reply: Reply<()>,
    },
    /// Answered once everything before it is durable.
    Flush {
        reply: Reply<()>,
    },
    /// Ends the actor: commands queued before it are served, the store is closed, then it is
    /// answered.
    Close {
        reply: Reply<()>,
    },
    /// Test hook: makes the actor panic while it executes this command's batch.
    #[cfg(feature = "test-hooks")]
    Panic {
        reply: Reply<()>,
    },
}

/// The result of applying one command inside a batch, sent once the batch has committed.
#[derive(Debug)]
pub(crate) enum Answer {
    Value(Option<Vec<u8>>),
    Done,
    Filled(FillOutcome),
    Token(FillToken),
    /// This command alone failed; the rest of its batch went on.
    Failed(Error),
    /// An acknowledged lazy put failed alone: its key was removed in its place.
    Lost(Error),
}

impl Command {
    /// A put of `value`.
    pub(crate) fn put(key: Tracked, value: PutValue, fetched_ms: i64, reply: Reply<()>) -> Self {
        Command::Put {
            key,
            value,
            fetched_ms,
            reply,
        }
    }

    /// A fill of `value` under `token`.
    pub(crate) fn fill(
        key: Tracked,
        value: PutValue,
        fetched_ms: i64,
        token: FillToken,
        reply: Reply<FillOutcome>,
    ) -> Self {
        Command::Fill {
            key,
            value,
            fetched_ms,
            token,
            reply,
        }
    }

    /// The bytes this command adds to a batch (for the batch byte limit).
    pub(crate) fn payload_bytes(&self) -> usize {
        match self {
            Command::Get { key, .. } => key.len(),
            Command::Put { key, value, .. } | Command::Fill { key, value, .. } => {
                key.len() + value.len()
            }
            Command::Invalidate { prefix, .. } => prefix.len(),
            Command::Forget { key } => key.len(),
            _ => 0,
        }
    }

    /// The file space this command may leave allocated until the next durable commit
    /// ([`pages_replaced`]): lazy mode checkpoints by it.
    pub(crate) fn pages_replaced(&self) -> u64 {
        match self {
            Command::Put { key, value, .. } | Command::Fill { key, value, .. } => {
                pages_replaced(key, value.len())
            }
            _ => 0,
        }
    }

    /// Whether its caller was answered before the commit (a lazy put, or what became of one):
    /// if it cannot be stored, the loss is the actor's to report.
    pub(crate) fn was_acknowledged(&self) -> bool {
        match self {
            Command::Put { key, .. } => key.was_acknowledged(),
            Command::Forget { .. } => true,
            _ => false,
        }
    }

    /// The key an acknowledged lazy put would have stored, to remove if it is lost.
    pub(crate) fn acknowledged_key(&self) -> Option<&str> {
        self.was_acknowledged().then(|| match self {
            Command::Put { key, .. } | Command::Forget { key } => key.as_str(),
            _ => "",
        })
    }

    /// Whether this command changes the store.
    pub(crate) fn writes(&self) -> bool {
        matches!(
            self,
            Command::Put { .. }
                | Command::Fill { .. }
                | Command::Invalidate { .. }
                | Command::Forget { .. }
        )
    }

    /// Whether this command's batch must commit durably even in lazy mode.
    pub(crate) fn needs_durable_commit(&self) -> bool {
        matches!(self, Command::Invalidate { .. } | Command::Flush { .. })
    }

    /// What the command does, for error context.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Command::Get { .. } => "get",
            Command::Put { .. } => "put",
            Command::Fill { .. } => "fill",
            Command::FillToken { .. } => "fill_token",
            Command::Forget { .. } => "put",
            Command::Invalidate { .. } => "invalidate_prefix",
            Command::Flush { .. } => "flush",
            Command::Close { .. } => "close",
            #[cfg(feature = "test-hooks")]
            Command::Panic { .. } => "panic",
        }
    }

    /// Lets gets of the keys this write covers read beside the actor again. The actor answers
    /// a write only after its commit and the snapshot that shows it, so this runs just before
    /// the reply: the writer's next get already reads beside the actor.
    fn settle(&mut self) {
        match self {
            Command::Put { key, .. } | Command::Fill { key, .. } | Command::Forget { key } => {
                key.settle()
            }
            Command::Invalidate { prefix, .. } => prefix.settle(),
            _ => {}
        }
    }

    /// Sends the command's result.
    pub(crate) fn answer(mut self, answer: Answer) {
        // Without this the entry would go when the command drops, after the reply.
        self.settle();
        match (self, answer) {
            (Command::Get { reply, .. }, Answer::Value(value)) => reply.send(Ok(value)),
            (Command::Fill { reply, .. }, Answer::Filled(outcome)) => reply.send(Ok(outcome)),
            (Command::FillToken { reply }, Answer::Token(token)) => reply.send(Ok(token)),
            (Command::Forget { .. }, _) => {}
            (
                Command::Put { reply, .. }
                | Command::Invalidate { reply, .. }
                | Command::Flush { reply }
                | Command::Close { reply },
                Answer::Done,
            ) => reply.send(Ok(())),
            (command, Answer::Failed(error) | Answer::Lost(error)) => command.reject(error),
            (command, answer) => {
                // Unreachable by construction (`serve::apply` pairs them); answer with an error
                // rather than panic the actor.
                let _ = answer;
                command.reject(Error::Internal {
                    what: "the actor paired a command with another command's answer",
                })
            }
        }
    }

    /// Fails the command with `error`.
    pub(crate) fn reject(mut self, error: Error) {
        self.settle();
        match self {
            Command::Get { reply, .. } => reply.send(Err(error)),
            Command::Fill { reply, .. } => reply.send(Err(error)),
            Command::FillToken { reply } => reply.send(Err(error)),
            // Its caller was answered long ago; the actor counts the loss (`lost_writes`).
            Command::Forget { .. } => {}
            Command::Put { reply, .. }
            | Command::Invalidate { reply, .. }
            | Command::Flush { reply }
            | Command::Close { reply } => reply.send(Err(error)),
            #[cfg(feature = "test-hooks")]
            Command::Panic { reply } => reply.send(Err(error)),
        }
    }
}
