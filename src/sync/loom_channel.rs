//! Loom builds: an unbounded channel and a oneshot on the shimmed `Mutex`/`Condvar`.
//!
//! They keep the semantics the actor relies on from flume and tokio: a sender count (the channel
//! disconnects when the last sender drops), a dropped receiver that refuses later sends but, like
//! flume's, leaves what is queued in place until the channel itself goes, and a oneshot whose
//! receiver learns when the sender vanished without sending. The async
//! methods block the calling loom thread, which is what `loom::future::block_on` expects.

pub(crate) mod channel {
    use std::collections::VecDeque;
    use std::time::Instant;

    use crate::sync::{Arc, Condvar, Mutex, Received};

    pub(crate) fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                senders: 1,
                receiver_alive: true,
            }),
            not_empty: Condvar::new(),
        });
        (
            Sender {
                shared: shared.clone(),
            },
            Receiver { shared },
        )
    }

    struct Shared<T> {
        state: Mutex<State<T>>,
        not_empty: Condvar,
    }

    struct State<T> {
        queue: VecDeque<T>,
        senders: usize,
        receiver_alive: bool,
    }

    pub(crate) struct Sender<T> {
        shared: Arc<Shared<T>>,
    }

    impl<T> std::fmt::Debug for Sender<T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("loom::Sender")
        }
    }

    impl<T> Clone for Sender<T> {
        fn clone(&self) -> Self {
            self.shared.state.lock().senders += 1;
            Sender {
                shared: self.shared.clone(),
            }
        }
    }

    impl<T> Drop for Sender<T> {
        fn drop(&mut self) {
            let mut state = self.shared.state.lock();
            state.senders -= 1;
            if state.senders == 0 {
                self.shared.not_empty.notify_all();
            }
        }
    }

    impl<T> Sender<T> {
        pub(crate) fn send(&self, message: T) -> Result<(), T> {
            let mut state = self.shared.state.lock();
            if !state.receiver_alive {
                return Err(message);
            }
            state.queue.push_back(message);
            self.shared.not_empty.notify_one();
            Ok(())
        }

        pub(crate) fn queued(&self) -> usize {
            self.shared.state.lock().queue.len()
        }
    }

    pub(crate) struct Receiver<T> {
        shared: Arc<Shared<T>>,
    }

    impl<T> std::fmt::Debug for Receiver<T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("loom::Receiver")
        }
    }

    impl<T> Receiver<T> {
        pub(crate) fn recv(&self) -> Option<T> {
            let mut state = self.shared.state.lock();
            loop {
                if let Some(message) = state.queue.pop_front() {
                    return Some(message);
                }
                if state.senders == 0 {
                    return None;
                }
                state = self.shared.not_empty.wait(state);
            }
        }

        pub(crate) fn queued(&self) -> usize {
            self.shared.state.lock().queue.len()
        }

        pub(crate) fn try_recv(&self) -> Received<T> {
            let mut state = self.shared.state.lock();
            match state.queue.pop_front() {
                Some(message) => Received::Message(message),
                None if state.senders == 0 => Received::Disconnected,
                None => Received::Empty,
            }
        }

        /// Loom has no clock: a deadline never passes, and this waits for a message as `recv`
        /// does. (Treating it as passed would make an actor with a lazy checkpoint pending spin,
        /// which loom cannot explore.) Timers are not modelled.
        pub(crate) fn recv_deadline(&self, _deadline: Instant) -> Received<T> {
            self.recv()
                .map_or(Received::Disconnected, Received::Message)
        }
    }

    impl<T> Drop for Receiver<T> {
        /// Like flume: later sends fail, but what is queued stays until the channel itself goes.
        fn drop(&mut self) {
            let mut state = self.shared.state.lock();
            state.receiver_alive = false;
        }
    }
}

pub(crate) mod oneshot {
    use crate::sync::{Arc, Condvar, Mutex};

    pub(crate) fn channel<T>() -> (Sender<T>, Receiver<T>) {
        let shared = Arc::new(Shared {
            slot: Mutex::new(Slot::Waiting),
            ready: Condvar::new(),
        });
        (
            Sender {
                shared: Some(shared.clone()),
            },
            Receiver { shared },
        )
    }

    struct Shared<T> {
        slot: Mutex<Slot<T>>,
        ready: Condvar,
    }

    enum Slot<T> {
        Waiting,
        Sent(T),
        SenderDropped,
    }

    pub(crate) struct Sender<T> {
        shared: Option<Arc<Shared<T>>>,
    }

    impl<T> std::fmt::Debug for Sender<T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("loom::oneshot::Sender")
        }
    }

    impl<T> Sender<T> {
        pub(crate) fn send(mut self, value: T) {
            if let Some(shared) = self.shared.take() {
                *shared.slot.lock() = Slot::Sent(value);
                shared.ready.notify_all();
            }
        }
    }

    impl<T> Drop for Sender<T> {
        fn drop(&mut self) {
            if let Some(shared) = self.shared.take() {
                *shared.slot.lock() = Slot::SenderDropped;
                shared.ready.notify_all();
            }
        }
    }

    pub(crate) struct Receiver<T> {
        shared: Arc<Shared<T>>,
    }

    impl<T> std::fmt::Debug for Receiver<T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("loom::oneshot::Receiver")
        }
    }

    impl<T> Receiver<T> {
        pub(crate) async fn recv(self) -> Option<T> {
            let mut slot = self.shared.slot.lock();
            loop {
                match std::mem::replace(&mut *slot, Slot::Waiting) {
                    Slot::Sent(value) => return Some(value),
                    Slot::SenderDropped => return None,
                    Slot::Waiting => slot = self.shared.ready.wait(slot),
                }
            }
        }
    }
}
