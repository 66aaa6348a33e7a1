//! The sanitizer as the audited clients' before-send hook.

use serde_json::Value;

use super::{RequestScope, Sanitizer};
use crate::clients::{BeforeSend, Blocked, Redactions};

/// Keys whose string values are not content: identifiers, enums, and binary payloads that a
/// rewrite would corrupt (base64 `data`, image `url`s that may be `data:` URLs).
const NOT_CONTENT: &[&str] = &[
    "model",
    "role",
    "type",
    "id",
    "tool_use_id",
    "tool_call_id",
    "media_type",
    "data",
    "url",
    "detail",
    "format",
];

/// Redacts every string value of the request body (message contents, system prompt, tool
/// arguments, …) except keys and the values of [`NOT_CONTENT`] keys, with one numbering for the
/// whole request; the counts go to the entry's `sanitization`. It never blocks.
///
/// ```
/// use tracing_llm_audit::clients::AnthropicClient;
/// use tracing_llm_audit::clients::ApiKey;
/// use tracing_llm_audit::sanitize::Sanitizer;
///
/// let client = AnthropicClient::new(ApiKey::new("sk-ant-…"))
///     .with_before_send(Sanitizer::builder().build()?);
/// # Ok::<(), tracing_llm_audit::sanitize::SanitizerError>(())
/// ```
impl BeforeSend for Sanitizer {
    fn before_send(&self, body: &mut Value, redactions: &mut Redactions) -> Result<(), Blocked> {
        let mut scope = self.scope();
        redact_strings(body, &mut scope);
        for (entity, count) in scope.finish().iter() {
            redactions.add(entity, count);
        }
        Ok(())
    }
}

fn redact_strings(value: &mut Value, scope: &mut RequestScope<'_>) {
    match value {
        Value::String(text) => {
            if let Some(redacted) = scope.redact(text) {
                *text = redacted;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| redact_strings(v, scope)),
        Value::Object(members) => {
            // Members in the order of their names, not in the order `serde_json` keeps them
            // (insertion order once any crate of the application turns on its
            // `preserve_order` feature, as rig-core and genai do): the numbering of the
            // placeholders must not depend on the features of the build.
            let mut keys: Vec<String> = members.keys().cloned().collect();
            keys.sort_unstable();
            for key in keys {
                let Some(v) = members.get_mut(&key) else {
                    continue;
                };
                if !(v.is_string() && NOT_CONTENT.contains(&key.as_str())) {
                    redact_strings(v, scope);
                }
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_content_with_one_numbering_and_leaves_identifiers() {
        let sanitizer = Sanitizer::builder().build().unwrap();
        let mut body = serde_json::json!({
            "model": "claude-sonnet-4-5",
            "system": "Escalate to ops@example.com",
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "I am ops@example.com, call 415-555-2671"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AKIAIOSFODNN7EXAMPLE"}}
                ]},
                {"role": "assistant", "content": "noted bob@example.com"}
            ]
        });
        let mut redactions = Redactions::default();
        sanitizer.before_send(&mut body, &mut redactions).unwrap();
        assert_eq!(body["system"], "Escalate to [EMAIL_1]");
        assert_eq!(
            body["messages"][0]["content"][0]["text"],
            "I am [EMAIL_1], call [PHONE_1]"
        );
        assert_eq!(body["messages"][1]["content"], "noted [EMAIL_2]");
        assert_eq!(
            body["messages"][0]["content"][1]["source"]["data"],
            "AKIAIOSFODNN7EXAMPLE"
        );
        assert_eq!(body["model"], "claude-sonnet-4-5");
        assert_eq!(redactions.counts().get("email"), Some(&3));
        assert_eq!(redactions.counts().get("phone"), Some(&1));
    }
}
