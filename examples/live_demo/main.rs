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
//! cargo run --release --features redis --example live_demo -- two-process
//! cargo run --release --features postgres --example live_demo -- postgres
//! ```
//!
//! State persists in `--dir` (default `./vlive-demo`) between runs; `--debug` prints the
//! table's tracing spans to stderr.
//!
//! Layout: this file is the command line and its one `match`; `story.rs` walks the whole story
//! one step per function (`burst.rs` is its longest step) and `summary.rs` prints its closing
//! table; `commands.rs` holds the subcommands; `demo.rs` is what they share (the master, the
//! cache, the table, a timed read); `master.rs` is the fake remote master, `clients.rs` its
//! sample data; `cache.rs` the cache choice; `args.rs` parses arguments; `show.rs` prints.
//! `two_process/` (with `--features redis`) is the two-process mode over Redis; `postgres.rs`
//! (with `--features postgres`) the LiveTable over a real Postgres table and its change feed.

mod args;
mod burst;
mod cache;
mod clients;
mod commands;
mod demo;
mod master;
mod metrics;
#[cfg(feature = "postgres")]
mod postgres;
mod show;
mod story;
mod summary;
#[cfg(feature = "redis")]
mod two_process;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vlive::{Page, Value};

use crate::args::{CacheChoice, parse_cache, parse_field};
use crate::demo::{Demo, DemoResult};

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

    /// Serve the caches' metrics for Prometheus at http://ADDR/metrics (needs a build with
    /// `--features metrics`).
    #[arg(long, global = true, value_name = "ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,

    /// After the command, keep the process (and its metrics endpoint) up this many seconds, so
    /// that a scraper can read the final figures.
    #[arg(long, global = true, default_value_t = 0, value_name = "SECS")]
    hold_secs: u64,

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
    /// Two processes, one Redis: this one's write invalidates the other's near cache.
    ///
    /// Starts its own redis-server (127.0.0.1, a free port, no persistence) unless given a URL,
    /// and a second process of this binary; state goes to `<dir>/two-process`.
    #[cfg(feature = "redis")]
    TwoProcess {
        /// Use this Redis (>= 7.0) instead of starting one, e.g. redis://127.0.0.1:6379/.
        #[arg(long, value_name = "URL")]
        redis_url: Option<String>,
    },
    /// A LiveTable over a real Postgres table, with its LISTEN/NOTIFY change feed: cache vs
    /// Postgres reads, an out-of-band UPDATE reaching reads, a killed listener's gap turning
    /// into an invalidation. Exits non-zero if any of it did not happen.
    ///
    /// Starts its own throwaway Postgres (initdb in a temp dir, a free loopback port; as the
    /// `postgres` user when run as root) unless given a URL.
    #[cfg(feature = "postgres")]
    Postgres {
        /// Use this Postgres instead, e.g. postgres://user:password@127.0.0.1:5432/db (the demo
        /// creates, and drops, a table of its own there).
        #[arg(long, value_name = "URL")]
        pg_url: Option<String>,
    },
    /// The second process of `two-process` (started by it; answers on stdin/stdout).
    #[cfg(feature = "redis")]
    #[command(hide = true)]
    Peer {
        #[arg(long)]
        redis_url: String,
        #[arg(long)]
        namespace: String,
    },
}

/// The story when no subcommand is given, else that one subcommand.
async fn run(cli: Cli) -> DemoResult<()> {
    let Some(command) = &cli.command else {
        return story::tell(&cli).await;
    };
    // These open their own master and caches, not the main story's.
    #[cfg(feature = "postgres")]
    if let Command::Postgres { pg_url } = command {
        return postgres::run(pg_url.as_deref()).await;
    }
    #[cfg(feature = "redis")]
    match command {
        Command::TwoProcess { redis_url } => {
            return two_process::run(&cli, redis_url.as_deref()).await;
        }
        Command::Peer {
            redis_url,
            namespace,
        } => return two_process::peer(&cli, redis_url, namespace).await,
        _ => {}
    }
    let demo = Demo::open(&cli)?;
    let result = match command {
        Command::Seed { rows } => commands::seed(&demo, *rows).await,
        Command::List { page, per_page } => {
            commands::list(&demo, Page::new(*page, *per_page)).await
        }
        Command::Get { id } => commands::get(&demo, id).await,
        Command::Add { id, fields } => commands::add(&demo, id, fields.clone()).await,
        Command::Event { id } => commands::event(&demo, id.as_deref()).await,
        Command::Stats => commands::stats(&demo).await,
        #[cfg(feature = "redis")]
        Command::TwoProcess { .. } | Command::Peer { .. } => unreachable!("handled above"),
        #[cfg(feature = "postgres")]
        Command::Postgres { .. } => unreachable!("handled above"),
    };
    // Close cleanly even after an error, then report the first failure.
    let closed = demo.close().await;
    result.and(closed)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.debug {
        print_debug_traces();
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
    let hold = std::time::Duration::from_secs(cli.hold_secs);
    let served = cli.metrics_addr.map(|addr| {
        // Inside the runtime: the exporter's listener runs as one of its tasks.
        let _entered = runtime.enter();
        metrics::serve(addr)
    });
    let result = match served {
        Some(Err(e)) => Err(e),
        _ => runtime.block_on(run(cli)),
    };
    match result {
        Ok(()) => {
            if !hold.is_zero() {
                println!("holding {} s for scrapers", hold.as_secs());
                std::thread::sleep(hold);
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            print_error(error.as_ref());
            ExitCode::FAILURE
        }
    }
}

/// `--debug`: LiveTable's spans and events, on stderr so they do not mix with the story.
fn print_debug_traces() {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// The error, then each cause on its own line.
fn print_error(error: &(dyn std::error::Error + 'static)) {
    eprintln!("error: {error}");
    let mut source = error.source();
    while let Some(cause) = source {
        eprintln!("  caused by: {cause}");
        source = cause.source();
    }
}
