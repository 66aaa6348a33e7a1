//! Content policies through the public API: encrypted content round-trips and is bound to its
//! entry and field; nonces never repeat; under `HashOnly` no byte of the content reaches a sink.

use std::collections::HashSet;
use std::time::Duration;

use tracing::subscriber::with_default;
use tracing_llm_audit::content::{
    ContentError, ContentField, ContentPolicies, ContentPolicy, Keyring, StoredContent,
};
use tracing_llm_audit::{AuditEntry, AuditLayer, HashKey, JsonlSink, LlmSpanExt, MemorySink};
use tracing_subscriber::layer::SubscriberExt;

const SYSTEM: &[u8] = b"You are CANARY-SYSTEM-7f3a, a helpful assistant.";
const INPUT: &[u8] = b"My IBAN is CANARY-INPUT-91c2, what is my balance?";
const OUTPUT: &[u8] = b"Your balance is CANARY-OUTPUT-55e0.";

fn key() -> HashKey {
    HashKey::new("test-key", [9u8; 32]).unwrap()
}

/// One call recorded under `policies`, through a memory sink and, if given, a JSONL directory.
fn call(
    policies: ContentPolicies,
    keyring: Option<Keyring>,
    dir: Option<&std::path::Path>,
) -> Vec<AuditEntry> {
    let sink = MemorySink::new();
    let mut builder = AuditLayer::builder()
        .with_sink(sink.clone())
        .with_hash_key(key())
        .with_content_policy(policies);
    if let Some(keyring) = keyring {
        builder = builder.with_keyring(keyring);
    }
    if let Some(dir) = dir {
        builder = builder.with_sink(JsonlSink::new(dir).unwrap());
    }
    let (layer, guard) = builder.build().unwrap();
    with_default(tracing_subscriber::registry().with(layer), || {
        for _ in 0..2 {
            let span = tracing_llm_audit::llm_span!(provider = "openai", model = "gpt-4o");
            span.record_system_prompt(SYSTEM);
            span.record_input(INPUT);
            span.record_output(OUTPUT);
        }
    });
    let stats = guard.shutdown(Duration::from_secs(10)).unwrap();
    assert!(stats.is_lossless(), "{stats:?}");
    sink.entries()
}

fn encrypted() -> ContentPolicies {
    ContentPolicies {
        system_prompt: ContentPolicy::HashOnly,
        input: ContentPolicy::Encrypted,
        output: ContentPolicy::Encrypted,
    }
}

#[test]
fn encrypted_content_round_trips_beside_its_hash() {
    let keyring = Keyring::new("content-1", [3u8; 32]).unwrap();
    let entries = call(encrypted(), Some(keyring.clone()), None);
    let entry = &entries[0];
    let input = entry.input_content.as_ref().expect("input kept");
    let output = entry.output_content.as_ref().expect("output kept");
    assert!(
        matches!(input, StoredContent::Encrypted { key_id, .. } if key_id == "content-1"),
        "{input:?}"
    );
    assert_eq!(
        keyring
            .decrypt(&entry.request_id, ContentField::Input, input)
            .unwrap(),
        INPUT
    );
    assert_eq!(
        keyring
            .decrypt(&entry.request_id, ContentField::Output, output)
            .unwrap(),
        OUTPUT
    );
    // The hashes stay, for matching without the key.
    assert_eq!(entry.input_hash, Some(key().hash(INPUT)));
    assert_eq!(entry.system_prompt_hash, Some(key().hash(SYSTEM)));
    assert_eq!(
        entry.system_prompt_content, None,
        "HashOnly keeps no content"
    );
    // Two encryptions of the same content use different nonces.
    let nonce = |e: &AuditEntry| match &e.input_content {
        Some(StoredContent::Encrypted { nonce, .. }) => nonce.clone(),
        other => panic!("encrypted: {other:?}"),
    };
    assert_ne!(nonce(&entries[0]), nonce(&entries[1]));
}

#[test]
fn a_wrong_key_a_changed_or_a_moved_ciphertext_does_not_decrypt() {
    let keyring = Keyring::new("content-1", [3u8; 32]).unwrap();
    let entries = call(encrypted(), Some(keyring.clone()), None);
    let (a, b) = (&entries[0], &entries[1]);
    let sealed = a.input_content.clone().unwrap();

    let impostor = Keyring::new("content-1", [4u8; 32]).unwrap();
    assert!(matches!(
        impostor.decrypt(&a.request_id, ContentField::Input, &sealed),
        Err(ContentError::Decrypt { .. })
    ));

    let StoredContent::Encrypted {
        alg,
        key_id,
        nonce,
        ciphertext,
    } = sealed.clone()
    else {
        panic!("encrypted")
    };
    // One changed character of the ciphertext (still base64).
    let mut changed = ciphertext.into_bytes();
    changed[5] = if changed[5] == b'A' { b'B' } else { b'A' };
    let changed = StoredContent::Encrypted {
        alg,
        key_id,
        nonce,
        ciphertext: String::from_utf8(changed).unwrap(),
    };
    assert!(keyring
        .decrypt(&a.request_id, ContentField::Input, &changed)
        .is_err());

    // Moved to another entry, or to another field of its own.
    let moved = keyring.decrypt(&b.request_id, ContentField::Input, &sealed);
    let message = moved.unwrap_err().to_string();
    assert!(message.contains(&b.request_id.to_string()), "{message}");
    assert!(keyring
        .decrypt(&a.request_id, ContentField::Output, &sealed)
        .is_err());

    // A keyring without the key says which key it lacks.
    let other = Keyring::new("content-2", [3u8; 32]).unwrap();
    assert!(matches!(
        other.decrypt(&a.request_id, ContentField::Input, &sealed),
        Err(ContentError::UnknownKey(id)) if id == "content-1"
    ));
}

#[test]
fn rotated_keys_encrypt_new_content_and_still_decrypt_the_old() {
    let mut keyring = Keyring::new("content-1", [3u8; 32]).unwrap();
    let old = call(encrypted(), Some(keyring.clone()), None);
    keyring.rotate("content-2").unwrap();
    let new = call(encrypted(), Some(keyring.clone()), None);
    let key_of = |e: &AuditEntry| match e.input_content.as_ref().unwrap() {
        StoredContent::Encrypted { key_id, .. } => key_id.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(key_of(&old[0]), "content-1");
    assert_eq!(key_of(&new[0]), "content-2");
    for e in old.iter().chain(&new) {
        let text = keyring
            .decrypt(
                &e.request_id,
                ContentField::Input,
                e.input_content.as_ref().unwrap(),
            )
            .unwrap();
        assert_eq!(text, INPUT);
    }
}

#[test]
fn no_nonce_repeats_in_a_million_encryptions() {
    // On every core at once, as a busy application would encrypt: the nonces come from the
    // operating system's generator, not from a counter one thread could keep.
    const TOTAL: usize = 1_000_000;
    let keyring = std::sync::Arc::new(Keyring::new("content-1", [3u8; 32]).unwrap());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(8));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let keyring = keyring.clone();
            std::thread::spawn(move || {
                let id = uuid::Uuid::now_v7();
                let share = TOTAL / threads + usize::from(t < TOTAL % threads);
                (0..share)
                    .map(|_| {
                        let StoredContent::Encrypted { nonce, .. } =
                            keyring.encrypt(&id, ContentField::Input, b"x").unwrap()
                        else {
                            panic!("encrypted")
                        };
                        nonce
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut nonces = HashSet::with_capacity(TOTAL);
    for worker in workers {
        for nonce in worker.join().unwrap() {
            assert!(nonces.insert(nonce), "a nonce repeated");
        }
    }
    assert_eq!(nonces.len(), TOTAL);
}

fn files_text(dir: &std::path::Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        text.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    text
}

#[test]
fn hash_only_keeps_no_byte_of_the_content_in_any_sink() {
    let canaries = [
        "CANARY-SYSTEM-7f3a",
        "CANARY-INPUT-91c2",
        "CANARY-OUTPUT-55e0",
    ];
    let dir = tempfile::tempdir().unwrap();
    let entries = call(ContentPolicies::default(), None, Some(dir.path()));
    let written = files_text(dir.path());
    let remembered = format!("{entries:?}{}", serde_json::to_string(&entries).unwrap());
    for canary in canaries {
        assert!(!written.contains(canary), "{canary} in the JSONL files");
        assert!(!remembered.contains(canary), "{canary} in the entries");
    }
    assert!(written.contains("hmac-sha256:"), "the hashes are there");

    // The search finds the canaries when a policy does keep the content: it can fail.
    let plain = tempfile::tempdir().unwrap();
    call(
        ContentPolicies::all(ContentPolicy::PlaintextUnprotected),
        None,
        Some(plain.path()),
    );
    let written = files_text(plain.path());
    for canary in canaries {
        assert!(written.contains(canary), "{canary} kept in plain text");
    }

    // Encrypted: nothing readable either.
    let sealed = tempfile::tempdir().unwrap();
    call(
        ContentPolicies::all(ContentPolicy::Encrypted),
        Some(Keyring::new("k", [5u8; 32]).unwrap()),
        Some(sealed.path()),
    );
    let written = files_text(sealed.path());
    for canary in canaries {
        assert!(!written.contains(canary), "{canary} in the encrypted files");
    }
}

#[test]
fn drop_keeps_not_even_the_hash() {
    let entries = call(ContentPolicies::all(ContentPolicy::Drop), None, None);
    let e = &entries[0];
    assert_eq!(
        (&e.input_hash, &e.output_hash, &e.system_prompt_hash),
        (&None, &None, &None)
    );
    assert_eq!(e.hash_key_id, None);
    assert_eq!(e.input_content, None);
}

#[test]
fn encrypting_needs_a_keyring_and_plaintext_warns() {
    let error = AuditLayer::builder()
        .with_sink(MemorySink::new())
        .with_hash_key(key())
        .with_content_policy(encrypted())
        .build()
        .unwrap_err()
        .to_string();
    assert!(error.contains("keyring"), "{error}");

    let printed = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let writer = printed.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || SharedBuf(writer.clone()))
        .with_ansi(false)
        .finish();
    let built = with_default(subscriber, || {
        AuditLayer::builder()
            .with_sink(MemorySink::new())
            .with_hash_key(key())
            .with_content_policy(ContentPolicies {
                output: ContentPolicy::PlaintextUnprotected,
                ..ContentPolicies::default()
            })
            .build()
    });
    let (_layer, guard) = built.unwrap();
    guard.shutdown(Duration::from_secs(5)).unwrap();
    let printed = String::from_utf8(printed.lock().unwrap().clone()).unwrap();
    assert!(printed.contains("WARN"), "{printed}");
    assert!(printed.contains("plain text"), "{printed}");
    assert!(printed.contains("output"), "names the field: {printed}");
}

struct SharedBuf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn hipaa_retention_refuses_a_content_policy_that_stores_content() {
    use tracing_llm_audit::RetentionPolicy;
    let build = |policies: ContentPolicies| {
        AuditLayer::builder()
            .with_sink(MemorySink::new())
            .with_hash_key(key())
            .with_keyring(Keyring::new("content-1", [3u8; 32]).unwrap())
            .with_retention(RetentionPolicy::hipaa())
            .with_content_policy(policies)
            .build()
    };
    for stored in [
        ContentPolicy::Encrypted,
        ContentPolicy::PlaintextUnprotected,
    ] {
        let Err(err) = build(ContentPolicies {
            output: stored,
            ..ContentPolicies::default()
        }) else {
            panic!("{stored:?} under hipaa must be refused")
        };
        let text = err.to_string();
        assert!(
            text.contains("hipaa") && text.contains("output") && text.contains("never stores"),
            "{text}"
        );
    }
    // Hashes only, or nothing: fine under HIPAA; and the standard policy allows content.
    assert!(build(ContentPolicies::all(ContentPolicy::Drop)).is_ok());
    assert!(build(ContentPolicies::default()).is_ok());
    assert!(AuditLayer::builder()
        .with_sink(MemorySink::new())
        .with_hash_key(key())
        .with_keyring(Keyring::new("content-1", [3u8; 32]).unwrap())
        .with_retention(RetentionPolicy::standard())
        .with_content_policy(ContentPolicies::all(ContentPolicy::Encrypted))
        .build()
        .is_ok());
}
