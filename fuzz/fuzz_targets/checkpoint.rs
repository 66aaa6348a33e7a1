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
use tracing_llm_audit::chain::{Checkpoint, SigningKey, Tombstone, VerifyingKey};

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

/// The signed text's lines after the version line, when no field breaks a line.
fn signed_lines(text: &str, version: &str, fields: &[&str]) -> Option<Vec<String>> {
    if fields.iter().any(|f| f.contains(['\n', '\r'])) {
        return None;
    }
    let mut lines = text.split('\n');
    assert_eq!(lines.next(), Some(version));
    Some(lines.map(str::to_owned).collect())
}

fn checkpoint(mut cp: Checkpoint) {
    let key = KEY.verifying_key();
    let json = serde_json::to_string(&cp).expect("a checkpoint serializes");
    let back: Checkpoint = serde_json::from_str(&json).expect("a written checkpoint reads back");
    assert_eq!(back, cp);
    assert_eq!(back.verify(&key), cp.verify(&key));

    let text = cp.signed_text();
    let strings = [&*cp.stream, &*cp.head, &*cp.time, &*cp.key_id];
    if let Some(lines) = signed_lines(&text, "llm-audit-checkpoint-v1", &strings) {
        let last = if cp.last { "final" } else { "open" };
        let expected = [
            cp.stream.clone(),
            cp.index.to_string(),
            cp.seq.to_string(),
            cp.head.clone(),
            cp.time.clone(),
            cp.key_id.clone(),
            last.to_owned(),
        ];
        assert_eq!(lines, expected);
    }

    KEY.sign(&mut cp);
    assert!(cp.verify(&key), "a signed checkpoint does not verify");
    assert!(
        !cp.verify(&OTHER),
        "a checkpoint verifies under another key"
    );
    let changes: [fn(&mut Checkpoint); 7] = [
        |c| c.stream.push('x'),
        |c| c.index = c.index.wrapping_add(1),
        |c| c.seq = c.seq.wrapping_add(1),
        |c| c.head.push('0'),
        |c| c.time.push('Z'),
        |c| c.last = !c.last,
        |c| {
            c.signature.replace_range(
                ..2,
                if c.signature.starts_with("00") {
                    "01"
                } else {
                    "00"
                },
            )
        },
    ];
    for change in changes {
        let mut changed = cp.clone();
        change(&mut changed);
        assert!(
            !changed.verify(&key),
            "a changed checkpoint verifies: {changed:?}"
        );
    }
}

fn tombstone(mut ts: Tombstone) {
    let key = KEY.verifying_key();
    let json = serde_json::to_string(&ts).expect("a tombstone serializes");
    let back: Tombstone = serde_json::from_str(&json).expect("a written tombstone reads back");
    assert_eq!(back, ts);
    assert_eq!(back.verify(&key), ts.verify(&key));

    let text = ts.signed_text();
    let strings = [
        &*ts.stream,
        &*ts.prev,
        &*ts.last_hash,
        &*ts.reason,
        &*ts.time,
        &*ts.key_id,
    ];
    if let Some(lines) = signed_lines(&text, "llm-audit-tombstone-v1", &strings) {
        let expected = [
            ts.stream.clone(),
            ts.first.to_string(),
            ts.last.to_string(),
            ts.prev.clone(),
            ts.last_hash.clone(),
            ts.reason.clone(),
            ts.time.clone(),
            ts.key_id.clone(),
        ];
        assert_eq!(lines, expected);
    }

    KEY.sign_tombstone(&mut ts);
    assert_eq!(
        ts.verify(&key),
        ts.first <= ts.last,
        "a signed tombstone: {ts:?}"
    );
    assert!(!ts.verify(&OTHER), "a tombstone verifies under another key");
    let changes: [fn(&mut Tombstone); 5] = [
        |t| t.stream.push('x'),
        |t| t.last = t.last.wrapping_add(1),
        |t| t.prev.push('0'),
        |t| t.reason.push('.'),
        |t| {
            t.signature.replace_range(
                ..2,
                if t.signature.starts_with("00") {
                    "01"
                } else {
                    "00"
                },
            )
        },
    ];
    for change in changes {
        let mut changed = ts.clone();
        change(&mut changed);
        assert!(
            !changed.verify(&key),
            "a changed tombstone verifies: {changed:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(cp) = serde_json::from_slice::<Checkpoint>(data) {
        checkpoint(cp);
    }
    if let Ok(ts) = serde_json::from_slice::<Tombstone>(data) {
        tombstone(ts);
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
