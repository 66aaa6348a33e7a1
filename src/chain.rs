//! Tamper evidence, format v1: hash-chained entries and Ed25519-signed checkpoints.
//!
//! Every writer (one sink in one process) is a *stream* with its own id. Each entry it writes
//! carries a [`ChainLink`]: the stream id, a sequence number from 0, the previous entry's hash
//! (64 zeros for the first), and its own hash. Every so often the writer signs a [`Checkpoint`]
//! (stream, sequence, head hash, time, key id) with its Ed25519 key; a verifier needs only the
//! public key.
//!
//! # The canonical form (v1), so that another language can verify
//!
//! 1. Take the entry as a JSON object and remove its `chain` and `erased` members.
//! 2. Each *erasable* member ([`ERASABLE`]: `user_id`, `session_id`, `error_message`,
//!    `metadata`, the hashes `system_prompt_hash`, `input_hash`, `output_hash`, and the kept
//!    content `system_prompt_content`, `input_content`, `output_content`) is covered by a digest
//!    instead of its value: if the entry's `erased` object names the member, its value there (a
//!    `"sha256:<hex>"` string, put there by a retention or erasure step when it removed or
//!    replaced the value); otherwise, when the member is present and not `null`, the string
//!    `"sha256:" + hex(SHA-256(C(v)))`, where `C(v)` is the canonical JSON of the value (below).
//!    A member named in `erased` takes that digest whatever the entry now holds there (nothing,
//!    or a pseudonym), and is added if absent. So values can be removed later without breaking
//!    the chain.
//! 3. `C(object)`: compact JSON (no whitespace), members sorted by the UTF-8 bytes of their
//!    keys, recursively; strings escaped as `serde_json` and JavaScript's `JSON.stringify` do
//!    (`\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f`, other controls below U+0020 as `\u00XX` in
//!    lowercase hex, everything else as UTF-8); integers in decimal; other numbers in their
//!    shortest round-trip form.
//! 4. The entry digest is `SHA-256(C(object))`.
//! 5. The entry hash is `hex(SHA-256("llm-audit-chain-v1\n" + stream + "\n" + seq + "\n" +
//!    prev + "\n" + hex(digest)))`, with `seq` in decimal and hex in lowercase.
//!
//! A checkpoint signs the UTF-8 bytes of
//! `"llm-audit-checkpoint-v1\n" + stream + "\n" + index + "\n" + seq + "\n" + head + "\n" +
//! time + "\n" + key_id + "\n" + ("final" | "open")`, where `index` counts the stream's
//! checkpoints from 0 (so that a removed checkpoint shows), `seq` and `head` are those of the last
//! entry it covers, and `time` is RFC 3339 in UTC. The key id is the first 16 hex digits of
//! SHA-256 of the 32-byte public key.
//!
//! A checkpoint of format v2 also *witnesses* other streams' checkpoints ([`Witness`]: the
//! last one each other stream had signed when its writer started, see the JSONL sink). It
//! signs the same text with `v2` in place of `v1`, followed, for each witness in order, by
//! `"\n"` and the compact JSON array `[stream, index, seq, head, final]` (strings escaped as
//! in step 3). A checkpoint without witnesses is v1, byte for byte.
//!
//! An entry erased in format v2 ([`erase_members`], `"erased": {"v": 2, ...}`) keeps no digest
//! of what was removed: its digest can no longer be computed from it, and the signature of
//! [`erasure_v2_signed_text`] (over its link and the whole entry as it reads now) stands in
//! for it; see [`verify_erasure`].

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Members whose values the chain covers by digest only, so that they can be erased later.
pub const ERASABLE: &[&str] = &[
    "user_id",
    "session_id",
    "error_message",
    "metadata",
    "system_prompt_hash",
    "input_hash",
    "output_hash",
    "system_prompt_content",
    "input_content",
    "output_content",
];

/// The `prev` of a stream's first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An entry's place in its stream. A link has exactly these four members: one with any other
/// is no link (a forged line could carry notes there that no hash covers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainLink {
    /// The writer's stream id.
    pub stream: String,
    /// Position in the stream, from 0.
    pub seq: u64,
    /// The previous entry's hash, [`GENESIS`] for the first.
    pub prev: String,
    /// This entry's hash.
    pub hash: String,
}

/// A [`ChainLink`] as read from a line, borrowing from it where no escape stands in the way:
/// what [`line_digest_ref`] gives, so that a verifier reads millions of lines without
/// allocating for each.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkRef<'a> {
    /// The writer's stream id.
    #[serde(borrow)]
    pub stream: std::borrow::Cow<'a, str>,
    /// Position in the stream, from 0.
    pub seq: u64,
    /// The previous entry's hash.
    #[serde(borrow)]
    pub prev: std::borrow::Cow<'a, str>,
    /// This entry's hash.
    #[serde(borrow)]
    pub hash: std::borrow::Cow<'a, str>,
}

impl LinkRef<'_> {
    /// The owned link.
    #[must_use]
    pub fn into_owned(self) -> ChainLink {
        ChainLink {
            stream: self.stream.into_owned(),
            seq: self.seq,
            prev: self.prev.into_owned(),
            hash: self.hash.into_owned(),
        }
    }
}

impl From<ChainLink> for LinkRef<'static> {
    fn from(link: ChainLink) -> Self {
        Self {
            stream: link.stream.into(),
            seq: link.seq,
            prev: link.prev.into(),
            hash: link.hash.into(),
        }
    }
}

/// Why a chain or a checkpoint could not be made or read.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// The entry is not a JSON object.
    #[error("an entry must be a JSON object")]
    NotAnObject,
    /// A key file or value does not parse.
    #[error("{0}")]
    Key(String),
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The member is not covered by digest, so removing it would break the chain.
    #[error("{0:?} is not an erasable member (erasable: {ERASABLE:?})")]
    NotErasable(String),
    /// The entry is not as its writer (or a signed erasure) left it: an erasure would sign
    /// the change.
    #[error("{0}")]
    Tampered(String),
    /// A chained entry would change without the key that signs the change.
    #[error("changing a chained entry needs the signing key (the key that signs the checkpoints)")]
    NeedsKey,
}

// `Debug` is the sentence too: `?` in `main` prints it.
debug_as_sentence!(ChainError);

/// `C(v)`: compact JSON with object members sorted by key bytes, recursively.
pub fn canonical_json(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (k, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                // Serializing a string cannot fail.
                let _ = serde_json::to_writer(&mut *out, k);
                out.push(b':');
                canonical_json(v, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical_json(v, out);
            }
            out.push(b']');
        }
        other => {
            let _ = serde_json::to_writer(&mut *out, other);
        }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex32(&Sha256::digest(bytes).into())
}

/// Lowercase hex of 32 bytes (the `hex` crate's iterator is several times slower).
fn hex32(bytes: &[u8; 32]) -> String {
    // Hex digits are ASCII.
    String::from_utf8(hex_digits(bytes).to_vec()).unwrap_or_default()
}

/// Lowercase hex of 32 bytes (a digest), as bytes: one table lookup per byte, without the
/// bounds checks and the call of `hex::encode_to_slice` (which was 2% of verifying a file).
#[inline]
#[must_use]
pub fn hex_digits(bytes: &[u8; 32]) -> [u8; 64] {
    /// The two hex digits of every byte.
    const PAIRS: [[u8; 2]; 256] = {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut pairs = [[0u8; 2]; 256];
        let mut i = 0;
        while i < 256 {
            pairs[i] = [DIGITS[i >> 4], DIGITS[i & 0x0f]];
            i += 1;
        }
        pairs
    };
    let mut out = [0u8; 64];
    for (pair, &byte) in out.chunks_exact_mut(2).zip(bytes) {
        pair.copy_from_slice(&PAIRS[usize::from(byte)]);
    }
    out
}

/// The digest an erasable value is covered by: `sha256:<hex>`.
#[must_use]
pub fn erasable_digest(value: &Value) -> String {
    let mut bytes = Vec::new();
    canonical_json(value, &mut bytes);
    format!("sha256:{}", sha256_hex(&bytes))
}

/// The member of an entry that records what a retention or erasure step removed or replaced:
/// `{"digests": {member: "sha256:<hex>"}, "time", "key_id", "signature"}` (step 2). The digests
/// stand in for the values in the entry digest; the signature ([`sign_erasure`]) proves that
/// the holder of the signing key made the change, and what the members hold since.
pub const ERASED: &str = "erased";

/// The digests an entry's `erased` member records, by member.
fn erased_digests(entry: &Value) -> Option<&serde_json::Map<String, Value>> {
    entry.get(ERASED)?.get("digests")?.as_object()
}

/// The entry digest of step 4, of an entry object (its `chain` member is ignored).
///
/// # Errors
/// [`ChainError::NotAnObject`].
pub fn entry_digest(entry: &Value) -> Result<[u8; 32], ChainError> {
    let object = entry.as_object().ok_or(ChainError::NotAnObject)?;
    let erased = erased_digests(entry);
    let mut covered = serde_json::Map::with_capacity(object.len());
    for (k, v) in object {
        if k == "chain" || k == ERASED {
            continue;
        }
        if ERASABLE.contains(&k.as_str()) && !v.is_null() {
            covered.insert(k.clone(), Value::String(erasable_digest(v)));
        } else {
            covered.insert(k.clone(), v.clone());
        }
    }
    for (k, digest) in erased.into_iter().flatten() {
        if ERASABLE.contains(&k.as_str()) {
            covered.insert(k.clone(), digest.clone());
        }
    }
    let mut bytes = Vec::with_capacity(1024);
    canonical_json(&Value::Object(covered), &mut bytes);
    Ok(Sha256::digest(&bytes).into())
}

/// Removes the erasable `member` of an entry object, or replaces its value by `replacement`
/// (a pseudonym, say), without changing the entry's digest: the digest of the value goes into
/// the entry's `erased` object first (step 2). A member already erased keeps its recorded digest.
/// Returns whether the entry changed; a member that is absent or `null` is left as it is.
///
/// # Errors
/// [`ChainError::NotAnObject`], or [`ChainError::NotErasable`] for a member the chain covers
/// by value.
pub fn erase_member(
    entry: &mut Value,
    member: &str,
    replacement: Option<Value>,
) -> Result<bool, ChainError> {
    if !ERASABLE.contains(&member) {
        return Err(ChainError::NotErasable(member.to_owned()));
    }
    if is_erased_v2(entry) {
        // No digests to add to: erased already, the v2 way.
        return erase_members(entry, &[(member, replacement)], None, "").map_err(|e| match e {
            ChainError::NeedsKey => ChainError::Tampered(
                "an entry erased in format v2 changes only through erase_members, with the key"
                    .to_owned(),
            ),
            e => e,
        });
    }
    let already = erased_digests(entry)
        .and_then(|d| d.get(member))
        .is_some_and(Value::is_string);
    let object = entry.as_object_mut().ok_or(ChainError::NotAnObject)?;
    if !already {
        let Some(value) = object.get(member).filter(|v| !v.is_null()) else {
            return Ok(false);
        };
        let digest = erasable_digest(value);
        let erased = object
            .entry(ERASED)
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        if !erased.get("digests").is_some_and(Value::is_object) {
            *erased = serde_json::json!({ "digests": {} });
        }
        if let Some(map) = erased.get_mut("digests").and_then(Value::as_object_mut) {
            map.insert(member.to_owned(), Value::String(digest));
        }
    }
    let changed = match replacement {
        Some(value) => object.insert(member.to_owned(), value.clone()) != Some(value),
        None => object.remove(member).is_some(),
    };
    if changed || !already {
        // What it signed is no longer what the entry holds.
        if let Some(erased) = object.get_mut(ERASED).and_then(Value::as_object_mut) {
            for stale in ["time", "key_id", "signature"] {
                erased.remove(stale);
            }
        }
    }
    Ok(changed || !already)
}

/// Whether an entry's `erased` member is of format v2 (`"v": 2`, see [`erase_members`]).
#[must_use]
pub fn is_erased_v2(entry: &Value) -> bool {
    entry
        .get(ERASED)
        .and_then(|e| e.get("v"))
        .and_then(Value::as_u64)
        == Some(2)
}

/// The hex SHA-256 of what an erasure of format v2 signs of the entry: `C(body)`, where the
/// body is the entry without its `chain` member and its `null` members (a member that holds
/// nothing reads the same absent or `null`, as a table's row gives it back), and with its
/// `erased` member without `time`, `key_id` and `signature`.
fn erasure_body_digest(entry: &Value) -> Result<String, ChainError> {
    let mut body = entry.as_object().ok_or(ChainError::NotAnObject)?.clone();
    body.remove("chain");
    body.retain(|_, v| !v.is_null());
    if let Some(erased) = body.get_mut(ERASED).and_then(Value::as_object_mut) {
        for signed in ["time", "key_id", "signature"] {
            erased.remove(signed);
        }
    }
    let mut bytes = Vec::with_capacity(1024);
    canonical_json(&Value::Object(body), &mut bytes);
    Ok(sha256_hex(&bytes))
}

/// The text an erasure of format v2 signs: `"llm-audit-erasure-v2\n" + stream + "\n" + seq +
/// "\n" + prev + "\n" + hash + "\n" + body + "\n" + time + "\n" + key_id`, where `body` is
/// the hex SHA-256 of `C` of the entry as it reads after the erasure, without its `chain`
/// member, its `null` members and the `time`, `key_id` and `signature` of its `erased` member.
///
/// # Errors
/// [`ChainError::NotAnObject`].
pub fn erasure_v2_signed_text(
    entry: &Value,
    link: &ChainLink,
    time: &str,
    key_id: &str,
) -> Result<String, ChainError> {
    Ok(format!(
        "llm-audit-erasure-v2\n{}\n{}\n{}\n{}\n{}\n{time}\n{key_id}",
        link.stream,
        link.seq,
        link.prev,
        link.hash,
        erasure_body_digest(entry)?
    ))
}

fn link_of(entry: &Value) -> Option<ChainLink> {
    entry
        .get("chain")
        .and_then(|c| serde_json::from_value::<ChainLink>(c.clone()).ok())
}

/// Checks that a chained entry is as its writer left it (its content gives its link's hash),
/// or as a signed erasure left it, before an erasure signs a change of it: an erasure must not
/// launder a change someone made without the key. `Ok` for an entry without a chain link.
///
/// # Errors
/// [`ChainError::Tampered`] saying why.
pub fn check_before_erasure(entry: &Value, key: &VerifyingKey) -> Result<(), ChainError> {
    let Some(link) = link_of(entry) else {
        return Ok(());
    };
    if !is_erased_v2(entry) {
        let digest = entry_digest(entry)?;
        if link_hash(&link.stream, link.seq, &link.prev, &digest) != link.hash {
            return Err(ChainError::Tampered(format!(
                "the entry at seq {} of stream {} does not match its hash: run llm-audit verify",
                link.seq, link.stream
            )));
        }
    }
    if entry.get(ERASED).is_some() {
        verify_erasure(entry, &link, key).map_err(|why| {
            ChainError::Tampered(format!(
                "the entry at seq {} of stream {}: {why}",
                link.seq, link.stream
            ))
        })?;
    }
    Ok(())
}

/// Erases members of an entry object, format v2: each `(member, replacement)` is removed
/// (`None`) or replaced (a pseudonym, say). Unlike [`erase_member`], no digest of a removed
/// value is kept, so nothing that could confirm a guess of it (an email address) is left.
/// `erased` becomes `{"v": 2, "members": [...]}`, the names of every member removed or
/// replaced so far (those of an earlier erasure included), and, for a chained entry, `time`,
/// `key_id` and the `signature` of [`erasure_v2_signed_text`]: the holder of the signing key
/// vouches that the entry whose link hash the chain holds now reads as it does. A verifier
/// checks that signature in place of the entry's digest.
///
/// A chained entry is checked first ([`check_before_erasure`]). Returns whether the entry
/// changed.
///
/// # Errors
/// [`ChainError::NotErasable`], [`ChainError::Tampered`], [`ChainError::NeedsKey`] for a
/// chained entry without `key`, [`ChainError::NotAnObject`].
pub fn erase_members(
    entry: &mut Value,
    changes: &[(&str, Option<Value>)],
    key: Option<&SigningKey>,
    time: &str,
) -> Result<bool, ChainError> {
    if let Some((member, _)) = changes.iter().find(|(m, _)| !ERASABLE.contains(m)) {
        return Err(ChainError::NotErasable((*member).to_owned()));
    }
    let object = entry.as_object().ok_or(ChainError::NotAnObject)?;
    let changing: Vec<&str> = changes
        .iter()
        .filter(
            |(m, replacement)| match object.get(*m).filter(|v| !v.is_null()) {
                None => false,
                Some(now) => replacement.as_ref() != Some(now),
            },
        )
        .map(|(m, _)| *m)
        .collect();
    if changing.is_empty() {
        return Ok(false);
    }
    let chained = checked_link(entry, key)?;
    let mut members: Vec<String> = match entry.get(ERASED) {
        Some(e) if is_erased_v2(entry) => e
            .get("members")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => erased_digests(entry)
            .map(|d| d.keys().cloned().collect())
            .unwrap_or_default(),
    };
    let object = entry.as_object_mut().ok_or(ChainError::NotAnObject)?;
    for (member, replacement) in changes {
        if !changing.contains(member) {
            continue;
        }
        match replacement {
            Some(value) => {
                object.insert((*member).to_owned(), value.clone());
            }
            None => {
                object.remove(*member);
            }
        }
        members.push((*member).to_owned());
    }
    seal_v2(entry, members, chained.as_ref(), key, time)?;
    Ok(true)
}

/// Converts an entry erased in format v1 (with the unkeyed digests of what was removed in
/// `erased.digests`, which would let anyone confirm a guess of a removed id) to format v2: the
/// digests go, the names of the members stay, and the entry is signed as
/// [`erase_members`] signs (after [`check_before_erasure`]). Returns whether it changed.
///
/// # Errors
/// As [`erase_members`].
pub fn upgrade_erasure(
    entry: &mut Value,
    key: Option<&SigningKey>,
    time: &str,
) -> Result<bool, ChainError> {
    if entry.get(ERASED).is_none() || is_erased_v2(entry) {
        return Ok(false);
    }
    let chained = checked_link(entry, key)?;
    let members: Vec<String> = erased_digests(entry)
        .map(|d| d.keys().cloned().collect())
        .unwrap_or_default();
    seal_v2(entry, members, chained.as_ref(), key, time)?;
    Ok(true)
}

/// The link of a chained entry, once checked to be as its writer or a signed erasure left it
/// (which needs `key`); `None` for an entry without one.
fn checked_link(entry: &Value, key: Option<&SigningKey>) -> Result<Option<ChainLink>, ChainError> {
    let Some(link) = link_of(entry) else {
        return Ok(None);
    };
    let key = key.ok_or(ChainError::NeedsKey)?;
    check_before_erasure(entry, &key.verifying_key())?;
    Ok(Some(link))
}

/// Sets `erased` to format v2 naming `members` (sorted, once each) and, for a chained entry,
/// signs it: [`erasure_v2_signed_text`] with `time` and the key's id.
fn seal_v2(
    entry: &mut Value,
    mut members: Vec<String>,
    link: Option<&ChainLink>,
    key: Option<&SigningKey>,
    time: &str,
) -> Result<(), ChainError> {
    use ed25519_dalek::Signer;
    members.sort();
    members.dedup();
    entry
        .as_object_mut()
        .ok_or(ChainError::NotAnObject)?
        .insert(
            ERASED.to_owned(),
            serde_json::json!({ "v": 2, "members": members }),
        );
    if let (Some(link), Some(key)) = (link, key) {
        let text = erasure_v2_signed_text(entry, link, time, &key.key_id)?;
        let signature = hex::encode(key.key.sign(text.as_bytes()).to_bytes());
        if let Some(erased) = entry.get_mut(ERASED).and_then(Value::as_object_mut) {
            erased.insert("time".to_owned(), time.into());
            erased.insert("key_id".to_owned(), key.key_id.clone().into());
            erased.insert("signature".to_owned(), signature.into());
        }
    }
    Ok(())
}

/// Whether an entry erased in format v1 kept the digest of `value` for `member`.
#[must_use]
pub fn kept_digest_of(entry: &Value, member: &str, value: &Value) -> bool {
    erased_digests(entry)
        .and_then(|d| d.get(member))
        .and_then(Value::as_str)
        .is_some_and(|d| d == erasable_digest(value))
}

/// The text an erasure signature signs, for the entry at `seq` of `stream` with hash `hash`:
/// `"llm-audit-erasure-v1\n" + stream + "\n" + seq + "\n" + hash + "\n"`, then for each member
/// in `erased.digests`, in key order, `member + "\n" + digest + "\n" + now + "\n"`, where `now`
/// is the digest of what the member holds now, or `-` when it holds nothing (absent or null);
/// then `time + "\n" + key_id`. `None` when the entry has no `erased` member.
#[must_use]
pub fn erasure_signed_text(
    entry: &Value,
    stream: &str,
    seq: u64,
    hash: &str,
    time: &str,
    key_id: &str,
) -> Option<String> {
    let digests = erased_digests(entry)?;
    let mut text = format!("llm-audit-erasure-v1\n{stream}\n{seq}\n{hash}\n");
    let mut members: Vec<(&String, &Value)> = digests.iter().collect();
    members.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    for (member, digest) in members {
        let now = entry
            .get(member)
            .filter(|v| !v.is_null())
            .map_or_else(|| "-".to_owned(), erasable_digest);
        text.push_str(&format!(
            "{member}\n{}\n{now}\n",
            digest.as_str().unwrap_or_default()
        ));
    }
    text.push_str(&format!("{time}\n{key_id}"));
    Some(text)
}

/// Signs the `erased` member of a chained entry (after [`erase_member`]), with the time of the
/// change. Does nothing to an entry without a chain link or without `erased`.
///
/// # Errors
/// [`ChainError::NotAnObject`].
pub fn sign_erasure(entry: &mut Value, key: &SigningKey, time: &str) -> Result<(), ChainError> {
    use ed25519_dalek::Signer;
    let Some(link) = entry
        .get("chain")
        .and_then(|c| serde_json::from_value::<ChainLink>(c.clone()).ok())
    else {
        return Ok(());
    };
    let Some(text) =
        erasure_signed_text(entry, &link.stream, link.seq, &link.hash, time, &key.key_id)
    else {
        return Ok(());
    };
    let signature = hex::encode(key.key.sign(text.as_bytes()).to_bytes());
    let erased = entry
        .get_mut(ERASED)
        .and_then(Value::as_object_mut)
        .ok_or(ChainError::NotAnObject)?;
    erased.insert("time".to_owned(), time.into());
    erased.insert("key_id".to_owned(), key.key_id.clone().into());
    erased.insert("signature".to_owned(), signature.into());
    Ok(())
}

/// Checks the `erased` member of the entry whose link is `link`: its signature is `key`'s, over
/// the digests it records and what the members hold now (format v1, [`erase_member`]), or over
/// the whole entry as it reads now (format v2, [`erase_members`]). `Ok` for an entry without
/// `erased`.
///
/// # Errors
/// Why it does not check out, for the report.
pub fn verify_erasure(entry: &Value, link: &ChainLink, key: &VerifyingKey) -> Result<(), String> {
    let Some(erased) = entry.get(ERASED) else {
        return Ok(());
    };
    let text_of = |name: &str| erased.get(name).and_then(Value::as_str).unwrap_or_default();
    let (time, key_id, signature) = (text_of("time"), text_of("key_id"), text_of("signature"));
    let text = if is_erased_v2(entry) {
        erasure_v2_signed_text(entry, link, time, key_id).map_err(|e| e.to_string())?
    } else {
        let (stream, seq, hash) = (&link.stream, link.seq, &link.hash);
        let Some(text) = erasure_signed_text(entry, stream, seq, hash, time, key_id) else {
            return Err("its erased member records no digests".to_owned());
        };
        text
    };
    if signature.is_empty() {
        return Err("values were erased without a signature".to_owned());
    }
    if key.verifies(key_id, signature, &text) {
        Ok(())
    } else if key_id != key.key_id() {
        Err(format!(
            "its erasure is signed by key {key_id}, not by {}",
            key.key_id()
        ))
    } else {
        Err("its erased members do not match the erasure's signature (changed after the erasure, or forged)".to_owned())
    }
}

/// One member of a scanned line: byte ranges of its key (without quotes) and raw value.
#[derive(Debug, Clone, Copy)]
struct Member {
    key: (usize, usize),
    value: (usize, usize),
    /// The value is a string with no backslash in it: its own canonical form.
    plain_string: bool,
}

/// Whether `b` has a control byte (below 0x20) anywhere. Lines of the writer have none at all (it
/// escapes them); only a line that has some needs its strings checked for them.
#[inline]
fn has_controls(b: &[u8]) -> bool {
    b.chunks(64)
        .any(|c| c.iter().fold(false, |any, &x| any | (x < 0x20)))
}

/// The end (exclusive) of the string whose opening quote is at `start`, and whether it has a
/// backslash in it; `None` if it does not end, or has a control byte when `controls`.
#[inline]
fn string_end(b: &[u8], start: usize, controls: bool) -> Option<(usize, bool)> {
    let mut i = start + 1;
    let mut escaped = false;
    loop {
        // Jump to the next quote or backslash, then check the stretch for controls.
        let at = i + quote_or_backslash(b.get(i..)?)?;
        if controls && b[i..at].iter().any(|&c| c < 0x20) {
            return None;
        }
        if b[at] == b'"' {
            return Some((at + 1, escaped));
        }
        escaped = true;
        i = at + 2;
        if i > b.len() {
            return None;
        }
    }
}

/// The end (exclusive) of the member value that starts at `start`, and whether it is a string
/// without a backslash; `None` for anything the scanner does not take. Only the extent is
/// found: strings keep their escapes, nested values are parsed later.
#[inline]
fn value_end(text: &str, start: usize, controls: bool) -> Option<(usize, bool)> {
    let b = text.as_bytes();
    let mut i = start;
    match *b.get(i)? {
        b'"' => string_end(b, i, controls).map(|(end, escaped)| (end, !escaped)),
        b'{' | b'[' => {
            let mut depth = 0usize;
            loop {
                match *b.get(i)? {
                    b'"' => {
                        i = string_end(b, i, controls)?.0;
                        continue;
                    }
                    b'{' | b'[' => {
                        depth += 1;
                        // `serde_json` refuses a line nested 128 deep; the definition decides
                        // for deep values rather than the value alone.
                        if depth > MAX_SCANNED_DEPTH {
                            return None;
                        }
                    }
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some((i + 1, false));
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            while i < b.len() && !matches!(b[i], b',' | b'}' | b' ' | b'\t' | b'\n' | b'\r') {
                i += 1;
            }
            let raw = &text[start..i];
            (matches!(raw, "true" | "false" | "null") || is_json_number(raw)).then_some((i, false))
        }
    }
}

/// The top-level members of a JSON object line, as byte ranges of key and raw value, appended to
/// `members`: a hand scanner for the common case (keys without escapes, well-formed values),
/// `None` for anything else, which then takes the `serde_json` path. Only the extent of each
/// value is found here; strings keep their escapes, nested values are parsed later.
fn scan_members<'a>(line: &'a [u8], members: &mut Vec<Member>) -> Option<&'a str> {
    members.clear();
    let text = std::str::from_utf8(line).ok()?;
    let b = text.as_bytes();
    let controls = has_controls(b);
    let ws = |i: &mut usize| {
        while *i < b.len() && matches!(b[*i], b' ' | b'\t' | b'\n' | b'\r') {
            *i += 1;
        }
    };
    let mut i = 0;
    ws(&mut i);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    ws(&mut i);
    if b.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            ws(&mut i);
            if b.get(i) != Some(&b'"') {
                return None;
            }
            let (key_end, escaped) = string_end(b, i, controls)?;
            if escaped {
                return None;
            }
            let key = (i + 1, key_end - 1);
            i = key_end;
            ws(&mut i);
            if b.get(i) != Some(&b':') {
                return None;
            }
            i += 1;
            ws(&mut i);
            let start = i;
            let (end, plain_string) = value_end(text, i, controls)?;
            i = end;
            members.push(Member {
                key,
                value: (start, i),
                plain_string,
            });
            ws(&mut i);
            match b.get(i)? {
                b',' => i += 1,
                b'}' => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    ws(&mut i);
    (i == b.len()).then_some(text)
}

/// [`scan_members`] for a line written compactly with the keys of the last line, in the same
/// order (every line of a writer): each member must start with the text `template` holds for it
/// (`{"key":` for the first, `,"key":` for the others; `ends` are their ends in `template`), so
/// that keys are compared as they are passed rather than scanned and then compared. `None` for
/// any other line, which [`scan_members`] then reads. Where it gives members, they are the ones
/// [`scan_members`] gives, with the same keys as the template's.
fn scan_template<'a>(
    line: &'a [u8],
    template: &[u8],
    ends: &[usize],
    members: &mut Vec<Member>,
) -> Option<&'a str> {
    if ends.is_empty() {
        return None;
    }
    members.clear();
    let text = std::str::from_utf8(line).ok()?;
    let b = text.as_bytes();
    let controls = has_controls(b);
    let (mut i, mut from) = (0, 0);
    for &end in ends {
        let prefix = &template[from..end];
        from = end;
        if !b
            .get(i..i + prefix.len())
            .is_some_and(|s| same_bytes(s, prefix))
        {
            return None;
        }
        // After `{"` or `,"`, before `":`.
        let key = (i + 2, i + prefix.len() - 2);
        i += prefix.len();
        let (end, plain_string) = value_end(text, i, controls)?;
        members.push(Member {
            key,
            value: (i, end),
            plain_string,
        });
        i = end;
    }
    (i + 1 == b.len() && b[i] == b'}').then_some(text)
}

/// The index of the first `"` or `\\` in `b`. Most strings of a line (keys, names) are short,
/// and setting up the SIMD search costs more than the search itself: the first words are
/// searched eight bytes at a time in a register, the rest with `memchr2`.
#[inline]
fn quote_or_backslash(b: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut at = 0;
    while at + 8 <= b.len() && at < 32 {
        let mut word = [0u8; 8];
        word.copy_from_slice(&b[at..at + 8]);
        let word = u64::from_le_bytes(word);
        // A byte of `x` is zero where `word` has the byte searched for; the lowest byte flagged
        // by `(x - ONES) & !x & HIGH` is the first zero byte of `x`.
        let quote = word ^ (ONES * u64::from(b'"'));
        let backslash = word ^ (ONES * u64::from(b'\\'));
        let found = ((quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash))
            & HIGH;
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    memchr::memchr2(b'"', b'\\', &b[at..]).map(|i| at + i)
}

/// Whether `a` and `b` are the same bytes: for short keys, without the call to `memcmp` that
/// `==` makes.
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// The deepest nesting of a member's value that [`scan_members`] takes; deeper lines take the
/// `serde_json` path, whose recursion limit then decides.
const MAX_SCANNED_DEPTH: usize = 64;

/// Whether `raw` follows JSON's number grammar: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn is_json_number(raw: &str) -> bool {
    let b = raw.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(c) if c.is_ascii_digit() => {
            digits(&mut i);
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Whether `raw` is an array of strings without escapes, written compactly (`["stop"]`), which
/// is its own canonical form.
fn is_plain_string_array(raw: &str) -> bool {
    let b = raw.as_bytes();
    if b.len() < 2 || b[b.len() - 1] != b']' {
        return false;
    }
    let mut i = 1;
    let end = b.len() - 1;
    if i == end {
        return true;
    }
    loop {
        if b[i] != b'"' {
            return false;
        }
        let Some(close) = memchr::memchr2(b'"', b'\\', &b[i + 1..end]) else {
            return false;
        };
        let close = i + 1 + close;
        if b[close] != b'"' || b[i + 1..close].iter().any(|&c| c < 0x20) {
            return false;
        }
        i = close + 1;
        if i == end {
            return true;
        }
        if b[i] != b',' {
            return false;
        }
        i += 1;
    }
}

/// Appends the canonical form of a value given as JSON text.
fn canonical_raw(raw: &str, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    let simple = match raw.as_bytes().first() {
        // A string without escapes is canonical as it stands.
        Some(b'"') => memchr::memchr(b'\\', raw.as_bytes()).is_none(),
        Some(b'{') => raw == "{}",
        Some(b'[') => is_plain_string_array(raw),
        // true, false, null and integers that serde_json reads as integers; other numbers
        // (fractions, exponents, -0, beyond 64 bits) are re-written the way it writes them.
        Some(b't' | b'f' | b'n') => true,
        _ => {
            // Up to 18 digits always fit in an i64: no need to parse them.
            let digits = raw.strip_prefix('-').unwrap_or(raw);
            raw != "-0"
                && if digits.len() <= 18 && digits.bytes().all(|b| b.is_ascii_digit()) {
                    !digits.is_empty()
                } else {
                    raw.parse::<i64>().is_ok() || raw.parse::<u64>().is_ok()
                }
        }
    };
    if simple {
        out.extend_from_slice(raw.as_bytes());
    } else {
        if raw.starts_with(['{', '[']) {
            check_unique_keys(raw)?;
        }
        canonical_json(&serde_json::from_str::<Value>(raw)?, out);
    }
    Ok(())
}

/// Per-thread buffers of [`line_digest`], and the sort order of the last key sequence seen: the
/// lines of one writer all have their members in the same order, so sorting is done once.
#[derive(Default)]
struct Scratch {
    members: Vec<Member>,
    /// The keys of the last line whose order was worked out, each followed by `"`.
    keys: Vec<u8>,
    /// That line's members in sorted order (indexes), or `None` if a key repeats.
    order: Option<Vec<usize>>,
    /// What each member in `order` is, in the same order.
    roles: Vec<Role>,
    /// For each member in `order`: `,"key":` as it starts the member in the canonical form,
    /// as a range of `prefix_bytes`.
    prefixes: Vec<(usize, usize)>,
    prefix_bytes: Vec<u8>,
    /// For [`scan_template`]: each member of the last line whose order was worked out as it
    /// starts there, `{"key":` or `,"key":`, in line order (empty if that line had none).
    template: Vec<u8>,
    /// The end of each member's text in `template`.
    template_ends: Vec<usize>,
    canonical: Vec<u8>,
}

/// What a member is to the canonical form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Plain,
    Erasable,
    Chain,
    Erased,
}

impl Role {
    fn of(key: &str) -> Self {
        match key {
            "chain" => Self::Chain,
            ERASED => Self::Erased,
            k if ERASABLE.contains(&k) => Self::Erasable,
            _ => Self::Plain,
        }
    }
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

/// Checks a line against the one spelling a writer gives it: an object whose keys are written
/// without escapes, each once, and no object at any depth with a key twice. The digest decodes
/// keys and keeps the last of two equal ones, while readers refuse such a line or read another
/// value: a key spelled `"erase\u0064"` or written twice would make the digest and a reader see
/// different entries.
///
/// # Errors
/// The line is not that: the message says what it is instead.
pub fn check_line(line: &[u8]) -> Result<(), serde_json::Error> {
    struct Keys;
    impl<'de> serde::de::Visitor<'de> for Keys {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object (an audit entry)")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = std::collections::HashSet::new();
            // Keys borrowed from the line: a key with an escape cannot be, and is refused.
            while let Some(key) = map.next_key::<KeyText<'de>>()? {
                if !seen.insert(key.0) {
                    return Err(serde::de::Error::custom(format_args!(
                        "the key {:?} appears twice",
                        key.0
                    )));
                }
                map.next_value::<Unique>()?;
            }
            Ok(())
        }
    }
    struct KeyText<'a>(&'a str);
    impl<'de> Deserialize<'de> for KeyText<'de> {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Plain;
            impl<'de> serde::de::Visitor<'de> for Plain {
                type Value = KeyText<'de>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a key")
                }
                fn visit_borrowed_str<E: serde::de::Error>(
                    self,
                    v: &'de str,
                ) -> Result<Self::Value, E> {
                    Ok(KeyText(v))
                }
                fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                    Err(E::custom(format_args!(
                        "the key {v:?} is written with an escape; a writer spells every key plainly"
                    )))
                }
            }
            d.deserialize_str(Plain)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(line);
    serde::Deserializer::deserialize_map(&mut de, Keys)?;
    de.end()
}

/// Checks that no object in a JSON value has a key twice (keys compared decoded).
fn check_unique_keys(json: &str) -> Result<(), serde_json::Error> {
    serde_json::from_str::<Unique>(json).map(drop)
}

/// Any JSON value, read only to refuse an object with a key twice.
struct Unique;

impl<'de> Deserialize<'de> for Unique {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Unique;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E>(self, _: bool) -> Result<Unique, E> {
                Ok(Unique)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Unique, E> {
                Ok(Unique)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Unique, E> {
                Ok(Unique)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Unique, E> {
                Ok(Unique)
            }
            fn visit_str<E>(self, _: &str) -> Result<Unique, E> {
                Ok(Unique)
            }
            fn visit_unit<E>(self) -> Result<Unique, E> {
                Ok(Unique)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Unique, A::Error> {
                while seq.next_element::<Unique>()?.is_some() {}
                Ok(Unique)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Unique, A::Error> {
                let mut seen = std::collections::HashSet::new();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if !seen.insert(key.clone()) {
                        return Err(serde::de::Error::custom(format_args!(
                            "the key {key:?} appears twice in one object"
                        )));
                    }
                    map.next_value::<Unique>()?;
                }
                Ok(Unique)
            }
        }
        d.deserialize_any(Visit)
    }
}

/// The definition's digest and link, for lines the scanner does not take.
fn line_digest_slow(line: &[u8]) -> Result<([u8; 32], Option<LinkRef<'_>>), serde_json::Error> {
    check_line(line)?;
    let value: Value = serde_json::from_slice(line)?;
    let digest = entry_digest(&value).map_err(serde::de::Error::custom)?;
    let link = value
        .get("chain")
        .map(|c| serde_json::from_value::<ChainLink>(c.clone()))
        .transpose()?;
    Ok((digest, link.map(LinkRef::from)))
}

/// The entry digest (step 4) and the chain link of one JSONL line, read without building the
/// whole entry: the fast path of verification. Gives the same digest as [`entry_digest`].
///
/// # Errors
/// The line is not a JSON object, or its `chain` member is not a link.
pub fn line_digest(line: &[u8]) -> Result<([u8; 32], Option<ChainLink>), serde_json::Error> {
    line_digest_ref(line).map(|(digest, link)| (digest, link.map(LinkRef::into_owned)))
}

/// [`line_digest`], with the link borrowed from the line.
///
/// # Errors
/// The line is not a JSON object, or its `chain` member is not a link.
pub fn line_digest_ref(line: &[u8]) -> Result<([u8; 32], Option<LinkRef<'_>>), serde_json::Error> {
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut scratch) => line_digest_with(line, &mut scratch),
        Err(_) => line_digest_with(line, &mut Scratch::default()),
    })
}

fn line_digest_with<'a>(
    line: &'a [u8],
    scratch: &mut Scratch,
) -> Result<([u8; 32], Option<LinkRef<'a>>), serde_json::Error> {
    let Scratch {
        members,
        keys,
        order,
        roles,
        prefixes,
        prefix_bytes,
        template,
        template_ends,
        canonical: out,
    } = scratch;
    // A writer's lines: the keys of the last line, in its order, compared as they are passed.
    let (text, same_keys) = match scan_template(line, template, template_ends, members) {
        Some(text) => (text, true),
        None => {
            let Some(text) = scan_members(line, members) else {
                // Anything unusual (escaped keys, odd spacing the scanner refuses): the
                // definition.
                return line_digest_slow(line);
            };
            let key = |m: &Member| &text[m.key.0..m.key.1];
            let mut at = 0;
            let same = members.iter().all(|m| {
                let k = key(m).as_bytes();
                let same = keys
                    .get(at..at + k.len())
                    .is_some_and(|stored| same_bytes(stored, k))
                    && keys.get(at + k.len()) == Some(&b'"');
                at += k.len() + 1;
                same
            }) && at == keys.len();
            (text, same)
        }
    };
    let key = |m: &Member| &text[m.key.0..m.key.1];
    if !same_keys {
        keys.clear();
        for m in members.iter() {
            keys.extend_from_slice(key(m).as_bytes());
            keys.push(b'"');
        }
        template.clear();
        template_ends.clear();
        for (j, m) in members.iter().enumerate() {
            template.extend_from_slice(if j == 0 { b"{\"" } else { b",\"" });
            template.extend_from_slice(key(m).as_bytes());
            template.extend_from_slice(b"\":");
            template_ends.push(template.len());
        }
        let mut sorted: Vec<usize> = (0..members.len()).collect();
        sorted.sort_unstable_by(|&a, &b| {
            key(&members[a]).as_bytes().cmp(key(&members[b]).as_bytes())
        });
        roles.clear();
        roles.extend(sorted.iter().map(|&i| Role::of(key(&members[i]))));
        // The scanner only lets through keys without escapes, quotes or controls.
        prefixes.clear();
        prefix_bytes.clear();
        for &i in &sorted {
            let start = prefix_bytes.len();
            prefix_bytes.extend_from_slice(b",\"");
            prefix_bytes.extend_from_slice(key(&members[i]).as_bytes());
            prefix_bytes.extend_from_slice(b"\":");
            prefixes.push((start, prefix_bytes.len()));
        }
        *order = (!sorted
            .windows(2)
            .any(|w| key(&members[w[0]]) == key(&members[w[1]])))
        .then_some(sorted);
    }
    let Some(order) = order.as_ref() else {
        // A key twice: the definition (serde_json keeps the last).
        return line_digest_slow(line);
    };
    let mut link = None;
    out.clear();
    out.push(b'{');
    let mut first = true;
    for ((&i, &role), &(start, end)) in order.iter().zip(roles.iter()).zip(prefixes.iter()) {
        let m = members[i];
        let raw = &text[m.value.0..m.value.1];
        match role {
            Role::Chain => {
                // A link written otherwise than the sink writes it is read by serde, which
                // ignores members it does not know: a key twice among them is refused first.
                // Whatever this read refuses, the definition decides.
                let read = match plain_link(raw) {
                    Some(read) => Ok(read),
                    None => check_unique_keys(raw)
                        .and_then(|()| serde_json::from_str::<LinkRef<'a>>(raw)),
                };
                match read {
                    Ok(read) => link = Some(read),
                    Err(_) => return line_digest_slow(line),
                }
                continue;
            }
            // Erased members (rare): the definition.
            Role::Erased => return line_digest_slow(line),
            Role::Plain | Role::Erasable => {}
        }
        // `,"key":`, without the comma for the first member.
        out.extend_from_slice(&prefix_bytes[start + usize::from(first)..end]);
        first = false;
        if role == Role::Erasable && raw != "null" {
            if m.plain_string {
                // A plain string is its own canonical form.
                out.extend_from_slice(b"\"sha256:");
                out.extend_from_slice(&hex_digits(&Sha256::digest(raw.as_bytes()).into()));
                out.push(b'"');
            } else {
                if raw.starts_with(['{', '[']) {
                    check_unique_keys(raw)?;
                }
                let digest = erasable_digest(&serde_json::from_str::<Value>(raw)?);
                serde_json::to_writer(&mut *out, &digest)?;
            }
        } else if m.plain_string {
            out.extend_from_slice(raw.as_bytes());
        } else {
            canonical_raw(raw, out)?;
        }
    }
    out.push(b'}');
    Ok((Sha256::digest(&out[..]).into(), link))
}

/// A link written as the sink writes it, `{"stream":"…","seq":N,"prev":"…","hash":"…"}` compact
/// and without escapes, read without `serde_json`: `None` for any other text (spaces, another
/// order, escapes, a number that is no `u64` as JSON writes one), which `serde_json` then reads.
/// Where it gives a link, it is the one `serde_json` reads.
fn plain_link(raw: &str) -> Option<LinkRef<'_>> {
    /// The string up to the next quote, and what follows that quote; `None` if the string has
    /// an escape or a control character in it.
    fn plain(text: &str) -> Option<(&str, &str)> {
        let end = memchr::memchr2(b'"', b'\\', text.as_bytes())?;
        let (value, rest) = text.split_at(end);
        let controls = value.bytes().fold(false, |any, c| any | (c < 0x20));
        (!controls && rest.starts_with('"')).then(|| (value, &rest[1..]))
    }
    let (stream, rest) = plain(raw.strip_prefix("{\"stream\":\"")?)?;
    let rest = rest.strip_prefix(",\"seq\":")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (number, rest) = rest.split_at(digits);
    // JSON has no leading zeros.
    if number.is_empty() || (number.len() > 1 && number.starts_with('0')) {
        return None;
    }
    let seq = number.parse::<u64>().ok()?;
    let (prev, rest) = plain(rest.strip_prefix(",\"prev\":\"")?)?;
    let (hash, rest) = plain(rest.strip_prefix(",\"hash\":\"")?)?;
    (rest == "}").then(|| LinkRef {
        stream: stream.into(),
        seq,
        prev: prev.into(),
        hash: hash.into(),
    })
}

/// `n` in decimal, written into `buf`.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[at..];
        }
    }
}

/// The entry hash of step 5.
#[must_use]
pub fn link_hash(stream: &str, seq: u64, prev: &str, digest: &[u8; 32]) -> String {
    hex32(&link_hash_bytes(stream, seq, prev, digest))
}

/// The entry hash of step 5, as bytes (what [`link_hash`] writes in hex).
#[must_use]
pub fn link_hash_bytes(stream: &str, seq: u64, prev: &str, digest: &[u8; 32]) -> [u8; 32] {
    let hex_digest = hex_digits(digest);
    let mut hasher = Sha256::new();
    hasher.update(b"llm-audit-chain-v1\n");
    hasher.update(stream.as_bytes());
    hasher.update(b"\n");
    hasher.update(decimal(seq, &mut [0u8; 20]));
    hasher.update(b"\n");
    hasher.update(prev.as_bytes());
    hasher.update(b"\n");
    hasher.update(hex_digest);
    hasher.finalize().into()
}

/// Another stream's signed checkpoint, as a writer found it when it started: witnessed in each
/// of its own checkpoints, so that removing or rewriting that stream's checkpoints (or the whole
/// stream) later is found by `verify` as soon as one checkpoint of the witness exists.
///
/// Serialized as the array `[stream, index, seq, head, final]`, which is also its line in the
/// signed text (see [`Checkpoint::signed_text`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Witness {
    /// The witnessed stream.
    pub stream: String,
    /// The index of its checkpoint.
    pub index: u64,
    /// The checkpoint's sequence number.
    pub seq: u64,
    /// The checkpoint's head.
    pub head: String,
    /// Whether it was the stream's final checkpoint.
    pub last: bool,
}

impl Witness {
    /// Whether `checkpoint` is the one witnessed.
    #[must_use]
    pub fn matches(&self, checkpoint: &Checkpoint) -> bool {
        checkpoint.stream == self.stream
            && checkpoint.index == self.index
            && checkpoint.seq == self.seq
            && checkpoint.head == self.head
            && checkpoint.last == self.last
    }

    /// The witness of `checkpoint`.
    #[must_use]
    pub fn of(checkpoint: &Checkpoint) -> Self {
        Self {
            stream: checkpoint.stream.clone(),
            index: checkpoint.index,
            seq: checkpoint.seq,
            head: checkpoint.head.clone(),
            last: checkpoint.last,
        }
    }
}

/// A signed statement that a stream had `seq + 1` entries ending in `head` at `time`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The stream.
    pub stream: String,
    /// The stream's checkpoints counted from 0.
    pub index: u64,
    /// The sequence number of the last entry covered.
    pub seq: u64,
    /// That entry's hash.
    pub head: String,
    /// When it was signed, RFC 3339 UTC.
    pub time: String,
    /// The signing key's id.
    pub key_id: String,
    /// Whether the writer closed the stream with it (at shutdown).
    #[serde(rename = "final")]
    pub last: bool,
    /// The other streams' checkpoints the writer found when it started (format v2; none in
    /// v1).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        with = "witness_arrays"
    )]
    pub witness: Vec<Witness>,
    /// Ed25519 signature of [`signed_text`](Self::signed_text), hex.
    pub signature: String,
}

/// [`Witness`]es as arrays `[stream, index, seq, head, final]`.
mod witness_arrays {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::Witness;

    type Tuple = (String, u64, u64, String, bool);

    pub(super) fn serialize<S: Serializer>(w: &[Witness], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            w.iter()
                .map(|w| (w.stream.as_str(), w.index, w.seq, w.head.as_str(), w.last)),
        )
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Witness>, D::Error> {
        let tuples = Vec::<Tuple>::deserialize(d)?;
        Ok(tuples
            .into_iter()
            .map(|(stream, index, seq, head, last)| Witness {
                stream,
                index,
                seq,
                head,
                last,
            })
            .collect())
    }

    /// One witness as its line of the signed text: the compact JSON array.
    pub(super) fn line(w: &Witness) -> String {
        let tuple = (w.stream.as_str(), w.index, w.seq, w.head.as_str(), w.last);
        // Strings, integers and a bool: serializing cannot fail.
        serde_json::to_string(&tuple).unwrap_or_default()
    }
}

impl Checkpoint {
    /// The text that is signed: format v1 without witnesses, v2 with them (see the module
    /// documentation).
    #[must_use]
    pub fn signed_text(&self) -> String {
        let mut text = format!(
            "llm-audit-checkpoint-{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}",
            if self.witness.is_empty() { "v1" } else { "v2" },
            self.stream,
            self.index,
            self.seq,
            self.head,
            self.time,
            self.key_id,
            if self.last { "final" } else { "open" }
        );
        for w in &self.witness {
            text.push('\n');
            text.push_str(&witness_arrays::line(w));
        }
        text
    }

    /// Whether the signature is `key`'s over the checkpoint.
    #[must_use]
    pub fn verify(&self, key: &VerifyingKey) -> bool {
        key.verifies(&self.key_id, &self.signature, &self.signed_text())
    }
}

/// A signed statement that entries `first..=last` of a stream were removed on purpose (by a
/// retention policy), so that a verifier reports them as expired, not deleted. It carries the
/// links around the gap: `prev` (the link of entry `first`, the hash of entry `first - 1`) and
/// `last_hash` (the hash of entry `last`, the link of entry `last + 1`), so the chain on both
/// sides of the gap is still checked.
///
/// It signs the UTF-8 bytes of `"llm-audit-tombstone-v1\n" + stream + "\n" + first + "\n" +
/// last + "\n" + prev + "\n" + last_hash + "\n" + reason + "\n" + time + "\n" + key_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    /// The stream.
    pub stream: String,
    /// The first sequence number removed.
    pub first: u64,
    /// The last sequence number removed.
    pub last: u64,
    /// The link of entry `first` (the hash of the entry before it, or [`GENESIS`]).
    pub prev: String,
    /// The hash of entry `last`.
    pub last_hash: String,
    /// Why, for people: the policy and the rule (`expired by policy standard: ...`).
    pub reason: String,
    /// When they were removed, RFC 3339 UTC.
    pub time: String,
    /// The signing key's id.
    pub key_id: String,
    /// Ed25519 signature of [`signed_text`](Self::signed_text), hex.
    pub signature: String,
}

impl Tombstone {
    /// The text that is signed.
    #[must_use]
    pub fn signed_text(&self) -> String {
        format!(
            "llm-audit-tombstone-v1\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}",
            self.stream,
            self.first,
            self.last,
            self.prev,
            self.last_hash,
            self.reason,
            self.time,
            self.key_id
        )
    }

    /// Whether the signature is `key`'s over the tombstone (and `first <= last`).
    #[must_use]
    pub fn verify(&self, key: &VerifyingKey) -> bool {
        self.first <= self.last && key.verifies(&self.key_id, &self.signature, &self.signed_text())
    }
}

/// The key id of a public key: the first 16 hex digits of SHA-256 of its 32 bytes.
fn key_id(public: &ed25519_dalek::VerifyingKey) -> String {
    sha256_hex(public.as_bytes())[..16].to_owned()
}

/// A key error, prefixed with where the key came from (a file, an environment variable).
fn in_source(error: ChainError, source: &str) -> ChainError {
    match error {
        ChainError::Key(message) => ChainError::Key(format!("{source}: {message}")),
        other => other,
    }
}

const SECRET_TAG: &str = "llm-audit-ed25519-secret-v1";
const PUBLIC_TAG: &str = "llm-audit-ed25519-public-v1";

/// The Ed25519 key that signs checkpoints. `Debug` shows its id only.
#[derive(Clone)]
pub struct SigningKey {
    key: ed25519_dalek::SigningKey,
    key_id: String,
}

impl SigningKey {
    /// A new random key.
    ///
    /// # Errors
    /// The operating system has no randomness to give.
    pub fn generate() -> Result<Self, ChainError> {
        let mut seed = zeroize::Zeroizing::new([0u8; 32]);
        getrandom::getrandom(seed.as_mut())
            .map_err(|e| ChainError::Key(format!("no randomness for a key: {e}")))?;
        Ok(Self::from_seed(&seed))
    }

    fn from_seed(seed: &[u8; 32]) -> Self {
        let key = ed25519_dalek::SigningKey::from_bytes(seed);
        let key_id = key_id(&key.verifying_key());
        Self { key, key_id }
    }

    /// Parses the text of a secret key file (`llm-audit-ed25519-secret-v1 <hex seed>`).
    ///
    /// # Errors
    /// The text is not a secret key (the error never shows the text).
    pub fn parse(text: &str) -> Result<Self, ChainError> {
        let bad = || {
            ChainError::Key(format!(
                "not an llm-audit signing key (expected `{SECRET_TAG} <64 hex digits>`, as \
                 `llm-audit keygen` writes to PREFIX.key)"
            ))
        };
        let mut parts = text.split_whitespace();
        match parts.next() {
            Some(SECRET_TAG) => {}
            Some(PUBLIC_TAG) => {
                return Err(ChainError::Key(
                    "this is a public key (PREFIX.pub); signing needs the secret key from the \
                     same `llm-audit keygen`, PREFIX.key"
                        .to_owned(),
                ))
            }
            _ => return Err(bad()),
        }
        let hex_seed = zeroize::Zeroizing::new(parts.next().ok_or_else(bad)?.to_owned());
        let mut seed = zeroize::Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(hex_seed.as_bytes(), seed.as_mut()).map_err(|_| bad())?;
        Ok(Self::from_seed(&seed))
    }

    /// Reads a secret key file.
    ///
    /// # Errors
    /// The file cannot be read or is not a secret key.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ChainError> {
        let path = path.as_ref();
        let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
            ChainError::Io {
                path: path.display().to_string(),
                source,
            }
        })?);
        Self::parse(&text).map_err(|e| in_source(e, &path.display().to_string()))
    }

    /// Reads the key from the environment variable `name` (the text of a secret key file).
    ///
    /// # Errors
    /// The variable is not set or is not a secret key; the message names the variable.
    pub fn from_env(name: &str) -> Result<Self, ChainError> {
        let text = zeroize::Zeroizing::new(std::env::var(name).map_err(|e| {
            ChainError::Key(match e {
                std::env::VarError::NotPresent => format!(
                    "the environment variable {name} is not set: set it to the text of a \
                     signing key file (`llm-audit keygen` makes one)"
                ),
                std::env::VarError::NotUnicode(_) => {
                    format!("the environment variable {name} is not UTF-8")
                }
            })
        })?);
        Self::parse(&text).map_err(|e| in_source(e, name))
    }

    /// The text of its secret key file.
    #[must_use]
    pub fn to_secret_text(&self) -> zeroize::Zeroizing<String> {
        zeroize::Zeroizing::new(format!(
            "{SECRET_TAG} {}\n",
            hex::encode(self.key.to_bytes())
        ))
    }

    /// Its public key.
    #[must_use]
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey {
            key: self.key.verifying_key(),
            key_id: self.key_id.clone(),
        }
    }

    /// Its id.
    #[must_use]
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Signs a checkpoint (fills in its key id and signature).
    pub fn sign(&self, checkpoint: &mut Checkpoint) {
        use ed25519_dalek::Signer;
        checkpoint.key_id.clone_from(&self.key_id);
        let signature = self.key.sign(checkpoint.signed_text().as_bytes());
        checkpoint.signature = hex::encode(signature.to_bytes());
    }

    /// Signs `tombstone` (setting its key id and signature).
    pub fn sign_tombstone(&self, tombstone: &mut Tombstone) {
        use ed25519_dalek::Signer;
        tombstone.key_id.clone_from(&self.key_id);
        let signature = self.key.sign(tombstone.signed_text().as_bytes());
        tombstone.signature = hex::encode(signature.to_bytes());
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({})", self.key_id)
    }
}

/// The public key a verifier needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    key: ed25519_dalek::VerifyingKey,
    key_id: String,
}

impl VerifyingKey {
    /// Whether `signature` (hex) is this key's, with id `key_id`, over `text`.
    fn verifies(&self, key_id: &str, signature: &str, text: &str) -> bool {
        let Ok(bytes) = hex::decode(signature) else {
            return false;
        };
        let Ok(signature) = ed25519_dalek::Signature::from_slice(&bytes) else {
            return false;
        };
        self.key_id == key_id && self.key.verify_strict(text.as_bytes(), &signature).is_ok()
    }

    /// Parses the text of a public key file (`llm-audit-ed25519-public-v1 <hex>`).
    ///
    /// # Errors
    /// The text is not a public key.
    pub fn parse(text: &str) -> Result<Self, ChainError> {
        let bad = || {
            ChainError::Key(format!(
                "not an llm-audit public key (expected `{PUBLIC_TAG} <64 hex digits>`, as \
                 `llm-audit keygen` writes to PREFIX.pub)"
            ))
        };
        let mut parts = text.split_whitespace();
        match parts.next() {
            Some(PUBLIC_TAG) => {}
            // Never echo a secret; say which file was meant.
            Some(SECRET_TAG) => {
                return Err(ChainError::Key(
                    "this is a secret signing key (PREFIX.key); verifying needs only the public \
                     key from the same `llm-audit keygen`, PREFIX.pub"
                        .to_owned(),
                ))
            }
            _ => return Err(bad()),
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(parts.next().ok_or_else(bad)?, &mut bytes).map_err(|_| bad())?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes).map_err(|_| bad())?;
        Ok(Self {
            key_id: key_id(&key),
            key,
        })
    }

    /// Reads a public key file.
    ///
    /// # Errors
    /// The file cannot be read or is not a public key.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ChainError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ChainError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|e| in_source(e, &path.display().to_string()))
    }

    /// The text of its public key file.
    #[must_use]
    pub fn to_public_text(&self) -> String {
        format!("{PUBLIC_TAG} {}\n", hex::encode(self.key.as_bytes()))
    }

    /// Its id.
    #[must_use]
    pub fn key_id(&self) -> &str {
        &self.key_id
    }
}

/// Now, to the second, as a checkpoint's `time`: RFC 3339 in UTC.
pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Appends `text` as a JSON string, the bytes `serde_json` writes: stream ids (UUIDs) and hashes
/// (hex) need no escape and are copied; any other text is escaped by serde.
fn push_json_str(out: &mut Vec<u8>, text: &str) {
    if text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else {
        // Writing a string into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, text);
    }
}

/// The chain state of one writer.
#[derive(Debug, Clone)]
pub(crate) struct ChainState {
    pub(crate) stream: String,
    /// The next entry's sequence number.
    pub(crate) next_seq: u64,
    /// The last entry's hash.
    pub(crate) head: String,
    /// The other streams' checkpoints that every checkpoint of this one witnesses.
    pub(crate) witness: Vec<Witness>,
}

impl ChainState {
    pub(crate) fn new(stream: String) -> Self {
        Self {
            stream,
            next_seq: 0,
            head: GENESIS.to_owned(),
            witness: Vec::new(),
        }
    }

    /// A checkpoint of the entries linked so far, signed with `key` (`None` before the first
    /// entry).
    pub(crate) fn checkpoint(
        &self,
        index: u64,
        last: bool,
        key: &SigningKey,
    ) -> Option<Checkpoint> {
        let mut checkpoint = Checkpoint {
            stream: self.stream.clone(),
            index,
            seq: self.next_seq.checked_sub(1)?,
            head: self.head.clone(),
            time: now_rfc3339(),
            key_id: String::new(),
            last,
            witness: self.witness.clone(),
            signature: String::new(),
        };
        key.sign(&mut checkpoint);
        Some(checkpoint)
    }

    /// Links the entry whose digest is `digest` as the next entry.
    #[cfg(any(test, feature = "postgres"))]
    pub(crate) fn link_digest(&mut self, digest: &[u8; 32]) -> ChainLink {
        let hash = link_hash(&self.stream, self.next_seq, &self.head, digest);
        let link = ChainLink {
            stream: self.stream.clone(),
            seq: self.next_seq,
            prev: std::mem::replace(&mut self.head, hash.clone()),
            hash,
        };
        self.next_seq += 1;
        link
    }

    /// [`link_digest`](Self::link_digest), with the link written to `out` as JSON (the bytes
    /// `serde_json` writes for the [`ChainLink`]) rather than built: no allocation once the
    /// head has its length. Gives the link's seq and hash (hex).
    pub(crate) fn write_link(&mut self, digest: &[u8; 32], out: &mut Vec<u8>) -> (u64, [u8; 64]) {
        let seq = self.next_seq;
        let hash = hex_digits(&link_hash_bytes(&self.stream, seq, &self.head, digest));
        out.extend_from_slice(b"{\"stream\":");
        push_json_str(out, &self.stream);
        out.extend_from_slice(b",\"seq\":");
        out.extend_from_slice(decimal(seq, &mut [0u8; 20]));
        out.extend_from_slice(b",\"prev\":");
        push_json_str(out, &self.head);
        out.extend_from_slice(b",\"hash\":\"");
        out.extend_from_slice(&hash);
        out.extend_from_slice(b"\"}");
        self.head.clear();
        // Hex digits are ASCII.
        self.head
            .push_str(std::str::from_utf8(&hash).unwrap_or_default());
        self.next_seq += 1;
        (seq, hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(stream: &str, seq: u64, hash: &str) -> ChainLink {
        ChainLink {
            stream: stream.to_owned(),
            seq,
            prev: GENESIS.to_owned(),
            hash: hash.to_owned(),
        }
    }

    /// Known-answer vectors, computed by `tests/fixtures/chain/kat.py` (Python's hashlib and
    /// `cryptography`, written from the module documentation, not from this code).
    const KAT: &str = include_str!("../tests/fixtures/chain/kat.json");

    #[test]
    fn known_answers_pin_the_format() {
        let kat: Value = serde_json::from_str(KAT).unwrap();
        for case in kat["entries"].as_array().unwrap() {
            let digest = entry_digest(&case["entry"]).unwrap();
            assert_eq!(
                hex::encode(digest),
                case["digest"].as_str().unwrap(),
                "{}",
                case["name"]
            );
            let hash = link_hash(
                case["stream"].as_str().unwrap(),
                case["seq"].as_u64().unwrap(),
                case["prev"].as_str().unwrap(),
                &digest,
            );
            assert_eq!(hash, case["hash"].as_str().unwrap(), "{}", case["name"]);
        }
        let seed = kat["checkpoint"]["seed"].as_str().unwrap();
        let key = SigningKey::parse(&format!("{SECRET_TAG} {seed}")).unwrap();
        assert_eq!(
            key.verifying_key().to_public_text().trim(),
            kat["checkpoint"]["public"].as_str().unwrap()
        );
        let mut checkpoint: Checkpoint =
            serde_json::from_value(kat["checkpoint"]["checkpoint"].clone()).unwrap();
        let expected = std::mem::take(&mut checkpoint.signature);
        key.sign(&mut checkpoint);
        assert_eq!(
            checkpoint.key_id,
            kat["checkpoint"]["checkpoint"]["key_id"].as_str().unwrap()
        );
        assert_eq!(checkpoint.signature, expected, "Ed25519 is deterministic");
        assert!(checkpoint.verify(&key.verifying_key()));
        checkpoint.seq += 1;
        assert!(
            !checkpoint.verify(&key.verifying_key()),
            "a changed checkpoint fails"
        );

        // Format v2: witnesses are signed, one JSON array per line.
        let mut witnessing: Checkpoint =
            serde_json::from_value(kat["checkpoint"]["witnessing"].clone()).unwrap();
        assert_eq!(witnessing.witness.len(), 2);
        assert_eq!(
            serde_json::to_value(&witnessing).unwrap(),
            kat["checkpoint"]["witnessing"],
            "witnesses are written as arrays"
        );
        let expected = std::mem::take(&mut witnessing.signature);
        key.sign(&mut witnessing);
        assert_eq!(
            witnessing.signature, expected,
            "the v2 signed text is pinned"
        );
        assert!(witnessing.verify(&key.verifying_key()));
        let mut stripped = witnessing.clone();
        stripped.witness.pop();
        assert!(
            !stripped.verify(&key.verifying_key()),
            "a removed witness fails"
        );
        stripped.witness.clear();
        assert!(!stripped.verify(&key.verifying_key()), "so do all of them");

        // Erasure format v2: the signature over the entry as it reads after the erasure.
        let case = &kat["erasure_v2"];
        let after = &case["after"];
        let link: ChainLink = serde_json::from_value(after["chain"].clone()).unwrap();
        assert_eq!(verify_erasure(after, &link, &key.verifying_key()), Ok(()));
        let mut erased = case["before"].clone();
        let changes = [
            ("user_id", Some(Value::from("pseudonym:abc"))),
            ("session_id", None),
            ("error_message", None),
            ("metadata", None),
            ("input_hash", None),
        ];
        assert!(erase_members(
            &mut erased,
            &changes,
            Some(&key),
            case["time"].as_str().unwrap()
        )
        .unwrap());
        assert_eq!(
            erased["erased"], after["erased"],
            "the v2 signed text is pinned"
        );
        let mut changed = after.clone();
        changed["cost_usd"] = Value::from("0.01");
        assert!(verify_erasure(&changed, &link, &key.verifying_key()).is_err());

        let mut tombstone: Tombstone = serde_json::from_value(kat["tombstone"].clone()).unwrap();
        let expected = std::mem::take(&mut tombstone.signature);
        key.sign_tombstone(&mut tombstone);
        assert_eq!(
            tombstone.signature, expected,
            "the tombstone's signed text is pinned"
        );
        assert!(tombstone.verify(&key.verifying_key()));
        tombstone.last += 1;
        assert!(!tombstone.verify(&key.verifying_key()));
    }

    #[test]
    fn the_fast_path_agrees_with_the_definition() {
        let kat: Value = serde_json::from_str(KAT).unwrap();
        let mut lines: Vec<String> = kat["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| serde_json::to_string(&c["entry"]).unwrap())
            .collect();
        // Escapes the way the JSONL sink writes them, floats, nesting, erased members.
        lines.push(r#"{"b":"\u2028 \u0085 \" \\ \n","a":1.50,"c":[1e3,{"y":null,"x":"\u00e9"}],"user_id":"anon","erased":{"digests":{"user_id":"sha256:00","input_hash":"sha256:11"},"signature":"00"},"metadata":{"k":2.0},"chain":{"stream":"s","seq":0,"prev":"p","hash":"h"}}"#.to_owned());
        lines.push(
            r#" { "z" : [ "]}" , {"q":"\"}"} ] , "y":-1.5e-3 ,"x":"a\\b", "w":{} } "#.to_owned(),
        );
        // Arrays and objects that are their own canonical form, and near misses.
        lines.push(
            r#"{"a":["stop"],"b":[],"c":{},"d":["x","y,z"],"e":["x", "y"],"f":["\u0041"],"g":[1,"a"],"h":["]"],"i":[""],"j":{"b":1,"a":2}}"#
                .to_owned(),
        );
        for (raw, plain) in [
            (r#"["stop"]"#, true),
            ("[]", true),
            (r#"["a","b,c"]"#, true),
            (r#"["a", "b"]"#, false),
            (r#"["\u0041"]"#, false),
            (r#"[1,"a"]"#, false),
            (r#"["a",]"#, false),
            (r#"["a""#, false),
        ] {
            assert_eq!(is_plain_string_array(raw), plain, "{raw}");
        }
        for line in &lines {
            let value: Value = serde_json::from_str(line).unwrap();
            let (digest, _) = line_digest(line.as_bytes()).unwrap();
            assert_eq!(digest, entry_digest(&value).unwrap(), "{line}");
        }
    }

    /// The sort order is remembered from one line to the next: lines whose keys come in
    /// another order, another set, or twice must not reuse it.
    #[test]
    fn the_remembered_key_order_is_only_used_for_the_same_keys() {
        let lines = [
            r#"{"a":1,"b":2,"c":3}"#,
            r#"{"a":1,"b":2,"c":3}"#,
            r#"{"c":3,"b":2,"a":1}"#,
            r#"{"a":1,"b":2}"#,
            r#"{"a":1,"b":2,"b":5}"#,
            r#"{"a":1,"b":2,"b":5}"#,
            r#"{"a":1,"b":2,"bb":5}"#,
            r#"{"ab":1,"b":2}"#,
            r#"{"a":1,"bb":2}"#,
            r#"{"a":1,"b":2,"c":3}"#,
            r#"{}"#,
            r#"{"a":1,"b":2,"c":3}"#,
        ];
        for line in lines {
            // A key twice is no line a writer writes: refused, whatever order came before.
            if line.contains(r#""b":2,"b":5"#) {
                let error = line_digest(line.as_bytes()).unwrap_err().to_string();
                assert!(error.contains("\"b\" appears twice"), "{line}: {error}");
                continue;
            }
            let value: Value = serde_json::from_str(line).unwrap();
            let (digest, _) = line_digest(line.as_bytes()).unwrap();
            assert_eq!(digest, entry_digest(&value).unwrap(), "{line}");
        }
    }

    /// After a line has set the template, lines with the same keys go by [`scan_template`]: it
    /// takes only the compact ones, and every line, taken or not, gets the definition's answer.
    #[test]
    fn the_template_takes_only_compact_lines_with_the_same_keys() {
        let first = r#"{"a":1,"user_id":"u","c":["stop"],"d":{"x":"}"},"chain":{"stream":"s","seq":0,"prev":"p","hash":"h"}}"#;
        // The grammar of a line, then the digest of its value.
        let definition = |line: &[u8]| {
            check_line(line).ok()?;
            serde_json::from_slice::<Value>(line)
                .ok()
                .and_then(|v| entry_digest(&v).ok())
        };
        let mut scratch = Scratch::default();
        line_digest_with(first.as_bytes(), &mut scratch).unwrap();
        let template_takes = |scratch: &Scratch, line: &str| {
            scan_template(
                line.as_bytes(),
                &scratch.template,
                &scratch.template_ends,
                &mut Vec::new(),
            )
            .is_some()
        };
        // (line, whether the template takes it)
        let cases = [
            (first.to_owned(), true),
            (first.replace(r#""u""#, r#""\u00e9\"""#), true),
            (first.replace("1,", "-2.5e3,"), true),
            (first.replace("1,", "-0,"), true),
            (first.replace(r#"["stop"]"#, r#"[ "stop" ]"#), true),
            (first.replace(r#""a":1"#, r#""a": 1"#), false),
            (first.replace(r#""a":1"#, r#""a" :1"#), false),
            (first.replace(r#""user_id""#, r#""user_ie""#), false),
            (first.replace(r#""user_id""#, r#""user_i\u0064""#), false),
            (first.replace(r#""c":"#, r#""cc":"#), false),
            (first.replace("1,", "01,"), false),
            (first.replace("1,", "1x,"), false),
            (first.replace(r#""u""#, "\"a\tb\""), false),
            (first.replace(r#""u""#, r#""u"#), false),
            (format!("{first} "), false),
            (format!(" {first}"), false),
            (first[..first.len() - 1].to_owned(), false),
            (first.replace("}}", r#"},"e":2}"#), false),
            (first.replace(r#","c":["stop"]"#, ""), false),
            (r#"{"a":1}"#.to_owned(), false),
            ("{}".to_owned(), false),
        ];
        for (line, taken) in &cases {
            assert_eq!(template_takes(&scratch, line), *taken, "{line}");
            let fast = line_digest_with(line.as_bytes(), &mut scratch)
                .ok()
                .map(|(digest, _)| digest);
            assert_eq!(fast, definition(line.as_bytes()), "{line}");
            // Each case from the first line's template, not the last case's.
            line_digest_with(first.as_bytes(), &mut scratch).unwrap();
        }
        // Not UTF-8, with the template's keys.
        let mut bytes = first.as_bytes().to_vec();
        let at = first.find(r#""u""#).unwrap() + 1;
        bytes[at] = 0xff;
        assert!(line_digest_with(&bytes, &mut scratch).is_err());
        assert_eq!(definition(&bytes), None);
    }

    /// The link a chained writer writes straight into its line is the JSON of the link
    /// `link_digest` gives, for UUID streams and any other.
    #[test]
    fn a_written_link_is_the_serialized_link() {
        for stream in [
            "01a210c0-750d-7603-9731-49e1657b1f3f",
            "a \"quoted\"\n\u{2028}stream",
            "",
        ] {
            let (mut built, mut written) = (
                ChainState::new(stream.to_owned()),
                ChainState::new(stream.to_owned()),
            );
            for i in 0..3u8 {
                let digest = [i; 32];
                let link = built.link_digest(&digest);
                let mut out = b"x".to_vec();
                let (seq, hash) = written.write_link(&digest, &mut out);
                assert_eq!(out[1..], serde_json::to_vec(&link).unwrap()[..], "{stream}");
                assert_eq!((seq, &hash[..]), (link.seq, link.hash.as_bytes()));
                assert_eq!(
                    (written.next_seq, &written.head),
                    (built.next_seq, &built.head)
                );
            }
        }
    }

    /// Found by the `jsonl_line` fuzz target: the fast path refused a link with a field twice.
    #[test]
    fn a_link_with_a_field_twice_is_refused() {
        // Which `seq` would it be? The definition's map kept the last; a writer writes one.
        let line = r#"{"a":1,"chain":{"stream":"s","seq":0,"seq":1,"prev":"p","hash":"h"}}"#;
        let error = line_digest(line.as_bytes()).unwrap_err().to_string();
        assert!(error.contains("\"seq\" appears twice"), "{error}");
        let not_a_link = r#"{"a":1,"chain":{"stream":"s","seq":"0","prev":"p","hash":"h"}}"#;
        assert!(line_digest(not_a_link.as_bytes()).is_err());
    }

    /// Found by the `jsonl_line` fuzz target: a value nested 127 deep read alone fitted
    /// `serde_json`'s recursion limit, though the line around it did not.
    #[test]
    fn deep_lines_are_read_as_the_definition_reads_them() {
        for depth in [63, 64, 65, 126, 127, 128, 200] {
            let line = format!(r#"{{"a":{}{}}}"#, "[".repeat(depth), "]".repeat(depth));
            let definition = serde_json::from_str::<Value>(&line)
                .ok()
                .map(|v| entry_digest(&v).unwrap());
            let fast = line_digest(line.as_bytes()).ok().map(|(d, _)| d);
            assert_eq!(fast, definition, "nested {depth} deep");
        }
    }

    #[test]
    fn the_word_search_finds_the_first_quote_or_backslash() {
        let naive = |b: &[u8]| b.iter().position(|&c| c == b'"' || c == b'\\');
        let mut text = vec![b'a'; 80];
        assert_eq!(super::quote_or_backslash(&text), None);
        for len in 0..text.len() {
            for at in 0..len {
                for (c, other) in [(b'"', b'\\'), (b'\\', b'"')] {
                    text[at] = c;
                    // Bytes that differ from the ones searched for by one bit, and a later hit.
                    if at + 1 < len {
                        text[at + 1] = other;
                    }
                    if at > 0 {
                        text[at - 1] = c ^ 0x80;
                    }
                    assert_eq!(super::quote_or_backslash(&text[..len]), naive(&text[..len]));
                    text.fill(b'a');
                }
            }
        }
        assert!(super::same_bytes(b"model", b"model"));
        assert!(!super::same_bytes(b"model", b"modem"));
        assert!(!super::same_bytes(b"model", b"models"));
    }

    #[test]
    fn hex_digits_are_the_hex_crates() {
        let bytes: [u8; 32] = std::array::from_fn(|i| (i * 37 + 11) as u8 ^ 0xa5);
        assert_eq!(
            super::hex_digits(&bytes).to_vec(),
            hex::encode(bytes).into_bytes()
        );
        assert_eq!(super::hex32(&[0xff; 32]), "ff".repeat(32));
    }

    #[test]
    fn the_plain_link_reader_agrees_with_serde() {
        let hash = "ab".repeat(32);
        let written = format!(r#"{{"stream":"s-1","seq":12,"prev":"{GENESIS}","hash":"{hash}"}}"#);
        let read = super::plain_link(&written).expect("the writer's form");
        assert_eq!(
            Some(read),
            serde_json::from_str::<LinkRef<'_>>(&written).ok()
        );
        for other in [
            r#"{"stream":"s","seq":0,"prev":"p","hash":"h"}"#,
            r#"{"stream":"s","seq":01,"prev":"p","hash":"h"}"#,
            r#"{"stream":"s","seq":-0,"prev":"p","hash":"h"}"#,
            r#"{"stream":"s","seq":1.0,"prev":"p","hash":"h"}"#,
            r#"{"stream":"s","seq":1e2,"prev":"p","hash":"h"}"#,
            r#"{"stream":"s","seq":18446744073709551616,"prev":"p","hash":"h"}"#,
            r#"{"stream":"s","seq":18446744073709551615,"prev":"p","hash":"h"}"#,
            r#"{"stream":"s\u0041","seq":1,"prev":"p","hash":"h"}"#,
            r#"{"stream":"s","seq":1,"prev":"p","hash":"h","x":1}"#,
            r#"{"stream":"s","seq":1,"prev":"p","hash":"h" }"#,
            r#"{"stream":"s","seq":1,"prev":"p","hash":"h"}}"#,
            r#"{"stream":"s","seq":1,"prev":"p","hash":"h"#,
            "{\"stream\":\"s\t\",\"seq\":1,\"prev\":\"p\",\"hash\":\"h\"}",
        ] {
            let serde = serde_json::from_str::<LinkRef<'_>>(other).ok();
            if let Some(plain) = super::plain_link(other) {
                assert_eq!(Some(plain), serde, "{other}");
            }
        }
        assert!(super::plain_link(r#"{"stream":"s","seq":7,"prev":"p","hash":"h"}"#).is_some());
    }

    #[test]
    fn the_scanner_refuses_what_it_cannot_read() {
        for bad in [
            r#"{"a":tru}"#,
            r#"{"a":1"#,
            r#"{"a" 1}"#,
            r#"["a"]"#,
            r#"{"a":"x"} x"#,
            r#"{"\u0061":1}"#,
        ] {
            assert!(
                scan_members(bad.as_bytes(), &mut Vec::new()).is_none(),
                "{bad}"
            );
        }
        assert!(line_digest(br#"{"a":tru}"#).is_err());
        // Keys with escapes go the slow way, which refuses them: the digest would decode the
        // key (`"erase\u0064"` becomes `erased`) where no writer writes one.
        for line in [r#"{"\u0061":1}"#, r#"{"erase\u0064":{}}"#] {
            let error = line_digest(line.as_bytes()).unwrap_err().to_string();
            assert!(error.contains("written with an escape"), "{line}: {error}");
        }
        // Nor anything but an object at the top.
        for line in [r#"["a"]"#, "1", "null", r#""x""#] {
            let error = line_digest(line.as_bytes()).unwrap_err().to_string();
            assert!(error.contains("expected a JSON object"), "{line}: {error}");
        }
    }

    /// A key twice at any depth: the digest keeps the last, a reader refuses the entry or reads
    /// the first. Refused on the fast path and the slow one alike, however the value is written.
    #[test]
    fn a_key_twice_at_any_depth_is_refused() {
        for line in [
            r#"{"a":1,"input_content":{"kind":"plaintext","text":"x","text":"x"}}"#,
            r#"{"a":1,"metadata":{"k":{"j":1,"j":1}}}"#,
            r#"{"a":1,"metadata":{"k":[{"j":1,"\u006a":2}]}}"#,
            r#"{"a":1,"user_id":"u","sanitization":{"email":1,"email":1}}"#,
            r#"{"a":1,"chain":{"stream":"s","seq":0,"prev":"p","hash":"h","hash":"h"}}"#,
            // Found by the fuzz target: a key twice among members a link does not have.
            r#"{"a":1,"chain":{"stream":"s","seq":0,"prev":"p","hash":"h","x":1,"x":1}}"#,
        ] {
            let error = line_digest(line.as_bytes()).unwrap_err().to_string();
            assert!(error.contains("appears twice"), "{line}: {error}");
            // Also once the template of an honest line with the same keys is set.
            let honest = line.replace(r#","text":"x","text":"x""#, r#","text":"x""#);
            let _ = line_digest(honest.as_bytes());
            assert!(line_digest(line.as_bytes()).is_err(), "{line}");
        }
        // Equal values under different keys, and the same key in two objects, are fine.
        line_digest(br#"{"a":{"k":1},"b":{"k":1},"metadata":{"x":{"k":1},"y":[{"k":1},{"k":1}]}}"#)
            .unwrap();
    }

    #[test]
    fn erasing_a_member_keeps_the_digest() {
        let entry: Value = serde_json::json!({"user_id": "alice", "error_message": null, "latency_ms": 5, "metadata": {"b": 1, "a": [true, "x"]}});
        let before = entry_digest(&entry).unwrap();
        let mut erased = entry.clone();
        assert!(erase_member(&mut erased, "user_id", Some("anon-1".into())).unwrap());
        assert!(erase_member(&mut erased, "metadata", None).unwrap());
        assert!(
            !erase_member(&mut erased, "error_message", None).unwrap(),
            "null stays"
        );
        assert!(
            !erase_member(&mut erased, "metadata", None).unwrap(),
            "already erased"
        );
        assert_eq!(erased["user_id"], "anon-1");
        assert!(erased["erased"]["digests"]["metadata"].is_string());
        assert!(erased.get("metadata").is_none());
        assert_eq!(entry_digest(&erased).unwrap(), before);
        // The fast path agrees, and a pseudonym replaced again keeps the first digest.
        let line = serde_json::to_vec(&erased).unwrap();
        assert_eq!(line_digest(&line).unwrap().0, before);
        assert!(erase_member(&mut erased, "user_id", Some("anon-2".into())).unwrap());
        assert_eq!(entry_digest(&erased).unwrap(), before);
        // Only erasable members; and a changed digest in `erased` shows.
        assert!(matches!(
            erase_member(&mut erased, "latency_ms", None),
            Err(ChainError::NotErasable(_))
        ));
        erased["erased"]["digests"]["user_id"] = "sha256:00".into();
        assert_ne!(entry_digest(&erased).unwrap(), before);
        let mut changed = entry.clone();
        changed["latency_ms"] = 6.into();
        assert_ne!(entry_digest(&changed).unwrap(), before);
    }

    #[test]
    fn an_erasure_is_signed_and_a_forged_one_fails() {
        let key = SigningKey::generate().unwrap();
        let public = key.verifying_key();
        let original: Value = serde_json::json!({
            "user_id": "alice", "input_hash": "hmac-sha256:aa", "latency_ms": 5,
            "chain": {"stream": "s", "seq": 3, "prev": "p", "hash": "h"}
        });
        let mut entry = original.clone();
        erase_member(&mut entry, "user_id", Some("pseudonym:1".into())).unwrap();
        erase_member(&mut entry, "input_hash", None).unwrap();
        assert!(
            verify_erasure(&entry, &link("s", 3, "h"), &public).is_err(),
            "unsigned"
        );
        sign_erasure(&mut entry, &key, "2026-11-24T00:00:00Z").unwrap();
        verify_erasure(&entry, &link("s", 3, "h"), &public).unwrap();
        assert_eq!(
            entry_digest(&entry).unwrap(),
            entry_digest(&original).unwrap()
        );
        // Bound to its entry: another seq or hash fails.
        assert!(verify_erasure(&entry, &link("s", 4, "h"), &public).is_err());
        assert!(verify_erasure(&entry, &link("s", 3, "g"), &public).is_err());
        // What the members hold since is signed: a changed pseudonym or a value put back fails.
        let mut changed = entry.clone();
        changed["user_id"] = "pseudonym:2".into();
        assert!(verify_erasure(&changed, &link("s", 3, "h"), &public).is_err());
        let mut put_back = entry.clone();
        put_back["input_hash"] = "hmac-sha256:bb".into();
        assert!(verify_erasure(&put_back, &link("s", 3, "h"), &public).is_err());
        // Someone without the key hides a change behind a digest of the old value: fails.
        let mut forged = original.clone();
        forged["erased"] = serde_json::json!({
            "digests": {"user_id": erasable_digest(&original["user_id"])},
            "time": "t", "key_id": public.key_id(), "signature": "00".repeat(64),
        });
        forged["user_id"] = "mallory".into();
        assert_eq!(
            entry_digest(&forged).unwrap(),
            entry_digest(&original).unwrap()
        );
        assert!(verify_erasure(&forged, &link("s", 3, "h"), &public).is_err());
        // Another key's signature names that key.
        let other = SigningKey::generate().unwrap();
        let mut theirs = original.clone();
        erase_member(&mut theirs, "user_id", None).unwrap();
        sign_erasure(&mut theirs, &other, "t").unwrap();
        let err = verify_erasure(&theirs, &link("s", 3, "h"), &public).unwrap_err();
        assert!(err.contains(other.verifying_key().key_id()), "{err}");
        // A member the chain covers by value still changes the digest, erased or not.
        let mut changed = entry.clone();
        changed["latency_ms"] = 6.into();
        assert_ne!(
            entry_digest(&changed).unwrap(),
            entry_digest(&original).unwrap()
        );
    }

    #[test]
    fn keys_never_show() {
        let key = SigningKey::generate().unwrap();
        let secret = key.to_secret_text();
        let hex_seed = secret.split_whitespace().nth(1).unwrap().to_owned();
        assert!(!format!("{key:?}").contains(&hex_seed));
        let err = SigningKey::parse(&format!("{SECRET_TAG} {}zz", &hex_seed[..62]))
            .unwrap_err()
            .to_string();
        assert!(!err.contains(&hex_seed[..62]), "{err}");
        assert_eq!(SigningKey::parse(&secret).unwrap().key_id(), key.key_id());
        let public = VerifyingKey::parse(&key.verifying_key().to_public_text()).unwrap();
        assert_eq!(public, key.verifying_key());
    }
}
