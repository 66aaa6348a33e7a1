//! The audited Anthropic and OpenAI clients against a local server that speaks their wire
//! formats (bodies and event streams from the API references, see
//! `tests/fixtures/clients/README.md`): every call is one entry with the right fields, cost and
//! status, the caller gets the right answer or error, and the API key shows nowhere.

#![cfg(feature = "clients")]

#[path = "support/llm_server.rs"]
mod llm_server;

use std::future::Future;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use llm_server::{LlmServer, Reply};
use rust_decimal::Decimal;
use tracing_llm_audit::clients::anthropic::{AnthropicClient, Message, MessagesRequest};
use tracing_llm_audit::clients::openai::{ChatMessage, ChatRequest, OpenAiClient};
use tracing_llm_audit::clients::{ApiKey, Blocked, ErrorKind, Redactions};
use tracing_llm_audit::{AuditEntry, AuditLayer, HashKey, MemorySink, Overflow, Status};
use tracing_subscriber::layer::SubscriberExt;

const KEY: &str = "sk-test-SECRET-0123456789";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/clients/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn hash_key() -> HashKey {
    HashKey::new("clients", [7u8; 32]).unwrap()
}

/// Everything the application's subscriber printed, at TRACE, from every crate (reqwest and
/// hyper included).
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

/// Runs `f` on a Tokio runtime under an audit layer (and a TRACE `fmt` layer); returns its
/// output, the entries and the log text.
fn audited<F: Future>(f: impl FnOnce() -> F) -> (F::Output, Vec<AuditEntry>, String) {
    let sink = MemorySink::new();
    let (layer, guard) = AuditLayer::builder()
        .with_sink(sink.clone())
        .with_hash_key(hash_key())
        .with_overflow(Overflow::Block)
        .build()
        .unwrap();
    // reqwest logs through `log`: forward it, so that its records are checked too.
    let _ = tracing_log::LogTracer::init();
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
    let stats = guard.shutdown(Duration::from_secs(10)).unwrap();
    assert!(stats.is_lossless(), "{stats:?}");
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    (output, sink.entries(), text)
}

use tracing_subscriber::Layer as _;

fn anthropic(server: &LlmServer) -> AnthropicClient {
    AnthropicClient::new(ApiKey::new(KEY))
        .with_base_url(&server.url())
        .with_user("alice")
}

fn openai(server: &LlmServer) -> OpenAiClient {
    OpenAiClient::new(ApiKey::new(KEY))
        .with_base_url(&format!("{}/v1", server.url()))
        .with_user("alice")
}

fn request() -> MessagesRequest {
    MessagesRequest::new("claude-sonnet-4-5", 1024)
        .system("You are terse.")
        .message(Message::user("Hello, Claude"))
}

fn chat() -> ChatRequest {
    ChatRequest::new("gpt-4o")
        .message(ChatMessage::system("You are terse."))
        .message(ChatMessage::user("What is in this image?"))
}

fn no_secret(what: &str, text: &str) {
    assert!(!text.contains(KEY), "the API key shows in {what}: {text}");
    assert!(
        !text.contains("SECRET"),
        "part of the API key shows in {what}: {text}"
    );
}

fn metadata(entry: &AuditEntry, name: &str) -> Option<String> {
    entry
        .metadata
        .as_ref()?
        .get(name)?
        .as_str()
        .map(str::to_owned)
}

#[test]
fn anthropic_call_records_every_field_and_the_right_cost() {
    let ((answer, received), entries, logs) = audited(|| async {
        let server = LlmServer::start().await;
        server.reply(
            Reply::json(200, &fixture("anthropic_message.json"))
                .header("request-id", "req_018EeWyXxfu5pfWkrYcMdjWG"),
        );
        let answer = anthropic(&server).messages(&request()).await.unwrap();
        (answer, server.received())
    });
    assert_eq!(answer.response.text(), "Hi! My name is Claude.");
    assert!(
        logs.contains("gen_ai.call"),
        "the span is in the log: {logs}"
    );
    let sent = &received[0];
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.header("x-api-key"), Some(KEY));
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    let body = sent.json();
    assert_eq!(body["model"], "claude-sonnet-4-5");
    assert_eq!(body["system"], "You are terse.");
    assert!(body.get("stream").is_none());

    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!(
        answer.audit_request_id,
        Some(e.request_id),
        "the caller gets the entry's id"
    );
    assert_eq!(
        answer.provider_request_id.as_deref(),
        Some("req_018EeWyXxfu5pfWkrYcMdjWG")
    );
    assert_eq!(
        metadata(e, "llm_audit.provider_request_id").as_deref(),
        Some("req_018EeWyXxfu5pfWkrYcMdjWG")
    );
    assert_eq!(e.provider.as_deref(), Some("anthropic"));
    assert_eq!(e.action, "chat");
    assert_eq!(e.model.as_deref(), Some("claude-sonnet-4-5"));
    assert_eq!(
        e.response_model.as_deref(),
        Some("claude-sonnet-4-5-20250929")
    );
    assert_eq!(
        e.response_id.as_deref(),
        Some("msg_013Zva2CMHLNnXjNJJKqJ2EF")
    );
    assert_eq!(e.finish_reasons, Some(vec!["end_turn".to_owned()]));
    assert_eq!(e.user_id.as_deref(), Some("alice"));
    assert_eq!(e.streaming, Some(false));
    // Anthropic counts cache reads and writes apart from input_tokens: all three are input.
    assert_eq!(e.input_tokens, Some(2095 + 1024 + 4096));
    assert_eq!(e.cache_read_tokens, Some(4096));
    assert_eq!(e.cache_write_tokens, Some(1024));
    assert_eq!(e.output_tokens, Some(503));
    assert_eq!(
        e.thinking_tokens, None,
        "Anthropic does not count thinking apart"
    );
    // $3 input, $3.75 cache write, $0.30 cache read, $15 output per million tokens.
    let expected = (Decimal::from(2095 * 3)
        + Decimal::new(1024 * 375, 2)
        + Decimal::new(4096 * 30, 2)
        + Decimal::from(503 * 15))
        / Decimal::from(1_000_000);
    assert_eq!(
        e.cost_usd.map(|c| c.normalize()),
        Some(expected.normalize())
    );
    assert_eq!(e.status, Status::Success);
    let key = hash_key();
    assert_eq!(e.system_prompt_hash, Some(key.hash(b"You are terse.")));
    assert_eq!(
        e.input_hash,
        Some(key.hash(&serde_json::to_vec(&body["messages"]).unwrap()))
    );
    assert_eq!(e.output_hash, Some(key.hash(b"Hi! My name is Claude.")));
    no_secret("the entry", &serde_json::to_string(e).unwrap());
    no_secret("the logs", &logs);
}

#[test]
fn anthropic_stream_split_anywhere_gives_the_same_entry() {
    for piece in [1, 2, 3, 7, 13, 64, 100_000] {
        let (text, entries, logs) = audited(|| async {
            let server = LlmServer::start().await;
            server.reply(Reply::sse(&fixture("anthropic_stream.sse"), piece));
            let stream = anthropic(&server)
                .messages_stream(&request())
                .await
                .unwrap();
            let done = stream.collect().await.unwrap();
            assert_eq!(server.received()[0].json()["stream"], true);
            done.response.text()
        });
        assert_eq!(text, "Hello! Ça va ? 👋", "pieces of {piece} bytes");
        let e = &entries[0];
        assert_eq!(e.streaming, Some(true));
        assert!(e.time_to_first_chunk_ms.is_some());
        assert!(e.time_to_first_chunk_ms <= Some(e.latency_ms));
        assert_eq!(e.input_tokens, Some(125));
        assert_eq!(e.cache_read_tokens, Some(100));
        assert_eq!(
            e.output_tokens,
            Some(15),
            "the final count of message_delta"
        );
        assert_eq!(e.finish_reasons, Some(vec!["end_turn".to_owned()]));
        assert_eq!(
            e.response_id.as_deref(),
            Some("msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY")
        );
        assert_eq!(e.status, Status::Success);
        assert_eq!(
            e.output_hash,
            Some(hash_key().hash("Hello! Ça va ? 👋".as_bytes()))
        );
        assert!(e.cost_usd.is_some());
        no_secret("the logs", &logs);
    }
}

#[test]
fn anthropic_api_errors_are_recorded_and_returned() {
    for (status, kind) in [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (529, "overloaded_error"),
    ] {
        let body = fixture(&format!("anthropic_error_{status}.json"));
        let (error, entries, logs) = audited(|| async {
            let server = LlmServer::start().await;
            server.reply(Reply::json(status, &body).header("request-id", "req_err"));
            anthropic(&server).messages(&request()).await.unwrap_err()
        });
        let e = &entries[0];
        let message: serde_json::Value = serde_json::from_str(&body).unwrap();
        let message = message["error"]["message"].as_str().unwrap();
        match error.kind() {
            ErrorKind::Api {
                status: s,
                error_type,
                message: m,
                body: b,
            } => {
                assert_eq!(*s, status);
                assert_eq!(error_type, kind);
                assert_eq!(m, message);
                assert_eq!(b.trim(), body.trim(), "the body, unchanged");
            }
            other => panic!("{status}: {other:?}"),
        }
        assert_eq!(error.audit_request_id(), Some(e.request_id));
        assert_eq!(error.provider_request_id(), Some("req_err"));
        assert_eq!(e.status, Status::Error);
        assert_eq!(e.error_type.as_deref(), Some(kind));
        assert!(
            e.error_message.as_deref().unwrap().contains(message),
            "{e:?}"
        );
        assert_eq!(e.input_tokens, None, "no usage was reported");
        assert_eq!(e.cost_usd, None);
        no_secret("the error", &format!("{error} {error:?}"));
        no_secret("the logs", &logs);
    }
}

#[test]
fn anthropic_stream_errors_record_what_arrived() {
    // An `error` event mid-stream.
    let (error, entries, _) = audited(|| async {
        let server = LlmServer::start().await;
        server.reply(Reply::sse(&fixture("anthropic_stream_error.sse"), 17));
        let mut stream = anthropic(&server)
            .messages_stream(&request())
            .await
            .unwrap();
        let mut events = 0;
        loop {
            match stream.next_event().await {
                Some(Ok(_)) => events += 1,
                Some(Err(e)) => {
                    assert_eq!(events, 3);
                    assert!(stream.next_event().await.is_none(), "the stream is over");
                    return e;
                }
                None => panic!("no error"),
            }
        }
    });
    assert!(
        matches!(error.kind(), ErrorKind::Stream { error_type, .. } if error_type == "overloaded_error"),
        "{error:?}"
    );
    let e = &entries[0];
    assert_eq!(e.status, Status::Error);
    assert_eq!(e.error_type.as_deref(), Some("overloaded_error"));
    assert_eq!(e.input_tokens, Some(25));
    assert_eq!(e.output_hash, Some(hash_key().hash(b"Partial")));

    // A stream cut off in the middle (no terminating chunk).
    let full = fixture("anthropic_stream.sse");
    let cut = &full[..full.find("event: message_delta").unwrap() + 30];
    let (error, entries, _) = audited(|| async {
        let server = LlmServer::start().await;
        let mut reply = Reply::sse(cut, 50);
        reply.cut = true;
        server.reply(reply);
        anthropic(&server)
            .messages_stream(&request())
            .await
            .unwrap()
            .collect()
            .await
            .unwrap_err()
    });
    assert!(
        matches!(error.kind(), ErrorKind::Stream { .. }),
        "{error:?}"
    );
    let e = &entries[0];
    assert_eq!(e.status, Status::Error);
    assert!(
        e.error_type.as_deref().unwrap().starts_with("stream_"),
        "{e:?}"
    );
    assert_eq!(
        e.output_hash,
        Some(hash_key().hash("Hello! Ça va ? 👋".as_bytes())),
        "what arrived"
    );

    // Dropped by the caller after the first event.
    let (_, entries, _) = audited(|| async {
        let server = LlmServer::start().await;
        server.reply(Reply::sse(&full, 40));
        let mut stream = anthropic(&server)
            .messages_stream(&request())
            .await
            .unwrap();
        stream.next_event().await.unwrap().unwrap();
    });
    assert_eq!(entries[0].error_type.as_deref(), Some("cancelled"));
    assert_eq!(entries[0].status, Status::Error);
}

#[test]
fn timeouts_and_refused_connections_are_errors_with_an_entry() {
    let (error, entries, _) = audited(|| async {
        let server = LlmServer::start().await;
        server.reply(Reply::hang());
        anthropic(&server)
            .with_timeout(Duration::from_millis(300))
            .unwrap()
            .messages(&request())
            .await
            .unwrap_err()
    });
    assert!(matches!(error.kind(), ErrorKind::Timeout(_)), "{error:?}");
    assert_eq!(entries[0].error_type.as_deref(), Some("timeout"));
    assert_eq!(entries[0].status, Status::Error);

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", closed.local_addr().unwrap());
    drop(closed);
    let (error, entries, _) = audited(|| async {
        OpenAiClient::new(ApiKey::new(KEY))
            .with_base_url(&url)
            .chat(&chat())
            .await
            .unwrap_err()
    });
    assert!(
        matches!(error.kind(), ErrorKind::Connection(_)),
        "{error:?}"
    );
    assert_eq!(entries[0].error_type.as_deref(), Some("connection_error"));
    no_secret("the error", &format!("{error} {error:?}"));
}

#[test]
fn openai_call_records_every_field_and_the_right_cost() {
    let ((answer, received), entries, logs) = audited(|| async {
        let server = LlmServer::start().await;
        server.reply(
            Reply::json(200, &fixture("openai_chat.json")).header("x-request-id", "req_abc123"),
        );
        let answer = openai(&server).chat(&chat()).await.unwrap();
        (answer, server.received())
    });
    assert!(answer.response.text().starts_with("The image shows"));
    let sent = &received[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert!(
        sent.json().get("user").is_none(),
        "the user id stays in the audit trail"
    );
    let e = &entries[0];
    assert_eq!(answer.audit_request_id, Some(e.request_id));
    assert_eq!(
        metadata(e, "llm_audit.provider_request_id").as_deref(),
        Some("req_abc123")
    );
    assert_eq!(e.provider.as_deref(), Some("openai"));
    assert_eq!(e.response_model.as_deref(), Some("gpt-4o-2024-08-06"));
    assert_eq!(
        e.response_id.as_deref(),
        Some("chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG")
    );
    assert_eq!(e.finish_reasons, Some(vec!["stop".to_owned()]));
    // OpenAI's prompt_tokens include the cached ones, completion_tokens the reasoning ones.
    assert_eq!(e.input_tokens, Some(1117));
    assert_eq!(e.cache_read_tokens, Some(1024));
    assert_eq!(e.output_tokens, Some(46));
    assert_eq!(e.thinking_tokens, Some(12));
    // $2.50 input, $1.25 cached input, $10 output per million; reasoning is output, once.
    let expected =
        (Decimal::new(93 * 250, 2) + Decimal::new(1024 * 125, 2) + Decimal::from(46 * 10))
            / Decimal::from(1_000_000);
    assert_eq!(
        e.cost_usd.map(|c| c.normalize()),
        Some(expected.normalize())
    );
    let key = hash_key();
    assert_eq!(e.system_prompt_hash, Some(key.hash(b"You are terse.")));
    let body = sent.json();
    let input: Vec<&serde_json::Value> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] != "system")
        .collect();
    assert_eq!(
        e.input_hash,
        Some(key.hash(&serde_json::to_vec(&input).unwrap()))
    );
    no_secret("the entry", &serde_json::to_string(e).unwrap());
    no_secret("the logs", &logs);
}

#[test]
fn openai_stream_split_anywhere_asks_for_usage_and_records_it() {
    for piece in [1, 5, 11, 4096] {
        let ((text, body), entries, _) = audited(|| async {
            let server = LlmServer::start().await;
            server.reply(Reply::sse(&fixture("openai_stream.sse"), piece));
            let request = ChatRequest::new("gpt-4o-mini").message(ChatMessage::user("Hi"));
            let done = openai(&server)
                .chat_stream(&request)
                .await
                .unwrap()
                .collect()
                .await
                .unwrap();
            (done.response.text().to_owned(), server.received()[0].json())
        });
        assert_eq!(body["stream"], true);
        assert_eq!(body["stream_options"]["include_usage"], true);
        assert_eq!(text, "Hello wörld 🌍");
        let e = &entries[0];
        assert_eq!(e.input_tokens, Some(9));
        assert_eq!(e.output_tokens, Some(12));
        assert_eq!(e.finish_reasons, Some(vec!["stop".to_owned()]));
        assert_eq!(e.response_model.as_deref(), Some("gpt-4o-mini-2024-07-18"));
        assert!(e.time_to_first_chunk_ms.is_some());
        assert_eq!(e.status, Status::Success);
        assert_eq!(
            e.output_hash,
            Some(hash_key().hash("Hello wörld 🌍".as_bytes()))
        );
        // $0.15 input, $0.60 output per million.
        let expected =
            (Decimal::new(9 * 15, 2) + Decimal::new(12 * 60, 2)) / Decimal::from(1_000_000);
        assert_eq!(
            e.cost_usd.map(|c| c.normalize()),
            Some(expected.normalize())
        );
    }
    // Cut before [DONE]: what arrived, and an error.
    let full = fixture("openai_stream.sse");
    let cut = &full[..full.find("\"choices\":[]").unwrap()];
    let (error, entries, _) = audited(|| async {
        let server = LlmServer::start().await;
        let mut reply = Reply::sse(cut, 30);
        reply.cut = true;
        server.reply(reply);
        openai(&server)
            .chat_stream(&chat())
            .await
            .unwrap()
            .collect()
            .await
            .unwrap_err()
    });
    assert!(
        matches!(error.kind(), ErrorKind::Stream { .. }),
        "{error:?}"
    );
    assert_eq!(entries[0].status, Status::Error);
    assert_eq!(
        entries[0].output_hash,
        Some(hash_key().hash("Hello wörld 🌍".as_bytes()))
    );
}

#[test]
fn openai_errors_are_recorded_and_an_echoed_key_is_scrubbed() {
    for (status, kind) in [
        (401, "invalid_api_key"),
        (429, "rate_limit_exceeded"),
        (500, "server_error"),
    ] {
        let (error, entries, logs) = audited(|| async {
            let server = LlmServer::start().await;
            server.reply(Reply::json(
                status,
                &fixture(&format!("openai_error_{status}.json")),
            ));
            openai(&server).chat(&chat()).await.unwrap_err()
        });
        let ErrorKind::Api {
            status: s,
            error_type,
            ..
        } = error.kind()
        else {
            panic!("{error:?}")
        };
        assert_eq!((*s, error_type.as_str()), (status, kind));
        let e = &entries[0];
        assert_eq!(e.status, Status::Error);
        assert_eq!(e.error_type.as_deref(), Some(kind));
        no_secret("the entry", &serde_json::to_string(e).unwrap());
        no_secret("the error", &format!("{error} {error:?}"));
        no_secret("the logs", &logs);
    }
}

#[test]
fn compatible_servers_get_their_own_provider_name() {
    let ((_, received), entries, _) = audited(|| async {
        let server = LlmServer::start().await;
        server.reply(Reply::json(200, &fixture("openai_chat.json")));
        let client = OpenAiClient::new(ApiKey::new("local"))
            .with_base_url(&format!("{}/v1/", server.url()))
            .with_provider("vllm");
        let answer = client.chat_for(&chat(), Some("bob")).await.unwrap();
        (answer, server.received())
    });
    assert_eq!(received[0].path, "/v1/chat/completions");
    assert_eq!(entries[0].provider.as_deref(), Some("vllm"));
    assert_eq!(
        entries[0].user_id.as_deref(),
        Some("bob"),
        "the call's user wins"
    );
}

#[test]
fn the_before_send_hook_redacts_counts_and_blocks() {
    let redact = |body: &mut serde_json::Value,
                  redactions: &mut Redactions|
     -> Result<(), Blocked> {
        let text = body["messages"][0]["content"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if text.contains("BLOCK") {
            return Err(Blocked {
                reason: "policy: no block words".to_owned(),
            });
        }
        if text.contains("bob@example.com") {
            body["messages"][0]["content"] = text.replace("bob@example.com", "[EMAIL_1]").into();
            redactions.add("email", 1);
        }
        Ok(())
    };
    let ((sent, blocked, after_block), entries, _) = audited(|| async {
        let server = LlmServer::start().await;
        server.reply(Reply::json(200, &fixture("anthropic_message.json")));
        let client = anthropic(&server).with_before_send(redact);
        let request = MessagesRequest::new("claude-sonnet-4-5", 100)
            .message(Message::user("mail bob@example.com"));
        client.messages(&request).await.unwrap();
        let sent = server.received()[0].json();
        let request =
            MessagesRequest::new("claude-sonnet-4-5", 100).message(Message::user("BLOCK this"));
        let blocked = client.messages(&request).await.unwrap_err();
        (sent, blocked, server.received().len())
    });
    assert_eq!(
        sent["messages"][0]["content"], "mail [EMAIL_1]",
        "the rewritten request is sent"
    );
    assert_eq!(entries[0].sanitization_count, 1);
    assert_eq!(entries[0].sanitization.get("email"), Some(&1));
    assert_eq!(
        entries[0].input_hash,
        Some(hash_key().hash(&serde_json::to_vec(&sent["messages"]).unwrap()))
    );
    assert!(matches!(blocked.kind(), ErrorKind::Blocked(r) if r == "policy: no block words"));
    assert_eq!(after_block, 1, "a blocked request is never sent");
    assert_eq!(entries[1].status, Status::Blocked);
    assert_eq!(blocked.audit_request_id(), Some(entries[1].request_id));
}

#[test]
fn the_api_key_never_shows_in_debug_output() {
    let client = AnthropicClient::new(ApiKey::new(KEY));
    no_secret("Debug of the client", &format!("{client:?}"));
    let client = OpenAiClient::new(ApiKey::new(KEY));
    no_secret("Debug of the client", &format!("{client:?}"));
    no_secret("Debug of the key", &format!("{:?}", ApiKey::new(KEY)));
}

#[test]
fn a_finished_stream_is_recorded_at_its_end_not_when_dropped() {
    let (until_end, entries, _) = audited(|| async {
        let server = LlmServer::start().await;
        server.reply(Reply::sse(&fixture("anthropic_stream.sse"), 64));
        let started = std::time::Instant::now();
        let mut stream = anthropic(&server)
            .messages_stream(&request())
            .await
            .unwrap();
        while stream.next_event().await.is_some() {}
        let until_end = started.elapsed();
        assert!(stream.audit_request_id().is_some());
        // The caller keeps the stream around; the call ended at message_stop.
        tokio::time::sleep(Duration::from_millis(500)).await;
        drop(stream);
        until_end
    });
    assert_eq!(entries[0].status, Status::Success);
    // The span opened after `started` and closed at the end of the stream, not at the drop.
    assert!(
        u128::from(entries[0].latency_ms) <= until_end.as_millis(),
        "latency {} ms, the stream ended after {} ms",
        entries[0].latency_ms,
        until_end.as_millis()
    );
}

#[test]
fn a_call_dropped_by_its_caller_is_recorded_as_cancelled() {
    let (timed_out, entries, _) = audited(|| async {
        let server = LlmServer::start().await;
        server.reply(Reply::hang());
        let client = openai(&server);
        tokio::time::timeout(Duration::from_millis(200), client.chat(&chat()))
            .await
            .is_err()
    });
    assert!(timed_out);
    assert_eq!(entries[0].status, Status::Error);
    assert_eq!(entries[0].error_type.as_deref(), Some("cancelled"));
}

#[test]
fn a_key_that_cannot_be_sent_is_an_error_in_the_entry_too() {
    let (error, entries, _) = audited(|| async {
        let server = LlmServer::start().await;
        // A key read from a file with Windows line ends.
        AnthropicClient::new(ApiKey::new(format!("{KEY}\r\n")))
            .with_base_url(&server.url())
            .messages(&request())
            .await
            .unwrap_err()
    });
    assert!(matches!(error.kind(), ErrorKind::Invalid(_)), "{error:?}");
    assert_eq!(entries[0].status, Status::Error);
    assert_eq!(entries[0].error_type.as_deref(), Some("invalid_request"));
    no_secret("the error", &format!("{error} {error:?}"));
}

/// Anthropic says which cache writes were for one hour and which tier served the call; OpenAI
/// says its cache writes and its tier. The entries carry them and the cost follows them: 1-hour
/// writes at 2 × input, and a tier the price table has no prices for leaves the cost unknown
/// rather than priced at the standard price.
#[test]
fn cache_write_durations_and_service_tiers_reach_the_entry_and_its_cost() {
    let anthropic_answer = r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929",
        "content":[{"type":"text","text":"ok"}],"stop_reason":"end_turn",
        "usage":{"input_tokens":100,"output_tokens":10,"cache_read_input_tokens":0,
                 "cache_creation_input_tokens":3000,
                 "cache_creation":{"ephemeral_5m_input_tokens":1000,"ephemeral_1h_input_tokens":2000},
                 "service_tier":"standard"}}"#;
    let priority_answer = anthropic_answer.replace("\"standard\"", "\"priority\"");
    let openai_answer = r#"{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o-2024-08-06",
        "service_tier":"flex",
        "choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],
        "usage":{"prompt_tokens":1000,"completion_tokens":10,"total_tokens":1010,
                 "prompt_tokens_details":{"cached_tokens":0,"cache_write_tokens":400}}}"#;
    let (_, entries, _) = audited(|| async {
        let server = LlmServer::start().await;
        server.reply(Reply::json(200, anthropic_answer));
        server.reply(Reply::json(200, &priority_answer));
        server.reply(Reply::json(200, openai_answer));
        anthropic(&server).messages(&request()).await.unwrap();
        anthropic(&server).messages(&request()).await.unwrap();
        openai(&server).chat(&chat()).await.unwrap();
    });
    let [standard, priority, flex] = entries.as_slice() else {
        panic!("{entries:?}")
    };
    assert_eq!(standard.input_tokens, Some(3100));
    assert_eq!(standard.cache_write_tokens, Some(3000));
    assert_eq!(standard.cache_write_1h_tokens, Some(2000));
    assert_eq!(standard.service_tier.as_deref(), Some("standard"));
    // Claude Sonnet 4.5: $3 input, $3.75 5-minute writes, $6 1-hour writes, $15 output per
    // million: 100 × 3 + 1000 × 3.75 + 2000 × 6 + 10 × 15 = 300 + 3750 + 12000 + 150
    // = 16200 per million = $0.0162.
    assert_eq!(standard.cost_usd, Some(Decimal::new(162, 4).round_dp(6)));
    assert!(standard
        .price_table
        .as_deref()
        .is_some_and(|t| t.starts_with("builtin ")));

    assert_eq!(priority.service_tier.as_deref(), Some("priority"));
    assert_eq!(priority.cost_usd, None);
    let note = priority.cost_note.as_deref().unwrap();
    assert!(note.contains("`priority` service tier"), "{note}");

    assert_eq!(flex.cache_write_tokens, Some(400));
    assert_eq!(flex.service_tier.as_deref(), Some("flex"));
    assert_eq!(flex.cost_usd, None, "{:?}", flex.cost_note);
}
