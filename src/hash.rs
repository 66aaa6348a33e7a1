//! Keyed content hashes: HMAC-SHA-256 at full width, written `hmac-sha256:<64 hex>`.
//!
//! A plain SHA-256 of a prompt can be reversed by guessing (short prompts, templates with a
//! user's name in them); a keyed hash cannot without the key, yet equal contents still give equal
//! hashes, which is what correlation needs. The entry records the key id, so that hashes made
//! under different keys are never compared by mistake.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

/// Prefix of every content hash this crate writes.
pub const HASH_PREFIX: &str = "hmac-sha256:";

/// Environment variable read by [`HashKey::from_env`]: `<key id>:<secret as hex>`.
pub const HASH_KEY_ENV: &str = "LLM_AUDIT_HASH_KEY";

/// Shortest accepted secret, in bytes (the HMAC-SHA-256 block of security).
pub const MIN_SECRET_LEN: usize = 32;

/// The secret key for content hashes, with the id that entries record.
///
/// `Debug` never shows the secret, and the secret is zeroed when the key is dropped.
///
/// ```
/// use tracing_llm_audit::HashKey;
/// let key = HashKey::new("prod-2026-11", [7u8; 32])?;
/// let hash = key.hash(b"Hello");
/// assert!(hash.starts_with("hmac-sha256:"));
/// assert_eq!(hash.len(), "hmac-sha256:".len() + 64);
/// # Ok::<(), tracing_llm_audit::HashKeyError>(())
/// ```
#[derive(Clone)]
pub struct HashKey {
    id: String,
    // The keyed state, prepared once: each hash then costs only the message's own blocks.
    mac: Hmac<Sha256>,
    ephemeral: bool,
}

/// A hash key could not be made from what was given.
///
/// `Display` and `Debug` both give the sentence (a `main` that returns the error with `?`
/// prints it); neither ever shows the secret.
#[derive(thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum HashKeyError {
    /// The key id is empty or has characters outside `[A-Za-z0-9._-]`.
    #[error("invalid hash key id {0:?}: use 1 to 64 characters from [A-Za-z0-9._-]")]
    InvalidId(String),
    /// The secret is too short.
    #[error(
        "the hash key's secret is {0} bytes long; at least {MIN_SECRET_LEN} bytes (64 hex \
         digits) are required"
    )]
    SecretTooShort(usize),
    /// The text is not `<key id>:<secret as hex>` (what [`HashKey::parse`] reads, and the
    /// environment variable holds).
    #[error(
        "a hash key is written `<key id>:<secret as hex>`, for example `prod-1:` followed by 64 \
         hex digits; {0}"
    )]
    BadEnvFormat(&'static str),
    /// The environment variable holds no valid key ([`HashKey::from_env`]).
    #[error(
        "{variable} is invalid: {problem} (`llm-audit keygen --hash-key` makes a valid value)"
    )]
    Env {
        /// The variable, [`HASH_KEY_ENV`].
        variable: &'static str,
        /// What is wrong with its value.
        problem: Box<HashKeyError>,
    },
}

debug_as_sentence!(HashKeyError);

impl HashKey {
    /// A key with the given id and secret (at least 32 bytes, for example from a secret store).
    ///
    /// # Errors
    /// [`HashKeyError::InvalidId`] or [`HashKeyError::SecretTooShort`].
    pub fn new(id: impl Into<String>, secret: impl AsRef<[u8]>) -> Result<Self, HashKeyError> {
        let id = id.into();
        let valid_id = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !valid_id {
            return Err(HashKeyError::InvalidId(id));
        }
        let secret = secret.as_ref();
        if secret.len() < MIN_SECRET_LEN {
            return Err(HashKeyError::SecretTooShort(secret.len()));
        }
        Ok(Self::from_parts(id, secret, false))
    }

    /// Reads the key from `LLM_AUDIT_HASH_KEY` (`<key id>:<secret as hex>`); `Ok(None)` when the
    /// variable is not set.
    ///
    /// Without the variable, [`AuditLayerBuilder::build`](crate::AuditLayerBuilder::build)
    /// fails with a sentence that says how to set it; a builder without
    /// [`with_hash_key`](crate::AuditLayerBuilder::with_hash_key) reads the variable itself.
    ///
    /// # Errors
    /// [`HashKeyError::Env`] when the variable is set but malformed, naming the variable and
    /// the problem; the message never contains the secret.
    pub fn from_env() -> Result<Option<Self>, HashKeyError> {
        let in_env = |problem| HashKeyError::Env {
            variable: HASH_KEY_ENV,
            problem: Box::new(problem),
        };
        match std::env::var(HASH_KEY_ENV) {
            Ok(value) => Self::parse(&value).map(Some).map_err(in_env),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(in_env(HashKeyError::BadEnvFormat("the value is not UTF-8")))
            }
        }
    }

    /// Parses `<key id>:<secret as hex>`.
    ///
    /// # Errors
    /// When the text is malformed; the message never contains the secret.
    pub fn parse(text: &str) -> Result<Self, HashKeyError> {
        let (id, hex_secret) = text
            .trim()
            .split_once(':')
            .ok_or(HashKeyError::BadEnvFormat("no `:` found"))?;
        let secret = Zeroizing::new(hex::decode(hex_secret).map_err(|_| {
            HashKeyError::BadEnvFormat("the part after `:` is not an even number of hex digits")
        })?);
        Self::new(id, &*secret)
    }

    /// A random key that lives as long as the process.
    ///
    /// Hashes made with it cannot be correlated with hashes from any other run, or recomputed
    /// later to check a suspected prompt: fine for a demo, wrong for an audit trail. Its id starts
    /// with `ephemeral-`, so entries show it.
    #[must_use]
    pub fn ephemeral() -> Self {
        let mut secret = Zeroizing::new([0u8; 32]);
        // Without an OS random source there is nothing safe to key with; a fixed key would be
        // worse than an abort at startup.
        getrandom::getrandom(&mut *secret).expect("the OS random source is unavailable");
        let id = format!("ephemeral-{}", hex::encode(&secret[..4]));
        Self::from_parts(id, &*secret, true)
    }

    fn from_parts(id: String, secret: &[u8], ephemeral: bool) -> Self {
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
            .expect("HMAC accepts keys of every length");
        Self { id, mac, ephemeral }
    }

    /// The key id that entries record in `hash_key_id`.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether this key was made by [`HashKey::ephemeral`].
    #[must_use]
    pub fn is_ephemeral(&self) -> bool {
        self.ephemeral
    }

    /// `hmac-sha256:<64 hex>` of `content`.
    #[must_use]
    pub fn hash(&self, content: &[u8]) -> String {
        let mut mac = self.mac.clone();
        mac.update(content);
        let digest = mac.finalize().into_bytes();
        let mut out = String::with_capacity(HASH_PREFIX.len() + 64);
        out.push_str(HASH_PREFIX);
        push_hex(&mut out, &digest);
        out
    }
}

/// Appends `bytes` to `out` as lowercase hex. A table lookup per nibble: the iterator-based
/// encoders cost more than the hash itself on the worker's hot path.
pub(crate) fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for &byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
}

/// `bytes` as lowercase hex.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    push_hex(&mut out, bytes);
    out
}

impl fmt::Debug for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HashKey")
            .field("id", &self.id)
            .field("secret", &"[redacted]")
            .field("ephemeral", &self.ephemeral)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 4231, test case 2 uses a short key; test case 6 uses a 131-byte key, which satisfies
    // our minimum and checks the long-key path of HMAC.
    #[test]
    fn matches_rfc4231_test_case_6() {
        let key = HashKey::new("rfc4231", [0xaa; 131]).unwrap();
        let hash = key.hash(b"Test Using Larger Than Block-Size Key - Hash Key First");
        assert_eq!(
            hash,
            "hmac-sha256:60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn hex_matches_the_reference_encoder() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(to_hex(&bytes), hex::encode(&bytes));
    }

    #[test]
    fn different_keys_give_different_hashes_for_equal_content() {
        let a = HashKey::new("a", [1; 32]).unwrap();
        let b = HashKey::new("b", [2; 32]).unwrap();
        assert_eq!(a.hash(b"x"), a.hash(b"x"));
        assert_ne!(a.hash(b"x"), b.hash(b"x"));
    }

    #[test]
    fn rejects_short_secret_and_bad_id() {
        assert_eq!(
            HashKey::new("k", [0; 31]).unwrap_err(),
            HashKeyError::SecretTooShort(31)
        );
        assert!(matches!(
            HashKey::new("has space", [0; 32]),
            Err(HashKeyError::InvalidId(_))
        ));
        assert!(matches!(
            HashKey::new("", [0; 32]),
            Err(HashKeyError::InvalidId(_))
        ));
    }

    #[test]
    fn parse_and_debug_never_show_the_secret() {
        let secret_hex = "ab".repeat(32);
        let key = HashKey::parse(&format!("prod-1:{secret_hex}")).unwrap();
        assert_eq!(key.id(), "prod-1");
        assert!(!format!("{key:?}").contains(&secret_hex));
        assert!(!format!("{key:?}").contains("ab, ab") && !format!("{key:?}").contains("171"));

        let bad = HashKey::parse(&format!("prod-1:{}zz", "cd".repeat(32))).unwrap_err();
        assert!(!bad.to_string().contains("cdcd"), "{bad}");
        assert!(HashKey::parse("nocolon").is_err());
    }

    #[test]
    fn ephemeral_keys_are_marked_and_distinct() {
        let a = HashKey::ephemeral();
        let b = HashKey::ephemeral();
        assert!(a.is_ephemeral());
        assert!(a.id().starts_with("ephemeral-"));
        assert_ne!(a.hash(b"x"), b.hash(b"x"));
    }
}
