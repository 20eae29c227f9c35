//! `live_demo`: LiveTable end to end, with no network.
//!
//! The "remote" master is a redb file (`<dir>/master.redb`) behind the `Master` trait, with an
//! artificial latency on every call (25 ms by default). The cache is a persistent `RedbCache`
//! in `<dir>/cache` (or `--cache mem`, `--cache none`, `--cache <folder>`).
//!
//! ```text
//! cargo run --release --example live_demo                 # the whole story, with a summary
//! cargo run --release --example live_demo -- seed --rows 200
//! cargo run --release --example live_demo -- list --page 2 --per-page 10
//! cargo run --release --example live_demo -- get c-0007
//! cargo run --release --example live_demo -- add c-0999 name=Ada city=London visits=3
//! cargo run --release --example live_demo -- event c-0007  # out-of-band change + live event
//! cargo run --release --example live_demo -- stats
//! ```
//!
//! State persists in `--dir` (default `./vlive-demo`) between runs; `--debug` prints the
//! table's tracing spans to stderr.

use std::error::Error as StdError;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use tokio::task::JoinSet;
use vlive::{
    Cache, Error, LiveEvent, LiveTable, ManualLiveStream, Master, MemCache, NoCache, Page, Record,
    RedbCache, RedbCacheStats, Rows, Value,
};

/// What the demo's errors look like: anything with a clear message.
type DemoResult<T> = Result<T, Box<dyn StdError + Send + Sync>>;

/// The cache key of the demo's one view: every client, in id order.
const VIEW: &str = "clients";

// ================================================================================================
// Command line
// ================================================================================================

/// LiveTable demo: a cached, write-through table over a slow embedded "remote" master.
///
/// With no subcommand, walks the whole story and prints a summary.
#[derive(Parser, Debug)]
#[command(name = "live_demo", version)]
struct Cli {
    /// Folder holding the demo's state: the master database and (by default) the cache.
    #[arg(
        long,
        global = true,
        default_value = "vlive-demo",
        value_name = "FOLDER"
    )]
    dir: PathBuf,

    /// The cache: `mem` (in memory), `none` (no caching), or a folder for a persistent
    /// RedbCache [default: <dir>/cache].
    #[arg(long, global = true, value_parser = parse_cache, value_name = "mem|none|FOLDER")]
    cache: Option<CacheChoice>,

    /// Artificial latency of every master call, in milliseconds (plays the network).
    #[arg(long, global = true, default_value_t = 25, value_name = "MS")]
    latency_ms: u64,

    /// Print LiveTable's tracing spans and events (debug level) to stderr.
    #[arg(long, global = true)]
    debug: bool,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Reset the master to ROWS sample clients (and invalidate the cache).
    Seed {
        /// How many clients.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        rows: u32,
    },
    /// Show a page of clients, read through the cache.
    List {
        /// Page number, from 1.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        page: u32,
        /// Clients per page.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
        per_page: u32,
    },
    /// Show one client, read through the cache.
    Get {
        /// The client's id, e.g. c-0007.
        id: String,
    },
    /// Add a client through the table's write queue: `add c-0999 name=Ada visits=3`.
    ///
    /// Values are integers, decimals, true/false, or else text.
    Add {
        /// The new client's id.
        id: String,
        /// Fields as key=value.
        #[arg(required = true, value_parser = parse_field, value_name = "KEY=VALUE")]
        fields: Vec<(String, Value)>,
    },
    /// Change the master behind the table's back, then deliver the live event that says so.
    ///
    /// With an ID: that client is edited directly in the master and an `Updated` event is
    /// sent. Without: a bare `Changed` event is sent.
    Event {
        /// The client to change out of band.
        id: Option<String>,
    },
    /// Show what is stored: master rows, and which pages and rows the cache holds.
    Stats,
}

#[derive(Clone, Debug)]
enum CacheChoice {
    Mem,
    None,
    Folder(PathBuf),
}

fn parse_cache(value: &str) -> Result<CacheChoice, String> {
    match value {
        "mem" => Ok(CacheChoice::Mem),
        "none" => Ok(CacheChoice::None),
        "" => Err("expected `mem`, `none` or a folder for a persistent cache".into()),
        folder => {
            let path = PathBuf::from(folder);
            if path.exists() && !path.is_dir() {
                return Err(format!(
                    "{folder:?} exists and is not a folder; expected `mem`, `none` or a folder \
                     for a persistent cache"
                ));
            }
            Ok(CacheChoice::Folder(path))
        }
    }
}

fn parse_field(arg: &str) -> Result<(String, Value), String> {
    let Some((key, raw)) = arg.split_once('=') else {
        return Err(format!("expected KEY=VALUE, got {arg:?}"));
    };
    let key = key.trim();
    if key.is_empty() {
        return Err(format!("the field name is empty in {arg:?}"));
    }
    Ok((key.to_owned(), parse_value(raw)))
}

fn parse_value(raw: &str) -> Value {
    if let Ok(n) = raw.parse::<i64>() {
        Value::Integer(n.into())
    } else if let Ok(x) = raw.parse::<f64>().map_err(drop).and_then(|x| {
        // "inf" and "NaN" parse as floats but are meant as text here.
        if x.is_finite() { Ok(x) } else { Err(()) }
    }) {
        Value::Float(x)
    } else if raw == "true" || raw == "false" {
        Value::Bool(raw == "true")
    } else {
        Value::Text(raw.to_owned())
    }
}

// ================================================================================================
// The master: a redb file with an artificial latency
// ================================================================================================

const CLIENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("clients");

/// The "remote" table: a redb database that sleeps `latency` before every call.
struct RedbMaster {
    db: Arc<Database>,
    path: PathBuf,
    latency: Duration,
    calls: AtomicU64,
}

/// What the demo master refuses or fails at.
#[derive(Debug)]
enum MasterError {
    NotFound(String),
    AlreadyExists(String),
    Storage(redb::Error),
    Decode(String),
    Crashed(String),
}

impl fmt::Display for MasterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MasterError::NotFound(id) => write!(f, "there is no client {id:?}"),
            MasterError::AlreadyExists(id) => {
                write!(f, "client {id:?} already exists (pick another id)")
            }
            MasterError::Storage(e) => write!(f, "master database error: {e}"),
            MasterError::Decode(e) => write!(f, "a stored client is unreadable: {e}"),
            MasterError::Crashed(e) => write!(f, "the master call crashed: {e}"),
        }
    }
}

impl StdError for MasterError {}

impl<E: Into<redb::Error>> From<E> for MasterError {
    fn from(e: E) -> Self {
        MasterError::Storage(e.into())
    }
}

fn encode(record: &Record) -> Vec<u8> {
    let mut bytes = Vec::new();
    ciborium::into_writer(record, &mut bytes).expect("a Record always encodes");
    bytes
}

fn decode(bytes: &[u8]) -> Result<Record, MasterError> {
    ciborium::from_reader(bytes).map_err(|e| MasterError::Decode(e.to_string()))
}

impl RedbMaster {
    fn open(dir: &Path, latency: Duration) -> DemoResult<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create the demo folder {}: {e}", dir.display()))?;
        let path = dir.join("master.redb");
        let db = Database::create(&path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => format!(
                "{} is in use by another live_demo process; wait for it or use --dir",
                path.display()
            ),
            other => format!("cannot open the master {}: {other}", path.display()),
        })?;
        let txn = db.begin_write()?;
        txn.open_table(CLIENTS)?;
        txn.commit()?;
        Ok(RedbMaster {
            db: Arc::new(db),
            path,
            latency,
            calls: AtomicU64::new(0),
        })
    }

    /// Master calls made so far (through the `Master` trait).
    fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// How many clients there are (a local peek, not a "remote" call).
    fn len(&self) -> DemoResult<u64> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(CLIENTS)?.len()?)
    }

    /// Every id, in order (a local peek).
    async fn ids(&self) -> DemoResult<Vec<String>> {
        // Local bookkeeping, not a "remote" call (no latency, not counted), but still database
        // I/O: on a blocking thread, like every other read of the master.
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || -> DemoResult<Vec<String>> {
            let txn = db.begin_read()?;
            let table = txn.open_table(CLIENTS)?;
            let mut ids = Vec::new();
            for entry in table.iter()? {
                ids.push(entry?.0.value().to_owned());
            }
            Ok(ids)
        })
        .await?
    }

    /// Replaces everything with `rows` in one transaction (one "remote" call).
    async fn reset(&self, rows: Rows) -> vlive::Result<()> {
        self.call(move |db| {
            let txn = db.begin_write()?;
            txn.delete_table(CLIENTS)?;
            {
                let mut table = txn.open_table(CLIENTS)?;
                for (id, record) in &rows {
                    table.insert(id.as_str(), encode(record).as_slice())?;
                }
            }
            txn.commit()?;
            Ok(())
        })
        .await
    }

    /// One "remote" call: the latency, then the database work on a blocking thread.
    async fn call<T, F>(&self, work: F) -> vlive::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, MasterError> + Send + 'static,
    {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.latency).await;
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || work(&db))
            .await
            .map_err(|e| Error::master(MasterError::Crashed(e.to_string())))?
            .map_err(Error::master)
    }

    /// Writes one row: `change` gets the current record (if any) and returns the new one.
    async fn write_row(
        &self,
        id: &str,
        change: impl FnOnce(Option<Record>) -> Result<Record, MasterError> + Send + 'static,
    ) -> vlive::Result<Record> {
        let id = id.to_owned();
        self.call(move |db| {
            let txn = db.begin_write()?;
            let stored = {
                let mut table = txn.open_table(CLIENTS)?;
                let current = match table.get(id.as_str())? {
                    Some(bytes) => Some(decode(bytes.value())?),
                    None => None,
                };
                let next = change(current)?;
                table.insert(id.as_str(), encode(&next).as_slice())?;
                next
            };
            txn.commit()?;
            Ok(stored)
        })
        .await
    }
}

#[async_trait]
impl Master for RedbMaster {
    async fn list(&self, page: Page) -> vlive::Result<Rows> {
        self.call(move |db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(CLIENTS)?;
            let mut rows = Rows::new();
            let wanted = table
                .iter()?
                .skip(page.offset() as usize)
                .take(page.per_page as usize);
            for entry in wanted {
                let (id, bytes) = entry?;
                rows.insert(id.value().to_owned(), decode(bytes.value())?);
            }
            Ok(rows)
        })
        .await
    }

    async fn get(&self, id: &str) -> vlive::Result<Option<Record>> {
        let id = id.to_owned();
        self.call(move |db| {
            let txn = db.begin_read()?;
            let table = txn.open_table(CLIENTS)?;
            match table.get(id.as_str())? {
                Some(bytes) => Ok(Some(decode(bytes.value())?)),
                None => Ok(None),
            }
        })
        .await
    }

    async fn insert(&self, id: &str, record: Record) -> vlive::Result<Record> {
        let owned = id.to_owned();
        self.write_row(id, move |current| match current {
            Some(_) => Err(MasterError::AlreadyExists(owned)),
            None => Ok(record),
        })
        .await
    }

    async fn replace(&self, id: &str, record: Record) -> vlive::Result<Record> {
        let owned = id.to_owned();
        self.write_row(id, move |current| match current {
            Some(_) => Ok(record),
            None => Err(MasterError::NotFound(owned)),
        })
        .await
    }

    async fn patch(&self, id: &str, partial: Record) -> vlive::Result<Record> {
        let owned = id.to_owned();
        self.write_row(id, move |current| {
            let mut record = current.ok_or(MasterError::NotFound(owned))?;
            record.extend(partial);
            Ok(record)
        })
        .await
    }

    async fn delete(&self, id: &str) -> vlive::Result<()> {
        let id = id.to_owned();
        self.call(move |db| {
            let txn = db.begin_write()?;
            let removed = txn.open_table(CLIENTS)?.remove(id.as_str())?.is_some();
            if !removed {
                return Err(MasterError::NotFound(id));
            }
            txn.commit()?;
            Ok(())
        })
        .await
    }

    async fn delete_all(&self) -> vlive::Result<()> {
        self.reset(Rows::new()).await
    }
}

/// Sample clients `c-0001…`, the same every time.
fn sample_clients(count: u32) -> Rows {
    const NAMES: [&str; 12] = [
        "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "John", "Margaret",
        "Dennis", "Radia", "Ken",
    ];
    const CITIES: [&str; 7] = ["London", "Paris", "Lagos", "Lima", "Osaka", "Oslo", "Pune"];
    (1..=count)
        .map(|i| {
            let n = i as usize;
            let mut record = Record::new();
            record.insert("name".into(), Value::Text(NAMES[n % NAMES.len()].into()));
            record.insert("city".into(), Value::Text(CITIES[n % CITIES.len()].into()));
            record.insert("visits".into(), Value::Integer((n as u64 * 7 % 50).into()));
            (client_id(i), record)
        })
        .collect()
}

fn client_id(i: u32) -> String {
    format!("c-{i:04}")
}

// ================================================================================================
// The cache choice, and the demo's context
// ================================================================================================

/// The cache behind the table, kept concretely for its statistics and for close/reopen.
enum DemoCache {
    Redb(RedbCache),
    Mem(MemCache),
    None,
}

impl DemoCache {
    fn open(choice: &CacheChoice) -> DemoResult<Self> {
        Ok(match choice {
            CacheChoice::Mem => DemoCache::Mem(MemCache::new()),
            CacheChoice::None => DemoCache::None,
            CacheChoice::Folder(folder) => DemoCache::Redb(RedbCache::open(folder)?),
        })
    }

    fn shared(&self) -> Arc<dyn Cache> {
        match self {
            DemoCache::Redb(cache) => Arc::new(cache.clone()),
            DemoCache::Mem(cache) => Arc::new(cache.clone()),
            DemoCache::None => Arc::new(NoCache),
        }
    }

    fn describe(&self) -> String {
        match self {
            DemoCache::Redb(cache) => format!("RedbCache in {}", cache.folder().display()),
            DemoCache::Mem(_) => "MemCache (in memory, gone when the process exits)".into(),
            DemoCache::None => "NoCache (caching off: every read goes to the master)".into(),
        }
    }

    fn stats(&self) -> Option<RedbCacheStats> {
        match self {
            DemoCache::Redb(cache) => Some(cache.stats()),
            _ => None,
        }
    }

    /// Closes the cache; the returned value is what "reopening" gives.
    async fn close_and_reopen(self, choice: &CacheChoice) -> DemoResult<Self> {
        match self {
            DemoCache::Redb(cache) => {
                cache.close().await?;
                DemoCache::open(choice)
            }
            // A memory cache does not survive its process: reopening starts empty.
            DemoCache::Mem(_) => Ok(DemoCache::Mem(MemCache::new())),
            DemoCache::None => Ok(DemoCache::None),
        }
    }

    async fn close(self) -> DemoResult<()> {
        if let DemoCache::Redb(cache) = self {
            cache.close().await?;
        }
        Ok(())
    }
}

/// Everything a subcommand needs.
struct Demo {
    master: Arc<RedbMaster>,
    cache: DemoCache,
    choice: CacheChoice,
    events: Arc<ManualLiveStream>,
    table: LiveTable,
}

impl Demo {
    fn open(cli: &Cli) -> DemoResult<Self> {
        let master = Arc::new(RedbMaster::open(
            &cli.dir,
            Duration::from_millis(cli.latency_ms),
        )?);
        let choice = cli
            .cache
            .clone()
            .unwrap_or_else(|| CacheChoice::Folder(cli.dir.join("cache")));
        let cache = DemoCache::open(&choice)?;
        let events = Arc::new(ManualLiveStream::new());
        let table = Self::table(&master, &cache, &events);
        Ok(Demo {
            master,
            cache,
            choice,
            events,
            table,
        })
    }

    fn table(
        master: &Arc<RedbMaster>,
        cache: &DemoCache,
        events: &Arc<ManualLiveStream>,
    ) -> LiveTable {
        LiveTable::new(master.clone(), VIEW, cache.shared()).with_live_stream(events.clone())
    }

    async fn close(self) -> DemoResult<()> {
        drop(self.table);
        self.cache.close().await
    }

    /// Sends `event` and waits until the table's consumer has invalidated for it.
    async fn deliver(&self, event: LiveEvent) -> DemoResult<()> {
        let before = self.table.stats().invalidations;
        self.events.push(event);
        let waited = tokio::time::timeout(Duration::from_secs(10), async {
            while self.table.stats().invalidations == before {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await;
        waited.map_err(|_| "the live event was not processed within 10 s".into())
    }
}

// ================================================================================================
// Output helpers
// ================================================================================================

fn show_value(value: &Value) -> String {
    match value {
        Value::Text(text) => text.clone(),
        Value::Integer(n) => i128::from(*n).to_string(),
        Value::Float(x) => x.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        other => format!("{other:?}"),
    }
}

/// Prints rows as a table: an `id` column, then every field name in first-seen order.
fn print_rows(rows: &Rows) {
    let mut columns: Vec<&str> = Vec::new();
    for record in rows.values() {
        for field in record.keys() {
            if !columns.contains(&field.as_str()) {
                columns.push(field);
            }
        }
    }
    let mut lines = vec![
        std::iter::once("id".to_string())
            .chain(columns.iter().map(|c| c.to_string()))
            .collect::<Vec<_>>(),
    ];
    for (id, record) in rows {
        let mut line = vec![id.clone()];
        line.extend(
            columns
                .iter()
                .map(|c| record.get(*c).map(show_value).unwrap_or_default()),
        );
        lines.push(line);
    }
    print_table(&lines);
}

/// Prints a grid with a header rule; the first line is the header.
fn print_table(lines: &[Vec<String>]) {
    let columns = lines.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            lines
                .iter()
                .filter_map(|l| l.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for (n, line) in lines.iter().enumerate() {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("  {}", cells.join("  ").trim_end());
        if n == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "─".repeat(*w)).collect();
            println!("  {}", rule.join("  "));
        }
    }
}

fn ms(duration: Duration) -> String {
    let ms = duration.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.2} s", duration.as_secs_f64())
    }
}

/// Runs a read and reports whether the cache answered it.
async fn timed_read<T>(
    demo: &Demo,
    read: impl std::future::Future<Output = vlive::Result<T>>,
) -> DemoResult<(T, Duration, &'static str, u64)> {
    let before = demo.table.stats();
    let calls = demo.master.calls();
    let start = Instant::now();
    let value = read.await?;
    let elapsed = start.elapsed();
    let after = demo.table.stats();
    let outcome = if after.hits > before.hits {
        "hit"
    } else {
        "miss"
    };
    Ok((value, elapsed, outcome, demo.master.calls() - calls))
}

// ================================================================================================
// Subcommands
// ================================================================================================

async fn seed(demo: &Demo, rows: u32) -> DemoResult<()> {
    demo.master.reset(sample_clients(rows)).await?;
    demo.table.invalidate().await?;
    println!(
        "Seeded {rows} clients ({} … {}) into {}; cache key {VIEW:?} invalidated.",
        client_id(1),
        client_id(rows),
        demo.master_path()
    );
    Ok(())
}

async fn list(demo: &Demo, page: Page) -> DemoResult<()> {
    let (rows, elapsed, outcome, _) = timed_read(demo, demo.table.list(page)).await?;
    let total = demo.master.len()?;
    let pages = total.div_ceil(u64::from(page.per_page)).max(1);
    if rows.is_empty() {
        if total == 0 {
            return Err("the master is empty; run `seed` first".into());
        }
        return Err(format!(
            "page {} is past the end: the master has {total} clients, {pages} pages of {}",
            page.number, page.per_page
        )
        .into());
    }
    println!(
        "Page {} of {pages} ({} per page) — cache {outcome}, {}",
        page.number,
        page.per_page,
        ms(elapsed)
    );
    print_rows(&rows);
    Ok(())
}

async fn get(demo: &Demo, id: &str) -> DemoResult<()> {
    let (found, elapsed, outcome, _) = timed_read(demo, demo.table.get(id)).await?;
    let Some(record) = found else {
        return Err(unknown_client(demo, id).await);
    };
    println!("Client {id} — cache {outcome}, {}", ms(elapsed));
    print_rows(&Rows::from([(id.to_owned(), record)]));
    Ok(())
}

async fn unknown_client(demo: &Demo, id: &str) -> Box<dyn StdError + Send + Sync> {
    let hint = match demo.master.ids().await {
        Ok(ids) if ids.is_empty() => "the master is empty; run `seed` first".to_string(),
        Ok(ids) => format!(
            "ids run from {} to {}",
            ids.first().unwrap(),
            ids.last().unwrap()
        ),
        Err(_) => "try `list`".to_string(),
    };
    format!("there is no client {id:?} ({hint})").into()
}

async fn add(demo: &Demo, id: &str, fields: Vec<(String, Value)>) -> DemoResult<()> {
    let record: Record = fields.into_iter().collect();
    let start = Instant::now();
    let stored = demo.table.insert(id, record).await?;
    println!(
        "Added {id} through the write queue in {} (cache key {VIEW:?} invalidated).",
        ms(start.elapsed())
    );
    print_rows(&Rows::from([(id.to_owned(), stored)]));
    Ok(())
}

async fn event(demo: &Demo, id: Option<&str>) -> DemoResult<()> {
    let Some(id) = id else {
        demo.deliver(LiveEvent::Changed).await?;
        println!("Delivered a `Changed` event: cache key {VIEW:?} invalidated.");
        return Ok(());
    };
    let Some(before) = demo.table.get(id).await? else {
        return Err(unknown_client(demo, id).await);
    };
    let edits = out_of_band_edit(&before);
    // Straight to the master, bypassing the table: the cache cannot know.
    demo.master.patch(id, edits).await?;
    let (stale, _, outcome, _) = timed_read(demo, demo.table.get(id)).await?;
    println!(
        "Changed {id} in the master directly. Reading through the table before the event: \
         cache {outcome}, visits = {}",
        field(&stale, "visits")
    );
    demo.deliver(LiveEvent::Updated { id: id.to_owned() })
        .await?;
    let (fresh, elapsed, outcome, _) = timed_read(demo, demo.table.get(id)).await?;
    println!(
        "Delivered `Updated {{ id: {id:?} }}`; the next read: cache {outcome}, {}, visits = {}",
        ms(elapsed),
        field(&fresh, "visits")
    );
    Ok(())
}

/// The out-of-band change the demo makes: one more visit, and a note of where it came from.
fn out_of_band_edit(current: &Record) -> Record {
    let visits = match current.get("visits") {
        Some(Value::Integer(n)) => i128::from(*n) + 1,
        _ => 1,
    };
    Record::from([
        ("visits".to_string(), Value::Integer((visits as i64).into())),
        (
            "note".to_string(),
            Value::Text("changed out of band".into()),
        ),
    ])
}

fn field(record: &Option<vlive::Record>, name: &str) -> String {
    record
        .as_ref()
        .and_then(|r| r.get(name))
        .map(show_value)
        .unwrap_or_else(|| "-".into())
}

async fn stats(demo: &Demo) -> DemoResult<()> {
    let ids = demo.master.ids().await?;
    let master_size = std::fs::metadata(demo.master_path()).map_or(0, |m| m.len());
    println!(
        "Master: {} clients in {} ({} KiB), {} ms per call",
        ids.len(),
        demo.master_path(),
        master_size / 1024,
        demo.master.latency.as_millis()
    );
    println!("Cache:  {}", demo.cache.describe());
    if let DemoCache::Redb(cache) = &demo.cache {
        let file = cache.folder().join(vlive::DB_FILE_NAME);
        let size = std::fs::metadata(&file).map_or(0, |m| m.len());
        println!("        {} ({} KiB)", file.display(), size / 1024);
    }
    let cache = demo.cache.shared();
    let per_page = 10;
    let pages = (ids.len() as u32).div_ceil(per_page).max(1);
    let mut lines = vec![vec!["view entry".into(), "cached".into(), "age".into()]];
    for number in 1..=pages {
        let key = demo.table.page_key(Page::new(number, per_page));
        lines.push(cache_line(cache.as_ref(), key).await?);
    }
    let mut rows_cached = 0;
    for id in &ids {
        if cache.get(&demo.table.id_key(id)).await?.is_some() {
            rows_cached += 1;
        }
    }
    println!("Pages of {per_page} under cache key {VIEW:?}:");
    print_table(&lines);
    println!("Rows cached by id: {rows_cached} of {}", ids.len());
    Ok(())
}

async fn cache_line(cache: &dyn Cache, key: String) -> DemoResult<Vec<String>> {
    Ok(match cache.get(&key).await? {
        Some(cached) => {
            let age = cached.fetched_at.elapsed().unwrap_or_default();
            vec![
                key,
                format!("yes ({} rows)", cached.rows.len()),
                format!("{:.1} s", age.as_secs_f64()),
            ]
        }
        None => vec![key, "no".into(), "-".into()],
    })
}

impl Demo {
    fn master_path(&self) -> String {
        self.master.path.display().to_string()
    }
}

// ================================================================================================
// The whole story
// ================================================================================================

/// One line of the closing summary.
struct Step {
    step: &'static str,
    what: String,
    time: String,
    master_calls: u64,
}

async fn story(cli: &Cli) -> DemoResult<()> {
    let mut demo = Demo::open(cli)?;
    let mut summary: Vec<Step> = Vec::new();
    let page = Page::first(10);
    println!("vlive live_demo");
    println!(
        "  master: {} (redb, {} ms per call)",
        demo.master_path(),
        cli.latency_ms
    );
    println!("  cache:  {}", demo.cache.describe());
    println!("  view:   cache key {VIEW:?}, {page}");
    println!();

    // 1. Seed.
    let calls = demo.master.calls();
    let start = Instant::now();
    let rows = 100;
    demo.master.reset(sample_clients(rows)).await?;
    demo.table.invalidate().await?;
    println!("1. Seeded {rows} clients into the master; invalidated the view.");
    summary.push(Step {
        step: "seed",
        what: format!("{rows} clients written to the master"),
        time: ms(start.elapsed()),
        master_calls: demo.master.calls() - calls,
    });

    // 2. Cold list.
    let (rows_read, cold, outcome, calls) = timed_read(&demo, demo.table.list(page)).await?;
    println!(
        "2. Cold list of page 1: cache {outcome}, read the master, {} rows in {}.",
        rows_read.len(),
        ms(cold)
    );
    summary.push(Step {
        step: "cold list",
        what: format!("page 1: {outcome} → master → filled"),
        time: ms(cold),
        master_calls: calls,
    });

    // 3. Warm list.
    let (_, warm, outcome, calls) = timed_read(&demo, demo.table.list(page)).await?;
    let speedup = cold.as_secs_f64() / warm.as_secs_f64().max(1e-9);
    let gain = if outcome == "hit" {
        format!("{speedup:.0}× faster than the master")
    } else {
        "no cache to answer it".to_string()
    };
    println!(
        "3. Warm list of page 1: cache {outcome} in {} — {gain}.",
        ms(warm)
    );
    print_rows(&rows_read);
    summary.push(Step {
        step: "warm list",
        what: format!("page 1: {outcome} ({gain})"),
        time: ms(warm),
        master_calls: calls,
    });

    // 4. A burst of concurrent writes through the queue, then every writer reads its row back.
    let writers: u32 = 100;
    println!(
        "4. Burst: {writers} concurrent clients each patch their row through the table's write \
         queue, then all read their row back at once."
    );
    let calls = demo.master.calls();
    let cache_at_start = demo.cache.stats();
    let table_at_start = demo.table.stats();
    let bar = ProgressBar::new(u64::from(writers));
    bar.set_style(
        ProgressStyle::with_template("   {bar:40.cyan/blue} {pos:>3}/{len} writes  {elapsed}")?
            .progress_chars("█▉▊▋▌▍▎▏ "),
    );
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for i in 1..=writers {
        let table = demo.table.clone();
        let bar = bar.clone();
        tasks.spawn(async move {
            let patch = Record::from([
                ("plan".to_string(), Value::Text("pro".into())),
                ("burst".to_string(), Value::Integer(i.into())),
            ]);
            table.patch(&client_id(i), patch).await?;
            bar.inc(1);
            Ok::<(), Error>(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined??;
    }
    let writing = start.elapsed();
    bar.finish_and_clear();
    let cache_after_writes = demo.cache.stats();
    let table_after_writes = demo.table.stats();
    println!(
        "   Writes: {writers} in {} — applied one at a time in queue order ({} ms each at the \
         master), each invalidating the view before its caller resumed ({} invalidations).",
        ms(writing),
        cli.latency_ms,
        table_after_writes.invalidations - table_at_start.invalidations
    );

    // Read-your-writes: every write resolved after its invalidation, so each read sees it.
    let start = Instant::now();
    for i in 1..=writers {
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
    while let Some(joined) = tasks.join_next().await {
        joined??;
    }
    let reading = start.elapsed();
    let table_after_reads = demo.table.stats();
    println!(
        "   Read-back: {writers}/{writers} saw their own write, in {} ({} master reads in \
         parallel, {} fills stored, {} rejected as stale).",
        ms(reading),
        table_after_reads.master_reads - table_after_writes.master_reads,
        table_after_reads.fills - table_after_writes.fills,
        table_after_reads.rejected_stale - table_after_writes.rejected_stale
    );
    let batching = match (cache_at_start, cache_after_writes, demo.cache.stats()) {
        (Some(start), Some(writes), Some(reads)) => {
            let phase = |from: &RedbCacheStats, to: &RedbCacheStats| {
                let ops = to.batched_ops - from.batched_ops;
                let batches = to.batches - from.batches;
                (ops, batches, ops as f64 / batches.max(1) as f64)
            };
            let (w_ops, w_batches, _) = phase(&start, &writes);
            let (r_ops, r_batches, r_mean) = phase(&writes, &reads);
            println!(
                "   Cache actor: the writes' {w_ops} commands took {w_batches} commits (the queue \
                 sends one invalidation at a time); the read-back's {r_ops} commands took \
                 {r_batches} batches (mean {r_mean:.1}, largest so far {}): group commit.",
                reads.max_batch_ops
            );
            format!("; read-back batches: mean {r_mean:.1}")
        }
        _ => String::new(),
    };
    summary.push(Step {
        step: "write burst",
        what: format!("{writers} queued writes, {writers} read back{batching}"),
        time: format!("{} + {}", ms(writing), ms(reading)),
        master_calls: demo.master.calls() - calls,
    });

    // 5. An out-of-band change, announced by a live event.
    let id = client_id(7);
    let calls = demo.master.calls();
    demo.table.get(&id).await?; // make sure the row is cached
    let edits = out_of_band_edit(&demo.table.get(&id).await?.unwrap_or_default());
    let new_visits = show_value(&edits["visits"]);
    demo.master.patch(&id, edits).await?;
    let (stale, _, stale_outcome, _) = timed_read(&demo, demo.table.get(&id)).await?;
    let staleness = if field(&stale, "visits") == new_visits {
        "already fresh: nothing was cached"
    } else {
        "stale, and the cache cannot know"
    };
    println!(
        "5. Out of band: {id}.visits set to {new_visits} in the master directly. Read through \
         the table: cache {stale_outcome}, visits = {} ({staleness}).",
        field(&stale, "visits")
    );
    demo.deliver(LiveEvent::Updated { id: id.clone() }).await?;
    let (fresh, elapsed, outcome, _) = timed_read(&demo, demo.table.get(&id)).await?;
    println!(
        "   Live event `Updated {{ id: {id:?} }}` → view invalidated. Fresh read: cache \
         {outcome}, visits = {} in {}.",
        field(&fresh, "visits"),
        ms(elapsed)
    );
    if field(&fresh, "visits") != new_visits {
        return Err("the fresh read did not see the out-of-band change".into());
    }
    summary.push(Step {
        step: "live event",
        what: format!(
            "before the event {stale_outcome} (visits {}), after {outcome} (visits {})",
            field(&stale, "visits"),
            field(&fresh, "visits")
        ),
        time: ms(elapsed),
        master_calls: demo.master.calls() - calls,
    });

    // 6. Fresh list, then close everything and reopen: the cache answers from disk.
    let (_, elapsed, outcome, calls) = timed_read(&demo, demo.table.list(page)).await?;
    println!(
        "6. Fresh list of page 1 after the writes: cache {outcome}, {}.",
        ms(elapsed)
    );
    summary.push(Step {
        step: "fresh list",
        what: format!("page 1: {outcome} → master → filled"),
        time: ms(elapsed),
        master_calls: calls,
    });

    drop(demo.table);
    demo.cache = demo.cache.close_and_reopen(&demo.choice).await?;
    demo.table = Demo::table(&demo.master, &demo.cache, &demo.events);
    let (_, elapsed, outcome, calls) = timed_read(&demo, demo.table.list(page)).await?;
    let note = match (&demo.cache, outcome) {
        (DemoCache::Redb(_), "hit") => "warm from disk",
        (DemoCache::Redb(_), _) => "not in the reopened cache",
        (DemoCache::Mem(_), _) => "a memory cache does not survive a restart",
        (DemoCache::None, _) => "no cache",
    };
    println!(
        "7. Closed the cache and reopened it: page 1 is a cache {outcome} ({note}), {}.",
        ms(elapsed)
    );
    summary.push(Step {
        step: "reopen",
        what: format!("page 1: {outcome} ({note})"),
        time: ms(elapsed),
        master_calls: calls,
    });

    demo.close().await?;

    println!();
    println!("Summary");
    let mut lines = vec![vec![
        "step".to_string(),
        "what happened".to_string(),
        "time".to_string(),
        "master calls".to_string(),
    ]];
    for step in summary {
        lines.push(vec![
            step.step.into(),
            step.what,
            step.time,
            step.master_calls.to_string(),
        ]);
    }
    print_table(&lines);
    println!();
    println!(
        "The state is kept in {}: try `live_demo list`, `get {id}`, `event {id}`, `stats`.",
        cli.dir.display()
    );
    Ok(())
}

// ================================================================================================
// main
// ================================================================================================

async fn run(cli: Cli) -> DemoResult<()> {
    let Some(command) = &cli.command else {
        return story(&cli).await;
    };
    let demo = Demo::open(&cli)?;
    let result = match command {
        Command::Seed { rows } => seed(&demo, *rows).await,
        Command::List { page, per_page } => list(&demo, Page::new(*page, *per_page)).await,
        Command::Get { id } => get(&demo, id).await,
        Command::Add { id, fields } => add(&demo, id, fields.clone()).await,
        Command::Event { id } => event(&demo, id.as_deref()).await,
        Command::Stats => stats(&demo).await,
    };
    // Close cleanly even after an error, then report the first failure.
    let closed = demo.close().await;
    result.and(closed)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.debug {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the Tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            let mut source = error.source();
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}
