//! .NET ticks: 100-ns intervals since 0001-01-01T00:00:00Z, the unit of `X-WOPI-TimeStamp`.

/// Ticks at the Unix epoch.
pub const UNIX_EPOCH_TICKS: i64 = 621_355_968_000_000_000;
/// Ticks in one millisecond.
pub const TICKS_PER_MS: i64 = 10_000;
/// Ticks in one second.
pub const TICKS_PER_SECOND: i64 = 10_000_000;

/// Ticks for a Unix time in milliseconds.
pub fn from_unix_ms(unix_ms: i64) -> i64 {
    UNIX_EPOCH_TICKS + unix_ms * TICKS_PER_MS
}

/// Unix milliseconds for a tick count (truncated).
pub fn to_unix_ms(ticks: i64) -> i64 {
    (ticks - UNIX_EPOCH_TICKS) / TICKS_PER_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        assert_eq!(from_unix_ms(0), UNIX_EPOCH_TICKS);
        assert_eq!(
            to_unix_ms(from_unix_ms(1_700_000_000_123)),
            1_700_000_000_123
        );
    }
}
