//! foyer's `HybridCache` as its README sets one up (`FsDeviceBuilder` + `BlockEngineConfig`
//! with their defaults), writing to disk on insertion, with the same memory tier as the others.

use std::path::Path;

use foyer::{
    BlockEngineConfig, DeviceBuilder, FsDeviceBuilder, HybridCache, HybridCacheBuilder,
    HybridCachePolicy, StorageValue,
};

use crate::params::{FOYER_DISK, memory_tier};
use crate::payload::key;

/// Opens a hybrid cache over `folder`; `weight` is what one entry counts against the memory
/// tier (key and encoded value bytes, as for every subject).
pub async fn open<V: StorageValue>(folder: &Path, weight: u64) -> HybridCache<String, V> {
    let device = FsDeviceBuilder::new(folder)
        .with_capacity(FOYER_DISK)
        .build()
        .expect("foyer device");
    HybridCacheBuilder::new()
        // The default policy writes to disk only on eviction from memory; on insertion is the
        // one comparable with a persistent cache.
        .with_policy(HybridCachePolicy::WriteOnInsertion)
        .memory(memory_tier() as usize)
        .with_weighter(move |_: &String, _: &V| weight as usize)
        .storage()
        .with_engine_config(BlockEngineConfig::new(device))
        .build()
        .await
        .expect("foyer open")
}

/// How many of keys `0..count` reached foyer's disk, once its flushers are done: the others
/// were dropped when its submit queue was full.
pub async fn on_disk<V: StorageValue>(cache: &HybridCache<String, V>, count: u64) -> u64 {
    cache.storage().wait().await;
    (0..count)
        .filter(|&i| cache.storage().may_contains(&key(i)))
        .count() as u64
}
