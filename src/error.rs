//! The one error type of the crate.
//!
//! Every variant carries the context a person needs to act on it: which folder, which key, which
//! operation. Errors are cheap to clone (sources sit behind `Arc`) because one failed commit must
//! reach every caller of its batch.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

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
    /// A stored value could not be decoded. Only this key is affected.
    Corrupt {
        /// The folder the value was read from.
        folder: PathBuf,
        /// The key whose value is unreadable.
        key: String,
        /// What the decoder said.
        reason: String,
    },
    /// A value could not be encoded to CBOR.
    Encode {
        /// The key being written.
        key: String,
        /// What the encoder said.
        reason: String,
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
    /// A configuration value is out of range.
    InvalidConfig {
        /// What is wrong with it.
        reason: String,
    },
    /// The master (the table a [`LiveTable`](crate::LiveTable) caches) failed.
    Master(Arc<dyn std::error::Error + Send + Sync>),
    /// A Redis call failed: which server, namespace, operation and key, and why.
    #[cfg(feature = "redis")]
    Redis(crate::redis_cache::RedisFault),
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
            Error::Corrupt {
                folder,
                key,
                reason,
            } => write!(
                f,
                "corrupt value for key {key:?} in cache {}: {reason}",
                folder.display()
            ),
            Error::Encode { key, reason } => {
                write!(f, "cannot encode the value for key {key:?}: {reason}")
            }
            Error::NotADatabase { path, source } => write!(
                f,
                "{} is not a vlive cache database (left untouched): {source}",
                path.display()
            ),
            Error::Storage { folder, op, source } => {
                write!(f, "cache {}: {op} failed: {source}", folder.display())
            }
            Error::Io { path, op, source } => {
                write!(f, "{}: {op} failed: {source}", path.display())
            }
            Error::InvalidConfig { reason } => write!(f, "invalid cache configuration: {reason}"),
            Error::Master(source) => write!(f, "master failed: {source}"),
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
            #[cfg(feature = "redis")]
            Error::Redis(fault) => std::error::Error::source(fault),
            _ => None,
        }
    }
}
