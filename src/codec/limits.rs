//! What the reader refuses in a well-formed value, so that the writer refuses it too.
//!
//! A value the reader would reject, once stored, turns every get of its key into an error (and
//! a `LiveTable` into a master read per get), so `put` refuses it instead: the writer and
//! [`check`] walk a field value by these rules, the reader enforces them while reading. Any
//! value built from `Rows` is otherwise readable: lengths agree with the bytes written, text is
//! UTF-8, ids and field names are strings.

use crate::rows::{Rows, Value};

/// ciborium's default recursion limit for `from_reader`, which the reader keeps.
pub(super) const RECURSION_LIMIT: usize = 256;

/// The nesting left for a field value: the stored array, the rows map and the record map use
/// three levels of [`RECURSION_LIMIT`].
pub(super) const FIELD_BUDGET: usize = RECURSION_LIMIT - 3;

/// Which rule a field value breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Limit {
    /// Arrays, maps and tags nested deeper than [`FIELD_BUDGET`].
    Depth,
    /// A negative bignum below `i128::MIN`.
    Bignum,
}

/// The budget inside one more array, map or tag, from the budget outside it.
#[inline]
pub(super) fn nested(budget: usize) -> Result<usize, Limit> {
    budget.checked_sub(1).ok_or(Limit::Depth)
}

/// The budget inside a tag. The reader takes tag 2 or 3 over a byte string of at most 16
/// bytes as an integer (a bignum): no level of nesting, but a negative one must fit an `i128`.
/// Any other tag is one level.
pub(super) fn tagged(tag: u64, inner: &Value, budget: usize) -> Result<usize, Limit> {
    match (tag, inner) {
        (2, Value::Bytes(magnitude)) if magnitude.len() <= 16 => Ok(budget),
        (3, Value::Bytes(magnitude)) if magnitude.len() <= 16 => {
            // -1 - n fits an i128 while n does: fewer than 16 bytes, or a clear top bit.
            if magnitude.len() < 16 || magnitude[0] < 0x80 {
                Ok(budget)
            } else {
                Err(Limit::Bignum)
            }
        }
        _ => nested(budget),
    }
}

/// The first field value of `rows` that breaks a rule: its row id, field name and the rule.
pub(super) fn check(rows: &Rows) -> Result<(), (&str, &str, Limit)> {
    for (id, record) in rows {
        for (field, value) in record {
            check_value(value, FIELD_BUDGET)
                .map_err(|limit| (id.as_str(), field.as_str(), limit))?;
        }
    }
    Ok(())
}

fn check_value(value: &Value, budget: usize) -> Result<(), Limit> {
    match value {
        Value::Tag(tag, inner) => check_value(inner, tagged(*tag, inner, budget)?),
        Value::Array(items) => {
            let inside = nested(budget)?;
            items.iter().try_for_each(|item| check_value(item, inside))
        }
        Value::Map(entries) => {
            let inside = nested(budget)?;
            (entries.iter()).try_for_each(|(key, value)| {
                check_value(key, inside)?;
                check_value(value, inside)
            })
        }
        _ => Ok(()),
    }
}
