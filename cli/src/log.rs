//! An audit log as the commands that change it see it (`retention apply`, `erase`) and as
//! `verify` reads what they leave: the files beside the day files (tombstones, quarantined
//! fragments), entries written back as the sinks write them, erasures signed, and writers
//! locked out meanwhile. (Files are replaced whole by [`crate::files`].)

use std::path::Path;

use serde_json::Value;
use time::OffsetDateTime;
use tracing_llm_audit::chain::{sign_erasure, SigningKey, Tombstone};

/// The file of a directory's tombstones.
pub(crate) const TOMBSTONES: &str = "audit_tombstones.jsonl";

/// The file where the sinks keep the torn fragments they repaired.
pub(crate) const QUARANTINE: &str = "audit_quarantine.jsonl";

/// The tombstones of a file, each with its line number, or why the line is not one.
pub(crate) type TombstoneLines = Vec<(usize, Result<Tombstone, String>)>;

/// The lines of a directory's tombstone file, each parsed or with why it is not a tombstone
/// (their signatures are `verify`'s to check).
pub(crate) fn read_tombstones(dir: &Path) -> Result<TombstoneLines, String> {
    let path = dir.join(TOMBSTONES);
    let text = match tracing_llm_audit::sink::log_file::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            (
                i + 1,
                serde_json::from_str::<Tombstone>(l).map_err(|e| e.to_string()),
            )
        })
        .collect())
}

/// An entry as one line, escaped the way the sinks write it: besides JSON's own escapes, the
/// characters some readers take for line breaks (U+0085, U+2028, U+2029) and the other C1
/// controls as `\uXXXX`, so that the line stays one line for every reader.
pub(crate) fn entry_line(entry: &Value) -> Result<String, String> {
    let text = serde_json::to_string(entry).map_err(|e| e.to_string())?;
    if !text
        .chars()
        .any(|c| matches!(c, '\u{80}'..='\u{9f}' | '\u{2028}' | '\u{2029}'))
    {
        return Ok(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            // Outside strings compact JSON has none of these, so escaping them is always valid.
            '\u{80}'..='\u{9f}' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// The current time, RFC 3339 in UTC.
pub(crate) fn now_text() -> Result<String, String> {
    OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| e.to_string())
}

/// Signs the erasure of a chained entry; without a key, only a dry run may go on.
pub(crate) fn sign(
    entry: &mut Value,
    key: Option<&SigningKey>,
    now: &str,
    dry_run: bool,
) -> Result<(), String> {
    match key {
        Some(key) => sign_erasure(entry, key, now).map_err(|e| e.to_string()),
        None if entry.get("chain").is_none() || dry_run => Ok(()),
        None => Err(
            "chained entries would change: erasing their values needs --signing-key \
                     (the key that signs the checkpoints) to sign the change; nothing was changed"
                .to_owned(),
        ),
    }
}

/// A row as the entry it holds, with its chain link as the JSONL sink writes it (what an
/// erasure signature binds to).
pub(crate) fn row_value(
    row: &tokio_postgres::Row,
    entry: &tracing_llm_audit::AuditEntry,
) -> Result<Value, String> {
    let mut value = serde_json::to_value(entry).map_err(|e| e.to_string())?;
    let link = tracing_llm_audit::sink::postgres::link_from_row(row)
        .map_err(|e| crate::source::db_error(&e))?;
    if let (Some(link), Some(object)) = (link, value.as_object_mut()) {
        object.insert(
            "chain".to_owned(),
            serde_json::to_value(&link).map_err(|e| e.to_string())?,
        );
    }
    Ok(value)
}

/// Locks the directory against writers for the length of a retention or erasure run: the
/// startup lock keeps new sinks from starting, and every stream's checkpoint file must be free
/// (a running chained sink holds its own). A file rewritten under a running writer would lose
/// what it appends.
pub(crate) fn lock_out_writers(dir: &Path) -> Result<Vec<std::fs::File>, String> {
    let open = |path: &Path| {
        tracing_llm_audit::sink::log_file::open(
            path,
            std::fs::OpenOptions::new().read(true).write(true),
            tracing_llm_audit::sink::log_file::Access::Append,
        )
        .map_err(|e| format!("cannot open {}: {e}", path.display()))
    };
    let startup = dir.join("audit_startup.lock");
    let mut locks = Vec::new();
    if startup.exists() {
        let file = open(&startup)?;
        file.try_lock()
            .map_err(|_| "a writer is starting in this directory: stop the writers first; nothing was changed".to_owned())?;
        locks.push(file);
    }
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("audit_checkpoints_") && name.ends_with(".jsonl") {
            let file = open(&entry.path())?;
            if file.try_lock().is_err() {
                return Err(format!(
                    "a writer is running in this directory (stream {}): stop the writers \
                     first; nothing was changed",
                    name.trim_start_matches("audit_checkpoints_")
                        .trim_end_matches(".jsonl")
                ));
            }
            locks.push(file);
        }
    }
    Ok(locks)
}
