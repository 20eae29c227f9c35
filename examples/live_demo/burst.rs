//! Step 4 of the story: a burst of concurrent writes through the table's write queue, then
//! every writer reads its own row back at once.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tokio::task::JoinSet;
use vlive::{Error, Record, RedbCacheStats, Value};

use crate::clients::client_id;
use crate::demo::{Demo, DemoResult};
use crate::show::ms;
use crate::summary::Step;

/// How many clients write at once.
const WRITERS: u32 = 100;

/// Step 4, the burst: writes, read-back, and what the cache's actor made of them.
pub async fn write_burst(demo: &Demo, latency_ms: u64) -> DemoResult<Step> {
    println!(
        "4. Burst: {WRITERS} concurrent clients each patch their row through the table's write \
         queue, then all read their row back at once."
    );
    let calls = demo.master.calls();
    let cache_at_start = demo.cache.stats();
    let writing = patch_all(demo, latency_ms).await?;
    let cache_after_writes = demo.cache.stats();
    let reading = read_back_all(demo).await?;
    let batching = report_batching(cache_at_start, cache_after_writes, demo.cache.stats());
    Ok(Step {
        step: "write burst",
        what: format!("{WRITERS} queued writes, {WRITERS} read back{batching}"),
        time: format!("{} + {}", ms(writing), ms(reading)),
        master_calls: demo.master.calls() - calls,
    })
}

/// Every writer patches its own row through the queue, with a progress bar; returns how long
/// the burst took.
async fn patch_all(demo: &Demo, latency_ms: u64) -> DemoResult<Duration> {
    let table_at_start = demo.table.stats();
    let bar = ProgressBar::new(u64::from(WRITERS));
    bar.set_style(
        ProgressStyle::with_template("   {bar:40.cyan/blue} {pos:>3}/{len} writes  {elapsed}")?
            .progress_chars("█▉▊▋▌▍▎▏ "),
    );
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for i in 1..=WRITERS {
        let table = demo.table.clone();
        let bar = bar.clone();
        tasks.spawn(async move {
            let patch = Record::from([
                ("plan".to_string(), Value::Text("pro".into())),
                ("burst".to_string(), Value::Integer(i.into())),
            ]);
            table.patch(&client_id(i), patch).await?;
            bar.inc(1);
            Ok(())
        });
    }
    join_all(tasks).await?;
    let writing = start.elapsed();
    bar.finish_and_clear();
    println!(
        "   Writes: {WRITERS} in {} — applied one at a time in queue order ({} ms each at the \
         master), each invalidating the view before its caller resumed ({} invalidations).",
        ms(writing),
        latency_ms,
        demo.table.stats().invalidations - table_at_start.invalidations
    );
    Ok(writing)
}

/// Every writer reads its row back, all at once; returns how long that took.
async fn read_back_all(demo: &Demo) -> DemoResult<Duration> {
    // Read-your-writes: every write resolved after its invalidation, so each read sees it.
    let before = demo.table.stats();
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for i in 1..=WRITERS {
        let table = demo.table.clone();
        tasks.spawn(async move {
            let seen = table.get(&client_id(i)).await?;
            let burst = seen.and_then(|record| record.get("burst").cloned());
            if burst != Some(Value::Integer(i.into())) {
                return Err(Error::master(std::io::Error::other(format!(
                    "{} did not read its own write back",
                    client_id(i)
                ))));
            }
            Ok(())
        });
    }
    join_all(tasks).await?;
    let reading = start.elapsed();
    let after = demo.table.stats();
    println!(
        "   Read-back: {WRITERS}/{WRITERS} saw their own write, in {} ({} master reads in \
         parallel, {} fills stored, {} rejected as stale).",
        ms(reading),
        after.master_reads - before.master_reads,
        after.fills - before.fills,
        after.rejected_stale - before.rejected_stale
    );
    Ok(reading)
}

/// Waits for every task; the first failure, or panic, is the answer.
async fn join_all(mut tasks: JoinSet<vlive::Result<()>>) -> DemoResult<()> {
    while let Some(joined) = tasks.join_next().await {
        joined??;
    }
    Ok(())
}

/// With a `RedbCache`, prints how its actor batched each phase (group commit) and returns the
/// summary's note on it; with another cache, there is nothing to say.
fn report_batching(
    start: Option<RedbCacheStats>,
    writes: Option<RedbCacheStats>,
    reads: Option<RedbCacheStats>,
) -> String {
    let (Some(start), Some(writes), Some(reads)) = (start, writes, reads) else {
        return String::new();
    };
    let phase = |from: &RedbCacheStats, to: &RedbCacheStats| {
        let ops = to.batched_ops - from.batched_ops;
        let batches = to.batches - from.batches;
        (ops, batches, ops as f64 / batches.max(1) as f64)
    };
    let (w_ops, w_batches, _) = phase(&start, &writes);
    let (r_ops, r_batches, r_mean) = phase(&writes, &reads);
    println!(
        "   Cache actor: the writes' {w_ops} commands took {w_batches} commits (the queue sends \
         one invalidation at a time); the read-back's {r_ops} commands took {r_batches} batches \
         (mean {r_mean:.1}, largest so far {}): group commit.",
        reads.max_batch_ops
    );
    format!("; read-back batches: mean {r_mean:.1}")
}
