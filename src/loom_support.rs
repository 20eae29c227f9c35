//! Entry points for the loom models in `loom-tests/` (compiled only with `--cfg loom`).
//!
//! [`LoomCache`] is the production [`Handle`](crate::actor::Handle) and actor, running over a
//! [`MemStore`] instead of redb. Values are raw bytes: CBOR plays no part in the protocol.

use crate::actor::{self, ActorConfig, BatchLimits, Command, Fetched, Handle, Pending, PutValue};
use crate::cache::{FillOutcome, FillToken};
use crate::error::Result;
use crate::sync::thread;

pub use crate::store::mem_store::{MemStore, MemStoreProbe};

/// A handle to an actor over a [`MemStore`].
#[derive(Clone, Debug)]
pub struct LoomCache {
    handle: Handle,
}

/// The actor's thread, to check that it exits.
#[derive(Debug)]
pub struct ActorThread(thread::JoinHandle<()>);

impl ActorThread {
    /// Waits for the actor to exit.
    pub fn join(self) {
        self.0.join().expect("the actor thread panicked");
    }
}

/// A command queued with [`LoomCache::submit_put`], whose answer is awaited later.
#[derive(Debug)]
pub struct QueuedPut(Pending<()>);

impl QueuedPut {
    /// The put's acknowledgement (or error).
    pub async fn wait(self) -> Result<()> {
        self.0.wait().await
    }
}

/// Starts an actor over a fresh in-memory store.
pub fn spawn(capacity: usize, max_batch_ops: usize) -> (LoomCache, MemStoreProbe, ActorThread) {
    spawn_with(capacity, max_batch_ops, None)
}

/// What an entry with a 1-byte key and a 1-byte value is charged against a byte budget.
pub fn one_entry_bytes() -> u64 {
    crate::store::entry_size("k", 1)
}

/// Starts an actor over a fresh in-memory store that evicts beyond `max_bytes` (charged as
/// [`one_entry_bytes`] per entry of a 1-byte key and value).
pub fn spawn_bounded(
    capacity: usize,
    max_batch_ops: usize,
    max_bytes: u64,
) -> (LoomCache, MemStoreProbe, ActorThread) {
    spawn_with(capacity, max_batch_ops, Some(max_bytes))
}

/// Starts an actor in lazy mode: puts are acknowledged once queued in a write buffer of
/// `write_buffer_bytes` (each entry of a 1-byte key and value takes [`one_entry_bytes`]).
/// Loom has no clock, so no checkpoint falls due by time: `flush` and `close` make them.
pub fn spawn_lazy(
    capacity: usize,
    max_batch_ops: usize,
    write_buffer_bytes: u64,
) -> (LoomCache, MemStoreProbe, ActorThread) {
    let mut config = config(capacity, max_batch_ops, None);
    config.durability = crate::Durability::Lazy {
        max_delay: std::time::Duration::from_secs(3600),
    };
    config.write_buffer_bytes = write_buffer_bytes;
    start(config)
}

fn spawn_with(
    capacity: usize,
    max_batch_ops: usize,
    max_bytes: Option<u64>,
) -> (LoomCache, MemStoreProbe, ActorThread) {
    start(config(capacity, max_batch_ops, max_bytes))
}

fn start(config: ActorConfig) -> (LoomCache, MemStoreProbe, ActorThread) {
    let (store, probe) = MemStore::new();
    let (handle, thread) = actor::spawn(config, store).expect("valid loom config");
    (LoomCache { handle }, probe, ActorThread(thread))
}

fn config(capacity: usize, max_batch_ops: usize, max_bytes: Option<u64>) -> ActorConfig {
    let mut config = ActorConfig::new("<loom>");
    config.max_bytes = max_bytes;
    config.capacity = capacity;
    config.batch = BatchLimits {
        max_ops: max_batch_ops,
        ..BatchLimits::default()
    };
    config
}

impl LoomCache {
    /// The value under `key`. As `RedbCache::get` does after decoding, a value read with a
    /// ticket is offered to the hot tier (here the bytes are the "decoded" value).
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match self.handle.get(key).await? {
            Fetched::Hot(value) => Ok(Some(value)),
            Fetched::Buffered(value) => Ok(Some(value)),
            Fetched::Stored { bytes, ticket } => {
                if let (Some(value), Some(ticket)) = (&bytes, ticket) {
                    self.handle
                        .keep_hot(key, value.clone(), value.len(), ticket);
                }
                Ok(bytes)
            }
        }
    }

    /// How many gets were answered from the hot tier so far.
    pub fn hot_hits(&self) -> u64 {
        self.handle.stats().hot_hits
    }

    /// Returns once everything acknowledged before is durable; reports lazy puts lost since
    /// the last flush.
    pub async fn flush(&self) -> Result<()> {
        self.handle.flush().await
    }

    /// Lazy puts acknowledged and then lost, so far.
    pub fn lazy_writes_lost(&self) -> u64 {
        self.handle.stats().lazy_writes_lost
    }

    /// Stores `value` under `key`; returns after the commit (in lazy mode: once queued).
    pub async fn put(&self, key: &str, value: &[u8]) -> Result<()> {
        self.handle.put(key, bytes(value), 0).await
    }

    /// Queues a put and returns without waiting for its acknowledgement.
    pub async fn submit_put(&self, key: &str, value: &[u8]) -> Result<QueuedPut> {
        let (key, value) = (self.handle.track_key(key), bytes(value));
        let pending = self
            .handle
            .submit(|reply| Command::put(key, value, 0, reply))
            .await?;
        Ok(QueuedPut(pending))
    }

    /// Removes every key starting with `prefix`.
    pub async fn invalidate_prefix(&self, prefix: &str) -> Result<()> {
        self.handle.invalidate_prefix(prefix).await
    }

    /// A stale-fill token.
    pub async fn fill_token(&self) -> Result<FillToken> {
        self.handle.fill_token().await
    }

    /// A conditional put.
    pub async fn fill(&self, key: &str, value: &[u8], token: FillToken) -> Result<FillOutcome> {
        self.handle.fill(key, bytes(value), 0, token).await
    }

    /// Closes the store.
    pub async fn close(&self) -> Result<()> {
        self.handle.close().await
    }

    /// How many gets were answered beside the actor so far.
    pub fn snapshot_gets(&self) -> u64 {
        self.handle.stats().snapshot_gets
    }
}

/// A value as the actor takes it: under loom, bytes that are their own encoding.
fn bytes(value: &[u8]) -> PutValue {
    PutValue::new(value.to_vec(), value.len())
}
