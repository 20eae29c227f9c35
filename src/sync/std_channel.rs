//! Production channels: a flume channel for commands (unbounded: the actor's handles bound it
//! with their own permits, `sync::Semaphore`), tokio's oneshot for replies.

pub(crate) mod channel {
    use std::time::Instant;

    use crate::sync::Received;

    pub(crate) fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
        let (tx, rx) = flume::unbounded();
        (Sender(tx), Receiver(rx))
    }

    /// The sending half; one per handle. The channel disconnects when the last one drops.
    #[derive(Debug)]
    pub(crate) struct Sender<T>(flume::Sender<T>);

    impl<T> Clone for Sender<T> {
        fn clone(&self) -> Self {
            Sender(self.0.clone())
        }
    }

    impl<T> Sender<T> {
        /// Queues `message` at once (the channel never fills). Gives it back if the receiver is
        /// gone.
        pub(crate) fn send(&self, message: T) -> Result<(), T> {
            self.0.send(message).map_err(|e| e.into_inner())
        }

        pub(crate) fn queued(&self) -> usize {
            self.0.len()
        }

        pub(crate) fn downgrade(&self) -> WeakSender<T> {
            WeakSender(self.0.downgrade())
        }
    }

    /// A sender that does not keep the channel connected.
    #[derive(Debug)]
    pub(crate) struct WeakSender<T>(flume::WeakSender<T>);

    impl<T> WeakSender<T> {
        pub(crate) fn upgrade(&self) -> Option<Sender<T>> {
            self.0.upgrade().map(Sender)
        }
    }

    #[derive(Debug)]
    pub(crate) struct Receiver<T>(flume::Receiver<T>);

    impl<T> Receiver<T> {
        /// Blocks for the next message; `None` once every sender is gone and the queue is empty.
        pub(crate) fn recv(&self) -> Option<T> {
            self.0.recv().ok()
        }

        /// Messages waiting in the channel.
        pub(crate) fn queued(&self) -> usize {
            self.0.len()
        }

        pub(crate) fn try_recv(&self) -> Received<T> {
            match self.0.try_recv() {
                Ok(message) => Received::Message(message),
                Err(flume::TryRecvError::Empty) => Received::Empty,
                Err(flume::TryRecvError::Disconnected) => Received::Disconnected,
            }
        }

        pub(crate) fn recv_deadline(&self, deadline: Instant) -> Received<T> {
            match self.0.recv_deadline(deadline) {
                Ok(message) => Received::Message(message),
                Err(flume::RecvTimeoutError::Timeout) => Received::Empty,
                Err(flume::RecvTimeoutError::Disconnected) => Received::Disconnected,
            }
        }
    }
}

pub(crate) mod oneshot {
    pub(crate) fn channel<T>() -> (Sender<T>, Receiver<T>) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        (Sender(tx), Receiver(rx))
    }

    #[derive(Debug)]
    pub(crate) struct Sender<T>(tokio::sync::oneshot::Sender<T>);

    impl<T> Sender<T> {
        /// Delivers the value; a receiver that gave up (a cancelled caller) is not an error.
        pub(crate) fn send(self, value: T) {
            let _ = self.0.send(value);
        }
    }

    #[derive(Debug)]
    pub(crate) struct Receiver<T>(tokio::sync::oneshot::Receiver<T>);

    impl<T> Receiver<T> {
        /// The value, or `None` if the sender was dropped without sending.
        pub(crate) async fn recv(self) -> Option<T> {
            self.0.await.ok()
        }
    }
}
