//! The audited clients' server-sent events parser (`src/clients/sse.rs`).
//!
//! - Fed the same bytes in any chunks, it gives the same events, and holds the same partial
//!   event at the end, as fed them whole.
//! - Its events are those of a reference reading of the stream, written separately: decode the
//!   bytes (invalid UTF-8 replaced), cut lines at `\r\n`, `\r` or `\n`, and read each line's
//!   field as the module's docs describe.
//!
//! The parser is crate-private and needs the `clients` feature, which brings an HTTP stack; its
//! file has no dependencies, so it is compiled in here as it stands.
#![no_main]

#[allow(dead_code, unreachable_pub)]
#[path = "../../src/clients/sse.rs"]
mod sse;

use libfuzzer_sys::fuzz_target;

/// `(event, data)` of each event a stream completes, and whether it ends mid-event.
fn reference(stream: &[u8]) -> (Vec<(String, String)>, bool) {
    let text = String::from_utf8_lossy(stream);
    let mut events = Vec::new();
    let (mut event, mut data): (Option<String>, Option<String>) = (None, None);
    let mut rest = &*text;
    while let Some(end) = rest.find(['\r', '\n']) {
        let line = &rest[..end];
        rest = rest[end..].strip_prefix("\r\n").unwrap_or(&rest[end + 1..]);
        if line.is_empty() {
            if let Some(data) = data.take() {
                events.push((event.take().unwrap_or_else(|| "message".into()), data));
            }
            event = None;
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event = Some(value.to_owned()),
            "data" => match &mut data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => data = Some(value.to_owned()),
            },
            _ => {}
        }
    }
    (events, !rest.is_empty() || data.is_some())
}

fn pairs(events: Vec<sse::Event>) -> Vec<(String, String)> {
    events.into_iter().map(|e| (e.event, e.data)).collect()
}

fuzz_target!(|data: &[u8]| {
    // The first byte says how many cuts, the next ones where; the rest is the stream.
    let Some((&cuts, rest)) = data.split_first() else {
        return;
    };
    let cuts = usize::from(cuts % 8).min(rest.len());
    let (at, stream) = rest.split_at(cuts);

    let mut whole = sse::Parser::default();
    // Without a limit, the parser takes any stream.
    let expected = pairs(whole.push(stream).expect("no limit"));
    assert_eq!(
        (expected.clone(), whole.has_partial()),
        reference(stream),
        "the parser and the reference disagree on {:?}",
        String::from_utf8_lossy(stream)
    );

    let mut points: Vec<usize> = at
        .iter()
        .map(|&b| usize::from(b) * stream.len() / 255)
        .collect();
    points.sort_unstable();
    let mut chunked = sse::Parser::default();
    let mut events = Vec::new();
    let mut from = 0;
    for to in points.into_iter().chain([stream.len()]) {
        events.extend(chunked.push(&stream[from..to]).expect("no limit"));
        from = to;
    }
    assert_eq!(pairs(events), expected, "split at {at:?}");
    assert_eq!(chunked.has_partial(), whole.has_partial());
});
