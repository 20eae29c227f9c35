//! `PostgresMaster` against a real Postgres (issue 20): every mapped type round-trips; CRUD
//! through a LiveTable with the cache checked after each write; what the database fills in
//! comes back; SQL injection attempts in ids, values and names change nothing they should not;
//! a type it cannot map and an unknown field are refused by name; with the database down,
//! cached rows are still served and uncached reads fail with a typed error in bounded time.
#![cfg(feature = "postgres")]

mod common;
#[path = "common/postgres_server.rs"]
mod postgres_server;

use std::sync::Arc;
use std::time::Duration;

use postgres_server::PostgresServer;
use vlive::{Cache, Error, LiveTable, Master, MemCache, Page, PostgresMaster, Record, Value};

fn record(fields: &[(&str, Value)]) -> Record {
    fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn text(t: &str) -> Value {
    Value::Text(t.to_owned())
}

fn int(n: i64) -> Value {
    Value::Integer(n.into())
}

const EVERY_TYPE: &str = "CREATE TABLE every_type (
    id bigint PRIMARY KEY,
    small smallint, normal integer, big bigint,
    single real, double double precision, exact numeric(30, 10),
    name text, code varchar(8), fixed char(3),
    flag boolean,
    day date, at timestamp, at_utc timestamptz, clock time, span interval,
    uid uuid, doc jsonb, raw json, blob bytea,
    tags text[], scores integer[],
    created timestamptz NOT NULL DEFAULT now()
)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mapped_type_round_trips() {
    let server = PostgresServer::start();
    server
        .client()
        .await
        .batch_execute(EVERY_TYPE)
        .await
        .unwrap();
    let master = PostgresMaster::connect(&server.url(), "every_type", "id")
        .await
        .unwrap();
    let doc = Value::Map(vec![
        (text("a"), int(1)),
        (
            text("b"),
            Value::Array(vec![Value::Bool(true), Value::Null]),
        ),
    ]);
    let full = record(&[
        ("small", int(-32768)),
        ("normal", int(2_147_483_647)),
        ("big", int(-9_223_372_036_854_775_808)),
        ("single", Value::Float(1.5)),
        ("double", Value::Float(0.1)),
        ("exact", text("12345678901234567890.0123456789")),
        ("name", text("Zoë \"quoted\" 'single' \\ back")),
        ("code", text("ab")),
        ("fixed", text("xyz")),
        ("flag", Value::Bool(true)),
        ("day", text("2026-12-05")),
        ("at", text("2026-12-05 10:11:12.123456")),
        (
            "at_utc",
            Value::Tag(0, Box::new(text("2026-12-05T10:11:12.123456Z"))),
        ),
        ("clock", text("23:59:59")),
        ("span", text("1 day 02:00:00")),
        ("uid", text("0b2d1c7e-9a4f-4c3e-8f7a-2b1c0d9e8f7a")),
        ("doc", doc.clone()),
        ("raw", Value::Array(vec![int(1), text("two")])),
        ("blob", Value::Bytes(vec![0, 1, 2, 0xfe, 0xff])),
        (
            "tags",
            Value::Array(vec![text("a,b"), text("{c}"), Value::Null, text("\"d\"")]),
        ),
        ("scores", Value::Array(vec![int(1), int(-2)])),
    ]);
    let stored = master.insert("1", full.clone()).await.unwrap();
    for (field, value) in &full {
        assert_eq!(stored.get(field), Some(value), "{field} as stored");
    }
    assert!(
        matches!(stored.get("created"), Some(Value::Tag(0, _))),
        "the database's default comes back: {:?}",
        stored.get("created")
    );
    let read = master.get("1").await.unwrap().unwrap();
    assert_eq!(read, stored, "a get reads what the insert returned");
    assert_eq!(read.get("id"), Some(&int(1)));

    // NULLs and special floats.
    let nulls = master
        .insert(
            "2",
            record(&[
                ("name", Value::Null),
                ("double", Value::Float(f64::INFINITY)),
                ("single", Value::Float(f64::NEG_INFINITY)),
            ]),
        )
        .await
        .unwrap();
    assert_eq!(nulls.get("name"), Some(&Value::Null));
    assert_eq!(nulls.get("blob"), Some(&Value::Null));
    assert_eq!(nulls.get("double"), Some(&Value::Float(f64::INFINITY)));
    assert_eq!(nulls.get("single"), Some(&Value::Float(f64::NEG_INFINITY)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn types_and_fields_it_cannot_map_are_refused_by_name() {
    let server = PostgresServer::start();
    let setup = server.client().await;
    setup
        .batch_execute(
            "CREATE TABLE shapes (id text PRIMARY KEY, at point);
             CREATE TABLE people (id text PRIMARY KEY, age integer, born date)",
        )
        .await
        .unwrap();
    let refused = PostgresMaster::connect(&server.url(), "shapes", "id").await;
    match refused {
        Err(Error::InvalidConfig { reason }) => {
            assert!(
                reason.contains("\"at\"") && reason.contains("point"),
                "{reason}"
            )
        }
        other => panic!("a point column: {other:?}"),
    }
    for (table, id) in [
        ("nope", "id"),
        ("people", "nope"),
        ("people; drop table people", "id"),
        ("people", "id\""),
    ] {
        let refused = PostgresMaster::connect(&server.url(), table, id).await;
        assert!(
            matches!(refused, Err(Error::InvalidConfig { .. })),
            "{table}/{id}: {refused:?}"
        );
    }
    let master = PostgresMaster::connect(&server.url(), "people", "id")
        .await
        .unwrap();
    let unknown = master.insert("a", record(&[("agee", int(3))])).await;
    assert!(
        matches!(&unknown, Err(Error::InvalidArgument { reason }) if reason.contains("agee")),
        "{unknown:?}"
    );
    let wrong = master.insert("a", record(&[("age", text("three"))])).await;
    assert!(
        matches!(&wrong, Err(Error::InvalidArgument { reason }) if reason.contains("\"age\"")),
        "{wrong:?}"
    );
    let bad_date = master
        .insert("a", record(&[("born", text("yesterday-ish"))]))
        .await;
    assert!(matches!(bad_date, Err(Error::Master(_))), "{bad_date:?}");
    assert_eq!(master.get("a").await.unwrap(), None, "nothing was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injection_attempts_are_only_data() {
    let server = PostgresServer::start();
    let setup = server.client().await;
    setup
        .batch_execute("CREATE TABLE notes (id text PRIMARY KEY, body text)")
        .await
        .unwrap();
    let master = PostgresMaster::connect(&server.url(), "notes", "id")
        .await
        .unwrap();
    let evil = [
        "x'; DROP TABLE notes; --",
        "x\"; DELETE FROM notes; --",
        "1 OR 1=1",
        "$1",
        "\\x00",
    ];
    for (n, attempt) in evil.iter().enumerate() {
        master
            .insert(attempt, record(&[("body", text(attempt))]))
            .await
            .unwrap();
        let read = master.get(attempt).await.unwrap().unwrap();
        assert_eq!(read.get("body"), Some(&text(attempt)));
        let count: i64 = setup
            .query_one("SELECT count(*) FROM notes", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(count, n as i64 + 1, "after {attempt:?}");
    }
    assert_eq!(master.get("1' OR '1'='1").await.unwrap(), None);
    master.delete("1 OR 1=1").await.unwrap();
    let count: i64 = setup
        .query_one("SELECT count(*) FROM notes", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, evil.len() as i64 - 1, "one row deleted, not all");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crud_through_a_live_table_keeps_the_cache_right() {
    let server = PostgresServer::start();
    let setup = server.client().await;
    setup
        .batch_execute(
            "CREATE TABLE clients (id integer PRIMARY KEY, name text NOT NULL, \
             tier text NOT NULL DEFAULT 'basic', updated int NOT NULL DEFAULT 0);
             CREATE FUNCTION bump() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN NEW.updated := OLD.updated + 1; RETURN NEW; END $$;
             CREATE TRIGGER bump BEFORE UPDATE ON clients FOR EACH ROW EXECUTE FUNCTION bump();",
        )
        .await
        .unwrap();
    let master = Arc::new(
        PostgresMaster::connect(&server.url(), "clients", "id")
            .await
            .unwrap(),
    );
    let cache = Arc::new(MemCache::new());
    let table = LiveTable::new(master.clone(), "clients", cache.clone()).unwrap();

    for i in 1..=5 {
        let stored = table
            .insert(
                &i.to_string(),
                record(&[("name", text(&format!("client {i}")))]),
            )
            .await
            .unwrap();
        assert_eq!(
            stored.get("tier"),
            Some(&text("basic")),
            "the default comes back"
        );
    }
    let page = table.list(Page::first(3)).await.unwrap();
    let ids: Vec<&str> = page.keys().map(String::as_str).collect();
    assert_eq!(ids, ["1", "2", "3"], "ordered by id");
    let page_key = table.page_key(Page::first(3));
    assert!(
        cache.get(&page_key).await.unwrap().is_some(),
        "the page was cached"
    );
    let one = table.get("2").await.unwrap().unwrap();
    assert_eq!(one.get("name"), Some(&text("client 2")));

    let patched = table
        .patch("2", record(&[("tier", text("gold"))]))
        .await
        .unwrap();
    assert_eq!(
        patched.get("updated"),
        Some(&int(1)),
        "the trigger's change comes back"
    );
    assert!(
        cache.get(&page_key).await.unwrap().is_none(),
        "a write invalidates"
    );
    assert_eq!(
        table.get("2").await.unwrap().unwrap().get("tier"),
        Some(&text("gold"))
    );

    let replaced = table
        .replace("3", record(&[("name", text("three"))]))
        .await
        .unwrap();
    assert_eq!(
        replaced.get("tier"),
        Some(&text("basic")),
        "replace resets to defaults"
    );
    table.delete("1").await.unwrap();
    assert!(table.get("1").await.unwrap().is_none());
    assert!(
        matches!(table.delete("1").await, Err(Error::Master(_))),
        "a missing row"
    );
    let page = table.list(Page::first(10)).await.unwrap();
    assert_eq!(page.len(), 4);
    table.delete_all().await.unwrap();
    assert!(table.list(Page::first(10)).await.unwrap().is_empty());
    assert!(
        table.get("x").await.unwrap().is_none(),
        "a non-integer id is simply absent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_database_down_cached_rows_are_served_and_misses_fail_typed() {
    let mut server = PostgresServer::start();
    server
        .client()
        .await
        .batch_execute(
            "CREATE TABLE items (id text PRIMARY KEY, n int);
             INSERT INTO items VALUES ('a', 1), ('b', 2)",
        )
        .await
        .unwrap();
    let master = Arc::new(
        PostgresMaster::connect(&server.url(), "items", "id")
            .await
            .unwrap(),
    );
    let table = LiveTable::builder(master, "items", Arc::new(MemCache::new()))
        .master_timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    assert_eq!(
        table.get("a").await.unwrap().unwrap().get("n"),
        Some(&int(1))
    );
    server.kill();
    assert_eq!(
        table.get("a").await.unwrap().unwrap().get("n"),
        Some(&int(1)),
        "cached rows are served with the database down"
    );
    let miss = common::within("an uncached read", table.get("b")).await;
    assert!(
        matches!(miss, Err(Error::Master(_) | Error::MasterTimeout { .. })),
        "{miss:?}"
    );
    server.restart();
    assert_eq!(
        table.get("b").await.unwrap().unwrap().get("n"),
        Some(&int(2)),
        "the master reconnects by itself"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_of_the_applications_own_serves_until_it_closes() {
    let server = PostgresServer::start();
    let setup = server.client().await;
    setup
        .batch_execute(
            "CREATE TABLE items (id text PRIMARY KEY, n int); INSERT INTO items VALUES ('a', 1)",
        )
        .await
        .unwrap();
    let (client, connection) = tokio_postgres::connect(&server.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    let driver = tokio::spawn(connection);
    let master = PostgresMaster::with_client(Arc::new(client), "items", "id")
        .await
        .unwrap();
    assert_eq!(
        master.get("a").await.unwrap().unwrap().get("n"),
        Some(&int(1))
    );
    driver.abort();
    let _ = driver.await;
    let closed = master.get("a").await;
    assert!(
        matches!(&closed, Err(Error::Master(e)) if e.to_string().contains("with_client")
            || e.to_string().contains("closed")),
        "{closed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_values_are_refused_or_kept_never_mangled() {
    let server = PostgresServer::start();
    let setup = server.client().await;
    setup
        .batch_execute(
            "CREATE TABLE edges (id uuid PRIMARY KEY, code varchar(5), at timestamptz, tag char(3));
             CREATE TABLE only_ids (id int PRIMARY KEY); INSERT INTO only_ids VALUES (1)",
        )
        .await
        .unwrap();
    let master = PostgresMaster::connect(&server.url(), "edges", "id")
        .await
        .unwrap();
    let id = "0b2d1c7e-9a4f-4c3e-8f7a-2b1c0d9e8f7a";
    master
        .insert(
            id,
            record(&[("code", text("abc")), ("at", text("infinity"))]),
        )
        .await
        .unwrap();
    // Too long for char(3): an error, not a silent truncation.
    let long_tag = master.patch(id, record(&[("tag", text("abcd"))])).await;
    assert!(matches!(long_tag, Err(Error::Master(_))), "{long_tag:?}");
    // Too long for varchar(5): an error, not a silent truncation.
    let long = master
        .patch(id, record(&[("code", text("abcdefgh"))]))
        .await;
    assert!(matches!(long, Err(Error::Master(_))), "{long:?}");
    let read = master.get(id).await.unwrap().unwrap();
    assert_eq!(read.get("code"), Some(&text("abc")));
    assert_eq!(read.get("at"), Some(&text("infinity")), "infinity is kept");
    let bc = master
        .patch(id, record(&[("at", text("0044-03-15 12:00:00+00 BC"))]))
        .await
        .unwrap();
    assert!(
        matches!(bc.get("at"), Some(Value::Text(t)) if t.contains("BC")),
        "a BC date keeps its era: {:?}",
        bc.get("at")
    );
    assert_eq!(
        master.get("not-a-uuid").await.unwrap(),
        None,
        "a malformed id is absent"
    );

    let ids = PostgresMaster::connect(&server.url(), "only_ids", "id")
        .await
        .unwrap();
    assert_eq!(
        ids.replace("1", Record::new()).await.unwrap().get("id"),
        Some(&int(1))
    );
    assert_eq!(
        ids.get("99999999999").await.unwrap(),
        None,
        "out of int4's range"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_of_the_applications_is_asked_again_when_its_connection_closes() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let server = PostgresServer::start();
    let setup = server.client().await;
    setup
        .batch_execute(
            "CREATE TABLE items (id text PRIMARY KEY, n int); INSERT INTO items VALUES ('a', 1)",
        )
        .await
        .unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let url = server.url();
    let connector = {
        let calls = calls.clone();
        move || {
            calls.fetch_add(1, Ordering::SeqCst);
            let url = url.clone();
            async move {
                // Standing in for a pool: the application's own connection, marked so the
                // test can find its backend.
                let url = format!("{url}?application_name=app-pool");
                let (client, connection) =
                    tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
                tokio::spawn(connection);
                Ok::<_, tokio_postgres::Error>(Arc::new(client))
            }
        }
    };
    let master = PostgresMaster::with_connector(connector, "items", "id")
        .await
        .unwrap();
    assert_eq!(
        master.get("a").await.unwrap().unwrap().get("n"),
        Some(&int(1))
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    setup
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'app-pool'",
            &[],
        )
        .await
        .unwrap();
    // The first call after the kill may fail (its connection is gone); then the connector
    // is asked for a new one.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(row)) = master.get("a").await {
            assert_eq!(row.get("n"), Some(&int(1)));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never reconnected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2, "asked once more");
}
