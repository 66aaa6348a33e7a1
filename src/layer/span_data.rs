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
    pub(crate) fn new(request_id: Uuid) -> Self {
        let trace_id = *request_id.as_bytes();
        Self {
            request_id,
            started_wall: SystemTime::now(),
            started: Instant::now(),
            latency: Duration::ZERO,
            first_chunk: None,
            fields: CallFields::default(),
            content: Content::default(),
            error_message: None,
            max_error_message_len: DEFAULT_MAX_ERROR_MESSAGE_LEN,
            sanitization: Vec::new(),
            trace_id,
            parent_span_id: None,
        }
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
        std::mem::size_of::<Self>()
            + self.content.len()
            + self.error_message.as_ref().map_or(0, String::capacity)
            + self.fields.heap_bytes()
    }
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
#[derive(Debug, Default)]
pub(crate) struct Content {
    pub(crate) system_prompt: Option<Vec<u8>>,
    pub(crate) input: Option<Vec<u8>>,
    pub(crate) output: Option<Vec<u8>>,
}

impl Content {
    fn len(&self) -> usize {
        [&self.system_prompt, &self.input, &self.output]
            .iter()
            .map(|c| c.as_ref().map_or(0, Vec::len))
            .sum()
    }
}

/// Which content a piece of bytes is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContentKind {
    SystemPrompt,
    Input,
    Output,
}

impl Content {
    /// Appends to the content of `kind`: a stream's chunks arrive one by one.
    pub(crate) fn append(&mut self, kind: ContentKind, bytes: &[u8]) {
        let slot = match kind {
            ContentKind::SystemPrompt => &mut self.system_prompt,
            ContentKind::Input => &mut self.input,
            ContentKind::Output => &mut self.output,
        };
        slot.get_or_insert_with(Vec::new).extend_from_slice(bytes);
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
    pub(crate) reasoning_tokens: Option<u64>,
    pub(crate) user_id: Option<CompactString>,
    pub(crate) session_id: Option<CompactString>,
    pub(crate) error_type: Option<CompactString>,
    pub(crate) status: Option<Status>,
    pub(crate) sanitization_count: Option<u64>,
    pub(crate) metadata: Vec<(&'static str, MetaValue)>,
    /// Content that arrived as span fields (third-party spans with the conventions' opt-in
    /// content attributes); moved into [`Content`] before the lock is taken.
    pub(crate) content: Vec<(ContentKind, String)>,
}

impl CallFields {
    /// Takes every value recorded in `newer`, keeping ours where `newer` has none.
    pub(crate) fn merge(&mut self, newer: CallFields) {
        macro_rules! take {
            ($($field:ident),*) => {$(
                if newer.$field.is_some() {
                    self.$field = newer.$field;
                }
            )*};
        }
        take!(
            operation,
            provider,
            request_model,
            response_model,
            response_id,
            finish_reasons,
            stream,
            time_to_first_chunk,
            input_tokens,
            output_tokens,
            cache_read_tokens,
            cache_write_tokens,
            reasoning_tokens,
            user_id,
            session_id,
            error_type,
            status,
            sanitization_count
        );
        for (name, value) in newer.metadata {
            match self.metadata.iter_mut().find(|(n, _)| *n == name) {
                Some((_, old)) => *old = value,
                None => self.metadata.push((name, value)),
            }
        }
        self.content.extend(newer.content);
    }

    fn heap_bytes(&self) -> usize {
        self.metadata.len() * std::mem::size_of::<(&str, MetaValue)>()
            + self
                .metadata
                .iter()
                .map(|(_, v)| match v {
                    MetaValue::Str(s) => s.len(),
                    _ => 0,
                })
                .sum::<usize>()
    }

    fn set_str(&mut self, field: &Field, value: &str) {
        let name = field.name();
        let slot = match name {
            fields::OPERATION_NAME => &mut self.operation,
            fields::PROVIDER_NAME => &mut self.provider,
            // The older name never overrides the current one.
            fields::SYSTEM => {
                if self.provider.is_none() {
                    self.provider = Some(value.into());
                }
                return;
            }
            fields::REQUEST_MODEL => &mut self.request_model,
            fields::RESPONSE_MODEL => &mut self.response_model,
            fields::RESPONSE_ID => &mut self.response_id,
            fields::USER_ID => &mut self.user_id,
            fields::ENDUSER_ID => {
                if self.user_id.is_none() {
                    self.user_id = Some(value.into());
                }
                return;
            }
            fields::SESSION_ID => &mut self.session_id,
            fields::CONVERSATION_ID => {
                if self.session_id.is_none() {
                    self.session_id = Some(value.into());
                }
                return;
            }
            fields::ERROR_TYPE => &mut self.error_type,
            fields::RESPONSE_FINISH_REASONS => {
                self.finish_reasons = Some(parse_finish_reasons(value));
                return;
            }
            fields::STATUS => {
                self.status = Status::parse(value);
                return;
            }
            fields::SYSTEM_INSTRUCTIONS => {
                self.content
                    .push((ContentKind::SystemPrompt, value.to_owned()));
                return;
            }
            fields::INPUT_MESSAGES | fields::LEGACY_PROMPT => {
                self.content.push((ContentKind::Input, value.to_owned()));
                return;
            }
            fields::OUTPUT_MESSAGES | fields::LEGACY_COMPLETION => {
                self.content.push((ContentKind::Output, value.to_owned()));
                return;
            }
            _ => {
                // Numbers that arrive as text (some crates record everything as strings).
                if let Some(slot) = self.count_slot(name) {
                    *slot = value.trim().parse().ok().or(*slot);
                } else if name == fields::REQUEST_STREAM {
                    self.stream = value.trim().parse().ok().or(self.stream);
                } else {
                    self.set_meta(field, MetaValue::Str(value.to_owned()));
                }
                return;
            }
        };
        *slot = Some(value.into());
    }

    fn count_slot(&mut self, name: &str) -> Option<&mut Option<u64>> {
        Some(match name {
            fields::USAGE_INPUT_TOKENS => &mut self.input_tokens,
            fields::USAGE_OUTPUT_TOKENS => &mut self.output_tokens,
            fields::USAGE_CACHE_READ_INPUT_TOKENS => &mut self.cache_read_tokens,
            fields::USAGE_CACHE_CREATION_INPUT_TOKENS => &mut self.cache_write_tokens,
            fields::USAGE_REASONING_OUTPUT_TOKENS => &mut self.reasoning_tokens,
            fields::SANITIZATION_COUNT => &mut self.sanitization_count,
            _ => return None,
        })
    }

    fn set_meta(&mut self, field: &Field, value: MetaValue) {
        let name = field.name();
        if is_excluded_from_metadata(name) {
            return;
        }
        match self.metadata.iter_mut().find(|(n, _)| *n == name) {
            Some((_, old)) => *old = value,
            None => self.metadata.push((name, value)),
        }
    }
}

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

impl Visit for CallFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set_str(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if let Some(slot) = self.count_slot(field.name()) {
            *slot = Some(value);
        } else if field.name() == fields::RESPONSE_TIME_TO_FIRST_CHUNK {
            // An integer here is a count of whole seconds, like the float form.
            self.time_to_first_chunk = Some(Duration::from_secs(value));
        } else {
            self.set_meta(field, MetaValue::U64(value));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        match u64::try_from(value) {
            Ok(v) => self.record_u64(field, v),
            // A negative token count is nonsense; it stays absent rather than becoming a number.
            Err(_) if self.count_slot(field.name()).is_some() => {}
            Err(_) => self.set_meta(field, MetaValue::I64(value)),
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
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
            }
        } else if field.name() != fields::USAGE_COST {
            self.set_meta(field, MetaValue::F64(value));
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if field.name() == fields::REQUEST_STREAM {
            self.stream = Some(value);
        } else {
            self.set_meta(field, MetaValue::Bool(value));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        self.set_str(field, &text);
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
            fields::ERROR_TYPE => self.error_type = Some(value.into()),
            "message" => self.message.push_str(value),
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
        let mut data = LlmSpanData::new(Uuid::now_v7());
        data.push_error_message("first", 20);
        data.push_error_message("second failure is long", 20);
        let msg = data.error_message.unwrap();
        assert!(msg.starts_with("first; second"), "{msg}");
        assert!(msg.len() <= 20);
    }
}
