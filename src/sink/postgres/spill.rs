//! The spill directory: batches the database could not take, kept on local disk in order until
//! it comes back, and the dead-letter file for rows it refused.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use crate::chain::ChainLink;
use crate::entry::AuditEntry;

/// What is waiting in a [`PostgresSink`](super::PostgresSink)'s spill directory, readable at any
/// time through [`PostgresSink::spill_status`](super::PostgresSink::spill_status).
#[derive(Debug, Default)]
pub struct SpillStatus {
    entries: AtomicU64,
    bytes: AtomicU64,
    spilled_total: AtomicU64,
    replayed_total: AtomicU64,
    dead_lettered_total: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl SpillStatus {
    /// Entries on disk waiting for the database.
    pub fn pending_entries(&self) -> u64 {
        self.entries.load(Relaxed)
    }

    /// Bytes on disk waiting for the database.
    pub fn pending_bytes(&self) -> u64 {
        self.bytes.load(Relaxed)
    }

    /// Entries spilled since start.
    pub fn spilled_total(&self) -> u64 {
        self.spilled_total.load(Relaxed)
    }

    /// Spilled entries delivered to the database since start.
    pub fn replayed_total(&self) -> u64 {
        self.replayed_total.load(Relaxed)
    }

    /// Entries the database refused, written to the dead-letter file, since start.
    pub fn dead_lettered_total(&self) -> u64 {
        self.dead_lettered_total.load(Relaxed)
    }

    /// Why the last batch was spilled (the database error, without credentials).
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    pub(super) fn set_error(&self, error: String) {
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(error);
        }
    }

    pub(super) fn dead_lettered(&self, n: u64) {
        self.dead_lettered_total.fetch_add(n, Relaxed);
    }
}

/// The spill was full: the batch is not on disk.
#[derive(Debug, thiserror::Error)]
pub(super) enum SpillError {
    #[error("the spill directory {dir} is full ({bytes} bytes waiting, bound {max})")]
    Full { dir: PathBuf, bytes: u64, max: u64 },
    #[error("cannot write to the spill directory {dir}")]
    Io {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
}

#[derive(Debug)]
pub(super) struct Spill {
    dir: PathBuf,
    max_bytes: u64,
    /// Files in delivery order: (path, bytes, entries).
    files: VecDeque<(PathBuf, u64, u64)>,
    next_seq: u64,
    pub(super) status: Arc<SpillStatus>,
}

const PREFIX: &str = "spill-";
const SUFFIX: &str = ".jsonl";

impl Spill {
    /// Opens the directory (mode 0700), taking up files a previous run left.
    pub(super) fn open(dir: &Path, max_bytes: u64) -> io::Result<Self> {
        create_private_dir(dir)?;
        // A crash between write and rename leaves a temporary file: its batch was never
        // acknowledged, so it goes.
        for entry in fs::read_dir(dir)?.filter_map(Result::ok) {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(&format!(".{PREFIX}")) && name.ends_with(".tmp") {
                let _ = fs::remove_file(entry.path());
            }
        }
        let mut found: Vec<(u64, PathBuf)> = fs::read_dir(dir)?
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let seq = name
                    .strip_prefix(PREFIX)?
                    .strip_suffix(SUFFIX)?
                    .parse()
                    .ok()?;
                Some((seq, e.path()))
            })
            .collect();
        found.sort();
        let status = Arc::new(SpillStatus::default());
        let mut files = VecDeque::new();
        for (_, path) in &found {
            let bytes = fs::metadata(path)?.len();
            let entries = BufReader::new(File::open(path)?).lines().count() as u64;
            status.entries.fetch_add(entries, Relaxed);
            status.bytes.fetch_add(bytes, Relaxed);
            files.push_back((path.clone(), bytes, entries));
        }
        Ok(Self {
            dir: dir.to_owned(),
            max_bytes,
            next_seq: found.last().map_or(0, |(seq, _)| seq + 1),
            files,
            status,
        })
    }

    pub(super) fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes a batch as one file, durably (fsync, then an atomic rename). `links` is empty for
    /// an unchained sink, or holds each entry's chain link, kept as the line's `chain` member.
    pub(super) fn push(
        &mut self,
        entries: &[AuditEntry],
        links: &[Option<ChainLink>],
    ) -> Result<(), SpillError> {
        let mut text = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let link = links.get(i).and_then(Option::as_ref);
            write_spill_line(&mut text, entry, link).map_err(|e| SpillError::Io {
                dir: self.dir.clone(),
                source: io::Error::new(io::ErrorKind::InvalidData, e),
            })?;
        }
        let bytes = text.len() as u64;
        let waiting = self.status.bytes.load(Relaxed);
        if waiting + bytes > self.max_bytes && !self.files.is_empty() {
            return Err(SpillError::Full {
                dir: self.dir.clone(),
                bytes: waiting,
                max: self.max_bytes,
            });
        }
        let io = |source| SpillError::Io {
            dir: self.dir.clone(),
            source,
        };
        let path = self
            .dir
            .join(format!("{PREFIX}{:020}{SUFFIX}", self.next_seq));
        let tmp = self.dir.join(format!(".{PREFIX}{:020}.tmp", self.next_seq));
        write_durably(&tmp, &text).map_err(io)?;
        fs::rename(&tmp, &path).map_err(io)?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
        self.next_seq += 1;
        let n = entries.len() as u64;
        self.files.push_back((path, bytes, n));
        self.status.entries.fetch_add(n, Relaxed);
        self.status.bytes.fetch_add(bytes, Relaxed);
        self.status.spilled_total.fetch_add(n, Relaxed);
        Ok(())
    }

    /// The oldest batch, read back. Lines that do not parse (never written by this crate) are
    /// returned apart, to be dead-lettered.
    pub(super) fn front(&self) -> Option<io::Result<SpilledBatch>> {
        let (path, _, _) = self.files.front()?;
        Some((|| {
            let mut batch = SpilledBatch::default();
            for line in BufReader::new(File::open(path)?).lines() {
                let line = line?;
                match read_spill_line(&line) {
                    Some((entry, link)) => {
                        batch.entries.push(entry);
                        batch.links.push(link);
                    }
                    None => batch.bad.push(line),
                }
            }
            // An unchained batch carries no links at all, as the sink's own batches do.
            if batch.links.iter().all(Option::is_none) {
                batch.links.clear();
            }
            Ok(batch)
        })())
    }

    /// The oldest batch's file.
    pub(super) fn front_path(&self) -> &Path {
        self.files
            .front()
            .map_or(Path::new(""), |(path, _, _)| path)
    }

    /// Forgets the oldest batch: it is in the database.
    pub(super) fn pop_front(&mut self) -> io::Result<()> {
        if let Some((path, _, _)) = self.files.front() {
            // Gone from disk first: a file that cannot be removed stays counted and queued.
            fs::remove_file(path)?;
        }
        if let Some((_, bytes, entries)) = self.files.pop_front() {
            self.status.entries.fetch_sub(entries, Relaxed);
            self.status.bytes.fetch_sub(bytes, Relaxed);
            self.status.replayed_total.fetch_add(entries, Relaxed);
        }
        Ok(())
    }
}

/// A batch read back from the spill.
#[derive(Debug, Default)]
pub(super) struct SpilledBatch {
    pub(super) entries: Vec<AuditEntry>,
    /// Empty, or one per entry.
    pub(super) links: Vec<Option<ChainLink>>,
    /// Lines that are no entry.
    pub(super) bad: Vec<String>,
}

/// One entry as a JSON line, with its chain link as the last member `chain` if it has one.
fn write_spill_line(
    buf: &mut Vec<u8>,
    entry: &AuditEntry,
    link: Option<&ChainLink>,
) -> Result<(), serde_json::Error> {
    crate::sink::line::write_entry_line(buf, entry)?;
    if let Some(link) = link {
        // `}\n` → `,"chain":{...}}\n`, as in the chained JSONL files.
        buf.truncate(buf.len() - 2);
        buf.extend_from_slice(b",\"chain\":");
        serde_json::to_writer(&mut *buf, link)?;
        buf.extend_from_slice(b"}\n");
    }
    Ok(())
}

fn read_spill_line(line: &str) -> Option<(AuditEntry, Option<ChainLink>)> {
    let mut value: serde_json::Value = serde_json::from_str(line).ok()?;
    let link = match value.as_object_mut()?.remove("chain") {
        Some(link) => Some(serde_json::from_value(link).ok()?),
        None => None,
    };
    Some((serde_json::from_value(value).ok()?, link))
}

/// Locks the spill directory for one sink: two sinks sharing it would replay each other's
/// batches.
pub(super) fn lock_dir(dir: &Path) -> io::Result<File> {
    let lock = private_file(&dir.join("spill.lock"), true)?;
    // A process forked by another thread of this program holds a copy of a lock it had open
    // until it execs, a moment after the sink that held it let go: wait out that moment
    // before taking the lock for another sink's.
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(500);
    loop {
        match lock.try_lock() {
            Ok(()) => return Ok(lock),
            Err(fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(fs::TryLockError::WouldBlock) => {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    "another PostgresSink uses this spill directory; give each sink its own",
                ))
            }
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }
    }
}

fn write_durably(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = private_file(path, false)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn private_file(path: &Path, append: bool) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).write(true);
    if append {
        options.append(true);
    } else {
        options.truncate(true);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// What goes to the dead-letter file: an entry with its link, or a line that was no entry.
pub(super) type DeadRow<'a> = Result<(&'a AuditEntry, Option<&'a ChainLink>), &'a str>;

/// Appends `{"reason": ..., "entry": ...}` lines (or `"line"` for text that was no entry) to the
/// dead-letter file, durably. A chained entry's link goes along as `"chain"`: its place in the
/// stream, which `llm-audit verify` reports as deleted from the table.
pub(super) fn dead_letter(path: &Path, rows: &[(DeadRow<'_>, &str)]) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_private_dir(dir)?;
    }
    let mut text = String::new();
    for (row, reason) in rows {
        let value = match row {
            Ok((entry, None)) => serde_json::json!({ "reason": reason, "entry": entry }),
            Ok((entry, Some(link))) => {
                serde_json::json!({ "reason": reason, "entry": entry, "chain": link })
            }
            Err(line) => serde_json::json!({ "reason": reason, "line": line }),
        };
        text.push_str(&value.to_string());
        text.push('\n');
    }
    let mut file = private_file(path, true)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}
