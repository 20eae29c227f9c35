//! The table being cached: the [`Master`] trait and the [`Page`] a list asks for.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use tracing::warn;

use crate::error::{Error, Result};
use crate::rows::{Record, Rows};

/// One page of a listing: `number` counts from 1, `per_page` rows per page.
///
/// A [`LiveTable`](crate::LiveTable) caches each page under `{cache_key}/page_{number}_{per_page}`,
/// so the same rows asked for with a different page size are a different cache entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Page {
    /// The page number, starting at 1 ([`LiveTable::list`](crate::LiveTable::list) rejects 0).
    pub number: u32,
    /// How many rows a page holds.
    pub per_page: u32,
}

impl Page {
    /// Page `number` (from 1) of `per_page` rows.
    pub fn new(number: u32, per_page: u32) -> Self {
        Page { number, per_page }
    }

    /// The first page of `per_page` rows.
    pub fn first(per_page: u32) -> Self {
        Page::new(1, per_page)
    }

    /// How many rows come before this page (`(number - 1) * per_page`; page 0 counts as page 1).
    pub fn offset(&self) -> u64 {
        u64::from(self.number.saturating_sub(1)) * u64::from(self.per_page)
    }
}

impl fmt::Display for Page {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "page {} ({} per page)", self.number, self.per_page)
    }
}

/// The authoritative table a [`LiveTable`](crate::LiveTable) caches: usually a remote service,
/// in tests and demos anything that stores rows by id.
///
/// Implementations report their own failures as [`Error::Master`] (build it with
/// [`Error::master`]); the table hands them to its caller unchanged, with the source kept. Any
/// other [`Error`] variant a master returns is wrapped in `Error::Master` so callers can always
/// tell a master failure from a cache failure.
///
/// The write methods return what the master stored, as masters that fill in defaults or
/// timestamps do. Whether writing a missing id (or inserting an existing one) is an error is
/// the master's decision.
#[async_trait]
pub trait Master: Send + Sync {
    /// One page of rows, in the master's order.
    async fn list(&self, page: Page) -> Result<Rows>;

    /// The row with this id, or `None` when there is none.
    async fn get(&self, id: &str) -> Result<Option<Record>>;

    /// Creates the row `id`; returns the stored record.
    async fn insert(&self, id: &str, record: Record) -> Result<Record>;

    /// Replaces the whole row `id`; returns the stored record.
    async fn replace(&self, id: &str, record: Record) -> Result<Record>;

    /// Sets the fields of `partial` on row `id`, leaving the others as they are; returns the
    /// stored record.
    async fn patch(&self, id: &str, partial: Record) -> Result<Record>;

    /// Removes the row `id`.
    async fn delete(&self, id: &str) -> Result<()>;

    /// Removes every row.
    async fn delete_all(&self) -> Result<()>;
}

/// Makes sure an error coming out of a master is an [`Error::Master`].
pub(crate) fn master_error(error: Error) -> Error {
    match error {
        Error::Master(_) => error,
        other => Error::master(other),
    }
}

/// One call to the master, bounded by the table's `master_timeout`: a master that never answers
/// must not hang the table's readers and writers.
#[derive(Clone, Debug)]
pub(crate) struct MasterCall {
    pub(crate) cache_key: String,
    pub(crate) op: &'static str,
    pub(crate) limit: Duration,
    /// The table's master-call histogram, registered once when it was built.
    #[cfg(feature = "metrics")]
    pub(crate) seconds: Option<metrics::Histogram>,
}

impl MasterCall {
    /// Awaits `call` for at most `limit`; after that the call is dropped and the answer is
    /// [`Error::MasterTimeout`]. The master's own errors become [`Error::Master`].
    pub(crate) async fn run<T>(&self, call: impl Future<Output = Result<T>>) -> Result<T> {
        #[cfg(feature = "metrics")]
        let started = std::time::Instant::now();
        let answered = tokio::time::timeout(self.limit, call).await;
        // Timeouts included: a master that hangs shows as calls at the limit.
        #[cfg(feature = "metrics")]
        if let Some(seconds) = &self.seconds {
            seconds.record(started.elapsed().as_secs_f64());
        }
        match answered {
            Ok(answer) => answer.map_err(master_error),
            Err(_elapsed) => {
                warn!(op = self.op, after = ?self.limit, "the master gave no answer in time; call abandoned");
                Err(Error::MasterTimeout {
                    cache_key: self.cache_key.clone(),
                    op: self.op,
                    after: self.limit,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_offsets_count_from_one() {
        assert_eq!(Page::first(20).offset(), 0);
        assert_eq!(Page::new(3, 20).offset(), 40);
        assert_eq!(Page::new(0, 20).offset(), 0);
        assert_eq!(Page::new(2, 7).to_string(), "page 2 (7 per page)");
    }

    #[tokio::test]
    async fn a_call_past_its_limit_is_a_master_timeout_and_anything_it_returns_a_master_error() {
        let call = MasterCall {
            cache_key: "clients".into(),
            op: "list",
            limit: Duration::from_millis(10),
            #[cfg(feature = "metrics")]
            seconds: None,
        };
        let hung = call.run(std::future::pending::<Result<()>>()).await;
        assert!(
            matches!(&hung, Err(Error::MasterTimeout { cache_key, op: "list", after })
                if cache_key == "clients" && *after == Duration::from_millis(10)),
            "{hung:?}"
        );
        // A master's own timeout error is its failure, not the table's timeout.
        let inner = Error::MasterTimeout {
            cache_key: "inner".into(),
            op: "get",
            after: Duration::from_secs(1),
        };
        let failed = call.run(async { Err::<(), _>(inner) }).await;
        assert!(matches!(failed, Err(Error::Master(_))), "{failed:?}");
        assert_eq!(call.run(async { Ok(7) }).await.unwrap(), 7);
    }

    #[test]
    fn non_master_errors_are_wrapped_with_their_source() {
        let wrapped = master_error(Error::Closed);
        let Error::Master(source) = &wrapped else {
            panic!("expected Error::Master, got {wrapped:?}");
        };
        assert_eq!(source.to_string(), "the cache is closed");
        let already = Error::master(std::io::Error::other("boom"));
        assert!(matches!(master_error(already), Error::Master(s) if s.to_string() == "boom"));
    }
}
