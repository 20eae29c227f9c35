//! Typed rows (feature `serde`): round trips of arbitrary nested types through a `Record` (and
//! through real caches, whose codec stores the values), errors that name the row and the
//! field, and LiveTable's typed calls against a real table over the test master.

#[path = "live_table/support.rs"]
mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde::{Deserialize, Serialize, Serializer};
use support::{TestMaster, backends};
use vlive::{Error, LiveTable, Page, Record, Rows, Value, from_record, from_rows, from_value};
use vlive::{to_record, to_value};

// ----- the types ------------------------------------------------------------------------------

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Row {
    name: String,
    visits: u32,
    balance: i64,
    small: i8,
    huge: u128,
    deep_debt: i128,
    ratio: f64,
    ratio32: f32,
    active: bool,
    initial: char,
    nickname: Option<String>,
    address: Address,
    second_address: Option<Address>,
    tags: Vec<String>,
    scores: BTreeMap<String, i32>,
    by_number: BTreeMap<u16, bool>,
    kind: Kind,
    history: Vec<Kind>,
    pair: (u8, String),
    bytes: Vec<u8>,
    id: ClientId,
    marker: Marker,
    nothing: (),
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Address {
    city: String,
    zip: Option<u32>,
    lines: Vec<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
enum Kind {
    Plain,
    Newtype(i32),
    Tuple(u8, String),
    Struct { a: Option<bool>, b: Vec<u16> },
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
struct ClientId(u64);

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
struct Marker;

/// A simple row for the LiveTable tests.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Client {
    name: String,
    visits: u32,
    #[serde(default)]
    address: Option<Address>,
}

// ----- strategies -----------------------------------------------------------------------------

/// Finite floats and the infinities (NaN is tested on its own: it never equals itself).
fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("not NaN", |f| !f.is_nan()),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(0.0),
    ]
}

fn float32() -> impl Strategy<Value = f32> {
    any::<f32>().prop_filter("not NaN", |f| !f.is_nan())
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![".{0,12}", "[a-z]{0,6}"]
}

fn address() -> impl Strategy<Value = Address> {
    (
        text(),
        any::<Option<u32>>(),
        prop::collection::vec(text(), 0..3),
    )
        .prop_map(|(city, zip, lines)| Address { city, zip, lines })
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Plain),
        any::<i32>().prop_map(Kind::Newtype),
        (any::<u8>(), text()).prop_map(|(n, s)| Kind::Tuple(n, s)),
        (
            any::<Option<bool>>(),
            prop::collection::vec(any::<u16>(), 0..4)
        )
            .prop_map(|(a, b)| Kind::Struct { a, b }),
    ]
}

prop_compose! {
    fn row()(
        (name, visits, balance, small, huge, deep_debt) in
            (text(), any::<u32>(), any::<i64>(), any::<i8>(), any::<u128>(), any::<i128>()),
        (ratio, ratio32, active, initial, nickname) in
            (float(), float32(), any::<bool>(), any::<char>(), proptest::option::of(text())),
        (address, second_address) in (address(), proptest::option::of(address())),
        (tags, scores, by_number) in (
            prop::collection::vec(text(), 0..4),
            prop::collection::btree_map(text(), any::<i32>(), 0..4),
            prop::collection::btree_map(any::<u16>(), any::<bool>(), 0..4),
        ),
        (kind, history, pair, bytes, id) in (
            kind(),
            prop::collection::vec(kind(), 0..4),
            (any::<u8>(), text()),
            prop::collection::vec(any::<u8>(), 0..8),
            any::<u64>(),
        ),
    ) -> Row {
        Row {
            name, visits, balance, small, huge, deep_debt, ratio, ratio32, active, initial,
            nickname, address, second_address, tags, scores, by_number, kind, history, pair,
            bytes, id: ClientId(id), marker: Marker, nothing: (),
        }
    }
}

// ----- round trips ----------------------------------------------------------------------------

proptest! {
    #[test]
    fn any_row_round_trips_through_a_record(row in row()) {
        let record = to_record(&row).unwrap();
        prop_assert_eq!(from_record::<Row>(&record).unwrap(), row.clone());
        prop_assert_eq!(from_value::<Row>(&to_value(&row).unwrap()).unwrap(), row);
    }

    #[test]
    fn any_kind_round_trips_through_a_value(kind in kind()) {
        prop_assert_eq!(from_value::<Kind>(&to_value(&kind).unwrap()).unwrap(), kind);
    }
}

/// Through every cache's codec too: what a LiveTable stores and reads back is still the row.
#[tokio::test]
async fn rows_round_trip_through_every_cache() {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(16));
    let rows: Vec<Row> = (0..16)
        .map(|_| row().new_tree(&mut runner).unwrap().current())
        .collect();
    for (name, cache, _dir) in backends() {
        let table = LiveTable::new(TestMaster::new(Rows::new()), "rows", cache).unwrap();
        for (i, row) in rows.iter().enumerate() {
            table.insert_as(&i.to_string(), row).await.unwrap();
        }
        for (i, row) in rows.iter().enumerate() {
            let got: Option<Row> = table.get_as(&i.to_string()).await.unwrap();
            assert_eq!(got.as_ref(), Some(row), "{name}: row {i}");
            let again: Option<Row> = table.get_as(&i.to_string()).await.unwrap();
            assert_eq!(again.as_ref(), Some(row), "{name}: row {i} from the cache");
        }
        let listed: indexmap::IndexMap<String, Row> =
            table.list_as(Page::first(100)).await.unwrap();
        assert_eq!(listed.values().cloned().collect::<Vec<_>>(), rows, "{name}");
        assert!(
            table.stats().hits >= rows.len() as u64,
            "{name}: the second reads were hits"
        );
    }
}

// ----- the mapping ----------------------------------------------------------------------------

fn text_value(s: &str) -> Value {
    Value::Text(s.into())
}

fn int(n: i64) -> Value {
    Value::Integer(n.into())
}

#[test]
fn the_mapping_rules_hold() {
    assert_eq!(to_value(&Kind::Plain).unwrap(), text_value("Plain"));
    assert_eq!(
        to_value(&Kind::Newtype(5)).unwrap(),
        Value::Map(vec![(text_value("Newtype"), int(5))])
    );
    assert_eq!(
        to_value(&Kind::Tuple(1, "x".into())).unwrap(),
        Value::Map(vec![(
            text_value("Tuple"),
            Value::Array(vec![int(1), text_value("x")])
        )])
    );
    assert_eq!(to_value(&None::<u8>).unwrap(), Value::Null);
    assert_eq!(to_value(&Some(3u8)).unwrap(), int(3));
    assert_eq!(to_value(&Marker).unwrap(), Value::Null);
    assert_eq!(to_value(&ClientId(9)).unwrap(), int(9));
    assert_eq!(to_value(&'é').unwrap(), text_value("é"));
    assert_eq!(
        to_value(&vec![1u8, 2]).unwrap(),
        Value::Array(vec![int(1), int(2)])
    );
    // Beyond CBOR's integers, i128 and u128 are bignums, as the codec stores them.
    assert_eq!(to_value(&u128::MAX).unwrap(), Value::from(u128::MAX));
    assert!(matches!(to_value(&u128::MAX).unwrap(), Value::Tag(2, _)));
    assert!(matches!(to_value(&i128::MIN).unwrap(), Value::Tag(3, _)));
    assert_eq!(
        from_value::<i128>(&Value::from(i128::MIN)).unwrap(),
        i128::MIN
    );
    assert_eq!(
        from_value::<u128>(&Value::from(u128::MAX)).unwrap(),
        u128::MAX
    );
    // Struct fields come in declaration order.
    let record = to_record(&Address {
        city: "Oslo".into(),
        zip: None,
        lines: vec![],
    })
    .unwrap();
    assert_eq!(record.keys().collect::<Vec<_>>(), ["city", "zip", "lines"]);
    assert_eq!(record["zip"], Value::Null);
}

#[test]
fn reading_is_lenient_only_where_nothing_is_lost() {
    // A missing Option field is None; Null is None.
    let record = Record::from([("city".to_string(), text_value("Oslo"))]);
    let err = from_record::<Address>(&record).unwrap_err();
    assert_eq!(err.to_string(), "field `lines`: missing field");
    let record = Record::from([
        ("city".to_string(), text_value("Oslo")),
        ("lines".to_string(), Value::Array(vec![])),
    ]);
    assert_eq!(from_record::<Address>(&record).unwrap().zip, None);
    // Integers into floats when exact; bytes into Vec<u8>; other tags looked through.
    assert_eq!(from_value::<f64>(&int(3)).unwrap(), 3.0);
    assert_eq!(
        from_value::<Vec<u8>>(&Value::Bytes(vec![1, 2])).unwrap(),
        vec![1, 2]
    );
    let tagged = Value::Tag(0, Box::new(text_value("2026-01-01T00:00:00Z")));
    assert_eq!(
        from_value::<String>(&tagged).unwrap(),
        "2026-01-01T00:00:00Z"
    );
    // NaN is kept.
    assert!(to_value(&f64::NAN).unwrap().as_float().unwrap().is_nan());
    assert!(from_value::<f64>(&Value::Float(f64::NAN)).unwrap().is_nan());
    assert!(from_value::<f32>(&Value::Float(f64::NAN)).unwrap().is_nan());
    // Unknown fields are ignored by default.
    let record = Record::from([
        ("name".to_string(), text_value("Ada")),
        ("visits".to_string(), int(1)),
        ("extra".to_string(), int(1)),
    ]);
    assert_eq!(from_record::<Client>(&record).unwrap().name, "Ada");
}

// ----- errors name the field ------------------------------------------------------------------

/// The RowShape error's parts.
fn shape(error: Error) -> (Option<String>, String, String) {
    match error {
        Error::RowShape { row, field, reason } => (row, field, reason),
        other => panic!("expected a RowShape error, got {other:?}"),
    }
}

/// A valid record of `Row`, to break one field of.
fn valid_row_record() -> Record {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    to_record(&row().new_tree(&mut runner).unwrap().current()).unwrap()
}

/// `Row`'s record with `field` replaced by `value`, read back: the error.
fn read_with(field: &str, value: Value) -> (Option<String>, String, String) {
    let mut record = valid_row_record();
    record.insert(field.to_string(), value);
    let rows = Rows::from([("7".to_string(), record)]);
    shape(from_rows::<Row>(&rows).unwrap_err())
}

fn map(entries: Vec<(Value, Value)>) -> Value {
    Value::Map(entries)
}

#[test]
fn a_wrong_type_in_a_nested_struct_names_the_row_and_the_path() {
    let address = map(vec![
        (text_value("city"), int(12)),
        (text_value("lines"), Value::Array(vec![])),
    ]);
    let mut record = valid_row_record();
    record.insert("address".into(), address);
    let rows = Rows::from([("7".to_string(), record)]);
    let error = from_rows::<Row>(&rows).unwrap_err();
    assert_eq!(
        error.to_string(),
        "row 7, field `address.city`: expected text, found integer"
    );
    let (row, field, reason) = shape(error);
    assert_eq!(
        (row.as_deref(), field.as_str()),
        (Some("7"), "address.city")
    );
    assert_eq!(reason, "expected text, found integer");
}

#[test]
fn errors_name_elements_keys_variants_and_missing_fields() {
    let tags = Value::Array(vec![text_value("a"), text_value("b"), int(3)]);
    assert_eq!(read_with("tags", tags).1, "tags[2]");

    let by_number = map(vec![(int(3), text_value("yes"))]);
    let (_, field, reason) = read_with("by_number", by_number);
    assert_eq!(
        (field.as_str(), reason.as_str()),
        ("by_number[3]", "expected bool, found text")
    );

    let (_, field, reason) = read_with("kind", text_value("Nope"));
    assert_eq!(field, "kind");
    assert!(
        reason.starts_with("unknown variant, expected `Plain`, `Newtype`"),
        "{reason}"
    );

    let content = map(vec![(text_value("a"), text_value("x"))]);
    let kind = map(vec![(text_value("Struct"), content)]);
    let (_, field, reason) = read_with("kind", kind);
    assert_eq!(
        (field.as_str(), reason.as_str()),
        ("kind.Struct.a", "expected bool, found text")
    );

    let content = map(vec![(text_value("a"), Value::Null)]);
    let history = Value::Array(vec![map(vec![(text_value("Struct"), content)])]);
    let (_, field, reason) = read_with("history", history);
    assert_eq!(
        (field.as_str(), reason.as_str()),
        ("history[0].Struct.b", "missing field")
    );

    let second = map(vec![(text_value("lines"), Value::Array(vec![]))]);
    assert_eq!(read_with("second_address", second).1, "second_address.city");

    let (_, field, reason) = read_with("pair", Value::Array(vec![int(1)]));
    assert_eq!(field, "pair");
    assert!(reason.contains("1 elements"), "{reason}");
    let too_long = Value::Array(vec![int(1), text_value("x"), int(2)]);
    assert_eq!(
        read_with("pair", too_long).2,
        "1 more array elements than expected"
    );
}

#[test]
fn numbers_are_never_rounded_or_wrapped() {
    assert_eq!(
        read_with("small", int(300)),
        (
            Some("7".into()),
            "small".into(),
            "integer out of range for i8".into()
        )
    );
    assert_eq!(
        read_with("visits", int(-1)).2,
        "integer out of range for u32"
    );
    assert_eq!(
        read_with("visits", Value::Float(1.0)).2,
        "expected integer, found float"
    );
    assert_eq!(
        read_with("huge", Value::from(-1i128)).2,
        "integer out of range for u128"
    );
    assert_eq!(
        read_with("ratio", int(1 << 60)).2,
        "integer too large to read exactly as f64"
    );
    assert_eq!(
        read_with("ratio32", Value::Float(1e300)).2,
        "float out of range for f32"
    );
}

#[test]
fn text_bytes_and_null_are_kept_apart() {
    assert_eq!(
        read_with("name", Value::Bytes(b"Ada".to_vec())).2,
        "expected text, found bytes"
    );
    assert_eq!(
        read_with("name", Value::Null).2,
        "expected text, found null"
    );
    assert_eq!(
        read_with("initial", text_value("ab")).2,
        "expected one character, found text of another length"
    );
    assert_eq!(
        read_with("bytes", text_value("ab")).2,
        "expected array, found text"
    );
    assert_eq!(
        read_with("nothing", int(0)).2,
        "expected null, found integer"
    );
}

#[test]
fn a_row_must_be_a_map_with_text_keys() {
    let (row, field, reason) = shape(to_record(&5).unwrap_err());
    assert_eq!((row, field.as_str()), (None, ""));
    assert_eq!(
        reason,
        "a row must serialize to a map (a struct or a map), found integer"
    );
    assert!(
        to_record(&vec![1, 2])
            .unwrap_err()
            .to_string()
            .ends_with("found array")
    );
    assert!(to_record(&Kind::Plain).is_err());

    let numbered = BTreeMap::from([(1u8, "one")]);
    let (_, field, reason) = shape(to_record(&numbered).unwrap_err());
    assert_eq!(
        (field.as_str(), reason.as_str()),
        ("[1]", "expected text as the field name, found integer")
    );

    let error = from_record::<u32>(&Record::new()).unwrap_err();
    assert_eq!(error.to_string(), "expected u32, found map");
}

/// A value whose `Serialize` fails, as a type with an invariant might.
#[derive(Debug)]
struct Unserializable;

impl Serialize for Unserializable {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("this value cannot be stored"))
    }
}

#[derive(Serialize)]
struct Holder {
    outer: Vec<BTreeMap<String, Unserializable>>,
}

#[test]
fn a_failing_serialize_names_its_field() {
    let holder = Holder {
        outer: vec![BTreeMap::from([("secret".to_string(), Unserializable)])],
    };
    let (_, field, reason) = shape(to_record(&holder).unwrap_err());
    assert_eq!(
        (field.as_str(), reason.as_str()),
        ("outer[0].secret", "this value cannot be stored")
    );
}

#[test]
fn unknown_fields_are_named_when_denied() {
    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Strict {
        name: String,
    }
    let record = Record::from([
        ("name".to_string(), text_value("Ada")),
        ("extra".to_string(), int(1)),
    ]);
    let (_, field, reason) = shape(from_record::<Strict>(&record).unwrap_err());
    assert_eq!(
        (field.as_str(), reason.as_str()),
        ("extra", "unknown field, expected `name`")
    );
}

// ----- LiveTable ------------------------------------------------------------------------------

fn client(name: &str, visits: u32) -> Client {
    Client {
        name: name.into(),
        visits,
        address: None,
    }
}

fn clients() -> (Arc<TestMaster>, LiveTable) {
    let master = TestMaster::new(Rows::new());
    let table =
        LiveTable::new(master.clone(), "clients", Arc::new(vlive::MemCache::new())).unwrap();
    (master, table)
}

#[tokio::test]
async fn typed_calls_write_and_read_the_rows() {
    let (master, table) = clients();
    let stored = table.insert_as("1", &client("Ada", 3)).await.unwrap();
    assert_eq!(stored, to_record(&client("Ada", 3)).unwrap());
    assert_eq!(master.rows()["1"]["name"], text_value("Ada"));
    assert_eq!(
        table.get_as::<Client>("1").await.unwrap(),
        Some(client("Ada", 3))
    );
    assert_eq!(table.get_as::<Client>("2").await.unwrap(), None);

    table
        .replace_as("1", &client("Ada Lovelace", 4))
        .await
        .unwrap();
    assert_eq!(
        table.get_as::<Client>("1").await.unwrap(),
        Some(client("Ada Lovelace", 4))
    );

    #[derive(Serialize, Default)]
    struct ClientPatch {
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        visits: Option<u32>,
    }
    let whole = table
        .patch_as(
            "1",
            &ClientPatch {
                visits: Some(5),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(whole, to_record(&client("Ada Lovelace", 5)).unwrap());
    assert_eq!(
        table.get_as::<Client>("1").await.unwrap(),
        Some(client("Ada Lovelace", 5))
    );

    table.insert_as("2", &client("Grace", 1)).await.unwrap();
    let listed = table.list_as::<Client>(Page::first(10)).await.unwrap();
    assert_eq!(listed.keys().collect::<Vec<_>>(), ["1", "2"]);
    assert_eq!(listed["2"], client("Grace", 1));
}

#[tokio::test]
async fn typed_reads_name_the_row_and_the_field() {
    let (master, table) = clients();
    master.set_out_of_band("1", to_record(&client("Ada", 3)).unwrap());
    let mut bad = to_record(&client("Bob", 1)).unwrap();
    bad.insert(
        "address".into(),
        map(vec![
            (text_value("city"), int(4)),
            (text_value("lines"), Value::Array(vec![])),
        ]),
    );
    master.set_out_of_band("b7", bad);

    let error = table.get_as::<Client>("b7").await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "row b7, field `address.city`: expected text, found integer"
    );
    let error = table.list_as::<Client>(Page::first(10)).await.unwrap_err();
    assert_eq!(
        shape(error),
        (
            Some("b7".into()),
            "address.city".into(),
            "expected text, found integer".into()
        )
    );
    // The untyped read still works: the error is in the reading, not the table.
    assert!(table.get("b7").await.unwrap().is_some());
}

#[tokio::test]
async fn a_value_that_is_no_record_is_refused_before_the_write() {
    let (master, table) = clients();
    let error = table.insert_as("9", &vec![1, 2, 3]).await.unwrap_err();
    assert_eq!(shape(error).0.as_deref(), Some("9"));
    let holder = Holder {
        outer: vec![BTreeMap::from([("k".to_string(), Unserializable)])],
    };
    let error = table.patch_as("9", &holder).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "row 9, field `outer[0].k`: this value cannot be stored"
    );
    assert!(master.write_log().is_empty(), "nothing reached the master");
}

// ----- serde attributes that go through `deserialize_any` -------------------------------------

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "type")]
enum Event {
    Opened { by: String },
    Closed { code: i32, reason: Option<String> },
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(untagged)]
enum IdOrName {
    Id(u64),
    Name(String),
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Audited {
    #[serde(flatten)]
    client: Client,
    #[serde(rename = "lastEvent")]
    last_event: Event,
    owner: IdOrName,
    #[serde(default)]
    notes: Vec<String>,
}

#[test]
fn tagged_untagged_and_flattened_types_round_trip() {
    let audited = Audited {
        client: client("Ada", 3),
        last_event: Event::Closed {
            code: -2,
            reason: None,
        },
        owner: IdOrName::Name("ops".into()),
        notes: vec!["x".into()],
    };
    let record = to_record(&audited).unwrap();
    assert_eq!(
        record["name"],
        text_value("Ada"),
        "flattened fields sit in the row"
    );
    assert_eq!(
        record["lastEvent"],
        map(vec![
            (text_value("type"), text_value("Closed")),
            (text_value("code"), int(-2)),
            (text_value("reason"), Value::Null),
        ])
    );
    assert_eq!(from_record::<Audited>(&record).unwrap(), audited);

    let mut numbered = record.clone();
    numbered.insert("owner".into(), int(7));
    assert_eq!(
        from_record::<Audited>(&numbered).unwrap().owner,
        IdOrName::Id(7)
    );

    // A wrong field inside an internally tagged enum still names the enum's field.
    let mut bad = record.clone();
    bad.insert(
        "lastEvent".into(),
        map(vec![(text_value("type"), text_value("Opened"))]),
    );
    let (_, field, reason) = shape(from_record::<Audited>(&bad).unwrap_err());
    assert_eq!(
        (field.as_str(), reason.as_str()),
        ("lastEvent.by", "missing field")
    );
}
