//! Audited calls into PostgreSQL with least privilege: the sink connects as the application's
//! login role, a member of `llm_audit_writer`, which may insert and nothing else (no DDL, no
//! reading, no UPDATE or DELETE). Then the reference design's "daily cost by user" query runs as
//! a reader.
//!
//! Four connections, four jobs (docs/postgres.md sets them up step by step, and a test runs
//! every step as written):
//!
//! - `$ADMIN_URL`: a superuser, for the one-time setup: the database, the roles step.
//! - `$OWNER_URL`: the login that owns the schema (the database's owner, later a member of
//!   `llm_audit_owner`): it applies the migrations (`llm-audit migrate`) and runs retention.
//! - `$WRITER_URL`: the application's login, a member of `llm_audit_writer`: this sink.
//! - `$READER_URL`: the CLI's and auditors' login, a member of `llm_audit_reader`.
//!
//! The order matters: `llm-audit migrate` first, as the owner (it creates the tables), then the
//! roles step (`llm-audit roles`, as the superuser: it hands the tables to `llm_audit_owner` and
//! grants the writer and the reader their privileges; run it again after every migrate):
//!
//! ```sh
//! llm-audit migrate --postgres "$OWNER_URL"
//! llm-audit roles | psql -q -v ON_ERROR_STOP=1 "$ADMIN_URL"
//! LLM_AUDIT_WRITER_URL="$WRITER_URL" LLM_AUDIT_READER_URL="$READER_URL" \
//!     cargo run --example postgres --features postgres
//! ```
//!
//! A database that answers but is not set up for the writer (no migrations, no roles step) is a
//! configuration error: building the sink fails and says what to run. A database that does not
//! answer is an outage: entries wait in the spill directory (`LLM_AUDIT_SPILL_DIR`, default
//! `./audit_spill`), are counted as spilled, not written, and go in at the next run.

use std::process::ExitCode;
use std::time::Duration;

use tracing_llm_audit::sink::postgres::{connect_reader, QUERY_DAILY_COST_BY_USER};
use tracing_llm_audit::{llm_span, AuditLayer, LlmSpanExt, PostgresSink, Usage};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

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

/// Errors are printed with `Display`, their sentence, not `Debug`.
fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let writer_url = std::env::var("LLM_AUDIT_WRITER_URL").map_err(|_| {
        "LLM_AUDIT_WRITER_URL must be set to the application's connection string, a login role \
         in llm_audit_writer (see the top of examples/postgres.rs and docs/postgres.md)"
    })?;
    let spill_dir =
        std::env::var("LLM_AUDIT_SPILL_DIR").unwrap_or_else(|_| "./audit_spill".to_owned());
    let sink = PostgresSink::builder(&writer_url)
        .with_spill_dir(&spill_dir)
        // The owner has applied the migrations; the writer only checks that they are there.
        .with_migrations(false)
        .build()?;
    let spill = sink.spill_status();
    let (audit, guard) = AuditLayer::builder()
        .with_sink(sink)
        // LLM_AUDIT_HASH_KEY when it is set; a throwaway key otherwise (build() warns).
        .with_ephemeral_hash_key()
        .build()?;
    tracing_subscriber::registry().with(audit).init();

    ask("alice", "claude-sonnet-4-5", 1_200);
    ask("bob", "claude-haiku-4-5", 800);
    ask("alice", "claude-haiku-4-5", 3_000);

    let stats = guard.shutdown(Duration::from_secs(30))?;
    let sink_stats = &stats.sinks[0];
    println!(
        "{} entries written to PostgreSQL, {} spilled to {spill_dir}",
        sink_stats.written, sink_stats.spilled
    );
    if spill.pending_entries() > 0 {
        println!(
            "{} entries wait in {spill_dir} for the next run: {}",
            spill.pending_entries(),
            spill.last_error().unwrap_or_default()
        );
    }

    // The reference design's query, unchanged, as the reader: the writer may not read.
    let Ok(reader_url) = std::env::var("LLM_AUDIT_READER_URL") else {
        println!("set LLM_AUDIT_READER_URL (a login role in llm_audit_reader) to read them back");
        return Ok(());
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = connect_reader(&reader_url).await?;
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
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    Ok(())
}
