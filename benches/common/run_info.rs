//! Where a bench writes its files, which commit it measured and on what machine, shared by
//! the bench targets.

use std::path::PathBuf;

/// The commit measured (`git describe --always --dirty`), so quoted numbers can name it.
#[allow(dead_code)] // not every bench names its commit
pub fn commit() -> String {
    std::process::Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map_or_else(|| "unknown".into(), |s| s.trim().to_owned())
}

/// Where the outputs go: `<target dir>/vlive-bench`, the target dir found from the bench
/// binary's own path (`<target>/release/deps/<bench>-…`), unless `CARGO_TARGET_DIR` says.
#[allow(dead_code)] // not every bench writes files
pub fn output_folder() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            Some(exe.parent()?.parent()?.parent()?.to_owned())
        })
        .unwrap_or_else(|| PathBuf::from("target"));
    target.join("vlive-bench")
}

/// CPU, cores, memory, kernel and temp folder: what the docs quote next to the numbers.
#[allow(dead_code)] // not every bench names its machine
pub fn machine() -> String {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown CPU".into(), |s| s.trim().to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gib = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.split_whitespace().next()?.parse::<f64>().ok())
        .map_or("?".into(), |kib| format!("{:.0}", kib / 1024.0 / 1024.0));
    let kernel = read("/proc/sys/kernel/osrelease");
    format!(
        "{cpu}, {cores} cores, {mem_gib} GiB RAM, Linux {}, temp folder {}",
        kernel.trim(),
        std::env::temp_dir().display()
    )
}
