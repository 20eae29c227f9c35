//! `churn.svg`: file length, disk blocks and live bytes against the volume written, one panel
//! per cell, with the target and the budget as flat lines.

use std::error::Error;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::params::{MIB, Params};
use crate::report::CellResult;
use crate::samples::{Measure, Phase, Sample};

const LEN: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const DISK: RGBColor = RGBColor(0xff, 0x7f, 0x0e);
const LIVE: RGBColor = RGBColor(0x2c, 0xa0, 0x2c);
const TARGET: RGBColor = RGBColor(0xd6, 0x27, 0x28);
const BUDGET: RGBColor = RGBColor(0x77, 0x77, 0x77);

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

pub fn draw_chart(
    path: &Path,
    params: &Params,
    cells: &[CellResult],
) -> Result<(), Box<dyn Error>> {
    let width = 700 * cells.len().max(1) as u32;
    let root = SVGBackend::new(path, (width, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let (title, body) = root.split_vertically(40);
    title.titled(
        &format!(
            "vlive RedbCache under churn: {} MiB budget, {} x the budget written",
            params.budget / MIB,
            crate::params::VOLUME
        ),
        ("sans-serif", 20),
    )?;
    for (panel, cell) in body.split_evenly((1, cells.len().max(1))).iter().zip(cells) {
        draw_panel(panel, params, cell)?;
    }
    root.present()?;
    Ok(())
}

fn draw_panel(area: &Area<'_>, params: &Params, cell: &CellResult) -> Result<(), Box<dyn Error>> {
    let mib = |bytes: u64| bytes as f64 / MIB as f64;
    let x = |s: &Sample| s.written as f64 / params.budget as f64;
    let high = cell
        .samples
        .iter()
        .map(|s| s.file_len.max(s.disk_bytes))
        .chain([params.target()])
        .max()
        .map_or(1.0, mib)
        * 1.25;
    let x_max = cell.samples.iter().map(x).fold(1.0, f64::max);
    let mut chart = ChartBuilder::on(area)
        .caption(format!("durability: {}", cell.name), ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_max * 1.05, 0.0..high)?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .x_desc("written (x budget)")
        .y_desc("MiB")
        .draw()?;
    let churn: Vec<&Sample> = cell
        .samples
        .iter()
        .filter(|s| s.phase == Phase::Churn)
        .collect();
    let series: [(&str, RGBColor, Measure); 3] = [
        ("file length", LEN, |s| s.file_len),
        ("disk blocks", DISK, |s| s.disk_bytes),
        ("live bytes", LIVE, |s| s.stats.live_bytes),
    ];
    for (name, color, measure) in series {
        let points = churn.iter().map(|s| (x(s), mib(measure(s))));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    flat_line(
        &mut chart,
        x_max,
        mib(params.target()),
        TARGET,
        &format!(
            "target 1.25 x budget + {} MiB",
            params.workload.slack() / MIB
        ),
    )?;
    flat_line(&mut chart, x_max, mib(params.budget), BUDGET, "budget")?;
    draw_reopened(&mut chart, cell, x)?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

type Chart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

fn flat_line(
    chart: &mut Chart<'_, '_>,
    x_max: f64,
    y: f64,
    color: RGBColor,
    label: &str,
) -> Result<(), Box<dyn Error>> {
    chart
        .draw_series(LineSeries::new(
            [(0.0, y), (x_max * 1.05, y)],
            color.stroke_width(1),
        ))?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    Ok(())
}

/// The file after a clean close and reopen: crosses at the last volume written.
fn draw_reopened(
    chart: &mut Chart<'_, '_>,
    cell: &CellResult,
    x: impl Fn(&Sample) -> f64,
) -> Result<(), Box<dyn Error>> {
    let mib = |bytes: u64| bytes as f64 / MIB as f64;
    let Some(s) = cell.samples.iter().find(|s| s.phase == Phase::Reopened) else {
        return Ok(());
    };
    let marks = [(s.file_len, LEN), (s.disk_bytes, DISK)]
        .map(|(bytes, color)| Cross::new((x(s), mib(bytes)), 6, color.stroke_width(2)));
    chart
        .draw_series(marks)?
        .label("after close + reopen")
        .legend(|(x, y)| Cross::new((x + 10, y), 5, BLACK.stroke_width(2)));
    Ok(())
}
