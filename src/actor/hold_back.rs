//! Lazy mode's hold-back: while acknowledged puts keep arriving, the actor lets them queue
//! until they make a full batch, instead of committing a batch every few puts.
//!
//! Why: a lazy put's caller has its answer already; when it commits decides only when it
//! becomes durable. Committing as soon as the queue ran dry made the actor commit, and publish a
//! snapshot, every few puts under a steady mix of gets and puts: in the peer bench's 90/10 cell
//! (64 tasks, two workers) 6 runs of 19 fell into batches of 4-8 puts, where the actor's
//! commits took the CPU the gets needed and so kept the batches small (0.18-0.45M ops/s
//! instead of about 0.85M). Holding back while puts keep coming (the first version of this
//! module, d5e399a) filled the batches (about 1,000 puts: the batch limit) in all 19 runs, at
//! 0.76-0.96M; this version ran the cell alike in interleaved runs (docs/peers.md).
//!
//! A hold starts only before a batch whose first command is an acknowledged put, and not after
//! a batch that stopped at a limit with more queued (that queue goes at once). The actor sleeps
//! a [`TICK`] at a time (not blocked on the channel: a sender then has no thread to wake) and
//! stops holding back as soon as:
//! - a tick passes with no new command queued: the burst is over (so a lone put waits one
//!   tick);
//! - a full batch is queued ([`full_batch_ops`] commands: `max_batch_ops`, fewer under a byte
//!   budget, whose checkpoint allowance ends batches sooner; or `max_batch_bytes` in the write
//!   buffer): holding longer would not fill the batch more, only let a queue build up;
//! - a caller waits for the actor: an awaited command (a flush, an invalidation, a fill or fill
//!   token, a get queued behind a write, a put on the durable path, a close) holds a slot of
//!   the channel until the actor takes it out (a lazy put that finds the cache closing awaits
//!   its answer without a slot, but the `close` that began it holds one from the moment
//!   after, until the actor takes it out; an actor that stopped holds nothing back);
//!   a put waiting for room in a full write buffer shows as a full buffer, below;
//! - the write buffer is half full, so that callers do not meet its backpressure while the
//!   actor sleeps;
//! - the hold's deadline passes: [`LIMIT`] or a quarter of `max_delay` after it began, whichever
//!   is sooner, and never past a checkpoint falling due.
//!
//! So a put waits at most one hold: a hold ends once a full batch is queued, and no batch holds
//! again until one has taken everything queued.
//! Only timing changes: commands stay in the channel, in order, and are served as before. The
//! loom models do not hold back (they would only sleep).

use std::time::{Duration, Instant};

/// How long the actor sleeps between looks at the queue.
pub(crate) const TICK: Duration = Duration::from_micros(500);

/// The longest hold (unless a quarter of `max_delay` is shorter).
pub(crate) const LIMIT: Duration = Duration::from_millis(20);

/// What makes a batch full, and how long a hold may last.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bounds {
    /// Commands that make a full batch ([`full_batch_ops`]).
    pub(crate) batch_ops: usize,
    /// `max_batch_bytes`.
    pub(crate) batch_bytes: u64,
    /// The write buffer's capacity in bytes.
    pub(crate) buffer: u64,
    /// Lazy mode's `max_delay`.
    pub(crate) max_delay: Duration,
}

/// What the actor sees at one look while holding back.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Look {
    pub(crate) now: Instant,
    /// Commands in the channel (the one in hand aside).
    pub(crate) queued: usize,
    /// Bytes held in the write buffer.
    pub(crate) held: u64,
    /// A caller waits for the actor ([`Shared::is_awaited`](super::shared::Shared::is_awaited)).
    pub(crate) awaited: bool,
}

/// One hold: its bounds, when it must end, and what the queue held at the last look.
#[derive(Debug)]
pub(crate) struct HoldBack {
    bounds: Bounds,
    deadline: Instant,
    queued_before: Option<usize>,
}

impl HoldBack {
    /// A hold starting at `now`, ending by `checkpoint` (when one falls due) at the latest.
    pub(crate) fn new(now: Instant, bounds: Bounds, checkpoint: Option<Instant>) -> Self {
        let deadline = now + LIMIT.min(bounds.max_delay / 4);
        HoldBack {
            bounds,
            deadline: checkpoint.map_or(deadline, |due| due.min(deadline)),
            queued_before: None,
        }
    }

    /// How long to sleep before the next look, or `None`: the hold is over.
    pub(crate) fn next_nap(&mut self, look: Look) -> Option<Duration> {
        let still_coming = self.queued_before.is_none_or(|before| look.queued > before);
        self.queued_before = Some(look.queued);
        let bounds = self.bounds;
        let batch_full =
            look.queued.saturating_add(1) >= bounds.batch_ops || look.held >= bounds.batch_bytes;
        let holding = still_coming
            && !batch_full
            && !look.awaited
            && look.held.saturating_mul(2) < bounds.buffer
            && look.now < self.deadline;
        holding.then(|| TICK.min(self.deadline - look.now))
    }
}

/// How many commands make a full batch: `max_ops`, or fewer under a byte budget, where a batch
/// also ends once its puts may replace what is left of the checkpoint's `allowance` (in bytes;
/// `actor::checkpoint`). Each put counts for at least the pages of an empty one.
pub(crate) fn full_batch_ops(max_ops: usize, allowance: Option<u64>) -> usize {
    let fewest = crate::store::pages_replaced("", 0);
    let puts = allowance.map_or(u64::MAX, |bytes| bytes.div_ceil(fewest));
    max_ops
        .min(usize::try_from(puts).unwrap_or(usize::MAX))
        .max(1)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    const BOUNDS: Bounds = Bounds {
        batch_ops: 1024,
        batch_bytes: 16 * MIB,
        buffer: 64 * MIB,
        max_delay: Duration::from_millis(100),
    };

    /// Whether the hold goes on after this look.
    fn holds(hold: &mut HoldBack, look: Look) -> bool {
        hold.next_nap(look).is_some()
    }

    fn look(now: Instant, queued: usize) -> Look {
        Look {
            now,
            queued,
            held: MIB,
            awaited: false,
        }
    }

    #[test]
    fn it_holds_while_more_puts_arrive_and_stops_when_none_did() {
        let start = Instant::now();
        let mut hold = HoldBack::new(start, BOUNDS, None);
        assert!(
            holds(&mut hold, look(start, 1)),
            "the first look holds a tick"
        );
        assert!(holds(&mut hold, look(start + TICK, 40)));
        assert!(holds(&mut hold, look(start + TICK * 2, 90)));
        assert!(
            !holds(&mut hold, look(start + TICK * 3, 90)),
            "nothing arrived during a tick: the burst is over"
        );
    }

    #[test]
    fn a_full_batch_in_the_queue_ends_the_hold() {
        let start = Instant::now();
        let mut hold = HoldBack::new(start, BOUNDS, None);
        assert!(holds(&mut hold, look(start, 1000)));
        assert!(
            !holds(&mut hold, look(start + TICK, 1023)),
            "1,023 queued and one in hand make a batch of 1,024"
        );

        let mut hold = HoldBack::new(start, BOUNDS, None);
        assert!(
            !holds(&mut hold, look(start, 5000)),
            "a queue longer than a batch is never held"
        );

        let mut hold = HoldBack::new(start, BOUNDS, None);
        let bytes_of_a_batch = Look {
            held: 16 * MIB,
            ..look(start, 10)
        };
        assert!(!holds(&mut hold, bytes_of_a_batch));
    }

    #[test]
    fn a_waiting_caller_ends_the_hold() {
        let start = Instant::now();
        let mut hold = HoldBack::new(start, BOUNDS, None);
        assert!(holds(&mut hold, look(start, 1)));
        let awaited = Look {
            awaited: true,
            ..look(start + TICK, 50)
        };
        assert!(!holds(&mut hold, awaited));
    }

    #[test]
    fn a_half_full_buffer_ends_the_hold() {
        let start = Instant::now();
        let bounds = Bounds {
            batch_bytes: 64 * MIB,
            ..BOUNDS
        };
        let mut hold = HoldBack::new(start, bounds, None);
        let below = Look {
            held: 32 * MIB - 1,
            ..look(start, 1)
        };
        assert!(holds(&mut hold, below));
        let half = Look {
            held: 32 * MIB,
            ..look(start + TICK, 2)
        };
        assert!(!holds(&mut hold, half));
    }

    #[test]
    fn a_hold_ends_at_its_limit() {
        let start = Instant::now();
        let mut hold = HoldBack::new(start, BOUNDS, None);
        assert!(holds(&mut hold, look(start + LIMIT - TICK, 1)));
        assert!(!holds(&mut hold, look(start + LIMIT, 2)));
    }

    #[test]
    fn a_short_max_delay_shortens_the_hold() {
        let start = Instant::now();
        let bounds = Bounds {
            max_delay: Duration::from_millis(8),
            ..BOUNDS
        };
        let mut hold = HoldBack::new(start, bounds, None);
        assert!(holds(&mut hold, look(start, 1)));
        assert!(!holds(&mut hold, look(start + Duration::from_millis(2), 2)));
    }

    #[test]
    fn a_hold_never_naps_past_its_deadline() {
        let start = Instant::now();
        let due = start + TICK / 5;
        let mut hold = HoldBack::new(start, BOUNDS, Some(due));
        assert_eq!(hold.next_nap(look(start, 1)), Some(TICK / 5));
    }

    #[test]
    fn a_byte_budget_makes_batches_smaller_and_so_full_sooner() {
        assert_eq!(full_batch_ops(1024, None), 1024);
        let page = crate::store::pages_replaced("", 0);
        assert_eq!(full_batch_ops(1024, Some(128 * page)), 128);
        assert_eq!(full_batch_ops(1024, Some(128 * page + 1)), 129);
        assert_eq!(full_batch_ops(1024, Some(1)), 1, "never an empty batch");
        assert_eq!(full_batch_ops(16, Some(128 * page)), 16);
    }

    #[test]
    fn a_hold_ends_when_a_checkpoint_falls_due() {
        let start = Instant::now();
        let due = start + Duration::from_millis(3);
        let mut hold = HoldBack::new(start, BOUNDS, Some(due));
        assert!(holds(&mut hold, look(start, 1)));
        assert!(!holds(&mut hold, look(due, 2)));

        let overdue = start.checked_sub(Duration::from_millis(1)).unwrap_or(start);
        let mut hold = HoldBack::new(start, BOUNDS, Some(overdue));
        assert!(
            !holds(&mut hold, look(start, 1)),
            "a checkpoint already due is not held back"
        );
    }
}
