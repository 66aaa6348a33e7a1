//! Finds personal data and secrets in text and redacts them before the text leaves the
//! application: a [`Sanitizer`] with a builder, usable on its own or as the audited clients'
//! before-send hook (feature `clients`), where the counts land in the entry's `sanitization`
//! and `sanitization_count`.
//!
//! ```
//! use tracing_llm_audit::sanitize::Sanitizer;
//!
//! let sanitizer = Sanitizer::builder().build()?;
//! let out = sanitizer.sanitize("Mail bob@example.com or bob@example.com, card 4111 1111 1111 1111");
//! assert_eq!(out.text, "Mail [EMAIL_1] or [EMAIL_1], card [CREDIT_CARD_1]");
//! assert_eq!(out.counts.get("email"), 2);
//! assert_eq!(out.counts.total(), 3);
//! # Ok::<(), tracing_llm_audit::sanitize::SanitizerError>(())
//! ```
//!
//! # What it finds
//!
//! | entity type | what counts |
//! |---|---|
//! | `email` | `local@domain.tld`: ASCII local part of at most 64 characters, a domain of at least two labels whose last one is letters only |
//! | `phone` | `+` and 8 to 15 digits in groups; North American `(415) 555-2671`, `415-555-2671`, `415.555.2671`, `1-800-555-0199` (area and exchange codes 2–9 first); national numbers with a leading `0` and one kind of separator, 10 or 11 digits (`020 7946 0958`, `01 42 68 53 00`). Ten bare digits, seven-digit local numbers and dates are not phones. |
//! | `credit_card` | 13 to 19 digits, together or in groups of 3 to 6 separated by one kind of separator (space or `-`), with a card network's prefix and length, and a valid Luhn check digit |
//! | `us_ssn` | `AAA-GG-SSSS` with an area not `000`, `666` or `9xx`, a group not `00`, a serial not `0000` (nine bare digits are not taken) |
//! | `iban` | a known country code, the country's length, groups of four separated by single spaces or none, and a valid ISO 7064 mod-97 check |
//! | `ip_address` | IPv4 dotted quads with every part at most 255, except after `v` or the word `version` (`version 1.2.3.4` is a version); IPv6 as the standard library parses it, with at least one decimal digit or all eight groups (`a::b` is a path, not an address) |
//! | `aws_access_key` | `AKIA`, `ASIA`, `ABIA` or `ACCA` and 16 upper-case letters or digits |
//! | `openai_api_key` | `sk-` (also `sk-proj-`, `sk-svcacct-`, ...) and at least 20 characters of `[A-Za-z0-9_-]` mixing upper case, lower case and digits |
//! | `anthropic_api_key` | `sk-ant-` and at least 32 such characters, mixing the same |
//! | `github_token` | `ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_` and at least 36 letters or digits; `github_pat_` and at least 22 |
//! | `jwt` | `eyJ…` header, `.`, payload, `.`, signature (base64url) |
//! | `private_key` | a PEM block `-----BEGIN … PRIVATE KEY-----` to its `-----END …-----` line (to the end of its base64 lines when the end line is missing) |
//! | yours | [`SanitizerBuilder::with_pattern`]: a name and a regular expression |
//!
//! A value is matched whole or not at all, on word boundaries: digits inside a word (`abc123`,
//! a git hash, a UUID) or inside a longer number (`1.3.6.1.4.1`, `978-3-16-148410-0`) are never
//! a match. When two matches overlap, the one that starts first wins, and of two that start
//! together, the longer.
//!
//! # How it redacts
//!
//! [`RedactionMode`]: typed placeholders (`[EMAIL_1]`; the same value keeps its number within one
//! [`RequestScope`], so one request's messages stay coherent), a mask, or a short keyed hash
//! that correlates across requests without revealing the value. The result holds the redacted
//! text and counts by entity type, never a matched value; nothing that prints a result, a
//! finding or a scope can show one.
//!
//! # Cost
//!
//! Every built-in detector runs in time linear in the text, without a regular expression: a
//! pass over the digit runs, `memchr` for `@` and `:`, and one Aho–Corasick pass for the
//! secrets' prefixes, each scanning every byte a bounded number of times whatever the input
//! (`benches/sanitize.rs` shows the throughput on adversarial texts next to ordinary ones). User
//! patterns use the `regex` crate, whose finite automata never backtrack: one search is linear,
//! though its documentation warns that iterating over every match of a pathological pattern can
//! take O(m·n²) in the worst case, so keep user patterns anchored on something literal.

mod detect;
mod email;
#[cfg(feature = "clients")]
mod hook;
mod network;
mod numbers;
mod redact;
mod secrets;

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use crate::HashKey;
pub use redact::RequestScope;

/// A built-in kind of sensitive value. Its [`name`](Entity::name) is the stable entity type
/// that counts and entries use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Entity {
    /// `email`
    Email,
    /// `phone`
    Phone,
    /// `credit_card` (Luhn-checked)
    CreditCard,
    /// `us_ssn`
    UsSsn,
    /// `iban` (mod-97-checked)
    Iban,
    /// `ip_address` (IPv4 and IPv6)
    IpAddress,
    /// `aws_access_key`
    AwsAccessKey,
    /// `openai_api_key`
    OpenAiApiKey,
    /// `anthropic_api_key`
    AnthropicApiKey,
    /// `github_token`
    GithubToken,
    /// `jwt`
    Jwt,
    /// `private_key` (PEM)
    PrivateKey,
}

impl Entity {
    /// Every built-in entity, in the order of their ids.
    pub const ALL: [Entity; 12] = [
        Entity::Email,
        Entity::Phone,
        Entity::CreditCard,
        Entity::UsSsn,
        Entity::Iban,
        Entity::IpAddress,
        Entity::AwsAccessKey,
        Entity::OpenAiApiKey,
        Entity::AnthropicApiKey,
        Entity::GithubToken,
        Entity::Jwt,
        Entity::PrivateKey,
    ];

    /// The entity type: lowercase snake case, stable across versions.
    ///
    /// ```
    /// assert_eq!(tracing_llm_audit::sanitize::Entity::CreditCard.name(), "credit_card");
    /// ```
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Phone => "phone",
            Self::CreditCard => "credit_card",
            Self::UsSsn => "us_ssn",
            Self::Iban => "iban",
            Self::IpAddress => "ip_address",
            Self::AwsAccessKey => "aws_access_key",
            Self::OpenAiApiKey => "openai_api_key",
            Self::AnthropicApiKey => "anthropic_api_key",
            Self::GithubToken => "github_token",
            Self::Jwt => "jwt",
            Self::PrivateKey => "private_key",
        }
    }

    /// Index into per-entity tables; user patterns follow the built-ins.
    fn id(self) -> EntityId {
        self as EntityId
    }
}

/// Index of an entity type: a built-in's discriminant, then the user patterns in order.
type EntityId = u16;

/// How a found value is written in the redacted text. Default: [`RedactionMode::Placeholder`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum RedactionMode {
    /// `[EMAIL_1]`, `[EMAIL_2]`, …: numbered by first appearance within one [`RequestScope`]
    /// (one [`Sanitizer::sanitize`] call, or one request through the client hook); the same
    /// value gets the same number.
    #[default]
    Placeholder,
    /// `****`; payment cards keep their last four digits (`****1111`), as card receipts do.
    Mask,
    /// `[EMAIL:1a2b3c4d5e6f7a8b]`: the first 64 bits of HMAC-SHA-256 under the key, of the entity
    /// type and the value. The same value gives the same token in every request made with the
    /// same key, so redacted values can be correlated; without the key they cannot be guessed
    /// back (an unkeyed hash of a phone number can be reversed by trying them all).
    KeyedHash(HashKey),
}

/// A sanitizer could not be built from its settings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SanitizerError {
    /// A user pattern is not a valid regular expression (see the source for where).
    #[error(
        "the pattern {pattern:?} for entity type `{entity}` is not a valid regular expression"
    )]
    InvalidPattern {
        /// The entity type the pattern was given for.
        entity: String,
        /// The pattern as given.
        pattern: String,
        /// What the `regex` crate found wrong.
        #[source]
        source: Box<regex::Error>,
    },
    /// A user pattern matches the empty string, so it would "find" something everywhere.
    #[error("the pattern {pattern:?} for entity type `{entity}` matches the empty string; make it match at least one character")]
    MatchesEmpty {
        /// The entity type the pattern was given for.
        entity: String,
        /// The pattern as given.
        pattern: String,
    },
    /// A user entity type is not lowercase snake case of 1 to 64 characters.
    #[error(
        "invalid entity type {0:?}: use 1 to 64 characters from [a-z0-9_], starting with a letter"
    )]
    InvalidEntityName(String),
    /// A user entity type is a built-in one or was given twice.
    #[error("entity type `{0}` is already taken (a built-in type or an earlier pattern); give the pattern a name of its own")]
    DuplicateEntityName(String),
}

/// Builds a [`Sanitizer`]; see [`Sanitizer::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct SanitizerBuilder {
    enabled: [bool; Entity::ALL.len()],
    patterns: Vec<(String, String)>,
    mode: RedactionMode,
}

impl SanitizerBuilder {
    /// Turns one built-in detector on or off. Default: every built-in detector is on.
    pub fn with_entity(mut self, entity: Entity, enabled: bool) -> Self {
        self.enabled[usize::from(entity.id())] = enabled;
        self
    }

    /// Only these built-in detectors, every other one off. Default: every built-in detector.
    pub fn with_only(mut self, entities: impl IntoIterator<Item = Entity>) -> Self {
        self.enabled = [false; Entity::ALL.len()];
        for entity in entities {
            self.enabled[usize::from(entity.id())] = true;
        }
        self
    }

    /// Adds a detector of your own: `entity` (lowercase snake case, not a built-in name) is
    /// found wherever `pattern` (the `regex` crate's syntax, linear time) matches. Checked by
    /// [`build`](Self::build). Default: none.
    pub fn with_pattern(mut self, entity: impl Into<String>, pattern: impl Into<String>) -> Self {
        self.patterns.push((entity.into(), pattern.into()));
        self
    }

    /// How found values are written. Default: [`RedactionMode::Placeholder`].
    pub fn with_mode(mut self, mode: RedactionMode) -> Self {
        self.mode = mode;
        self
    }

    /// The sanitizer.
    ///
    /// # Errors
    /// A user pattern that does not compile or matches the empty string, or an entity type
    /// that is malformed or taken.
    pub fn build(self) -> Result<Sanitizer, SanitizerError> {
        let mut names: Vec<String> = Entity::ALL.iter().map(|e| e.name().to_owned()).collect();
        let mut patterns = Vec::with_capacity(self.patterns.len());
        for (entity, pattern) in self.patterns {
            let valid = !entity.is_empty()
                && entity.len() <= 64
                && entity.starts_with(|c: char| c.is_ascii_lowercase())
                && entity
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !valid {
                return Err(SanitizerError::InvalidEntityName(entity));
            }
            if names.contains(&entity) {
                return Err(SanitizerError::DuplicateEntityName(entity));
            }
            let regex = match regex::Regex::new(&pattern) {
                Ok(regex) => regex,
                Err(source) => {
                    return Err(SanitizerError::InvalidPattern {
                        entity,
                        pattern,
                        source: Box::new(source),
                    })
                }
            };
            if regex.is_match("") {
                return Err(SanitizerError::MatchesEmpty { entity, pattern });
            }
            names.push(entity);
            patterns.push(regex);
        }
        let labels = names.iter().map(|n| n.to_ascii_uppercase()).collect();
        let detectors = detect::Detectors::new(&self.enabled, patterns);
        Ok(Sanitizer {
            detectors,
            names,
            labels,
            mode: self.mode,
        })
    }
}

/// Finds personal data and secrets in text and redacts them. Build one with
/// [`Sanitizer::builder`] and share it: it is immutable, `Send` and `Sync`.
///
/// ```
/// use tracing_llm_audit::sanitize::{Entity, RedactionMode, Sanitizer};
///
/// let sanitizer = Sanitizer::builder()
///     .with_entity(Entity::IpAddress, false)
///     .with_pattern("employee_id", r"\bEMP-\d{6}\b")
///     .with_mode(RedactionMode::Mask)
///     .build()?;
/// let out = sanitizer.sanitize("EMP-004211 paid with 5555-5555-5555-4444 from 10.0.0.1");
/// assert_eq!(out.text, "**** paid with ****4444 from 10.0.0.1");
/// assert_eq!(out.counts.get("employee_id"), 1);
/// # Ok::<(), tracing_llm_audit::sanitize::SanitizerError>(())
/// ```
pub struct Sanitizer {
    detectors: detect::Detectors,
    /// Entity type names by id.
    names: Vec<String>,
    /// Upper-case names by id, for placeholders.
    labels: Vec<String>,
    mode: RedactionMode,
}

impl fmt::Debug for Sanitizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let enabled: Vec<&str> = self
            .names
            .iter()
            .enumerate()
            .filter(|(id, _)| self.detectors.is_enabled(*id))
            .map(|(_, name)| name.as_str())
            .collect();
        f.debug_struct("Sanitizer")
            .field("entities", &enabled)
            .field("mode", &self.mode)
            .finish()
    }
}

impl Sanitizer {
    /// A builder with every built-in detector on, no user patterns, and placeholders.
    pub fn builder() -> SanitizerBuilder {
        SanitizerBuilder {
            enabled: [true; Entity::ALL.len()],
            patterns: Vec::new(),
            mode: RedactionMode::default(),
        }
    }

    /// `text` redacted, with the counts by entity type. Placeholders are numbered within this
    /// call; use [`scope`](Self::scope) to number across several texts of one request.
    #[must_use]
    pub fn sanitize(&self, text: &str) -> Sanitized {
        let mut scope = self.scope();
        let text = scope.redact(text).unwrap_or_else(|| text.to_owned());
        Sanitized {
            text,
            counts: scope.finish(),
        }
    }

    /// A scope for the texts of one request: placeholders are numbered across all of them, and
    /// the counts add up.
    ///
    /// ```
    /// let sanitizer = tracing_llm_audit::sanitize::Sanitizer::builder().build()?;
    /// let mut scope = sanitizer.scope();
    /// let system = scope.redact("Escalate to ops@example.com").unwrap();
    /// let user = scope.redact("ops@example.com and dev@example.com").unwrap();
    /// assert_eq!(system, "Escalate to [EMAIL_1]");
    /// assert_eq!(user, "[EMAIL_1] and [EMAIL_2]");
    /// assert_eq!(scope.finish().get("email"), 3);
    /// # Ok::<(), tracing_llm_audit::sanitize::SanitizerError>(())
    /// ```
    #[must_use]
    pub fn scope(&self) -> RequestScope<'_> {
        RequestScope::new(self)
    }

    /// Where the sensitive values in `text` are, without redacting: entity types and byte
    /// ranges, never the values themselves (index `text` with a range to see one).
    ///
    /// ```
    /// let sanitizer = tracing_llm_audit::sanitize::Sanitizer::builder().build()?;
    /// let findings = sanitizer.find("ssn 123-45-6789");
    /// assert_eq!(findings[0].entity, "us_ssn");
    /// assert_eq!(findings[0].range, 4..15);
    /// # Ok::<(), tracing_llm_audit::sanitize::SanitizerError>(())
    /// ```
    #[must_use]
    pub fn find(&self, text: &str) -> Vec<Finding<'_>> {
        let mut found = Vec::new();
        self.detectors.find(text, &mut found);
        found
            .into_iter()
            .map(|f| Finding {
                entity: &self.names[usize::from(f.entity)],
                range: f.start..f.end,
            })
            .collect()
    }

    /// The entity types this sanitizer looks for, built-in and user, in id order.
    pub fn entity_types(&self) -> impl Iterator<Item = &str> {
        self.names
            .iter()
            .enumerate()
            .filter(|(id, _)| self.detectors.is_enabled(*id))
            .map(|(_, name)| name.as_str())
    }
}

/// Where one sensitive value is, from [`Sanitizer::find`]: its type and byte range, not the
/// value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding<'s> {
    /// The entity type (`email`, or a user pattern's name).
    pub entity: &'s str,
    /// Byte range in the text searched.
    pub range: Range<usize>,
}

/// What [`Sanitizer::sanitize`] returns: the redacted text and the counts. Holds no matched
/// value, so printing it (`Debug` included) shows none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sanitized {
    /// The text with every found value replaced.
    pub text: String,
    /// How many values of each entity type were replaced.
    pub counts: RedactionCounts,
}

/// How many values of each entity type were redacted. Counts only, never values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedactionCounts(BTreeMap<String, u64>);

impl RedactionCounts {
    /// The count for one entity type (0 when none was found).
    #[must_use]
    pub fn get(&self, entity: &str) -> u64 {
        self.0.get(entity).copied().unwrap_or(0)
    }

    /// All redactions.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// Whether nothing was redacted.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The entity types found, with their counts, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.0.iter().map(|(name, count)| (name.as_str(), *count))
    }
}
