//! `vlive`: look at, check and invalidate a vlive cache folder or Redis namespace.
//!
//! Every verb prints an aligned table, or JSON with `--json`. Exit codes: 0 done (and, for
//! `check`, sound), 1 `check` found damaged entries, 2 an error or bad usage. The verbs go
//! through the library's admin API (`vlive::inspect`, `RedisCache::entries` …), never the file
//! format. docs/cli.md has examples.

mod folder;
mod output;
mod redis;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Look at, check and invalidate a vlive cache folder or Redis namespace.
#[derive(Parser)]
#[command(name = "vlive", version)]
struct Cli {
    /// Print JSON instead of a table (for scripts).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Subcommand)]
enum Verb {
    /// Entries, bytes and file size of a cache folder.
    Stats {
        /// The cache folder (the one given to RedbCache::open).
        dir: PathBuf,
    },
    /// List entries (key, size, rows, fetch time, soundness) in key order.
    Ls {
        /// The cache folder.
        dir: PathBuf,
        /// Only keys starting with this.
        #[arg(default_value = "")]
        prefix: String,
        /// At most this many entries.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Print one entry's rows.
    Get {
        /// The cache folder.
        dir: PathBuf,
        /// The key.
        key: String,
    },
    /// Remove every entry whose key starts with PREFIX ("" removes all). Refuses a folder a
    /// running process holds.
    Invalidate {
        /// The cache folder.
        dir: PathBuf,
        /// The prefix.
        prefix: String,
    },
    /// Read every entry and verify its checksum; name the damaged ones. Exit code 1 if any.
    Check {
        /// The cache folder.
        dir: PathBuf,
    },
    /// The same verbs for a namespace of a RedisCache.
    Redis(redis::RedisArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.verb {
        Verb::Stats { dir } => folder::stats(&dir, cli.json),
        Verb::Ls { dir, prefix, limit } => folder::ls(&dir, &prefix, limit, cli.json),
        Verb::Get { dir, key } => folder::get(&dir, &key, cli.json),
        Verb::Invalidate { dir, prefix } => folder::invalidate(&dir, &prefix, cli.json),
        Verb::Check { dir } => folder::check(&dir, cli.json),
        Verb::Redis(args) => redis::run(args, cli.json),
    };
    match outcome {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::Damaged) => ExitCode::from(1),
        Err(message) => {
            eprintln!("vlive: {message}");
            ExitCode::from(2)
        }
    }
}

/// How a verb that ran ended.
pub(crate) enum Outcome {
    /// Done; for `check`, nothing damaged.
    Done,
    /// `check` found damaged entries.
    Damaged,
}

/// A verb's result: a message for the operator on error.
pub(crate) type VerbResult = Result<Outcome, String>;
