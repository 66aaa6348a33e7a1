//! `llm-audit verify`: checks every chain and checkpoint of a JSONL directory or of the
//! PostgreSQL tables (format v1, see the library's `chain` module) and names each problem by
//! stream, sequence number and kind.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tracing_llm_audit::chain::{
    line_digest, line_digest_ref, link_hash_bytes, verify_erasure, Checkpoint, LinkRef, Tombstone,
    VerifyingKey, GENESIS,
};
use tracing_llm_audit::sink::postgres::{entry_from_row, link_from_row};

use crate::output::{Cell, Table};
use crate::progress::Progress;
use crate::scan;
use crate::source::Postgres;

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
    Unchained,
    /// Not a problem: a crashed writer's stream, repaired by a later one.
    Repaired,
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
            Self::Unchained => "unchained",
            Self::Repaired => "repaired",
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
}

impl Report {
    pub(crate) fn table(&self) -> Table {
        let mut table = Table::new(["stream", "seq", "kind", "detail"]);
        for p in self.problems.iter().chain(&self.notes) {
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
        let verdict = match self.problems.len() {
            0 => "intact".to_owned(),
            n => format!("{n} problem(s)"),
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
    /// For a repair entry: the streams it says crashed.
    repaired: Option<Vec<Crashed>>,
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

/// The entries of one stream, and the last seq seen in each file.
#[derive(Default)]
struct StreamData {
    items: Vec<Item>,
    last_in_file: std::collections::HashMap<usize, u64>,
}

// One per line, moved once into its stream's list: boxing the large variant would cost an
// allocation per entry for nothing.
#[allow(clippy::large_enum_variant)]
enum Read {
    /// A chained entry, and why its erasure does not check out, if it does not.
    Chained(Arc<str>, Item, Option<Box<str>>),
    Unchained,
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
fn item(link: &LinkRef<'_>, digest: &[u8; 32], repaired: Option<Vec<Crashed>>) -> Item {
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
        repaired,
        file: 0,
        line: 0,
    }
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

    // Checkpoints, by stream.
    let mut checkpoints: BTreeMap<String, Vec<Checkpoint>> = BTreeMap::new();
    for path in checkpoint_files(dir)? {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let stream = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.split("checkpoints_").nth(1))
            .map(|n| n.trim_end_matches(".jsonl").to_owned())
            .unwrap_or_default();
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            match serde_json::from_str::<Checkpoint>(line) {
                Ok(cp) if cp.stream == stream => {
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

    // Entries, in file order, hashed on every core.
    let total = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let progress = Progress::start(total, "verifying");
    let mut streams: BTreeMap<String, StreamData> = BTreeMap::new();
    let mut unreadable = Vec::new();
    scan::ordered(
        &files,
        &progress,
        |line| {
            let (digest, link) = line_digest_ref(line).map_err(|e| e.to_string())?;
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
            let item = item(&link, &digest, repaired);
            // An entry a retention or erasure step changed carries the signature of that change.
            let erasure = ERASED_KEY
                .find(line)
                .and_then(|_| serde_json::from_slice::<serde_json::Value>(line).ok())
                .and_then(|v| {
                    verify_erasure(&v, &link.stream, link.seq, &link.hash, key)
                        .err()
                        .map(String::into_boxed_str)
                });
            Ok(Some(Read::Chained(
                shared_stream(&link.stream),
                item,
                erasure,
            )))
        },
        |file, line, read| {
            report.entries += 1;
            match read {
                Read::Unchained => problems.push(Problem {
                    stream: String::new(),
                    seq: None,
                    kind: Kind::Unchained,
                    detail: format!("{}:{line}: an entry without a chain link (written without tamper evidence, or forged)", files[file].display()),
                }),
                Read::Chained(stream, mut item, erasure) => {
                    item.file = file;
                    item.line = line;
                    if let Some(why) = erasure {
                        problems.push(Problem {
                            stream: stream.to_string(),
                            seq: Some(item.seq),
                            kind: Kind::Modified,
                            detail: format!("{}:{line}: {why}", files[file].display()),
                        });
                    }
                    let data = match streams.get_mut(&*stream) {
                        Some(data) => data,
                        None => streams.entry(stream.to_string()).or_default(),
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
                    data.items.push(item);
                }
            }
            true
        },
        |bad| {
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

    let place = |item: &Item| match item.covers() {
        Some(first) => format!("the tombstone of seq {first} to {}", item.seq),
        None => format!("{}:{}", files[item.file].display(), item.line),
    };
    let tombstones = tombstones_of(dir, &mut report)?;
    Ok(conclude(
        report,
        streams,
        checkpoints,
        tombstones,
        problems,
        key,
        &place,
    ))
}

/// Checks the streams read (from files or rows) against their checkpoints.
fn conclude(
    mut report: Report,
    mut streams: BTreeMap<String, StreamData>,
    mut checkpoints: BTreeMap<String, Vec<Checkpoint>>,
    mut tombstones: BTreeMap<String, Vec<Tombstone>>,
    mut problems: Vec<Problem>,
    key: &VerifyingKey,
    place: Place<'_>,
) -> Report {
    report.checkpoints = checkpoints.values().map(Vec::len).sum();

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
    let repaired: BTreeMap<String, Crashed> = streams
        .iter()
        .flat_map(|(stream, d)| d.items.iter().map(move |i| (stream, i)))
        .filter(|(stream, i)| {
            i.content_ok
                && signed_up_to
                    .get(stream.as_str())
                    .is_some_and(|&s| s >= i.seq)
        })
        .filter_map(|(stream, i)| {
            i.repaired.as_ref().map(|named| {
                named
                    .iter()
                    .filter(|c| &c.stream != stream)
                    .map(|c| (c.stream.clone(), c.clone()))
                    .collect::<Vec<_>>()
            })
        })
        .flatten()
        .collect();
    let names: std::collections::BTreeSet<String> = streams
        .keys()
        .chain(checkpoints.keys())
        .chain(tombstones.keys())
        .cloned()
        .collect();
    report.streams = names.len();
    for stream in names {
        let mut items = streams.remove(&stream).unwrap_or_default().items;
        items.sort_by_key(|i| i.seq);
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
        let stand_ins = stand_ins(
            &stream,
            &items,
            tombstones.remove(&stream).unwrap_or_default(),
            key,
            &mut problems,
            &mut report,
        );
        if !stand_ins.is_empty() {
            items.extend(stand_ins);
            items.sort_by_key(|i| i.seq);
        }
        let mut found = Vec::new();
        check_stream(&stream, &items, cps, key, place, excused, &mut found);
        for p in found {
            if matches!(p.kind, Kind::Expired) {
                report.notes.push(p);
            } else if p.kind == Kind::Repaired {
                report.notes.push(Problem {
                    detail: format!(
                        "the writer crashed; a later writer recorded the repair ({})",
                        p.detail
                    ),
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

/// The signed tombstones of a stream as stand-ins for the entries they cover. A tombstone whose
/// signature fails is a problem (the entries it names are then reported missing); one whose
/// range still holds entries, or overlaps another, is a note and stands in for nothing.
fn stand_ins(
    stream: &str,
    items: &[Item],
    mut tombstones: Vec<Tombstone>,
    key: &VerifyingKey,
    problems: &mut Vec<Problem>,
    report: &mut Report,
) -> Vec<Item> {
    tombstones.sort_by_key(|t| (t.first, t.last));
    let mut out: Vec<Item> = Vec::new();
    for t in tombstones {
        let at = Some(t.first);
        if !t.verify(key) {
            let why = if t.key_id == key.key_id() {
                "its signature does not verify".to_owned()
            } else {
                format!("signed by key {}, not by {}", t.key_id, key.key_id())
            };
            problems.push(Problem {
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
        let start = items.partition_point(|i| i.seq < t.first);
        if items.get(start).is_some_and(|i| i.seq <= t.last) {
            report.notes.push(note(format!(
                "the tombstone of seq {} to {} ({}) covers entries that are still there: a \
                 retention run was interrupted; run it again",
                t.first, t.last, t.reason
            )));
            continue;
        }
        if out.last().is_some_and(|o| o.seq >= t.first) {
            report.notes.push(note(format!(
                "the tombstone of seq {} to {} overlaps another; ignored",
                t.first, t.last
            )));
            continue;
        }
        report.expired += t.last - t.first + 1;
        report.notes.push(Problem {
            stream: stream.to_owned(),
            seq: at,
            kind: Kind::Expired,
            detail: format!(
                "seq {} to {} removed at {}: {}",
                t.first, t.last, t.time, t.reason
            ),
        });
        out.push(Item {
            seq: t.last,
            prev: parse_hash(&t.prev),
            hash: parse_hash(&t.last_hash),
            repaired: None,
            content_ok: true,
            file: STAND_IN,
            line: usize::try_from(t.first).unwrap_or(usize::MAX),
        });
    }
    out
}

/// The tombstones of a JSONL directory, by stream.
fn tombstones_of(
    dir: &Path,
    report: &mut Report,
) -> Result<BTreeMap<String, Vec<Tombstone>>, String> {
    let mut by_stream: BTreeMap<String, Vec<Tombstone>> = BTreeMap::new();
    for (line, read) in crate::retention::read_tombstones(dir)? {
        match read {
            Ok(t) => by_stream.entry(t.stream.clone()).or_default().push(t),
            Err(e) => report.notes.push(Problem {
                stream: String::new(),
                seq: None,
                kind: Kind::Fragment,
                detail: format!(
                    "{}:{line}: not a tombstone ({e}); the entries it covered would be reported missing",
                    dir.join(crate::retention::TOMBSTONES).display()
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

fn check_stream(
    stream: &str,
    items: &[Item],
    mut cps: Vec<Checkpoint>,
    key: &VerifyingKey,
    place: Place<'_>,
    crash_repaired: bool,
    problems: &mut Vec<Problem>,
) {
    // A stream that ends unsealed: a crash a later writer repaired, or a missing checkpoint.
    let unsealed = if crash_repaired {
        Kind::Repaired
    } else {
        Kind::MissingCheckpoint
    };
    let mut problem = |seq: Option<u64>, kind: Kind, detail: String| {
        problems.push(Problem {
            stream: stream.to_owned(),
            seq,
            kind,
            detail,
        });
    };
    // One entry per sequence number; the others are inserted.
    // `items` is sorted by seq: one pass keeps one entry per seq (a sorted Vec, not a map:
    // a stream may hold millions of entries).
    let mut by_seq: Vec<(u64, &Item)> = Vec::with_capacity(items.len());
    for item in items {
        match by_seq
            .last()
            .filter(|(seq, _)| *seq == item.seq)
            .map(|(_, i)| *i)
        {
            Some(first) => {
                // The one whose content checks out is taken for the original.
                let (keep, other) = if !first.content_ok && item.content_ok {
                    (item, first)
                } else {
                    (first, item)
                };
                problem(
                    Some(item.seq),
                    Kind::Inserted,
                    format!(
                        "two entries claim this seq: {} and {}",
                        place(keep),
                        place(other)
                    ),
                );
                if let Some(last) = by_seq.last_mut() {
                    last.1 = keep;
                }
            }
            None => by_seq.push((item.seq, item)),
        }
    }
    let find = |seq: u64| {
        by_seq
            .binary_search_by_key(&seq, |(s, _)| *s)
            .ok()
            .map(|i| by_seq[i].1)
    };
    let mut expected = 0u64;
    let mut previous: Option<&Item> = None;
    for &(seq, item) in &by_seq {
        // A tombstone's stand-in takes the place of the entries it covers.
        let first = item.covers().unwrap_or(seq);
        if first > expected {
            let range = if first - 1 == expected {
                format!("seq {expected}")
            } else {
                format!("seq {expected} to {}", first - 1)
            };
            problem(
                Some(expected),
                Kind::Deleted,
                format!("{range} missing before {}", place(item)),
            );
        }
        if !item.content_ok {
            problem(
                Some(seq),
                Kind::Modified,
                format!("{}: the content does not match its hash", place(item)),
            );
        }
        let want_prev = match previous {
            Some(p) if p.seq + 1 == first => Some(p.hash),
            None if first == 0 => Some(parse_hash(GENESIS)),
            _ => None,
        };
        if let Some(want) = want_prev {
            if item.prev.is_none() || item.prev != want {
                let (at, what) = match previous {
                    Some(p) if p.content_ok => (
                        Some(p.seq),
                        format!(
                            "{}: changed and re-hashed (the next entry's link does not match)",
                            place(p)
                        ),
                    ),
                    Some(_) => (
                        Some(seq),
                        format!("{}: its link does not match the entry before", place(item)),
                    ),
                    None => (
                        Some(seq),
                        format!("{}: the first entry does not start the chain", place(item)),
                    ),
                };
                problem(at, Kind::Modified, what);
            }
        }
        expected = seq + 1;
        previous = Some(item);
    }
    let max_seq = by_seq.last().map(|(seq, _)| *seq);

    // Checkpoints.
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
        match find(cp.seq) {
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
        (None, Some(_)) if cps.is_empty() => {
            problem(None, unsealed, "the stream has no checkpoint".to_owned());
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
                } else {
                    problem(Some(last.seq + 1), unsealed, format!("no checkpoint covers seq {} to {max}, and the stream has no final checkpoint (the writer stopped without shutting down, or checkpoints were removed)", last.seq + 1));
                }
            } else if !last.last {
                problem(Some(last.seq), unsealed, "the stream has no final checkpoint (the writer stopped without shutting down, or it was removed)".to_owned());
            }
        }
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
                signature: text("signature")?,
            };
            checkpoints.entry(cp.stream.clone()).or_default().push(cp);
            Ok(true)
        },
    )?;

    // The request id of each item, by its `line`.
    let mut ids: Vec<uuid::Uuid> = Vec::new();
    let mut streams: BTreeMap<String, StreamData> = BTreeMap::new();
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
            if entry.erased.is_some() {
                let value = serde_json::to_value(&entry).map_err(|e| e.to_string())?;
                if let Err(why) = verify_erasure(&value, &link.stream, link.seq, &link.hash, key) {
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
            let mut item = item(&link, &digest, repaired);
            item.line = ids.len() - 1;
            match streams.get_mut(&*link.stream) {
                Some(data) => data.items.push(item),
                None => streams
                    .entry(link.stream.into_owned())
                    .or_default()
                    .items
                    .push(item),
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
    Ok(conclude(
        report,
        streams,
        checkpoints,
        tombstones,
        problems,
        key,
        &place,
    ))
}
