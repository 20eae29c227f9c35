//! Live events: what tells a [`LiveTable`](crate::LiveTable) that the master changed behind
//! its back, and the task that turns them into invalidations (one per group of events that
//! arrive together).

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use tokio::runtime::Handle;
use tokio::sync::{broadcast, watch};
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::{Stream, StreamExt};
use tracing::{Instrument, debug, error, info_span, warn};

use super::Core;
use super::trace::op_span;
use crate::error::chain;

/// A change notice from the master (a webhook, a change feed, a message bus, …).
///
/// Every event invalidates the whole `cache_key` of the tables listening: a row change can move
/// rows across pages, so no finer invalidation is safe.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LiveEvent {
    /// Something changed; the source does not say what.
    Changed,
    /// The row `id` was created.
    Inserted {
        /// The new row's id.
        id: String,
    },
    /// The row `id` was modified.
    Updated {
        /// The modified row's id.
        id: String,
    },
    /// The row `id` was removed.
    Deleted {
        /// The removed row's id.
        id: String,
    },
    /// The subscription fell behind and `missed` events were lost (`0`: unknown how many, as
    /// after a reconnect). Streams that can detect a gap (such as [`ManualLiveStream`]'s)
    /// report it with this event; a table invalidates for it, or, serving stale while
    /// revalidating, marks its entries stale, and logs it at `warn!`, because the staleness it
    /// stands for is unknown.
    Lagged {
        /// How many events were lost.
        missed: u64,
    },
}

impl LiveEvent {
    /// The row the event is about, if it names one.
    pub fn id(&self) -> Option<&str> {
        match self {
            LiveEvent::Inserted { id } | LiveEvent::Updated { id } | LiveEvent::Deleted { id } => {
                Some(id)
            }
            LiveEvent::Changed | LiveEvent::Lagged { .. } => None,
        }
    }

    /// A short name for logs: `changed`, `inserted`, `updated`, `deleted` or `lagged`.
    pub fn kind(&self) -> &'static str {
        match self {
            LiveEvent::Changed => "changed",
            LiveEvent::Inserted { .. } => "inserted",
            LiveEvent::Updated { .. } => "updated",
            LiveEvent::Deleted { .. } => "deleted",
            LiveEvent::Lagged { .. } => "lagged",
        }
    }
}

/// A subscription to live events: a boxed [`Stream`] of [`LiveEvent`]s.
pub type LiveEvents = Pin<Box<dyn Stream<Item = LiveEvent> + Send>>;

/// A source of [`LiveEvent`]s that a [`LiveTable`](crate::LiveTable) can listen to.
///
/// [`subscribe`](LiveStream::subscribe) is called once per table, when a table given the stream
/// ([`LiveTableBuilder::live_stream`](crate::LiveTableBuilder::live_stream)) is built; events
/// sent after that call must reach the returned stream. When the stream ends, the table
/// invalidates its cache key one last time and stops listening (a stream that can reconnect
/// should do so inside, and report the gap as [`LiveEvent::Lagged`] or [`LiveEvent::Changed`]).
pub trait LiveStream: Send + Sync {
    /// A new subscription, receiving the events sent from now on.
    fn subscribe(&self) -> LiveEvents;
}

/// A [`LiveStream`] you push events into by hand: for tests, demos, and for bridging a
/// notification source of your own (call [`push`](ManualLiveStream::push) from its handler).
///
/// Built on a Tokio broadcast channel: every subscription gets every event pushed after it
/// subscribed. A subscription that falls more than `capacity` events behind loses the oldest
/// ones and receives a [`LiveEvent::Lagged`] instead. Subscriptions end when every clone of the
/// `ManualLiveStream` has been dropped.
#[derive(Clone, Debug)]
pub struct ManualLiveStream {
    sender: broadcast::Sender<LiveEvent>,
}

impl Default for ManualLiveStream {
    fn default() -> Self {
        Self::new()
    }
}

impl ManualLiveStream {
    /// How many events a subscription may fall behind by default before it lags.
    pub const DEFAULT_CAPACITY: usize = 256;

    /// A stream whose subscriptions may fall [`DEFAULT_CAPACITY`](Self::DEFAULT_CAPACITY)
    /// events behind.
    pub fn new() -> Self {
        Self::with_capacity(Self::DEFAULT_CAPACITY)
    }

    /// A stream whose subscriptions may fall `capacity` events behind (at least 1) before they
    /// lag.
    pub fn with_capacity(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        ManualLiveStream { sender }
    }

    /// Sends `event` to every current subscription; returns how many there are.
    pub fn push(&self, event: LiveEvent) -> usize {
        self.sender.send(event).unwrap_or(0)
    }

    /// How many subscriptions are listening.
    pub fn subscriber_count(&self) -> usize {
        self.sender.receiver_count()
    }
}

impl LiveStream for ManualLiveStream {
    fn subscribe(&self) -> LiveEvents {
        Box::pin(
            BroadcastStream::new(self.sender.subscribe()).map(|received| match received {
                Ok(event) => event,
                Err(BroadcastStreamRecvError::Lagged(missed)) => LiveEvent::Lagged { missed },
            }),
        )
    }
}

/// The most events one invalidation answers for: a stream that never runs dry is still
/// answered for at least this often.
const MAX_COALESCED: usize = 1024;

/// Spawns on `runtime` the task that invalidates `core`'s cache key for the events of `events`.
///
/// Events are coalesced: after each event that wakes it, the task takes every event already
/// waiting behind it (without waiting for more) and invalidates once for the whole group, which
/// covers them all. With a durable cache one commit per event would leave the consumer ever
/// further behind (`docs/DESIGN.md` §4.6).
///
/// It holds only a weak reference to the table's core, and stops when `table_alive` reports
/// that the table is gone, when the core is gone, or when the stream ends.
pub(super) fn spawn_consumer(
    runtime: &Handle,
    core: &Arc<Core>,
    mut events: LiveEvents,
    mut table_alive: watch::Receiver<()>,
) {
    // A root span: the consumer outlives whatever span attached the stream.
    let span = info_span!(parent: None, "live_table.events", cache_key = %core.cache_key);
    let core = Arc::downgrade(core);
    runtime.spawn(
        async move {
            loop {
                let next = tokio::select! {
                    biased;
                    // Nothing is ever sent: this resolves when the table is dropped.
                    _ = table_alive.changed() => break,
                    next = events.next() => next,
                };
                let Some(core) = core.upgrade() else { break };
                let group = with_ready(&mut events, next).await;
                consume(&core, &group).await;
                if ended(&group) {
                    break;
                }
            }
            debug!("live event consumer stopped");
        }
        .instrument(span),
    );
}

/// `first`, followed by the events already waiting behind it: polls `events` without ever
/// waiting, until it has nothing ready, ends (`None`, the last item then), or
/// [`MAX_COALESCED`] items are taken.
async fn with_ready(events: &mut LiveEvents, first: Option<LiveEvent>) -> Vec<Option<LiveEvent>> {
    let mut group = vec![first];
    while !ended(&group) && group.len() < MAX_COALESCED {
        // One poll: `Pending` means nothing is waiting now, or Tokio's cooperative budget for
        // this task is spent; either way the group ends here. (The waker it registered is
        // harmless: the consumer polls the stream again anyway.)
        match poll_fn(|cx| Poll::Ready(events.as_mut().poll_next(cx))).await {
            Poll::Ready(next) => group.push(next),
            Poll::Pending => break,
        }
    }
    group
}

/// Whether the stream ended: a group ends with `None` if it does.
fn ended(group: &[Option<LiveEvent>]) -> bool {
    matches!(group.last(), Some(None))
}

/// Invalidates once for a group of events (`None`: the stream ended).
///
/// The span records `events` (the group's size); `op` and `id` describe the event when the
/// group holds just one, and `op` is `"coalesced"` otherwise. Each event is logged inside it:
/// at `warn!` for a gap or the end of the stream, else at `debug!`.
async fn consume(core: &Core, group: &[Option<LiveEvent>]) {
    let (op, id) = match group {
        [only] => (kind(only), only.as_ref().and_then(LiveEvent::id)),
        _ => ("coalesced", None),
    };
    let span = op_span!(
        "live_table.event",
        core.cache_key,
        op,
        id,
        events = group.len()
    );
    async {
        for event in group {
            core.stats.events.bump();
            match event {
                Some(LiveEvent::Lagged { missed }) => {
                    core.stats.stream_gaps.bump();
                    warn!(
                        missed,
                        "live stream lagged: events were lost; the whole cache key is invalidated \
                         (or, serving stale while revalidating, marked stale)"
                    );
                }
                None => {
                    core.stats.stream_gaps.bump();
                    warn!(
                        "live stream ended: invalidating the whole cache key; \
                         no further events will be received"
                    );
                }
                Some(event) => debug!(?event, "live event"),
            }
        }
        // With serve-stale-while-revalidate, a gap (and nothing else) marks the entries stale
        // instead of removing them.
        let only_gaps = group
            .iter()
            .all(|event| matches!(event, Some(LiveEvent::Lagged { .. })));
        if only_gaps && let Some(revalidation) = &core.revalidation {
            revalidation.mark();
            // A miss from now on must not join a master read that started before the gap.
            core.flights.forget_all();
            debug!("entries marked stale: served while revalidated, within the grace period");
            tracing::Span::current().record("outcome", "marked_stale");
            return;
        }
        let outcome = match core.invalidate().await {
            Ok(()) => "invalidated",
            Err(e) => {
                error!(error = %chain(&e), "invalidation after live events failed; the cache may be stale");
                "failed"
            }
        };
        tracing::Span::current().record("outcome", outcome);
    }
    .instrument(span)
    .await
}

/// The `op` of an event, or of the end of the stream.
fn kind(event: &Option<LiveEvent>) -> &'static str {
    event.as_ref().map_or("stream_ended", LiveEvent::kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn a_manual_stream_reports_a_gap_as_lagged_and_ends_when_dropped() {
        let stream = ManualLiveStream::with_capacity(1);
        let mut events = stream.subscribe();
        assert_eq!(stream.subscriber_count(), 1);
        assert_eq!(stream.push(LiveEvent::Changed), 1);
        assert_eq!(
            stream.push(LiveEvent::Deleted { id: "7".into() }),
            1,
            "pushed past the capacity"
        );
        assert_eq!(events.next().await, Some(LiveEvent::Lagged { missed: 1 }));
        assert_eq!(
            events.next().await,
            Some(LiveEvent::Deleted { id: "7".into() })
        );
        drop(stream);
        assert_eq!(events.next().await, None);
    }

    #[test]
    fn events_name_their_row() {
        assert_eq!(LiveEvent::Updated { id: "a/b".into() }.id(), Some("a/b"));
        assert_eq!(LiveEvent::Changed.id(), None);
        assert_eq!(LiveEvent::Lagged { missed: 3 }.kind(), "lagged");
    }
}
