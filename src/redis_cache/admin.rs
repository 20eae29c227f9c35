//! Looking at a namespace as an operator does (the `vlive` CLI): list its entries, read one,
//! check that every value decodes. Reads only.
//!
//! Keys are listed from each shard's index (`…:i`, every key at score 0, so `ZRANGE … BYLEX`
//! walks them in order from the prefix on), a page at a time: never `KEYS` or `SCAN`, which
//! would walk the whole server. An entry an invalidation has hidden but not yet swept (a mark
//! over its prefix newer than its write, as the GET script decides) is not listed: the cache no
//! longer serves it. Values carry no checksum in Redis (the server keeps them whole); a damaged
//! one is a value that will not decode.

use super::RedisCache;
use super::keyspace::Keyspace;
use super::scripts;
use crate::codec;
use crate::error::{RedisFaultKind, Result};
use crate::inspect::{EntryInfo, Verification};
use crate::rows::CachedRows;

/// Index keys read per call: a bounded amount of server time per round trip.
const PAGE: usize = 500;

impl RedisCache {
    /// The entries whose keys start with `prefix`, in key order, at most `limit` of them; each
    /// value decoded (a value that does not decode is listed with its `damage`).
    pub async fn entries(&self, prefix: &str, limit: Option<usize>) -> Result<Vec<EntryInfo>> {
        let mut listed = Vec::new();
        for shard in 0..self.shards() {
            listed.extend(self.shard_entries(shard, prefix, limit).await?);
        }
        listed.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        if let Some(limit) = limit {
            listed.truncate(limit);
        }
        Ok(listed)
    }

    /// `key`'s rows as stored, expired or not; `None` if the namespace does not serve it. A
    /// value that does not decode fails with [`RedisFaultKind::Corrupt`].
    pub async fn read(&self, key: &str) -> Result<Option<CachedRows>> {
        let shard = self.inner.shards.of(key);
        let bytes: Option<Vec<u8>> = self
            .script(shard, "read", key, &scripts::GET_SCRIPT, &[key.as_bytes()])
            .await?;
        let Some(bytes) = bytes else { return Ok(None) };
        codec::decode(&bytes)
            .map(Some)
            .map_err(|reason| self.fault("read", Some(key), RedisFaultKind::Corrupt(reason)))
    }

    /// Reads every entry of the namespace and decodes it; names those that do not decode.
    pub async fn verify(&self) -> Result<Verification> {
        let mut outcome = Verification::default();
        for shard in 0..self.shards() {
            for entry in self.shard_entries(shard, "", None).await? {
                outcome.checked += 1;
                if let Some(damage) = entry.damage {
                    outcome.damaged.push((entry.key, damage));
                }
            }
        }
        outcome.damaged.sort_unstable();
        Ok(outcome)
    }

    /// One shard's entries under `prefix`, at most `limit`.
    async fn shard_entries(
        &self,
        shard: usize,
        prefix: &str,
        limit: Option<usize>,
    ) -> Result<Vec<EntryInfo>> {
        let keys = self.keyspace(shard).clone();
        let marks = self.marks(&keys).await?;
        let mut listed = Vec::new();
        let mut from = match prefix {
            "" => "-".to_owned(),
            prefix => format!("[{prefix}"),
        };
        loop {
            let page = self.index_page(&keys, &from).await?;
            let done = page.len() < PAGE;
            let Some(last) = page.last() else { break };
            from = format!("({last}");
            let under: Vec<String> = page
                .into_iter()
                .take_while(|key| key.starts_with(prefix))
                .collect();
            let stop = done || under.len() < PAGE;
            listed.extend(self.examine_page(&keys, &marks, under).await?);
            if stop || limit.is_some_and(|limit| listed.len() >= limit) {
                break;
            }
        }
        if let Some(limit) = limit {
            listed.truncate(limit);
        }
        Ok(listed)
    }

    /// Up to [`PAGE`] index keys from `from` (a `ZRANGE BYLEX` bound) on.
    async fn index_page(&self, keys: &Keyspace, from: &str) -> Result<Vec<String>> {
        let mut command = redis::cmd("ZRANGE");
        command
            .arg(&keys.index)
            .arg(from)
            .arg("+")
            .arg("BYLEX")
            .arg("LIMIT")
            .arg(0)
            .arg(PAGE);
        self.inner
            .link
            .run(|mut connection| async move { command.query_async(&mut connection).await })
            .await
            .map_err(|e| self.fault("list", None, RedisFaultKind::of(e)))
    }

    /// The marks of invalidations still sweeping: prefix → epoch (a score, so read as one).
    async fn marks(&self, keys: &Keyspace) -> Result<Vec<(String, f64)>> {
        let mut command = redis::cmd("ZRANGE");
        command.arg(&keys.marks).arg(0).arg(-1).arg("WITHSCORES");
        self.inner
            .link
            .run(|mut connection| async move { command.query_async(&mut connection).await })
            .await
            .map_err(|e| self.fault("list", None, RedisFaultKind::of(e)))
    }

    /// The values of `page` (and, under marks, when each was written), examined; entries a mark
    /// hides are left out.
    async fn examine_page(
        &self,
        keys: &Keyspace,
        marks: &[(String, f64)],
        page: Vec<String>,
    ) -> Result<Vec<EntryInfo>> {
        if page.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        pipe.cmd("HMGET").arg(&keys.values).arg(&page);
        pipe.cmd("HMGET").arg(&keys.written).arg(&page);
        type Reply = (Vec<Option<Vec<u8>>>, Vec<Option<u64>>);
        let (values, written): Reply = self
            .inner
            .link
            .run(|mut connection| async move { pipe.query_async(&mut connection).await })
            .await
            .map_err(|e| self.fault("list", None, RedisFaultKind::of(e)))?;
        let listed = page
            .iter()
            .zip(values)
            .zip(written)
            .filter_map(|((key, value), written)| {
                let written = written.unwrap_or(0) as f64;
                let hidden = marks
                    .iter()
                    .any(|(p, epoch)| key.starts_with(p.as_str()) && *epoch > written);
                (!hidden).then_some((key, value?))
            })
            .map(|(key, value)| examine(key, &value))
            .collect();
        Ok(listed)
    }
}

/// One stored value, decoded.
fn examine(key: &str, value: &[u8]) -> EntryInfo {
    let (rows, fetched_at, damage) = match codec::decode(value) {
        Ok(rows) => (Some(rows.rows.len()), Some(rows.fetched_at), None),
        Err(reason) => (None, None, Some(format!("does not decode: {reason}"))),
    };
    EntryInfo {
        key: key.to_owned(),
        value_bytes: value.len() as u64,
        rows,
        fetched_at,
        damage,
    }
}
