//! The demo's clients: the sample rows it seeds, their ids, and the edit it makes behind the
//! table's back.

use vlive::{Record, Rows, Value};

/// Sample clients `c-0001…`, the same every time.
pub fn sample_clients(count: u32) -> Rows {
    const NAMES: [&str; 12] = [
        "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "John", "Margaret",
        "Dennis", "Radia", "Ken",
    ];
    const CITIES: [&str; 7] = ["London", "Paris", "Lagos", "Lima", "Osaka", "Oslo", "Pune"];
    (1..=count)
        .map(|i| {
            let n = i as usize;
            let mut record = Record::new();
            record.insert("name".into(), Value::Text(NAMES[n % NAMES.len()].into()));
            record.insert("city".into(), Value::Text(CITIES[n % CITIES.len()].into()));
            record.insert("visits".into(), Value::Integer((n as u64 * 7 % 50).into()));
            (client_id(i), record)
        })
        .collect()
}

/// `c-0007`.
pub fn client_id(i: u32) -> String {
    format!("c-{i:04}")
}

/// The out-of-band change the demo makes: one more visit, and a note of where it came from.
pub fn out_of_band_edit(current: &Record) -> Record {
    one_more_visit(current, "changed out of band")
}

/// A patch that adds one visit to `current` and leaves `note` on it.
pub fn one_more_visit(current: &Record, note: &str) -> Record {
    let visits = match current.get("visits") {
        Some(Value::Integer(n)) => i128::from(*n) + 1,
        _ => 1,
    };
    Record::from([
        ("visits".to_string(), Value::Integer((visits as i64).into())),
        ("note".to_string(), Value::Text(note.into())),
    ])
}
