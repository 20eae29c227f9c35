//! Process B: the hidden `peer` subcommand that `two-process` starts. It opens its own side of
//! the demo (a RedbCache near tier in its own folder) and obeys one command per stdin line,
//! answering each with one stdout line, until stdin closes:
//!
//! ```text
//! read ID   →  SERVED MICROS MASTER_CALLS VISITS   (page 1; VISITS of client ID in it)
//! watch     →  ok        (starts watching for the next log entry its reader applies)
//! arrival   →  NANOS     (when it was applied, Unix time) or `none` after 5 s
//! ```

use std::path::Path;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncBufReadExt, BufReader};
use vlive::{Page, RedbCache, TieredCache};

use super::shared_master::SharedMaster;
use super::side::Side;
use crate::demo::DemoResult;
use crate::show::field;

/// How long `arrival` waits for the invalidation.
const ARRIVAL: Duration = Duration::from_secs(5);

/// Runs process B until its stdin closes.
pub async fn serve(dir: &Path, latency: Duration, redis_url: &str, ns: &str) -> DemoResult<()> {
    let near = RedbCache::open(dir.join("peer-near"))?;
    let master = SharedMaster::new(dir.to_owned(), latency);
    let side = Side::open(master, near.clone(), redis_url, ns).await?;
    println!("ready {}", std::process::id());
    let mut watcher = None;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        println!("{}", obey(&side, &mut watcher, &line).await?);
    }
    drop(side);
    near.close().await?;
    Ok(())
}

async fn obey(
    side: &Side,
    watcher: &mut Option<JoinHandle<Option<SystemTime>>>,
    line: &str,
) -> DemoResult<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words[..] {
        ["read", id] => {
            let read = side.read(Page::first(10)).await?;
            let visits = field(&read.rows.get(id).cloned(), "visits");
            Ok(format!(
                "{} {} {} {visits}",
                read.served.word(),
                read.elapsed.as_micros(),
                read.master_calls
            ))
        }
        ["watch"] => {
            *watcher = Some(watch(&side.tiered));
            Ok("ok".into())
        }
        ["arrival"] => {
            let watcher = watcher.take().ok_or("`arrival` needs a `watch` first")?;
            let arrived = tokio::task::spawn_blocking(move || watcher.join())
                .await?
                .map_err(|_| "the watcher thread panicked")?;
            Ok(arrived.map_or("none".into(), |at| unix_nanos(at).to_string()))
        }
        _ => Err(format!("unknown peer command {line:?}").into()),
    }
}

/// Watches, on a thread of its own (so the runtime's timer granularity does not blur it), for
/// the reader to apply its next log entry; returns when it did, or `None` after `ARRIVAL`.
fn watch(tiered: &TieredCache) -> JoinHandle<Option<SystemTime>> {
    let tiered = tiered.clone();
    let before = tiered.stats().log_entries;
    std::thread::spawn(move || {
        let started = Instant::now();
        while started.elapsed() < ARRIVAL {
            if tiered.stats().log_entries > before {
                return Some(SystemTime::now());
            }
            std::thread::sleep(Duration::from_micros(50));
        }
        None
    })
}

fn unix_nanos(at: SystemTime) -> u128 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}
