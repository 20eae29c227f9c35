//! The demo with `--metrics-addr`: its Prometheus endpoint serves vlive's metrics, and the
//! figures move as the story runs (feature `metrics`). Runs the built example binary.
#![cfg(feature = "metrics")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The features this test was built with: building the example with the same ones is a no-op
/// when `cargo test` built it already, and otherwise builds what this test expects.
fn features() -> String {
    // Every feature in Cargo.toml: one left out here rebuilds vlive and the example.
    let built_with = [
        ("redis", cfg!(feature = "redis")),
        ("postgres", cfg!(feature = "postgres")),
        ("serde", cfg!(feature = "serde")),
        ("test-hooks", cfg!(feature = "test-hooks")),
    ];
    let mut features = vec!["metrics"];
    for (name, on) in built_with {
        if on {
            features.push(name);
        }
    }
    features.join(",")
}

/// target/<profile>/examples/live_demo, built if need be.
fn demo_binary() -> PathBuf {
    let cargo = option_env!("CARGO").unwrap_or("cargo");
    let mut build = Command::new(cargo);
    build.args(["build", "--example", "live_demo", "--features", &features()]);
    if !cfg!(debug_assertions) {
        build.arg("--release");
    }
    // Without what cargo set for this test: build scripts (ring's) that read them would make
    // this build and the next `cargo test` rebuild each other's dependencies.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let set_for_tests = [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
        ]
        .iter()
        .any(|prefix| name.starts_with(prefix))
            || ["CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR", "OUT_DIR"].contains(&&*name);
        if set_for_tests {
            build.env_remove(&*name);
        }
    }
    let status = build
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(status.success(), "cargo build --example live_demo failed");
    // This test runs from target/<profile>/deps/.
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    profile_dir.join("examples").join("live_demo")
}

fn free_addr() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// `GET /metrics`, the body.
fn scrape(addr: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

/// Scrapes until `settled` holds, or for at most ten publisher periods; the last body either
/// way, for the caller's assertions to judge.
fn scrape_until(addr: &str, settled: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = scrape(addr);
        if settled(&body) || Instant::now() > deadline {
            return body;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The sum of every sample of `name` whose labels contain all of `labels` (0 when absent).
fn sum(body: &str, name: &str, labels: &[&str]) -> f64 {
    body.lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .filter(|line| labels.iter().all(|label| line.contains(label)))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Kills the demo if the test fails before it exits.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_demo_serves_metrics_that_move() {
    let binary = demo_binary();
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let child = Command::new(&binary)
        .arg("--dir")
        .arg(dir.path())
        .args([
            "--latency-ms",
            "1",
            "--metrics-addr",
            &addr,
            "--hold-secs",
            "600",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {}: {e}", binary.display()));
    let mut demo = Running(child);
    let mut lines = BufReader::new(demo.0.stdout.take().unwrap()).lines();
    let mut wait_for = |prefix: &str| loop {
        match lines.next() {
            Some(line) if line.as_ref().unwrap().starts_with(prefix) => return,
            Some(_) => {}
            None => panic!("the demo ended before printing {prefix:?}"),
        }
    };
    let hits = |body: &str| {
        sum(
            body,
            "vlive_cache_operations_total",
            &[r#"op="get""#, r#"outcome="hit""#],
        )
    };

    // The endpoint is up before the story begins: a new process, nothing counted yet.
    wait_for("metrics: http://");
    let before = hits(&scrape(&addr));
    // After the story. Its caches and table are closed, but their publishers copy figures once
    // a second on their own threads: the last figures may land a moment after "holding".
    wait_for("holding");
    let live_table_hits = |body: &str| {
        sum(
            body,
            "vlive_live_table_reads_total",
            &[r#"cache="clients""#, r#"outcome="hit""#],
        )
    };
    let after = scrape_until(&addr, |body| {
        hits(body) > before && live_table_hits(body) > 0.0
    });
    assert!(
        hits(&after) > before && hits(&after) > 0.0,
        "get hits should have grown from {before}:\n{after}"
    );
    assert!(live_table_hits(&after) > 0.0, "{after}");
    for gauge in [
        r#"vlive_cache_entries{cache="cache",tier="disk"}"#,
        r#"vlive_cache_bytes{cache="cache",kind="file"}"#,
        r#"vlive_cache_bytes{cache="cache",kind="live"}"#,
    ] {
        assert!(after.contains(gauge), "{gauge} missing:\n{after}");
    }
    assert!(
        sum(&after, "vlive_cache_batch_ops_count", &[r#"cache="cache""#]) > 0.0,
        "{after}"
    );
    assert!(
        sum(&after, "vlive_live_table_master_seconds_count", &[]) > 0.0,
        "{after}"
    );
}
