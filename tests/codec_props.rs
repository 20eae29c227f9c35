//! The hand-written codec against ciborium, the definition of the stored bytes.
//!
//! `codec::reference` is the serde + ciborium path the codec replaced. For every value the
//! codec must write the very same bytes, and for every input, well-formed or not, both decoders
//! must agree: both reject it, or both accept it and give the same rows, in the same order, with
//! the same float bits. The codec is crate-private; `vlive::__private` re-exports it for this.

#[path = "codec_props/loose.rs"]
mod loose;
#[path = "codec_props/values.rs"]
mod values;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use vlive::__private::codec::{self, reference};
use vlive::{CachedRows, Record, Rows, Value};

/// Asserts that both decoders give the same answer for `bytes`.
fn assert_agree(bytes: &[u8]) -> Result<(), TestCaseError> {
    match (codec::decode(bytes), reference::decode(bytes)) {
        // Compared through ciborium's bytes: `==` on rows ignores order and NaN never equals.
        (Ok(ours), Ok(theirs)) => prop_assert_eq!(as_bytes(&ours), as_bytes(&theirs)),
        (Err(_), Err(_)) => {}
        (ours, theirs) => {
            prop_assert!(false, "{bytes:02x?}: ours {ours:?}, ciborium {theirs:?}")
        }
    }
    Ok(())
}

fn as_bytes(value: &CachedRows) -> Vec<u8> {
    reference::encode(value).expect("a decoded timestamp is in range")
}

/// One row "r" with one field "f".
fn one_field(value: Value) -> CachedRows {
    let record: Record = [("f".to_owned(), value)].into_iter().collect();
    let rows: Rows = [("r".to_owned(), record)].into_iter().collect();
    CachedRows::with_fetched_at(rows, std::time::UNIX_EPOCH)
}

/// A change to an encoding: overwrite, insert or delete a byte, or cut the input short.
#[derive(Clone, Debug)]
enum Edit {
    Set(Index, u8),
    Insert(Index, u8),
    Delete(Index),
    Truncate(Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Edit::Set(at, byte)),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Edit::Insert(at, byte)),
        1 => any::<Index>().prop_map(Edit::Delete),
        1 => any::<Index>().prop_map(Edit::Truncate),
    ]
}

fn apply(bytes: &mut Vec<u8>, edit: &Edit) {
    if bytes.is_empty() {
        return;
    }
    match edit {
        Edit::Set(at, byte) => *at.get_mut(bytes) = *byte,
        Edit::Insert(at, byte) => bytes.insert(at.index(bytes.len() + 1), *byte),
        Edit::Delete(at) => drop(bytes.remove(at.index(bytes.len()))),
        Edit::Truncate(at) => bytes.truncate(at.index(bytes.len())),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Where the codec writes a value at all, it writes ciborium's bytes; and it refuses
    /// exactly the values whose bytes (ciborium's) it would not read back, such as a tag-3
    /// bignum below i128::MIN or nesting past the recursion limit: put refuses what get would.
    #[test]
    fn encode_writes_ciborium_s_bytes_or_refuses_what_decode_would(
        value in values::cached_rows(),
    ) {
        let theirs = reference::encode(&value).unwrap();
        match codec::encode(&value) {
            Ok(ours) => prop_assert_eq!(&ours, &theirs),
            Err(refused) => {
                prop_assert!(codec::decode(&theirs).is_err(), "refused ({refused:?}), yet readable");
            }
        }
        if codec::decode(&theirs).is_err() {
            prop_assert!(codec::encode(&value).is_err(), "written, yet unreadable");
        }
    }

    /// A put is measured before it is encoded (the caller measures, the actor encodes): the
    /// count must be the length written, and the refusals the same.
    #[test]
    fn encoded_len_is_what_encode_writes(value in values::cached_rows()) {
        prop_assert_eq!(codec::encoded_len(&value), codec::encode(&value).map(|b| b.len()));
    }

    /// Rows of scalars only are counted on a path of their own (`flat_stored_len`).
    #[test]
    fn encoded_len_of_scalar_rows_is_what_encode_writes(value in values::flat_cached_rows()) {
        prop_assert_eq!(codec::encoded_len(&value), codec::encode(&value).map(|b| b.len()));
    }

    /// Not always `Ok`: ciborium writes some values it will not read back (see above).
    #[test]
    fn decode_reads_back_what_ciborium_wrote(value in values::cached_rows()) {
        assert_agree(&reference::encode(&value).unwrap())?;
    }

    #[test]
    fn edited_encodings_get_the_same_answer(
        value in values::cached_rows(),
        edits in vec(edit(), 1..4),
    ) {
        let mut bytes = reference::encode(&value).unwrap();
        edits.iter().for_each(|edit| apply(&mut bytes, edit));
        assert_agree(&bytes)?;
    }

    #[test]
    fn leniently_written_cbor_gets_the_same_answer(bytes in loose::stored()) {
        assert_agree(&bytes)?;
    }

    #[test]
    fn random_bytes_get_the_same_answer(
        header in prop_oneof![Just(vec![]), Just(vec![0x84, 0x01, 0x00, 0x00])],
        tail in vec(any::<u8>(), 0..48),
    ) {
        assert_agree(&[header, tail].concat())?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The outer array and two maps use 3 of ciborium's 256 levels, leaving 253 for a field.
    #[test]
    fn nesting_agrees_on_both_sides_of_the_limit(
        depth in 248..260usize,
        kinds in vec(any::<u8>(), 1..4),
    ) {
        let value = one_field(values::nested(depth, &kinds));
        let bytes = reference::encode(&value).unwrap();
        prop_assert_eq!(codec::decode(&bytes).is_ok(), depth <= 253);
        prop_assert_eq!(codec::encode(&value).ok(), (depth <= 253).then_some(bytes.clone()));
        assert_agree(&bytes)?;
    }
}

#[test]
fn long_strings_and_many_items_use_the_wide_heads_ciborium_uses() {
    for len in [255, 256, 65_535, 65_536, 70_000] {
        let value = one_field(Value::Array(vec![
            Value::Text("é".repeat(len / 2) + &"x".repeat(len % 2)),
            Value::Bytes(vec![7; len]),
            Value::Array(vec![Value::Null; len]),
        ]));
        let bytes = codec::encode(&value).unwrap();
        assert_eq!(bytes, reference::encode(&value).unwrap(), "{len}");
        assert_eq!(as_bytes(&codec::decode(&bytes).unwrap()), bytes, "{len}");
    }
}
