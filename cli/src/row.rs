//! The fields of an entry that reports read, decoded from a JSONL line without copying what can
//! be borrowed. Reports scan millions of lines; decoding each into a whole [`AuditEntry`] costs
//! three times as much.
//!
//! [`AuditEntry`]: tracing_llm_audit::AuditEntry

use std::borrow::Cow;

use rust_decimal::Decimal;
use serde::Deserialize;
use time::{Date, OffsetDateTime};
use tracing_llm_audit::Status;

/// One entry, as reports see it. Every field an entry must have is required here too, so a line
/// that is not an entry is reported, not half-read.
#[derive(Debug, Deserialize)]
pub(crate) struct Row<'a> {
    #[serde(borrow)]
    pub(crate) request_id: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) timestamp: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) user_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) provider: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) model: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) response_model: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(crate) trace_id: Option<Cow<'a, str>>,
    pub(crate) status: Status,
    pub(crate) input_tokens: Option<u64>,
    pub(crate) output_tokens: Option<u64>,
    pub(crate) thinking_tokens: Option<u64>,
    pub(crate) cache_read_tokens: Option<u64>,
    pub(crate) cache_write_tokens: Option<u64>,
    pub(crate) latency_ms: u64,
    #[serde(borrow)]
    pub(crate) cost_usd: Option<Cow<'a, str>>,
    #[allow(dead_code)] // required, so that a line without it is not an entry
    schema_version: u32,
    /// A call's operation (`chat`), or the action of an event (an erasure, a drop report).
    #[serde(borrow)]
    pub(crate) action: Cow<'a, str>,
}

/// A decoded row with its time and cost checked.
#[derive(Debug)]
pub(crate) struct Checked<'a> {
    pub(crate) row: Row<'a>,
    /// Microseconds since the Unix epoch.
    pub(crate) micros: i64,
    pub(crate) cost: Option<Decimal>,
}

impl<'a> Checked<'a> {
    pub(crate) fn decode(line: &'a [u8]) -> Result<Self, String> {
        let row: Row<'a> = serde_json::from_slice(line).map_err(|e| e.to_string())?;
        let micros = parse_micros(&row.timestamp)
            .ok_or_else(|| format!("`{}` is not an RFC 3339 timestamp", row.timestamp))?;
        if row.request_id.len() != 36 {
            return Err(format!("`{}` is not a request id", row.request_id));
        }
        let cost = row
            .cost_usd
            .as_deref()
            .map(|c| {
                c.parse::<Decimal>()
                    .map_err(|_| format!("`{c}` is not a decimal cost"))
            })
            .transpose()?;
        Ok(Self { row, micros, cost })
    }

    /// The UTC day of the entry.
    pub(crate) fn day(&self) -> Date {
        day_of(self.micros)
    }
}

const MICROS_PER_DAY: i64 = 86_400_000_000;
/// Julian day number of 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i32 = 2_440_588;

/// The UTC day of an instant given in microseconds since the epoch.
pub(crate) fn day_of(micros: i64) -> Date {
    let days = micros.div_euclid(MICROS_PER_DAY) as i32;
    Date::from_julian_day(UNIX_EPOCH_JULIAN_DAY + days).unwrap_or(Date::MIN)
}

/// Microseconds since the epoch of an instant (sub-microsecond digits are cut, as the sink cuts
/// them).
pub(crate) fn micros_of(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000) as i64
}

/// Parses an RFC 3339 timestamp to microseconds since the epoch: the fixed layout the sinks write
/// (`2026-11-24T09:30:00.123456Z`) by hand, anything else by the `time` crate.
pub(crate) fn parse_micros(s: &str) -> Option<i64> {
    fast_micros(s.as_bytes()).or_else(|| {
        OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .ok()
            .map(micros_of)
    })
}

fn fast_micros(b: &[u8]) -> Option<i64> {
    // YYYY-MM-DDTHH:MM:SS, then an optional fraction, then Z.
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' || *b.last()? != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        b[r].iter().try_fold(0i64, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
        })
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut micros = 0;
    let rest = &b[19..b.len() - 1];
    if !rest.is_empty() {
        let digits = rest.strip_prefix(b".")?;
        if digits.is_empty() || digits.len() > 9 || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        for i in 0..6 {
            micros = micros * 10 + digits.get(i).map_or(0, |c| i64::from(c - b'0'));
        }
    }
    let month = time::Month::try_from(u8::try_from(month).ok()?).ok()?;
    let date =
        Date::from_calendar_date(i32::try_from(year).ok()?, month, u8::try_from(day).ok()?).ok()?;
    let days = i64::from(date.to_julian_day() - UNIX_EPOCH_JULIAN_DAY);
    Some(days * MICROS_PER_DAY + ((hour * 60 + minute) * 60 + second) * 1_000_000 + micros)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn the_fast_path_agrees_with_the_time_crate() {
        for s in [
            "2026-11-24T09:30:00.123456Z",
            "2026-11-24T09:30:00Z",
            "2026-11-24T23:59:59.999999999Z",
            "1969-12-31T23:59:59.5Z",
            "2024-02-29T00:00:00.000001Z",
        ] {
            let slow = micros_of(
                OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap(),
            );
            assert_eq!(fast_micros(s.as_bytes()), Some(slow), "{s}");
        }
        assert_eq!(
            parse_micros("2026-11-24T10:30:00+01:00"),
            Some(micros_of(datetime!(2026-11-24 09:30 UTC)))
        );
        for bad in [
            "2026-02-30T00:00:00Z",
            "2026-11-24T09:30:00",
            "2026-11-24T24:00:00Z",
            "x",
        ] {
            assert_eq!(parse_micros(bad), None, "{bad}");
        }
        assert_eq!(
            day_of(micros_of(datetime!(2026-11-24 23:59:59.999999 UTC))),
            time::macros::date!(2026 - 11 - 24)
        );
        assert_eq!(
            day_of(micros_of(datetime!(1969-12-31 23:00 UTC))),
            time::macros::date!(1969 - 12 - 31)
        );
    }
}
