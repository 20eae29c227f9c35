//! Running the `vlive` binary and filling caches the way the demo does.
#![allow(dead_code)]

use std::process::{Command, Output};
use std::time::{Duration, UNIX_EPOCH};

use vlive::{CachedRows, Record, Rows, Value};

/// The binary's stdout, stderr and exit code.
pub struct Run {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

/// Runs `vlive ARGS…`.
pub fn vlive(args: &[&str]) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(env!("CARGO_BIN_EXE_vlive"))
        .args(args)
        .output()
        .expect("the vlive binary runs");
    Run {
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
        code: status.code().expect("exited, not killed"),
    }
}

/// Runs `vlive ARGS… --json` and parses what it printed; the run must succeed.
pub fn vlive_json(args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.push("--json");
    let run = vlive(&all);
    assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

/// The demo's rows for a page of clients: `ids`, each with a name, a city and a visit count.
/// `note` goes in every row's `note` field (a marker the damage test finds in the file).
/// The keys of an `ls --json` listing, in order.
pub fn listed_keys(listed: &serde_json::Value) -> Vec<&str> {
    let entries = listed.as_array().expect("ls --json prints an array");
    entries.iter().map(|e| e["key"].as_str().unwrap()).collect()
}

pub fn clients(ids: &[&str], note: &str) -> CachedRows {
    let rows: Rows = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let record = Record::from([
                ("name".into(), Value::Text(format!("client {id}"))),
                ("city".into(), Value::Text("London".into())),
                ("visits".into(), Value::Integer((i as i64 * 10).into())),
                ("note".into(), Value::Text(note.into())),
            ]);
            ((*id).to_owned(), record)
        })
        .collect();
    CachedRows::with_fetched_at(rows, UNIX_EPOCH + Duration::from_millis(1_767_225_600_123))
}

/// The demo's keys: two pages and two single clients.
pub const KEYS: [&str; 4] = [
    "clients/id/c-0007",
    "clients/id/c-0008",
    "clients/page_1_10",
    "clients/page_2_10",
];

/// The rows stored under each of [`KEYS`].
pub fn demo_rows(key: &str) -> CachedRows {
    match key {
        "clients/id/c-0007" => clients(&["c-0007"], "first"),
        "clients/id/c-0008" => clients(&["c-0008"], "MARKER-damage-me-0008"),
        _ => clients(&["c-0001", "c-0002", "c-0003"], "page"),
    }
}
