//! What a full run leaves behind, under `<target dir>/vlive-bench/`: the CSV files and the
//! SVG chart (the tables, in Markdown, are the run's output).

use std::time::Instant;

use crate::chart::draw_chart;
use crate::csv::{cells_csv, throughput_csv};
use crate::results::Results;

/// Writes every file, then says where (and how long the whole run took since `started`).
pub fn write_all(results: &Results, started: Instant) {
    let out = crate::run_info::output_folder();
    std::fs::create_dir_all(&out).expect("create the output folder");
    let write = |name: &str, text: &str| {
        std::fs::write(out.join(name), text).unwrap_or_else(|e| panic!("write {name}: {e}"));
    };
    write("throughput.csv", &throughput_csv(results));
    write("cells.csv", &cells_csv(results));
    let chart = out.join("throughput.svg");
    if let Err(e) = draw_chart(&chart, results) {
        eprintln!("could not draw the chart: {e}");
    }
    println!(
        "wrote throughput.csv, cells.csv and throughput.svg to {} ({:.0} s in all)",
        out.display(),
        started.elapsed().as_secs_f64()
    );
}
