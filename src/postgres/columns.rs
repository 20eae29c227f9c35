//! How each Postgres column type maps to a [`Value`], both ways.
//!
//! Every value travels as text: a column is read as an expression that yields text (`col::text`,
//! or a fixed format where `::text` is ambiguous) and written as a text parameter cast to the
//! column's type (`$1::text::<type>`), so Postgres' own input and output functions do the
//! conversions and no value is ever spliced into SQL.
//!
//! | Postgres | `Value` | notes |
//! |---|---|---|
//! | `smallint`, `integer`, `bigint` | `Integer` | |
//! | `real`, `double precision` | `Float` | `NaN`, `±Infinity` included |
//! | `numeric` | `Text` | the exact decimal digits (a float would round) |
//! | `text`, `varchar`, `char`, `name`, `citext` | `Text` | |
//! | `boolean` | `Bool` | |
//! | `date` | `Text` | `YYYY-MM-DD` |
//! | `timestamp` | `Text` | `YYYY-MM-DD HH:MM:SS[.ffffff]`, no zone |
//! | `timestamptz` | `Tag(0, Text)` | RFC 3339 in UTC (CBOR's date/time tag) |
//! | `time`, `timetz`, `interval` | `Text` | Postgres' own format |
//! | `uuid` | `Text` | lowercase, hyphenated |
//! | `json`, `jsonb` | any: `Map`, `Array`, `Text`, `Integer`, `Float`, `Bool`, `Null` | |
//! | `bytea` | `Bytes` | |
//! | arrays of the above | `Array` | read through `to_jsonb` (so elements are JSON-typed) |
//! | `NULL` | `Null` | |
//!
//! Any other type (geometric, ranges, network, composite, …) is refused when the master is
//! built, with an error that names the column and its type.

use crate::error::{Error, Result};
use crate::rows::Value;

/// How a column's values are carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Integer,
    Float,
    /// numeric, dates, times, uuid, text: Postgres' text form, kept as `Text`.
    Text,
    Bool,
    TimestampTz,
    Json,
    Bytes,
    Array,
}

impl Kind {
    /// The kind for a column of type `typname` (pg_type.typname) in category `category`
    /// (pg_type.typcategory: `A` for arrays); `None` when vlive cannot map it.
    pub(crate) fn of(typname: &str, category: &str) -> Option<Kind> {
        if category == "A" {
            // An array's typname is its element's with a leading underscore.
            let element = typname.strip_prefix('_')?;
            return Kind::of(element, "")
                .filter(|k| *k != Kind::Array)
                .map(|_| Kind::Array);
        }
        Some(match typname {
            "int2" | "int4" | "int8" => Kind::Integer,
            "float4" | "float8" => Kind::Float,
            "numeric" | "text" | "varchar" | "bpchar" | "name" | "citext" | "date"
            | "timestamp" | "time" | "timetz" | "interval" | "uuid" => Kind::Text,
            "bool" => Kind::Bool,
            "timestamptz" => Kind::TimestampTz,
            "json" | "jsonb" => Kind::Json,
            "bytea" => Kind::Bytes,
            _ => return None,
        })
    }
}

/// One column of the table.
#[derive(Clone, Debug)]
pub(crate) struct Column {
    pub(crate) name: String,
    /// `name` quoted for SQL.
    pub(crate) quoted: String,
    /// The type as `format_type` spells it (`character varying(20)`, `integer[]`): what a text
    /// parameter is cast to.
    pub(crate) sql_type: String,
    pub(crate) kind: Kind,
}

impl Column {
    /// The SQL expression that reads this column as text.
    pub(crate) fn select_expression(&self) -> String {
        let c = &self.quoted;
        match self.kind {
            // RFC 3339 in UTC for the years it can spell; `infinity` and BC dates keep
            // Postgres' own text (read back as `Text`).
            Kind::TimestampTz => format!(
                "CASE WHEN isfinite({c}) AND {c} >= '0001-01-01 00:00:00+00' \
                 THEN to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') \
                 ELSE {c}::text END"
            ),
            Kind::Json | Kind::Array => format!("to_jsonb({c})::text"),
            Kind::Bytes => format!("encode({c}, 'hex')"),
            _ => format!("{c}::text"),
        }
    }

    /// The value of this column from its text form (`None`: SQL NULL).
    pub(crate) fn decode(&self, text: Option<&str>) -> Result<Value> {
        let Some(text) = text else {
            return Ok(Value::Null);
        };
        let bad = |why: String| Error::InvalidArgument {
            reason: format!("postgres column {:?} ({}): {why}", self.name, self.sql_type),
        };
        Ok(match self.kind {
            Kind::Integer => Value::Integer(
                text.parse::<i64>()
                    .map_err(|e| bad(format!("{text:?}: {e}")))?
                    .into(),
            ),
            Kind::Float => Value::Float(parse_float(text).ok_or_else(|| bad(text.to_owned()))?),
            Kind::Text => Value::Text(text.to_owned()),
            Kind::Bool => Value::Bool(text == "true"),
            Kind::TimestampTz if text.ends_with('Z') => {
                Value::Tag(0, Box::new(Value::Text(text.to_owned())))
            }
            Kind::TimestampTz => Value::Text(text.to_owned()),
            Kind::Json | Kind::Array => {
                serde_json::from_str(text).map_err(|e| bad(format!("json: {e}")))?
            }
            Kind::Bytes => Value::Bytes(hex_decode(text).ok_or_else(|| bad("hex".into()))?),
        })
    }

    /// The text parameter for `value` in this column (`None`: NULL), or why it does not fit.
    pub(crate) fn encode(&self, value: &Value) -> Result<Option<String>> {
        if value.is_null() {
            return Ok(None);
        }
        let text = match (self.kind, value) {
            (Kind::Json, value) => json(value).map_err(|why| self.refuse(value, &why))?,
            (Kind::Array, Value::Array(items)) => {
                array_literal(items).map_err(|why| self.refuse(value, &why))?
            }
            (Kind::Integer, Value::Integer(n)) => i128::from(*n).to_string(),
            (Kind::Float, Value::Float(f)) => float_text(*f),
            (Kind::Float, Value::Integer(n)) => i128::from(*n).to_string(),
            (Kind::Text, Value::Text(t)) => t.clone(),
            (Kind::Text, Value::Integer(n)) => i128::from(*n).to_string(),
            (Kind::Text, Value::Float(f)) => float_text(*f),
            (Kind::Bool, Value::Bool(b)) => b.to_string(),
            (Kind::TimestampTz, Value::Tag(0, inner)) => match inner.as_ref() {
                Value::Text(t) => t.clone(),
                _ => return Err(self.refuse(value, "tag 0 must hold text")),
            },
            (Kind::TimestampTz, Value::Text(t)) => t.clone(),
            (Kind::Bytes, Value::Bytes(b)) => format!("\\x{}", hex_encode(b)),
            _ => return Err(self.refuse(value, "the value's kind does not fit the column")),
        };
        Ok(Some(text))
    }

    fn refuse(&self, value: &Value, why: &str) -> Error {
        Error::InvalidArgument {
            reason: format!(
                "postgres column {:?} is {}; cannot store {} in it: {why}",
                self.name,
                self.sql_type,
                kind_name(value)
            ),
        }
    }
}

fn kind_name(value: &Value) -> &'static str {
    match value {
        Value::Integer(_) => "an integer",
        Value::Bytes(_) => "bytes",
        Value::Float(_) => "a float",
        Value::Text(_) => "text",
        Value::Bool(_) => "a bool",
        Value::Null => "null",
        Value::Tag(..) => "a tagged value",
        Value::Array(_) => "an array",
        Value::Map(_) => "a map",
        _ => "a value",
    }
}

/// Postgres prints `NaN`, `Infinity`, `-Infinity`; Rust reads `NaN`, `inf`, `infinity` (any
/// case) too.
fn parse_float(text: &str) -> Option<f64> {
    text.parse().ok()
}

fn float_text(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        // Rust's shortest round-trip form; Postgres reads it back exactly (float8).
        format!("{f:?}")
    }
}

/// `value` as JSON text, for a json/jsonb column. Bytes and tags have no JSON form.
fn json(value: &Value) -> std::result::Result<String, String> {
    fn check(value: &Value) -> std::result::Result<(), String> {
        match value {
            Value::Bytes(_) | Value::Tag(..) => Err("bytes and tags have no JSON form".into()),
            Value::Float(f) if !f.is_finite() => Err("JSON has no NaN or infinity".into()),
            Value::Array(items) => items.iter().try_for_each(check),
            Value::Map(entries) => entries.iter().try_for_each(|(k, v)| match k {
                Value::Text(_) => check(v),
                _ => Err("JSON object keys must be text".into()),
            }),
            _ => Ok(()),
        }
    }
    check(value)?;
    serde_json::to_string(value).map_err(|e| e.to_string())
}

/// A Postgres array literal (`{"a","b",NULL}`), every element quoted and escaped, so Postgres'
/// array input function parses exactly these elements. Nested arrays nest.
fn array_literal(items: &[Value]) -> std::result::Result<String, String> {
    let mut out = String::from("{");
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        match item {
            Value::Null => out.push_str("NULL"),
            Value::Array(inner) => out.push_str(&array_literal(inner)?),
            scalar => {
                let text = match scalar {
                    Value::Integer(i) => i128::from(*i).to_string(),
                    Value::Float(f) => float_text(*f),
                    Value::Text(t) => t.clone(),
                    Value::Bool(b) => b.to_string(),
                    Value::Bytes(b) => format!("\\x{}", hex_encode(b)),
                    Value::Map(_) => json(scalar)?,
                    _ => return Err("array elements must be scalars, maps or arrays".into()),
                };
                out.push('"');
                for c in text.chars() {
                    if c == '"' || c == '\\' {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out.push('"');
            }
        }
    }
    out.push('}');
    Ok(out)
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// `name` if it is a plain identifier (letters, digits, `_`, `$`; not starting with a digit;
/// at most 63 bytes), quoted for SQL; else an error naming it. Mixed case is kept (quoted).
pub(crate) fn quote_identifier(name: &str, what: &str) -> Result<String> {
    let plain = !name.is_empty()
        && name.len() <= 63
        && !name.starts_with(|c: char| c.is_ascii_digit() || c == '$')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if !plain {
        return Err(Error::InvalidConfig {
            reason: format!(
                "postgres {what} {name:?} is not a plain identifier (letters, digits, _ and $, \
                 not starting with a digit, at most 63 bytes)"
            ),
        });
    }
    Ok(format!("\"{name}\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(kind: Kind) -> Column {
        Column {
            name: "c".into(),
            quoted: "\"c\"".into(),
            sql_type: "t".into(),
            kind,
        }
    }

    #[test]
    fn identifiers_are_validated_and_quoted() {
        assert_eq!(quote_identifier("users", "table").unwrap(), "\"users\"");
        assert_eq!(quote_identifier("Users_2", "table").unwrap(), "\"Users_2\"");
        for bad in [
            "",
            "1x",
            "a b",
            "a\"b",
            "a;drop table x",
            "é",
            &"x".repeat(64),
        ] {
            assert!(quote_identifier(bad, "table").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn array_literals_quote_every_element() {
        let items = vec![
            Value::Text("a\"b".into()),
            Value::Text("c\\d".into()),
            Value::Null,
            Value::Text("{,}".into()),
            Value::Array(vec![Value::Integer(1.into())]),
        ];
        assert_eq!(
            array_literal(&items).unwrap(),
            r#"{"a\"b","c\\d",NULL,"{,}",{"1"}}"#
        );
    }

    #[test]
    fn values_that_do_not_fit_are_refused_naming_the_column() {
        let error = column(Kind::Integer)
            .encode(&Value::Text("x".into()))
            .unwrap_err();
        assert!(error.to_string().contains("\"c\""), "{error}");
        assert!(column(Kind::Json).encode(&Value::Bytes(vec![1])).is_err());
        assert!(
            column(Kind::Bool)
                .encode(&Value::Integer(1.into()))
                .is_err()
        );
    }

    #[test]
    fn floats_and_bytes_round_trip_through_text() {
        for f in [0.1, -2.5e300, f64::INFINITY, f64::NEG_INFINITY] {
            let text = float_text(f);
            assert_eq!(parse_float(&text), Some(f), "{text}");
        }
        assert!(parse_float(&float_text(f64::NAN)).unwrap().is_nan());
        assert_eq!(
            hex_decode(&hex_encode(&[0, 1, 0xfe, 0xff])),
            Some(vec![0, 1, 0xfe, 0xff])
        );
        assert_eq!(hex_decode("abc"), None);
    }
}
