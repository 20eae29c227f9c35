//! One multiplexed connection, replaced when it breaks.
//!
//! Every clone of a `RedisCache` shares one `Link`; concurrent calls pipeline on its single
//! socket (the client writes requests as they come and matches replies in order). When a call
//! fails at the connection level (I/O error, timeout, dropped socket) the connection is thrown
//! away and the next call dials again. There is no retry: a failed write's outcome is unknown,
//! and the caller decides.
//!
//! Every call is bounded: dialing by the connect timeout, each request by the response timeout.
//! Concurrent callers that find no connection wait for one dial instead of each dialing in turn,
//! so a dead server costs each call at most about two connect timeouts, never a queue of them.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisError};

use crate::error::is_connection_level;

/// How long to wait for a connection and for each answer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timeouts {
    pub(crate) connect: Duration,
    pub(crate) response: Duration,
}

pub(crate) struct Link {
    client: Client,
    config: AsyncConnectionConfig,
    /// The live connection and its generation (so a failure reported on an old connection does
    /// not throw away a newer one).
    current: Mutex<Option<(u64, MultiplexedConnection)>>,
    /// Held while dialing; remembers the last failed dial and when it started.
    dialing: tokio::sync::Mutex<Option<(Instant, RedisError)>>,
    generations: std::sync::atomic::AtomicU64,
}

impl Link {
    pub(crate) fn new(client: Client, timeouts: Timeouts) -> Self {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeouts.connect))
            .set_response_timeout(Some(timeouts.response));
        Link {
            client,
            config,
            current: Mutex::new(None),
            dialing: tokio::sync::Mutex::new(None),
            generations: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// A fresh connection of its own (not shared), with `response` as its timeout: for commands
    /// that block, like XREAD BLOCK, which would stall every call pipelined behind them.
    pub(crate) async fn dedicated(
        &self,
        response: Duration,
    ) -> Result<MultiplexedConnection, RedisError> {
        let config = self.config.clone().set_response_timeout(Some(response));
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }

    /// Runs `call` on the shared connection; a connection-level failure retires the connection.
    pub(crate) async fn run<T, F, Fut>(&self, call: F) -> Result<T, RedisError>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
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

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(u64, MultiplexedConnection)>> {
        // Every update is one assignment, so a poisoned lock holds a consistent value.
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn connection(&self) -> Result<(u64, MultiplexedConnection), RedisError> {
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
        match self
            .client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await
        {
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
