//! Numbers: payment cards, US SSNs, IPv4 addresses, phone numbers and IBANs, in one pass over
//! the text's digit runs.
//!
//! Each run of digits that starts a number (not inside a word, not the continuation of a
//! number like `1.3.6.1` or `978-3-16`) is offered to each detector in turn. A detector reads
//! at most a few dozen bytes from there, and after a miss the pass moves past the whole run, so
//! every byte is read a bounded number of times whatever the text.

use super::detect::{is_word, word_boundary_at, Found};
use super::Entity;

/// Which of this pass's detectors are on.
#[derive(Debug, Clone, Copy)]
pub(super) struct Enabled {
    pub(super) card: bool,
    pub(super) ssn: bool,
    pub(super) ipv4: bool,
    pub(super) phone: bool,
    pub(super) iban: bool,
}

impl Enabled {
    pub(super) fn any(&self) -> bool {
        self.card || self.ssn || self.ipv4 || self.phone || self.iban
    }
}

/// Appends the numbers found in `bytes`.
pub(super) fn find(bytes: &[u8], on: &Enabled, out: &mut Vec<Found>) {
    let mut i = 0;
    let mut last_end = None;
    while let Some(k) = bytes[i..].iter().position(u8::is_ascii_digit) {
        let start = i + k;
        let after_match = last_end == Some(start.saturating_sub(1));
        if let Some(found) = number_at(bytes, start, after_match, on) {
            i = found.end;
            last_end = Some(found.end);
            out.push(found);
        } else {
            i = start + digits(bytes, start);
        }
    }
}

/// The number whose first digit run starts at `s`, if any. `after_match`: the byte before `s`
/// is the one right after a match.
fn number_at(b: &[u8], s: usize, after_match: bool, on: &Enabled) -> Option<Found> {
    let prev = s.checked_sub(1).map(|p| b[p]);
    let prev2 = s.checked_sub(2).map(|p| b[p]);
    if on.iban
        && prev.is_some_and(|c| c.is_ascii_uppercase())
        && prev2.is_some_and(|c| c.is_ascii_uppercase())
        && (s == 2 || !is_word(b[s - 3]))
    {
        if let Some(end) = iban(b, s - 2) {
            return Some(Found::new(s - 2, end, Entity::Iban));
        }
    }
    if prev.is_some_and(is_word) {
        return None;
    }
    // The middle of a longer number: `1.3.6.1`, `978-3-16`, `10:30`, `1/2`, `1,234`, the
    // groups of an account number (`0532 0130 01` of an IBAN that failed its check).
    let continues = matches!(prev, Some(b'.' | b'-' | b':' | b'/' | b',' | b' '))
        && prev2.is_some_and(|c| c.is_ascii_digit());
    if continues && !after_match {
        return None;
    }
    if matches!(prev, Some(b'+' | b'(')) {
        if !on.phone || (s >= 2 && is_word(b[s - 2])) {
            return None;
        }
        return phone(b, s - 1).map(|end| Found::new(s - 1, end, Entity::Phone));
    }
    if on.ipv4 {
        if let Some(end) = ipv4(b, s) {
            return Some(Found::new(s, end, Entity::IpAddress));
        }
    }
    if on.ssn {
        if let Some(end) = ssn(b, s) {
            return Some(Found::new(s, end, Entity::UsSsn));
        }
    }
    if on.card {
        if let Some(end) = card(b, s) {
            return Some(Found::new(s, end, Entity::CreditCard));
        }
    }
    if on.phone {
        if let Some(end) = phone(b, s) {
            return Some(Found::new(s, end, Entity::Phone));
        }
    }
    None
}

/// How many digits start at `at`.
fn digits(b: &[u8], at: usize) -> usize {
    b[at..].iter().take_while(|c| c.is_ascii_digit()).count()
}

/// Whether a number may end at `at`: no word character follows, and no separator that goes
/// on into more digits (`1.2.3.4.5`, `123-45-6789-0`).
fn clean_end(b: &[u8], at: usize) -> bool {
    word_boundary_at(b, at)
        && !(matches!(b.get(at), Some(b'.' | b'-' | b'/' | b':' | b','))
            && b.get(at + 1).is_some_and(u8::is_ascii_digit))
}

/// `d{1,3}.d{1,3}.d{1,3}.d{1,3}`, each part at most 255, not a version number.
fn ipv4(b: &[u8], s: usize) -> Option<usize> {
    let mut p = s;
    for part in 0..4 {
        if part > 0 {
            if b.get(p) != Some(&b'.') {
                return None;
            }
            p += 1;
        }
        let n = digits(b, p);
        if n == 0 || n > 3 {
            return None;
        }
        let value = b[p..p + n]
            .iter()
            .fold(0u32, |v, d| v * 10 + u32::from(d - b'0'));
        if value > 255 {
            return None;
        }
        p += n;
    }
    // A port (`:8080`), a prefix length (`/24`) or a range (`-`) may follow, not a fifth part.
    let fifth = b.get(p) == Some(&b'.') && b.get(p + 1).is_some_and(u8::is_ascii_digit);
    (word_boundary_at(b, p) && !fifth && !after_version_word(b, s)).then_some(p)
}

/// Whether `version ` (any case) comes right before `at`.
fn after_version_word(b: &[u8], at: usize) -> bool {
    const WORD: &[u8] = b"version ";
    at >= WORD.len()
        && b[at - WORD.len()..at].eq_ignore_ascii_case(WORD)
        && (at == WORD.len() || !is_word(b[at - WORD.len() - 1]))
}

/// `AAA-GG-SSSS` with the parts the SSA never issues excluded.
fn ssn(b: &[u8], s: usize) -> Option<usize> {
    let t = b.get(s..s + 11)?;
    let shape = t.iter().enumerate().all(|(i, &c)| {
        if i == 3 || i == 6 {
            c == b'-'
        } else {
            c.is_ascii_digit()
        }
    });
    if !shape || !clean_end(b, s + 11) {
        return None;
    }
    let (area, group, serial) = (&t[0..3], &t[4..6], &t[7..11]);
    let valid =
        area != b"000" && area != b"666" && area[0] != b'9' && group != b"00" && serial != b"0000";
    valid.then_some(s + 11)
}

/// Digit groups separated by one kind of separator, as a card is written, the longest first
/// that has a network's prefix and length and passes the Luhn check.
fn card(b: &[u8], s: usize) -> Option<usize> {
    const MAX_GROUPS: usize = 8;
    let mut ends = [0usize; MAX_GROUPS];
    let mut lens = [0usize; MAX_GROUPS];
    let mut count = 0;
    let mut total = 0;
    let mut sep = None;
    let mut p = s;
    while count < MAX_GROUPS {
        let n = digits(b, p);
        if n == 0 || total + n > 19 {
            break;
        }
        p += n;
        total += n;
        ends[count] = p;
        lens[count] = n;
        count += 1;
        match b.get(p) {
            Some(&c @ (b' ' | b'-'))
                if sep.is_none_or(|s| s == c) && b.get(p + 1).is_some_and(u8::is_ascii_digit) =>
            {
                sep = Some(c);
                p += 1;
            }
            _ => break,
        }
    }
    let mut digits_buf = [0u8; 19];
    let mut n = 0;
    for &c in &b[s..ends[count.saturating_sub(1)].max(s)] {
        if c.is_ascii_digit() {
            digits_buf[n] = c - b'0';
            n += 1;
        }
    }
    // Try the longest prefix of groups first.
    let mut total = n;
    for groups in (1..=count).rev() {
        let grouped_ok = groups == 1 || lens[..groups].iter().all(|&l| (3..=6).contains(&l));
        let end = ends[groups - 1];
        if (13..=19).contains(&total)
            && grouped_ok
            && clean_end(b, end)
            && card_network(&digits_buf[..total])
            && luhn(&digits_buf[..total])
        {
            return Some(end);
        }
        total -= lens[groups - 1];
    }
    None
}

/// Whether the digits have the prefix and length of a card network (Visa, Mastercard, Amex,
/// Discover, JCB, Diners, UnionPay, Maestro).
fn card_network(d: &[u8]) -> bool {
    let len = d.len();
    let prefix = |n: usize| d[..n].iter().fold(0u32, |v, &x| v * 10 + u32::from(x));
    match d[0] {
        4 => matches!(len, 13 | 16 | 19),
        5 => match d[1] {
            1..=5 => len == 16,
            0 | 6..=8 => (12..=19).contains(&len),
            _ => false,
        },
        2 => (2221..=2720).contains(&prefix(4)) && len == 16,
        3 => match prefix(2) {
            34 | 37 => len == 15,
            36 | 38 | 39 => (14..=19).contains(&len),
            30 => (300..=305).contains(&prefix(3)) && (14..=19).contains(&len),
            35 => (3528..=3589).contains(&prefix(4)) && (16..=19).contains(&len),
            _ => false,
        },
        6 => {
            let two = prefix(2);
            let ok = prefix(4) == 6011
                || (644..=649).contains(&prefix(3))
                || matches!(two, 62 | 63 | 65 | 67);
            ok && (16..=19).contains(&len)
        }
        _ => false,
    }
}

/// The Luhn check (ISO/IEC 7812-1) over digit values.
pub(super) fn luhn(d: &[u8]) -> bool {
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            let x = u32::from(x);
            if i % 2 == 1 {
                let doubled = x * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                x
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// A phone number starting at `s` (at `+`, `(` or a digit).
fn phone(b: &[u8], s: usize) -> Option<usize> {
    let groups = PhoneGroups::parse(b, s);
    let plus = b[s] == b'+';
    if plus {
        // The longest prefix with 8 to 15 digits that ends cleanly.
        let mut total = groups.total();
        for g in (1..=groups.count).rev() {
            let end = groups.end[g - 1];
            if (8..=15).contains(&total) && clean_end(b, end) {
                return Some(end);
            }
            total -= groups.len[g - 1];
        }
        return None;
    }
    groups.north_american(b).or_else(|| groups.national(b))
}

/// The digit groups of a phone-like text: `+1 (415) 555-2671` is `1`, `(415)`, `555`, `2671`.
#[derive(Debug, Default)]
struct PhoneGroups {
    count: usize,
    len: [usize; PhoneGroups::MAX],
    /// Where each group ends (after its `)`).
    end: [usize; PhoneGroups::MAX],
    /// Its first digit.
    first: [u8; PhoneGroups::MAX],
    /// Whether it is in parentheses.
    paren: [bool; PhoneGroups::MAX],
    /// The separator before it (0 for none).
    sep: [u8; PhoneGroups::MAX],
}

impl PhoneGroups {
    const MAX: usize = 8;

    fn parse(b: &[u8], s: usize) -> Self {
        let mut g = Self::default();
        let mut p = s + usize::from(b[s] == b'+');
        let mut sep = 0;
        let mut digits_seen = 0;
        while g.count < Self::MAX {
            let paren = b.get(p) == Some(&b'(');
            let q = p + usize::from(paren);
            let n = digits(b, q);
            if n == 0 || digits_seen + n > 16 {
                break;
            }
            let mut end = q + n;
            if paren {
                if b.get(end) != Some(&b')') {
                    break;
                }
                end += 1;
            }
            digits_seen += n;
            let i = g.count;
            g.len[i] = n;
            g.end[i] = end;
            g.first[i] = b[q];
            g.paren[i] = paren;
            g.sep[i] = sep;
            g.count += 1;
            p = end;
            let next = |at: usize| b.get(at).is_some_and(|&c| c.is_ascii_digit() || c == b'(');
            match b.get(p) {
                Some(&c @ (b' ' | b'-' | b'.')) if next(p + 1) => {
                    sep = c;
                    p += 1;
                }
                Some(c) if paren && c.is_ascii_digit() => sep = 0,
                _ => break,
            }
        }
        g
    }

    fn total(&self) -> usize {
        self.len[..self.count].iter().sum()
    }

    /// `(415) 555-2671`, `415-555-2671`, `415.555.2671`, `1 415 555 2671`.
    fn north_american(&self, b: &[u8]) -> Option<usize> {
        // A leading country code `1`.
        let skip = usize::from(self.len[0] == 1 && self.first[0] == b'1' && !self.paren[0]);
        if self.count < skip + 3 {
            return None;
        }
        let [area, exchange, line] = [skip, skip + 1, skip + 2];
        let shape = self.len[area] == 3
            && self.len[exchange] == 3
            && self.len[line] == 4
            && !self.paren[exchange]
            && !self.paren[line]
            && (b'2'..=b'9').contains(&self.first[area])
            && (b'2'..=b'9').contains(&self.first[exchange])
            && self.sep[line] != 0
            && (self.paren[area] || self.sep[exchange] != 0);
        let end = self.end[line];
        (shape && clean_end(b, end)).then_some(end)
    }

    /// `020 7946 0958`, `01 42 68 53 00`, `07700 900123`: a leading 0, one kind of separator,
    /// 10 or 11 digits.
    fn national(&self, b: &[u8]) -> Option<usize> {
        // `00` would be an international call prefix, not a national number.
        let second = b.get(self.end[0] - self.len[0] - usize::from(self.paren[0]) + 1);
        if self.count < 2 || self.first[0] != b'0' || second == Some(&b'0') {
            return None;
        }
        if self.len[0] < 2 || self.paren[1..self.count].iter().any(|&p| p) {
            return None;
        }
        let first_sep = self.sep[1];
        let mut total = self.len[0];
        for g in 1..self.count {
            if self.sep[g] != first_sep || self.sep[g] == 0 || !(2..=6).contains(&self.len[g]) {
                return None;
            }
            total += self.len[g];
            if (10..=11).contains(&total) && clean_end(b, self.end[g]) {
                return Some(self.end[g]);
            }
            if total > 11 {
                return None;
            }
        }
        None
    }
}

/// IBAN length by country (ISO 13616 registry).
const IBAN_LENGTHS: &[(&[u8; 2], usize)] = &[
    (b"AD", 24),
    (b"AE", 23),
    (b"AL", 28),
    (b"AT", 20),
    (b"AZ", 28),
    (b"BA", 20),
    (b"BE", 16),
    (b"BG", 22),
    (b"BH", 22),
    (b"BR", 29),
    (b"BY", 28),
    (b"CH", 21),
    (b"CR", 22),
    (b"CY", 28),
    (b"CZ", 24),
    (b"DE", 22),
    (b"DK", 18),
    (b"DO", 28),
    (b"EE", 20),
    (b"EG", 29),
    (b"ES", 24),
    (b"FI", 18),
    (b"FO", 18),
    (b"FR", 27),
    (b"GB", 22),
    (b"GE", 22),
    (b"GI", 23),
    (b"GL", 18),
    (b"GR", 27),
    (b"GT", 28),
    (b"HR", 21),
    (b"HU", 28),
    (b"IE", 22),
    (b"IL", 23),
    (b"IQ", 23),
    (b"IS", 26),
    (b"IT", 27),
    (b"JO", 30),
    (b"KW", 30),
    (b"KZ", 20),
    (b"LB", 28),
    (b"LC", 32),
    (b"LI", 21),
    (b"LT", 20),
    (b"LU", 20),
    (b"LV", 21),
    (b"MC", 27),
    (b"MD", 24),
    (b"ME", 22),
    (b"MK", 19),
    (b"MR", 27),
    (b"MT", 31),
    (b"MU", 30),
    (b"NL", 18),
    (b"NO", 15),
    (b"PK", 24),
    (b"PL", 28),
    (b"PS", 29),
    (b"PT", 25),
    (b"QA", 29),
    (b"RO", 24),
    (b"RS", 22),
    (b"SA", 24),
    (b"SC", 31),
    (b"SE", 24),
    (b"SI", 19),
    (b"SK", 24),
    (b"SM", 27),
    (b"ST", 25),
    (b"SV", 28),
    (b"TL", 23),
    (b"TN", 24),
    (b"TR", 26),
    (b"UA", 29),
    (b"VA", 22),
    (b"VG", 24),
    (b"XK", 20),
];

/// An IBAN starting at `s` (its country code): the country's length, written together or in
/// groups of four with single spaces, and a valid mod-97 check.
fn iban(b: &[u8], s: usize) -> Option<usize> {
    let country = [b[s], b[s + 1]];
    let &(_, length) = IBAN_LENGTHS.iter().find(|(c, _)| **c == country)?;
    let mut chars = [0u8; 34];
    let mut n = 0;
    let mut p = s;
    let spaced = b.get(s + 4) == Some(&b' ');
    while n < length {
        if spaced && n > 0 && n.is_multiple_of(4) {
            if b.get(p) != Some(&b' ') {
                return None;
            }
            p += 1;
        }
        let c = *b.get(p)?;
        if !(c.is_ascii_uppercase() || c.is_ascii_digit()) {
            return None;
        }
        chars[n] = c;
        n += 1;
        p += 1;
    }
    let check_digits = chars[2].is_ascii_digit() && chars[3].is_ascii_digit();
    (check_digits && word_boundary_at(b, p) && mod97(&chars[..length]) == 1).then_some(p)
}

/// ISO 7064 mod 97-10 of an IBAN: the first four characters moved to the end, letters as
/// 10..=35.
pub(super) fn mod97(iban: &[u8]) -> u32 {
    let (head, rest) = iban.split_at(4);
    rest.iter().chain(head).fold(0u32, |acc, &c| {
        if c.is_ascii_digit() {
            (acc * 10 + u32::from(c - b'0')) % 97
        } else {
            (acc * 100 + u32::from(c - b'A') + 10) % 97
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Enabled = Enabled {
        card: true,
        ssn: true,
        ipv4: true,
        phone: true,
        iban: true,
    };

    /// The (entity, matched text) pairs in `text`.
    fn found(text: &str) -> Vec<(&'static str, &str)> {
        let mut out = Vec::new();
        find(text.as_bytes(), &ALL, &mut out);
        crate::sanitize::detect::labelled(text, &out)
    }

    #[test]
    fn luhn_matches_known_valid_and_invalid_numbers() {
        let digits = |s: &str| s.bytes().map(|c| c - b'0').collect::<Vec<_>>();
        assert!(luhn(&digits("4111111111111111")));
        assert!(luhn(&digits("79927398713")));
        assert!(!luhn(&digits("79927398710")));
        assert!(!luhn(&digits("4111111111111112")));
    }

    #[test]
    fn mod97_matches_the_registry_examples() {
        assert_eq!(mod97(b"GB82WEST12345698765432"), 1);
        assert_eq!(mod97(b"DE89370400440532013000"), 1);
        assert_ne!(mod97(b"DE89370400440532013001"), 1);
    }

    #[test]
    fn cards_need_a_network_prefix_grouping_and_luhn() {
        assert_eq!(
            found("pay 4111 1111 1111 1111 now"),
            [("credit_card", "4111 1111 1111 1111")]
        );
        assert_eq!(
            found("pay 4111-1111-1111-1111."),
            [("credit_card", "4111-1111-1111-1111")]
        );
        assert_eq!(
            found("amex 378282246310005"),
            [("credit_card", "378282246310005")]
        );
        assert!(found("pay 4111 1111 1111 1112").is_empty(), "Luhn fails");
        assert!(
            found("id 1234567812345670").is_empty(),
            "no network starts with 1"
        );
        assert!(found("4111 1111-1111 1111").is_empty(), "mixed separators");
        assert!(found("x4111111111111111").is_empty(), "inside a word");
        assert!(
            found("41111111111111110").is_empty(),
            "17 digits, Luhn fails"
        );
    }

    #[test]
    fn ssns_exclude_parts_never_issued() {
        assert_eq!(found("SSN: 123-45-6789."), [("us_ssn", "123-45-6789")]);
        for never in [
            "000-12-3456",
            "666-12-3456",
            "912-34-5678",
            "123-00-4567",
            "123-45-0000",
        ] {
            assert!(found(never).is_empty(), "{never}");
        }
        assert!(found("123-45-67890").is_empty());
        assert!(found("1-123-45-6789").is_empty(), "inside a longer number");
    }

    #[test]
    fn dotted_quads_are_addresses_unless_versions_or_longer() {
        assert_eq!(
            found("host 192.168.1.20."),
            [("ip_address", "192.168.1.20")]
        );
        assert_eq!(found("10.0.0.1/8"), [("ip_address", "10.0.0.1")]);
        assert_eq!(found("10.0.0.1:8080"), [("ip_address", "10.0.0.1")]);
        assert!(found("v1.2.3.4").is_empty());
        assert!(found("Version 1.2.3.4").is_empty());
        assert!(found("oid 1.3.6.1.4.1").is_empty());
        assert!(found("256.1.1.1").is_empty());
        assert!(found("1.2.3").is_empty());
    }

    #[test]
    fn phones_in_their_usual_shapes_but_not_dates() {
        for phone in [
            "(415) 555-2671",
            "415-555-2671",
            "415.555.2671",
            "1-800-555-0199",
            "+1 415 555 2671",
            "+1 (415) 555-2671",
            "+44 20 7946 0958",
            "+14155552671",
            "020 7946 0958",
            "01 42 68 53 00",
        ] {
            assert_eq!(
                found(&format!("call {phone}, thanks")),
                [("phone", phone)],
                "{phone}"
            );
        }
        for not in [
            "2024-01-15",
            "15.01.2024",
            "01/15/2024",
            "555-1234",
            "4155552671",
            "123-456-7890",
            "978-3-16-148410-0",
            "+12 345",
            "10:30:45",
        ] {
            assert!(found(not).is_empty(), "{not}: {:?}", found(not));
        }
    }

    #[test]
    fn ibans_need_a_known_country_its_length_and_mod97() {
        assert_eq!(
            found("to DE89 3704 0044 0532 0130 00."),
            [("iban", "DE89 3704 0044 0532 0130 00")]
        );
        assert_eq!(
            found("GB82WEST12345698765432"),
            [("iban", "GB82WEST12345698765432")]
        );
        assert!(
            found("DE89 3704 0044 0532 0130 01").is_empty(),
            "mod-97 fails"
        );
        assert!(
            found("ZZ89 3704 0044 0532 0130 00").is_empty(),
            "no such country"
        );
        assert!(found("DE89 3704 0044 0532 0130").is_empty(), "too short");
    }

    #[test]
    fn a_number_right_after_a_match_is_looked_at() {
        assert_eq!(
            found("415-555-2671 4111111111111111"),
            [
                ("phone", "415-555-2671"),
                ("credit_card", "4111111111111111")
            ]
        );
        assert!(
            found("7 0532 0130 01").is_empty(),
            "the groups of a longer number"
        );
    }

    #[test]
    fn long_digit_runs_are_read_once() {
        let text = "9".repeat(100_000);
        assert!(found(&text).is_empty());
        let text = "1 ".repeat(50_000);
        assert!(found(&text).is_empty());
    }
}
