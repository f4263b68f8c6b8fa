//! Time: the one clock (the lock store's [`locks::Clock`], injected into the state at start,
//! so tests and the lock store agree on "now"), and the time formats of the two protocols.

pub(crate) use locks::Clock;

/// ISO-8601 UTC with 7 fractional digits, as WOPI's `LastModifiedTime`.
pub fn iso_time(unix_ms: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:7]Z"
    );
    t.format(&fmt).unwrap_or_default()
}

/// ISO-8601 UTC with milliseconds, as JavaScript's `Date.toISOString()` and so ONLYOFFICE
/// Docs write callback times (`lastsave`).
pub(crate) fn js_time(unix_ms: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&fmt).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(iso_time(0), "1970-01-01T00:00:00.0000000Z");
        assert_eq!(iso_time(1_700_000_000_123), "2023-11-14T22:13:20.1230000Z");
        assert_eq!(js_time(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(js_time(0), "1970-01-01T00:00:00.000Z");
    }
}
