//! [`PostgresLiveStream`]: a [`LiveStream`] fed by LISTEN/NOTIFY from a trigger on the table.
//!
//! ```text
//!  trigger (AFTER INSERT/UPDATE/DELETE per row, AFTER TRUNCATE) ─▶ pg_notify('vlive_T', 'U:id')
//!  listener task: dial ─▶ LISTEN ─▶ report a gap ─▶ forward every notice ─▶ … lost? dial again
//! ```
//!
//! LISTEN/NOTIFY keeps nothing for a listener that is not connected: every notice sent while it
//! is away is gone. So the listener treats every (re)connect as a gap: it LISTENs first and
//! then reports [`LiveEvent::Lagged`], and the table invalidates; nothing stale survives a lost
//! notice. Notices are forwarded to subscribers without waiting on them (a slow subscription
//! lags on its own), so the listener drains Postgres' notification queue promptly: a listener
//! that stopped reading would fill that queue (8 GB by default) and then fail the commits of
//! every session that notifies. [`PostgresLiveStream::stats`] reports how full it is.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_postgres::{AsyncMessage, NoTls};
use tokio_stream::StreamExt;
use tracing::{Instrument, debug, info_span, warn};

use super::columns::quote_identifier;
use crate::error::{Error, Result};
use crate::live_table::{LiveEvent, LiveEvents, LiveStream, ManualLiveStream};

/// The listener's `application_name`, so operators (and tests) can find its backend.
pub const LISTENER_APPLICATION_NAME: &str = "vlive-listener";
/// The longest id a notice carries; a longer one is sent as a table-level change (a NOTIFY
/// payload over 8000 bytes would fail the writer's transaction).
const MAX_ID_BYTES: usize = 7000;
/// Pause before the first reconnect; doubled up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often the listener reads `pg_notification_queue_usage()` (its heartbeat too).
const QUEUE_CHECK: Duration = Duration::from_secs(10);
/// How long that read may take before the connection counts as lost.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// A [`LiveStream`] of one table's changes, from Postgres LISTEN/NOTIFY: `Inserted`, `Updated`
/// and `Deleted` with the row's id, `Changed` for a TRUNCATE or an id too long to send, and
/// `Lagged` after every (re)connect of its listener (the notices sent meanwhile are lost).
///
/// The notices come from a trigger: install it with [`PostgresLiveStream::install`] (or run the
/// SQL of [`PostgresLiveStream::install_sql`] in your own migrations). One listener connection
/// per `PostgresLiveStream`, whatever the number of subscriptions; it reconnects by itself with
/// a backoff (100 ms doubling to 5 s) and stops when the last clone and the last subscription
/// (a table's) are dropped. Errors are
/// logged and counted in [`stats`](Self::stats), never swallowed.
#[derive(Clone)]
pub struct PostgresLiveStream {
    inner: Arc<Inner>,
}

struct Inner {
    events: ManualLiveStream,
    counters: Arc<Counters>,
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl std::fmt::Debug for PostgresLiveStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresLiveStream")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// What the listener has seen, from [`PostgresLiveStream::stats`].
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct PostgresLiveStreamStats {
    /// Notices received and forwarded.
    pub notices: u64,
    /// Connections made (the first included); each one after the first is a gap.
    pub connections: u64,
    /// Connection or query failures (each logged).
    pub errors: u64,
    /// Notices whose payload was not one the trigger sends (forwarded as `Changed`).
    pub malformed: u64,
    /// `pg_notification_queue_usage()` at the last check (every 10 s and at each connect):
    /// the fraction of Postgres' notification queue in use. Near 1.0 and notifying commits
    /// start to fail: some listener of this database is not draining.
    pub queue_usage: f64,
}

#[derive(Default)]
struct Counters {
    notices: AtomicU64,
    connections: AtomicU64,
    errors: AtomicU64,
    malformed: AtomicU64,
    /// f64 bits.
    queue_usage: AtomicU64,
}

/// The table and its channel.
#[derive(Clone, Debug)]
struct Channel {
    table: String,
    quoted_table: String,
    quoted_id: String,
    /// `vlive_<table>`, a plain identifier.
    name: String,
    /// The trigger function, quoted (and schema-qualified like the table).
    function: String,
}

impl Channel {
    fn new(table: &str, id_column: &str) -> Result<Channel> {
        let (schema, name) = match table.split_once('.') {
            Some((schema, name)) => (Some(quote_identifier(schema, "schema")?), name),
            None => (None, table),
        };
        let quoted_name = quote_identifier(name, "table")?;
        let quoted_table = match &schema {
            Some(schema) => format!("{schema}.{quoted_name}"),
            None => quoted_name,
        };
        // Lowercase: LISTEN folds an unquoted name to lowercase, pg_notify keeps what it is
        // given; both sides use this one spelling.
        let channel = format!("vlive_{}", table.replace('.', "_")).to_lowercase();
        quote_identifier(&channel, "channel (vlive_ and the table's name)")?;
        let function = quote_identifier(&format!("{channel}_notify"), "trigger function")?;
        let function = match &schema {
            Some(schema) => format!("{schema}.{function}"),
            None => function,
        };
        Ok(Channel {
            table: table.to_owned(),
            quoted_table,
            quoted_id: quote_identifier(id_column, "id column")?,
            name: channel,
            function,
        })
    }
}

impl PostgresLiveStream {
    /// Starts listening for `table`'s changes (notices on channel `vlive_<table>`, from the
    /// trigger [`install`](Self::install) creates). Returns at once: the listener connects in
    /// the background, and its first connect is reported as a gap like every later one, so no
    /// change between this call and the LISTEN is missed.
    ///
    /// # Panics
    /// Outside a Tokio runtime (the listener is a Tokio task).
    pub fn connect(url: &str, table: &str, id_column: &str) -> Result<PostgresLiveStream> {
        let channel = Channel::new(table, id_column)?;
        let mut config: tokio_postgres::Config = url.parse().map_err(|_| Error::InvalidConfig {
            reason: "the postgres URL does not parse (it is not repeated here: it may hold a \
                     password)"
                .into(),
        })?;
        config
            .application_name(LISTENER_APPLICATION_NAME)
            // A dead peer is noticed by the heartbeat query; keepalives help the socket know.
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10));
        let events = ManualLiveStream::with_capacity(4096);
        let counters = Arc::new(Counters::default());
        let listener = Listener {
            config,
            channel,
            events: events.clone(),
            counters: counters.clone(),
        };
        let span = info_span!(parent: None, "postgres.listener", table = %table);
        Ok(PostgresLiveStream {
            inner: Arc::new(Inner {
                events,
                counters,
                listener: tokio::spawn(listener.run().instrument(span)),
            }),
        })
    }

    /// The SQL that creates (or replaces) the trigger function and the triggers on `table`, for
    /// those who manage migrations themselves. Idempotent.
    pub fn install_sql(table: &str, id_column: &str) -> Result<String> {
        let c = Channel::new(table, id_column)?;
        let (table, id, channel, function) = (&c.quoted_table, &c.quoted_id, &c.name, &c.function);
        Ok(format!(
            r#"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $vlive$
DECLARE
  id text;
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    PERFORM pg_notify('{channel}', 'T');
    RETURN NULL;
  END IF;
  IF TG_OP = 'UPDATE' AND OLD.{id} IS DISTINCT FROM NEW.{id} THEN
    -- The row left its old id: that id changed too.
    id := OLD.{id}::text;
    IF octet_length(id) > {MAX_ID_BYTES} THEN
      PERFORM pg_notify('{channel}', 'T');
    ELSE
      PERFORM pg_notify('{channel}', 'D:' || id);
    END IF;
  END IF;
  IF TG_OP = 'DELETE' THEN id := OLD.{id}::text; ELSE id := NEW.{id}::text; END IF;
  IF octet_length(id) > {MAX_ID_BYTES} THEN
    -- Too long for a notice (8000 bytes at most, or the writer's commit fails).
    PERFORM pg_notify('{channel}', 'T');
  ELSE
    PERFORM pg_notify('{channel}', left(TG_OP, 1) || ':' || id);
  END IF;
  RETURN NULL;
END
$vlive$;
DROP TRIGGER IF EXISTS vlive_notify ON {table};
CREATE TRIGGER vlive_notify AFTER INSERT OR UPDATE OR DELETE ON {table}
  FOR EACH ROW EXECUTE FUNCTION {function}();
DROP TRIGGER IF EXISTS vlive_notify_truncate ON {table};
CREATE TRIGGER vlive_notify_truncate AFTER TRUNCATE ON {table}
  FOR EACH STATEMENT EXECUTE FUNCTION {function}();
"#
        ))
    }

    /// Runs [`install_sql`](Self::install_sql) on the database at `url`, in one transaction.
    pub async fn install(url: &str, table: &str, id_column: &str) -> Result<()> {
        let sql = Self::install_sql(table, id_column)?;
        let (client, connection) = tokio_postgres::connect(url, NoTls)
            .await
            .map_err(Error::master)?;
        let connection = tokio::spawn(connection);
        let installed = client
            .batch_execute(&format!("BEGIN;\n{sql}COMMIT;"))
            .await
            .map_err(Error::master);
        drop(client);
        let _ = connection.await;
        installed
    }

    /// What the listener has seen.
    pub fn stats(&self) -> PostgresLiveStreamStats {
        let c = &self.inner.counters;
        PostgresLiveStreamStats {
            notices: c.notices.load(Ordering::Relaxed),
            connections: c.connections.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            malformed: c.malformed.load(Ordering::Relaxed),
            queue_usage: f64::from_bits(c.queue_usage.load(Ordering::Relaxed)),
        }
    }
}

impl LiveStream for PostgresLiveStream {
    /// A subscription keeps the listener running too: a table given the only handle (as
    /// `.live_stream(Arc::new(feed))` does) must not lose its feed when the handle goes.
    ///
    /// Every subscription starts with a gap (`Lagged`): the listener may have been connected
    /// before it, and whatever changed before the subscription is not in it.
    fn subscribe(&self) -> LiveEvents {
        let listener = self.inner.clone();
        let events = self.inner.events.subscribe().map(move |event| {
            let _alive = &listener;
            event
        });
        Box::pin(tokio_stream::once(LiveEvent::Lagged { missed: 0 }).chain(events))
    }
}

/// The listener task's state.
struct Listener {
    config: tokio_postgres::Config,
    channel: Channel,
    events: ManualLiveStream,
    counters: Arc<Counters>,
}

impl Listener {
    /// Sessions until the task is aborted; a failed one is retried after a growing pause.
    async fn run(self) {
        let mut backoff = MIN_BACKOFF;
        loop {
            let mut listening = false;
            let error = self.session(&mut listening).await;
            self.counters.errors.fetch_add(1, Ordering::Relaxed);
            warn!(error = %crate::error::chain(&error), table = %self.channel.table, "postgres listener lost its connection; reconnecting (changes meanwhile are a gap)");
            if listening {
                // Notices may be lost from now on: say so at once, not only when it is back,
                // so that reads go to the master while the listener is away.
                self.events.push(LiveEvent::Lagged { missed: 0 });
                backoff = MIN_BACKOFF;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// One connection: LISTEN, report the gap, forward notices until it breaks; returns what
    /// broke it. `listening` is set once LISTEN succeeded.
    async fn session(&self, listening: &mut bool) -> Error {
        match self.listen(listening).await {
            Ok(never) => match never {},
            Err(error) => error,
        }
    }

    async fn listen(&self, listening: &mut bool) -> Result<std::convert::Infallible> {
        let (client, mut connection) = self.config.connect(NoTls).await.map_err(Error::master)?;
        // The connection must be polled for LISTEN's answer too: a task drives it and hands
        // the notices over.
        let (notices, mut received) = tokio::sync::mpsc::unbounded_channel();
        let driver = tokio::spawn(async move {
            loop {
                match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notification(notice))) => {
                        if notices.send(Ok(notice.payload().to_owned())).is_err() {
                            return;
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(error)) => {
                        let _ = notices.send(Err(error));
                        return;
                    }
                    None => return,
                }
            }
        });
        let _driver = AbortOnDrop(driver);
        client
            .batch_execute(&format!("LISTEN {}", self.channel.name))
            .await
            .map_err(Error::master)?;
        *listening = true;
        self.counters.connections.fetch_add(1, Ordering::Relaxed);
        self.check_queue(&client).await?;
        // Listening from here: whatever was sent before is lost, so say so.
        debug!(channel = %self.channel.name, "listening; reporting the gap before it");
        self.events.push(LiveEvent::Lagged { missed: 0 });
        let mut check = tokio::time::interval(QUEUE_CHECK);
        check.tick().await;
        loop {
            tokio::select! {
                notice = received.recv() => match notice {
                    Some(Ok(payload)) => self.forward(&payload),
                    Some(Err(error)) => return Err(Error::master(error)),
                    None => return Err(Error::master(ConnectionClosed)),
                },
                _ = check.tick() => self.check_queue(&client).await?,
            }
        }
    }

    fn forward(&self, payload: &str) {
        self.counters.notices.fetch_add(1, Ordering::Relaxed);
        let event = match parse(payload) {
            Some(event) => event,
            None => {
                self.counters.malformed.fetch_add(1, Ordering::Relaxed);
                warn!(
                    payload,
                    "a notice vlive's trigger does not send: treated as a change"
                );
                LiveEvent::Changed
            }
        };
        tracing::trace!(payload, "postgres notice");
        self.events.push(event);
    }

    /// Reads the notification queue's usage. Also the listener's heartbeat: no answer within
    /// [`CHECK_TIMEOUT`] means the connection is gone (a half-open socket would otherwise hide
    /// a lost listener for as long as TCP keeps trying), and ends the session.
    async fn check_queue(&self, client: &tokio_postgres::Client) -> Result<()> {
        let query = client.query_one("SELECT pg_notification_queue_usage()", &[]);
        let answer = tokio::time::timeout(CHECK_TIMEOUT, query)
            .await
            .map_err(|_| Error::master(ConnectionClosed))?;
        match answer {
            Ok(row) => {
                let usage: f64 = row.get(0);
                self.counters
                    .queue_usage
                    .store(usage.to_bits(), Ordering::Relaxed);
                if usage > 0.5 {
                    warn!(
                        usage,
                        "postgres' notification queue is over half full: a listener is not draining; notifying commits fail when it is full"
                    );
                }
            }
            Err(error) => {
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
                warn!(%error, "could not read pg_notification_queue_usage()");
            }
        }
        Ok(())
    }
}

/// A trigger payload: `I:id`, `U:id`, `D:id` or `T`.
fn parse(payload: &str) -> Option<LiveEvent> {
    if payload == "T" {
        return Some(LiveEvent::Changed);
    }
    let (op, id) = payload.split_once(':')?;
    let id = id.to_owned();
    match op {
        "I" => Some(LiveEvent::Inserted { id }),
        "U" => Some(LiveEvent::Updated { id }),
        "D" => Some(LiveEvent::Deleted { id }),
        _ => None,
    }
}

#[derive(Debug)]
struct ConnectionClosed;

impl std::fmt::Display for ConnectionClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the listener's connection closed")
    }
}

impl std::error::Error for ConnectionClosed {}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse_and_ids_keep_their_colons() {
        assert!(matches!(parse("U:a:b"), Some(LiveEvent::Updated { id }) if id == "a:b"));
        assert!(matches!(parse("I:1"), Some(LiveEvent::Inserted { id }) if id == "1"));
        assert!(matches!(parse("D:"), Some(LiveEvent::Deleted { id }) if id.is_empty()));
        assert!(matches!(parse("T"), Some(LiveEvent::Changed)));
        assert!(parse("X:1").is_none());
        assert!(parse("nonsense").is_none());
    }

    #[test]
    fn channels_are_plain_identifiers() {
        assert_eq!(Channel::new("clients", "id").unwrap().name, "vlive_clients");
        assert_eq!(
            Channel::new("app.clients", "id").unwrap().name,
            "vlive_app_clients"
        );
        assert!(Channel::new("clients; drop", "id").is_err());
        assert!(
            Channel::new(&"x".repeat(60), "id").is_err(),
            "the channel would be too long"
        );
    }
}
