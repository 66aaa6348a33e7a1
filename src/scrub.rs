//! One scrubber for every string that comes from a server we do not control (an LLM provider,
//! a collector, a proxy in between) before it goes into an error, an entry, a span field, a
//! metric attribute or a log event.
//!
//! A server may echo a credential it was sent: as it is, JSON-escaped (`\u0053ECRET`),
//! percent-encoded (`%53ECRET`, twice over), or inside base64 (`Basic dXNlcjpTRUNSRVQ=`). The
//! [`Scrubber`] knows the secrets the process configured and removes each in all of these
//! spellings, then bounds the length, so that a 5 MB error type becomes a short one.
//!
//! The text it gives back has its JSON and percent escapes decoded where they spelled printable
//! characters: what it checked is what it returns.

use base64::Engine as _;

/// What stands in for a secret.
pub(crate) const REDACTED: &str = "[redacted]";

/// The secrets a client or an exporter was configured with, and the spellings of each that a
/// server could echo. `Debug` shows how many, never which.
#[derive(Clone, Default)]
pub(crate) struct Scrubber {
    /// Raw secrets, and the base64 runs that only their bytes decide (longest first).
    needles: Vec<String>,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scrubber({} spellings)", self.needles.len())
    }
}

/// Secrets shorter than this are not scrubbed: replacing every `a` of a message helps nobody,
/// and a credential that short is no credential.
const MIN_SECRET: usize = 4;

impl Scrubber {
    /// A scrubber for `secrets` (shorter than 4 bytes are ignored).
    pub(crate) fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Self {
        let mut needles = Vec::new();
        for secret in secrets {
            if secret.len() < MIN_SECRET {
                continue;
            }
            needles.push(secret.to_owned());
            for engine in [
                &base64::engine::general_purpose::STANDARD,
                &base64::engine::general_purpose::URL_SAFE,
            ] {
                needles.extend(base64_runs(engine, secret.as_bytes()));
            }
        }
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        needles.dedup();
        Self { needles }
    }

    /// `text` without any spelling of a secret, at most `max_chars` characters long (cut with
    /// `…`).
    pub(crate) fn scrub(&self, text: &str, max_chars: usize) -> String {
        let mut out = if self.needles.is_empty() {
            text.to_owned()
        } else {
            // Decoding escapes can only make the text shorter; twice covers a value that was
            // percent-encoded and then JSON-escaped, or percent-encoded twice.
            let mut out = decode_escapes(text);
            for _ in 0..2 {
                let next = decode_escapes(&out);
                if next == out {
                    break;
                }
                out = next;
            }
            for needle in &self.needles {
                if out.contains(needle.as_str()) {
                    out = out.replace(needle.as_str(), REDACTED);
                }
            }
            out
        };
        // Server text goes into errors and log lines: no control character (an ANSI escape, a
        // line break that would start a forged log line) comes along.
        if out.chars().any(char::is_control) {
            out = out
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
        }
        bound(&mut out, max_chars);
        out
    }
}

/// Cuts `text` to at most `max_chars` characters, the last one `…` when cut.
pub(crate) fn bound(text: &mut String, max_chars: usize) {
    if let Some((at, _)) = text.char_indices().nth(max_chars) {
        let keep = text[..at]
            .char_indices()
            .nth(max_chars.saturating_sub(1))
            .map_or(at, |(i, _)| i);
        text.truncate(keep);
        text.push('…');
    }
}

/// The base64 text that encodes `secret` wherever it sits in a longer value: for each of the
/// three alignments, the characters that only the secret's bytes decide.
fn base64_runs(engine: &base64::engine::GeneralPurpose, secret: &[u8]) -> Vec<String> {
    let mut runs = Vec::new();
    for offset in 0..3usize {
        let mut bytes = vec![0u8; offset];
        bytes.extend_from_slice(secret);
        let encoded = engine.encode(&bytes);
        let encoded = encoded.trim_end_matches('=');
        // Characters before the secret's first full sextet depend on the prefix; after its
        // last full sextet, on what follows.
        let skip = (offset * 8).div_ceil(6);
        let keep = ((offset + secret.len()) * 8) / 6;
        if keep > skip + 2 {
            runs.push(encoded[skip..keep.min(encoded.len())].to_owned());
        }
    }
    runs
}

/// Decodes JSON `\uXXXX` (and `\/`) and percent `%XX` escapes that spell printable characters;
/// everything else stays as it is.
fn decode_escapes(text: &str) -> String {
    if !text.contains(['\\', '%']) {
        return text.to_owned();
    }
    let bytes = text.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if bytes.get(i + 1) == Some(&b'u') => {
                let code = text
                    .get(i + 2..i + 6)
                    .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .and_then(char::from_u32)
                    .filter(|c| !c.is_control());
                match code {
                    Some(c) => {
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                        i += 6;
                    }
                    None => {
                        out.push(b'\\');
                        i += 1;
                    }
                }
            }
            b'\\' if bytes.get(i + 1) == Some(&b'/') => {
                out.push(b'/');
                i += 2;
            }
            b'%' => {
                let byte = text
                    .get(i + 1..i + 3)
                    .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .filter(|b| b.is_ascii_graphic());
                match byte {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    // Only ASCII was added, in place of ASCII: still UTF-8.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "sk-ant-SECRET-0123456789abcdef";

    fn scrubbed(text: &str) -> String {
        Scrubber::new([SECRET]).scrub(text, 10_000)
    }

    #[test]
    fn every_spelling_is_removed() {
        let escaped: String = SECRET
            .chars()
            .map(|c| format!("\\u{:04x}", c as u32))
            .collect();
        let upper: String = SECRET
            .chars()
            .map(|c| format!("\\u{:04X}", c as u32))
            .collect();
        let percent: String = SECRET.bytes().map(|b| format!("%{b:02X}")).collect();
        let double: String = percent.replace('%', "%25");
        for text in [
            format!("invalid key {SECRET} given"),
            format!("{{\"error\":\"bad key \\\"{escaped}\\\"\"}}"),
            format!("bad key {upper}"),
            format!("bad key {}", SECRET.replacen('S', "\\u0053", 1)),
            format!("url=https://x/?key={percent}&a=1"),
            format!("url=https://x/?key={double}"),
        ] {
            let out = scrubbed(&text);
            assert!(!out.contains(SECRET), "{text} -> {out}");
            assert!(out.contains(REDACTED), "{text} -> {out}");
        }
        for prefix in ["", "u", "us", "user:"] {
            for engine in [
                &base64::engine::general_purpose::STANDARD,
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            ] {
                let blob = engine.encode(format!("{prefix}{SECRET}!!"));
                let out = scrubbed(&format!("Authorization: Basic {blob}"));
                assert!(out.contains(REDACTED), "{prefix}: {blob} -> {out}");
                let decoded: String = out
                    .split_whitespace()
                    .filter_map(|w| engine.decode(w).ok())
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .collect();
                assert!(!decoded.contains(SECRET), "{prefix}: {out}");
            }
        }
    }

    mod property {
        use super::*;
        use proptest::prelude::*;

        /// How a server might write the secret back.
        #[derive(Debug, Clone)]
        enum Spelling {
            Raw,
            /// `\uXXXX` for the characters whose mask bit is set; upper or lower case hex.
            Json(u64, bool),
            /// `%XX` for the masked characters; `%25XX` when `twice`.
            Percent(u64, bool),
            /// Inside base64 (standard or URL-safe) with `prefix` bytes before it.
            Base64(usize, bool),
        }

        fn spell(secret: &str, how: &Spelling) -> String {
            let masked = |mask: u64, i: usize| mask >> (i % 64) & 1 == 1;
            match how {
                Spelling::Raw => secret.to_owned(),
                Spelling::Json(mask, upper) => secret
                    .chars()
                    .enumerate()
                    .map(|(i, c)| match (masked(*mask, i), upper) {
                        (true, true) => format!("\\u{:04X}", c as u32),
                        (true, false) => format!("\\u{:04x}", c as u32),
                        (false, _) => c.to_string(),
                    })
                    .collect(),
                Spelling::Percent(mask, twice) => secret
                    .bytes()
                    .enumerate()
                    .map(|(i, b)| match (masked(*mask, i), twice) {
                        (true, true) => format!("%25{b:02X}"),
                        (true, false) => format!("%{b:02x}"),
                        (false, _) => (b as char).to_string(),
                    })
                    .collect(),
                Spelling::Base64(prefix, url) => {
                    let mut bytes = b"us:".repeat(*prefix)[..*prefix].to_vec();
                    bytes.extend_from_slice(secret.as_bytes());
                    bytes.extend_from_slice(b"@x");
                    if *url {
                        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
                    } else {
                        base64::engine::general_purpose::STANDARD.encode(bytes)
                    }
                }
            }
        }

        fn spelling() -> impl Strategy<Value = Spelling> {
            prop_oneof![
                Just(Spelling::Raw),
                (any::<u64>(), any::<bool>()).prop_map(|(m, u)| Spelling::Json(m, u)),
                (any::<u64>(), any::<bool>()).prop_map(|(m, t)| Spelling::Percent(m, t)),
                (0usize..3, any::<bool>()).prop_map(|(p, u)| Spelling::Base64(p, u)),
            ]
        }

        proptest! {
            /// For random secrets (token characters) and server replies that embed them in
            /// random spellings at random places, the scrubbed text holds the secret in none of
            /// them, and no base64 run of it decodes to the secret.
            #[test]
            fn no_spelling_of_a_secret_survives(
                secret in "[A-Za-z0-9._~+/=-]{8,40}",
                other in "[A-Za-z0-9]{8,20}",
                how in proptest::collection::vec(spelling(), 1..4),
                before in "[ -~]{0,40}",
                after in "[ -~]{0,40}",
            ) {
                let spelled: Vec<String> = how.iter().map(|h| spell(&secret, h)).collect();
                let text = format!("{before}{}{after} {}", spelled.join(" and "), spell(&other, &Spelling::Raw));
                let out = Scrubber::new([secret.as_str(), other.as_str()]).scrub(&text, 100_000);
                prop_assert!(!out.contains(&secret), "{text} -> {out}");
                prop_assert!(!out.contains(&other), "{text} -> {out}");
                for s in &spelled {
                    prop_assert!(!out.contains(s.as_str()), "{s} in {out}");
                }
                for word in out.split(|c: char| !(c.is_ascii_alphanumeric() || "+/=-_".contains(c))) {
                    for engine in [
                        &base64::engine::general_purpose::STANDARD_NO_PAD,
                        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                    ] {
                        for skip in 0..4.min(word.len()) {
                            let w = word[skip..].trim_end_matches('=');
                            if let Ok(bytes) = engine.decode(&w[..w.len() - w.len() % 4]) {
                                prop_assert!(!String::from_utf8_lossy(&bytes).contains(&secret), "{word} in {out}");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn text_without_secrets_is_kept_and_bounded() {
        assert_eq!(
            scrubbed("rate limited: 50% of quota, \\n ok"),
            "rate limited: 50% of quota, \\n ok"
        );
        let long = "é".repeat(5000);
        let out = Scrubber::new([SECRET]).scrub(&long, 100);
        assert_eq!(out.chars().count(), 100);
        assert!(out.ends_with('…'));
        assert_eq!(Scrubber::default().scrub("abc", 2), "a…");
        let debug = format!("{:?}", Scrubber::new([SECRET]));
        assert!(
            debug.starts_with("Scrubber(") && !debug.contains("SECRET"),
            "{debug}"
        );
    }
}
