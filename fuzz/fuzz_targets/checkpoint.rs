//! Checkpoints, tombstones and key files, as `llm-audit verify` reads them.
//!
//! - A checkpoint or tombstone that parses writes back to JSON that parses to the same value,
//!   and verifies (or not) the same after the trip.
//! - Its signed text has one line per field (the format of `chain`'s docs) when no field holds a
//!   line break, and reads back to the same fields.
//! - Signed with the test key, it verifies; with any signed field changed, or under another key,
//!   it does not. A tombstone whose `first` is past its `last` never verifies.
//! - A key file that parses writes back to a file that parses to the same key.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use tracing_llm_audit::chain::{Checkpoint, SigningKey, Tombstone, VerifyingKey, Witness};

/// The known-answer tests' key (`tests/fixtures/chain/kat.json`), so that the seeds verify.
static KEY: LazyLock<SigningKey> = LazyLock::new(|| {
    SigningKey::parse(
        "llm-audit-ed25519-secret-v1 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
    )
    .expect("the test key parses")
});

static OTHER: LazyLock<VerifyingKey> = LazyLock::new(|| {
    SigningKey::parse(&format!("llm-audit-ed25519-secret-v1 {}", "42".repeat(32)))
        .expect("a key parses")
        .verifying_key()
});

/// What checkpoints and tombstones have in common: a signed text of one line per field.
trait Signed:
    Clone + std::fmt::Debug + PartialEq + serde::Serialize + serde::de::DeserializeOwned
{
    /// The signed text's first line.
    fn version(&self) -> &'static str;
    /// The fields in the signed text's order, as written there.
    fn fields(&self) -> Vec<String>;
    /// Whether a field that is text breaks a line (and so the one-line-per-field reading).
    fn breaks_lines(&self) -> bool;
    fn signed_text(&self) -> String;
    fn sign(&mut self);
    fn verify(&self, key: &VerifyingKey) -> bool;
    /// Whether a correctly signed one verifies.
    fn valid(&self) -> bool;
    /// Changes to signed fields, each of which must break the signature.
    fn changes() -> Vec<fn(&mut Self)>;
}

fn breaks(fields: &[&str]) -> bool {
    fields.iter().any(|f| f.contains(['\n', '\r']))
}

fn flip_signature(signature: &mut String) {
    let other = if signature.starts_with("00") {
        "01"
    } else {
        "00"
    };
    signature.replace_range(..2, other);
}

impl Signed for Checkpoint {
    /// Format v2 when it witnesses other streams.
    fn version(&self) -> &'static str {
        if self.witness.is_empty() {
            "llm-audit-checkpoint-v1"
        } else {
            "llm-audit-checkpoint-v2"
        }
    }
    fn fields(&self) -> Vec<String> {
        let last = if self.last { "final" } else { "open" };
        let mut fields = vec![
            self.stream.clone(),
            self.index.to_string(),
            self.seq.to_string(),
            self.head.clone(),
            self.time.clone(),
            self.key_id.clone(),
            last.to_owned(),
        ];
        // Each witness one more line: its compact JSON array (escaped, so one line).
        fields.extend(self.witness.iter().map(|w| {
            serde_json::to_string(&(&w.stream, w.index, w.seq, &w.head, w.last))
                .expect("a witness serializes")
        }));
        fields
    }
    fn breaks_lines(&self) -> bool {
        breaks(&[&self.stream, &self.head, &self.time, &self.key_id])
    }
    fn signed_text(&self) -> String {
        Checkpoint::signed_text(self)
    }
    fn sign(&mut self) {
        KEY.sign(self);
    }
    fn verify(&self, key: &VerifyingKey) -> bool {
        Checkpoint::verify(self, key)
    }
    fn valid(&self) -> bool {
        true
    }
    fn changes() -> Vec<fn(&mut Self)> {
        vec![
            |c| c.stream.push('x'),
            |c| c.index = c.index.wrapping_add(1),
            |c| c.seq = c.seq.wrapping_add(1),
            |c| c.head.push('0'),
            |c| c.time.push('Z'),
            |c| c.last = !c.last,
            |c| flip_signature(&mut c.signature),
            // A witness added, or one changed: format v1 becomes v2, or v2 another text.
            |c| {
                c.witness.push(Witness {
                    stream: "w".into(),
                    index: 0,
                    seq: 0,
                    head: "00".into(),
                    last: false,
                })
            },
            |c| {
                if let Some(w) = c.witness.first_mut() {
                    w.seq = w.seq.wrapping_add(1);
                } else {
                    c.stream.push('w');
                }
            },
        ]
    }
}

impl Signed for Tombstone {
    fn version(&self) -> &'static str {
        "llm-audit-tombstone-v1"
    }
    fn fields(&self) -> Vec<String> {
        vec![
            self.stream.clone(),
            self.first.to_string(),
            self.last.to_string(),
            self.prev.clone(),
            self.last_hash.clone(),
            self.reason.clone(),
            self.time.clone(),
            self.key_id.clone(),
        ]
    }
    fn breaks_lines(&self) -> bool {
        breaks(&[
            &self.stream,
            &self.prev,
            &self.last_hash,
            &self.reason,
            &self.time,
            &self.key_id,
        ])
    }
    fn signed_text(&self) -> String {
        Tombstone::signed_text(self)
    }
    fn sign(&mut self) {
        KEY.sign_tombstone(self);
    }
    fn verify(&self, key: &VerifyingKey) -> bool {
        Tombstone::verify(self, key)
    }
    fn valid(&self) -> bool {
        self.first <= self.last
    }
    fn changes() -> Vec<fn(&mut Self)> {
        vec![
            |t| t.stream.push('x'),
            |t| t.last = t.last.wrapping_add(1),
            |t| t.prev.push('0'),
            |t| t.reason.push('.'),
            |t| flip_signature(&mut t.signature),
        ]
    }
}

fn check<T: Signed>(mut value: T) {
    let key = KEY.verifying_key();
    let json = serde_json::to_string(&value).expect("it serializes");
    let back: T = serde_json::from_str(&json).expect("what was written reads back");
    assert_eq!(back, value);
    assert_eq!(back.verify(&key), value.verify(&key));

    if !value.breaks_lines() {
        let text = value.signed_text();
        let mut lines = text.split('\n');
        assert_eq!(lines.next(), Some(value.version()));
        assert_eq!(lines.map(str::to_owned).collect::<Vec<_>>(), value.fields());
    }

    value.sign();
    assert_eq!(value.verify(&key), value.valid(), "signed: {value:?}");
    assert!(
        !value.verify(&OTHER),
        "verifies under another key: {value:?}"
    );
    for change in T::changes() {
        let mut changed = value.clone();
        change(&mut changed);
        assert!(
            !changed.verify(&key),
            "changed, still verifies: {changed:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(checkpoint) = serde_json::from_slice::<Checkpoint>(data) {
        check(checkpoint);
    }
    if let Ok(tombstone) = serde_json::from_slice::<Tombstone>(data) {
        check(tombstone);
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(secret) = SigningKey::parse(text) {
        let again = SigningKey::parse(&secret.to_secret_text()).expect("a written key reads back");
        assert_eq!(again.verifying_key(), secret.verifying_key());
    }
    if let Ok(public) = VerifyingKey::parse(text) {
        let again =
            VerifyingKey::parse(&public.to_public_text()).expect("a written key reads back");
        assert_eq!(again, public);
        assert_eq!(again.key_id().len(), 16);
    }
});
