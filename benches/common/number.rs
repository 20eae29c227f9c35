//! How the benches print large numbers and short times.

use std::time::Duration;

/// `12345.6` → `12,346`.
pub fn thousands(n: f64) -> String {
    let digits = format!("{n:.0}");
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `1.234 ms` → `1.23 ms`.
#[allow(dead_code)] // not every bench prints times
pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}
