//! How the demo prints: values, rows as a table, grids, durations.

use std::time::Duration;

use vlive::{Record, Rows, Value};

/// A value as a person would write it: `Ada`, `42`, `true`.
pub fn show_value(value: &Value) -> String {
    match value {
        Value::Text(text) => text.clone(),
        Value::Integer(n) => i128::from(*n).to_string(),
        Value::Float(x) => x.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        other => format!("{other:?}"),
    }
}

/// Prints rows as a table: an `id` column, then every field name in first-seen order.
pub fn print_rows(rows: &Rows) {
    let mut columns: Vec<&str> = Vec::new();
    for record in rows.values() {
        for field in record.keys() {
            if !columns.contains(&field.as_str()) {
                columns.push(field);
            }
        }
    }
    let mut lines = vec![
        std::iter::once("id".to_string())
            .chain(columns.iter().map(|c| c.to_string()))
            .collect::<Vec<_>>(),
    ];
    for (id, record) in rows {
        let mut line = vec![id.clone()];
        line.extend(
            columns
                .iter()
                .map(|c| record.get(*c).map(show_value).unwrap_or_default()),
        );
        lines.push(line);
    }
    print_table(&lines);
}

/// Prints a grid with a header rule; the first line is the header.
pub fn print_table(lines: &[Vec<String>]) {
    let columns = lines.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            lines
                .iter()
                .filter_map(|l| l.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for (n, line) in lines.iter().enumerate() {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("  {}", cells.join("  ").trim_end());
        if n == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "─".repeat(*w)).collect();
            println!("  {}", rule.join("  "));
        }
    }
}

/// A duration at a precision that suits its size: `0.03 ms`, `13.6 ms`, `1.20 s`.
pub fn ms(duration: Duration) -> String {
    let ms = duration.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.2} s", duration.as_secs_f64())
    }
}

/// A record's field for display; `-` when there is no record or no such field.
pub fn field(record: &Option<Record>, name: &str) -> String {
    record
        .as_ref()
        .and_then(|r| r.get(name))
        .map(show_value)
        .unwrap_or_else(|| "-".into())
}
