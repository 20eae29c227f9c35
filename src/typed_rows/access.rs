//! How serde walks into an array, a map and an enum variant, one path step per level.

use serde::de::{self, DeserializeSeed, Deserializer, Visitor, value::BorrowedStrDeserializer};

use super::de::{ValueDeserializer, deserialize_at};
use super::error::ShapeError;
use super::path::{Path, Step};
use crate::rows::Value;

type Result<T> = std::result::Result<T, ShapeError>;

/// The elements of an array, each at its index.
pub(super) struct Elements<'de, 'p> {
    items: std::iter::Enumerate<std::slice::Iter<'de, Value>>,
    path: &'p Path<'p>,
}

impl<'de, 'p> Elements<'de, 'p> {
    pub(super) fn new(items: &'de [Value], path: &'p Path<'p>) -> Self {
        Elements {
            items: items.iter().enumerate(),
            path,
        }
    }

    /// Fails if the visitor left elements unread: a tuple shorter than the array.
    pub(super) fn end(self) -> Result<()> {
        match self.items.len() {
            0 => Ok(()),
            left => Err(ShapeError::at(
                self.path,
                format!("{left} more array elements than expected"),
            )),
        }
    }
}

impl<'de> de::SeqAccess<'de> for Elements<'de, '_> {
    type Error = ShapeError;

    fn next_element_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<Option<S::Value>> {
        let Some((index, item)) = self.items.next() else {
            return Ok(None);
        };
        deserialize_at(seed, item, &self.path.child(Step::Index(index))).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// A map key: any value in a nested map, a field name in a [`Record`](crate::Record).
#[derive(Clone, Copy)]
pub(super) enum Key<'de> {
    Value(&'de Value),
    Name(&'de str),
}

impl<'de> Key<'de> {
    fn step(self) -> Step<'de> {
        match self {
            Key::Value(value) => Step::Key(value),
            Key::Name(name) => Step::Field(name),
        }
    }
}

/// The entries of a map or a record, each value at its key.
pub(super) struct Entries<'de, 'p, I> {
    entries: I,
    /// The entry whose key was read, its value not yet.
    pending: Option<(Key<'de>, &'de Value)>,
    path: &'p Path<'p>,
}

impl<'de, 'p, I> Entries<'de, 'p, I> {
    pub(super) fn new(entries: I, path: &'p Path<'p>) -> Self {
        Entries {
            entries,
            pending: None,
            path,
        }
    }
}

impl<'de, I> de::MapAccess<'de> for Entries<'de, '_, I>
where
    I: Iterator<Item = (Key<'de>, &'de Value)>,
{
    type Error = ShapeError;

    fn next_key_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<Option<S::Value>> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.pending = Some((key, value));
        // A key that does not fit is the map's error: the map is where it sits.
        let read = match key {
            Key::Value(key) => deserialize_at(seed, key, self.path),
            Key::Name(name) => seed
                .deserialize(BorrowedStrDeserializer::<ShapeError>::new(name))
                .map_err(|error| error.locate(self.path)),
        };
        read.map(Some)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value> {
        let (key, value) = self
            .pending
            .take()
            .ok_or_else(|| ShapeError::at(self.path, "a map value was read before its key"))?;
        deserialize_at(seed, value, &self.path.child(key.step()))
    }

    fn size_hint(&self) -> Option<usize> {
        None
    }
}

/// An enum variant: its name, and its content unless it is a unit variant written as text.
pub(super) struct VariantContent<'de, 'p> {
    name: &'de str,
    content: Option<&'de Value>,
    path: &'p Path<'p>,
}

impl<'de, 'p> VariantContent<'de, 'p> {
    pub(super) fn new(name: &'de str, content: Option<&'de Value>, path: &'p Path<'p>) -> Self {
        VariantContent {
            name,
            content,
            path,
        }
    }

    /// The content, for a variant that has some, with its path (through the variant's name).
    fn content(&self) -> Result<&'de Value> {
        self.content.ok_or_else(|| {
            let reason = format!(
                "variant `{}` has data: expected a map of one key, found its name alone",
                self.name
            );
            ShapeError::at(self.path, reason)
        })
    }
}

impl<'de, 'p> de::EnumAccess<'de> for VariantContent<'de, 'p> {
    type Error = ShapeError;
    type Variant = Self;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self)> {
        let variant = seed
            .deserialize(BorrowedStrDeserializer::<ShapeError>::new(self.name))
            .map_err(|error| error.locate(self.path))?;
        Ok((variant, self))
    }
}

impl<'de> de::VariantAccess<'de> for VariantContent<'de, '_> {
    type Error = ShapeError;

    fn unit_variant(self) -> Result<()> {
        match self.content {
            None | Some(Value::Null) => Ok(()),
            Some(_) => {
                let reason = format!("variant `{}` takes no data, found some", self.name);
                Err(ShapeError::at(self.path, reason))
            }
        }
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value> {
        let content = self.content()?;
        deserialize_at(seed, content, &self.path.child(Step::Field(self.name)))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value> {
        let content = self.content()?;
        let path = self.path.child(Step::Field(self.name));
        ValueDeserializer::new(content, &path)
            .deserialize_tuple(len, visitor)
            .map_err(|error| error.locate(&path))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        let content = self.content()?;
        let path = self.path.child(Step::Field(self.name));
        ValueDeserializer::new(content, &path)
            .deserialize_struct("", fields, visitor)
            .map_err(|error| error.locate(&path))
    }
}
