//! Writing the redacted text: placeholders numbered per request, masks, keyed tokens.

use std::collections::hash_map::{HashMap, RandomState};
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::hash::BuildHasher;

use super::detect::Found;
use super::{Entity, EntityId, RedactionCounts, RedactionMode, Sanitizer};

/// The texts of one request, redacted with one numbering: the same value gets the same
/// placeholder in every text of the scope. Made by [`Sanitizer::scope`].
///
/// To number values it remembers a hash of each (SipHash under a key random per scope), never
/// the value, and its `Debug` shows only counts.
pub struct RequestScope<'s> {
    sanitizer: &'s Sanitizer,
    /// Placeholder number by (entity, hash of the value).
    numbers: HashMap<(EntityId, u64), u32>,
    hasher: RandomState,
    /// Distinct values seen, by entity id.
    distinct: Vec<u32>,
    /// Redactions by entity id.
    counts: Vec<u64>,
    /// Reused between texts.
    found: Vec<Found>,
}

impl fmt::Debug for RequestScope<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestScope")
            .field("counts", &self.counts())
            .finish_non_exhaustive()
    }
}

impl<'s> RequestScope<'s> {
    pub(super) fn new(sanitizer: &'s Sanitizer) -> Self {
        Self {
            sanitizer,
            numbers: HashMap::new(),
            hasher: RandomState::new(),
            distinct: vec![0; sanitizer.names.len()],
            counts: vec![0; sanitizer.names.len()],
            found: Vec::new(),
        }
    }

    /// `text` redacted, or `None` when it holds nothing to redact (so callers can keep the
    /// original without copying it).
    pub fn redact(&mut self, text: &str) -> Option<String> {
        let mut found = std::mem::take(&mut self.found);
        self.sanitizer.detectors.find(text, &mut found);
        let redacted = (!found.is_empty()).then(|| self.render(text, &found));
        self.found = found;
        redacted
    }

    /// The counts so far.
    #[must_use]
    pub fn counts(&self) -> RedactionCounts {
        let map: BTreeMap<String, u64> = self
            .counts
            .iter()
            .enumerate()
            .filter(|(_, &count)| count > 0)
            .map(|(id, &count)| (self.sanitizer.names[id].clone(), count))
            .collect();
        RedactionCounts(map)
    }

    /// Ends the scope with its counts.
    #[must_use]
    pub fn finish(self) -> RedactionCounts {
        self.counts()
    }

    fn render(&mut self, text: &str, found: &[Found]) -> String {
        let mut out = String::with_capacity(text.len() + 16 * found.len());
        let mut last = 0;
        for f in found {
            out.push_str(&text[last..f.start]);
            self.write_token(&mut out, f.entity, &text[f.start..f.end]);
            self.counts[usize::from(f.entity)] += 1;
            last = f.end;
        }
        out.push_str(&text[last..]);
        out
    }

    fn write_token(&mut self, out: &mut String, entity: EntityId, value: &str) {
        let label = &self.sanitizer.labels[usize::from(entity)];
        match &self.sanitizer.mode {
            RedactionMode::Placeholder => {
                let key = (entity, self.hasher.hash_one(value));
                // Numbered per entity type: [EMAIL_1], [EMAIL_2], [PHONE_1].
                let distinct = &mut self.distinct[usize::from(entity)];
                let number = *self.numbers.entry(key).or_insert_with(|| {
                    *distinct += 1;
                    *distinct
                });
                let _ = write!(out, "[{label}_{number}]");
            }
            RedactionMode::Mask => {
                out.push_str("****");
                if entity == Entity::CreditCard.id() {
                    let digits: Vec<char> = value.chars().filter(char::is_ascii_digit).collect();
                    out.extend(&digits[digits.len().saturating_sub(4)..]);
                }
            }
            RedactionMode::KeyedHash(key) => {
                let name = &self.sanitizer.names[usize::from(entity)];
                let mut input = Vec::with_capacity(name.len() + 1 + value.len());
                input.extend_from_slice(name.as_bytes());
                input.push(0);
                input.extend_from_slice(value.as_bytes());
                let hash = key.hash(&input);
                let hex = &hash[crate::HASH_PREFIX.len()..crate::HASH_PREFIX.len() + 16];
                let _ = write!(out, "[{label}:{hex}]");
            }
        }
    }
}
