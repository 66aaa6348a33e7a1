//! Crash repair for tamper-evident JSONL directories.
//!
//! A chained [`JsonlSink`](super::JsonlSink) holds an exclusive lock on its checkpoint file for
//! as long as it lives; the operating system releases it when the process dies, however it dies.
//! When a new chained sink starts and *no* other stream's lock is held (every other writer is
//! gone), it:
//!
//! 1. moves the torn last line of every daily file (bytes after the last `\n`, left by a writer
//!    killed mid-line) to `<prefix>quarantine.jsonl`, with its file, offset, length and SHA-256,
//!    and cuts it from the daily file;
//! 2. lists the streams that ended without a final checkpoint (their writer crashed);
//! 3. writes an `llm_audit.repair` entry, the first of its own chain, that names both, and signs
//!    a checkpoint over it at once;
//! 4. only then marks the crashed streams as named (`<checkpoint file>.repaired`), so that a
//!    writer killed before its checkpoint leaves them for the next start to name again.
//!
//! `llm-audit verify` then reports those streams as repaired, not as tampered with (it excuses a
//! crash only by a repair entry that a checkpoint covers). While
//! another writer is alive, nothing is touched: its last line may simply be half written.
//! Every writer of a directory must be chained for this to hold (an unchained writer holds no
//! lock).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use std::collections::BTreeMap;

use super::log_file::{self, Access};
use crate::chain::{Checkpoint, VerifyingKey, Witness};
use crate::entry::AuditEntry;

/// The `action` of a repair entry.
pub const ACTION_REPAIR: &str = "llm_audit.repair";

/// Opens (creating) and locks a stream's checkpoint file. The lock lives as long as the file.
pub(crate) fn lock_checkpoint_file(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    let file = log_file::open(path, &options, Access::Append)?;
    file.try_lock().map_err(|e| match e {
        std::fs::TryLockError::WouldBlock => io::Error::new(
            io::ErrorKind::WouldBlock,
            format!("{} is locked by another writer", path.display()),
        ),
        std::fs::TryLockError::Error(e) => e,
    })?;
    Ok(file)
}

fn checkpoint_files(dir: &Path, prefix: &str) -> io::Result<Vec<PathBuf>> {
    let marker = format!("{prefix}checkpoints_");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            // Exactly `<prefix>checkpoints_<stream>.jsonl`, with a stream id as writers make
            // them: `..._<id>.jsonl.jsonl`, planted, would be taken for stream `<id>`.
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix(&marker))
                .and_then(|n| n.strip_suffix(".jsonl"))
                .is_some_and(|id| {
                    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                })
        })
        .collect();
    files.sort();
    Ok(files)
}

fn daily_files(dir: &Path, prefix: &str) -> io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.strip_prefix(prefix)
                    .and_then(|d| d.strip_suffix(".jsonl"))
                    .is_some_and(|d| d.len() == 10 && d.as_bytes()[4] == b'-')
            })
        })
        .collect();
    files.sort();
    Ok(files)
}

/// The last checkpoint of `stream`'s checkpoint file that `key` signed. Lines after it are parts
/// of checkpoints whose write was cut short (a full disk, a kill), or lines nobody with the key
/// wrote: never signed as far as `verify` is concerned, so the repair must name the one before
/// them, and a new stream must not witness them.
///
/// Reads the file from its end, a block at a time, and takes the signed checkpoint of the
/// highest index there (not the last line: a copy of an earlier checkpoint appended at the end
/// would make a closed stream look crashed there). A start reads every stream's file, which may
/// hold a year of checkpoints, so at most [`MAX_TAIL`] bytes of each are read: a file planted
/// to be gigabytes long costs no more.
fn last_checkpoint(
    path: &Path,
    stream: &str,
    key: &VerifyingKey,
) -> io::Result<Option<Checkpoint>> {
    let mut file = log_file::open_read(path)?;
    let len = file.metadata()?.len();
    let mut block = 64 * 1024u64;
    loop {
        let start = len.saturating_sub(block);
        let mut tail = Vec::with_capacity((len - start) as usize);
        file.seek(SeekFrom::Start(start))?;
        (&mut file).take(len - start).read_to_end(&mut tail)?;
        let mut lines: Vec<&[u8]> = tail.split(|&b| b == b'\n').collect();
        if start > 0 {
            // The first line of the block may be the end of one that started before it.
            lines.remove(0);
        }
        let mut candidates: Vec<Checkpoint> = lines
            .iter()
            .filter_map(|line| serde_json::from_slice::<Checkpoint>(line).ok())
            .filter(|cp| cp.stream == stream)
            .collect();
        candidates.sort_by_key(|cp| std::cmp::Reverse(cp.index));
        let found = candidates.into_iter().find(|cp| cp.verify(key));
        if found.is_some() || start == 0 || block >= MAX_TAIL {
            return Ok(found);
        }
        block = block.saturating_mul(4).min(MAX_TAIL);
    }
}

/// The most of a checkpoint file's end a starting writer reads.
const MAX_TAIL: u64 = 16 << 20;

/// The other streams of a directory as a starting writer finds them: the last checkpoint that
/// each signed, with the key this writer signs with.
#[derive(Debug, Default)]
pub(crate) struct Heads {
    last: BTreeMap<String, Option<Checkpoint>>,
}

impl Heads {
    /// Reads the last signed checkpoint of every stream's checkpoint file but `own`.
    pub(crate) fn read(
        dir: &Path,
        prefix: &str,
        own: &Path,
        key: &VerifyingKey,
    ) -> io::Result<Self> {
        let mut last = BTreeMap::new();
        for path in checkpoint_files(dir, prefix)? {
            if path == own {
                continue;
            }
            let stream = stream_of(&path, prefix).to_owned();
            let checkpoint = last_checkpoint(&path, &stream, key)?;
            last.insert(stream, checkpoint);
        }
        Ok(Self { last })
    }

    /// What a new stream witnesses: the last signed checkpoint of every other stream, except
    /// those that another stream's last checkpoint already witnesses (at that checkpoint or a
    /// later one). Witnesses chain: removing a stream that a witnessed one witnessed is found
    /// through it, so a directory of many restarts witnesses one or a few streams, not all.
    pub(crate) fn frontier(&self) -> Vec<Witness> {
        self.last
            .values()
            .flatten()
            .filter(|cp| {
                !self
                    .witnesses_of(&cp.stream)
                    .any(|w| w.index > cp.index || (w.index == cp.index && w.matches(cp)))
            })
            .map(Witness::of)
            .collect()
    }

    /// The witnesses of `stream` in the other streams' last checkpoints.
    fn witnesses_of<'a>(&'a self, stream: &'a str) -> impl Iterator<Item = &'a Witness> + 'a {
        self.last
            .iter()
            .filter(move |(other, _)| other.as_str() != stream)
            .filter_map(|(_, cp)| cp.as_ref())
            .flat_map(|cp| &cp.witness)
            .filter(move |w| w.stream == stream)
    }

    /// Why `stream` cannot be taken for a writer that crashed with the last checkpoint `last`:
    /// another stream witnessed a later or a final checkpoint of it, so checkpoints were
    /// removed. `None` when no witness says so.
    fn contradiction(&self, stream: &str, last: Option<&Checkpoint>) -> Option<String> {
        self.witnesses_of(stream)
            .find(|w| match last {
                None => true,
                Some(cp) => w.index > cp.index || (w.last && !cp.last),
            })
            .map(|w| {
                format!(
                    "another stream witnessed its checkpoint #{} (seq {}{})",
                    w.index,
                    w.seq,
                    if w.last { ", final" } else { "" }
                )
            })
    }
}

fn stream_of<'a>(path: &'a Path, prefix: &str) -> &'a str {
    path.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .trim_start_matches(&format!("{prefix}checkpoints_"))
        .trim_end_matches(".jsonl")
}

/// Serializes the start-up of chained writers in one directory: a writer repairing holds it
/// until its repair entry is written, so that no other writer appends meanwhile (its lines
/// could otherwise be cut with a torn fragment).
pub(crate) fn lock_startup(dir: &Path, prefix: &str) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    let file = log_file::open(
        &dir.join(format!("{prefix}startup.lock")),
        &options,
        Access::Append,
    )?;
    file.lock()?;
    Ok(file)
}

/// What a start repaired: the entry to write first, and the crashed streams it names.
#[derive(Debug)]
pub(crate) struct Repair {
    pub(crate) entry: AuditEntry,
    /// The markers that stop a later start from naming the crashed streams again.
    markers: Vec<PathBuf>,
    /// The repairing stream.
    stream: String,
}

impl Repair {
    /// Marks the crashed streams as named. Only once a signed checkpoint covers the repair
    /// entry: `verify` ignores a repair entry that none covers.
    pub(crate) fn mark_named(&self) -> io::Result<()> {
        for marker in &self.markers {
            log_file::write(
                marker,
                format!("repaired by stream {}\n", self.stream).as_bytes(),
            )?;
        }
        Ok(())
    }
}

/// Repairs `dir` if every other writer is gone; returns the repair entry to write first, if
/// anything was repaired. `own` is this sink's checkpoint file (already locked).
pub(crate) fn repair(
    dir: &Path,
    prefix: &str,
    own: &Path,
    stream: &str,
    heads: &Heads,
) -> io::Result<Option<Repair>> {
    let mut crashed = Vec::new();
    let mut markers = Vec::new();
    let mut locks = Vec::new();
    for path in checkpoint_files(dir, prefix)? {
        if path == own {
            continue;
        }
        match lock_checkpoint_file(&path) {
            // Alive: its last lines may be in the middle of being written. Touch nothing.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) => return Err(e),
            Ok(lock) => {
                let marker = path.with_extension("jsonl.repaired");
                let id = stream_of(&path, prefix);
                let last = heads.last.get(id).cloned().flatten();
                // A stream that another one witnessed further along did not crash here: its
                // checkpoints were removed. Not named, so `verify` reports it.
                let contradicted = heads.contradiction(id, last.as_ref()).is_some();
                if !last.as_ref().is_some_and(|c| c.last) && !marker.exists() && !contradicted {
                    // What the crashed stream had signed when it was found: `verify` excuses
                    // the missing final checkpoint only if that is still its last one.
                    crashed.push(serde_json::json!({
                        "stream": id,
                        "index": last.as_ref().map(|c| c.index),
                        "seq": last.as_ref().map(|c| c.seq),
                        "head": last.as_ref().map(|c| c.head.clone()),
                    }));
                    markers.push(marker);
                }
                // Held until the repair is done, so that no writer starts meanwhile.
                locks.push(lock);
            }
        }
    }
    let mut quarantined = Vec::new();
    for path in daily_files(dir, prefix)? {
        if let Some(record) = quarantine_torn_tail(dir, prefix, &path, stream)? {
            quarantined.push(record);
        }
    }
    drop(locks);
    if crashed.is_empty() && quarantined.is_empty() {
        return Ok(None);
    }
    let mut entry = AuditEntry::new(ACTION_REPAIR);
    let mut metadata = serde_json::Map::new();
    metadata.insert("crashed_streams".to_owned(), crashed.into());
    metadata.insert("quarantined".to_owned(), quarantined.into());
    entry.metadata = Some(metadata);
    Ok(Some(Repair {
        entry,
        markers,
        stream: stream.to_owned(),
    }))
}

/// Moves the bytes after the last `\n` of `path` to the quarantine file and cuts them off.
fn quarantine_torn_tail(
    dir: &Path,
    prefix: &str,
    path: &Path,
    stream: &str,
) -> io::Result<Option<serde_json::Value>> {
    let mut file = match log_file::open(
        path,
        OpenOptions::new().read(true).write(true),
        Access::Append,
    ) {
        Ok(file) => file,
        // An archived, read-only day file: not this writer's to repair.
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(None);
    }
    // Read backwards in blocks until a newline is found.
    let mut end_of_last_line = 0u64;
    let mut block = vec![0u8; 64 * 1024];
    let mut pos = len;
    'search: while pos > 0 {
        let start = pos.saturating_sub(block.len() as u64);
        let n = (pos - start) as usize;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut block[..n])?;
        if let Some(i) = memchr::memrchr(b'\n', &block[..n]) {
            end_of_last_line = start + i as u64 + 1;
            break 'search;
        }
        pos = start;
    }
    if end_of_last_line == len {
        return Ok(None);
    }
    // About to copy and cut: a file with another name elsewhere is not ours to cut (a backup's
    // hard link is fine to append to, but this would change the other name's file too).
    log_file::check_single_name(path, &file)?;
    let mut fragment = Vec::with_capacity((len - end_of_last_line) as usize);
    file.seek(SeekFrom::Start(end_of_last_line))?;
    file.read_to_end(&mut fragment)?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned();
    let record = serde_json::json!({
        "file": name,
        "offset": end_of_last_line,
        "length": fragment.len(),
        "sha256": hex::encode(Sha256::digest(&fragment)),
        "by_stream": stream,
        "fragment_hex": hex::encode(&fragment),
    });
    let mut options = OpenOptions::new();
    options.read(true).create(true).append(true);
    let mut quarantine = log_file::open(
        &dir.join(format!("{prefix}quarantine.jsonl")),
        &options,
        Access::Append,
    )?;
    let mut line = Vec::new();
    // A writer killed while it appended here left part of a record: start after it, or this
    // record would be glued to it and unreadable. (That writer had not cut its fragment yet,
    // so the fragment is quarantined again, here.)
    if super::jsonl::ends_mid_line(&quarantine)? {
        line.push(b'\n');
    }
    serde_json::to_writer(&mut line, &record)?;
    line.push(b'\n');
    quarantine.write_all(&line)?;
    quarantine.sync_data()?;
    // Only once the fragment is safe elsewhere, and only if nobody appended since it was read.
    if file.metadata()?.len() != len {
        return Ok(None);
    }
    file.set_len(end_of_last_line)?;
    file.sync_data()?;
    let mut summary = record;
    if let Some(o) = summary.as_object_mut() {
        // The repair entry says where the fragment went and its digest; its bytes (which may
        // name a user) stay in the quarantine file alone, which erasure and retention rewrite.
        o.remove("fragment_hex");
        o.remove("by_stream");
    }
    Ok(Some(summary))
}
