//! `SystemTime` as the stored pair (seconds, nanoseconds) relative to the Unix epoch.
//!
//! Seconds may be negative for times before the epoch; nanoseconds are always in
//! `0..1_000_000_000`, so a time before the epoch borrows one second.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds and nanoseconds since the epoch; `None` if the seconds do not fit an `i64`.
pub(super) fn to_epoch_parts(t: SystemTime) -> Option<(i64, u32)> {
    match t.duration_since(UNIX_EPOCH) {
        Ok(after) => Some((i64::try_from(after.as_secs()).ok()?, after.subsec_nanos())),
        Err(before) => {
            // -(s + n) = (-s - 1) + (1e9 - n) when n > 0, so nanos stay non-negative.
            let d = before.duration();
            let secs = 0i64.checked_sub_unsigned(d.as_secs())?;
            match d.subsec_nanos() {
                0 => Some((secs, 0)),
                n => Some((secs.checked_sub(1)?, 1_000_000_000 - n)),
            }
        }
    }
}

/// The inverse of [`to_epoch_parts`]; `None` for nanoseconds out of range or a time the
/// platform's `SystemTime` cannot hold.
pub(super) fn from_epoch_parts(secs: i64, nanos: u32) -> Option<SystemTime> {
    if nanos >= 1_000_000_000 {
        return None;
    }
    if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::new(secs as u64, nanos))
    } else {
        UNIX_EPOCH
            .checked_sub(Duration::from_secs(secs.unsigned_abs()))?
            .checked_add(Duration::from_nanos(nanos as u64))
    }
}

/// Milliseconds since the Unix epoch (negative before it), saturating: what the store keeps
/// of `fetched_at` for expiry.
pub(crate) fn epoch_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}
