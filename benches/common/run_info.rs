//! Where a bench writes its files and which commit it measured, shared by the bench targets
//! (each includes this file with `#[path]`).

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
