//! Connecting: settings, the server checks, and loading the scripts.

use std::time::Duration;

use redis::aio::MultiplexedConnection;

use super::link::{Link, Target, Timeouts};
use super::shards::Shards;
use super::tls::{self, TlsOptions};
use super::{Inner, RedisCache, ReplicaWait, scripts};
use crate::error::{Error, Result};
use crate::error::{RedisFault, RedisFaultKind};

/// See [`RedisCacheBuilder::max_value_bytes`].
const DEFAULT_MAX_VALUE_BYTES: u64 = 1 << 20;

/// The oldest server that runs the scripts: shebang flags (`allow-oom`) came with Redis 7.0.
const MIN_MAJOR_VERSION: u32 = 7;

/// Shards of a namespace on a Redis Cluster, unless [`RedisCacheBuilder::shards`] says otherwise.
const DEFAULT_CLUSTER_SHARDS: u16 = 16;

/// Where to connect: one server, or a cluster through its seeds.
#[derive(Clone)]
enum Endpoint {
    Single(String),
    Cluster(Vec<String>),
}

/// Settings for [`RedisCache`]; start with [`RedisCache::builder`] or
/// [`RedisCache::cluster_builder`].
#[must_use]
pub struct RedisCacheBuilder {
    endpoint: Endpoint,
    namespace: String,
    shards: Option<u16>,
    timeouts: Timeouts,
    log_len: usize,
    remembered_prefixes: usize,
    trust_eviction_policy: bool,
    max_value_bytes: u64,
    max_bytes: Option<u64>,
    time_to_live: Option<Duration>,
    replicas: Option<ReplicaWait>,
    tls: TlsOptions,
    /// `existing_namespace`: refuse a namespace that is not there, and adopt its shard count.
    existing: bool,
    #[cfg(feature = "metrics")]
    metrics_name: Option<String>,
}

impl std::fmt::Debug for RedisCacheBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL: it may carry a password.
        f.debug_struct("RedisCacheBuilder")
            .field("namespace", &self.namespace)
            .field("shards", &self.shards)
            .field("timeouts", &self.timeouts)
            .field("log_len", &self.log_len)
            .field("remembered_prefixes", &self.remembered_prefixes)
            .field("max_value_bytes", &self.max_value_bytes)
            .field("max_bytes", &self.max_bytes)
            .field("time_to_live", &self.time_to_live)
            .field("replicas", &self.replicas)
            .field("tls", &self.tls)
            .field("existing", &self.existing)
            .finish_non_exhaustive()
    }
}

impl RedisCacheBuilder {
    pub(super) fn new(url: &str, namespace: &str) -> Self {
        Self::with_endpoint(Endpoint::Single(url.to_owned()), namespace)
    }

    pub(super) fn cluster(seeds: &[&str], namespace: &str) -> Self {
        let seeds = seeds.iter().map(|seed| (*seed).to_owned()).collect();
        Self::with_endpoint(Endpoint::Cluster(seeds), namespace)
    }

    fn with_endpoint(endpoint: Endpoint, namespace: &str) -> Self {
        RedisCacheBuilder {
            endpoint,
            namespace: namespace.to_owned(),
            shards: None,
            timeouts: Timeouts {
                connect: Duration::from_secs(2),
                // Redis' client defaults to 500 ms; an invalidation removing ~100k keys can
                // legitimately take longer than that (about 3.6 µs of server time per key).
                response: Duration::from_secs(5),
            },
            log_len: 10_000,
            remembered_prefixes: 4096,
            trust_eviction_policy: false,
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
            max_bytes: None,
            time_to_live: None,
            replicas: None,
            tls: TlsOptions::default(),
            existing: false,
            #[cfg(feature = "metrics")]
            metrics_name: None,
        }
    }

    /// How many shards the namespace is split into (default: 1 on a single server,
    /// 16 on a cluster; at most 1024). Each shard is a hash tag of its
    /// own, so on a cluster the shards spread over the masters; a key lives in one shard.
    ///
    /// The count is recorded in the namespace: a client configured with another count is
    /// refused at `connect` with [`Error::InvalidConfig`] (keys would be looked up in the wrong
    /// shards). To change it, use a new namespace. Pick about four times the most masters the
    /// cluster will have, so the spread stays even as it grows; each shard costs a prefix
    /// invalidation one more script call (they run concurrently) and each
    /// [`TieredCache`](crate::TieredCache) one log connection.
    pub fn shards(mut self, shards: u16) -> Self {
        self.shards = Some(shards);
        self
    }

    /// The `cache` label of this cache's metrics (default: the namespace). Only with the
    /// `metrics` feature. Install the application's metrics recorder before `connect`.
    #[cfg(feature = "metrics")]
    pub fn metrics_name(mut self, name: impl Into<String>) -> Self {
        self.metrics_name = Some(name.into());
        self
    }

    /// How long to wait for a connection (default 2 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.connect = timeout;
        self
    }

    /// How long to wait for each answer (default 5 s). A call on a live connection fails with
    /// [`RedisFaultKind::Timeout`] after this; a call that has to dial first may take up to
    /// about two connect timeouts more.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.response = timeout;
        self
    }

    /// How many entries the invalidation log keeps (default 10 000, trimmed approximately). A
    /// [`TieredCache`](crate::TieredCache) reader that falls further behind flushes its near tier.
    pub fn log_len(mut self, entries: usize) -> Self {
        self.log_len = entries.max(1);
        self
    }

    /// How many recently invalidated prefixes the fill guard remembers (default 4096). A fill
    /// whose token is older than the oldest forgotten one is rejected as stale.
    pub fn remembered_prefixes(mut self, prefixes: usize) -> Self {
        self.remembered_prefixes = prefixes.max(1);
        self
    }

    /// Skips the `maxmemory-policy` check, for servers where `CONFIG GET` is disabled (some
    /// managed services). You then vouch that the policy is `noeviction` or `volatile-*`.
    pub fn trust_eviction_policy(mut self, trust: bool) -> Self {
        self.trust_eviction_policy = trust;
        self
    }

    /// The largest value a put or fill may send, CBOR-encoded (default 1 MiB). A larger one
    /// fails with [`Error::ValueTooLarge`] before anything is sent. Why a limit: Redis runs one
    /// command at a time, so while it reads and stores a large value every other client of the
    /// server waits (docs/redis-values.md measures how long per size). Must be at least 1.
    pub fn max_value_bytes(mut self, bytes: u64) -> Self {
        self.max_value_bytes = bytes;
        self
    }

    /// A byte budget for the namespace (default: none, bounded only by the server's
    /// `maxmemory`). Each entry is charged its key and encoded value bytes; every put or fill
    /// that takes the namespace over the budget evicts the entries fetched longest ago, in the
    /// same script, at most 128 per call (a budget lowered far below what is stored is reached
    /// over the next writes). With several [shards](Self::shards) each keeps an even share
    /// (`max_bytes / shards`; keys spread evenly over them), so the namespace stays within the
    /// whole. An entry larger than its shard's share is refused with [`Error::EntryTooLarge`]
    /// (which names that share). Eviction is a later miss, never an older value, and works
    /// whatever the server's `maxmemory-policy`: vlive does not rely on Redis to evict.
    ///
    /// The budget is the writer's: give every client of a namespace the same one. Redis' own
    /// overhead per entry comes on top (see [`RedisCacheStats::bytes`](super::RedisCacheStats)).
    /// Must be at least 1.
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = Some(bytes);
        self
    }

    /// Entries whose rows were fetched (`fetched_at`) longer ago than `ttl` are misses (default:
    /// they never expire), as on `RedbCache`. They are removed, not only hidden: every put and
    /// fill removes expired entries (128 removals per call at most, evictions included), and a
    /// get that meets one starts such a removal in the background, so they go even when
    /// nothing is written. Give every client of a
    /// namespace the same time to live: a client removes what *it* considers expired. Must be
    /// more than zero.
    pub fn time_to_live(mut self, ttl: Duration) -> Self {
        self.time_to_live = Some(ttl);
        self
    }

    /// Makes an invalidation wait until `replicas` replicas have it (Redis `WAIT`), for at most
    /// `timeout`, before it is acknowledged: an acknowledged invalidation then survives the
    /// failover to any of them. (On a cluster, the replicas of each shard's master; the WAIT
    /// runs on the connection the invalidation went out on, never retried on another.) When fewer confirm in time it fails with
    /// [`RedisFaultKind::NotReplicated`] (it did reach the primary) and is kept for a replay:
    /// until a replay is confirmed too, gets of the keys it covers are misses and other calls
    /// fail (see [`RedisCache`]). So ask for fewer replicas than you run if
    /// losing one must not stop the cache. Invalidations then run on a connection of their
    /// own, so their waits never hold up gets and puts. Puts and fills do not wait: losing one
    /// in a failover costs a miss, never a stale value. Default: off. `replicas` must be at
    /// least 1 and `timeout` more than zero.
    pub fn wait_replicas(mut self, replicas: u32, timeout: Duration) -> Self {
        self.replicas = Some(ReplicaWait { replicas, timeout });
        self
    }

    /// Trusts the CA certificate(s) in `pem` (PEM text) for a `rediss://` server, besides the
    /// system's trust roots: for a server whose certificate a private CA signed. `connect`
    /// refuses PEM that holds no certificate, and TLS options with a `redis://` URL.
    pub fn tls_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls.ca_pem = Some(pem.into());
        self
    }

    /// Presents a client certificate (`cert_pem`: the chain, PEM) with its private key
    /// (`key_pem`: PKCS#8, PKCS#1 or SEC1, PEM) for mutual TLS, to a server that asks for one
    /// (`tls-auth-clients yes`). Needs a `rediss://` URL.
    pub fn tls_client_cert(
        mut self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.tls.client = Some((cert_pem.into(), key_pem.into()));
        self
    }

    /// Uses the namespace only if it already exists on the server: `connect` fails with
    /// [`RedisFaultKind::NoNamespace`] instead of recording a new one, takes the shard count the
    /// namespace records (unless [`shards`](Self::shards) is given, which must match), and
    /// leaves unfinished sweeps of other clients alone. For tools that look at a namespace
    /// (the `vlive` CLI): looking must not create what it looks for.
    pub fn existing_namespace(mut self) -> Self {
        self.existing = true;
        self
    }

    /// Connects, checks the server, and loads the scripts. With a `rediss://` URL the
    /// connection is TLS, verified against the system's roots (and the
    /// [`tls_ca_pem`](Self::tls_ca_pem) CA): a certificate that does not verify fails with
    /// [`RedisFaultKind::Tls`], never a fallback to plain text.
    pub async fn connect(self) -> Result<RedisCache> {
        let default_shards = match self.endpoint {
            Endpoint::Single(_) => 1,
            Endpoint::Cluster(_) => DEFAULT_CLUSTER_SHARDS,
        };
        let mut shards = Shards::new(&self.namespace, self.shards.unwrap_or(default_shards))?;
        if self.max_value_bytes == 0 {
            return Err(Error::InvalidConfig {
                reason: "max_value_bytes must be at least 1".into(),
            });
        }
        if self.max_bytes == Some(0) || self.time_to_live.is_some_and(|ttl| ttl.is_zero()) {
            return Err(Error::InvalidConfig {
                reason: "redis cache: max_bytes must be at least 1 and time_to_live above zero"
                    .into(),
            });
        }
        if let Some(wait) = &self.replicas
            && (wait.replicas == 0 || wait.timeout.is_zero())
        {
            return Err(Error::InvalidConfig {
                reason: format!(
                    "wait_replicas needs at least 1 replica and a timeout above zero, not {} \
                     replicas within {:?}",
                    wait.replicas, wait.timeout
                ),
            });
        }
        let target = match &self.endpoint {
            Endpoint::Single(url) => Target::Single(tls::client(url, &self.tls)?),
            Endpoint::Cluster(seeds) => {
                let (cluster, seeds) = tls::cluster_client(seeds, &self.tls, self.timeouts)?;
                Target::Cluster { cluster, seeds }
            }
        };
        let server = match &target {
            Target::Single(client) => client.get_connection_info().addr().to_string(),
            Target::Cluster { .. } => {
                let first = target.first().get_connection_info().addr();
                format!("cluster via {first}")
            }
        };
        let fault = |kind| {
            Error::Redis(RedisFault {
                server: server.clone(),
                namespace: self.namespace.clone(),
                op: "connect",
                key: None,
                kind,
            })
        };
        let link = Link::new(target, self.timeouts);
        let trust = self.trust_eviction_policy;
        let count = shards.count().to_string();
        let count_key = shards.count_key.clone();
        let (existing, single_meta) = (self.existing, Shards::new(&self.namespace, 1)?);
        let single_meta = single_meta.all()[0].meta.clone();
        let checks = async {
            // On one node: the server, or the first seed that answers (on a cluster INFO and
            // CONFIG answer per node; docs/redis.md asks operators to set every master alike).
            let mut node = link.dedicated(None, self.timeouts.response).await?;
            let outcome = check_server(&mut node, trust).await?;
            if let Err(refusal) = outcome {
                return Ok(Err(refusal));
            }
            link.run(|mut connection| async move {
                for script in scripts::all() {
                    script.prepare_invoke().load_async(&mut connection).await?;
                }
                if existing {
                    return recorded_shards(&mut connection, &count_key, &single_meta).await;
                }
                let recorded: Option<String> = redis::cmd("SET")
                    .arg(&count_key)
                    .arg(&count)
                    .arg("NX")
                    .arg("GET")
                    .query_async(&mut connection)
                    .await?;
                Ok(check_shard_count(recorded.as_deref(), &count).map(|()| recorded))
            })
            .await
        };
        match checks.await {
            Err(error) => return Err(fault(RedisFaultKind::of(error))),
            Ok(Err(Refusal::Server(reason))) => {
                return Err(fault(RedisFaultKind::Unsupported(reason)));
            }
            Ok(Err(Refusal::Config(reason))) => return Err(Error::InvalidConfig { reason }),
            Ok(Ok(recorded)) if self.existing => {
                let Some(recorded) = recorded else {
                    return Err(fault(RedisFaultKind::NoNamespace));
                };
                shards = self.adopt_shards(&recorded)?;
            }
            Ok(Ok(_)) => {}
        }
        tracing::debug!(%server, namespace = %self.namespace, "redis cache connected");
        let count = shards.count();
        let cache = RedisCache {
            inner: std::sync::Arc::new(Inner {
                link,
                shard_nodes: std::sync::Mutex::new(vec![None; count]),
                shards,
                server,
                namespace: self.namespace,
                log_len: self.log_len,
                remembered_prefixes: self.remembered_prefixes,
                max_value_bytes: self.max_value_bytes,
                max_bytes: self.max_bytes,
                time_to_live: self.time_to_live,
                trimming: (0..count).map(|_| Default::default()).collect(),
                replicated: self.replicas,
                replica_connections: std::sync::Mutex::new(vec![None; count]),
                timeouts: self.timeouts,
                pending: Default::default(),
                #[cfg(feature = "metrics")]
                calls: Default::default(),
            }),
        };
        #[cfg(feature = "metrics")]
        cache.publish_metrics(
            self.metrics_name
                .as_deref()
                .unwrap_or(&cache.inner.namespace),
        );
        // Finishes the sweeps of invalidations whose client stopped mid-way (their entries are
        // hidden already; this frees their memory). Not for a mere look at a namespace.
        if !existing {
            cache.sweep_marks(None).await;
        }
        Ok(cache)
    }
}

impl RedisCacheBuilder {
    /// `existing_namespace`: the shards of the count the namespace records, or, if `shards`
    /// was given, those after checking that it is the same.
    fn adopt_shards(&self, recorded: &str) -> Result<Shards> {
        if let Some(given) = self.shards {
            check_shard_count(Some(recorded), &given.to_string()).map_err(
                |refusal| match refusal {
                    Refusal::Config(reason) | Refusal::Server(reason) => {
                        Error::InvalidConfig { reason }
                    }
                },
            )?;
        }
        let count = recorded.parse().map_err(|_| Error::InvalidConfig {
            reason: format!("the redis namespace records {recorded:?} shards, not a number"),
        })?;
        Shards::new(&self.namespace, count)
    }
}

/// The shard count a namespace records; `None` if there is no such namespace. A namespace
/// written before shards existed records none but has its single shard's meta hash.
async fn recorded_shards(
    connection: &mut impl redis::aio::ConnectionLike,
    count_key: &str,
    single_meta: &str,
) -> redis::RedisResult<Result<Option<String>, Refusal>> {
    let recorded: Option<String> = redis::cmd("GET")
        .arg(count_key)
        .query_async(connection)
        .await?;
    if recorded.is_some() {
        return Ok(Ok(recorded));
    }
    let exists: bool = redis::cmd("EXISTS")
        .arg(single_meta)
        .query_async(connection)
        .await?;
    Ok(Ok(exists.then(|| "1".to_owned())))
}

/// Why `connect` refuses.
enum Refusal {
    /// The server cannot keep the contract.
    Server(String),
    /// The client's settings do not fit the namespace.
    Config(String),
}

/// Whether the shard count recorded in the namespace (`None`: none was, ours is now) is ours.
fn check_shard_count(recorded: Option<&str>, ours: &str) -> Result<(), Refusal> {
    match recorded {
        None => Ok(()),
        Some(theirs) if theirs == ours => Ok(()),
        Some(theirs) => Err(Refusal::Config(format!(
            "the redis namespace is split into {theirs} shards, this client into {ours}: give \
             every client of a namespace the same RedisCacheBuilder::shards (or use a new \
             namespace)"
        ))),
    }
}

/// `Ok(Err(reason))` when the server cannot keep the contract.
async fn check_server(
    connection: &mut MultiplexedConnection,
    trust_eviction_policy: bool,
) -> redis::RedisResult<Result<(), Refusal>> {
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(connection)
        .await?;
    if let Err(reason) = check_version(&info) {
        return Ok(Err(Refusal::Server(reason)));
    }
    if trust_eviction_policy {
        return Ok(Ok(()));
    }
    let policy: redis::RedisResult<Vec<String>> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory-policy")
        .query_async(connection)
        .await;
    Ok(match policy {
        Ok(pair) => check_eviction_policy(pair.get(1).map(String::as_str).unwrap_or(""))
            .map_err(Refusal::Server),
        Err(error) if error.code().is_some() => Err(Refusal::Server(format!(
            "cannot read maxmemory-policy ({error}); if the server denies CONFIG GET, check the \
             policy yourself and use RedisCacheBuilder::trust_eviction_policy"
        ))),
        Err(error) => return Err(error),
    })
}

/// Redis 7.0 or later (Valkey reports its Redis compatibility version in `redis_version`).
fn check_version(info: &str) -> Result<(), String> {
    let version = info
        .lines()
        .find_map(|line| line.strip_prefix("redis_version:"))
        .map(str::trim)
        .unwrap_or("unknown");
    let major = version
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok());
    match major {
        Some(major) if major >= MIN_MAJOR_VERSION => Ok(()),
        _ => Err(format!(
            "redis_version {version}: Redis {MIN_MAJOR_VERSION}.0 or later is needed (script \
             flags)"
        )),
    }
}

/// `noeviction` or `volatile-*`: vlive's keys carry no TTL, so neither ever evicts them. Under
/// `allkeys-*` Redis could evict the index or the guard alone, and invalidations or the fill
/// guard would then silently miss keys.
fn check_eviction_policy(policy: &str) -> Result<(), String> {
    if policy == "noeviction" || policy.starts_with("volatile-") {
        Ok(())
    } else {
        Err(format!(
            "maxmemory-policy is {policy:?}; vlive needs noeviction or volatile-* (under \
             allkeys-* Redis may evict the index or the fill guard and break invalidation)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_before_seven_are_refused() {
        assert!(check_version("# Server\r\nredis_version:7.0.15\r\n").is_ok());
        assert!(check_version("redis_version:8.2.1\r\n").is_ok());
        assert!(check_version("redis_version:6.2.14\r\n").is_err());
        assert!(check_version("nothing here").is_err());
    }

    #[test]
    fn only_policies_that_spare_keys_without_ttl_pass() {
        for ok in ["noeviction", "volatile-lru", "volatile-lfu", "volatile-ttl"] {
            assert!(check_eviction_policy(ok).is_ok(), "{ok}");
        }
        for bad in ["allkeys-lru", "allkeys-lfu", "allkeys-random", ""] {
            assert!(check_eviction_policy(bad).is_err(), "{bad}");
        }
    }
}
