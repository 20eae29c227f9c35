//! LiveTable over Postgres (feature `postgres`): [`PostgresMaster`], a [`Master`] over one
//! table, and [`PostgresLiveStream`], its change feed from LISTEN/NOTIFY.
//!
//! [`Master`]: crate::Master

mod columns;
mod feed;
mod master;

pub use feed::{LISTENER_APPLICATION_NAME, PostgresLiveStream, PostgresLiveStreamStats};
pub use master::PostgresMaster;
