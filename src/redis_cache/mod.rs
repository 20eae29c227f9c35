//! `RedisCache`: the [`Cache`] contract on a Redis server or a Redis Cluster, shared by many
//! processes.
//!
//! ```text
//!  handle (Clone) ──▶ one multiplexed connection (or a cluster connection) ──▶ Redis 7+
//!   key → shard (FNV-1a of the key; shards.rs), every script on that shard's nine keys:
//!   get          GET script: HGET, hidden if a pending mark covers it (read-only)
//!   put          PUT script: store, XADD log, trim (expired, then over budget)
//!   invalidate   every shard: INVALIDATE script marks the prefix (allow-oom), then
//!                SWEEP scripts delete its entries 100 index keys per call, one shard after another
//!   fill_token   FILL_TOKEN script: (incarnation, epoch) of the key's shard
//!   fill         FILL script: compare token with the guard, then store and trim
//! ```
//!
//! Encoding and decoding (CBOR, [`crate::codec`]) run in the caller; Redis moves bytes.

mod admin;
mod builder;
#[cfg(feature = "metrics")]
pub(crate) mod calls;
mod keyspace;
mod link;
mod pending;
mod scripts;
mod shards;
mod tls;

use std::sync::Arc;

use async_trait::async_trait;
use redis::Script;
use redis::aio::MultiplexedConnection;
use tokio::task::JoinSet;
use tracing::{Instrument, debug, debug_span, info, warn};

pub use crate::error::{RedisFault, RedisFaultKind};
pub use builder::RedisCacheBuilder;
use keyspace::{Keyspace, fresh_incarnation};
use link::{Link, Target, Timeouts};
use pending::{Pending, Unconfirmed};
use shards::Shards;

use crate::cache::{Cache, FillOutcome, FillToken};
use crate::codec;
use crate::error::{Error, Result, chain};
use crate::rows::CachedRows;

/// A [`Cache`] on a Redis server or a Redis Cluster (7.0 or later), shared by every process
/// that connects to the same server and namespace.
///
/// Clones share one multiplexed connection: concurrent calls are pipelined on one socket (on a
/// cluster, one per master). A namespace is split into [shards](RedisCacheBuilder::shards),
/// each under its own hash tag: one on a single server by default, 16 spread over the masters
/// of a cluster.
///
/// **The contract holds across processes.** `invalidate_prefix(p)` removes exactly the keys
/// that start with `p` (no SCAN): in each shard one short script makes them unreadable and
/// unfillable at once, then bounded sweeps delete them, so no call holds the server for long.
/// When it returns, nothing under `p` can be read from any shard; while it runs, a get may
/// still find a key in a shard not yet reached. The stale-fill guard is kept on the server: a fill is rejected when any process invalidated a prefix of its key after its
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
/// values under the same incarnation, unless the invalidation waited for the replica
/// ([`RedisCacheBuilder::wait_replicas`]). Supported setups: no persistence (recommended for a
/// cache), or `appendonly yes` with `appendfsync always`; with replicas, `wait_replicas` for
/// invalidations that must survive a failover. docs/redis.md says what each setup promises.
///
/// **Server settings.** `maxmemory-policy` must be `noeviction` or `volatile-*` (checked at
/// connect; vlive's keys carry no TTL, so neither ever evicts them). vlive keeps its own
/// budget instead ([`max_bytes`](RedisCacheBuilder::max_bytes),
/// [`time_to_live`](RedisCacheBuilder::time_to_live)). Under `noeviction`, when the server is
/// full, `put` and `fill` fail with [`RedisFaultKind::OutOfMemory`] and change nothing, while
/// `invalidate_prefix` still succeeds.
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
    shards: Shards,
    /// On a cluster: the node last found to serve each shard, for its log reader.
    shard_nodes: std::sync::Mutex<Vec<Option<(String, u16)>>>,
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
    /// Per shard: a TRIM call is under way (started by a get that met an expired entry).
    trimming: Vec<std::sync::atomic::AtomicBool>,
    /// With `wait_replicas`: what invalidations wait for.
    replicated: Option<ReplicaWait>,
    /// With `wait_replicas`: per shard, the connection its invalidations run on (to the node
    /// that serves it). WAIT counts only the writes of its own connection, and blocks it.
    replica_connections: std::sync::Mutex<Vec<Option<MultiplexedConnection>>>,
    timeouts: Timeouts,
    /// Invalidations whose outcome is unknown, to replay before the next call.
    pending: Pending,
    /// This process's calls by outcome, for the metrics publisher.
    #[cfg(feature = "metrics")]
    calls: Arc<calls::Calls>,
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
    /// own overhead per entry comes on top: about 400 bytes across the hashes and sorted sets
    /// that index it (measured on Redis 7.0; docs/redis.md).
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

/// `host:port` (as MOVED names a node; IPv6 hosts keep their colons) split.
fn host_port(addr: &str) -> Option<(String, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    Some((host.to_owned(), port.parse().ok()?))
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

    /// The same settings for a Redis Cluster, reached through `seeds` (URLs of some of its
    /// nodes, all `redis://` or all `rediss://`, with the same credentials). The namespace is
    /// split into shards (16 by default, see [`RedisCacheBuilder::shards`]) that spread over
    /// the masters; the contract holds as on one server.
    pub fn cluster_builder(seeds: &[&str], namespace: &str) -> RedisCacheBuilder {
        RedisCacheBuilder::cluster(seeds, namespace)
    }

    /// The server, as `host:port`.
    pub fn server(&self) -> &str {
        &self.inner.server
    }

    /// The namespace this cache uses on the server.
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// How many shards the namespace is split into.
    pub fn shards(&self) -> usize {
        self.inner.shards.count()
    }

    /// Shard `shard`'s keys.
    pub(crate) fn keyspace(&self, shard: usize) -> &Keyspace {
        &self.inner.shards.all()[shard]
    }

    /// A connection of its own to the node serving `shard`, for a command that blocks for up
    /// to `block`. On a cluster the node is found by following MOVED from the last node known
    /// to serve the shard (or the first seed): a failover or a resharding since is found again.
    pub(crate) async fn dedicated_connection(
        &self,
        shard: usize,
        block: std::time::Duration,
    ) -> Result<MultiplexedConnection> {
        let response = block + self.inner.timeouts.response;
        let fault = |e| self.fault("connect", None, RedisFaultKind::of(e));
        let mut node = self.shard_node(shard);
        for _ in 0..4 {
            let dialed = self
                .inner
                .link
                .dedicated(node.as_ref().map(|(h, p)| (h.as_str(), *p)), response)
                .await;
            let mut connection = match dialed {
                Ok(connection) => connection,
                Err(error) => {
                    self.set_shard_node(shard, None);
                    return Err(fault(error));
                }
            };
            if matches!(self.inner.link.target(), Target::Single(_)) {
                return Ok(connection);
            }
            let probe: redis::RedisResult<u8> = redis::cmd("EXISTS")
                .arg(&self.keyspace(shard).log)
                .query_async(&mut connection)
                .await;
            match probe {
                Ok(_) => {
                    self.set_shard_node(shard, node);
                    return Ok(connection);
                }
                Err(error) => match error.redirect_node().and_then(|(addr, _)| host_port(addr)) {
                    Some(moved) => node = Some(moved),
                    None => return Err(fault(error)),
                },
            }
        }
        Err(self.fault(
            "connect",
            None,
            RedisFaultKind::Unsupported("the cluster kept redirecting a shard's log".into()),
        ))
    }

    fn shard_node(&self, shard: usize) -> Option<(String, u16)> {
        let nodes = self
            .inner
            .shard_nodes
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        nodes.get(shard).cloned().flatten()
    }

    fn set_shard_node(&self, shard: usize, node: Option<(String, u16)>) {
        let mut nodes = self
            .inner
            .shard_nodes
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = nodes.get_mut(shard) {
            *slot = node;
        }
    }

    /// Where shard `shard`'s invalidation log stands now.
    pub(crate) async fn log_head(&self, shard: usize) -> Result<LogHead> {
        let command = self.log_head_cmd(shard);
        let fields = self
            .inner
            .link
            .run(|mut connection| async move { command.query_async(&mut connection).await })
            .await
            .map_err(|e| self.fault("log_head", None, RedisFaultKind::of(e)))?;
        Ok(LogHead::from_fields(fields))
    }

    /// The command that reads shard `shard`'s log head; its reply goes to
    /// [`LogHead::from_fields`].
    pub(crate) fn log_head_cmd(&self, shard: usize) -> redis::Cmd {
        let mut command = redis::cmd("HMGET");
        command
            .arg(&self.keyspace(shard).meta)
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
        shard: usize,
        op: &'static str,
        key: &str,
        script: &'static Script,
        args: &[&[u8]],
    ) -> Result<T> {
        let invocation = self.invocation(shard, script, args);
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
    fn invocation<'a>(
        &self,
        shard: usize,
        script: &'a Script,
        args: &[&[u8]],
    ) -> redis::ScriptInvocation<'a> {
        let mut invocation = script.prepare_invoke();
        for name in self.keyspace(shard).all() {
            invocation.key(name);
        }
        invocation
            .arg(fresh_incarnation().to_string())
            .arg(self.inner.log_len)
            .arg(self.shard_budget().unwrap_or(0))
            .arg(self.expiry_horizon().unwrap_or(0));
        for arg in args {
            invocation.arg(*arg);
        }
        invocation
    }

    /// Runs `op` on every shard, concurrently when there are several; all finish, then the
    /// first error (by shard) is returned.
    async fn each_shard<T, F, Fut>(&self, op: F) -> Result<Vec<T>>
    where
        F: Fn(RedisCache, usize) -> Fut,
        Fut: std::future::Future<Output = Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        if self.shards() == 1 {
            return Ok(vec![op(self.clone(), 0).await?]);
        }
        let mut tasks = JoinSet::new();
        for shard in 0..self.shards() {
            let run = op(self.clone(), shard);
            tasks.spawn(async move { (shard, run.await) });
        }
        let mut outcomes: Vec<Option<Result<T>>> = (0..self.shards()).map(|_| None).collect();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((shard, outcome)) => outcomes[shard] = Some(outcome),
                Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
                // Only a runtime shutting down cancels these tasks.
                Err(_) => return Err(Error::Closed),
            }
        }
        outcomes.into_iter().flatten().collect()
    }

    /// Runs the INVALIDATE script for `prefix` on every shard (see [`Self::invalidate_shard`]);
    /// returns each shard's new epoch (its mark's).
    async fn invalidate_on_server(&self, prefix: &str) -> Result<Vec<u64>> {
        let prefix = prefix.to_owned();
        self.each_shard(|cache, shard| {
            let prefix = prefix.clone();
            async move { cache.invalidate_shard(shard, &prefix).await }
        })
        .await
    }

    /// Runs the INVALIDATE script for `prefix` on `shard`, then, with `wait_replicas`, WAITs
    /// for the replicas; returns the shard's new epoch.
    async fn invalidate_shard(&self, shard: usize, prefix: &str) -> Result<u64> {
        let remembered = self.inner.remembered_prefixes.to_string();
        let args: [&[u8]; 2] = [prefix.as_bytes(), remembered.as_bytes()];
        let Some(wait) = self.inner.replicated else {
            return self
                .script(
                    shard,
                    "invalidate_prefix",
                    prefix,
                    &scripts::INVALIDATE_SCRIPT,
                    &args,
                )
                .await;
        };
        let invocation = self.invocation(shard, &scripts::INVALIDATE_SCRIPT, &args);
        let mut connection = self.replica_connection(shard, wait).await?;
        // On one connection to the shard's node, in order, with no retry on another socket:
        // WAIT counts the replicas that have every write of *this* connection.
        let waited = async {
            let epoch: u64 = invocation.invoke_async(&mut connection).await?;
            let confirmed: u32 = redis::cmd("WAIT")
                .arg(wait.replicas)
                .arg(wait.timeout.as_millis().max(1) as u64)
                .query_async(&mut connection)
                .await?;
            Ok::<_, redis::RedisError>((epoch, confirmed))
        }
        .instrument(debug_span!("redis_script", op = "invalidate_prefix"))
        .await;
        let (epoch, confirmed) = match waited {
            Ok(answer) => {
                self.keep_replica_connection(shard, connection);
                answer
            }
            // MOVED (the shard's node changed) included: the next try finds the node again.
            Err(error) => {
                return Err(self.fault(
                    "invalidate_prefix",
                    Some(prefix),
                    RedisFaultKind::of(error),
                ));
            }
        };
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

    /// The cached connection for `shard`'s replicated invalidations, or a new one to the node
    /// that serves it (its response timeout covers the wait).
    async fn replica_connection(
        &self,
        shard: usize,
        wait: ReplicaWait,
    ) -> Result<MultiplexedConnection> {
        let cached = {
            let mut connections = self
                .inner
                .replica_connections
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            // Taken out: a connection that fails is never put back.
            connections.get_mut(shard).and_then(Option::take)
        };
        match cached {
            Some(connection) => Ok(connection),
            None => self.dedicated_connection(shard, wait.timeout).await,
        }
    }

    fn keep_replica_connection(&self, shard: usize, connection: MultiplexedConnection) {
        let mut connections = self
            .inner
            .replica_connections
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = connections.get_mut(shard) {
            *slot = Some(connection);
        }
    }

    /// Deletes the entries invalidations have marked, a bounded chunk per call (`scripts::
    /// SWEEP`): `own`'s (a prefix and the epoch of its mark in each shard), then marks other
    /// clients left (a client that crashed mid-sweep), at most [`LEFTOVER_MARKS`] per shard. A
    /// sweep serves one mark: when the prefix is invalidated again meanwhile, the newer
    /// invalidation's sweep takes over and this one stops, so it ends however often a hot
    /// prefix is invalidated. A failure is logged and ends the sweep: the marks stay, still
    /// hiding their entries, for the next invalidation (of any client) or connect.
    ///
    /// One shard after another, never at once: shards that share a node would otherwise send
    /// it their sweep calls together, and Redis runs what one client sent back to back, so
    /// another client's command would wait for all of them (`docs/redis-bench.md`).
    pub(crate) async fn sweep_marks(&self, own: Option<(&str, Vec<u64>)>) {
        for shard in 0..self.shards() {
            let own = own
                .as_ref()
                .map(|(prefix, epochs)| ((*prefix).to_owned(), epochs[shard]));
            self.sweep_shard_marks(shard, own).await;
        }
    }

    /// [`Self::sweep_marks`] on one shard.
    async fn sweep_shard_marks(&self, shard: usize, own: Option<(String, u64)>) {
        let mut marks: Vec<(String, u64)> = own.into_iter().collect();
        let swept = async {
            if let Some((prefix, epoch)) = marks.first()
                && !prefix.is_empty()
            {
                self.sweep(shard, prefix, *epoch).await?;
            }
            marks = self.leftover_marks(shard).await?;
            for (prefix, epoch) in &marks {
                self.sweep(shard, prefix, *epoch).await?;
            }
            Ok::<_, Error>(())
        };
        if let Err(error) = swept.await {
            warn!(shard, ?marks, error = %chain(&error), "an invalidation's entries are hidden but not yet deleted; a later call deletes them");
        }
    }

    /// Runs `SWEEP` on `prefix` in `shard` until the mark set at `epoch` is gone (swept, or
    /// replaced by a newer invalidation of the prefix, whose own sweep goes on).
    async fn sweep(&self, shard: usize, prefix: &str, epoch: u64) -> Result<()> {
        let chunk = scripts::SWEEP_CHUNK.to_string();
        let epoch = epoch.to_string();
        loop {
            let done: u8 = self
                .script(
                    shard,
                    "invalidate_prefix",
                    prefix,
                    &scripts::SWEEP_SCRIPT,
                    &[prefix.as_bytes(), chunk.as_bytes(), epoch.as_bytes()],
                )
                .await?;
            if done == 1 {
                return Ok(());
            }
        }
    }

    /// Up to [`LEFTOVER_MARKS`] marks still pending in `shard`, with their epochs.
    async fn leftover_marks(&self, shard: usize) -> Result<Vec<(String, u64)>> {
        let marks = &self.keyspace(shard).marks;
        self.inner
            .link
            .run(|mut connection| async move {
                redis::cmd("ZRANGE")
                    .arg(marks)
                    .arg(0)
                    .arg(LEFTOVER_MARKS - 1)
                    .arg("WITHSCORES")
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
        if let Some(max_bytes) = self.shard_budget()
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

    /// What each shard may hold: an even share of `max_bytes` (keys spread evenly by hash), so
    /// that the namespace as a whole stays within it.
    fn shard_budget(&self) -> Option<u64> {
        let shards = self.shards() as u64;
        self.inner.max_bytes.map(|max| (max / shards).max(1))
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

    /// Starts TRIM calls on `shard` in the background, unless they are under way: a get met an
    /// expired entry, and expired entries must go even when nothing is written. One bounded
    /// call after another, until a call finds less than a full batch to remove.
    fn trim_soon(&self, shard: usize) {
        use std::sync::atomic::Ordering;
        if self.inner.trimming[shard].swap(true, Ordering::AcqRel) {
            return;
        }
        /// Clears the flag however the task ends (a runtime shutting down drops it).
        struct Trimming(RedisCache, usize);
        impl Drop for Trimming {
            fn drop(&mut self) {
                self.0.inner.trimming[self.1].store(false, Ordering::Release);
            }
        }
        let trimming = Trimming(self.clone(), shard);
        tokio::spawn(async move {
            let cache = &trimming.0;
            loop {
                let trimmed: Result<usize> = cache
                    .script(shard, "trim", "", &scripts::TRIM_SCRIPT, &[])
                    .await;
                match trimmed {
                    Ok(removed) if removed >= scripts::TRIM_LIMIT => continue,
                    Ok(_) => break,
                    Err(error) => {
                        debug!(error = %chain(&error), "trim of expired entries failed; the next write does it");
                        break;
                    }
                }
            }
        });
    }

    /// What the namespace holds and has dropped, as the server counts it (shared by every
    /// client of the namespace).
    pub async fn stats(&self) -> Result<RedisCacheStats> {
        let shards = self
            .each_shard(|cache, shard| async move { cache.shard_stats(shard).await })
            .await?;
        Ok(shards
            .into_iter()
            .fold(RedisCacheStats::default(), |sum, shard| RedisCacheStats {
                entries: sum.entries + shard.entries,
                bytes: sum.bytes + shard.bytes,
                evictions: sum.evictions + shard.evictions,
                expirations: sum.expirations + shard.expirations,
                sweeping_prefixes: sum.sweeping_prefixes + shard.sweeping_prefixes,
            }))
    }

    async fn shard_stats(&self, shard: usize) -> Result<RedisCacheStats> {
        let (keys, mut pipe) = (self.keyspace(shard), redis::pipe());
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

    /// Starts the task that publishes this cache's figures under `name` (`metrics::redis`).
    /// It holds a weak reference between looks, so the cache's drop stops it.
    #[cfg(feature = "metrics")]
    fn publish_metrics(&self, name: &str) {
        let alive = Arc::downgrade(&self.inner);
        crate::metrics::redis::publish(name, self.inner.calls.clone(), move || {
            let cache = RedisCache {
                inner: alive.upgrade()?,
            };
            Some(async move { cache.stats().await })
        });
    }

    /// Counts a call for the metrics publisher.
    #[cfg(feature = "metrics")]
    fn count(&self, call: calls::Call) {
        self.inner.calls.count(call);
    }

    fn op_span(&self, op: &'static str, key: &str) -> tracing::Span {
        debug_span!("redis_cache", op, key, namespace = %self.inner.namespace)
    }
}

#[async_trait]
impl Cache for RedisCache {
    async fn get(&self, key: &str) -> Result<Option<CachedRows>> {
        let outcome = async {
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
            let shard = self.inner.shards.of(key);
            let bytes: Option<Vec<u8>> = self
                .script(shard, "get", key, &scripts::GET_SCRIPT, &[key.as_bytes()])
                .await?;
            debug!(key, hit = bytes.is_some(), "redis cache get");
            let Some(bytes) = bytes else { return Ok(None) };
            match codec::decode(&bytes) {
                Ok(rows) if self.is_expired(&rows) => {
                    debug!(key, "redis cache entry expired: a miss");
                    self.trim_soon(shard);
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
        .await;
        #[cfg(feature = "metrics")]
        self.count(match &outcome {
            Ok(Some(_)) => calls::Call::GetHit,
            Ok(None) => calls::Call::GetMiss,
            Err(_) => calls::Call::GetError,
        });
        outcome
    }

    async fn put(&self, key: &str, rows: CachedRows) -> Result<()> {
        let outcome = async {
            let value = self.encode(key, &rows)?;
            if let Err(error) = self.replay_pending().await {
                return Err(self.unreplayed("put", key, error));
            }
            let fetched = Self::fetched_ms(&rows);
            let _seq: u64 = self
                .script(
                    self.inner.shards.of(key),
                    "put",
                    key,
                    &scripts::PUT_SCRIPT,
                    &[key.as_bytes(), &value, fetched.as_bytes()],
                )
                .await?;
            Ok(())
        }
        .instrument(self.op_span("put", key))
        .await;
        #[cfg(feature = "metrics")]
        self.count(match &outcome {
            Ok(()) => calls::Call::PutOk,
            Err(_) => calls::Call::PutError,
        });
        outcome
    }

    async fn invalidate_prefix(&self, prefix: &str) -> Result<()> {
        let outcome = async {
            // Dropped armed (an error, or a caller that stopped waiting), it remembers the
            // prefix for a replay.
            let unconfirmed = Unconfirmed::new(&self.inner.pending, prefix);
            let epochs = self.invalidate_on_server(prefix).await?;
            unconfirmed.confirm();
            debug!(prefix, "redis cache invalidate");
            // From here nothing under the prefix can be read; what is left is deleting it.
            self.sweep_marks(Some((prefix, epochs))).await;
            Ok(())
        }
        .instrument(self.op_span("invalidate_prefix", prefix))
        .await;
        #[cfg(feature = "metrics")]
        self.count(match &outcome {
            Ok(()) => calls::Call::InvalidateOk,
            Err(_) => calls::Call::InvalidateError,
        });
        outcome
    }

    async fn fill_token(&self, key: &str) -> Result<FillToken> {
        let outcome = async {
            if let Err(error) = self.replay_pending().await {
                return Err(self.unreplayed("fill_token", key, error));
            }
            let (instance, epoch): (String, String) = self
                .script(
                    self.inner.shards.of(key),
                    "fill_token",
                    key,
                    &scripts::FILL_TOKEN_SCRIPT,
                    &[],
                )
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
        .await;
        // A token that could not be had is a fill that failed; a token alone is no fill yet.
        #[cfg(feature = "metrics")]
        if outcome.is_err() {
            self.count(calls::Call::FillError);
        }
        outcome
    }

    async fn fill(&self, key: &str, rows: CachedRows, token: FillToken) -> Result<FillOutcome> {
        let outcome = async {
            let value = self.encode(key, &rows)?;
            if let Err(error) = self.replay_pending().await {
                return Err(self.unreplayed("fill", key, error));
            }
            let fetched = Self::fetched_ms(&rows);
            let instance = token.instance.to_string();
            let epoch = token.epoch.to_string();
            let stored: i64 = self
                .script(
                    self.inner.shards.of(key),
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
        .await;
        #[cfg(feature = "metrics")]
        self.count(match &outcome {
            Ok(FillOutcome::Stored) => calls::Call::FillOk,
            Ok(FillOutcome::RejectedStale) => calls::Call::FillRejected,
            Err(_) => calls::Call::FillError,
        });
        outcome
    }
}
