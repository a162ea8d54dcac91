//! `YYYY/MM/DD/` date partitions from an RFC 3339 event time.
//!
//! The date is the UTC calendar date of the instant: `2026-11-25T23:30:00-05:00` is
//! 2026-11-26 04:30 UTC, so its partition is `2026/11/26/`. S3 reports event times in UTC
//! (`...Z`), where this is simply the date as written.

/// Returns `YYYY/MM/DD/` for `event_time`, or an error naming `event-time`.
pub fn partition(event_time: &str) -> Result<String, String> {
    if event_time.is_empty() {
        return Err("event-time is empty (unknown)".into());
    }
    let (y, m, d) = utc_date(event_time)
        .map_err(|why| format!("event-time {event_time:?} is not an RFC 3339 timestamp: {why}"))?;
    Ok(format!("{y:04}/{m:02}/{d:02}/"))
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)` (RFC 3339 `date-time`; `t` or a
/// space may stand for `T`, `z` for `Z`) and returns the UTC date of that instant.
pub fn utc_date(s: &str) -> Result<(i64, u32, u32), &'static str> {
    let b = s.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let digits = b.get(range)?;
        digits.iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let sep = |i: usize, want: &[u8]| b.get(i).is_some_and(|c| want.contains(c));

    if !(sep(4, b"-") && sep(7, b"-")) {
        return Err("expected a date like 2026-11-25");
    }
    let (Some(year), Some(month), Some(day)) = (num(0..4), num(5..7), num(8..10)) else {
        return Err("expected a date like 2026-11-25");
    };
    if !sep(10, b"Tt ") {
        return Err("expected 'T' and a time after the date");
    }
    if !(sep(13, b":") && sep(16, b":")) {
        return Err("expected a time like 10:04:05");
    }
    let (Some(hour), Some(minute), Some(second)) = (num(11..13), num(14..16), num(17..19)) else {
        return Err("expected a time like 10:04:05");
    };
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err("no such date");
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Err("no such time of day");
    }
    let mut i = 19;
    if sep(i, b".") {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return Err("expected digits after the decimal point");
        }
    }
    let offset_minutes: i64 = match b.get(i) {
        Some(b'Z' | b'z') => {
            i += 1;
            0
        }
        Some(&c @ (b'+' | b'-')) => {
            let (Some(oh), true, Some(om)) = (num(i + 1..i + 3), sep(i + 3, b":"), num(i + 4..i + 6)) else {
                return Err("expected a UTC offset like +01:00");
            };
            if oh > 23 || om > 59 {
                return Err("no such UTC offset");
            }
            i += 6;
            let m = i64::from(oh * 60 + om);
            if c == b'-' { -m } else { m }
        }
        _ => return Err("expected 'Z' or a UTC offset like +01:00 after the time"),
    };
    if i != b.len() {
        return Err("unexpected text after the timestamp");
    }
    // Local time minus offset = UTC; only the day can change.
    let local_minutes = i64::from(hour * 60 + minute);
    let utc_minutes = local_minutes - offset_minutes;
    let day_shift = utc_minutes.div_euclid(24 * 60);
    let days = days_from_civil(i64::from(year), month, day) + day_shift;
    Ok(civil_from_days(days))
}

fn is_leap(y: u32) -> bool {
    (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400)
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 (proleptic Gregorian), after H. Hinnant's `days_from_civil`.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_event_times() {
        assert_eq!(partition("2026-11-25T10:04:05.123Z").unwrap(), "2026/11/25/");
        assert_eq!(partition("2026-01-02T00:00:00Z").unwrap(), "2026/01/02/");
        assert_eq!(partition("1970-01-01T00:00:00.000000Z").unwrap(), "1970/01/01/");
    }

    #[test]
    fn offsets_move_to_the_utc_date() {
        assert_eq!(partition("2026-11-25T23:30:00-05:00").unwrap(), "2026/11/26/");
        assert_eq!(partition("2026-01-01T00:30:00+01:00").unwrap(), "2025/12/31/");
        assert_eq!(partition("2024-02-28T23:00:00-02:00").unwrap(), "2024/02/29/");
        assert_eq!(partition("2023-02-28T23:00:00-02:00").unwrap(), "2023/03/01/");
        assert_eq!(partition("2026-06-30T12:00:00+00:00").unwrap(), "2026/06/30/");
        assert_eq!(partition("2026-06-30t12:00:00z").unwrap(), "2026/06/30/");
        assert_eq!(partition("2026-06-30 12:00:00Z").unwrap(), "2026/06/30/");
    }

    #[test]
    fn leap_second_and_leap_days() {
        assert_eq!(partition("2016-12-31T23:59:60Z").unwrap(), "2016/12/31/");
        assert_eq!(partition("2000-02-29T01:00:00Z").unwrap(), "2000/02/29/");
        assert!(partition("1900-02-29T01:00:00Z").is_err());
        assert!(partition("2026-02-29T01:00:00Z").is_err());
    }

    #[test]
    fn round_trip_days() {
        for days in -800_000..800_000 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn bad_times_name_event_time() {
        assert_eq!(partition("").unwrap_err(), "event-time is empty (unknown)");
        for bad in [
            "yesterday",
            "2026-11-25",
            "2026-11-25T10:04Z",
            "2026-11-25T10:04:05",
            "2026-13-01T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-11-25T24:00:00Z",
            "2026-11-25T10:04:05.Z",
            "2026-11-25T10:04:05+0100",
            "2026-11-25T10:04:05Zjunk",
            "２026-11-25T10:04:05Z",
            "+2026-11-25T10:04:05Z",
        ] {
            let e = partition(bad).unwrap_err();
            assert!(
                e.starts_with("event-time ") && e.contains("not an RFC 3339"),
                "{bad}: {e}"
            );
        }
    }
}
