//! Plants a deliberate bug for the loom mutant check (`loom-tests/mutants.sh`).
//!
//! `VLIVE_LOOM_MUTANT=<name>` in a `--cfg loom` build sets `cfg(vlive_mutant = "<name>")`,
//! which swaps one line of the protocol for a known bug so the script can show that the loom
//! models catch it. It is ignored in every other build. Going through a build script rather
//! than `RUSTFLAGS` keeps each mutant a rebuild of this crate only, not of every dependency.

fn main() {
    println!("cargo:rerun-if-env-changed=VLIVE_LOOM_MUTANT");
    let loom = std::env::var_os("CARGO_CFG_LOOM").is_some();
    if let (true, Ok(mutant)) = (loom, std::env::var("VLIVE_LOOM_MUTANT")) {
        if !mutant.is_empty() {
            println!("cargo:rustc-cfg=vlive_mutant=\"{mutant}\"");
            println!("cargo:warning=vlive built with planted bug `{mutant}` (loom mutant check)");
        }
    }
}
