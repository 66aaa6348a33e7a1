//! The table's migrations, its columns, and the conversion of entries to and from rows.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use time::OffsetDateTime;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Row};
use uuid::Uuid;

use crate::chain::ChainLink;
use crate::entry::{AuditEntry, Status};

/// The migrations, in order: (version, name, SQL). Applied once each, recorded in
/// `llm_audit_schema_migrations`.
pub const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "llm_audit_log",
        include_str!("../../../sql/migrations/0001_llm_audit_log.sql"),
    ),
    (
        2,
        "chain",
        include_str!("../../../sql/migrations/0002_chain.sql"),
    ),
    (
        3,
        "content",
        include_str!("../../../sql/migrations/0003_content.sql"),
    ),
    (
        4,
        "retention",
        include_str!("../../../sql/migrations/0004_retention.sql"),
    ),
    (
        5,
        "partition_limit",
        include_str!("../../../sql/migrations/0005_partition_limit.sql"),
    ),
    (
        6,
        "delete_cutoff",
        include_str!("../../../sql/migrations/0006_delete_cutoff.sql"),
    ),
    (
        7,
        "unbounded_names",
        include_str!("../../../sql/migrations/0007_unbounded_names.sql"),
    ),
    (
        8,
        "price_rules",
        include_str!("../../../sql/migrations/0008_price_rules.sql"),
    ),
];

/// The SQL that creates the owner, writer and reader roles and their privileges.
pub const ROLES_SQL: &str = include_str!("../../../sql/roles.sql");

/// The reference design's analysis queries, unchanged: daily cost by user, token anomalies,
/// error rate by model.
pub const QUERY_DAILY_COST_BY_USER: &str =
    include_str!("../../../sql/queries/daily_cost_by_user.sql");
/// See [`QUERY_DAILY_COST_BY_USER`].
pub const QUERY_TOKEN_ANOMALIES: &str = include_str!("../../../sql/queries/token_anomalies.sql");
/// See [`QUERY_DAILY_COST_BY_USER`].
pub const QUERY_ERROR_RATE_BY_MODEL: &str =
    include_str!("../../../sql/queries/error_rate_by_model.sql");

/// A lock id for migrations, so that two processes starting at once apply them once.
const MIGRATION_LOCK: i64 = 0x6c6c_6d5f_6175_6469; // "llm_audi"

/// The newest migration this version of the crate has.
pub(crate) fn latest_version() -> i32 {
    MIGRATIONS.last().map_or(0, |(version, _, _)| *version)
}

/// Applies the migrations not applied yet, in one transaction. Returns how many it applied.
///
/// Reads what is applied first: when nothing is missing it returns without DDL or lock, so
/// that a role that may only insert (and read `llm_audit_schema_migrations`) can call it on a
/// schema the owner has migrated.
pub(crate) async fn migrate(client: &mut Client) -> Result<usize, tokio_postgres::Error> {
    if let Some(applied) = applied_versions(client).await? {
        if MIGRATIONS.iter().all(|(v, _, _)| applied.contains(v)) {
            return Ok(0);
        }
    }
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS llm_audit_schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
         )",
    )
    .await?;
    let applied: Vec<i32> = tx
        .query("SELECT version FROM llm_audit_schema_migrations", &[])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut count = 0;
    for (version, name, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO llm_audit_schema_migrations (version, name) VALUES ($1, $2)",
            &[version, name],
        )
        .await?;
        count += 1;
    }
    tx.commit().await?;
    Ok(count)
}

/// The migrations the database has, `None` before the first.
async fn applied_versions(client: &Client) -> Result<Option<Vec<i32>>, tokio_postgres::Error> {
    let exists: bool = client
        .query_one(
            "SELECT to_regclass('llm_audit_schema_migrations') IS NOT NULL",
            &[],
        )
        .await?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let rows = client
        .query("SELECT version FROM llm_audit_schema_migrations", &[])
        .await?;
    Ok(Some(rows.iter().map(|row| row.get(0)).collect()))
}

/// The newest migration the database has, `None` before the first.
pub(crate) async fn schema_version(client: &Client) -> Result<Option<i32>, tokio_postgres::Error> {
    let exists: bool = client
        .query_one(
            "SELECT to_regclass('llm_audit_schema_migrations') IS NOT NULL",
            &[],
        )
        .await?
        .get(0);
    if !exists {
        return Ok(None);
    }
    client
        .query_one("SELECT MAX(version) FROM llm_audit_schema_migrations", &[])
        .await
        .map(|row| row.get(0))
}

/// The columns the sink writes, in COPY order, with their types.
pub(crate) const COLUMNS: &[(&str, Type)] = &[
    ("request_id", Type::UUID),
    ("timestamp", Type::TIMESTAMPTZ),
    ("user_id", Type::VARCHAR),
    ("model", Type::VARCHAR),
    ("action", Type::VARCHAR),
    ("system_prompt_hash", Type::TEXT),
    ("input_tokens", Type::INT8),
    ("output_tokens", Type::INT8),
    ("thinking_tokens", Type::INT8),
    ("latency_ms", Type::INT8),
    ("cost_usd", Type::NUMERIC),
    ("status", Type::VARCHAR),
    ("error_message", Type::TEXT),
    ("sanitization_count", Type::INT8),
    ("input_hash", Type::TEXT),
    ("output_hash", Type::TEXT),
    ("metadata", Type::JSONB),
    ("schema_version", Type::INT4),
    ("session_id", Type::TEXT),
    ("provider", Type::TEXT),
    ("response_model", Type::TEXT),
    ("response_id", Type::TEXT),
    ("finish_reasons", Type::TEXT_ARRAY),
    ("streaming", Type::BOOL),
    ("hash_key_id", Type::TEXT),
    ("cache_read_tokens", Type::INT8),
    ("cache_write_tokens", Type::INT8),
    ("time_to_first_chunk_ms", Type::INT8),
    ("cost_note", Type::TEXT),
    ("error_type", Type::TEXT),
    ("sanitization", Type::JSONB),
    ("trace_id", Type::TEXT),
    ("span_id", Type::TEXT),
    ("parent_span_id", Type::TEXT),
    ("chain_stream", Type::TEXT),
    ("chain_seq", Type::INT8),
    ("chain_prev", Type::TEXT),
    ("chain_hash", Type::TEXT),
    ("system_prompt_content", Type::JSONB),
    ("input_content", Type::JSONB),
    ("output_content", Type::JSONB),
    ("erased", Type::JSONB),
    ("cache_write_1h_tokens", Type::INT8),
    ("service_tier", Type::TEXT),
    ("price_table", Type::TEXT),
];

/// The staging table a COPY goes into, spelled out (not `LIKE llm_audit_log`, which would need
/// the right to read the log, which the writer role has not).
pub(crate) fn create_staging() -> String {
    let columns: Vec<String> = COLUMNS
        .iter()
        .map(|(name, ty)| {
            let ty = match *ty {
                Type::TEXT_ARRAY => "TEXT[]".to_owned(),
                Type::INT8 => "BIGINT".to_owned(),
                Type::INT4 => "INTEGER".to_owned(),
                ref other => other.name().to_uppercase(),
            };
            format!("{name} {ty}")
        })
        .collect();
    format!(
        "CREATE TEMP TABLE IF NOT EXISTS llm_audit_staging ({}) ON COMMIT DELETE ROWS",
        columns.join(", ")
    )
}

pub(crate) fn column_list() -> String {
    COLUMNS
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

fn int(n: Option<u64>) -> Option<i64> {
    n.map(|n| i64::try_from(n).unwrap_or(i64::MAX))
}

/// Writes one entry, with its chain link if the sink is chained, as a row of the binary COPY.
pub(crate) async fn write_row(
    writer: std::pin::Pin<&mut BinaryCopyInWriter>,
    entry: &AuditEntry,
    link: Option<&ChainLink>,
) -> Result<(), tokio_postgres::Error> {
    let metadata = entry
        .metadata
        .as_ref()
        .map(|m| serde_json::Value::Object(m.clone()));
    let sanitization = serde_json::to_value(&entry.sanitization).unwrap_or_default();
    let schema_version = i32::try_from(entry.schema_version).unwrap_or(i32::MAX);
    let latency = i64::try_from(entry.latency_ms).unwrap_or(i64::MAX);
    let sanitization_count = i64::try_from(entry.sanitization_count).unwrap_or(i64::MAX);
    let (input, output, thinking) = (
        int(entry.input_tokens),
        int(entry.output_tokens),
        int(entry.thinking_tokens),
    );
    let (cache_read, cache_write, ttfc) = (
        int(entry.cache_read_tokens),
        int(entry.cache_write_tokens),
        int(entry.time_to_first_chunk_ms),
    );
    let (stream, seq, prev, hash) = match link {
        Some(l) => (
            Some(l.stream.as_str()),
            Some(i64::try_from(l.seq).unwrap_or(i64::MAX)),
            Some(l.prev.as_str()),
            Some(l.hash.as_str()),
        ),
        None => (None, None, None, None),
    };
    let content = |c: &Option<crate::content::StoredContent>| {
        c.as_ref().and_then(|c| serde_json::to_value(c).ok())
    };
    let (system_prompt_content, input_content, output_content) = (
        content(&entry.system_prompt_content),
        content(&entry.input_content),
        content(&entry.output_content),
    );
    let erased = entry
        .erased
        .as_ref()
        .and_then(|e| serde_json::to_value(e).ok());
    let cache_write_1h = int(entry.cache_write_1h_tokens);
    let values: [&(dyn ToSql + Sync); 45] = [
        &entry.request_id,
        &entry.timestamp,
        &entry.user_id,
        &entry.model,
        &entry.action,
        &entry.system_prompt_hash,
        &input,
        &output,
        &thinking,
        &latency,
        &entry.cost_usd,
        &entry.status.as_str(),
        &entry.error_message,
        &sanitization_count,
        &entry.input_hash,
        &entry.output_hash,
        &metadata,
        &schema_version,
        &entry.session_id,
        &entry.provider,
        &entry.response_model,
        &entry.response_id,
        &entry.finish_reasons,
        &entry.streaming,
        &entry.hash_key_id,
        &cache_read,
        &cache_write,
        &ttfc,
        &entry.cost_note,
        &entry.error_type,
        &sanitization,
        &entry.trace_id,
        &entry.span_id,
        &entry.parent_span_id,
        &stream,
        &seq,
        &prev,
        &hash,
        &system_prompt_content,
        &input_content,
        &output_content,
        &erased,
        &cache_write_1h,
        &entry.service_tier,
        &entry.price_table,
    ];
    writer.write(&values).await
}

/// Kept content. A value that is no stored content (changed by hand) reads as `None`, which
/// `llm-audit verify` then finds changed.
fn content(
    row: &Row,
    column: &str,
) -> Result<Option<crate::content::StoredContent>, tokio_postgres::Error> {
    let Some(value) = row.try_get::<_, Option<serde_json::Value>>(column)? else {
        return Ok(None);
    };
    Ok(serde_json::from_value(value).ok())
}

/// A column added by migration 8: `None` from a table not migrated that far (a reader on an old
/// database sees what the rows held then).
fn since_8<T>(row: &Row, column: &str) -> Result<Option<T>, tokio_postgres::Error>
where
    T: for<'a> tokio_postgres::types::FromSql<'a>,
{
    if !row.columns().iter().any(|c| c.name() == column) {
        return Ok(None);
    }
    row.try_get(column)
}

fn uint(row: &Row, column: &str) -> Option<u64> {
    row.get::<_, Option<i64>>(column)
        .and_then(|n| u64::try_from(n).ok())
}

/// Reads a row of `llm_audit_log` (selected with `SELECT *` or [`column_list`]) back into an
/// entry.
///
/// # Errors
/// A column is missing or of another type, or a status is not one this crate writes.
pub fn entry_from_row(row: &Row) -> Result<AuditEntry, tokio_postgres::Error> {
    let status: String = row.try_get("status")?;
    let metadata: Option<serde_json::Value> = row.try_get("metadata")?;
    let sanitization: serde_json::Value = row.try_get("sanitization")?;
    Ok(AuditEntry {
        schema_version: u32::try_from(row.try_get::<_, i32>("schema_version")?).unwrap_or(0),
        request_id: row.try_get::<_, Uuid>("request_id")?,
        timestamp: row.try_get::<_, OffsetDateTime>("timestamp")?,
        user_id: row.try_get("user_id")?,
        session_id: row.try_get("session_id")?,
        provider: row.try_get("provider")?,
        model: row.try_get("model")?,
        response_model: row.try_get("response_model")?,
        response_id: row.try_get("response_id")?,
        action: row.try_get("action")?,
        finish_reasons: row.try_get("finish_reasons")?,
        streaming: row.try_get("streaming")?,
        system_prompt_hash: row.try_get("system_prompt_hash")?,
        input_hash: row.try_get("input_hash")?,
        output_hash: row.try_get("output_hash")?,
        hash_key_id: row.try_get("hash_key_id")?,
        system_prompt_content: content(row, "system_prompt_content")?,
        input_content: content(row, "input_content")?,
        output_content: content(row, "output_content")?,
        erased: row
            .try_get::<_, Option<serde_json::Value>>("erased")?
            .and_then(|v| serde_json::from_value(v).ok()),
        input_tokens: uint(row, "input_tokens"),
        output_tokens: uint(row, "output_tokens"),
        thinking_tokens: uint(row, "thinking_tokens"),
        cache_read_tokens: uint(row, "cache_read_tokens"),
        cache_write_tokens: uint(row, "cache_write_tokens"),
        cache_write_1h_tokens: since_8(row, "cache_write_1h_tokens")?
            .and_then(|n: i64| u64::try_from(n).ok()),
        service_tier: since_8(row, "service_tier")?,
        latency_ms: uint(row, "latency_ms").unwrap_or(0),
        time_to_first_chunk_ms: uint(row, "time_to_first_chunk_ms"),
        // Entries carry at least 6 places; a zero comes back from NUMERIC without its scale.
        cost_usd: row
            .try_get::<_, Option<Decimal>>("cost_usd")?
            .map(|mut cost| {
                if cost.scale() < 6 {
                    cost.rescale(6);
                }
                cost
            }),
        cost_note: row.try_get("cost_note")?,
        price_table: since_8(row, "price_table")?,
        status: match status.as_str() {
            "error" => Status::Error,
            "blocked" => Status::Blocked,
            _ => Status::Success,
        },
        error_type: row.try_get("error_type")?,
        error_message: row.try_get("error_message")?,
        sanitization_count: uint(row, "sanitization_count").unwrap_or(0),
        sanitization: serde_json::from_value::<BTreeMap<String, u64>>(sanitization)
            .unwrap_or_default(),
        trace_id: row.try_get("trace_id")?,
        span_id: row.try_get("span_id")?,
        parent_span_id: row.try_get("parent_span_id")?,
        metadata: match metadata {
            Some(serde_json::Value::Object(map)) => Some(map),
            _ => None,
        },
    })
}

/// The chain link of a row of `llm_audit_log`, `None` for a row written without a signing key
/// (or one whose link columns are incomplete).
///
/// # Errors
/// A link column is missing or of another type.
pub fn link_from_row(row: &Row) -> Result<Option<ChainLink>, tokio_postgres::Error> {
    let stream: Option<String> = row.try_get("chain_stream")?;
    let seq: Option<i64> = row.try_get("chain_seq")?;
    let prev: Option<String> = row.try_get("chain_prev")?;
    let hash: Option<String> = row.try_get("chain_hash")?;
    Ok(
        match (stream, seq.and_then(|s| u64::try_from(s).ok()), prev, hash) {
            (Some(stream), Some(seq), Some(prev), Some(hash)) => Some(ChainLink {
                stream,
                seq,
                prev,
                hash,
            }),
            _ => None,
        },
    )
}

/// `entry` as it reads back from the table: what a chained sink hashes, so that `verify`,
/// which hashes the rows it reads, finds the same digest.
///
/// - the timestamp to the microsecond (`timestamptz`);
/// - the cost with at least 6 places, and a zero at exactly 6 (NUMERIC keeps the scale of
///   other values but not of zero);
/// - numbers in `metadata` as `jsonb` gives them back (see [`jsonb_number`]).
pub(crate) fn stored_form(entry: &AuditEntry) -> AuditEntry {
    let mut stored = entry.clone();
    stored.timestamp = crate::entry::to_micros(stored.timestamp);
    if let Some(cost) = &mut stored.cost_usd {
        if cost.is_zero() {
            *cost = Decimal::new(0, 6);
        } else if cost.scale() < 6 {
            cost.rescale(6);
        }
    }
    if let Some(metadata) = &mut stored.metadata {
        metadata.values_mut().for_each(jsonb_numbers);
    }
    stored
}

fn jsonb_numbers(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(n) => {
            if let Some(stored) = jsonb_number(n) {
                *n = stored;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(jsonb_numbers),
        serde_json::Value::Object(map) => map.values_mut().for_each(jsonb_numbers),
        _ => {}
    }
}

/// What a float becomes after a trip through `jsonb`, when that differs: `jsonb` stores numbers
/// as NUMERIC and prints them without an exponent, so a whole float that JSON writes with one
/// (`1e16`) reads back as an integer when it fits one, and `-0.0` as `0.0`.
fn jsonb_number(n: &serde_json::Number) -> Option<serde_json::Number> {
    let f = n.as_f64().filter(|_| n.is_f64())?;
    if f == 0.0 && f.is_sign_negative() {
        return serde_json::Number::from_f64(0.0);
    }
    if f.fract() != 0.0 || !n.to_string().contains('e') {
        return None;
    }
    // Exactly representable: a whole f64 of at most 64 bits.
    if (0.0..18_446_744_073_709_551_616.0).contains(&f) {
        return Some(serde_json::Number::from(f as u64));
    }
    if (-9_223_372_036_854_775_808.0..0.0).contains(&f) {
        return Some(serde_json::Number::from(f as i64));
    }
    None
}
