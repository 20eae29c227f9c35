//! Child processes: a bench runs a cell in a fresh copy of its own binary so that the cell's
//! memory (RSS) and threads are its own.

use std::process::Command;

/// Runs this binary again with `var=spec` set; its standard output. Panics with its output if
/// it failed.
pub fn run_self(var: &str, spec: &str) -> String {
    let out = Command::new(std::env::current_exe().expect("own path"))
        // The parent's arguments, so that the child's run is the same size (`mode::size`).
        .args(std::env::args_os().skip(1))
        .env(var, spec)
        .output()
        .expect("run a child");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "child {spec} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A field of `/proc/self/status` in KiB, such as `VmRSS` or its peak `VmHWM` (Linux; `None`
/// elsewhere).
pub fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?;
    line.trim().trim_end_matches("kB").trim().parse().ok()
}
