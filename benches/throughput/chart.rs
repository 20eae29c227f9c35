//! The SVG chart of a full run.

use std::error::Error;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::figures::Summary;
use crate::params::{GET_CONCURRENCY, PUT_CONCURRENCY, RAW_SMALL_BATCH};
use crate::report::thousands;
use crate::results::Results;
use crate::subjects::{CACHES, Impl, TABLE_IMPLS};
use crate::workloads::Workload;

/// `throughput.svg`: put-burst and warm gets, throughput against concurrency, one line per
/// implementation (log-log).
pub fn draw_chart(path: &Path, results: &Results) -> Result<(), Box<dyn Error>> {
    let root = SVGBackend::new(path, (1200, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let (title, body) = root.split_vertically(40);
    title.titled(
        "vlive RedbCache vs direct redb: throughput against concurrency (2 worker threads)",
        ("sans-serif", 20),
    )?;
    let (left, right) = body.split_horizontally(600);
    draw_panel(&left, results, Workload::PutBurst, &PUT_CONCURRENCY)?;
    draw_panel(&right, results, Workload::Get, &GET_CONCURRENCY)?;
    root.present()?;
    Ok(())
}

fn draw_panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    results: &Results,
    workload: Workload,
    concurrency: &[usize],
) -> Result<(), Box<dyn Error>> {
    let impls: &[Impl] = match workload {
        Workload::PutBurst => &TABLE_IMPLS,
        _ => &CACHES,
    };
    let values: Vec<f64> = impls
        .iter()
        .flat_map(|&imp| concurrency.iter().map(move |&c| (imp, c)))
        .filter_map(|(imp, c)| results.ops(workload, c, imp))
        .chain(
            Summary::of(&results.raw_small)
                .filter(|_| workload == Workload::PutBurst)
                .map(|raw| raw.ops_per_sec),
        )
        .filter(|v| *v > 0.0)
        .collect();
    if values.is_empty() {
        return Ok(());
    }
    let low = values.iter().copied().fold(f64::INFINITY, f64::min) / 1.5;
    // Head room above the lines for the legend.
    let high = values.iter().copied().fold(0.0, f64::max) * 6.0;
    let x_max = *concurrency.last().expect("concurrency levels") as f64;
    // Labels at 1, 2 and 5 times each power of ten within the range.
    let y_keys: Vec<f64> = (0..8)
        .flat_map(|exp| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(exp)))
        .filter(|y| (low..=high).contains(y))
        .collect();
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("{} (ops/s, log-log)", workload.name()),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (0.8..x_max * 1.25)
                .log_scale()
                .with_key_points(concurrency.iter().map(|&c| c as f64).collect()),
            (low..high).log_scale().with_key_points(y_keys),
        )?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .x_desc("concurrent tasks")
        .y_desc("ops/s")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| thousands(*y))
        .draw()?;
    for &imp in impls {
        let points: Vec<(f64, f64)> = concurrency
            .iter()
            .filter_map(|&c| Some((c as f64, results.ops(workload, c, imp)?)))
            .collect();
        let color = color(imp);
        let style = if imp == Impl::Ceiling {
            color.stroke_width(1)
        } else {
            color.stroke_width(2)
        };
        chart
            .draw_series(LineSeries::new(points, style).point_size(3))?
            .label(imp.name())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    // The most one transaction per 64 waiting callers can give, at 64 tasks.
    if let (Workload::PutBurst, Some(raw)) = (workload, Summary::of(&results.raw_small)) {
        let color = color(Impl::Ceiling);
        let at = (RAW_SMALL_BATCH as f64, raw.ops_per_sec);
        chart
            .draw_series([Cross::new(at, 6, color.stroke_width(2))])?
            .label(format!("raw redb, {RAW_SMALL_BATCH} inserts/txn"))
            .legend(move |(x, y)| Cross::new((x + 10, y), 5, color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// One color per implementation, the same in both panels.
fn color(imp: Impl) -> RGBColor {
    match imp {
        Impl::VliveImmediate => RGBColor(0x1f, 0x77, 0xb4),
        Impl::VliveLazy => RGBColor(0x2c, 0xa0, 0x2c),
        Impl::VliveCold => RGBColor(0x94, 0x67, 0xbd),
        Impl::VliveLazyBudget => RGBColor(0x17, 0xbe, 0xcf),
        Impl::Direct => RGBColor(0xd6, 0x27, 0x28),
        Impl::Blocking => RGBColor(0xff, 0x7f, 0x0e),
        Impl::Ceiling => RGBColor(0x55, 0x55, 0x55),
    }
}
