//! A cache filled to a size with the sample value, for the benches that read a full file.

use vlive::{Cache, CachedRows, RedbCache};

/// The `i`th key a filled cache holds.
pub fn key(i: u64) -> String {
    format!("k/{i:08}")
}

/// Puts the sample value under `key(0)`, `key(1)`, … until `bytes` are charged, then closes
/// `cache`; how many entries it holds.
pub async fn fill_to(cache: RedbCache, bytes: u64) -> u64 {
    let value = CachedRows::new(super::sample::sample_rows());
    let mut n = 0;
    while cache.stats().live_bytes < bytes {
        cache.put(&key(n), value.clone()).await.unwrap();
        n += 1;
    }
    cache.close().await.unwrap();
    n
}
