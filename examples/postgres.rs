//! Audited calls into PostgreSQL: the sink applies the migrations, writes by binary COPY, and
//! keeps batches in `./audit_spill` while the database is unreachable. Then the reference
//! design's "daily cost by user" query runs on the table.
//!
//! ```sh
//! LLM_AUDIT_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!     cargo run --example postgres --features postgres
//! ```

use std::time::Duration;

use tracing_llm_audit::sink::postgres::QUERY_DAILY_COST_BY_USER;
use tracing_llm_audit::{llm_span, AuditLayer, LlmSpanExt, PostgresSink, Usage};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

fn ask(user: &str, model: &str, input_tokens: u64) {
    let span = llm_span!(provider = "anthropic", model = model, user = user);
    let _enter = span.enter();
    span.record_input(b"How do I reset my password?");
    span.record_usage(&Usage {
        input_tokens: Some(input_tokens),
        output_tokens: Some(250),
        ..Usage::default()
    });
    span.record_output(b"Open Settings, then Security.");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("LLM_AUDIT_DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
    let sink = PostgresSink::builder(&url)
        .with_spill_dir("./audit_spill")
        .build()?;
    let spill = sink.spill_status();
    let (audit, guard) = AuditLayer::builder()
        .with_sink(sink)
        .with_ephemeral_hash_key()
        .build()?;
    tracing_subscriber::registry().with(audit).init();

    ask("alice", "claude-sonnet-4-5", 1_200);
    ask("bob", "claude-haiku-4-5", 800);
    ask("alice", "claude-haiku-4-5", 3_000);

    let stats = guard.shutdown(Duration::from_secs(30))?;
    println!(
        "{} entries written ({} waiting in ./audit_spill{})",
        stats.sinks[0].written,
        spill.pending_entries(),
        spill
            .last_error()
            .map(|e| format!(": {e}"))
            .unwrap_or_default()
    );

    // The reference design's query, unchanged, on the table the sink wrote.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        println!("\nuser      day         requests  total cost");
        for row in client.query(QUERY_DAILY_COST_BY_USER, &[]).await? {
            let user: Option<String> = row.get("user_id");
            let day: time::Date = row.get("day");
            let requests: i64 = row.get("requests");
            let cost: Option<rust_decimal::Decimal> = row.get("total_cost");
            println!(
                "{:<9} {day}  {requests:>8}  ${}",
                user.unwrap_or_default(),
                cost.unwrap_or_default()
            );
        }
        Ok::<_, tokio_postgres::Error>(())
    })?;
    Ok(())
}
