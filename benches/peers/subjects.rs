//! The subjects compared, what each acknowledges, and one open instance of each behind the
//! same async get and put.

use std::path::Path;
use std::sync::Arc;

use foyer::HybridCache;
use vlive::{Cache, CachedRows, Durability, RedbCache, RedbCacheBuilder};

use crate::foyer_peer;
use crate::params::{LAZY_MAX_DELAY, PAGE_CACHE, memory_tier};
use crate::payload::{Payload, SerdeRows, key};
use crate::raw_redb::RawRedb;
use crate::workloads::Workload;

/// A subject's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Name {
    VliveDurable,
    VliveLazy,
    Moka,
    Foyer,
    FoyerRaw,
    RedbDurable,
    RedbNone,
}

impl Name {
    /// In run order: vlive first, so the raw redb references know vlive's batch sizes.
    pub const ALL: [Name; 7] = [
        Name::VliveDurable,
        Name::VliveLazy,
        Name::Moka,
        Name::Foyer,
        Name::FoyerRaw,
        Name::RedbDurable,
        Name::RedbNone,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Name::VliveDurable => "vlive-durable",
            Name::VliveLazy => "vlive-lazy",
            Name::Moka => "moka",
            Name::Foyer => "foyer",
            Name::FoyerRaw => "foyer-raw",
            Name::RedbDurable => "redb-durable",
            Name::RedbNone => "redb-none",
        }
    }

    pub fn parse(label: &str) -> Self {
        *Name::ALL
            .iter()
            .find(|name| name.label() == label)
            .expect("a subject's label")
    }

    /// What a put's return means, for the report.
    pub fn acknowledges(self) -> &'static str {
        match self {
            Name::VliveDurable => "a put is acknowledged after an fsynced commit (group commit)",
            Name::VliveLazy => {
                "a put is acknowledged once in the 64 MiB write buffer, visible to every get, \
                 committed in batches; lost in a crash, never dropped while running"
            }
            Name::Moka => "memory only: an insert is acknowledged in memory; nothing persists",
            Name::Foyer | Name::FoyerRaw => {
                "an insert is acknowledged once in memory; its disk write is queued, and \
                 dropped when the queue is full (`disk` column: how many reached disk)"
            }
            Name::RedbDurable => {
                "reference: a put is in a transaction committed durably (vlive's page cache)"
            }
            Name::RedbNone => {
                "reference: a put is in a transaction committed without fsync (vlive's page cache)"
            }
        }
    }

    /// Raw redb is a reference for puts and cold gets only: it has no memory tier.
    pub fn runs(self, workload: Workload) -> bool {
        let raw = matches!(self, Name::RedbDurable | Name::RedbNone);
        !raw || workload.is_put() || matches!(workload, Workload::ColdGet(_))
    }

    /// The vlive subject whose batch sizes a raw redb reference commits at.
    pub fn paired_with(self) -> Option<Name> {
        match self {
            Name::RedbDurable => Some(Name::VliveDurable),
            Name::RedbNone => Some(Name::VliveLazy),
            _ => None,
        }
    }

    fn vlive(self) -> RedbCacheBuilder {
        let builder = RedbCache::builder()
            .hot_bytes(memory_tier())
            .page_cache_bytes(PAGE_CACHE);
        match self {
            Name::VliveLazy => builder.durability(Durability::Lazy {
                max_delay: LAZY_MAX_DELAY,
            }),
            _ => builder.durability(Durability::Immediate),
        }
    }
}

/// An open subject. Clones share it.
#[derive(Clone)]
pub enum Subject {
    Vlive(RedbCache),
    Moka(moka::future::Cache<String, CachedRows>),
    Foyer(HybridCache<String, SerdeRows>),
    FoyerRaw(HybridCache<String, Vec<u8>>),
    Redb(Arc<RawRedb>),
}

impl Subject {
    /// Opens `name` over `folder`, empty. Call inside the runtime.
    pub async fn open(name: Name, folder: &Path, payload: &Payload) -> Subject {
        let weight = payload.weight();
        match name {
            Name::VliveDurable | Name::VliveLazy => {
                Subject::Vlive(name.vlive().open(folder).expect("open vlive"))
            }
            Name::Moka => Subject::Moka(
                moka::future::Cache::builder()
                    .max_capacity(memory_tier())
                    .weigher(move |_, _| weight as u32)
                    .build(),
            ),
            Name::Foyer => Subject::Foyer(foyer_peer::open(folder, weight).await),
            Name::FoyerRaw => Subject::FoyerRaw(foyer_peer::open(folder, weight).await),
            Name::RedbDurable | Name::RedbNone => Subject::Redb(Arc::new(RawRedb::create(folder))),
        }
    }

    /// Opens `name` holding entries `0..count`, each written as fast as the subject allows:
    /// vlive is filled lazily and reopened as configured, foyer waits for its disk every 256
    /// inserts (or it would drop most of them), raw redb commits 512 at a time.
    pub async fn filled(name: Name, folder: &Path, payload: &Payload, count: u64) -> Subject {
        if matches!(name, Name::VliveDurable | Name::VliveLazy) {
            // A small write buffer: the fill's buffered values must not linger in the
            // allocator and count against the RSS of the cache that serves the gets.
            let filler = Name::VliveLazy.vlive().write_buffer_bytes(4 << 20);
            let filler = filler.open(folder).expect("open vlive");
            for i in 0..count {
                filler
                    .put(&key(i), payload.rows.clone())
                    .await
                    .expect("put");
            }
            filler.close().await.expect("close");
        }
        let subject = Subject::open(name, folder, payload).await;
        match &subject {
            Subject::Vlive(_) => {}
            Subject::Redb(redb) => redb.fill(count, &payload.bytes),
            _ => {
                for i in 0..count {
                    subject.put(key(i), payload).await;
                    if i % 256 == 255 {
                        subject.settle().await;
                    }
                }
                subject.settle().await;
            }
        }
        subject
    }

    /// A get; whether it found the key.
    pub async fn get(&self, key: &str) -> bool {
        match self {
            Subject::Vlive(cache) => cache.get(key).await.expect("get").is_some(),
            Subject::Moka(cache) => cache.get(key).await.is_some(),
            Subject::Foyer(cache) => cache.get(key).await.expect("get").is_some(),
            Subject::FoyerRaw(cache) => cache.get(key).await.expect("get").is_some(),
            Subject::Redb(redb) => redb.get(key).is_some(),
        }
    }

    /// A put of the payload, in the form the subject takes (a clone, as a caller's would be).
    pub async fn put(&self, key: String, payload: &Payload) {
        match self {
            Subject::Vlive(cache) => cache.put(&key, payload.rows.clone()).await.expect("put"),
            Subject::Moka(cache) => cache.insert(key, payload.rows.clone()).await,
            Subject::Foyer(cache) => drop(cache.insert(key, payload.serde.clone())),
            Subject::FoyerRaw(cache) => drop(cache.insert(key, payload.bytes.clone())),
            Subject::Redb(_) => unreachable!("raw redb puts in batches of its own"),
        }
    }

    /// Waits until what was acknowledged is on disk: vlive's `flush`, foyer's flushers.
    pub async fn settle(&self) {
        match self {
            Subject::Vlive(cache) => cache.flush().await.expect("flush"),
            Subject::Foyer(cache) => cache.storage().wait().await,
            Subject::FoyerRaw(cache) => cache.storage().wait().await,
            Subject::Moka(_) | Subject::Redb(_) => {}
        }
    }

    /// vlive's mean commands per batch so far.
    pub fn mean_batch(&self) -> Option<f64> {
        match self {
            Subject::Vlive(cache) => Some(cache.stats().mean_batch_ops()),
            _ => None,
        }
    }

    /// How many of keys `0..count` reached foyer's disk.
    pub async fn on_disk(&self, count: u64) -> Option<u64> {
        match self {
            Subject::Foyer(cache) => Some(foyer_peer::on_disk(cache, count).await),
            Subject::FoyerRaw(cache) => Some(foyer_peer::on_disk(cache, count).await),
            _ => None,
        }
    }

    pub async fn close(&self) {
        match self {
            Subject::Vlive(cache) => cache.close().await.expect("close"),
            Subject::Foyer(cache) => cache.close().await.expect("close"),
            Subject::FoyerRaw(cache) => cache.close().await.expect("close"),
            Subject::Moka(_) | Subject::Redb(_) => {}
        }
    }
}
