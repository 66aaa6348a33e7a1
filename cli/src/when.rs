//! Times and spans of time: the one parser of every option that takes one (`--from`, `--to`,
//! `--as-of`, `--window`, `--baseline`, and `retention apply --as-of`).
//!
//! A time is an RFC 3339 date-time (`2026-11-24T09:00:00Z`), a date (`2026-11-24`, its start in
//! UTC), or a span back from now (`7d`, `12h`, `30m`, `90s`, `2w`). Every time given back lies
//! between [`EARLIEST`] and [`LATEST`], which both sources and the `time` crate can hold; any
//! other input, however large, is an error that names the option and the value, never a panic.
//!
//! This file uses nothing but `time`: the fuzz target (`fuzz/fuzz_targets/when.rs`) and the
//! property tests (`cli/tests/times.rs`) compile it as it is.

use time::format_description::well_known::Rfc3339;
use time::macros::{datetime, format_description};
use time::{Date, Duration, OffsetDateTime, Time};

/// The earliest time an option may name: the start of year 1 (PostgreSQL holds earlier ones
/// only as BC dates, which no audit entry has).
pub(crate) const EARLIEST: OffsetDateTime = datetime!(0001-01-01 0:00 UTC);

/// The latest time an option may name: the end of year 9999, the last the `time` crate holds.
pub(crate) const LATEST: OffsetDateTime = datetime!(9999-12-31 23:59:59.999_999_999 UTC);

/// What a time may be, for the error messages.
const FORMS: &str = "use an RFC 3339 date-time (2026-11-24T09:00:00Z), a date (2026-11-24), or \
                     a span back from now (7d, 24h, 30m)";

/// The range, for the error messages.
const RANGE: &str = "times go from 0001-01-01 to the end of 9999-12-31";

/// Parses `value`, given to `option`, into a time; `now` anchors spans back from now. A date
/// means its start (UTC), or with `end_of_day` the start of the next day (for `--to`, which
/// takes times before it, so that the date's whole day is in).
pub(crate) fn time(
    option: &str,
    value: &str,
    now: OffsetDateTime,
    end_of_day: bool,
) -> Result<OffsetDateTime, String> {
    let text = value.trim();
    let out_of_range = || format!("{option}: `{value}` is out of range: {RANGE}");
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return in_range(at).ok_or_else(out_of_range);
    }
    if let Ok(date) = Date::parse(text, format_description!("[year]-[month]-[day]")) {
        let start = date.with_time(Time::MIDNIGHT).assume_utc();
        let at = match end_of_day {
            true => start.checked_add(Duration::DAY),
            false => Some(start),
        };
        return at.and_then(in_range).ok_or_else(|| match end_of_day {
            true => format!(
                "{option}: `{value}` is out of range: as {option}, a date runs to the start of \
                 the next day, and {RANGE}"
            ),
            false => out_of_range(),
        });
    }
    if is_span(text) {
        let span = span(option, value)?;
        return back(option, value, now, span);
    }
    Err(format!("{option}: `{value}` is not a time: {FORMS}"))
}

/// Whether `text` has the shape of a span of time (digits, then letters), so that a wrong one
/// gets the span's own message.
fn is_span(text: &str) -> bool {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && digits < text.len() && text.bytes().skip(digits).all(|b| b.is_ascii_alphabetic())
}

/// Parses a span of time (`24h`, `7d`, `30m`, `2w`, `90s`) given to `option`. A span is at
/// most the whole range of times (about 3.65 million days).
pub(crate) fn span(option: &str, value: &str) -> Result<Duration, String> {
    let text = value.trim();
    let bad = || {
        format!(
            "{option}: `{value}` is not a span of time: use a number and a unit (24h, 7d, 30m, 2w)"
        )
    };
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .filter(|&i| i > 0)
        .ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let unit_seconds: i64 = match unit {
        "w" => 7 * 86_400,
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => return Err(bad()),
    };
    let longest = (LATEST - EARLIEST).whole_seconds();
    let too_long = || {
        format!(
            "{option}: `{value}` is out of range: a span of time is at most {}d (from \
             0001-01-01 to 9999-12-31)",
            longest / 86_400
        )
    };
    // Digits only, so a failure to parse is a number too large for any span.
    let n: i64 = number.parse().map_err(|_| too_long())?;
    let seconds = n
        .checked_mul(unit_seconds)
        .filter(|&s| s <= longest)
        .ok_or_else(too_long)?;
    if seconds == 0 {
        return Err(format!("{option}: `{value}` is an empty span of time"));
    }
    Ok(Duration::seconds(seconds))
}

/// `span` back from `at`: the start of a span given to `option` as `value` that ends at `at`.
pub(crate) fn back(
    option: &str,
    value: &str,
    at: OffsetDateTime,
    span: Duration,
) -> Result<OffsetDateTime, String> {
    at.checked_sub(span).and_then(in_range).ok_or_else(|| {
        format!("{option}: `{value}` is out of range: it reaches back before 0001-01-01")
    })
}

fn in_range(at: OffsetDateTime) -> Option<OffsetDateTime> {
    (EARLIEST..=LATEST).contains(&at).then_some(at)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2026-11-24 12:00 UTC);

    #[test]
    fn accepts_the_three_forms() {
        let parse = |v: &str, end: bool| time("--from", v, NOW, end).unwrap();
        assert_eq!(
            parse("2026-11-20T08:30:00Z", false),
            datetime!(2026-11-20 08:30 UTC)
        );
        assert_eq!(parse("2026-11-20", false), datetime!(2026-11-20 0:00 UTC));
        assert_eq!(parse("2026-11-20", true), datetime!(2026-11-21 0:00 UTC));
        assert_eq!(parse("7d", false), datetime!(2026-11-17 12:00 UTC));
        assert_eq!(parse("24h", false), datetime!(2026-11-23 12:00 UTC));
        assert_eq!(parse("30m", false), datetime!(2026-11-24 11:30 UTC));
        assert_eq!(parse("2w", false), datetime!(2026-11-10 12:00 UTC));
        assert_eq!(parse(" 90s ", false), datetime!(2026-11-24 11:58:30 UTC));
    }

    #[test]
    fn a_bad_time_is_one_clear_sentence() {
        let err = time("--from", "yesterday", NOW, false).unwrap_err();
        assert!(
            err.starts_with("--from: `yesterday` is not a time"),
            "{err}"
        );
        let err = time("--from", "7y", NOW, false).unwrap_err();
        assert!(
            err.starts_with("--from: `7y` is not a span of time"),
            "{err}"
        );
        let err = time("--to", "0d", NOW, true).unwrap_err();
        assert_eq!(err, "--to: `0d` is an empty span of time");
    }

    #[test]
    fn the_edges_of_the_range() {
        for (option, value, end) in [
            ("--from", "99999999999999d", false),
            ("--from", "999999999999999999999999999999w", false),
            ("--from", "3652060d", false),
            ("--to", "9999-12-31", true),
            ("--from", "0000-12-31", false),
            ("--from", "0001-01-01T00:00:00+00:01", false),
        ] {
            let err = time(option, value, NOW, end).unwrap_err();
            assert!(
                err.starts_with(&format!("{option}: `{value}` is out of range")),
                "{err}"
            );
        }
        assert_eq!(time("--from", "0001-01-01", NOW, false).unwrap(), EARLIEST);
        assert_eq!(
            time("--to", "9999-12-30", NOW, true).unwrap(),
            datetime!(9999-12-31 0:00 UTC)
        );
        assert_eq!(
            time("--to", "9999-12-31T23:59:59.999999999Z", NOW, true).unwrap(),
            LATEST
        );
        let err = span("--window", "99999999999999d").unwrap_err();
        assert!(
            err.starts_with("--window: `99999999999999d` is out of range"),
            "{err}"
        );
        let longest = span("--window", "3652058d").unwrap();
        assert!(back("--window", "3652058d", NOW, longest).is_err());
        assert!(back("--window", "3652058d", LATEST, longest).is_ok());
    }
}
