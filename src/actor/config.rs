//! How the actor forms batches and how durable their commits are.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};

/// When every acknowledged write is on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Durability {
    /// Every batch commits with an fsync: an acknowledged write survives a crash (even SIGKILL or
    /// power loss, as far as the disk honours fsync). The default.
    #[default]
    Immediate,
    /// A put is acknowledged as soon as it is queued in the write buffer (bounded in bytes:
    /// [`write_buffer_bytes`](crate::RedbCacheBuilder::write_buffer_bytes)), where every later
    /// get, on any clone, finds it; the actor commits it behind, in batches, without an fsync
    /// (while more puts keep coming it holds back, up to 20 ms or a quarter of `max_delay`,
    /// until a full batch is queued, a caller waits for it, the buffer is half full or a
    /// checkpoint falls due, so that a burst commits in full batches), and it becomes durable at
    /// the next checkpoint, which runs at least every `max_delay`, on
    /// every invalidation, on `flush` and on `close`. A full buffer makes puts wait. A crash may
    /// lose recent puts (a later miss), and so may a commit that fails (reported once by the
    /// next `flush` or `close` as [`Error::LazyWritesLost`], the lost keys then miss), but
    /// neither ever brings back an older value or an invalidated entry: invalidations are
    /// acknowledged only once committed durably.
    Lazy {
        /// How long a commit may stay non-durable: the checkpoint interval (a checkpoint that
        /// falls due runs with the next batch, or as soon as the actor is idle). A put commits
        /// after the puts queued before it (and at most one hold-back), so a put acknowledged
        /// into a full write buffer becomes durable about `max_delay` after the actor has
        /// worked through what was ahead of it.
        max_delay: Duration,
    },
}

/// What [`RedbCacheBuilder::open`](crate::RedbCacheBuilder::open) does with a cache file it
/// finds damaged (truncated, a bad header, or pages redb cannot read).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OnDamage {
    /// Move it aside (`vlive.redb.damaged-<unix-ms>`, the newest two kept) and start with an
    /// empty cache. The default: a cache is a copy of data that lives elsewhere.
    #[default]
    Reset,
    /// Fail `open` with [`Error::Damaged`], leaving the file as it is. Damage found later, while
    /// serving, is still moved aside: a running cache never stops serving.
    Fail,
}

/// Bounds on one batch (one write transaction).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchLimits {
    /// At most this many commands per batch.
    pub max_ops: usize,
    /// A batch stops growing once its keys and values add up to this many bytes.
    pub max_bytes: usize,
    /// If set, a batch holding a write waits up to this long (from when it starts gathering:
    /// after lazy mode's hold-back, if any) for more commands before committing. `None`: commit
    /// as soon as the queue is drained.
    pub linger: Option<Duration>,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            max_ops: 1024,
            max_bytes: 16 << 20,
            linger: None,
        }
    }
}

/// Everything the actor needs to know, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ActorConfig {
    /// Names the actor in errors and logs: the cache folder.
    pub(crate) folder: PathBuf,
    pub(crate) capacity: usize,
    pub(crate) batch: BatchLimits,
    pub(crate) durability: Durability,
    /// Evict beyond this many key + value bytes; `None`: unbounded.
    pub(crate) max_bytes: Option<u64>,
    /// Entries fetched longer ago than this are misses, and swept; `None`: they never expire.
    pub(crate) time_to_live: Option<Duration>,
    /// The hot tier's budget in bytes (encoded value + key); 0 turns it off.
    pub(crate) hot_bytes: u64,
    /// What `open` does with a damaged file.
    pub(crate) on_damage: OnDamage,
    /// Puts are refused while the disk has less free space than this, so that invalidations
    /// can still commit.
    pub(crate) disk_reserve: u64,
    /// Lazy mode: the bytes of puts acknowledged and not yet committed, at most.
    pub(crate) write_buffer_bytes: u64,
    /// The `cache` label of its metrics; `None`: the folder's name.
    #[cfg(feature = "metrics")]
    pub(crate) metrics_name: Option<String>,
}

/// The hot tier's default budget: enough for a working set of a few thousand pages, small next
/// to the process.
pub(crate) const DEFAULT_HOT_BYTES: u64 = 8 << 20;

/// The free-space reserve's default: room for many invalidation commits (each rewrites a few
/// pages), small next to any disk a cache lives on.
pub(crate) const DEFAULT_DISK_RESERVE: u64 = 16 << 20;

/// The lazy write buffer's default: a burst of about 16,000 puts of 3.4 KB values absorbed at
/// memory speed, small next to a service's memory.
pub(crate) const DEFAULT_WRITE_BUFFER_BYTES: u64 = 64 << 20;

impl ActorConfig {
    /// Whether puts are acknowledged once queued in the write buffer, before their commit.
    pub(crate) fn acks_puts_when_queued(&self) -> bool {
        matches!(self.durability, Durability::Lazy { .. })
    }

    pub(crate) fn new(folder: impl Into<PathBuf>) -> Self {
        ActorConfig {
            folder: folder.into(),
            capacity: 1024,
            batch: BatchLimits::default(),
            durability: Durability::Immediate,
            max_bytes: None,
            time_to_live: None,
            hot_bytes: DEFAULT_HOT_BYTES,
            on_damage: OnDamage::Reset,
            disk_reserve: DEFAULT_DISK_RESERVE,
            write_buffer_bytes: DEFAULT_WRITE_BUFFER_BYTES,
            #[cfg(feature = "metrics")]
            metrics_name: None,
        }
    }

    /// The `cache` label of its metrics: the name given, or the folder's name.
    #[cfg(all(feature = "metrics", not(loom)))]
    pub(crate) fn metrics_name(&self) -> String {
        self.metrics_name
            .clone()
            .unwrap_or_else(|| crate::metrics::folder_name(&self.folder))
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let invalid = |reason: &str| {
            Err(Error::InvalidConfig {
                reason: reason.to_owned(),
            })
        };
        if self.capacity == 0 {
            return invalid("channel capacity must be at least 1");
        }
        if self.write_buffer_bytes == 0 || self.write_buffer_bytes > u64::from(u32::MAX) {
            return invalid("write_buffer_bytes must be between 1 and 4 GiB - 1");
        }
        if self.batch.max_ops == 0 {
            return invalid("max_ops per batch must be at least 1");
        }
        if self.batch.max_bytes == 0 {
            return invalid("max_bytes per batch must be at least 1");
        }
        if self.max_bytes == Some(0) {
            return invalid("max_bytes must be at least 1");
        }
        if self.time_to_live.is_some_and(|ttl| ttl.is_zero()) {
            return invalid("time_to_live must be above zero");
        }
        if let Durability::Lazy { max_delay } = self.durability {
            if max_delay.is_zero() {
                return invalid("lazy durability needs a max_delay above zero");
            }
        }
        Ok(())
    }
}
