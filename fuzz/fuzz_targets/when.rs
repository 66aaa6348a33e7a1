//! The CLI's one parser of times and spans (`cli/src/when.rs`, compiled here as it is), as
//! `--from`, `--to`, `--as-of`, `--window` and `--baseline` read their values.
//!
//! - No input panics, whatever the "now" it counts back from.
//! - A time it gives lies between `EARLIEST` and `LATEST`; an error names the option and the
//!   value.
//! - An RFC 3339 date-time within the range is the `time` crate's reading of it.
//! - A span is positive and at most the whole range; counted back from a time it starts within
//!   the range, before that time; and a span given as a time is exactly that.
#![no_main]

use libfuzzer_sys::fuzz_target;
use time::format_description::well_known::Rfc3339;
use time::macros::datetime;
use time::OffsetDateTime;

#[path = "../../cli/src/when.rs"]
mod when;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    let anchors = [
        datetime!(2026-11-24 12:00 UTC),
        when::EARLIEST,
        when::LATEST,
    ];
    let span = when::span("--window", value);
    match &span {
        Ok(s) => assert!(
            s.is_positive() && *s <= when::LATEST - when::EARLIEST,
            "{value:?} gave the span {s}"
        ),
        Err(e) => assert!(
            e.starts_with("--window: `") && e.contains(value),
            "{value:?}: {e}"
        ),
    }
    for now in anchors {
        for end_of_day in [false, true] {
            match when::time("--from", value, now, end_of_day) {
                Ok(at) => {
                    assert!(
                        (when::EARLIEST..=when::LATEST).contains(&at),
                        "{value:?} gave {at}"
                    );
                    if let Ok(exact) = OffsetDateTime::parse(value.trim(), &Rfc3339) {
                        assert_eq!(at, exact, "{value:?}");
                    }
                }
                Err(e) => assert!(
                    e.starts_with("--from: `") && e.contains(value),
                    "{value:?}: {e}"
                ),
            }
        }
        if let Ok(s) = span {
            let back = when::back("--window", value, now, s);
            if let Ok(start) = back {
                assert!(
                    start >= when::EARLIEST && start < now,
                    "{value:?} from {now}"
                );
            }
            assert_eq!(
                when::time("--from", value, now, false).ok(),
                back.ok(),
                "{value:?} as a time and as a span back from {now}"
            );
        }
    }
});
