//! Reads a JSONL audit directory as a stream, in constant memory, file by file in date order,
//! skipping (and reporting) lines that are not entries.

use std::path::{Path, PathBuf};

use time::{Date, OffsetDateTime};

use crate::row::Checked;

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
        // Files are named by UTC date, whatever offset the bounds were given in.
        .filter(|(date, _)| {
            from.is_none_or(|from| *date >= from.to_offset(time::UtcOffset::UTC).date())
        })
        .filter(|(date, _)| to.is_none_or(|to| *date <= to.to_offset(time::UtcOffset::UTC).date()))
        .collect();
    files.sort();
    Ok(files.into_iter().map(|(_, path)| path).collect())
}

/// Day files of `dir` named with another prefix than `audit_` (`<prefix>YYYY-MM-DD.jsonl`):
/// what a sink built with `file_prefix` writes. The commands read only `audit_` files, so they
/// say when others are there rather than pass over them in silence.
pub(crate) fn other_prefix_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = read
        .filter_map(Result::ok)
        .filter(|entry| {
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                return false;
            };
            let Some(stem) = name.strip_suffix(".jsonl") else {
                return false;
            };
            let Some(split) = stem.len().checked_sub(10) else {
                return false;
            };
            let (prefix, date) = stem.split_at(split);
            !prefix.is_empty()
                && prefix != "audit_"
                && Date::parse(
                    date,
                    time::macros::format_description!("[year]-[month]-[day]"),
                )
                .is_ok()
        })
        .map(|entry| entry.path())
        .collect();
    found.sort();
    found
}

/// Whether `dir` was written by chained (tamper-evident) sinks: it has checkpoint files.
pub(crate) fn is_chained(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|read| {
        read.filter_map(Result::ok).any(|entry| {
            entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with("audit_checkpoints_") && n.ends_with(".jsonl"))
        })
    })
}

/// Refuses to change a directory that holds day files of another prefix: the command would
/// leave them as they are and say it was done.
pub(crate) fn refuse_other_prefixes(dir: &Path, command: &str) -> Result<(), String> {
    let others = other_prefix_files(dir);
    match others.first() {
        None => Ok(()),
        Some(first) => Err(format!(
            "{} holds {} day file(s) with another prefix than audit_ ({} first); {command} \
             handles only audit_ files, so it would leave them untouched; nothing was changed \
             (move them to a directory of their own)",
            dir.display(),
            others.len(),
            first.display()
        )),
    }
}

/// The lines of a small file (a checkpoint file), read a line at a time: `None` stands for a
/// line longer than `max` bytes, skipped to its end without being held.
pub(crate) fn bounded_lines(path: &Path, max: usize) -> Result<Vec<Option<String>>, String> {
    use std::io::BufRead;
    let file = tracing_llm_audit::sink::log_file::open_read(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut reader = std::io::BufReader::new(file);
    let mut lines = Vec::new();
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let buf = reader
            .fill_buf()
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if buf.is_empty() {
            break;
        }
        let (take, end) = match memchr::memchr(b'\n', buf) {
            Some(at) => (at, true),
            None => (buf.len(), false),
        };
        if !too_long {
            if line.len() + take > max {
                too_long = true;
                line = Vec::new();
            } else {
                line.extend_from_slice(&buf[..take]);
            }
        }
        reader.consume(take + usize::from(end));
        if end {
            lines.push((!too_long).then(|| String::from_utf8_lossy(&line).into_owned()));
            line.clear();
            too_long = false;
        }
    }
    if too_long {
        lines.push(None);
    } else if !line.is_empty() {
        lines.push(Some(String::from_utf8_lossy(&line).into_owned()));
    }
    Ok(lines)
}

/// Bytes handed to a worker at a time (whole lines; a longer line makes a longer chunk).
const CHUNK: usize = 1 << 20;

/// What stands in a chunk for a line longer than [`MAX_LINE_BYTES`]: the reader skips such a
/// line to its end instead of holding it in memory.
///
/// [`MAX_LINE_BYTES`]: tracing_llm_audit::sink::MAX_LINE_BYTES
const OVERSIZED: &[u8] = b"\0llm-audit: an oversized line\0";

/// Why a line is refused when it is longer than any a writer writes.
pub(crate) const OVERSIZED_REASON: &str =
    "a line longer than the 64 MiB that a writer ever writes: not read";

/// Why a line with more JSON values than any entry has is refused: decoded, each value takes
/// about twenty times the bytes it is written in (a 60 MiB line of `[0,0,...]` took 1.1 GB).
pub(crate) const TOO_MANY_VALUES_REASON: &str =
    "a line with more than 100000 JSON values, more than any entry has: not read";

/// The most JSON values (each `,`, `:`, `[` and `{` outside strings counts one) a line may hold.
const MAX_VALUES: usize = 100_000;

/// Whether a long line holds more JSON values than [`MAX_VALUES`]. Lines under 1 MiB are not
/// counted: however many values they hold, decoded they stay small.
fn too_many_values(text: &[u8]) -> bool {
    if text.len() < 1 << 20 {
        return false;
    }
    let (mut count, mut in_string, mut escaped) = (0usize, false, false);
    for &b in text {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b',' | b':' | b'[' | b'{' => {
                count += 1;
                if count > MAX_VALUES {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

/// A line's bad reason: oversized, too many values, not an entry (`error`), or torn.
fn bad_reason(text: &[u8], complete: bool, error: impl std::fmt::Display) -> String {
    if text == OVERSIZED {
        OVERSIZED_REASON.to_owned()
    } else if too_many_values(text) {
        TOO_MANY_VALUES_REASON.to_owned()
    } else if complete {
        format!("not an audit entry: {error}")
    } else {
        "a torn last line (the writer stopped mid-line)".to_owned()
    }
}

/// The lines of `data`, each with its `\n` if it has one, as `split_inclusive` gives them, but
/// found with `memchr` (a byte-at-a-time split was a tenth of `verify`'s time).
fn split_lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = memchr::memchr(b'\n', rest).map_or(rest.len(), |at| at + 1);
        let (line, tail) = rest.split_at(end);
        rest = tail;
        Some(line)
    })
}

/// A bad line found by a worker, placed by chunk until the line counts of earlier chunks are
/// known.
struct ChunkBad {
    file: usize,
    seq: usize,
    line: usize,
    reason: String,
}

struct Chunk {
    file: usize,
    seq: usize,
    data: Vec<u8>,
}

/// Folds every row of `files` into per-thread accumulators, on all cores: one thread reads
/// whole-line chunks, the others decode and fold them. Memory stays bounded whatever the size of
/// the files (a few chunks in flight per thread). Returns the accumulators (merge them; their
/// order is not the order of the lines) and the bad lines in file and line order.
pub(crate) fn fold<A: Send>(
    files: &[PathBuf],
    progress: &crate::progress::Progress,
    init: impl Fn() -> A + Sync,
    step: impl Fn(&mut A, Checked<'_>) + Sync,
) -> Result<(Vec<A>, Vec<BadLine>), String> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 8));
    let (tx, rx) = crossbeam_channel::bounded::<Chunk>(threads * 2);
    let results = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let rx = rx.clone();
                let (init, step) = (&init, &step);
                scope.spawn(move || {
                    let mut acc = init();
                    let mut bad = Vec::new();
                    let mut counts = Vec::new();
                    for chunk in rx {
                        let mut lines = 0;
                        for raw in split_lines(&chunk.data) {
                            lines += 1;
                            let complete = raw.last() == Some(&b'\n');
                            let text = raw.strip_suffix(b"\n").unwrap_or(raw);
                            if text.iter().all(u8::is_ascii_whitespace) {
                                continue;
                            }
                            let decoded = if text == OVERSIZED || too_many_values(text) {
                                Err(String::new())
                            } else {
                                Checked::decode(text).map_err(|e| e.to_string())
                            };
                            match decoded {
                                Ok(row) => step(&mut acc, row),
                                Err(e) => bad.push(ChunkBad {
                                    file: chunk.file,
                                    seq: chunk.seq,
                                    line: lines,
                                    reason: bad_reason(text, complete, e),
                                }),
                            }
                        }
                        counts.push((chunk.file, chunk.seq, lines));
                    }
                    (acc, bad, counts)
                })
            })
            .collect();
        drop(rx);
        let read = read_chunks(files, &tx, progress, None);
        drop(tx);
        let results: Vec<_> = workers
            .into_iter()
            .map(|w| w.join().expect("a scan worker panicked"))
            .collect();
        read.map(|()| results)
    })?;
    let mut accs = Vec::with_capacity(results.len());
    let mut bad = Vec::new();
    let mut counts = std::collections::BTreeMap::new();
    for (acc, b, c) in results {
        accs.push(acc);
        bad.extend(b);
        counts.extend(c.into_iter().map(|(file, seq, n)| ((file, seq), n)));
    }
    // Lines before each chunk, within its file.
    let mut before = std::collections::HashMap::new();
    let mut running = (usize::MAX, 0);
    for (&(file, seq), &n) in &counts {
        if running.0 != file {
            running = (file, 0);
        }
        before.insert((file, seq), running.1);
        running.1 += n;
    }
    bad.sort_by_key(|b| (b.file, b.seq, b.line));
    let bad = bad
        .into_iter()
        .map(|b| BadLine {
            file: files[b.file].clone(),
            line: before.get(&(b.file, b.seq)).copied().unwrap_or(0) + b.line,
            reason: b.reason,
        })
        .collect();
    Ok((accs, bad))
}

/// Reads `files` in whole-line chunks into `tx`, in buffers from `recycle` when there are some
/// (buffers used before: no fresh pages to fault in and clear for each chunk).
fn read_chunks(
    files: &[PathBuf],
    tx: &crossbeam_channel::Sender<Chunk>,
    progress: &crate::progress::Progress,
    recycle: Option<&crossbeam_channel::Receiver<Vec<u8>>>,
) -> Result<(), String> {
    use std::io::Read;
    for (index, path) in files.iter().enumerate() {
        let mut file = tracing_llm_audit::sink::log_file::open_read(path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let mut carry: Vec<u8> = Vec::new();
        let mut seq = 0;
        // Inside a line longer than any a writer writes: read on to its end, keeping nothing.
        let mut skipping = false;
        loop {
            // The start of a long line goes on in its own buffer, grown by one chunk at a time
            // (not doubled, and not copied into another): a line of up to the limit costs about
            // its own size.
            let mut buf = if carry.len() < CHUNK {
                let mut buf = recycle.and_then(|r| r.try_recv().ok()).unwrap_or_default();
                buf.clear();
                buf.reserve(carry.len() + CHUNK);
                buf.append(&mut carry);
                buf
            } else {
                let mut buf = std::mem::take(&mut carry);
                buf.reserve_exact(CHUNK);
                buf
            };
            let start = buf.len();
            let read = (&mut file)
                .take(CHUNK as u64)
                .read_to_end(&mut buf)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            progress.advance(read as u64);
            if skipping {
                let newline = memchr::memchr(b'\n', &buf[start..]).map(|at| start + at);
                if read != 0 && newline.is_none() {
                    continue; // still inside it
                }
                skipping = false;
                let mut marker = OVERSIZED.to_vec();
                if let Some(at) = newline {
                    // What follows the long line is read as usual.
                    carry = buf[at + 1..].to_vec();
                    marker.push(b'\n');
                }
                let chunk = Chunk {
                    file: index,
                    seq,
                    data: marker,
                };
                if tx.send(chunk).is_err() {
                    return Ok(());
                }
                seq += 1;
                if read == 0 {
                    break; // the file ends inside it
                }
                continue;
            }
            if read == 0 {
                if !buf.is_empty() {
                    let _ = tx.send(Chunk {
                        file: index,
                        seq,
                        data: buf,
                    });
                }
                break;
            }
            match buf[start..].iter().rposition(|&b| b == b'\n') {
                // A line longer than any a writer writes: skipped to its end.
                None if buf.len() > tracing_llm_audit::sink::MAX_LINE_BYTES => skipping = true,
                // A line longer than a chunk: read on.
                None => carry = buf,
                Some(at) => {
                    carry = buf[start + at + 1..].to_vec();
                    buf.truncate(start + at + 1);
                    if tx
                        .send(Chunk {
                            file: index,
                            seq,
                            data: buf,
                        })
                        .is_err()
                    {
                        return Ok(());
                    }
                    seq += 1;
                }
            }
        }
    }
    Ok(())
}

/// What a worker made of one chunk: the kept values and the bad lines, in line order.
struct Done<T> {
    seq: usize,
    file: usize,
    lines: usize,
    kept: Vec<(usize, T)>,
    bad: Vec<(usize, String)>,
}

/// Like [`fold`], but hands the values that `work` keeps to `each` in file and line order, with
/// the index of the file and the line number (for `query`, whose output is the entries in
/// order, and `verify`, which needs the order), with `bad` called in order too. Chunks in
/// flight are bounded, so memory is too. Stops early when `each` returns `false`.
pub(crate) fn ordered<T: Send>(
    files: &[PathBuf],
    progress: &crate::progress::Progress,
    work: impl Fn(&[u8]) -> Result<Option<T>, String> + Sync,
    mut each: impl FnMut(usize, usize, T) -> bool,
    mut bad: impl FnMut(BadLine) -> Result<(), String>,
) -> Result<(), String> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 8));
    let in_flight = threads * 4;
    let (permit_tx, permit_rx) = crossbeam_channel::bounded::<()>(in_flight);
    for _ in 0..in_flight {
        let _ = permit_tx.send(());
    }
    let (chunk_tx, chunk_rx) = crossbeam_channel::bounded::<(usize, Chunk)>(threads * 2);
    let (done_tx, done_rx) = crossbeam_channel::unbounded::<Done<T>>();
    // Buffers of chunks done with, back to the reader.
    let (recycle_tx, recycle_rx) = crossbeam_channel::bounded::<Vec<u8>>(in_flight);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let (rx, tx, work) = (chunk_rx.clone(), done_tx.clone(), &work);
            let recycle_tx = recycle_tx.clone();
            scope.spawn(move || {
                for (seq, chunk) in rx {
                    let mut done = Done {
                        seq,
                        file: chunk.file,
                        lines: 0,
                        kept: Vec::new(),
                        bad: Vec::new(),
                    };
                    for raw in split_lines(&chunk.data) {
                        done.lines += 1;
                        let complete = raw.last() == Some(&b'\n');
                        let text = raw.strip_suffix(b"\n").unwrap_or(raw);
                        if text.iter().all(u8::is_ascii_whitespace) {
                            continue;
                        }
                        // A panic in `work` must not leave the others waiting for this chunk.
                        let outcome = if text == OVERSIZED || too_many_values(text) {
                            Err(String::new())
                        } else {
                            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(text)))
                                .unwrap_or_else(|_| {
                                    Err("the line could not be processed (internal error)"
                                        .to_owned())
                                })
                        };
                        match outcome {
                            Ok(Some(value)) => done.kept.push((done.lines, value)),
                            Ok(None) => {}
                            Err(e) => done.bad.push((done.lines, bad_reason(text, complete, e))),
                        }
                    }
                    // The reader allocates anew when none is back (or this one is not wanted).
                    let _ = recycle_tx.try_send(chunk.data);
                    if tx.send(done).is_err() {
                        break;
                    }
                }
            });
        }
        drop((chunk_rx, done_tx, recycle_tx));
        let reader = scope.spawn(move || {
            // Numbers the chunks across files; waits for a permit before each.
            let (tx, numbered) = crossbeam_channel::bounded::<Chunk>(1);
            let mut seq = 0;
            std::thread::scope(|inner| {
                let forward = inner.spawn(|| {
                    for chunk in numbered {
                        if permit_rx.recv().is_err() || chunk_tx.send((seq, chunk)).is_err() {
                            return;
                        }
                        seq += 1;
                    }
                });
                let read = read_chunks(files, &tx, progress, Some(&recycle_rx));
                drop(tx);
                let _ = forward.join();
                read
            })
        });
        let mut pending = std::collections::BTreeMap::new();
        let mut next = 0;
        let mut line_base = (usize::MAX, 0);
        let mut outcome = Ok(());
        'outer: for done in &done_rx {
            pending.insert(done.seq, done);
            while let Some(done) = pending.remove(&next) {
                next += 1;
                let _ = permit_tx.send(());
                if line_base.0 != done.file {
                    line_base = (done.file, 0);
                }
                for (line, reason) in done.bad {
                    if let Err(e) = bad(BadLine {
                        file: files[done.file].clone(),
                        line: line_base.1 + line,
                        reason,
                    }) {
                        outcome = Err(e);
                        break 'outer;
                    }
                }
                for (line, value) in done.kept {
                    if !each(done.file, line_base.1 + line, value) {
                        break 'outer;
                    }
                }
                line_base.1 += done.lines;
            }
        }
        // Stopping early: close the channels so that the reader and the workers end.
        drop(done_rx);
        drop(permit_tx);
        let read = reader.join().expect("the reader panicked");
        outcome.and(read)
    })
}

#[cfg(test)]
mod tests {
    use super::split_lines;

    #[test]
    fn lines_split_as_split_inclusive_does() {
        for data in [
            &b""[..],
            b"\n",
            b"\n\n",
            b"a",
            b"a\n",
            b"a\nb",
            b"a\n\nbc\n",
            b"{\"x\":1}\n{\"y\":2",
        ] {
            let ours: Vec<&[u8]> = split_lines(data).collect();
            let std: Vec<&[u8]> = data.split_inclusive(|&b| b == b'\n').collect();
            assert_eq!(ours, std, "{:?}", String::from_utf8_lossy(data));
        }
    }
}
