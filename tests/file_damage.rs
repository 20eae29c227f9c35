//! File damage, trial by trial (issue 17, items 1 and 2): single-bit flips, random 4 KiB pages
//! overwritten, and truncation, applied to a closed cache file ("at rest") or under a running
//! cache. Each trial runs in a child process of this binary, so that an abort (a panic that
//! cannot be caught, a stack overflow) or a hang is counted, not fatal to the suite.
//!
//! The property, over every trial: no get returns a wrong value as `Ok`, no get returns `Err`,
//! no child aborts or hangs, and the cache serves new writes after the damage. A write may fail
//! in the batch that finds the damage (its outcome is unknown: `Error::Damaged`, or the storage
//! error that led to it), never after; a file whose first page no longer says "redb" is
//! refused at open as `NotADatabase` and left untouched, as any foreign file is.
//!
//! `VLIVE_DAMAGE_TRIALS=N cargo test --release --test file_damage` runs N trials of each kind
//! and mode (default 6); the closing note of issue 17 quotes a run of 100.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "common/mod.rs"]
mod common;

use common::runtime;
use vlive::{Cache, CachedRows, DB_FILE_NAME, Error, OnDamage, Record, RedbCache, Rows, Value};

const CHILD: &str = "VLIVE_DAMAGE_CHILD";
const KEYS: usize = 200;
/// A child that takes longer than this has hung.
const CHILD_DEADLINE: Duration = Duration::from_secs(120);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Flip,
    Page,
    Truncate,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Mode {
    AtRest,
    Running,
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD) {
        child(&spec);
        return;
    }
    let started = Instant::now();
    let mut passed = 0;
    for (name, test) in [
        (
            "open_fails_on_damage_when_asked_and_leaves_the_file",
            open_fails_on_damage_when_asked as fn(),
        ),
        (
            "only_the_newest_damaged_files_are_kept",
            only_the_newest_damaged_files_are_kept,
        ),
        (
            "no_trial_returns_a_wrong_value_an_error_or_dies",
            no_trial_returns_a_wrong_value_an_error_or_dies,
        ),
    ] {
        println!("test {name} ...");
        test();
        println!("test {name} ... ok");
        passed += 1;
    }
    println!(
        "file_damage: {passed} passed, 0 failed ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
}

/// Key `i`'s rows: one record with a text of 1–12 KB that depends on `i` alone.
fn expected(i: usize) -> Rows {
    let mut x = (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 29;
    let len = 1000 + (x % 11_000) as usize;
    let text: String = (0..len)
        .map(|j| (b'a' + ((i + j) % 26) as u8) as char)
        .collect();
    let mut record = Record::new();
    record.insert("i".into(), Value::Integer((i as i64).into()));
    record.insert("text".into(), Value::Text(text));
    let mut rows = Rows::new();
    rows.insert(format!("{i}"), record);
    rows
}

fn key(i: usize) -> String {
    format!("k/{i:03}")
}

/// A closed cache holding every key's expected rows.
fn template(folder: &Path) {
    runtime().block_on(async {
        let cache = RedbCache::open(folder).unwrap();
        for i in 0..KEYS {
            cache
                .put(&key(i), CachedRows::new(expected(i)))
                .await
                .unwrap();
        }
        cache.close().await.unwrap();
    });
}

/// A small deterministic generator, so that a trial can be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// Damages the file at `path` as `kind` says, from `seed`.
fn damage(path: &Path, kind: Kind, seed: u64) {
    let mut rng = Rng(seed.wrapping_mul(2_654_435_761).max(1));
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let len = file.metadata().unwrap().len();
    match kind {
        Kind::Flip => {
            let at = rng.below(len);
            let mut byte = [0u8];
            file.seek(SeekFrom::Start(at)).unwrap();
            file.read_exact(&mut byte).unwrap();
            byte[0] ^= 1 << rng.below(8);
            file.seek(SeekFrom::Start(at)).unwrap();
            file.write_all(&byte).unwrap();
        }
        Kind::Page => {
            let page = rng.below(len / 4096);
            let junk: Vec<u8> = (0..4096).map(|_| rng.below(256) as u8).collect();
            file.seek(SeekFrom::Start(page * 4096)).unwrap();
            file.write_all(&junk).unwrap();
        }
        Kind::Truncate => file.set_len(rng.below(len)).unwrap(),
    }
    file.sync_all().unwrap();
}

/// What the gets of one child found.
#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    right: u64,
    misses: u64,
    wrong: u64,
    /// Gets that returned `Err`.
    errors: u64,
    /// Writes that failed while the damage was being found.
    write_errors: u64,
    /// Trials whose cache did not take writes again after the damage.
    stuck: u64,
    /// Trials whose file was refused as not a database (its magic number was hit).
    refused: u64,
    resets: u64,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.right += other.right;
        self.misses += other.misses;
        self.wrong += other.wrong;
        self.errors += other.errors;
        self.write_errors += other.write_errors;
        self.stuck += other.stuck;
        self.refused += other.refused;
        self.resets += other.resets;
    }
}

/// Reads every key and tallies the answers.
async fn read_all(cache: &RedbCache, tally: &mut Tally) {
    for i in 0..KEYS {
        match cache.get(&key(i)).await {
            Ok(Some(found)) if *found.rows == expected(i) => tally.right += 1,
            Ok(Some(_)) => {
                eprintln!("WRONG value for {}", key(i));
                tally.wrong += 1;
            }
            Ok(None) => tally.misses += 1,
            Err(e) => {
                eprintln!("ERROR for {}: {e}", key(i));
                tally.errors += 1;
            }
        }
    }
}

/// The cache takes new writes and reads them back (the first may fail, finding the damage;
/// the last must not), and an invalidation removes what it covers.
async fn still_serves(cache: &RedbCache, tally: &mut Tally) {
    const PUTS: usize = 10;
    for i in 0..PUTS {
        let k = format!("new/{i}");
        if let Err(e) = cache.put(&k, CachedRows::new(expected(i))).await {
            eprintln!("note: a put after the damage failed: {e}");
            tally.write_errors += 1;
            if i == PUTS - 1 {
                eprintln!("STUCK: the cache takes no writes after the damage");
                tally.stuck += 1;
            }
            continue;
        }
        match cache.get(&k).await {
            Ok(Some(found)) if *found.rows == expected(i) => {}
            other => {
                eprintln!("WRONG: a put after the damage read back as {other:?}");
                tally.wrong += 1;
            }
        }
    }
    match cache.invalidate_prefix("k/01").await {
        Ok(()) => {
            for i in 10..20 {
                if !matches!(cache.get(&key(i)).await, Ok(None)) {
                    eprintln!("WRONG: {} survived its invalidation", key(i));
                    tally.wrong += 1;
                }
            }
        }
        Err(e) => eprintln!("note: an invalidation after the damage failed: {e}"),
    }
}

/// One trial, in this (child) process: `folder kind mode seed`.
fn child(spec: &str) {
    let parts: Vec<&str> = spec.split(' ').collect();
    let folder = PathBuf::from(parts[0]);
    let kind = match parts[1] {
        "Flip" => Kind::Flip,
        "Page" => Kind::Page,
        _ => Kind::Truncate,
    };
    let running = parts[2] == "Running";
    let seed: u64 = parts[3].parse().unwrap();
    let path = folder.join(DB_FILE_NAME);
    let tally = runtime().block_on(async {
        let mut tally = Tally::default();
        if !running {
            damage(&path, kind, seed);
        }
        let cache = match RedbCache::open(&folder) {
            Ok(cache) => cache,
            Err(Error::NotADatabase { .. }) => {
                tally.refused += 1;
                return tally;
            }
            Err(e) => panic!("open after damage: {e}"),
        };
        if running {
            read_all(&cache, &mut Tally::default()).await;
            damage(&path, kind, seed);
        }
        read_all(&cache, &mut tally).await;
        still_serves(&cache, &mut tally).await;
        tally.resets += cache.stats().resets;
        let _ = cache.close().await;
        // A reopen after the damage works, and still never misreads.
        let cache = RedbCache::open(&folder).expect("reopen after damage");
        read_all(&cache, &mut tally).await;
        tally.resets += cache.stats().resets;
        let _ = cache.close().await;
        tally
    });
    let t = tally;
    println!(
        "RESULT {} {} {} {} {} {} {} {}",
        t.right, t.misses, t.wrong, t.errors, t.write_errors, t.stuck, t.refused, t.resets
    );
}

/// Runs one trial in a child process; `None` if it died or hung.
fn run_child(folder: &Path, kind: Kind, mode: Mode, seed: u64) -> Option<Tally> {
    let spec = format!("{} {kind:?} {mode:?} {seed}", folder.display());
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(CHILD, &spec)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > CHILD_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let line = out.lines().find_map(|l| l.strip_prefix("RESULT "));
    match (status, line) {
        (Some(status), Some(line)) if status.success() => {
            let n: Vec<u64> = line.split(' ').map(|n| n.parse().unwrap()).collect();
            let tally = Tally {
                right: n[0],
                misses: n[1],
                wrong: n[2],
                errors: n[3],
                write_errors: n[4],
                stuck: n[5],
                refused: n[6],
                resets: n[7],
            };
            if tally.wrong + tally.errors + tally.stuck > 0 {
                eprintln!("trial {spec}:\n{}", tail(&err));
            }
            Some(tally)
        }
        (status, _) => {
            eprintln!("trial {spec} died or hung ({status:?}):\n{}", tail(&err));
            None
        }
    }
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

fn copy_folder(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    std::fs::copy(from.join(DB_FILE_NAME), to.join(DB_FILE_NAME)).unwrap();
}

fn no_trial_returns_a_wrong_value_an_error_or_dies() {
    let trials: u64 = std::env::var("VLIVE_DAMAGE_TRIALS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(6);
    let dir = tempfile::tempdir().unwrap();
    let template_dir = dir.path().join("template");
    template(&template_dir);
    let mut table: BTreeMap<(Kind, Mode), (Tally, u64)> = BTreeMap::new();
    let mut died = 0;
    for kind in [Kind::Flip, Kind::Page, Kind::Truncate] {
        for mode in [Mode::AtRest, Mode::Running] {
            for seed in 1..=trials {
                let folder = dir.path().join(format!("{kind:?}-{mode:?}-{seed}"));
                copy_folder(&template_dir, &folder);
                let entry = table.entry((kind, mode)).or_default();
                match run_child(&folder, kind, mode, seed) {
                    Some(tally) => entry.0.add(tally),
                    None => {
                        entry.1 += 1;
                        died += 1;
                    }
                }
                std::fs::remove_dir_all(&folder).unwrap();
            }
        }
    }
    println!(
        "kind      mode      trials  right  misses  wrong  errors  write-errors  stuck  refused  resets  died"
    );
    let mut total = Tally::default();
    for ((kind, mode), (tally, dead)) in &table {
        println!(
            "{:<9} {:<9} {trials:>6} {:>6} {:>7} {:>6} {:>7} {:>13} {:>6} {:>8} {:>7} {dead:>5}",
            format!("{kind:?}"),
            format!("{mode:?}"),
            tally.right,
            tally.misses,
            tally.wrong,
            tally.errors,
            tally.write_errors,
            tally.stuck,
            tally.refused,
            tally.resets
        );
        total.add(*tally);
    }
    assert_eq!(total.wrong, 0, "wrong values returned as Ok");
    assert_eq!(total.errors, 0, "gets that failed after damage");
    assert_eq!(total.stuck, 0, "caches that took no writes after damage");
    assert_eq!(died, 0, "trials that aborted or hung");
    assert!(
        total.right > 0,
        "no trial read anything back: the harness is broken"
    );
}

/// With `OnDamage::Fail`, a damaged file is a typed error at open, and the file stays as it
/// was; the default policy moves it aside and starts empty.
fn open_fails_on_damage_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    template(dir.path());
    let path = dir.path().join(DB_FILE_NAME);
    cut_in_half(&path);
    let before = std::fs::read(&path).unwrap();
    match RedbCache::builder()
        .on_damage(OnDamage::Fail)
        .open(dir.path())
    {
        Err(Error::Damaged { folder, reason }) => {
            assert_eq!(folder, dir.path().canonicalize().unwrap());
            assert!(reason.contains("truncated"), "{reason}");
        }
        other => panic!("expected Damaged, got {other:?}"),
    }
    assert!(
        std::fs::read(&path).unwrap() == before,
        "the damaged file was modified"
    );
    runtime().block_on(async {
        let cache = RedbCache::open(dir.path()).expect("the default policy starts afresh");
        assert_eq!(cache.stats().resets, 1);
        assert!(cache.get(&key(0)).await.unwrap().is_none());
        cache.close().await.unwrap();
    });
    assert_eq!(damaged_files(dir.path()).len(), 1);
}

/// Truncates the file to half its length: damage redb's open always finds.
fn cut_in_half(path: &Path) {
    let file = OpenOptions::new().write(true).open(path).unwrap();
    let len = file.metadata().unwrap().len();
    file.set_len(len / 2).unwrap();
}

fn damaged_files(folder: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".damaged-"))
        .collect()
}

/// Damage that recurs cannot fill the disk: at most two damaged files are kept.
fn only_the_newest_damaged_files_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..4u64 {
        template(dir.path());
        cut_in_half(&dir.path().join(DB_FILE_NAME));
        let cache = RedbCache::open(dir.path()).unwrap();
        assert_eq!(cache.stats().resets, 1, "round {round}");
        runtime().block_on(cache.close()).unwrap();
        // Distinct names: they are stamped to the millisecond.
        std::thread::sleep(Duration::from_millis(3));
    }
    assert_eq!(damaged_files(dir.path()).len(), 2);
}
