//! This process's calls on a [`RedisCache`](super::RedisCache), by outcome, for the metrics
//! publisher (feature `metrics`). `stats()` reads the namespace's figures from the server,
//! shared by every client; these are the calls this handle and its clones made.

use std::sync::atomic::{AtomicU64, Ordering};

/// One call's operation and outcome.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Call {
    GetHit,
    GetMiss,
    GetError,
    PutOk,
    PutError,
    FillOk,
    FillRejected,
    /// A fill, or the fill token before it, that failed.
    FillError,
    InvalidateOk,
    InvalidateError,
}

/// How many kinds of [`Call`] there are.
pub(crate) const KINDS: usize = 10;

impl Call {
    /// Every kind, in the order of [`Calls::snapshot`].
    pub(crate) const ALL: [Call; KINDS] = [
        Call::GetHit,
        Call::GetMiss,
        Call::GetError,
        Call::PutOk,
        Call::PutError,
        Call::FillOk,
        Call::FillRejected,
        Call::FillError,
        Call::InvalidateOk,
        Call::InvalidateError,
    ];

    /// Its `op` and `outcome` labels.
    pub(crate) fn labels(self) -> (&'static str, &'static str) {
        match self {
            Call::GetHit => ("get", "hit"),
            Call::GetMiss => ("get", "miss"),
            Call::GetError => ("get", "error"),
            Call::PutOk => ("put", "ok"),
            Call::PutError => ("put", "error"),
            Call::FillOk => ("fill", "ok"),
            Call::FillRejected => ("fill", "rejected"),
            Call::FillError => ("fill", "error"),
            Call::InvalidateOk => ("invalidate", "ok"),
            Call::InvalidateError => ("invalidate", "error"),
        }
    }
}

/// Running totals of each kind of call. A relaxed increment per call, beside a round trip.
#[derive(Debug, Default)]
pub(crate) struct Calls([AtomicU64; KINDS]);

impl Calls {
    pub(crate) fn count(&self, call: Call) {
        self.0[call as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The totals, indexed like [`Call::ALL`].
    pub(crate) fn snapshot(&self) -> [u64; KINDS] {
        std::array::from_fn(|n| self.0[n].load(Ordering::Relaxed))
    }
}
