//! The log reader: one task per `TieredCache`, on a connection of its own, that keeps the near
//! tier in step with the namespace's invalidation log.
//!
//! ```text
//!  session: dial ─▶ HMGET inc seq ─▶ flush near ─▶ caught up at the HMGET's start
//!     round: [XREAD BLOCK b COUNT n STREAMS log last ; HMGET inc seq] (one pipeline)
//!        new incarnation (restart, FLUSHALL)  ─▶ flush, continue after its seq
//!        gap in ids (log trimmed past us)     ─▶ flush, continue after the newest seq
//!        contiguous entries                   ─▶ drop their prefixes from near
//!     caught up at the round's start, unless the round was full (more to read)
//!  any error (connection, near tier) ─▶ the session ends; a new one flushes again
//! ```
//!
//! Every session starts with a flush: a reconnect means entries may have been missed. The
//! flush comes after reading `seq`, so every entry up to `seq` is covered by it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use tracing::{Instrument, debug, info_span, warn};

use super::freshness::{Freshness, Ticket};
use super::log_entry::{LogEntry, covering_prefixes, parse_xread};
use super::stats::{Counters, bump};
use crate::cache::Cache;
use crate::error::Result;
use crate::redis_cache::{RedisCache, RedisFaultKind};

/// Entries read per round; a full round means more are waiting.
const ROUND_ENTRIES: usize = 512;
/// Pause before a new session after one failed, so a dead server is not dialed in a tight loop.
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// The reader's connection name, so operators (and tests) can find it in CLIENT LIST.
pub(crate) const CLIENT_NAME: &str = "vlive-near-reader";

/// State shared by the reader and the cache's handles.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) freshness: Freshness,
    pub(crate) counters: Counters,
    /// The incarnation and seq the near tier reflects (after a flush or applied entries);
    /// `None` until the first session has flushed.
    applied: std::sync::Mutex<Option<Meta>>,
}

impl Shared {
    /// Whether the near tier reflects the log up to `head` (its incarnation and seq).
    pub(crate) fn has_applied(&self, head: &Meta) -> bool {
        let applied = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        applied.as_ref().is_some_and(|(incarnation, seq)| {
            *incarnation == head.0 && seq.unwrap_or(0) >= head.1.unwrap_or(0)
        })
    }

    fn applied(&self, position: &Position) {
        *self.applied.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((position.incarnation.clone(), Some(position.last)));
    }
}

pub(crate) struct Reader {
    pub(crate) far: RedisCache,
    pub(crate) near: Arc<dyn Cache>,
    pub(crate) shared: Arc<Shared>,
    /// How long one XREAD blocks when there is nothing new.
    pub(crate) block: Duration,
}

/// Where the reader is in the log, and under which flush.
struct Position {
    incarnation: Option<String>,
    last: u64,
    ticket: Ticket,
}

/// `HMGET meta inc seq`.
pub(crate) type Meta = (Option<String>, Option<u64>);

impl Reader {
    /// Runs sessions until the task is aborted (when the last cache handle drops).
    pub(crate) async fn run(self) {
        loop {
            let span = info_span!("near_tier_reader", namespace = self.far.namespace());
            if let Err(error) = self.session().instrument(span).await {
                warn!(%error, "near-tier reader lost its session; gets bypass the near tier until it resyncs");
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }

    /// One connection's worth of rounds; returns only with the error that ended it.
    async fn session(&self) -> Result<()> {
        bump(&self.shared.counters.sessions, 1);
        let mut connection = self.far.dedicated_connection(self.block).await?;
        let () = redis::cmd("CLIENT")
            .arg("SETNAME")
            .arg(CLIENT_NAME)
            .query_async(&mut connection)
            .await
            .map_err(|e| self.fault(e))?;
        let started = Instant::now();
        let meta = self.meta(&mut connection).await?;
        let mut position = self.restart_at(meta, started).await?;
        loop {
            if self.shared.freshness.ticket() != position.ticket {
                // The near tier was lost (a near write failed): flush again.
                let started = Instant::now();
                let meta = self.meta(&mut connection).await?;
                position = self.restart_at(meta, started).await?;
                continue;
            }
            let started = Instant::now();
            let (reply, meta) = self.round(&mut connection, position.last).await?;
            position = self.apply(position, reply, meta, started).await?;
        }
    }

    /// Flushes the near tier and continues after `meta`'s seq; everything acknowledged before
    /// `started` (when `meta` was asked for) is then reflected.
    async fn restart_at(&self, (incarnation, seq): Meta, started: Instant) -> Result<Position> {
        let ticket = self.shared.freshness.ticket();
        self.flush().await?;
        self.shared.freshness.caught_up_at(started, ticket);
        debug!(
            ?incarnation,
            seq, "near tier flushed; reading the log from here"
        );
        let position = Position {
            incarnation,
            last: seq.unwrap_or(0),
            ticket,
        };
        self.shared.applied(&position);
        Ok(position)
    }

    async fn round(
        &self,
        connection: &mut MultiplexedConnection,
        last: u64,
    ) -> Result<(redis::Value, Meta)> {
        let mut pipe = redis::pipe();
        pipe.cmd("XREAD")
            .arg("BLOCK")
            .arg(self.block.as_millis() as u64)
            .arg("COUNT")
            .arg(ROUND_ENTRIES)
            .arg("STREAMS")
            .arg(&self.far.keys().log)
            .arg(format!("{last}-0"))
            .add_command(self.meta_cmd());
        pipe.query_async(connection)
            .await
            .map_err(|e| self.fault(e))
    }

    async fn apply(
        &self,
        position: Position,
        reply: redis::Value,
        meta: Meta,
        started: Instant,
    ) -> Result<Position> {
        let entries = parse_xread(reply).map_err(|reason| {
            self.far
                .fault("read_log", None, RedisFaultKind::Corrupt(reason))
        })?;
        let incarnation = match next_step(&position, &entries, &meta) {
            Step::Apply(incarnation) => incarnation,
            Step::Restart(head) => {
                debug!(
                    last = position.last,
                    ?head,
                    "new incarnation or a gap in the log"
                );
                return self.restart_at(head, started).await;
            }
        };
        self.drop_prefixes(&entries).await?;
        bump(&self.shared.counters.log_entries, entries.len() as u64);
        if entries.len() < ROUND_ENTRIES {
            self.shared.freshness.caught_up_at(started, position.ticket);
        }
        let position = Position {
            incarnation,
            last: entries.last().map_or(position.last, |e| e.seq),
            ticket: position.ticket,
        };
        self.shared.applied(&position);
        Ok(position)
    }

    /// Drops the entries' prefixes from the near tier, all at once: a RedbCache near tier then
    /// commits them as one batch instead of one commit (and fsync) each.
    async fn drop_prefixes(&self, entries: &[LogEntry]) -> Result<()> {
        let mut drops = tokio::task::JoinSet::new();
        for prefix in covering_prefixes(entries) {
            let (near, prefix) = (self.near.clone(), prefix.to_owned());
            drops.spawn(async move { near.invalidate_prefix(&prefix).await });
        }
        let mut outcome = Ok(());
        while let Some(joined) = drops.join_next().await {
            match joined {
                Ok(Ok(())) => {}
                Ok(Err(error)) => outcome = Err(error),
                Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
                // Only a runtime shutting down cancels these tasks.
                Err(_) => outcome = Err(crate::Error::Closed),
            }
        }
        if outcome.is_err() {
            self.shared.freshness.lost();
        }
        outcome
    }

    async fn flush(&self) -> Result<()> {
        bump(&self.shared.counters.flushes, 1);
        let flushed = self.near.invalidate_prefix("").await;
        if flushed.is_err() {
            self.shared.freshness.lost();
        }
        flushed
    }

    async fn meta(&self, connection: &mut MultiplexedConnection) -> Result<Meta> {
        self.meta_cmd()
            .query_async(connection)
            .await
            .map_err(|e| self.fault(e))
    }

    fn meta_cmd(&self) -> redis::Cmd {
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(&self.far.keys().meta).arg("inc").arg("seq");
        cmd
    }

    fn fault(&self, error: redis::RedisError) -> crate::Error {
        self.far.fault("read_log", None, RedisFaultKind::of(error))
    }
}

/// What to do with a round's answer.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// The entries follow the position one by one: apply them, in this incarnation.
    Apply(Option<String>),
    /// They cannot be trusted to: flush and continue after this head. It covers every entry
    /// returned, so none is lost.
    Restart(Meta),
}

/// Decides between applying `entries` and restarting: the server has a new incarnation
/// (`meta`, read after the entries, says so), or the entries do not follow one by one (the log
/// was trimmed past the reader).
///
/// One new incarnation needs no flush: the first one after the reader saw none at all (a fresh
/// namespace, or after a FLUSHALL, which it flushed for already). Its entries from seq 1 cover
/// every write it ever took, and before it Redis held nothing the near tier could have copied.
fn next_step(position: &Position, entries: &[LogEntry], meta: &Meta) -> Step {
    let (incarnation, seq) = meta;
    let adopting = position.incarnation.is_none() && position.last == 0;
    if *incarnation != position.incarnation && !adopting {
        return Step::Restart(meta.clone());
    }
    let follows = entries
        .iter()
        .zip(position.last + 1..)
        .all(|(entry, next)| entry.seq == next && Some(&entry.incarnation) == incarnation.as_ref());
    if follows {
        return Step::Apply(incarnation.clone());
    }
    let newest = entries.last().map_or(0, |e| e.seq);
    Step::Restart((incarnation.clone(), Some(seq.unwrap_or(0).max(newest))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(incarnation: &str, last: u64) -> Position {
        Position {
            incarnation: Some(incarnation.into()),
            last,
            ticket: Freshness::default().ticket(),
        }
    }

    fn entries(incarnation: &str, seqs: &[u64]) -> Vec<LogEntry> {
        seqs.iter()
            .map(|&seq| LogEntry {
                seq,
                prefix: format!("k{seq}"),
                incarnation: incarnation.into(),
            })
            .collect()
    }

    fn meta(incarnation: &str, seq: u64) -> Meta {
        (Some(incarnation.into()), Some(seq))
    }

    fn restart(incarnation: &str, seq: u64) -> Step {
        Step::Restart(meta(incarnation, seq))
    }

    fn apply(incarnation: &str) -> Step {
        Step::Apply(Some(incarnation.into()))
    }

    #[test]
    fn entries_that_follow_one_by_one_are_applied() {
        let position = at("7", 10);
        assert_eq!(
            next_step(&position, &entries("7", &[11, 12]), &meta("7", 12)),
            apply("7")
        );
        assert_eq!(
            next_step(&position, &[], &meta("7", 15)),
            apply("7"),
            "read before them"
        );
    }

    #[test]
    fn a_gap_restarts_after_everything_seen() {
        let position = at("7", 10);
        let gap = entries("7", &[13, 14]);
        assert_eq!(next_step(&position, &gap, &meta("7", 16)), restart("7", 16));
        let hole = entries("7", &[11, 13]);
        assert_eq!(
            next_step(&position, &hole, &meta("7", 13)),
            restart("7", 13)
        );
    }

    #[test]
    fn a_new_incarnation_restarts_even_when_ids_look_contiguous() {
        let position = at("7", 10);
        // After a FLUSHALL the ids start again at 1; they can reach 11 before the reader looks.
        let reborn = entries("9", &[11]);
        assert_eq!(
            next_step(&position, &reborn, &meta("9", 11)),
            restart("9", 11)
        );
        assert_eq!(
            next_step(&position, &[], &(None, None)),
            Step::Restart((None, None))
        );
        assert_eq!(
            next_step(&position, &reborn, &meta("7", 11)),
            restart("7", 11)
        );
    }

    #[test]
    fn the_first_incarnation_after_none_is_followed_from_its_first_entry() {
        let empty = Position {
            incarnation: None,
            last: 0,
            ticket: Freshness::default().ticket(),
        };
        assert_eq!(
            next_step(&empty, &entries("9", &[1, 2]), &meta("9", 2)),
            apply("9")
        );
        assert_eq!(
            next_step(&empty, &[], &(Some("9".into()), None)),
            apply("9")
        );
        // Unless its first entries are gone, or another incarnation already replaced it.
        assert_eq!(
            next_step(&empty, &entries("9", &[3]), &meta("9", 3)),
            restart("9", 3)
        );
        assert_eq!(
            next_step(&empty, &entries("9", &[1]), &meta("4", 1)),
            restart("4", 1)
        );
    }
}
