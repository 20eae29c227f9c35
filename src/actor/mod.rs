//! The storage actor: one thread owns the store and serves commands from a bounded channel,
//! committing each batch of writes in one transaction (group commit).
//!
//! ```text
//!  Handle (Clone) ──encoded command──▶ bounded channel ──▶ actor thread (owns the Store)
//!      ▲                                                     │ block for the first command,
//!      │                                                     │ drain what is queued (bounded),
//!      └──────────── oneshot reply ◀── after the commit ─────┘ one transaction, one commit
//! ```
//!
//! - `command`: what travels over the channel.
//! - `config`: batch limits and durability.
//! - `handle`: the caller's side: send, await the reply, map a vanished actor to an error.
//! - `serve`: the actor's loop, top to bottom.
//! - `stats`: counters shared by both sides.

mod command;
mod config;
mod handle;
mod serve;
mod stats;

#[cfg(loom)]
pub(crate) use command::Command;
pub(crate) use config::ActorConfig;
pub use config::{BatchLimits, Durability};
pub(crate) use handle::Handle;
#[cfg(loom)]
pub(crate) use handle::Pending;
#[cfg(not(loom))]
pub(crate) use handle::WeakHandle;
#[cfg(loom)]
pub(crate) use serve::spawn;
#[cfg(not(loom))]
pub(crate) use serve::spawn_opening;
pub use stats::CacheStats;
