//! Time as events write it: the RFC 3339 parser of `eventTime` and the export lag measured
//! from it. Pure arithmetic over text and numbers: no clock is read here (the caller passes
//! the completion time), and nothing else is imported.

/// Export lag in milliseconds: from `event_time` (RFC 3339, as S3 notifications and
/// EventBridge write it) to `completed_ms` (milliseconds since the Unix epoch). `None` when
/// the time cannot be read: a malformed `eventTime` costs the record its lag, never its
/// copy. A completion before the event (clock skew between S3 and the function) is 0.
pub fn lag_ms(event_time: &str, completed_ms: u64) -> Option<u64> {
    let event_ms = rfc3339_ms(event_time)?;
    let completed = i128::from(completed_ms);
    u64::try_from((completed - i128::from(event_ms)).max(0)).ok()
}

/// Milliseconds since the Unix epoch of an RFC 3339 timestamp:
/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` (`T`/`Z` in either case, a space for `T`;
/// fraction digits past milliseconds are truncated; a leap second counts as the next second's
/// start). A parser of this one format instead of a date crate: the function reads no other.
pub fn rfc3339_ms(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(range)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        part.iter()
            .try_fold(0i64, |n, d| n.checked_mul(10)?.checked_add(i64::from(d - b'0')))
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month) || day < 1 || day > month_days[(month - 1) as usize] {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut at = 19;
    let mut millis = 0;
    if b[at] == b'.' {
        let start = at + 1;
        at = start;
        while at < b.len() && b[at].is_ascii_digit() {
            at += 1;
        }
        if at == start {
            return None;
        }
        let fraction = &text[start..at.min(start + 3)];
        millis = fraction.parse::<i64>().ok()? * 10i64.pow(3 - fraction.len() as u32);
    }
    let offset_minutes = match b.get(at..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (h, m) = (digits(at + 1..at + 3)?, digits(at + 4..at + 6)?);
            if h > 23 || m > 59 {
                return None;
            }
            let minutes = h * 60 + m;
            if *sign == b'+' { minutes } else { -minutes }
        }
        _ => return None,
    };
    // Days since 1970-01-01 of the civil date (Howard Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_as_s3_and_eventbridge_write_it() {
        // 2026-11-25T12:00:00Z is 1_795_608_000 s after the epoch.
        const NOON: i64 = 1_795_608_000_000;
        assert_eq!(rfc3339_ms("2026-11-25T12:00:00.000Z"), Some(NOON));
        assert_eq!(rfc3339_ms("2026-11-25T12:00:00Z"), Some(NOON));
        assert_eq!(rfc3339_ms("2026-11-25t12:00:00.250z"), Some(NOON + 250));
        assert_eq!(rfc3339_ms("2026-11-25 12:00:00.5Z"), Some(NOON + 500));
        assert_eq!(rfc3339_ms("2026-11-25T12:00:00.123456789Z"), Some(NOON + 123));
        assert_eq!(rfc3339_ms("2026-11-25T14:00:00+02:00"), Some(NOON));
        assert_eq!(rfc3339_ms("2026-11-25T06:30:00.000-05:30"), Some(NOON));
        assert_eq!(rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc3339_ms("2000-02-29T00:00:00Z"), Some(951_782_400_000));
        assert_eq!(rfc3339_ms("1969-12-31T23:59:59Z"), Some(-1000));
    }

    #[test]
    fn malformed_times_are_none() {
        for bad in [
            "",
            "yesterday",
            "2026-11-25",
            "2026-11-25T12:00:00",
            "2026-11-25T12:00:00.Z",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-11-31T00:00:00Z",
            "2026-11-25T24:00:00Z",
            "2026-11-25T12:60:00Z",
            "2026-11-25T12:00:00+2:00",
            "2026-11-25T12:00:00+24:00",
            "2026-11-25T12:00:00Zjunk",
            "2026-11-25X12:00:00Z",
            "+026-11-25T12:00:00Z",
            "2026-11-25T12:00:00.1é",
            "2026-１1-25T12:00:00Z",
        ] {
            assert_eq!(rfc3339_ms(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn lag_is_completion_minus_event_time_and_never_negative() {
        let noon = 1_795_608_000_000u64;
        assert_eq!(lag_ms("2026-11-25T12:00:00.000Z", noon + 1234), Some(1234));
        assert_eq!(lag_ms("2026-11-25T12:00:01.000Z", noon), Some(0), "clock skew");
        assert_eq!(lag_ms("not a time", noon), None);
    }
}
