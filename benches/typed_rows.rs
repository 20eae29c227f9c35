//! # Typed rows: vlive's serializer and deserializer against ciborium's, side by side
//!
//! `cargo bench --bench typed_rows --features serde` converts 20 rows of a customer struct
//! (11 fields: text, integers, floats, a bool, an `Option`, a `Vec`) to records and back with
//! vlive (`to_record`, `from_record`, `from_value`) and with what it would otherwise use,
//! ciborium's `Value::serialized`/`deserialized` (plus, for records, the copy into a `Value`
//! that ciborium needs), and prints ops/s and their ratio. It then prints both libraries'
//! error for the same bad field: the reason vlive has its own.
//!
//! Each operation is measured in 5 rounds of 1 s after a 0.5 s warm-up, interleaved, median
//! shown (`VLIVE_BENCH_QUICK=1`: 3 rounds of 0.25 s). Under `cargo test --benches` every
//! operation runs for a few milliseconds as a smoke test.

use std::hint::black_box;

use serde::{Deserialize, Serialize};
use vlive::{Record, Value};

#[path = "common/number.rs"]
mod number;
use number::thousands;

#[path = "common/run_info.rs"]
mod run_info;
use run_info::commit;

#[path = "common/mode.rs"]
#[allow(dead_code)] // the shared file also builds runtimes, which this bench does not use
mod mode;
#[path = "common/timing.rs"]
mod timing;
use timing::Timing;

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Customer {
    id: u32,
    name: String,
    email: String,
    address: String,
    age: u8,
    balance: f64,
    rating: f32,
    active: bool,
    manager: Option<u32>,
    created: u64,
    tags: Vec<String>,
}

/// 20 customers, as `benches/codec.rs` has them.
fn customers() -> Vec<Customer> {
    let cities = ["Lisbon", "Porto", "Braga", "Coimbra", "Faro"];
    let tags = ["retail", "vip", "eu"];
    (0..20u32)
        .map(|i| Customer {
            id: 10_000 + i,
            name: format!("Customer {i:03}"),
            email: format!("customer{i:03}@example.com"),
            address: format!("Rua das Flores {}, {}", i * 7, cities[i as usize % 5]),
            age: 20 + (i % 50) as u8,
            balance: 1234.56 + f64::from(i) * 17.31,
            rating: (i % 10) as f32 / 2.0,
            active: i % 3 != 0,
            manager: (i % 4 == 0).then_some(7),
            created: 1_700_000_000 + u64::from(i) * 86_400,
            tags: tags[..1 + i as usize % 3]
                .iter()
                .map(|t| t.to_string())
                .collect(),
        })
        .collect()
}

/// The ciborium route to a record: a `Value`, then its map taken apart.
fn ciborium_to_record(customer: &Customer) -> Record {
    let Value::Map(entries) = Value::serialized(customer).expect("serializes") else {
        panic!("a struct serializes to a map");
    };
    entries
        .into_iter()
        .map(|(key, value)| (key.into_text().expect("text keys"), value))
        .collect()
}

/// The ciborium route from a record: copied into a `Value` first.
fn ciborium_from_record(record: &Record) -> Customer {
    let entries = record
        .iter()
        .map(|(name, value)| (Value::Text(name.clone()), value.clone()))
        .collect();
    Value::Map(entries).deserialized().expect("deserializes")
}

/// An operation to time, by name.
type Op<'a> = (&'static str, Box<dyn FnMut() + 'a>);

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: then only smoke-test.
    let benching = mode::benching();
    let timing = Timing::from_env();
    let customers = customers();
    let records: Vec<Record> = customers
        .iter()
        .map(|c| vlive::to_record(c).unwrap())
        .collect();
    let values: Vec<Value> = customers
        .iter()
        .map(|c| vlive::to_value(c).unwrap())
        .collect();
    // Both sides do the same work: the same records out, the same customers back.
    for (customer, record) in customers.iter().zip(&records) {
        assert_eq!(&ciborium_to_record(customer), record);
        assert_eq!(&ciborium_from_record(record), customer);
    }

    let each = |f: &dyn Fn(usize)| (0..customers.len()).for_each(f);
    let mut ops: [Op; 6] = [
        (
            "to_record",
            Box::new(|| each(&|i| drop(black_box(vlive::to_record(&customers[i]))))),
        ),
        (
            "to_record",
            Box::new(|| each(&|i| drop(black_box(ciborium_to_record(&customers[i]))))),
        ),
        (
            "from_record",
            Box::new(|| each(&|i| drop(black_box(vlive::from_record::<Customer>(&records[i]))))),
        ),
        (
            "from_record",
            Box::new(|| each(&|i| drop(black_box(ciborium_from_record(&records[i]))))),
        ),
        (
            "from_value",
            Box::new(|| each(&|i| drop(black_box(vlive::from_value::<Customer>(&values[i]))))),
        ),
        (
            "from_value",
            Box::new(|| each(&|i| drop(black_box(values[i].deserialized::<Customer>())))),
        ),
    ];
    let mut runs: Vec<&mut dyn FnMut()> = ops.iter_mut().map(|(_, op)| op.as_mut() as _).collect();
    let rates = timing.measure(&mut runs);

    println!(
        "typed_rows at {}: {} rows of {} fields per op; median of {} rounds of {:?}",
        commit(),
        customers.len(),
        records[0].len(),
        timing.rounds,
        timing.window
    );
    println!(
        "{:<12} {:>16} {:>16} {:>8}",
        "op (20 rows)", "vlive", "ciborium", "ratio"
    );
    for (pair, rates) in ops.chunks_exact(2).zip(rates.chunks_exact(2)) {
        println!(
            "{:<12} {:>12} op/s {:>12} op/s {:>7.2}×",
            pair[0].0,
            thousands(rates[0]),
            thousands(rates[1]),
            rates[0] / rates[1]
        );
    }

    let mut bad = records[7].clone();
    bad.insert("email".into(), Value::Integer(42.into()));
    let ours = vlive::from_record::<Customer>(&bad).unwrap_err();
    let theirs_error = Value::Map(bad.into_iter().map(|(k, v)| (Value::Text(k), v)).collect())
        .deserialized::<Customer>()
        .unwrap_err();
    println!("the same bad field: vlive says \"{ours}\"; ciborium says \"{theirs_error}\"");
    if !benching {
        println!("(a smoke run, unoptimized and a few ms long: the figures mean nothing)");
    }
}
