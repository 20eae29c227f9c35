//! LiveTable over Postgres (feature `postgres`): [`PostgresMaster`], a [`Master`] over one
//! table.
//!
//! [`Master`]: crate::Master

mod columns;
mod master;

pub use master::PostgresMaster;
