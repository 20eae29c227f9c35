//! The whole story, when no subcommand is given: seven steps, each a function that prints what
//! happened and returns its line of the summary.

use std::time::{Duration, Instant};

use vlive::{Master, Page};

use crate::Cli;
use crate::burst::write_burst;
use crate::cache::DemoCache;
use crate::clients::{client_id, out_of_band_edit, sample_clients};
use crate::demo::{Demo, DemoResult, VIEW};
use crate::show::{field, ms, print_rows, show_value};
use crate::summary::{Step, Summary};

/// Walks the steps in order, then prints the summary.
pub async fn tell(cli: &Cli) -> DemoResult<()> {
    let demo = Demo::open(cli)?;
    let page = Page::first(10);
    introduce(&demo, cli, page);
    let mut summary = Summary::default();
    summary.push(seed(&demo).await?);
    let (cold, cold_time) = cold_list(&demo, page).await?;
    summary.push(cold);
    summary.push(warm_list(&demo, page, cold_time).await?);
    summary.push(write_burst(&demo, cli.latency_ms).await?);
    let id = client_id(7);
    summary.push(live_event(&demo, &id).await?);
    summary.push(fresh_list(&demo, page).await?);
    let demo = demo.reopen_cache().await?;
    summary.push(reopened_list(&demo, page).await?);
    demo.close().await?;

    summary.print();
    println!();
    println!(
        "The state is kept in {}: try `live_demo list`, `get {id}`, `event {id}`, `stats`.",
        cli.dir.display()
    );
    Ok(())
}

/// What the story runs on.
fn introduce(demo: &Demo, cli: &Cli, page: Page) {
    println!("vlive live_demo");
    println!(
        "  master: {} (redb, {} ms per call)",
        demo.master_path(),
        cli.latency_ms
    );
    println!("  cache:  {}", demo.cache.describe());
    println!("  view:   cache key {VIEW:?}, {page}");
    println!();
}

/// Step 1: a fresh master of 100 clients; the view is invalidated, so nothing cached survives.
async fn seed(demo: &Demo) -> DemoResult<Step> {
    let calls = demo.master.calls();
    let start = Instant::now();
    let rows = 100;
    demo.master.reset(sample_clients(rows)).await?;
    demo.table.invalidate().await?;
    println!("1. Seeded {rows} clients into the master; invalidated the view.");
    Ok(Step {
        step: "seed",
        what: format!("{rows} clients written to the master"),
        time: ms(start.elapsed()),
        master_calls: demo.master.calls() - calls,
    })
}

/// Step 2: the first read of page 1 misses, reads the master and fills the cache. Also returns
/// how long it took, for step 3 to compare with.
async fn cold_list(demo: &Demo, page: Page) -> DemoResult<(Step, Duration)> {
    let read = demo.timed_read(demo.table.list(page)).await?;
    println!(
        "2. Cold list of page 1: cache {}, read the master, {} rows in {}.",
        read.outcome,
        read.value.len(),
        ms(read.elapsed)
    );
    let what = format!("page 1: {} → master → filled", read.outcome);
    Ok((Step::read("cold list", what, &read), read.elapsed))
}

/// Step 3: the same read again: the cache answers, without the master.
async fn warm_list(demo: &Demo, page: Page, cold: Duration) -> DemoResult<Step> {
    let read = demo.timed_read(demo.table.list(page)).await?;
    let speedup = cold.as_secs_f64() / read.elapsed.as_secs_f64().max(1e-9);
    let gain = if read.outcome == "hit" {
        format!("{speedup:.0}× faster than the master")
    } else {
        "no cache to answer it".to_string()
    };
    println!(
        "3. Warm list of page 1: cache {} in {} — {gain}.",
        read.outcome,
        ms(read.elapsed)
    );
    print_rows(&read.value);
    let what = format!("page 1: {} ({gain})", read.outcome);
    Ok(Step::read("warm list", what, &read))
}

// Step 4, the write burst: see `burst.rs`.

/// Step 5: a client changes in the master behind the table's back: the cache keeps serving the
/// old row until a live event says so; the next read is fresh.
async fn live_event(demo: &Demo, id: &str) -> DemoResult<Step> {
    let calls = demo.master.calls();
    let new_visits = edit_out_of_band(demo, id).await?;
    let stale = demo.timed_get(id).await?;
    let staleness = if field(&stale.value, "visits") == new_visits {
        "already fresh: nothing was cached"
    } else {
        "stale, and the cache cannot know"
    };
    println!(
        "5. Out of band: {id}.visits set to {new_visits} in the master directly. Read through \
         the table: cache {}, visits = {} ({staleness}).",
        stale.outcome,
        field(&stale.value, "visits")
    );
    let fresh = demo.announce_update(id).await?;
    println!(
        "   Live event `Updated {{ id: {id:?} }}` → view invalidated. Fresh read: cache {}, \
         visits = {} in {}.",
        fresh.outcome,
        field(&fresh.value, "visits"),
        ms(fresh.elapsed)
    );
    if field(&fresh.value, "visits") != new_visits {
        return Err("the fresh read did not see the out-of-band change".into());
    }
    Ok(Step {
        step: "live event",
        what: format!(
            "before the event {} (visits {}), after {} (visits {})",
            stale.outcome,
            field(&stale.value, "visits"),
            fresh.outcome,
            field(&fresh.value, "visits")
        ),
        time: ms(fresh.elapsed),
        master_calls: demo.master.calls() - calls,
    })
}

/// Caches client `id`, then edits it in the master directly; returns its new visit count.
async fn edit_out_of_band(demo: &Demo, id: &str) -> DemoResult<String> {
    demo.table.get(id).await?; // make sure the row is cached
    let edits = out_of_band_edit(
        &demo
            .table
            .get(id)
            .await?
            .map(vlive::SharedRecord::into_record)
            .unwrap_or_default(),
    );
    let new_visits = show_value(&edits["visits"]);
    demo.master.patch(id, edits).await?;
    Ok(new_visits)
}

/// Step 6: page 1 after the writes, which invalidated it: the master answers again.
async fn fresh_list(demo: &Demo, page: Page) -> DemoResult<Step> {
    let read = demo.timed_read(demo.table.list(page)).await?;
    println!(
        "6. Fresh list of page 1 after the writes: cache {}, {}.",
        read.outcome,
        ms(read.elapsed)
    );
    let what = format!("page 1: {} → master → filled", read.outcome);
    Ok(Step::read("fresh list", what, &read))
}

/// Step 7: page 1 once the cache was closed and reopened: a `RedbCache` answers it from disk.
async fn reopened_list(demo: &Demo, page: Page) -> DemoResult<Step> {
    let read = demo.timed_read(demo.table.list(page)).await?;
    let note = match (&demo.cache, read.outcome) {
        (DemoCache::Redb(_), "hit") => "warm from disk",
        (DemoCache::Redb(_), _) => "not in the reopened cache",
        (DemoCache::Mem(_), _) => "a memory cache does not survive a restart",
        (DemoCache::None, _) => "no cache",
    };
    println!(
        "7. Closed the cache and reopened it: page 1 is a cache {} ({note}), {}.",
        read.outcome,
        ms(read.elapsed)
    );
    let what = format!("page 1: {} ({note})", read.outcome);
    Ok(Step::read("reopen", what, &read))
}
