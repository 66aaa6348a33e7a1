//! The sanitizer through its public API: precision and recall per entity type on the labelled
//! corpus (`tests/fixtures/sanitize/`), the redaction modes, user patterns, results that never
//! hold a matched value, adversarial inputs, and the audited clients' hook against a local
//! server.

use std::collections::BTreeMap;

use tracing_llm_audit::sanitize::{Entity, RedactionMode, Sanitizer, SanitizerError};
use tracing_llm_audit::HashKey;

fn sanitizer() -> Sanitizer {
    Sanitizer::builder().build().unwrap()
}

// ------------------------------------------------------------------------------------ corpus

#[derive(serde::Deserialize)]
struct Case {
    text: String,
    entities: Vec<Label>,
}

#[derive(serde::Deserialize)]
struct Label {
    #[serde(rename = "type")]
    entity: String,
    value: String,
}

#[derive(Default)]
struct Tally {
    true_positives: u32,
    false_positives: u32,
    false_negatives: u32,
}

impl Tally {
    fn precision(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }
    fn recall(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }
}

fn ratio(n: u32, d: u32) -> f64 {
    if d == 0 {
        1.0
    } else {
        f64::from(n) / f64::from(d)
    }
}

/// Labels as (type, byte range): each value at its next occurrence after the previous one of
/// the same value.
fn expected_spans(case: &Case) -> Vec<(String, std::ops::Range<usize>)> {
    let mut next_from: BTreeMap<&str, usize> = BTreeMap::new();
    case.entities
        .iter()
        .map(|label| {
            let from = next_from.entry(&label.value).or_insert(0);
            let start = *from
                + case.text[*from..]
                    .find(&label.value)
                    .unwrap_or_else(|| panic!("label {:?} not in {:?}", label.value, case.text));
            *from = start + label.value.len();
            (label.entity.clone(), start..start + label.value.len())
        })
        .collect()
}

/// A finding counts only when its type and its exact span match a label.
#[test]
fn corpus_precision_and_recall_per_entity_type_meet_the_floors() {
    const RECALL_FLOOR: f64 = 0.95;
    const PRECISION_FLOOR: f64 = 0.95;
    let corpus = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sanitize/corpus.jsonl"
    ))
    .unwrap();
    let cases: Vec<Case> = corpus
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(cases.len() >= 300, "the corpus has {} cases", cases.len());

    let sanitizer = sanitizer();
    let mut tallies: BTreeMap<String, Tally> = Entity::ALL
        .iter()
        .map(|e| (e.name().to_owned(), Tally::default()))
        .collect();
    let mut mistakes = Vec::new();
    for (line, case) in cases.iter().enumerate() {
        let mut expected = expected_spans(case);
        for finding in sanitizer.find(&case.text) {
            let tally = tallies.get_mut(finding.entity).unwrap();
            let hit = expected
                .iter()
                .position(|(t, r)| t == finding.entity && *r == finding.range);
            if let Some(i) = hit {
                expected.swap_remove(i);
                tally.true_positives += 1;
            } else {
                tally.false_positives += 1;
                mistakes.push(format!(
                    "line {}: found {} {:?} not labelled",
                    line + 1,
                    finding.entity,
                    &case.text[finding.range.clone()]
                ));
            }
        }
        for (entity, range) in expected {
            tallies.get_mut(&entity).unwrap().false_negatives += 1;
            mistakes.push(format!(
                "line {}: missed {entity} {:?}",
                line + 1,
                &case.text[range]
            ));
        }
    }

    println!("| entity type | labelled | found | precision | recall |");
    println!("|---|---:|---:|---:|---:|");
    for (entity, t) in &tallies {
        println!(
            "| `{entity}` | {} | {} | {:.3} | {:.3} |",
            t.true_positives + t.false_negatives,
            t.true_positives + t.false_positives,
            t.precision(),
            t.recall()
        );
    }
    for mistake in &mistakes {
        println!("{mistake}");
    }
    for (entity, t) in &tallies {
        assert!(
            t.true_positives + t.false_negatives >= 9,
            "{entity} has too few positives in the corpus to measure"
        );
        assert!(
            t.recall() >= RECALL_FLOOR,
            "recall of {entity} is {:.3}, below {RECALL_FLOOR}: {mistakes:#?}",
            t.recall()
        );
        assert!(
            t.precision() >= PRECISION_FLOOR,
            "precision of {entity} is {:.3}, below {PRECISION_FLOOR}: {mistakes:#?}",
            t.precision()
        );
    }
}

// ------------------------------------------------------------------------------------- modes

#[test]
fn placeholders_are_numbered_per_type_and_stable_for_a_value() {
    let out = sanitizer().sanitize(
        "a@example.com, b@example.com, a@example.com; call 415-555-2671 or a@example.com",
    );
    assert_eq!(
        out.text,
        "[EMAIL_1], [EMAIL_2], [EMAIL_1]; call [PHONE_1] or [EMAIL_1]"
    );
    assert_eq!(out.counts.get("email"), 4);
    assert_eq!(out.counts.get("phone"), 1);
    assert_eq!(out.counts.total(), 5);
    // A new call starts its numbering again.
    assert_eq!(sanitizer().sanitize("b@example.com").text, "[EMAIL_1]");
}

#[test]
fn a_scope_numbers_across_texts_and_adds_up_counts() {
    let sanitizer = sanitizer();
    let mut scope = sanitizer.scope();
    assert_eq!(scope.redact("nothing here"), None);
    assert_eq!(scope.redact("x@example.com").unwrap(), "[EMAIL_1]");
    assert_eq!(
        scope.redact("y@example.com x@example.com").unwrap(),
        "[EMAIL_2] [EMAIL_1]"
    );
    assert_eq!(scope.finish().get("email"), 3);
}

#[test]
fn mask_hides_everything_but_a_cards_last_four_digits() {
    let sanitizer = Sanitizer::builder()
        .with_mode(RedactionMode::Mask)
        .build()
        .unwrap();
    let out = sanitizer.sanitize("card 4111 1111 1111 1111, mail a@example.com, ssn 123-45-6789");
    assert_eq!(out.text, "card ****1111, mail ****, ssn ****");
    assert_eq!(out.counts.total(), 3);
}

#[test]
fn keyed_hash_tokens_depend_on_the_key_the_type_and_the_value() {
    let with_key = |secret: u8| {
        Sanitizer::builder()
            .with_mode(RedactionMode::KeyedHash(
                HashKey::new("k", [secret; 32]).unwrap(),
            ))
            .build()
            .unwrap()
    };
    let a = with_key(1)
        .sanitize("a@example.com b@example.com a@example.com")
        .text;
    let again = with_key(1).sanitize("a@example.com").text;
    let other_key = with_key(2).sanitize("a@example.com").text;
    let tokens: Vec<&str> = a.split(' ').collect();
    assert!(tokens[0].starts_with("[EMAIL:") && tokens[0].ends_with(']'));
    assert_eq!(tokens[0].len(), "[EMAIL:]".len() + 16);
    assert_eq!(tokens[0], tokens[2], "same value, same token");
    assert_ne!(tokens[0], tokens[1], "other value, other token");
    assert_eq!(again, tokens[0], "stable across calls");
    assert_ne!(other_key, tokens[0], "another key gives another token");
    // The token is the keyed hash of type and value, not a plain hash of the value.
    let key = HashKey::new("k", [1u8; 32]).unwrap();
    let expected = &key.hash(b"email\0a@example.com")["hmac-sha256:".len()..][..16];
    assert_eq!(tokens[0], format!("[EMAIL:{expected}]"));
    assert!(!tokens[0].contains(&hex_sha256_prefix(b"a@example.com")));
}

/// The first 16 hex digits of an unkeyed SHA-256, which a keyed token must never be.
fn hex_sha256_prefix(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))[..16].to_owned()
}

// ----------------------------------------------------------------------- detectors and patterns

#[test]
fn detectors_can_be_turned_off_and_on() {
    let text = "a@example.com from 10.0.0.1";
    let no_ip = Sanitizer::builder()
        .with_entity(Entity::IpAddress, false)
        .build()
        .unwrap();
    assert_eq!(no_ip.sanitize(text).text, "[EMAIL_1] from 10.0.0.1");
    let only_ip = Sanitizer::builder()
        .with_only([Entity::IpAddress])
        .build()
        .unwrap();
    assert_eq!(
        only_ip.sanitize(text).text,
        "a@example.com from [IP_ADDRESS_1]"
    );
    assert_eq!(only_ip.entity_types().collect::<Vec<_>>(), ["ip_address"]);
    let none = Sanitizer::builder().with_only([]).build().unwrap();
    assert_eq!(none.sanitize(text).text, text);
}

#[test]
fn user_patterns_are_named_entity_types() {
    let sanitizer = Sanitizer::builder()
        .with_pattern("employee_id", r"\bEMP-\d{6}\b")
        .with_pattern("project_code", r"\bPRJ[A-Z]{3}\b")
        .build()
        .unwrap();
    let out = sanitizer.sanitize("EMP-001234 on PRJABC, EMP-001234 again, EMP-12 not");
    assert_eq!(
        out.text,
        "[EMPLOYEE_ID_1] on [PROJECT_CODE_1], [EMPLOYEE_ID_1] again, EMP-12 not"
    );
    assert_eq!(out.counts.get("employee_id"), 2);
    assert_eq!(out.counts.get("project_code"), 1);
}

#[test]
fn bad_user_patterns_are_named_in_the_error() {
    let err = Sanitizer::builder()
        .with_pattern("ticket", r"TCK-(\d+")
        .build()
        .unwrap_err();
    assert!(matches!(err, SanitizerError::InvalidPattern { .. }));
    let message = err.to_string();
    assert!(
        message.contains("ticket") && message.contains("TCK-(\\\\d+"),
        "{message}"
    );
    assert!(std::error::Error::source(&err).is_some());

    let err = Sanitizer::builder()
        .with_pattern("anything", r"\d*")
        .build()
        .unwrap_err();
    assert!(matches!(err, SanitizerError::MatchesEmpty { .. }), "{err}");

    for name in ["Email", "my-type", "", "1abc"] {
        let err = Sanitizer::builder()
            .with_pattern(name, "x")
            .build()
            .unwrap_err();
        assert!(
            matches!(err, SanitizerError::InvalidEntityName(_)),
            "{name}: {err}"
        );
    }
    let err = Sanitizer::builder()
        .with_pattern("email", "x")
        .build()
        .unwrap_err();
    assert!(
        matches!(err, SanitizerError::DuplicateEntityName(_)),
        "{err}"
    );
}

// ------------------------------------------------------------------------- nothing leaks

#[test]
fn results_scopes_and_findings_never_show_a_matched_value() {
    let values = [
        "alice.smith@example.com",
        "415-555-2671",
        "4111 1111 1111 1111",
        "123-45-6789",
        "DE89 3704 0044 0532 0130 00",
        "192.168.10.77",
        "2001:db8::7334",
        "AKIAIOSFODNN7EXAMPLE",
        "sk-proj-4fJ8dK2mQ9xL7pR3tV6wY1zB5nC0aE8gH2jK4",
        "sk-ant-api03-Xy9Zq8Wv7Ut6Sr5Qp4On3Ml2Kj1Ih0Gf9Ed8Cb7A-AA",
        "ghp_aB3aB3aB3aB3aB3aB3aB3aB3aB3aB3aB3aB3",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        "EMP-004211",
    ];
    let text = values.join(" ; ");
    let key = HashKey::new("k", [9u8; 32]).unwrap();
    for mode in [
        RedactionMode::Placeholder,
        RedactionMode::Mask,
        RedactionMode::KeyedHash(key),
    ] {
        let sanitizer = Sanitizer::builder()
            .with_pattern("employee_id", r"EMP-\d{6}")
            .with_mode(mode)
            .build()
            .unwrap();
        let out = sanitizer.sanitize(&text);
        assert_eq!(out.counts.total(), values.len() as u64, "{}", out.text);
        let mut scope = sanitizer.scope();
        let _ = scope.redact(&text);
        let printed = [
            format!("{out:?}"),
            format!("{out:#?}"),
            out.text.clone(),
            format!("{scope:?}"),
            format!("{:?}", sanitizer.find(&text)),
            format!("{sanitizer:?}"),
        ];
        for shown in &printed {
            for value in values {
                assert!(!shown.contains(value), "{value} shows in {shown}");
            }
            assert!(!shown.contains("5555-2671") && !shown.contains("6789;"));
        }
    }
}

// ------------------------------------------------------------------------ adversarial input

#[test]
fn adversarial_inputs_of_megabytes_complete_and_find_nothing() {
    let sanitizer = sanitizer();
    let inputs = [
        "9".repeat(1 << 20),
        "@".repeat(1 << 20),
        format!("{}@", "a".repeat(1 << 20)),
        "a@".repeat(1 << 19),
        ".".repeat(1 << 20),
        "1.".repeat(1 << 19),
        ":".repeat(1 << 20),
        "1 ".repeat(1 << 19),
        "+1".repeat(1 << 19),
        "sk-".repeat(1 << 18),
        "eyJ.".repeat(1 << 18),
        "-----BEGIN ".repeat(1 << 16),
        "AKIA".repeat(1 << 18),
    ];
    for input in &inputs {
        let out = sanitizer.sanitize(input);
        assert_eq!(out.counts.total(), 0, "{:?}…", &input[..16]);
        assert_eq!(out.text.len(), input.len());
    }
}

#[test]
fn many_entities_in_a_large_text_are_all_redacted() {
    let sanitizer = sanitizer();
    let text = "user42@example.com paid with 4111 1111 1111 1111 from 10.1.2.3. ".repeat(20_000);
    let out = sanitizer.sanitize(&text);
    assert_eq!(out.counts.get("email"), 20_000);
    assert_eq!(out.counts.get("credit_card"), 20_000);
    assert_eq!(out.counts.get("ip_address"), 20_000);
    assert!(out
        .text
        .starts_with("[EMAIL_1] paid with [CREDIT_CARD_1] from [IP_ADDRESS_1]. [EMAIL_1]"));
}

#[test]
fn text_around_matches_survives_byte_for_byte_including_non_ascii() {
    let out = sanitizer().sanitize("Grüße 🙂 an jürgen@example.de — Tel. +49 30 901820 ✓");
    assert_eq!(out.text, "Grüße 🙂 an [EMAIL_1] — Tel. [PHONE_1] ✓");
    // A domain that goes on in non-ASCII letters is not cut short.
    assert_eq!(sanitizer().sanitize("bob@example.deü").counts.total(), 0);
}

// ----------------------------------------------------------------------- the clients' hook

#[cfg(feature = "clients")]
#[path = "support/llm_server.rs"]
mod llm_server;

#[cfg(feature = "clients")]
mod client_hook {
    use std::time::Duration;

    use super::llm_server::{LlmServer, Reply};
    use tracing_llm_audit::clients::anthropic::{AnthropicClient, Message, MessagesRequest};
    use tracing_llm_audit::clients::ApiKey;
    use tracing_llm_audit::sanitize::Sanitizer;
    use tracing_llm_audit::{AuditLayer, HashKey, MemorySink, Overflow, Status};
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn an_audited_call_sends_redacted_text_and_records_the_counts() {
        let sink = MemorySink::new();
        let (layer, guard) = AuditLayer::builder()
            .with_sink(sink.clone())
            .with_hash_key(HashKey::new("sanitize", [3u8; 32]).unwrap())
            .with_overflow(Overflow::Block)
            .build()
            .unwrap();
        let subscriber = tracing_subscriber::registry().with(layer);
        let sent = {
            let _default = tracing::subscriber::set_default(subscriber);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let server = LlmServer::start().await;
                let answer = std::fs::read_to_string(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/tests/fixtures/clients/anthropic_message.json"
                ))
                .unwrap();
                server.reply(Reply::json(200, &answer));
                let client = AnthropicClient::new(ApiKey::new("test-key"))
                    .with_base_url(&server.url())
                    .with_before_send(Sanitizer::builder().build().unwrap());
                let request = MessagesRequest::new("claude-sonnet-4-5", 100)
                    .system("Escalations go to ops@example.com.")
                    .message(Message::user(
                        "I am bob@example.com, card 4111 1111 1111 1111; cc ops@example.com",
                    ));
                client.messages(&request).await.unwrap();
                server.received()[0].body.clone()
            })
        };
        guard.shutdown(Duration::from_secs(10)).unwrap();
        let body = String::from_utf8(sent).unwrap();
        for value in ["bob@example.com", "ops@example.com", "4111 1111 1111 1111"] {
            assert!(!body.contains(value), "{value} was sent: {body}");
        }
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        // One numbering for the whole body (walked in key order: `messages` before `system`).
        assert_eq!(
            json["messages"][0]["content"],
            "I am [EMAIL_1], card [CREDIT_CARD_1]; cc [EMAIL_2]"
        );
        assert_eq!(json["system"], "Escalations go to [EMAIL_2].");
        assert_eq!(json["model"], "claude-sonnet-4-5");

        let entries = sink.entries();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].status, Status::Success);
        assert_eq!(entries[0].sanitization_count, 4);
        assert_eq!(entries[0].sanitization.get("email"), Some(&3));
        assert_eq!(entries[0].sanitization.get("credit_card"), Some(&1));
        let entry = serde_json::to_string(&entries[0]).unwrap();
        assert!(
            !entry.contains("example.com") && !entry.contains("4111"),
            "{entry}"
        );
    }
}
