//! What `RedbCache` keeps on disk: data and invalidations survive close/reopen and
//! drop/reopen; another process holding the folder gets `Error::AlreadyOpen`; in the default
//! (immediate) durability every acknowledged put and invalidation survives a SIGKILL of the
//! writing process; in lazy durability everything before a `flush` (or before an invalidation)
//! survives a SIGKILL, and an invalidated entry never comes back; and the stale-fill guard holds
//! across a reopen.
//!
//! Cross-process tests re-run this test binary as a child (`--exact child_… --nocapture`) with
//! `VLIVE_CHILD=<mode>` and `VLIVE_CHILD_FOLDER=<folder>`; without that variable the `child_…`
//! tests return at once.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use common::{HANG, runtime, tag, value};
use vlive::{Cache, DB_FILE_NAME, Durability, Error, FillOutcome, RedbCache};

const MODE_VAR: &str = "VLIVE_CHILD";
const FOLDER_VAR: &str = "VLIVE_CHILD_FOLDER";

// ---------------------------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------------------------

/// The folder to work on if this process is a child started in `mode`, else `None`.
fn child_folder(mode: &str) -> Option<PathBuf> {
    (std::env::var(MODE_VAR).ok()? == mode).then(|| std::env::var(FOLDER_VAR).unwrap().into())
}

/// Marks the child's messages in its stdout, which the test harness shares (it prints
/// `test child_… ... ` without a line break just before the test runs).
const MARK: &str = "@vlive@ ";

/// Prints one message for the parent, at once.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{MARK}{line}").unwrap();
    out.flush().unwrap();
}

/// A child process running one `child_…` test of this binary; killed if still running when
/// dropped.
struct Child {
    process: std::process::Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Child {
    fn spawn(test: &str, mode: &str, folder: &Path) -> Child {
        let mut process = Command::new(std::env::current_exe().unwrap())
            .args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(MODE_VAR, mode)
            .env(FOLDER_VAR, folder)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = process.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Some(at) = line.find(MARK) else { continue };
                if tx.send(line[at + MARK.len()..].to_owned()).is_err() {
                    break;
                }
            }
        });
        Child {
            stdin: process.stdin.take(),
            process,
            lines,
        }
    }

    /// The next message from the child that `wanted` accepts (others are skipped). Fails the
    /// test if none comes within [`HANG`].
    fn next_line(&mut self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        loop {
            match self.lines.recv_timeout(HANG) {
                Ok(line) if wanted(&line) => return line,
                Ok(_) => {}
                Err(e) => panic!("child never printed {what}: {e:?}"),
            }
        }
    }

    /// Kills the child with SIGKILL (no chance to clean up) and reaps it.
    fn kill(&mut self) {
        self.process.kill().unwrap();
        self.process.wait().unwrap();
    }

    /// Every message from the child not read yet (call after it exited).
    fn rest(&mut self) -> Vec<String> {
        let mut rest = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(HANG) {
            rest.push(line);
        }
        rest
    }

    /// Closes the child's stdin and waits for it to exit successfully.
    fn finish(&mut self) {
        drop(self.stdin.take());
        let status = self.process.wait().unwrap();
        assert!(status.success(), "child failed: {status}");
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn block_on_stdin() {
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

// ---------------------------------------------------------------------------------------------
// In-process persistence
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_and_invalidations_survive_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let keys = [
        "",
        "a",
        "a/",
        "a/__root__",
        "a//b",
        "__root__",
        "é/ü",
        "/x",
        "b/1",
        "b/2",
        "c",
    ];
    let cache = RedbCache::open(dir.path()).unwrap();
    for key in keys {
        cache.put(key, value(&format!("v:{key}"))).await.unwrap();
    }
    cache.close().await.unwrap();

    let cache = RedbCache::open(dir.path()).unwrap();
    for key in keys {
        assert_eq!(tag(&cache, key).await, Some(format!("v:{key}")), "{key:?}");
    }
    cache.invalidate_prefix("a/").await.unwrap();
    cache.invalidate_prefix("b").await.unwrap();
    cache.put("c", value("replaced")).await.unwrap();
    cache.close().await.unwrap();

    let cache = RedbCache::open(dir.path()).unwrap();
    for key in keys {
        let expected = match key {
            "c" => Some("replaced".to_owned()),
            k if k.starts_with("a/") || k.starts_with('b') => None,
            k => Some(format!("v:{k}")),
        };
        assert_eq!(tag(&cache, key).await, expected, "{key:?}");
    }
    cache.invalidate_prefix("").await.unwrap();
    cache.close().await.unwrap();

    let cache = RedbCache::open(dir.path()).unwrap();
    for key in keys {
        assert_eq!(
            tag(&cache, key).await,
            None,
            "{key:?} after invalidating everything"
        );
    }
    cache.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_dropping_every_handle() {
    let dir = tempfile::tempdir().unwrap();
    {
        let cache = RedbCache::builder()
            .durability(Durability::Lazy {
                max_delay: Duration::from_secs(3600),
            })
            .open(dir.path())
            .unwrap();
        for i in 0..20 {
            cache
                .put(&format!("k/{i}"), value(&i.to_string()))
                .await
                .unwrap();
        }
        // No flush, no close: dropping the last handle must commit and close cleanly.
    }
    let cache = RedbCache::open(dir.path()).unwrap();
    for i in 0..20 {
        assert_eq!(tag(&cache, &format!("k/{i}")).await, Some(i.to_string()));
    }
    cache.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lazy_data_survives_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let lazy = Durability::Lazy {
        max_delay: Duration::from_secs(3600),
    };
    let cache = RedbCache::builder()
        .durability(lazy)
        .open(dir.path())
        .unwrap();
    for i in 0..20 {
        cache
            .put(&format!("k/{i}"), value(&i.to_string()))
            .await
            .unwrap();
    }
    cache.invalidate_prefix("k/1").await.unwrap();
    cache.put("k/10", value("back")).await.unwrap();
    cache.close().await.unwrap();
    let cache = RedbCache::open(dir.path()).unwrap();
    for i in 0..20 {
        let key = format!("k/{i}");
        let expected = match key.as_str() {
            "k/10" => Some("back".to_owned()),
            k if k.starts_with("k/1") => None,
            _ => Some(i.to_string()),
        };
        assert_eq!(tag(&cache, &key).await, expected, "{key}");
    }
    cache.close().await.unwrap();
}

/// Whether opening the database file needs redb's crash repair (the sign of an unclean
/// shutdown). Waits while the file is still held (an actor may still be shutting down). The
/// repair is aborted, so the file is not changed.
fn needs_repair(folder: &Path) -> bool {
    let deadline = std::time::Instant::now() + HANG;
    loop {
        let repaired = Arc::new(AtomicBool::new(false));
        let flag = repaired.clone();
        let db = redb::Builder::new()
            .set_repair_callback(move |session| {
                flag.store(true, Ordering::SeqCst);
                session.abort();
            })
            .open(folder.join(DB_FILE_NAME));
        match db {
            Ok(db) => drop(db),
            Err(redb::DatabaseError::RepairAborted) => {}
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the cache never released its file"
                );
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            Err(e) => panic!("cannot open the cache file with redb: {e}"),
        }
        return repaired.load(Ordering::SeqCst);
    }
}

/// `close()`, and dropping the last handle, close the database cleanly: the next open needs no
/// repair.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutting_down_leaves_a_clean_file() {
    let lazy = Durability::Lazy {
        max_delay: Duration::from_secs(3600),
    };
    for durability in [Durability::Immediate, lazy] {
        for by_close in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let cache = RedbCache::builder()
                .durability(durability)
                .open(dir.path())
                .unwrap();
            for i in 0..50 {
                cache.put(&format!("k/{i}"), value("v")).await.unwrap();
            }
            cache.invalidate_prefix("k/1").await.unwrap();
            cache.put("k/1", value("v")).await.unwrap();
            if by_close {
                cache.close().await.unwrap();
            } else {
                // Returns at once; the actor shuts down on its own (`needs_repair` waits).
                drop(cache);
            }
            assert!(
                !needs_repair(dir.path()),
                "{durability:?}, by close: {by_close}: the file was not closed cleanly"
            );
        }
    }
}

/// A fill token describes the invalidation history of the cache it came from. After the folder
/// is closed and reopened, a token taken before an invalidation that happened before the close
/// must not let a stale fill in: the invalidated entry would come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fill_token_from_before_a_reopen_cannot_store_stale_rows() {
    let dir = tempfile::tempdir().unwrap();
    let cache = RedbCache::open(dir.path()).unwrap();
    cache.put("clients/1", value("old")).await.unwrap();
    // A reader misses, takes a token, and starts reading the master...
    let token = cache.fill_token("clients/1").await.unwrap();
    // ...meanwhile the master changes and the cache is told so...
    cache.invalidate_prefix("clients/").await.unwrap();
    // ...and the cache is restarted (closed, or its actor panicked, and reopened).
    cache.close().await.unwrap();
    let cache = RedbCache::open(dir.path()).unwrap();
    // The reader comes back with what it read before the change.
    let outcome = cache
        .fill("clients/1", value("stale"), token)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        FillOutcome::RejectedStale,
        "a fill whose token predates a covering invalidation was accepted after a reopen"
    );
    assert_eq!(tag(&cache, "clients/1").await, None);
    cache.close().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Another process holds the folder
// ---------------------------------------------------------------------------------------------

/// Child: opens the folder, writes one key, says READY, holds the folder until stdin closes.
#[test]
fn child_hold() {
    let Some(folder) = child_folder("hold") else {
        return;
    };
    let rt = runtime();
    let cache = RedbCache::open(&folder).unwrap();
    rt.block_on(cache.put("child", value("child"))).unwrap();
    say("READY");
    block_on_stdin();
    rt.block_on(cache.close()).unwrap();
    say("CLOSED");
}

#[test]
fn a_folder_open_in_another_process_is_already_open() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("cache");
    std::fs::create_dir(&folder).unwrap();
    let mut child = Child::spawn("child_hold", "hold", &folder);
    child.next_line("READY", |l| l == "READY");

    let canonical = folder.canonicalize().unwrap();
    for attempt in 0..2 {
        let opened = match attempt {
            0 => RedbCache::open(&folder),
            _ => RedbCache::builder().capacity(4).open(&folder),
        };
        match opened {
            Err(Error::AlreadyOpen { folder: reported }) => assert_eq!(reported, canonical),
            other => panic!("expected AlreadyOpen, got {other:?}"),
        }
    }

    child.finish();
    // The failed opens left nothing behind: the folder opens now, with the child's data.
    let rt = runtime();
    let cache = RedbCache::open(&folder).unwrap();
    assert_eq!(rt.block_on(tag(&cache, "child")).as_deref(), Some("child"));
    rt.block_on(cache.close()).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Crash durability, default (immediate) mode
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
enum Step {
    Put(String, String),
    Invalidate(String),
}

/// The child's deterministic sequence of operations: puts into one root and into bare keys,
/// exact-key invalidations, and now and then an invalidation that covers a hundred keys.
fn crash_step(i: usize) -> Step {
    match i {
        i if i % 50 == 49 => Step::Invalidate(format!("k/{:04}", i / 100)),
        i if i % 5 == 4 => Step::Invalidate(format!("k/{:06}", i - 2)),
        i if i % 7 == 3 => Step::Put(format!("bare{}", i % 20), i.to_string()),
        i => Step::Put(format!("k/{i:06}"), i.to_string()),
    }
}

/// Child: runs `crash_step(0)`, `crash_step(1)`, … printing `ACK i` after each `Ok`, until it is
/// killed.
#[test]
fn child_crash() {
    let Some(folder) = child_folder("crash") else {
        return;
    };
    let rt = runtime();
    let cache = RedbCache::open(&folder).unwrap();
    rt.block_on(async {
        for i in 0..1_000_000 {
            match crash_step(i) {
                Step::Put(key, tag) => cache.put(&key, value(&tag)).await.unwrap(),
                Step::Invalidate(prefix) => cache.invalidate_prefix(&prefix).await.unwrap(),
            }
            say(&format!("ACK {i}"));
        }
    });
}

fn apply_steps(
    steps: impl IntoIterator<Item = Step>,
) -> std::collections::BTreeMap<String, String> {
    let mut model = std::collections::BTreeMap::new();
    for step in steps {
        match step {
            Step::Put(key, tag) => {
                model.insert(key, tag);
            }
            Step::Invalidate(prefix) => model.retain(|k: &String, _| !k.starts_with(&prefix)),
        }
    }
    model
}

/// Every acknowledged operation survives a SIGKILL; the one in flight at the kill either
/// happened entirely or not at all; nothing else appears.
#[test]
fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("cache");
    let mut child = Child::spawn("child_crash", "crash", &folder);
    // Kill somewhere after the first couple of hundred operations, at a moment that varies.
    let target = 200 + (std::process::id() as usize % 50);
    let mut acked = 0;
    while acked < target {
        let line = child.next_line("ACK", |l| l.starts_with("ACK "));
        acked = line[4..].parse::<usize>().unwrap() + 1;
    }
    child.kill();
    for line in child.rest() {
        if let Some(i) = line.strip_prefix("ACK ") {
            let i: usize = i.parse().unwrap();
            assert_eq!(i, acked, "acknowledgements out of order");
            acked = i + 1;
        }
    }

    // `acked` operations were acknowledged; operation `acked` may have been in flight.
    let without = apply_steps((0..acked).map(crash_step));
    let with = apply_steps((0..=acked).map(crash_step));
    let mut keys: Vec<String> = (0..=acked)
        .filter_map(|i| match crash_step(i) {
            Step::Put(key, _) => Some(key),
            Step::Invalidate(_) => None,
        })
        .collect();
    keys.sort();
    keys.dedup();

    let rt = runtime();
    let cache = RedbCache::open(&folder).expect("reopen after SIGKILL");
    let found: std::collections::BTreeMap<String, String> = rt.block_on(async {
        let mut found = std::collections::BTreeMap::new();
        for key in &keys {
            if let Some(tag) = tag(&cache, key).await {
                found.insert(key.clone(), tag);
            }
        }
        found
    });
    assert!(
        found == without || found == with,
        "after SIGKILL with {acked} operations acknowledged, the cache holds neither the state \
         after them nor the state after the one in flight.\nmissing: {:?}\nextra: {:?}",
        without
            .iter()
            .filter(|(k, v)| found.get(*k) != Some(v))
            .collect::<Vec<_>>(),
        found
            .iter()
            .filter(|(k, v)| without.get(*k) != Some(v) && with.get(*k) != Some(v))
            .collect::<Vec<_>>(),
    );
    rt.block_on(cache.close()).unwrap();
}

/// Child: eight tasks put their own keys concurrently (so the kill can land in a batch of
/// several), printing `ACK <task> <n>` after each `Ok`.
#[test]
fn child_crash_concurrent() {
    let Some(folder) = child_folder("crash_concurrent") else {
        return;
    };
    let rt = runtime();
    let cache = RedbCache::open(&folder).unwrap();
    rt.block_on(async {
        let tasks: Vec<_> = (0..8)
            .map(|task| {
                let cache = cache.clone();
                tokio::spawn(async move {
                    for n in 0..1_000_000 {
                        let key = format!("t{task}/{n}");
                        cache.put(&key, value(&key)).await.unwrap();
                        say(&format!("ACK {task} {n}"));
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
}

#[test]
fn acknowledged_concurrent_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("cache");
    let mut child = Child::spawn("child_crash_concurrent", "crash_concurrent", &folder);
    let mut acked = [0usize; 8]; // per task: how many puts were acknowledged
    let mut note = |line: &str| {
        let mut parts = line.split(' ').skip(1);
        let task: usize = parts.next().unwrap().parse().unwrap();
        let n: usize = parts.next().unwrap().parse().unwrap();
        assert_eq!(n, acked[task], "task {task} acknowledged out of order");
        acked[task] = n + 1;
    };
    for _ in 0..300 {
        note(&child.next_line("ACK", |l| l.starts_with("ACK ")));
    }
    child.kill();
    for line in child.rest() {
        if line.starts_with("ACK ") {
            note(&line);
        }
    }

    let rt = runtime();
    let cache = RedbCache::open(&folder).expect("reopen after SIGKILL");
    rt.block_on(async {
        for (task, &count) in acked.iter().enumerate() {
            for n in 0..count {
                let key = format!("t{task}/{n}");
                assert_eq!(
                    tag(&cache, &key).await.as_deref(),
                    Some(key.as_str()),
                    "acknowledged put {key} lost in the crash"
                );
            }
            // The put in flight may or may not have made it; none after it was ever sent.
            let in_flight = format!("t{task}/{count}");
            if let Some(found) = tag(&cache, &in_flight).await {
                assert_eq!(found, in_flight);
            }
            let never = format!("t{task}/{}", count + 1);
            assert_eq!(tag(&cache, &never).await, None, "{never} was never sent");
        }
        cache.close().await.unwrap();
    });
}

// ---------------------------------------------------------------------------------------------
// Crash durability, lazy mode
// ---------------------------------------------------------------------------------------------

/// Child, lazy mode with a checkpoint interval far longer than the test: puts then `flush`;
/// puts then an invalidation; puts with neither; then waits to be killed.
#[test]
fn child_lazy() {
    let Some(folder) = child_folder("lazy") else {
        return;
    };
    let rt = runtime();
    let cache = RedbCache::builder()
        .durability(Durability::Lazy {
            max_delay: Duration::from_secs(3600),
        })
        .open(&folder)
        .unwrap();
    rt.block_on(async {
        for i in 0..20 {
            let key = format!("flushed/{i}");
            cache.put(&key, value(&key)).await.unwrap();
        }
        cache.put("doomed/1", value("doomed/1")).await.unwrap();
        cache.flush().await.unwrap();
        say("FLUSHED");

        // Not flushed, but followed by an invalidation, which commits durably and so makes
        // everything before it durable too.
        cache
            .put("before-invalidation/1", value("before-invalidation/1"))
            .await
            .unwrap();
        cache.put("gone/1", value("gone/1")).await.unwrap();
        cache.invalidate_prefix("gone/").await.unwrap();
        cache.invalidate_prefix("doomed/").await.unwrap();
        say("INVALIDATED");

        // Back again and invalidated again: must stay gone.
        cache.put("doomed/1", value("doomed-again")).await.unwrap();
        cache.invalidate_prefix("doomed/").await.unwrap();

        // Neither flushed nor followed by an invalidation: may be lost in a crash.
        for i in 0..20 {
            let key = format!("unflushed/{i}");
            cache.put(&key, value(&key)).await.unwrap();
        }
        say("UNFLUSHED");
    });
    block_on_stdin();
}

#[test]
fn lazy_mode_keeps_what_was_flushed_or_invalidated_through_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("cache");
    let mut child = Child::spawn("child_lazy", "lazy", &folder);
    child.next_line("UNFLUSHED", |l| l == "UNFLUSHED");
    child.kill();

    let rt = runtime();
    let cache = RedbCache::open(&folder).expect("reopen after SIGKILL");
    rt.block_on(async {
        for i in 0..20 {
            let key = format!("flushed/{i}");
            assert_eq!(
                tag(&cache, &key).await.as_deref(),
                Some(key.as_str()),
                "flushed put lost"
            );
        }
        assert_eq!(
            tag(&cache, "before-invalidation/1").await.as_deref(),
            Some("before-invalidation/1"),
            "a put acknowledged before a (durable) invalidation was lost"
        );
        assert_eq!(
            tag(&cache, "gone/1").await,
            None,
            "an invalidated entry came back"
        );
        assert_eq!(
            tag(&cache, "doomed/1").await,
            None,
            "an invalidated entry came back"
        );
        // Puts after the last durable commit may be lost, but never garbled.
        for i in 0..20 {
            let key = format!("unflushed/{i}");
            if let Some(found) = tag(&cache, &key).await {
                assert_eq!(found, key);
            }
        }
        cache.close().await.unwrap();
    });
}

/// Values larger than the whole page cache (1 MiB, half of it redb's write buffer) are written
/// and read back whole, put concurrently with small ones, in both durability modes and after a
/// reopen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_larger_than_the_page_cache_read_back_whole() {
    for durability in [
        Durability::Immediate,
        Durability::Lazy {
            max_delay: Duration::from_millis(50),
        },
    ] {
        let dir = tempfile::tempdir().unwrap();
        let open = || {
            RedbCache::builder()
                .durability(durability)
                .page_cache_bytes(1 << 20)
                .hot_bytes(0)
                .open(dir.path())
                .unwrap()
        };
        let big = |i: usize| format!("{i}").repeat(2 << 20);
        let cache = open();
        let put = |key: String, tag: String| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.put(&key, value(&tag)).await })
        };
        let puts: Vec<_> = (0..2)
            .flat_map(|i| {
                [
                    put(format!("big/{i}"), big(i)),
                    put(format!("small/{i}"), "s".into()),
                ]
            })
            .collect();
        for put in puts {
            put.await.unwrap().unwrap();
        }
        cache.close().await.unwrap();
        let cache = open();
        for i in 0..2 {
            let read = tag(&cache, &format!("big/{i}")).await;
            assert!(
                read.as_deref() == Some(big(i).as_str()),
                "big/{i} ({durability:?})"
            );
            assert_eq!(
                tag(&cache, &format!("small/{i}")).await.as_deref(),
                Some("s")
            );
        }
        cache.close().await.unwrap();
    }
}

/// A page cache far smaller than the file (here 1 MiB for about 4 MiB of entries) changes where
/// cold gets read from, never what they read, before and after a reopen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_page_cache_reads_every_value_back() {
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        RedbCache::builder()
            .page_cache_bytes(1 << 20)
            .hot_bytes(0)
            .open(dir.path())
            .unwrap()
    };
    let cache = open();
    let keys: Vec<String> = (0..1000).map(|i| format!("p/{i:04}")).collect();
    for key in &keys {
        cache.put(key, value(key)).await.unwrap();
    }
    for key in &keys {
        assert_eq!(tag(&cache, key).await.as_deref(), Some(key.as_str()));
    }
    cache.close().await.unwrap();
    let cache = open();
    for key in keys.iter().rev() {
        assert_eq!(tag(&cache, key).await.as_deref(), Some(key.as_str()));
    }
    cache.close().await.unwrap();
}
