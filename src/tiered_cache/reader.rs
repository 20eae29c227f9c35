//! The log readers: one task per shard of the namespace (one for a single-shard namespace), each
//! on a connection of its own to the node that serves its shard, that keep the near tier in
//! step with the shard's invalidation log.
//!
//! ```text
//!  session: dial ─▶ HMGET inc seq link ─▶ flush near ─▶ caught up at the HMGET's start
//!     round: [XREAD BLOCK b COUNT n STREAMS log last ; HMGET inc seq link] (one pipeline)
//!        new incarnation (restart, FLUSHALL)  ─▶ flush, continue after the head
//!        gap in ids (log trimmed past us)     ─▶ flush, continue after the head
//!        broken link, or head behind us       ─▶ flush, continue after the head
//!          (history rolled back: a replica promoted without the last entries)
//!        entries that follow one by one       ─▶ drop their prefixes from near
//!     caught up at the round's start, unless the round was full (more to read)
//!  any error (connection, near tier) ─▶ the session ends; a new one flushes again
//! ```
//!
//! Every session starts with a flush: a reconnect means entries may have been missed. The
//! flush comes after reading the head, so every entry up to it is covered by it. Within a
//! session the connection may outlive the history it reads (a proxy in front of a failover):
//! sequence numbers alone would then let the reader skip the new history's first entries, so
//! each entry names its predecessor's link id and the reader checks the chain.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use tracing::{Instrument, debug, info_span, warn};

use super::freshness::{Freshness, Ticket};
use super::log_entry::{LogEntry, covering_prefixes, parse_xread};
use super::stats::{Counters, bump};
use crate::cache::Cache;
use crate::error::Result;
use crate::redis_cache::{LogHead, LogHeadFields, RedisCache, RedisFaultKind};

/// Entries read per round; a full round means more are waiting.
const ROUND_ENTRIES: usize = 512;
/// Pause before a new session after one failed, so a dead server is not dialed in a tight loop.
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// The reader's connection name, so operators (and tests) can find it in CLIENT LIST.
pub(crate) const CLIENT_NAME: &str = "vlive-near-reader";

/// State shared by the readers and the cache's handles.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) freshness: Freshness,
    pub(crate) counters: Counters,
    /// Per shard, the log position the near tier reflects (after a flush or applied entries);
    /// `None` until the shard's first session has flushed.
    applied: std::sync::Mutex<Vec<Option<LogHead>>>,
    /// How late entries are applied (`vlive_tiered_near_lag_seconds`): a no-op handle until
    /// the builder registers the cache's own.
    #[cfg(feature = "metrics")]
    pub(crate) near_lag: metrics::Histogram,
}

impl Shared {
    pub(crate) fn new(shards: usize) -> Self {
        Shared {
            freshness: Freshness::new(shards),
            counters: Counters::default(),
            applied: std::sync::Mutex::new(vec![None; shards]),
            #[cfg(feature = "metrics")]
            near_lag: metrics::Histogram::noop(),
        }
    }

    /// Whether the near tier reflects `shard`'s log exactly up to `head`: the same
    /// incarnation, sequence number and link. A reader already past `head` does not count: a
    /// head behind the reader may be a rolled-back history it has not noticed yet, so the
    /// caller waits for a round that started after it instead.
    pub(crate) fn has_applied(&self, shard: usize, head: &LogHead) -> bool {
        let applied = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        applied[shard].as_ref() == Some(head)
    }

    fn applied(&self, shard: usize, position: &Position) {
        self.applied.lock().unwrap_or_else(|p| p.into_inner())[shard] = Some(position.head.clone());
    }
}

pub(crate) struct Reader {
    pub(crate) far: RedisCache,
    /// The shard whose log this reader follows.
    pub(crate) shard: usize,
    pub(crate) near: Arc<dyn Cache>,
    pub(crate) shared: Arc<Shared>,
    /// How long one XREAD blocks when there is nothing new.
    pub(crate) block: Duration,
}

/// Where the reader is in the log (the last entry it applied, or the head it flushed at), and
/// under which flush.
struct Position {
    head: LogHead,
    ticket: Ticket,
}

impl Reader {
    /// Runs sessions until the task is aborted (when the last cache handle drops).
    pub(crate) async fn run(self) {
        loop {
            let span = info_span!(
                "near_tier_reader",
                namespace = self.far.namespace(),
                shard = self.shard
            );
            if let Err(error) = self.session().instrument(span).await {
                warn!(%error, "near-tier reader lost its session; gets bypass the near tier until it resyncs");
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }

    /// One connection's worth of rounds; returns only with the error that ended it.
    async fn session(&self) -> Result<()> {
        bump(&self.shared.counters.sessions, 1);
        let mut connection = self
            .far
            .dedicated_connection(self.shard, self.block)
            .await?;
        let () = redis::cmd("CLIENT")
            .arg("SETNAME")
            .arg(CLIENT_NAME)
            .query_async(&mut connection)
            .await
            .map_err(|e| self.fault(e))?;
        let started = Instant::now();
        let head = self.head(&mut connection).await?;
        let mut position = self.restart_at(head, started).await?;
        loop {
            if self.shared.freshness.ticket() != position.ticket {
                // The near tier was lost (a near write failed): flush again.
                let started = Instant::now();
                let head = self.head(&mut connection).await?;
                position = self.restart_at(head, started).await?;
                continue;
            }
            let started = Instant::now();
            let (reply, head) = self.round(&mut connection, position.head.seq).await?;
            position = self.apply(position, reply, head, started).await?;
        }
    }

    /// Flushes the near tier and continues after `head`; everything acknowledged before
    /// `started` (when `head` was asked for) is then reflected.
    async fn restart_at(&self, head: LogHead, started: Instant) -> Result<Position> {
        let ticket = self.shared.freshness.ticket();
        self.flush().await?;
        self.shared
            .freshness
            .caught_up_at(self.shard, started, ticket);
        debug!(?head, "near tier flushed; reading the log from here");
        let position = Position { head, ticket };
        self.shared.applied(self.shard, &position);
        Ok(position)
    }

    async fn round(
        &self,
        connection: &mut MultiplexedConnection,
        last: u64,
    ) -> Result<(redis::Value, LogHead)> {
        let mut pipe = redis::pipe();
        pipe.cmd("XREAD")
            .arg("BLOCK")
            .arg(self.block.as_millis() as u64)
            .arg("COUNT")
            .arg(ROUND_ENTRIES)
            .arg("STREAMS")
            .arg(&self.far.keyspace(self.shard).log)
            .arg(format!("{last}-0"))
            .add_command(self.far.log_head_cmd(self.shard));
        let (reply, head): (redis::Value, LogHeadFields) = pipe
            .query_async(connection)
            .await
            .map_err(|e| self.fault(e))?;
        Ok((reply, LogHead::from_fields(head)))
    }

    async fn apply(
        &self,
        position: Position,
        reply: redis::Value,
        head: LogHead,
        started: Instant,
    ) -> Result<Position> {
        let entries = parse_xread(reply).map_err(|reason| {
            self.far
                .fault("read_log", None, RedisFaultKind::Corrupt(reason))
        })?;
        match next_step(&position.head, &entries, &head) {
            Step::Apply => {}
            Step::Restart => {
                debug!(
                    applied = ?position.head,
                    ?head,
                    "new incarnation, a gap or a rollback in the log"
                );
                return self.restart_at(head, started).await;
            }
        }
        self.drop_prefixes(&entries).await?;
        bump(&self.shared.counters.log_entries, entries.len() as u64);
        #[cfg(feature = "metrics")]
        crate::metrics::tiered::record_lag(
            &self.shared.near_lag,
            entries.iter().filter_map(|entry| entry.written_us),
        );
        if entries.len() < ROUND_ENTRIES {
            self.shared
                .freshness
                .caught_up_at(self.shard, started, position.ticket);
        }
        let position = Position {
            head: match entries.last() {
                Some(entry) => LogHead {
                    incarnation: head.incarnation,
                    seq: entry.seq,
                    link: entry.link.clone(),
                },
                None => position.head,
            },
            ticket: position.ticket,
        };
        self.shared.applied(self.shard, &position);
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

    async fn head(&self, connection: &mut MultiplexedConnection) -> Result<LogHead> {
        let fields: LogHeadFields = self
            .far
            .log_head_cmd(self.shard)
            .query_async(connection)
            .await
            .map_err(|e| self.fault(e))?;
        Ok(LogHead::from_fields(fields))
    }

    fn fault(&self, error: redis::RedisError) -> crate::Error {
        self.far.fault("read_log", None, RedisFaultKind::of(error))
    }
}

/// What to do with a round's answer.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// The entries follow the position one by one: apply them.
    Apply,
    /// They cannot be trusted to: flush and continue after the head read with them. The head
    /// was read after the entries, so it covers every entry returned and none is lost.
    Restart,
}

/// Decides between applying `entries` (read after `applied`) and restarting. Restart when:
/// - the server has a new incarnation (`head`, read after the entries, says so);
/// - the entries do not follow one by one: a jump in sequence numbers (the log was trimmed
///   past the reader), or an entry whose `before` is not the link of the one before it (the
///   history was rolled back and has grown again past where the reader was);
/// - the head is behind the last entry, or at it with another link: rolled back, not (yet)
///   grown past it.
///
/// One new incarnation needs no flush: the first one after the reader saw none at all (a fresh
/// namespace, or after a FLUSHALL, which it flushed for already). Its entries from seq 1 cover
/// every write it ever took, and before it Redis held nothing the near tier could have copied.
fn next_step(applied: &LogHead, entries: &[LogEntry], head: &LogHead) -> Step {
    let adopting = applied.incarnation.is_none() && applied.seq == 0;
    if head.incarnation != applied.incarnation && !adopting {
        return Step::Restart;
    }
    let (mut seq, mut link) = (applied.seq, applied.link.as_str());
    for entry in entries {
        let follows = entry.seq == seq + 1
            && entry.before == link
            && Some(&entry.incarnation) == head.incarnation.as_ref();
        if !follows {
            return Step::Restart;
        }
        (seq, link) = (entry.seq, &entry.link);
    }
    if head.seq < seq || (head.seq == seq && head.link != link) {
        return Step::Restart;
    }
    Step::Apply
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The link id of entry `seq` in `history` ("" before the first entry).
    fn link(history: &str, seq: u64) -> String {
        if seq == 0 {
            String::new()
        } else {
            format!("{history}{seq}")
        }
    }

    /// The head at `seq` of `history` in `incarnation`.
    fn at(incarnation: &str, history: &str, seq: u64) -> LogHead {
        LogHead {
            incarnation: Some(incarnation.into()),
            seq,
            link: link(history, seq),
        }
    }

    fn entries(incarnation: &str, history: &str, seqs: &[u64]) -> Vec<LogEntry> {
        seqs.iter()
            .map(|&seq| LogEntry {
                seq,
                prefix: format!("k{seq}"),
                incarnation: incarnation.into(),
                link: link(history, seq),
                before: link(history, seq - 1),
                written_us: None,
            })
            .collect()
    }

    #[test]
    fn entries_that_follow_one_by_one_are_applied() {
        let applied = at("7", "h", 10);
        let next = entries("7", "h", &[11, 12]);
        assert_eq!(next_step(&applied, &next, &at("7", "h", 12)), Step::Apply);
        assert_eq!(
            next_step(&applied, &[], &at("7", "h", 15)),
            Step::Apply,
            "entries written after the read"
        );
        assert_eq!(next_step(&applied, &[], &applied), Step::Apply, "idle");
    }

    #[test]
    fn a_gap_restarts() {
        let applied = at("7", "h", 10);
        let gap = entries("7", "h", &[13, 14]);
        assert_eq!(next_step(&applied, &gap, &at("7", "h", 16)), Step::Restart);
        let hole = entries("7", "h", &[11, 13]);
        assert_eq!(next_step(&applied, &hole, &at("7", "h", 13)), Step::Restart);
    }

    #[test]
    fn a_rolled_back_history_restarts_even_when_ids_look_contiguous() {
        // Applied up to 10 of history h; the server went back to 8 and took new writes (g).
        let applied = at("7", "h", 10);
        let mut regrown = entries("7", "g", &[11, 12]);
        regrown[0].before = link("g", 10);
        assert_eq!(
            next_step(&applied, &regrown, &at("7", "g", 12)),
            Step::Restart,
            "grown past the reader again"
        );
        assert_eq!(
            next_step(&applied, &[], &at("7", "g", 9)),
            Step::Restart,
            "behind the reader"
        );
        assert_eq!(
            next_step(&applied, &[], &at("7", "g", 10)),
            Step::Restart,
            "back at the reader's seq with another link"
        );
    }

    #[test]
    fn a_new_incarnation_restarts_even_when_ids_look_contiguous() {
        let applied = at("7", "h", 10);
        // After a FLUSHALL the ids start again at 1; they can reach 11 before the reader looks.
        let reborn = entries("9", "h", &[11]);
        assert_eq!(
            next_step(&applied, &reborn, &at("9", "h", 11)),
            Step::Restart
        );
        assert_eq!(next_step(&applied, &[], &LogHead::default()), Step::Restart);
        assert_eq!(
            next_step(&applied, &reborn, &at("7", "h", 11)),
            Step::Restart,
            "an entry of another incarnation"
        );
    }

    #[test]
    fn the_first_incarnation_after_none_is_followed_from_its_first_entry() {
        let empty = LogHead::default();
        assert_eq!(
            next_step(&empty, &entries("9", "h", &[1, 2]), &at("9", "h", 2)),
            Step::Apply
        );
        assert_eq!(next_step(&empty, &[], &at("9", "h", 0)), Step::Apply);
        // Unless its first entries are gone, or another incarnation already replaced it.
        assert_eq!(
            next_step(&empty, &entries("9", "h", &[3]), &at("9", "h", 3)),
            Step::Restart
        );
        assert_eq!(
            next_step(&empty, &entries("9", "h", &[1]), &at("4", "h", 1)),
            Step::Restart
        );
    }
}
