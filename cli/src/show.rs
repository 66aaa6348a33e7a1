//! `llm-audit show REQUEST_ID`: one entry, whole, as pretty JSON; with `--decrypt`, its kept
//! content decrypted with a keyring (see the library's `content` module).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;
use tracing_llm_audit::content::{ContentError, ContentField, Keyring};
use tracing_llm_audit::AuditEntry;

use crate::args::SourceArgs;
use crate::filter::{self, Filter};
use crate::source::{label_dir, Source};

/// `llm-audit show`.
#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    /// The entry's request id.
    request_id: String,
    #[command(flatten)]
    source: SourceArgs,
    /// Decrypt the kept content (system prompt, input, output) with the keyring.
    #[arg(long)]
    decrypt: bool,
    /// The content keyring [default: LLM_AUDIT_KEYRING].
    #[arg(long, requires = "decrypt")]
    keyring: Option<PathBuf>,
}

/// `llm-audit show`.
pub(crate) fn run(args: &ShowArgs) -> Result<(), String> {
    let keyring = keyring_for(args.decrypt, args.keyring.as_deref())?;
    let mut source = args.source.open()?;
    let text = show(&mut source, &args.request_id, keyring.as_ref())?;
    if let Source::Jsonl(j) = &source {
        label_dir(&j.dir);
    }
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(|e| format!("cannot write: {e}"))
}

/// The entry with request id `id`, as printed: its kept content decrypted when `keyring` is
/// given.
fn show(source: &mut Source, id: &str, keyring: Option<&Keyring>) -> Result<String, String> {
    let request_id = filter::request_id("REQUEST_ID", id)?;
    let filter = Filter {
        request_id: Some(request_id),
        ..Filter::default()
    };
    let mut found: Option<AuditEntry> = None;
    source.entries(&filter, Some(1), |entry| {
        found = Some(entry);
        false
    })?;
    let entry = found.ok_or_else(|| format!("no entry has the request id {request_id}"))?;
    let mut value = serde_json::to_value(&entry).map_err(|e| e.to_string())?;
    if let Some(keyring) = keyring {
        let fields = [
            (ContentField::SystemPrompt, &entry.system_prompt_content),
            (ContentField::Input, &entry.input_content),
            (ContentField::Output, &entry.output_content),
        ];
        for (field, stored) in fields {
            let Some(stored) = stored else { continue };
            let bytes = keyring
                .decrypt(&entry.request_id, field, stored)
                .map_err(|e| match e {
                    ContentError::Decrypt { .. } => e.to_string(),
                    other => format!(
                        "cannot decrypt the {} content of entry {}: {other}",
                        field.name(),
                        entry.request_id
                    ),
                })?;
            let shown = match String::from_utf8(bytes) {
                Ok(text) => json!({ "kind": "decrypted", "text": text }),
                Err(e) => json!({ "kind": "decrypted", "hex": hex::encode(e.as_bytes()) }),
            };
            value[format!("{}_content", field.name())] = shown;
        }
    }
    let mut text = json_escaped(&serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?);
    text.push('\n');
    Ok(text)
}

/// JSON text with the characters that JSON leaves as they are but that act on a terminal (C1
/// controls, bidirectional formatting characters, line and paragraph separators) written as
/// `\uXXXX` escapes: the same JSON value, safe to show. (JSON escapes the C0 controls itself.)
fn json_escaped(text: &str) -> String {
    let acts = |c: char| {
        matches!(
            c,
            '\u{7f}'..='\u{9f}'
                | '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
        )
    };
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match acts(c) {
            // Outside strings JSON text has none of these, so escaping them is always valid.
            true => out.push_str(&format!("\\u{:04x}", c as u32)),
            false => out.push(c),
        }
    }
    out
}

/// The keyring `--decrypt` needs: `--keyring FILE`, or the `LLM_AUDIT_KEYRING` variable.
fn keyring_for(decrypt: bool, path: Option<&Path>) -> Result<Option<Keyring>, String> {
    match (decrypt, path) {
        (false, _) => Ok(None),
        (true, Some(path)) => Keyring::from_file(path)
            .map(Some)
            .map_err(|e| format!("--keyring: {e}")),
        (true, None) => match std::env::var("LLM_AUDIT_KEYRING") {
            Ok(text) if !text.is_empty() => Keyring::from_env("LLM_AUDIT_KEYRING")
                .map(Some)
                .map_err(|e| e.to_string()),
            _ => Err("--decrypt needs --keyring FILE (or LLM_AUDIT_KEYRING)".to_owned()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_json_is_the_same_value_with_nothing_that_acts_on_a_terminal() {
        let value = json!({"user_id": "a\u{1b}[31m\u{85}\u{202e}b\u{2028}", "n": 1});
        let text = json_escaped(&serde_json::to_string_pretty(&value).unwrap());
        assert!(
            !text.contains(['\u{1b}', '\u{85}', '\u{202e}', '\u{2028}']),
            "{text}"
        );
        assert!(text.contains("\\u001b[31m\\u0085\\u202eb\\u2028"), "{text}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            value
        );
    }
}
