//! A whole [`Record`]: read as a map without first copying it into a [`Value`], and built from
//! the map a type serializes to.

use indexmap::map::Entry;
use serde::de::{self, Visitor};

use super::access::{Entries, Key};
use super::error::ShapeError;
use super::path::{Path, Step, kind};
use crate::rows::{Record, Value};

type Result<T> = std::result::Result<T, ShapeError>;

/// The record as a map of its fields, for a struct (or a map type) to read.
pub(super) struct RecordDeserializer<'de> {
    pub(super) record: &'de Record,
}

impl<'de> de::Deserializer<'de> for RecordDeserializer<'de> {
    type Error = ShapeError;

    fn is_human_readable(&self) -> bool {
        true
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let fields = self
            .record
            .iter()
            .map(|(name, value)| (Key::Name(name.as_str()), value));
        visitor.visit_map(Entries::new(fields, &Path::ROOT))
    }

    /// A record is always there: `Option<T>` reads it as `Some`.
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_unit()
    }

    // Every other type reads a map, or says it expected something else ("expected i32,
    // found map").
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map struct enum identifier
    }
}

/// The record a value serialized to: its map, whose keys must be text (field names).
pub(super) fn into_record(value: Value) -> Result<Record> {
    let Value::Map(entries) = value else {
        let found = kind(&value);
        let reason = format!("a row must serialize to a map (a struct or a map), found {found}");
        return Err(ShapeError::at(&Path::ROOT, reason));
    };
    let mut record = Record::with_capacity(entries.len());
    for (key, value) in entries {
        let Value::Text(name) = key else {
            let reason = format!("expected text as the field name, found {}", kind(&key));
            return Err(ShapeError::at(&Path::ROOT.child(Step::Key(&key)), reason));
        };
        match record.entry(name) {
            Entry::Vacant(entry) => drop(entry.insert(value)),
            Entry::Occupied(entry) => {
                let field = Path::ROOT.child(Step::Field(entry.key()));
                return Err(ShapeError::at(&field, "field appears twice"));
            }
        }
    }
    Ok(record)
}
