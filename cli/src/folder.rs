//! The verbs on a cache folder. Reads go through `vlive::inspect::CacheFile` (read-only);
//! `invalidate` opens the folder as its owner would (`RedbCache::open`), so the removal commits
//! like any invalidation, and a folder another process holds is refused.

use std::path::Path;

use serde_json::json;
use vlive::inspect::CacheFile;
use vlive::{Cache, DB_FILE_NAME, Error, RedbCache};

use crate::output;
use crate::{Outcome, VerbResult};

pub(crate) fn stats(dir: &Path, as_json: bool) -> VerbResult {
    let file = open(dir)?;
    let summary = file.summary().map_err(|e| message(dir, &e))?;
    output::fields(
        &[
            ("folder", json!(dir.display().to_string())),
            ("format", json!(summary.format)),
            ("entries", json!(summary.entries)),
            ("live_bytes", json!(summary.live_bytes)),
            ("file_bytes", json!(summary.file_bytes)),
            ("file_len", json!(summary.file_len)),
        ],
        as_json,
    );
    Ok(Outcome::Done)
}

pub(crate) fn ls(dir: &Path, prefix: &str, limit: Option<usize>, as_json: bool) -> VerbResult {
    let file = open(dir)?;
    let listed = file.entries(prefix, limit).map_err(|e| message(dir, &e))?;
    output::entries(&listed, as_json);
    Ok(Outcome::Done)
}

pub(crate) fn get(dir: &Path, key: &str, as_json: bool) -> VerbResult {
    let file = open(dir)?;
    match file.read(key).map_err(|e| message(dir, &e))? {
        Some(rows) => output::cached_rows(key, &rows, as_json),
        None => return Err(format!("no entry {key:?} in {}", dir.display())),
    }
    Ok(Outcome::Done)
}

pub(crate) fn check(dir: &Path, as_json: bool) -> VerbResult {
    let file = open(dir)?;
    let outcome = file.verify().map_err(|e| message(dir, &e))?;
    output::verification(&outcome, as_json);
    Ok(match outcome.is_sound() {
        true => Outcome::Done,
        false => Outcome::Damaged,
    })
}

pub(crate) fn invalidate(dir: &Path, prefix: &str, as_json: bool) -> VerbResult {
    // RedbCache::open creates a cache where there is none: not what an operator asked for.
    must_hold_a_cache(dir)?;
    let runtime = crate::redis::runtime()?;
    runtime.block_on(async {
        let cache = RedbCache::open(dir).map_err(|e| message(dir, &e))?;
        let removed = cache.invalidate_prefix(prefix).await;
        let closed = cache.close().await;
        removed.and(closed).map_err(|e| message(dir, &e))
    })?;
    output::fields(
        &[
            ("folder", json!(dir.display().to_string())),
            ("invalidated_prefix", json!(prefix)),
        ],
        as_json,
    );
    Ok(Outcome::Done)
}

fn open(dir: &Path) -> Result<CacheFile, String> {
    must_hold_a_cache(dir)?;
    CacheFile::open(dir).map_err(|e| message(dir, &e))
}

/// A folder without a cache file is most often a parent of the cache folder (the demo keeps its
/// cache in `DIR/cache`): say so, rather than a bare "not found".
fn must_hold_a_cache(dir: &Path) -> Result<(), String> {
    match dir.join(DB_FILE_NAME).is_file() {
        true => Ok(()),
        false => Err(format!(
            "no cache in {} (no {DB_FILE_NAME} there; give the folder passed to RedbCache::open)",
            dir.display()
        )),
    }
}

/// What to tell the operator about `error`: a folder in use said plainly, anything else with
/// its causes.
pub(crate) fn message(dir: &Path, error: &Error) -> String {
    match error {
        Error::AlreadyOpen { .. } => format!(
            "folder {} is in use by a running process; stop it first (a cache owns its folder: \
             see docs/cli.md)",
            dir.display()
        ),
        other => crate::redis::chain(other),
    }
}
