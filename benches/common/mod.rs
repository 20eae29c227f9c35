//! The harness every bench shares. A bench includes it whole, under `#[allow(dead_code)]`
//! since each uses a part: `#[path = "common/mod.rs"] mod common;`. `number.rs`, `rng.rs`,
//! `run_info.rs`, `sample.rs` and `timing.rs` also stand alone, for benches that include one
//! with `#[path]`.

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
