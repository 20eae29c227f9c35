//! Samples of the file against the budget, taken as the written volume crosses each step.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use vlive::{RedbCache, RedbCacheStats};

use crate::report::print_sample;

/// When a sample was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// While the tasks churn (and once right after the first open).
    Churn,
    /// After a clean close and a reopen.
    Reopened,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Churn => "churn",
            Phase::Reopened => "reopened",
        }
    }
}

/// One row of the table and the CSV.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub phase: Phase,
    pub elapsed_s: f64,
    pub written: u64,
    pub stats: RedbCacheStats,
    /// The file's apparent length (`metadata.len()`).
    pub file_len: u64,
    /// The blocks it occupies: redb grows the file with `set_len`, which leaves the new end
    /// sparse until pages there are written, so this can be far below the length.
    pub disk_bytes: u64,
}

/// One size read off a sample (file length, disk blocks, live bytes).
pub type Measure = fn(&Sample) -> u64;

/// Takes a sample whenever the written volume crosses a multiple of `step`.
pub struct Sampler {
    path: PathBuf,
    started: Instant,
    step: u64,
    budget: u64,
    samples: Mutex<Vec<Sample>>,
}

impl Sampler {
    pub fn new(file: &Path, step: u64, budget: u64) -> Self {
        Sampler {
            path: file.to_owned(),
            started: Instant::now(),
            step: step.max(1),
            budget,
            samples: Mutex::new(Vec::new()),
        }
    }

    /// Called by the task whose put took the volume from `before` to `after`. Only the task
    /// that crosses a step samples, so 64 tasks never sample the same step twice; the lock
    /// keeps the rows in order.
    pub fn after_write(&self, cache: &RedbCache, before: u64, after: u64) {
        if after / self.step > before / self.step {
            self.take(cache, Phase::Churn, after);
        }
    }

    pub fn take(&self, cache: &RedbCache, phase: Phase, written: u64) {
        let mut samples = self.samples.lock().expect("samples");
        let metadata = std::fs::metadata(&self.path).expect("file metadata");
        let sample = Sample {
            phase,
            elapsed_s: self.started.elapsed().as_secs_f64(),
            written,
            stats: cache.stats(),
            file_len: metadata.len(),
            disk_bytes: metadata.blocks() * 512,
        };
        print_sample(&sample, self.budget);
        samples.push(sample);
    }

    pub fn into_samples(self) -> Vec<Sample> {
        self.samples.into_inner().expect("samples")
    }
}
