//! Per-span state of an LLM span, and the visitors that fill it from span fields and events.
//!
//! Everything here runs on the application's thread, so it stays cheap: short strings are kept
//! inline (`CompactString`), content is copied but not hashed (the worker hashes it), and nothing
//! is formatted that the entry will not keep.

use std::fmt::{self, Write as _};
use std::time::{Duration, Instant, SystemTime};

use compact_str::CompactString;
use tracing_core::field::{Field, Visit};
use uuid::Uuid;

use crate::entry::Status;
use crate::fields;

/// Default bound of an entry's `error_message`, in bytes.
pub(crate) const DEFAULT_MAX_ERROR_MESSAGE_LEN: usize = 1024;

/// The recorded state of one LLM span, kept in the span's extensions (boxed, so that moving it
/// into the queue at close copies a pointer, not the struct).
#[derive(Debug)]
pub(crate) struct LlmSpan(pub(crate) Box<LlmSpanData>);

/// Everything the layer learned about one LLM call.
#[derive(Debug)]
pub(crate) struct LlmSpanData {
    pub(crate) request_id: Uuid,
    pub(crate) started_wall: SystemTime,
    pub(crate) started: Instant,
    pub(crate) latency: Duration,
    /// Measured by [`LlmSpanExt::record_first_chunk`](crate::LlmSpanExt::record_first_chunk).
    pub(crate) first_chunk: Option<Duration>,
    pub(crate) fields: CallFields,
    pub(crate) content: Content,
    pub(crate) error_message: Option<String>,
    /// The bound of `error_message`, copied from the layer's configuration.
    pub(crate) max_error_message_len: usize,
    pub(crate) sanitization: Vec<(CompactString, u64)>,
    pub(crate) trace_id: [u8; 16],
    pub(crate) parent_span_id: Option<[u8; 8]>,
}

impl LlmSpanData {
    /// State for a call starting now.
    pub(crate) fn new() -> Self {
        let started_wall = SystemTime::now();
        let request_id = request_id_at(started_wall);
        Self {
            request_id,
            started_wall,
            started: Instant::now(),
            latency: Duration::ZERO,
            first_chunk: None,
            fields: CallFields::default(),
            content: Content::default(),
            error_message: None,
            max_error_message_len: DEFAULT_MAX_ERROR_MESSAGE_LEN,
            sanitization: Vec::new(),
            trace_id: *request_id.as_bytes(),
            parent_span_id: None,
        }
    }

    /// Makes a [forgotten](Self::forget) record ready for a call starting now, keeping its
    /// buffers' capacity, so that a recycled record costs the application's thread no
    /// allocation.
    pub(crate) fn restart(&mut self) {
        // Field by field: `forget` already emptied everything that owns memory, so nothing
        // here drops or moves the whole record.
        self.started_wall = SystemTime::now();
        self.started = Instant::now();
        self.request_id = request_id_at(self.started_wall);
        self.latency = Duration::ZERO;
        self.first_chunk = None;
        self.max_error_message_len = DEFAULT_MAX_ERROR_MESSAGE_LEN;
        self.trace_id = *self.request_id.as_bytes();
        self.parent_span_id = None;
    }

    /// Drops what the record holds but keeps its buffers; runs on the worker, so that freeing
    /// never costs the application's threads.
    pub(crate) fn forget(&mut self) {
        self.fields = CallFields::default();
        self.content.clear();
        self.error_message = None;
        self.sanitization.clear();
    }

    /// The call's span id: the random tail of its request id (UUID v7 keeps 62 random bits
    /// there), so that entries correlate without OpenTelemetry in the process.
    pub(crate) fn span_id(&self) -> [u8; 8] {
        let bytes = self.request_id.as_bytes();
        let mut id = [0u8; 8];
        id.copy_from_slice(&bytes[8..]);
        id
    }

    /// Adds `message` to the bounded error message, `; `-separated.
    pub(crate) fn push_error_message(&mut self, message: &str, max_len: usize) {
        let out = self.error_message.get_or_insert_with(String::new);
        if !out.is_empty() {
            if out.len() >= max_len {
                return;
            }
            out.push_str("; ");
        }
        out.push_str(message);
        truncate_with_ellipsis(out, max_len);
    }

    pub(crate) fn add_sanitization(&mut self, entity: &str, count: u64) {
        match self
            .sanitization
            .iter_mut()
            .find(|(name, _)| name == entity)
        {
            Some((_, total)) => *total = total.saturating_add(count),
            None => self.sanitization.push((entity.into(), count)),
        }
    }

    /// A rough size of what this record holds, for the queue's byte bound.
    pub(crate) fn approx_bytes(&self) -> usize {
        self.retained_bytes()
            + self.error_message.as_ref().map_or(0, String::capacity)
            + self.fields.heap_bytes()
    }

    /// The bytes a [forgotten](Self::forget) record still holds: itself and the buffers it
    /// keeps for reuse. Also part of [`approx_bytes`](Self::approx_bytes).
    pub(crate) fn retained_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.content.capacity()
            + self.sanitization.capacity() * std::mem::size_of::<(CompactString, u64)>()
    }
}

/// A UUID v7 for a call that started at `wall`: 48 bits of Unix milliseconds, then the
/// sub-millisecond fraction in the 12 bits of `rand_a` (RFC 9562, section 6.2, method 3), so
/// that ids made one after another sort in order, then 62 random bits.
///
/// Cheaper than `Uuid::now_v7`, which reads the clock again and takes a process-wide lock.
pub(crate) fn request_id_at(wall: SystemTime) -> Uuid {
    let since_epoch = wall
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let millis = u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX);
    let fraction = (u64::from(since_epoch.subsec_nanos() % 1_000_000) * 4096 / 1_000_000) as u16;
    let random = fast_random();
    let mut tail = [0u8; 10];
    tail[..2].copy_from_slice(&fraction.to_be_bytes());
    tail[2..].copy_from_slice(&random.to_be_bytes());
    uuid::Builder::from_unix_timestamp_millis(millis, &tail).into_uuid()
}

/// A per-thread wyrand generator seeded from the OS: ids need unpredictability across
/// processes, not cryptographic strength, and must not cost a system call each.
fn fast_random() -> u64 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            let mut seed = [0u8; 8];
            // Without the OS source, fall back to the clock and the thread: still unique.
            if getrandom::getrandom(&mut seed).is_err() {
                let nanos = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64);
                seed = (nanos ^ (&seed as *const _ as u64)).to_le_bytes();
            }
            u64::from_le_bytes(seed)
        });
    }
    STATE.with(|state| {
        let next = state.get().wrapping_add(0xa076_1d64_78bd_642f);
        state.set(next);
        let product = u128::from(next) * u128::from(next ^ 0xe703_7ed1_a0b4_28db);
        (product as u64) ^ ((product >> 64) as u64)
    })
}

/// Cuts `s` to at most `max_len` bytes on a character boundary, ending it with `…` when cut.
pub(crate) fn truncate_with_ellipsis(s: &mut String, max_len: usize) {
    const ELLIPSIS: &str = "…";
    if s.len() <= max_len {
        return;
    }
    let mut cut = max_len.saturating_sub(ELLIPSIS.len());
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.truncate(cut);
    s.push_str(ELLIPSIS);
}

/// Raw content handed to the layer; hashed by the worker, never exported as span fields.
///
/// A buffer's `Option` says whether that content was recorded at all (empty content is
/// content); the buffers themselves are kept across recycling.
#[derive(Debug, Default)]
pub(crate) struct Content {
    pub(crate) system_prompt: Option<Vec<u8>>,
    pub(crate) input: Option<Vec<u8>>,
    pub(crate) output: Option<Vec<u8>>,
    spare: Vec<Vec<u8>>,
}

/// Which content a piece of bytes is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContentKind {
    SystemPrompt,
    Input,
    Output,
}

/// Buffers larger than this are not kept for reuse, so that one huge prompt does not pin its
/// memory for the life of the process.
const MAX_KEPT_BUFFER: usize = 16 * 1024;

impl Content {
    /// The bytes of every buffer, those kept for reuse included.
    fn capacity(&self) -> usize {
        [&self.system_prompt, &self.input, &self.output]
            .into_iter()
            .flatten()
            .chain(&self.spare)
            .map(Vec::capacity)
            .sum::<usize>()
            + self.spare.capacity() * std::mem::size_of::<Vec<u8>>()
    }

    /// Appends to the content of `kind`: a stream's chunks arrive one by one.
    pub(crate) fn append(&mut self, kind: ContentKind, bytes: &[u8]) {
        let slot = match kind {
            ContentKind::SystemPrompt => &mut self.system_prompt,
            ContentKind::Input => &mut self.input,
            ContentKind::Output => &mut self.output,
        };
        slot.get_or_insert_with(|| self.spare.pop().unwrap_or_default())
            .extend_from_slice(bytes);
    }

    /// Forgets all content, keeping reasonably sized buffers for the next call.
    pub(crate) fn clear(&mut self) {
        for slot in [&mut self.system_prompt, &mut self.input, &mut self.output] {
            if let Some(mut buffer) = slot.take() {
                if buffer.capacity() <= MAX_KEPT_BUFFER {
                    buffer.clear();
                    self.spare.push(buffer);
                }
            }
        }
    }
}

/// A field value kept in the entry's `metadata`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MetaValue {
    Str(String),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
}

/// The span fields of an LLM call, as recorded so far. Every field is optional: what was not
/// recorded stays absent.
#[derive(Debug, Default)]
pub(crate) struct CallFields {
    pub(crate) operation: Option<CompactString>,
    pub(crate) provider: Option<CompactString>,
    pub(crate) request_model: Option<CompactString>,
    pub(crate) response_model: Option<CompactString>,
    pub(crate) response_id: Option<CompactString>,
    pub(crate) finish_reasons: Option<Vec<CompactString>>,
    pub(crate) stream: Option<bool>,
    pub(crate) time_to_first_chunk: Option<Duration>,
    pub(crate) input_tokens: Option<u64>,
    pub(crate) output_tokens: Option<u64>,
    pub(crate) cache_read_tokens: Option<u64>,
    pub(crate) cache_write_tokens: Option<u64>,
    pub(crate) cache_write_1h_tokens: Option<u64>,
    pub(crate) reasoning_tokens: Option<u64>,
    pub(crate) service_tier: Option<CompactString>,
    pub(crate) user_id: Option<CompactString>,
    pub(crate) session_id: Option<CompactString>,
    /// The user and the session came from an enclosing span: any value of the span's own,
    /// older field names included, replaces them.
    pub(crate) user_inherited: bool,
    pub(crate) session_inherited: bool,
    /// The span said it failed the OpenTelemetry way (`otel.status_code = "ERROR"`), with this
    /// description (`otel.status_description` or `error.message`), if any.
    pub(crate) otel_error: bool,
    pub(crate) status_description: Option<String>,
    pub(crate) error_type: Option<CompactString>,
    pub(crate) status: Option<Status>,
    pub(crate) sanitization_count: Option<u64>,
    pub(crate) metadata: Vec<(&'static str, MetaValue)>,
    /// Values that could not be taken as they were (a negative token count), described for
    /// the entry's `llm_audit.problems`.
    pub(crate) problems: Vec<String>,
}

impl CallFields {
    /// The heap bytes the fields own (what the allocator was asked for).
    fn heap_bytes(&self) -> usize {
        fn text(s: &CompactString) -> usize {
            if s.is_heap_allocated() {
                s.capacity()
            } else {
                0
            }
        }
        [
            &self.operation,
            &self.provider,
            &self.request_model,
            &self.response_model,
            &self.response_id,
            &self.user_id,
            &self.session_id,
            &self.error_type,
        ]
        .into_iter()
        .flatten()
        .map(text)
        .sum::<usize>()
            + self.finish_reasons.as_ref().map_or(0, |reasons| {
                reasons.capacity() * std::mem::size_of::<CompactString>()
                    + reasons.iter().map(text).sum::<usize>()
            })
            + self.problems.capacity() * std::mem::size_of::<String>()
            + self.problems.iter().map(String::capacity).sum::<usize>()
            + self.metadata.capacity() * std::mem::size_of::<(&str, MetaValue)>()
            + self
                .metadata
                .iter()
                .map(|(_, v)| match v {
                    MetaValue::Str(s) => s.capacity(),
                    _ => 0,
                })
                .sum::<usize>()
    }

    /// Records a text value; returns the kind of content when the field carries content, which
    /// the caller keeps as content rather than as a field.
    fn set_str(&mut self, field: &Field, value: &str) -> Option<ContentKind> {
        let name = field.name();
        let slot = match name {
            fields::OPERATION_NAME => &mut self.operation,
            fields::PROVIDER_NAME => &mut self.provider,
            // The older name never overrides the current one.
            fields::SYSTEM => {
                if self.provider.is_none() {
                    self.provider = Some(value.into());
                }
                return None;
            }
            fields::REQUEST_MODEL => &mut self.request_model,
            fields::RESPONSE_MODEL => &mut self.response_model,
            fields::RESPONSE_ID => &mut self.response_id,
            fields::RESPONSE_SERVICE_TIER => &mut self.service_tier,
            _ if fields::SERVICE_TIER_ALIASES.contains(&name) => {
                // Our own field wins over the others' names.
                if self.service_tier.is_none() {
                    self.service_tier = Some(value.into());
                }
                return None;
            }
            fields::USER_ID => {
                self.user_inherited = false;
                &mut self.user_id
            }
            fields::ENDUSER_ID => {
                if self.user_id.is_none() || self.user_inherited {
                    self.user_id = Some(value.into());
                    self.user_inherited = false;
                }
                return None;
            }
            fields::SESSION_ID => {
                self.session_inherited = false;
                &mut self.session_id
            }
            fields::CONVERSATION_ID => {
                if self.session_id.is_none() || self.session_inherited {
                    self.session_id = Some(value.into());
                    self.session_inherited = false;
                }
                return None;
            }
            fields::ERROR_TYPE => &mut self.error_type,
            "otel.status_code" => {
                self.otel_error |= value.trim().eq_ignore_ascii_case("error");
                return None;
            }
            "otel.status_description" | "error.message" => {
                let mut text = value.to_owned();
                truncate_with_ellipsis(&mut text, 8 * 1024);
                self.status_description = Some(text);
                // A message of an error is an error; a description counts with an ERROR code.
                self.otel_error |= name == "error.message";
                return None;
            }
            fields::RESPONSE_FINISH_REASONS => {
                self.finish_reasons = Some(parse_finish_reasons(value));
                return None;
            }
            fields::STATUS => {
                self.status = Status::parse(value);
                return None;
            }
            fields::SYSTEM_INSTRUCTIONS => return Some(ContentKind::SystemPrompt),
            fields::INPUT_MESSAGES | fields::LEGACY_PROMPT => return Some(ContentKind::Input),
            fields::OUTPUT_MESSAGES | fields::LEGACY_COMPLETION => {
                return Some(ContentKind::Output)
            }
            _ => {
                // Numbers that arrive as text (some crates record everything as strings).
                if self.count_slot(name).is_some() {
                    match value.trim().parse::<u64>() {
                        Ok(n) => *self.count_slot(name).expect("a count slot") = Some(n),
                        Err(_) => self.not_a_count(name, &format_args!("{value:?}")),
                    }
                } else if name == fields::REQUEST_STREAM {
                    self.stream = value.trim().parse().ok().or(self.stream);
                } else {
                    self.set_meta(field, MetaValue::Str(value.to_owned()));
                }
                return None;
            }
        };
        *slot = Some(value.into());
        None
    }

    /// A value recorded as a count that is none (negative, fractional, NaN, text): left out,
    /// and said in the entry's `llm_audit.problems`.
    fn not_a_count(&mut self, name: &str, value: &dyn fmt::Display) {
        if self.problems.len() < 16 {
            let mut shown = value.to_string();
            crate::layer::span_data::truncate_with_ellipsis(&mut shown, 40);
            self.problems
                .push(format!("{name}: {shown} is not a count; left out"));
        }
    }

    /// The count a field feeds: the GenAI conventions' names, and the other spellings in use
    /// (see [`fields::USAGE_ALIASES`]).
    fn count_slot(&mut self, name: &str) -> Option<&mut Option<u64>> {
        Some(match name {
            fields::USAGE_INPUT_TOKENS
            | "gen_ai.usage.prompt_tokens"
            | "llm.token_count.prompt" => &mut self.input_tokens,
            fields::USAGE_OUTPUT_TOKENS
            | "gen_ai.usage.completion_tokens"
            | "llm.token_count.completion" => &mut self.output_tokens,
            fields::USAGE_CACHE_READ_INPUT_TOKENS
            | "gen_ai.usage.cache_read_input_tokens"
            | "gen_ai.usage.input_tokens.cached"
            | "llm.token_count.prompt_details.cache_read" => &mut self.cache_read_tokens,
            fields::USAGE_CACHE_CREATION_INPUT_TOKENS
            | "gen_ai.usage.cache_write.input_tokens"
            | "gen_ai.usage.cache_creation_input_tokens"
            | "gen_ai.usage.input_tokens.cache_write"
            | "llm.token_count.prompt_details.cache_write" => &mut self.cache_write_tokens,
            fields::USAGE_CACHE_WRITE_1H_INPUT_TOKENS => &mut self.cache_write_1h_tokens,
            fields::USAGE_REASONING_OUTPUT_TOKENS
            | "gen_ai.usage.reasoning_tokens"
            | "gen_ai.usage.output_tokens.reasoning"
            | "llm.token_count.completion_details.reasoning" => &mut self.reasoning_tokens,
            fields::SANITIZATION_COUNT => &mut self.sanitization_count,
            _ => return None,
        })
    }

    /// Whether `metadata` has a value for `name`.
    pub(crate) fn has_meta(&self, name: &str) -> bool {
        self.metadata.iter().any(|(n, _)| *n == name)
    }

    /// Sets `name` in `metadata` to a value an enclosing span gave, unless the span has one.
    pub(crate) fn inherit_meta(&mut self, name: &'static str, value: &str) {
        if !self.has_meta(name) {
            self.metadata.push((name, MetaValue::Str(value.to_owned())));
        }
    }

    fn set_meta(&mut self, field: &Field, value: MetaValue) {
        let name = field.name();
        if is_excluded_from_metadata(name) {
            return;
        }
        // The layer's own notes: an application's field of that name would forge them.
        if RESERVED_METADATA.contains(&name) {
            if self.problems.len() < 16 {
                self.problems.push(format!(
                    "{name}: a field of the application may not write the audit layer's own \
                     metadata key; left out"
                ));
            }
            return;
        }
        match self.metadata.iter_mut().find(|(n, _)| *n == name) {
            Some((_, old)) => *old = value,
            None => self.metadata.push((name, value)),
        }
    }
}

/// Metadata keys the layer writes itself, which no span field may write.
pub(crate) const RESERVED_METADATA: &[&str] = &[
    "llm_audit.truncated",
    "llm_audit.problems",
    "llm_audit.content_error",
];

/// Fields that never go into `metadata`: the layer's own output, OpenTelemetry's control
/// fields, and content-bearing attributes that are not hashed (tool arguments and results).
fn is_excluded_from_metadata(name: &str) -> bool {
    name.starts_with("otel.")
        || name == fields::USAGE_COST
        || name == "gen_ai.tool.call.arguments"
        || name == "gen_ai.tool.call.result"
}

/// Accepts a JSON array of strings (`["stop"]`) or a comma-separated list (`stop,length`).
fn parse_finish_reasons(value: &str) -> Vec<CompactString> {
    let trimmed = value.trim();
    if trimmed.starts_with('[') {
        if let Ok(list) = serde_json::from_str::<Vec<String>>(trimmed) {
            return list.into_iter().map(CompactString::from).collect();
        }
    }
    trimmed
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(CompactString::from)
        .collect()
}

/// Field values go straight into the call's record. `on_record` does this under the span's
/// own extensions lock: only another thread recording on the same span at the same instant
/// could wait on it, and visiting into a separate value first would cost every call a copy of
/// the whole record.
impl Visit for LlmSpanData {
    fn record_str(&mut self, field: &Field, value: &str) {
        if let Some(kind) = self.fields.set_str(field, value) {
            self.content.append(kind, value.as_bytes());
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.fields.set_u64(field, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        match u64::try_from(value) {
            Ok(v) => self.fields.set_u64(field, v),
            // A negative token count is nonsense: it stays absent rather than becoming a number,
            // and the entry says so.
            Err(_) if self.fields.count_slot(field.name()).is_some() => {
                if self.fields.problems.len() < 16 {
                    self.fields.problems.push(format!(
                        "{}: {value} is not a count; left out",
                        field.name()
                    ));
                }
            }
            Err(_) => self.fields.set_meta(field, MetaValue::I64(value)),
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.fields.set_f64(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if field.name() == fields::REQUEST_STREAM {
            self.fields.stream = Some(value);
        } else {
            self.fields.set_meta(field, MetaValue::Bool(value));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        self.record_str(field, &text);
    }
}

impl CallFields {
    fn set_u64(&mut self, field: &Field, value: u64) {
        if let Some(slot) = self.count_slot(field.name()) {
            *slot = Some(value);
        } else if field.name() == fields::RESPONSE_TIME_TO_FIRST_CHUNK {
            // An integer here is a count of whole seconds, like the float form.
            self.time_to_first_chunk = Some(Duration::from_secs(value));
        } else {
            self.set_meta(field, MetaValue::U64(value));
        }
    }

    fn set_f64(&mut self, field: &Field, value: f64) {
        if field.name() == fields::RESPONSE_TIME_TO_FIRST_CHUNK {
            // Rounded to microseconds: 0.001 s must come out as 1 ms, not 0.999… ms.
            let micros = (value * 1e6).round();
            if micros.is_finite() && micros >= 0.0 && micros < u64::MAX as f64 {
                self.time_to_first_chunk = Some(Duration::from_micros(micros as u64));
            }
        } else if let Some(slot) = self.count_slot(field.name()) {
            // Whole, non-negative floats are token counts recorded by a sloppy producer.
            if value >= 0.0 && value.fract() == 0.0 && value < u64::MAX as f64 {
                *slot = Some(value as u64);
            } else {
                self.not_a_count(field.name(), &value);
            }
        } else if field.name() != fields::USAGE_COST {
            self.set_meta(field, MetaValue::F64(value));
        }
    }
}

/// Collects an error event: its message and `error.type`.
#[derive(Debug, Default)]
pub(crate) struct ErrorEvent {
    pub(crate) message: String,
    pub(crate) error_type: Option<CompactString>,
}

impl Visit for ErrorEvent {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            // OpenTelemetry's exception event names the same things.
            fields::ERROR_TYPE | "exception.type" => self.error_type = Some(value.into()),
            "message" | "exception.message" => {
                if !self.message.is_empty() {
                    self.message.push_str(": ");
                }
                self.message.push_str(value);
            }
            name => self.push_pair(name, value),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            fields::ERROR_TYPE => {
                self.error_type = Some(compact_str::format_compact!("{value:?}"));
            }
            name => {
                let mut text = String::new();
                let _ = write!(text, "{value:?}");
                self.push_pair(name, &text);
            }
        }
    }
}

impl ErrorEvent {
    fn push_pair(&mut self, name: &str, value: &str) {
        if !self.message.is_empty() {
            self.message.push(' ');
        }
        let _ = write!(self.message, "{name}={value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_v7_with_the_call_time_and_ordered_within_a_millisecond() {
        let wall = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_764_000_000_123_456_789);
        let id = request_id_at(wall);
        assert_eq!(id.get_version_num(), 7);
        let (secs, nanos) = id.get_timestamp().unwrap().to_unix();
        assert_eq!((secs, nanos / 1_000_000), (1_764_000_000, 123));
        let later = request_id_at(wall + Duration::from_micros(300));
        assert!(later > id, "sub-millisecond precision orders ids");
        assert_ne!(request_id_at(wall), id, "the random tail differs");
    }

    #[test]
    fn a_restarted_record_keeps_buffers_but_no_data() {
        let mut data = LlmSpanData::new();
        let first_id = data.request_id;
        data.content.append(ContentKind::Input, b"hello");
        data.fields.input_tokens = Some(3);
        data.error_message = Some("boom".into());
        data.add_sanitization("email", 1);
        data.forget();
        data.restart();
        assert_ne!(data.request_id, first_id);
        assert!(data.content.input.is_none());
        assert!(data.fields.input_tokens.is_none());
        assert!(data.error_message.is_none());
        assert!(data.sanitization.is_empty());
        assert_eq!(
            data.content.spare.len(),
            1,
            "the input buffer is kept for reuse"
        );
    }

    #[test]
    fn finish_reasons_accept_json_and_lists() {
        assert_eq!(
            parse_finish_reasons(r#"["stop","length"]"#),
            ["stop", "length"]
        );
        assert_eq!(
            parse_finish_reasons("stop, tool_calls"),
            ["stop", "tool_calls"]
        );
        assert!(parse_finish_reasons("").is_empty());
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        let mut s = "ééééé".to_owned(); // 10 bytes
        truncate_with_ellipsis(&mut s, 6);
        assert!(s.len() <= 6, "{s}");
        assert!(s.ends_with('…'));
        let mut short = "ok".to_owned();
        truncate_with_ellipsis(&mut short, 6);
        assert_eq!(short, "ok");
    }

    #[test]
    fn error_messages_are_joined_and_bounded() {
        let mut data = LlmSpanData::new();
        data.push_error_message("first", 20);
        data.push_error_message("second failure is long", 20);
        let msg = data.error_message.unwrap();
        assert!(msg.starts_with("first; second"), "{msg}");
        assert!(msg.len() <= 20);
    }
}
