//! The shape every operation's span shares, so that logs of reads, writes and events can be
//! filtered by the same fields.

/// An `info_span!` named `$name` with the fields `cache_key`, `op`, `id` (recorded only when
/// `$id`, an `Option<&str>`, names a row), any extra `field = value`s, and `outcome`, which
/// the operation records when it ends.
macro_rules! op_span {
    ($name:literal, $cache_key:expr, $op:expr, $id:expr $(, $field:ident = $value:expr)* $(,)?) => {{
        let span = tracing::info_span!(
            $name,
            cache_key = %$cache_key,
            op = $op,
            id = tracing::field::Empty,
            $($field = $value,)*
            outcome = tracing::field::Empty
        );
        if let Some(id) = $id {
            span.record("id", id);
        }
        span
    }};
}

pub(super) use op_span;
