//! Fan-out: the same loop on several tokio tasks or threads at once.

use std::time::{Duration, Instant};

use super::rng::Rng;

/// Runs `task(0)` … `task(n - 1)` as tokio tasks at once; what each returned, in order.
pub async fn fan_out<T, F, Fut>(n: u64, task: F) -> Vec<T>
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = (0..n).map(|i| tokio::spawn(task(i))).collect();
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        out.push(handle.await.expect("a bench task panicked"));
    }
    out
}

/// Operations per second of `op` on `threads` threads for `window`, summed; each thread has
/// its own generator (seeded 1, 2, …) so none waits on a shared one.
pub fn on_threads(threads: u64, window: Duration, op: impl Fn(&mut Rng) + Sync) -> f64 {
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..threads)
            .map(|t| {
                let op = &op;
                scope.spawn(move || {
                    let mut rng = Rng::new(t + 1);
                    let (start, mut done) = (Instant::now(), 0u64);
                    while start.elapsed() < window {
                        op(&mut rng);
                        done += 1;
                    }
                    done as f64 / start.elapsed().as_secs_f64()
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).sum()
    })
}
