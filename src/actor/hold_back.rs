//! Lazy mode's hold-back: while acknowledged puts keep arriving, the actor lets them queue
//! instead of committing a batch every few puts.
//!
//! Why: a lazy put's caller has its answer already; when it commits decides only when it
//! becomes durable. Committing as soon as the queue ran dry made the actor commit, and publish a
//! snapshot, every few puts under a steady mix of gets and puts: in the peer bench's 90/10 cell
//! (64 tasks, two workers) 6 runs of 19 fell into batches of 4-8 puts, where the actor's
//! commits took the CPU the gets needed and so kept the batches small (0.18-0.45M ops/s
//! instead of about 0.85M). Holding back while puts keep coming filled the batches (about
//! 1,000 puts: the batch limit) in all 19 runs, at 0.76-0.96M (docs/peers.md).
//!
//! The actor sleeps a [`TICK`] at a time (not blocked on the channel: a sender then has no
//! thread to wake) and stops holding back as soon as:
//! - a tick passes with nothing new queued: the burst is over;
//! - a caller awaits the actor ([`Hurry`]: a flush, an invalidation, a get queued behind a
//!   write, a durable-path put);
//! - the write buffer is half full, so that callers do not meet its backpressure while the
//!   actor sleeps;
//! - the hold's deadline passes: [`LIMIT`] after it began, never past a checkpoint falling due.
//!
//! Only timing changes: commands stay in the channel, in order, and are served as before. The
//! loom models do not hold back (they would only sleep).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long the actor sleeps between looks at the queue.
pub(crate) const TICK: Duration = Duration::from_micros(500);

/// The longest hold, a fraction of any sensible `max_delay`: puts wait this much longer for
/// their commit at most, and only while more keep coming.
pub(crate) const LIMIT: Duration = Duration::from_millis(20);

/// Set by a caller that waits for the actor's answer, so that the actor stops holding back.
/// A hint, never needed for correctness (a hold ends by itself), so a plain atomic even under
/// loom: modelling it would only multiply the interleavings of every model.
#[derive(Debug, Default)]
pub(crate) struct Hurry(AtomicBool);

impl Hurry {
    /// A caller's command that it will wait for is queued.
    pub(crate) fn signal(&self) {
        // Checked first: in durable mode every put signals, and a store to a line every
        // caller shares would make them contend for it.
        if !self.0.load(Ordering::Relaxed) {
            self.0.store(true, Ordering::Relaxed);
        }
    }

    /// Whether a caller signalled since the last call. A signal whose command was served
    /// already only ends a later hold early.
    pub(crate) fn take(&self) -> bool {
        self.0.swap(false, Ordering::Relaxed)
    }
}

/// What the actor sees at one look while holding back.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Look {
    pub(crate) now: Instant,
    /// Commands in the channel.
    pub(crate) queued: usize,
    /// Bytes held in the write buffer, of `capacity`.
    pub(crate) held: u64,
    pub(crate) capacity: u64,
    /// Whether a caller awaits the actor ([`Hurry::take`]).
    pub(crate) hurried: bool,
}

/// One hold: when it must end, and what the queue held at the last look.
#[derive(Debug)]
pub(crate) struct HoldBack {
    deadline: Instant,
    queued_before: Option<usize>,
}

impl HoldBack {
    /// A hold starting at `now`, ending by `checkpoint` (when one falls due) at the latest.
    pub(crate) fn new(now: Instant, checkpoint: Option<Instant>) -> Self {
        let deadline = now + LIMIT;
        HoldBack {
            deadline: checkpoint.map_or(deadline, |due| due.min(deadline)),
            queued_before: None,
        }
    }

    /// Whether to sleep another tick, after this look.
    pub(crate) fn keep_holding(&mut self, look: Look) -> bool {
        let still_coming = self.queued_before.is_none_or(|before| look.queued > before);
        self.queued_before = Some(look.queued);
        still_coming
            && !look.hurried
            && look.held.saturating_mul(2) < look.capacity
            && look.now < self.deadline
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn look(now: Instant, queued: usize) -> Look {
        Look {
            now,
            queued,
            held: MIB,
            capacity: 64 * MIB,
            hurried: false,
        }
    }

    #[test]
    fn it_holds_while_more_puts_arrive_and_stops_when_none_did() {
        let start = Instant::now();
        let mut hold = HoldBack::new(start, None);
        assert!(
            hold.keep_holding(look(start, 1)),
            "the first look holds a tick"
        );
        assert!(hold.keep_holding(look(start + TICK, 40)));
        assert!(hold.keep_holding(look(start + TICK * 2, 90)));
        assert!(
            !hold.keep_holding(look(start + TICK * 3, 90)),
            "nothing arrived during a tick: the burst is over"
        );
    }

    #[test]
    fn a_waiting_caller_ends_the_hold() {
        let start = Instant::now();
        let mut hold = HoldBack::new(start, None);
        assert!(hold.keep_holding(look(start, 1)));
        let hurried = Look {
            hurried: true,
            ..look(start + TICK, 50)
        };
        assert!(!hold.keep_holding(hurried));
    }

    #[test]
    fn a_half_full_buffer_ends_the_hold() {
        let start = Instant::now();
        let mut hold = HoldBack::new(start, None);
        let below = Look {
            held: 32 * MIB - 1,
            ..look(start, 1)
        };
        assert!(hold.keep_holding(below));
        let half = Look {
            held: 32 * MIB,
            ..look(start + TICK, 2)
        };
        assert!(!hold.keep_holding(half));
    }

    #[test]
    fn a_hold_ends_at_its_limit_or_at_a_checkpoint_falling_due() {
        let start = Instant::now();
        let mut hold = HoldBack::new(start, None);
        assert!(hold.keep_holding(look(start + LIMIT - TICK, 1)));
        assert!(!hold.keep_holding(look(start + LIMIT, 2)));

        let due = start + Duration::from_millis(3);
        let mut hold = HoldBack::new(start, Some(due));
        assert!(hold.keep_holding(look(start, 1)));
        assert!(!hold.keep_holding(look(due, 2)));
    }

    #[test]
    fn a_signal_is_taken_once() {
        let hurry = Hurry::default();
        assert!(!hurry.take());
        hurry.signal();
        hurry.signal();
        assert!(hurry.take());
        assert!(!hurry.take(), "taken: the next hold is not cut short");
    }
}
