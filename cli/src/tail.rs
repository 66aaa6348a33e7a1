//! `llm-audit tail`: prints entries as they arrive.
//!
//! On a JSONL directory it follows the newest daily file and moves on to the next one when the
//! sink rotates at midnight, after reading what was left in the old one. Only complete lines are
//! read: a line the writer is still writing waits for its newline. On PostgreSQL it polls for
//! rows it has not printed yet; entries are stamped when their call starts and committed in
//! batches, so it looks back over a window (`--lookback`) and remembers what it printed there.

use std::collections::{BTreeSet, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use tracing_llm_audit::AuditEntry;

use crate::args::{select_filter, SelectArgs, SourceArgs};
use crate::filter::Filter;
use crate::listing::{csv_header, csv_row, tail_header, tail_line};
use crate::output::{warn, Format};
use crate::source::Source;

/// `llm-audit tail`.
#[derive(Debug, Args)]
pub(crate) struct TailArgs {
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    select: SelectArgs,
    /// Print the entries already there too (default: only new ones).
    #[arg(long)]
    from_start: bool,
    /// How often to look for new entries, in milliseconds.
    #[arg(long, default_value = "250")]
    poll_ms: u64,
    /// Output format [default: table on a terminal, JSON lines otherwise].
    #[arg(long, value_enum)]
    format: Option<Format>,
}

/// How far back a PostgreSQL tail looks for rows committed late.
const LOOKBACK: time::Duration = time::Duration::minutes(10);

/// `llm-audit tail`.
pub(crate) fn run(args: &TailArgs) -> Result<(), String> {
    let filter = select_filter(&args.select, Filter::default())?;
    let format = Format::or_default(args.format);
    let poll = Duration::from_millis(args.poll_ms.max(10));
    let mut out = Out::new(format)?;
    match args.source.open()? {
        Source::Jsonl(j) => follow_dir(&j.dir, args.from_start, j.strict, poll, &filter, &mut out),
        mut pg @ Source::Postgres(_) => {
            follow_table(&mut pg, args.from_start, poll, &filter, &mut out)
        }
    }
}

/// Writes entries one at a time, flushed, so that a pipe sees them at once; a table and CSV
/// start with their header.
struct Out {
    format: Format,
    out: std::io::Stdout,
}

impl Out {
    fn new(format: Format) -> Result<Self, String> {
        let out = std::io::stdout();
        let header = match format {
            Format::Csv => Some(csv_header()),
            Format::Table => Some(tail_header()),
            Format::Jsonl => None,
        };
        if let Some(header) = header {
            let mut out = out.lock();
            match writeln!(out, "{header}").and_then(|()| out.flush()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    return Err(format!("cannot write: {e}"))
                }
                _ => {}
            }
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
            Format::Csv => writeln!(out, "{}", csv_row(entry)),
            Format::Table => writeln!(out, "{}", tail_line(entry)),
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

/// One followed file: where it is read up to, and the start of a line not finished yet.
struct Followed {
    reader: BufReader<File>,
    line_no: usize,
    partial: Vec<u8>,
    /// Started at the end of a file whose last line was not finished: skip to the next line.
    skip_partial: bool,
    /// Inside a line longer than any a writer writes: skipped to its end.
    too_long: bool,
}

impl Followed {
    fn open(path: &Path, at_end: bool) -> Result<Self, String> {
        let mut file = tracing_llm_audit::sink::log_file::open_read(path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let mut skip_partial = false;
        if at_end {
            let len = file
                .seek(SeekFrom::End(0))
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            if len > 0 {
                // Landed inside a line the writer is writing? Then it is not ours to print.
                let mut last = [0u8; 1];
                file.seek(SeekFrom::End(-1))
                    .and_then(|_| std::io::Read::read_exact(&mut file, &mut last))
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                skip_partial = last[0] != b'\n';
            }
        }
        Ok(Self {
            reader: BufReader::new(file),
            line_no: 0,
            partial: Vec::new(),
            skip_partial,
            too_long: false,
        })
    }

    /// Prints every complete line there is now; `false` once stdout is closed.
    fn read(
        &mut self,
        path: &Path,
        strict: bool,
        filter: &Filter,
        out: &mut Out,
    ) -> Result<bool, String> {
        const MAX: usize = tracing_llm_audit::sink::MAX_LINE_BYTES;
        loop {
            // Never more than a line may hold: a line with no end is not gathered whole.
            let room = (MAX + 1).saturating_sub(self.partial.len()).max(1) as u64;
            let read = (&mut self.reader)
                .take(room)
                .read_until(b'\n', &mut self.partial)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            if read == 0 {
                return Ok(true);
            }
            if self.partial.last() != Some(&b'\n') {
                if self.partial.len() > MAX {
                    self.partial = Vec::new();
                    self.too_long = true;
                    continue;
                }
                return Ok(true);
            }
            let line = std::mem::take(&mut self.partial);
            if std::mem::take(&mut self.skip_partial) {
                continue;
            }
            self.line_no += 1;
            if std::mem::take(&mut self.too_long) {
                let message = format!(
                    "{}:{}: a line longer than the 64 MiB that a writer ever writes: not read",
                    path.display(),
                    self.line_no
                );
                if strict {
                    return Err(message);
                }
                warn(&format!("skipped {message}"));
                continue;
            }
            let text = line.strip_suffix(b"\n").unwrap_or(&line);
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<AuditEntry>(text) {
                Ok(entry) if filter.matches(&entry) => {
                    if !out.print(&entry)? {
                        return Ok(false);
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    let message = format!(
                        "{}:{}: not an audit entry: {e}",
                        path.display(),
                        self.line_no
                    );
                    if strict {
                        return Err(message);
                    }
                    warn(&format!("skipped {message}"));
                }
            }
        }
    }
}

/// Follows the two newest daily files: a call that started before midnight and ended after it
/// is appended to yesterday's file after today's has begun.
fn follow_dir(
    dir: &Path,
    from_start: bool,
    strict: bool,
    poll: Duration,
    filter: &Filter,
    out: &mut Out,
) -> Result<(), String> {
    let mut followed: Vec<(PathBuf, Followed)> = Vec::new();
    let mut first = true;
    loop {
        let files = daily_files(dir)?;
        let newest: Vec<&PathBuf> = files.iter().rev().take(2).collect();
        for path in newest.iter().rev() {
            if followed.iter().any(|(p, _)| p == *path) {
                continue;
            }
            // At the start, the newest file from its end (unless --from-start) and the one
            // before it from its end; later, a new file from its start.
            let at_end = first && !(from_start && Some(path) == newest.first());
            followed.push(((*path).clone(), Followed::open(path, at_end)?));
        }
        first = false;
        followed.retain(|(p, _)| newest.contains(&p));
        followed.sort_by(|a, b| a.0.cmp(&b.0));
        for (path, f) in &mut followed {
            if !f.read(path, strict, filter, out)? {
                return Ok(());
            }
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
