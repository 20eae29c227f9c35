//! One cell (a subject on a workload), run in a child process of its own so that its memory
//! is its own: opens the subject in a fresh folder, runs the workload, and returns the figures.

use std::sync::Arc;
use std::time::Instant;

use crate::child::Figures;
use crate::common::child::status_kib;
use crate::params::{
    COLD_FACTOR, HOT_DIVISOR, LAZY_MAX_DELAY, Params, SUSTAINED_KEYS, TASKS, WORKERS, memory_tier,
};
use crate::payload::Payload;
use crate::raw_redb::RawRedb;
use crate::rng::Rng;
use crate::subjects::{Name, Subject};
use crate::workloads::{Op, Window, Workload, put_all, put_order, windowed};

/// Runs `name` on `workload`; `batch` is the (mean) batch size a raw redb reference commits at.
pub fn run(name: Name, workload: Workload, batch: f64, params: &Params) -> Figures {
    let folder = tempfile::tempdir().expect("temporary folder");
    let payload = Arc::new(Payload::new(workload.rows()));
    if name.paired_with().is_some() && workload.is_put() {
        let redb = RawRedb::create(folder.path());
        return raw_puts(&redb, name, workload, batch, &payload, params);
    }
    crate::common::mode::runtime(WORKERS).block_on(async {
        let path = folder.path();
        match workload {
            Workload::HotGet(_) | Workload::ColdGet(_) | Workload::Mixed => {
                let tier = match workload {
                    Workload::ColdGet(_) => memory_tier() * COLD_FACTOR,
                    _ => memory_tier() / HOT_DIVISOR,
                };
                let keys = payload.keys_for(tier);
                let subject = Subject::filled(name, path, &payload, keys).await;
                let op = if workload == Workload::Mixed {
                    Op::Mixed
                } else {
                    Op::Get
                };
                timed(&subject, &payload, op, TASKS, keys, params).await
            }
            Workload::PutOne => {
                let subject = Subject::open(name, path, &payload).await;
                timed(&subject, &payload, Op::Put, 1, SUSTAINED_KEYS, params).await
            }
            Workload::Burst(tasks) => {
                let count = burst_size(name, tasks, params);
                let subject = Subject::open(name, path, &payload).await;
                fixed(&subject, &payload, tasks as u64, count, count).await
            }
            Workload::Sustained => {
                let count = params.sustained_bytes / payload.bytes.len() as u64;
                let subject = Subject::open(name, path, &payload).await;
                fixed(&subject, &payload, TASKS as u64, count, SUSTAINED_KEYS).await
            }
        }
    })
}

/// The burst's size: 10,000 puts, but the durable subjects from one task, each put waiting
/// for an fsync of its own, put fewer (the rate is what is compared).
pub fn burst_size(name: Name, tasks: usize, params: &Params) -> u64 {
    let durable = matches!(name, Name::VliveDurable | Name::RedbDurable);
    if durable && tasks == 1 {
        params.durable_one_task_burst
    } else {
        params.burst
    }
}

/// A timed window of `op` from `tasks` tasks over keys `0..keys`.
async fn timed(
    subject: &Subject,
    payload: &Arc<Payload>,
    op: Op,
    tasks: usize,
    keys: u64,
    params: &Params,
) -> Figures {
    let window = Window::starting_now(params.warmup, params.window);
    let (ops, hits) = windowed(subject, payload, op, tasks, keys, window).await;
    let mut figures = Figures::measured(ops as f64 / params.window.as_secs_f64());
    figures.hit = Some(hits as f64 / ops.max(1) as f64);
    figures.batch = subject.mean_batch();
    figures.rss_kib = status_kib("VmRSS");
    subject.close().await;
    figures
}

/// `count` puts from `tasks` tasks over `keys` keys: acknowledged, then settled on disk.
async fn fixed(
    subject: &Subject,
    payload: &Arc<Payload>,
    tasks: u64,
    count: u64,
    keys: u64,
) -> Figures {
    let order = Arc::new(put_order(keys));
    let started = Instant::now();
    put_all(subject, payload, tasks, count, &order).await;
    let mut figures = Figures::measured(count as f64 / started.elapsed().as_secs_f64());
    subject.settle().await;
    if let Subject::Vlive(_) = subject {
        figures.flushed = Some(count as f64 / started.elapsed().as_secs_f64());
    }
    figures.batch = subject.mean_batch();
    if keys == count {
        figures.disk = subject.on_disk(count).await.map(|n| (n, count));
    }
    subject.close().await;
    figures
}

/// Raw redb's puts, on this thread: the workload's puts in transactions of `batch` on average.
fn raw_puts(
    redb: &RawRedb,
    name: Name,
    workload: Workload,
    batch: f64,
    payload: &Payload,
    params: &Params,
) -> Figures {
    let durability = match name {
        Name::RedbDurable => redb::Durability::Immediate,
        _ => redb::Durability::None,
    };
    let batch = if batch.is_finite() {
        batch.max(1.0)
    } else {
        1.0
    };
    let (count, keys) = match workload {
        Workload::Burst(tasks) => {
            let count = burst_size(name, tasks, params);
            (count, count)
        }
        Workload::Sustained => (
            params.sustained_bytes / payload.bytes.len() as u64,
            SUSTAINED_KEYS,
        ),
        _ => return raw_window(redb, durability, batch.round() as u64, payload, params),
    };
    let shuffled = put_order(keys);
    let order: Vec<u64> = (0..count).map(|i| shuffled[(i % keys) as usize]).collect();
    let transactions = in_transactions(&order, batch);
    let started = Instant::now();
    for chunk in &transactions {
        redb.commit(chunk, &payload.bytes, durability);
    }
    let mut figures = Figures::measured(count as f64 / started.elapsed().as_secs_f64());
    figures.batch = Some(batch);
    if matches!(durability, redb::Durability::None) {
        // redb holds non-durable commits in memory until a durable one: this makes them
        // durable, as vlive-lazy's `flush` does for its `flushed` figure.
        redb.commit(&[], &payload.bytes, redb::Durability::Immediate);
        figures.flushed = Some(count as f64 / started.elapsed().as_secs_f64());
    }
    if name == Name::RedbNone && workload == Workload::Sustained {
        figures.checkpointed = Some(checkpointed_rate(&transactions, payload));
    }
    figures
}

/// `order` cut into transactions of `mean` puts on average: the k-th ends at `round(k * mean)`,
/// so a fractional mean (vlive's 31.75 puts per batch) is followed rather than rounded for every
/// commit, which alone would move a ratio by up to a few percent.
fn in_transactions(order: &[u64], mean: f64) -> Vec<&[u64]> {
    let mut transactions = Vec::new();
    let mut start = 0;
    for k in 1.. {
        if start >= order.len() {
            break;
        }
        let end = ((k as f64 * mean).round() as usize).clamp(start + 1, order.len());
        transactions.push(&order[start..end]);
        start = end;
    }
    transactions
}

/// Puts per second of `transactions`, committed as vlive-lazy commits its batches: without
/// fsync, except that a transaction is made durable once the oldest commit not yet durable is
/// `max_delay` old, and a last durable commit at the end. In a fresh file of its own.
fn checkpointed_rate(transactions: &[&[u64]], payload: &Payload) -> f64 {
    let folder = tempfile::tempdir().expect("temporary folder");
    let redb = RawRedb::create(folder.path());
    let started = Instant::now();
    let mut oldest_not_durable: Option<Instant> = None;
    let mut puts = 0;
    for chunk in transactions {
        if oldest_not_durable.is_some_and(|t| t.elapsed() >= LAZY_MAX_DELAY) {
            redb.commit(chunk, &payload.bytes, redb::Durability::Immediate);
            oldest_not_durable = None;
        } else {
            redb.commit(chunk, &payload.bytes, redb::Durability::None);
            oldest_not_durable.get_or_insert_with(Instant::now);
        }
        puts += chunk.len();
    }
    redb.commit(&[], &payload.bytes, redb::Durability::Immediate);
    puts as f64 / started.elapsed().as_secs_f64()
}

/// Raw redb putting random keys in transactions of `batch` through a timed window.
fn raw_window(
    redb: &RawRedb,
    durability: redb::Durability,
    batch: u64,
    payload: &Payload,
    params: &Params,
) -> Figures {
    let window = Window::starting_now(params.warmup, params.window);
    let mut rng = Rng::new(1);
    let mut puts = 0;
    while Instant::now() < window.until {
        let keys: Vec<u64> = (0..batch).map(|_| rng.below(SUSTAINED_KEYS)).collect();
        redb.commit(&keys, &payload.bytes, durability);
        if Instant::now() >= window.counting_from {
            puts += batch;
        }
    }
    let mut figures = Figures::measured(puts as f64 / params.window.as_secs_f64());
    figures.batch = Some(batch as f64);
    figures
}
