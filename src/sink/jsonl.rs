//! The default sink: JSON Lines files, one per UTC day.
//!
//! ```text
//!  write_batch(entries) ─▶ EncodedBatch (one reused buffer, one line per entry)
//!                            │ split into runs of consecutive entries with the same UTC date
//!                            ▼
//!                          <dir>/audit_YYYY-MM-DD.jsonl   (0600, O_APPEND, kept open)
//!                            │ one write per run, unless the kernel takes less
//!                            ▼
//!                          sync_data as the FsyncPolicy says; always on flush and shutdown
//! ```

use std::fmt;
use std::fs::{self, DirBuilder, File, OpenOptions};

use super::log_file::Access;
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use time::{Date, UtcOffset};

use super::line::{
    describe_unserializable, unserializable_error, write_lines, EncodedBatch, LinesNotWritten,
    Unserializable,
};
use super::{AuditSink, SinkError};
use crate::chain::{ChainState, SigningKey};
use crate::entry::AuditEntry;

/// The file name prefix when [`JsonlSinkBuilder::file_prefix`] is not called.
const DEFAULT_PREFIX: &str = "audit_";

/// When [`JsonlSink`] asks the operating system to put written entries on disk (`fsync`).
///
/// Every batch is handed to the kernel before [`write_batch`](AuditSink::write_batch) returns,
/// with no buffer in the process, so a crash of the *process* never loses an accepted entry,
/// whatever the policy. The policy decides what a crash of the *machine* (power loss, kernel
/// panic) can lose. [`flush`](AuditSink::flush) and [`shutdown`](AuditSink::shutdown) sync
/// everything written so far under every policy.
///
/// ```
/// use std::time::Duration;
/// use tracing_llm_audit::FsyncPolicy;
///
/// assert_eq!(FsyncPolicy::default(), FsyncPolicy::EveryBatch);
/// let relaxed = FsyncPolicy::Interval(Duration::from_secs(1));
/// assert_ne!(relaxed, FsyncPolicy::Never);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    /// Never sync on a write; only `flush` and `shutdown` do. A machine crash can lose every
    /// entry written since the last flush, as many as the operating system had not written back
    /// yet (on Linux typically the last 5 to 30 seconds).
    Never,
    /// Sync at the end of a batch once at least this many entries were written since the last
    /// sync (`0` counts as `1`). A machine crash can lose up to `n - 1` accepted entries.
    EveryN(u64),
    /// Sync at the end of a batch once this much time has passed since the last sync. The sink
    /// has no timer of its own: a machine crash can lose the entries written since the last
    /// sync, that is up to one interval of entries, plus the entries of a quiet period that
    /// nobody flushed (the pipeline flushes its sinks when entries stop arriving).
    Interval(Duration),
    /// Sync at the end of every batch, so that `write_batch` returns `Ok` only once its entries
    /// are on disk. A machine crash loses nothing that was accepted. The default.
    #[default]
    EveryBatch,
}

/// Why a [`JsonlSink`] could not be set up.
///
/// The message names the path (or prefix) and what would be right; the operating system's
/// error, when there is one, is the [`source`](std::error::Error::source).
///
/// ```
/// # #[cfg(unix)] {
/// use tracing_llm_audit::{JsonlError, JsonlSink};
///
/// let error = JsonlSink::new("/dev/null").unwrap_err();
/// assert!(matches!(error, JsonlError::NotADirectory { .. }));
/// assert!(error.to_string().contains("/dev/null"));
/// # }
/// ```
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum JsonlError {
    /// The directory did not exist and could not be created.
    #[error(
        "cannot create the audit log directory {}; create it first or choose a directory \
         that this process may create",
        path.display()
    )]
    CreateDir {
        /// The directory that was asked for.
        path: PathBuf,
        /// Why the operating system refused.
        #[source]
        source: io::Error,
    },
    /// The path exists but is a file or something else that is not a directory.
    #[error(
        "the audit log path {} exists but is not a directory; point the sink at a directory",
        path.display()
    )]
    NotADirectory {
        /// The path that was asked for.
        path: PathBuf,
    },
    /// A file could not be created in the directory.
    #[error(
        "the audit log directory {} is not writable; give this process write permission on \
         it or choose another directory",
        path.display()
    )]
    NotWritable {
        /// The directory that was asked for.
        path: PathBuf,
        /// Why the operating system refused.
        #[source]
        source: io::Error,
    },
    /// The file name prefix would not name a file inside the directory.
    #[error(
        "the audit file prefix {prefix:?} would not name a file inside the directory; use a \
         prefix without `/`, `\\` or NUL, for example \"audit_\""
    )]
    InvalidPrefix {
        /// The prefix that was asked for.
        prefix: String,
    },
    /// A tamper-evident sink could not set up its stream (lock its checkpoint file, repair
    /// what a crashed writer left, or write the repair entry).
    #[error("cannot start the tamper-evident stream in {}: {message}", path.display())]
    Chain {
        /// The directory.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

// `Debug` is the sentence too: `?` in `main` prints it.
debug_as_sentence!(JsonlError);

/// Builds a [`JsonlSink`]; see [`JsonlSink::builder`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct JsonlSinkBuilder {
    dir: PathBuf,
    fsync: FsyncPolicy,
    file_prefix: String,
    chain: Option<ChainSettings>,
}

/// Tamper evidence settings: the signing key and when to sign.
#[derive(Debug, Clone)]
struct ChainSettings {
    key: SigningKey,
    every: u64,
    interval: Duration,
}

/// Default entries between two checkpoints.
pub const DEFAULT_CHECKPOINT_EVERY: u64 = 10_000;
/// Default longest time between two checkpoints.
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(60);

impl JsonlSinkBuilder {
    /// When written entries are synced to disk. Default: [`FsyncPolicy::EveryBatch`].
    pub fn fsync(mut self, policy: FsyncPolicy) -> Self {
        self.fsync = policy;
        self
    }

    /// The start of every file name, before the date. Default: `audit_`, giving
    /// `audit_2025-01-31.jsonl`. [`build`](Self::build) refuses a prefix that contains a path
    /// separator or NUL.
    pub fn file_prefix(mut self, prefix: &str) -> Self {
        prefix.clone_into(&mut self.file_prefix);
        self
    }

    /// Makes the files tamper-evident (see [`crate::chain`]): this sink becomes a stream with a
    /// fresh id; every line carries its `chain` link, and checkpoints signed with `key` go to
    /// `<prefix>checkpoints_<stream>.jsonl` beside the daily files, every
    /// [`DEFAULT_CHECKPOINT_EVERY`] entries, every [`DEFAULT_CHECKPOINT_INTERVAL`], at day
    /// rotation and at shutdown (the final one). `llm-audit verify` checks them with the
    /// public key.
    pub fn chain(mut self, key: SigningKey) -> Self {
        self.chain = Some(ChainSettings {
            key,
            every: DEFAULT_CHECKPOINT_EVERY,
            interval: DEFAULT_CHECKPOINT_INTERVAL,
        });
        self
    }

    /// Sign a checkpoint after at most `entries` entries (with [`chain`](Self::chain)).
    pub fn checkpoint_every(mut self, entries: u64) -> Self {
        if let Some(chain) = &mut self.chain {
            chain.every = entries.max(1);
        }
        self
    }

    /// Sign a checkpoint at least this often while entries arrive (with [`chain`](Self::chain)).
    pub fn checkpoint_interval(mut self, interval: Duration) -> Self {
        if let Some(chain) = &mut self.chain {
            chain.interval = interval;
        }
        self
    }

    /// Creates the directory if needed (mode 0700 on Unix) and checks that files can be created
    /// in it.
    ///
    /// # Errors
    /// [`JsonlError`] naming the directory (or the prefix) and what would be right, with the
    /// operating system's error as its source.
    pub fn build(self) -> Result<JsonlSink, JsonlError> {
        if !is_plain_file_name_part(&self.file_prefix) {
            return Err(JsonlError::InvalidPrefix {
                prefix: self.file_prefix,
            });
        }
        ensure_dir(&self.dir)?;
        check_writable(&self.dir, &self.file_prefix)?;
        let chain_error = |message: String| JsonlError::Chain {
            path: self.dir.clone(),
            message,
        };
        let mut repaired = None;
        let mut startup = None;
        let chain = match self.chain {
            None => None,
            Some(settings) => {
                let stream = uuid::Uuid::now_v7().to_string();
                let path = self
                    .dir
                    .join(format!("{}checkpoints_{stream}.jsonl", self.file_prefix));
                startup = Some(
                    super::repair::lock_startup(&self.dir, &self.file_prefix)
                        .map_err(|e| chain_error(format!("cannot take the start-up lock: {e}")))?,
                );
                let lock = super::repair::lock_checkpoint_file(&path)
                    .map_err(|e| chain_error(format!("cannot lock {}: {e}", path.display())))?;
                let heads = super::repair::Heads::read(
                    &self.dir,
                    &self.file_prefix,
                    &path,
                    &settings.key.verifying_key(),
                )
                .map_err(|e| {
                    chain_error(format!("cannot read the other streams' checkpoints: {e}"))
                })?;
                repaired =
                    super::repair::repair(&self.dir, &self.file_prefix, &path, &stream, &heads)
                        .map_err(|e| chain_error(format!("cannot repair: {e}")))?;
                let mut state = ChainState::new(stream);
                state.witness = heads.frontier();
                Some(Chained {
                    path,
                    lock,
                    state,
                    settings,
                    covered: None,
                    index: 0,
                    last_at: Instant::now(),
                    rotated: false,
                    torn: false,
                })
            }
        };
        let mut sink = JsonlSink {
            chain,
            dir: self.dir.clone(),
            file_prefix: self.file_prefix.clone(),
            fsync: self.fsync,
            current: None,
            encoded: EncodedBatch::default(),
            dirty: false,
            unsynced_entries: 0,
            last_sync: Instant::now(),
        };
        if let Some(repair) = repaired {
            sink.write_batch(std::slice::from_ref(&repair.entry))
                .and_then(|()| sink.sync())
                .and_then(|()| sink.chain.as_mut().map_or(Ok(()), |c| c.checkpoint(false)))
                .map_err(|e| chain_error(format!("cannot write the repair entry: {e}")))?;
            repair.mark_named().map_err(|e| {
                chain_error(format!("cannot mark the crashed streams as repaired: {e}"))
            })?;
        }
        drop(startup);
        Ok(sink)
    }
}

/// Writes entries as JSON Lines into one file per UTC day: `<dir>/audit_YYYY-MM-DD.jsonl`.
///
/// - An entry goes to the file of *its* timestamp's UTC date, so a batch that spans midnight
///   lands in two files, each in order.
/// - Files are created with mode 0600, opened for appending only and never truncated. A file
///   that already exists keeps its mode: the sink does not change permissions it did not set.
/// - Every entry is one line whatever its strings contain: `\n`, `\r`, NUL, ANSI escapes, the
///   C1 controls (U+0080..=U+009F, NEL among them), U+2028 and U+2029 are written as JSON
///   escapes, so neither `lines()`, Python's `splitlines()` nor a terminal breaks an entry.
/// - If a write fails halfway through a line, or a previous process died mid-line, the next
///   write starts with `\n`: the fragment stays on a line of its own, which readers skip as
///   invalid JSON, and never glues onto the next entry.
///
/// ```no_run
/// use tracing_llm_audit::{AuditEntry, AuditSink, FsyncPolicy, JsonlSink};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut sink = JsonlSink::builder("./audit_logs")
///     .fsync(FsyncPolicy::EveryN(100))
///     .build()?;
/// sink.write_batch(&[AuditEntry::new("chat")])?;
/// sink.shutdown()?;
/// # Ok(())
/// # }
/// ```
pub struct JsonlSink {
    chain: Option<Chained>,
    dir: PathBuf,
    file_prefix: String,
    fsync: FsyncPolicy,
    current: Option<DayFile>,
    encoded: EncodedBatch,
    /// Bytes were written to the current file since its last sync.
    dirty: bool,
    /// Complete lines written since the last sync, for [`FsyncPolicy::EveryN`].
    unsynced_entries: u64,
    last_sync: Instant,
}

/// A chained sink's stream and checkpoints.
struct Chained {
    state: ChainState,
    settings: ChainSettings,
    /// The checkpoint file.
    path: PathBuf,
    /// The checkpoint file, opened for appending and locked for the sink's lifetime: the lock
    /// tells a later writer that this stream is alive (see `repair`).
    lock: File,
    /// The last sequence number a checkpoint covers.
    covered: Option<u64>,
    /// The next checkpoint's index.
    index: u64,
    last_at: Instant,
    /// A day file was closed since the last checkpoint.
    rotated: bool,
    /// A checkpoint write failed: the file may end in part of a line, which the next
    /// checkpoint must not be glued to.
    torn: bool,
}

impl Chained {
    /// The last entry written, if any.
    fn head(&self) -> Option<u64> {
        self.state.next_seq.checked_sub(1)
    }

    fn due(&self) -> bool {
        let Some(head) = self.head() else {
            return false;
        };
        let pending = head + 1 - self.covered.map_or(0, |c| c + 1);
        pending > 0
            && (pending >= self.settings.every
                || self.rotated
                || self.last_at.elapsed() >= self.settings.interval)
    }

    /// Signs and durably appends a checkpoint of the entries written so far.
    fn checkpoint(&mut self, last: bool) -> Result<(), SinkError> {
        let Some(checkpoint) = self.state.checkpoint(self.index, last, &self.settings.key) else {
            return Ok(());
        };
        let head = checkpoint.seq;
        let mut line = Vec::with_capacity(512);
        if self.torn {
            line.push(b'\n');
        }
        // Serializing a checkpoint (strings and integers) cannot fail.
        let _ = serde_json::to_writer(&mut line, &checkpoint);
        line.push(b'\n');
        let written =
            io::Write::write_all(&mut self.lock, &line).and_then(|()| self.lock.sync_data());
        self.torn = written.is_err();
        written.map_err(|error| {
            SinkError::with_source(
                format!(
                    "could not write the checkpoint file {}",
                    self.path.display()
                ),
                error,
            )
        })?;
        self.covered = Some(head);
        self.index += 1;
        self.last_at = Instant::now();
        self.rotated = false;
        Ok(())
    }
}

/// The open file of one UTC day.
#[derive(Debug)]
struct DayFile {
    date: Date,
    path: PathBuf,
    file: File,
    /// The file does not end with `\n`: a write was cut short mid-line, here or by an earlier
    /// process. The next write must start a new line first.
    ends_mid_line: bool,
}

impl JsonlSink {
    /// A sink writing to `dir` with the default settings: [`FsyncPolicy::EveryBatch`], files
    /// named `audit_YYYY-MM-DD.jsonl`.
    ///
    /// ```no_run
    /// use tracing_llm_audit::JsonlSink;
    ///
    /// # fn main() -> Result<(), tracing_llm_audit::JsonlError> {
    /// let sink = JsonlSink::new("./audit_logs")?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`JsonlSinkBuilder::build`].
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self, JsonlError> {
        Self::builder(dir).build()
    }

    /// A builder for a sink writing to `dir`.
    ///
    /// ```no_run
    /// use tracing_llm_audit::{FsyncPolicy, JsonlSink};
    ///
    /// # fn main() -> Result<(), tracing_llm_audit::JsonlError> {
    /// let sink = JsonlSink::builder("/var/log/llm-audit")
    ///     .file_prefix("billing_")
    ///     .fsync(FsyncPolicy::Never)
    ///     .build()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder(dir: impl Into<PathBuf>) -> JsonlSinkBuilder {
        JsonlSinkBuilder {
            dir: dir.into(),
            fsync: FsyncPolicy::default(),
            file_prefix: DEFAULT_PREFIX.to_owned(),
            chain: None,
        }
    }

    /// The directory the files are written to.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file that holds the entries of the UTC day `date`.
    ///
    /// ```no_run
    /// use tracing_llm_audit::JsonlSink;
    ///
    /// # fn main() -> Result<(), tracing_llm_audit::JsonlError> {
    /// let sink = JsonlSink::new("./audit_logs")?;
    /// let path = sink.file_for(time::macros::date!(2025 - 01 - 31));
    /// assert!(path.ends_with("audit_2025-01-31.jsonl"));
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn file_for(&self, date: Date) -> PathBuf {
        self.dir.join(file_name(&self.file_prefix, date))
    }

    /// Writes the lines `lines` of the encoded batch to the file of `date`. On failure the
    /// error says how many entries of the whole batch made it as complete lines.
    fn write_run(&mut self, date: Date, lines: Range<usize>) -> Result<(), SinkError> {
        let accepted_before = self.encoded.accounted_before(lines.start);
        self.close_other_day(date)
            .map_err(|e| e.accepted_before_failure(accepted_before))?;
        let day = match &mut self.current {
            Some(day) => day,
            slot @ None => {
                let path = self.dir.join(file_name(&self.file_prefix, date));
                let day = open_day_file(date, path)
                    .map_err(|e| e.accepted_before_failure(accepted_before))?;
                slot.insert(day)
            }
        };
        // Possibly a fragment only, but a needless sync is cheaper than a missed one.
        self.dirty = true;
        let end = lines.end;
        let result = write_lines(&mut day.file, &self.encoded, lines, &mut day.ends_mid_line);
        let accepted = result
            .as_ref()
            .map_or_else(|e| e.accepted, |()| self.encoded.accounted_before(end));
        self.unsynced_entries += accepted.saturating_sub(accepted_before) as u64;
        result.map_err(|LinesNotWritten { error, .. }| {
            SinkError::with_source(
                format!("could not write audit entries to {}", day.path.display()),
                error,
            )
            .accepted_before_failure(accepted)
        })
    }

    /// Syncs and closes the open file if it belongs to another day than `date`: once closed,
    /// `flush` could no longer sync it.
    fn close_other_day(&mut self, date: Date) -> Result<(), SinkError> {
        if self.current.as_ref().is_some_and(|day| day.date != date) {
            self.sync()?;
            self.current = None;
            if let Some(chain) = &mut self.chain {
                chain.rotated = true;
            }
        }
        Ok(())
    }

    /// Syncs what was written to the current file since the last sync.
    fn sync(&mut self) -> Result<(), SinkError> {
        if let (true, Some(day)) = (self.dirty, &self.current) {
            day.file.sync_data().map_err(|error| {
                SinkError::with_source(
                    format!(
                        "could not sync the audit file {} to disk",
                        day.path.display()
                    ),
                    error,
                )
            })?;
        }
        self.dirty = false;
        self.unsynced_entries = 0;
        self.last_sync = Instant::now();
        Ok(())
    }

    fn sync_is_due(&self) -> bool {
        self.dirty
            && match self.fsync {
                FsyncPolicy::Never => false,
                FsyncPolicy::EveryN(n) => self.unsynced_entries >= n.max(1),
                FsyncPolicy::Interval(every) => self.last_sync.elapsed() >= every,
                FsyncPolicy::EveryBatch => true,
            }
    }
}

impl AuditSink for JsonlSink {
    fn name(&self) -> &str {
        "jsonl"
    }

    /// Writes the batch with one `write` per UTC day it spans, then syncs as the policy says.
    ///
    /// On an I/O error, the error's [`accepted`](SinkError::accepted) counts the entries that
    /// reached the file as complete lines.
    ///
    /// An entry that cannot be serialized (only possible for a timestamp that RFC 3339 cannot
    /// express, such as a negative year) would fail on every retry, so retrying it cannot help
    /// and must not hold back the entries after it. It is left out, every other entry is
    /// written, and the call returns an error that names the entry, counts the whole batch as
    /// accepted ("nothing left to retry") and the skipped entries as
    /// [rejected](SinkError::rejected), so the pipeline counts them as failed.
    fn write_batch(&mut self, entries: &[AuditEntry]) -> Result<(), SinkError> {
        let before = self
            .chain
            .as_ref()
            .map(|c| (c.state.next_seq, c.state.head.clone()));
        self.encoded
            .encode_with(entries, self.chain.as_mut().map(|c| &mut c.state));
        let result = self.write_encoded(entries);
        if let (Err(error), Some(chain), Some(before)) = (&result, &mut self.chain, before) {
            // The chain goes on from the last line that reached the file.
            let written = (0..=self.encoded.lines())
                .rev()
                .find(|&l| self.encoded.accounted_before(l) <= error.accepted())
                .unwrap_or(0);
            (chain.state.next_seq, chain.state.head) = match self.encoded.link_before(written) {
                // Hex digits are ASCII.
                Some((seq, hash)) => (seq + 1, String::from_utf8_lossy(hash).into_owned()),
                None => before,
            };
        }
        if result.is_ok() && self.chain.as_ref().is_some_and(Chained::due) {
            // A checkpoint covers only entries that are on disk.
            self.sync()
                .map_err(|e| e.accepted_before_failure(entries.len()))?;
            if let Some(chain) = &mut self.chain {
                chain
                    .checkpoint(false)
                    .map_err(|e| e.accepted_before_failure(entries.len()))?;
            }
        }
        result
    }

    /// Syncs everything written so far to disk, whatever the [`FsyncPolicy`].
    fn flush(&mut self) -> Result<(), SinkError> {
        self.sync()
    }

    /// Syncs everything written so far and closes the file; a chained sink signs its final
    /// checkpoint.
    fn shutdown(&mut self) -> Result<(), SinkError> {
        let synced = self.sync();
        self.current = None;
        synced?;
        match &mut self.chain {
            // A stream without entries leaves nothing behind (not even an empty checkpoint
            // file, which a later writer would take for a crashed stream).
            Some(chain) if chain.head().is_none() => {
                let _ = std::fs::remove_file(&chain.path);
                Ok(())
            }
            Some(chain) => chain.checkpoint(true),
            None => Ok(()),
        }
    }
}

impl JsonlSink {
    /// The stream id of a chained sink.
    #[must_use]
    pub fn stream_id(&self) -> Option<&str> {
        self.chain.as_ref().map(|c| c.state.stream.as_str())
    }

    fn write_encoded(&mut self, entries: &[AuditEntry]) -> Result<(), SinkError> {
        let skipped = self.encoded.take_unserializable();
        let mut line = 0;
        while line < self.encoded.lines() {
            let date = utc_date(&entries[self.encoded.entry_index(line)]);
            let run_end = (line + 1..self.encoded.lines())
                .find(|&next| utc_date(&entries[self.encoded.entry_index(next)]) != date)
                .unwrap_or(self.encoded.lines());
            self.write_run(date, line..run_end)
                .map_err(|e| note_skipped(e, skipped.as_ref(), entries))?;
            line = run_end;
        }
        if self.sync_is_due() {
            self.sync().map_err(|e| {
                note_skipped(
                    e.accepted_before_failure(entries.len()),
                    skipped.as_ref(),
                    entries,
                )
            })?;
        }
        match skipped {
            None => Ok(()),
            Some(skipped) => Err(unserializable_error(entries, skipped)),
        }
    }
}

impl fmt::Debug for JsonlSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonlSink")
            .field("dir", &self.dir)
            .field("file_prefix", &self.file_prefix)
            .field("fsync", &self.fsync)
            .field("current_file", &self.current.as_ref().map(|day| &day.path))
            .finish_non_exhaustive()
    }
}

/// The UTC calendar date of the entry, which names its file. A timestamp whose UTC date lies
/// outside what `time` can represent (a few hours around year ±9999) keeps its own date rather
/// than panicking.
fn utc_date(entry: &AuditEntry) -> Date {
    let at = entry.timestamp;
    at.checked_to_offset(UtcOffset::UTC)
        .map_or(at.date(), |utc| utc.date())
}

fn file_name(prefix: &str, date: Date) -> String {
    format!(
        "{prefix}{:04}-{:02}-{:02}.jsonl",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

fn is_plain_file_name_part(prefix: &str) -> bool {
    !prefix.contains(['/', '\\', '\0'])
}

/// Wraps an error about something else so that it also reports the entries that could not be
/// serialized, when they are among those the error counts as accepted (the caller will not send
/// them again, so this is the only report they get).
fn note_skipped(
    error: SinkError,
    skipped: Option<&Unserializable>,
    entries: &[AuditEntry],
) -> SinkError {
    match skipped {
        Some(skipped) if skipped.first < error.accepted() => {
            let accepted = error.accepted();
            SinkError::with_source(
                format!(
                    "{} ({}), and then writing failed",
                    describe_unserializable(entries, skipped),
                    skipped.error
                ),
                error,
            )
            .accepted_before_failure(accepted)
        }
        _ => error,
    }
}

/// Creates `dir` (and its parents) with mode 0700 unless it exists.
fn ensure_dir(dir: &Path) -> Result<(), JsonlError> {
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => return Ok(()),
        Ok(_) => {
            return Err(JsonlError::NotADirectory {
                path: dir.to_owned(),
            })
        }
        Err(_) => {}
    }
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|source| match fs::metadata(dir) {
            Ok(meta) if !meta.is_dir() => JsonlError::NotADirectory {
                path: dir.to_owned(),
            },
            _ => JsonlError::CreateDir {
                path: dir.to_owned(),
                source,
            },
        })
}

/// Creates and removes a probe file, so that a directory we cannot write to is reported when
/// the sink is built, not at the first entry.
fn check_writable(dir: &Path, prefix: &str) -> Result<(), JsonlError> {
    let probe = dir.join(format!(".{prefix}write-check-{}", std::process::id()));
    // A new file of its own: whatever is planted under that name (a link, another file) fails
    // the open instead of being truncated.
    let _ = fs::remove_file(&probe);
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    super::log_file::open(&probe, &options, Access::Append).map_err(|source| {
        JsonlError::NotWritable {
            path: dir.to_owned(),
            source,
        }
    })?;
    // The probe is empty and ours; failing to remove it is harmless.
    let _ = fs::remove_file(&probe);
    Ok(())
}

/// Opens (or creates) a day's file for appending, and finds out whether it ends mid-line.
fn open_day_file(date: Date, path: PathBuf) -> Result<DayFile, SinkError> {
    let open_error = |error| {
        SinkError::with_source(
            format!("could not open the audit file {}", path.display()),
            error,
        )
    };
    let mut options = OpenOptions::new();
    options.read(true).append(true).create(true);
    let (file, ends_mid_line) = match super::log_file::open(&path, &options, Access::Append) {
        Ok(file) => {
            let ends_mid_line = ends_mid_line(&file).map_err(open_error)?;
            (file, ends_mid_line)
        }
        // An existing file we may append to but not read: we cannot look at its end, so a
        // non-empty one is assumed to end mid-line. A blank line is harmless; a glued one is not.
        Err(error) if error.kind() == io::ErrorKind::PermissionDenied => {
            let file =
                super::log_file::open(&path, OpenOptions::new().append(true), Access::Append)
                    .map_err(|_| open_error(error))?;
            let len = file.metadata().map_err(open_error)?.len();
            (file, len > 0)
        }
        Err(error) => return Err(open_error(error)),
    };
    Ok(DayFile {
        date,
        path,
        file,
        ends_mid_line,
    })
}

/// Whether the file is non-empty and its last byte is not `\n`. Reading moves only the read
/// position: with `O_APPEND`, every write still goes to the end.
pub(super) fn ends_mid_line(mut file: &File) -> io::Result<bool> {
    if file.metadata()?.len() == 0 {
        return Ok(false);
    }
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0_u8];
    file.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::io::{BufRead, BufReader, Write};
    use time::macros::datetime;
    use time::OffsetDateTime;

    use crate::sink::line::tests::{assert_single_line, entry_with_strings};

    fn entry_at(at: OffsetDateTime, action: &str) -> AuditEntry {
        let mut entry = AuditEntry::new(action);
        entry.timestamp = at;
        entry
    }

    fn read_lines(path: &Path) -> Vec<String> {
        let file = File::open(path).unwrap();
        BufReader::new(file).lines().map(Result::unwrap).collect()
    }

    fn parse(lines: &[String]) -> Vec<AuditEntry> {
        lines
            .iter()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    #[test]
    fn file_names_follow_the_utc_date() {
        let date = time::macros::date!(2025 - 01 - 31);
        assert_eq!(file_name("audit_", date), "audit_2025-01-31.jsonl");
        let late_in_tokyo = entry_at(datetime!(2025-02-01 06:00 +09:00), "chat");
        assert_eq!(utc_date(&late_in_tokyo), date);
    }

    #[test]
    fn a_timestamp_beyond_the_utc_range_does_not_panic() {
        let entry = entry_at(datetime!(9999-12-31 23:00 -02:00), "chat");
        assert_eq!(utc_date(&entry), time::macros::date!(9999 - 12 - 31));
    }

    #[test]
    fn hostile_strings_are_one_line_each_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = JsonlSink::new(dir.path()).unwrap();
        let at = datetime!(2025-01-31 12:00 UTC);
        let mut entries = Vec::new();
        for text in ["a\nb", "\u{2028}\u{2029}\u{85}", "\u{1b}[2J\0", "\r\n👩‍💻"] {
            let mut entry = entry_with_strings(text);
            entry.timestamp = at;
            entries.push(entry);
        }
        sink.write_batch(&entries).unwrap();
        sink.shutdown().unwrap();
        let content = fs::read_to_string(sink.file_for(at.date())).unwrap();
        let lines: Vec<String> = content
            .split_inclusive('\n')
            .map(|line| assert_single_line(line).to_owned())
            .collect();
        assert_eq!(parse(&lines), entries);
    }

    #[test]
    fn a_fragment_left_by_an_earlier_process_stays_on_its_own_line() {
        let dir = tempfile::tempdir().unwrap();
        let at = datetime!(2025-01-31 12:00 UTC);
        let sink_path = dir.path().join(file_name(DEFAULT_PREFIX, at.date()));
        fs::write(&sink_path, b"{\"schema_version\":1,\"request_").unwrap();
        let mut sink = JsonlSink::new(dir.path()).unwrap();
        let entries = [entry_at(at, "first"), entry_at(at, "second")];
        sink.write_batch(&entries).unwrap();
        let lines = read_lines(&sink_path);
        assert_eq!(lines[0], "{\"schema_version\":1,\"request_");
        assert_eq!(parse(&lines[1..]), entries);
    }

    #[test]
    fn a_batch_spanning_midnight_goes_to_two_files_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = JsonlSink::new(dir.path()).unwrap();
        let before = datetime!(2025-01-31 23:59:59 UTC);
        let after = datetime!(2025-02-01 00:00:01 UTC);
        let entries = [
            entry_at(before, "a"),
            entry_at(before, "b"),
            entry_at(after, "c"),
            entry_at(after, "d"),
        ];
        sink.write_batch(&entries).unwrap();
        sink.shutdown().unwrap();
        assert_eq!(
            parse(&read_lines(&sink.file_for(before.date()))),
            entries[..2]
        );
        assert_eq!(
            parse(&read_lines(&sink.file_for(after.date()))),
            entries[2..]
        );
    }

    #[test]
    fn an_unserializable_entry_costs_only_itself() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = JsonlSink::new(dir.path()).unwrap();
        let at = datetime!(2025-01-31 12:00 UTC);
        let bad = entry_at(datetime!(-0001-01-01 0:00 UTC), "bad");
        let entries = [entry_at(at, "a"), bad.clone(), entry_at(at, "c")];
        let error = sink.write_batch(&entries).unwrap_err();
        assert_eq!(error.accepted(), entries.len(), "nothing to retry");
        assert!(
            error.to_string().contains(&bad.request_id.to_string()),
            "{error}"
        );
        let lines = read_lines(&sink.file_for(at.date()));
        assert_eq!(parse(&lines), [entries[0].clone(), entries[2].clone()]);
    }

    /// No line longer than [`MAX_LINE_BYTES`](crate::sink::MAX_LINE_BYTES) is written, chained
    /// or not: readers refuse longer ones. The entry is refused alone, and the chain goes on.
    #[test]
    fn an_entry_longer_than_a_line_may_be_is_refused_alone() {
        for chained in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let mut builder = JsonlSink::builder(dir.path());
            if chained {
                builder = builder.chain(SigningKey::generate().unwrap());
            }
            let mut sink = builder.build().unwrap();
            let at = datetime!(2025-01-31 12:00 UTC);
            let mut huge = entry_at(at, "huge");
            huge.input_content = Some(crate::content::StoredContent::Plaintext {
                text: "x".repeat(crate::sink::MAX_LINE_BYTES),
            });
            let entries = [entry_at(at, "a"), huge.clone(), entry_at(at, "c")];
            let error = sink.write_batch(&entries).unwrap_err();
            assert_eq!(error.rejected(), 1, "{error}");
            assert!(error.to_string().contains("64 MiB"), "{error}");
            let lines = read_lines(&sink.file_for(at.date()));
            assert_eq!(lines.len(), 2);
            assert!(lines.iter().all(|l| l.len() < 4096));
            if chained {
                let seqs: Vec<u64> = lines
                    .iter()
                    .map(|l| {
                        serde_json::from_str::<serde_json::Value>(l).unwrap()["chain"]["seq"]
                            .as_u64()
                            .unwrap()
                    })
                    .collect();
                assert_eq!(seqs, [0, 1], "the chain goes on without the refused entry");
            }
        }
    }

    #[test]
    fn several_unserializable_entries_are_counted_in_one_report() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = JsonlSink::new(dir.path()).unwrap();
        let bad = entry_at(datetime!(-0001-01-01 0:00 UTC), "bad");
        let error = sink.write_batch(&[bad.clone(), bad]).unwrap_err();
        assert_eq!(error.accepted(), 2);
        assert!(error.to_string().starts_with("2 audit entries"), "{error}");
    }

    #[test]
    fn an_io_error_after_a_skipped_entry_still_reports_it() {
        let bad = entry_at(datetime!(-0001-01-01 0:00 UTC), "bad");
        let entries = [
            entry_at(datetime!(2025-01-31 12:00 UTC), "good"),
            bad.clone(),
        ];
        let mut buf = Vec::new();
        let serde_error = crate::sink::line::write_entry_line(&mut buf, &bad).unwrap_err();
        let skipped = Unserializable {
            first: 1,
            count: 1,
            error: serde_error,
        };
        let io_error = SinkError::new("could not write").accepted_before_failure(2);
        let reported = note_skipped(io_error, Some(&skipped), &entries);
        assert_eq!(reported.accepted(), 2);
        let chain = crate::sink::error_chain(&reported);
        assert!(chain.contains(&bad.request_id.to_string()), "{chain}");
        assert!(chain.ends_with(": could not write"), "{chain}");

        let retried_anyway = SinkError::new("could not write").accepted_before_failure(1);
        let reported = note_skipped(retried_anyway, Some(&skipped), &entries);
        assert_eq!(reported.to_string(), "could not write");
    }

    #[test]
    fn sync_policies_decide_when_a_batch_is_synced() {
        let dir = tempfile::tempdir().unwrap();
        let at = datetime!(2025-01-31 12:00 UTC);
        let batch = [entry_at(at, "a"), entry_at(at, "b")];
        let cases = [
            (FsyncPolicy::Never, false),
            (FsyncPolicy::EveryN(3), false),
            (FsyncPolicy::EveryN(2), true),
            (FsyncPolicy::EveryN(0), true),
            (FsyncPolicy::Interval(Duration::from_secs(3600)), false),
            (FsyncPolicy::Interval(Duration::ZERO), true),
            (FsyncPolicy::EveryBatch, true),
        ];
        for (policy, synced) in cases {
            let mut sink = JsonlSink::builder(dir.path())
                .fsync(policy)
                .build()
                .unwrap();
            sink.write_batch(&batch).unwrap();
            assert_eq!(!sink.dirty, synced, "{policy:?}");
            sink.flush().unwrap();
            assert!(!sink.dirty, "flush syncs under {policy:?}");
        }
    }

    /// A write that fails outright (the day's file swapped for a read-only handle) accepts
    /// nothing of the batch and leaves the earlier lines alone.
    #[test]
    fn a_failed_write_reports_no_entries_and_keeps_earlier_lines() {
        let dir = tempfile::tempdir().unwrap();
        let at = datetime!(2025-01-31 12:00 UTC);
        let mut sink = JsonlSink::new(dir.path()).unwrap();
        let first = [entry_at(at, "first")];
        sink.write_batch(&first).unwrap();
        let path = sink.file_for(at.date());
        let read_only = File::open(&path).unwrap();
        if let Some(day) = sink.current.as_mut() {
            day.file = read_only;
        }
        let error = sink.write_batch(&[entry_at(at, "second")]).unwrap_err();
        assert_eq!(error.accepted(), 0);
        assert!(
            error.to_string().contains(&path.display().to_string()),
            "{error}"
        );
        assert_eq!(parse(&read_lines(&path)), first);
    }

    #[test]
    fn a_torn_line_in_this_process_is_ended_before_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let at = datetime!(2025-01-31 12:00 UTC);
        let mut sink = JsonlSink::new(dir.path()).unwrap();
        sink.write_batch(&[entry_at(at, "first")]).unwrap();
        let path = sink.file_for(at.date());
        // What a write cut short by a full disk leaves behind, and what the sink then knows.
        OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"torn")
            .unwrap();
        if let Some(day) = sink.current.as_mut() {
            day.ends_mid_line = true;
        }
        let next = [entry_at(at, "second"), entry_at(at, "third")];
        sink.write_batch(&next).unwrap();
        let lines = read_lines(&path);
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert_eq!(lines[1], "{\"torn");
        assert_eq!(parse(&lines[2..]), next);
    }

    #[test]
    fn unwritable_and_invalid_setups_are_refused_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a_file");
        fs::write(&file, b"").unwrap();
        let error = JsonlSink::new(&file).unwrap_err();
        assert!(matches!(error, JsonlError::NotADirectory { .. }), "{error}");
        assert!(error.to_string().contains(&file.display().to_string()));

        let below_a_file = file.join("logs");
        let error = JsonlSink::new(&below_a_file).unwrap_err();
        assert!(matches!(error, JsonlError::CreateDir { .. }), "{error:?}");
        assert!(error
            .to_string()
            .contains(&below_a_file.display().to_string()));
        assert!(std::error::Error::source(&error).is_some());

        let error = JsonlSink::builder(dir.path())
            .file_prefix("../escape_")
            .build()
            .unwrap_err();
        assert!(matches!(error, JsonlError::InvalidPrefix { .. }), "{error}");
    }
}
