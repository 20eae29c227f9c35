//! The two-process story, one step per function: each prints what happened and returns its
//! line of the summary. A step whose outcome would mean the near tiers are not coherent fails
//! the run, so CI's smoke run checks what the demo claims.

use std::time::{Duration, Instant};

use vlive::{Page, Record};

use super::peer_link::{Peer, PeerRead};
use super::side::{Served, Side};
use crate::clients::{client_id, one_more_visit, sample_clients};
use crate::demo::{DemoResult, VIEW};
use crate::show::{field, ms, show_value};
use crate::summary::{Step, Summary};

/// The page both processes read.
const PAGE: Page = Page {
    number: 1,
    per_page: 10,
};

/// Walks the steps in order and returns the summary.
pub async fn tell(a: &Side, b: &mut Peer) -> DemoResult<Summary> {
    let id = client_id(3);
    let mut summary = Summary::default();
    summary.push(seed(a).await?);
    let (step, current) = a_reads(a, &id).await?;
    summary.push(step);
    for step in b_warms_up(b, &id).await? {
        summary.push(step);
    }
    let (step, new_visits) = a_writes(a, b, &id, &current).await?;
    summary.push(step);
    summary.push(b_invalidated(a, b).await?);
    summary.push(b_reads_fresh(b, &id, &new_visits).await?);
    summary.push(b_reads_again(b, &id).await?);
    Ok(summary)
}

/// Step 1: a fresh master; the view is invalidated in Redis, so nothing cached survives.
async fn seed(a: &Side) -> DemoResult<Step> {
    let calls = a.master.calls();
    let started = Instant::now();
    a.master.reset(sample_clients(100)).await?;
    a.table.invalidate().await?;
    println!("1. A seeded 100 clients into the master and invalidated the view {VIEW:?}.");
    Ok(line(
        "A: seed",
        "100 clients; view invalidated".into(),
        started.elapsed(),
        a.master.calls() - calls,
    ))
}

/// Step 2: A's first read misses everywhere and fills Redis and A's near tier. Returns the
/// watched client as A saw it, for the write to build on.
async fn a_reads(a: &Side, id: &str) -> DemoResult<(Step, Record)> {
    let read = a.read(PAGE).await?;
    let record = read.rows.get(id).cloned();
    println!(
        "2. A reads page 1: {}, {} rows in {} ({id} visits = {}).",
        read.served.describe(),
        read.rows.len(),
        ms(read.elapsed),
        field(&record, "visits")
    );
    let what = format!(
        "page 1: {} (fills Redis and A's near tier)",
        read.served.describe()
    );
    let step = line("A: read", what, read.elapsed, read.master_calls);
    Ok((step, record.ok_or("page 1 lacks the watched client")?))
}

/// Step 3: B reads page 1 twice: Redis answers the first (A's fill), B's near tier the second.
async fn b_warms_up(b: &mut Peer, id: &str) -> DemoResult<[Step; 2]> {
    let first = b.read(id).await?;
    let shared = if first.served == Served::Redis {
        ", no master call: A's fill, shared through Redis"
    } else {
        ""
    };
    println!(
        "3. B reads page 1: {} in {}{shared}.",
        first.served.describe(),
        ms(first.elapsed)
    );
    let second = b.read(id).await?;
    println!(
        "   B reads it again: {} in {}.",
        second.served.describe(),
        ms(second.elapsed)
    );
    if second.served != Served::Near {
        return Err(format!(
            "B's second read was a {}, not a near-tier hit: there is nothing to invalidate",
            second.served.describe()
        )
        .into());
    }
    Ok([
        peer_line("B: read", &first),
        peer_line("B: read again", &second),
    ])
}

/// Step 4: A writes the watched client through its LiveTable: the master first, then the
/// view is invalidated in Redis, whose script appends the entry B's reader follows. Returns
/// the new visit count.
async fn a_writes(
    a: &Side,
    b: &mut Peer,
    id: &str,
    current: &Record,
) -> DemoResult<(Step, String)> {
    b.watch().await?;
    let patch = one_more_visit(current, "written by process A");
    let visits = show_value(&patch["visits"]);
    let calls = a.master.calls();
    let started = Instant::now();
    a.table.patch(id, patch).await?;
    let elapsed = started.elapsed();
    println!(
        "4. A writes {id}.visits = {visits} through its LiveTable in {}: the master, then the",
        ms(elapsed)
    );
    println!("   view is invalidated in Redis, whose script also appends to the invalidation log.");
    let what = format!("{id}.visits = {visits} → master → invalidate through Redis");
    Ok((
        line("A: write", what, elapsed, a.master.calls() - calls),
        visits,
    ))
}

/// Step 5: B's log reader applies A's entry and drops the view from B's near tier; timed from
/// A's master commit (both clocks are this machine's).
async fn b_invalidated(a: &Side, b: &mut Peer) -> DemoResult<Step> {
    let arrived = b.arrival().await?.ok_or(
        "B's near tier never received A's invalidation (waited 5 s): the near caches are not \
         coherent",
    )?;
    let committed = a.master.last_write().ok_or("A made no master write")?;
    let delay = arrived.duration_since(committed).unwrap_or_default();
    println!(
        "5. B's log reader dropped the view from B's near tier {} after A's master commit.",
        ms(delay)
    );
    let what = "log entry applied to B's near tier (time since A's master commit)".into();
    Ok(line("B: invalidated", what, delay, 0))
}

/// Step 6: B's next read misses its near tier and sees A's write.
async fn b_reads_fresh(b: &mut Peer, id: &str, visits: &str) -> DemoResult<Step> {
    let read = b.read(id).await?;
    println!(
        "6. B reads page 1: {} in {}, {id} visits = {} (A wrote {visits}).",
        read.served.describe(),
        ms(read.elapsed),
        read.visits
    );
    if read.served == Served::Near || read.visits != visits {
        return Err(format!(
            "B read {id} visits = {} ({}) after A wrote {visits}: B's near tier was not invalidated",
            read.visits,
            read.served.describe()
        )
        .into());
    }
    Ok(peer_line("B: read", &read))
}

/// Step 7: and B's near tier is warm again.
async fn b_reads_again(b: &mut Peer, id: &str) -> DemoResult<Step> {
    let read = b.read(id).await?;
    println!(
        "7. B reads page 1 again: {} in {}.",
        read.served.describe(),
        ms(read.elapsed)
    );
    Ok(peer_line("B: read again", &read))
}

fn line(step: &'static str, what: String, time: Duration, master_calls: u64) -> Step {
    Step {
        step,
        what,
        time: ms(time),
        master_calls,
    }
}

/// The summary line of a read by B.
fn peer_line(step: &'static str, read: &PeerRead) -> Step {
    let what = format!(
        "page 1: {} (visits {})",
        read.served.describe(),
        read.visits
    );
    line(step, what, read.elapsed, read.master_calls)
}
