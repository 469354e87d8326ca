//! Timestamps: RFC 3339 from Unix seconds without a date library (an image config's `created`
//! must come from SOURCE_DATE_EPOCH, never from the clock), and kiln's one reading of the wall
//! clock for records and logs ([`now`], [`now_ns`]).
//!
//! A leaf of the module graph: images, container state, logs and network records all write
//! times, and none should depend on another to do it. It must not know what the times are for.

/// The wall clock in nanoseconds since the Unix epoch (0 before it): log lines and `--since`.
pub fn now_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// The wall clock as RFC 3339 in whole seconds: when a container was created, started,
/// finished; when a network was created.
pub fn now() -> String {
    rfc3339_utc((now_ns() / 1_000_000_000) as u64)
}

/// RFC 3339 with nanoseconds, `2026-11-30T10:00:00.123456789Z`, for a time from [`now_ns`].
pub fn rfc3339_nanos(time_ns: u128) -> String {
    let secs = (time_ns / 1_000_000_000) as u64;
    let nanos = (time_ns % 1_000_000_000) as u32;
    let base = rfc3339_utc(secs);
    format!("{}.{nanos:09}Z", base.trim_end_matches('Z'))
}

/// `1970-01-01T00:00:00Z` for 0.
pub fn rfc3339_utc(epoch_seconds: u64) -> String {
    let days = (epoch_seconds / 86_400) as i64;
    let secs = epoch_seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_of_known_instants() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339_utc(4_102_444_799), "2099-12-31T23:59:59Z");
        assert_eq!(
            rfc3339_nanos(1_000_000_007),
            "1970-01-01T00:00:01.000000007Z"
        );
    }
}
