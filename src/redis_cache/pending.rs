//! Invalidations whose outcome is unknown (they failed, or their caller stopped waiting), kept
//! until they are known to have reached the server.
//!
//! A failed `invalidate_prefix(p)` may have left entries under `p` that the caller meant to
//! remove: a LiveTable write whose invalidation failed was still applied at the master, so
//! those entries are stale. The handle remembers `p`, and before its next call that reads or
//! writes entries it runs the invalidation again (`RedisCache::replay_pending`). Until that
//! succeeds, a key under `p` answers a miss: its entry cannot be trusted.
//!
//! The state is shared by every clone of one `RedisCache` (one `connect`), not across
//! processes: another process sees the entries until the replay, as it would have seen them
//! had the invalidation never been called.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

/// The prefixes to invalidate again, each with the generation of its latest failure.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    prefixes: BTreeMap<String, u64>,
    generations: u64,
}

/// One prefix to invalidate again, and the failures it answers: those recorded before it was
/// taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Replay {
    pub(crate) prefix: String,
    taken: u64,
}

impl Pending {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update leaves the map consistent: a poisoned lock still holds a usable state.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `prefix`'s invalidation may not have happened: replay it before the next call.
    pub(crate) fn remember(&self, prefix: &str) {
        let mut state = self.lock();
        state.generations += 1;
        let generation = state.generations;
        state.prefixes.insert(prefix.to_owned(), generation);
    }

    /// Whether any invalidation waits for a replay.
    pub(crate) fn is_empty(&self) -> bool {
        self.lock().prefixes.is_empty()
    }

    /// Whether a waiting invalidation covers `key` (its entry may be stale).
    pub(crate) fn covers(&self, key: &str) -> bool {
        self.lock()
            .prefixes
            .keys()
            .any(|prefix| key.starts_with(prefix.as_str()))
    }

    /// What to replay: every waiting prefix that no shorter waiting prefix covers (replaying
    /// that one removes its keys too).
    pub(crate) fn to_replay(&self) -> Vec<Replay> {
        let state = self.lock();
        let mut replays: Vec<Replay> = Vec::new();
        // In sorted order a prefix comes right before the keys it covers, so checking the last
        // one kept suffices: it is the only shorter prefix that can cover the next.
        for prefix in state.prefixes.keys() {
            if replays
                .last()
                .is_some_and(|kept| prefix.starts_with(kept.prefix.as_str()))
            {
                continue;
            }
            replays.push(Replay {
                prefix: prefix.clone(),
                taken: state.generations,
            });
        }
        replays
    }

    /// `replay` succeeded: forget its prefix and every waiting prefix it covers, unless they
    /// failed again after the replay was taken (the replay may then have run before them).
    pub(crate) fn replayed(&self, replay: &Replay) {
        let mut state = self.lock();
        state.prefixes.retain(|prefix, generation| {
            !(prefix.starts_with(replay.prefix.as_str()) && *generation <= replay.taken)
        });
    }
}

/// Remembers an invalidation unless it is known to have succeeded: dropped armed (after an
/// error, or when the caller's future is dropped mid-call), it records the prefix.
pub(crate) struct Unconfirmed<'a> {
    pending: &'a Pending,
    prefix: Option<&'a str>,
}

impl<'a> Unconfirmed<'a> {
    pub(crate) fn new(pending: &'a Pending, prefix: &'a str) -> Self {
        Unconfirmed {
            pending,
            prefix: Some(prefix),
        }
    }

    /// The server applied the invalidation.
    pub(crate) fn confirm(mut self) {
        self.prefix = None;
    }
}

impl Drop for Unconfirmed<'_> {
    fn drop(&mut self) {
        if let Some(prefix) = self.prefix {
            self.pending.remember(prefix);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefixes(replays: &[Replay]) -> Vec<&str> {
        replays.iter().map(|r| r.prefix.as_str()).collect()
    }

    #[test]
    fn a_shorter_prefix_replays_for_the_ones_it_covers() {
        let pending = Pending::default();
        for prefix in ["clients/", "clients/active/", "cl", "orders/", "orders"] {
            pending.remember(prefix);
        }
        assert_eq!(prefixes(&pending.to_replay()), ["cl", "orders"]);
        assert!(pending.covers("clinic/1"));
        assert!(!pending.covers("c"));

        for replay in pending.to_replay() {
            pending.replayed(&replay);
        }
        assert!(pending.is_empty());
    }

    #[test]
    fn the_empty_prefix_covers_everything() {
        let pending = Pending::default();
        pending.remember("a/");
        pending.remember("");
        assert_eq!(prefixes(&pending.to_replay()), [""]);
        assert!(pending.covers("anything"));
        assert!(pending.covers(""));
    }

    #[test]
    fn a_failure_after_the_replay_was_taken_is_kept() {
        let pending = Pending::default();
        pending.remember("a/");
        let replays = pending.to_replay();
        pending.remember("a/"); // failed again while the replay ran
        pending.remember("a/b/");
        pending.replayed(&replays[0]);
        assert_eq!(prefixes(&pending.to_replay()), ["a/"]);
        assert!(pending.covers("a/b/c"));
    }

    #[test]
    fn an_unconfirmed_invalidation_is_remembered_and_a_confirmed_one_is_not() {
        let pending = Pending::default();
        Unconfirmed::new(&pending, "ok/").confirm();
        assert!(pending.is_empty());
        drop(Unconfirmed::new(&pending, "failed/"));
        assert_eq!(prefixes(&pending.to_replay()), ["failed/"]);
    }
}
