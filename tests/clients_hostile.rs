//! The audited clients against servers we do not control (issue 21): a server that redirects to
//! another host, echoes the API key in every spelling, sends names megabytes long, or reports
//! usage that is no count. No key leaves for another host or reaches an error, an entry, a span
//! or a log line; server text is bounded; a count that is none is left out, said, and not
//! priced.

#![cfg(feature = "clients")]

#[path = "support/llm_server.rs"]
mod llm_server;

use std::future::Future;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use llm_server::{LlmServer, Reply};
use tracing_llm_audit::clients::anthropic::{AnthropicClient, Message, MessagesRequest};
use tracing_llm_audit::clients::openai::{ChatMessage, ChatRequest, OpenAiClient};
use tracing_llm_audit::clients::ApiKey;
use tracing_llm_audit::{AuditEntry, AuditLayer, HashKey, MemorySink, Overflow, Status};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Layer as _;

const KEY: &str = "sk-test-SECRET-0123456789";

#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `f` under an audit layer and a TRACE `fmt` layer; gives its output, the entries and
/// the log text.
fn audited<F: Future>(f: impl FnOnce() -> F) -> (F::Output, Vec<AuditEntry>, String) {
    let sink = MemorySink::new();
    let (layer, guard) = AuditLayer::builder()
        .with_sink(sink.clone())
        .with_hash_key(HashKey::new("clients", [7u8; 32]).unwrap())
        .with_overflow(Overflow::Block)
        .build()
        .unwrap();
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::registry().with(layer).with(
        tracing_subscriber::fmt::layer()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
            .with_filter(tracing_subscriber::filter::LevelFilter::TRACE),
    );
    let output = {
        let _default = tracing::subscriber::set_default(subscriber);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(f())
    };
    guard.shutdown(Duration::from_secs(10)).unwrap();
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    (output, sink.entries(), text)
}

fn anthropic(url: &str) -> AnthropicClient {
    AnthropicClient::new(ApiKey::new(KEY)).with_base_url(url)
}

fn openai(url: &str) -> OpenAiClient {
    OpenAiClient::new(ApiKey::new(KEY)).with_base_url(&format!("{url}/v1"))
}

fn request() -> MessagesRequest {
    MessagesRequest::new("claude-sonnet-4-5", 64).message(Message::user("Hello"))
}

fn chat() -> ChatRequest {
    ChatRequest::new("gpt-4o").message(ChatMessage::user("Hello"))
}

/// The key in every spelling a server could echo it in.
fn spellings() -> Vec<String> {
    let json: String = KEY
        .chars()
        .map(|c| format!("\\u{:04x}", c as u32))
        .collect();
    let percent: String = KEY.bytes().map(|b| format!("%{b:02X}")).collect();
    vec![
        KEY.to_owned(),
        json,
        KEY.replacen('S', "\\u0053", 1),
        percent.clone(),
        percent.replace('%', "%25"),
        base64::engine::general_purpose::STANDARD.encode(format!("user:{KEY}")),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("x{KEY}y")),
    ]
}

/// Nothing of the key, in any spelling, in `text`.
#[track_caller]
fn no_key(what: &str, text: &str) {
    // Around the find only: a text may be megabytes long.
    let around = |at: usize| -> String {
        text.chars()
            .skip(at.saturating_sub(100))
            .take(300)
            .collect()
    };
    if let Some(at) = text.find("SECRET") {
        panic!("the key shows in {what}: …{}…", around(at));
    }
    for spelling in spellings() {
        if let Some(at) = text.find(&spelling) {
            panic!("the key ({spelling}) shows in {what}: …{}…", around(at));
        }
    }
    // Base64 anywhere in the text, decoded at each alignment.
    for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || "+/=-_".contains(c))) {
        for skip in 0..4.min(word.len()) {
            for engine in [
                &base64::engine::general_purpose::STANDARD_NO_PAD,
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            ] {
                let w = word[skip..].trim_end_matches('=');
                let w = &w[..w.len() - w.len() % 4];
                if let Ok(bytes) = engine.decode(w) {
                    assert!(
                        !String::from_utf8_lossy(&bytes).contains("SECRET"),
                        "the key shows base64-encoded in {what}: {word}"
                    );
                }
            }
        }
    }
}

/// Before: reqwest followed the redirect and sent `x-api-key` (and OpenAI's key in
/// `Authorization`, which it strips only across hosts by name) to the second server.
#[test]
fn no_key_follows_a_redirect_to_another_host() {
    let ((errors, elsewhere), entries, logs) = audited(|| async {
        let first = LlmServer::start().await;
        let other = LlmServer::start().await;
        first.reply(
            Reply::json(307, "{}").header("location", &format!("{}/v1/messages", other.url())),
        );
        first.reply(
            Reply::json(307, "{}")
                .header("location", &format!("{}/v1/chat/completions", other.url())),
        );
        // Were a request to come, it would get an answer.
        other.reply(Reply::json(200, "{}"));
        other.reply(Reply::json(200, "{}"));
        let a = anthropic(&first.url())
            .messages(&request())
            .await
            .unwrap_err();
        let b = openai(&first.url()).chat(&chat()).await.unwrap_err();
        (vec![a.to_string(), b.to_string()], other.received())
    });
    assert!(elsewhere.is_empty(), "the other host got {elsewhere:?}");
    for error in &errors {
        assert!(
            error.contains("307"),
            "the error names the redirect: {error}"
        );
    }
    assert_eq!(entries.len(), 2);
    assert!(entries.iter().all(|e| e.status == Status::Error));
    no_key("the logs", &logs);
}

/// Before: the error body was scrubbed as raw text and then decoded, so `\u0053ECRET...` put
/// the key into the error and the entry.
#[test]
fn an_echoed_key_in_any_spelling_reaches_no_error_entry_or_log() {
    for spelling in spellings() {
        let body = format!(
            "{{\"error\":{{\"type\":\"authentication_error {spelling}\",\"message\":\"invalid x-api-key {spelling}\"}}}}"
        );
        let ((errors, debug), entries, logs) = audited(|| async {
            let server = LlmServer::start().await;
            for _ in 0..2 {
                server.reply(
                    Reply::json(401, &body).header("request-id", &format!("req-{spelling}")),
                );
            }
            let a = anthropic(&server.url())
                .messages(&request())
                .await
                .unwrap_err();
            let b = openai(&server.url()).chat(&chat()).await.unwrap_err();
            (
                vec![a.to_string(), b.to_string()],
                format!("{a:?} {b:?} {:?} {:?}", a.kind(), b.kind()),
            )
        });
        for error in &errors {
            no_key("the error", error);
        }
        no_key("the error's Debug", &debug);
        no_key("the logs", &logs);
        let entries = serde_json::to_string(&entries).unwrap();
        no_key("the entries", &entries);
        assert!(entries.contains("[redacted]"), "{entries}");
    }
}

/// Server text that is no error body: the request id header, an event's error type, an event
/// name. Before: unscrubbed and unbounded (a 5 MB type made a 5 MB error).
#[test]
fn server_names_are_scrubbed_and_bounded() {
    let long = format!("{KEY}{}", "t".repeat(5 << 20));
    let stream = format!(
        "event: message_start\ndata: {{\"type\":\"message_start\",\"message\":{{\"id\":\"m\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"usage\":{{\"input_tokens\":5,\"output_tokens\":1}}}}}}\n\nevent: error\ndata: {{\"type\":\"error\",\"error\":{{\"type\":\"{long}\",\"message\":\"{KEY}\"}}}}\n\n"
    );
    let bad_event = format!("event: {long}\ndata: not json\n\n");
    let (errors, entries, logs) = audited(|| async {
        let server = LlmServer::start().await;
        server.reply(
            Reply::sse(&stream, 1 << 16)
                .header("request-id", &format!("{KEY}{}", "r".repeat(4000))),
        );
        server.reply(Reply::sse(&bad_event, 1 << 16));
        let mut errors = Vec::new();
        for _ in 0..2 {
            let client = anthropic(&server.url());
            let stream = client.messages_stream(&request()).await.unwrap();
            errors.push(stream.collect().await.unwrap_err().to_string());
        }
        errors
    });
    for error in &errors {
        no_key("the error", error);
        assert!(
            error.len() < 4096,
            "{} bytes: {}",
            error.len(),
            error.chars().take(200).collect::<String>()
        );
    }
    no_key("the logs", &logs);
    assert!(logs.len() < 1 << 20, "the logs hold {} bytes", logs.len());
    assert_eq!(entries.len(), 2);
    for entry in &entries {
        let text = serde_json::to_string(entry).unwrap();
        no_key("the entry", &text);
        assert!(text.len() < 8192, "an entry of {} bytes", text.len());
        assert!(entry.error_type.as_ref().unwrap().chars().count() <= 100);
    }
}

/// Before: `with_timeout(Duration::MAX)` was accepted.
#[test]
fn a_timeout_out_of_bounds_is_refused_with_the_bound() {
    for timeout in [Duration::ZERO, Duration::MAX, Duration::from_secs(3601)] {
        let error = AnthropicClient::new(ApiKey::new(KEY))
            .with_timeout(timeout)
            .unwrap_err()
            .to_string();
        assert!(error.contains("at most 3600s"), "{error}");
        assert!(OpenAiClient::new(ApiKey::new(KEY))
            .with_timeout(timeout)
            .is_err());
    }
    assert!(AnthropicClient::new(ApiKey::new(KEY))
        .with_timeout(Duration::from_secs(3600))
        .is_ok());
}

/// Before: `u64::MAX` was clipped to `i64::MAX` and priced (an entry of $213 trillion); a
/// negative or fractional count turned a successful answer into a decode error.
#[test]
fn usage_that_is_no_count_is_kept_out_of_the_cost_and_said() {
    let openai_with = |usage: &str| {
        format!(
            "{{\"id\":\"c\",\"model\":\"gpt-4o\",\"choices\":[{{\"index\":0,\"message\":{{\"role\":\"assistant\",\"content\":\"ok\"}},\"finish_reason\":\"stop\"}}],\"usage\":{usage}}}"
        )
    };
    let anthropic_huge = "{\"id\":\"m\",\"model\":\"claude-sonnet-4-5\",\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"ok\"}],\"stop_reason\":\"end_turn\",\"usage\":{\"input_tokens\":18446744073709551615,\"output_tokens\":3}}";
    let stream_fraction = "data: {\"id\":\"c\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok\"},\"finish_reason\":\"stop\"}]}\n\ndata: {\"id\":\"c\",\"model\":\"gpt-4o\",\"choices\":[],\"usage\":{\"prompt_tokens\":1.5,\"completion_tokens\":2}}\n\ndata: [DONE]\n\n";
    let (answers, entries, _) = audited(|| async {
        let server = LlmServer::start().await;
        server.reply(Reply::json(200, anthropic_huge));
        server.reply(Reply::json(
            200,
            &openai_with("{\"prompt_tokens\":-5,\"completion_tokens\":7}"),
        ));
        server.reply(Reply::sse(stream_fraction, 64));
        let a = anthropic(&server.url())
            .messages(&request())
            .await
            .map(|_| ());
        let b = openai(&server.url()).chat(&chat()).await.map(|_| ());
        let c = match openai(&server.url()).chat_stream(&chat()).await {
            Ok(s) => s.collect().await.map(|_| ()),
            Err(e) => Err(e),
        };
        vec![a, b, c]
    });
    for answer in &answers {
        assert!(answer.is_ok(), "a successful answer stays one: {answer:?}");
    }
    assert_eq!(entries.len(), 3);
    let huge = &entries[0];
    assert_eq!(huge.input_tokens, Some(u64::MAX), "kept as it came");
    assert_eq!(huge.cost_usd, None);
    assert!(
        huge.cost_note
            .as_deref()
            .unwrap_or_default()
            .contains("more than"),
        "{:?}",
        huge.cost_note
    );
    for (entry, shown) in [(&entries[1], "-5"), (&entries[2], "1.5")] {
        assert_eq!(entry.input_tokens, None, "left out");
        assert_eq!(entry.cost_usd, None);
        let problems = entry.metadata.as_ref().unwrap()["llm_audit.problems"].to_string();
        assert!(
            problems.contains(shown) && problems.contains("not a count"),
            "{problems}"
        );
    }
    assert_eq!(entries[1].output_tokens, Some(7));
    assert_eq!(entries[2].output_tokens, Some(2));
}

/// For random keys, and server replies that embed them in random spellings and places (error
/// type, message, body text, request id, a stream's error event), no output of the clients
/// (error, its Debug, the entry, the logs) holds the key in any of them.
#[test]
fn random_keys_echoed_in_random_spellings_reach_no_output() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    const TOKEN: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-";
    for case in 0..24 {
        let len = 12 + (next() % 30) as usize;
        let key: String = (0..len)
            .map(|_| TOKEN[(next() % TOKEN.len() as u64) as usize] as char)
            .collect();
        let spell = |how: u64, mask: u64| -> String {
            match how % 4 {
                0 => key.clone(),
                1 => key
                    .chars()
                    .enumerate()
                    .map(|(i, c)| {
                        if mask >> (i % 64) & 1 == 1 {
                            format!("\\u{:04x}", c as u32)
                        } else {
                            c.to_string()
                        }
                    })
                    .collect(),
                2 => key
                    .bytes()
                    .enumerate()
                    .map(|(i, b)| {
                        if mask >> (i % 64) & 1 == 1 {
                            format!("%{b:02X}")
                        } else {
                            (b as char).to_string()
                        }
                    })
                    .collect(),
                _ => base64::engine::general_purpose::STANDARD
                    .encode(format!("{}{key}!", &"ab:"[..(mask % 3) as usize])),
            }
        };
        let spelled: Vec<String> = (0..4).map(|_| spell(next(), next())).collect();
        let body = format!(
            "{{\"error\":{{\"type\":\"t {}\",\"message\":\"m {} and {}\"}}}}",
            spelled[0], spelled[1], spelled[2]
        );
        let stream = format!(
            "event: message_start\ndata: {{\"type\":\"message_start\",\"message\":{{\"id\":\"m\",\"model\":\"claude\",\"content\":[],\"usage\":{{\"input_tokens\":1,\"output_tokens\":1}}}}}}\n\nevent: error\ndata: {{\"type\":\"error\",\"error\":{{\"type\":\"{}\",\"message\":\"{}\"}}}}\n\n",
            spelled[3], spelled[1]
        );
        let client_key = key.clone();
        let used = spelled.clone();
        let ((outputs, debug), entries, logs) = audited(|| async move {
            let server = LlmServer::start().await;
            let status = [400, 401, 429, 500][case % 4];
            server.reply(Reply::json(status, &body).header("request-id", &spelled[3]));
            server.reply(Reply::json(status, &body));
            server.reply(Reply::sse(&stream, 7));
            let a =
                AnthropicClient::new(ApiKey::new(client_key.clone())).with_base_url(&server.url());
            let o = OpenAiClient::new(ApiKey::new(client_key))
                .with_base_url(&format!("{}/v1", server.url()));
            let e1 = a.messages(&request()).await.unwrap_err();
            let e2 = o.chat(&chat()).await.unwrap_err();
            let e3 = a
                .messages_stream(&request())
                .await
                .unwrap()
                .collect()
                .await
                .unwrap_err();
            (
                vec![e1.to_string(), e2.to_string(), e3.to_string()],
                format!("{e1:?} {e2:?} {e3:?}"),
            )
        });
        let everything = format!(
            "{} {debug} {} {logs}",
            outputs.join(" "),
            serde_json::to_string(&entries).unwrap()
        );
        let shown = |at: usize| {
            everything
                .chars()
                .skip(at.saturating_sub(80))
                .take(200)
                .collect::<String>()
        };
        if let Some(at) = everything.find(&key) {
            panic!("case {case}: the key {key:?} shows: …{}…", shown(at));
        }
        for s in &used {
            assert!(!everything.contains(s.as_str()), "case {case}: {s} shows");
        }
        assert_eq!(entries.len(), 3, "case {case}");
    }
}
