//! The verbs on a Redis namespace. The cache is connected with `existing_namespace`, so a
//! look at a namespace that is not there fails instead of creating it.

use clap::{Args, Subcommand};
use serde_json::json;
use vlive::{Cache, RedisCache};

use crate::output;
use crate::{Outcome, VerbResult};

/// `vlive redis …`
#[derive(Args)]
pub(crate) struct RedisArgs {
    /// URL is a comma-separated list of seed nodes of a Redis Cluster.
    #[arg(long, global = true)]
    cluster: bool,
    #[command(subcommand)]
    verb: RedisVerb,
}

#[derive(Subcommand)]
enum RedisVerb {
    /// Entries, bytes, evictions and expirations of a namespace.
    Stats {
        /// redis://[:password@]host:port[/db] (or rediss://).
        url: String,
        /// The namespace (the one given to RedisCache::connect).
        namespace: String,
    },
    /// List entries (key, size, rows, fetch time, soundness) in key order.
    Ls {
        /// redis://[:password@]host:port[/db] (or rediss://).
        url: String,
        /// The namespace.
        namespace: String,
        /// Only keys starting with this.
        #[arg(default_value = "")]
        prefix: String,
        /// At most this many entries.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Print one entry's rows.
    Get {
        /// redis://[:password@]host:port[/db] (or rediss://).
        url: String,
        /// The namespace.
        namespace: String,
        /// The key.
        key: String,
    },
    /// Remove every entry whose key starts with PREFIX ("" removes all), as a client's
    /// invalidation does (every client's near tier hears of it).
    Invalidate {
        /// redis://[:password@]host:port[/db] (or rediss://).
        url: String,
        /// The namespace.
        namespace: String,
        /// The prefix.
        prefix: String,
    },
    /// Read every entry and decode it; name the damaged ones. Exit code 1 if any.
    Check {
        /// redis://[:password@]host:port[/db] (or rediss://).
        url: String,
        /// The namespace.
        namespace: String,
    },
}

pub(crate) fn run(args: RedisArgs, as_json: bool) -> VerbResult {
    let cluster = args.cluster;
    runtime()?.block_on(async move {
        match args.verb {
            RedisVerb::Stats { url, namespace } => {
                stats(&connect(&url, &namespace, cluster).await?, as_json).await
            }
            RedisVerb::Ls {
                url,
                namespace,
                prefix,
                limit,
            } => {
                let cache = connect(&url, &namespace, cluster).await?;
                let listed = cache.entries(&prefix, limit).await.map_err(|e| chain(&e))?;
                output::entries(&listed, as_json);
                Ok(Outcome::Done)
            }
            RedisVerb::Get {
                url,
                namespace,
                key,
            } => {
                let cache = connect(&url, &namespace, cluster).await?;
                match cache.read(&key).await.map_err(|e| chain(&e))? {
                    Some(rows) => output::cached_rows(&key, &rows, as_json),
                    None => return Err(format!("no entry {key:?} in namespace {namespace:?}")),
                }
                Ok(Outcome::Done)
            }
            RedisVerb::Invalidate {
                url,
                namespace,
                prefix,
            } => {
                let cache = connect(&url, &namespace, cluster).await?;
                cache
                    .invalidate_prefix(&prefix)
                    .await
                    .map_err(|e| chain(&e))?;
                output::fields(
                    &[
                        ("namespace", json!(namespace)),
                        ("invalidated_prefix", json!(prefix)),
                    ],
                    as_json,
                );
                Ok(Outcome::Done)
            }
            RedisVerb::Check { url, namespace } => {
                let cache = connect(&url, &namespace, cluster).await?;
                let outcome = cache.verify().await.map_err(|e| chain(&e))?;
                output::verification(&outcome, as_json);
                Ok(match outcome.is_sound() {
                    true => Outcome::Done,
                    false => Outcome::Damaged,
                })
            }
        }
    })
}

async fn stats(cache: &RedisCache, as_json: bool) -> VerbResult {
    let stats = cache.stats().await.map_err(|e| chain(&e))?;
    output::fields(
        &[
            ("server", json!(cache.server())),
            ("namespace", json!(cache.namespace())),
            ("shards", json!(cache.shards())),
            ("entries", json!(stats.entries)),
            ("bytes", json!(stats.bytes)),
            ("evictions", json!(stats.evictions)),
            ("expirations", json!(stats.expirations)),
            ("sweeping_prefixes", json!(stats.sweeping_prefixes)),
        ],
        as_json,
    );
    Ok(Outcome::Done)
}

async fn connect(url: &str, namespace: &str, cluster: bool) -> Result<RedisCache, String> {
    let builder = if cluster {
        let seeds: Vec<&str> = url.split(',').map(str::trim).collect();
        RedisCache::cluster_builder(&seeds, namespace)
    } else {
        RedisCache::builder(url, namespace)
    };
    builder
        .existing_namespace()
        .connect()
        .await
        .map_err(|e| chain(&e))
}

/// A runtime for one verb.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a Tokio runtime: {e}"))
}

/// `error` with its causes, `outer: inner: root`.
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}
