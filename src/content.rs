//! What the audit entry keeps of the content of a call (system prompt, input, output): the
//! [`ContentPolicy`] of each field, and the [`Keyring`] that encrypts and decrypts it.
//!
//! | policy | in the entry |
//! |---|---|
//! | [`HashOnly`](ContentPolicy::HashOnly) (default) | the keyed hash (`*_hash`) |
//! | [`Encrypted`](ContentPolicy::Encrypted) | the hash, and the content encrypted (`*_content`) |
//! | [`PlaintextUnprotected`](ContentPolicy::PlaintextUnprotected) | the hash, and the content as it is |
//! | [`Drop`](ContentPolicy::Drop) | nothing |
//!
//! # Encryption
//!
//! XChaCha20-Poly1305 with a random 192-bit nonce for every field of every entry (random nonces
//! of that size never repeat in practice), under the keyring's current key. The associated data
//! is `"llm-audit-content-v1\n" + request_id + "\n" + field`, so a ciphertext moved to another
//! entry or another field does not decrypt. The entry carries the key id: keys rotate by adding
//! a new one to the keyring, and the old ones stay to decrypt what they encrypted. Dropping a
//! key from every keyring makes what it encrypted unreadable for good (crypto-shredding).
//!
//! The chain of tamper evidence covers the `*_content` members by their digest only (see
//! [`crate::chain`]), so that retention or erasure can remove them later.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// What an entry keeps of one field's content.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContentPolicy {
    /// The keyed hash only: equal contents can be matched, none can be read back.
    #[default]
    HashOnly,
    /// The keyed hash and the content encrypted with the [`Keyring`]'s current key.
    Encrypted,
    /// The keyed hash and the content itself, readable by anyone who can read the log. For
    /// development only: the layer warns when it is built with it.
    PlaintextUnprotected,
    /// Nothing, not even the hash.
    Drop,
}

impl ContentPolicy {
    /// Whether the entry keeps the content itself, in any form.
    #[must_use]
    pub fn stores_content(self) -> bool {
        matches!(self, Self::Encrypted | Self::PlaintextUnprotected)
    }
}

/// The policy of each content field. Default: [`ContentPolicy::HashOnly`] for all three.
///
/// ```
/// use tracing_llm_audit::content::{ContentPolicies, ContentPolicy};
/// let policies = ContentPolicies {
///     output: ContentPolicy::Encrypted,
///     ..ContentPolicies::default()
/// };
/// assert_eq!(policies.input, ContentPolicy::HashOnly);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContentPolicies {
    /// The system prompt (`system_prompt_hash`, `system_prompt_content`).
    pub system_prompt: ContentPolicy,
    /// The input (`input_hash`, `input_content`).
    pub input: ContentPolicy,
    /// The output (`output_hash`, `output_content`).
    pub output: ContentPolicy,
}

impl ContentPolicies {
    /// The same policy for all three fields.
    #[must_use]
    pub fn all(policy: ContentPolicy) -> Self {
        Self {
            system_prompt: policy,
            input: policy,
            output: policy,
        }
    }

    /// The policies by field name, as the entry names them.
    pub(crate) fn by_field(&self) -> [(ContentField, ContentPolicy); 3] {
        [
            (ContentField::SystemPrompt, self.system_prompt),
            (ContentField::Input, self.input),
            (ContentField::Output, self.output),
        ]
    }
}

/// A content field of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentField {
    /// `system_prompt_content`.
    SystemPrompt,
    /// `input_content`.
    Input,
    /// `output_content`.
    Output,
}

impl ContentField {
    /// The name bound into the associated data: `system_prompt`, `input` or `output`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::SystemPrompt => "system_prompt",
            Self::Input => "input",
            Self::Output => "output",
        }
    }
}

/// Content kept in an entry: as it is, or encrypted.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum StoredContent {
    /// UTF-8 text as it was ([`ContentPolicy::PlaintextUnprotected`]).
    Plaintext {
        /// The text.
        text: String,
    },
    /// Bytes that are not UTF-8, in standard base64 ([`ContentPolicy::PlaintextUnprotected`]).
    PlaintextBase64 {
        /// The bytes.
        base64: String,
    },
    /// Encrypted ([`ContentPolicy::Encrypted`]).
    Encrypted {
        /// `xchacha20poly1305`.
        alg: String,
        /// The keyring key that encrypted it.
        key_id: String,
        /// The 24-byte nonce, standard base64.
        nonce: String,
        /// Ciphertext and tag, standard base64.
        ciphertext: String,
    },
}

impl fmt::Debug for StoredContent {
    /// Shows the form and size, never the text: entries are debug-printed in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Plaintext { text } => write!(f, "Plaintext({} bytes)", text.len()),
            Self::PlaintextBase64 { base64 } => {
                write!(f, "PlaintextBase64({} base64 chars)", base64.len())
            }
            Self::Encrypted {
                key_id, ciphertext, ..
            } => write!(
                f,
                "Encrypted(key {key_id}, {} base64 chars)",
                ciphertext.len()
            ),
        }
    }
}

impl StoredContent {
    /// `bytes` kept as they are.
    #[must_use]
    pub fn plaintext(bytes: &[u8]) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(text) => Self::Plaintext {
                text: text.to_owned(),
            },
            Err(_) => Self::PlaintextBase64 {
                base64: BASE64.encode(bytes),
            },
        }
    }
}

const BASE64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const ALG: &str = "xchacha20poly1305";
const AAD_TAG: &str = "llm-audit-content-v1";
const KEYRING_TAG: &str = "llm-audit-keyring-v1";

/// Content could not be encrypted or decrypted, or a keyring could not be read.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum ContentError {
    /// The keyring has no key with this id.
    #[error(
        "the keyring has no key {0:?}: use the keyring that holds it (a rotation with \
         `llm-audit keygen --keyring FILE` adds a key and keeps the old ones)"
    )]
    UnknownKey(String),
    /// The ciphertext, the key or the entry it is bound to is not the one it was made with.
    #[error(
        "{field} content of entry {request_id} does not decrypt with key {key_id}: the key is \
         not the one that encrypted it, or the ciphertext was changed or moved from another \
         entry or field"
    )]
    Decrypt {
        /// The entry.
        request_id: String,
        /// The field.
        field: &'static str,
        /// The key tried.
        key_id: String,
    },
    /// The stored content is malformed.
    #[error("malformed stored content: {0}")]
    Malformed(String),
    /// A keyring file or value does not parse (the message never shows key material).
    #[error("{0}")]
    Keyring(String),
}

// `Debug` is the sentence too: `?` in `main` prints it.
debug_as_sentence!(ContentError);

/// Content encryption keys by id; the last added is the current one, which encrypts.
///
/// A keyring file is text: the line `llm-audit-keyring-v1`, then one key per line,
/// `<key id> <64 hex digits>`, the current key last. `llm-audit keygen --keyring FILE` makes one
/// and adds keys to it (rotation). `Debug` never shows key material, and keys are zeroed on drop.
///
/// ```
/// use tracing_llm_audit::content::{ContentField, Keyring};
/// let keyring = Keyring::new("content-2026-11", [9u8; 32])?;
/// let id = uuid::Uuid::now_v7();
/// let sealed = keyring.encrypt(&id, ContentField::Input, b"What is my balance?")?;
/// assert_eq!(keyring.decrypt(&id, ContentField::Input, &sealed)?, b"What is my balance?");
/// # Ok::<(), tracing_llm_audit::content::ContentError>(())
/// ```
#[derive(Clone)]
pub struct Keyring {
    keys: BTreeMap<String, Zeroizing<[u8; 32]>>,
    current: String,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .field("current", &self.current)
            .finish()
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl Keyring {
    /// A keyring of one key.
    ///
    /// # Errors
    /// [`ContentError::Keyring`] if the id is not 1 to 64 characters of `[A-Za-z0-9._-]`.
    pub fn new(id: &str, key: [u8; 32]) -> Result<Self, ContentError> {
        let mut keyring = Self {
            keys: BTreeMap::new(),
            current: String::new(),
        };
        keyring.add(id, key)?;
        Ok(keyring)
    }

    /// A keyring of one fresh random key.
    ///
    /// # Errors
    /// As [`new`](Self::new), or the system has no randomness.
    pub fn generate(id: &str) -> Result<Self, ContentError> {
        let mut key = Zeroizing::new([0u8; 32]);
        getrandom::getrandom(key.as_mut())
            .map_err(|e| ContentError::Keyring(format!("no randomness: {e}")))?;
        Self::new(id, *key)
    }

    /// Adds a key, which becomes the current one (rotation).
    ///
    /// # Errors
    /// [`ContentError::Keyring`] for an invalid id or one the keyring has already.
    pub fn add(&mut self, id: &str, key: [u8; 32]) -> Result<(), ContentError> {
        if !valid_id(id) {
            return Err(ContentError::Keyring(format!(
                "invalid key id {id:?}: use 1 to 64 characters from [A-Za-z0-9._-]"
            )));
        }
        if self.keys.contains_key(id) {
            return Err(ContentError::Keyring(format!(
                "the keyring has a key {id:?} already; give the new key another id"
            )));
        }
        self.keys.insert(id.to_owned(), Zeroizing::new(key));
        self.current = id.to_owned();
        Ok(())
    }

    /// Adds a fresh random key, which becomes the current one.
    ///
    /// # Errors
    /// As [`add`](Self::add), or the system has no randomness.
    pub fn rotate(&mut self, id: &str) -> Result<(), ContentError> {
        let fresh = Self::generate(id)?;
        let key = fresh
            .keys
            .get(id)
            .map(|k| **k)
            .ok_or_else(|| ContentError::UnknownKey(id.to_owned()))?;
        self.add(id, key)
    }

    /// The id of the key that encrypts.
    #[must_use]
    pub fn current_id(&self) -> &str {
        &self.current
    }

    /// Parses the text of a keyring file.
    ///
    /// # Errors
    /// [`ContentError::Keyring`], naming the line, never its key.
    pub fn parse(text: &str) -> Result<Self, ContentError> {
        let mut lines = text
            .lines()
            .map(str::trim)
            .enumerate()
            .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
        match lines.next() {
            Some((_, KEYRING_TAG)) => {}
            _ => {
                return Err(ContentError::Keyring(format!(
                    "not a keyring: the first line must be {KEYRING_TAG} (`llm-audit keygen \
                     --keyring FILE` makes one)"
                )))
            }
        }
        let mut keyring = Self {
            keys: BTreeMap::new(),
            current: String::new(),
        };
        for (n, line) in lines {
            let bad = |what: &str| ContentError::Keyring(format!("keyring line {}: {what}", n + 1));
            let (id, hex_key) = line
                .split_once(' ')
                .ok_or_else(|| bad("expected `<key id> <64 hex digits>`"))?;
            let mut key = Zeroizing::new([0u8; 32]);
            hex::decode_to_slice(hex_key.trim(), key.as_mut())
                .map_err(|_| bad("the key is not 64 hex digits (the id comes first)"))?;
            keyring.add(id, *key).map_err(|e| bad(&e.to_string()))?;
        }
        if keyring.keys.is_empty() {
            return Err(ContentError::Keyring(
                "the keyring has no key: add one with `llm-audit keygen --keyring FILE`".to_owned(),
            ));
        }
        Ok(keyring)
    }

    /// Reads a keyring file.
    ///
    /// # Errors
    /// It cannot be read, or [`parse`](Self::parse) fails.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ContentError> {
        let path = path.as_ref();
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            ContentError::Keyring(format!("cannot read the keyring {}: {e}", path.display()))
        })?);
        Self::parse(&text).map_err(|e| ContentError::Keyring(format!("{}: {e}", path.display())))
    }

    /// Reads a keyring from the environment variable `name` (the file's text, with `;` or
    /// newlines between lines).
    ///
    /// # Errors
    /// The variable is not set, or [`parse`](Self::parse) fails.
    pub fn from_env(name: &str) -> Result<Self, ContentError> {
        let text = Zeroizing::new(
            std::env::var(name)
                .map_err(|e| {
                    ContentError::Keyring(match e {
                        std::env::VarError::NotPresent => format!(
                            "the environment variable {name} is not set: set it to the text of a \
                             keyring file, `;` between lines (`llm-audit keygen --keyring FILE` \
                             makes one)"
                        ),
                        std::env::VarError::NotUnicode(_) => {
                            format!("the environment variable {name} is not UTF-8")
                        }
                    })
                })?
                .replace(';', "\n"),
        );
        Self::parse(&text).map_err(|e| ContentError::Keyring(format!("{name}: {e}")))
    }

    /// The text of a keyring file (secret: write it with mode 0600).
    #[must_use]
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut text = format!("{KEYRING_TAG}\n");
        // The current key last, the others in id order.
        for (id, key) in self.keys.iter().filter(|(id, _)| **id != self.current) {
            text.push_str(&format!("{id} {}\n", hex::encode(key.as_ref())));
        }
        if let Some(key) = self.keys.get(&self.current) {
            text.push_str(&format!("{} {}\n", self.current, hex::encode(key.as_ref())));
        }
        Zeroizing::new(text)
    }

    fn aad(request_id: &uuid::Uuid, field: ContentField) -> Vec<u8> {
        format!("{AAD_TAG}\n{request_id}\n{}", field.name()).into_bytes()
    }

    /// Encrypts `content` for `field` of entry `request_id` under the current key.
    ///
    /// # Errors
    /// The system has no randomness for the nonce.
    pub fn encrypt(
        &self,
        request_id: &uuid::Uuid,
        field: ContentField,
        content: &[u8],
    ) -> Result<StoredContent, ContentError> {
        let key = self
            .keys
            .get(&self.current)
            .ok_or_else(|| ContentError::UnknownKey(self.current.clone()))?;
        let mut nonce = [0u8; 24];
        getrandom::getrandom(&mut nonce)
            .map_err(|e| ContentError::Keyring(format!("no randomness for a nonce: {e}")))?;
        let cipher = XChaCha20Poly1305::new(key.as_ref().into());
        let aad = Self::aad(request_id, field);
        let ciphertext = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: content,
                    aad: &aad,
                },
            )
            .map_err(|_| ContentError::Malformed("the content is too long to encrypt".into()))?;
        Ok(StoredContent::Encrypted {
            alg: ALG.to_owned(),
            key_id: self.current.clone(),
            nonce: BASE64.encode(nonce),
            ciphertext: BASE64.encode(ciphertext),
        })
    }

    /// The content of `stored`, which must be `field` of entry `request_id`.
    ///
    /// # Errors
    /// [`ContentError::UnknownKey`], [`ContentError::Decrypt`] (wrong key, changed or moved
    /// ciphertext) or [`ContentError::Malformed`].
    pub fn decrypt(
        &self,
        request_id: &uuid::Uuid,
        field: ContentField,
        stored: &StoredContent,
    ) -> Result<Vec<u8>, ContentError> {
        let (key_id, nonce, ciphertext) = match stored {
            StoredContent::Plaintext { text } => return Ok(text.as_bytes().to_vec()),
            StoredContent::PlaintextBase64 { base64 } => {
                return BASE64
                    .decode(base64)
                    .map_err(|e| ContentError::Malformed(e.to_string()))
            }
            StoredContent::Encrypted {
                alg,
                key_id,
                nonce,
                ciphertext,
            } => {
                if alg != ALG {
                    return Err(ContentError::Malformed(format!(
                        "unknown algorithm {alg:?} (this version knows {ALG})"
                    )));
                }
                (key_id, nonce, ciphertext)
            }
        };
        let key = self
            .keys
            .get(key_id)
            .ok_or_else(|| ContentError::UnknownKey(key_id.clone()))?;
        let nonce: [u8; 24] = BASE64
            .decode(nonce)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or_else(|| ContentError::Malformed("the nonce is not 24 bytes of base64".into()))?;
        let ciphertext = BASE64
            .decode(ciphertext)
            .map_err(|e| ContentError::Malformed(format!("the ciphertext is not base64: {e}")))?;
        let aad = Self::aad(request_id, field);
        XChaCha20Poly1305::new(key.as_ref().into())
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| ContentError::Decrypt {
                request_id: request_id.to_string(),
                field: field.name(),
                key_id: key_id.clone(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyring_text_round_trips_and_never_shows_keys() {
        let mut keyring = Keyring::new("k1", [1u8; 32]).unwrap();
        keyring.add("k2", [2u8; 32]).unwrap();
        let again = Keyring::parse(&keyring.to_text()).unwrap();
        assert_eq!(again.current_id(), "k2");
        let id = uuid::Uuid::now_v7();
        let sealed = keyring.encrypt(&id, ContentField::Output, b"x").unwrap();
        assert_eq!(
            again.decrypt(&id, ContentField::Output, &sealed).unwrap(),
            b"x"
        );
        let secret = hex::encode([2u8; 32]);
        assert!(!format!("{keyring:?}").contains(&secret));
        let err = Keyring::parse(&format!("{KEYRING_TAG}\nk3 {}zz", &secret[..62]))
            .unwrap_err()
            .to_string();
        assert!(!err.contains(&secret[..62]), "{err}");
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn stored_content_debug_never_shows_text() {
        let plain = StoredContent::plaintext(b"my secret diagnosis");
        assert!(!format!("{plain:?}").contains("diagnosis"));
        assert_eq!(
            StoredContent::plaintext(&[0xff, 0x00]),
            StoredContent::PlaintextBase64 {
                base64: "/wA=".into()
            }
        );
    }
}
