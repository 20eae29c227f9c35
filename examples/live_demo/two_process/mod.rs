//! `two-process` (with `--features redis`): one process's write invalidates another process's
//! near cache, through Redis.
//!
//! Process A (this one) and process B (`peer`, the same binary started by A) each run a
//! LiveTable over a TieredCache on one Redis namespace: A with a MemCache near tier, B with a
//! RedbCache near tier in its own folder. Both read and write one master file (see
//! `shared_master.rs` for how two processes share a redb file). This file sets the scene up
//! and tears it down; `steps.rs` is the story.
//!
//! Layout: `redis_server.rs` starts a throwaway server when no `--redis-url` is given;
//! `side.rs` is one process's stack; `peer.rs` is B, `peer_link.rs` A's handle on B.

mod peer;
mod peer_link;
mod redis_server;
mod shared_master;
mod side;
mod steps;

use std::path::PathBuf;
use std::time::Duration;

use vlive::MemCache;

use crate::Cli;
use crate::demo::{DemoResult, VIEW};
use peer_link::Peer;
use redis_server::RedisServer;
use shared_master::SharedMaster;
use side::Side;

/// Runs the story as process A; fails unless B saw A's write invalidate its near tier.
pub async fn run(cli: &Cli, redis_url: Option<&str>) -> DemoResult<()> {
    // The server is kept until the end: dropping it stops it.
    let (server, url) = match redis_url {
        Some(url) => (None, url.to_owned()),
        None => {
            let server = RedisServer::start()?;
            let url = server.url();
            (Some(server), url)
        }
    };
    // A namespace of this run's own, so that a shared server's other data is left alone.
    let namespace = format!("vlive-demo-{}", std::process::id());
    let master = SharedMaster::new(folder(cli), latency(cli));
    let a = Side::open(master, MemCache::new(), &url, &namespace).await?;
    let mut b = Peer::spawn(cli, &url, &namespace).await?;
    introduce(cli, &url, server.is_some(), &namespace, &b);
    let told = steps::tell(&a, &mut b).await;
    // B closes its near tier cleanly even when the story failed.
    let finished = b.finish().await;
    told?.print();
    finished
}

/// `peer`: runs process B (see `peer.rs`).
pub async fn peer(cli: &Cli, redis_url: &str, namespace: &str) -> DemoResult<()> {
    peer::serve(&folder(cli), latency(cli), redis_url, namespace).await
}

/// Where both processes keep this mode's state, apart from the main story's.
fn folder(cli: &Cli) -> PathBuf {
    cli.dir.join("two-process")
}

fn latency(cli: &Cli) -> Duration {
    Duration::from_millis(cli.latency_ms)
}

/// What the story runs on, and why the master is shared the way it is.
fn introduce(cli: &Cli, url: &str, own_server: bool, namespace: &str, b: &Peer) {
    let dir = folder(cli);
    println!("vlive live_demo two-process: A's write invalidates B's near cache through Redis");
    println!("  redis:  {url}, namespace {namespace:?}");
    if own_server {
        println!(
            "          (started for this run: 127.0.0.1 only, no persistence; stopped at the end)"
        );
    }
    println!(
        "  master: {}, {} ms per call",
        dir.join("master.redb").display(),
        cli.latency_ms
    );
    println!("          One file for both processes: redb lets one process hold a file at a time,");
    println!("          so every master call opens it, works and closes it, as a remote database");
    println!(
        "          takes a connection per request (the open's few ms are in the times below)."
    );
    println!(
        "  A:      this process (pid {}): LiveTable {VIEW:?} → TieredCache(MemCache → Redis)",
        std::process::id()
    );
    println!(
        "  B:      peer process (pid {}): LiveTable {VIEW:?} → TieredCache(RedbCache → Redis)",
        b.pid
    );
    println!(
        "          B's near tier: {}",
        dir.join("peer-near").display()
    );
    println!();
}
