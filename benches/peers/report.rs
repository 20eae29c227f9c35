//! What the rounds come to: the median of each figure, the table, the ratios the issue's
//! targets name, and what each subject acknowledges.

use std::collections::HashMap;

use crate::child::Figures;
use crate::number::thousands;
use crate::params::LAZY_MAX_DELAY;
use crate::subjects::Name;
use crate::workloads::Workload;

/// Every round's figures per cell.
#[derive(Default)]
pub struct Results(HashMap<(Workload, Name), Vec<Figures>>);

impl Results {
    pub fn add(&mut self, workload: Workload, name: Name, figures: Figures) {
        self.0.entry((workload, name)).or_default().push(figures);
    }

    /// The median round of one figure of a cell.
    fn median(&self, w: Workload, n: Name, pick: impl Fn(&Figures) -> Option<f64>) -> Option<f64> {
        let mut values: Vec<f64> = self.0.get(&(w, n))?.iter().filter_map(pick).collect();
        values.sort_by(f64::total_cmp);
        values.get(values.len() / 2).copied()
    }

    fn ops(&self, w: Workload, n: Name) -> Option<f64> {
        self.median(w, n, |f| Some(f.ops))
    }

    /// The last round's figures (for counts, which have no median worth the name).
    fn last(&self, w: Workload, n: Name) -> Option<&Figures> {
        self.0.get(&(w, n))?.last()
    }
}

pub fn print(results: &Results) {
    print_table(results);
    print_details(results);
    print_ratios(results);
    println!("\nwhat each subject acknowledges:");
    for name in Name::ALL {
        println!("  {:<13} {}", name.label(), name.acknowledges());
    }
}

fn print_table(results: &Results) {
    println!("\nops/s, median of the rounds (puts: acknowledged):");
    print!("{:<24}", "workload");
    for name in Name::ALL {
        print!("{:>14}", name.label());
    }
    println!();
    for w in Workload::ALL {
        print!("{:<24}", w.label());
        for name in Name::ALL {
            let cell = results.ops(w, name).map_or("-".into(), thousands);
            print!("{cell:>14}");
        }
        println!();
    }
}

fn print_details(results: &Results) {
    println!("\ndetails (medians; disk counts from the last round):");
    for w in Workload::ALL {
        for name in Name::ALL {
            let Some(last) = results.last(w, name) else {
                continue;
            };
            let mut notes = Vec::new();
            if let Some(v) = results.median(w, name, |f| f.flushed) {
                notes.push(format!("flushed {}/s", thousands(v)));
            }
            if let Some(v) = results.median(w, name, |f| f.checkpointed) {
                notes.push(format!("with vlive-lazy's checkpoints {}/s", thousands(v)));
            }
            if let Some(b) = results.median(w, name, |f| f.batch.filter(|&b| b > 0.0)) {
                notes.push(format!("batch {b:.1}"));
            }
            if let (Workload::ColdGet(_) | Workload::HotGet(_), Some(h)) =
                (w, results.median(w, name, |f| f.hit))
            {
                notes.push(format!("hits {:.0}%", h * 100.0));
            }
            if let Some((n, m)) = last.disk {
                notes.push(format!("{n} of {m} reached disk"));
            }
            if w == Workload::ColdGet(20) {
                let mib =
                    |kib: Option<f64>| kib.map_or("-".into(), |k| format!("{:.0}", k / 1024.0));
                let rss = results.median(w, name, |f| f.rss_kib.map(|k| k as f64));
                let hwm = results.median(w, name, |f| f.hwm_kib.map(|k| k as f64));
                notes.push(format!("RSS {} MiB, peak {} MiB", mib(rss), mib(hwm)));
            }
            if !notes.is_empty() {
                println!(
                    "  {:<24}{:<14}{}",
                    w.label(),
                    name.label(),
                    notes.join(", ")
                );
            }
        }
    }
}

/// One ratio against its target: `at_least` (or, if false, at most).
struct Target {
    what: &'static str,
    ratio: Option<f64>,
    bound: f64,
    at_least: bool,
}

fn print_ratios(r: &Results) {
    use Name::*;
    use Workload::*;
    let ratio = |w, a, b| Some(r.ops(w, a)? / r.ops(w, b)?);
    let flushed = r.median(Sustained, VliveLazy, |f| f.flushed);
    let peak = |n| r.median(ColdGet(20), n, |f| f.hwm_kib.map(|k| k as f64));
    let targets = [
        Target {
            what: "burst 64 tasks: vlive-lazy / foyer",
            ratio: ratio(Burst(64), VliveLazy, Foyer),
            bound: 1.0,
            at_least: true,
        },
        Target {
            what: "burst 1 task: vlive-lazy / foyer",
            ratio: ratio(Burst(1), VliveLazy, Foyer),
            bound: 0.5,
            at_least: true,
        },
        Target {
            what: "sustained: vlive-lazy flushed / redb-none",
            ratio: flushed.zip(r.ops(Sustained, RedbNone)).map(|(a, b)| a / b),
            bound: 0.9,
            at_least: true,
        },
        Target {
            what: "cold get 20 rows: vlive / foyer",
            ratio: ratio(ColdGet(20), VliveDurable, Foyer),
            bound: 2.0,
            at_least: true,
        },
        Target {
            what: "cold get 20 rows: vlive / foyer-raw",
            ratio: ratio(ColdGet(20), VliveDurable, FoyerRaw),
            bound: 0.6,
            at_least: true,
        },
        Target {
            what: "hot get 20 rows: vlive / moka",
            ratio: ratio(HotGet(20), VliveDurable, Moka),
            bound: 1.0,
            at_least: true,
        },
        Target {
            what: "hot get 1 row: vlive / moka",
            ratio: ratio(HotGet(1), VliveDurable, Moka),
            bound: 1.0,
            at_least: true,
        },
        Target {
            what: "burst 64 tasks: vlive-durable / redb-durable",
            ratio: ratio(Burst(64), VliveDurable, RedbDurable),
            bound: 0.9,
            at_least: true,
        },
        Target {
            what: "burst 1 task: vlive-durable / redb-durable",
            ratio: ratio(Burst(1), VliveDurable, RedbDurable),
            bound: 0.9,
            at_least: true,
        },
        Target {
            what: "peak RSS after cold get: vlive / foyer",
            ratio: peak(VliveDurable).zip(peak(Foyer)).map(|(a, b)| a / b),
            bound: 1.0,
            at_least: false,
        },
    ];
    let both_durable = flushed.zip(r.median(Sustained, RedbNone, |f| f.flushed));
    println!("\nratios against the issue's targets (vlive = vlive-durable, the default):");
    for t in targets {
        let Some(x) = t.ratio else { continue };
        let met = if t.at_least {
            x >= t.bound
        } else {
            x <= t.bound
        };
        let sign = if t.at_least { ">=" } else { "<=" };
        let verdict = if met { "met" } else { "NOT met" };
        println!(
            "  {:<46}{x:>7.2}x  (target {sign} {:.1}x: {verdict})",
            t.what, t.bound
        );
    }
    if let Some((vlive, redb)) = both_durable {
        println!(
            "  (sustained, both until their puts are durable: vlive-lazy flushed / redb-none \
             with a final durable commit {:.2}x)",
            vlive / redb
        );
    }
    let checkpointed = r.median(Sustained, RedbNone, |f| f.checkpointed);
    if let Some((vlive, redb)) = flushed.zip(checkpointed) {
        println!(
            "  (sustained, both checkpointing every {} ms: vlive-lazy flushed / redb-none \
             with vlive-lazy's checkpoints {:.2}x)",
            LAZY_MAX_DELAY.as_millis(),
            vlive / redb
        );
    }
}
