//! The implementations compared: vlive in both durability modes and the two baselines, behind
//! one async interface the workloads drive.

use std::path::Path;

use vlive::{Cache, CachedRows, Durability, RedbCache, RedbCacheStats};

use crate::direct::DirectCache;
use crate::params::{LAZY_BUDGET, LAZY_MAX_DELAY};

/// The implementations compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Impl {
    VliveImmediate,
    VliveLazy,
    /// `vlive-immediate` with the hot tier off: every get reads the snapshot and decodes. Only
    /// on the get rows, beside the two above, whose gets the (default) hot tier answers.
    VliveCold,
    /// `vlive-lazy` with a byte budget (`max_bytes`, [`LAZY_BUDGET`]) that put-burst's keys
    /// outgrow: it evicts, and checkpoints by bytes written as well as by time. Only on the
    /// put-burst rows, where the extra checkpoints cost.
    VliveLazyBudget,
    Direct,
    Blocking,
    Ceiling,
}

/// Implementations measured on the get rows only.
pub const GET_ONLY: [Impl; 1] = [Impl::VliveCold];
/// Implementations measured on the put-burst rows only.
pub const PUT_ONLY: [Impl; 1] = [Impl::VliveLazyBudget];

/// The implementations behind the async cache interface (the ceiling is a loop of its own).
pub const CACHES: [Impl; 4] = [
    Impl::VliveImmediate,
    Impl::VliveLazy,
    Impl::Direct,
    Impl::Blocking,
];

/// The table's columns: every implementation, the ceiling last.
pub const TABLE_IMPLS: [Impl; 7] = [
    Impl::VliveImmediate,
    Impl::VliveLazy,
    Impl::VliveCold,
    Impl::VliveLazyBudget,
    Impl::Direct,
    Impl::Blocking,
    Impl::Ceiling,
];

impl Impl {
    pub fn name(self) -> &'static str {
        match self {
            Impl::VliveImmediate => "vlive-immediate",
            Impl::VliveLazy => "vlive-lazy",
            Impl::VliveCold => "vlive-cold",
            Impl::VliveLazyBudget => "vlive-lazy-8mib",
            Impl::Direct => "direct",
            Impl::Blocking => "blocking",
            Impl::Ceiling => "ceiling",
        }
    }

    /// Opens the cache under test over `folder` (must be called inside the runtime).
    pub fn open(self, folder: &Path) -> Subject {
        match self {
            Impl::VliveImmediate => Subject::Vlive(
                RedbCache::builder()
                    .durability(Durability::Immediate)
                    .open(folder)
                    .expect("open vlive"),
            ),
            Impl::VliveLazy => Subject::Vlive(
                RedbCache::builder()
                    .durability(Durability::Lazy {
                        max_delay: LAZY_MAX_DELAY,
                    })
                    .open(folder)
                    .expect("open vlive"),
            ),
            Impl::VliveCold => Subject::Vlive(
                RedbCache::builder()
                    .durability(Durability::Immediate)
                    .hot_bytes(0)
                    .open(folder)
                    .expect("open vlive"),
            ),
            Impl::VliveLazyBudget => Subject::Vlive(
                RedbCache::builder()
                    .durability(Durability::Lazy {
                        max_delay: LAZY_MAX_DELAY,
                    })
                    .max_bytes(LAZY_BUDGET)
                    .open(folder)
                    .expect("open vlive"),
            ),
            Impl::Direct => Subject::Direct(DirectCache::open(folder)),
            Impl::Blocking => Subject::Blocking(DirectCache::open(folder)),
            Impl::Ceiling => unreachable!("the ceiling is not a cache"),
        }
    }
}

/// An open cache under test: vlive, or one of the two baselines.
#[derive(Clone)]
pub enum Subject {
    Vlive(RedbCache),
    Direct(DirectCache),
    Blocking(DirectCache),
}

impl Subject {
    pub async fn get(&self, key: String) -> Option<CachedRows> {
        match self {
            Subject::Vlive(cache) => cache.get(&key).await.expect("vlive get"),
            Subject::Direct(direct) => direct.get(&key),
            Subject::Blocking(direct) => on_blocking_pool(direct, move |d| d.get(&key)).await,
        }
    }

    pub async fn put(&self, key: String, rows: CachedRows) {
        match self {
            Subject::Vlive(cache) => cache.put(&key, rows).await.expect("vlive put"),
            Subject::Direct(direct) => direct.put(&key, &rows),
            Subject::Blocking(direct) => {
                on_blocking_pool(direct, move |d| d.put(&key, &rows)).await
            }
        }
    }

    pub async fn invalidate_prefix(&self, prefix: String) {
        match self {
            Subject::Vlive(cache) => cache
                .invalidate_prefix(&prefix)
                .await
                .expect("vlive invalidate"),
            Subject::Direct(direct) => direct.invalidate_prefix(&prefix),
            Subject::Blocking(direct) => {
                on_blocking_pool(direct, move |d| d.invalidate_prefix(&prefix)).await
            }
        }
    }

    pub fn stats(&self) -> Option<RedbCacheStats> {
        match self {
            Subject::Vlive(cache) => Some(cache.stats()),
            Subject::Direct(_) | Subject::Blocking(_) => None,
        }
    }

    /// Releases the file (the baselines close their database when the last clone drops).
    pub async fn close(self) {
        if let Subject::Vlive(cache) = self {
            cache.close().await.expect("vlive close");
        }
    }
}

/// The `blocking` design: the whole operation, encoding and decoding included, on tokio's
/// blocking pool, so the runtime's workers stay free while it waits.
async fn on_blocking_pool<T: Send + 'static>(
    direct: &DirectCache,
    operation: impl FnOnce(&DirectCache) -> T + Send + 'static,
) -> T {
    let direct = direct.clone();
    tokio::task::spawn_blocking(move || operation(&direct))
        .await
        .expect("an operation on the blocking pool panicked")
}
