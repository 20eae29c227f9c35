//! The harness every bench shares. A bench includes it whole, under `#[allow(dead_code)]`
//! since each uses a part: `#[path = "common/mod.rs"] mod common;`. `mode.rs`, `number.rs`,
//! `rng.rs`, `run_info.rs` and `sample.rs` also stand alone, for benches that include one with
//! `#[path]`; `timing.rs` with `mode.rs` beside it.

pub mod child;
pub mod fill;
pub mod mode;
pub mod number;
pub mod rng;
pub mod run_info;
pub mod sample;
pub mod stats;
pub mod tasks;
pub mod timing;
