//! `llm-audit tail`: prints entries as they arrive.
//!
//! On a JSONL directory it follows the newest daily file and moves on to the next one when the
//! sink rotates at midnight, after reading what was left in the old one. Only complete lines are
//! read: a line the writer is still writing waits for its newline. On PostgreSQL it polls for
//! rows it has not printed yet; entries are stamped when their call starts and committed in
//! batches, so it looks back over a window (`--lookback`) and remembers what it printed there.

use std::collections::{BTreeSet, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tracing_llm_audit::AuditEntry;

use crate::query::{Filter, Format};
use crate::source::Source;
use crate::TailArgs;

/// How far back a PostgreSQL tail looks for rows committed late.
const LOOKBACK: time::Duration = time::Duration::minutes(10);

pub(crate) fn run(args: &TailArgs) -> Result<(), String> {
    let filter = crate::select_filter(&args.select, Filter::default())?;
    let format = crate::format_or_default(args.format);
    let poll = Duration::from_millis(args.poll_ms.max(10));
    let mut out = Out::new(format)?;
    match args.source.open()? {
        Source::Jsonl(j) => follow_dir(&j.dir, args.from_start, j.strict, poll, &filter, &mut out),
        mut pg @ Source::Postgres(_) => {
            follow_table(&mut pg, args.from_start, poll, &filter, &mut out)
        }
    }
}

/// Writes entries one at a time, flushed, so that a pipe sees them at once.
struct Out {
    format: Format,
    out: std::io::Stdout,
}

impl Out {
    fn new(format: Format) -> Result<Self, String> {
        let out = std::io::stdout();
        if format == Format::Csv {
            writeln!(out.lock(), "{}", crate::query::COLUMNS.join(","))
                .map_err(|e| format!("cannot write: {e}"))?;
        }
        Ok(Self { format, out })
    }

    /// Prints one entry; `false` once stdout is closed.
    fn print(&mut self, entry: &AuditEntry) -> Result<bool, String> {
        let mut out = self.out.lock();
        let written = match self.format {
            Format::Jsonl => serde_json::to_writer(&mut out, entry)
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(out)),
            Format::Csv => writeln!(out, "{}", crate::query::csv_row(entry)),
            Format::Table => writeln!(out, "{}", crate::query::tail_line(entry)),
        }
        .and_then(|()| out.flush());
        match written {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
            Err(e) => Err(format!("cannot write: {e}")),
        }
    }
}

/// The daily files of `dir`, oldest first.
fn daily_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    crate::scan::files(dir, None, None)
}

fn follow_dir(
    dir: &Path,
    from_start: bool,
    strict: bool,
    poll: Duration,
    filter: &Filter,
    out: &mut Out,
) -> Result<(), String> {
    let mut current: Option<(PathBuf, BufReader<File>, usize)> = None;
    let mut partial = Vec::new();
    let mut first = true;
    loop {
        let files = daily_files(dir)?;
        if current.is_none() {
            if let Some(newest) = files.last() {
                let file = File::open(newest)
                    .map_err(|e| format!("cannot open {}: {e}", newest.display()))?;
                let mut reader = BufReader::new(file);
                if first && !from_start {
                    reader
                        .seek(SeekFrom::End(0))
                        .map_err(|e| format!("cannot read {}: {e}", newest.display()))?;
                }
                current = Some((newest.clone(), reader, 0));
            }
            first = false;
        }
        let Some((path, reader, line_no)) = current.as_mut() else {
            std::thread::sleep(poll);
            continue;
        };
        // Every complete line that is there now.
        loop {
            let read = reader
                .read_until(b'\n', &mut partial)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            if read == 0 || partial.last() != Some(&b'\n') {
                break;
            }
            *line_no += 1;
            let line = std::mem::take(&mut partial);
            let text = line.strip_suffix(b"\n").unwrap_or(&line);
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<AuditEntry>(text) {
                Ok(entry) if filter.matches(&entry) => {
                    if !out.print(&entry)? {
                        return Ok(());
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    let message =
                        format!("{}:{}: not an audit entry: {e}", path.display(), line_no);
                    if strict {
                        return Err(message);
                    }
                    eprintln!("llm-audit: skipped {message}");
                }
            }
        }
        // A newer daily file: the sink has rotated. What is left of the old one was read above;
        // a torn last line there stays torn.
        let newer = files.iter().find(|f| f.as_path() > path.as_path()).cloned();
        if let Some(next) = newer {
            if !partial.is_empty() {
                eprintln!(
                    "llm-audit: skipped {}:{}: a torn last line (the writer stopped mid-line)",
                    path.display(),
                    *line_no + 1
                );
                partial.clear();
            }
            let file =
                File::open(&next).map_err(|e| format!("cannot open {}: {e}", next.display()))?;
            current = Some((next, BufReader::new(file), 0));
            continue;
        }
        std::thread::sleep(poll);
    }
}

fn follow_table(
    source: &mut Source,
    from_start: bool,
    poll: Duration,
    filter: &Filter,
    out: &mut Out,
) -> Result<(), String> {
    let start = time::OffsetDateTime::now_utc();
    // Printed request ids, by time, for the lookback window.
    let mut seen: HashSet<uuid::Uuid> = HashSet::new();
    let mut by_time: BTreeSet<(time::OffsetDateTime, uuid::Uuid)> = BTreeSet::new();
    // Without --from-start, only calls that started after the tail did.
    let lower = (!from_start).then_some(start);
    loop {
        let now = time::OffsetDateTime::now_utc();
        let since = (now - LOOKBACK).max(lower.unwrap_or(now - LOOKBACK));
        let window = Filter {
            from: Some(since),
            ..filter.clone()
        };
        let mut closed = false;
        let mut result = Ok(());
        source.entries(&window, None, |entry| {
            if seen.insert(entry.request_id) {
                by_time.insert((entry.timestamp, entry.request_id));
                match out.print(&entry) {
                    Ok(true) => {}
                    Ok(false) => closed = true,
                    Err(e) => result = Err(e),
                }
            }
            !closed && result.is_ok()
        })?;
        result?;
        if closed {
            return Ok(());
        }
        // Forget what has fallen out of the window.
        let horizon = now - LOOKBACK - time::Duration::minutes(1);
        while let Some(&(at, id)) = by_time.first() {
            if at >= horizon {
                break;
            }
            by_time.pop_first();
            seen.remove(&id);
        }
        std::thread::sleep(poll);
    }
}
