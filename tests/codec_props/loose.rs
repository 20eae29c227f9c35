//! Generates CBOR in the stored shape but written every way ciborium's decoder tolerates, and a
//! few ways it does not: heads wider than needed, indefinite lengths with or without their
//! break, strings cut into chunks (some nested, some splitting a character), tags anywhere,
//! bignums for the header integers, wrong declared lengths, stray bytes.
//!
//! ciborium never writes these, so only a generator like this one shows that the hand-written
//! decoder accepts and rejects the same inputs as ciborium.

use proptest::collection::vec;
use proptest::prelude::*;

/// How a head's argument is written: 0 for the shortest form, 1..=4 for 1, 2, 4 or 8 bytes
/// (falling back to the shortest form if the argument does not fit).
type Width = u8;

/// How a container states its length.
#[derive(Clone, Debug)]
pub enum Len {
    Definite(Width),
    /// Indefinite, closed by a break unless `false`.
    Indefinite(bool),
    /// A definite length that may not match the items written.
    Declared(u64),
}

/// How a string's bytes are laid out.
#[derive(Clone, Debug)]
pub enum Layout {
    Definite(Width),
    /// Indefinite, cut at these offsets; a `true` wraps that chunk in its own indefinite string.
    Chunked(Vec<(usize, bool)>),
}

/// One CBOR item, described by how to write it.
#[derive(Clone, Debug)]
pub enum Item {
    Unsigned(u64, Width),
    Negative(u64, Width),
    Bytes(Vec<u8>, Layout),
    Text(Vec<u8>, Layout),
    Array(Vec<Item>, Len),
    Map(Vec<(Item, Item)>, Len),
    Tag(u64, Width, Box<Item>),
    /// A simple value, in its two-byte form if `true`.
    Simple(u8, bool),
    Half(u16),
    Single(u32),
    Double(u64),
    /// Bytes written as they are: breaks, reserved heads, truncations.
    Raw(Vec<u8>),
}

impl Item {
    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            Item::Unsigned(n, width) => head(out, 0, *n, *width),
            Item::Negative(n, width) => head(out, 1, *n, *width),
            Item::Bytes(bytes, layout) => string(out, 2, bytes, layout),
            Item::Text(bytes, layout) => string(out, 3, bytes, layout),
            Item::Array(items, len) => container(out, 4, items.len(), len, |out| {
                items.iter().for_each(|i| i.write(out))
            }),
            Item::Map(entries, len) => container(out, 5, entries.len(), len, |out| {
                for (key, value) in entries {
                    key.write(out);
                    value.write(out);
                }
            }),
            Item::Tag(tag, width, inner) => {
                head(out, 6, *tag, *width);
                inner.write(out);
            }
            Item::Simple(n, false) if *n < 24 => out.push(0xe0 | n),
            Item::Simple(n, _) => out.extend_from_slice(&[0xf8, *n]),
            Item::Half(bits) => float(out, 0xf9, &bits.to_be_bytes()),
            Item::Single(bits) => float(out, 0xfa, &bits.to_be_bytes()),
            Item::Double(bits) => float(out, 0xfb, &bits.to_be_bytes()),
            Item::Raw(bytes) => out.extend_from_slice(bytes),
        }
    }
}

fn head(out: &mut Vec<u8>, major: u8, arg: u64, width: Width) {
    let shortest = match arg {
        0..=23 => 0,
        24..=0xff => 1,
        0x100..=0xffff => 2,
        0x1_0000..=0xffff_ffff => 3,
        _ => 4,
    };
    let initial = major << 5;
    match width.max(shortest) {
        0 => out.push(initial | arg as u8),
        1 => out.extend_from_slice(&[initial | 24, arg as u8]),
        2 => out.extend([initial | 25].into_iter().chain((arg as u16).to_be_bytes())),
        3 => out.extend([initial | 26].into_iter().chain((arg as u32).to_be_bytes())),
        _ => out.extend([initial | 27].into_iter().chain(arg.to_be_bytes())),
    }
}

fn item_bytes(item: &Item) -> Vec<u8> {
    let mut out = Vec::new();
    item.write(&mut out);
    out
}

fn float(out: &mut Vec<u8>, initial: u8, bits: &[u8]) {
    out.push(initial);
    out.extend_from_slice(bits);
}

fn container(
    out: &mut Vec<u8>,
    major: u8,
    count: usize,
    len: &Len,
    body: impl FnOnce(&mut Vec<u8>),
) {
    match len {
        Len::Definite(width) => head(out, major, count as u64, *width),
        Len::Declared(n) => head(out, major, *n, 0),
        Len::Indefinite(_) => out.push(major << 5 | 31),
    }
    body(out);
    if let Len::Indefinite(true) = len {
        out.push(0xff);
    }
}

fn string(out: &mut Vec<u8>, major: u8, bytes: &[u8], layout: &Layout) {
    match layout {
        Layout::Definite(width) => {
            head(out, major, bytes.len() as u64, *width);
            out.extend_from_slice(bytes);
        }
        Layout::Chunked(cuts) => {
            out.push(major << 5 | 31);
            let mut start = 0;
            let mut ends: Vec<(usize, bool)> = cuts
                .iter()
                .map(|&(at, nest)| (at.min(bytes.len()), nest))
                .collect();
            ends.sort();
            ends.push((bytes.len(), false));
            for (end, nest) in ends {
                let end = end.max(start);
                if nest {
                    out.push(major << 5 | 31);
                }
                head(out, major, (end - start) as u64, 0);
                out.extend_from_slice(&bytes[start..end]);
                if nest {
                    out.push(0xff);
                }
                start = end;
            }
            out.push(0xff);
        }
    }
}

fn width() -> impl Strategy<Value = Width> {
    prop_oneof![3 => Just(0), 1 => 1..=4u8]
}

fn len() -> impl Strategy<Value = Len> {
    prop_oneof![
        24 => width().prop_map(Len::Definite),
        8 => Just(Len::Indefinite(true)),
        1 => Just(Len::Indefinite(false)),
        1 => (0..8u64).prop_map(Len::Declared),
    ]
}

fn layout() -> impl Strategy<Value = Layout> {
    prop_oneof![
        4 => width().prop_map(Layout::Definite),
        1 => vec((0..12usize, any::<bool>()), 0..4).prop_map(Layout::Chunked),
    ]
}

/// Tags wrapped around `item`: usually none, sometimes a few, some of them bignum tags.
fn tagged(item: impl Strategy<Value = Item>) -> impl Strategy<Value = Item> {
    // Tags 2 and 3 are rarer: before an integer they announce a bignum.
    let tag = prop_oneof![8 => 4..8u64, 1 => 0..4u64];
    let tags = prop_oneof![6 => Just(vec![]), 1 => vec((tag, width()), 1..3)];
    (item, tags).prop_map(|(item, tags)| {
        tags.into_iter().fold(item, |inner, (tag, width)| {
            Item::Tag(tag, width, Box::new(inner))
        })
    })
}

fn text() -> impl Strategy<Value = Item> {
    let utf8 = prop_oneof![
        16 => "[a-c]{0,3}|\\PC{0,6}".prop_map(String::into_bytes),
        1 => vec(any::<u8>(), 0..4),
    ];
    (utf8, layout()).prop_map(|(bytes, layout)| Item::Text(bytes, layout))
}

/// A bignum tag over a byte string: leading zeros, any width up to past 16 bytes.
fn bignum(tag: u64) -> impl Strategy<Value = Item> {
    // Leading zeros do not count toward the 16-byte limit, so some pad a full-width magnitude.
    let magnitude = prop_oneof![
        vec(any::<u8>(), 0..18),
        (0..4usize, vec(any::<u8>(), 0..3)).prop_map(|(zeros, n)| [vec![0; zeros], n].concat()),
        (0..4usize, vec(any::<u8>(), 15..18)).prop_map(|(zeros, n)| [vec![0; zeros], n].concat()),
    ];
    (magnitude, layout())
        .prop_map(move |(bytes, layout)| Item::Tag(tag, 0, Box::new(Item::Bytes(bytes, layout))))
}

/// `n` as a tag-2 bignum padded with leading zeros, which ciborium does not count toward its
/// 16-byte limit.
fn padded_bignum(n: u64, zeros: usize, layout: Layout) -> Item {
    let digits = n.to_be_bytes().into_iter().skip_while(|&b| b == 0);
    let bytes = std::iter::repeat_n(0, zeros).chain(digits).collect();
    Item::Tag(2, 0, Box::new(Item::Bytes(bytes, layout)))
}

/// One of the three header integers: usually `typical`, else anything integer-like or not.
fn header_integer(typical: impl Strategy<Value = u64> + Clone) -> impl Strategy<Value = Item> {
    tagged(prop_oneof![
        120 => (typical.clone(), width()).prop_map(|(n, w)| Item::Unsigned(n, w)),
        8 => (typical, 0..24usize, layout()).prop_map(|(n, z, l)| padded_bignum(n, z, l)),
        1 => (any::<u64>(), width()).prop_map(|(n, w)| Item::Unsigned(n, w)),
        1 => (any::<u64>(), width()).prop_map(|(n, w)| Item::Negative(n, w)),
        1 => bignum(2),
        1 => bignum(3),
        1 => leaf(),
    ])
}

fn leaf() -> impl Strategy<Value = Item> {
    prop_oneof![
        12 => (any::<u64>(), width()).prop_map(|(n, w)| Item::Unsigned(n, w)),
        8 => (any::<u64>(), width()).prop_map(|(n, w)| Item::Negative(n, w)),
        8 => (vec(any::<u8>(), 0..20), layout()).prop_map(|(b, l)| Item::Bytes(b, l)),
        8 => text(),
        1 => (prop_oneof![8 => 20..24u8, 1 => any::<u8>()], any::<bool>())
            .prop_map(|(n, two)| Item::Simple(n, two)),
        2 => any::<u16>().prop_map(Item::Half),
        2 => any::<u32>().prop_map(Item::Single),
        2 => any::<u64>().prop_map(Item::Double),
        1 => bignum(2),
        1 => bignum(3),
        // Seldom: one stray item spoils the whole input.
        1 => vec(any::<u8>(), 0..3).prop_map(Item::Raw),
    ]
}

fn field_value() -> impl Strategy<Value = Item> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            (vec(inner.clone(), 0..4), len()).prop_map(|(items, len)| Item::Array(items, len)),
            (vec((inner.clone(), inner.clone()), 0..3), len())
                .prop_map(|(e, len)| Item::Map(e, len)),
            (any::<u64>(), width(), inner).prop_map(|(t, w, i)| Item::Tag(t, w, Box::new(i))),
        ]
    })
}

/// A row id or field name: text, sometimes tagged, rarely not text at all.
fn key() -> impl Strategy<Value = Item> {
    prop_oneof![24 => tagged(text()), 1 => leaf()]
}

fn map_of(
    key: impl Strategy<Value = Item>,
    value: impl Strategy<Value = Item>,
) -> impl Strategy<Value = Item> {
    tagged((vec((key, value), 0..4), len()).prop_map(|(entries, len)| Item::Map(entries, len)))
}

/// Bytes in (or near) the stored form `[version, seconds, nanoseconds, rows]`.
pub fn stored() -> impl Strategy<Value = Vec<u8>> {
    stored_array()
        .prop_flat_map(|array| tagged(Just(array)))
        .prop_map(|array| {
            let mut out = Vec::new();
            array.write(&mut out);
            out
        })
}

/// The stored array, then some stray bytes after it.
fn stored_array() -> impl Strategy<Value = Item> {
    let version = header_integer(prop_oneof![16 => Just(1u64), 1 => 0..300u64]);
    let secs = prop_oneof![
        8 => (any::<i64>(), width()).prop_map(|(s, w)| if s < 0 {
            Item::Negative(!s as u64, w)
        } else {
            Item::Unsigned(s as u64, w)
        }),
        1 => header_integer(any::<u64>()),
    ];
    let nanos = header_integer(prop_oneof![
        0..1_000_000_000u64,
        Just(999_999_999),
        any::<u32>().prop_map(u64::from)
    ]);
    let rows = prop_oneof![
        24 => map_of(key(), map_of(key(), field_value())),
        1 => field_value(),
    ];
    let extra = vec(field_value(), 0..2);
    let trailing = prop_oneof![4 => Just(vec![]), 1 => vec(any::<u8>(), 0..4)];
    let missing = prop_oneof![24 => Just(None), 1 => (0..4usize).prop_map(Some)];
    (version, secs, nanos, rows, extra, len(), missing, trailing).prop_map(
        |(version, secs, nanos, rows, extra, len, missing, trailing)| {
            let mut items = vec![version, secs, nanos, rows];
            items.extend(extra);
            if let Some(index) = missing {
                items.remove(index);
            }
            let array = Item::Array(items, len);
            match trailing.is_empty() {
                true => array,
                false => Item::Raw([item_bytes(&array), trailing].concat()),
            }
        },
    )
}
