//! The detectors together: each pass appends what it finds, then overlaps are settled.
//!
//! ```text
//! text ─┬─ digit runs ──────── numbers: credit_card, us_ssn, ip_address (v4), phone, iban
//!       ├─ memchr '@' ──────── email
//!       ├─ memchr ':' ──────── network: ip_address (v6)
//!       ├─ Aho–Corasick ────── secrets: sk-, AKIA, ghp_, github_pat_, eyJ, -----BEGIN
//!       └─ regex (each) ────── user patterns
//!                 ▼
//!   sort by start, secrets then longer first; drop what overlaps an earlier match
//! ```

use super::{email, network, numbers, secrets, Entity, EntityId};

/// One value found: its type and byte range. Ranges always fall on character boundaries:
/// every detector starts and stops at ASCII bytes, and the regex engine at characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Found {
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) entity: EntityId,
}

impl Found {
    pub(super) fn new(start: usize, end: usize, entity: Entity) -> Self {
        Self {
            start,
            end,
            entity: entity.id(),
        }
    }
}

/// The enabled detectors, ready to run.
pub(super) struct Detectors {
    enabled: [bool; Entity::ALL.len()],
    numbers: numbers::Enabled,
    secrets: Option<secrets::Secrets>,
    patterns: Vec<regex::Regex>,
}

impl Detectors {
    pub(super) fn new(enabled: &[bool; Entity::ALL.len()], patterns: Vec<regex::Regex>) -> Self {
        let on = |entity: Entity| enabled[usize::from(entity.id())];
        Self {
            enabled: *enabled,
            numbers: numbers::Enabled {
                card: on(Entity::CreditCard),
                ssn: on(Entity::UsSsn),
                ipv4: on(Entity::IpAddress),
                phone: on(Entity::Phone),
                iban: on(Entity::Iban),
            },
            secrets: secrets::Secrets::new(on),
            patterns,
        }
    }

    /// Whether the entity with this id is looked for (user patterns always are).
    pub(super) fn is_enabled(&self, id: usize) -> bool {
        self.enabled.get(id).copied().unwrap_or(true)
    }

    /// Appends to `out` every value in `text`, sorted by start, none overlapping.
    pub(super) fn find(&self, text: &str, out: &mut Vec<Found>) {
        out.clear();
        let bytes = text.as_bytes();
        if self.numbers.any() {
            numbers::find(bytes, &self.numbers, out);
        }
        if self.is_enabled(usize::from(Entity::Email.id())) {
            email::find(bytes, out);
        }
        if self.is_enabled(usize::from(Entity::IpAddress.id())) {
            network::find_ipv6(text, out);
        }
        if let Some(secrets) = &self.secrets {
            secrets.find(bytes, out);
        }
        for (index, pattern) in self.patterns.iter().enumerate() {
            let entity = EntityId::try_from(Entity::ALL.len() + index).unwrap_or(EntityId::MAX);
            out.extend(
                pattern
                    .find_iter(text)
                    .filter(|m| !m.is_empty())
                    .map(|m| Found {
                        start: m.start(),
                        end: m.end(),
                        entity,
                    }),
            );
        }
        settle_overlaps(out);
    }
}

/// Sorts by start (at the same start a secret first, then the longer) and drops every match
/// that overlaps one kept before it. A secret wins its start because it is the more precise
/// finding: `ghp_…@github.com` is a token in a URL, not an email address.
fn settle_overlaps(found: &mut Vec<Found>) {
    if found.len() < 2 {
        return;
    }
    let secret =
        |f: &Found| (Entity::AwsAccessKey.id()..=Entity::PrivateKey.id()).contains(&f.entity);
    found.sort_unstable_by_key(|f| (f.start, !secret(f), std::cmp::Reverse(f.end)));
    let mut end = 0;
    found.retain(|f| {
        if f.start < end {
            return false;
        }
        end = f.end;
        true
    });
}

/// Letters, digits and `_`: what a word is made of, so a match must not touch one.
pub(super) fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether the byte before `at` is not part of a word (or `at` is the start).
pub(super) fn word_boundary_before(bytes: &[u8], at: usize) -> bool {
    at == 0 || !is_word(bytes[at - 1])
}

/// Whether the byte at `at` is not part of a word (or `at` is the end).
pub(super) fn word_boundary_at(bytes: &[u8], at: usize) -> bool {
    bytes.get(at).is_none_or(|&b| !is_word(b))
}

/// The (entity type, matched text) pairs of `found`, for the detectors' unit tests.
#[cfg(test)]
pub(super) fn labelled<'t>(text: &'t str, found: &[Found]) -> Vec<(&'static str, &'t str)> {
    found
        .iter()
        .map(|f| {
            (
                Entity::ALL[usize::from(f.entity)].name(),
                &text[f.start..f.end],
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(start: usize, end: usize) -> Found {
        Found {
            start,
            end,
            entity: 0,
        }
    }

    #[test]
    fn the_earliest_then_longest_match_wins_an_overlap() {
        let mut found = vec![f(5, 9), f(0, 4), f(2, 6), f(5, 12), f(12, 13)];
        settle_overlaps(&mut found);
        assert_eq!(found, vec![f(0, 4), f(5, 12), f(12, 13)]);
    }
}
