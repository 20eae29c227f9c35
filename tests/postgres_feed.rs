//! `PostgresLiveStream` against a real Postgres (issue 20): out-of-band changes reach a
//! LiveTable's reads; a TRUNCATE and an id too long for a notice become table-level changes; the
//! listener's backend terminated, with an UPDATE made during the outage, is a gap the table
//! invalidates for, so the change is never served stale once the listener is back; the install
//! is idempotent.
#![cfg(feature = "postgres")]

mod common;
#[path = "common/postgres_server.rs"]
mod postgres_server;

use std::sync::Arc;
use std::time::{Duration, Instant};

use postgres_server::PostgresServer;
use vlive::{
    LISTENER_APPLICATION_NAME, LiveTable, LiveTableBuilder, MemCache, Page, PostgresLiveStream,
    PostgresMaster, Value,
};

struct Fixture {
    server: PostgresServer,
    setup: tokio_postgres::Client,
    table: LiveTable,
    feed: PostgresLiveStream,
}

/// A fresh server with table `name` (`item1`..`item5`, `n` = 1..5) and vlive's trigger on it,
/// installed twice (it is idempotent); and a connection of the test's own.
async fn server_with(name: &str) -> (PostgresServer, tokio_postgres::Client) {
    let server = PostgresServer::start();
    let setup = server.client().await;
    setup
        .batch_execute(&format!(
            r#"CREATE TABLE "{name}" (id text PRIMARY KEY, n int NOT NULL);
               INSERT INTO "{name}" SELECT 'item' || g, g FROM generate_series(1, 5) g"#
        ))
        .await
        .unwrap();
    for _ in 0..2 {
        PostgresLiveStream::install(&server.url(), name, "id")
            .await
            .unwrap();
    }
    (server, setup)
}

/// Table `name`'s LiveTable over a MemCache, listening to a new feed, once it has taken its
/// first two gaps: the subscription's own (nothing before it is in it), then the listener's
/// first connect's (changes before the LISTEN are lost). The feed is connected last, so that
/// the table subscribes before the listener can connect.
async fn table_over(
    url: &str,
    name: &str,
    configure: impl FnOnce(LiveTableBuilder) -> LiveTableBuilder,
) -> (LiveTable, PostgresLiveStream) {
    let master = PostgresMaster::connect(url, name, "id").await.unwrap();
    let feed = PostgresLiveStream::connect(url, name, "id").unwrap();
    let builder = LiveTable::builder(Arc::new(master), "items", Arc::new(MemCache::new()))
        .live_stream(Arc::new(feed.clone()));
    let table = configure(builder).build().unwrap();
    common::wait_until("the first gaps", || table.stats().stream_gaps >= 2).await;
    (table, feed)
}

async fn fixture_with(
    name: &str,
    configure: impl FnOnce(LiveTableBuilder) -> LiveTableBuilder,
) -> Fixture {
    let (server, setup) = server_with(name).await;
    let (table, feed) = table_over(&server.url(), name, configure).await;
    Fixture {
        server,
        setup,
        table,
        feed,
    }
}

async fn fixture() -> Fixture {
    fixture_with("items", |builder| builder).await
}

async fn n_of(table: &LiveTable, id: &str) -> Option<Value> {
    table
        .get(id)
        .await
        .unwrap()
        .and_then(|record| record.get("n").cloned())
}

/// Waits until `id`'s `n` reads as `want`; returns how long that took.
async fn until_read(table: &LiveTable, id: &str, want: Option<i64>) -> Duration {
    let started = Instant::now();
    let want = want.map(|n| Value::Integer(n.into()));
    common::within("the change to reach reads", async {
        while n_of(table, id).await != want {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_band_changes_reach_reads() {
    let f = fixture().await;
    assert_eq!(
        n_of(&f.table, "item1").await,
        Some(Value::Integer(1.into()))
    );
    let hits = f.table.stats().hits;
    assert_eq!(
        n_of(&f.table, "item1").await,
        Some(Value::Integer(1.into()))
    );
    assert_eq!(f.table.stats().hits, hits + 1, "served from the cache");

    f.setup
        .execute("UPDATE items SET n = 100 WHERE id = 'item1'", &[])
        .await
        .unwrap();
    let delay = until_read(&f.table, "item1", Some(100)).await;
    eprintln!("an out-of-band UPDATE reached reads after {delay:?}");

    f.setup
        .execute("INSERT INTO items VALUES ('item9', 9)", &[])
        .await
        .unwrap();
    assert_eq!(f.table.list(Page::first(20)).await.unwrap().len(), 6);
    f.setup
        .execute("DELETE FROM items WHERE id = 'item9'", &[])
        .await
        .unwrap();
    common::wait_until("the delete's notice", || f.feed.stats().notices >= 3).await;
    until_read(&f.table, "item9", None).await;
    assert_eq!(f.feed.stats().malformed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncate_and_overlong_ids_are_table_level_changes() {
    let f = fixture().await;
    assert_eq!(f.table.list(Page::first(20)).await.unwrap().len(), 5);
    f.setup.execute("TRUNCATE items", &[]).await.unwrap();
    common::within("the truncate to reach reads", async {
        while !f.table.list(Page::first(20)).await.unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;

    // An id longer than a notice may carry: the writer's commit still succeeds.
    let long = "x".repeat(7500);
    assert!(f.table.list(Page::first(20)).await.unwrap().is_empty());
    f.setup
        .execute("INSERT INTO items VALUES ($1, 1)", &[&long])
        .await
        .unwrap();
    common::within("the long id's change to reach reads", async {
        while f.table.list(Page::first(20)).await.unwrap().len() != 1 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_while_the_listener_is_away_is_never_served_stale() {
    let f = fixture().await;
    assert_eq!(
        n_of(&f.table, "item2").await,
        Some(Value::Integer(2.into()))
    );
    let gaps = f.table.stats().stream_gaps;
    let connections = f.feed.stats().connections;

    // Kill the listener's backend and change the row before it is back: the notice is lost.
    let killed: Vec<tokio_postgres::Row> = f
        .setup
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&LISTENER_APPLICATION_NAME],
        )
        .await
        .unwrap();
    assert_eq!(killed.len(), 1, "one listener backend");
    f.setup
        .execute("UPDATE items SET n = 200 WHERE id = 'item2'", &[])
        .await
        .unwrap();
    common::wait_until("the listener to reconnect", || {
        f.feed.stats().connections > connections
    })
    .await;
    common::wait_until("the gap to reach the table", || {
        f.table.stats().stream_gaps > gaps
    })
    .await;
    assert_eq!(
        n_of(&f.table, "item2").await,
        Some(Value::Integer(200.into())),
        "served stale after the listener came back"
    );
    assert!(
        f.feed.stats().errors >= 1,
        "the lost connection was counted"
    );
    drop(f.server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_refuses_bad_names_and_the_sql_is_available() {
    let sql = PostgresLiveStream::install_sql("app.items", "id").unwrap();
    assert!(sql.contains("\"app\".\"items\"") && sql.contains("vlive_app_items"));
    for (table, id) in [("items; drop table x", "id"), ("items", "id\" --")] {
        assert!(
            PostgresLiveStream::install_sql(table, id).is_err(),
            "{table}/{id}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serving_stale_a_gap_marks_entries_for_revalidation_instead_of_deleting_them() {
    let f = fixture_with("items", |builder| {
        builder.serve_stale_while_revalidate(Duration::from_secs(60))
    })
    .await;
    assert_eq!(
        n_of(&f.table, "item1").await,
        Some(Value::Integer(1.into()))
    );
    let invalidations = f.table.stats().invalidations;
    let gaps = f.table.stats().stream_gaps;
    f.setup
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&LISTENER_APPLICATION_NAME],
        )
        .await
        .unwrap();
    f.setup
        .execute("UPDATE items SET n = 2 WHERE id = 'item1'", &[])
        .await
        .unwrap();
    common::wait_until("the gap", || f.table.stats().stream_gaps > gaps).await;
    until_read(&f.table, "item1", Some(2)).await;
    let stats = f.table.stats();
    assert_eq!(
        stats.invalidations, invalidations,
        "the gap deleted nothing"
    );
    assert!(
        stats.stale_hits >= 1 && stats.revalidations >= 1,
        "{stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_given_the_only_handle_keeps_its_listener() {
    let (server, setup) = server_with("items").await;
    let (table, feed) = table_over(&server.url(), "items", |builder| builder).await;
    // As the README writes it: the table holds the only handle.
    drop(feed);
    assert_eq!(n_of(&table, "item1").await, Some(Value::Integer(1.into())));
    setup
        .execute("UPDATE items SET n = 5 WHERE id = 'item1'", &[])
        .await
        .unwrap();
    until_read(&table, "item1", Some(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_case_table_is_heard() {
    let f = fixture_with("Items", |builder| builder).await;
    assert_eq!(
        n_of(&f.table, "item1").await,
        Some(Value::Integer(1.into()))
    );
    f.setup
        .execute(r#"UPDATE "Items" SET n = 7 WHERE id = 'item1'"#, &[])
        .await
        .unwrap();
    until_read(&f.table, "item1", Some(7)).await;
    assert!(f.feed.stats().notices >= 1);
}
