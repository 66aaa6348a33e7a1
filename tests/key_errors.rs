//! Every error of the key APIs (`HashKey`, `SigningKey` and `VerifyingKey`, `Keyring`, and the
//! builder's key errors) says what is wrong and where (the variable, the file), as one sentence;
//! `Debug` is that sentence too, since a `main` that returns the error with `?` prints `Debug`
//! (it used to print `SecretTooShort(2)`).
//!
//! The environment variable `LLM_AUDIT_HASH_KEY` is read by `HashKey::from_env` and by every
//! builder without a key: the one test that sets it is the only one here that reads it.

use std::path::Path;

use tracing_llm_audit::content::{ContentError, ContentField};
use tracing_llm_audit::{
    AuditLayer, BuildError, ContentPolicies, ContentPolicy, HashKey, HashKeyError, Keyring,
    SigningKey, StdoutSink, VerifyingKey,
};

/// The sentence, from `Display` and from `Debug` alike.
fn said(error: &impl std::fmt::Debug, display: String) -> String {
    assert_eq!(format!("{error:?}"), display, "Debug is the sentence too");
    display
}

fn hash(error: HashKeyError) -> String {
    let text = error.to_string();
    said(&error, text)
}

fn content(error: ContentError) -> String {
    let text = error.to_string();
    said(&error, text)
}

fn chain(error: tracing_llm_audit::chain::ChainError) -> String {
    let text = error.to_string();
    said(&error, text)
}

fn build(error: BuildError) -> String {
    let text = error.to_string();
    said(&error, text)
}

const NOT_SIGNING: &str = "not an llm-audit signing key (expected \
    `llm-audit-ed25519-secret-v1 <64 hex digits>`, as `llm-audit keygen` writes to PREFIX.key)";
const NOT_PUBLIC: &str = "not an llm-audit public key (expected \
    `llm-audit-ed25519-public-v1 <64 hex digits>`, as `llm-audit keygen` writes to PREFIX.pub)";
const NOT_KEYRING: &str = "not a keyring: the first line must be llm-audit-keyring-v1 \
    (`llm-audit keygen --keyring FILE` makes one)";

fn missing(path: &Path) -> String {
    let os = std::fs::read(path).unwrap_err();
    format!("{}: {os}", path.display())
}

#[test]
fn hash_key_errors_name_the_problem() {
    assert_eq!(
        hash(HashKey::new("has space", [0; 32]).unwrap_err()),
        "invalid hash key id \"has space\": use 1 to 64 characters from [A-Za-z0-9._-]"
    );
    assert_eq!(
        hash(HashKey::new("k", [0; 2]).unwrap_err()),
        "the hash key's secret is 2 bytes long; at least 32 bytes (64 hex digits) are required"
    );
    assert_eq!(
        hash(HashKey::parse("nocolon").unwrap_err()),
        "a hash key is written `<key id>:<secret as hex>`, for example `prod-1:` followed by 64 \
         hex digits; no `:` found"
    );
    assert_eq!(
        hash(HashKey::parse("prod-1:zz").unwrap_err()),
        "a hash key is written `<key id>:<secret as hex>`, for example `prod-1:` followed by 64 \
         hex digits; the part after `:` is not an even number of hex digits"
    );
}

/// `HashKey::from_env` and the builder, which reads the variable when no key is given: every
/// case in one test, since the variable is the process's.
#[test]
fn the_hash_key_variable_is_named_in_every_error() {
    let builder = || {
        AuditLayer::builder()
            .with_sink(StdoutSink::new())
            .build()
            .map(|_| ())
            .unwrap_err()
    };
    let too_short = "LLM_AUDIT_HASH_KEY is invalid: the hash key's secret is 2 bytes long; at \
                     least 32 bytes (64 hex digits) are required (`llm-audit keygen --hash-key` \
                     makes a valid value)";

    std::env::set_var("LLM_AUDIT_HASH_KEY", "prod-1:abcd");
    assert_eq!(hash(HashKey::from_env().unwrap_err()), too_short);
    assert_eq!(build(builder()), too_short);
    std::env::set_var("LLM_AUDIT_HASH_KEY", "prod-1");
    assert_eq!(
        hash(HashKey::from_env().unwrap_err()),
        "LLM_AUDIT_HASH_KEY is invalid: a hash key is written `<key id>:<secret as hex>`, for \
         example `prod-1:` followed by 64 hex digits; no `:` found (`llm-audit keygen \
         --hash-key` makes a valid value)"
    );
    let secret = "ab".repeat(32);
    std::env::set_var("LLM_AUDIT_HASH_KEY", format!("no space:{secret}"));
    let bad_id = hash(HashKey::from_env().unwrap_err());
    assert_eq!(
        bad_id,
        "LLM_AUDIT_HASH_KEY is invalid: invalid hash key id \"no space\": use 1 to 64 characters \
         from [A-Za-z0-9._-] (`llm-audit keygen --hash-key` makes a valid value)"
    );
    assert!(!bad_id.contains(&secret));

    std::env::remove_var("LLM_AUDIT_HASH_KEY");
    assert!(HashKey::from_env().unwrap().is_none());
    assert_eq!(
        build(builder()),
        "no hash key configured: set LLM_AUDIT_HASH_KEY=<key id>:<secret as hex> (`llm-audit \
         keygen --hash-key` makes one), pass one with .with_hash_key(HashKey::new(id, secret)?), \
         or opt in to a throwaway key with .with_ephemeral_hash_key() (its hashes cannot be \
         correlated across restarts)"
    );
}

#[test]
fn the_builder_says_which_keyring_is_missing() {
    let error = AuditLayer::builder()
        .with_sink(StdoutSink::new())
        .with_hash_key(HashKey::new("k", [1; 32]).unwrap())
        .with_content_policy(ContentPolicies::all(ContentPolicy::Encrypted))
        .build()
        .map(|_| ())
        .unwrap_err();
    assert_eq!(
        build(error),
        "the content policy encrypts content, but no keyring was given: add \
         .with_keyring(Keyring::from_file(..)?) (make one with `llm-audit keygen --keyring FILE`)"
    );
}

#[test]
fn signing_and_public_key_errors_name_the_file_or_variable() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate().unwrap();
    let public_text = key.verifying_key().to_public_text();
    let secret_text = key.to_secret_text();

    assert_eq!(
        chain(SigningKey::parse("nonsense").unwrap_err()),
        NOT_SIGNING
    );
    assert_eq!(
        chain(SigningKey::parse(&public_text).unwrap_err()),
        "this is a public key (PREFIX.pub); signing needs the secret key from the same \
         `llm-audit keygen`, PREFIX.key"
    );
    let absent = dir.path().join("absent.key");
    assert_eq!(
        chain(SigningKey::from_file(&absent).unwrap_err()),
        format!("cannot read {}", missing(&absent))
    );
    let garbage = dir.path().join("garbage.key");
    std::fs::write(&garbage, "hello\n").unwrap();
    assert_eq!(
        chain(SigningKey::from_file(&garbage).unwrap_err()),
        format!("{}: {NOT_SIGNING}", garbage.display())
    );

    let unset = "LLM_AUDIT_TEST_KEY_ERRORS_UNSET";
    std::env::remove_var(unset);
    assert_eq!(
        chain(SigningKey::from_env(unset).unwrap_err()),
        format!(
            "the environment variable {unset} is not set: set it to the text of a signing key \
             file (`llm-audit keygen` makes one)"
        )
    );
    let bad = "LLM_AUDIT_TEST_KEY_ERRORS_BAD_SIGNING";
    std::env::set_var(bad, "llm-audit-ed25519-secret-v1 123");
    assert_eq!(
        chain(SigningKey::from_env(bad).unwrap_err()),
        format!("{bad}: {NOT_SIGNING}")
    );

    assert_eq!(
        chain(VerifyingKey::parse(&secret_text).unwrap_err()),
        "this is a secret signing key (PREFIX.key); verifying needs only the public key from \
         the same `llm-audit keygen`, PREFIX.pub"
    );
    assert_eq!(chain(VerifyingKey::parse("hello").unwrap_err()), NOT_PUBLIC);
    assert_eq!(
        chain(VerifyingKey::from_file(&garbage).unwrap_err()),
        format!("{}: {NOT_PUBLIC}", garbage.display())
    );
    assert_eq!(
        chain(VerifyingKey::from_file(&absent).unwrap_err()),
        format!("cannot read {}", missing(&absent))
    );
}

#[test]
fn keyring_errors_name_the_line_file_or_variable() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        content(Keyring::new("bad id", [0; 32]).unwrap_err()),
        "invalid key id \"bad id\": use 1 to 64 characters from [A-Za-z0-9._-]"
    );
    let mut keyring = Keyring::new("a", [1; 32]).unwrap();
    assert_eq!(
        content(keyring.add("a", [2; 32]).unwrap_err()),
        "the keyring has a key \"a\" already; give the new key another id"
    );
    assert_eq!(content(Keyring::parse("hello").unwrap_err()), NOT_KEYRING);
    assert_eq!(
        content(Keyring::parse("llm-audit-keyring-v1\nk zz").unwrap_err()),
        "keyring line 2: the key is not 64 hex digits (the id comes first)"
    );
    assert_eq!(
        content(Keyring::parse("llm-audit-keyring-v1\nnospace").unwrap_err()),
        "keyring line 2: expected `<key id> <64 hex digits>`"
    );
    assert_eq!(
        content(Keyring::parse("llm-audit-keyring-v1\n").unwrap_err()),
        "the keyring has no key: add one with `llm-audit keygen --keyring FILE`"
    );

    let absent = dir.path().join("absent.keyring");
    assert_eq!(
        content(Keyring::from_file(&absent).unwrap_err()),
        format!("cannot read the keyring {}", missing(&absent))
    );
    let garbage = dir.path().join("garbage.keyring");
    std::fs::write(&garbage, "hello\n").unwrap();
    assert_eq!(
        content(Keyring::from_file(&garbage).unwrap_err()),
        format!("{}: {NOT_KEYRING}", garbage.display())
    );
    let unset = "LLM_AUDIT_TEST_KEY_ERRORS_UNSET_KEYRING";
    std::env::remove_var(unset);
    assert_eq!(
        content(Keyring::from_env(unset).unwrap_err()),
        format!(
            "the environment variable {unset} is not set: set it to the text of a keyring file, \
             `;` between lines (`llm-audit keygen --keyring FILE` makes one)"
        )
    );
    let bad = "LLM_AUDIT_TEST_KEY_ERRORS_BAD_KEYRING";
    std::env::set_var(bad, "hello");
    assert_eq!(
        content(Keyring::from_env(bad).unwrap_err()),
        format!("{bad}: {NOT_KEYRING}")
    );

    // Decrypting with the wrong keyring, or the wrong key under the right id.
    let id = uuid::Uuid::now_v7();
    let sealed = keyring.encrypt(&id, ContentField::Input, b"x").unwrap();
    let other = Keyring::new("b", [1; 32]).unwrap();
    assert_eq!(
        content(
            other
                .decrypt(&id, ContentField::Input, &sealed)
                .unwrap_err()
        ),
        "the keyring has no key \"a\": use the keyring that holds it (a rotation with \
         `llm-audit keygen --keyring FILE` adds a key and keeps the old ones)"
    );
    let impostor = Keyring::new("a", [2; 32]).unwrap();
    assert_eq!(
        content(
            impostor
                .decrypt(&id, ContentField::Input, &sealed)
                .unwrap_err()
        ),
        format!(
            "input content of entry {id} does not decrypt with key a: the key is not the one \
             that encrypted it, or the ciphertext was changed or moved from another entry or \
             field"
        )
    );
}

/// The keys are where `HashKey` and `Keyring` are, at the crate root; the old paths stay.
#[test]
fn signing_keys_are_at_the_crate_root() {
    let key: tracing_llm_audit::SigningKey =
        tracing_llm_audit::chain::SigningKey::generate().unwrap();
    let public: tracing_llm_audit::VerifyingKey = key.verifying_key();
    let _: tracing_llm_audit::chain::VerifyingKey = public;
}
