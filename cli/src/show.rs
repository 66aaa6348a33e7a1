//! `llm-audit show REQUEST_ID`: one entry, whole, as pretty JSON; with `--decrypt`, its kept
//! content decrypted with a keyring (see the library's `content` module).

use serde_json::json;
use tracing_llm_audit::content::{ContentError, ContentField, Keyring};
use tracing_llm_audit::AuditEntry;

use crate::query::Filter;
use crate::source::Source;

/// The entry with request id `id`, as printed: its kept content decrypted when `keyring` is
/// given.
pub(crate) fn show(
    source: &mut Source,
    id: &str,
    keyring: Option<&Keyring>,
) -> Result<String, String> {
    let request_id = uuid::Uuid::parse_str(id)
        .map_err(|_| format!("{id:?} is not a request id (a UUID such as 01936f0e-…)"))?;
    let filter = Filter {
        request_id: Some(request_id.to_string()),
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
    let mut text = serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?;
    text.push('\n');
    Ok(text)
}

/// `llm-audit keygen --keyring FILE`: a new keyring, or a new current key in an existing one.
pub(crate) fn keygen_keyring(path: &std::path::Path, id: Option<&str>) -> Result<String, String> {
    let id = id.map_or_else(
        || {
            let now = time::OffsetDateTime::now_utc();
            format!(
                "content-{:04}{:02}{:02}-{:02}{:02}{:02}",
                now.year(),
                u8::from(now.month()),
                now.day(),
                now.hour(),
                now.minute(),
                now.second()
            )
        },
        str::to_owned,
    );
    let (keyring, rotated) = if path.exists() {
        let mut keyring = Keyring::from_file(path).map_err(|e| e.to_string())?;
        keyring.rotate(&id).map_err(|e| e.to_string())?;
        (keyring, true)
    } else {
        (Keyring::generate(&id).map_err(|e| e.to_string())?, false)
    };
    // Written next to the file, then renamed over it: a failure leaves the old keyring whole.
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&tmp).and_then(|mut f| {
        use std::io::Write;
        f.write_all(keyring.to_text().as_bytes())?;
        f.sync_all()
    });
    written
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(if rotated {
        format!(
            "key {id} added to {} and now encrypts; the older keys stay to decrypt",
            path.display()
        )
    } else {
        format!(
            "keyring {} with key {id} (secret: keep it away from the logs)",
            path.display()
        )
    })
}

/// The keyring `--decrypt` needs: `--keyring FILE`, or the `LLM_AUDIT_KEYRING` variable.
pub(crate) fn keyring_for(
    decrypt: bool,
    path: Option<&std::path::Path>,
) -> Result<Option<Keyring>, String> {
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
