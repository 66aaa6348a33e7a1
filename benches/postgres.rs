//! The reference design's PostgreSQL path (one INSERT and one commit per entry) against
//! `PostgresSink` (binary COPY) with batches of 100, 1,000 and 10,000 entries, on the same
//! entries, in one run, against the real database at 127.0.0.1:5432 (skipped with the reason
//! printed when it is not there, except under `CI=true`).
//!
//! `cargo bench --features postgres --bench postgres`

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

mod support;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use tokio_postgres::NoTls;
use tracing_llm_audit::{AuditSink, PostgresSink};

use support::entries;

const BASE: &str = "host=127.0.0.1 port=5432 user=postgres dbname=test";
const SCHEMA: &str = "llm_audit_bench";

fn bench_postgres(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let client = match runtime.block_on(tokio_postgres::connect(BASE, NoTls)) {
        Ok((client, connection)) => {
            runtime.spawn(connection);
            client
        }
        Err(error) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "PostgreSQL is not reachable at {BASE}: {error}"
            );
            eprintln!("skipped: PostgreSQL is not reachable at {BASE}: {error}");
            return;
        }
    };
    runtime
        .block_on(client.batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA}"
        )))
        .expect("schema");
    let url = format!("{BASE} options='-c search_path={SCHEMA}'");
    let spill = tempfile::tempdir().expect("spill dir");
    let mut sink = PostgresSink::builder(&url)
        .with_spill_dir(spill.path())
        .with_copy_rows(10_000)
        .build()
        .expect("sink");
    // Connects and migrates.
    sink.write_batch(&entries(1)).expect("first write");

    let mut group = c.benchmark_group("postgres_rows");
    group.sample_size(10);
    for rows in [100, 1_000, 10_000] {
        group.throughput(Throughput::Elements(rows as u64));
        group.bench_with_input(
            BenchmarkId::new("sink_copy_batch", rows),
            &rows,
            |b, &rows| {
                b.iter_batched(
                    || entries(rows),
                    |batch| sink.write_batch(black_box(&batch)).expect("write"),
                    BatchSize::PerIteration,
                );
            },
        );
    }
    // The reference design: one INSERT and one commit per entry (autocommit).
    let (reference, connection) = runtime
        .block_on(tokio_postgres::connect(&url, NoTls))
        .expect("connect");
    runtime.spawn(connection);
    let insert = runtime
        .block_on(reference.prepare(
            "INSERT INTO llm_audit_log (request_id, timestamp, user_id, model, action, \
             system_prompt_hash, input_tokens, output_tokens, thinking_tokens, latency_ms, \
             cost_usd, status, error_message, sanitization_count, input_hash, output_hash, \
             metadata, schema_version) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,1)",
        ))
        .expect("prepare");
    group.throughput(Throughput::Elements(1_000));
    group.bench_function("reference_insert_and_commit_per_entry", |b| {
        b.iter_batched(
            || entries(1_000),
            |batch| {
                runtime.block_on(async {
                    for e in &batch {
                        let as_i64 = |n: Option<u64>| n.map(|n| n as i64);
                        reference
                            .execute(
                                &insert,
                                &[
                                    &e.request_id,
                                    &e.timestamp,
                                    &e.user_id,
                                    &e.model,
                                    &e.action,
                                    &e.system_prompt_hash,
                                    &as_i64(e.input_tokens),
                                    &as_i64(e.output_tokens),
                                    &as_i64(e.thinking_tokens),
                                    &(e.latency_ms as i64),
                                    &e.cost_usd,
                                    &e.status.as_str(),
                                    &e.error_message,
                                    &(e.sanitization_count as i64),
                                    &e.input_hash,
                                    &e.output_hash,
                                    &None::<serde_json::Value>,
                                ],
                            )
                            .await
                            .expect("insert");
                    }
                });
            },
            BatchSize::PerIteration,
        );
    });
    server_alone(&runtime, &client, &mut group);
    group.finish();
    sink.shutdown().expect("shutdown");
    let _ = runtime.block_on(client.batch_execute(&format!("DROP SCHEMA {SCHEMA} CASCADE")));
}

/// The server's own ceiling, with no client in the way: the sink's rows of 10,000 entries (with
/// fresh ids each time), in two files the server wrote itself, loaded by two concurrent
/// `COPY ... FROM '<file>'` of 5,000 rows each (as the sink splits a batch of 10,000) into a
/// table made by the same migrations. Needs a superuser on a server on this machine; skipped,
/// with the reason printed, otherwise.
fn server_alone(
    runtime: &tokio::runtime::Runtime,
    client: &tokio_postgres::Client,
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
) {
    let ceiling = format!("{SCHEMA}_ceiling");
    let url = format!("{BASE} options='-c search_path={ceiling}'");
    let files = [
        "/tmp/llm_audit_bench_ceiling_0.bin",
        "/tmp/llm_audit_bench_ceiling_1.bin",
    ];
    runtime
        .block_on(client.batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {ceiling} CASCADE; CREATE SCHEMA {ceiling}"
        )))
        .expect("schema");
    let spill = tempfile::tempdir().expect("spill dir");
    // The same migrations, applied as the sink applies them.
    let mut migrator = PostgresSink::builder(&url)
        .with_spill_dir(spill.path())
        .build()
        .expect("sink");
    // The rows: the benchmark's entries as the sink writes them.
    migrator
        .write_batch(&entries(10_000))
        .expect("migrate and write");
    migrator.shutdown().expect("shutdown");
    // Writing a file on the server is the superuser's right this needs.
    let prepared = runtime.block_on(client.batch_execute(&format!(
        "CREATE TABLE {ceiling}.staging (LIKE {ceiling}.llm_audit_log INCLUDING DEFAULTS); \
         INSERT INTO {ceiling}.staging SELECT * FROM {ceiling}.llm_audit_log; \
         CREATE SEQUENCE {ceiling}.ids; \
         COPY (SELECT 1) TO '{}' WITH (FORMAT binary)",
        files[0]
    )));
    if let Err(error) = prepared {
        eprintln!("skipped: the server's own ceiling needs a superuser on this machine: {error}");
        let _ = runtime.block_on(client.batch_execute(&format!("DROP SCHEMA {ceiling} CASCADE")));
        return;
    }
    let staged: i64 = runtime
        .block_on(client.query_one(&format!("SELECT count(*) FROM {ceiling}.staging"), &[]))
        .expect("count")
        .get(0);
    assert_eq!(staged, 10_000, "the rows to load");
    let connect = || {
        let (c, connection) = runtime
            .block_on(tokio_postgres::connect(&url, NoTls))
            .expect("connect");
        runtime.spawn(connection);
        c
    };
    let (a, b) = (connect(), connect());
    let load = files.map(|file| format!("COPY llm_audit_log FROM '{file}' WITH (FORMAT binary)"));
    group.throughput(Throughput::Elements(10_000));
    group.bench_function("server_alone_copy_from_files/10000", |bench| {
        bench.iter_batched(
            // Fresh ids, ordered as v7 ids are, and this month's partition.
            || {
                runtime
                    .block_on(client.batch_execute(&format!(
                        "UPDATE {ceiling}.staging SET timestamp = now(), \
                         request_id = lpad(to_hex(nextval('{ceiling}.ids')), 32, '0')::uuid; \
                         COPY (SELECT * FROM {ceiling}.staging ORDER BY request_id LIMIT 5000) \
                         TO '{}' WITH (FORMAT binary); \
                         COPY (SELECT * FROM {ceiling}.staging ORDER BY request_id OFFSET 5000) \
                         TO '{}' WITH (FORMAT binary)",
                        files[0], files[1]
                    )))
                    .expect("files");
            },
            |()| {
                runtime.block_on(async {
                    let (x, y) = tokio::join!(a.batch_execute(&load[0]), b.batch_execute(&load[1]));
                    x.and(y).expect("copy from file");
                });
            },
            BatchSize::PerIteration,
        );
    });
    let _ = runtime.block_on(client.batch_execute(&format!(
        "DROP SCHEMA {ceiling} CASCADE; \
         COPY (SELECT 1 WHERE false) TO '{}'; COPY (SELECT 1 WHERE false) TO '{}'",
        files[0], files[1]
    )));
}

criterion_group!(benches, bench_postgres);
criterion_main!(benches);
