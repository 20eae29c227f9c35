//! The statistics the benches report: medians of rounds, quantiles of latencies.

/// The median of `values` (of an even count, the upper of the two middle ones).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The `q` quantile of sorted, non-empty `sorted` (0.5: the median, 1.0: the max), by the
/// nearest rank below.
pub fn quantile<T: Copy>(sorted: &[T], q: f64) -> T {
    sorted[((sorted.len() - 1) as f64 * q) as usize]
}
