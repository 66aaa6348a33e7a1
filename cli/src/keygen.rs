//! `llm-audit keygen`: the keys of an audit trail. An Ed25519 key pair that signs checkpoints
//! (`--out PREFIX`, the default), a content keyring (`--keyring FILE`), or a key for content
//! hashes (`--hash-key`), printed as `LLM_AUDIT_HASH_KEY` takes it.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{ArgGroup, Args};
use tracing_llm_audit::chain::SigningKey;
use tracing_llm_audit::content::Keyring;
use tracing_llm_audit::{HashKey, HASH_KEY_ENV, MIN_SECRET_LEN};

use crate::output::{say, warn};

/// `llm-audit keygen`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("named").args(["keyring", "hash_key"])))]
pub(crate) struct KeygenArgs {
    /// Path prefix of the two files.
    #[arg(long, default_value = "llm-audit-signing")]
    out: PathBuf,
    /// A content keyring file (mode 0600) to create, or to add a key to.
    #[arg(long, conflicts_with = "out")]
    keyring: Option<PathBuf>,
    /// Print a new key for content hashes on stdout, as LLM_AUDIT_HASH_KEY takes it: <key
    /// id>:<secret as hex>. No file is written.
    #[arg(long, conflicts_with_all = ["out", "keyring"])]
    hash_key: bool,
    /// The new key's id [default: content-<UTC date and time>, or hash-<UTC date and time>
    /// with --hash-key].
    #[arg(long, requires = "named")]
    key_id: Option<String>,
}

/// `llm-audit keygen`.
pub(crate) fn run(args: &KeygenArgs) -> Result<(), String> {
    if args.hash_key {
        let key = hash_key(args.key_id.as_deref())?;
        // The value alone on stdout, for `export LLM_AUDIT_HASH_KEY="$(llm-audit keygen --hash-key)"`.
        say(&key)?;
        warn(&format!(
            "a key for content hashes, for {HASH_KEY_ENV}: a secret, to keep in a secret store \
             away from the logs, and for as long as hashes made with it are compared"
        ));
        return Ok(());
    }
    match &args.keyring {
        Some(path) => say(&keyring(path, args.key_id.as_deref())?),
        None => signing_pair(&args.out),
    }
}

/// `<prefix>-<UTC date and time>`: a new key's default id.
fn stamped(prefix: &str) -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{prefix}-{:04}{:02}{:02}-{:02}{:02}{:02}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

/// A new key for content hashes, as [`HashKey::parse`] (the reader of `LLM_AUDIT_HASH_KEY`)
/// takes it: `<key id>:<32 random bytes as hex>`.
fn hash_key(id: Option<&str>) -> Result<String, String> {
    let id = id.map_or_else(|| stamped("hash"), str::to_owned);
    let mut secret = [0u8; MIN_SECRET_LEN];
    getrandom::getrandom(&mut secret).map_err(|e| format!("no random source: {e}"))?;
    let text = format!("{id}:{}", hex::encode(secret));
    secret.fill(0);
    // Checked as the library reads it: an id it refuses is refused here.
    HashKey::parse(&text).map_err(|e| format!("--key-id: {e}"))?;
    Ok(text)
}

/// `llm-audit keygen --out PREFIX`: PREFIX.key (secret, mode 0600) and PREFIX.pub.
fn signing_pair(out: &Path) -> Result<(), String> {
    let key = SigningKey::generate().map_err(|e| e.to_string())?;
    let secret = out.with_extension("key");
    let public = out.with_extension("pub");
    for path in [&secret, &public] {
        if path.exists() {
            return Err(format!("{} exists; it is not overwritten", path.display()));
        }
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let write = |path: &Path, text: &str, options: &std::fs::OpenOptions| {
        options
            .open(path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    write(&secret, &key.to_secret_text(), &options)?;
    let mut public_options = std::fs::OpenOptions::new();
    public_options.write(true).create_new(true);
    write(
        &public,
        &key.verifying_key().to_public_text(),
        &public_options,
    )?;
    say(&format!(
        "key {}: secret in {} (keep it away from the logs), public in {}",
        key.key_id(),
        secret.display(),
        public.display()
    ))
}

/// `llm-audit keygen --keyring FILE`: a new keyring, or a new current key in an existing one.
fn keyring(path: &Path, id: Option<&str>) -> Result<String, String> {
    let id = id.map_or_else(|| stamped("content"), str::to_owned);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_key_is_what_the_library_reads() {
        let text = hash_key(None).unwrap();
        let key = HashKey::parse(&text).unwrap();
        assert!(key.id().starts_with("hash-"), "{}", key.id());
        assert_eq!(text.len(), key.id().len() + 1 + 2 * MIN_SECRET_LEN);
        assert_ne!(hash_key(None).unwrap(), text, "random");
        assert!(hash_key(Some("prod-2026.11_a"))
            .unwrap()
            .starts_with("prod-2026.11_a:"));
        let err = hash_key(Some("no spaces")).unwrap_err();
        assert!(err.starts_with("--key-id: invalid hash key id"), "{err}");
    }
}
