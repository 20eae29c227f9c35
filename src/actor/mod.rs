//! The storage actor: one thread owns the store and serves commands from a bounded channel,
//! committing each batch of writes in one transaction (group commit).
//!
//! ```text
//!  Handle (Clone) ──encoded command──▶ bounded channel ──▶ actor thread (owns the Store)
//!      ▲    │                                                │ block for the first command,
//!      │    │                                                │ drain what is queued (bounded),
//!      └────┼─────── oneshot reply ◀── after the commit ─────┘ one transaction, one commit
//!           │
//!           └─ get, no write in flight on its key ──▶ the store's reader, on the caller's thread
//! ```
//!
//! The actor opens, writes, reopens and closes the store; it alone decides when gets may read
//! beside it (see `read_beside`).
//!
//! - `access`: the access bits gets set and eviction reads.
//! - `admission`: which misses a full hot tier takes in.
//! - `budget`: eviction (CLOCK) and expiry sweeps, over the store's primitives.
//! - `checkpoint`: when lazy mode makes its commits durable: by time, and by bytes replaced.
//! - `command`: what travels over the channel.
//! - `config`: batch limits and durability.
//! - `fault`: panics caught around store calls, full disks told apart, the free-space reserve.
//! - `handle`: the caller's side: send, await the reply, map a vanished actor to an error.
//! - `hold_back`: lazy mode lets puts queue while more keep coming.
//! - `hot`: the hot tier, decoded entries in memory in front of the store.
//! - `read_beside`: gets answered on the caller's thread when no write in flight affects them.
//! - `serve`: the actor's loop, top to bottom.
//! - `stats`: counters shared by both sides.

// Also `MemCache`'s, so that it evicts and expires as `RedbCache` does.
pub(crate) mod access;
mod admission;
pub(crate) mod budget;
mod checkpoint;
mod command;
mod config;
mod fault;
mod handle;
mod hold_back;
mod hot;
mod read_beside;
mod serve;
mod shared;
mod stats;

#[cfg(loom)]
pub(crate) use command::Command;
pub(crate) use command::PutValue;
pub(crate) use config::ActorConfig;
#[cfg(loom)]
pub(crate) use config::BatchLimits;
pub use config::{Durability, OnDamage};
#[cfg(loom)]
pub(crate) use handle::Pending;
#[cfg(not(loom))]
pub(crate) use handle::WeakHandle;
pub(crate) use handle::{Fetched, Handle};
pub(crate) use serve::Opener;
#[cfg(loom)]
pub(crate) use serve::spawn;
#[cfg(not(loom))]
pub(crate) use serve::spawn_opening;
pub use stats::RedbCacheStats;
