//! Read-your-writes when an invalidation comes from outside the table: a write through a table
//! whose cache key covers this one's (`clients` over `clients/active`), a write through another
//! table on the same key, or a direct `Cache::invalidate_prefix`.
//!
//! Such an invalidation clears this table's cache entries, but it cannot detach this table's
//! single flights (only the table's own writes, events and `invalidate` do). So a read that
//! starts after the write has resolved can miss the cache and *join* a master read that began
//! before the write. The cache rejects that read's fill as stale; the table must then not hand
//! its rows to the callers who joined it (they read again), while the caller who started it,
//! whose call began before the write, may keep them.
//!
//! Races are staged deterministically: a master read is held at a gate after taking its
//! snapshot of the rows (or a fill is held after the cache took it) while the test performs the
//! write it races against. The runtime is current-thread, so a spawned task runs only when the
//! test task awaits. `reach(&cache.gets, n)` tells that `n` reads have missed: a read joins or
//! starts a flight in the same poll as its miss.

#[path = "live_table/support.rs"]
mod support;

use std::sync::Arc;

use support::*;
use tokio::task::JoinHandle;
use vlive::{Cache, LiveTable, MemCache, Record};

/// The backends every race is staged against. The `TempDir` keeps the redb folder alive.
/// `table.get(id)` in a task of its own.
fn spawn_get(
    table: &LiveTable,
    id: &str,
) -> JoinHandle<vlive::Result<Option<vlive::SharedRecord>>> {
    let table = table.clone();
    let id = id.to_owned();
    tokio::spawn(async move { table.get(&id).await })
}

/// The row a spawned `get` returned.
async fn row(read: JoinHandle<vlive::Result<Option<vlive::SharedRecord>>>) -> Record {
    read.await
        .unwrap()
        .unwrap()
        .expect("the row exists")
        .into_record()
}

/// How another party makes the change a later read must see.
#[derive(Clone, Copy, Debug)]
enum Writer {
    /// A write through the table `clients`, whose invalidation of `clients/` covers
    /// `clients/active`.
    OuterTable,
    /// A write through a second, independent table on the reader's own key.
    SiblingTable,
    /// A change the table never hears of, followed by a direct invalidation of the cache.
    DirectInvalidation,
}

impl Writer {
    /// Renames row `r01` to `name` on `master` and invalidates as this writer does; returns
    /// once the write has resolved.
    async fn rename_r01(self, master: &Arc<TestMaster>, cache: &Arc<ObservedCache>, name: &str) {
        match self {
            Writer::OuterTable => {
                let outer = LiveTable::new(master.clone(), "clients", cache.clone()).unwrap();
                outer.patch("r01", record(name)).await.unwrap();
            }
            Writer::SiblingTable => {
                let sibling =
                    LiveTable::new(master.clone(), "clients/active", cache.clone()).unwrap();
                sibling.patch("r01", record(name)).await.unwrap();
            }
            Writer::DirectInvalidation => {
                master.set_out_of_band("r01", record(name));
                cache.invalidate_prefix("clients/active/").await.unwrap();
            }
        }
    }
}

#[tokio::test]
async fn a_read_that_starts_after_a_write_through_an_outer_table_sees_it() {
    read_after_write_from_elsewhere(Writer::OuterTable).await;
}

#[tokio::test]
async fn a_read_that_starts_after_a_write_through_a_sibling_table_sees_it() {
    read_after_write_from_elsewhere(Writer::SiblingTable).await;
}

#[tokio::test]
async fn a_read_that_starts_after_a_direct_invalidation_sees_the_change() {
    read_after_write_from_elsewhere(Writer::DirectInvalidation).await;
}

/// The race: an early read's master read takes the old row; `writer` changes it and resolves;
/// a late read starts, misses, and finds the early read's flight still running.
async fn read_after_write_from_elsewhere(writer: Writer) {
    for (name, backend, _dir) in backends() {
        let master = TestMaster::new(seed_rows(3));
        let cache = ObservedCache::new(backend);
        let table = LiveTable::new(master.clone(), "clients/active", cache.clone()).unwrap();

        // An early read misses; its master read takes the old row, then is slow to answer.
        let gate = master.hold_next_read();
        let early = spawn_get(&table, "r01");
        reach(&master.reads, 1).await;

        // The write resolves: applied, and every key of the table invalidated.
        writer.rename_r01(&master, &cache, "patched").await;

        // A late read starts strictly after that, misses, and finds the early read's
        // flight still running.
        let late = spawn_get(&table, "r01");
        reach(&cache.gets, 2).await;
        gate.open();

        assert_eq!(
            row(early).await,
            record("name-01"),
            "{writer:?}/{name}: the early read overlapped the write: the old row is a \
             valid answer"
        );
        assert_eq!(
            row(late).await,
            record("patched"),
            "{writer:?}/{name}: a read that started after the write resolved must see it"
        );
        assert_eq!(
            master.get_calls(),
            2,
            "{writer:?}/{name}: the late read re-read"
        );
        let stats = table.stats();
        assert_eq!(
            (stats.rejected_stale, stats.fills),
            (1, 1),
            "{writer:?}/{name}: the early read's fill was rejected, the re-read's stored"
        );
        assert_eq!(
            table.get("r01").await.unwrap().as_deref(),
            Some(&record("patched")),
            "{writer:?}/{name}: and the cache holds the new row"
        );
        assert_eq!(master.get_calls(), 2, "{writer:?}/{name}");
    }
}

#[tokio::test]
async fn followers_of_an_overtaken_read_read_again_once_and_together() {
    let master = TestMaster::new(seed_rows(3));
    let cache = ObservedCache::new(Arc::new(MemCache::new()));
    let table = LiveTable::new(master.clone(), "clients/active", cache.clone()).unwrap();

    // A leader and three followers share one master read, held at a gate.
    let first_read = master.hold_next_read();
    let leader = spawn_get(&table, "r01");
    reach(&master.reads, 1).await;
    let followers: Vec<_> = (0..3).map(|_| spawn_get(&table, "r01")).collect();
    reach(&cache.gets, 4).await;

    // A write from elsewhere overtakes that read. The followers joined before the write, so
    // the old row would be a valid answer for them too; but they cannot tell, and read again.
    Writer::OuterTable
        .rename_r01(&master, &cache, "first")
        .await;
    let second_read = master.hold_next_read();
    first_read.open();
    assert_eq!(
        row(leader).await,
        record("name-01"),
        "the leader keeps its rows"
    );

    // The followers' second read is one master read for all of them (they woke together, before
    // it started). Another write overtakes that one too.
    reach(&master.reads, 2).await;
    Writer::OuterTable
        .rename_r01(&master, &cache, "second")
        .await;
    second_read.open();

    // A second attempt is never retried: its master read began after the follower did.
    for follower in followers {
        assert_eq!(row(follower).await, record("first"));
    }
    assert_eq!(
        master.get_calls(),
        2,
        "one re-read for three followers, no third"
    );
    assert_eq!(table.stats().rejected_stale, 2);
    assert_eq!(
        table.get("r01").await.unwrap().as_deref(),
        Some(&record("second"))
    );
}

#[tokio::test]
async fn a_read_that_starts_after_a_write_does_not_join_a_read_whose_fill_has_landed() {
    for (name, backend, _dir) in backends() {
        let master = TestMaster::new(seed_rows(3));
        let cache = ObservedCache::new(backend);
        let table = LiveTable::new(master.clone(), "clients/active", cache.clone()).unwrap();

        // An early read stores the old row in the cache, but has not yet heard back.
        let fill = cache.hold_next_fill();
        let early = spawn_get(&table, "r01");
        reach(&cache.fills, 1).await;

        // A write from elsewhere removes that entry. The early read's fill was `Stored`: no
        // invalidation overtook it, so only its being closed to new joiners before it filled
        // keeps the late read off it.
        Writer::OuterTable
            .rename_r01(&master, &cache, "patched")
            .await;
        let late = spawn_get(&table, "r01");
        reach(&cache.gets, 2).await;
        fill.open();

        assert_eq!(row(early).await, record("name-01"), "{name}");
        assert_eq!(
            row(late).await,
            record("patched"),
            "{name}: the late read joined a read whose rows predate the write"
        );
        assert_eq!(master.get_calls(), 2, "{name}");
    }
}

#[tokio::test]
async fn a_follower_does_not_trust_a_read_the_cache_could_not_vouch_for() {
    let master = TestMaster::new(seed_rows(3));
    let cache = ObservedCache::new(Arc::new(MemCache::new()));
    let table = LiveTable::new(master.clone(), "clients/active", cache.clone()).unwrap();
    // Fills fail, so the cache cannot say whether an invalidation overtook a read.
    cache.fail_fills(true);

    let gate = master.hold_next_read();
    let early = spawn_get(&table, "r01");
    reach(&master.reads, 1).await;
    Writer::OuterTable
        .rename_r01(&master, &cache, "patched")
        .await;
    let late = spawn_get(&table, "r01");
    reach(&cache.gets, 2).await;
    gate.open();

    assert_eq!(row(early).await, record("name-01"));
    assert_eq!(row(late).await, record("patched"));
    assert_eq!(master.get_calls(), 2, "the follower read again, once");
    assert_eq!(table.stats().fills, 0, "nothing could be cached");
}
