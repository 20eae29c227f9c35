//! A [`Value`] to any `Deserialize` type, naming the field of any error.

use serde::de::{self, DeserializeSeed, Visitor};

use super::access::{Elements, Entries, Key, VariantContent};
use super::error::ShapeError;
use super::number::{Int, exact_float};
use super::path::{Path, kind};
use crate::rows::Value;

type Result<T> = std::result::Result<T, ShapeError>;

/// Deserializes `value`, which sits at `path`, through `seed`, locating its errors there.
#[inline]
pub(super) fn deserialize_at<'de, S: DeserializeSeed<'de>>(
    seed: S,
    value: &'de Value,
    path: &Path<'_>,
) -> Result<S::Value> {
    seed.deserialize(ValueDeserializer::new(value, path))
        .map_err(|error| error.locate(path))
}

/// Reads one value at `path`.
pub(super) struct ValueDeserializer<'de, 'p> {
    value: &'de Value,
    path: &'p Path<'p>,
}

impl<'de, 'p> ValueDeserializer<'de, 'p> {
    /// Tags other than bignums say nothing serde can use: the value under them is read.
    #[inline]
    pub(super) fn new(value: &'de Value, path: &'p Path<'p>) -> Self {
        let value = match value {
            Value::Tag(..) => look_through_tags(value),
            _ => value,
        };
        ValueDeserializer { value, path }
    }

    /// "expected `expected`, found `<what the value is>`", at this value.
    fn mismatch(&self, expected: &str) -> ShapeError {
        let found = match Int::of(self.value) {
            Some(_) => "integer",
            None => kind(self.value),
        };
        ShapeError::at(self.path, format!("expected {expected}, found {found}"))
    }

    /// The integer here as a `T` (named `name` in errors).
    fn integer<T: TryFrom<i128> + TryFrom<u128>>(&self, name: &str) -> Result<T> {
        let int = Int::of(self.value).ok_or_else(|| self.mismatch("integer"))?;
        int.to()
            .ok_or_else(|| ShapeError::at(self.path, format!("integer out of range for {name}")))
    }

    /// The number here as a float of `mantissa_bits` bits of precision (named `name`).
    fn float(&self, name: &str, mantissa_bits: u32) -> Result<f64> {
        if let Value::Float(float) = self.value {
            return Ok(*float);
        }
        let int = Int::of(self.value).ok_or_else(|| self.mismatch("float"))?;
        exact_float(int, mantissa_bits).ok_or_else(|| {
            let reason = format!("integer too large to read exactly as {name}");
            ShapeError::at(self.path, reason)
        })
    }

    fn elements<V: Visitor<'de>>(&self, visitor: V) -> Result<V::Value> {
        match self.value {
            Value::Array(items) => {
                let mut elements = Elements::new(items, self.path);
                let visited = visitor.visit_seq(&mut elements)?;
                elements.end()?;
                Ok(visited)
            }
            // A byte string read as a sequence: `Vec<u8>` without serde_bytes.
            Value::Bytes(bytes) => {
                let mut bytes = de::value::SeqDeserializer::new(bytes.iter().copied());
                let visited = visitor.visit_seq(&mut bytes)?;
                bytes.end()?;
                Ok(visited)
            }
            _ => Err(self.mismatch("array")),
        }
    }

    fn entries<V: Visitor<'de>>(&self, visitor: V) -> Result<V::Value> {
        match self.value {
            Value::Map(entries) => {
                let pairs = entries.iter().map(|(key, value)| (Key::Value(key), value));
                visitor.visit_map(Entries::new(pairs, self.path))
            }
            _ => Err(self.mismatch("map")),
        }
    }
}

macro_rules! integers {
    ($($method:ident => $visit:ident $type:ident),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            visitor.$visit(self.integer::<$type>(stringify!($type))?)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for ValueDeserializer<'de, '_> {
    type Error = ShapeError;

    fn is_human_readable(&self) -> bool {
        true
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.value {
            // Only a bignum's tag is left once `new` has looked through the others.
            Value::Integer(_) | Value::Tag(..) => match Int::of(self.value) {
                Some(Int::Signed(n)) => match (u64::try_from(n), i64::try_from(n)) {
                    (Ok(n), _) => visitor.visit_u64(n),
                    (_, Ok(n)) => visitor.visit_i64(n),
                    _ => visitor.visit_i128(n),
                },
                Some(Int::Unsigned(n)) => visitor.visit_u128(n),
                Some(Int::Huge) => Err(ShapeError::at(self.path, "integer wider than 128 bits")),
                None => Err(self.mismatch("a value serde can read")),
            },
            Value::Float(float) => visitor.visit_f64(*float),
            Value::Text(text) => visitor.visit_borrowed_str(text),
            Value::Bytes(bytes) => visitor.visit_borrowed_bytes(bytes),
            Value::Bool(bool) => visitor.visit_bool(*bool),
            Value::Null => visitor.visit_unit(),
            Value::Array(_) => self.elements(visitor),
            Value::Map(_) => self.entries(visitor),
            _ => Err(self.mismatch("a value serde can read")),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.value {
            Value::Bool(bool) => visitor.visit_bool(*bool),
            _ => Err(self.mismatch("bool")),
        }
    }

    integers!(
        deserialize_i8 => visit_i8 i8,
        deserialize_i16 => visit_i16 i16,
        deserialize_i32 => visit_i32 i32,
        deserialize_i64 => visit_i64 i64,
        deserialize_i128 => visit_i128 i128,
        deserialize_u8 => visit_u8 u8,
        deserialize_u16 => visit_u16 u16,
        deserialize_u32 => visit_u32 u32,
        deserialize_u64 => visit_u64 u64,
        deserialize_u128 => visit_u128 u128
    );

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let float = self.float("f32", f32::MANTISSA_DIGITS)?;
        if float.is_finite() && float.abs() > f64::from(f32::MAX) {
            return Err(ShapeError::at(self.path, "float out of range for f32"));
        }
        visitor.visit_f32(float as f32)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_f64(self.float("f64", f64::MANTISSA_DIGITS)?)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let mut chars = match self.value {
            Value::Text(text) => text.chars(),
            _ => return Err(self.mismatch("one character of text")),
        };
        match (chars.next(), chars.next()) {
            (Some(char), None) => visitor.visit_char(char),
            _ => Err(ShapeError::at(
                self.path,
                "expected one character, found text of another length",
            )),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.value {
            Value::Text(text) => visitor.visit_borrowed_str(text),
            _ => Err(self.mismatch("text")),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.value {
            Value::Bytes(bytes) => visitor.visit_borrowed_bytes(bytes),
            // An array of small integers, as a `Vec<u8>` serializes without serde_bytes.
            Value::Array(_) => self.elements(visitor),
            _ => Err(self.mismatch("bytes")),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.value {
            Value::Null => visitor.visit_unit(),
            _ => Err(self.mismatch("null")),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.elements(visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
        self.elements(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value> {
        self.elements(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.entries(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        self.entries(visitor)
    }

    /// A unit variant is its name as text; any other, a map of one key, its name, to its
    /// content (as serde_json has it).
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match self.value {
            Value::Text(name) => visitor.visit_enum(VariantContent::new(name, None, self.path)),
            Value::Map(entries) => match entries.as_slice() {
                [(Value::Text(name), content)] => {
                    visitor.visit_enum(VariantContent::new(name, Some(content), self.path))
                }
                _ => Err(ShapeError::at(
                    self.path,
                    "expected a variant: a map of one text key to its content, found another map",
                )),
            },
            _ => Err(self.mismatch("a variant (its name as text, or a map of one key)")),
        }
    }

    /// Struct field names: text, the common case, straight to the visitor.
    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.value {
            Value::Text(name) => visitor.visit_borrowed_str(name),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_unit()
    }
}

/// The value under any tags other than a bignum's.
fn look_through_tags(mut value: &Value) -> &Value {
    while let Value::Tag(_, inner) = value {
        if Int::of(value).is_some() {
            break;
        }
        value = inner;
    }
    value
}
