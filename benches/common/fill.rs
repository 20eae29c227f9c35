//! A cache filled to a size with the sample value, for the benches that read a full file.

use vlive::{Cache, CachedRows, RedbCache};

/// The `i`th key a filled cache holds.
pub fn key(i: u64) -> String {
    format!("k/{i:08}")
}

/// Puts between two looks at the charged bytes.
const CHUNK: u64 = 256;

/// Puts the sample value under `key(0)`, `key(1)`, … until `bytes` are charged, then closes
/// `cache`; how many entries it holds. A lazy cache charges a put only once it commits, so
/// each chunk is flushed before looking: without that the fill overshot by up to the write
/// buffer (a 4 MiB fill held 55 MB).
pub async fn fill_to(cache: RedbCache, bytes: u64) -> u64 {
    let value = CachedRows::new(super::sample::sample_rows());
    let mut n = 0;
    while cache.stats().live_bytes < bytes {
        for _ in 0..CHUNK {
            cache.put(&key(n), value.clone()).await.unwrap();
            n += 1;
        }
        cache.flush().await.unwrap();
    }
    cache.close().await.unwrap();
    n
}
