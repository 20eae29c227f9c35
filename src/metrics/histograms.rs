//! Histograms recorded at the event, through handles registered once.

use metrics::Histogram;

use super::names;

/// An actor's batches: their size and how long each took to apply and commit.
#[derive(Clone)]
pub(crate) struct BatchHistograms {
    ops: Histogram,
    commit_seconds: Histogram,
}

impl std::fmt::Debug for BatchHistograms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BatchHistograms")
    }
}

impl BatchHistograms {
    /// Registers the handles with the recorder installed now (a no-op handle without one).
    pub(crate) fn register(cache: &str) -> Self {
        BatchHistograms {
            ops: metrics::histogram!(names::BATCH_OPS, "cache" => cache.to_owned()),
            commit_seconds: metrics::histogram!(names::COMMIT_SECONDS, "cache" => cache.to_owned()),
        }
    }

    /// A batch of `ops` commands; `commit` how long it took, when it wrote.
    pub(crate) fn record(&self, ops: usize, commit: Option<std::time::Duration>) {
        self.ops.record(ops as f64);
        if let Some(took) = commit {
            self.commit_seconds.record(took.as_secs_f64());
        }
    }
}
