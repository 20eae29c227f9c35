//! A read-only look at a cache folder, for operators (the `vlive` CLI): what it holds, each
//! entry's size and fetch time, one entry's rows, and a walk that checks every stored value.
//!
//! [`CacheFile::open`] opens the folder's `vlive.redb` read-only: it never writes, never
//! repairs, never resets. A folder a running cache holds is refused
//! ([`Error::AlreadyOpen`]): a `RedbCache` owns its file exclusively, and sharing it with
//! readers (redb's `ConcurrencyMode::SingleWriter`) would cost the owner put throughput and
//! its lazy mode (docs/cli.md has the figures). While a `CacheFile` is open, a cache cannot
//! open the folder either, so keep the look short.
//!
//! Every value is read through the store's own checks (`store::stored_value`'s checksum) and
//! the codec's decoder: this module knows where values live, not how they are laid out.
//!
//! ```
//! use vlive::inspect::CacheFile;
//! use vlive::{Cache, CachedRows, RedbCache, Rows};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> vlive::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! # let folder = dir.path().join("cache");
//! let cache = RedbCache::open(&folder)?;
//! cache.put("clients/page_1", CachedRows::new(Rows::new())).await?;
//! cache.close().await?; // a folder a running cache holds is refused
//!
//! let file = CacheFile::open(&folder)?;
//! assert_eq!(file.summary()?.entries, 1);
//! let keys: Vec<String> = file.entries("clients/", None)?.into_iter().map(|e| e.key).collect();
//! assert_eq!(keys, ["clients/page_1"]);
//! assert!(file.read("clients/page_1")?.is_some());
//! assert!(file.verify()?.is_sound()); // every checksum checked
//! # Ok(())
//! # }
//! ```

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use redb::{ReadOnlyDatabase, ReadTransaction, ReadableDatabase};

use crate::codec;
use crate::error::{Error, Result};
use crate::rows::CachedRows;
use crate::store::redb_open::{DB_FILE_NAME, open_error};
use crate::store::redb_store::{
    ENTRIES, FORMAT_KEY, FORMAT_VERSION, META, committed_usage, file_bytes,
};
use crate::store::{StoreResult, stored_value};

/// redb's page cache for a look: small, since a look reads most pages once.
const LOOK_PAGE_CACHE: usize = 16 << 20;

/// A cache folder opened read-only. See the module docs.
pub struct CacheFile {
    folder: PathBuf,
    db: ReadOnlyDatabase,
}

impl std::fmt::Debug for CacheFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheFile")
            .field("folder", &self.folder)
            .finish_non_exhaustive()
    }
}

/// What a cache file holds, from its committed totals (no scan).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Summary {
    /// The format version of the file.
    pub format: u64,
    /// Entries stored (expired ones not yet removed included: the time to live is a setting of
    /// the cache that opens the folder, not of the file).
    pub entries: u64,
    /// What the entries are charged against a `max_bytes` budget.
    pub live_bytes: u64,
    /// The blocks the file takes on disk.
    pub file_bytes: u64,
    /// The file's apparent length (redb grows it ahead of use, sparsely).
    pub file_len: u64,
}

/// One entry as listed: its key, its size, and whether it passes its checks.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EntryInfo {
    /// The cache key.
    pub key: String,
    /// The encoded rows, in bytes.
    pub value_bytes: u64,
    /// How many rows it holds; `None` when it is damaged.
    pub rows: Option<usize>,
    /// When its rows were fetched; `None` when it is damaged.
    pub fetched_at: Option<SystemTime>,
    /// What is wrong with it, if anything: a checksum mismatch, or rows that will not decode.
    pub damage: Option<String>,
}

/// The outcome of a walk over every entry ([`CacheFile::verify`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verification {
    /// Entries read.
    pub checked: u64,
    /// The damaged ones, in key order, with what is wrong with each.
    pub damaged: Vec<(String, String)>,
}

impl Verification {
    /// Whether every entry passed.
    pub fn is_sound(&self) -> bool {
        self.damaged.is_empty()
    }
}

impl CacheFile {
    /// Opens `folder`'s cache file read-only. Fails with [`Error::AlreadyOpen`] when a running
    /// cache holds it, [`Error::NeedsRecovery`] when it was not closed cleanly,
    /// [`Error::UnknownFormat`] when it is not of the format this vlive reads, and
    /// [`Error::Io`] when there is no cache file in the folder.
    pub fn open(folder: impl AsRef<Path>) -> Result<CacheFile> {
        let folder = folder.as_ref().to_owned();
        let path = folder.join(DB_FILE_NAME);
        if !path.is_file() {
            let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
            return Err(Error::io(path, "find the cache file", missing));
        }
        let mut builder = redb::Builder::new();
        builder.set_cache_size(LOOK_PAGE_CACHE);
        let db = builder.open_read_only(&path).map_err(|e| match e {
            redb::DatabaseError::RepairAborted => Error::NeedsRecovery {
                folder: folder.clone(),
            },
            e => open_error(&folder, e),
        })?;
        let file = CacheFile { folder, db };
        let found = file.guard(Self::format)?;
        if found != Some(FORMAT_VERSION) {
            return Err(Error::UnknownFormat {
                folder: file.folder,
                found,
            });
        }
        Ok(file)
    }

    /// The folder.
    pub fn folder(&self) -> &Path {
        &self.folder
    }

    /// The committed totals and the file's size.
    pub fn summary(&self) -> Result<Summary> {
        let usage = self.guard(|txn| {
            committed_usage(txn)?
                .ok_or_else(|| redb::Error::Corrupted("its totals row is damaged".into()))
        })?;
        let file_len = std::fs::metadata(self.folder.join(DB_FILE_NAME)).map_or(0, |m| m.len());
        Ok(Summary {
            format: FORMAT_VERSION,
            entries: usage.entries,
            live_bytes: usage.live_bytes,
            file_bytes: file_bytes(&self.folder),
            file_len,
        })
    }

    /// The entries whose keys start with `prefix`, in key order, at most `limit` of them;
    /// each one checked and decoded.
    pub fn entries(&self, prefix: &str, limit: Option<usize>) -> Result<Vec<EntryInfo>> {
        let mut listed = Vec::new();
        self.walk(prefix, |key, stored| {
            if limit.is_some_and(|limit| listed.len() >= limit) {
                return false;
            }
            listed.push(examine(key, stored));
            true
        })?;
        Ok(listed)
    }

    /// `key`'s rows; `None` when the key is not stored, [`Error::DamagedEntry`] when its value
    /// fails its checksum or will not decode.
    pub fn read(&self, key: &str) -> Result<Option<CachedRows>> {
        let stored = self.guard(|txn| {
            let Some(table) = open_entries(txn)? else {
                return Ok(None);
            };
            Ok(table.get(key)?.map(|value| value.value().to_vec()))
        })?;
        let Some(stored) = stored else {
            return Ok(None);
        };
        let damaged = |reason: String| Error::DamagedEntry {
            folder: self.folder.clone(),
            key: key.to_owned(),
            reason,
        };
        let checked = stored_value::verify(key, &stored)
            .ok_or_else(|| damaged("checksum mismatch".into()))?;
        codec::decode(checked.payload).map(Some).map_err(damaged)
    }

    /// Reads every entry, checks its checksum and decodes its rows; names the damaged ones.
    pub fn verify(&self) -> Result<Verification> {
        let mut outcome = Verification::default();
        self.walk("", |key, stored| {
            outcome.checked += 1;
            if let Some(damage) = examine(key, stored).damage {
                outcome.damaged.push((key.to_owned(), damage));
            }
            true
        })?;
        Ok(outcome)
    }

    /// Calls `visit` with each stored key starting with `prefix` and its stored bytes, in key
    /// order, until it returns `false`.
    fn walk(&self, prefix: &str, mut visit: impl FnMut(&str, &[u8]) -> bool) -> Result<()> {
        self.guard(|txn| {
            let Some(table) = open_entries(txn)? else {
                return Ok(());
            };
            for entry in table.range(prefix..)? {
                let (key, stored) = entry?;
                if !key.value().starts_with(prefix) || !visit(key.value(), stored.value()) {
                    break;
                }
            }
            Ok(())
        })
    }

    /// The format version the file records.
    fn format(txn: &ReadTransaction) -> StoreResult<Option<u64>> {
        match txn.open_table(META) {
            Ok(meta) => Ok(meta.get(FORMAT_KEY)?.map(|v| v.value())),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Runs `work` in a read transaction. A damaged page can make redb panic while it reads
    /// (docs/failure-modes.md): that is reported as [`Error::Damaged`], not passed on.
    fn guard<R>(&self, work: impl FnOnce(&ReadTransaction) -> StoreResult<R>) -> Result<R> {
        let txn = self.db.begin_read().map_err(|e| self.storage(e.into()))?;
        match catch_unwind(AssertUnwindSafe(|| work(&txn))) {
            Ok(outcome) => outcome.map_err(|e| self.storage(e)),
            Err(_) => Err(self.damaged("the storage engine failed reading it")),
        }
    }

    fn storage(&self, error: redb::Error) -> Error {
        match error {
            redb::Error::Corrupted(reason) => self.damaged(&reason),
            error => Error::storage(&self.folder, "read", error),
        }
    }

    fn damaged(&self, reason: &str) -> Error {
        Error::Damaged {
            folder: self.folder.clone(),
            reason: reason.to_owned(),
        }
    }
}

type EntriesTable = redb::ReadOnlyTable<&'static str, &'static [u8]>;

/// The data table; `None` before anything was written.
fn open_entries(txn: &ReadTransaction) -> StoreResult<Option<EntriesTable>> {
    match txn.open_table(ENTRIES) {
        Ok(table) => Ok(Some(table)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// One stored value, checked and decoded.
fn examine(key: &str, stored: &[u8]) -> EntryInfo {
    let value_bytes = stored_value::payload_len(stored.len()) as u64;
    let mut info = EntryInfo {
        key: key.to_owned(),
        value_bytes,
        rows: None,
        fetched_at: None,
        damage: None,
    };
    let Some(checked) = stored_value::verify(key, stored) else {
        info.damage = Some("checksum mismatch".into());
        return info;
    };
    match codec::decode(checked.payload) {
        Ok(rows) => {
            info.rows = Some(rows.rows.len());
            info.fetched_at = Some(rows.fetched_at);
        }
        Err(reason) => info.damage = Some(format!("does not decode: {reason}")),
    }
    info
}
