//! `llm-audit verify`: checks every chain and checkpoint of a JSONL directory or of the
//! PostgreSQL tables (format v1, see the library's `chain` module) and names each problem by
//! stream, sequence number and kind.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use tracing_llm_audit::chain::{
    is_erased_v2, line_digest, line_digest_ref, link_hash_bytes, verify_erasure, Checkpoint,
    LinkRef, Tombstone, VerifyingKey, GENESIS,
};
use tracing_llm_audit::sink::postgres::{entry_from_row, link_from_row};

use crate::args::SourceArgs;
use crate::log::{read_tombstones, TOMBSTONES};
use crate::output::{self, say, warn, Cell, Format, Table};
use crate::progress::Progress;
use crate::scan;
use crate::source::{Postgres, Source};

/// `llm-audit verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The JSONL audit directory [default: ./audit_logs].
    #[arg(long, conflicts_with = "postgres")]
    dir: Option<PathBuf>,
    /// PostgreSQL connection string (URL or key=value) [default: LLM_AUDIT_DATABASE_URL when
    /// --dir is not given].
    #[arg(long)]
    postgres: Option<String>,
    /// The public key file (from `llm-audit keygen`).
    #[arg(long)]
    public_key: PathBuf,
    /// Output format of the problems [default: table on a terminal, JSON lines otherwise].
    #[arg(long, value_enum)]
    format: Option<Format>,
}

/// `llm-audit verify`: the verdict, whose exit code `main` gives.
pub(crate) fn run(args: &VerifyArgs) -> Result<Verdict, String> {
    let key =
        VerifyingKey::from_file(&args.public_key).map_err(|e| format!("--public-key: {e}"))?;
    let source = SourceArgs {
        dir: args.dir.clone(),
        postgres: args.postgres.clone(),
        strict: false,
    }
    .open()?;
    let mut report = match source {
        Source::Jsonl(jsonl) => verify(&jsonl.dir, &key)?,
        Source::Postgres(mut pg) => verify_postgres(&mut pg, &key)?,
    };
    report.refuse_empty();
    let format = Format::or_default(args.format);
    if report.has_findings() {
        output::print(&report.table(), format)?;
    }
    if format == Format::Table {
        say(&report.summary())?;
    } else {
        warn(&report.summary());
    }
    Ok(report.verdict())
}

/// What is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    Modified,
    Deleted,
    Inserted,
    Reordered,
    Truncated,
    MissingCheckpoint,
    BadSignature,
    /// Not a problem by itself: a line that is no entry or checkpoint, such as what a failed
    /// write leaves. Whatever it held is missing from its chain and reported there.
    Fragment,
    /// A line that is JSON but not an entry as a writer writes it (an array, a key spelled with
    /// an escape or twice, a `chain` member that is no link): a reader might take it for an
    /// entry that no chain covers.
    Malformed,
    Unchained,
    /// A stream whose writer crashed (a later writer recorded it): nothing after its last
    /// signed checkpoint is proven. Entries there are covered only by the unkeyed chain, which
    /// anyone can recompute, and entries written there and then removed look the same as a
    /// crash. Not tampering as far as can be told, and not proven either: its own verdict and
    /// exit code.
    Unsigned,
    /// Not a problem: entries removed by a retention policy, with a signed tombstone.
    Expired,
    /// Not a problem by itself: a tombstone that covers nothing (entries it names are still
    /// there, as after an interrupted retention run), or overlaps another.
    Tombstone,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Modified => "modified",
            Self::Deleted => "deleted",
            Self::Inserted => "inserted",
            Self::Reordered => "reordered",
            Self::Truncated => "truncated",
            Self::MissingCheckpoint => "missing checkpoint",
            Self::BadSignature => "bad signature",
            Self::Fragment => "fragment",
            Self::Malformed => "malformed",
            Self::Unchained => "unchained",
            Self::Unsigned => "unsigned",
            Self::Expired => "expired by policy",
            Self::Tombstone => "tombstone",
        }
    }
}

/// One problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub(crate) stream: String,
    pub(crate) seq: Option<u64>,
    pub(crate) kind: Kind,
    pub(crate) detail: String,
}

impl Problem {
    pub(crate) fn kind_name(&self) -> &'static str {
        self.kind.name()
    }
}

/// What verification found.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) entries: u64,
    pub(crate) streams: usize,
    pub(crate) checkpoints: usize,
    /// Entries removed by a retention policy, each covered by a signed tombstone.
    pub(crate) expired: u64,
    pub(crate) problems: Vec<Problem>,
    /// Findings that are not problems (repaired crashes).
    pub(crate) notes: Vec<Problem>,
    /// Entries covered only by the unkeyed chain (see [`Kind::Unsigned`]), one finding per
    /// stream, and how many entries they are in all.
    pub(crate) unsigned: Vec<Problem>,
    pub(crate) unsigned_entries: u64,
}

/// What `verify` concludes, and its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Every entry is covered by a valid signed checkpoint (exit 0).
    Intact,
    /// No problem, but some entries are covered only by the unkeyed chain (exit 3).
    Unsigned,
    /// Problems (exit 2).
    Problems,
}

impl Report {
    /// An audit trail with no entry, no checkpoint and no tombstone proves nothing: an emptied
    /// one looks the same, so it is not called intact.
    pub(crate) fn refuse_empty(&mut self) {
        if self.entries == 0 && self.checkpoints == 0 && self.expired == 0 {
            self.problems.push(Problem {
                stream: String::new(),
                seq: None,
                kind: Kind::Deleted,
                detail: "no entry, checkpoint or tombstone to verify: nothing is proven (an \
                         emptied audit trail looks the same)"
                    .to_owned(),
            });
        }
    }

    pub(crate) fn verdict(&self) -> Verdict {
        if !self.problems.is_empty() {
            Verdict::Problems
        } else if !self.unsigned.is_empty() {
            Verdict::Unsigned
        } else {
            Verdict::Intact
        }
    }

    /// Whether there is anything to list besides the summary.
    pub(crate) fn has_findings(&self) -> bool {
        !(self.problems.is_empty() && self.unsigned.is_empty() && self.notes.is_empty())
    }

    pub(crate) fn table(&self) -> Table {
        let mut table = Table::new(["stream", "seq", "kind", "detail"]);
        for p in self
            .problems
            .iter()
            .chain(&self.unsigned)
            .chain(&self.notes)
        {
            table.rows.push(vec![
                Cell::Text(p.stream.clone()),
                p.seq.map_or(Cell::Null, Cell::Int),
                Cell::Text(p.kind.name().to_owned()),
                Cell::Text(p.detail.clone()),
            ]);
        }
        table
    }

    pub(crate) fn summary(&self) -> String {
        let verdict = match (self.problems.len(), self.unsigned.len()) {
            (0, 0) => "intact".to_owned(),
            (0, streams) => format!(
                "no problem found, but not proven: {streams} stream(s) stopped without a final \
                 checkpoint (writers that crashed); {} of their entries are covered by no signed \
                 checkpoint, only by the unkeyed chain, and entries removed after their last \
                 checkpoint would look the same",
                self.unsigned_entries
            ),
            (n, _) => format!("{n} problem(s)"),
        };
        let expired = match self.expired {
            0 => String::new(),
            n => format!(" ({n} more expired by policy)"),
        };
        format!(
            "{} entries{expired} in {} stream(s), {} checkpoint(s): {verdict}",
            self.entries, self.streams, self.checkpoints
        )
    }
}

/// A hash as stored: its 64 hex digits, `None` for text of another length (which matches
/// nothing). Kept as text: what was written is compared, never a decoding of it.
type Hash = Option<[u8; 64]>;

fn parse_hash(text: &str) -> Hash {
    text.as_bytes().try_into().ok()
}

/// One chained line or row, as read (its stream is the key it is filed under).
#[derive(Debug, Clone)]
struct Item {
    seq: u64,
    prev: Hash,
    hash: Hash,
    /// The stored hash is the hash of the content.
    content_ok: bool,
    file: usize,
    line: usize,
}

/// The `file` of a tombstone's stand-in, whose `line` is the first seq it covers.
const STAND_IN: usize = usize::MAX;

impl Item {
    /// For a tombstone's stand-in: the first of the entries `covers()..=seq` that a retention
    /// policy removed.
    fn covers(&self) -> Option<u64> {
        (self.file == STAND_IN).then_some(self.line as u64)
    }
}

/// A stream a repair entry says crashed, with the last checkpoint it had then.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Crashed {
    stream: String,
    index: Option<u64>,
    seq: Option<u64>,
    head: Option<String>,
}

/// A repair entry, as read: the streams it says crashed.
struct Repair {
    stream: String,
    seq: u64,
    content_ok: bool,
    named: Vec<Crashed>,
}

/// A stream's entries, as read.
enum Stream {
    /// Checked as they came, which is how a writer writes them: one per seq, in order, none
    /// where a tombstone stands. Memory does not grow with the stream.
    Checked(Box<Checked>),
    /// All of them, to be sorted and checked at the end: a stream whose entries came out of
    /// order, twice, or where a tombstone says they were removed.
    Whole(Vec<Item>),
}

/// A stream of a JSONL directory while it is read: the last seq in each file (within one, a
/// stream's seq only grows) and its chain, checked as it comes until an entry comes out of
/// order (`None`: the stream is read again whole).
struct Reading {
    last_in_file: std::collections::HashMap<usize, u64>,
    checked: Option<Box<Checked>>,
}

/// What a stream's tombstones come to.
#[derive(Default)]
struct StandIns {
    /// Stand-ins for the entries that the valid tombstones cover, by seq.
    items: Vec<Item>,
    problems: Vec<Problem>,
    notes: Vec<Problem>,
    expired: u64,
}

/// A stream checked as it is read.
struct Checked {
    chain: ChainCheck,
    /// The stream's tombstones, on the premise that no entry is where one stands (an entry
    /// that is ends the premise, and the stream is read again whole).
    plan: StandIns,
    /// How many of the plan's stand-ins are in the chain.
    stand_ins_done: usize,
    /// The ranges of all the stream's tombstones, by first seq, and the first that may still
    /// hold an entry to come.
    tombstoned: Vec<(u64, u64)>,
    tombstoned_at: usize,
    last_seq: Option<u64>,
}

impl Checked {
    fn new(
        stream: &str,
        cps: &[Checkpoint],
        tombstones: Vec<Tombstone>,
        key: &VerifyingKey,
    ) -> Self {
        let mut tombstoned: Vec<(u64, u64)> =
            tombstones.iter().map(|t| (t.first, t.last)).collect();
        tombstoned.sort_unstable();
        Self {
            chain: ChainCheck::new(stream, cps),
            plan: stand_ins(stream, tombstones, key, |_, _| false),
            stand_ins_done: 0,
            tombstoned,
            tombstoned_at: 0,
            last_seq: None,
        }
    }

    /// Checks the next entry of the stream. `false`, with nothing checked, when it does not
    /// come after the one before or lies where a tombstone stands: the stream must then be
    /// checked whole.
    fn push(&mut self, item: Item, place: Place<'_>) -> bool {
        let seq = item.seq;
        if self.last_seq.is_some_and(|last| seq <= last) {
            return false;
        }
        // Sorted by first seq: past the ranges that end before `seq`, the next one holds it
        // if any does.
        while self
            .tombstoned
            .get(self.tombstoned_at)
            .is_some_and(|&(_, last)| last < seq)
        {
            self.tombstoned_at += 1;
        }
        if self
            .tombstoned
            .get(self.tombstoned_at)
            .is_some_and(|&(first, _)| first <= seq)
        {
            return false;
        }
        while let Some(stand_in) = self
            .plan
            .items
            .get(self.stand_ins_done)
            .filter(|s| s.seq < seq)
        {
            self.chain.push(stand_in.clone(), place);
            self.stand_ins_done += 1;
        }
        self.last_seq = Some(seq);
        self.chain.push(item, place);
        true
    }

    /// The chain once every entry is in, and what the tombstones came to.
    fn finish(self, place: Place<'_>) -> (ChainCheck, StandIns) {
        let Self {
            mut chain,
            mut plan,
            stand_ins_done,
            ..
        } = self;
        for stand_in in plan.items.drain(stand_ins_done..) {
            chain.push(stand_in, place);
        }
        (chain, plan)
    }
}

// One per line, moved once into its stream's check: boxing the large variant would cost an
// allocation per entry for nothing.
#[allow(clippy::large_enum_variant)]
enum Read {
    /// A chained entry; for a repair entry, the streams it says crashed; and why its erasure
    /// does not check out, if it does not.
    /// The entry's UTC day (`YYYY-MM-DD`) comes last: `None` for a timestamp that is missing or
    /// no RFC 3339 time.
    Chained(
        Arc<str>,
        Item,
        Option<Vec<Crashed>>,
        Option<Box<str>>,
        Option<[u8; 10]>,
    ),
    Unchained,
    /// Complete JSON that is not an entry, and why.
    Malformed(Box<str>),
}

thread_local! {
    /// The stream of the last line this thread read: lines of one stream come in runs.
    static LAST_STREAM: std::cell::RefCell<Option<Arc<str>>> = const { std::cell::RefCell::new(None) };
}

/// `stream` as a shared string, allocated once per run of lines of one stream.
fn shared_stream(stream: &str) -> Arc<str> {
    LAST_STREAM.with(|last| {
        let mut last = last.borrow_mut();
        match last.as_ref() {
            Some(s) if &**s == stream => s.clone(),
            _ => {
                let s: Arc<str> = Arc::from(stream);
                *last = Some(s.clone());
                s
            }
        }
    })
}

/// Finds `"erased"` in a line: built once, not once a line (building it cost as much as the
/// search).
static ERASED_KEY: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"erased\""));

/// An item of `link`, whose content has the entry digest `digest`.
fn item(link: &LinkRef<'_>, digest: &[u8; 32]) -> Item {
    let hash = parse_hash(&link.hash);
    Item {
        seq: link.seq,
        prev: parse_hash(&link.prev),
        content_ok: hash.is_some()
            && hash
                == Some(tracing_llm_audit::chain::hex_digits(&link_hash_bytes(
                    &link.stream,
                    link.seq,
                    &link.prev,
                    digest,
                ))),
        hash,
        file: 0,
        line: 0,
    }
}

/// The UTC day (`YYYY-MM-DD`) of a line's top-level `timestamp`. The sink's lines begin with
/// `{"schema_version":N,"request_id":"…","timestamp":"…"`, read here without parsing the rest;
/// others are parsed. (Only lines whose top-level keys are each written once get here.)
fn entry_day(line: &[u8]) -> Option<[u8; 10]> {
    fn writers(line: &[u8]) -> Option<&str> {
        let rest = line.strip_prefix(b"{\"schema_version\":")?;
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let rest = rest[digits..].strip_prefix(b",\"request_id\":\"")?;
        let end = memchr::memchr2(b'"', b'\\', rest)?;
        let rest = rest[end..].strip_prefix(b"\",\"timestamp\":\"")?;
        let end = memchr::memchr2(b'"', b'\\', rest)?;
        (digits > 0 && rest[end] == b'"')
            .then(|| std::str::from_utf8(&rest[..end]).ok())
            .flatten()
    }
    #[derive(serde::Deserialize)]
    struct When<'a> {
        #[serde(borrow)]
        timestamp: std::borrow::Cow<'a, str>,
    }
    let parsed;
    let text = match writers(line) {
        Some(text) => text,
        None => {
            parsed = serde_json::from_slice::<When<'_>>(line).ok()?.timestamp;
            &parsed
        }
    };
    let bytes = text.as_bytes();
    // `YYYY-MM-DDT…Z`, as the sink writes it: the day is its first ten bytes.
    let plain = bytes.len() > 10
        && bytes.ends_with(b"Z")
        && bytes[10] == b'T'
        && bytes[..10].iter().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                *b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if plain {
        return bytes[..10].try_into().ok();
    }
    let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()?
        .checked_to_offset(time::UtcOffset::UTC)?;
    format!("{}", at.date()).as_bytes().try_into().ok()
}

/// Where an entry is, for the problem reports: `file:line`, or the row's request id.
type Place<'a> = &'a dyn Fn(&Item) -> String;

/// Checkpoint files of the directory: `*checkpoints_<stream>.jsonl`.
fn checkpoint_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let read = std::fs::read_dir(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!(
            "there is no audit log directory at {} (give another with --dir)",
            dir.display()
        ),
        _ => format!("cannot read the audit log directory {}: {e}", dir.display()),
    })?;
    let mut files: Vec<PathBuf> = read
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                // The default prefix, as for the daily files.
                .is_some_and(|n| n.starts_with("audit_checkpoints_") && n.ends_with(".jsonl"))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// The longest checkpoint line read (a checkpoint and its witnesses take a few KiB).
const MAX_CHECKPOINT_LINE: usize = 1 << 20;

/// The stream of a checkpoint file named `audit_checkpoints_<stream>.jsonl`, where the stream id
/// is what writers make (letters, digits, `-`); `None` for any other name.
fn checkpoint_stream(path: &Path) -> Option<String> {
    let id = path
        .file_name()?
        .to_str()?
        .strip_prefix("audit_checkpoints_")?
        .strip_suffix(".jsonl")?;
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .then(|| id.to_owned())
}

/// The streams a repair entry (an entry whose top-level action is `llm_audit.repair`) says
/// crashed; `None` for any other entry.
fn crashed_streams(entry: &serde_json::Value) -> Option<Vec<Crashed>> {
    if entry["action"] != "llm_audit.repair" {
        return None;
    }
    let named = entry
        .pointer("/metadata/crashed_streams")
        .and_then(|c| c.as_array())
        .map(|c| {
            c.iter()
                .filter_map(|r| {
                    Some(Crashed {
                        stream: r.get("stream")?.as_str()?.to_owned(),
                        index: r.get("index").and_then(|v| v.as_u64()),
                        seq: r.get("seq").and_then(|v| v.as_u64()),
                        head: r.get("head").and_then(|v| v.as_str()).map(str::to_owned),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Some(named)
}

pub(crate) fn verify(dir: &Path, key: &VerifyingKey) -> Result<Report, String> {
    let mut report = Report::default();
    let files = scan::files(dir, None, None)?;
    let mut problems = Vec::new();
    // Day files of another prefix are not read: nothing is proven of them.
    for path in scan::other_prefix_files(dir) {
        problems.push(Problem {
            stream: String::new(),
            seq: None,
            kind: Kind::Unchained,
            detail: format!(
                "{}: a day file with another prefix than audit_, not verified (verify reads \
                 audit_ files only; keep other prefixes in a directory of their own)",
                path.display()
            ),
        });
    }

    // Checkpoints, by stream.
    let mut checkpoints: BTreeMap<String, Vec<Checkpoint>> = BTreeMap::new();
    for path in checkpoint_files(dir)? {
        let Some(stream) = checkpoint_stream(&path) else {
            // `audit_checkpoints_<x>.jsonl.jsonl`, a stream id no writer makes: a file planted
            // to be taken for a stream's (the repair once read it so).
            problems.push(Problem {
                stream: String::new(),
                seq: None,
                kind: Kind::Inserted,
                detail: format!(
                    "{}: named like a checkpoint file, but no writer names one so",
                    path.display()
                ),
            });
            continue;
        };
        let lines = scan::bounded_lines(&path, MAX_CHECKPOINT_LINE)?;
        // A writer appends its checkpoints in index order (one repeats only right after a
        // failed write): an earlier one after a later one was put there.
        let mut highest: Option<u64> = None;
        for (i, line) in lines.iter().enumerate() {
            let Some(line) = line.as_deref().filter(|l| !l.trim().is_empty()) else {
                if line.is_none() {
                    problems.push(Problem {
                        stream: stream.clone(),
                        seq: None,
                        kind: Kind::Malformed,
                        detail: format!(
                            "{}:{}: a line longer than {MAX_CHECKPOINT_LINE} bytes, which no \
                             writer writes: not read",
                            path.display(),
                            i + 1
                        ),
                    });
                }
                continue;
            };
            match serde_json::from_str::<Checkpoint>(line) {
                Ok(cp) if highest.is_some_and(|h| cp.index < h) => problems.push(Problem {
                    stream: stream.clone(),
                    seq: Some(cp.seq),
                    kind: Kind::Reordered,
                    detail: format!(
                        "{}:{}: checkpoint #{} after #{} (a copy of an earlier one)",
                        path.display(),
                        i + 1,
                        cp.index,
                        highest.unwrap_or_default()
                    ),
                }),
                Ok(cp) if cp.stream == stream => {
                    highest = Some(cp.index);
                    checkpoints.entry(stream.clone()).or_default().push(cp)
                }
                Ok(cp) => problems.push(Problem {
                    stream: stream.clone(),
                    seq: Some(cp.seq),
                    kind: Kind::Inserted,
                    detail: format!(
                        "{}:{}: a checkpoint of stream {} in this stream's file",
                        path.display(),
                        i + 1,
                        cp.stream
                    ),
                }),
                Err(e) => report.notes.push(Problem {
                    stream: stream.clone(),
                    seq: None,
                    kind: Kind::Fragment,
                    detail: format!(
                        "{}:{}: not a checkpoint ({e}); a checkpoint it held would be missing",
                        path.display(),
                        i + 1
                    ),
                }),
            }
        }
    }
    let tombstones = tombstones_of(dir, &mut report)?;

    // Entries, in file order, hashed on every core.
    let work = |line: &[u8]| -> Result<Option<Read>, String> {
        let (digest, link) = match line_digest_ref(line) {
            Ok(read) => read,
            // What a failed write leaves is never complete JSON; this is a forged line.
            Err(e) if serde_json::from_slice::<serde::de::IgnoredAny>(line).is_ok() => {
                return Ok(Some(Read::Malformed(e.to_string().into_boxed_str())));
            }
            Err(e) => return Err(e.to_string()),
        };
        let Some(link) = link else {
            return Ok(Some(Read::Unchained));
        };
        // A writer's repair of what a crashed writer left (see the sink's `repair` module):
        // the first entry of its stream, with that action at the top level.
        let repaired = (link.seq == 0)
            .then(|| memchr::memmem::find(line, b"llm_audit.repair"))
            .flatten()
            .and_then(|_| serde_json::from_slice::<serde_json::Value>(line).ok())
            .and_then(|v| crashed_streams(&v));
        let mut item = item(&link, &digest);
        // An entry a retention or erasure step changed carries the signature of that change.
        // One erased in format v2 keeps no digests of what was removed: the signature over the
        // entry as it reads now stands in for its digest.
        let erasure = ERASED_KEY
            .find(line)
            .and_then(|_| serde_json::from_slice::<serde_json::Value>(line).ok())
            .and_then(|v| {
                let owned = link.clone().into_owned();
                let checked = verify_erasure(&v, &owned, key);
                if is_erased_v2(&v) {
                    item.content_ok = checked.is_ok();
                }
                checked.err().map(String::into_boxed_str)
            });
        Ok(Some(Read::Chained(
            shared_stream(&link.stream),
            item,
            repaired,
            erasure,
            entry_day(line),
        )))
    };
    // Each file's day, from its name (`<prefix>YYYY-MM-DD.jsonl`).
    let file_days: Vec<Option<[u8; 10]>> = files
        .iter()
        .map(|f| {
            let name = f.file_name()?.to_str()?.strip_suffix(".jsonl")?;
            name.get(name.len().checked_sub(10)?..)?
                .as_bytes()
                .try_into()
                .ok()
        })
        .collect();
    let place = |item: &Item| match item.covers() {
        Some(first) => format!("the tombstone of seq {first} to {}", item.seq),
        None => format!("{}:{}", files[item.file].display(), item.line),
    };
    let total = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let progress = Progress::start(total, "verifying");
    let mut reading: BTreeMap<String, Reading> = BTreeMap::new();
    let mut repairs = Vec::new();
    let mut unreadable = Vec::new();
    let mut oversized = Vec::new();
    scan::ordered(
        &files,
        &progress,
        work,
        |file, line, read| {
            report.entries += 1;
            match read {
                Read::Unchained => problems.push(Problem {
                    stream: String::new(),
                    seq: None,
                    kind: Kind::Unchained,
                    detail: format!("{}:{line}: an entry without a chain link (written without tamper evidence, or forged)", files[file].display()),
                }),
                Read::Malformed(why) => problems.push(Problem {
                    stream: String::new(),
                    seq: None,
                    kind: Kind::Malformed,
                    detail: format!(
                        "{}:{line}: {why}: not an entry as a writer writes it (a reader might \
                         take it for one that no chain covers)",
                        files[file].display()
                    ),
                }),
                Read::Chained(stream, mut item, repaired, erasure, day) => {
                    item.file = file;
                    item.line = line;
                    // A writer puts an entry in the file of its UTC day; moved to another day's
                    // file, reports of its day miss it and retention would remove it with that
                    // day's entries, though its chain still holds.
                    if day != file_days[file] {
                        let day = day.map_or_else(
                            || "without a valid timestamp".to_owned(),
                            |d| format!("dated {}", String::from_utf8_lossy(&d)),
                        );
                        problems.push(Problem {
                            stream: stream.to_string(),
                            seq: Some(item.seq),
                            kind: Kind::Reordered,
                            detail: format!(
                                "{}:{line}: an entry {day} in the file of another day \
                                 (moved there: reports of its day miss it)",
                                files[file].display()
                            ),
                        });
                    }
                    if let Some(why) = erasure {
                        problems.push(Problem {
                            stream: stream.to_string(),
                            seq: Some(item.seq),
                            kind: Kind::Modified,
                            detail: format!("{}:{line}: {why}", files[file].display()),
                        });
                    }
                    let data = match reading.get_mut(&*stream) {
                        Some(data) => data,
                        None => reading.entry(stream.to_string()).or_insert_with(|| Reading {
                            last_in_file: Default::default(),
                            checked: Some(Box::new(Checked::new(
                                &stream,
                                checkpoints.get(&*stream).map_or(&[], Vec::as_slice),
                                tombstones.get(&*stream).cloned().unwrap_or_default(),
                                key,
                            ))),
                        }),
                    };
                    // A writer appends in order: within one file, a stream's seq only grows.
                    let last = data.last_in_file.entry(file).or_insert(item.seq);
                    if item.seq < *last {
                        problems.push(Problem {
                            stream: stream.to_string(),
                            seq: Some(item.seq),
                            kind: Kind::Reordered,
                            detail: format!("{}:{line}: after seq {last} in the same file", files[file].display()),
                        });
                    } else {
                        *last = item.seq;
                    }
                    if let Some(named) = repaired {
                        repairs.push(Repair {
                            stream: stream.to_string(),
                            seq: item.seq,
                            content_ok: item.content_ok,
                            named,
                        });
                    }
                    if data.checked.as_mut().is_some_and(|c| !c.push(item, &place)) {
                        data.checked = None;
                    }
                }
            }
            true
        },
        |bad| {
            // No writer writes a line that long: a forged one, never a failed write.
            if bad.reason == scan::OVERSIZED_REASON || bad.reason == scan::TOO_MANY_VALUES_REASON {
                oversized.push(Problem {
                    stream: String::new(),
                    seq: None,
                    kind: Kind::Malformed,
                    detail: format!("{}:{}: {}", bad.file.display(), bad.line, bad.reason),
                });
                return Ok(());
            }
            unreadable.push(Problem {
                stream: String::new(),
                seq: None,
                kind: Kind::Fragment,
                detail: format!(
                    "{}:{}: {}; an entry it held would be missing from its chain",
                    bad.file.display(),
                    bad.line,
                    bad.reason
                ),
            });
            Ok(())
        },
    )?;
    drop(progress);
    report.notes.extend(unreadable);
    problems.extend(oversized);

    // The streams whose entries did not come in order are read again, whole: only tampering
    // (or a writer that broke the format) makes any.
    let mut streams: BTreeMap<String, Stream> = BTreeMap::new();
    let mut whole: BTreeMap<String, Vec<Item>> = BTreeMap::new();
    for (name, data) in reading {
        match data.checked {
            Some(checked) => {
                streams.insert(name, Stream::Checked(checked));
            }
            None => {
                whole.insert(name, Vec::new());
            }
        }
    }
    if !whole.is_empty() {
        let progress = Progress::start(total, "verifying the streams out of order");
        scan::ordered(
            &files,
            &progress,
            work,
            |file, line, read| {
                if let Read::Chained(stream, mut item, _, _, _) = read {
                    if let Some(items) = whole.get_mut(&*stream) {
                        item.file = file;
                        item.line = line;
                        items.push(item);
                    }
                }
                true
            },
            |_| Ok(()),
        )?;
    }
    streams.extend(
        whole
            .into_iter()
            .map(|(name, items)| (name, Stream::Whole(items))),
    );

    Ok(conclude(
        report,
        streams,
        repairs,
        checkpoints,
        tombstones,
        problems,
        key,
        &place,
    ))
}

/// Checks the streams read (from files or rows) against their checkpoints.
#[allow(clippy::too_many_arguments)]
fn conclude(
    mut report: Report,
    mut streams: BTreeMap<String, Stream>,
    mut repairs: Vec<Repair>,
    mut checkpoints: BTreeMap<String, Vec<Checkpoint>>,
    mut tombstones: BTreeMap<String, Vec<Tombstone>>,
    mut problems: Vec<Problem>,
    key: &VerifyingKey,
    place: Place<'_>,
) -> Report {
    report.checkpoints = checkpoints.values().map(Vec::len).sum();

    // Witnesses: each signed checkpoint names the other streams' checkpoints its writer found
    // when it started. Each must still be there, as it was: a stream whose checkpoints were
    // removed, or that was removed whole, is found through any later stream.
    let contradicted = check_witnesses(&checkpoints, key, &mut problems);

    // Streams that a verified repair entry says crashed: their missing final checkpoint is the
    // crash, not tampering.
    //
    // A repair entry is trusted only when its own stream has a checkpoint signed with the key
    // at or after it, and it does not name its own stream: anyone who knows the format can
    // write a line whose hash checks out, but not a signature.
    let signed_up_to: BTreeMap<&str, u64> = checkpoints
        .iter()
        .filter_map(|(stream, cps)| {
            cps.iter()
                .filter(|cp| cp.verify(key))
                .map(|cp| cp.seq)
                .max()
                .map(|seq| (stream.as_str(), seq))
        })
        .collect();
    // By stream, and in the order read within one: of two repairs that name one stream, the
    // last counts.
    repairs.sort_by(|a, b| a.stream.cmp(&b.stream));
    let repaired: BTreeMap<String, Crashed> = repairs
        .iter()
        .filter(|r| {
            r.content_ok
                && signed_up_to
                    .get(r.stream.as_str())
                    .is_some_and(|&s| s >= r.seq)
        })
        .flat_map(|r| {
            r.named
                .iter()
                .filter(|c| c.stream != r.stream)
                .map(|c| (c.stream.clone(), c.clone()))
        })
        .collect();
    let names: std::collections::BTreeSet<String> = streams
        .keys()
        .chain(checkpoints.keys())
        .chain(tombstones.keys())
        .cloned()
        .collect();
    report.streams = names.len();
    for stream in names {
        let cps = checkpoints.remove(&stream).unwrap_or_default();
        // Excused only if the stream's last signed checkpoint is still the one the repair saw:
        // otherwise checkpoints were removed after the repair.
        let last_signed = cps
            .iter()
            .filter(|cp| cp.verify(key))
            .max_by_key(|cp| cp.index)
            .map(|cp| (cp.index, cp.seq, cp.head.clone()));
        let excused =
            repaired
                .get(&stream)
                .is_some_and(|c| match (&last_signed, c.index, c.seq, &c.head) {
                    (None, None, None, None) => true,
                    (Some((i, q, h)), Some(ci), Some(cq), Some(ch)) => {
                        *i == ci && *q == cq && h == ch
                    }
                    _ => false,
                });
        let excused = excused && !contradicted.contains(&stream);
        let tombstones = tombstones.remove(&stream).unwrap_or_default();
        let (chain, plan) = match streams.remove(&stream) {
            // Its tombstones were planned for when it started.
            Some(Stream::Checked(checked)) => checked.finish(place),
            Some(Stream::Whole(items)) => check_whole(&stream, items, &cps, tombstones, key, place),
            None => check_whole(&stream, Vec::new(), &cps, tombstones, key, place),
        };
        problems.extend(plan.problems);
        report.notes.extend(plan.notes);
        report.expired += plan.expired;
        let chain_max = chain.max_seq;
        for p in chain.finish(cps, key, place, excused) {
            if matches!(p.kind, Kind::Expired) {
                report.notes.push(p);
            } else if p.kind == Kind::Unsigned {
                report.unsigned_entries += match (p.seq, chain_max) {
                    (Some(first), Some(max)) if first <= max => max - first + 1,
                    _ => 0,
                };
                report.unsigned.push(Problem {
                    detail: format!("{}; a later writer recorded the crash", p.detail),
                    ..p
                });
            } else {
                problems.push(p);
            }
        }
    }
    problems.sort_by(|a, b| (&a.stream, a.seq, a.kind).cmp(&(&b.stream, b.seq, b.kind)));
    problems.dedup();
    report.problems = problems;
    report
}

/// Checks every witness of every validly signed checkpoint against the witnessed stream's
/// checkpoints; gives the streams a witness contradicts (which no repair can excuse).
fn check_witnesses(
    checkpoints: &BTreeMap<String, Vec<Checkpoint>>,
    key: &VerifyingKey,
    problems: &mut Vec<Problem>,
) -> std::collections::BTreeSet<String> {
    // Each witnessed checkpoint once, with the first checkpoint that witnessed it.
    let mut witnessed: BTreeMap<(&str, u64), (&tracing_llm_audit::chain::Witness, &Checkpoint)> =
        BTreeMap::new();
    for cp in checkpoints.values().flatten() {
        if cp.witness.is_empty() || !cp.verify(key) {
            continue;
        }
        for w in cp.witness.iter().filter(|w| w.stream != cp.stream) {
            witnessed.entry((&w.stream, w.index)).or_insert((w, cp));
        }
    }
    let mut contradicted = std::collections::BTreeSet::new();
    for ((stream, index), (w, by)) in witnessed {
        let found = checkpoints
            .get(stream)
            .into_iter()
            .flatten()
            .find(|cp| cp.index == index && cp.verify(key));
        let (kind, what) = match found {
            Some(cp) if w.matches(cp) => continue,
            Some(_) => (Kind::Modified, "is not the one"),
            None => (Kind::MissingCheckpoint, "is gone, though"),
        };
        contradicted.insert(stream.to_owned());
        problems.push(Problem {
            stream: stream.to_owned(),
            seq: Some(w.seq),
            kind,
            detail: format!(
                "checkpoint #{index} (seq {}{}) {what} stream {}'s checkpoint #{} witnessed",
                w.seq,
                if w.last { ", final" } else { "" },
                by.stream,
                by.index
            ),
        });
    }
    contradicted
}

/// The chain of a stream checked whole: its entries by seq, one kept per seq (the others are
/// reported inserted), and its tombstones' stand-ins in their place.
fn check_whole(
    stream: &str,
    mut items: Vec<Item>,
    cps: &[Checkpoint],
    tombstones: Vec<Tombstone>,
    key: &VerifyingKey,
    place: Place<'_>,
) -> (ChainCheck, StandIns) {
    items.sort_by_key(|i| i.seq);
    let plan = stand_ins(stream, tombstones, key, |first, last| {
        let start = items.partition_point(|i| i.seq < first);
        items.get(start).is_some_and(|i| i.seq <= last)
    });
    if !plan.items.is_empty() {
        items.extend(plan.items.iter().cloned());
        items.sort_by_key(|i| i.seq);
    }
    let mut chain = ChainCheck::new(stream, cps);
    let mut kept: Option<Item> = None;
    for item in items {
        match kept.take() {
            Some(first) if first.seq == item.seq => {
                // The one whose content checks out is taken for the original.
                let (keep, other) = if !first.content_ok && item.content_ok {
                    (item, first)
                } else {
                    (first, item)
                };
                chain.problem(
                    Some(keep.seq),
                    Kind::Inserted,
                    format!(
                        "two entries claim this seq: {} and {}",
                        place(&keep),
                        place(&other)
                    ),
                );
                kept = Some(keep);
            }
            Some(before) => {
                chain.push(before, place);
                kept = Some(item);
            }
            None => kept = Some(item),
        }
    }
    if let Some(last) = kept {
        chain.push(last, place);
    }
    (chain, plan)
}

/// The signed tombstones of a stream as stand-ins for the entries they cover. A tombstone whose
/// signature fails is a problem (the entries it names are then reported missing); one whose
/// range still holds entries (`holds(first, last)`), or overlaps another, is a note and stands
/// in for nothing.
fn stand_ins(
    stream: &str,
    mut tombstones: Vec<Tombstone>,
    key: &VerifyingKey,
    holds: impl Fn(u64, u64) -> bool,
) -> StandIns {
    tombstones.sort_by_key(|t| (t.first, t.last));
    let mut plan = StandIns::default();
    for t in tombstones {
        let at = Some(t.first);
        if !t.verify(key) {
            let why = if t.key_id == key.key_id() {
                "its signature does not verify".to_owned()
            } else {
                format!("signed by key {}, not by {}", t.key_id, key.key_id())
            };
            plan.problems.push(Problem {
                stream: stream.to_owned(),
                seq: at,
                kind: Kind::BadSignature,
                detail: format!("the tombstone of seq {} to {}: {why}", t.first, t.last),
            });
            continue;
        }
        let note = |detail: String| Problem {
            stream: stream.to_owned(),
            seq: at,
            kind: Kind::Tombstone,
            detail,
        };
        if holds(t.first, t.last) {
            plan.notes.push(note(format!(
                "the tombstone of seq {} to {} ({}) covers entries that are still there: a \
                 retention run was interrupted; run it again",
                t.first, t.last, t.reason
            )));
            continue;
        }
        if plan.items.last().is_some_and(|o| o.seq >= t.first) {
            plan.notes.push(note(format!(
                "the tombstone of seq {} to {} overlaps another; ignored",
                t.first, t.last
            )));
            continue;
        }
        plan.expired += t.last - t.first + 1;
        plan.notes.push(Problem {
            stream: stream.to_owned(),
            seq: at,
            kind: Kind::Expired,
            detail: format!(
                "seq {} to {} removed at {}: {}",
                t.first, t.last, t.time, t.reason
            ),
        });
        plan.items.push(Item {
            seq: t.last,
            prev: parse_hash(&t.prev),
            hash: parse_hash(&t.last_hash),
            content_ok: true,
            file: STAND_IN,
            line: usize::try_from(t.first).unwrap_or(usize::MAX),
        });
    }
    plan
}

/// The tombstones of a JSONL directory, by stream.
fn tombstones_of(
    dir: &Path,
    report: &mut Report,
) -> Result<BTreeMap<String, Vec<Tombstone>>, String> {
    let mut by_stream: BTreeMap<String, Vec<Tombstone>> = BTreeMap::new();
    for (line, read) in read_tombstones(dir)? {
        match read {
            Ok(t) => by_stream.entry(t.stream.clone()).or_default().push(t),
            Err(e) => report.notes.push(Problem {
                stream: String::new(),
                seq: None,
                kind: Kind::Fragment,
                detail: format!(
                    "{}:{line}: not a tombstone ({e}); the entries it covered would be reported missing",
                    dir.join(TOMBSTONES).display()
                ),
            }),
        }
    }
    Ok(by_stream)
}

/// Typed reads of a row's columns, with errors that name `table.column`.
struct Columns<'a> {
    row: &'a tokio_postgres::Row,
    table: &'static str,
}

impl Columns<'_> {
    /// A BIGINT that is never negative (a negative one reads as out of every range).
    fn number(&self, column: &str) -> Result<u64, String> {
        self.row
            .try_get::<_, i64>(column)
            .map(|n| u64::try_from(n).unwrap_or(u64::MAX))
            .map_err(|e| format!("{}.{column}: {e}", self.table))
    }

    fn text(&self, column: &str) -> Result<String, String> {
        self.row
            .try_get::<_, String>(column)
            .map_err(|e| format!("{}.{column}: {e}", self.table))
    }
}

/// The tombstones in PostgreSQL, by stream (none before migration 4).
fn pg_tombstones(pg: &mut Postgres) -> Result<BTreeMap<String, Vec<Tombstone>>, String> {
    let mut by_stream: BTreeMap<String, Vec<Tombstone>> = BTreeMap::new();
    if !pg.has_table("llm_audit_tombstones")? {
        return Ok(by_stream);
    }
    pg.each_row(
        "SELECT stream, first, last, prev, last_hash, reason, signed_at, key_id, signature \
         FROM llm_audit_tombstones ORDER BY stream, first",
        &[],
        |row| {
            let columns = Columns {
                row,
                table: "llm_audit_tombstones",
            };
            let (number, text) = (|c| columns.number(c), |c| columns.text(c));
            let t = Tombstone {
                stream: text("stream")?,
                first: number("first")?,
                last: number("last")?,
                prev: text("prev")?,
                last_hash: text("last_hash")?,
                reason: text("reason")?,
                time: text("signed_at")?,
                key_id: text("key_id")?,
                signature: text("signature")?,
            };
            by_stream.entry(t.stream.clone()).or_default().push(t);
            Ok(true)
        },
    )?;
    Ok(by_stream)
}

/// The chain check of one stream, fed its entries (and its tombstones' stand-ins) by seq, one
/// per seq; what it keeps does not grow with the stream.
struct ChainCheck {
    stream: String,
    expected: u64,
    previous: Option<Item>,
    /// The seqs the stream's checkpoints name, sorted, and the next of them to come.
    wanted: Vec<u64>,
    wanted_at: usize,
    /// The entries at those seqs, for the heads the checkpoints signed.
    heads: std::collections::HashMap<u64, Item>,
    max_seq: Option<u64>,
    problems: Vec<Problem>,
}

impl ChainCheck {
    fn new(stream: &str, cps: &[Checkpoint]) -> Self {
        let mut wanted: Vec<u64> = cps.iter().map(|cp| cp.seq).collect();
        wanted.sort_unstable();
        wanted.dedup();
        Self {
            stream: stream.to_owned(),
            expected: 0,
            previous: None,
            wanted,
            wanted_at: 0,
            heads: Default::default(),
            max_seq: None,
            problems: Vec::new(),
        }
    }

    fn problem(&mut self, seq: Option<u64>, kind: Kind, detail: String) {
        self.problems.push(Problem {
            stream: self.stream.clone(),
            seq,
            kind,
            detail,
        });
    }

    /// The next entry or stand-in: its seq is above all the seqs before it.
    fn push(&mut self, item: Item, place: Place<'_>) {
        let seq = item.seq;
        // A tombstone's stand-in takes the place of the entries it covers.
        let first = item.covers().unwrap_or(seq);
        if first > self.expected {
            let expected = self.expected;
            let range = if first - 1 == expected {
                format!("seq {expected}")
            } else {
                format!("seq {expected} to {}", first - 1)
            };
            self.problem(
                Some(expected),
                Kind::Deleted,
                format!("{range} missing before {}", place(&item)),
            );
        }
        if !item.content_ok {
            self.problem(
                Some(seq),
                Kind::Modified,
                format!("{}: the content does not match its hash", place(&item)),
            );
        }
        let want_prev = match &self.previous {
            Some(p) if p.seq + 1 == first => Some(p.hash),
            None if first == 0 => Some(parse_hash(GENESIS)),
            _ => None,
        };
        if let Some(want) = want_prev {
            if item.prev.is_none() || item.prev != want {
                let (at, what) = match &self.previous {
                    Some(p) if p.content_ok => (
                        Some(p.seq),
                        format!(
                            "{}: changed and re-hashed (the next entry's link does not match)",
                            place(p)
                        ),
                    ),
                    Some(_) => (
                        Some(seq),
                        format!("{}: its link does not match the entry before", place(&item)),
                    ),
                    None => (
                        Some(seq),
                        format!("{}: the first entry does not start the chain", place(&item)),
                    ),
                };
                self.problem(at, Kind::Modified, what);
            }
        }
        while self
            .wanted
            .get(self.wanted_at)
            .is_some_and(|&wanted| wanted < seq)
        {
            self.wanted_at += 1;
        }
        if self.wanted.get(self.wanted_at) == Some(&seq) {
            self.heads.insert(seq, item.clone());
        }
        self.expected = seq.saturating_add(1);
        self.max_seq = Some(seq);
        self.previous = Some(item);
    }

    /// The problems of the stream, once every entry is in: those of the chain, then those of
    /// its checkpoints. `crash_repaired`: a later writer recorded that this one crashed.
    fn finish(
        self,
        mut cps: Vec<Checkpoint>,
        key: &VerifyingKey,
        place: Place<'_>,
        crash_repaired: bool,
    ) -> Vec<Problem> {
        let Self {
            stream,
            heads,
            max_seq,
            mut problems,
            ..
        } = self;
        // A stream that ends unsealed: a crash a later writer repaired, or a missing checkpoint.
        // Entries after the last signed checkpoint of a repaired stream are unsigned.
        let (unsealed, uncovered) = if crash_repaired {
            (Kind::Unsigned, Kind::Unsigned)
        } else {
            (Kind::MissingCheckpoint, Kind::MissingCheckpoint)
        };
        let unsigned = |first: u64, last: u64| {
            format!(
                "seq {first} to {last} ({} entries) are covered by no signed checkpoint, only by \
                 the unkeyed chain: the writer stopped without a final checkpoint",
                last - first + 1
            )
        };
        let mut problem = |seq: Option<u64>, kind: Kind, detail: String| {
            problems.push(Problem {
                stream: stream.clone(),
                seq,
                kind,
                detail,
            });
        };
        cps.sort_by_key(|c| c.index);
        let mut valid: Vec<&Checkpoint> = Vec::new();
        let mut next_index = 0;
        for cp in &cps {
            if cp.index > next_index {
                problem(
                    Some(cp.seq),
                    Kind::MissingCheckpoint,
                    format!("checkpoint #{next_index} to #{} are gone", cp.index - 1),
                );
            }
            next_index = cp.index + 1;
            if !cp.verify(key) {
                let why = if cp.key_id == key.key_id() {
                    "its signature does not verify".to_owned()
                } else {
                    format!("signed by key {}, not by {}", cp.key_id, key.key_id())
                };
                problem(
                    Some(cp.seq),
                    Kind::BadSignature,
                    format!("checkpoint #{}: {why}", cp.index),
                );
                continue;
            }
            valid.push(cp);
            match heads.get(&cp.seq) {
                Some(item) if item.hash.is_none() || item.hash != parse_hash(&cp.head) => problem(
                    Some(cp.seq),
                    Kind::Modified,
                    format!(
                        "checkpoint #{} signed another head: the chain up to {} was rewritten",
                        cp.index,
                        place(item)
                    ),
                ),
                Some(_) => {}
                None if max_seq.is_none_or(|m| m < cp.seq) => problem(
                    Some(max_seq.map_or(0, |m| m + 1)),
                    Kind::Truncated,
                    format!(
                        "checkpoint #{} covers up to seq {}; the entries after {} are gone",
                        cp.index,
                        cp.seq,
                        max_seq.map_or_else(|| "the start".to_owned(), |m| format!("seq {m}"))
                    ),
                ),
                None => {} // deleted: reported above
            }
        }
        match (valid.last(), max_seq) {
            (None, Some(max)) if cps.is_empty() => {
                if crash_repaired {
                    problem(Some(0), uncovered, unsigned(0, max));
                } else {
                    problem(None, unsealed, "the stream has no checkpoint".to_owned());
                }
            }
            (None, _) => {}
            (Some(last), max) => {
                if let Some(max) = max.filter(|&m| m > last.seq) {
                    if last.last {
                        problem(
                            Some(last.seq + 1),
                            Kind::Inserted,
                            format!("entries up to seq {max} after the stream's final checkpoint"),
                        );
                    } else if crash_repaired {
                        problem(Some(last.seq + 1), uncovered, unsigned(last.seq + 1, max));
                    } else {
                        problem(Some(last.seq + 1), unsealed, format!("no checkpoint covers seq {} to {max}, and the stream has no final checkpoint (the writer stopped without shutting down, or checkpoints were removed)", last.seq + 1));
                    }
                } else if !last.last && crash_repaired {
                    problem(Some(last.seq + 1), unsealed, format!("nothing after seq {} is proven: the writer stopped without a final checkpoint, and entries written after it and removed would look the same", last.seq));
                } else if !last.last {
                    problem(Some(last.seq), unsealed, "the stream has no final checkpoint (the writer stopped without shutting down, or it was removed)".to_owned());
                }
            }
        }
        problems
    }
}

/// Verifies the chained rows of `llm_audit_log` against `llm_audit_checkpoints`.
pub(crate) fn verify_postgres(pg: &mut Postgres, key: &VerifyingKey) -> Result<Report, String> {
    let mut report = Report::default();
    let mut problems = Vec::new();
    let mut checkpoints: BTreeMap<String, Vec<Checkpoint>> = BTreeMap::new();
    pg.each_row(
        "SELECT stream, idx, seq, head, signed_at, key_id, final, signature \
         FROM llm_audit_checkpoints ORDER BY stream, idx",
        &[],
        |row| {
            let columns = Columns {
                row,
                table: "llm_audit_checkpoints",
            };
            let (number, text) = (|c| columns.number(c), |c| columns.text(c));
            let cp = Checkpoint {
                stream: text("stream")?,
                index: number("idx")?,
                seq: number("seq")?,
                head: text("head")?,
                time: text("signed_at")?,
                key_id: text("key_id")?,
                last: row
                    .try_get("final")
                    .map_err(|e| format!("llm_audit_checkpoints.final: {e}"))?,
                witness: Vec::new(),
                signature: text("signature")?,
            };
            checkpoints.entry(cp.stream.clone()).or_default().push(cp);
            Ok(true)
        },
    )?;

    // The request id of each item, by its `line`.
    let mut ids: Vec<uuid::Uuid> = Vec::new();
    let mut streams: BTreeMap<String, Vec<Item>> = BTreeMap::new();
    let mut repairs = Vec::new();
    let progress = Progress::start(0, "verifying");
    pg.each_row(
        "SELECT * FROM llm_audit_log ORDER BY chain_stream, chain_seq",
        &[],
        |row| {
            report.entries += 1;
            let entry = entry_from_row(row).map_err(|e| format!("a row is not an audit entry: {e}"))?;
            let Some(link) = link_from_row(row).map_err(|e| format!("a row's chain link: {e}"))?
            else {
                problems.push(Problem {
                    stream: String::new(),
                    seq: None,
                    kind: Kind::Unchained,
                    detail: format!(
                        "row {}: an entry without a chain link (written without tamper evidence, or forged)",
                        entry.request_id
                    ),
                });
                return Ok(true);
            };
            let line = serde_json::to_vec(&entry).map_err(|e| e.to_string())?;
            let (digest, _) = line_digest(&line).map_err(|e| e.to_string())?;
            let mut erased_v2 = None;
            if entry.erased.is_some() {
                let value = serde_json::to_value(&entry).map_err(|e| e.to_string())?;
                let checked = verify_erasure(&value, &link, key);
                if is_erased_v2(&value) {
                    erased_v2 = Some(checked.is_ok());
                }
                if let Err(why) = checked {
                    problems.push(Problem {
                        stream: link.stream.clone(),
                        seq: Some(link.seq),
                        kind: Kind::Modified,
                        detail: format!("row {}: {why}", entry.request_id),
                    });
                }
            }
            let repaired = (link.seq == 0 && entry.action == "llm_audit.repair")
                .then(|| serde_json::to_value(&entry).ok())
                .flatten()
                .and_then(|v| crashed_streams(&v));
            ids.push(entry.request_id);
            let link = LinkRef::from(link);
            let mut item = item(&link, &digest);
            if let Some(ok) = erased_v2 {
                item.content_ok = ok;
            }
            item.line = ids.len() - 1;
            if let Some(named) = repaired {
                repairs.push(Repair {
                    stream: link.stream.to_string(),
                    seq: item.seq,
                    content_ok: item.content_ok,
                    named,
                });
            }
            match streams.get_mut(&*link.stream) {
                Some(items) => items.push(item),
                None => streams.entry(link.stream.into_owned()).or_default().push(item),
            }
            Ok(true)
        },
    )?;
    drop(progress);
    let place = |item: &Item| match item.covers() {
        Some(first) => format!("the tombstone of seq {first} to {}", item.seq),
        None => format!("row {}", ids[item.line]),
    };
    let tombstones = pg_tombstones(pg)?;
    let streams = streams
        .into_iter()
        .map(|(name, items)| (name, Stream::Whole(items)))
        .collect();
    Ok(conclude(
        report,
        streams,
        repairs,
        checkpoints,
        tombstones,
        problems,
        key,
        &place,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_llm_audit::chain::SigningKey;

    fn hash_of(seq: u64) -> String {
        format!("{:064x}", seq + 0xabc_0000)
    }

    fn place(item: &Item) -> String {
        match item.covers() {
            Some(first) => format!("tombstone {first}..={}", item.seq),
            None => format!("line {}", item.line),
        }
    }

    /// A small xorshift: the same cases on every run.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n.max(1)
        }
    }

    type Outcome = (Vec<Problem>, Vec<Problem>, u64, Vec<Problem>);

    fn outcome(
        (chain, plan): (ChainCheck, StandIns),
        cps: &[Checkpoint],
        key: &VerifyingKey,
    ) -> Outcome {
        let found = chain.finish(cps.to_vec(), key, &place, false);
        (plan.problems, plan.notes, plan.expired, found)
    }

    /// Checking a stream as it is read gives what checking it whole gives, whenever its
    /// entries come in order; when they do not, it says so and the stream is checked whole.
    /// Cases: honest streams, then deletions, duplicates, swaps, modified and re-hashed
    /// entries, tombstones (valid, forged, over entries still there), checkpoints (signed,
    /// forged, of a rewritten head, past the end).
    #[test]
    fn a_stream_checked_as_read_gets_what_it_gets_checked_whole() {
        let key = SigningKey::generate().unwrap();
        let verifying = key.verifying_key();
        let stream = "s";
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut streamed, mut whole) = (0, 0);
        for case in 0..3_000 {
            let n = 1 + rng.below(40);
            let mut items: Vec<Item> = (0..n)
                .map(|seq| Item {
                    seq,
                    prev: parse_hash(&if seq == 0 {
                        GENESIS.to_owned()
                    } else {
                        hash_of(seq - 1)
                    }),
                    hash: parse_hash(&hash_of(seq)),
                    content_ok: true,
                    file: 0,
                    line: seq as usize + 1,
                })
                .collect();
            let mut tombstones = Vec::new();
            let mut cps = Vec::new();
            for index in 0..rng.below(4) {
                let seq = rng.below(n + 3);
                let mut cp = Checkpoint {
                    stream: stream.to_owned(),
                    index,
                    seq,
                    head: if rng.below(8) == 0 {
                        hash_of(seq + 7)
                    } else {
                        hash_of(seq)
                    },
                    time: "2026-11-25T00:00:00Z".to_owned(),
                    key_id: key.key_id().to_owned(),
                    last: rng.below(2) == 0,
                    witness: Vec::new(),
                    signature: String::new(),
                };
                if rng.below(10) != 0 {
                    key.sign(&mut cp);
                }
                cps.push(cp);
            }
            // The first cases are honest.
            let changes = if case < 100 { 0 } else { 1 + rng.below(3) };
            for _ in 0..changes {
                let len = items.len() as u64;
                let i = rng.below(len) as usize;
                // With no entries left, only another tombstone.
                match if len == 0 { 6 } else { rng.below(7) } {
                    0 if len > 1 => {
                        items.remove(i);
                    }
                    1 => {
                        let mut copy = items[i].clone();
                        copy.content_ok = rng.below(2) == 0;
                        copy.line += 1000;
                        items.insert(rng.below(len + 1) as usize, copy);
                    }
                    2 => items.swap(i, rng.below(len) as usize),
                    3 => items[i].content_ok = false,
                    4 => items[i].hash = parse_hash(&hash_of(items[i].seq + 500)),
                    // A tombstone over a range, with its entries removed or not (an
                    // interrupted retention run), signed or forged.
                    _ => {
                        let first = rng.below(n);
                        let last = (first + rng.below(5)).min(n - 1);
                        if rng.below(3) != 0 {
                            items.retain(|it| it.seq < first || it.seq > last);
                        }
                        let mut t = Tombstone {
                            stream: stream.to_owned(),
                            first,
                            last,
                            prev: if first == 0 {
                                GENESIS.to_owned()
                            } else {
                                hash_of(first - 1)
                            },
                            last_hash: hash_of(last),
                            reason: "expired".to_owned(),
                            time: "2026-11-25T00:00:00Z".to_owned(),
                            key_id: key.key_id().to_owned(),
                            signature: String::new(),
                        };
                        if rng.below(8) != 0 {
                            key.sign_tombstone(&mut t);
                        }
                        tombstones.push(t);
                    }
                }
            }
            let expected = outcome(
                check_whole(
                    stream,
                    items.clone(),
                    &cps,
                    tombstones.clone(),
                    &verifying,
                    &place,
                ),
                &cps,
                &verifying,
            );
            let in_order = items.windows(2).all(|w| w[0].seq < w[1].seq)
                && !items.iter().any(|it| {
                    tombstones
                        .iter()
                        .any(|t| (t.first..=t.last).contains(&it.seq))
                });
            let mut checked = Checked::new(stream, &cps, tombstones.clone(), &verifying);
            let took_all = items.iter().all(|it| checked.push(it.clone(), &place));
            assert_eq!(took_all, in_order, "case {case}: {items:?}");
            // An honest stream is checked as it is read.
            assert!(took_all || case >= 100, "case {case}");
            if took_all {
                assert_eq!(
                    outcome(checked.finish(&place), &cps, &verifying),
                    expected,
                    "case {case}"
                );
                streamed += 1;
            } else {
                whole += 1;
            }
        }
        // Both ways were taken, often.
        assert!(
            streamed > 1_000 && whole > 500,
            "{streamed} streamed, {whole} whole"
        );
    }
}
