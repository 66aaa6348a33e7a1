//! `llm-audit retention apply`: removes what a retention policy says has expired from a JSONL
//! directory: whole day files where every entry expired, otherwise the expired entries, or the
//! expired members of the entries that stay (content, content hashes, error details), recorded
//! in the entry's `erased` member so the chain still verifies. Removed chained entries get a
//! signed tombstone in `audit_tombstones.jsonl`, so `verify` reports them as expired by policy.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde_json::Value;
use time::OffsetDateTime;
use tracing_llm_audit::chain::{erase_member, SigningKey, Tombstone};
use tracing_llm_audit::retention::{DataKind, RetentionPolicy};

use crate::args::{signing_key, SourceArgs};
use crate::files::{replace_file, sync_dir};
use crate::log::{
    entry_line, lock_out_writers, now_text, read_tombstones, row_value, sign, QUARANTINE,
    TOMBSTONES,
};
use crate::output::say;
use crate::source::Source;
use crate::{scan, verify, when};

/// `llm-audit retention`.
#[derive(Debug, Subcommand)]
pub(crate) enum RetentionCommand {
    /// Remove expired data: whole day files or partitions where possible, otherwise the expired
    /// entries or members; signed tombstones make `verify` report the removed entries as
    /// expired by policy.
    Apply(Box<RetentionArgs>),
}

#[derive(Debug, Args)]
pub(crate) struct RetentionArgs {
    /// standard, hipaa, gdpr (give every period) or custom (give every period).
    #[arg(long)]
    policy: String,
    /// How long entries are kept (90d, 2y, never, forever).
    #[arg(long)]
    metadata: Option<String>,
    /// How long content hashes are kept.
    #[arg(long)]
    hashes: Option<String>,
    /// How long kept content is kept.
    #[arg(long)]
    content: Option<String>,
    /// How long error details are kept.
    #[arg(long)]
    errors: Option<String>,
    /// Apply as at this time: RFC 3339, a date, or a span back from now (7d, 24h) [default:
    /// now].
    #[arg(long, value_name = "TIME")]
    as_of: Option<String>,
    /// Print what would be removed; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// The Ed25519 key that signs the checkpoints (from `llm-audit keygen`): signs the
    /// tombstones. Needed when chained entries expire.
    #[arg(long)]
    signing_key: Option<PathBuf>,
    /// Apply even if the log does not verify now (the tombstones then cover what was there).
    #[arg(long)]
    force: bool,
    /// The JSONL audit directory [default: ./audit_logs].
    #[arg(long, conflicts_with = "postgres")]
    dir: Option<PathBuf>,
    /// PostgreSQL connection string, as the owner role.
    #[arg(long)]
    postgres: Option<String>,
}

/// `llm-audit retention apply`.
pub(crate) fn run(command: &RetentionCommand) -> Result<(), String> {
    let RetentionCommand::Apply(args) = command;
    let policy = policy(args)?;
    let now = OffsetDateTime::now_utc();
    let as_of = match &args.as_of {
        Some(t) => when::time("--as-of", t, now, false)?,
        None => now,
    };
    let key = signing_key(args.signing_key.as_deref())?;
    let source = SourceArgs {
        dir: args.dir.clone(),
        postgres: args.postgres.clone(),
        strict: false,
    }
    .open()?;
    let outcome = match source {
        Source::Jsonl(jsonl) => {
            scan::refuse_other_prefixes(&jsonl.dir, "retention")?;
            if let (Some(key), false) = (&key, args.force) {
                check_intact(&verify::verify(&jsonl.dir, &key.verifying_key())?)?;
            }
            apply_jsonl(&jsonl.dir, &policy, as_of, key.as_ref(), args.dry_run)?
        }
        Source::Postgres(mut pg) => {
            if let (Some(key), false) = (&key, args.force) {
                check_intact(&verify::verify_postgres(&mut pg, &key.verifying_key())?)?;
            }
            apply_postgres(&mut pg, &policy, as_of, key.as_ref(), args.dry_run)?
        }
    };
    for line in outcome.lines(args.dry_run, &policy) {
        say(&line)?;
    }
    Ok(())
}

fn policy(args: &RetentionArgs) -> Result<RetentionPolicy, String> {
    use tracing_llm_audit::retention::{Keep, Periods};
    let given = [
        ("--metadata", &args.metadata),
        ("--hashes", &args.hashes),
        ("--content", &args.content),
        ("--errors", &args.errors),
    ];
    let periods = || -> Result<Periods, String> {
        let mut keep = Vec::new();
        for (flag, value) in given {
            let value = value.as_deref().ok_or_else(|| {
                format!(
                    "the {} policy needs every period: {flag} is missing (90d, 2y, never or forever)",
                    args.policy
                )
            })?;
            keep.push(value.parse::<Keep>().map_err(|e| format!("{flag}: {e}"))?);
        }
        Ok(Periods {
            metadata: keep[0],
            content_hashes: keep[1],
            content: keep[2],
            error_details: keep[3],
        })
    };
    match args.policy.as_str() {
        "standard" | "hipaa" => {
            if let Some((flag, _)) = given.iter().find(|(_, v)| v.is_some()) {
                return Err(format!(
                    "the {} policy has fixed periods; {flag} is for gdpr and custom",
                    args.policy
                ));
            }
            Ok(if args.policy == "standard" {
                RetentionPolicy::standard()
            } else {
                RetentionPolicy::hipaa()
            })
        }
        "gdpr" => RetentionPolicy::gdpr(periods()?).map_err(|e| e.to_string()),
        "custom" => RetentionPolicy::custom("custom", periods()?).map_err(|e| e.to_string()),
        other => Err(format!(
            "unknown policy {other:?}: standard, hipaa, gdpr or custom"
        )),
    }
}

/// Signed tombstones for the `removed` entries that no `existing` tombstone (stream, first,
/// last) covers: one for each run of consecutive sequence numbers of a stream.
fn tombstones_for(
    mut removed: Vec<Removed>,
    existing: &[(String, u64, u64)],
    policy: &RetentionPolicy,
    as_of: OffsetDateTime,
    key: Option<&SigningKey>,
    dry_run: bool,
) -> Result<Vec<Tombstone>, String> {
    removed.retain(|r| {
        !existing
            .iter()
            .any(|(stream, first, last)| *stream == r.stream && (*first..=*last).contains(&r.seq))
    });
    removed.sort_by(|a, b| (&a.stream, a.seq).cmp(&(&b.stream, b.seq)));
    let mut ranges: Vec<(Removed, Removed)> = Vec::new();
    for r in removed {
        match ranges.last_mut() {
            Some((_, last)) if last.stream == r.stream && last.seq + 1 == r.seq => *last = r,
            Some((_, last)) if last.stream == r.stream && last.seq == r.seq => {}
            _ => ranges.push((r.clone(), r)),
        }
    }
    if !ranges.is_empty() && key.is_none() && !dry_run {
        return Err(format!(
            "{} chained entries expired: removing them needs --signing-key (the key that signs \
             the checkpoints) for their tombstones; nothing was changed",
            ranges.iter().map(|(a, b)| b.seq - a.seq + 1).sum::<u64>()
        ));
    }
    let reason = policy.reason(DataKind::Metadata, as_of);
    let now = now_text()?;
    Ok(ranges
        .into_iter()
        .map(|(first, last)| {
            let mut tombstone = Tombstone {
                stream: first.stream,
                first: first.seq,
                last: last.seq,
                prev: first.prev,
                last_hash: last.hash,
                reason: reason.clone(),
                time: now.clone(),
                key_id: String::new(),
                signature: String::new(),
            };
            if let Some(key) = key {
                key.sign_tombstone(&mut tombstone);
            }
            tombstone
        })
        .collect())
}

/// What a run removed (or, dry, would remove).
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) files_removed: Vec<PathBuf>,
    pub(crate) files_rewritten: Vec<PathBuf>,
    /// Whole entries removed (metadata expired).
    pub(crate) entries_removed: u64,
    /// Entries whose members of a kind were erased, by kind.
    pub(crate) erased: BTreeMap<DataKind, u64>,
    pub(crate) tombstones: Vec<Tombstone>,
    /// Quarantined fragments of expired day files, removed.
    pub(crate) fragments_removed: u64,
}

impl Outcome {
    pub(crate) fn lines(&self, dry_run: bool, policy: &RetentionPolicy) -> Vec<String> {
        let (remove, erase, write) = if dry_run {
            ("would remove", "would erase", "would write")
        } else {
            ("removed", "erased", "wrote")
        };
        let mut lines = Vec::new();
        for file in &self.files_removed {
            lines.push(format!("{remove} {} (every entry expired)", file.display()));
        }
        lines.push(format!(
            "{remove} {} entries ({} kept {})",
            self.entries_removed,
            DataKind::Metadata.name(),
            policy.keep(DataKind::Metadata)
        ));
        for kind in [
            DataKind::Content,
            DataKind::ContentHashes,
            DataKind::ErrorDetails,
        ] {
            lines.push(format!(
                "{erase} the {} of {} entries (kept {})",
                kind.name(),
                self.erased.get(&kind).copied().unwrap_or(0),
                policy.keep(kind)
            ));
        }
        if !self.files_rewritten.is_empty() {
            lines.push(format!(
                "{} {} file(s) in place",
                if dry_run { "would rewrite" } else { "rewrote" },
                self.files_rewritten.len()
            ));
        }
        lines.push(format!(
            "{write} {} tombstone(s) to {TOMBSTONES}",
            self.tombstones.len()
        ));
        lines
    }
}

/// The links of a removed chained entry.
#[derive(Debug, Clone)]
struct Removed {
    stream: String,
    seq: u64,
    prev: String,
    hash: String,
}

fn link_of(entry: &Value) -> Option<Removed> {
    let chain = entry.get("chain")?;
    Some(Removed {
        stream: chain.get("stream")?.as_str()?.to_owned(),
        seq: chain.get("seq")?.as_u64()?,
        prev: chain.get("prev")?.as_str()?.to_owned(),
        hash: chain.get("hash")?.as_str()?.to_owned(),
    })
}

fn timestamp(entry: &Value) -> Option<OffsetDateTime> {
    entry
        .get("timestamp")?
        .as_str()
        .and_then(|t| OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok())
}

/// The metadata's cut-off, and those of the kinds removed member by member.
fn cutoffs(
    policy: &RetentionPolicy,
    as_of: OffsetDateTime,
) -> (Option<OffsetDateTime>, Vec<(DataKind, OffsetDateTime)>) {
    let cut = |kind: DataKind| policy.keep(kind).cutoff(as_of);
    let members = [
        DataKind::Content,
        DataKind::ContentHashes,
        DataKind::ErrorDetails,
    ]
    .into_iter()
    .filter_map(|kind| cut(kind).map(|c| (kind, c)))
    .collect();
    (cut(DataKind::Metadata), members)
}

/// Applies `policy` at `as_of` to the JSONL directory `dir`.
pub(crate) fn apply_jsonl(
    dir: &Path,
    policy: &RetentionPolicy,
    as_of: OffsetDateTime,
    key: Option<&SigningKey>,
    dry_run: bool,
) -> Result<Outcome, String> {
    let _locks = if dry_run {
        Vec::new()
    } else {
        lock_out_writers(dir)?
    };
    let (metadata_cut, member_cuts) = cutoffs(policy, as_of);
    let earliest_cut = metadata_cut
        .into_iter()
        .chain(member_cuts.iter().map(|(_, c)| *c))
        .max();

    let mut outcome = Outcome::default();
    let now = now_text()?;
    let mut removed: Vec<Removed> = Vec::new();
    let mut writes: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    for path in scan::files(dir, None, None)? {
        let Some(day) = file_day(&path) else { continue };
        let day_start = day.midnight().assume_utc();
        let day_end = day_start + time::Duration::days(1);
        // Nothing in a file dated at or after every cut-off has expired.
        if earliest_cut.is_none_or(|c| day_start >= c) {
            continue;
        }
        let text = tracing_llm_audit::sink::log_file::read(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let whole_file = metadata_cut.is_some_and(|c| day_end <= c);
        let mut kept: Vec<u8> = Vec::with_capacity(text.len());
        let mut changed = false;
        for (n, line) in text.split(|&b| b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let Ok(mut entry) = serde_json::from_slice::<Value>(line) else {
                // A fragment of a failed write (perhaps cut inside a character): not ours to
                // judge, kept byte for byte.
                kept.extend_from_slice(line);
                kept.push(b'\n');
                continue;
            };
            let at = timestamp(&entry).ok_or_else(|| {
                format!(
                    "{}:{}: an entry without a valid timestamp; nothing was changed",
                    path.display(),
                    n + 1
                )
            })?;
            // Which entries expire is decided by their day: an entry moved into an older
            // day's file must not expire with it.
            if at < day_start || at >= day_end {
                return Err(format!(
                    "{}:{}: an entry of another day than its file's ({}): entries are written \
                     to the file of their UTC day, so it was moved there (llm-audit verify \
                     reports it); nothing was changed",
                    path.display(),
                    n + 1,
                    entry
                        .get("timestamp")
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                ));
            }
            if whole_file || metadata_cut.is_some_and(|c| at < c) {
                outcome.entries_removed += 1;
                removed.extend(link_of(&entry));
                changed = true;
                continue;
            }
            let mut line_changed = false;
            for &(kind, c) in &member_cuts {
                if at >= c {
                    continue;
                }
                let mut any = false;
                for member in kind.members() {
                    any |= erase_member(&mut entry, member, None).map_err(|e| e.to_string())?;
                }
                if any {
                    *outcome.erased.entry(kind).or_default() += 1;
                    line_changed = true;
                }
            }
            if line_changed {
                changed = true;
                sign(&mut entry, key, &now, dry_run)?;
                kept.extend_from_slice(entry_line(&entry)?.as_bytes());
            } else {
                kept.extend_from_slice(line);
            }
            kept.push(b'\n');
        }
        if whole_file || (changed && kept.is_empty()) {
            outcome.files_removed.push(path);
        } else if changed {
            outcome.files_rewritten.push(path.clone());
            writes.push((path, kept));
        }
    }

    // Tombstones for the removed chained entries not already covered by one.
    let existing: Vec<(String, u64, u64)> = read_tombstones(dir)?
        .into_iter()
        .filter_map(|(_, t)| t.ok())
        .map(|t| (t.stream, t.first, t.last))
        .collect();
    outcome.tombstones = tombstones_for(removed, &existing, policy, as_of, key, dry_run)?;
    if dry_run {
        return Ok(outcome);
    }

    // The tombstones first: a run cut short leaves entries a tombstone covers (which `verify`
    // notes, and a second run removes), never removed entries without one.
    if !outcome.tombstones.is_empty() {
        let path = dir.join(TOMBSTONES);
        let mut file = tracing_llm_audit::sink::log_file::open(
            &path,
            std::fs::OpenOptions::new().create(true).append(true),
            tracing_llm_audit::sink::log_file::Access::Append,
        )
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let mut text = String::new();
        for t in &outcome.tombstones {
            text.push_str(&serde_json::to_string(t).map_err(|e| e.to_string())?);
            text.push('\n');
        }
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    for (path, text) in &writes {
        replace_file(path, text)?;
    }
    if let Some(cut) = metadata_cut {
        outcome.fragments_removed = expire_quarantine(dir, cut)?;
    }
    for path in &outcome.files_removed {
        std::fs::remove_file(path).map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
    }
    sync_dir(dir);
    Ok(outcome)
}

/// Removes the quarantine records of fragments cut from day files that have expired whole.
fn expire_quarantine(dir: &Path, cut: OffsetDateTime) -> Result<u64, String> {
    let path = dir.join(QUARANTINE);
    let text = match tracing_llm_audit::sink::log_file::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let mut removed = 0;
    let mut kept = Vec::with_capacity(text.len());
    for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let expired = serde_json::from_slice::<Value>(line)
            .ok()
            .and_then(|r| r.get("file")?.as_str().and_then(|f| file_day(Path::new(f))))
            .is_some_and(|day| {
                day.next_day()
                    .is_some_and(|d| d.midnight().assume_utc() <= cut)
            });
        if expired {
            removed += 1;
        } else {
            kept.extend_from_slice(line);
            kept.push(b'\n');
        }
    }
    if removed > 0 {
        replace_file(&path, &kept)?;
    }
    Ok(removed)
}

fn file_day(path: &Path) -> Option<time::Date> {
    let name = path.file_name()?.to_str()?;
    let date = name.strip_prefix("audit_")?.strip_suffix(".jsonl")?;
    time::Date::parse(
        date,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()
}

/// Refuses to sign tombstones over a log that does not verify now: a tombstone must not make
/// tampering look like expiry.
pub(crate) fn check_intact(report: &verify::Report) -> Result<(), String> {
    if report.problems.is_empty() {
        return Ok(());
    }
    let first = &report.problems[0];
    Err(format!(
        "the log does not verify ({} problem(s), the first: stream {} seq {} {}: {}); run \
         `llm-audit verify` and settle them first, or pass --force; nothing was changed",
        report.problems.len(),
        first.stream,
        first.seq.map_or_else(|| "-".to_owned(), |s| s.to_string()),
        first.kind_name(),
        first.detail
    ))
}

/// Applies `policy` at `as_of` to PostgreSQL, in one transaction (rolled back for a dry run):
/// tombstones for the expired chained rows, whole monthly partitions dropped where every row
/// expired, the other expired rows deleted, and expired members set to NULL with their digests
/// in `erased`. Needs the owner role (the writer has no DELETE or UPDATE privilege, and the
/// triggers refuse them outside this maintenance transaction).
pub(crate) fn apply_postgres(
    pg: &mut crate::source::Postgres,
    policy: &RetentionPolicy,
    as_of: OffsetDateTime,
    key: Option<&SigningKey>,
    dry_run: bool,
) -> Result<Outcome, String> {
    let (metadata_cut, member_cuts) = cutoffs(policy, as_of);
    let now = now_text()?;
    let (runtime, client) = pg.parts();
    let db = |e: tokio_postgres::Error| crate::source::db_error(&e);
    runtime.block_on(async {
        let mut outcome = Outcome::default();
        let tx = client.transaction().await.map_err(db)?;
        // Writers wait (they are not refused) while the run decides and removes: no row can
        // arrive between the tombstones and the removal.
        tx.batch_execute(
            "SET LOCAL llm_audit.maintenance = 'retention'; \
             LOCK TABLE llm_audit_log IN SHARE ROW EXCLUSIVE MODE",
        )
        .await
        .map_err(db)?;
        if let Some(cut) = metadata_cut {
            let rows = tx
                .query(
                    "SELECT chain_stream, chain_seq, chain_prev, chain_hash FROM llm_audit_log \
                     WHERE timestamp < $1",
                    &[&cut],
                )
                .await
                .map_err(db)?;
            outcome.entries_removed = rows.len() as u64;
            let removed: Vec<Removed> = rows
                .iter()
                .filter_map(|r| {
                    Some(Removed {
                        stream: r.get::<_, Option<String>>(0)?,
                        seq: u64::try_from(r.get::<_, Option<i64>>(1)?).ok()?,
                        prev: r.get::<_, Option<String>>(2)?,
                        hash: r.get::<_, Option<String>>(3)?,
                    })
                })
                .collect();
            let existing: Vec<(String, u64, u64)> = tx
                .query("SELECT stream, first, last FROM llm_audit_tombstones", &[])
                .await
                .map_err(db)?
                .iter()
                .map(|r| {
                    let n = |i| u64::try_from(r.get::<_, i64>(i)).unwrap_or(0);
                    (r.get(0), n(1), n(2))
                })
                .collect();
            outcome.tombstones = tombstones_for(removed, &existing, policy, as_of, key, dry_run)?;
            for t in &outcome.tombstones {
                let (first, last) = (
                    i64::try_from(t.first).unwrap_or(i64::MAX),
                    i64::try_from(t.last).unwrap_or(i64::MAX),
                );
                tx.execute(
                    "INSERT INTO llm_audit_tombstones \
                     (stream, first, last, prev, last_hash, reason, signed_at, key_id, signature) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    &[
                        &t.stream,
                        &first,
                        &last,
                        &t.prev,
                        &t.last_hash,
                        &t.reason,
                        &t.time,
                        &t.key_id,
                        &t.signature,
                    ],
                )
                .await
                .map_err(db)?;
            }
            // Monthly partitions (llm_audit_log_pYYYYMM) that end before the cut-off go whole.
            let partitions = tx
                .query(
                    "SELECT c.relname::text, c.oid::regclass::text FROM pg_inherits i \
                     JOIN pg_class c ON c.oid = i.inhrelid \
                     WHERE i.inhparent = 'llm_audit_log'::regclass",
                    &[],
                )
                .await
                .map_err(db)?;
            for row in partitions {
                let name: String = row.get(0);
                let qualified: String = row.get(1);
                let Some(end) = partition_end(&name) else {
                    continue;
                };
                if end <= cut {
                    tx.batch_execute(&format!("DROP TABLE {qualified}"))
                        .await
                        .map_err(db)?;
                    outcome.files_removed.push(PathBuf::from(name));
                }
            }
            // The table's guard lets a maintenance DELETE remove only rows older than the
            // cut-off it declares (migration 6).
            tx.execute(
                "SELECT set_config('llm_audit.delete_before', $1, true)",
                &[&cut
                    .format(&time::format_description::well_known::Rfc3339)
                    .map_err(|e| e.to_string())?],
            )
            .await
            .map_err(db)?;
            tx.execute("DELETE FROM llm_audit_log WHERE timestamp < $1", &[&cut])
                .await
                .map_err(db)?;
        }
        for (kind, cut) in member_cuts {
            let members = kind.members();
            let any = members
                .iter()
                .map(|m| format!("{m} IS NOT NULL"))
                .collect::<Vec<_>>()
                .join(" OR ");
            let rows = tx
                .query(
                    &format!("SELECT * FROM llm_audit_log WHERE timestamp < $1 AND ({any})"),
                    &[&cut],
                )
                .await
                .map_err(db)?;
            let set = members
                .iter()
                .map(|m| format!("{m} = NULL"))
                .collect::<Vec<_>>()
                .join(", ");
            let update = tx
                .prepare(&format!(
                    "UPDATE llm_audit_log SET {set}, erased = $1 \
                     WHERE request_id = $2 AND timestamp = $3"
                ))
                .await
                .map_err(db)?;
            for row in rows {
                let entry = tracing_llm_audit::sink::postgres::entry_from_row(&row).map_err(db)?;
                let mut value = row_value(&row, &entry)?;
                let mut changed = false;
                for member in members {
                    changed |= erase_member(&mut value, member, None).map_err(|e| e.to_string())?;
                }
                if changed {
                    sign(&mut value, key, &now, dry_run)?;
                    let erased = value.get(tracing_llm_audit::chain::ERASED).cloned();
                    tx.execute(&update, &[&erased, &entry.request_id, &entry.timestamp])
                        .await
                        .map_err(db)?;
                    *outcome.erased.entry(kind).or_default() += 1;
                }
            }
        }
        if dry_run {
            tx.rollback().await.map_err(db)?;
        } else {
            tx.commit().await.map_err(db)?;
        }
        Ok(outcome)
    })
}

/// The end of the month of a partition named `llm_audit_log_pYYYYMM`.
fn partition_end(name: &str) -> Option<OffsetDateTime> {
    let digits = name.strip_prefix("llm_audit_log_p")?;
    if digits.len() != 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: i32 = digits[..4].parse().ok()?;
    let month: u8 = digits[4..].parse().ok()?;
    let (year, month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    let date = time::Date::from_calendar_date(year, time::Month::try_from(month).ok()?, 1).ok()?;
    Some(date.midnight().assume_utc())
}
