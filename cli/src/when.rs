//! Time arguments: RFC 3339 date-times, plain dates, or durations back from now (`7d`, `24h`).

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, Duration, OffsetDateTime, Time};

/// Parses `value` into an instant; `now` anchors relative values. A plain date means its start
/// (UTC) for `--from`; `end_of_day` makes it the start of the next day, for `--to`.
pub(crate) fn parse(
    value: &str,
    now: OffsetDateTime,
    end_of_day: bool,
) -> Result<OffsetDateTime, String> {
    let value = value.trim();
    if let Ok(at) = OffsetDateTime::parse(value, &Rfc3339) {
        return Ok(at);
    }
    if let Ok(date) = Date::parse(value, format_description!("[year]-[month]-[day]")) {
        let start = date.with_time(Time::MIDNIGHT).assume_utc();
        return Ok(if end_of_day {
            start + Duration::DAY
        } else {
            start
        });
    }
    if let Ok(span) = span(value) {
        return Ok(now - span);
    }
    Err(format!(
        "`{value}` is not a time: use an RFC 3339 date-time (2026-11-24T09:00:00Z), a date \
         (2026-11-24), or a span back from now (7d, 24h, 30m)"
    ))
}

/// Parses a span of time (`24h`, `7d`, `30m`, `2w`, `90s`).
pub(crate) fn span(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    let bad = || format!("`{value}` is not a span of time: use a number and a unit (24h, 7d, 30m)");
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .filter(|&i| i > 0)
        .ok_or_else(bad)?;
    let (number, unit) = value.split_at(split);
    let n: i64 = number.parse().map_err(|_| bad())?;
    let span = match unit {
        "d" => Duration::days(n),
        "h" => Duration::hours(n),
        "m" => Duration::minutes(n),
        "s" => Duration::seconds(n),
        "w" => Duration::weeks(n),
        _ => return Err(bad()),
    };
    if span.is_zero() {
        return Err(format!("`{value}` is an empty span of time"));
    }
    Ok(span)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn accepts_the_three_forms() {
        let now = datetime!(2026-11-24 12:00 UTC);
        assert_eq!(
            parse("2026-11-20T08:30:00Z", now, false).unwrap(),
            datetime!(2026-11-20 08:30 UTC)
        );
        assert_eq!(
            parse("2026-11-20", now, false).unwrap(),
            datetime!(2026-11-20 0:00 UTC)
        );
        assert_eq!(
            parse("2026-11-20", now, true).unwrap(),
            datetime!(2026-11-21 0:00 UTC)
        );
        assert_eq!(
            parse("7d", now, false).unwrap(),
            datetime!(2026-11-17 12:00 UTC)
        );
        assert_eq!(
            parse("24h", now, false).unwrap(),
            datetime!(2026-11-23 12:00 UTC)
        );
        assert_eq!(
            parse("30m", now, false).unwrap(),
            datetime!(2026-11-24 11:30 UTC)
        );
    }

    #[test]
    fn a_bad_time_is_one_clear_sentence() {
        let err = parse("yesterday", OffsetDateTime::now_utc(), false).unwrap_err();
        assert!(err.starts_with("`yesterday` is not a time"), "{err}");
        assert!(parse("7y", OffsetDateTime::now_utc(), false).is_err());
    }
}
