//! Calendar arithmetic for log timestamps (UTC), without a date library: the logs give
//! dates and times in two fixed shapes, and the report prints one.

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `(year, month, day)` of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn number(s: &str) -> Option<u32> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

fn unix(year: i64, month: u32, day: u32, h: u32, m: u32, s: u32) -> Option<i64> {
    let valid = (1..=12).contains(&month) && (1..=31).contains(&day) && h < 24 && m < 60 && s < 61;
    valid.then(|| days_from_civil(year, month, day) * 86_400 + i64::from(h * 3600 + m * 60 + s))
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `10/Oct/2000:13:55:36 -0700` (nginx `$time_local`, S3's `[Time]`): Unix seconds.
pub fn parse_common_log_time(text: &str) -> Option<i64> {
    let (stamp, zone) = text.split_once(' ')?;
    let mut parts = stamp.splitn(4, ['/', ':']);
    let day = number(parts.next()?)?;
    let month_name = parts.next()?;
    let month = MONTHS.iter().position(|m| *m == month_name)? as u32 + 1;
    let year = number(parts.next()?)?;
    let mut clock = parts.next()?.split(':');
    let (h, m, s) = (
        number(clock.next()?)?,
        number(clock.next()?)?,
        number(clock.next()?)?,
    );
    let local = unix(i64::from(year), month, day, h, m, s)?;
    let (sign, hhmm) = match zone.as_bytes().first()? {
        b'+' => (1, &zone[1..]),
        b'-' => (-1, &zone[1..]),
        _ => return None,
    };
    if hhmm.len() != 4 {
        return None;
    }
    let offset = i64::from(number(&hhmm[..2])? * 3600 + number(&hhmm[2..])? * 60);
    Some(local - sign * offset)
}

/// `2019-12-04` and `21:02:31` (CloudFront's `date` and `time`, UTC): Unix seconds.
pub fn parse_date_and_time(date: &str, time: &str) -> Option<i64> {
    let mut d = date.split('-');
    let (y, mo, day) = (number(d.next()?)?, number(d.next()?)?, number(d.next()?)?);
    let mut t = time.split(':');
    let (h, m, s) = (number(t.next()?)?, number(t.next()?)?, number(t.next()?)?);
    unix(i64::from(y), mo, day, h, m, s)
}

/// `2026-12-06 08:41:09Z`.
pub fn format(unix_seconds: i64) -> String {
    let (y, mo, d) = civil_from_days(unix_seconds.div_euclid(86_400));
    let s = unix_seconds.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// A duration as people say it: `45s`, `12m`, `3h`, `2d`.
pub fn format_duration(seconds: i64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 2 * 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_times_become_unix_seconds() {
        // The example line of nginx's and Apache's documentation.
        assert_eq!(
            parse_common_log_time("10/Oct/2000:13:55:36 -0700"),
            Some(971_211_336)
        );
        assert_eq!(
            parse_common_log_time("06/Feb/2019:00:00:38 +0000"),
            Some(1_549_411_238)
        );
        assert_eq!(
            parse_date_and_time("2019-12-04", "21:02:31"),
            Some(1_575_493_351)
        );
        for bad in [
            "10/Foo/2000:13:55:36 -0700",
            "10/Oct/2000:13:55:36",
            "x",
            "10/Oct/2000:25:00:00 +0000",
        ] {
            assert_eq!(parse_common_log_time(bad), None, "{bad}");
        }
        assert_eq!(parse_date_and_time("2019-13-04", "21:02:31"), None);
    }

    #[test]
    fn days_round_trip() {
        for days in [-1, 0, 11_016, 20_428, 100_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(format(971_211_336), "2000-10-10 20:55:36Z");
        assert_eq!(format_duration(90), "90s");
        assert_eq!(format_duration(3 * 3600), "3h");
    }
}
