//! The error the serializer and deserializer pass up through serde, located as it rises.
//!
//! serde's generated code raises errors (a missing field, an unknown variant) without knowing
//! where it is. Each level that hands a value down locates the errors coming back up that have
//! no place yet, so the innermost level that saw an error names it.

use std::fmt;

use serde::de::{Expected, Unexpected};

use super::path::Path;
use crate::error::Error;

/// A shape error on its way up. Boxed: every (de)serializer call returns a `Result` of it, and
/// a small error keeps the far more common `Ok` cheap to move.
#[derive(Debug)]
pub(super) struct ShapeError(Box<Shape>);

/// What the error says: its field path once a level has located it.
#[derive(Debug)]
struct Shape {
    /// The path, once located.
    field: Option<String>,
    /// A field serde named (missing, unknown, duplicate), below wherever the error is located.
    named: Option<String>,
    reason: String,
}

impl ShapeError {
    /// An error of the value at `path`.
    pub(super) fn at(path: &Path<'_>, reason: impl Into<String>) -> Self {
        ShapeError(Box::new(Shape {
            field: Some(path.render(None)),
            named: None,
            reason: reason.into(),
        }))
    }

    /// Locates the error at `path` unless a deeper level already has.
    pub(super) fn locate(mut self, path: &Path<'_>) -> Self {
        let shape = &mut *self.0;
        if shape.field.is_none() {
            shape.field = Some(path.render(shape.named.as_deref()));
        }
        self
    }

    /// The crate's error, for row `row` if known.
    pub(super) fn into_error(self, row: Option<&str>) -> Error {
        let shape = *self.0;
        Error::RowShape {
            row: row.map(str::to_owned),
            field: shape.field.or(shape.named).unwrap_or_default(),
            reason: shape.reason,
        }
    }

    fn unlocated(reason: String) -> Self {
        ShapeError(Box::new(Shape {
            field: None,
            named: None,
            reason,
        }))
    }

    fn about_field(field: &str, reason: String) -> Self {
        ShapeError(Box::new(Shape {
            field: None,
            named: Some(field.to_owned()),
            reason,
        }))
    }
}

impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0.field {
            Some(field) if !field.is_empty() => write!(f, "field `{field}`: {}", self.0.reason),
            _ => f.write_str(&self.0.reason),
        }
    }
}

impl std::error::Error for ShapeError {}

impl serde::ser::Error for ShapeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ShapeError::unlocated(msg.to_string())
    }
}

impl serde::de::Error for ShapeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ShapeError::unlocated(msg.to_string())
    }

    // The overrides below say what was found by kind only, never the value itself: a row may
    // hold secrets, and these messages end up in logs. (Field names are the schema's, not
    // data, and are named.)

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        ShapeError::unlocated(format!("expected {exp}, found {}", unexpected_kind(unexp)))
    }

    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        let found = unexpected_kind(unexp);
        ShapeError::unlocated(format!("expected {exp}, found an unsuitable {found}"))
    }

    fn invalid_length(len: usize, exp: &dyn Expected) -> Self {
        ShapeError::unlocated(format!("expected {exp}, found {len} elements"))
    }

    /// The variant found is row data, so it is not repeated.
    fn unknown_variant(_variant: &str, expected: &'static [&'static str]) -> Self {
        ShapeError::unlocated(format!("unknown variant, expected {}", one_of(expected)))
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        let reason = format!("unknown field, expected {}", one_of(expected));
        ShapeError::about_field(field, reason)
    }

    fn missing_field(field: &'static str) -> Self {
        ShapeError::about_field(field, "missing field".to_owned())
    }

    fn duplicate_field(field: &'static str) -> Self {
        ShapeError::about_field(field, "field appears twice".to_owned())
    }
}

/// `unexp`'s kind in the words of `path::kind`.
fn unexpected_kind(unexp: Unexpected<'_>) -> &'static str {
    match unexp {
        Unexpected::Bool(_) => "bool",
        Unexpected::Unsigned(_) | Unexpected::Signed(_) => "integer",
        Unexpected::Float(_) => "float",
        Unexpected::Char(_) | Unexpected::Str(_) => "text",
        Unexpected::Bytes(_) => "bytes",
        Unexpected::Unit | Unexpected::Option => "null",
        Unexpected::Seq => "array",
        Unexpected::Map => "map",
        Unexpected::Enum | Unexpected::UnitVariant => "enum",
        Unexpected::NewtypeVariant | Unexpected::TupleVariant | Unexpected::StructVariant => "enum",
        Unexpected::NewtypeStruct => "newtype struct",
        Unexpected::Other(_) => "other value",
    }
}

/// `` `a`, `b` or `c` ``, or "nothing" for an empty list.
fn one_of(names: &[&str]) -> String {
    match names {
        [] => "nothing".to_owned(),
        [only] => format!("`{only}`"),
        [init @ .., last] => {
            let init: Vec<String> = init.iter().map(|name| format!("`{name}`")).collect();
            format!("{} or `{last}`", init.join(", "))
        }
    }
}
