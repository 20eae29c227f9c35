//! One multiplexed connection, replaced when it breaks.
//!
//! Every clone of a `RedisCache` shares one `Link`; concurrent calls pipeline on its single
//! socket (the client writes requests as they come and matches replies in order). On a Redis
//! Cluster the connection is the redis crate's cluster connection: one socket per master, each
//! command routed by its key's slot, MOVED and ASK followed, the slot map refreshed. When a call
//! fails at the connection level (I/O error, timeout, dropped socket) the connection is thrown
//! away and the next call dials again. There is no retry: a failed write's outcome is unknown,
//! and the caller decides.
//!
//! Every call is bounded: dialing by the connect timeout, each request by the response timeout.
//! Concurrent callers that find no connection wait for one dial instead of each dialing in turn,
//! so a dead server costs each call at most about two connect timeouts, never a queue of them.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Client, ConnectionAddr, RedisError, RedisFuture};

use crate::error::is_connection_level;

/// How long to wait for a connection and for each answer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timeouts {
    pub(crate) connect: Duration,
    pub(crate) response: Duration,
}

/// What a `Link` connects to.
// One per cache: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub(crate) enum Target {
    /// One server.
    Single(Client),
    /// A Redis Cluster; `seeds` (a client per seed URL) are where a connection to one node
    /// starts, and the first is the template for connections to other nodes (its credentials
    /// and TLS settings).
    Cluster {
        cluster: ClusterClient,
        seeds: Vec<Client>,
    },
}

impl Target {
    /// The clients to try for one node, in order: the server itself; on a cluster the node at
    /// `host:port`, or with `None` every seed (a dead seed must not strand a caller).
    pub(crate) fn node(&self, node: Option<(&str, u16)>) -> Result<Vec<Client>, RedisError> {
        match (self, node) {
            (Target::Single(client), _) => Ok(vec![client.clone()]),
            (Target::Cluster { seeds, .. }, None) => Ok(seeds.clone()),
            (Target::Cluster { seeds, .. }, Some((host, port))) => {
                let info = seeds[0].get_connection_info().clone();
                let addr = match info.addr().clone() {
                    ConnectionAddr::TcpTls {
                        insecure,
                        tls_params,
                        ..
                    } => ConnectionAddr::TcpTls {
                        host: host.to_owned(),
                        port,
                        insecure,
                        tls_params,
                    },
                    _ => ConnectionAddr::Tcp(host.to_owned(), port),
                };
                Ok(vec![Client::open(info.set_addr(addr))?])
            }
        }
    }

    /// The first seed (or the server): where `connect`'s checks run.
    pub(crate) fn first(&self) -> &Client {
        match self {
            Target::Single(client) => client,
            Target::Cluster { seeds, .. } => &seeds[0],
        }
    }
}

/// A connection to one server or to a cluster; cheap to clone (clones share the sockets).
#[derive(Clone)]
pub(crate) enum Connection {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> RedisFuture<'a, redis::Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Connection::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

pub(crate) struct Link {
    target: Target,
    config: AsyncConnectionConfig,
    /// The live connection and its generation (so a failure reported on an old connection does
    /// not throw away a newer one).
    current: Mutex<Option<(u64, Connection)>>,
    /// Held while dialing; remembers the last failed dial and when it started.
    dialing: tokio::sync::Mutex<Option<(Instant, RedisError)>>,
    generations: std::sync::atomic::AtomicU64,
}

impl Link {
    pub(crate) fn new(target: Target, timeouts: Timeouts) -> Self {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeouts.connect))
            .set_response_timeout(Some(timeouts.response));
        Link {
            target,
            config,
            current: Mutex::new(None),
            dialing: tokio::sync::Mutex::new(None),
            generations: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub(crate) fn target(&self) -> &Target {
        &self.target
    }

    /// A fresh connection of its own (not shared) to one node (see [`Target::node`]), with
    /// `response` as its timeout: for commands that block, like XREAD BLOCK, which would stall
    /// every call pipelined behind them.
    pub(crate) async fn dedicated(
        &self,
        node: Option<(&str, u16)>,
        response: Duration,
    ) -> Result<MultiplexedConnection, RedisError> {
        let config = self.config.clone().set_response_timeout(Some(response));
        let mut last_error = None;
        for client in self.target.node(node)? {
            match client
                .get_multiplexed_async_connection_with_config(&config)
                .await
            {
                Ok(connection) => return Ok(connection),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.expect("a target has at least one client"))
    }

    /// Runs `call` on the shared connection; a connection-level failure retires the connection.
    pub(crate) async fn run<T, F, Fut>(&self, call: F) -> Result<T, RedisError>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: std::future::Future<Output = Result<T, RedisError>>,
    {
        let (generation, connection) = self.connection().await?;
        let result = call(connection).await;
        if let Err(error) = &result
            && is_connection_level(error)
        {
            self.retire(generation);
        }
        result
    }

    /// Drops the shared connection, if it is still `generation`; the next call dials.
    pub(crate) fn retire(&self, generation: u64) {
        let mut current = self.lock();
        if current.as_ref().is_some_and(|(g, _)| *g == generation) {
            tracing::debug!("redis connection retired");
            *current = None;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(u64, Connection)>> {
        // Every update is one assignment, so a poisoned lock holds a consistent value.
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn connection(&self) -> Result<(u64, Connection), RedisError> {
        if let Some(live) = self.lock().clone() {
            return Ok(live);
        }
        let asked = Instant::now();
        let mut last_failure = self.dialing.lock().await;
        if let Some(live) = self.lock().clone() {
            return Ok(live);
        }
        // A dial that started after we asked and failed is our answer too.
        if let Some((started, error)) = last_failure.as_ref()
            && *started >= asked
        {
            return Err(error.clone());
        }
        let started = Instant::now();
        let dialed = match &self.target {
            Target::Single(client) => client
                .get_multiplexed_async_connection_with_config(&self.config)
                .await
                .map(Connection::Single),
            Target::Cluster { cluster, .. } => cluster
                .get_async_connection()
                .await
                .map(Connection::Cluster),
        };
        match dialed {
            Ok(connection) => {
                let generation = self
                    .generations
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                *self.lock() = Some((generation, connection.clone()));
                *last_failure = None;
                tracing::debug!(generation, "redis connected");
                Ok((generation, connection))
            }
            Err(error) => {
                *last_failure = Some((started, error.clone()));
                Err(error)
            }
        }
    }
}
