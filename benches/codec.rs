//! # Codec: the hand-written CBOR codec against ciborium, side by side, in one run
//!
//! `cargo bench --bench codec` encodes and decodes one realistic value — 20 rows of 11 fields
//! (text, integers, floats, bools, a null and a small nested array), about 3.4 KB of CBOR —
//! with vlive's codec and with the serde + ciborium path it replaced (`codec::reference`, which
//! defines the stored bytes), and prints ops/s for each and their ratio. For scale it also times
//! cloning the rows: the allocations any decode into `Rows` must make, with no parsing at all.
//!
//! Before timing anything the run checks that both write the same bytes and read back the same
//! rows, so the two sides do the same work. Each operation is measured in 5 rounds of 1 s after
//! a 0.5 s warm-up, the rounds of the five operations interleaved so that a burst of load from
//! another process spoils one round of each rather than all of one; the table shows each
//! operation's median round (about 30 s in all). `VLIVE_BENCH_QUICK=1` makes 3 rounds of 0.25 s
//! (a few seconds, noisier). Under `cargo test --benches` (no `--bench` argument) every
//! operation runs for a few milliseconds as a smoke test.

use std::hint::black_box;
use std::time::{Duration, UNIX_EPOCH};

use common::mode::benching;
use common::timing::Timing;
use common::{number::thousands, run_info::commit};
use vlive::__private::codec::{self, reference};
use vlive::{CachedRows, Record, Rows, Value};

#[path = "common/mod.rs"]
#[allow(dead_code)] // each bench uses a part of the harness
mod common;

/// An operation to time, by name.
type Op<'a> = (&'static str, Box<dyn FnMut() + 'a>);

fn op<'a>(name: &'static str, f: impl FnMut() + 'a) -> Op<'a> {
    (name, Box::new(f))
}

/// 20 rows of a customer table: the kind of value a warm get decodes.
fn sample() -> CachedRows {
    let cities = ["Lisbon", "Porto", "Braga", "Coimbra", "Faro"];
    let rows: Rows = (0..20u32)
        .map(|i| {
            let mut record = Record::new();
            record.insert("id".into(), Value::from(10_000 + i));
            record.insert("name".into(), Value::Text(format!("Customer {i:03}")));
            record.insert(
                "email".into(),
                Value::Text(format!("customer{i:03}@example.com")),
            );
            let city = cities[i as usize % 5];
            record.insert(
                "address".into(),
                Value::Text(format!("Rua das Flores {}, {city}", i * 7)),
            );
            record.insert("age".into(), Value::from(20 + i % 50));
            record.insert(
                "balance".into(),
                Value::Float(1234.56 + f64::from(i) * 17.31),
            );
            record.insert("rating".into(), Value::Float(f64::from(i % 10) / 2.0));
            record.insert("active".into(), Value::Bool(i % 3 != 0));
            record.insert("manager".into(), Value::Null);
            record.insert(
                "created".into(),
                Value::from(1_700_000_000 + u64::from(i) * 86_400),
            );
            let tags = ["retail", "vip", "eu"].map(|t| Value::Text(t.into()));
            record.insert(
                "tags".into(),
                Value::Array(tags[..1 + i as usize % 3].to_vec()),
            );
            (format!("{i}"), record)
        })
        .collect();
    CachedRows::with_fetched_at(rows, UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789))
}

fn main() {
    let benching = benching();
    let timing = Timing::from_env();
    let value = sample();
    let bytes = codec::encode(&value).expect("the sample encodes");
    assert_eq!(
        bytes,
        reference::encode(&value).unwrap(),
        "both codecs write the same bytes"
    );
    let decoded = codec::decode(&bytes).expect("the sample decodes");
    assert_eq!(
        reference::encode(&decoded).unwrap(),
        bytes,
        "and read the same rows back"
    );

    // Pairs (vlive codec, ciborium), then cloning the rows alone: the allocations a decode must
    // make anyway, without parsing or hashing, as a floor for scale.
    let mut ops: [Op; 5] = [
        op("encode", || {
            drop(black_box(codec::encode(black_box(&value))))
        }),
        op("encode", || {
            drop(black_box(reference::encode(black_box(&value))))
        }),
        op("decode", || {
            drop(black_box(codec::decode(black_box(&bytes))))
        }),
        op("decode", || {
            drop(black_box(reference::decode(black_box(&bytes))))
        }),
        op("clone", || {
            drop(black_box(Rows::clone(black_box(&value.rows))))
        }),
    ];
    let rates = timing.measure(
        &mut ops
            .each_mut()
            .map(|(_, op)| op.as_mut() as &mut dyn FnMut()),
    );

    println!(
        "codec at {}: {} rows × {} fields, {} bytes of CBOR; median of {} rounds of {:?}",
        commit(),
        value.rows.len(),
        value.rows[0].len(),
        bytes.len(),
        timing.rounds,
        timing.window
    );
    println!(
        "{:<8} {:>16} {:>16} {:>8}",
        "op", "vlive codec", "ciborium", "ratio"
    );
    for (pair, rates) in ops.chunks_exact(2).zip(rates.chunks_exact(2)) {
        let (ours, theirs) = (rates[0], rates[1]);
        println!(
            "{:<8} {:>12} op/s {:>12} op/s {:>7.2}×",
            pair[0].0,
            thousands(ours),
            thousands(theirs),
            ours / theirs
        );
    }
    println!(
        "for scale: cloning the rows (a decode's allocations, no parsing) {} op/s",
        thousands(rates[4])
    );
    if !benching {
        println!("(a smoke run, unoptimized and a few ms long: the figures mean nothing)");
    }
}
