//! Any `Serialize` value to a [`Value`], naming the field of any error.

use serde::ser::{self, Serialize};

use super::error::ShapeError;
use super::path::{Path, Step};
use crate::rows::Value;

type Result<T> = std::result::Result<T, ShapeError>;

/// Serializes `value`, which sits at `path`, locating its errors there.
pub(super) fn serialize_at<T: Serialize + ?Sized>(value: &T, path: &Path<'_>) -> Result<Value> {
    value
        .serialize(ValueSerializer { path })
        .map_err(|error| error.locate(path))
}

/// Serializes one value at `path`.
struct ValueSerializer<'p> {
    path: &'p Path<'p>,
}

impl<'p> ser::Serializer for ValueSerializer<'p> {
    type Ok = Value;
    type Error = ShapeError;
    type SerializeSeq = Elements<'p>;
    type SerializeTuple = Elements<'p>;
    type SerializeTupleStruct = Elements<'p>;
    type SerializeTupleVariant = Variant<Elements<'p>>;
    type SerializeMap = Entries<'p>;
    type SerializeStruct = Entries<'p>;
    type SerializeStructVariant = Variant<Entries<'p>>;

    /// Text: timestamps, UUIDs and addresses take the form a database column holds.
    fn is_human_readable(&self) -> bool {
        true
    }

    fn serialize_bool(self, v: bool) -> Result<Value> {
        Ok(Value::Bool(v))
    }

    fn serialize_i8(self, v: i8) -> Result<Value> {
        Ok(Value::Integer(v.into()))
    }

    fn serialize_i16(self, v: i16) -> Result<Value> {
        Ok(Value::Integer(v.into()))
    }

    fn serialize_i32(self, v: i32) -> Result<Value> {
        Ok(Value::Integer(v.into()))
    }

    fn serialize_i64(self, v: i64) -> Result<Value> {
        Ok(Value::Integer(v.into()))
    }

    /// An integer where it fits (−2⁶⁴ ..= 2⁶⁴−1), else a CBOR bignum (tag 3), as the codec
    /// stores one.
    fn serialize_i128(self, v: i128) -> Result<Value> {
        Ok(Value::from(v))
    }

    fn serialize_u8(self, v: u8) -> Result<Value> {
        Ok(Value::Integer(v.into()))
    }

    fn serialize_u16(self, v: u16) -> Result<Value> {
        Ok(Value::Integer(v.into()))
    }

    fn serialize_u32(self, v: u32) -> Result<Value> {
        Ok(Value::Integer(v.into()))
    }

    fn serialize_u64(self, v: u64) -> Result<Value> {
        Ok(Value::Integer(v.into()))
    }

    /// An integer where it fits, else a CBOR bignum (tag 2).
    fn serialize_u128(self, v: u128) -> Result<Value> {
        Ok(Value::from(v))
    }

    fn serialize_f32(self, v: f32) -> Result<Value> {
        Ok(Value::Float(v.into()))
    }

    fn serialize_f64(self, v: f64) -> Result<Value> {
        Ok(Value::Float(v))
    }

    fn serialize_char(self, v: char) -> Result<Value> {
        Ok(Value::Text(v.into()))
    }

    fn serialize_str(self, v: &str) -> Result<Value> {
        Ok(Value::Text(v.into()))
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<Value> {
        Ok(Value::Bytes(v.into()))
    }

    fn serialize_none(self) -> Result<Value> {
        Ok(Value::Null)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Value> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<Value> {
        Ok(Value::Null)
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value> {
        Ok(Value::Null)
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Value> {
        Ok(Value::Text(variant.into()))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Value> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Value> {
        let content = serialize_at(value, &self.path.child(Step::Field(variant)))?;
        Ok(one_key_map(variant, content))
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Elements<'p>> {
        Ok(Elements::new(self.path, len.unwrap_or(0)))
    }

    fn serialize_tuple(self, len: usize) -> Result<Elements<'p>> {
        Ok(Elements::new(self.path, len))
    }

    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Elements<'p>> {
        Ok(Elements::new(self.path, len))
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Variant<Elements<'p>>> {
        Ok(Variant {
            name: variant,
            content: Elements::new(self.path, len),
        })
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Entries<'p>> {
        Ok(Entries::new(self.path, len.unwrap_or(0)))
    }

    fn serialize_struct(self, _: &'static str, len: usize) -> Result<Entries<'p>> {
        Ok(Entries::new(self.path, len))
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Variant<Entries<'p>>> {
        Ok(Variant {
            name: variant,
            content: Entries::new(self.path, len),
        })
    }
}

/// `{name: content}`: an enum variant with data, as serde_json writes one.
fn one_key_map(name: &str, content: Value) -> Value {
    Value::Map(vec![(Value::Text(name.into()), content)])
}

/// The elements of an array being built.
pub(super) struct Elements<'p> {
    path: &'p Path<'p>,
    elements: Vec<Value>,
}

impl<'p> Elements<'p> {
    fn new(path: &'p Path<'p>, len: usize) -> Self {
        Elements {
            path,
            elements: Vec::with_capacity(len),
        }
    }

    fn push<T: Serialize + ?Sized>(&mut self, value: &T, variant: Option<&str>) -> Result<()> {
        let index = self.elements.len();
        let element = match variant {
            Some(name) => {
                let inside = self.path.child(Step::Field(name));
                serialize_at(value, &inside.child(Step::Index(index)))?
            }
            None => serialize_at(value, &self.path.child(Step::Index(index)))?,
        };
        self.elements.push(element);
        Ok(())
    }
}

macro_rules! elements {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for Elements<'_> {
            type Ok = Value;
            type Error = ShapeError;

            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
                self.push(value, None)
            }

            fn end(self) -> Result<Value> {
                Ok(Value::Array(self.elements))
            }
        }
    )*};
}

elements!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field
);

/// The entries of a map (or struct) being built.
pub(super) struct Entries<'p> {
    path: &'p Path<'p>,
    entries: Vec<(Value, Value)>,
    /// A key whose value has not come yet.
    key: Option<Value>,
}

impl<'p> Entries<'p> {
    fn new(path: &'p Path<'p>, len: usize) -> Self {
        Entries {
            path,
            entries: Vec::with_capacity(len),
            key: None,
        }
    }

    fn field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
        variant: Option<&str>,
    ) -> Result<()> {
        let value = match variant {
            Some(name) => {
                let inside = self.path.child(Step::Field(name));
                serialize_at(value, &inside.child(Step::Field(key)))?
            }
            None => serialize_at(value, &self.path.child(Step::Field(key)))?,
        };
        self.entries.push((Value::Text(key.into()), value));
        Ok(())
    }
}

impl ser::SerializeMap for Entries<'_> {
    type Ok = Value;
    type Error = ShapeError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        self.key = Some(serialize_at(key, self.path)?);
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let key = self.key.take().ok_or_else(|| {
            ShapeError::at(self.path, "a map value was serialized before its key")
        })?;
        let value = serialize_at(value, &self.path.child(Step::Key(&key)))?;
        self.entries.push((key, value));
        Ok(())
    }

    fn end(self) -> Result<Value> {
        Ok(Value::Map(self.entries))
    }
}

impl ser::SerializeStruct for Entries<'_> {
    type Ok = Value;
    type Error = ShapeError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<()> {
        self.field(key, value, None)
    }

    fn end(self) -> Result<Value> {
        Ok(Value::Map(self.entries))
    }
}

/// The content of a tuple or struct variant being built, and the variant's name.
pub(super) struct Variant<C> {
    name: &'static str,
    content: C,
}

impl ser::SerializeTupleVariant for Variant<Elements<'_>> {
    type Ok = Value;
    type Error = ShapeError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.content.push(value, Some(self.name))
    }

    fn end(self) -> Result<Value> {
        Ok(one_key_map(self.name, Value::Array(self.content.elements)))
    }
}

impl ser::SerializeStructVariant for Variant<Entries<'_>> {
    type Ok = Value;
    type Error = ShapeError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<()> {
        self.content.field(key, value, Some(self.name))
    }

    fn end(self) -> Result<Value> {
        Ok(one_key_map(self.name, Value::Map(self.content.entries)))
    }
}
