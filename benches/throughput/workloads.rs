//! The workloads: what a cell's tasks do against the implementation under test, each cell on a
//! fresh runtime over a fresh folder.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use vlive::{CachedRows, Rows};

use crate::data::{Rng, key, random_key};
use crate::measure::{Control, Measured, measure, runtime, scratch_folder};
use crate::params::{PROBED_CONCURRENCY, PUT_PAGES, ROOTS, Timing, WARM_PAGES};
use crate::subjects::{Impl, Subject};

/// What the tasks of a cell do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    PutBurst,
    Get,
    Mixed,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::PutBurst => "put-burst",
            Workload::Get => "get (warm)",
            Workload::Mixed => "mixed 90/9/1",
        }
    }

    /// How the targets name a cell: `put-burst(64)`, `get(1)`.
    pub fn target_label(self, tasks: usize) -> String {
        let short = match self {
            Workload::PutBurst => "put-burst",
            Workload::Get => "get",
            Workload::Mixed => "mixed",
        };
        format!("{short}({tasks})")
    }

    /// Measures one round of the cell: `imp` opened on a fresh folder (prefilled, but for
    /// put-burst) on a fresh runtime, `concurrency` tasks each running the operations this
    /// workload picks, through [`measure`]; the lag probe runs alongside put-burst(64).
    pub fn run(self, imp: Impl, concurrency: usize, timing: Timing, rows: &Rows) -> Measured {
        let dir = scratch_folder();
        if self != Workload::PutBurst {
            prefill(dir.path(), rows);
        }
        let probed = self == Workload::PutBurst && concurrency == PROBED_CONCURRENCY;
        let rt = runtime();
        let subject = rt.block_on(async { imp.open(dir.path()) });
        let pick = self.picker();
        let measured = measure(
            &rt,
            timing,
            concurrency,
            probed,
            || subject.stats(),
            |i, control| {
                drive(
                    subject.clone(),
                    rows.clone(),
                    control,
                    Rng::new(i + 1),
                    pick,
                )
            },
        );
        rt.block_on(subject.close());
        measured
    }

    /// How this workload picks each operation of a task.
    fn picker(self) -> fn(&mut Rng) -> Op {
        match self {
            Workload::PutBurst => put_burst,
            Workload::Get => warm_get,
            Workload::Mixed => mixed,
        }
    }
}

/// One operation of a task.
enum Op {
    /// A get that decodes what it finds; `must_hit` where nothing invalidates the warm keys.
    Get {
        key: String,
        must_hit: bool,
    },
    /// A put of a fresh clone of the rows, as a caller would hand over.
    Put(String),
    InvalidatePrefix(String),
}

/// put-burst(c): puts to random keys (4096 keys over the 16 roots), back to back.
fn put_burst(rng: &mut Rng) -> Op {
    Op::Put(random_key(rng, PUT_PAGES))
}

/// get(c) on a warm cache: every get hits and decodes the rows.
fn warm_get(rng: &mut Rng) -> Op {
    Op::Get {
        key: random_key(rng, WARM_PAGES),
        must_hit: true,
    }
}

/// mixed(c): 90% get, 9% put, 1% `invalidate_prefix` over the prefilled keys.
fn mixed(rng: &mut Rng) -> Op {
    match rng.below(100) {
        0..90 => Op::Get {
            key: random_key(rng, WARM_PAGES),
            must_hit: false,
        },
        90..99 => Op::Put(random_key(rng, WARM_PAGES)),
        // `r07/page_03` covers `r07/page_030` … `r07/page_039`.
        _ => Op::InvalidatePrefix(format!("r{:02}/page_0{}", rng.below(ROOTS), rng.below(7))),
    }
}

/// One task: runs the operations `pick` chooses, back to back, until told to stop.
async fn drive(
    subject: Subject,
    rows: Rows,
    control: Arc<Control>,
    mut rng: Rng,
    pick: fn(&mut Rng) -> Op,
) {
    while control.running() {
        match pick(&mut rng) {
            Op::Get { key, must_hit } => {
                let found = black_box(subject.get(key).await);
                assert!(found.is_some() || !must_hit, "a warm get missed");
            }
            Op::Put(key) => subject.put(key, CachedRows::new(rows.clone())).await,
            Op::InvalidatePrefix(prefix) => subject.invalidate_prefix(prefix).await,
        }
        control.done().await;
    }
}

/// Fills `WARM_PAGES` keys per root through vlive (fast: group commit, lazy durability), closes
/// it, so that every implementation then opens the same prefilled file.
fn prefill(folder: &Path, rows: &Rows) {
    let rt = runtime();
    rt.block_on(async {
        let cache = Impl::VliveLazy.open(folder);
        let mut puts = tokio::task::JoinSet::new();
        for root in 0..ROOTS {
            let (cache, rows) = (cache.clone(), rows.clone());
            puts.spawn(async move {
                for page in 0..WARM_PAGES {
                    cache
                        .put(key(root, page), CachedRows::new(rows.clone()))
                        .await;
                }
            });
        }
        while let Some(done) = puts.join_next().await {
            done.expect("prefill task");
        }
        cache.close().await;
    });
}

/// The lag probe on an idle runtime: the floor every responsiveness number stands on.
pub fn idle_lag(timing: Timing) -> Measured {
    let rt = runtime();
    measure(&rt, timing, 0, true, || None, |_, _| async {})
}
