//! A counting semaphore whose permits are held by value: the channel's slots and the lazy
//! write buffer's bytes.
//!
//! Production builds wrap tokio's (fair: a large claim is not starved by small ones). Under
//! loom it is a counter under the shimmed `Mutex`/`Condvar`, whose `acquire` blocks the loom
//! thread, as the loom channel's `send` does.

#[cfg(not(loom))]
mod imp {
    use std::sync::Arc;

    /// Permits to share out; cloning shares the same count.
    #[derive(Clone, Debug)]
    pub(crate) struct Semaphore {
        free: Arc<tokio::sync::Semaphore>,
        permits: u32,
    }

    /// Permits taken from a [`Semaphore`], given back when dropped.
    #[derive(Debug)]
    pub(crate) struct Permit(#[allow(dead_code)] Option<tokio::sync::OwnedSemaphorePermit>);

    impl Semaphore {
        pub(crate) fn new(permits: u32) -> Self {
            Semaphore {
                free: Arc::new(tokio::sync::Semaphore::new(permits as usize)),
                permits,
            }
        }

        /// Waits (asynchronously) until `n` permits are free and takes them.
        pub(crate) async fn acquire(&self, n: u32) -> Permit {
            // Never closed, so this cannot fail; a permit of nothing would only loosen a bound.
            Permit(self.free.clone().acquire_many_owned(n).await.ok())
        }

        /// Permits free right now.
        pub(crate) fn available(&self) -> u64 {
            self.free.available_permits() as u64
        }

        /// All its permits, free or taken.
        pub(crate) fn permits(&self) -> u32 {
            self.permits
        }
    }
}

#[cfg(loom)]
mod imp {
    use crate::sync::{Arc, Condvar, Mutex};

    #[derive(Debug)]
    struct Count {
        free: Mutex<u32>,
        freed: Condvar,
    }

    /// Permits to share out; cloning shares the same count.
    #[derive(Clone, Debug)]
    pub(crate) struct Semaphore {
        count: Arc<Count>,
        permits: u32,
    }

    /// Permits taken from a [`Semaphore`], given back when dropped.
    #[derive(Debug)]
    pub(crate) struct Permit {
        count: Arc<Count>,
        n: u32,
    }

    impl Semaphore {
        pub(crate) fn new(permits: u32) -> Self {
            let count = Count {
                free: Mutex::new(permits),
                freed: Condvar::new(),
            };
            Semaphore {
                count: Arc::new(count),
                permits,
            }
        }

        pub(crate) async fn acquire(&self, n: u32) -> Permit {
            let mut free = self.count.free.lock();
            while *free < n {
                free = self.count.freed.wait(free);
            }
            *free -= n;
            Permit {
                count: self.count.clone(),
                n,
            }
        }

        pub(crate) fn available(&self) -> u64 {
            u64::from(*self.count.free.lock())
        }

        pub(crate) fn permits(&self) -> u32 {
            self.permits
        }
    }

    impl Drop for Permit {
        fn drop(&mut self) {
            *self.count.free.lock() += self.n;
            self.count.freed.notify_all();
        }
    }
}

pub(crate) use imp::{Permit, Semaphore};

impl Semaphore {
    /// Permits taken right now.
    pub(crate) fn taken(&self) -> u64 {
        u64::from(self.permits()).saturating_sub(self.available())
    }
}
