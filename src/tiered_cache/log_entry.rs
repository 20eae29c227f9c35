//! Entries of a namespace's invalidation log, as XREAD returns them.
//!
//! Each entry has the id `seq-0` (one above the previous entry's, so a jump is a gap) and the
//! fields `p` (the prefix a near tier must drop), `i` (the incarnation it was written in), `l`
//! (an id of its own) and `b` (the `l` of the entry before it: a rollback of history shows as a
//! broken link even where the sequence numbers look contiguous). Since `t` was added, each also
//! carries the server's clock when it was written (Unix microseconds); entries written by an
//! older version lack it, and one that does not parse is taken as absent (it only feeds the
//! near-tier lag metric, never a decision).

use redis::Value;

/// One log entry: near tiers drop `prefix`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LogEntry {
    pub(crate) seq: u64,
    pub(crate) prefix: String,
    pub(crate) incarnation: String,
    /// This entry's link id (`l`).
    pub(crate) link: String,
    /// The link id of the entry before it (`b`; empty for the first of an incarnation).
    pub(crate) before: String,
    /// When the server wrote it (`t`, Unix microseconds), if it says.
    pub(crate) written_us: Option<u64>,
}

/// The entries of an `XREAD … STREAMS <one key> <id>` reply (RESP2): `Nil` when it timed out,
/// else `[[key, [[id, [field, value, …]], …]]]`.
pub(crate) fn parse_xread(reply: Value) -> Result<Vec<LogEntry>, String> {
    let streams = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(streams) => streams,
        other => return Err(format!("XREAD reply is not an array: {other:?}")),
    };
    let mut entries = Vec::new();
    for stream in streams {
        let Value::Array(mut key_and_entries) = stream else {
            return Err("XREAD stream is not an array".into());
        };
        let Some(Value::Array(items)) = key_and_entries.pop() else {
            return Err("XREAD stream has no entries array".into());
        };
        for item in items {
            entries.push(parse_entry(item)?);
        }
    }
    Ok(entries)
}

fn parse_entry(item: Value) -> Result<LogEntry, String> {
    let Value::Array(parts) = item else {
        return Err("log entry is not an array".into());
    };
    let [id, Value::Array(fields)] =
        <[Value; 2]>::try_from(parts).map_err(|_| "log entry is not [id, fields]".to_owned())?
    else {
        return Err("log entry fields are not an array".into());
    };
    let id = text(id)?;
    let seq = id
        .strip_suffix("-0")
        .and_then(|seq| seq.parse().ok())
        .ok_or_else(|| format!("log entry id {id:?} is not `seq-0`"))?;
    let (mut prefix, mut incarnation, mut link, mut before) = (None, None, None, None);
    let mut written_us = None;
    let mut fields = fields.into_iter();
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        match text(name)?.as_str() {
            "p" => prefix = Some(text(value)?),
            "i" => incarnation = Some(text(value)?),
            "l" => link = Some(text(value)?),
            "b" => before = Some(text(value)?),
            "t" => written_us = text(value).ok().and_then(|t| t.parse().ok()),
            _ => {}
        }
    }
    match (prefix, incarnation, link, before) {
        (Some(prefix), Some(incarnation), Some(link), Some(before)) => Ok(LogEntry {
            seq,
            prefix,
            incarnation,
            link,
            before,
            written_us,
        }),
        _ => Err(format!(
            "log entry {id} lacks one of its fields `p`, `i`, `l`, `b`"
        )),
    }
}

fn text(value: Value) -> Result<String, String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes).map_err(|e| e.to_string()),
        Value::SimpleString(text) => Ok(text),
        other => Err(format!("expected a string, got {other:?}")),
    }
}

/// The fewest prefixes that drop the same keys: `""` alone if present, else each prefix not
/// covered by another. In sorted order a covering prefix comes first, and every string between
/// it and one it covers starts with it too, so comparing with the last kept one suffices.
pub(crate) fn covering_prefixes(entries: &[LogEntry]) -> Vec<&str> {
    let mut sorted: Vec<&str> = entries.iter().map(|e| e.prefix.as_str()).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut kept: Vec<&str> = Vec::new();
    for prefix in sorted {
        if kept.last().is_none_or(|last| !prefix.starts_with(last)) {
            kept.push(prefix);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    fn entry(id: &str, prefix: &str, inc: &str) -> Value {
        Value::Array(vec![
            bulk(id),
            Value::Array(vec![
                bulk("p"),
                bulk(prefix),
                bulk("i"),
                bulk(inc),
                bulk("b"),
                bulk(&format!("before {id}")),
                bulk("l"),
                bulk(&format!("link {id}")),
            ]),
        ])
    }

    #[test]
    fn a_reply_parses_in_order() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("{vlive:ns}:log"),
            Value::Array(vec![entry("7-0", "a/", "42"), entry("8-0", "", "42")]),
        ])]);
        let entries = parse_xread(reply).unwrap();
        assert_eq!(
            entries,
            vec![
                LogEntry {
                    seq: 7,
                    prefix: "a/".into(),
                    incarnation: "42".into(),
                    link: "link 7-0".into(),
                    before: "before 7-0".into(),
                    written_us: None,
                },
                LogEntry {
                    seq: 8,
                    prefix: "".into(),
                    incarnation: "42".into(),
                    link: "link 8-0".into(),
                    before: "before 8-0".into(),
                    written_us: None,
                },
            ]
        );
        assert!(parse_xread(Value::Nil).unwrap().is_empty());
    }

    #[test]
    fn the_write_time_is_read_when_present_and_tolerated_when_not() {
        let with_time = |t: &str| {
            let Value::Array(mut parts) = entry("7-0", "a/", "42") else {
                unreachable!()
            };
            let Some(Value::Array(fields)) = parts.last_mut() else {
                unreachable!()
            };
            fields.extend([bulk("t"), bulk(t)]);
            Value::Array(vec![Value::Array(vec![
                bulk("log"),
                Value::Array(vec![Value::Array(parts)]),
            ])])
        };
        let parsed = parse_xread(with_time("1733450000123456")).unwrap();
        assert_eq!(parsed[0].written_us, Some(1_733_450_000_123_456));
        // Not a number: the entry still applies, without a time.
        let parsed = parse_xread(with_time("soon")).unwrap();
        assert_eq!(parsed[0].written_us, None);
        assert_eq!(parsed[0].prefix, "a/");
    }

    #[test]
    fn malformed_entries_are_errors() {
        let wrap = |item| {
            Value::Array(vec![Value::Array(vec![
                bulk("log"),
                Value::Array(vec![item]),
            ])])
        };
        assert!(parse_xread(wrap(entry("7-1", "a", "1"))).is_err());
        assert!(parse_xread(wrap(Value::Array(vec![bulk("7-0")]))).is_err());
        let no_inc = Value::Array(vec![bulk("7-0"), Value::Array(vec![bulk("p"), bulk("a")])]);
        assert!(parse_xread(wrap(no_inc)).is_err());
        assert!(parse_xread(Value::Int(3)).is_err());
    }

    #[test]
    fn covered_prefixes_are_dropped() {
        let entries: Vec<LogEntry> = ["clients/1", "cli", "clients/", "b/2", "b/2", "b/10"]
            .iter()
            .enumerate()
            .map(|(n, p)| LogEntry {
                seq: n as u64,
                prefix: (*p).into(),
                incarnation: "1".into(),
                link: String::new(),
                before: String::new(),
                written_us: None,
            })
            .collect();
        assert_eq!(covering_prefixes(&entries), vec!["b/10", "b/2", "cli"]);
        let mut with_all = entries.clone();
        with_all[3].prefix = String::new();
        assert_eq!(covering_prefixes(&with_all), vec![""]);
    }
}
