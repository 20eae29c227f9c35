//! How old a cached entry is allowed to be: fresh, servable stale (while one background read
//! revalidates it), or too old to serve.
//!
//! An entry goes stale `max_age` after it was fetched, and, with serve-stale-while-revalidate
//! on, also at the first *stale mark* after it was fetched: a mark is set when the table is built
//! (a restart: nothing says what changed while the process was down) and for every gap in the
//! live stream. A stale entry may be served until `grace` after it went stale; after that a
//! read waits for the master, as for a miss.
//!
//! Marks are kept only while they can still matter: a mark older than `grace` has made every
//! entry fetched before it too old, which one instant (`too_old_before`) says as well.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// How far ahead of this process's clock another's may run (the stamps of a shared cache's
/// entries come from whichever process filled them). The cost: an entry fetched within this
/// long after a gap's mark is revalidated once more. The mark at build needs none.
const CLOCK_SKEW: Duration = Duration::from_secs(2);

/// The most marks remembered; past it the oldest is folded into `too_old_before`, which only
/// ever makes entries too old sooner (a read then waits for the master), never serves longer.
const MAX_MARKS: usize = 64;

/// What a read may do with a cached entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Age {
    Fresh,
    /// Serve it, and revalidate in the background.
    Stale,
    /// Read the master, as for a miss.
    TooOld,
}

/// Serve-stale-while-revalidate's state: the grace period and the stale marks.
#[derive(Debug)]
pub(crate) struct Revalidation {
    grace: Duration,
    marks: Mutex<Marks>,
    /// Keys whose background read is under way: one at a time per key, however many stale
    /// reads come in before its fill lands.
    under_way: Mutex<std::collections::HashSet<String>>,
}

#[derive(Debug)]
struct Marks {
    /// The marks still within `grace`, oldest first.
    recent: VecDeque<Mark>,
    /// Entries fetched before this went stale more than `grace` ago.
    too_old_before: SystemTime,
}

/// One stale mark: set `at`, it makes stale the entries fetched before `covers_until`.
#[derive(Clone, Copy, Debug)]
struct Mark {
    at: SystemTime,
    /// `at` for the mark at build (what a persistent cache held was stamped long before);
    /// `at` + [`CLOCK_SKEW`] for a gap, whose missed change another process may have read
    /// and stamped by a clock running ahead of this one's.
    covers_until: SystemTime,
}

impl Revalidation {
    /// With a first mark now: whatever a persistent cache held before this table was built is
    /// stale.
    pub(crate) fn new(grace: Duration) -> Self {
        Revalidation {
            grace,
            marks: Mutex::new(Marks {
                recent: VecDeque::from([Mark {
                    at: SystemTime::now(),
                    covers_until: SystemTime::now(),
                }]),
                too_old_before: std::time::UNIX_EPOCH,
            }),
            under_way: Mutex::default(),
        }
    }

    /// Claims `key`'s background read; `false` when one is already under way.
    pub(crate) fn start(&self, key: &str) -> bool {
        let mut under_way = self.under_way.lock().unwrap_or_else(|p| p.into_inner());
        under_way.insert(key.to_owned())
    }

    /// `key`'s background read is over (filled, failed, or dropped).
    pub(crate) fn finish(&self, key: &str) {
        let mut under_way = self.under_way.lock().unwrap_or_else(|p| p.into_inner());
        under_way.remove(key);
    }

    /// Every entry fetched before now is stale from now on (a gap in the live stream).
    pub(crate) fn mark(&self) {
        self.mark_at(SystemTime::now());
    }

    fn mark_at(&self, at: SystemTime) {
        let mut marks = self.lock();
        let covers_until = at.checked_add(CLOCK_SKEW).unwrap_or(at);
        marks.recent.push_back(Mark { at, covers_until });
        while marks.recent.len() > MAX_MARKS {
            let oldest = marks.recent.pop_front().expect("not empty");
            marks.too_old_before = marks.too_old_before.max(oldest.covers_until);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Marks> {
        // Every update leaves the marks consistent: a poisoned lock still holds a usable state.
        self.marks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The age of an entry fetched at `fetched_at`, at `now`, under `max_age`.
    pub(crate) fn age(
        &self,
        max_age: Option<Duration>,
        fetched_at: SystemTime,
        now: SystemTime,
    ) -> Age {
        let by_age = max_age.and_then(|max_age| fetched_at.checked_add(max_age));
        let by_mark = self.stale_mark_after(fetched_at, now);
        let stale_since = match (by_age.filter(|at| *at < now), by_mark) {
            (Some(a), Some(b)) => a.min(b),
            (one, other) => match one.or(other) {
                Some(since) => since,
                None => return Age::Fresh,
            },
        };
        // A grace too large to add never runs out.
        if stale_since
            .checked_add(self.grace)
            .is_none_or(|end| now <= end)
        {
            Age::Stale
        } else {
            Age::TooOld
        }
    }

    /// The first mark after `fetched_at` (`UNIX_EPOCH` for an entry past `too_old_before`:
    /// stale long ago).
    fn stale_mark_after(&self, fetched_at: SystemTime, now: SystemTime) -> Option<SystemTime> {
        let mut marks = self.lock();
        // Marks older than the grace period: fold them into `too_old_before`.
        while let Some(&oldest) = marks.recent.front() {
            if oldest
                .at
                .checked_add(self.grace)
                .is_none_or(|end| end >= now)
            {
                break;
            }
            marks.recent.pop_front();
            marks.too_old_before = marks.too_old_before.max(oldest.covers_until);
        }
        if fetched_at < marks.too_old_before {
            return Some(std::time::UNIX_EPOCH);
        }
        // The earliest: a clock stepped back can leave `recent` out of order.
        marks
            .recent
            .iter()
            .filter(|mark| mark.covers_until > fetched_at)
            .map(|mark| mark.at)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn at(secs: u64) -> SystemTime {
        std::time::UNIX_EPOCH + Duration::from_secs(1_000_000 + secs)
    }

    fn revalidation(grace: Duration) -> Revalidation {
        let r = Revalidation::new(grace);
        r.lock().recent.clear();
        r
    }

    #[test]
    fn by_age_an_entry_is_fresh_then_stale_for_the_grace_then_too_old() {
        let r = revalidation(10 * S);
        let max_age = Some(60 * S);
        assert_eq!(r.age(max_age, at(0), at(59)), Age::Fresh);
        assert_eq!(r.age(max_age, at(0), at(61)), Age::Stale);
        assert_eq!(r.age(max_age, at(0), at(70)), Age::Stale);
        assert_eq!(r.age(max_age, at(0), at(71)), Age::TooOld);
        assert_eq!(
            r.age(None, at(0), at(1_000)),
            Age::Fresh,
            "no max_age, no marks"
        );
    }

    #[test]
    fn a_mark_makes_older_entries_stale_and_spares_newer_ones() {
        let r = revalidation(10 * S);
        r.mark_at(at(100));
        assert_eq!(r.age(None, at(99), at(101)), Age::Stale);
        assert_eq!(
            r.age(None, at(101), at(104)),
            Age::Stale,
            "stamped within the clock-skew allowance after the mark"
        );
        assert_eq!(
            r.age(None, at(103), at(104)),
            Age::Fresh,
            "fetched after the mark"
        );
        assert_eq!(r.age(None, at(103), at(105)), Age::Fresh);
        assert_eq!(r.age(None, at(99), at(111)), Age::TooOld, "past the grace");
        // The folded mark still counts: entries from before it stay too old.
        assert_eq!(r.age(None, at(50), at(112)), Age::TooOld);
        assert_eq!(r.age(None, at(105), at(112)), Age::Fresh);
    }

    #[test]
    fn an_entry_is_stale_from_the_first_mark_after_it() {
        let r = revalidation(10 * S);
        r.mark_at(at(100));
        r.mark_at(at(105));
        assert_eq!(r.age(None, at(99), at(109)), Age::Stale);
        assert_eq!(
            r.age(None, at(99), at(111)),
            Age::TooOld,
            "stale since 100, not 105"
        );
        assert_eq!(r.age(None, at(103), at(111)), Age::Stale, "stale since 105");
    }

    #[test]
    fn too_many_marks_only_make_entries_too_old_sooner() {
        let r = revalidation(1000 * S);
        for n in 0..(MAX_MARKS as u64 + 5) {
            r.mark_at(at(n));
        }
        assert_eq!(
            r.age(None, at(1), at(100)),
            Age::TooOld,
            "its mark was folded"
        );
        assert_eq!(r.age(None, at(50), at(100)), Age::Stale);
    }
}
