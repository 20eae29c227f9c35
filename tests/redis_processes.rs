//! Two real processes on one Redis namespace: coherence of TieredCache near tiers, and the
//! stale-fill guard across processes.
//!
//! The parent re-runs this test binary as a child (`--exact child_repl`) with
//! `VLIVE_REDIS_CHILD_URL` and `VLIVE_REDIS_CHILD_NS` set. The child opens its own
//! TieredCache and obeys one command per stdin line (`get K`, `near K`, `put K TAG`, `inv P`,
//! `token K`, `fill K TAG`, `sync`), answering each with one marked stdout line. Without those
//! variables `child_repl` returns at once.
#![cfg(feature = "redis")]

mod common;
#[path = "common/redis_server.rs"]
mod redis_server;

use std::io::{BufRead, BufReader, Write};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{HANG, tag, value, within};
use redis_server::RedisServer;
use vlive::{Cache, FillOutcome, FillToken, MemCache, RedisCache, TieredCache};

const URL_VAR: &str = "VLIVE_REDIS_CHILD_URL";
const NS_VAR: &str = "VLIVE_REDIS_CHILD_NS";
/// Marks the child's answers in a stdout it shares with the test harness.
const MARK: &str = "@vlive-redis@ ";

async fn tiered(url: &str, namespace: &str) -> TieredCache {
    let far = RedisCache::connect(url, namespace).await.unwrap();
    TieredCache::builder(MemCache::new(), far)
        .poll_interval(Duration::from_millis(50))
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// The child
// ---------------------------------------------------------------------------------------------

#[test]
fn child_repl() {
    let (Ok(url), Ok(namespace)) = (std::env::var(URL_VAR), std::env::var(NS_VAR)) else {
        return;
    };
    // Worker threads run the reader while this thread waits on stdin.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let cache = runtime.block_on(tiered(&url, &namespace));
    let mut token = None;
    say("ready");
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        let answer = runtime.block_on(obey(&cache, &mut token, &line));
        say(&answer);
    }
}

async fn obey(cache: &TieredCache, token: &mut Option<FillToken>, line: &str) -> String {
    let words: Vec<&str> = line.split(' ').collect();
    let shown = |found: Option<String>| found.unwrap_or_else(|| "-".into());
    match words[..] {
        ["get", key] => shown(tag(cache, key).await),
        ["near", key] => {
            let hits = cache.stats().near_hits;
            let found = shown(tag(cache, key).await);
            let how = if cache.stats().near_hits > hits {
                "hit"
            } else {
                "miss"
            };
            format!("{how} {found}")
        }
        ["put", key, t] => {
            cache.put(key, value(t)).await.unwrap();
            "ok".into()
        }
        ["inv", prefix] => {
            cache.invalidate_prefix(prefix).await.unwrap();
            "ok".into()
        }
        ["token", key] => {
            *token = Some(cache.fill_token(key).await.unwrap());
            "ok".into()
        }
        ["fill", key, t] => match cache.fill(key, value(t), token.unwrap()).await.unwrap() {
            FillOutcome::Stored => "stored".into(),
            FillOutcome::RejectedStale => "rejected".into(),
        },
        ["sync"] => {
            cache.sync().await;
            "ok".into()
        }
        _ => panic!("unknown command {line:?}"),
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{MARK}{line}").unwrap();
    out.flush().unwrap();
}

// ---------------------------------------------------------------------------------------------
// The parent's handle on the child
// ---------------------------------------------------------------------------------------------

/// A child process running `child_repl`; killed if still running when dropped.
struct Child {
    process: std::process::Child,
    stdin: ChildStdin,
    answers: mpsc::Receiver<String>,
}

impl Child {
    fn spawn(server: &RedisServer, namespace: &str) -> Child {
        let mut process = Command::new(std::env::current_exe().unwrap())
            .args(["child_repl", "--exact", "--nocapture", "--test-threads=1"])
            .env(URL_VAR, server.url())
            .env(NS_VAR, namespace)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = process.stdout.take().unwrap();
        let (tx, answers) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(at) = line.find(MARK)
                    && tx.send(line[at + MARK.len()..].to_owned()).is_err()
                {
                    break;
                }
            }
        });
        let mut child = Child {
            stdin: process.stdin.take().unwrap(),
            process,
            answers,
        };
        assert_eq!(child.answer("start"), "ready");
        child
    }

    /// Sends one command and returns the child's answer (fails the test after [`HANG`]).
    fn ask(&mut self, command: &str) -> String {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
        self.answer(command)
    }

    fn answer(&mut self, command: &str) -> String {
        self.answers
            .recv_timeout(HANG)
            .unwrap_or_else(|e| panic!("the child did not answer {command:?}: {e:?}"))
    }

    /// Asks `near key` until the child's near tier answers it; returns the value.
    fn cache_in_near(&mut self, key: &str) -> String {
        for _ in 0..1000 {
            self.ask("sync");
            if let Some(found) = self.ask(&format!("near {key}")).strip_prefix("hit ") {
                return found.to_owned();
            }
        }
        panic!("the child's near tier never held {key:?}");
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_in_one_process_reach_the_other_processs_near_tier() {
    let server = RedisServer::start();
    let parent = tiered(&server.url(), "shared").await;
    let mut child = Child::spawn(&server, "shared");

    parent.put("clients/1", value("v1")).await.unwrap();
    assert_eq!(child.cache_in_near("clients/1"), "v1");

    parent.put("clients/1", value("v2")).await.unwrap();
    child.ask("sync");
    assert_eq!(
        child.ask("get clients/1"),
        "v2",
        "a put did not reach the child"
    );

    assert_eq!(child.cache_in_near("clients/1"), "v2");
    parent.invalidate_prefix("cli").await.unwrap();
    child.ask("sync");
    assert_eq!(
        child.ask("get clients/1"),
        "-",
        "an invalidation did not reach the child"
    );

    // And the other way round.
    assert_eq!(child.ask("put orders/7 o1"), "ok");
    within("parent read", async {
        parent.sync().await;
        assert_eq!(tag(&parent, "orders/7").await.as_deref(), Some("o1"));
        parent.sync().await;
        assert_eq!(tag(&parent, "orders/7").await.as_deref(), Some("o1"));
    })
    .await;
    assert_eq!(child.ask("inv orders/"), "ok");
    parent.sync().await;
    assert_eq!(tag(&parent, "orders/7").await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fill_guard_holds_across_processes() {
    let server = RedisServer::start();
    let parent = RedisCache::connect(&server.url(), "shared").await.unwrap();
    let mut child = Child::spawn(&server, "shared");

    // The child reads the master; meanwhile the parent invalidates a prefix of its key.
    assert_eq!(child.ask("token clients/10"), "ok");
    parent.invalidate_prefix("clients/1").await.unwrap();
    assert_eq!(child.ask("fill clients/10 stale"), "rejected");
    assert_eq!(tag(&parent, "clients/10").await, None);

    // An unrelated invalidation does not stop the fill.
    assert_eq!(child.ask("token clients/10"), "ok");
    parent.invalidate_prefix("clients/2").await.unwrap();
    assert_eq!(child.ask("fill clients/10 fresh"), "stored");
    assert_eq!(tag(&parent, "clients/10").await.as_deref(), Some("fresh"));

    // And the parent's fill is guarded against the child's invalidation.
    let token = parent.fill_token("clients/10").await.unwrap();
    assert_eq!(child.ask("inv "), "ok");
    assert_eq!(
        parent
            .fill("clients/10", value("stale"), token)
            .await
            .unwrap(),
        FillOutcome::RejectedStale
    );
    assert_eq!(tag(&parent, "clients/10").await, None);
}
