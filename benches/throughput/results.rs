//! The results of a run: every round of every cell, looked up by workload, tasks and
//! implementation.

use crate::figures::Summary;
use crate::measure::Measured;
use crate::params::{GET_CONCURRENCY, MIXED_CONCURRENCY, PUT_CONCURRENCY};
use crate::subjects::Impl;
use crate::workloads::Workload;

/// One cell of the table and what each round measured.
struct Cell {
    workload: Workload,
    concurrency: usize,
    imp: Impl,
    rounds: Vec<Measured>,
}

/// Every round of every cell, and of the references measured beside them.
#[derive(Default)]
pub struct Results {
    cells: Vec<Cell>,
    pub ceiling: Vec<Measured>,
    /// Raw redb at `RAW_SMALL_BATCH` inserts per transaction.
    pub raw_small: Vec<Measured>,
    pub idle: Vec<Measured>,
}

impl Results {
    pub fn record(
        &mut self,
        workload: Workload,
        concurrency: usize,
        imp: Impl,
        measured: Measured,
    ) {
        let same =
            |c: &&mut Cell| c.workload == workload && c.concurrency == concurrency && c.imp == imp;
        match self.cells.iter_mut().find(same) {
            Some(cell) => cell.rounds.push(measured),
            None => self.cells.push(Cell {
                workload,
                concurrency,
                imp,
                rounds: vec![measured],
            }),
        }
    }

    /// Every round measured for one cell (the ceiling stands for every put-burst row).
    pub fn rounds(&self, workload: Workload, concurrency: usize, imp: Impl) -> &[Measured] {
        match (imp, workload) {
            (Impl::Ceiling, Workload::PutBurst) => &self.ceiling,
            (Impl::Ceiling, _) => &[],
            _ => self
                .cells
                .iter()
                .find(|c| c.workload == workload && c.concurrency == concurrency && c.imp == imp)
                .map_or(&[], |c| &c.rounds),
        }
    }

    pub fn find(&self, workload: Workload, concurrency: usize, imp: Impl) -> Option<Summary> {
        Summary::of(self.rounds(workload, concurrency, imp))
    }

    pub fn ops(&self, workload: Workload, concurrency: usize, imp: Impl) -> Option<f64> {
        self.find(workload, concurrency, imp).map(|m| m.ops_per_sec)
    }

    pub fn ratio(
        &self,
        workload: Workload,
        concurrency: usize,
        num: Impl,
        den: Impl,
    ) -> Option<f64> {
        Some(self.ops(workload, concurrency, num)? / self.ops(workload, concurrency, den)?)
    }

    /// The table's rows, in order.
    pub fn rows() -> Vec<(Workload, usize)> {
        let puts = PUT_CONCURRENCY.iter().map(|&c| (Workload::PutBurst, c));
        let gets = GET_CONCURRENCY.iter().map(|&c| (Workload::Get, c));
        puts.chain(gets)
            .chain([(Workload::Mixed, MIXED_CONCURRENCY)])
            .collect()
    }
}
