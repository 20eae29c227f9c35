//! Typed rows (feature `serde`): any `Serialize` type to a [`Record`] and any `Deserialize` type
//! back, with errors that name the row and the field (`address.city`, `tags[2]`).
//!
//! vlive has its own serializer and deserializer over [`Value`] rather than ciborium's: those
//! report a wrong type as a bare message, without saying where in the row it was. Both sides
//! walk the value with a path of borrowed links on the stack, so a path costs nothing until an
//! error renders it. The mapping rules are in [`to_value`] and in the repository's
//! `docs/live-table.md#typed-rows`.

mod access;
mod de;
mod error;
mod number;
mod path;
mod record;
mod ser;

use indexmap::IndexMap;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Result;
use crate::rows::{Record, Rows, Value};
use path::Path;
use record::RecordDeserializer;

/// A value of any `Serialize` type as the [`Record`] a row holds: a struct (or a map with text
/// keys) becomes one field per struct field, in declaration order; each field's value follows
/// the rules of [`to_value`].
///
/// # Errors
///
/// [`Error::RowShape`](crate::Error::RowShape), naming the field, when `value` does not
/// serialize to a map with text keys (a bare integer, a tuple, a map keyed by numbers) or its
/// `Serialize` implementation fails. `row` is `None`: no row id is known here.
///
/// # Example
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use vlive::Value;
///
/// #[derive(Serialize, Deserialize, Debug, PartialEq)]
/// struct Client {
///     name: String,
///     visits: u32,
/// }
///
/// let record = vlive::to_record(&Client { name: "Ada".into(), visits: 3 })?;
/// assert_eq!(record["name"], Value::Text("Ada".into()));
/// assert_eq!(record["visits"], Value::Integer(3.into()));
///
/// let ada: Client = vlive::from_record(&record)?;
/// assert_eq!(ada, Client { name: "Ada".into(), visits: 3 });
/// # Ok::<(), vlive::Error>(())
/// ```
pub fn to_record<T: Serialize + ?Sized>(value: &T) -> Result<Record> {
    let value = ser::serialize_at(value, &Path::ROOT).map_err(|e| e.into_error(None))?;
    record::into_record(value).map_err(|e| e.into_error(None))
}

/// Reads a `T` out of a [`Record`]: a struct takes its fields by name (fields the record has
/// and the struct does not are ignored, unless it says `#[serde(deny_unknown_fields)]`; a
/// missing `Option` field is `None`); each field's value follows the rules of [`to_value`].
///
/// # Errors
///
/// [`Error::RowShape`](crate::Error::RowShape) naming the field when a value does not fit its
/// field's type (`address.city`: expected text, found integer), when a field is missing, or
/// when the type's own `Deserialize` refuses a value. `row` is `None`: no row id is known here
/// (the [`LiveTable`](crate::LiveTable) typed reads and [`from_rows`] fill it in).
///
/// # Example
///
/// ```
/// use serde::Deserialize;
/// use vlive::{Record, Value};
///
/// #[derive(Deserialize, Debug)]
/// struct Client {
///     name: String,
///     visits: u32,
/// }
///
/// let record = Record::from([
///     ("name".to_string(), Value::Text("Ada".into())),
///     ("visits".to_string(), Value::Text("three".into())),
/// ]);
/// let error = vlive::from_record::<Client>(&record).unwrap_err();
/// assert_eq!(error.to_string(), "field `visits`: expected integer, found text");
/// ```
pub fn from_record<T: DeserializeOwned>(record: &Record) -> Result<T> {
    T::deserialize(RecordDeserializer { record })
        .map_err(|e| e.locate(&Path::ROOT).into_error(None))
}

/// A value of any `Serialize` type as one [`Value`].
///
/// | Rust (serde)                          | Value                                              |
/// |---------------------------------------|----------------------------------------------------|
/// | `bool`                                | `Bool`                                             |
/// | `i8` ..= `i64`, `u8` ..= `u64`        | `Integer`                                          |
/// | `i128`, `u128`                        | `Integer` when in −2⁶⁴ ..= 2⁶⁴−1, else a bignum (`Tag` 2 or 3 over `Bytes`) |
/// | `f32`, `f64`                          | `Float` (NaN and infinities kept as they are)      |
/// | `char`, `String`, `&str`              | `Text`                                             |
/// | bytes (`serde_bytes`)                 | `Bytes`                                            |
/// | `Vec<u8>`, `[u8; N]` (plain serde)    | `Array` of `Integer`s                              |
/// | `None`, `()`, unit struct             | `Null`                                             |
/// | `Some(x)`, newtype struct             | `x`                                                |
/// | sequence, tuple, tuple struct         | `Array`                                            |
/// | struct, map                           | `Map` (struct fields as `Text` keys, in order)     |
/// | unit variant `E::A`                   | `Text("A")`                                        |
/// | other variant `E::B(..)`, `E::C {..}` | `Map` of one entry: `"B"` → its content            |
///
/// Types with a text and a compact form (timestamps, UUIDs, addresses) take the text form, as a
/// database column holds them (`is_human_readable` is true).
///
/// Reading back ([`from_value`]) takes the same forms, and also: an integer into a float field
/// when the float holds it exactly; `Bytes` into a `Vec<u8>`; an `Array` into a bytes field;
/// `Null` as a unit variant's content; tags other than bignums are looked through. It never
/// converts between text and bytes or between text and numbers, and never rounds: an integer out
/// of the field type's range, a float into an integer field, or an `f64` beyond `f32`'s range
/// is an error naming the field.
///
/// # Errors
///
/// [`Error::RowShape`](crate::Error::RowShape) when the value's `Serialize` implementation
/// fails, naming the field it failed in.
pub fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value> {
    ser::serialize_at(value, &Path::ROOT).map_err(|e| e.into_error(None))
}

/// Reads a `T` out of one [`Value`], by the rules of [`to_value`].
///
/// # Errors
///
/// [`Error::RowShape`](crate::Error::RowShape) naming the field (its path inside `value`, empty
/// for `value` itself) when a value does not fit, as for [`from_record`].
pub fn from_value<T: DeserializeOwned>(value: &Value) -> Result<T> {
    de::deserialize_at(std::marker::PhantomData, value, &Path::ROOT).map_err(|e| e.into_error(None))
}

/// Reads every row of `rows` as a `T`, by id, in order.
///
/// # Errors
///
/// [`Error::RowShape`](crate::Error::RowShape) for the first row that does not fit, naming its
/// id and the field.
pub fn from_rows<T: DeserializeOwned>(rows: &Rows) -> Result<IndexMap<String, T>> {
    rows.iter()
        .map(|(id, record)| Ok((id.clone(), from_record_of(id, record)?)))
        .collect()
}

/// [`from_record`] for the row `id`, which its errors name.
pub(crate) fn from_record_of<T: DeserializeOwned>(id: &str, record: &Record) -> Result<T> {
    T::deserialize(RecordDeserializer { record })
        .map_err(|e| e.locate(&Path::ROOT).into_error(Some(id)))
}

/// [`to_record`] for the row `id`, which its errors name.
pub(crate) fn to_record_of<T: Serialize + ?Sized>(id: &str, value: &T) -> Result<Record> {
    let value = ser::serialize_at(value, &Path::ROOT).map_err(|e| e.into_error(Some(id)))?;
    record::into_record(value).map_err(|e| e.into_error(Some(id)))
}
