//! What damage was found: keys whose stored value failed its check, on their way from whoever
//! read them to the actor that removes them, and how often the whole file was replaced.
//!
//! A damaged value is found where it is read: in a snapshot on a caller's thread, in a batch on
//! the actor, or by the decoder in the caller. Each reports the key here and answers a miss;
//! the actor takes the reported keys at its next write batch and removes those whose value
//! still fails the check (a put may have replaced it meanwhile).

use std::path::{Path, PathBuf};

use tracing::warn;

use crate::sync::{Counter, Mutex};

/// At most this many keys wait for removal; more are still answered as misses (and counted),
/// and found again by a later read.
const MAX_PENDING: usize = 1024;

/// A key reported damaged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Damaged {
    pub(crate) key: String,
    /// For a value whose checksum held but which would not decode: the xxh3 of its rows, so
    /// that the actor removes that value and not one a put stored since.
    pub(crate) undecodable: Option<u64>,
}

/// Damaged keys reported and not yet removed, how many damaged reads were found in all, and
/// how many times the file was replaced by an empty one.
#[derive(Debug)]
pub(crate) struct DamageLog {
    folder: PathBuf,
    pending: Mutex<Vec<Damaged>>,
    found: Counter,
    resets: Counter,
}

impl DamageLog {
    pub(crate) fn new(folder: &Path) -> Self {
        DamageLog {
            folder: folder.to_owned(),
            pending: Mutex::new(Vec::new()),
            found: Counter::default(),
            resets: Counter::default(),
        }
    }

    /// Reports a read of `key` whose stored value failed its checksum.
    pub(crate) fn report(&self, key: &str, why: &str) {
        self.add(key, why, None);
    }

    /// Reports a read of `key` whose rows passed their checksum but would not decode.
    pub(crate) fn report_undecodable(&self, key: &str, rows: &[u8], why: &str) {
        let sum = crate::store::value_sum(rows);
        self.add(key, why, Some(sum));
    }

    fn add(&self, key: &str, why: &str, undecodable: Option<u64>) {
        self.found.bump();
        warn!(
            folder = %self.folder.display(),
            key,
            "damaged cache entry ({why}): answered as a miss, removed with the next write"
        );
        let mut pending = self.pending.lock();
        let damaged = Damaged {
            key: key.to_owned(),
            undecodable,
        };
        if pending.len() < MAX_PENDING && !pending.contains(&damaged) {
            pending.push(damaged);
        }
    }

    /// The keys reported since the last call.
    pub(crate) fn take(&self) -> Vec<Damaged> {
        std::mem::take(&mut *self.pending.lock())
    }

    /// Damaged reads found since the cache was opened.
    pub(crate) fn found(&self) -> u64 {
        self.found.get()
    }

    /// Counts a replacement of the whole file by an empty one.
    pub(crate) fn note_reset(&self) {
        self.resets.bump();
    }

    /// Replacements since the cache was opened.
    pub(crate) fn resets(&self) -> u64 {
        self.resets.get()
    }
}
