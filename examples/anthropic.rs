//! Audited calls to the Anthropic Messages API, plain and streamed. With `ANTHROPIC_API_KEY` set
//! they go to Anthropic; without it, to a local server on 127.0.0.1 that answers with the API
//! reference's bodies, so the example always runs. Entries go to `./audit_logs`.
//!
//! ```sh
//! cargo run --example anthropic --features clients
//! ```

#[path = "../tests/support/llm_server.rs"]
mod llm_server;

use std::time::Duration;

use tracing_llm_audit::clients::anthropic::{AnthropicClient, Message, MessagesRequest};
use tracing_llm_audit::clients::ApiKey;
use tracing_llm_audit::{AuditLayer, JsonlSink};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer as _;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (audit, guard) = AuditLayer::builder()
        .with_sink(JsonlSink::new("./audit_logs")?)
        .with_ephemeral_hash_key()
        .build()?;
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_filter(tracing_subscriber::filter::LevelFilter::WARN),
        )
        .with(audit)
        .init();

    let (client, _server) = match ApiKey::from_env("ANTHROPIC_API_KEY") {
        Some(key) => (AnthropicClient::new(key), None),
        None => {
            println!("ANTHROPIC_API_KEY is not set: calling a local simulated server");
            let server = llm_server::LlmServer::start().await;
            let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/clients/");
            let body = std::fs::read_to_string(format!("{fixtures}anthropic_message.json"))?;
            let stream = std::fs::read_to_string(format!("{fixtures}anthropic_stream.sse"))?;
            server
                .reply(llm_server::Reply::json(200, &body).header("request-id", "req_simulated_1"));
            server
                .reply(llm_server::Reply::sse(&stream, 24).header("request-id", "req_simulated_2"));
            let client =
                AnthropicClient::new(ApiKey::new("simulated")).with_base_url(&server.url());
            (client, Some(server))
        }
    };
    let client = client
        .with_user("alice")
        .with_timeout(Duration::from_secs(60))?;
    let request = MessagesRequest::new("claude-haiku-4-5", 256)
        .system("Answer in one sentence.")
        .message(Message::user("What is an audit trail?"));

    let answer = client.messages(&request).await?;
    println!(
        "{}\n  audit request id {:?}, provider request id {:?}",
        answer.response.text(),
        answer.audit_request_id,
        answer.provider_request_id
    );

    let mut stream = client.messages_stream(&request).await?;
    while let Some(event) = stream.next_event().await {
        if let Some(text) = event?.text_delta() {
            print!("{text}");
        }
    }
    println!("\n  audit request id {:?}", stream.audit_request_id());
    drop(stream);

    let stats = guard.shutdown(Duration::from_secs(5))?;
    println!(
        "{} entries written to ./audit_logs ({} dropped)",
        stats.emitted, stats.dropped
    );
    Ok(())
}
