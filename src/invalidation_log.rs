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

#[derive(Debug, Default)]
pub(crate) struct InvalidationLog {
    epoch: u64,
    recent: VecDeque<(u64, String)>,
}

impl InvalidationLog {
    pub(crate) fn token(&self) -> FillToken {
        FillToken(self.epoch)
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
        let FillToken(taken) = token;
        if taken == self.epoch {
            return false;
        }
        // A token from the future was issued by another cache instance: we know nothing of it.
        if taken > self.epoch {
            return true;
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
