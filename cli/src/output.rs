//! Printing: aligned tables for people, JSON for scripts, and the shared shapes of an entry, a
//! check and a set of rows.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value as Json, json};
use vlive::CachedRows;
use vlive::inspect::{EntryInfo, Verification};

/// `println!` that ignores a closed stdout (`vlive ls DIR | head`): a reader that stopped
/// reading is not an error, and `println!` would panic on it.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Prints `rows` under `headers`, each column as wide as its widest cell.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        say!("{}", padded.join("  ").trim_end());
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// Prints `value` as pretty JSON.
pub(crate) fn json(value: &Json) {
    say!(
        "{}",
        serde_json::to_string_pretty(value).expect("a JSON value always serializes")
    );
}

/// Pairs of (name, value), as a two-column table or one JSON object.
pub(crate) fn fields(pairs: &[(&str, Json)], as_json: bool) {
    if as_json {
        let object: serde_json::Map<String, Json> = pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone()))
            .collect();
        return json(&Json::Object(object));
    }
    let rows: Vec<Vec<String>> = pairs
        .iter()
        .map(|(name, value)| vec![(*name).to_owned(), plain(value)])
        .collect();
    table(&["field", "value"], &rows);
}

/// A listing of entries.
pub(crate) fn entries(listed: &[EntryInfo], as_json: bool) {
    if as_json {
        return json(&Json::Array(listed.iter().map(entry_json).collect()));
    }
    let rows: Vec<Vec<String>> = listed
        .iter()
        .map(|entry| {
            vec![
                entry.key.clone(),
                entry.value_bytes.to_string(),
                entry.rows.map_or("-".into(), |rows| rows.to_string()),
                entry.fetched_at.map_or("-".into(), utc),
                entry
                    .damage
                    .as_ref()
                    .map_or("ok".into(), |why| format!("DAMAGED: {why}")),
            ]
        })
        .collect();
    table(
        &["key", "bytes", "rows", "fetched_at (UTC)", "state"],
        &rows,
    );
}

fn entry_json(entry: &EntryInfo) -> Json {
    json!({
        "key": entry.key,
        "bytes": entry.value_bytes,
        "rows": entry.rows,
        "fetched_at_ms": entry.fetched_at.map(unix_ms),
        "damage": entry.damage,
    })
}

/// A check's outcome: what was read and the damaged keys.
pub(crate) fn verification(outcome: &Verification, as_json: bool) {
    if as_json {
        let damaged: Vec<Json> = outcome
            .damaged
            .iter()
            .map(|(key, why)| json!({ "key": key, "damage": why }))
            .collect();
        return json(&json!({
            "checked": outcome.checked,
            "sound": outcome.is_sound(),
            "damaged": damaged,
        }));
    }
    if outcome.is_sound() {
        say!("sound: {} entries checked, none damaged", outcome.checked);
        return;
    }
    let rows: Vec<Vec<String>> = outcome
        .damaged
        .iter()
        .map(|(key, why)| vec![key.clone(), why.clone()])
        .collect();
    table(&["damaged key", "what is wrong"], &rows);
    say!(
        "DAMAGED: {} of {} entries",
        outcome.damaged.len(),
        outcome.checked
    );
}

/// One entry's rows: a table with a column per field (in order of first appearance), or JSON.
pub(crate) fn cached_rows(key: &str, rows: &CachedRows, as_json: bool) {
    if as_json {
        let rows_json: serde_json::Map<String, Json> = rows
            .rows
            .iter()
            .map(|(id, record)| {
                let record: serde_json::Map<String, Json> = record
                    .iter()
                    .map(|(field, value)| (field.clone(), value_json(value)))
                    .collect();
                (id.clone(), Json::Object(record))
            })
            .collect();
        return json(&json!({
            "key": key,
            "fetched_at_ms": unix_ms(rows.fetched_at),
            "rows": rows_json,
        }));
    }
    let mut columns: Vec<&str> = Vec::new();
    for record in rows.rows.values() {
        for field in record.keys() {
            if !columns.contains(&field.as_str()) {
                columns.push(field);
            }
        }
    }
    let table_rows: Vec<Vec<String>> = rows
        .rows
        .iter()
        .map(|(id, record)| {
            let cells = columns
                .iter()
                .map(|field| record.get(*field).map_or(String::new(), cell));
            std::iter::once(id.clone()).chain(cells).collect()
        })
        .collect();
    let headers: Vec<&str> = std::iter::once("id").chain(columns).collect();
    say!(
        "{key}: {} rows, fetched {} UTC",
        rows.rows.len(),
        utc(rows.fetched_at)
    );
    table(&headers, &table_rows);
}

/// A field value as JSON: ciborium's `Value` serializes through serde.
fn value_json(value: &vlive::Value) -> Json {
    serde_json::to_value(value).unwrap_or_else(|e| Json::String(format!("<{e}>")))
}

/// A field value in a table cell: text as it is, anything else as compact JSON.
fn cell(value: &vlive::Value) -> String {
    match value {
        vlive::Value::Text(text) => text.clone(),
        other => value_json(other).to_string(),
    }
}

/// A JSON value in a table cell: strings without quotes.
fn plain(value: &Json) -> String {
    match value {
        Json::String(text) => text.clone(),
        Json::Null => "-".into(),
        other => other.to_string(),
    }
}

/// Milliseconds since the Unix epoch (negative before it).
pub(crate) fn unix_ms(at: SystemTime) -> i64 {
    match at.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// `YYYY-MM-DD HH:MM:SS` in UTC (the civil-from-days conversion: no time zone database needed).
pub(crate) fn utc(at: SystemTime) -> String {
    let secs = unix_ms(at).div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn utc_dates_match_known_instants() {
        let at = |secs| UNIX_EPOCH + Duration::from_secs(secs);
        assert_eq!(utc(UNIX_EPOCH), "1970-01-01 00:00:00");
        assert_eq!(utc(at(951_782_400)), "2000-02-29 00:00:00");
        assert_eq!(utc(at(1_767_225_599)), "2025-12-31 23:59:59");
        assert_eq!(
            utc(UNIX_EPOCH - Duration::from_secs(1)),
            "1969-12-31 23:59:59"
        );
    }
}
