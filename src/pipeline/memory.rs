//! What the pipeline's byte bound charges for an assembled entry.
//!
//! The bound (`queue_max_bytes`) covers everything the pipeline holds: records waiting in the
//! queue with their content, the batch the worker is assembling, the assembled entries that sit
//! in the sinks' backlogs until the slowest sink has written them, and the records kept for
//! reuse. An estimate that falls short would let the pipeline hold more than the bound, so
//! every figure here is what the allocator was asked for (capacities, not lengths), and the
//! overhead of the maps is rounded up.

use serde_json::Value;

use crate::content::StoredContent;
use crate::entry::AuditEntry;
use crate::layer::span_data::Content;

/// Heap bytes of a map node per key (the standard library's B-tree keeps up to 11 keys in a
/// node of about 540 bytes for `String` keys and small values; a half-full node is the worst
/// common case).
const MAP_OVERHEAD_PER_KEY: usize = 96;

/// Room a call is charged for, besides its record, for the entry it becomes: the entry itself
/// and what it holds that the record does not (hashes, ids in hex, a cost note, short strings
/// that the record kept inline).
pub(crate) const ENTRY_ALLOWANCE: usize = std::mem::size_of::<AuditEntry>() + 1024;

/// Room for each metadata value and sanitization count, which become map entries.
pub(crate) const MAP_ENTRY_ALLOWANCE: usize = MAP_OVERHEAD_PER_KEY + 64;

/// Room for content a policy keeps in the entry: base64 takes 4 bytes for 3, and encryption
/// adds a tag, a nonce and names.
pub(crate) fn stored_content_allowance(content: &Content) -> usize {
    [&content.system_prompt, &content.input, &content.output]
        .into_iter()
        .flatten()
        .map(|bytes| bytes.len() / 3 + 4 + 160)
        .sum()
}

/// The bytes an assembled entry holds: the struct itself (it lives in a batch's `Vec`) and
/// everything it owns.
pub(crate) fn entry_bytes(entry: &AuditEntry) -> usize {
    let text = |s: &Option<String>| s.as_ref().map_or(0, String::capacity);
    std::mem::size_of::<AuditEntry>()
        + [
            &entry.user_id,
            &entry.session_id,
            &entry.provider,
            &entry.model,
            &entry.response_model,
            &entry.response_id,
            &entry.system_prompt_hash,
            &entry.input_hash,
            &entry.output_hash,
            &entry.hash_key_id,
            &entry.cost_note,
            &entry.error_type,
            &entry.error_message,
            &entry.trace_id,
            &entry.span_id,
            &entry.parent_span_id,
        ]
        .into_iter()
        .map(text)
        .sum::<usize>()
        + entry.action.capacity()
        + entry.finish_reasons.as_ref().map_or(0, |reasons| {
            reasons.capacity() * std::mem::size_of::<String>()
                + reasons.iter().map(String::capacity).sum::<usize>()
        })
        + [
            &entry.system_prompt_content,
            &entry.input_content,
            &entry.output_content,
        ]
        .into_iter()
        .map(|c| c.as_ref().map_or(0, content_bytes))
        .sum::<usize>()
        + entry
            .sanitization
            .keys()
            .map(|k| k.capacity() + MAP_OVERHEAD_PER_KEY)
            .sum::<usize>()
        + entry.metadata.as_ref().map_or(0, map_bytes)
        + entry.erased.as_ref().map_or(0, map_bytes)
}

fn content_bytes(content: &StoredContent) -> usize {
    match content {
        StoredContent::Plaintext { text } => text.capacity(),
        StoredContent::PlaintextBase64 { base64 } => base64.capacity(),
        StoredContent::Encrypted {
            alg,
            key_id,
            nonce,
            ciphertext,
        } => alg.capacity() + key_id.capacity() + nonce.capacity() + ciphertext.capacity(),
    }
}

fn map_bytes(map: &serde_json::Map<String, Value>) -> usize {
    map.iter()
        .map(|(key, value)| key.capacity() + MAP_OVERHEAD_PER_KEY + value_bytes(value))
        .sum()
}

/// The heap bytes of a JSON value (its own size is counted where it is held).
fn value_bytes(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
        Value::String(s) => s.capacity(),
        Value::Array(items) => {
            items.capacity() * std::mem::size_of::<Value>()
                + items.iter().map(value_bytes).sum::<usize>()
        }
        Value::Object(map) => map_bytes(map),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_what_an_entry_owns() {
        let bare = AuditEntry::new("chat");
        let base = entry_bytes(&bare);
        assert!(base >= std::mem::size_of::<AuditEntry>());

        let mut entry = bare.clone();
        entry.error_message = Some("x".repeat(10_000));
        entry.input_content = Some(StoredContent::plaintext(&[b'y'; 5_000]));
        let mut metadata = serde_json::Map::new();
        metadata.insert("note".into(), Value::String("z".repeat(3_000)));
        entry.metadata = Some(metadata);
        assert!(entry_bytes(&entry) >= base + 18_000);
    }
}
