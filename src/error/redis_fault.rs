//! What went wrong talking to Redis: which server, which namespace, which operation and key, and
//! why. Carried by [`Error::Redis`](crate::Error::Redis).

use std::fmt;
use std::sync::Arc;

/// A failed Redis call, with the context a person needs to act on it.
///
/// `server` is `host:port` (or the socket path), never the URL: a URL may carry a password.
#[derive(Clone, Debug)]
pub struct RedisFault {
    /// The server, as `host:port`.
    pub server: String,
    /// The vlive namespace on that server.
    pub namespace: String,
    /// What was being done: `"connect"`, `"get"`, `"put"`, `"invalidate_prefix"`, …
    pub op: &'static str,
    /// The key (or prefix) of the operation, if it had one.
    pub key: Option<String>,
    /// Why it failed.
    pub kind: RedisFaultKind,
}

/// Why a Redis call failed.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum RedisFaultKind {
    /// The server is over `maxmemory` (policy `noeviction`) and refused the write before running
    /// it: nothing was changed. Invalidations are never refused this way.
    OutOfMemory,
    /// No answer within the configured response or connect timeout. The outcome of a write is
    /// unknown: it may still be applied later by the server.
    Timeout,
    /// The connection could not be made or was lost. The outcome of a write is unknown. The next
    /// call reconnects.
    Connection(Arc<redis::RedisError>),
    /// The server answered with an error.
    Reply(Arc<redis::RedisError>),
    /// The server's version or configuration cannot keep the cache contract (checked at connect).
    Unsupported(String),
    /// A stored value could not be decoded. Only this key is affected.
    Corrupt(String),
    /// The TLS handshake failed: most often the server's certificate did not verify (an
    /// unknown issuer: see `RedisCacheBuilder::tls_ca_pem`; a name that does not match the
    /// URL's host; an expired certificate), or the server wanted a client certificate. Nothing
    /// was sent in plain text.
    Tls(Arc<redis::RedisError>),
    /// The namespace does not exist on the server (nothing was ever written to it), and the
    /// client was told to use an existing one only
    /// (`RedisCacheBuilder::existing_namespace`).
    NoNamespace,
    /// An invalidation was applied on the primary, but fewer replicas than
    /// `RedisCacheBuilder::wait_replicas` asks for confirmed it within its timeout: a failover
    /// now could lose it. It is kept for a replay, as any invalidation whose outcome is unknown.
    NotReplicated {
        /// How many replicas confirmed it.
        confirmed: u32,
        /// How many were asked for.
        wanted: u32,
    },
}

impl RedisFaultKind {
    /// Sorts a client error into the kinds above.
    pub(crate) fn of(error: redis::RedisError) -> Self {
        if error.code() == Some("OOM") {
            RedisFaultKind::OutOfMemory
        } else if error.is_timeout() {
            RedisFaultKind::Timeout
        } else if is_tls_failure(&error) {
            RedisFaultKind::Tls(Arc::new(error))
        } else if is_connection_level(&error) {
            RedisFaultKind::Connection(Arc::new(error))
        } else {
            RedisFaultKind::Reply(Arc::new(error))
        }
    }
}

/// Whether a rustls error is among `error`'s causes. Two wrappers hide what they wrap from
/// `source()`, which skips to the wrapped error's own source: the `Arc` the redis crate keeps
/// its cause in, and the `io::Error` tokio-rustls reports a handshake failure as. Both are
/// unwrapped by hand.
fn is_tls_failure(error: &redis::RedisError) -> bool {
    type Shared = Arc<dyn std::error::Error + Send + Sync>;
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if e.is::<rustls::Error>() {
            return true;
        }
        cause = if let Some(shared) = e.downcast_ref::<Shared>() {
            Some(shared.as_ref())
        } else if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner)
        } else {
            e.source()
        };
    }
    false
}

/// Whether `error` means the connection is no good any more (so it must be replaced).
pub(crate) fn is_connection_level(error: &redis::RedisError) -> bool {
    error.is_timeout()
        || error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_unrecoverable_error()
}

impl fmt::Display for RedisFaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedisFaultKind::OutOfMemory => {
                write!(f, "server out of memory (maxmemory); nothing was written")
            }
            RedisFaultKind::Timeout => write!(f, "timed out; the outcome of a write is unknown"),
            RedisFaultKind::Connection(e) => write!(f, "connection failed: {e}"),
            RedisFaultKind::Reply(e) => write!(f, "server error: {e}"),
            RedisFaultKind::Unsupported(reason) => write!(f, "unsupported server: {reason}"),
            RedisFaultKind::Corrupt(reason) => write!(f, "corrupt value: {reason}"),
            RedisFaultKind::Tls(e) => write!(f, "TLS handshake failed: {e}"),
            RedisFaultKind::NoNamespace => write!(f, "no such namespace on the server"),
            RedisFaultKind::NotReplicated { confirmed, wanted } => write!(
                f,
                "applied on the primary but confirmed by {confirmed} of the {wanted} replicas \
                 asked for in time; a failover could lose it"
            ),
        }
    }
}

impl fmt::Display for RedisFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "redis {} namespace {:?}: {}",
            self.server, self.namespace, self.op
        )?;
        if let Some(key) = &self.key {
            write!(f, " {key:?}")?;
        }
        write!(f, " failed: {}", self.kind)
    }
}

impl std::error::Error for RedisFault {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            RedisFaultKind::Connection(e) | RedisFaultKind::Reply(e) | RedisFaultKind::Tls(e) => {
                Some(e.as_ref())
            }
            _ => None,
        }
    }
}
