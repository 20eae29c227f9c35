//! A full disk fails writes, never reads (issue 17, item 3), in both durability modes:
//!
//! - `ENOSPC` injected through the backend layer: puts fail with `DiskFull`, gets keep
//!   answering (hits or misses, never `Err`), an invalidation that cannot commit discards the
//!   file so that its value never comes back, and writes resume once the disk has room;
//! - a real, small tmpfs filled up (the tests run as root, as CI does; they fail, not skip,
//!   where it cannot be mounted): the free-space reserve refuses puts while invalidations still
//!   commit, and writes resume when space comes back.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Faults, tag, value, within};
use vlive::{Cache, Durability, Error, RedbCache};

fn modes() -> [Durability; 2] {
    [
        Durability::Immediate,
        Durability::Lazy {
            max_delay: Duration::from_secs(3600),
        },
    ]
}

/// Every key of `keys` reads as its own value or as a miss: never an error, never another
/// value.
async fn reads_never_fail(cache: &RedbCache, keys: &[String], what: &str) -> usize {
    let mut hits = 0;
    for key in keys {
        match within("a get on a full disk", cache.get(key)).await {
            Ok(Some(rows)) => {
                assert_eq!(
                    common::tag_of(&rows),
                    *key,
                    "{what}: {key} read another value"
                );
                hits += 1;
            }
            Ok(None) => {}
            Err(e) => panic!("{what}: a get of {key} failed on a full disk: {e}"),
        }
    }
    hits
}

/// Once the disk has room again, a put goes through and reads back, with nothing done by the
/// user.
async fn writes_resume(cache: &RedbCache) {
    within(
        "a put after space came back",
        cache.put("back", value("back")),
    )
    .await
    .unwrap();
    assert_eq!(tag(cache, "back").await.as_deref(), Some("back"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_enospc_fails_puts_not_gets_and_writes_resume() {
    for mode in modes() {
        let dir = tempfile::tempdir().unwrap();
        let faults = Faults::new();
        let cache = RedbCache::builder()
            .durability(mode)
            .backend_layer(faults.layer())
            .open(dir.path())
            .unwrap();
        let keys: Vec<String> = (0..20).map(|i| format!("k/{i}")).collect();
        for key in &keys {
            cache.put(key, value(key)).await.unwrap();
        }
        cache.flush().await.unwrap();

        faults.disk_full.store(true, Ordering::SeqCst);
        if matches!(mode, Durability::Lazy { .. }) {
            // A lazy put is acknowledged before it reaches the disk, so the disk's refusal
            // shows at the checkpoint; the put is lost then, and reads as a miss.
            cache.put("lazy/lost", value("lost")).await.unwrap();
            let flushed = within("a flush on a full disk", cache.flush()).await;
            assert!(flushed.is_err(), "a checkpoint on a full disk: {flushed:?}");
            assert_eq!(tag(&cache, "lazy/lost").await, None);
        }
        // From now on, puts fail at once, in both modes.
        for i in 0..5 {
            let key = format!("new/{i}");
            match within("a put on a full disk", cache.put(&key, value("x"))).await {
                Err(Error::DiskFull { folder, .. }) => assert_eq!(folder, cache.folder()),
                other => panic!("{mode:?}: a put on a full disk got {other:?}"),
            }
            reads_never_fail(&cache, &keys, &format!("{mode:?}")).await;
        }
        // An invalidation that cannot commit, even alone: its caller hears of it, and the
        // file is discarded, so the value can never be served again.
        let invalidated = within("an invalidation", cache.invalidate_prefix("k/1")).await;
        assert!(invalidated.is_err(), "{mode:?}: {invalidated:?}");
        assert!(
            cache.stats().resets >= 1,
            "{mode:?}: the file was not discarded"
        );
        for key in ["k/1", "k/10", "k/19"] {
            let got = within("a get", cache.get(key)).await;
            assert!(
                matches!(got, Ok(None)),
                "{mode:?}: {key} after a lost invalidation: {got:?}"
            );
        }
        reads_never_fail(&cache, &keys, &format!("{mode:?}, after the reset")).await;

        // Space comes back: writes resume without anything from the user.
        faults.disk_full.store(false, Ordering::SeqCst);
        writes_resume(&cache).await;
        let _ = within("close", cache.close()).await;

        let reopened = RedbCache::open(dir.path()).unwrap();
        for key in ["k/1", "k/10", "k/19"] {
            assert_eq!(tag(&reopened, key).await, None, "{mode:?}: {key} came back");
        }
        reopened.close().await.unwrap();
    }
}

/// A tmpfs of its own, unmounted on drop.
struct Tmpfs {
    mount: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(megabytes: u64) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let mount = dir.path().join("disk");
        std::fs::create_dir(&mount).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(&mount)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "cannot mount a tmpfs (these tests run as root, as CI does): {status}"
        );
        Tmpfs { mount, _dir: dir }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
    }
}

/// Fills the filesystem of `folder` until less than `leave` bytes are free.
fn fill_disk(folder: &Path, leave: u64) -> PathBuf {
    let filler = folder.join("filler");
    let stats = rustix::fs::statvfs(folder).unwrap();
    let free = stats.f_bavail * stats.f_frsize;
    let size = free.saturating_sub(leave);
    let mut file = std::fs::File::create(&filler).unwrap();
    let chunk = vec![0x5au8; 1 << 20];
    let mut written = 0;
    while written < size {
        let n = chunk.len().min((size - written) as usize);
        if std::io::Write::write_all(&mut file, &chunk[..n]).is_err() {
            break;
        }
        written += n as u64;
    }
    file.sync_all().unwrap();
    filler
}

/// The disk filled behind the cache's back: lazy puts sent before the actor's next look at it
/// were acknowledged (`acknowledged`). They are lost, counted, reported by the next flush, and
/// read as misses; once the actor has looked, every put waits for its commit and is refused.
async fn lazy_puts_sent_before_the_look_are_lost(cache: &RedbCache, acknowledged: &[String]) {
    // Acknowledged puts may still sit in the write buffer: the flush is what makes the actor
    // try (and fail) to commit them, so count only after it.
    let flushed = within("flush", cache.flush()).await;
    let lost = cache.stats().lazy_writes_lost;
    assert_eq!(lost, acknowledged.len() as u64, "lost puts not counted");
    match lost {
        0 => flushed.unwrap(),
        _ => assert!(
            matches!(flushed, Err(Error::LazyWritesLost { .. })),
            "lost puts not reported: {flushed:?}"
        ),
    }
    for key in acknowledged {
        assert_eq!(tag(cache, key).await, None, "{key} was not lost");
    }
    for i in 0..10 {
        let got = within("a put", cache.put(&format!("later/{i}"), value("later"))).await;
        assert!(
            matches!(got, Err(Error::DiskFull { .. })),
            "a put after the actor saw the disk full: {got:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_full_disk_refuses_puts_keeps_gets_and_invalidations_and_recovers() {
    const RESERVE: u64 = 4 << 20;
    for mode in modes() {
        let disk = Tmpfs::mount(48);
        let folder = disk.mount.join("cache");
        let cache = RedbCache::builder()
            .durability(mode)
            .disk_reserve(RESERVE)
            .open(&folder)
            .unwrap();
        let keys: Vec<String> = (0..30).map(|i| format!("k/{i}")).collect();
        for key in &keys {
            cache.put(key, value(key)).await.unwrap();
        }
        cache.flush().await.unwrap();
        // Leave a little less than the reserve.
        let filler = fill_disk(&folder, RESERVE / 2);

        let mut refused = 0;
        let mut acknowledged = Vec::new();
        for i in 0..50 {
            let key = format!("more/{i}");
            match within("a put", cache.put(&key, value("more"))).await {
                Err(Error::DiskFull { .. }) => refused += 1,
                Ok(()) => acknowledged.push(key),
                Err(other) => panic!("{mode:?}: a put on a full disk failed with {other}"),
            }
        }
        assert_eq!(refused + acknowledged.len(), 50);
        match mode {
            Durability::Immediate => assert_eq!(refused, 50, "puts went on below the reserve"),
            Durability::Lazy { .. } => {
                lazy_puts_sent_before_the_look_are_lost(&cache, &acknowledged).await
            }
        }
        assert!(cache.stats().refused_for_space >= refused as u64);
        let hits = reads_never_fail(&cache, &keys, &format!("{mode:?} tmpfs")).await;
        assert_eq!(
            hits,
            keys.len(),
            "{mode:?}: committed values must still be served"
        );
        // The reserve keeps room for invalidations.
        within("an invalidation", cache.invalidate_prefix("k/2"))
            .await
            .unwrap();
        assert_eq!(tag(&cache, "k/2").await, None);
        assert_eq!(tag(&cache, "k/3").await.as_deref(), Some("k/3"));

        // Space comes back.
        std::fs::remove_file(&filler).unwrap();
        writes_resume(&cache).await;
        cache.close().await.unwrap();
    }
}
