//! Encodes an `ExportLogsServiceRequest` straight from audit entries into protobuf bytes.
//!
//! Building the request as `opentelemetry-proto` structs first cost about 35 allocations per
//! record (a `String` for every attribute key and value, a `Vec` per record) and a second walk
//! of the tree to compute nested lengths; dropping it cost as much again. This encoder writes
//! the same message, field for field and in prost's order (by field number), into buffers it reuses from
//! batch to batch. The unit tests check that its bytes equal prost's encoding of the request
//! the sink used to build.

use std::fmt::Write as _;

use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;

use crate::entry::{AuditEntry, Status};
use crate::names;

/// Protobuf wire types.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;

/// A reusable encoder of log export requests.
#[derive(Debug)]
pub(crate) struct RequestEncoder {
    /// `ResourceLogs.resource` (field 1), tag and length included: the same for every request.
    resource: Vec<u8>,
    /// `ScopeLogs.scope` (field 1), tag and length included.
    scope: Vec<u8>,
    /// One record being encoded.
    record: Vec<u8>,
    /// A JSON or text value being formatted (body, metadata, cost).
    text: Vec<u8>,
    /// A sanitization attribute's key, or the cost as text.
    key: String,
    /// Room left at the front of the request buffer for the envelope (the resource, the scope
    /// and the `ResourceLogs` and `ScopeLogs` tags and lengths, written once the records'
    /// length is known): two tags and two varints of at most ten bytes each.
    headroom: usize,
}

impl RequestEncoder {
    pub(crate) fn new(resource: &Resource) -> Self {
        let scope = InstrumentationScope {
            name: names::SCOPE_NAME.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            ..InstrumentationScope::default()
        };
        let mut resource_field = Vec::new();
        prost::encoding::message::encode(1, resource, &mut resource_field);
        let mut scope_field = Vec::new();
        prost::encoding::message::encode(1, &scope, &mut scope_field);
        Self {
            headroom: resource_field.len() + scope_field.len() + 2 * (1 + 10),
            resource: resource_field,
            scope: scope_field,
            record: Vec::with_capacity(4096),
            text: Vec::with_capacity(4096),
            key: String::new(),
        }
    }

    /// Encodes the request for `entries` observed at `observed` (Unix nanoseconds) into `out`
    /// (cleared first) and returns where the message starts in it: `out[start..]` is the whole
    /// `ExportLogsServiceRequest`.
    #[cfg(test)]
    pub(crate) fn encode(
        &mut self,
        entries: &[AuditEntry],
        observed: u64,
        out: &mut Vec<u8>,
    ) -> usize {
        self.encode_front(entries, observed, out, usize::MAX).0
    }

    /// Encodes a request for the front of `entries`, as [`encode`](Self::encode) does, with as
    /// many entries as fit in `max_records_len` bytes of records (a record with its tag and
    /// length). The first record goes in whatever its size. Returns where the message starts in
    /// `out` and how many entries it holds.
    pub(crate) fn encode_front(
        &mut self,
        entries: &[AuditEntry],
        observed: u64,
        out: &mut Vec<u8>,
        max_records_len: usize,
    ) -> (usize, usize) {
        out.clear();
        out.resize(self.headroom, 0);
        let mut taken = 0;
        for entry in entries {
            self.record.clear();
            self.log_record(entry, observed);
            let field_len = 1 + varint_len(self.record.len() as u64) + self.record.len();
            // Left for the next request, which encodes it again: one record encoded twice a
            // request.
            if taken > 0 && out.len() - self.headroom + field_len > max_records_len {
                break;
            }
            // ScopeLogs.log_records (field 2).
            put_bytes_field(out, 2, &self.record);
            taken += 1;
        }
        let records_len = out.len() - self.headroom;
        // ScopeLogs: scope, then the records already in `out`.
        let scope_logs_len = self.scope.len() + records_len;
        // ResourceLogs: resource, then ScopeLogs (field 2).
        let resource_logs_len =
            self.resource.len() + 1 + varint_len(scope_logs_len as u64) + scope_logs_len;
        let mut head = Vec::with_capacity(self.headroom);
        // ExportLogsServiceRequest.resource_logs (field 1).
        put_tag(&mut head, 1, LEN);
        put_varint(&mut head, resource_logs_len as u64);
        head.extend_from_slice(&self.resource);
        put_tag(&mut head, 2, LEN);
        put_varint(&mut head, scope_logs_len as u64);
        let head_len = head.len() + self.scope.len();
        let start = self.headroom - head_len;
        out[start..start + head.len()].copy_from_slice(&head);
        out[start + head.len()..self.headroom].copy_from_slice(&self.scope);
        (start, taken)
    }

    /// One `LogRecord`, its fields in prost's order (by field number), into `self.record`.
    fn log_record(&mut self, entry: &AuditEntry, observed: u64) {
        let timestamp = entry.timestamp.unix_timestamp_nanos();
        let time = u64::try_from(timestamp).unwrap_or(if timestamp < 0 { 0 } else { u64::MAX });
        let (severity, severity_text) = match entry.status {
            Status::Success => (9_u64, "INFO"),
            Status::Blocked => (13, "WARN"),
            Status::Error => (17, "ERROR"),
        };
        let record = &mut self.record;
        if time != 0 {
            put_tag(record, 1, FIXED64);
            record.extend_from_slice(&time.to_le_bytes());
        }
        put_tag(record, 2, VARINT);
        put_varint(record, severity);
        put_string_field(record, 3, severity_text.as_bytes());

        // Body (field 5): AnyValue { string_value: the entry's JSON line }, as the JSONL sink
        // writes it (serde's bytes, with line-breaking characters escaped), without its newline.
        self.text.clear();
        if crate::sink::line::write_entry_line(&mut self.text, entry).is_ok() {
            self.text.pop();
        }
        let body_len = 1 + varint_len(self.text.len() as u64) + self.text.len();
        put_tag(record, 5, LEN);
        put_varint(record, body_len as u64);
        put_bytes_field(record, 1, &self.text);

        // Attributes (field 6), in the order the sink has always sent them.
        for (key, v) in [
            (names::USER_ID, &entry.user_id),
            (names::SESSION_ID, &entry.session_id),
            (names::PROVIDER_NAME, &entry.provider),
            (names::REQUEST_MODEL, &entry.model),
            (names::RESPONSE_MODEL, &entry.response_model),
            (names::RESPONSE_ID, &entry.response_id),
            (names::SYSTEM_PROMPT_HASH, &entry.system_prompt_hash),
            (names::INPUT_HASH, &entry.input_hash),
            (names::OUTPUT_HASH, &entry.output_hash),
            (names::HASH_KEY_ID, &entry.hash_key_id),
            (names::COST_NOTE, &entry.cost_note),
            (names::ERROR_TYPE, &entry.error_type),
            (names::ERROR_MESSAGE, &entry.error_message),
            (names::PARENT_SPAN_ID, &entry.parent_span_id),
        ] {
            if let Some(v) = v {
                put_string_attribute(record, key, v.as_bytes());
            }
        }
        let mut uuid = uuid::Uuid::encode_buffer();
        let request_id = entry.request_id.hyphenated().encode_lower(&mut uuid);
        put_string_attribute(record, names::REQUEST_ID, request_id.as_bytes());
        put_int_attribute(
            record,
            names::SCHEMA_VERSION,
            u64::from(entry.schema_version),
        );
        put_string_attribute(record, names::OPERATION_NAME, entry.action.as_bytes());
        put_string_attribute(record, names::STATUS, entry.status.as_str().as_bytes());
        if let Some(reasons) = &entry.finish_reasons {
            // AnyValue { array_value (5): ArrayValue { values (1): AnyValue { string (1) } } }
            let array_len: usize = reasons
                .iter()
                .map(|r| {
                    let any = string_any_len(r.len());
                    1 + varint_len(any as u64) + any
                })
                .sum();
            let any_len = 1 + varint_len(array_len as u64) + array_len;
            put_key_value_head(record, names::RESPONSE_FINISH_REASONS, any_len);
            put_tag(record, 5, LEN);
            put_varint(record, array_len as u64);
            for reason in reasons {
                put_tag(record, 1, LEN);
                put_varint(record, string_any_len(reason.len()) as u64);
                put_bytes_field(record, 1, reason.as_bytes());
            }
        }
        if let Some(stream) = entry.streaming {
            put_key_value_head(record, names::REQUEST_STREAM, 2);
            put_tag(record, 2, VARINT);
            record.push(u8::from(stream));
        }
        for (key, tokens) in [
            (names::USAGE_INPUT_TOKENS, entry.input_tokens),
            (names::USAGE_OUTPUT_TOKENS, entry.output_tokens),
            (names::USAGE_REASONING_OUTPUT_TOKENS, entry.thinking_tokens),
            (
                names::USAGE_CACHE_READ_INPUT_TOKENS,
                entry.cache_read_tokens,
            ),
            (
                names::USAGE_CACHE_CREATION_INPUT_TOKENS,
                entry.cache_write_tokens,
            ),
        ] {
            if let Some(tokens) = tokens {
                put_int_attribute(record, key, tokens);
            }
        }
        put_int_attribute(record, names::LATENCY_MS, entry.latency_ms);
        if let Some(ttfc) = entry.time_to_first_chunk_ms {
            #[allow(clippy::cast_precision_loss)] // milliseconds fit a double exactly
            let seconds = ttfc as f64 / 1000.0;
            put_key_value_head(record, names::RESPONSE_TIME_TO_FIRST_CHUNK, 9);
            put_tag(record, 4, FIXED64);
            record.extend_from_slice(&seconds.to_bits().to_le_bytes());
        }
        if let Some(cost) = entry.cost_usd {
            // A string: the exact decimal, as in the entry.
            self.key.clear();
            let _ = write!(self.key, "{cost}");
            put_string_attribute(record, names::USAGE_COST, self.key.as_bytes());
        }
        put_int_attribute(record, names::SANITIZATION_COUNT, entry.sanitization_count);
        for (entity, count) in &entry.sanitization {
            self.key.clear();
            self.key.push_str(names::SANITIZATION_PREFIX);
            self.key.push_str(entity);
            put_int_attribute(record, &self.key, *count);
        }
        if let Some(metadata) = &entry.metadata {
            self.text.clear();
            if serde_json::to_writer(&mut self.text, metadata).is_err() {
                self.text.clear();
            }
            put_string_attribute(record, names::METADATA, &self.text);
        }

        // trace_id (9) and span_id (10): the hex ids as bytes, when they are valid.
        for (field, id, len) in [(9, &entry.trace_id, 16), (10, &entry.span_id, 8)] {
            let mut bytes = [0_u8; 16];
            if let Some(hex) = id.as_deref() {
                if hex.len() == 2 * len && hex::decode_to_slice(hex, &mut bytes[..len]).is_ok() {
                    put_bytes_field(record, field, &bytes[..len]);
                }
            }
        }
        if observed != 0 {
            put_tag(record, 11, FIXED64);
            record.extend_from_slice(&observed.to_le_bytes());
        }
        put_string_field(record, 12, names::EVENT_NAME.as_bytes());
    }
}

/// The encoded length of `AnyValue { string_value }` for a string of `len` bytes.
fn string_any_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

/// `LogRecord.attributes` (field 6) tag and length, and `KeyValue.key`, leaving the
/// `KeyValue.value` (field 2) tag and length written: the caller writes the `AnyValue`'s
/// `any_len` bytes.
fn put_key_value_head(out: &mut Vec<u8>, key: &str, any_len: usize) {
    let key_field = if key.is_empty() {
        0
    } else {
        1 + varint_len(key.len() as u64) + key.len()
    };
    let kv_len = key_field + 1 + varint_len(any_len as u64) + any_len;
    put_tag(out, 6, LEN);
    put_varint(out, kv_len as u64);
    if !key.is_empty() {
        put_bytes_field(out, 1, key.as_bytes());
    }
    put_tag(out, 2, LEN);
    put_varint(out, any_len as u64);
}

fn put_string_attribute(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    put_key_value_head(out, key, string_any_len(value.len()));
    // A string in a oneof is written even when empty, as prost does.
    put_bytes_field(out, 1, value);
}

/// An `int_value` attribute; counts beyond `i64::MAX` are sent as `i64::MAX`.
fn put_int_attribute(out: &mut Vec<u8>, key: &str, n: u64) {
    let n = n.min(i64::MAX as u64);
    put_key_value_head(out, key, 1 + varint_len(n));
    put_tag(out, 3, VARINT);
    put_varint(out, n);
}

fn put_tag(out: &mut Vec<u8>, field: u32, wire_type: u8) {
    put_varint(out, u64::from(field << 3 | u32::from(wire_type)));
}

/// A string or bytes field of proto3: omitted when empty, as prost does.
fn put_string_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    if !bytes.is_empty() {
        put_bytes_field(out, field, bytes);
    }
}

/// A length-delimited field (an embedded message, a oneof member), written even when empty.
fn put_bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_tag(out, field, LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        #[allow(clippy::cast_possible_truncation)] // the low seven bits
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    #[allow(clippy::cast_possible_truncation)] // below 0x80
    out.push(n as u8);
}

fn varint_len(n: u64) -> usize {
    prost::encoding::encoded_len_varint(n)
}

/// The resource's attributes as protobuf key-values (for [`RequestEncoder::new`]).
pub(crate) fn string_key_value(key: String, value: String) -> KeyValue {
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
    KeyValue {
        key,
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        ..KeyValue::default()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use prost::Message as _;
    use rust_decimal::Decimal;

    use super::*;
    use crate::otlp::logs::tests::reference_request;

    fn resource(extra: usize) -> Resource {
        let mut attributes = vec![string_key_value(
            "service.name".to_owned(),
            "checkout".to_owned(),
        )];
        for i in 0..extra {
            attributes.push(string_key_value(format!("attr.{i}"), "x".repeat(i * 37)));
        }
        Resource {
            attributes,
            ..Resource::default()
        }
    }

    fn entries() -> Vec<AuditEntry> {
        let mut full = AuditEntry::new("chat");
        full.user_id = Some("alice".to_owned());
        full.session_id = Some(String::new());
        full.provider = Some("anthropic".to_owned());
        full.model = Some("claude".to_owned());
        full.response_model = Some("claude-1".to_owned());
        full.response_id = Some("msg_1".to_owned());
        full.finish_reasons = Some(vec!["stop".to_owned(), String::new(), "é".repeat(100)]);
        full.streaming = Some(false);
        full.input_tokens = Some(0);
        full.output_tokens = Some(u64::MAX);
        full.thinking_tokens = Some(300);
        full.cache_read_tokens = Some(1 << 40);
        full.cache_write_tokens = Some(5);
        full.time_to_first_chunk_ms = Some(0);
        full.cost_usd = Some(Decimal::new(123_456_789, 9));
        full.cost_note = Some("note".to_owned());
        full.status = Status::Error;
        full.error_type = Some("Timeout".to_owned());
        full.error_message = Some("x".repeat(300));
        full.sanitization_count = 3;
        full.sanitization = BTreeMap::from([("email".to_owned(), 2), ("phone".to_owned(), 1)]);
        full.trace_id = Some("0af7651916cd43dd8448eb211c80319c".to_owned());
        full.span_id = Some("B7AD6B7169203331".to_owned());
        full.parent_span_id = Some("00f067aa0ba902b7".to_owned());
        let mut metadata = serde_json::Map::new();
        metadata.insert(
            "tenant".to_owned(),
            serde_json::json!({"id": 7, "tags": ["a"]}),
        );
        full.metadata = Some(metadata);

        let mut blocked = full.clone();
        blocked.status = Status::Blocked;
        blocked.streaming = Some(true);
        blocked.time_to_first_chunk_ms = Some(1234);
        blocked.trace_id = Some("not hex".to_owned());
        blocked.span_id = Some("b7ad6b71692033".to_owned());
        blocked.finish_reasons = Some(Vec::new());
        blocked.metadata = Some(serde_json::Map::new());

        let mut bare = AuditEntry::new("chat");
        bare.timestamp = time::OffsetDateTime::UNIX_EPOCH - time::Duration::seconds(5);
        bare.action = String::new();
        vec![AuditEntry::new("chat"), full, blocked, bare]
    }

    #[test]
    fn the_bytes_equal_prost_encoding_of_the_reference_request() {
        let observed = 1_764_000_000_123_456_789;
        for extra in [0, 1, 8] {
            let resource = resource(extra);
            let mut encoder = RequestEncoder::new(&resource);
            let mut out = Vec::new();
            for batch in [&entries()[..], &entries()[1..2], &[]] {
                let start = encoder.encode(batch, observed, &mut out);
                let expected = reference_request(&resource, batch, observed).encode_to_vec();
                assert_same(&out[start..], &expected, extra);
            }
            // Observed time 0 is omitted, as prost omits it.
            let all = entries();
            let start = encoder.encode(&all, 0, &mut out);
            let expected = reference_request(&resource, &all, 0).encode_to_vec();
            assert_same(&out[start..], &expected, extra);
        }
    }

    /// The length of a request's records alone (each with its tag and length), from prost.
    fn records_len(request: &ExportLogsServiceRequest) -> Vec<usize> {
        request.resource_logs[0].scope_logs[0]
            .log_records
            .iter()
            .map(|r| {
                let len = r.encoded_len();
                1 + varint_len(len as u64) + len
            })
            .collect()
    }

    #[test]
    fn a_batch_split_by_size_is_requests_of_consecutive_entries_each_equal_to_prost() {
        let observed = 1_764_000_000_123_456_789;
        let resource = resource(1);
        let mut encoder = RequestEncoder::new(&resource);
        let all: Vec<AuditEntry> = entries().into_iter().cycle().take(41).collect();
        let sizes = records_len(&reference_request(&resource, &all, observed));
        let total: usize = sizes.iter().sum();
        let mut out = Vec::new();
        // No limit, a limit smaller than any record (one entry per request), limits between,
        // and limits that fall exactly on a record's end.
        let exact = sizes[..3].iter().sum::<usize>();
        for limit in [usize::MAX, 1, total / 10, total / 3, exact, exact - 1] {
            let (mut rest, mut sizes_left, mut requests) = (&all[..], &sizes[..], 0);
            while !rest.is_empty() {
                let (start, taken) = encoder.encode_front(rest, observed, &mut out, limit);
                assert!(
                    taken >= 1 && taken <= rest.len(),
                    "limit {limit}: took {taken}"
                );
                let expected =
                    reference_request(&resource, &rest[..taken], observed).encode_to_vec();
                assert_same(&out[start..], &expected, 1);
                let request = ExportLogsServiceRequest::decode(&out[start..]).expect("decodes");
                let records: usize = records_len(&request).iter().sum();
                assert_eq!(records_len(&request).len(), taken);
                // At most the limit (but for a first record larger than it), and the next
                // record would have passed it.
                assert!(
                    taken == 1 || records <= limit,
                    "limit {limit}: {records} bytes of records"
                );
                if taken < rest.len() {
                    assert!(
                        records + sizes_left[taken] > limit,
                        "limit {limit}: the next record would have fit"
                    );
                }
                rest = &rest[taken..];
                sizes_left = &sizes_left[taken..];
                requests += 1;
            }
            match limit {
                usize::MAX => assert_eq!(requests, 1),
                1 => assert_eq!(requests, all.len()),
                _ => assert!(requests > 1 && requests < all.len(), "limit {limit}"),
            }
        }
    }

    /// Compares without printing megabytes: where the bytes first differ.
    fn assert_same(ours: &[u8], prost: &[u8], extra: usize) {
        let first = ours.iter().zip(prost).position(|(a, b)| a != b);
        assert!(
            first.is_none() && ours.len() == prost.len(),
            "resource of {extra} attributes: {} bytes vs prost's {}, first difference at {first:?}: \
             ours {:?}, prost's {:?}",
            ours.len(),
            prost.len(),
            first.map(|i| &ours[i.saturating_sub(8)..(i + 16).min(ours.len())]),
            first.map(|i| &prost[i.saturating_sub(8)..(i + 16).min(prost.len())]),
        );
    }
}
