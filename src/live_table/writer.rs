//! The write queue: one worker task per table applies writes in FIFO order, then invalidates.
//!
//! ```text
//!  LiveTable (Clone) ── WriteJob ──▶ bounded mpsc ──▶ worker task
//!       ▲                                             │ apply to the write target
//!       │                                             │ on success: invalidate `{cache_key}/`
//!       └───────────── oneshot reply ◀────────────────┘ then reply
//! ```
//!
//! The worker, not the caller, carries each write to its end: a caller that gives up waiting
//! (its future is dropped) does not stop a queued write from being applied and invalidated. The
//! worker runs while any clone of its table exists (they hold the queue's senders) and exits
//! once they are all gone and the queue is drained.

use std::fmt;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tracing::{Instrument, Span, error, info_span};

use super::master::Master;
use super::trace::op_span;
use super::{Core, Table};
use crate::error::{Error, Result, chain};
use crate::rows::Record;

/// How many writes may wait for the worker before writers wait for room.
pub(crate) const QUEUE_CAPACITY: usize = 1024;

/// One write, as the caller asked for it.
#[derive(Debug)]
pub(crate) enum WriteOp {
    Insert { id: String, record: Record },
    Replace { id: String, record: Record },
    Patch { id: String, partial: Record },
    Delete { id: String },
    DeleteAll,
}

/// What a write gave back.
#[derive(Debug)]
pub(crate) enum Applied {
    /// The record the master stored (insert, replace, patch).
    Record(Record),
    /// Nothing to give back (delete, delete_all).
    Done,
}

impl WriteOp {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            WriteOp::Insert { .. } => "insert",
            WriteOp::Replace { .. } => "replace",
            WriteOp::Patch { .. } => "patch",
            WriteOp::Delete { .. } => "delete",
            WriteOp::DeleteAll => "delete_all",
        }
    }

    pub(crate) fn id(&self) -> Option<&str> {
        match self {
            WriteOp::Insert { id, .. }
            | WriteOp::Replace { id, .. }
            | WriteOp::Patch { id, .. }
            | WriteOp::Delete { id } => Some(id),
            WriteOp::DeleteAll => None,
        }
    }

    async fn apply(self, target: &dyn Master) -> Result<Applied> {
        match self {
            WriteOp::Insert { id, record } => target.insert(&id, record).await.map(Applied::Record),
            WriteOp::Replace { id, record } => {
                target.replace(&id, record).await.map(Applied::Record)
            }
            WriteOp::Patch { id, partial } => target.patch(&id, partial).await.map(Applied::Record),
            WriteOp::Delete { id } => target.delete(&id).await.map(|()| Applied::Done),
            WriteOp::DeleteAll => target.delete_all().await.map(|()| Applied::Done),
        }
    }
}

/// A write on its way to the worker.
pub(crate) struct WriteJob {
    op: WriteOp,
    reply: oneshot::Sender<Result<Applied>>,
    /// The caller's span, which the worker's span for this write follows from.
    span: Span,
}

/// Queues `op` for `table`'s worker and waits for its outcome.
///
/// Cancel-safe in the useful sense: once the job is queued, dropping this future does not stop
/// the write or its invalidation; only the answer is lost.
pub(super) async fn submit(table: &Table, op: WriteOp) -> Result<Applied> {
    let span = op_span!("live_table.write", table.core.cache_key, op.name(), op.id());
    async {
        let (reply, answer) = oneshot::channel();
        let job = WriteJob {
            op,
            reply,
            span: Span::current(),
        };
        let sent = queue(table).send(job).await;
        // The worker outlives every sender; it is gone only if the runtime is shutting down.
        let result = match sent {
            Ok(()) => answer
                .await
                .unwrap_or_else(|_| Err(worker_gone(&table.core))),
            Err(_) => Err(worker_gone(&table.core)),
        };
        let outcome = if result.is_ok() {
            "invalidated"
        } else {
            "failed"
        };
        Span::current().record("outcome", outcome);
        result
    }
    .instrument(span)
    .await
}

/// The write queue, starting the worker on first use.
fn queue(table: &Table) -> &mpsc::Sender<WriteJob> {
    table
        .writes
        .get_or_init(|| spawn_worker(table.core.clone(), table.write_target.clone()))
}

fn worker_gone(core: &Core) -> Error {
    Error::WriteWorkerGone {
        cache_key: core.cache_key.clone(),
    }
}

/// Starts the worker applying `core`'s writes to `target`; returns the queue's sender.
fn spawn_worker(core: Arc<Core>, target: Arc<dyn Master>) -> mpsc::Sender<WriteJob> {
    let (sender, jobs) = mpsc::channel(QUEUE_CAPACITY);
    // A root span: the worker outlives the write that happened to start it.
    let span = info_span!(parent: None, "live_table.worker", cache_key = %core.cache_key);
    tokio::spawn(run(core, target, jobs).instrument(span));
    sender
}

async fn run(core: Arc<Core>, target: Arc<dyn Master>, mut jobs: mpsc::Receiver<WriteJob>) {
    while let Some(job) = jobs.recv().await {
        let span = op_span!(
            "live_table.apply",
            core.cache_key,
            job.op.name(),
            job.op.id()
        );
        span.follows_from(&job.span);
        let result = process(&core, job.op, target.clone())
            .instrument(span)
            .await;
        // The caller may have stopped waiting; the write is done either way.
        let _ = job.reply.send(result);
    }
    tracing::debug!("every handle of the table is gone; write worker stopping");
}

/// Applies one write and, if the target took it (or may have: a timeout), invalidates the
/// table's cache key.
async fn process(core: &Core, op: WriteOp, target: Arc<dyn Master>) -> Result<Applied> {
    let name = op.name();
    let applied = apply(core, op, target).await;
    let span = Span::current();
    match applied {
        Ok(applied) => {
            core.stats.writes.bump();
            if let Err(e) = core.invalidate().await {
                error!(error = %chain(&e), "the write was applied but the cache could not be invalidated");
                span.record("outcome", "failed");
                return Err(Error::WriteAppliedInvalidationFailed {
                    cache_key: core.cache_key.clone(),
                    op: name,
                    source: Box::new(e),
                });
            }
            span.record("outcome", "invalidated");
            Ok(applied)
        }
        Err(timeout @ Error::MasterTimeout { .. }) => {
            core.stats.failed_writes.bump();
            core.stats.master_timeouts.bump();
            // The write may have landed: entries from before it must go all the same. If this
            // fails too, the cache keeps them from being served (`docs/DESIGN.md` §4.5).
            if let Err(e) = core.invalidate().await {
                error!(error = %chain(&e), "a write timed out and the cache could not be invalidated");
            }
            span.record("outcome", "failed");
            Err(timeout)
        }
        Err(e) => {
            core.stats.failed_writes.bump();
            tracing::warn!(error = %chain(&e), "the write target refused the write; cache untouched");
            span.record("outcome", "failed");
            Err(e)
        }
    }
}

/// Applies `op` to `target`, bounded by the master timeout.
///
/// The write runs in a task of its own so that a panicking write target fails this write only,
/// instead of killing the worker and every write queued behind it. A write that times out is
/// aborted (its future dropped at its next await), so that it cannot go on behind the writes
/// queued after it.
async fn apply(core: &Core, op: WriteOp, target: Arc<dyn Master>) -> Result<Applied> {
    let name = op.name();
    let task = AbortOnDrop(tokio::spawn(async move { op.apply(target.as_ref()).await }));
    core.master_call(name)
        .run(async move {
            let mut task = task;
            match (&mut task.0).await {
                Ok(result) => result,
                Err(join) => Err(Error::master(WritePanicked {
                    op: name,
                    panicked: join.is_panic(),
                })),
            }
        })
        .await
}

/// Aborts its task when dropped: a write whose wait timed out.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A write whose task ended without an answer.
#[derive(Debug)]
struct WritePanicked {
    op: &'static str,
    panicked: bool,
}

impl fmt::Display for WritePanicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = if self.panicked {
            "panicked"
        } else {
            "was aborted"
        };
        write!(f, "the write target {how} during {}", self.op)
    }
}

impl std::error::Error for WritePanicked {}
