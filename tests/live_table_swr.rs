//! Serve-stale-while-revalidate (issue 20): a stale entry is answered at once while one
//! background read fetches the new rows, with a slow master and with a failing one (the stale
//! entry until the grace period ends, then the master's error); a gap in the live stream marks
//! entries stale instead of deleting them; after a restart a persisted cache serves at once and
//! revalidates. Against MemCache and RedbCache.

#[path = "live_table/support.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use support::*;
use vlive::{Error, LiveEvent, LiveTable, ManualLiveStream, RedbCache};

const MAX_AGE: Duration = Duration::from_millis(50);

fn name_of(record: &vlive::SharedRecord) -> String {
    match record.get("name") {
        Some(vlive::Value::Text(name)) => name.clone(),
        other => panic!("no name: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_entry_is_served_at_once_while_a_slow_master_revalidates_it() {
    for (backend, cache, _dir) in backends() {
        let master = TestMaster::new(seed_rows(3));
        let table = LiveTable::builder(master.clone(), "t", cache)
            .max_age(MAX_AGE)
            .serve_stale_while_revalidate(Duration::from_secs(60))
            .build()
            .unwrap();
        assert_eq!(
            name_of(&table.get("r01").await.unwrap().unwrap()),
            "name-01"
        );
        master.set_out_of_band("r01", record("renamed"));
        tokio::time::sleep(MAX_AGE * 2).await;

        let gate = master.hold_next_read();
        let reads = master.get_calls();
        // The master is held: a read that waited for it would not return.
        let stale = tokio::time::timeout(Duration::from_secs(10), table.get("r01"))
            .await
            .unwrap_or_else(|_| panic!("{backend}: a stale read waited for the master"))
            .unwrap()
            .unwrap();
        assert_eq!(name_of(&stale), "name-01", "{backend}: the stale rows");
        // More stale reads share the one background read.
        for _ in 0..5 {
            table.get("r01").await.unwrap();
        }
        reach(&master.reads, reads + 1).await;
        gate.open();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let fresh = table.get("r01").await.unwrap().unwrap();
            if name_of(&fresh) == "renamed" {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{backend}: never revalidated"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert_eq!(
            master.get_calls(),
            reads + 1,
            "{backend}: one background read"
        );
        let stats = table.stats();
        assert!(stats.stale_hits >= 6, "{backend}: {stats:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_master_keeps_the_stale_entry_until_the_grace_ends_then_errs() {
    for (backend, cache, _dir) in backends() {
        let master = TestMaster::new(seed_rows(3));
        let grace = Duration::from_secs(1);
        let table = LiveTable::builder(master.clone(), "t", cache)
            .max_age(MAX_AGE)
            .serve_stale_while_revalidate(grace)
            .build()
            .unwrap();
        table.get("r02").await.unwrap();
        master.fail_reads(Some("master down"));
        tokio::time::sleep(MAX_AGE * 2).await;
        for _ in 0..3 {
            let stale = table.get("r02").await.unwrap().unwrap();
            assert_eq!(name_of(&stale), "name-02", "{backend}");
        }
        tokio::time::sleep(MAX_AGE + grace).await;
        let failed = table.get("r02").await;
        assert!(
            matches!(&failed, Err(Error::Master(_))),
            "{backend}: past the grace the master's error surfaces: {failed:?}"
        );
        master.fail_reads(None);
        assert_eq!(
            name_of(&table.get("r02").await.unwrap().unwrap()),
            "name-02"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_marks_entries_stale_instead_of_deleting_them() {
    for (backend, cache, _dir) in backends() {
        let master = TestMaster::new(seed_rows(3));
        let stream = ManualLiveStream::new();
        let table = LiveTable::builder(master.clone(), "t", cache)
            .live_stream(Arc::new(stream.clone()))
            .serve_stale_while_revalidate(Duration::from_secs(60))
            .build()
            .unwrap();
        // Built = restarted: the first fill is fresh (fetched after the mark).
        table.get("r03").await.unwrap();
        let before = table.stats();
        master.set_out_of_band("r03", record("changed meanwhile"));
        stream.push(LiveEvent::Lagged { missed: 4 });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while table.stats().stream_gaps == before.stream_gaps {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{backend}: gap not seen"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(
            table.stats().invalidations,
            before.invalidations,
            "{backend}: a gap did not delete"
        );
        let stale = table.get("r03").await.unwrap().unwrap();
        assert_eq!(name_of(&stale), "name-03", "{backend}: served stale");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while name_of(&table.get("r03").await.unwrap().unwrap()) != "changed meanwhile" {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{backend}: never revalidated"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        // Other events still invalidate.
        let invalidations = table.stats().invalidations;
        stream.push(LiveEvent::Updated { id: "r03".into() });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while table.stats().invalidations == invalidations {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{backend}: not invalidated"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_a_persisted_cache_serves_at_once_and_revalidates() {
    let dir = tempfile::tempdir().unwrap();
    let master = TestMaster::new(seed_rows(3));
    {
        let cache = Arc::new(RedbCache::open(dir.path()).unwrap());
        let table = LiveTable::new(master.clone(), "t", cache.clone()).unwrap();
        table.get("r01").await.unwrap();
        drop(table);
        Arc::try_unwrap(cache).unwrap().close().await.unwrap();
    }
    master.set_out_of_band("r01", record("changed while down"));
    let cache = Arc::new(RedbCache::open(dir.path()).unwrap());
    let table = LiveTable::builder(master.clone(), "t", cache)
        .serve_stale_while_revalidate(Duration::from_secs(60))
        .build()
        .unwrap();
    let gate = master.hold_next_read();
    let at_once = tokio::time::timeout(Duration::from_secs(10), table.get("r01"))
        .await
        .expect("served at once, without waiting for the master")
        .unwrap()
        .unwrap();
    assert_eq!(name_of(&at_once), "name-01");
    gate.open();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while name_of(&table.get("r01").await.unwrap().unwrap()) != "changed while down" {
        assert!(tokio::time::Instant::now() < deadline, "never revalidated");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // One, or a few more: entries fetched within the clock-skew allowance after the mark
    // (2 s) still count as stale and are revalidated again, one read at a time.
    let revalidations = table.stats().revalidations;
    assert!((1..=20).contains(&revalidations), "{revalidations}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durations_too_large_to_add_mean_never() {
    for (backend, cache, _dir) in backends() {
        let master = TestMaster::new(seed_rows(1));
        let table = LiveTable::builder(master.clone(), "t", cache.clone())
            .max_age(Duration::MAX)
            .serve_stale_while_revalidate(Duration::MAX)
            .build()
            .unwrap();
        table.get("r01").await.unwrap();
        table.get("r01").await.unwrap();
        assert_eq!(table.stats().hits, 1, "{backend}");
        let plain = LiveTable::builder(master, "u", cache)
            .max_age(Duration::MAX)
            .build()
            .unwrap();
        plain.get("r01").await.unwrap();
        plain.get("r01").await.unwrap();
        assert_eq!(plain.stats().hits, 1, "{backend}");
    }
}
