//! The values every subject stores, each in the form the subject takes: vlive's and moka's
//! `CachedRows`, foyer's serde mirror of the same rows, and the encoded bytes (foyer-raw, raw
//! redb).

use std::sync::Arc;
use std::time::SystemTime;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use vlive::{CachedRows, Value};

use crate::sample::{encode, sample_rows};

/// The same rows as [`CachedRows`], in a type foyer's serde codec (bincode) can read back:
/// bincode cannot decode `ciborium::Value` (it needs a self-describing format), so the text
/// fields are `String`s. Same maps, same strings, same `Arc` that makes a put's clone cheap.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SerdeRows {
    pub fetched_at: SystemTime,
    pub rows: Arc<IndexMap<String, IndexMap<String, String>>>,
}

/// One value in every form, built once per cell.
pub struct Payload {
    pub rows: CachedRows,
    pub serde: SerdeRows,
    pub bytes: Vec<u8>,
}

impl Payload {
    /// The first `rows` rows of the shared sample (20: about 3.4 KB encoded).
    pub fn new(rows: usize) -> Self {
        let rows = CachedRows::new(sample_rows().into_iter().take(rows).collect());
        Payload {
            serde: mirror(&rows),
            bytes: encode(&rows),
            rows,
        }
    }

    /// What one entry weighs against a memory tier: key and encoded value, as vlive's hot tier
    /// counts it.
    pub fn weight(&self) -> u64 {
        (key(0).len() + self.bytes.len()) as u64
    }

    /// How many entries make `bytes`.
    pub fn keys_for(&self, bytes: u64) -> u64 {
        bytes / self.weight()
    }
}

fn mirror(rows: &CachedRows) -> SerdeRows {
    let text = |value: &Value| value.as_text().expect("the sample is text").to_owned();
    SerdeRows {
        fetched_at: rows.fetched_at,
        rows: Arc::new(
            rows.rows
                .iter()
                .map(|(id, record)| {
                    let fields = record.iter().map(|(f, v)| (f.clone(), text(v))).collect();
                    (id.clone(), fields)
                })
                .collect(),
        ),
    }
}

/// The key of entry `i`: one root, so vlive keeps every key in one table like the others.
pub fn key(i: u64) -> String {
    format!("k/{i:08}")
}
