//! The one error type of the crate.
//!
//! Every variant carries the context a person needs to act on it: which folder, which key, which
//! operation. Errors are cheap to clone (sources sit behind `Arc`) because one failed commit must
//! reach every caller of its batch.
//!
//! `Display` says what vlive was doing; the underlying error is reached through
//! [`source`](std::error::Error::source), never repeated in the message, so error reporters that
//! walk the chain (anyhow, eyre, tracing) print each cause once.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

#[cfg(feature = "redis")]
mod redis_fault;
#[cfg(feature = "redis")]
pub(crate) use redis_fault::is_connection_level;
#[cfg(feature = "redis")]
pub use redis_fault::{RedisFault, RedisFaultKind};
use std::time::Duration;

/// The result type of every fallible vlive operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in vlive.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Error {
    /// Another process holds the cache folder open (redb locks the file).
    AlreadyOpen {
        /// The folder that was asked for.
        folder: PathBuf,
    },
    /// The cache was closed with [`RedbCache::close`](crate::RedbCache::close), or its actor
    /// has shut down; no further operation is possible on this handle.
    Closed,
    /// The actor thread panicked. Pending and later operations on its handles fail with this.
    ActorPanicked {
        /// The folder the actor served.
        folder: PathBuf,
    },
    /// Lazy mode: puts acknowledged since the last checkpoint were lost to an I/O error. The
    /// cache was cleared, so no older value can resurface; reported once, by `flush` or `close`.
    LazyWritesLost {
        /// The folder of the cache.
        folder: PathBuf,
    },
    /// The cache file is damaged (redb found it corrupted, or panicked reading it).
    ///
    /// A running cache never stays on a damaged file: it moves it aside
    /// (`vlive.redb.damaged-<unix-ms>`), starts afresh with an empty one and goes on serving; the
    /// writes of the batch that found the damage fail with this error (their outcome is
    /// unknown: the new file does not hold them), its gets are misses. `open` returns it only
    /// when asked to ([`OnDamage::Fail`](crate::OnDamage::Fail)), leaving the file as it is.
    Damaged {
        /// The cache folder.
        folder: PathBuf,
        /// What was found.
        reason: String,
    },
    /// The cache file was not closed cleanly and needs the repair that only an owner's open
    /// runs ([`RedbCache::open`](crate::RedbCache::open)); a read-only look
    /// ([`CacheFile::open`](crate::inspect::CacheFile::open)) never writes, so it refuses.
    NeedsRecovery {
        /// The cache folder.
        folder: PathBuf,
    },
    /// The cache file has another format version than this vlive reads (`None`: it records
    /// none, as a file never opened by a cache). An owner's open would reset it; a read-only
    /// look refuses rather than misread it.
    UnknownFormat {
        /// The cache folder.
        folder: PathBuf,
        /// The version the file records.
        found: Option<u64>,
    },
    /// One entry's stored value failed its checksum or would not decode (a read-only look,
    /// [`CacheFile::read`](crate::inspect::CacheFile::read)). A cache answers such an entry as
    /// a miss and removes it.
    DamagedEntry {
        /// The cache folder.
        folder: PathBuf,
        /// The entry's key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The disk under the cache folder is full (or below the cache's free-space reserve): the
    /// put was refused, or its commit failed. Gets go on answering from what is stored;
    /// writes resume by themselves once there is space again.
    DiskFull {
        /// The cache folder.
        folder: PathBuf,
        /// What was being done: `"put"`, `"commit"`, …
        op: &'static str,
    },
    /// A value could not be encoded to CBOR.
    Encode {
        /// The key being written.
        key: String,
        /// What the encoder said.
        reason: String,
    },
    /// A `put` or `fill` was refused because the value, read back, would be refused: storing it
    /// would only turn every later get of the key into an error. Nothing was stored; the key
    /// keeps what it held before. Every backend refuses the same values.
    ValueRefused {
        /// The key being written.
        key: String,
        /// Which limit the value breaks, and where.
        reason: Refusal,
    },
    /// The file `vlive.redb` exists but is not a redb database. It is left untouched.
    NotADatabase {
        /// The file that was found.
        path: PathBuf,
        /// What redb said about it.
        source: Arc<redb::DatabaseError>,
    },
    /// The storage engine (redb) failed.
    Storage {
        /// The folder of the cache.
        folder: PathBuf,
        /// What was being done: `"open"`, `"commit"`, `"get"`, …
        op: &'static str,
        /// The storage engine's error.
        source: Arc<redb::Error>,
    },
    /// A filesystem operation on the cache folder failed.
    Io {
        /// The folder (or file) involved.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The operating system's error.
        source: Arc<std::io::Error>,
    },
    /// A value larger than a `RedisCache`'s `max_value_bytes`, refused before anything was sent:
    /// one command carrying it would hold the server, and every other client of it, for as long
    /// as the server takes to read and store it.
    ValueTooLarge {
        /// The key being written.
        key: String,
        /// The value's CBOR encoding, in bytes.
        bytes: u64,
        /// The cache's limit.
        max_value_bytes: u64,
    },
    /// An entry whose key and value alone exceed the cache's `max_bytes`: it could never be
    /// stored within the budget, so it is refused (and nothing is evicted for it).
    EntryTooLarge {
        /// The key being written.
        key: String,
        /// What it would be charged against the budget: its key and CBOR-encoded value as the
        /// file lays them out.
        bytes: u64,
        /// The cache's budget.
        max_bytes: u64,
    },
    /// A configuration value is out of range.
    InvalidConfig {
        /// What is wrong with it.
        reason: String,
    },
    /// An argument of a call is out of range (a page number of 0, …).
    InvalidArgument {
        /// What is wrong with it.
        reason: String,
    },
    /// A [`LiveTable`](crate::LiveTable)'s write worker is gone (its Tokio runtime is shutting
    /// down); the write was not applied.
    WriteWorkerGone {
        /// The table's cache key.
        cache_key: String,
    },
    /// A [`LiveTable`](crate::LiveTable)'s call to its master (or write target) gave no answer
    /// within the table's [`master_timeout`](crate::LiveTableBuilder::master_timeout), and was
    /// abandoned (its future dropped).
    ///
    /// - From a read: nothing was cached, and every caller waiting on that master read got this
    ///   error; the next read asks the master again.
    /// - From a write: **the outcome at the master is unknown**. The master may have applied the
    ///   write, and a remote one may still apply it after this error. The table invalidated its
    ///   cache key all the same before answering, so no entry from before the write is served
    ///   (if that invalidation failed too, the cache keeps stale entries from being served, as
    ///   for [`Error::WriteAppliedInvalidationFailed`]). A write that lands at a remote master
    ///   only later than that can leave entries read in between stale until the next
    ///   invalidation or `max_age`. Read the row back before retrying the write.
    MasterTimeout {
        /// The table's cache key.
        cache_key: String,
        /// The call: `"list"`, `"get"`, `"insert"`, `"replace"`, `"patch"`, `"delete"` or
        /// `"delete_all"`.
        op: &'static str,
        /// How long the table waited (its `master_timeout`).
        after: Duration,
    },
    /// A [`LiveTable`](crate::LiveTable) write **was applied** at the master (or write target),
    /// but invalidating the table's cache key afterwards failed; `source` is the cache's error.
    /// Do not retry the write as if it had failed: it happened.
    ///
    /// Nothing the write replaced is served afterwards: the cache takes care of that.
    /// [`RedbCache`](crate::RedbCache) resets itself when an invalidation cannot commit;
    /// `RedisCache` and `TieredCache` remember the failed invalidation and replay it before they
    /// next read or write an entry, answering a miss for the entries it covers while the replay
    /// fails (and `TieredCache` drops its near tier); [`MemCache`](crate::MemCache) and
    /// [`NoCache`](crate::NoCache) never fail.
    WriteAppliedInvalidationFailed {
        /// The table's cache key.
        cache_key: String,
        /// The write: `"insert"`, `"replace"`, `"patch"`, `"delete"` or `"delete_all"`.
        op: &'static str,
        /// Why the invalidation failed.
        source: Box<Error>,
    },
    /// [`LiveTableBuilder::build`](crate::LiveTableBuilder::build) was called outside a Tokio
    /// runtime for a table with live streams, whose consumers are Tokio tasks.
    NoRuntime {
        /// The table's cache key.
        cache_key: String,
    },
    /// A typed row (feature `serde`) did not fit: a record could not be read as the type asked
    /// for, or a value did not serialize to a record. Nothing was read or written.
    ///
    /// Displays as ``row 7, field `address.city`: expected text, found integer``. Messages say
    /// what kind of value was found, never the value itself (rows may hold secrets).
    RowShape {
        /// The row id, when known (the LiveTable typed calls and `from_rows` know it).
        row: Option<String>,
        /// Where in the row: `address.city`, `tags[2]`, `scores[7]` (a map's integer key);
        /// empty for the row as a whole.
        field: String,
        /// What was wrong: `expected text, found integer`, `missing field`, …
        reason: String,
    },
    /// A bug in vlive: a state that should be impossible. Please report it.
    Internal {
        /// What went wrong.
        what: &'static str,
    },
    /// The master (the table a [`LiveTable`](crate::LiveTable) caches) failed.
    Master(Arc<dyn std::error::Error + Send + Sync>),
    /// A Redis call failed: which server, namespace, operation and key, and why.
    #[cfg(feature = "redis")]
    Redis(RedisFault),
}

/// Why a value was refused at `put` or `fill` ([`Error::ValueRefused`]): a limit of the decoder
/// that reads values back.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// A field value nests arrays, maps and tags (each one level) deeper than `max_depth`, the
    /// decoder's recursion limit less the three levels the stored form itself uses.
    TooDeep {
        /// The row id.
        row: String,
        /// The field name.
        field: String,
        /// The deepest nesting a field value may have.
        max_depth: usize,
    },
    /// A negative bignum (CBOR tag 3 over a byte string of at most 16 bytes) below `i128::MIN`,
    /// which the decoder cannot represent.
    BignumOutOfRange {
        /// The row id.
        row: String,
        /// The field name.
        field: String,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::TooDeep {
                row,
                field,
                max_depth,
            } => write!(
                f,
                "row {row:?}, field {field:?}: arrays, maps and tags nested deeper than \
                 {max_depth} levels"
            ),
            Refusal::BignumOutOfRange { row, field } => {
                write!(
                    f,
                    "row {row:?}, field {field:?}: a negative bignum below i128::MIN"
                )
            }
        }
    }
}

impl Error {
    /// Wraps any error of a master implementation.
    pub fn master(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Master(Arc::new(source))
    }

    pub(crate) fn storage(
        folder: impl Into<PathBuf>,
        op: &'static str,
        source: impl Into<redb::Error>,
    ) -> Self {
        Error::Storage {
            folder: folder.into(),
            op,
            source: Arc::new(source.into()),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, op: &'static str, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            op,
            source: Arc::new(source),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::AlreadyOpen { folder } => write!(
                f,
                "cache folder {} is already open in another process",
                folder.display()
            ),
            Error::Closed => write!(f, "the cache is closed"),
            Error::ActorPanicked { folder } => write!(
                f,
                "the cache actor for {} panicked; reopen the cache",
                folder.display()
            ),
            Error::LazyWritesLost { folder } => write!(
                f,
                "cache {}: writes not yet checkpointed (lazy durability) were lost to an I/O \
                 error; the cache was cleared",
                folder.display()
            ),
            Error::Damaged { folder, reason } => {
                write!(f, "cache file in {} is damaged: {reason}", folder.display())
            }
            Error::NeedsRecovery { folder } => write!(
                f,
                "cache file in {} was not closed cleanly and needs a repair; opening it with \
                 RedbCache::open repairs it",
                folder.display()
            ),
            Error::UnknownFormat { folder, found } => match found {
                Some(found) => write!(
                    f,
                    "cache file in {} has format version {found}, which this vlive does not read",
                    folder.display()
                ),
                None => write!(
                    f,
                    "cache file in {} records no format version (never prepared by a cache)",
                    folder.display()
                ),
            },
            Error::DamagedEntry {
                folder,
                key,
                reason,
            } => write!(
                f,
                "cache {}: entry {key:?} is damaged: {reason}",
                folder.display()
            ),
            Error::DiskFull { folder, op } => write!(
                f,
                "cache {}: {op} refused, the disk is full (or below the cache's free-space \
                 reserve)",
                folder.display()
            ),
            Error::Encode { key, reason } => {
                write!(f, "cannot encode the value for key {key:?}: {reason}")
            }
            Error::ValueRefused { key, reason } => write!(
                f,
                "refused to store key {key:?}, which could not be read back: {reason}"
            ),
            Error::NotADatabase { path, .. } => write!(
                f,
                "{} is not a vlive cache database (left untouched)",
                path.display()
            ),
            Error::Storage { folder, op, .. } => {
                write!(f, "cache {}: {op} failed", folder.display())
            }
            Error::Io { path, op, .. } => write!(f, "{}: {op} failed", path.display()),
            Error::ValueTooLarge {
                key,
                bytes,
                max_value_bytes,
            } => write!(
                f,
                "value of {key:?} is {bytes} bytes encoded, more than the cache's \
                 max_value_bytes of {max_value_bytes}"
            ),
            Error::EntryTooLarge {
                key,
                bytes,
                max_bytes,
            } => write!(
                f,
                "entry {key:?} is {bytes} bytes, more than the cache's max_bytes of {max_bytes}"
            ),
            Error::InvalidConfig { reason } => write!(f, "invalid cache configuration: {reason}"),
            Error::InvalidArgument { reason } => write!(f, "invalid argument: {reason}"),
            Error::WriteWorkerGone { cache_key } => write!(
                f,
                "LiveTable {cache_key:?}: its write worker is gone (the runtime is shutting down)"
            ),
            Error::MasterTimeout {
                cache_key,
                op,
                after,
            } => write!(
                f,
                "LiveTable {cache_key:?}: the master gave no answer to {op} within {after:?} \
                 (for a write, whether the master applied it is unknown)"
            ),
            Error::WriteAppliedInvalidationFailed { cache_key, op, .. } => write!(
                f,
                "LiveTable {cache_key:?}: the {op} was applied at the master, but invalidating \
                 the cache afterwards failed (do not retry the write)"
            ),
            Error::NoRuntime { cache_key } => write!(
                f,
                "LiveTable {cache_key:?}: listening to live streams needs a Tokio runtime, and \
                 the table was built outside one"
            ),
            Error::RowShape { row, field, reason } => {
                if let Some(row) = row {
                    write!(f, "row {row}")?;
                    if !field.is_empty() {
                        write!(f, ", ")?;
                    }
                }
                if !field.is_empty() {
                    write!(f, "field `{field}`")?;
                }
                if row.is_some() || !field.is_empty() {
                    write!(f, ": ")?;
                }
                write!(f, "{reason}")
            }
            Error::Internal { what } => {
                write!(
                    f,
                    "internal error in vlive (a bug, please report it): {what}"
                )
            }
            Error::Master(_) => write!(f, "the master failed"),
            #[cfg(feature = "redis")]
            Error::Redis(fault) => fault.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::NotADatabase { source, .. } => Some(source.as_ref()),
            Error::Storage { source, .. } => Some(source.as_ref()),
            Error::Io { source, .. } => Some(source.as_ref()),
            Error::Master(source) => Some(source.as_ref()),
            Error::WriteAppliedInvalidationFailed { source, .. } => Some(source.as_ref()),
            #[cfg(feature = "redis")]
            Error::Redis(fault) => std::error::Error::source(fault),
            _ => None,
        }
    }
}

/// Displays an error with its chain of sources, `outer: inner: root`, for log lines (where
/// `Display` alone would drop the causes).
pub(crate) fn chain<'a>(error: &'a (dyn std::error::Error + 'static)) -> impl fmt::Display + 'a {
    struct Chain<'a>(&'a (dyn std::error::Error + 'static));
    impl fmt::Display for Chain<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{}", self.0)?;
            let mut cause = self.0.source();
            while let Some(inner) = cause {
                write!(f, ": {inner}")?;
                cause = inner.source();
            }
            Ok(())
        }
    }
    Chain(error)
}
