//! Opening the redb file: the cross-process lock, an optional backend layer, turning redb's
//! open errors into errors a person can act on, and discarding a file that cannot be trusted.

use std::fs::OpenOptions as FileOptions;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use redb::backends::FileBackend;
use redb::{BackendError, Database, DatabaseError, StorageBackend, StorageError};

use tracing::{error, warn};

use crate::error::{Error, Result};
use crate::store::Discard;

/// The database file inside a cache folder.
pub const DB_FILE_NAME: &str = "vlive.redb";

/// Damaged files kept aside at most: enough to look at what happened, never enough to fill the
/// disk when damage recurs.
const DAMAGED_FILES_KEPT: usize = 2;

/// Wraps redb's file backend (fault injection, I/O metrics, …). Called on every (re)open.
pub(crate) type BackendLayer = Arc<dyn Fn(FileBackend) -> Box<dyn StorageBackend> + Send + Sync>;

/// How the redb file is opened, besides where.
#[derive(Clone, Default)]
pub(crate) struct OpenOptions {
    /// Wraps the file backend.
    pub(crate) layer: Option<BackendLayer>,
    /// redb's page cache, in bytes; `None`: [`DEFAULT_PAGE_CACHE_BYTES`].
    pub(crate) page_cache_bytes: Option<usize>,
}

/// The page cache a cache gets unless told otherwise: 1 MiB, not redb's 1 GiB. A cache's
/// memory should be what its hot tier is given plus a bounded overhead; the file's pages stay
/// in the OS page cache, which gives memory back under pressure. What it costs:
/// `RedbCacheBuilder::page_cache_bytes`, measured in docs/page-cache.md.
pub(crate) const DEFAULT_PAGE_CACHE_BYTES: usize = 1 << 20;

/// Opens (or creates) `folder/vlive.redb`, taking redb's file lock.
pub(crate) fn open_database(folder: &Path, options: &OpenOptions) -> Result<Database> {
    let path = folder.join(DB_FILE_NAME);
    let file = FileOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::io(&path, "open the cache file", e))?;
    let backend = FileBackend::new(file).map_err(|e| open_error(folder, e))?;
    let mut builder = redb::Builder::new();
    builder.set_cache_size(options.page_cache_bytes.unwrap_or(DEFAULT_PAGE_CACHE_BYTES));
    match &options.layer {
        Some(layer) => builder.create_with_backend(LayeredBackend(layer(backend))),
        None => builder.create_with_backend(backend),
    }
    .map_err(|e| open_error(folder, e))
}

/// redb's open error as the error a person can act on (shared with `inspect`'s read-only open).
pub(crate) fn open_error(folder: &Path, error: DatabaseError) -> Error {
    let path = folder.join(DB_FILE_NAME);
    match error {
        DatabaseError::DatabaseAlreadyOpen => Error::AlreadyOpen {
            folder: folder.to_owned(),
        },
        DatabaseError::Storage(StorageError::Io(io))
            if io.kind() != std::io::ErrorKind::InvalidData =>
        {
            Error::io(path, "open the database", io)
        }
        // redb reports a foreign file as InvalidData ("magic number mismatch"): it is left
        // untouched. A damaged redb file (`Corrupted`: truncated, a bad header) is not foreign.
        DatabaseError::Storage(StorageError::Io(_)) | DatabaseError::UpgradeRequired(_) => {
            Error::NotADatabase {
                path,
                source: Arc::new(error),
            }
        }
        DatabaseError::Storage(StorageError::Corrupted(reason)) => Error::Damaged {
            folder: folder.to_owned(),
            reason,
        },
        other => Error::storage(folder, "open", other),
    }
}

/// Gets `folder`'s database file out of the way, so that the next open creates an empty one:
/// moved aside as `vlive.redb.damaged-<unix-ms>` (the oldest beyond the newest
/// [`DAMAGED_FILES_KEPT`] are deleted) or deleted. Returns where it was moved.
pub(crate) fn discard_file(folder: &Path, how: Discard) -> Result<Option<PathBuf>> {
    let path = folder.join(DB_FILE_NAME);
    let moved = match how {
        Discard::Delete => None,
        Discard::KeepAside => {
            let ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            let aside = folder.join(format!("{DB_FILE_NAME}.damaged-{ms}"));
            match std::fs::rename(&path, &aside) {
                Ok(()) => Some(aside),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                // A rename that fails (a read-only folder) must not keep the damage in place.
                Err(e) => {
                    warn!(error = %e, file = %path.display(), "cannot move the damaged cache file aside; deleting it");
                    None
                }
            }
        }
    };
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(&path, "discard the cache file", e)),
    }
    prune_damaged(folder);
    // The unlink or rename must outlive a power cut: the old file's entries include what a
    // failed invalidation was to remove.
    sync_folder(folder).map_err(|e| Error::io(folder, "sync the cache folder", e))?;
    if let Some(aside) = &moved {
        error!(file = %aside.display(), "damaged cache file moved aside; the cache starts empty");
    }
    Ok(moved)
}

#[cfg(unix)]
fn sync_folder(folder: &Path) -> std::io::Result<()> {
    std::fs::File::open(folder)?.sync_all()
}

#[cfg(not(unix))]
fn sync_folder(_folder: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Deletes all but the newest damaged files kept aside in `folder`.
fn prune_damaged(folder: &Path) {
    let prefix = format!("{DB_FILE_NAME}.damaged-");
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    let mut damaged: Vec<(u128, PathBuf)> = entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let name = entry.file_name().into_string().ok()?;
            let ms = name.strip_prefix(&prefix)?.parse().ok()?;
            Some((ms, entry.path()))
        })
        .collect();
    damaged.sort_unstable_by_key(|entry| std::cmp::Reverse(entry.0));
    for (_, old) in damaged.into_iter().skip(DAMAGED_FILES_KEPT) {
        if let Err(e) = std::fs::remove_file(&old) {
            warn!(error = %e, file = %old.display(), "cannot delete an old damaged cache file");
        }
    }
}

/// A boxed backend: redb takes a backend by value, not as a trait object.
#[derive(Debug)]
struct LayeredBackend(Box<dyn StorageBackend>);

impl StorageBackend for LayeredBackend {
    fn len(&self) -> std::io::Result<u64> {
        self.0.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        self.0.read(offset, out)
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.0.set_len(len)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        self.0.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.0.write(offset, data)
    }
    fn close(&self) -> std::io::Result<()> {
        self.0.close()
    }
    fn try_lock_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> std::result::Result<bool, BackendError> {
        self.0.try_lock_range(start, end)
    }
    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> std::result::Result<bool, BackendError> {
        self.0.try_lock_shared_range(start, end)
    }
    fn lock_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> std::result::Result<(), BackendError> {
        self.0.lock_range(start, end)
    }
    fn lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> std::result::Result<(), BackendError> {
        self.0.lock_shared_range(start, end)
    }
    fn unlock_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> std::result::Result<(), BackendError> {
        self.0.unlock_range(start, end)
    }
    fn query_lock_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> std::result::Result<bool, BackendError> {
        self.0.query_lock_range(start, end)
    }
}
