//! A server that sends a gigabyte (an error body, an answer, one endless event-stream line) does
//! not make the client hold it (issue 21): each is read only to its bound, the call fails with
//! the bound named, and the process's peak memory stays far below the body's size. Alone in its
//! test binary, so that the peak is this test's.

#![cfg(feature = "clients")]

#[path = "support/llm_server.rs"]
mod llm_server;

use llm_server::{LlmServer, Reply};
use tracing_llm_audit::clients::anthropic::{AnthropicClient, Message, MessagesRequest};
use tracing_llm_audit::clients::openai::{ChatMessage, ChatRequest, OpenAiClient};
use tracing_llm_audit::clients::{ApiKey, ErrorKind};

/// The process's peak resident size so far, in KiB (`VmHWM`).
fn peak_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// A reply of `status` whose body goes on for a gigabyte, never held by the server either.
fn gigabyte(status: u16, start: &str, piece: &[u8], content_type: &str) -> Reply {
    Reply {
        status,
        headers: vec![("content-type".into(), content_type.into())],
        chunks: vec![start.as_bytes().to_vec()],
        repeat: Some((piece.to_vec(), (1u64 << 30) / piece.len() as u64)),
        ..Reply::default()
    }
}

#[test]
fn a_gigabyte_from_the_server_is_read_only_to_its_bound() {
    if !std::path::Path::new("/proc/self/status").exists() {
        eprintln!("skipped: no /proc/self/status to read the peak memory from");
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let before = peak_kib();
    let kinds = runtime.block_on(async {
        let server = LlmServer::start().await;
        let piece = vec![b'x'; 1 << 16];
        // An error body, an answer, and one event line: each a gigabyte.
        server.reply(gigabyte(
            500,
            "{\"error\":{\"message\":\"",
            &piece,
            "application/json",
        ));
        server.reply(gigabyte(200, "{\"id\":\"", &piece, "application/json"));
        server.reply(gigabyte(
            200,
            "data: {\"id\":\"",
            &piece,
            "text/event-stream",
        ));
        let anthropic =
            AnthropicClient::new(ApiKey::new("sk-test-key")).with_base_url(&server.url());
        let openai = OpenAiClient::new(ApiKey::new("sk-test-key"))
            .with_base_url(&format!("{}/v1", server.url()));
        let request = MessagesRequest::new("claude-sonnet-4-5", 64).message(Message::user("Hello"));
        let a = anthropic.messages(&request).await.unwrap_err();
        let b = anthropic.messages(&request).await.unwrap_err();
        let chat = ChatRequest::new("gpt-4o").message(ChatMessage::user("Hello"));
        let c = match openai.chat_stream(&chat).await {
            Ok(stream) => stream.collect().await.unwrap_err(),
            Err(e) => e,
        };
        [a.kind().clone(), b.kind().clone(), c.kind().clone()]
    });
    let grown_mib = peak_kib().saturating_sub(before) >> 10;
    assert!(
        matches!(&kinds[0], ErrorKind::Api { status: 500, message, .. } if message.len() <= 1100),
        "{:?}",
        &kinds[0]
    );
    for (kind, what) in [(&kinds[1], "answer"), (&kinds[2], "stream event")] {
        assert!(
            matches!(kind, ErrorKind::TooLarge { what: w, limit } if *w == what && *limit == 32 << 20),
            "{kind:?}"
        );
        assert!(kind.to_string().contains("33554432 bytes"), "{kind}");
    }
    // Bounds of 64 KiB and 32 MiB: the gigabyte never came in.
    assert!(grown_mib < 200, "the peak grew by {grown_mib} MiB");
}
