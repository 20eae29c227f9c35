//! Opening the redb file: the cross-process lock, an optional backend layer, and turning redb's
//! open errors into errors a person can act on.

use std::fs::OpenOptions;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use redb::backends::FileBackend;
use redb::{BackendError, Database, DatabaseError, StorageBackend, StorageError};

use crate::error::{Error, Result};
use crate::redb_cache::DB_FILE_NAME;

/// Wraps redb's file backend (fault injection, I/O metrics, …). Called on every (re)open.
pub(crate) type BackendLayer = Arc<dyn Fn(FileBackend) -> Box<dyn StorageBackend> + Send + Sync>;

/// Opens (or creates) `folder/vlive.redb`, taking redb's file lock.
pub(crate) fn open_database(folder: &Path, layer: Option<&BackendLayer>) -> Result<Database> {
    let path = folder.join(DB_FILE_NAME);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::io(&path, "open the cache file", e))?;
    let backend = FileBackend::new(file).map_err(|e| open_error(folder, e))?;
    let builder = redb::Builder::new();
    match layer {
        Some(layer) => builder.create_with_backend(LayeredBackend(layer(backend))),
        None => builder.create_with_backend(backend),
    }
    .map_err(|e| open_error(folder, e))
}

fn open_error(folder: &Path, error: DatabaseError) -> Error {
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
        // redb reports a foreign file as InvalidData ("magic number mismatch"). A damaged redb
        // file (`Corrupted`) is a storage error, not a foreign file.
        DatabaseError::Storage(StorageError::Io(_)) | DatabaseError::UpgradeRequired(_) => {
            Error::NotADatabase {
                path,
                source: Arc::new(error),
            }
        }
        other => Error::storage(folder, "open", other),
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
