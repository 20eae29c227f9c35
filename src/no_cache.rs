//! `NoCache`: a cache that stores nothing, for turning caching off without changing code paths.

use async_trait::async_trait;

use crate::cache::{Cache, FillOutcome, FillToken};
use crate::error::Result;
use crate::rows::CachedRows;

/// Every `get` misses; `put`, `fill` and `invalidate_prefix` succeed and do nothing.
#[derive(Clone, Copy, Default, Debug)]
pub struct NoCache;

#[async_trait]
impl Cache for NoCache {
    async fn get(&self, _key: &str) -> Result<Option<CachedRows>> {
        Ok(None)
    }

    async fn put(&self, _key: &str, _rows: CachedRows) -> Result<()> {
        Ok(())
    }

    async fn invalidate_prefix(&self, _prefix: &str) -> Result<()> {
        Ok(())
    }

    async fn fill_token(&self, _key: &str) -> Result<FillToken> {
        Ok(FillToken {
            instance: 0,
            epoch: 0,
        })
    }

    /// Accepted and dropped: there is nowhere to store it.
    async fn fill(&self, _key: &str, _rows: CachedRows, _token: FillToken) -> Result<FillOutcome> {
        Ok(FillOutcome::Stored)
    }
}
