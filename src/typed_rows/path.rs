//! Where in a row a value sits, for errors: `address.city`, `tags[2]`, `scores[7]`.
//!
//! A path is a chain of borrowed links on the stack, one per level the (de)serializer is in:
//! going down a level costs nothing, and the text is built only when an error needs it.

use std::fmt::Write;

use crate::rows::Value;

/// One step down from the enclosing value.
#[derive(Clone, Copy)]
pub(super) enum Step<'a> {
    /// The record or value the caller handed over.
    Root,
    /// A struct field, a record field or an enum variant's content.
    Field(&'a str),
    /// The value under a map key.
    Key(&'a Value),
    /// An element of an array.
    Index(usize),
}

/// The path of the value being worked on: its own step and the path of its parent.
#[derive(Clone, Copy)]
pub(super) struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    step: Step<'a>,
}

impl<'a> Path<'a> {
    /// The top of a record or value.
    pub(super) const ROOT: Path<'static> = Path {
        parent: None,
        step: Step::Root,
    };

    /// The path one step below this one.
    pub(super) fn child(&'a self, step: Step<'a>) -> Path<'a> {
        Path {
            parent: Some(self),
            step,
        }
    }

    /// The path as text, with `field` (a field named by serde, say a missing one) appended.
    pub(super) fn render(&self, field: Option<&str>) -> String {
        let mut steps = Vec::new();
        let mut at = Some(self);
        while let Some(path) = at {
            steps.push(path.step);
            at = path.parent;
        }
        let mut text = String::new();
        for step in steps.into_iter().rev() {
            push_step(&mut text, step);
        }
        if let Some(field) = field {
            push_step(&mut text, Step::Field(field));
        }
        text
    }
}

/// Appends one step: `.name` (no dot at the start), `[2]` for an element or integer key.
fn push_step(text: &mut String, step: Step<'_>) {
    match step {
        Step::Root => {}
        Step::Field(name) => push_name(text, name),
        Step::Key(Value::Text(name)) => push_name(text, name),
        // Writing to a String cannot fail.
        Step::Index(index) => drop(write!(text, "[{index}]")),
        Step::Key(Value::Integer(key)) => drop(write!(text, "[{}]", i128::from(*key))),
        Step::Key(other) => drop(write!(text, "[{} key]", kind(other))),
    }
}

fn push_name(text: &mut String, name: &str) {
    if !text.is_empty() {
        text.push('.');
    }
    text.push_str(name);
}

/// What kind of value `value` is, in the words errors use.
pub(super) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Integer(_) => "integer",
        Value::Bytes(_) => "bytes",
        Value::Float(_) => "float",
        Value::Text(_) => "text",
        Value::Bool(_) => "bool",
        Value::Null => "null",
        Value::Tag(..) => "tagged value",
        Value::Array(_) => "array",
        Value::Map(_) => "map",
        _ => "unknown value",
    }
}
