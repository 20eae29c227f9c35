//! `postgres` (with `--features postgres`): a LiveTable over a real Postgres table, with its
//! LISTEN/NOTIFY change feed. Starts its own throwaway Postgres (initdb + postgres in a temp
//! dir, a free loopback port; as the `postgres` user when run as root) unless given `--pg-url`,
//! then shows, and checks, each promise in turn:
//!
//! 1. reads served from the cache vs from Postgres;
//! 2. an out-of-band UPDATE through a second connection reaching reads (and how long it took);
//! 3. the listener's backend killed (`pg_terminate_backend`) and a row changed meanwhile: the
//!    gap turns into an invalidation, and the change is read, never the stale row.
//!
//! Exits non-zero if any of that did not happen.

#[path = "../../tests/common/postgres_server.rs"]
mod postgres_server;

use std::sync::Arc;
use std::time::{Duration, Instant};

use vlive::{
    LISTENER_APPLICATION_NAME, LiveTable, MemCache, PostgresLiveStream, PostgresMaster, Value,
};

use crate::demo::DemoResult;

/// How long a change may take to reach reads before the demo calls it a failure.
const DEADLINE: Duration = Duration::from_secs(10);

pub async fn run(pg_url: Option<&str>) -> DemoResult<()> {
    println!("vlive live_demo postgres: a LiveTable over a Postgres table and its change feed");
    let server = match pg_url {
        Some(_) => None,
        None => {
            println!("  starting a throwaway Postgres (initdb, a free loopback port) …");
            Some(tokio::task::spawn_blocking(postgres_server::PostgresServer::start).await?)
        }
    };
    let url = match (&server, pg_url) {
        (Some(server), _) => server.url(),
        (None, Some(url)) => url.to_owned(),
        (None, None) => unreachable!("one of the two is set"),
    };
    // A table of its own, so an existing database is not touched otherwise.
    let table_name = format!("vlive_demo_{}", std::process::id());
    let admin = connect(&url).await?;
    admin
        .batch_execute(&format!(
            "CREATE TABLE {table_name} (id text PRIMARY KEY, name text NOT NULL, \
             visits integer NOT NULL DEFAULT 0, updated timestamptz NOT NULL DEFAULT now());
             INSERT INTO {table_name} (id, name, visits)
               SELECT 'c-' || lpad(g::text, 4, '0'), 'client ' || g, g FROM generate_series(1, 100) g"
        ))
        .await?;
    let outcome = story(&url, &table_name, &admin).await;
    admin
        .batch_execute(&format!("DROP TABLE IF EXISTS {table_name}"))
        .await?;
    drop(server);
    outcome
}

async fn story(url: &str, table_name: &str, admin: &tokio_postgres::Client) -> DemoResult<()> {
    PostgresLiveStream::install(url, table_name, "id").await?;
    println!("  table {table_name}: 100 rows; change trigger installed");
    let master = PostgresMaster::connect(url, table_name, "id").await?;
    let feed = PostgresLiveStream::connect(url, table_name, "id")?;
    let table = LiveTable::builder(Arc::new(master), "clients", Arc::new(MemCache::new()))
        .live_stream(Arc::new(feed.clone()))
        .build()?;
    // The subscription's gap, then the listener's first connect's.
    wait_for("the listener's first connect", || {
        table.stats().stream_gaps >= 2
    })
    .await?;

    // 1. Cache vs Postgres.
    let (first, from_postgres) = timed(table.get("c-0007")).await;
    let (_, from_cache) = timed(table.get("c-0007")).await;
    first?;
    let stats = table.stats();
    println!(
        "1. get c-0007: {from_postgres:?} from Postgres, then {from_cache:?} from the cache \
         ({} master read, {} hit)",
        stats.master_reads, stats.hits
    );
    check(
        stats.hits >= 1,
        "the second read was not served by the cache",
    )?;

    // 2. An out-of-band change.
    let changed = Instant::now();
    admin
        .execute(
            &format!("UPDATE {table_name} SET visits = 1000 WHERE id = 'c-0007'"),
            &[],
        )
        .await?;
    until_visits(&table, "c-0007", 1000).await?;
    println!(
        "2. UPDATE through a second connection reached reads after {:?}",
        changed.elapsed()
    );

    // 3. The listener's backend killed; a change while it is away.
    let connections = feed.stats().connections;
    let gaps = table.stats().stream_gaps;
    let killed = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&LISTENER_APPLICATION_NAME],
        )
        .await?;
    check(!killed.is_empty(), "no listener backend to terminate")?;
    admin
        .execute(
            &format!("UPDATE {table_name} SET visits = 2000 WHERE id = 'c-0007'"),
            &[],
        )
        .await?;
    println!(
        "3. listener backend terminated; c-0007 changed while it was away (its notice is lost)"
    );
    wait_for("the listener to reconnect", || {
        feed.stats().connections > connections
    })
    .await?;
    wait_for("the gap to reach the table", || {
        table.stats().stream_gaps > gaps
    })
    .await?;
    let visits = visits(&table, "c-0007").await?;
    println!(
        "   listener back ({} connections); the gap invalidated the table; c-0007 reads visits = {visits}",
        feed.stats().connections
    );
    check(
        visits == 2000,
        "the change made during the outage was served stale",
    )?;
    println!("ok: every step happened");
    Ok(())
}

async fn connect(url: &str) -> DemoResult<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

async fn timed<T>(call: impl std::future::Future<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    let out = call.await;
    (out, started.elapsed())
}

async fn visits(table: &LiveTable, id: &str) -> DemoResult<i64> {
    let record = table.get(id).await?.ok_or(format!("{id} is gone"))?;
    match record.get("visits") {
        Some(Value::Integer(n)) => Ok(i64::try_from(*n)?),
        other => Err(format!("{id}: visits is {other:?}").into()),
    }
}

async fn until_visits(table: &LiveTable, id: &str, want: i64) -> DemoResult<()> {
    let deadline = Instant::now() + DEADLINE;
    while visits(table, id).await? != want {
        check(
            Instant::now() < deadline,
            "an out-of-band change did not reach reads",
        )?;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) -> DemoResult<()> {
    let deadline = Instant::now() + DEADLINE;
    while !done() {
        check(
            Instant::now() < deadline,
            &format!("timed out waiting for {what}"),
        )?;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

fn check(ok: bool, failure: &str) -> DemoResult<()> {
    if ok {
        Ok(())
    } else {
        Err(failure.to_owned().into())
    }
}
