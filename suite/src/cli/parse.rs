//! Parsers of flag values (clap names the flag in the error).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `YYYY-MM-DD` at 00:00 UTC, a real calendar day from 1970-01-01 to 9999-12-31 (clap
/// names the flag in the error).
pub(crate) fn parse_date(text: &str) -> Result<SystemTime, String> {
    let not_a_date = || format!("{text:?} is not a date YYYY-MM-DD");
    let parts: Vec<&str> = text.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return Err(not_a_date());
    };
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if !(digits(y, 4) && digits(m, 2) && digits(d, 2)) {
        return Err(not_a_date());
    }
    let number = |s: &str| s.parse::<i64>().map_err(|_| not_a_date());
    let (y, m, d) = (number(y)?, number(m)?, number(d)?);
    if y < 1970 {
        return Err(format!("{text:?}: the year must be 1970 or later"));
    }
    if !(1..=12).contains(&m) {
        return Err(format!("{text:?}: there is no month {m}"));
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if !(1..=month_days).contains(&d) {
        return Err(format!("{text:?}: month {m} of {y} has {month_days} days"));
    }
    // Days from civil (Howard Hinnant's algorithm); y ≤ 9999 keeps every step small.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = u64::try_from(era * 146_097 + doe - 719_468).map_err(|_| not_a_date())?;
    Ok(UNIX_EPOCH + Duration::from_secs(days * 86_400))
}

/// Longest `--wait`: a day.
const MAX_WAIT_SECS: f64 = 86_400.0;

/// `--wait`: seconds, finite, 0 to [`MAX_WAIT_SECS`].
pub(crate) fn parse_wait(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !secs.is_finite() || !(0.0..=MAX_WAIT_SECS).contains(&secs) {
        return Err(format!(
            "{text:?}: the wait is 0 to {MAX_WAIT_SECS} seconds (24 h)"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `--jobs`: 1 or more (the run caps it, see `run::job_count`).
pub(crate) fn parse_jobs(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err("0: at least one case must run at a time".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{text:?} is not a whole number of 1 or more")),
    }
}

/// `--max-response`: 32 (one SM block and its framing) to 65538 (an extended response).
pub(crate) fn parse_max_response(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if (32..=65_538).contains(&n) => Ok(n),
        _ => Err(format!(
            "{text:?}: the largest response is 32 to 65538 bytes"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(date: &str) -> u64 {
        parse_date(date)
            .unwrap()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn dates_are_calendar_days_from_1970_to_9999() {
        assert_eq!(secs("1970-01-01"), 0);
        assert_eq!(secs("2024-02-29"), 1_709_164_800);
        assert_eq!(secs("2000-02-29"), 951_782_400);
        assert_eq!(secs("9999-12-31"), 253_402_214_400);
        for bad in [
            "1900-02-29",
            "2100-02-29",
            "2024-04-31",
            "10000-01-01",
            "2024-00-10",
            "+202-01-01",
        ] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn waits_are_bounded_durations() {
        assert_eq!(parse_wait("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_wait("86400"), Ok(Duration::from_secs(86_400)));
        assert!(parse_wait("-0.1").is_err() && parse_wait("1e300").is_err());
    }
}
