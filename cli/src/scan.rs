//! Reads a JSONL audit directory as a stream, in constant memory, file by file in date order,
//! skipping (and reporting) lines that are not entries.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use time::{Date, OffsetDateTime};
use tracing_llm_audit::AuditEntry;

/// A line that is not an audit entry.
#[derive(Debug)]
pub(crate) struct BadLine {
    pub(crate) file: PathBuf,
    pub(crate) line: usize,
    pub(crate) reason: String,
}

/// The daily files of `dir` (`audit_YYYY-MM-DD.jsonl`) that may hold entries between `from`
/// and `to`, oldest first.
pub(crate) fn files(
    dir: &Path,
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
) -> Result<Vec<PathBuf>, String> {
    let read = std::fs::read_dir(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!(
            "there is no audit log directory at {} (give another with --dir)",
            dir.display()
        ),
        _ => format!("cannot read the audit log directory {}: {e}", dir.display()),
    })?;
    let mut files: Vec<(Date, PathBuf)> = read
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let date = name.strip_prefix("audit_")?.strip_suffix(".jsonl")?;
            let date = Date::parse(
                date,
                time::macros::format_description!("[year]-[month]-[day]"),
            )
            .ok()?;
            Some((date, entry.path()))
        })
        .filter(|(date, _)| from.is_none_or(|from| *date >= from.date()))
        .filter(|(date, _)| to.is_none_or(|to| *date <= to.date()))
        .collect();
    files.sort();
    Ok(files.into_iter().map(|(_, path)| path).collect())
}

/// Calls `each` for every entry of `files`, in order, and `bad` for every line that is not one.
/// Stops early when `each` returns `false`.
pub(crate) fn entries(
    files: &[PathBuf],
    mut each: impl FnMut(AuditEntry) -> bool,
    mut bad: impl FnMut(BadLine) -> Result<(), String>,
) -> Result<(), String> {
    for path in files {
        let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let mut reader = BufReader::with_capacity(256 * 1024, file);
        let mut line = Vec::new();
        let mut number = 0;
        loop {
            line.clear();
            let read = reader
                .read_until(b'\n', &mut line)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            if read == 0 {
                break;
            }
            number += 1;
            let complete = line.last() == Some(&b'\n');
            let text = line.strip_suffix(b"\n").unwrap_or(&line);
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<AuditEntry>(text) {
                Ok(entry) => {
                    if !each(entry) {
                        return Ok(());
                    }
                }
                Err(e) => bad(BadLine {
                    file: path.clone(),
                    line: number,
                    reason: if complete {
                        format!("not an audit entry: {e}")
                    } else {
                        "a torn last line (the writer stopped mid-line)".to_owned()
                    },
                })?,
            }
        }
    }
    Ok(())
}
