//! One audit entry, one line: the JSON Lines encoding that the file and stdout sinks share.
//!
//! An audit line must stay one line for every reader, whatever the model, the user or an
//! attacker put into its strings. `serde_json` already escapes every control character below
//! U+0020, which covers `\n`, `\r`, NUL and the ESC of ANSI sequences. [`LineSafeFormatter`] also
//! escapes the characters that other readers treat as line breaks or terminal controls: the C1
//! range U+0080..=U+009F (NEL is U+0085, a one-character CSI is U+009B; Python's
//! `str.splitlines()` splits at U+0085), and U+2028 / U+2029 (JavaScript and `splitlines()`).
//!
//! [`EncodedBatch`] and [`write_lines`] let a sink write a whole batch with as few `write` calls
//! as possible and still tell exactly which entries reached the destination as complete lines.

use std::io::{self, Write};
use std::ops::Range;

use serde::Serialize;
use serde_json::ser::Formatter;

use super::SinkError;
use crate::entry::AuditEntry;

/// Appends `entry` to `buf` as exactly one JSON line, terminated by `\n`.
///
/// The line is byte for byte what `serde_json` writes for the entry's `Serialize` impl with
/// [`LineSafeFormatter`] (the tests hold the two together), written by [`EntryWriter`] without
/// going through serde for the members whose shape is fixed.
///
/// On error nothing is appended: a failed entry never leaves half a line behind.
pub(crate) fn write_entry_line(
    buf: &mut Vec<u8>,
    entry: &AuditEntry,
) -> Result<(), serde_json::Error> {
    let start = buf.len();
    if let Err(error) = EntryWriter(&mut *buf).entry(entry) {
        buf.truncate(start);
        return Err(error);
    }
    // Room for the `chain` member (about 250 bytes) and the `\n`.
    let len = buf.len() - start;
    if len > super::MAX_LINE_BYTES - 1024 {
        buf.truncate(start);
        return Err(<serde_json::Error as serde::ser::Error>::custom(format!(
            "its line would be {len} bytes, more than the {} MiB an audit line may have",
            super::MAX_LINE_BYTES >> 20
        )));
    }
    buf.push(b'\n');
    Ok(())
}

/// `,"name":`, the bytes before the value of every member but the first, as one literal. Member
/// names are plain ASCII identifiers, which JSON writes as they are.
macro_rules! member {
    ($name:literal) => {
        concat!(",\"", $name, "\":").as_bytes()
    };
}

/// Writes an [`AuditEntry`] as the JSON object its derived `Serialize` impl describes, the way
/// `serde_json` with [`LineSafeFormatter`] would, only faster: member names are written as the
/// literals they are, strings are escaped in one pass that skips eight plain bytes at a time,
/// and the timestamp, request id, cost and numbers are formatted in place, with no allocation.
/// The open-ended members (metadata, content, erasures) go through `serde_json`.
///
/// Through serde, the sink spent most of its time here: the member names were most of the
/// bytes it escaped, every string was scanned twice (by `serde_json`, then by the formatter for
/// line breaks), and the timestamp was formatted into a new `String` first.
struct EntryWriter<'a>(&'a mut Vec<u8>);

impl EntryWriter<'_> {
    fn entry(&mut self, entry: &AuditEntry) -> Result<(), serde_json::Error> {
        // No `..`: a member added to `AuditEntry` does not compile until it is written here.
        let AuditEntry {
            schema_version,
            request_id,
            timestamp,
            user_id,
            session_id,
            provider,
            model,
            response_model,
            response_id,
            action,
            finish_reasons,
            streaming,
            system_prompt_hash,
            input_hash,
            output_hash,
            hash_key_id,
            system_prompt_content,
            input_content,
            output_content,
            input_tokens,
            output_tokens,
            thinking_tokens,
            cache_read_tokens,
            cache_write_tokens,
            cache_write_1h_tokens,
            service_tier,
            latency_ms,
            time_to_first_chunk_ms,
            cost_usd,
            cost_note,
            price_table,
            status,
            error_type,
            error_message,
            sanitization_count,
            sanitization,
            trace_id,
            span_id,
            parent_span_id,
            metadata,
            erased,
        } = entry;
        self.0.extend_from_slice(b"{\"schema_version\":");
        self.u64(u64::from(*schema_version));
        self.key(member!("request_id"));
        self.quoted(
            request_id
                .hyphenated()
                .encode_lower(&mut uuid::Uuid::encode_buffer())
                .as_bytes(),
        );
        self.key(member!("timestamp"));
        self.timestamp(*timestamp)?;
        self.key(member!("user_id"));
        self.opt_str(user_id.as_deref());
        self.key(member!("session_id"));
        self.opt_str(session_id.as_deref());
        self.key(member!("provider"));
        self.opt_str(provider.as_deref());
        self.key(member!("model"));
        self.opt_str(model.as_deref());
        self.key(member!("response_model"));
        self.opt_str(response_model.as_deref());
        self.key(member!("response_id"));
        self.opt_str(response_id.as_deref());
        self.key(member!("action"));
        self.str(action);
        self.key(member!("finish_reasons"));
        match finish_reasons {
            None => self.null(),
            Some(reasons) => {
                self.0.push(b'[');
                for (index, reason) in reasons.iter().enumerate() {
                    if index > 0 {
                        self.0.push(b',');
                    }
                    self.str(reason);
                }
                self.0.push(b']');
            }
        }
        self.key(member!("streaming"));
        match streaming {
            None => self.null(),
            Some(true) => self.0.extend_from_slice(b"true"),
            Some(false) => self.0.extend_from_slice(b"false"),
        }
        self.key(member!("system_prompt_hash"));
        self.opt_str(system_prompt_hash.as_deref());
        self.key(member!("input_hash"));
        self.opt_str(input_hash.as_deref());
        self.key(member!("output_hash"));
        self.opt_str(output_hash.as_deref());
        self.key(member!("hash_key_id"));
        self.opt_str(hash_key_id.as_deref());
        for (key, content) in [
            (member!("system_prompt_content"), system_prompt_content),
            (member!("input_content"), input_content),
            (member!("output_content"), output_content),
        ] {
            if let Some(content) = content {
                self.key(key);
                self.serde(content)?;
            }
        }
        for (key, tokens) in [
            (member!("input_tokens"), input_tokens),
            (member!("output_tokens"), output_tokens),
            (member!("thinking_tokens"), thinking_tokens),
            (member!("cache_read_tokens"), cache_read_tokens),
            (member!("cache_write_tokens"), cache_write_tokens),
        ] {
            self.key(key);
            self.opt_u64(*tokens);
        }
        // Written only when known, so that lines written before these members existed read
        // back, and hash, byte for byte as they were.
        if let Some(tokens) = cache_write_1h_tokens {
            self.key(member!("cache_write_1h_tokens"));
            self.u64(*tokens);
        }
        if let Some(tier) = service_tier {
            self.key(member!("service_tier"));
            self.str(tier);
        }
        self.key(member!("latency_ms"));
        self.u64(*latency_ms);
        self.key(member!("time_to_first_chunk_ms"));
        self.opt_u64(*time_to_first_chunk_ms);
        self.key(member!("cost_usd"));
        match cost_usd {
            None => self.null(),
            Some(cost) => self.decimal(cost),
        }
        self.key(member!("cost_note"));
        self.opt_str(cost_note.as_deref());
        if let Some(table) = price_table {
            self.key(member!("price_table"));
            self.str(table);
        }
        self.key(member!("status"));
        self.quoted(status.as_str().as_bytes());
        self.key(member!("error_type"));
        self.opt_str(error_type.as_deref());
        self.key(member!("error_message"));
        self.opt_str(error_message.as_deref());
        self.key(member!("sanitization_count"));
        self.u64(*sanitization_count);
        self.key(member!("sanitization"));
        self.0.push(b'{');
        for (index, (entity, count)) in sanitization.iter().enumerate() {
            if index > 0 {
                self.0.push(b',');
            }
            self.str(entity);
            self.0.push(b':');
            self.u64(*count);
        }
        self.0.push(b'}');
        self.key(member!("trace_id"));
        self.opt_str(trace_id.as_deref());
        self.key(member!("span_id"));
        self.opt_str(span_id.as_deref());
        self.key(member!("parent_span_id"));
        self.opt_str(parent_span_id.as_deref());
        self.key(member!("metadata"));
        match metadata {
            None => self.null(),
            Some(metadata) => self.serde(metadata)?,
        }
        if let Some(erased) = erased {
            self.key(member!("erased"));
            self.serde(erased)?;
        }
        self.0.push(b'}');
        Ok(())
    }

    /// A member's `,"name":`, from [`member!`].
    fn key(&mut self, separator_and_name: &[u8]) {
        self.0.extend_from_slice(separator_and_name);
    }

    fn null(&mut self) {
        self.0.extend_from_slice(b"null");
    }

    fn u64(&mut self, value: u64) {
        // The formatter's own integer writer (`itoa`); writing to a `Vec` cannot fail.
        let _ = LineSafeFormatter.write_u64(self.0, value);
    }

    fn opt_u64(&mut self, value: Option<u64>) {
        match value {
            None => self.null(),
            Some(value) => self.u64(value),
        }
    }

    /// A string that needs no escaping (hex digits, hyphens, a status name).
    fn quoted(&mut self, plain: &[u8]) {
        self.0.push(b'"');
        self.0.extend_from_slice(plain);
        self.0.push(b'"');
    }

    fn str(&mut self, text: &str) {
        self.0.push(b'"');
        write_escaped(self.0, text);
        self.0.push(b'"');
    }

    fn opt_str(&mut self, text: Option<&str>) {
        match text {
            None => self.null(),
            Some(text) => self.str(text),
        }
    }

    /// A decimal as `rust_decimal` serializes it (a string, every digit of its scale, so
    /// `"0.004500"` keeps its trailing zeros), from its integer mantissa and scale.
    fn decimal(&mut self, value: &rust_decimal::Decimal) {
        self.0.push(b'"');
        if value.is_sign_negative() {
            self.0.push(b'-');
        }
        let start = self.0.len();
        let mantissa = value.mantissa().unsigned_abs();
        if mantissa != 0 {
            // The formatter's own integer writer (`itoa`); writing to a `Vec` cannot fail.
            let _ = LineSafeFormatter.write_u128(self.0, mantissa);
        }
        let scale = value.scale() as usize;
        let digits = self.0.len() - start;
        if digits < scale {
            self.0
                .splice(start..start, std::iter::repeat_n(b'0', scale - digits));
        }
        let whole = digits.saturating_sub(scale);
        if scale > 0 {
            let point = start + whole;
            if whole == 0 {
                self.0.splice(point..point, *b"0.");
            } else {
                self.0.insert(point, b'.');
            }
        } else if digits == 0 {
            self.0.push(b'0');
        }
        self.0.push(b'"');
    }

    /// RFC 3339, as `time::serde::rfc3339` writes it, straight into the line: its digits,
    /// `-`, `:`, `T`, `.`, `+` and `Z` need no escaping.
    fn timestamp(&mut self, at: time::OffsetDateTime) -> Result<(), serde_json::Error> {
        self.0.push(b'"');
        at.format_into(self.0, &time::format_description::well_known::Rfc3339)
            .map_err(<serde_json::Error as serde::ser::Error>::custom)?;
        self.0.push(b'"');
        Ok(())
    }

    /// A member whose shape is open-ended, through `serde_json` with the same formatter.
    fn serde<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), serde_json::Error> {
        value.serialize(&mut serde_json::Serializer::with_formatter(
            &mut *self.0,
            LineSafeFormatter,
        ))
    }
}

/// Appends the contents of a JSON string for `text` (without its quotes), escaped as
/// `serde_json` escapes it (`\"`, `\\`, the short escapes `\b \t \n \f \r`, `\u00xx` for
/// the other C0 controls) plus the line-breaking characters of [`LineSafeFormatter`].
fn write_escaped(buf: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    let mut clean_from = 0;
    let mut at = 0;
    while let Some(special) = next_special(bytes, at) {
        let byte = bytes[special];
        at = special + 1;
        if byte >= 0x80 {
            // 0xC2 or 0xE2: a lead byte, so `text` being UTF-8, a character starts here.
            if let Some((escape, len)) = line_breaking_char(&bytes[special..]) {
                buf.extend_from_slice(&bytes[clean_from..special]);
                buf.extend_from_slice(escape.as_bytes());
                at = special + len;
                clean_from = at;
            }
            continue;
        }
        buf.extend_from_slice(&bytes[clean_from..special]);
        clean_from = at;
        let short = match byte {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            0x0C => b'f',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                buf.extend_from_slice(b"\\u00");
                buf.push(HEX[usize::from(byte >> 4)]);
                buf.push(HEX[usize::from(byte & 0xF)]);
                continue;
            }
        };
        buf.extend_from_slice(&[b'\\', short]);
    }
    buf.extend_from_slice(&bytes[clean_from..]);
}

/// Whether [`write_escaped`] must look at a byte: the bytes `serde_json` escapes (C0 controls,
/// `"`, `\`) and the lead bytes of the characters [`LineSafeFormatter`] escapes.
const SPECIAL: [bool; 256] = {
    let mut special = [false; 256];
    let mut byte = 0;
    while byte < 0x20 {
        special[byte] = true;
        byte += 1;
    }
    special[b'"' as usize] = true;
    special[b'\\' as usize] = true;
    special[0xC2] = true;
    special[0xE2] = true;
    special
};

/// The index of the first byte from `at` on that [`write_escaped`] must look at.
///
/// Eight bytes at a time: a word with no C0 control, `"`, `\` and no byte above ASCII is
/// skipped at once (almost every word of hashes, ids and model names); any other word is
/// looked at byte by byte.
fn next_special(bytes: &[u8], mut at: usize) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    /// Whether a byte of `word` is below `n` (at most 0x80); exact, as in "Bit Twiddling
    /// Hacks" (`hasless`).
    const fn has_less(word: u64, n: u8) -> bool {
        word.wrapping_sub(ONES * n as u64) & !word & HIGHS != 0
    }
    while let Some(chunk) = bytes.get(at..at + 8) {
        let word = u64::from_ne_bytes(chunk.try_into().expect("a chunk of eight bytes"));
        let maybe = word & HIGHS != 0
            || has_less(word, 0x20)
            || has_less(word ^ (ONES * u64::from(b'"')), 1)
            || has_less(word ^ (ONES * u64::from(b'\\')), 1);
        if maybe {
            if let Some(offset) = chunk.iter().position(|&b| SPECIAL[usize::from(b)]) {
                return Some(at + offset);
            }
        }
        at += 8;
    }
    bytes[at..]
        .iter()
        .position(|&b| SPECIAL[usize::from(b)])
        .map(|offset| at + offset)
}

/// Appends `entry` as one line whose last member is its `chain` link; advances `chain` and gives
/// the link's seq and hash.
/// On error nothing is appended and the chain does not advance.
pub(crate) fn write_chained_line(
    buf: &mut Vec<u8>,
    entry: &AuditEntry,
    chain: &mut crate::chain::ChainState,
) -> Result<(u64, [u8; 64]), serde_json::Error> {
    let start = buf.len();
    write_entry_line(buf, entry)?;
    let digest = match crate::chain::line_digest_ref(&buf[start..buf.len() - 1]) {
        Ok((digest, _)) => digest,
        Err(error) => {
            buf.truncate(start);
            return Err(error);
        }
    };
    // `}\n` → `,"chain":{...}}\n`: the link is the entry's last member.
    buf.truncate(buf.len() - 2);
    buf.extend_from_slice(b",\"chain\":");
    let link = chain.write_link(&digest, buf);
    buf.extend_from_slice(b"}\n");
    Ok(link)
}

/// The compact JSON formatter, plus `\uXXXX` escapes for line-breaking characters above ASCII.
#[derive(Debug, Clone, Copy)]
struct LineSafeFormatter;

impl Formatter for LineSafeFormatter {
    /// `fragment` is a run of a string that `serde_json` did not need to escape. The characters
    /// we escape all start with the UTF-8 lead byte 0xC2 (U+0080..=U+00BF) or 0xE2
    /// (U+2000..=U+2FFF), so everything else is passed on in as few writes as possible.
    fn write_string_fragment<W>(&mut self, writer: &mut W, fragment: &str) -> io::Result<()>
    where
        W: ?Sized + Write,
    {
        let bytes = fragment.as_bytes();
        let mut clean_from = 0;
        let mut at = 0;
        while let Some(offset) = bytes[at..].iter().position(|&b| b == 0xC2 || b == 0xE2) {
            let lead = at + offset;
            match line_breaking_char(&bytes[lead..]) {
                Some((escape, len)) => {
                    writer.write_all(&bytes[clean_from..lead])?;
                    writer.write_all(escape.as_bytes())?;
                    at = lead + len;
                    clean_from = at;
                }
                None => at = lead + 1,
            }
        }
        writer.write_all(&bytes[clean_from..])
    }
}

/// The `\uXXXX` escape and the UTF-8 length of the character at the start of `bytes`, when that
/// character is one that some reader takes for a line break or a terminal control.
fn line_breaking_char(bytes: &[u8]) -> Option<(&'static str, usize)> {
    /// `\u0080` ..= `\u009F`, indexed by the second UTF-8 byte minus 0x80.
    const C1: [&str; 32] = [
        "\\u0080", "\\u0081", "\\u0082", "\\u0083", "\\u0084", "\\u0085", "\\u0086", "\\u0087",
        "\\u0088", "\\u0089", "\\u008a", "\\u008b", "\\u008c", "\\u008d", "\\u008e", "\\u008f",
        "\\u0090", "\\u0091", "\\u0092", "\\u0093", "\\u0094", "\\u0095", "\\u0096", "\\u0097",
        "\\u0098", "\\u0099", "\\u009a", "\\u009b", "\\u009c", "\\u009d", "\\u009e", "\\u009f",
    ];
    match bytes {
        [0xC2, second @ 0x80..=0x9F, ..] => Some((C1[usize::from(second - 0x80)], 2)),
        [0xE2, 0x80, 0xA8, ..] => Some(("\\u2028", 3)),
        [0xE2, 0x80, 0xA9, ..] => Some(("\\u2029", 3)),
        _ => None,
    }
}

/// A batch serialized into one buffer, with where each complete line ends.
///
/// The buffer is meant to be kept by the sink and reused, so that a steady stream of batches
/// allocates nothing once it has grown to the usual batch size.
#[derive(Debug, Default)]
pub(crate) struct EncodedBatch {
    bytes: Vec<u8>,
    /// Per line, in order: the offset just past its `\n`, and how many entries of the batch are
    /// accounted for once it is written (its index plus one, so entries that could not be
    /// serialized before it count as dealt with).
    line_ends: Vec<(usize, usize)>,
    /// The entries that could not be serialized, if any.
    unserializable: Option<Unserializable>,
    /// Per line, when the batch is chained: its sequence number and hash.
    links: Vec<(u64, [u8; 64])>,
}

/// Entries of a batch that could not be serialized.
#[derive(Debug)]
pub(crate) struct Unserializable {
    /// The index of the first one in the batch.
    pub(crate) first: usize,
    /// How many there were.
    pub(crate) count: usize,
    /// Why the first one failed.
    pub(crate) error: serde_json::Error,
}

impl EncodedBatch {
    /// Serializes `entries`, replacing what the batch held but keeping its allocations. An
    /// entry that cannot be serialized is left out and remembered, so that one bad entry never
    /// costs the others.
    pub(crate) fn encode(&mut self, entries: &[AuditEntry]) {
        self.encode_with(entries, None);
    }

    /// As [`encode`](Self::encode), and when `chain` is given, each line also carries its
    /// `chain` member (the last one), linked from `chain`'s state, which advances.
    pub(crate) fn encode_with(
        &mut self,
        entries: &[AuditEntry],
        mut chain: Option<&mut crate::chain::ChainState>,
    ) {
        self.bytes.clear();
        self.line_ends.clear();
        self.links.clear();
        self.unserializable = None;
        for (index, entry) in entries.iter().enumerate() {
            let written = match chain.as_deref_mut() {
                None => write_entry_line(&mut self.bytes, entry),
                Some(chain) => write_chained_line(&mut self.bytes, entry, chain)
                    .map(|link| self.links.push(link)),
            };
            match written {
                Ok(()) => self.line_ends.push((self.bytes.len(), index + 1)),
                Err(error) => match &mut self.unserializable {
                    Some(earlier) => earlier.count += 1,
                    None => {
                        self.unserializable = Some(Unserializable {
                            first: index,
                            count: 1,
                            error,
                        });
                    }
                },
            }
        }
    }

    /// The bytes of the lines `lines`.
    fn byte_range(&self, lines: Range<usize>) -> Range<usize> {
        let start = lines
            .start
            .checked_sub(1)
            .map_or(0, |before| self.line_ends[before].0);
        if lines.is_empty() {
            return start..start;
        }
        start..self.line_ends[lines.end - 1].0
    }

    /// The index in the batch of the entry on line `line`.
    #[cfg(feature = "jsonl")]
    pub(crate) fn entry_index(&self, line: usize) -> usize {
        self.line_ends[line].1 - 1
    }

    /// How many lines the batch holds.
    pub(crate) fn lines(&self) -> usize {
        self.line_ends.len()
    }

    /// How many entries of the batch are accounted for when the first `written` bytes of the
    /// batch reached the destination: those up to the last complete line, including entries
    /// left out before it because they could not be serialized.
    fn accounted_for(&self, written: usize) -> usize {
        self.accounted_before(self.line_ends.partition_point(|&(end, _)| end <= written))
    }

    /// How many entries of the batch the lines before line `line` account for.
    pub(crate) fn accounted_before(&self, line: usize) -> usize {
        line.checked_sub(1).map_or(0, |last| self.line_ends[last].1)
    }

    /// The chain state after the lines before line `line` (`None` when no line before it, or
    /// the batch is not chained).
    pub(crate) fn link_before(&self, line: usize) -> Option<&(u64, [u8; 64])> {
        line.checked_sub(1).and_then(|last| self.links.get(last))
    }

    /// Takes the report of the entries that could not be serialized.
    pub(crate) fn take_unserializable(&mut self) -> Option<Unserializable> {
        self.unserializable.take()
    }
}

/// The error for entries of `entries` that could not be serialized while the others were
/// written. It counts the whole batch as accepted: serializing fails the same way on every
/// retry, so "accepted" here means "nothing left worth sending again".
pub(crate) fn unserializable_error(entries: &[AuditEntry], skipped: Unserializable) -> SinkError {
    SinkError::with_source(
        format!(
            "{}; the other entries were written",
            describe_unserializable(entries, &skipped)
        ),
        skipped.error,
    )
    .accepted_before_failure(entries.len())
    .with_rejected(skipped.count)
}

/// Names the entries that could not be serialized, for an error message.
pub(crate) fn describe_unserializable(entries: &[AuditEntry], skipped: &Unserializable) -> String {
    let first = &entries[skipped.first].request_id;
    let why = &skipped.error;
    match skipped.count {
        1 => format!(
            "audit entry {first} (position {} of the batch) cannot be serialized ({why}) and \
             was not written",
            skipped.first
        ),
        count => format!(
            "{count} audit entries cannot be serialized and were not written, the first \
             {first} (position {} of the batch: {why})",
            skipped.first
        ),
    }
}

/// Lines that did not all reach their destination.
#[derive(Debug)]
pub(crate) struct LinesNotWritten {
    /// How many entries of the batch the completely written lines account for.
    pub(crate) accepted: usize,
    /// Why the write stopped.
    pub(crate) error: io::Error,
}

/// Writes the lines `lines` of `batch` to `out` with as few `write` calls as the destination
/// allows.
///
/// `ends_mid_line` says whether `out` ends with a fragment of a line (a write cut short earlier,
/// here or by another process). It is ended with `\n` first, so that the fragment stays a line
/// of its own, which readers skip as invalid, instead of gluing onto the next entry. On return
/// `ends_mid_line` tells whether this write left a fragment in turn.
pub(crate) fn write_lines<W: Write + ?Sized>(
    out: &mut W,
    batch: &EncodedBatch,
    lines: Range<usize>,
    ends_mid_line: &mut bool,
) -> Result<(), LinesNotWritten> {
    let bytes = batch.byte_range(lines);
    let not_written = |written: usize, error| LinesNotWritten {
        accepted: batch.accounted_for(bytes.start + written),
        error,
    };
    if *ends_mid_line {
        write_counting(out, b"\n").map_err(|short| not_written(0, short.error))?;
        *ends_mid_line = false;
    }
    write_counting(out, &batch.bytes[bytes.clone()]).map_err(|short| {
        if short.written > 0 {
            *ends_mid_line = batch.bytes[bytes.start + short.written - 1] != b'\n';
        }
        not_written(short.written, short.error)
    })
}

/// A write that stopped early: how many bytes got through, and why it stopped.
#[derive(Debug)]
struct ShortWrite {
    written: usize,
    error: io::Error,
}

/// Like [`Write::write_all`], but says how many bytes were written when it fails, so that the
/// caller knows which lines are complete and whether a fragment was left behind.
fn write_counting<W: Write + ?Sized>(writer: &mut W, bytes: &[u8]) -> Result<(), ShortWrite> {
    let mut written = 0;
    while written < bytes.len() {
        match writer.write(&bytes[written..]) {
            Ok(0) => {
                return Err(ShortWrite {
                    written,
                    error: io::Error::from(io::ErrorKind::WriteZero),
                })
            }
            Ok(n) => written += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(ShortWrite { written, error }),
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    use std::collections::BTreeMap;

    /// Every character that Python's `str.splitlines()` splits at (a superset of what
    /// `str::lines` and most other readers use).
    pub(crate) const PYTHON_LINE_BREAKS: [char; 10] = [
        '\n', '\r', '\u{0b}', '\u{0c}', '\u{1c}', '\u{1d}', '\u{1e}', '\u{85}', '\u{2028}',
        '\u{2029}',
    ];

    const HOSTILE: &[&str] = &[
        "line\nbreak",
        "carriage\rreturn\r\n",
        "nul\0byte",
        "\u{1b}[31mred\u{1b}[0m",
        "ls\u{2028}ps\u{2029}",
        "nel\u{85}csi\u{9b}31m",
        "\u{80}\u{9f}\u{a0}\u{bf}",
        "\u{2027}\u{202a}\u{20ac}",
        "emoji 👩‍💻🎉 and ünïcödé",
        "\"quoted\\\" and \\ backslashes",
        "\u{0b}\u{0c}\u{1c}\u{1d}\u{1e}\u{7f}",
        "",
    ];

    /// An entry with `text` in every string field, map key and list element.
    pub(crate) fn entry_with_strings(text: &str) -> AuditEntry {
        let s = || Some(text.to_owned());
        let mut entry = AuditEntry::new(text);
        entry.user_id = s();
        entry.session_id = s();
        entry.provider = s();
        entry.model = s();
        entry.response_model = s();
        entry.response_id = s();
        entry.finish_reasons = Some(vec![text.to_owned(), "stop".to_owned()]);
        entry.system_prompt_hash = s();
        entry.input_hash = s();
        entry.output_hash = s();
        entry.hash_key_id = s();
        entry.cost_note = s();
        entry.error_type = s();
        entry.error_message = s();
        entry.sanitization = BTreeMap::from([(text.to_owned(), 1)]);
        entry.trace_id = s();
        entry.span_id = s();
        entry.parent_span_id = s();
        let mut metadata = serde_json::Map::new();
        metadata.insert(text.to_owned(), serde_json::Value::from(text));
        metadata.insert("nested".to_owned(), serde_json::json!({ text: [text] }));
        entry.metadata = Some(metadata);
        entry
    }

    fn line_of(entry: &AuditEntry) -> String {
        let mut buf = Vec::new();
        write_entry_line(&mut buf, entry).unwrap();
        String::from_utf8(buf).unwrap()
    }

    /// The one line `line` holds, without its `\n`, asserting that no reader splits it.
    pub(crate) fn assert_single_line(line: &str) -> &str {
        let body = line.strip_suffix('\n').expect("a line ends with \\n");
        assert_eq!(line.lines().count(), 1, "{line:?}");
        assert!(
            !body.contains(PYTHON_LINE_BREAKS),
            "a reader would split {body:?}"
        );
        assert!(
            !body
                .chars()
                .any(|c| c < ' ' || ('\u{80}'..='\u{9f}').contains(&c)),
            "raw C0 or C1 control (NUL, ESC, CSI, ...) in {body:?}"
        );
        body
    }

    #[test]
    fn hostile_strings_stay_on_one_line_and_round_trip() {
        for text in HOSTILE {
            let entry = entry_with_strings(text);
            let line = line_of(&entry);
            let body = assert_single_line(&line);
            let back: AuditEntry = serde_json::from_str(body).unwrap();
            assert_eq!(back, entry, "{text:?}");
        }
    }

    #[test]
    fn long_strings_stay_on_one_line() {
        let text = "a\u{2028}b\nc\u{85}👩‍💻".repeat(20_000);
        let entry = entry_with_strings(&text);
        let line = line_of(&entry);
        let back: AuditEntry = serde_json::from_str(assert_single_line(&line)).unwrap();
        assert_eq!(back, entry);
    }

    #[test]
    fn escapes_are_the_json_unicode_escapes() {
        let line = line_of(&AuditEntry::new("a\u{85}b\u{2028}c\u{2029}d\u{9b}e\u{80}"));
        assert!(
            line.contains(r#""action":"a\u0085b\u2028c\u2029d\u009be\u0080""#),
            "{line}"
        );
    }

    #[test]
    fn characters_near_the_escaped_ones_pass_through() {
        let text = "\u{a0}\u{bf}\u{2027}\u{202a}\u{20ac}\u{2fff}é";
        let line = line_of(&AuditEntry::new(text));
        assert!(line.contains(text), "{line}");
    }

    #[test]
    fn plain_entries_match_serde_json() {
        let entry = entry_with_strings("plain ascii, quotes \" and é");
        let mut expected = serde_json::to_string(&entry).unwrap();
        expected.push('\n');
        assert_eq!(line_of(&entry), expected);
    }

    /// The line as `serde_json` writes the entry's `Serialize` impl with [`LineSafeFormatter`]:
    /// the definition that [`write_entry_line`] must match byte for byte.
    fn serde_line(entry: &AuditEntry) -> Result<Vec<u8>, serde_json::Error> {
        let mut buf = Vec::new();
        entry.serialize(&mut serde_json::Serializer::with_formatter(
            &mut buf,
            LineSafeFormatter,
        ))?;
        buf.push(b'\n');
        Ok(buf)
    }

    fn assert_same_as_serde(entry: &AuditEntry) {
        let mut fast = b"earlier\n".to_vec();
        write_entry_line(&mut fast, entry).unwrap();
        let expected = serde_line(entry).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&fast[b"earlier\n".len()..]),
            String::from_utf8_lossy(&expected)
        );
    }

    /// An entry with every member set, the optional ones included.
    fn full_entry(text: &str) -> AuditEntry {
        let mut entry = entry_with_strings(text);
        entry.streaming = Some(true);
        entry.input_tokens = Some(0);
        entry.output_tokens = Some(u64::MAX);
        entry.thinking_tokens = Some(7);
        entry.cache_read_tokens = Some(1_000_000);
        entry.cache_write_tokens = Some(12);
        entry.cache_write_1h_tokens = Some(5);
        entry.service_tier = Some(text.to_owned());
        entry.price_table = Some(format!("{text} sha256:0123456789ab"));
        entry.latency_ms = 987_654;
        entry.time_to_first_chunk_ms = Some(3);
        entry.cost_usd = Some("-12.000450".parse().unwrap());
        entry.status = crate::entry::Status::Blocked;
        entry.sanitization_count = 3;
        entry.sanitization.insert("email".to_owned(), 2);
        entry.system_prompt_content = Some(crate::content::StoredContent::Plaintext {
            text: text.to_owned(),
        });
        entry.output_content = Some(crate::content::StoredContent::PlaintextBase64 {
            base64: "AAEC".to_owned(),
        });
        let mut erased = serde_json::Map::new();
        erased.insert("user_id".to_owned(), serde_json::Value::from(text));
        entry.erased = Some(erased);
        entry
    }

    #[test]
    fn lines_are_what_serde_json_writes_byte_for_byte() {
        use time::macros::datetime;

        let mut entries = vec![AuditEntry::new("chat"), full_entry("plain")];
        for text in HOSTILE {
            entries.push(entry_with_strings(text));
            entries.push(full_entry(text));
        }
        let mut other = full_entry("x");
        other.streaming = Some(false);
        other.status = crate::entry::Status::Error;
        other.finish_reasons = Some(Vec::new());
        other.sanitization.clear();
        other.metadata = Some(serde_json::Map::new());
        other.cost_usd = Some(rust_decimal::Decimal::ZERO);
        other.input_content = other.output_content.take();
        entries.push(other);
        for (at, cost) in [
            (datetime!(2025-01-31 23:59:59.123456 UTC), "0.004500"),
            (datetime!(2025-02-01 06:00:00.1 +09:00), "1"),
            (
                datetime!(0000-01-01 00:00:00.000000001 -02:30),
                "0.000000000001",
            ),
            (
                datetime!(9999-12-31 23:59:59.999999999 UTC),
                "79228162514264337593543950335",
            ),
        ] {
            let mut entry = full_entry("t");
            entry.timestamp = at;
            entry.cost_usd = Some(cost.parse().unwrap());
            entries.push(entry);
        }
        for entry in &entries {
            assert_same_as_serde(entry);
        }
        // Timestamps that RFC 3339 cannot express fail with serde's error.
        for at in [
            datetime!(-0001-01-01 0:00 UTC),
            datetime!(2025-01-31 12:00 +01:00:30),
        ] {
            let mut entry = full_entry("t");
            entry.timestamp = at;
            let fast = write_entry_line(&mut Vec::new(), &entry).unwrap_err();
            assert_eq!(
                fast.to_string(),
                serde_line(&entry).unwrap_err().to_string()
            );
        }
    }

    #[test]
    fn decimals_are_written_as_rust_decimal_serializes_them() {
        use rust_decimal::Decimal;

        let mut values = vec![
            Decimal::ZERO,
            Decimal::MAX,
            Decimal::MIN,
            -Decimal::ZERO,
            -Decimal::new(0, 5),
            Decimal::new(0, 28),
        ];
        for scale in 0..=28 {
            for mantissa in [1, 7, 10, 345_000, 123_456_789, i64::MAX, i64::MIN + 1] {
                values.push(Decimal::new(mantissa, scale));
                values.push(Decimal::new(-mantissa, scale));
            }
            values.push(Decimal::from_i128_with_scale(
                79_228_162_514_264_337_593_543_950_335,
                scale,
            ));
        }
        for value in values {
            let mut fast = Vec::new();
            EntryWriter(&mut fast).decimal(&value);
            assert_eq!(
                String::from_utf8(fast).unwrap(),
                serde_json::to_string(&value).unwrap(),
                "{value:?}"
            );
        }
    }

    #[test]
    fn every_character_is_escaped_as_serde_json_escapes_it() {
        use serde::Serializer as _;

        let chars: Vec<char> = (0..=u32::from(char::MAX))
            .filter_map(char::from_u32)
            .collect();
        // Strings of varied lengths, so that every character is met at every offset of the
        // eight-byte words and in the tails after them.
        let mut from = 0;
        let mut len = 1;
        while from < chars.len() {
            let to = (from + len).min(chars.len());
            let text: String = chars[from..to].iter().collect();
            let mut fast = Vec::new();
            write_escaped(&mut fast, &text);
            let mut expected = Vec::new();
            let mut serializer =
                serde_json::Serializer::with_formatter(&mut expected, LineSafeFormatter);
            serializer.serialize_str(&text).unwrap();
            assert_eq!(fast, expected[1..expected.len() - 1], "{text:?}");
            from = to;
            len = len % 23 + 1;
        }
        let ascii: String = (0..128u8).map(char::from).cycle().take(4096).collect();
        for start in 0..16 {
            let text = &ascii[start..];
            let mut fast = Vec::new();
            write_escaped(&mut fast, text);
            let expected = serde_json::to_vec(text).unwrap();
            assert_eq!(fast, expected[1..expected.len() - 1], "from {start}");
        }
    }

    #[test]
    fn an_unserializable_entry_appends_nothing() {
        let mut entry = AuditEntry::new("chat");
        // RFC 3339 has no negative years, so this timestamp cannot be written.
        entry.timestamp = time::macros::datetime!(-0001-01-01 0:00 UTC);
        let mut buf = b"earlier\n".to_vec();
        assert!(write_entry_line(&mut buf, &entry).is_err());
        assert_eq!(buf, b"earlier\n");
    }

    #[test]
    fn accounting_counts_complete_lines_and_skipped_entries() {
        let good = AuditEntry::new("chat");
        let mut bad = AuditEntry::new("chat");
        bad.timestamp = time::macros::datetime!(-0001-01-01 0:00 UTC);
        let mut batch = EncodedBatch::default();
        batch.encode(&[good.clone(), bad, good]);
        assert_eq!(batch.lines(), 2);
        let first_end = batch.bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
        let all = batch.bytes.len();
        assert_eq!(batch.accounted_for(0), 0);
        assert_eq!(batch.accounted_for(first_end - 1), 0);
        assert_eq!(batch.accounted_for(first_end), 1);
        assert_eq!(batch.accounted_for(all - 1), 1);
        assert_eq!(batch.accounted_for(all), 3);
        assert_eq!(batch.accounted_before(1), 1);
        assert_eq!(batch.accounted_before(2), 3);
        assert_eq!(batch.byte_range(1..2), first_end..all);
        let skipped = batch.take_unserializable().unwrap();
        assert_eq!((skipped.first, skipped.count), (1, 1));
    }

    /// Accepts `limit` bytes, one byte per call, then fails.
    struct FailAfter {
        out: Vec<u8>,
        limit: usize,
    }

    impl Write for FailAfter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.out.len() >= self.limit {
                return Err(io::Error::other("disk full"));
            }
            self.out.push(buf[0]);
            Ok(1)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn write_counting_reports_the_bytes_that_got_through() {
        let mut writer = FailAfter {
            out: Vec::new(),
            limit: 5,
        };
        let short = write_counting(&mut writer, b"0123456789").unwrap_err();
        assert_eq!(short.written, 5);
        assert_eq!(writer.out, b"01234");
        assert!(write_counting(&mut Vec::new(), b"all of it").is_ok());
    }

    #[test]
    fn a_torn_write_is_counted_and_never_glues_onto_the_next_line() {
        let entries = [
            AuditEntry::new("first"),
            AuditEntry::new("second"),
            AuditEntry::new("third"),
        ];
        let mut batch = EncodedBatch::default();
        batch.encode(&entries);
        let mut torn = FailAfter {
            out: Vec::new(),
            limit: batch.line_ends[0].0 + 10,
        };
        let mut ends_mid_line = false;
        let failed = write_lines(&mut torn, &batch, 0..3, &mut ends_mid_line).unwrap_err();
        assert_eq!(failed.accepted, 1);
        assert!(ends_mid_line);

        // The retry sends what was not accepted, to the same destination.
        let mut out = torn.out;
        batch.encode(&entries[1..]);
        write_lines(&mut out, &batch, 0..2, &mut ends_mid_line).unwrap();
        assert!(!ends_mid_line);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        let parse = |line: &str| serde_json::from_str::<AuditEntry>(line);
        assert_eq!(parse(lines[0]).unwrap(), entries[0]);
        assert!(
            parse(lines[1]).is_err(),
            "the fragment is a line of its own"
        );
        assert_eq!(parse(lines[2]).unwrap(), entries[1]);
        assert_eq!(parse(lines[3]).unwrap(), entries[2]);
    }

    #[test]
    fn a_write_cut_at_a_line_end_leaves_no_fragment() {
        let entries = [AuditEntry::new("first"), AuditEntry::new("second")];
        let mut batch = EncodedBatch::default();
        batch.encode(&entries);
        let mut cut = FailAfter {
            out: Vec::new(),
            limit: batch.line_ends[0].0,
        };
        let mut ends_mid_line = false;
        let failed = write_lines(&mut cut, &batch, 0..2, &mut ends_mid_line).unwrap_err();
        assert_eq!(failed.accepted, 1);
        assert!(!ends_mid_line);
    }

    #[test]
    fn a_fragment_stays_pending_while_nothing_can_be_written() {
        let mut batch = EncodedBatch::default();
        batch.encode(&[AuditEntry::new("chat")]);
        let mut full = FailAfter {
            out: Vec::new(),
            limit: 0,
        };
        let mut ends_mid_line = true;
        let failed = write_lines(&mut full, &batch, 0..1, &mut ends_mid_line).unwrap_err();
        assert_eq!(failed.accepted, 0);
        assert!(
            ends_mid_line,
            "the next write must still end the fragment first"
        );
    }
}
