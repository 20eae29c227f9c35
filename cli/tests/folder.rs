//! The `vlive` binary, run end to end on cache folders filled through the library.

mod common;

use std::path::Path;

use common::{KEYS, demo_rows, listed_keys, vlive, vlive_json};
use vlive::{Cache, RedbCache};

/// A folder holding [`KEYS`], closed (as a stopped service leaves it).
async fn filled(dir: &Path) {
    let cache = RedbCache::open(dir).unwrap();
    for key in KEYS {
        cache.put(key, demo_rows(key)).await.unwrap();
    }
    cache.close().await.unwrap();
}

fn path(dir: &Path) -> &str {
    dir.to_str().unwrap()
}

#[tokio::test]
async fn stats_ls_and_get_show_what_the_folder_holds() {
    let tmp = tempfile::tempdir().unwrap();
    filled(tmp.path()).await;
    let dir = path(tmp.path());

    let stats = vlive_json(&["stats", dir]);
    assert_eq!(stats["entries"], 4);
    assert_eq!(stats["format"], 4);
    assert!(stats["file_bytes"].as_u64().unwrap() > 0, "{stats}");
    let table = vlive(&["stats", dir]);
    assert_eq!(table.code, 0);
    assert!(table.stdout.contains("entries     4"), "{}", table.stdout);

    let listed = vlive_json(&["ls", dir, "clients/id/"]);
    let keys = listed_keys(&listed);
    assert_eq!(keys, ["clients/id/c-0007", "clients/id/c-0008"]);
    assert_eq!(listed[0]["rows"], 1);
    assert_eq!(listed[0]["fetched_at_ms"], 1_767_225_600_123_i64);
    assert_eq!(listed[0]["damage"], serde_json::Value::Null);
    let limited = vlive_json(&["ls", dir, "--limit", "3"]);
    assert_eq!(limited.as_array().unwrap().len(), 3);
    let table = vlive(&["ls", dir, "clients/page"]);
    assert_eq!(table.code, 0);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", table.stdout);
    assert!(lines[1].starts_with("clients/page_1_10  "), "{}", lines[1]);
    assert!(
        lines[1].ends_with("2026-01-01 00:00:00  ok"),
        "{}",
        lines[1]
    );

    let page = vlive_json(&["get", dir, "clients/page_1_10"]);
    assert_eq!(page["rows"]["c-0002"]["name"], "client c-0002");
    assert_eq!(page["rows"]["c-0003"]["visits"], 20);
    assert_eq!(page["fetched_at_ms"], 1_767_225_600_123_i64);
    let table = vlive(&["get", dir, "clients/id/c-0007"]);
    assert_eq!(table.code, 0);
    assert!(
        table
            .stdout
            .contains("id      name           city    visits  note"),
        "{}",
        table.stdout
    );
    let missing = vlive(&["get", dir, "clients/id/c-9999"]);
    assert_eq!(missing.code, 2);
    assert!(missing.stderr.contains("no entry"), "{}", missing.stderr);
}

#[tokio::test]
async fn invalidate_removes_exactly_the_prefix_and_check_finds_it_sound() {
    let tmp = tempfile::tempdir().unwrap();
    filled(tmp.path()).await;
    let dir = path(tmp.path());

    let run = vlive(&["invalidate", dir, "clients/page"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let listed = vlive_json(&["ls", dir]);
    let keys = listed_keys(&listed);
    assert_eq!(keys, ["clients/id/c-0007", "clients/id/c-0008"]);
    assert_eq!(vlive_json(&["stats", dir])["entries"], 2);

    let check = vlive(&["check", dir]);
    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);
    assert!(
        check.stdout.contains("sound: 2 entries checked"),
        "{}",
        check.stdout
    );

    // The owner sees the same: the invalidation committed as any other.
    let cache = RedbCache::open(tmp.path()).unwrap();
    assert!(cache.get("clients/page_1_10").await.unwrap().is_none());
    assert!(cache.get("clients/id/c-0007").await.unwrap().is_some());
    cache.close().await.unwrap();
}

#[tokio::test]
async fn check_names_a_damaged_key_and_exits_1() {
    let tmp = tempfile::tempdir().unwrap();
    filled(tmp.path()).await;
    let dir = path(tmp.path());

    // Flip a byte of c-0008's note wherever the file holds it (redb may keep old copies of a
    // page too): the value's checksum no longer holds.
    let file = tmp.path().join(vlive::DB_FILE_NAME);
    let mut bytes = std::fs::read(&file).unwrap();
    let marker = b"MARKER-damage-me-0008";
    let mut flipped = 0;
    for at in 0..bytes.len() - marker.len() {
        if &bytes[at..at + marker.len()] == marker {
            bytes[at] ^= 0x20;
            flipped += 1;
        }
    }
    assert!(flipped > 0, "the marker is in the file");
    std::fs::write(&file, &bytes).unwrap();

    let check = vlive(&["check", dir]);
    assert_eq!(check.code, 1, "{}{}", check.stdout, check.stderr);
    assert!(
        check
            .stdout
            .contains("clients/id/c-0008  checksum mismatch"),
        "{}",
        check.stdout
    );
    assert!(
        check.stdout.contains("DAMAGED: 1 of 4 entries"),
        "{}",
        check.stdout
    );
    let json = common::vlive(&["check", dir, "--json"]);
    assert_eq!(json.code, 1);
    let json: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(json["sound"], false);
    assert_eq!(json["damaged"][0]["key"], "clients/id/c-0008");

    let listed = vlive_json(&["ls", dir, "clients/id/c-0008"]);
    assert_eq!(listed[0]["damage"], "checksum mismatch");
    let get = vlive(&["get", dir, "clients/id/c-0008"]);
    assert_eq!(get.code, 2);
    assert!(
        get.stderr
            .contains("entry \"clients/id/c-0008\" is damaged: checksum mismatch"),
        "{}",
        get.stderr
    );
    // The others still read.
    assert_eq!(
        vlive_json(&["get", dir, "clients/id/c-0007"])["rows"]["c-0007"]["note"],
        "first"
    );
}

#[tokio::test]
async fn a_folder_in_use_is_refused_plainly_by_every_verb() {
    let tmp = tempfile::tempdir().unwrap();
    filled(tmp.path()).await;
    let dir = path(tmp.path());
    let owner = RedbCache::open(tmp.path()).unwrap();

    for args in [
        vec!["stats", dir],
        vec!["ls", dir],
        vec!["get", dir, "clients/id/c-0007"],
        vec!["check", dir],
        vec!["invalidate", dir, "clients/"],
    ] {
        let run = vlive(&args);
        assert_eq!(run.code, 2, "{args:?}");
        assert!(
            run.stderr
                .contains(&format!("folder {dir} is in use by a running process")),
            "{args:?}: {}",
            run.stderr
        );
    }
    // Nothing was removed behind the owner's back.
    assert!(owner.get("clients/page_1_10").await.unwrap().is_some());
    owner.close().await.unwrap();
}

#[test]
fn a_folder_without_a_cache_is_named_and_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = path(tmp.path());
    for args in [vec!["stats", dir], vec!["invalidate", dir, ""]] {
        let run = vlive(&args);
        assert_eq!(run.code, 2, "{args:?}");
        assert!(run.stderr.contains("no cache in"), "{}", run.stderr);
    }
    assert!(!tmp.path().join(vlive::DB_FILE_NAME).exists());
}

#[test]
fn help_describes_every_verb() {
    let help = vlive(&["--help"]);
    assert_eq!(help.code, 0);
    for verb in ["stats", "ls", "get", "invalidate", "check", "redis"] {
        assert!(help.stdout.contains(verb), "{verb}: {}", help.stdout);
    }
    let redis = vlive(&["redis", "--help"]);
    assert!(redis.stdout.contains("--cluster"), "{}", redis.stdout);
    assert_eq!(
        vlive(&["ls"]).code,
        2,
        "a missing argument is a usage error"
    );
}
