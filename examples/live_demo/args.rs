//! How the command line's text becomes values: the cache choice and `add`'s fields.

use std::path::PathBuf;

use vlive::Value;

/// What `--cache` asked for.
#[derive(Clone, Debug)]
pub enum CacheChoice {
    Mem,
    None,
    Folder(PathBuf),
}

/// `--cache`: `mem`, `none`, or a folder (which may not be a file).
pub fn parse_cache(value: &str) -> Result<CacheChoice, String> {
    match value {
        "mem" => Ok(CacheChoice::Mem),
        "none" => Ok(CacheChoice::None),
        "" => Err("expected `mem`, `none` or a folder for a persistent cache".into()),
        folder => {
            let path = PathBuf::from(folder);
            if path.exists() && !path.is_dir() {
                return Err(format!(
                    "{folder:?} exists and is not a folder; expected `mem`, `none` or a folder \
                     for a persistent cache"
                ));
            }
            Ok(CacheChoice::Folder(path))
        }
    }
}

/// One field of `add`: `KEY=VALUE`.
pub fn parse_field(arg: &str) -> Result<(String, Value), String> {
    let Some((key, raw)) = arg.split_once('=') else {
        return Err(format!("expected KEY=VALUE, got {arg:?}"));
    };
    let key = key.trim();
    if key.is_empty() {
        return Err(format!("the field name is empty in {arg:?}"));
    }
    Ok((key.to_owned(), parse_value(raw)))
}

/// Integers, decimals, true/false, or else text.
fn parse_value(raw: &str) -> Value {
    if let Ok(n) = raw.parse::<i64>() {
        Value::Integer(n.into())
    } else if let Ok(x) = raw.parse::<f64>().map_err(drop).and_then(|x| {
        // "inf" and "NaN" parse as floats but are meant as text here.
        if x.is_finite() { Ok(x) } else { Err(()) }
    }) {
        Value::Float(x)
    } else if raw == "true" || raw == "false" {
        Value::Bool(raw == "true")
    } else {
        Value::Text(raw.to_owned())
    }
}
