//! LiveTable behaviour: reads, single flight, the stale-fill race, the write queue, max_age,
//! master timeouts, failed invalidations and live events — against MemCache and RedbCache.
//!
//! Races are staged deterministically: a master read is held at a gate after taking its snapshot
//! of the rows, while the test performs the write or event it wants to race against. The
//! runtime is current-thread, so a spawned task runs only when the test task awaits.

#[path = "live_table/support.rs"]
mod support;

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use support::*;
use tokio_stream::StreamExt;
use vlive::{
    Cache, CachedRows, Error, LiveEvent, LiveEvents, LiveStream, LiveTable, LiveTableBuilder,
    ManualLiveStream, Master, MemCache, NoCache, Page, RedbCache, Rows,
};

const PAGE: Page = Page {
    number: 1,
    per_page: 20,
};

/// The table `clients` over `master`, configured by the caller.
fn builder(master: &Arc<TestMaster>, cache: Arc<dyn Cache>) -> LiveTableBuilder {
    LiveTable::builder(master.clone(), "clients", cache)
}

/// Caches `rows` under `key` as if the master had answered at `fetched_at`.
async fn put_fetched_at(cache: &dyn Cache, key: &str, rows: Rows, fetched_at: SystemTime) {
    let cached = CachedRows::with_fetched_at(rows, fetched_at);
    cache.put(key, cached).await.unwrap();
}

/// The table `clients` over `master`, with the default configuration.
fn table(master: &Arc<TestMaster>, cache: Arc<dyn Cache>) -> LiveTable {
    builder(master, cache).build().unwrap()
}

// ----- reads -------------------------------------------------------------------------------------

#[tokio::test]
async fn a_miss_reads_the_master_once_and_a_hit_does_not_read_it_at_all() {
    for (name, cache, _dir) in backends() {
        let master = TestMaster::new(seed_rows(3));
        let table = table(&master, cache.clone());

        let cold = table.list(PAGE).await.unwrap();
        assert_eq!(*cold, master.rows(), "{name}");
        assert_eq!(master.list_calls(), 1, "{name}: a miss reads the master");
        let cached = cache.get("clients/page_1_20").await.unwrap();
        assert_eq!(
            cached.map(|c| Arc::unwrap_or_clone(c.rows)),
            Some(master.rows()),
            "{name}: filled"
        );

        let warm = table.list(PAGE).await.unwrap();
        assert_eq!(warm, cold, "{name}");
        assert_eq!(
            master.list_calls(),
            1,
            "{name}: a hit does not read the master"
        );

        let stats = table.stats();
        assert_eq!(
            (stats.reads(), stats.hits, stats.misses),
            (2, 1, 1),
            "{name}"
        );
        assert_eq!((stats.master_reads, stats.fills), (1, 1), "{name}");
    }
}

#[tokio::test]
async fn rows_are_cached_per_id_including_absence_and_ids_may_contain_slashes() {
    for (name, cache, _dir) in backends() {
        let mut rows = seed_rows(1);
        rows.insert("eu/42".into(), record("Grace"));
        let master = TestMaster::new(rows);
        let table = table(&master, cache.clone());

        assert_eq!(
            table.get("eu/42").await.unwrap().as_deref(),
            Some(&record("Grace"))
        );
        assert_eq!(
            table.get("eu/42").await.unwrap().as_deref(),
            Some(&record("Grace"))
        );
        assert_eq!(table.get("missing").await.unwrap(), None);
        assert_eq!(table.get("missing").await.unwrap(), None);
        assert_eq!(master.get_calls(), 2, "{name}: one master read per id");
        assert!(cache.get("clients/id/eu/42").await.unwrap().is_some());
        assert_eq!(table.id_key("eu/42"), "clients/id/eu/42");
        assert_eq!(table.page_key(Page::new(3, 7)), "clients/page_3_7");

        // Inserting the missing row invalidates the cached absence.
        table.insert("missing", record("Found")).await.unwrap();
        assert_eq!(
            table.get("missing").await.unwrap().as_deref(),
            Some(&record("Found"))
        );
    }
}

#[tokio::test]
async fn page_zero_is_rejected_rather_than_cached_as_a_second_copy_of_page_one() {
    let master = TestMaster::new(seed_rows(2));
    let cache = Arc::new(MemCache::new());
    let table = table(&master, cache.clone());

    let error = table.list(Page::new(0, 20)).await.unwrap_err();
    assert!(
        matches!(&error, Error::InvalidArgument { reason } if reason.contains("page 0")),
        "{error:?}"
    );
    assert_eq!(master.list_calls(), 0, "the master was not asked");
    assert!(cache.is_empty(), "nothing cached under clients/page_0_20");
    assert_eq!(table.stats().reads(), 0);
    // Page 1 is unaffected.
    assert_eq!(*table.list(Page::new(1, 20)).await.unwrap(), master.rows());
}

#[tokio::test]
async fn concurrent_misses_on_one_key_make_one_master_call_and_every_waiter_gets_the_rows() {
    for (name, cache, _dir) in backends() {
        let master = TestMaster::new(seed_rows(5));
        let cache = ObservedCache::new(cache);
        let table = table(&master, cache.clone());
        let gate = master.hold_next_read();

        let readers: Vec<_> = (0..10)
            .map(|_| {
                let table = table.clone();
                tokio::spawn(async move { table.list(PAGE).await })
            })
            .collect();
        // Every reader has missed (and so joined the flight: there is no await point between a
        // miss and joining), and the one master read is in progress.
        reach(&cache.gets, 10).await;
        reach(&master.reads, 1).await;
        assert_eq!(cache.misses.load(Ordering::SeqCst), 10, "{name}");
        gate.open();

        for reader in readers {
            assert_eq!(*reader.await.unwrap().unwrap(), master.rows(), "{name}");
        }
        assert_eq!(
            master.list_calls(),
            1,
            "{name}: one master call for ten misses"
        );
        assert_eq!(cache.fills(), 1, "{name}: one fill");
        let stats = table.stats();
        assert_eq!((stats.misses, stats.master_reads), (10, 1), "{name}");
    }
}

#[tokio::test]
async fn a_master_error_reaches_every_waiter_with_its_source_and_is_not_cached() {
    for (name, cache, _dir) in backends() {
        let master = TestMaster::new(seed_rows(2));
        let cache = ObservedCache::new(cache);
        let table = table(&master, cache.clone());
        master.fail_reads(Some("master is down"));
        let gate = master.hold_next_read();

        let readers: Vec<_> = (0..4)
            .map(|_| {
                let table = table.clone();
                tokio::spawn(async move { table.list(PAGE).await })
            })
            .collect();
        reach(&cache.gets, 4).await;
        gate.open();
        for reader in readers {
            let error = reader.await.unwrap().unwrap_err();
            assert_eq!(
                master_source(&error),
                Some(&TestError("master is down".into())),
                "{name}: {error:?}"
            );
            let source = std::error::Error::source(&error).expect("source kept");
            assert_eq!(source.to_string(), "master is down");
        }
        assert_eq!(master.list_calls(), 1, "{name}");
        assert_eq!(cache.fills(), 0, "{name}: nothing filled");
        assert_eq!(table.stats().failed_reads, 4, "{name}");

        // The error was not remembered: the next read asks the master again.
        master.fail_reads(None);
        assert_eq!(*table.list(PAGE).await.unwrap(), master.rows(), "{name}");
        assert_eq!(master.list_calls(), 2, "{name}");
    }
}

#[tokio::test]
async fn a_cancelled_leader_does_not_strand_the_followers() {
    for (name, cache, _dir) in backends() {
        let master = TestMaster::new(seed_rows(3));
        let cache = ObservedCache::new(cache);
        let table = table(&master, cache.clone());
        let gate = master.hold_next_read();

        let leader = tokio::spawn({
            let table = table.clone();
            async move { table.list(PAGE).await }
        });
        reach(&master.reads, 1).await;
        let follower = tokio::spawn({
            let table = table.clone();
            async move { table.list(PAGE).await }
        });
        reach(&cache.gets, 2).await;

        leader.abort();
        assert!(leader.await.unwrap_err().is_cancelled(), "{name}");
        gate.open();

        assert_eq!(*follower.await.unwrap().unwrap(), master.rows(), "{name}");
        assert_eq!(
            master.list_calls(),
            1,
            "{name}: the follower joined, not re-read"
        );
        // The leader's read still filled the cache, and counts as the one master read.
        assert!(
            cache.get("clients/page_1_20").await.unwrap().is_some(),
            "{name}"
        );
        assert_eq!(table.stats().master_reads, 1, "{name}");
    }
}

#[tokio::test]
async fn a_cancelled_follower_does_not_break_the_others() {
    for (name, cache, _dir) in backends() {
        let master = TestMaster::new(seed_rows(3));
        let cache = ObservedCache::new(cache);
        let table = table(&master, cache.clone());
        let gate = master.hold_next_read();

        let readers: Vec<_> = (0..3)
            .map(|_| {
                let table = table.clone();
                tokio::spawn(async move { table.list(PAGE).await })
            })
            .collect();
        reach(&cache.gets, 3).await;
        reach(&master.reads, 1).await;
        readers[1].abort();
        gate.open();

        let mut results = Vec::new();
        for reader in readers {
            results.push(reader.await);
        }
        assert!(results[1].as_ref().unwrap_err().is_cancelled(), "{name}");
        for i in [0, 2] {
            let rows = results[i].as_ref().unwrap().as_ref().unwrap();
            assert_eq!(**rows, master.rows(), "{name}: reader {i}");
        }
        assert_eq!(master.list_calls(), 1, "{name}");
    }
}

#[tokio::test]
async fn entries_older_than_max_age_count_as_misses() {
    for (name, cache, _dir) in backends() {
        let master = TestMaster::new(seed_rows(2));
        let day_old = SystemTime::now() - Duration::from_secs(24 * 3600);
        let old_rows = seed_rows(1);
        put_fetched_at(
            cache.as_ref(),
            "clients/page_1_20",
            old_rows.clone(),
            day_old,
        )
        .await;

        // Without max_age, any entry is good.
        let forever = table(&master, cache.clone());
        assert_eq!(*forever.list(PAGE).await.unwrap(), old_rows, "{name}");
        assert_eq!(master.list_calls(), 0, "{name}");

        // With max_age, the day-old entry is a miss; the refetched one is young enough.
        let hourly = builder(&master, cache.clone())
            .max_age(Duration::from_secs(3600))
            .build()
            .unwrap();
        assert_eq!(*hourly.list(PAGE).await.unwrap(), master.rows(), "{name}");
        assert_eq!(master.list_calls(), 1, "{name}");
        assert_eq!(*hourly.list(PAGE).await.unwrap(), master.rows(), "{name}");
        assert_eq!(master.list_calls(), 1, "{name}: fresh entry is a hit");

        // An entry stamped in the future (clock skew) is treated as fresh.
        let ahead = SystemTime::now() + Duration::from_secs(3600);
        put_fetched_at(cache.as_ref(), "clients/id/r01", seed_rows(1), ahead).await;
        assert_eq!(
            hourly.get("r01").await.unwrap().as_deref(),
            Some(&record("name-01")),
            "{name}"
        );
        assert_eq!(master.get_calls(), 0, "{name}");
    }
}

#[tokio::test]
async fn when_the_cache_fails_reads_fall_back_to_the_master() {
    let master = TestMaster::new(seed_rows(2));
    let table = table(&master, Arc::new(BrokenCache));
    assert_eq!(*table.list(PAGE).await.unwrap(), master.rows());
    assert_eq!(*table.list(PAGE).await.unwrap(), master.rows());
    assert_eq!(master.list_calls(), 2, "nothing could be cached");
    assert_eq!(table.stats().fills, 0);
}

#[tokio::test]
async fn with_no_cache_every_read_reaches_the_master() {
    let master = TestMaster::new(seed_rows(2));
    let table = table(&master, Arc::new(NoCache));
    table.list(PAGE).await.unwrap();
    table.list(PAGE).await.unwrap();
    assert_eq!(master.list_calls(), 2);
}

// ----- the stale-fill race -----------------------------------------------------------------------

#[tokio::test]
async fn a_read_that_started_before_a_write_does_not_fill_the_cache_after_it() {
    for (name, cache, dir) in backends() {
        let redb = dir
            .as_ref()
            .map(|dir| RedbCache::open(dir.path().join("cache")).unwrap());
        let master = TestMaster::new(seed_rows(2));
        let table = table(&master, cache.clone());

        // Reader A misses and reads the master: its response (two rows) is in flight.
        let gate = master.hold_next_read();
        let reader_a = tokio::spawn({
            let table = table.clone();
            async move { table.list(PAGE).await }
        });
        reach(&master.reads, 1).await;

        // Meanwhile a write lands: applied to the master, cache key invalidated.
        table.insert("r03", record("new")).await.unwrap();
        assert_eq!(master.rows().len(), 3);

        // Reader B, which starts after the write was acknowledged, must not join A's read.
        // (Were B to join A's held read, it would wait for a gate only opened below.)
        let read_b = tokio::time::timeout(HANG_GUARD, table.list(PAGE))
            .await
            .expect("B joined the read that started before the write")
            .unwrap();
        assert_eq!(read_b.len(), 3, "{name}: B sees the write");
        assert_eq!(master.list_calls(), 2, "{name}: B made its own master read");

        // A's response arrives: A gets its (old) rows, but they must not land in the cache.
        gate.open();
        let read_a = reader_a.await.unwrap().unwrap();
        assert_eq!(read_a.len(), 2, "{name}: A's snapshot predates the write");
        let cached = cache.get("clients/page_1_20").await.unwrap().unwrap();
        assert_eq!(
            cached.rows.len(),
            3,
            "{name}: B's fill stands, A's was rejected"
        );

        // And a later read is served that fresh entry from the cache.
        assert_eq!(table.list(PAGE).await.unwrap().len(), 3, "{name}");
        assert_eq!(master.list_calls(), 2, "{name}");
        assert_eq!(table.stats().rejected_stale, 1, "{name}");
        if let Some(redb) = redb {
            assert_eq!(redb.stats().stale_fills_rejected, 1, "{name}");
        }
    }
}

#[tokio::test]
async fn a_read_that_started_before_an_event_does_not_fill_the_cache_after_it() {
    for (name, cache, _dir) in backends() {
        let master = TestMaster::new(seed_rows(2));
        let observed = ObservedCache::new(cache.clone());
        let events = Arc::new(ManualLiveStream::new());
        let table = builder(&master, observed.clone())
            .live_stream(events.clone())
            .build()
            .unwrap();

        let gate = master.hold_next_read();
        let reader = tokio::spawn({
            let table = table.clone();
            async move { table.get("r01").await }
        });
        reach(&master.reads, 1).await;

        master.set_out_of_band("r01", record("changed elsewhere"));
        events.push(LiveEvent::Updated { id: "r01".into() });
        reach(&observed.invalidations, 1).await;

        gate.open();
        assert_eq!(
            reader.await.unwrap().unwrap().as_deref(),
            Some(&record("name-01")),
            "{name}"
        );
        assert!(
            cache.get("clients/id/r01").await.unwrap().is_none(),
            "{name}: the stale row was not cached"
        );
        assert_eq!(
            table.get("r01").await.unwrap().as_deref(),
            Some(&record("changed elsewhere")),
            "{name}"
        );
    }
}

// ----- writes ------------------------------------------------------------------------------------

#[tokio::test]
async fn a_write_invalidates_the_cache_key_before_it_resolves_and_nothing_else() {
    for (name, cache, _dir) in backends() {
        let master = TestMaster::new(seed_rows(2));
        let table = table(&master, cache.clone());
        table.list(PAGE).await.unwrap();
        table.get("r01").await.unwrap();
        let neighbour = CachedRows::new(seed_rows(1));
        for key in ["clientsX/page_1_20", "clients", "other/clients/page_1_20"] {
            cache.put(key, neighbour.clone()).await.unwrap();
        }

        let stored = table.patch("r01", int_record("visits", 7)).await.unwrap();
        assert_eq!(stored["visits"], vlive::Value::Integer(7.into()));

        // Resolved: the table's entries are gone, the neighbours' are not.
        assert!(
            cache.get("clients/page_1_20").await.unwrap().is_none(),
            "{name}"
        );
        assert!(
            cache.get("clients/id/r01").await.unwrap().is_none(),
            "{name}"
        );
        for key in ["clientsX/page_1_20", "clients", "other/clients/page_1_20"] {
            assert!(
                cache.get(key).await.unwrap().is_some(),
                "{name}: {key} kept"
            );
        }
        let row = table.get("r01").await.unwrap().unwrap();
        assert_eq!(row["visits"], vlive::Value::Integer(7.into()), "{name}");
        assert_eq!(table.stats().writes, 1, "{name}");
    }
}

#[tokio::test]
async fn a_failed_write_returns_the_master_error_and_leaves_the_cache_untouched() {
    for (name, cache, _dir) in backends() {
        let master = TestMaster::new(seed_rows(2));
        let observed = ObservedCache::new(cache.clone());
        let table = table(&master, observed.clone());
        table.list(PAGE).await.unwrap();

        master.fail_next_write("quota exceeded");
        let error = table.insert("r09", record("x")).await.unwrap_err();
        assert_eq!(
            master_source(&error),
            Some(&TestError("quota exceeded".into())),
            "{name}"
        );
        // A refusal by the master's own rules is reported the same way.
        let error = table.delete("nobody").await.unwrap_err();
        assert_eq!(
            master_source(&error),
            Some(&TestError("no row nobody".into())),
            "{name}"
        );

        assert_eq!(observed.invalidations(), 0, "{name}");
        assert!(
            cache.get("clients/page_1_20").await.unwrap().is_some(),
            "{name}"
        );
        table.list(PAGE).await.unwrap();
        assert_eq!(
            master.list_calls(),
            1,
            "{name}: still served from the cache"
        );
        assert_eq!(table.stats().failed_writes, 2, "{name}");
    }
}

#[tokio::test]
async fn writes_are_applied_in_the_order_they_were_queued() {
    let master = TestMaster::new(Rows::new());
    let table = table(&master, Arc::new(MemCache::new()));
    // The first write is held so that all the others queue up behind it.
    let gate = master.hold_next_write();
    let mut writes: Vec<Pin<Box<dyn std::future::Future<Output = String> + Send>>> = Vec::new();
    let mut expected = Vec::new();
    for i in 0..10 {
        let id = format!("r{i}");
        let t = table.clone();
        let id2 = id.clone();
        writes.push(Box::pin(async move {
            t.insert(&id2, int_record("n", 0)).await.unwrap();
            format!("insert {id2}")
        }));
        expected.push(format!("insert {id}"));
        let t = table.clone();
        let id2 = id.clone();
        writes.push(Box::pin(async move {
            t.patch(&id2, int_record("n", i)).await.unwrap();
            format!("patch {id2}")
        }));
        expected.push(format!("patch {id}"));
        if i % 3 == 0 {
            let t = table.clone();
            let id2 = id.clone();
            writes.push(Box::pin(async move {
                t.delete(&id2).await.unwrap();
                format!("delete {id2}")
            }));
            expected.push(format!("delete {id}"));
        }
    }
    let opener = async {
        reach(&master.writes_started, 1).await;
        gate.open();
        String::new()
    };
    writes.push(Box::pin(opener));
    let done = join_in_order(writes).await;
    assert_eq!(done[..done.len() - 1], expected[..]);
    assert_eq!(master.write_log(), expected, "FIFO");
    // Had any patch overtaken its insert, it would have failed with "no row".
    let rows = master.rows();
    assert_eq!(rows.len(), 6);
    assert_eq!(rows["r8"]["n"], vlive::Value::Integer(8.into()));
}

#[tokio::test]
async fn a_write_whose_caller_was_cancelled_still_completes_and_still_invalidates() {
    for (name, cache, _dir) in backends() {
        let master = TestMaster::new(seed_rows(2));
        let observed = ObservedCache::new(cache.clone());
        let table = table(&master, observed.clone());
        table.list(PAGE).await.unwrap();

        let gate = master.hold_next_write();
        let caller = tokio::spawn({
            let table = table.clone();
            async move { table.insert("r03", record("late")).await }
        });
        reach(&master.writes_started, 1).await;
        caller.abort();
        assert!(caller.await.unwrap_err().is_cancelled(), "{name}");
        gate.open();

        reach(&observed.invalidations, 1).await;
        assert_eq!(master.rows()["r03"], record("late"), "{name}: applied");
        assert!(
            cache.get("clients/page_1_20").await.unwrap().is_none(),
            "{name}"
        );
        assert_eq!(table.list(PAGE).await.unwrap().len(), 3, "{name}");
    }
}

#[tokio::test]
async fn writes_go_to_the_write_target_and_reads_stay_on_the_master() {
    let master = TestMaster::new(seed_rows(2));
    let target = TestMaster::new(seed_rows(2));
    let cache = Arc::new(MemCache::new());
    let table = builder(&master, cache.clone())
        .write_target(target.clone())
        .build()
        .unwrap();
    table.list(PAGE).await.unwrap();

    let replaced = table.replace("r02", record("via target")).await.unwrap();
    assert_eq!(replaced, record("via target"));
    assert_eq!(target.write_log(), ["replace r02"]);
    assert!(master.write_log().is_empty());
    assert!(cache.is_empty(), "the target's write still invalidates");
    table.list(PAGE).await.unwrap();
    assert_eq!((master.list_calls(), target.list_calls()), (2, 0));

    table.delete_all().await.unwrap();
    assert!(target.rows().is_empty());
    assert_eq!(master.rows().len(), 2);
}

#[tokio::test]
async fn a_panicking_write_target_fails_that_write_only() {
    let master = TestMaster::new(seed_rows(1));
    let table = table(&master, Arc::new(MemCache::new()));
    master.panic_next_write();
    let error = table.insert("r02", record("boom")).await.unwrap_err();
    assert!(matches!(error, Error::Master(_)), "{error:?}");
    let cause = std::error::Error::source(&error).map(ToString::to_string);
    assert!(
        cause.as_deref().is_some_and(|c| c.contains("panicked")),
        "{cause:?}"
    );
    table.insert("r03", record("fine")).await.unwrap();
    assert_eq!(master.write_log(), ["insert r03"]);
}

#[tokio::test]
async fn a_write_applied_while_the_cache_is_broken_says_it_was_applied() {
    let master = TestMaster::new(seed_rows(1));
    let table = table(&master, Arc::new(BrokenCache));
    let error = table.insert("r02", record("x")).await.unwrap_err();
    assert_applied_but_not_invalidated(&error, "insert");
    assert!(
        master.rows().contains_key("r02"),
        "the master took the write"
    );
}

// ----- master timeouts and failed invalidations --------------------------------------------------

/// The master timeout of the tests below: short, so a test waits for it a few times at most.
const MASTER_TIMEOUT: Duration = Duration::from_millis(200);

/// How late past `MASTER_TIMEOUT` a timed-out call may answer: generous (the machine is shared);
/// only a bound on lateness, which the issue asks for ("within the configured timeout").
const LATENESS: Duration = Duration::from_secs(5);

/// The table `clients` over `master`, giving up on master calls after `MASTER_TIMEOUT`.
fn impatient(master: &Arc<TestMaster>, cache: Arc<dyn Cache>) -> LiveTable {
    builder(master, cache)
        .master_timeout(MASTER_TIMEOUT)
        .build()
        .unwrap()
}

/// Awaits `future`, failing the test (instead of hanging it) after `HANG_GUARD`.
async fn unhung<F: std::future::Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(HANG_GUARD, future)
        .await
        .unwrap_or_else(|_| panic!("hang: {what}"))
}

/// `error` is table `clients`'s `MasterTimeout` for `op`, after `MASTER_TIMEOUT`.
fn assert_master_timeout(error: &Error, expected_op: &str) {
    match error {
        Error::MasterTimeout {
            cache_key,
            op,
            after,
        } => {
            assert_eq!((cache_key.as_str(), *op), ("clients", expected_op));
            assert_eq!(*after, MASTER_TIMEOUT);
            let shown = error.to_string();
            assert!(shown.contains("no answer") && shown.contains(op), "{shown}");
        }
        other => panic!("expected MasterTimeout for {expected_op}, got {other:?}"),
    }
}

/// `error` says the `op` of table `clients` was applied and only its invalidation failed, with
/// the cache's error (`Closed`, from the test caches) as its source.
fn assert_applied_but_not_invalidated(error: &Error, expected_op: &str) {
    match error {
        Error::WriteAppliedInvalidationFailed {
            cache_key,
            op,
            source,
        } => {
            assert_eq!((cache_key.as_str(), *op), ("clients", expected_op));
            assert!(matches!(**source, Error::Closed), "{source:?}");
        }
        other => panic!("expected WriteAppliedInvalidationFailed, got {other:?}"),
    }
    assert!(error.to_string().contains("was applied"), "{error}");
    let cause = std::error::Error::source(error).map(ToString::to_string);
    assert_eq!(cause.as_deref(), Some("the cache is closed"));
}

#[tokio::test]
async fn a_master_that_never_answers_times_out_every_reader_and_the_table_reads_again() {
    for (name, cache, _dir) in backends() {
        let master = TestMaster::new(seed_rows(2));
        let observed = ObservedCache::new(cache);
        let table = impatient(&master, observed.clone());
        let _never_opened = master.hold_next_read();

        let started = Instant::now();
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let table = table.clone();
                tokio::spawn(async move { table.list(PAGE).await })
            })
            .collect();
        for reader in readers {
            let answer = unhung("a reader of a hung master", reader).await.unwrap();
            assert_master_timeout(&answer.unwrap_err(), "list");
        }
        let waited = started.elapsed();
        assert!(
            waited >= MASTER_TIMEOUT,
            "{name}: gave up early: {waited:?}"
        );
        assert!(
            waited < MASTER_TIMEOUT + LATENESS,
            "{name}: gave up {waited:?} after the first read"
        );
        let stats = table.stats();
        assert_eq!(
            master.list_calls(),
            1,
            "{name}: the readers shared one read"
        );
        assert_eq!(
            (
                stats.master_reads,
                stats.master_timeouts,
                stats.failed_reads
            ),
            (1, 1, 3),
            "{name}"
        );
        assert_eq!(observed.fills(), 0, "{name}: nothing cached");

        // The flight is not stuck: the next read asks the master again, and is served.
        assert_eq!(*table.list(PAGE).await.unwrap(), master.rows(), "{name}");
        assert_eq!(master.list_calls(), 2, "{name}");
        assert_eq!(table.stats().fills, 1, "{name}");
    }
}

#[tokio::test]
async fn a_write_the_master_never_answers_times_out_invalidates_and_never_lands_later() {
    for (name, cache, _dir) in backends() {
        let master = TestMaster::new(seed_rows(2));
        let observed = ObservedCache::new(cache.clone());
        let table = impatient(&master, observed.clone());
        table.list(PAGE).await.unwrap();
        let gate = master.hold_next_write();

        let started = Instant::now();
        let error = unhung(
            "a write to a hung master",
            table.insert("r03", record("hung")),
        )
        .await
        .unwrap_err();
        assert_master_timeout(&error, "insert");
        let waited = started.elapsed();
        assert!(
            waited >= MASTER_TIMEOUT,
            "{name}: gave up early: {waited:?}"
        );
        assert!(
            waited < MASTER_TIMEOUT + LATENESS,
            "{name}: gave up after {waited:?}"
        );

        // Its outcome is unknown, so entries from before it went all the same.
        assert_eq!(observed.invalidations(), 1, "{name}");
        assert!(
            cache.get("clients/page_1_20").await.unwrap().is_none(),
            "{name}"
        );
        let stats = table.stats();
        assert_eq!(
            (stats.writes, stats.failed_writes, stats.master_timeouts),
            (0, 1, 1),
            "{name}"
        );

        // The abandoned write was dropped: letting it through now applies nothing, and the
        // writes queued after it are applied as usual.
        gate.open();
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        table.insert("r04", record("fine")).await.unwrap();
        assert_eq!(master.write_log(), ["insert r04"], "{name}");
        assert_eq!(table.list(PAGE).await.unwrap().len(), 3, "{name}");
    }
}

#[tokio::test]
async fn a_write_applied_whose_invalidation_fails_says_it_was_applied() {
    for (name, cache, _dir) in backends() {
        let master = TestMaster::new(seed_rows(2));
        let observed = ObservedCache::new(cache);
        let table = impatient(&master, observed.clone());
        observed.fail_invalidations(true);

        let error = table.replace("r01", record("renamed")).await.unwrap_err();
        assert_applied_but_not_invalidated(&error, "replace");
        assert_eq!(master.rows()["r01"], record("renamed"), "{name}: applied");
        let stats = table.stats();
        assert_eq!(
            (stats.writes, stats.failed_writes, stats.invalidations),
            (1, 0, 0),
            "{name}"
        );

        // A write that timed out and could not invalidate either still says what it knows:
        // its outcome is unknown.
        let _never_opened = master.hold_next_write();
        let error = unhung("a hung write", table.delete("r02"))
            .await
            .unwrap_err();
        assert_master_timeout(&error, "delete");
        assert_eq!(observed.invalidations(), 2, "{name}: it tried");
    }
}

#[tokio::test]
async fn a_master_read_that_panics_is_counted_and_fails_only_its_own_waiters() {
    for (name, cache, _dir) in backends() {
        let master = TestMaster::new(seed_rows(2));
        let table = table(&master, cache);
        master.panic_next_read();

        let error = table.list(PAGE).await.unwrap_err();
        assert!(matches!(error, Error::Master(_)), "{name}: {error:?}");
        let cause = std::error::Error::source(&error).map(ToString::to_string);
        assert!(
            cause.as_deref().is_some_and(|c| c.contains("panicked")),
            "{name}: {cause:?}"
        );
        let stats = table.stats();
        assert_eq!(
            (stats.master_reads, stats.failed_reads),
            (1, 1),
            "{name}: the panicked read was not counted"
        );

        assert_eq!(*table.list(PAGE).await.unwrap(), master.rows(), "{name}");
        assert_eq!(table.stats().master_reads, 2, "{name}");
    }
}

#[test]
fn a_zero_master_timeout_is_rejected() {
    let master = TestMaster::new(seed_rows(1));
    let built = builder(&master, Arc::new(MemCache::new()))
        .master_timeout(Duration::ZERO)
        .build();
    let error = built.unwrap_err();
    assert!(matches!(error, Error::InvalidConfig { .. }), "{error:?}");
    assert!(error.to_string().contains("master_timeout"), "{error}");
}

#[tokio::test]
async fn non_master_errors_from_a_master_are_wrapped_as_master_errors() {
    struct Odd;
    #[async_trait::async_trait]
    impl Master for Odd {
        async fn list(&self, _: Page) -> vlive::Result<Rows> {
            Err(Error::Closed)
        }
        async fn get(&self, _: &str) -> vlive::Result<Option<vlive::Record>> {
            Ok(None)
        }
        async fn insert(&self, _: &str, r: vlive::Record) -> vlive::Result<vlive::Record> {
            Ok(r)
        }
        async fn replace(&self, _: &str, r: vlive::Record) -> vlive::Result<vlive::Record> {
            Ok(r)
        }
        async fn patch(&self, _: &str, r: vlive::Record) -> vlive::Result<vlive::Record> {
            Ok(r)
        }
        async fn delete(&self, _: &str) -> vlive::Result<()> {
            Err(Error::InvalidConfig {
                reason: "read-only".into(),
            })
        }
        async fn delete_all(&self) -> vlive::Result<()> {
            Ok(())
        }
    }
    let table = LiveTable::new(Arc::new(Odd), "odd", Arc::new(MemCache::new())).unwrap();
    let read = table.list(PAGE).await.unwrap_err();
    assert!(matches!(&read, Error::Master(s) if s.to_string() == "the cache is closed"));
    let write = table.delete("x").await.unwrap_err();
    assert!(matches!(&write, Error::Master(s) if s.to_string().contains("read-only")));
}

// ----- events ------------------------------------------------------------------------------------

#[tokio::test]
async fn every_live_event_invalidates_the_cache_key() {
    for (name, cache, _dir) in backends() {
        let master = TestMaster::new(seed_rows(2));
        let observed = ObservedCache::new(cache.clone());
        let events = Arc::new(ManualLiveStream::new());
        let table = builder(&master, observed.clone())
            .live_stream(events.clone())
            .build()
            .unwrap();

        let all = [
            LiveEvent::Changed,
            LiveEvent::Inserted { id: "r03".into() },
            LiveEvent::Updated { id: "r01".into() },
            LiveEvent::Deleted { id: "r02".into() },
        ];
        for (i, event) in all.into_iter().enumerate() {
            table.list(PAGE).await.unwrap();
            assert!(cache.get("clients/page_1_20").await.unwrap().is_some());
            assert_eq!(events.push(event.clone()), 1, "{name}: one subscriber");
            reach(&observed.invalidations, i + 1).await;
            assert!(
                cache.get("clients/page_1_20").await.unwrap().is_none(),
                "{name}: {event:?} invalidated"
            );
        }
        assert_eq!(master.list_calls(), 4, "{name}");
        assert_eq!(table.stats().events, 4, "{name}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_burst_of_events_costs_fewer_invalidations_than_events() {
    const BURST: usize = 50;
    let master = TestMaster::new(seed_rows(2));
    let observed = ObservedCache::new(Arc::new(MemCache::new()));
    let events = Arc::new(ManualLiveStream::new());
    let table = builder(&master, observed.clone())
        .live_stream(events.clone())
        .build()
        .unwrap();
    table.list(PAGE).await.unwrap();

    // The whole burst is queued before the consumer runs: this task does not yield in between,
    // and the runtime has one thread.
    for i in 0..BURST {
        events.push(LiveEvent::Updated {
            id: format!("r{i:02}"),
        });
    }
    reach(&observed.invalidations, 1).await;
    tokio::time::timeout(HANG_GUARD, async {
        while table.stats().events < BURST as u64 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the consumer did not take every event");

    // MemCache invalidates without waiting, so every event taken has been answered for.
    let invalidations = observed.invalidations();
    assert!(
        (1..BURST).contains(&invalidations),
        "{invalidations} invalidations for {BURST} events: the burst was not coalesced"
    );
    assert_eq!(table.stats().invalidations, invalidations as u64);
    assert!(
        observed.get("clients/page_1_20").await.unwrap().is_none(),
        "invalidated after the burst"
    );
    // The consumer still listens: a later event invalidates again.
    table.list(PAGE).await.unwrap();
    events.push(LiveEvent::Changed);
    reach(&observed.invalidations, invalidations + 1).await;
    assert!(observed.get("clients/page_1_20").await.unwrap().is_none());
}

#[tokio::test]
async fn a_lagged_subscription_invalidates_the_cache_key() {
    let master = TestMaster::new(seed_rows(2));
    let observed = ObservedCache::new(Arc::new(MemCache::new()));
    let events = Arc::new(ManualLiveStream::with_capacity(1));
    let table = builder(&master, observed.clone())
        .live_stream(events.clone())
        .build()
        .unwrap();
    table.list(PAGE).await.unwrap();
    // Two events before the consumer runs: with room for one, the first is lost.
    events.push(LiveEvent::Changed);
    events.push(LiveEvent::Deleted { id: "r01".into() });
    // The gap and the event behind it are both waiting when the consumer wakes: one
    // invalidation answers for both.
    reach(&observed.invalidations, 1).await;
    let stats = table.stats();
    assert_eq!(
        (stats.events, stats.stream_gaps, stats.invalidations),
        (2, 1, 1)
    );
    assert!(observed.get("clients/page_1_20").await.unwrap().is_none());
}

/// A stream that yields what it is given once its gate is open, then ends.
struct Scripted {
    events: Vec<LiveEvent>,
    gate: Gate,
}

impl LiveStream for Scripted {
    fn subscribe(&self) -> LiveEvents {
        let gate = self.gate.clone();
        Box::pin(tokio_stream::iter(self.events.clone()).then(move |event| {
            let gate = gate.clone();
            async move {
                gate.pass().await;
                event
            }
        }))
    }
}

#[tokio::test]
async fn a_stream_that_ends_invalidates_the_cache_key() {
    for (name, cache, _dir) in backends() {
        let master = TestMaster::new(seed_rows(2));
        let (observed, _) = ObservedCache::with_drop_signal(cache.clone());
        let events = Arc::new(ManualLiveStream::new());
        let gate = Gate::default();
        let scripted = Scripted {
            events: vec![LiveEvent::Lagged { missed: 5 }],
            gate: gate.clone(),
        };
        let table = builder(&master, observed.clone())
            .live_stream(events.clone())
            .live_stream(Arc::new(scripted))
            .build()
            .unwrap();
        table.list(PAGE).await.unwrap();

        drop(events); // the only sender: the subscription ends
        reach(&observed.invalidations, 1).await;
        assert!(
            cache.get("clients/page_1_20").await.unwrap().is_none(),
            "{name}"
        );
        assert_eq!(table.stats().stream_gaps, 1, "{name}");

        // A custom stream that, once let go, reports a gap and then ends at once: two gaps,
        // handled together by one invalidation.
        gate.open();
        reach(&observed.invalidations, 2).await;
        let stats = table.stats();
        assert_eq!((stats.stream_gaps, stats.invalidations), (3, 2), "{name}");
    }
}

#[tokio::test]
async fn the_worker_and_the_event_consumer_stop_when_the_last_table_is_dropped() {
    let master = TestMaster::new(seed_rows(2));
    let (cache, dropped) = ObservedCache::with_drop_signal(Arc::new(MemCache::new()));
    let events = Arc::new(ManualLiveStream::new());
    let table = builder(&master, cache.clone())
        .live_stream(events.clone())
        .build()
        .unwrap();
    table.insert("r03", record("x")).await.unwrap(); // starts the worker
    table.list(PAGE).await.unwrap();
    let clone = table.clone();
    drop(table);

    // A clone keeps everything running.
    clone.insert("r04", record("y")).await.unwrap();
    events.push(LiveEvent::Changed);
    reach(&cache.invalidations, 3).await;
    assert_eq!(events.subscriber_count(), 1);

    drop(clone);
    drop(cache);
    // Only the worker, the consumer and finished fetches held the cache: once they are gone the
    // wrapper is dropped.
    tokio::time::timeout(HANG_GUARD, dropped)
        .await
        .expect("the table's tasks did not stop")
        .unwrap();
    // The consumer notices the table is gone the next time it runs, and drops its stream.
    tokio::time::timeout(HANG_GUARD, async {
        while events.subscriber_count() > 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the event consumer did not stop");
}

// A live table and a manual stream can be shared across tasks: checked when this file
// compiles (a #[test] around it would run nothing).
const _: () = {
    const fn shareable<T: Clone + Send + Sync + 'static>() {}
    shareable::<LiveTable>();
    shareable::<ManualLiveStream>();
};

#[test]
fn a_live_table_can_be_built_outside_a_runtime() {
    let master = TestMaster::new(seed_rows(1));
    let table = builder(&master, Arc::new(MemCache::new()))
        .max_age(Duration::from_secs(1))
        .write_target(master.clone())
        .build()
        .unwrap();
    assert_eq!(table.cache_key(), "clients");
    // Master calls are bounded by a Tokio timer: the runtime needs its time driver.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        table.insert("r02", record("later")).await.unwrap();
        assert_eq!(table.list(PAGE).await.unwrap().len(), 2);
    });
}

// ----- configuration -----------------------------------------------------------------------------

#[test]
fn building_a_table_with_live_streams_outside_a_runtime_is_a_typed_error() {
    let master = TestMaster::new(seed_rows(1));
    let events = Arc::new(ManualLiveStream::new());
    let error = builder(&master, Arc::new(MemCache::new()))
        .live_stream(events.clone())
        .build()
        .unwrap_err();
    assert!(
        matches!(&error, Error::NoRuntime { cache_key } if cache_key == "clients"),
        "{error:?}"
    );
    assert!(error.to_string().contains("Tokio runtime"), "{error}");
    assert_eq!(
        events.subscriber_count(),
        0,
        "a failed build subscribes to nothing"
    );
}

#[tokio::test]
async fn clones_share_the_configuration_the_table_was_built_with() {
    let master = TestMaster::new(seed_rows(2));
    let target = TestMaster::new(seed_rows(2));
    let cache = Arc::new(MemCache::new());
    let day_old = SystemTime::now() - Duration::from_secs(24 * 3600);
    put_fetched_at(cache.as_ref(), "clients/page_1_20", seed_rows(1), day_old).await;
    let table = builder(&master, cache.clone())
        .max_age(Duration::from_secs(3600))
        .write_target(target.clone())
        .build()
        .unwrap();
    let clone = table.clone();

    assert_eq!(
        *clone.list(PAGE).await.unwrap(),
        master.rows(),
        "the clone's max_age makes the day-old entry a miss"
    );
    clone.delete("r01").await.unwrap();
    table.delete("r02").await.unwrap();
    assert_eq!(target.write_log(), ["delete r01", "delete r02"]);
    assert!(
        master.write_log().is_empty(),
        "no clone writes to the master"
    );
    assert_eq!(format!("{clone:?}"), format!("{table:?}"));
}

#[test]
fn a_cache_key_that_is_empty_or_could_hold_another_tables_rows_is_rejected() {
    let master = TestMaster::new(seed_rows(1));
    for (cache_key, names) in [
        ("", "empty"),
        ("clients/id", "table \"clients\""),
        ("clients/id/page_1_20", "table \"clients\""),
        ("shop/clients/id", "table \"shop/clients\""),
    ] {
        let built = LiveTable::new(master.clone(), cache_key, Arc::new(MemCache::new()));
        let error = built.unwrap_err();
        assert!(
            matches!(error, Error::InvalidConfig { .. }),
            "{cache_key:?}: {error:?}"
        );
        assert!(error.to_string().contains(names), "{cache_key:?}: {error}");
    }
    for cache_key in [
        "clients",
        "clients/active",
        "id",
        "clients/idle",
        "clients/",
    ] {
        let built = LiveTable::new(master.clone(), cache_key, Arc::new(MemCache::new()));
        assert_eq!(built.unwrap().cache_key(), cache_key);
    }
}
