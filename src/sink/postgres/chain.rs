//! Tamper evidence in PostgreSQL: each sink is a stream (see [`crate::chain`]); its rows carry
//! their links in the `chain_*` columns, and its signed checkpoints go to
//! `llm_audit_checkpoints`.
//!
//! A checkpoint is signed when it is due, kept durably in the spill directory
//! (`checkpoints-pending.jsonl`), and inserted only once nothing waits in the spill: then every
//! entry it covers is in the table. So an outage delays checkpoints but never makes one cover
//! rows the table does not have.
//!
//! A writer that dies leaves its stream unsealed (no final checkpoint). Each stream keeps a
//! file `stream-<id>.json` in the spill directory with the last checkpoint it signed, removed
//! when the final one is signed. The next sink that opens the directory finds the files of the
//! dead and opens its own stream with an `llm_audit.repair` entry naming them, with their last
//! signed checkpoints, which `llm-audit verify` accepts as a crash rather than tampering under
//! the same rules as for JSONL files.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::chain::{ChainLink, ChainState, Checkpoint, SigningKey};
use crate::entry::AuditEntry;
use crate::sink::repair::ACTION_REPAIR;

const PENDING: &str = "checkpoints-pending.jsonl";
const STREAM_PREFIX: &str = "stream-";
const STREAM_SUFFIX: &str = ".json";

/// What a stream file records: the last checkpoint the stream signed, if any.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Signed {
    stream: String,
    index: Option<u64>,
    seq: Option<u64>,
    head: Option<String>,
}

/// The chain settings of a sink, from its builder.
pub(super) struct ChainSettings {
    pub(super) key: SigningKey,
    pub(super) every: u64,
    pub(super) interval: Duration,
}

/// One sink's stream.
pub(super) struct PgChain {
    state: ChainState,
    settings: ChainSettings,
    dir: PathBuf,
    /// The next checkpoint's index.
    index: u64,
    /// The last seq a signed checkpoint covers.
    covered: Option<u64>,
    last_at: Instant,
    /// Signed, not yet in the table (mirrored in the pending file).
    pub(super) pending: Vec<Checkpoint>,
    /// The repair entry, until it is linked as the stream's first entry.
    repair: Option<AuditEntry>,
    /// The stream files of the crashed writers it names, removed once it is stored.
    repaired_files: Vec<PathBuf>,
    /// The stream file exists (from the first entry on).
    stream_file: bool,
    sealed: bool,
}

impl PgChain {
    /// A new stream in `dir` (the spill directory, locked by the caller), with a repair entry
    /// when writers that used `dir` before died unsealed.
    pub(super) fn open(dir: &Path, settings: ChainSettings) -> io::Result<Self> {
        let pending = read_pending(&dir.join(PENDING))?;
        let mut crashed = Vec::new();
        let mut repaired_files = Vec::new();
        for entry in fs::read_dir(dir)?.filter_map(Result::ok) {
            let name = entry.file_name();
            let Some(id) = name
                .to_str()
                .and_then(|n| n.strip_prefix(STREAM_PREFIX))
                .and_then(|n| n.strip_suffix(STREAM_SUFFIX))
            else {
                continue;
            };
            let mut signed = fs::read(entry.path())
                .ok()
                .and_then(|text| serde_json::from_slice::<Signed>(&text).ok())
                .filter(|s| s.stream == id)
                .unwrap_or_else(|| Signed {
                    stream: id.to_owned(),
                    ..Signed::default()
                });
            // Signed and kept as pending, but the writer died before it recorded it here.
            if let Some(cp) = pending
                .iter()
                .filter(|cp| cp.stream == id)
                .max_by_key(|cp| cp.index)
                .filter(|cp| signed.index.is_none_or(|i| cp.index > i))
            {
                signed.index = Some(cp.index);
                signed.seq = Some(cp.seq);
                signed.head = Some(cp.head.clone());
            }
            crashed.push(signed);
            repaired_files.push(entry.path());
        }
        crashed.sort_by(|a, b| a.stream.cmp(&b.stream));
        let repair = (!crashed.is_empty()).then(|| {
            let mut entry = AuditEntry::new(ACTION_REPAIR);
            let mut metadata = serde_json::Map::new();
            metadata.insert(
                "crashed_streams".to_owned(),
                serde_json::to_value(&crashed).unwrap_or_default(),
            );
            entry.metadata = Some(metadata);
            entry
        });
        Ok(Self {
            state: ChainState::new(uuid::Uuid::now_v7().to_string()),
            settings,
            dir: dir.to_owned(),
            index: 0,
            covered: None,
            last_at: Instant::now(),
            pending,
            repair,
            repaired_files,
            stream_file: false,
            sealed: false,
        })
    }

    pub(super) fn stream(&self) -> &str {
        &self.state.stream
    }

    /// The entries as they will be stored, each with its link, the repair entry first if one
    /// is still to be written.
    pub(super) fn link(
        &mut self,
        entries: &[AuditEntry],
    ) -> Result<(Vec<AuditEntry>, Vec<Option<ChainLink>>), String> {
        if !self.stream_file {
            self.record(&Signed {
                stream: self.state.stream.clone(),
                ..Signed::default()
            })
            .map_err(|e| {
                format!(
                    "cannot write the stream file in {}: {e}",
                    self.dir.display()
                )
            })?;
            self.stream_file = true;
        }
        let mut stored: Vec<AuditEntry> = Vec::with_capacity(entries.len() + 1);
        // Linked once, as seq 0: if its batch is lost, the crashed streams stay unnamed (and
        // their files stay, for the next start to name them).
        stored.extend(self.repair.take());
        stored.extend(entries.iter().map(super::schema::stored_form));
        let mut line = Vec::new();
        let mut links = Vec::with_capacity(stored.len());
        for entry in &stored {
            line.clear();
            crate::sink::line::write_entry_line(&mut line, entry)
                .map_err(|e| format!("cannot serialize entry {}: {e}", entry.request_id))?;
            let (digest, _) = crate::chain::line_digest(&line[..line.len() - 1])
                .map_err(|e| format!("cannot hash entry {}: {e}", entry.request_id))?;
            links.push(Some(self.state.link_digest(&digest)));
        }
        Ok((stored, links))
    }

    /// The linked batch is in the table or the spill: the repair entry, if it was in it, is
    /// written. The crashed streams it names are named for good only once a signed checkpoint
    /// covers it (`verify` trusts no repair entry before that), so one is signed now; if this
    /// writer dies before then, their files stay for the next start to name them again.
    pub(super) fn stored(&mut self) {
        if self.repair.is_none() && !self.repaired_files.is_empty() {
            let covered = self
                .state
                .next_seq
                .checked_sub(1)
                .is_some_and(|head| self.covered.is_some_and(|c| c >= head));
            if covered || self.sign(false).is_ok() {
                for path in self.repaired_files.drain(..) {
                    let _ = fs::remove_file(path);
                }
            }
        }
    }

    /// The linked batch is lost (neither in the table nor in the spill): the crashed streams a
    /// repair entry in it named keep their files, for the next start to name them again.
    pub(super) fn lost(&mut self) {
        if self.repair.is_none() {
            self.repaired_files.clear();
        }
    }

    /// Signs a checkpoint if one is due (`last`: the final one, at shutdown) and keeps it as
    /// pending. Returns whether there is anything pending.
    pub(super) fn sign_if_due(&mut self, last: bool) -> io::Result<bool> {
        let Some(head) = self.state.next_seq.checked_sub(1) else {
            return Ok(!self.pending.is_empty());
        };
        let uncovered = head + 1 - self.covered.map_or(0, |c| c + 1);
        let due = if last {
            !self.sealed
        } else {
            uncovered > 0
                && (uncovered >= self.settings.every
                    || self.last_at.elapsed() >= self.settings.interval)
        };
        if due {
            self.sign(last)?;
        }
        Ok(!self.pending.is_empty())
    }

    /// Signs a checkpoint of the head now and keeps it as pending (durably, in the spill
    /// directory).
    fn sign(&mut self, last: bool) -> io::Result<()> {
        let Some(checkpoint) = self.state.checkpoint(self.index, last, &self.settings.key) else {
            return Ok(());
        };
        append_pending(&self.dir.join(PENDING), &checkpoint)?;
        if last {
            // Sealed: no longer a stream a later writer must repair.
            let _ = fs::remove_file(self.stream_path());
            self.sealed = true;
        } else {
            self.record(&Signed {
                stream: checkpoint.stream.clone(),
                index: Some(checkpoint.index),
                seq: Some(checkpoint.seq),
                head: Some(checkpoint.head.clone()),
            })?;
        }
        self.covered = Some(checkpoint.seq);
        self.pending.push(checkpoint);
        self.index += 1;
        self.last_at = Instant::now();
        Ok(())
    }

    /// The pending checkpoints are in the table.
    pub(super) fn inserted(&mut self) -> io::Result<()> {
        let file = OpenOptions::new()
            .write(true)
            .open(self.dir.join(PENDING))?;
        file.set_len(0)?;
        file.sync_all()?;
        self.pending.clear();
        Ok(())
    }

    fn stream_path(&self) -> PathBuf {
        self.dir.join(format!(
            "{STREAM_PREFIX}{}{STREAM_SUFFIX}",
            self.state.stream
        ))
    }

    /// Replaces the stream file, durably.
    fn record(&self, signed: &Signed) -> io::Result<()> {
        let path = self.stream_path();
        let tmp = path.with_extension("json.tmp");
        let mut file = File::create(&tmp)?;
        file.write_all(&serde_json::to_vec(signed).unwrap_or_default())?;
        file.sync_all()?;
        fs::rename(&tmp, &path)?;
        File::open(&self.dir).and_then(|d| d.sync_all())
    }
}

fn read_pending(path: &Path) -> io::Result<Vec<Checkpoint>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut pending = Vec::new();
    for line in BufReader::new(file).lines() {
        // A line cut by a crash is a checkpoint that was never acknowledged: it goes.
        if let Ok(cp) = serde_json::from_str(&line?) {
            pending.push(cp);
        }
    }
    Ok(pending)
}

fn append_pending(path: &Path, checkpoint: &Checkpoint) -> io::Result<()> {
    let mut line = serde_json::to_vec(checkpoint).unwrap_or_default();
    line.push(b'\n');
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    // A line cut by an earlier crash must not glue onto this one.
    if file.metadata()?.len() > 0 {
        let mut last = [0u8; 1];
        let mut reader = File::open(path)?;
        io::Seek::seek(&mut reader, io::SeekFrom::End(-1))?;
        io::Read::read_exact(&mut reader, &mut last)?;
        if last[0] != b'\n' {
            line.insert(0, b'\n');
        }
    }
    file.write_all(&line)?;
    file.sync_all()
}
