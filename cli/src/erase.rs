//! `llm-audit erase --user ID`: GDPR erasure. Every entry of the user keeps its figures (tokens,
//! cost, latency, status) for the reports, but its user id becomes a keyed pseudonym and its
//! personal members (session id, error message, metadata, content hashes and kept content) are
//! removed; each removed or replaced value's digest goes into the entry's `erased` member, so
//! every chain still verifies. An erasure event (an entry of action `llm_audit.erasure`, in a
//! stream of its own, signed) records what was done.

use std::path::PathBuf;

use clap::Args;
use serde_json::Value;
use tracing_llm_audit::chain::{
    erase_member, erase_members, kept_digest_of, upgrade_erasure, ChainError, SigningKey, ERASABLE,
};
use tracing_llm_audit::{AuditEntry, AuditSink, HashKey, JsonlSink};

use crate::args::{signing_key, SourceArgs};
use crate::files::{replace_file, stage_file, sync_dir};
use crate::filter::ERASURE_ACTION;
use crate::log::{entry_line, lock_out_writers, now_text, row_value, sign, QUARANTINE};
use crate::output::{say, warn};
use crate::scan;
use crate::source::Source;

/// `llm-audit erase`.
#[derive(Debug, Args)]
pub(crate) struct EraseArgs {
    /// The user id to erase.
    #[arg(long)]
    user: String,
    /// The Ed25519 key that signs the checkpoints: signs the erasure event's stream.
    #[arg(long)]
    signing_key: Option<PathBuf>,
    /// The JSONL audit directory [default: ./audit_logs].
    #[arg(long, conflicts_with = "postgres")]
    dir: Option<PathBuf>,
    /// PostgreSQL connection string, as the owner role.
    #[arg(long)]
    postgres: Option<String>,
    /// With --postgres: a PostgresSink's spill directory, whose waiting batches and
    /// dead-letter file hold entries too (repeatable) [default: ./audit_spill, the sink's
    /// default, when it exists]. The sink using it must be stopped.
    #[arg(long, requires = "postgres")]
    spill_dir: Vec<PathBuf>,
    /// With --postgres: a dead-letter file kept outside the spill directory (repeatable).
    #[arg(long, requires = "postgres")]
    dead_letter: Vec<PathBuf>,
}

/// `llm-audit erase`.
pub(crate) fn run(args: &EraseArgs) -> Result<(), String> {
    // The library's error names the variable and what is wrong with it.
    let key = HashKey::from_env()
        .map_err(|e| e.to_string())?
        .ok_or_else(|| {
            format!(
                "erase needs the key of the pseudonyms in {} (<key id>:<secret as hex>), the \
                 application's hash key",
                tracing_llm_audit::HASH_KEY_ENV
            )
        })?;
    if args.user.is_empty() {
        return Err("--user is empty".to_owned());
    }
    let signing = signing_key(args.signing_key.as_deref())?;
    let source = SourceArgs {
        dir: args.dir.clone(),
        postgres: args.postgres.clone(),
        strict: false,
    }
    .open()?;
    let (done, pseudonym) = match source {
        Source::Jsonl(jsonl) => {
            scan::refuse_other_prefixes(&jsonl.dir, "erase")?;
            erase_jsonl(&jsonl.dir, &args.user, &key, signing.as_ref())?
        }
        Source::Postgres(mut pg) => {
            let url = args
                .postgres
                .clone()
                .or_else(|| std::env::var("LLM_AUDIT_DATABASE_URL").ok())
                .unwrap_or_default();
            let mut spill_dirs = args.spill_dir.clone();
            let default = PathBuf::from("audit_spill");
            if spill_dirs.is_empty() && default.is_dir() {
                warn("erasing from the spill directory ./audit_spill too");
                spill_dirs.push(default);
            }
            let files = SinkFiles::open(&spill_dirs, &args.dead_letter)?;
            erase_postgres(&mut pg, &url, &args.user, &key, signing.as_ref(), &files)?
        }
    };
    let torn = match done.torn_lines {
        0 => String::new(),
        n => format!(" and {n} torn line(s)"),
    };
    say(&format!(
        "erased user {:?} from {} entries{torn}; their id is now {pseudonym}; the erasure is \
         recorded",
        args.user, done.entries
    ))
}

/// The members an erasure removes: every erasable member but `user_id`, which it replaces.
pub(crate) fn personal() -> impl Iterator<Item = &'static str> {
    ERASABLE.iter().copied().filter(|m| *m != "user_id")
}

/// The keyed pseudonym that replaces `user`: `pseudonym:<HMAC-SHA-256 hex>`. The same user gets
/// the same pseudonym under one key, so reports still count their calls together; the pseudonym
/// alone does not give the id back without the key, and the erased entries keep no digest of
/// it (format v2, see [`erase_entry`]).
pub(crate) fn pseudonym(key: &HashKey, user: &str) -> String {
    let hash = key.hash(format!("llm-audit-pseudonym-v1\n{user}").as_bytes());
    let hex = hash.rsplit(':').next().unwrap_or_default();
    format!("pseudonym:{hex}")
}

/// Erases `user` from one entry (as JSON), in format v2 ([`erase_members`]): no digest of a
/// removed value stays behind, so none can confirm a guess of the id. A chained entry is
/// checked against its hash first and the change signed with `signing`. Whether it was the
/// user's.
pub(crate) fn erase_entry(
    entry: &mut Value,
    user: &str,
    pseudonym: &str,
    signing: Option<&SigningKey>,
    now: &str,
) -> Result<bool, String> {
    let why = |e: ChainError| match e {
        ChainError::NeedsKey => "chained entries would change: erasing their values needs \
                                 --signing-key (the key that signs the checkpoints) to sign the \
                                 change; nothing was changed"
            .to_owned(),
        e => format!("{e}; nothing was changed"),
    };
    if entry.get("user_id").and_then(Value::as_str) != Some(user) {
        // Erased before, in format v1: its unkeyed digest of the id would confirm a guess of
        // it. Converted to v2, which keeps none.
        if kept_digest_of(entry, "user_id", &Value::String(user.to_owned())) {
            return upgrade_erasure(entry, signing, now).map_err(why);
        }
        return Ok(false);
    }
    let mut changes = vec![("user_id", Some(Value::String(pseudonym.to_owned())))];
    changes.extend(personal().map(|m| (m, None)));
    erase_members(entry, &changes, signing, now).map_err(why)?;
    Ok(true)
}

/// Empties a quarantine record (in the quarantine file, or in an old repair entry) whose torn
/// bytes hold `user`: `fragment_hex` becomes null and `fragment_erased` says why; the record of
/// the repair (file, offset, length, digest) stays. Whether it held the user.
fn empty_fragment(record: &mut Value, user: &str) -> bool {
    let holds = record
        .get("fragment_hex")
        .and_then(Value::as_str)
        .and_then(|h| hex::decode(h).ok())
        .is_some_and(|bytes| fragment_mentions(&bytes, user));
    if holds {
        record["fragment_hex"] = Value::Null;
        record["fragment_erased"] = "gdpr erasure".into();
    }
    holds
}

/// A repair entry written before the repair stopped copying torn lines into it keeps each one's
/// bytes as `fragment_hex` in `metadata.quarantined`: those that hold the user become null (the
/// record of the repair, its offset, length and digest, stays), through [`erase_member`] so that
/// the chain still verifies. Whether the entry changed.
fn scrub_repair_fragments(entry: &mut Value, user: &str) -> Result<bool, String> {
    if entry.get("action").and_then(Value::as_str)
        != Some(tracing_llm_audit::sink::repair::ACTION_REPAIR)
    {
        return Ok(false);
    }
    let Some(mut metadata) = entry.get("metadata").cloned() else {
        return Ok(false);
    };
    let mut any = false;
    for record in metadata
        .get_mut("quarantined")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        any |= empty_fragment(record, user);
    }
    if any {
        erase_member(entry, "metadata", Some(metadata)).map_err(|e| e.to_string())?;
    }
    Ok(any)
}

/// What an erasure did.
#[derive(Debug, Default)]
pub(crate) struct Erased {
    pub(crate) entries: u64,
    pub(crate) files: usize,
    /// Torn fragments in the quarantine file that held the user id, emptied.
    pub(crate) fragments: u64,
    /// Lines of day files that are no entry (what a full disk or a crash left) and held the
    /// user id in some spelling: removed, and counted in the signed erasure event.
    pub(crate) torn_lines: u64,
}

/// Whether a line that is no entry (a torn write) holds `user` in some spelling: as it is, or
/// inside a JSON string once its escapes are decoded (`\u0061lice`), a string cut short by the
/// tear included.
fn fragment_mentions(line: &[u8], user: &str) -> bool {
    if memchr::memmem::find(line, user.as_bytes()).is_some() {
        return true;
    }
    // A torn line's bytes as hex (a quarantine record, an old repair entry), in either case.
    let hex = hex::encode(user);
    if memchr::memmem::find(line, hex.as_bytes()).is_some()
        || memchr::memmem::find(line, hex.to_ascii_uppercase().as_bytes()).is_some()
    {
        return true;
    }
    if memchr::memchr(b'\\', line).is_none() {
        return false;
    }
    // Each string literal, decoded. A quote inside a string is escaped, so an unescaped quote
    // always starts or ends one.
    let mut i = 0;
    while let Some(start) = memchr::memchr(b'"', &line[i..]).map(|p| i + p) {
        let mut end = start + 1;
        while end < line.len() && line[end] != b'"' {
            end += if line[end] == b'\\' { 2 } else { 1 };
        }
        let mut literal = line[start..end.min(line.len())].to_vec();
        literal.push(b'"');
        if serde_json::from_slice::<String>(&literal).is_ok_and(|text| text.contains(user)) {
            return true;
        }
        i = end + 1;
        if i >= line.len() {
            break;
        }
    }
    false
}

/// Erases `user` from the JSONL directory `dir`, then records the event.
pub(crate) fn erase_jsonl(
    dir: &std::path::Path,
    user: &str,
    key: &HashKey,
    signing: Option<&SigningKey>,
) -> Result<(Erased, String), String> {
    let locks = lock_out_writers(dir)?;
    let files = scan::files(dir, None, None)?;
    if signing.is_none() {
        for path in &files {
            let text = tracing_llm_audit::sink::log_file::read(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            if memchr::memmem::find(&text, b"\"chain\":").is_some() {
                return Err(format!(
                    "{} holds chained entries: erasing needs --signing-key (the key that signs \
                     the checkpoints) to sign the change and the erasure event; nothing was changed",
                    path.display()
                ));
            }
        }
    }
    let pseudonym = pseudonym(key, user);
    let now = now_text()?;
    let mut done = Erased::default();
    // The user id as the sinks write it, escapes included. A line may spell it otherwise
    // (`\u0061lice`): every line with an escape is decoded too.
    let needle = entry_line(&Value::String(user.to_owned()))?;
    // Repair entries written before the fix kept a torn line's bytes as hex; entries erased in
    // format v1 kept the id's unkeyed digest.
    let user_hex = hex::encode(user);
    let user_digest = tracing_llm_audit::chain::erasable_digest(&Value::String(user.to_owned()));
    let mentions = |line: &[u8]| {
        memchr::memmem::find(line, needle.as_bytes()).is_some()
            || memchr::memmem::find(line, user.as_bytes()).is_some()
            || memchr::memmem::find(line, user_hex.as_bytes()).is_some()
            || memchr::memmem::find(line, user_digest.as_bytes()).is_some()
            || memchr::memchr(b'\\', line).is_some()
    };
    let mut pending = Vec::new();
    for path in files {
        let bytes = tracing_llm_audit::sink::log_file::read(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        // Most files never mention the user: skip them without parsing.
        if !mentions(&bytes) {
            continue;
        }
        let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
        let mut changed = 0;
        let mut torn = 0;
        for line in bytes.split(|&b| b == b'\n') {
            if mentions(line) {
                match serde_json::from_slice::<Value>(line) {
                    Ok(mut entry) => {
                        if erase_entry(&mut entry, user, &pseudonym, signing, &now)? {
                            changed += 1;
                            out.extend_from_slice(entry_line(&entry)?.as_bytes());
                            out.push(b'\n');
                            continue;
                        }
                        if scrub_repair_fragments(&mut entry, user)? {
                            torn += 1;
                            sign(&mut entry, signing, &now, false)?;
                            out.extend_from_slice(entry_line(&entry)?.as_bytes());
                            out.push(b'\n');
                            continue;
                        }
                    }
                    // A torn line that holds the user: removed (no chain covers it; the signed
                    // erasure event counts it).
                    Err(_) if fragment_mentions(line, user) => {
                        torn += 1;
                        continue;
                    }
                    Err(_) => {}
                }
            }
            // Everything else byte for byte, fragments cut inside a character included.
            if !line.iter().all(u8::is_ascii_whitespace) {
                out.extend_from_slice(line);
                out.push(b'\n');
            }
        }
        if changed > 0 || torn > 0 {
            // Staged beside the file (one file's content in memory at a time), put in place
            // only once every file checked out: an entry that does not match its hash, in the
            // last file, changes nothing in the first.
            pending.push(stage_file(&path, &out)?);
            done.entries += changed;
            done.torn_lines += torn;
            done.files += 1;
        }
    }
    for staged in pending {
        staged.commit()?;
    }
    done.fragments = erase_quarantine(dir, user)?;
    sync_dir(dir);
    // The event's sink takes the directory's startup lock itself.
    drop(locks);
    record_event(JsonlSink::builder(dir), signing, &pseudonym, &done)?;
    Ok((done, pseudonym))
}

/// The erasure event: one entry in a new stream, closed with a final signed checkpoint.
fn record_event(
    builder: tracing_llm_audit::sink::JsonlSinkBuilder,
    signing: Option<&SigningKey>,
    pseudonym: &str,
    done: &Erased,
) -> Result<(), String> {
    let builder = match signing {
        Some(key) => builder.chain(key.clone()),
        None => builder,
    };
    let mut sink = builder.build().map_err(|e| e.to_string())?;
    let mut event = event(pseudonym, done.entries);
    if let Some(metadata) = event.metadata.as_mut() {
        metadata.insert(
            "llm_audit.erased_torn_lines".to_owned(),
            done.torn_lines.into(),
        );
    }
    sink.write_batch(&[event])
        .map_err(|e| format!("cannot record the erasure event: {e}"))?;
    sink.shutdown()
        .map_err(|e| format!("cannot record the erasure event: {e}"))
}

/// The entry that records an erasure.
pub(crate) fn event(pseudonym: &str, entries: u64) -> AuditEntry {
    let mut event = AuditEntry::new(ERASURE_ACTION);
    let mut metadata = serde_json::Map::new();
    // Not as the event's user id: reports by user would count the event as one of their calls.
    metadata.insert("llm_audit.erased_user".to_owned(), pseudonym.into());
    metadata.insert("llm_audit.erased_entries".to_owned(), entries.into());
    metadata.insert(
        "llm_audit.erased_members".to_owned(),
        personal()
            .map(|m| Value::String(m.to_owned()))
            .collect::<Vec<_>>()
            .into(),
    );
    event.metadata = Some(metadata);
    event
}

/// Erases `user` from PostgreSQL in one maintenance transaction (as the owner role), then
/// records the event through a chained [`PostgresSink`](tracing_llm_audit::PostgresSink) on
/// `connection`.
pub(crate) fn erase_postgres(
    pg: &mut crate::source::Postgres,
    connection: &str,
    user: &str,
    key: &HashKey,
    signing: Option<&SigningKey>,
    files: &SinkFiles,
) -> Result<(Erased, String), String> {
    let pseudonym = pseudonym(key, user);
    let now = now_text()?;
    // The files first: a spilled entry delivered meanwhile would be missed by the table's
    // erasure (the spill directories are locked, so none is).
    let (in_files, lines) = files.erase(user, &pseudonym, signing, &now)?;
    let (runtime, client) = pg.parts();
    let db = |e: tokio_postgres::Error| crate::source::db_error(&e);
    // Rows erased in format v1 kept the id's unkeyed digest: converted too.
    let digest = tracing_llm_audit::chain::erasable_digest(&Value::String(user.to_owned()));
    let entries = runtime.block_on(async {
        let tx = client.transaction().await.map_err(db)?;
        tx.batch_execute("SET LOCAL llm_audit.maintenance = 'retention'")
            .await
            .map_err(db)?;
        let rows = tx
            .query(
                "SELECT * FROM llm_audit_log WHERE user_id = $1 \
                 OR erased -> 'digests' ->> 'user_id' = $2",
                &[&user, &digest],
            )
            .await
            .map_err(db)?;
        let set = personal()
            .map(|m| format!("{m} = NULL"))
            .collect::<Vec<_>>()
            .join(", ");
        let update = tx
            .prepare(&format!(
                "UPDATE llm_audit_log SET user_id = $1, {set}, erased = $2 \
                 WHERE request_id = $3 AND timestamp = $4"
            ))
            .await
            .map_err(db)?;
        let mut entries = 0u64;
        for row in rows {
            let entry = tracing_llm_audit::sink::postgres::entry_from_row(&row).map_err(db)?;
            let mut value = row_value(&row, &entry)?;
            if erase_entry(&mut value, user, &pseudonym, signing, &now)? {
                let erased = value.get(tracing_llm_audit::chain::ERASED).cloned();
                // What was signed: the pseudonym, or the one an earlier erasure put there.
                let user_id = value
                    .get("user_id")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                tx.execute(
                    &update,
                    &[&user_id, &erased, &entry.request_id, &entry.timestamp],
                )
                .await
                .map_err(db)?;
                entries += 1;
            }
        }
        tx.commit().await.map_err(db)?;
        Ok::<_, String>(entries)
    })?;
    // The event goes through the sink, so that it is chained and checkpointed like any entry.
    let spill = std::env::temp_dir().join(format!("llm-audit-erase-{}", uuid::Uuid::now_v7()));
    let mut builder = tracing_llm_audit::PostgresSink::builder(connection).with_spill_dir(&spill);
    if let Some(key) = signing {
        builder = builder.chain(key.clone());
    }
    let mut sink = builder.build().map_err(|e| e.to_string())?;
    let written = sink
        .write_batch(&[event(&pseudonym, entries + in_files)])
        .and_then(|()| sink.shutdown());
    let _ = std::fs::remove_dir_all(&spill);
    written.map_err(|e| {
        format!("the entries were erased, but the erasure event was not recorded: {e}")
    })?;
    Ok((
        Erased {
            entries: entries + in_files,
            torn_lines: lines,
            ..Erased::default()
        },
        pseudonym,
    ))
}

/// The files a [`PostgresSink`](tracing_llm_audit::PostgresSink) keeps beside the table, which
/// hold entries too: the spill directories (batches waiting for the database, `spill-*.jsonl`,
/// and the default dead-letter file `dead_letter.jsonl`) and dead-letter files kept elsewhere.
/// Each spill directory is locked, as its sink locks it, for the whole erasure: a sink that
/// uses it must be stopped first.
pub(crate) struct SinkFiles {
    files: Vec<std::path::PathBuf>,
    _locks: Vec<std::fs::File>,
}

impl SinkFiles {
    /// Locks `spill_dirs` and lists the files to erase from. Nothing is changed yet.
    pub(crate) fn open(
        spill_dirs: &[std::path::PathBuf],
        dead_letters: &[std::path::PathBuf],
    ) -> Result<Self, String> {
        let mut files = Vec::new();
        let mut locks = Vec::new();
        for dir in spill_dirs {
            let lock_path = dir.join("spill.lock");
            let lock = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&lock_path)
                .map_err(|e| format!("--spill-dir: cannot open {}: {e}", lock_path.display()))?;
            match lock.try_lock() {
                Ok(()) => locks.push(lock),
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(format!(
                        "--spill-dir: a PostgresSink is using {}; stop it, then erase again; \
                         nothing was changed",
                        dir.display()
                    ))
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(format!(
                        "--spill-dir: cannot lock {}: {e}",
                        lock_path.display()
                    ))
                }
            }
            let mut found: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
                .map_err(|e| format!("--spill-dir: cannot read {}: {e}", dir.display()))?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                        (n.starts_with("spill-") && n.ends_with(".jsonl"))
                            || n == "dead_letter.jsonl"
                    })
                })
                .collect();
            found.sort();
            files.extend(found);
        }
        for path in dead_letters {
            if !path.exists() {
                return Err(format!(
                    "--dead-letter: {} does not exist; nothing was changed",
                    path.display()
                ));
            }
            if !files.contains(path) {
                files.push(path.clone());
            }
        }
        Ok(Self {
            files,
            _locks: locks,
        })
    }

    /// Erases `user` from every file: a spilled entry like a row (signed, so that it verifies
    /// once delivered), a dead-lettered entry's members (it is in no chain any more), a
    /// dead-lettered line or a torn line that holds the id in any spelling removed. Gives
    /// (entries, torn or dead-lettered lines).
    pub(crate) fn erase(
        &self,
        user: &str,
        pseudonym: &str,
        signing: Option<&SigningKey>,
        now: &str,
    ) -> Result<(u64, u64), String> {
        let (mut entries, mut lines) = (0, 0);
        let mut pending = Vec::new();
        for path in &self.files {
            let bytes = tracing_llm_audit::sink::log_file::read(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            if !fragment_mentions(&bytes, user) && memchr::memchr(b'\\', &bytes).is_none() {
                continue;
            }
            let mut out = Vec::with_capacity(bytes.len());
            let mut changed = false;
            for line in bytes.split(|&b| b == b'\n') {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let mut value = match serde_json::from_slice::<Value>(line) {
                    Ok(value) => value,
                    Err(_) if fragment_mentions(line, user) => {
                        lines += 1;
                        changed = true;
                        continue;
                    }
                    Err(_) => {
                        out.extend_from_slice(line);
                        out.push(b'\n');
                        continue;
                    }
                };
                if value.get("reason").is_some() {
                    // A dead-letter record: {"reason", "entry", "chain"} or {"reason", "line"}.
                    if let Some(entry) = value.get_mut("entry") {
                        // No longer in any chain: nothing to sign.
                        if erase_entry(entry, user, pseudonym, None, now)? {
                            entries += 1;
                            changed = true;
                        }
                    }
                    let held = value
                        .get("line")
                        .and_then(Value::as_str)
                        .is_some_and(|l| fragment_mentions(l.as_bytes(), user));
                    if held {
                        value["line"] = Value::Null;
                        value["line_erased"] = "gdpr erasure".into();
                        lines += 1;
                        changed = true;
                    }
                } else if erase_entry(&mut value, user, pseudonym, signing, now)? {
                    entries += 1;
                    changed = true;
                }
                out.extend_from_slice(entry_line(&value)?.as_bytes());
                out.push(b'\n');
            }
            if changed {
                // Put in place only once every file checked out, as for the day files.
                pending.push(stage_file(path, &out)?);
            }
        }
        for staged in pending {
            staged.commit()?;
        }
        Ok((entries, lines))
    }
}

/// Empties the fragments of the quarantine file (torn lines a crash left, kept as hex) that hold
/// the user id, keeping the record of the repair: its `fragment_hex` becomes null and
/// `fragment_erased` says why. How many were emptied.
fn erase_quarantine(dir: &std::path::Path, user: &str) -> Result<u64, String> {
    let path = dir.join(QUARANTINE);
    let text = match tracing_llm_audit::sink::log_file::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let mut emptied = 0;
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut record: Value = match serde_json::from_str(line) {
            Ok(record) => record,
            // A record a killed writer left half written: removed if it holds the id.
            Err(_) if fragment_mentions(line.as_bytes(), user) => {
                emptied += 1;
                continue;
            }
            Err(_) => {
                out.push_str(line);
                out.push('\n');
                continue;
            }
        };
        if empty_fragment(&mut record, user) {
            emptied += 1;
        }
        out.push_str(&entry_line(&record)?);
        out.push('\n');
    }
    if emptied > 0 {
        replace_file(&path, &out)?;
    }
    Ok(emptied)
}
