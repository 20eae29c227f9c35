//! # LiveTable over Postgres: cached reads vs the same query, and change-to-read delay
//!
//! `cargo bench --features postgres --bench postgres` starts a throwaway Postgres (the tests'
//! harness), fills a table of 1,000 rows, and measures side by side in one run:
//! - `LiveTable get (cached)`: `LiveTable::get` of random ids over a `MemCache`, warmed, from
//!   8 tasks;
//! - `Postgres query`: the same row fetched with the same `SELECT … WHERE id = $1` the master
//!   sends (a prepared statement on one connection, pipelined by 8 tasks);
//! - the delay from an out-of-band UPDATE's commit (a second connection) to the first
//!   `LiveTable::get` that returns the new value, through the trigger, LISTEN/NOTIFY and the
//!   table's invalidation: percentiles over 200 changes.
//!
//! `VLIVE_BENCH_QUICK=1`, and `cargo test --benches` (CI's smoke run): 0.3 s rounds and 20
//! changes.

#[path = "common/mod.rs"]
#[allow(dead_code)] // each bench uses a part of the harness
mod common;
#[path = "../tests/common/postgres_server.rs"]
mod postgres_server;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{mode, number};
use vlive::{LiveTable, MemCache, PostgresLiveStream, PostgresMaster, Value};

const ROWS: u64 = 1000;
const TASKS: u64 = 8;

fn main() {
    let (round, changes) = if mode::quick() {
        (Duration::from_millis(300), 20)
    } else {
        (Duration::from_secs(2), 200)
    };
    let server = postgres_server::PostgresServer::start();
    mode::runtime(2).block_on(run(&server.url(), round, changes));
}

async fn run(url: &str, round: Duration, changes: usize) {
    let admin = connect(url).await;
    admin
        .batch_execute(&format!(
            "CREATE TABLE bench (id text PRIMARY KEY, name text NOT NULL, visits int NOT NULL,
               city text, updated timestamptz NOT NULL DEFAULT now());
             INSERT INTO bench (id, name, visits, city)
               SELECT 'c-' || g, 'client ' || g, g, 'city ' || (g % 17)
               FROM generate_series(1, {ROWS}) g"
        ))
        .await
        .unwrap();
    PostgresLiveStream::install(url, "bench", "id")
        .await
        .unwrap();
    let master = PostgresMaster::connect(url, "bench", "id").await.unwrap();
    let feed = PostgresLiveStream::connect(url, "bench", "id").unwrap();
    let table = LiveTable::builder(Arc::new(master), "bench", Arc::new(MemCache::new()))
        .live_stream(Arc::new(feed.clone()))
        .build()
        .unwrap();
    while table.stats().stream_gaps < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for i in 1..=ROWS {
        table.get(&format!("c-{i}")).await.unwrap();
    }

    println!("# LiveTable over Postgres ({ROWS} rows, {TASKS} tasks, 2 workers)\n");
    println!("| read | gets/s | vs Postgres |");
    println!("|---|---|---|");
    let direct = Arc::new(connect(url).await);
    let cached = rate(round, {
        let table = table.clone();
        move |id| {
            let table = table.clone();
            async move {
                table.get(&id).await.unwrap().unwrap();
            }
        }
    })
    .await;
    let statement = direct
        .prepare(
            "SELECT id::text, name::text, visits::text, city::text, \
             to_char(updated AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') \
             FROM bench WHERE id = $1::text::text",
        )
        .await
        .unwrap();
    let queried = rate(round, {
        let (direct, statement) = (direct.clone(), statement.clone());
        move |id| {
            let (direct, statement) = (direct.clone(), statement.clone());
            async move {
                direct.query_one(&statement, &[&id]).await.unwrap();
            }
        }
    })
    .await;
    println!(
        "| LiveTable get (cached) | {} | {:.0}x |",
        number::thousands(cached),
        cached / queried
    );
    println!("| Postgres query | {} | 1x |", number::thousands(queried));

    let mut delays = Vec::with_capacity(changes);
    for n in 0..changes {
        let id = format!("c-{}", n % ROWS as usize + 1);
        let visits = 1_000_000 + n as i64;
        table.get(&id).await.unwrap();
        admin
            .execute(
                "UPDATE bench SET visits = $1::text::int WHERE id = $2",
                &[&visits.to_string(), &id],
            )
            .await
            .unwrap();
        let committed = Instant::now();
        loop {
            let record = table.get(&id).await.unwrap().unwrap();
            if record.get("visits") == Some(&Value::Integer(visits.into())) {
                break;
            }
            assert!(
                committed.elapsed() < Duration::from_secs(10),
                "change {n} did not reach reads in 10 s: {:?}",
                feed.stats()
            );
            tokio::task::yield_now().await;
        }
        delays.push(committed.elapsed());
    }
    delays.sort();
    let at = |q: f64| delays[((delays.len() - 1) as f64 * q).round() as usize];
    println!(
        "\n# Change to read: UPDATE committed → a LiveTable get returns it ({changes} changes)\n"
    );
    println!("| p50 | p90 | p99 | max |");
    println!("|---|---|---|---|");
    println!(
        "| {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms |",
        ms(at(0.5)),
        ms(at(0.9)),
        ms(at(0.99)),
        ms(*delays.last().unwrap())
    );
}

/// Reads of random ids from [`TASKS`] tasks for `round`; reads per second.
async fn rate<F, Fut>(round: Duration, read: F) -> f64
where
    F: Fn(String) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let started = Instant::now();
    let done = common::tasks::fan_out(TASKS, |task| {
        let read = read.clone();
        async move {
            let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ task;
            let mut done = 0u64;
            while started.elapsed() < round {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                read(format!("c-{}", state % ROWS + 1)).await;
                done += 1;
            }
            done
        }
    });
    done.await.into_iter().sum::<u64>() as f64 / started.elapsed().as_secs_f64()
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
