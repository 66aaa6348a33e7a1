//! IPv6 addresses, found from their colons. (IPv4 addresses are numbers, found with them.)
//!
//! Around each `:` the run of hex digits, colons and dots is taken whole and handed to the
//! standard library's parser; the next search starts after the run, so every byte is read at
//! most twice.

use std::net::Ipv6Addr;

use super::detect::{is_word, Found};
use super::Entity;

/// Longest textual IPv6 address (with an embedded IPv4 part).
const MAX_LEN: usize = 45;

fn is_part(c: u8) -> bool {
    c.is_ascii_hexdigit() || c == b':' || c == b'.'
}

/// Appends the IPv6 addresses in `text`.
pub(super) fn find_ipv6(text: &str, out: &mut Vec<Found>) {
    let b = text.as_bytes();
    let mut floor = 0;
    while let Some(k) = memchr::memchr(b':', &b[floor..]) {
        let colon = floor + k;
        let mut start = colon;
        while start > floor && is_part(b[start - 1]) {
            start -= 1;
        }
        let mut end = colon + 1;
        while end < b.len() && is_part(b[end]) {
            end += 1;
        }
        if let Some((s, e)) = address_in(b, start, end) {
            out.push(Found::new(s, e, Entity::IpAddress));
        }
        floor = end;
    }
}

/// The address in the run `b[start..end]`, if the run is one (give or take a sentence's
/// trailing dot or colon).
fn address_in(b: &[u8], start: usize, mut end: usize) -> Option<(usize, usize)> {
    if start > 0 && (is_word(b[start - 1]) || b[start - 1] == b'%') {
        return None;
    }
    if end < b.len() && is_word(b[end]) {
        return None;
    }
    // `…::1.` ends a sentence; `fe80::1: refused` is followed by a colon.
    while end > start && b[end - 1] == b'.' {
        end -= 1;
    }
    if end - start >= 2 && b[end - 1] == b':' && b[end - 2] != b':' {
        end -= 1;
    }
    let run = &b[start..end];
    if run.len() > MAX_LEN || run.len() < 2 {
        return None;
    }
    // `a::b` and `dead::beef` parse, but read as paths and words: an address in prose has a
    // decimal digit or all eight groups.
    let colons = run.iter().filter(|&&c| c == b':').count();
    if !(run.iter().any(u8::is_ascii_digit) || colons == 7) {
        return None;
    }
    let text = std::str::from_utf8(run).ok()?;
    text.parse::<Ipv6Addr>().ok().map(|_| (start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        find_ipv6(text, &mut out);
        out.iter().map(|f| &text[f.start..f.end]).collect()
    }

    #[test]
    fn finds_full_compressed_and_mapped_addresses() {
        assert_eq!(
            found("from 2001:db8:85a3::8a2e:370:7334."),
            ["2001:db8:85a3::8a2e:370:7334"]
        );
        assert_eq!(found("[::1]:8080"), ["::1"]);
        assert_eq!(found("fe80::1: refused"), ["fe80::1"]);
        assert_eq!(found("::ffff:192.0.2.128"), ["::ffff:192.0.2.128"]);
        assert_eq!(
            found("2001:0db8:0000:0000:0000:ff00:0042:8329"),
            ["2001:0db8:0000:0000:0000:ff00:0042:8329"]
        );
    }

    #[test]
    fn times_macs_and_paths_are_not_addresses() {
        for not in [
            "10:30:45",
            "2024-01-15T10:30:45Z",
            "00:1A:2B:3C:4D:5E",
            "std::vec",
            "a::b",
            "ratio 3:2",
            "::",
        ] {
            assert!(found(not).is_empty(), "{not}: {:?}", found(not));
        }
    }

    #[test]
    fn colon_runs_finish() {
        assert!(found(&":".repeat(100_000)).is_empty());
        assert!(found(&"1:".repeat(50_000)).is_empty());
    }
}
