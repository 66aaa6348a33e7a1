//! Email addresses, found from their `@`.
//!
//! From each `@` the local part is read leftwards (at most 64 characters, never past the
//! previous `@` or match) and the domain rightwards (stopping at the next `@`), so every byte
//! is read at most twice whatever the text: `@@@@…`, `aaaa…@` and `a@a@a@…` stay linear.

use super::detect::Found;
use super::Entity;

/// Longest local part (RFC 5321).
const MAX_LOCAL: usize = 64;
/// Longest domain (RFC 1035).
const MAX_DOMAIN: usize = 253;

/// Appends the email addresses in `bytes`.
pub(super) fn find(bytes: &[u8], out: &mut Vec<Found>) {
    // Nothing left of this is read again: the end of the last match, or the last `@`.
    let mut floor = 0;
    for at in memchr::memchr_iter(b'@', bytes) {
        if at < floor {
            continue;
        }
        if let Some((start, end)) = address_at(bytes, at, floor) {
            out.push(Found::new(start, end, Entity::Email));
            floor = end;
        } else {
            floor = at + 1;
        }
    }
}

/// Local-part characters; non-ASCII bytes too (RFC 6531), so `jürgen@` is taken whole rather
/// than as `rgen@`. The scan stops at an ASCII byte, so the start is a character boundary.
fn is_local(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c >= 0x80 || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-' | b'\'')
}

fn is_domain(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-')
}

/// The address around the `@` at `at`, reading no further left than `floor`.
fn address_at(b: &[u8], at: usize, floor: usize) -> Option<(usize, usize)> {
    let mut start = at;
    while start > floor && is_local(b[start - 1]) {
        start -= 1;
        if at - start > MAX_LOCAL {
            return None;
        }
    }
    // A local part neither starts nor ends with a dot; punctuation before it is prose.
    while start < at && matches!(b[start], b'.' | b'\'' | b'-' | b'+') {
        start += 1;
    }
    if start == at || b[at - 1] == b'.' {
        return None;
    }
    let mut end = at + 1;
    while end < b.len() && is_domain(b[end]) && end - at <= MAX_DOMAIN {
        end += 1;
    }
    // The sentence's full stop or a dash after the address is not part of it.
    while end > at + 1 && matches!(b[end - 1], b'.' | b'-') {
        end -= 1;
    }
    // A domain that goes on in non-ASCII letters (an IDN) is not cut short.
    let cut = b.get(end).is_some_and(|&c| c >= 0x80);
    (!cut && valid_domain(&b[at + 1..end])).then_some((start, end))
}

/// At least two labels of 1 to 63 characters that neither start nor end with `-`; the last
/// one letters only, at least two.
fn valid_domain(domain: &[u8]) -> bool {
    let mut labels = 0;
    let mut last: &[u8] = &[];
    for label in domain.split(|&c| c == b'.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label[0] != b'-'
            && label[label.len() - 1] != b'-';
        if !ok {
            return false;
        }
        labels += 1;
        last = label;
    }
    labels >= 2 && last.len() >= 2 && last.iter().all(u8::is_ascii_alphabetic)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        find(text.as_bytes(), &mut out);
        out.iter().map(|f| &text[f.start..f.end]).collect()
    }

    #[test]
    fn finds_addresses_in_prose() {
        assert_eq!(found("Mail bob@example.com."), ["bob@example.com"]);
        assert_eq!(
            found("<jane.o'neil+tag@mail.co.uk>"),
            ["jane.o'neil+tag@mail.co.uk"]
        );
        assert_eq!(found("a@b.io,c@d.org"), ["a@b.io", "c@d.org"]);
        assert_eq!(
            found("mailto:x_y@sub-domain.example.travel"),
            ["x_y@sub-domain.example.travel"]
        );
    }

    #[test]
    fn rejects_what_only_looks_like_an_address() {
        for not in [
            "@handle",
            "user@localhost",
            "a@b.c",
            "root@10.0.0.1",
            "x@-bad.com",
            "x@bad-.com",
            "x.@y.com",
            "@@@@",
            "foo@.com",
        ] {
            assert!(found(not).is_empty(), "{not}: {:?}", found(not));
        }
    }

    #[test]
    fn a_local_part_longer_than_64_is_not_an_address() {
        let text = format!("{}@example.com", "a".repeat(65));
        assert!(found(&text).is_empty());
        let text = format!("{}@example.com", "a".repeat(64));
        assert_eq!(found(&text).len(), 1);
    }

    #[test]
    fn adversarial_runs_finish() {
        assert!(found(&"@".repeat(100_000)).is_empty());
        assert!(found(&"a@".repeat(50_000)).is_empty());
        let text = format!("{}@", "a".repeat(100_000));
        assert!(found(&text).is_empty());
        let text = format!("a@{}", ".".repeat(100_000));
        assert!(found(&text).is_empty());
    }
}
