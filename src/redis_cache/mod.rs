//! `RedisCache`: the [`Cache`] contract on a Redis server, shared by many processes.
//!
//! ```text
//!  handle (Clone) ──▶ one multiplexed connection ──▶ Redis 7+
//!   get          HGET values key                      (one command)
//!   put          PUT script: HSET values, ZADD index, XADD log
//!   invalidate   INVALIDATE script: ZRANGEBYLEX [p, p..0xFF) → HDEL, ZREMRANGEBYLEX,
//!                bump epoch, remember prefix, XADD log          (allow-oom)
//!   fill_token   FILL_TOKEN script: (incarnation, epoch)
//!   fill         FILL script: compare token with the guard, then HSET + ZADD
//! ```
//!
//! Encoding and decoding (CBOR, [`crate::codec`]) run in the caller; Redis moves bytes.

mod builder;
mod keyspace;
mod link;
mod pending;
mod scripts;
mod tls;

use std::sync::Arc;

use async_trait::async_trait;
use redis::Script;
use redis::aio::MultiplexedConnection;
use tracing::{Instrument, debug, debug_span, info, warn};

pub use crate::error::{RedisFault, RedisFaultKind};
pub use builder::RedisCacheBuilder;
pub(crate) use keyspace::Keyspace;
use keyspace::fresh_incarnation;
use link::{Link, Timeouts};
use pending::{Pending, Unconfirmed};

use crate::cache::{Cache, FillOutcome, FillToken};
use crate::codec;
use crate::error::{Error, Result, chain};
use crate::rows::CachedRows;

/// A [`Cache`] on a Redis server (7.0 or later), shared by every process that connects to the
/// same server and namespace.
///
/// Clones share one multiplexed connection: concurrent calls are pipelined on one socket.
///
/// **The contract holds across processes.** `invalidate_prefix(p)` removes exactly the keys
/// that start with `p`, atomically, in one Lua script (no SCAN). The stale-fill guard is kept on
/// the server: a fill is rejected when any process invalidated a prefix of its key after its
/// token was taken, and every token from before a server restart without persistence, a
/// FLUSHALL or a flush of the namespace is stale (the namespace then starts a new
/// *incarnation*).
///
/// **What "acknowledged" means.** An `Ok` from `put` or `invalidate_prefix` means the primary
/// applied the write in memory; every later command from any client sees it. It survives a
/// server crash only as far as the server's persistence does. A total loss (restart without
/// persistence, FLUSHALL) is safe: the namespace starts a new incarnation, everything misses
/// and old tokens are stale. A *partial* loss is not safe: an older RDB snapshot, an `everysec`
/// AOF that lost its last second, or a failover to a lagging replica can bring back invalidated
/// values under the same incarnation. Supported setups: no persistence (recommended for a
/// cache), or `appendonly yes` with `appendfsync always`, on a single primary.
///
/// **Server settings.** `maxmemory-policy` must be `noeviction` or `volatile-*` (checked at
/// connect; vlive's keys carry no TTL, so neither ever evicts them). Under `noeviction`, when
/// the server is full, `put` and `fill` fail with [`RedisFaultKind::OutOfMemory`] and change
/// nothing, while `invalidate_prefix` still succeeds.
///
/// **Errors.** Every call is bounded by the response timeout, plus up to two connect timeouts
/// when it has to dial (it may wait for a dial already under way, then make its own). As with
/// every backend, an `Err` from a write means its outcome is unknown.
///
/// **A failed invalidation is replayed.** When `invalidate_prefix(p)` fails (or its caller
/// stops waiting for it), the handle and its clones remember `p`, and every later `get`, `put`,
/// `fill_token` and `fill` first runs the invalidation again. Until a replay succeeds, those
/// calls do not reach the server: a `get` of a key under `p` answers a miss (its entry may be
/// what the invalidation was to remove), and the other calls fail with the replay's error,
/// under their own operation and key. Other processes see the entries until the replay.
#[derive(Clone)]
pub struct RedisCache {
    inner: Arc<Inner>,
}

struct Inner {
    link: Link,
    keys: Keyspace,
    server: String,
    namespace: String,
    log_len: usize,
    remembered_prefixes: usize,
    /// The largest encoded value a put or fill sends.
    max_value_bytes: u64,
    /// The namespace's byte budget (`RedisCacheBuilder::max_bytes`).
    max_bytes: Option<u64>,
    /// Entries fetched longer ago than this are misses and are removed.
    time_to_live: Option<std::time::Duration>,
    /// A TRIM call is under way (started by a get that met an expired entry).
    trimming: std::sync::atomic::AtomicBool,
    /// With `wait_replicas`: the connection invalidations run on, and what they wait for.
    replicated: Option<(Link, ReplicaWait)>,
    timeouts: Timeouts,
    /// Invalidations whose outcome is unknown, to replay before the next call.
    pending: Pending,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache")
            .field("server", &self.inner.server)
            .field("namespace", &self.inner.namespace)
            .finish_non_exhaustive()
    }
}

/// Where a namespace's invalidation log stands: the incarnation, and the sequence number and
/// link id of the newest entry (`scripts::PRELUDE`'s `log`). Two heads with the same sequence
/// number but different links are different histories.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct LogHead {
    pub(crate) incarnation: Option<String>,
    /// 0 before the first entry.
    pub(crate) seq: u64,
    /// Empty before the first entry.
    pub(crate) link: String,
}

/// The reply of [`RedisCache::log_head_cmd`].
pub(crate) type LogHeadFields = (Option<String>, Option<u64>, Option<String>);

impl LogHead {
    pub(crate) fn from_fields((incarnation, seq, link): LogHeadFields) -> Self {
        LogHead {
            incarnation,
            seq: seq.unwrap_or(0),
            link: link.unwrap_or_default(),
        }
    }
}

/// A namespace's figures, from [`RedisCache::stats`]. The server keeps them, so every client
/// of the namespace sees the same; they restart from zero with a new incarnation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisCacheStats {
    /// Entries stored, expired ones not yet removed included.
    pub entries: u64,
    /// What the entries are charged against `max_bytes`: key and encoded value bytes. Redis'
    /// own overhead per entry (about 100 to 200 bytes across the keys that index it) comes on
    /// top.
    pub bytes: u64,
    /// Entries evicted to stay within `max_bytes`.
    pub evictions: u64,
    /// Entries removed past their time to live.
    pub expirations: u64,
    /// Prefix invalidations whose entries are hidden but not all deleted yet.
    pub sweeping_prefixes: u64,
}

/// What an invalidation waits for before it is acknowledged (`wait_replicas`).
#[derive(Clone, Copy, Debug)]
struct ReplicaWait {
    replicas: u32,
    timeout: std::time::Duration,
}

/// How many marks left by other clients one invalidation (or connect) sweeps at most.
const LEFTOVER_MARKS: usize = 16;

impl RedisCache {
    /// Connects to the server at `url` (`redis://[:password@]host:port[/db]`) and uses the
    /// keys of `namespace` there, with default settings. Fails with [`Error::Redis`] when the
    /// server is unreachable, older than 7.0, or has an unsupported `maxmemory-policy`.
    pub async fn connect(url: &str, namespace: &str) -> Result<RedisCache> {
        Self::builder(url, namespace).connect().await
    }

    /// Settings beyond the defaults: timeouts, log length, guard memory.
    pub fn builder(url: &str, namespace: &str) -> RedisCacheBuilder {
        RedisCacheBuilder::new(url, namespace)
    }

    /// The server, as `host:port`.
    pub fn server(&self) -> &str {
        &self.inner.server
    }

    /// The namespace this cache uses on the server.
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    pub(crate) fn keys(&self) -> &Keyspace {
        &self.inner.keys
    }

    /// A connection of its own, for a command that blocks for up to `block`.
    pub(crate) async fn dedicated_connection(
        &self,
        block: std::time::Duration,
    ) -> Result<MultiplexedConnection> {
        let response = block + self.inner.timeouts.response;
        self.inner
            .link
            .dedicated(response)
            .await
            .map_err(|e| self.fault("connect", None, RedisFaultKind::of(e)))
    }

    /// Where the namespace's invalidation log stands now.
    pub(crate) async fn log_head(&self) -> Result<LogHead> {
        let command = self.log_head_cmd();
        let fields = self
            .inner
            .link
            .run(|mut connection| async move { command.query_async(&mut connection).await })
            .await
            .map_err(|e| self.fault("log_head", None, RedisFaultKind::of(e)))?;
        Ok(LogHead::from_fields(fields))
    }

    /// The command that reads the log's head; its reply goes to [`LogHead::from_fields`].
    pub(crate) fn log_head_cmd(&self) -> redis::Cmd {
        let mut command = redis::cmd("HMGET");
        command
            .arg(&self.inner.keys.meta)
            .arg("inc")
            .arg("seq")
            .arg("link");
        command
    }

    pub(crate) fn fault(&self, op: &'static str, key: Option<&str>, kind: RedisFaultKind) -> Error {
        Error::Redis(RedisFault {
            server: self.inner.server.clone(),
            namespace: self.inner.namespace.clone(),
            op,
            key: key.map(str::to_owned),
            kind,
        })
    }

    /// Runs one script with the namespace's keys, the common arguments and `args`.
    async fn script<T: redis::FromRedisValue>(
        &self,
        op: &'static str,
        key: &str,
        script: &'static Script,
        args: &[&[u8]],
    ) -> Result<T> {
        let invocation = self.invocation(script, args);
        let span = debug_span!("redis_script", op);
        self.inner
            .link
            .run(|mut connection| async move { invocation.invoke_async(&mut connection).await })
            .instrument(span)
            .await
            .map_err(|e| self.fault(op, Some(key), RedisFaultKind::of(e)))
    }

    /// `script` with the namespace's keys, the common arguments (a fresh incarnation proposal,
    /// the log bound, the budget, the expiry horizon) and `args`.
    fn invocation<'a>(&self, script: &'a Script, args: &[&[u8]]) -> redis::ScriptInvocation<'a> {
        let mut invocation = script.prepare_invoke();
        for name in self.inner.keys.all() {
            invocation.key(name);
        }
        invocation
            .arg(fresh_incarnation().to_string())
            .arg(self.inner.log_len)
            .arg(self.inner.max_bytes.unwrap_or(0))
            .arg(self.expiry_horizon().unwrap_or(0));
        for arg in args {
            invocation.arg(*arg);
        }
        invocation
    }

    /// Runs the INVALIDATE script for `prefix`, then, with `wait_replicas`, WAITs for the
    /// replicas; returns the namespace's new epoch.
    async fn invalidate_on_server(&self, prefix: &str) -> Result<u64> {
        let remembered = self.inner.remembered_prefixes.to_string();
        let args: [&[u8]; 2] = [prefix.as_bytes(), remembered.as_bytes()];
        let Some((link, wait)) = &self.inner.replicated else {
            return self
                .script(
                    "invalidate_prefix",
                    prefix,
                    &scripts::INVALIDATE_SCRIPT,
                    &args,
                )
                .await;
        };
        let invocation = self.invocation(&scripts::INVALIDATE_SCRIPT, &args);
        // On one connection, in order: WAIT counts the replicas that have every write this
        // connection made, the invalidation included.
        let (epoch, confirmed) = link
            .run(|mut connection| async move {
                let epoch: u64 = invocation.invoke_async(&mut connection).await?;
                let confirmed: u32 = redis::cmd("WAIT")
                    .arg(wait.replicas)
                    .arg(wait.timeout.as_millis().max(1) as u64)
                    .query_async(&mut connection)
                    .await?;
                Ok((epoch, confirmed))
            })
            .instrument(debug_span!("redis_script", op = "invalidate_prefix"))
            .await
            .map_err(|e| self.fault("invalidate_prefix", Some(prefix), RedisFaultKind::of(e)))?;
        if confirmed < wait.replicas {
            return Err(self.fault(
                "invalidate_prefix",
                Some(prefix),
                RedisFaultKind::NotReplicated {
                    confirmed,
                    wanted: wait.replicas,
                },
            ));
        }
        Ok(epoch)
    }

    /// Deletes the entries invalidations have marked, a bounded chunk per call (`scripts::
    /// SWEEP`): `prefix`'s own, then any marks other clients left (a client that crashed
    /// mid-sweep), at most [`LEFTOVER_MARKS`] of them so that this returns however many
    /// invalidations others keep starting. A failure is logged and ends the sweep: the marks
    /// stay, still hiding their entries, for the next invalidation (of any client) or connect.
    pub(crate) async fn sweep_marks(&self, prefix: &str) {
        let mut prefixes = vec![prefix.to_owned()];
        let swept = async {
            if !prefix.is_empty() {
                self.sweep(prefix).await?;
            }
            prefixes = self.leftover_marks().await?;
            for leftover in &prefixes {
                self.sweep(leftover).await?;
            }
            Ok::<_, Error>(())
        };
        if let Err(error) = swept.await {
            warn!(?prefixes, error = %chain(&error), "an invalidation's entries are hidden but not yet deleted; a later call deletes them");
        }
    }

    /// Runs `SWEEP` on `prefix` until its mark is gone.
    async fn sweep(&self, prefix: &str) -> Result<()> {
        let chunk = scripts::SWEEP_CHUNK.to_string();
        loop {
            let done: u8 = self
                .script(
                    "invalidate_prefix",
                    prefix,
                    &scripts::SWEEP_SCRIPT,
                    &[prefix.as_bytes(), chunk.as_bytes()],
                )
                .await?;
            if done == 1 {
                return Ok(());
            }
        }
    }

    /// Up to [`LEFTOVER_MARKS`] prefixes still marked.
    async fn leftover_marks(&self) -> Result<Vec<String>> {
        let marks = &self.inner.keys.marks;
        self.inner
            .link
            .run(|mut connection| async move {
                redis::cmd("ZRANGE")
                    .arg(marks)
                    .arg(0)
                    .arg(LEFTOVER_MARKS - 1)
                    .query_async(&mut connection)
                    .await
            })
            .await
            .map_err(|e| self.fault("invalidate_prefix", None, RedisFaultKind::of(e)))
    }

    /// Runs again every invalidation whose outcome is unknown (see `pending.rs`). A call that
    /// reads or writes entries starts with this; if it fails, the call does not reach the
    /// server: a get of a covered key is a miss, anything else fails (`unreplayed`).
    async fn replay_pending(&self) -> Result<()> {
        if self.inner.pending.is_empty() {
            return Ok(());
        }
        for replay in self.inner.pending.to_replay() {
            if let Err(error) = self.invalidate_on_server(&replay.prefix).await {
                warn!(prefix = %replay.prefix, error = %chain(&error), "an invalidation whose outcome was unknown could not be replayed");
                return Err(error);
            }
            self.inner.pending.replayed(&replay);
            info!(prefix = %replay.prefix, "replayed an invalidation whose outcome was unknown");
        }
        Ok(())
    }

    /// The error of `op` on `key` when the replay before it failed with `error`: the same
    /// fault (the server could not be reached, most likely), told as `op`'s.
    fn unreplayed(&self, op: &'static str, key: &str, error: Error) -> Error {
        match error {
            Error::Redis(fault) => self.fault(op, Some(key), fault.kind),
            other => other,
        }
    }

    /// `rows` encoded, or `ValueTooLarge` / `EntryTooLarge` (measured first: a value over a
    /// limit is never encoded, let alone sent).
    fn encode(&self, key: &str, rows: &CachedRows) -> Result<Vec<u8>> {
        let bytes = codec::measure_entry(key, rows)? as u64;
        if bytes > self.inner.max_value_bytes {
            return Err(Error::ValueTooLarge {
                key: key.to_owned(),
                bytes,
                max_value_bytes: self.inner.max_value_bytes,
            });
        }
        let charged = bytes + key.len() as u64;
        if let Some(max_bytes) = self.inner.max_bytes
            && charged > max_bytes
        {
            return Err(Error::EntryTooLarge {
                key: key.to_owned(),
                bytes: charged,
                max_bytes,
            });
        }
        codec::encode_entry(key, rows)
    }

    /// Entries fetched before this (Unix ms) are expired; `None` without a time to live.
    fn expiry_horizon(&self) -> Option<i64> {
        let ttl = self.inner.time_to_live?;
        let horizon = std::time::SystemTime::now()
            .checked_sub(ttl)
            .unwrap_or(std::time::UNIX_EPOCH);
        Some(codec::epoch_ms(horizon).max(1))
    }

    /// Whether `rows` are past the time to live.
    fn is_expired(&self, rows: &CachedRows) -> bool {
        self.expiry_horizon()
            .is_some_and(|horizon| codec::epoch_ms(rows.fetched_at) < horizon)
    }

    /// The fetch time an entry is ranked by: its rows' `fetched_at`, or now if that lies in
    /// the future (clock skew), so that no entry stays fresh longer than one time to live.
    fn fetched_ms(rows: &CachedRows) -> String {
        codec::epoch_ms(rows.fetched_at.min(std::time::SystemTime::now())).to_string()
    }

    /// Starts a TRIM in the background, unless one is under way: a get met an expired entry,
    /// and expired entries must go even when nothing is written.
    fn trim_soon(&self) {
        use std::sync::atomic::Ordering;
        if self.inner.trimming.swap(true, Ordering::AcqRel) {
            return;
        }
        let cache = self.clone();
        tokio::spawn(async move {
            let trimmed: Result<u8> = cache.script("trim", "", &scripts::TRIM_SCRIPT, &[]).await;
            if let Err(error) = trimmed {
                debug!(error = %chain(&error), "trim of expired entries failed; the next write does it");
            }
            cache.inner.trimming.store(false, Ordering::Release);
        });
    }

    /// What the namespace holds and has dropped, as the server counts it (shared by every
    /// client of the namespace).
    pub async fn stats(&self) -> Result<RedisCacheStats> {
        let (keys, mut pipe) = (&self.inner.keys, redis::pipe());
        pipe.hlen(&keys.values)
            .cmd("HMGET")
            .arg(&keys.meta)
            .arg("bytes")
            .arg("evicted")
            .arg("expired")
            .zcard(&keys.marks);
        type Reply = (u64, (Option<u64>, Option<u64>, Option<u64>), u64);
        let (entries, (bytes, evicted, expired), sweeping): Reply = self
            .inner
            .link
            .run(|mut connection| async move { pipe.query_async(&mut connection).await })
            .await
            .map_err(|e| self.fault("stats", None, RedisFaultKind::of(e)))?;
        Ok(RedisCacheStats {
            entries,
            bytes: bytes.unwrap_or(0),
            evictions: evicted.unwrap_or(0),
            expirations: expired.unwrap_or(0),
            sweeping_prefixes: sweeping,
        })
    }

    fn op_span(&self, op: &'static str, key: &str) -> tracing::Span {
        debug_span!("redis_cache", op, key, namespace = %self.inner.namespace)
    }
}

#[async_trait]
impl Cache for RedisCache {
    async fn get(&self, key: &str) -> Result<Option<CachedRows>> {
        async {
            if let Err(error) = self.replay_pending().await {
                if self.inner.pending.covers(key) {
                    debug!(
                        key,
                        "an invalidation covering the key awaits its replay: a miss"
                    );
                    return Ok(None);
                }
                return Err(self.unreplayed("get", key, error));
            }
            let bytes: Option<Vec<u8>> = self
                .script("get", key, &scripts::GET_SCRIPT, &[key.as_bytes()])
                .await?;
            debug!(key, hit = bytes.is_some(), "redis cache get");
            let Some(bytes) = bytes else { return Ok(None) };
            match codec::decode(&bytes) {
                Ok(rows) if self.is_expired(&rows) => {
                    debug!(key, "redis cache entry expired: a miss");
                    self.trim_soon();
                    Ok(None)
                }
                Ok(rows) => Ok(Some(rows)),
                // Written by another version, or by something else in the namespace: a miss
                // (the next put replaces it), never an error or a guess.
                Err(reason) => {
                    warn!(
                        key,
                        reason, "undecodable value in the Redis cache: answered as a miss"
                    );
                    Ok(None)
                }
            }
        }
        .instrument(self.op_span("get", key))
        .await
    }

    async fn put(&self, key: &str, rows: CachedRows) -> Result<()> {
        let value = self.encode(key, &rows)?;
        async {
            if let Err(error) = self.replay_pending().await {
                return Err(self.unreplayed("put", key, error));
            }
            let fetched = Self::fetched_ms(&rows);
            let _seq: u64 = self
                .script(
                    "put",
                    key,
                    &scripts::PUT_SCRIPT,
                    &[key.as_bytes(), &value, fetched.as_bytes()],
                )
                .await?;
            Ok(())
        }
        .instrument(self.op_span("put", key))
        .await
    }

    async fn invalidate_prefix(&self, prefix: &str) -> Result<()> {
        async {
            // Dropped armed (an error, or a caller that stopped waiting), it remembers the
            // prefix for a replay.
            let unconfirmed = Unconfirmed::new(&self.inner.pending, prefix);
            let epoch = self.invalidate_on_server(prefix).await?;
            unconfirmed.confirm();
            debug!(prefix, epoch, "redis cache invalidate");
            // From here nothing under the prefix can be read; what is left is deleting it.
            self.sweep_marks(prefix).await;
            Ok(())
        }
        .instrument(self.op_span("invalidate_prefix", prefix))
        .await
    }

    async fn fill_token(&self, key: &str) -> Result<FillToken> {
        async {
            if let Err(error) = self.replay_pending().await {
                return Err(self.unreplayed("fill_token", key, error));
            }
            let (instance, epoch): (String, String) = self
                .script("fill_token", key, &scripts::FILL_TOKEN_SCRIPT, &[])
                .await?;
            let number = |text: &str| {
                text.parse::<u64>().map_err(|_| {
                    self.fault(
                        "fill_token",
                        Some(key),
                        RedisFaultKind::Corrupt(format!("meta field is not a number: {text:?}")),
                    )
                })
            };
            Ok(FillToken {
                instance: number(&instance)?,
                epoch: number(&epoch)?,
            })
        }
        .instrument(self.op_span("fill_token", key))
        .await
    }

    async fn fill(&self, key: &str, rows: CachedRows, token: FillToken) -> Result<FillOutcome> {
        let value = self.encode(key, &rows)?;
        async {
            if let Err(error) = self.replay_pending().await {
                return Err(self.unreplayed("fill", key, error));
            }
            let fetched = Self::fetched_ms(&rows);
            let instance = token.instance.to_string();
            let epoch = token.epoch.to_string();
            let stored: i64 = self
                .script(
                    "fill",
                    key,
                    &scripts::FILL_SCRIPT,
                    &[
                        key.as_bytes(),
                        &value,
                        fetched.as_bytes(),
                        instance.as_bytes(),
                        epoch.as_bytes(),
                    ],
                )
                .await?;
            if stored == 1 {
                Ok(FillOutcome::Stored)
            } else {
                debug!(key, "redis cache fill rejected as stale");
                Ok(FillOutcome::RejectedStale)
            }
        }
        .instrument(self.op_span("fill", key))
        .await
    }
}
