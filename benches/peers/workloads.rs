//! The workloads, and the task loops that drive a subject through them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::tasks::fan_out;
use crate::payload::{Payload, key};
use crate::rng::Rng;
use crate::subjects::Subject;

/// A workload; gets come with 20-row and 1-row values, puts put 20-row values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Workload {
    /// Random gets over a working set half the memory tier, from 64 tasks.
    HotGet(usize),
    /// Random gets over a working set 4x the memory tier, after a fill, from 64 tasks.
    ColdGet(usize),
    /// A fixed burst of puts to distinct keys (in [`put_order`]) from this many tasks: time until
    /// every put is acknowledged.
    Burst(usize),
    /// Puts from one task to random keys, for the window: the sustained rate of one caller.
    PutOne,
    /// A fixed amount of puts beyond the write buffer from 64 tasks, over 16,384 keys (in
    /// [`put_order`], round after round).
    Sustained,
    /// 90% gets, 10% puts over the hot working set, from 64 tasks.
    Mixed,
}

impl Workload {
    pub const ALL: [Workload; 9] = [
        Workload::HotGet(20),
        Workload::HotGet(1),
        Workload::ColdGet(20),
        Workload::ColdGet(1),
        Workload::Burst(64),
        Workload::Burst(1),
        Workload::PutOne,
        Workload::Sustained,
        Workload::Mixed,
    ];

    pub fn label(self) -> String {
        match self {
            Workload::HotGet(rows) => format!("hot get, {rows} row(s)"),
            Workload::ColdGet(rows) => format!("cold get, {rows} row(s)"),
            Workload::Burst(tasks) => format!("burst, {tasks} task(s)"),
            Workload::PutOne => "put, 1 task".into(),
            Workload::Sustained => "sustained put, 64 tasks".into(),
            Workload::Mixed => "mixed 90/10".into(),
        }
    }

    /// The form the child process is told its workload in.
    pub fn code(self) -> String {
        match self {
            Workload::HotGet(n) => format!("hot{n}"),
            Workload::ColdGet(n) => format!("cold{n}"),
            Workload::Burst(n) => format!("burst{n}"),
            Workload::PutOne => "put1".into(),
            Workload::Sustained => "sustained".into(),
            Workload::Mixed => "mixed".into(),
        }
    }

    pub fn parse(code: &str) -> Self {
        *Workload::ALL
            .iter()
            .find(|w| w.code() == code)
            .expect("a workload's code")
    }

    pub fn is_put(self) -> bool {
        matches!(
            self,
            Workload::Burst(_) | Workload::PutOne | Workload::Sustained
        )
    }

    pub fn rows(self) -> usize {
        match self {
            Workload::HotGet(rows) | Workload::ColdGet(rows) => rows,
            _ => 20,
        }
    }
}

/// What one task does per operation in a timed window.
#[derive(Clone, Copy)]
pub enum Op {
    Get,
    Put,
    Mixed,
}

/// A timed window: the tasks start together, warm up, then count for `window`.
#[derive(Clone, Copy)]
pub struct Window {
    pub counting_from: Instant,
    pub until: Instant,
}

impl Window {
    pub fn starting_now(warmup: Duration, window: Duration) -> Self {
        let counting_from = Instant::now() + warmup;
        Window {
            counting_from,
            until: counting_from + window,
        }
    }
}

/// `tasks` tasks doing `op` on random keys of `0..keys` through the window; returns the
/// operations and the gets that hit, counted within it.
pub async fn windowed(
    subject: &Subject,
    payload: &Arc<Payload>,
    op: Op,
    tasks: usize,
    keys: u64,
    window: Window,
) -> (u64, u64) {
    let counts = fan_out(tasks as u64, |seed| {
        let (subject, payload) = (subject.clone(), payload.clone());
        async move {
            let mut rng = Rng::new(seed + 1);
            let (mut ops, mut hits) = (0, 0);
            loop {
                let now = Instant::now();
                if now >= window.until {
                    return (ops, hits);
                }
                let key = key(rng.below(keys));
                let put = match op {
                    Op::Get => false,
                    Op::Put => true,
                    Op::Mixed => rng.below(10) == 0,
                };
                let hit = if put {
                    subject.put(key, &payload).await;
                    false
                } else {
                    subject.get(&key).await
                };
                if now >= window.counting_from {
                    ops += 1;
                    hits += u64::from(hit);
                }
                // A task with other work would let it run; a get answered from memory
                // never returns `Pending` by itself.
                tokio::task::yield_now().await;
            }
        }
    });
    let counts = counts.await;
    (
        counts.iter().map(|c| c.0).sum(),
        counts.iter().map(|c| c.1).sum(),
    )
}

/// Puts `0..count` from `tasks` tasks (task t the puts t, t + tasks, …), put `i` to key
/// `order[i % order.len()]` (`order`: [`put_order`], built before the clock starts); returns
/// when every put is acknowledged.
pub async fn put_all(
    subject: &Subject,
    payload: &Arc<Payload>,
    tasks: u64,
    count: u64,
    order: &Arc<Vec<u64>>,
) {
    let keys = order.len() as u64;
    fan_out(tasks, |task| {
        let (subject, payload, order) = (subject.clone(), payload.clone(), order.clone());
        async move {
            for i in (task..count).step_by(tasks as usize) {
                subject.put(key(order[(i % keys) as usize]), &payload).await;
            }
        }
    })
    .await;
}

/// The keys `0..keys` in the order the fixed put workloads put them: one shuffle, the same in
/// every run, which the raw redb reference commits in chunks too. So a batch holds keys spread
/// alike whichever tasks it came from. In ascending order a reference chunk was neighbouring
/// keys, one path down redb's tree, while vlive's batches from 64 tasks drifting apart spread
/// over many: about 40 against 64 pages written per durable commit of 32 puts
/// (docs/peers.md).
pub fn put_order(keys: u64) -> Vec<u64> {
    let mut order: Vec<u64> = (0..keys).collect();
    let mut rng = Rng::new(keys);
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i as u64 + 1) as usize);
    }
    order
}
