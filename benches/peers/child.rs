//! Each cell runs in a child process of the bench binary, so that each subject's memory (RSS)
//! is its own and no subject inherits another's threads, caches or dirty pages. The parent
//! names the cell in an environment variable; the child prints its figures as `key=value`.

use crate::cell;
use crate::common::child::{run_self, status_kib};
use crate::params::Params;
use crate::subjects::Name;
use crate::workloads::Workload;

/// The environment variable that makes the binary a child: `subject workload batch`.
pub const CHILD: &str = "VLIVE_PEERS_CHILD";

/// What one cell measured.
#[derive(Clone, Copy, Debug, Default)]
pub struct Figures {
    /// Operations per second: acknowledged puts, or gets.
    pub ops: f64,
    /// vlive, fixed puts: puts per second until they were all flushed (durable).
    pub flushed: Option<f64>,
    /// redb-none, sustained: puts per second with a durable commit every `LAZY_MAX_DELAY`, as
    /// vlive-lazy makes, until they were all durable.
    pub checkpointed: Option<f64>,
    /// Gets that found their key.
    pub hit: Option<f64>,
    /// vlive's mean commands per batch; raw redb's batch.
    pub batch: Option<f64>,
    /// foyer, burst: how many of the puts reached its disk, of how many.
    pub disk: Option<(u64, u64)>,
    /// Resident memory at the end of a timed window, and the peak over the whole cell.
    pub rss_kib: Option<u64>,
    pub hwm_kib: Option<u64>,
}

impl Figures {
    pub fn measured(ops: f64) -> Self {
        Figures {
            ops,
            ..Figures::default()
        }
    }

    fn to_line(self) -> String {
        let mut line = format!("ops={}", self.ops);
        let mut add = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                line += &format!(" {k}={v}");
            }
        };
        add("flushed", self.flushed.map(|v| v.to_string()));
        add("checkpointed", self.checkpointed.map(|v| v.to_string()));
        add("hit", self.hit.map(|v| v.to_string()));
        add("batch", self.batch.map(|v| v.to_string()));
        add("disk", self.disk.map(|(n, m)| format!("{n}/{m}")));
        add("rss", self.rss_kib.map(|v| v.to_string()));
        add("hwm", self.hwm_kib.map(|v| v.to_string()));
        line
    }

    fn parse(line: &str) -> Self {
        let mut figures = Figures::default();
        for (k, v) in line.split_whitespace().filter_map(|kv| kv.split_once('=')) {
            match k {
                "ops" => figures.ops = v.parse().expect("ops"),
                "flushed" => figures.flushed = v.parse().ok(),
                "checkpointed" => figures.checkpointed = v.parse().ok(),
                "hit" => figures.hit = v.parse().ok(),
                "batch" => figures.batch = v.parse().ok(),
                "disk" => {
                    let (n, m) = v.split_once('/').expect("n/m");
                    figures.disk = Some((n.parse().expect("n"), m.parse().expect("m")));
                }
                "rss" => figures.rss_kib = v.parse().ok(),
                "hwm" => figures.hwm_kib = v.parse().ok(),
                _ => {}
            }
        }
        figures
    }
}

/// In the parent: runs one cell in a child process and reads its figures.
pub fn spawn(name: Name, workload: Workload, batch: f64) -> Figures {
    let spec = format!("{} {} {batch}", name.label(), workload.code());
    let stdout = run_self(CHILD, &spec);
    let line = stdout
        .lines()
        .rfind(|l| l.starts_with("ops="))
        .expect("figures");
    Figures::parse(line)
}

/// In the child: runs the cell the parent named and prints its figures.
pub fn run(spec: &str, params: &Params) {
    let parts: Vec<&str> = spec.split(' ').collect();
    let (name, workload) = (Name::parse(parts[0]), Workload::parse(parts[1]));
    let batch: f64 = parts[2].parse().expect("batch");
    let mut figures = cell::run(name, workload, batch, params);
    figures.hwm_kib = status_kib("VmHWM");
    println!("{}", figures.to_line());
}
