//! Recent invalidations, for the stale-fill guard.
//!
//! Every invalidation bumps an epoch and is remembered with its prefix. A fill token is the epoch
//! at the time it was taken; a fill is stale when an invalidation after the token covers its key.
//! Only the most recent invalidations are kept: a token older than the remembered window is
//! treated as stale, because we can no longer prove it is not.

use std::collections::VecDeque;

use crate::cache::FillToken;

/// How many invalidations are remembered. A fill whose master read spans more invalidations than
/// this is conservatively rejected (the next read simply fetches again).
const REMEMBERED: usize = 4096;

#[derive(Debug)]
pub(crate) struct InvalidationLog {
    /// Unique in this process, so a token outlives neither a close nor a reopen.
    instance: u64,
    epoch: u64,
    recent: VecDeque<(u64, String)>,
}

impl Default for InvalidationLog {
    fn default() -> Self {
        // A plain std atomic even under loom: it only hands out distinct numbers.
        static NEXT_INSTANCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        InvalidationLog {
            instance: NEXT_INSTANCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            epoch: 0,
            recent: VecDeque::new(),
        }
    }
}

impl InvalidationLog {
    pub(crate) fn token(&self) -> FillToken {
        FillToken {
            instance: self.instance,
            epoch: self.epoch,
        }
    }

    pub(crate) fn record(&mut self, prefix: &str) {
        self.epoch += 1;
        if self.recent.len() == REMEMBERED {
            self.recent.pop_front();
        }
        self.recent.push_back((self.epoch, prefix.to_owned()));
    }

    /// Whether an invalidation after `token` covers `key`.
    pub(crate) fn is_stale(&self, key: &str, token: FillToken) -> bool {
        // Another instance's history is unknown to us.
        if token.instance != self.instance {
            return true;
        }
        let taken = token.epoch;
        if taken == self.epoch {
            return false;
        }
        let oldest_remembered = self.recent.front().map_or(self.epoch + 1, |(e, _)| *e);
        if taken + 1 < oldest_remembered {
            return true;
        }
        self.recent
            .iter()
            .rev()
            .take_while(|(epoch, _)| *epoch > taken)
            .any(|(_, prefix)| key.starts_with(prefix.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_covering_invalidations_after_the_token_make_a_fill_stale() {
        let mut log = InvalidationLog::default();
        log.record("clients/");
        let token = log.token();
        assert!(!log.is_stale("clients/1", token));
        log.record("orders/");
        assert!(!log.is_stale("clients/1", token));
        assert!(log.is_stale("orders/7", token));
        log.record("cli");
        assert!(log.is_stale("clients/1", token));
        log.record("");
        assert!(log.is_stale("anything", token));
    }

    #[test]
    fn a_token_older_than_the_window_is_stale() {
        let mut log = InvalidationLog::default();
        let token = log.token();
        for _ in 0..REMEMBERED + 1 {
            log.record("unrelated/");
        }
        assert!(log.is_stale("clients/1", token));
        assert!(!log.is_stale("clients/1", log.token()));
    }

    #[test]
    fn a_token_from_another_instance_is_stale() {
        let mut other = InvalidationLog::default();
        other.record("x");
        let foreign = other.token();
        assert!(InvalidationLog::default().is_stale("k", foreign));
    }
}
