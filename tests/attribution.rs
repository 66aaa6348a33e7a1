//! Who asked (issue 22): a GenAI span of a third-party crate carries no user, but the request
//! span around it does. The LLM span takes the user, the session and the tenant from the
//! nearest enclosing span that has them, its own values winning, and nothing from a span it only
//! follows from or from a sibling.

use std::time::Duration;

use tracing::field::Empty;
use tracing::subscriber::with_default;
use tracing_llm_audit::{AuditEntry, AuditLayer, HashKey, MemorySink, Overflow};
use tracing_subscriber::layer::SubscriberExt;

fn audited(f: impl FnOnce()) -> Vec<AuditEntry> {
    let sink = MemorySink::new();
    let (layer, guard) = AuditLayer::builder()
        .with_sink(sink.clone())
        .with_hash_key(HashKey::new("k", [3u8; 32]).unwrap())
        .with_overflow(Overflow::Block)
        .build()
        .unwrap();
    with_default(tracing_subscriber::registry().with(layer), f);
    guard.shutdown(Duration::from_secs(10)).unwrap();
    sink.entries()
}

/// A span as rig-core or genai make it: the GenAI fields, no user.
fn third_party_call(model: &str) {
    let span = tracing::info_span!(
        "chat",
        "gen_ai.operation.name" = "chat",
        "gen_ai.provider.name" = "openai",
        "gen_ai.request.model" = model,
    );
    let _entered = span.enter();
}

fn tenant(entry: &AuditEntry) -> Option<&str> {
    entry.metadata.as_ref()?.get("tenant.id")?.as_str()
}

#[test]
fn the_call_takes_who_from_the_request_around_it() {
    let entries = audited(|| {
        let request = tracing::info_span!(
            "handle_request",
            "user.id" = "alice",
            "session.id" = "s-1",
            "tenant.id" = "acme",
        );
        let _r = request.enter();
        let inner = tracing::info_span!("route", path = "/chat");
        let _i = inner.enter();
        third_party_call("gpt-4o");
    });
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].user_id.as_deref(), Some("alice"));
    assert_eq!(entries[0].session_id.as_deref(), Some("s-1"));
    assert_eq!(tenant(&entries[0]), Some("acme"));
}

#[test]
fn the_nearest_span_wins_and_the_call_s_own_value_over_all() {
    let entries = audited(|| {
        let outer = tracing::info_span!("outer", "user.id" = "far", "session.id" = "far-s");
        let _o = outer.enter();
        let near = tracing::info_span!("near", "enduser.id" = "near");
        let _n = near.enter();
        third_party_call("gpt-4o");
        let own = tracing::info_span!(
            "chat",
            "gen_ai.operation.name" = "chat",
            "gen_ai.request.model" = "gpt-4o",
            "user.id" = "own",
            "gen_ai.conversation.id" = Empty,
        );
        own.record("gen_ai.conversation.id", "own-s");
        drop(own);
        // Recorded on the call later still wins over what it inherited.
        let later = tracing::info_span!(
            "chat",
            "gen_ai.operation.name" = "chat",
            "gen_ai.request.model" = "gpt-4o",
            "user.id" = Empty,
        );
        later.record("user.id", "later");
    });
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0].user_id.as_deref(), Some("near"));
    assert_eq!(entries[0].session_id.as_deref(), Some("far-s"));
    assert_eq!(entries[1].user_id.as_deref(), Some("own"));
    assert_eq!(entries[1].session_id.as_deref(), Some("own-s"));
    assert_eq!(entries[2].user_id.as_deref(), Some("later"));
}

#[test]
fn a_user_known_only_after_authentication_is_taken() {
    let entries = audited(|| {
        let request = tracing::info_span!("handle_request", "user.id" = Empty);
        let _r = request.enter();
        request.record("user.id", "bob");
        third_party_call("gpt-4o");
    });
    assert_eq!(entries[0].user_id.as_deref(), Some("bob"));
}

#[test]
fn nothing_comes_from_a_sibling_or_a_span_followed_from() {
    let entries = audited(|| {
        let sibling = tracing::info_span!("auth", "user.id" = "sibling");
        drop(sibling.enter());
        let earlier = tracing::info_span!("earlier", "user.id" = "earlier");
        let root = tracing::info_span!(parent: None, "job");
        root.follows_from(&earlier);
        let _j = root.enter();
        third_party_call("gpt-4o");
    });
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].user_id, None);
}

/// Every spelling of a usage count in `fields::USAGE_ALIASES` feeds its count (rig's
/// `gen_ai.usage.reasoning_tokens` landed in `metadata` before, and `thinking_tokens` stayed
/// null).
#[test]
fn every_usage_spelling_in_the_table_feeds_its_count() {
    use tracing_llm_audit::fields;
    for (alias, who, canonical) in fields::USAGE_ALIASES {
        // A span with a field named at run time, as another crate's would be.
        let entries = audited(|| {
            let names: &'static [&'static str] = Box::leak(Box::new([
                "gen_ai.operation.name",
                "gen_ai.request.model",
                alias,
            ]));
            let callsite = Box::leak(Box::new(Callsite::new()));
            let meta: &'static tracing::Metadata<'static> =
                Box::leak(Box::new(tracing::Metadata::new(
                    "chat",
                    "third_party",
                    tracing::Level::INFO,
                    None,
                    None,
                    None,
                    tracing::field::FieldSet::new(names, tracing::callsite::Identifier(&*callsite)),
                    tracing::metadata::Kind::SPAN,
                )));
            callsite.0.set(meta).unwrap();
            tracing::callsite::register(&*callsite);
            let fields = meta.fields();
            let mut it = fields.iter();
            let (op, model, count) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
            let values = [
                (&op, Some(&"chat" as &dyn tracing::Value)),
                (&model, Some(&"gpt-4o" as &dyn tracing::Value)),
                (&count, Some(&5u64 as &dyn tracing::Value)),
            ];
            let span = tracing::Span::new(meta, &fields.value_set(&values));
            drop(span);
        });
        assert_eq!(entries.len(), 1, "{alias}");
        let e = &entries[0];
        let got = match *canonical {
            fields::USAGE_INPUT_TOKENS => e.input_tokens,
            fields::USAGE_OUTPUT_TOKENS => e.output_tokens,
            fields::USAGE_CACHE_READ_INPUT_TOKENS => e.cache_read_tokens,
            fields::USAGE_CACHE_CREATION_INPUT_TOKENS => e.cache_write_tokens,
            fields::USAGE_REASONING_OUTPUT_TOKENS => e.thinking_tokens,
            other => panic!("{other}"),
        };
        assert_eq!(
            got,
            Some(5),
            "{alias} ({who}) should feed {canonical}: {e:?}"
        );
        assert!(
            e.metadata.as_ref().is_none_or(|m| !m.contains_key(*alias)),
            "{alias} is a count, not metadata"
        );
    }
}

/// A callsite made at run time, for fields named by a table.
struct Callsite(std::sync::OnceLock<&'static tracing::Metadata<'static>>);

impl Callsite {
    fn new() -> Self {
        Self(std::sync::OnceLock::new())
    }
}

impl tracing::callsite::Callsite for Callsite {
    fn set_interest(&self, _: tracing::subscriber::Interest) {}
    fn metadata(&self) -> &tracing::Metadata<'_> {
        self.0.get().unwrap()
    }
}

/// genai's failed calls say so the OpenTelemetry way: `otel.status_code = "ERROR"` and a
/// description, or an `exception` event. Before: `status = error` with no message, or success.
#[test]
fn errors_said_the_opentelemetry_way_are_errors_with_their_message() {
    let entries = audited(|| {
        let a = tracing::info_span!(
            "chat",
            "gen_ai.operation.name" = "chat",
            "gen_ai.request.model" = "gpt-4o",
            "otel.status_code" = Empty,
            "otel.status_description" = Empty,
        );
        a.record("otel.status_code", "ERROR");
        a.record("otel.status_description", "model overloaded");
        drop(a);
        let b = tracing::info_span!(
            "chat",
            "gen_ai.operation.name" = "chat",
            "gen_ai.request.model" = "gpt-4o",
        );
        b.in_scope(|| {
            tracing::error!(exception.type = "RateLimit", exception.message = "slow down");
        });
        drop(b);
        // A description without an ERROR status is no error.
        let c = tracing::info_span!(
            "chat",
            "gen_ai.operation.name" = "chat",
            "gen_ai.request.model" = "gpt-4o",
            "otel.status_code" = "OK",
            "otel.status_description" = "fine",
        );
        drop(c);
    });
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0].status, tracing_llm_audit::Status::Error);
    assert_eq!(
        entries[0].error_message.as_deref(),
        Some("model overloaded")
    );
    assert_eq!(entries[1].status, tracing_llm_audit::Status::Error);
    assert_eq!(entries[1].error_type.as_deref(), Some("RateLimit"));
    assert!(entries[1]
        .error_message
        .as_deref()
        .unwrap()
        .contains("slow down"));
    assert_eq!(entries[2].status, tracing_llm_audit::Status::Success);
    assert_eq!(entries[2].error_message, None);
}

/// The application's fields cannot write the layer's own notes; a count that is none is noted.
#[test]
fn reserved_keys_are_not_forged_and_bad_counts_are_noted() {
    let entries = audited(|| {
        let span = tracing::info_span!(
            "chat",
            "gen_ai.operation.name" = "chat",
            "gen_ai.request.model" = "gpt-4o",
            "llm_audit.problems" = "none at all",
            "llm_audit.truncated" = "{}",
            "gen_ai.usage.input_tokens" = "lots",
            "gen_ai.usage.output_tokens" = 2.5,
        );
        drop(span);
    });
    let metadata = entries[0].metadata.as_ref().unwrap();
    let problems = metadata["llm_audit.problems"].to_string();
    assert!(!problems.contains("none at all"), "{problems}");
    assert!(
        problems.contains("llm_audit.truncated") && problems.contains("may not write"),
        "{problems}"
    );
    assert!(
        problems.contains("\\\"lots\\\" is not a count"),
        "{problems}"
    );
    assert!(problems.contains("2.5 is not a count"), "{problems}");
    assert!(
        !metadata.contains_key("llm_audit.truncated"),
        "{metadata:?}"
    );
    assert_eq!(entries[0].input_tokens, None);
}

/// With a global `LevelFilter::WARN` on the subscriber, INFO spans are disabled before any layer
/// sees them: nothing was audited, and nothing said so. Now the layer says so once on stderr;
/// with the filter on the other layer instead, every call is audited and nothing is said. Run in
/// a child process each, to read its stderr.
#[test]
fn a_subscriber_that_disables_llm_spans_is_said_once_and_a_layer_filter_is_the_fix() {
    use tracing_subscriber::filter::LevelFilter;
    use tracing_subscriber::Layer as _;
    if let Ok(setup) = std::env::var("LLM_AUDIT_FILTER_CHILD") {
        let sink = MemorySink::new();
        let (layer, guard) = AuditLayer::builder()
            .with_sink(sink.clone())
            .with_hash_key(HashKey::new("k", [3u8; 32]).unwrap())
            .with_overflow(Overflow::Block)
            .build()
            .unwrap();
        let call = || {
            let request = tracing::info_span!("handle_request", "user.id" = "alice");
            let _r = request.enter();
            third_party_call("gpt-4o");
            third_party_call("gpt-4o");
        };
        if setup == "global" {
            let subscriber = tracing_subscriber::registry()
                .with(layer)
                .with(LevelFilter::WARN);
            with_default(subscriber, call);
        } else {
            let subscriber = tracing_subscriber::registry().with(layer).with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::sink)
                    .with_filter(LevelFilter::WARN),
            );
            with_default(subscriber, call);
        }
        guard.shutdown(Duration::from_secs(10)).unwrap();
        println!("ENTRIES={}", sink.entries().len());
        return;
    }
    for (setup, entries, warned) in [("global", 0, true), ("per-layer", 2, false)] {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "a_subscriber_that_disables_llm_spans_is_said_once_and_a_layer_filter_is_the_fix",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("LLM_AUDIT_FILTER_CHILD", setup)
            .output()
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(out.status.success(), "{setup}: {stdout}{stderr}");
        assert!(
            stdout.contains(&format!("ENTRIES={entries}")),
            "{setup}: {stdout}"
        );
        assert_eq!(
            stderr.matches("NOTHING IS AUDITED").count(),
            usize::from(warned),
            "{setup}: {stderr}"
        );
    }
}

/// Under `otel`, what no enclosing span says comes from OpenTelemetry baggage: how a caller
/// upstream passes who the request is for across services. A span's value still wins.
#[cfg(feature = "otel")]
#[test]
fn what_no_span_says_comes_from_baggage() {
    use opentelemetry::baggage::BaggageExt;
    use opentelemetry::KeyValue;
    let entries = audited(|| {
        let cx = opentelemetry::Context::current_with_baggage(vec![
            KeyValue::new("user.id", "carol"),
            KeyValue::new("session.id", "from-baggage"),
            KeyValue::new("tenant.id", "globex"),
        ]);
        let _attached = cx.attach();
        third_party_call("gpt-4o");
        let request = tracing::info_span!("handle_request", "session.id" = "from-span");
        let _r = request.enter();
        third_party_call("gpt-4o");
    });
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].user_id.as_deref(), Some("carol"));
    assert_eq!(entries[0].session_id.as_deref(), Some("from-baggage"));
    assert_eq!(tenant(&entries[0]), Some("globex"));
    assert_eq!(entries[1].user_id.as_deref(), Some("carol"));
    assert_eq!(
        entries[1].session_id.as_deref(),
        Some("from-span"),
        "a span wins"
    );
}

/// An LLM span still open when the pipeline shuts down (a call in flight, a stream never
/// finished) is never written: counted in `Stats`, and the run is not lossless. Before, it was
/// counted nowhere.
#[test]
fn calls_still_running_at_shutdown_are_counted() {
    let sink = MemorySink::new();
    let (layer, guard) = AuditLayer::builder()
        .with_sink(sink.clone())
        .with_hash_key(HashKey::new("k", [3u8; 32]).unwrap())
        .with_overflow(Overflow::Block)
        .build()
        .unwrap();
    let stats = with_default(tracing_subscriber::registry().with(layer), || {
        third_party_call("gpt-4o");
        let _running = tracing::info_span!(
            "chat",
            "gen_ai.operation.name" = "chat",
            "gen_ai.request.model" = "gpt-4o",
        );
        guard.shutdown(Duration::from_secs(10)).unwrap()
    });
    assert_eq!(stats.emitted, 1);
    assert_eq!(stats.unfinished_at_shutdown, 1);
    assert!(!stats.is_lossless());
    assert_eq!(sink.entries().len(), 1);
}
