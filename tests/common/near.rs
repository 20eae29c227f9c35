//! Helpers for tests of `TieredCache`'s near tier (included with `#[path]` by the Redis tests).

use vlive::TieredCache;

use crate::common::{tag, within};

/// Gets `key` until the near tier answers, proving the value is cached there.
pub async fn cache_in_near(cache: &TieredCache, key: &str) -> Option<String> {
    within("the near tier to hold the key", async {
        loop {
            cache.sync().await;
            let hits = cache.stats().near_hits;
            let found = tag(cache, key).await;
            if cache.stats().near_hits > hits {
                return found;
            }
        }
    })
    .await
}
