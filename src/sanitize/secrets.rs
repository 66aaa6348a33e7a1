//! Secrets, found from their fixed prefixes: one Aho–Corasick pass (SIMD where the CPU has it)
//! finds every candidate prefix, and each candidate is checked by reading forward from it.
//!
//! A check reads the token that follows its prefix and a match resumes the search after it, so
//! tokens are read once. A PEM key is read line by line to its end line, and never further.

use aho_corasick::{AhoCorasick, Input, MatchKind};

use super::detect::{word_boundary_at, word_boundary_before, Found};
use super::Entity;

/// What a prefix announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Aws,
    /// `sk-`: OpenAI, or Anthropic when `ant-` follows.
    Sk,
    GithubClassic,
    GithubPat,
    Jwt,
    Pem,
}

/// The secrets detectors that are on, with their prefix automaton.
pub(super) struct Secrets {
    automaton: AhoCorasick,
    triggers: Vec<Trigger>,
    openai: bool,
    anthropic: bool,
}

impl Secrets {
    /// The detectors `on` enables; `None` when it enables none.
    pub(super) fn new(on: impl Fn(Entity) -> bool) -> Option<Self> {
        let mut prefixes: Vec<&str> = Vec::new();
        let mut triggers = Vec::new();
        let mut add = |list: &[&'static str], trigger| {
            for p in list {
                prefixes.push(p);
                triggers.push(trigger);
            }
        };
        if on(Entity::AwsAccessKey) {
            add(&["AKIA", "ASIA", "ABIA", "ACCA"], Trigger::Aws);
        }
        let (openai, anthropic) = (on(Entity::OpenAiApiKey), on(Entity::AnthropicApiKey));
        if openai || anthropic {
            add(&["sk-"], Trigger::Sk);
        }
        if on(Entity::GithubToken) {
            add(
                &["ghp_", "gho_", "ghu_", "ghs_", "ghr_"],
                Trigger::GithubClassic,
            );
            add(&["github_pat_"], Trigger::GithubPat);
        }
        if on(Entity::Jwt) {
            add(&["eyJ"], Trigger::Jwt);
        }
        if on(Entity::PrivateKey) {
            add(&["-----BEGIN "], Trigger::Pem);
        }
        if prefixes.is_empty() {
            return None;
        }
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostFirst)
            .build(&prefixes)
            .expect("a handful of short literal prefixes always builds");
        Some(Self {
            automaton,
            triggers,
            openai,
            anthropic,
        })
    }

    /// Appends the secrets in `b`.
    pub(super) fn find(&self, b: &[u8], out: &mut Vec<Found>) {
        let mut at = 0;
        while at < b.len() {
            let Some(m) = self.automaton.find(Input::new(b).span(at..b.len())) else {
                break;
            };
            let p = m.start();
            let found = match self.triggers[m.pattern().as_usize()] {
                Trigger::Aws => aws(b, p),
                Trigger::Sk => self.sk(b, p),
                Trigger::GithubClassic => {
                    token(b, p, 4, 36, false).map(|e| (e, Entity::GithubToken))
                }
                Trigger::GithubPat => token(b, p, 11, 22, true).map(|e| (e, Entity::GithubToken)),
                Trigger::Jwt => jwt(b, p).map(|e| (e, Entity::Jwt)),
                Trigger::Pem => pem(b, p).map(|e| (e, Entity::PrivateKey)),
            };
            match found {
                Some((end, entity)) => {
                    out.push(Found::new(p, end, entity));
                    at = end;
                }
                None => at = p + 1,
            }
        }
    }

    /// `sk-ant-…` (Anthropic) or `sk-…` (OpenAI).
    fn sk(&self, b: &[u8], p: usize) -> Option<(usize, Entity)> {
        if p > 0 && is_key_char(b[p - 1]) {
            return None;
        }
        let anthropic = b[p..].starts_with(b"sk-ant-");
        let body_start = p + if anthropic { 7 } else { 3 };
        let len = b[body_start..]
            .iter()
            .take_while(|&&c| is_key_char(c))
            .count();
        let body = &b[body_start..body_start + len];
        let mixed = body.iter().any(u8::is_ascii_uppercase)
            && body.iter().any(u8::is_ascii_lowercase)
            && body.iter().any(u8::is_ascii_digit);
        let end = body_start + len;
        if anthropic {
            (self.anthropic && len >= 32 && mixed).then_some((end, Entity::AnthropicApiKey))
        } else {
            (self.openai && len >= 20 && mixed).then_some((end, Entity::OpenAiApiKey))
        }
    }
}

/// The characters of API keys: base64url.
fn is_key_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

/// `AKIA` and 16 upper-case letters or digits, as a word of its own.
fn aws(b: &[u8], p: usize) -> Option<(usize, Entity)> {
    let end = p + 20;
    let key = b.get(p..end)?;
    let shape = key[4..]
        .iter()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    (shape && word_boundary_before(b, p) && word_boundary_at(b, end))
        .then_some((end, Entity::AwsAccessKey))
}

/// A prefix of `prefix_len` bytes and at least `min` letters or digits (and `_` when
/// `underscore`), as a word of its own.
fn token(b: &[u8], p: usize, prefix_len: usize, min: usize, underscore: bool) -> Option<usize> {
    if !word_boundary_before(b, p) {
        return None;
    }
    let start = p + prefix_len;
    let len = b[start..]
        .iter()
        .take_while(|&&c| c.is_ascii_alphanumeric() || (underscore && c == b'_'))
        .count();
    let end = start + len;
    (len >= min && word_boundary_at(b, end)).then_some(end)
}

/// `eyJ…` `.` `…` `.` `…`: a JSON header, a payload and a signature, each base64url.
fn jwt(b: &[u8], p: usize) -> Option<usize> {
    if p > 0 && is_key_char(b[p - 1]) {
        return None;
    }
    let run = |from: usize| b[from..].iter().take_while(|&&c| is_key_char(c)).count();
    let header = run(p);
    let dot1 = p + header;
    if header < 10 || b.get(dot1) != Some(&b'.') {
        return None;
    }
    let payload = run(dot1 + 1);
    let dot2 = dot1 + 1 + payload;
    if payload < 4 || b.get(dot2) != Some(&b'.') {
        return None;
    }
    let end = dot2 + 1 + run(dot2 + 1);
    (b.get(end) != Some(&b'.')).then_some(end)
}

/// A PEM private key: `-----BEGIN … PRIVATE KEY-----`, its base64 lines, and its
/// `-----END …-----` line when that follows them (a key cut short ends with its last base64
/// line).
fn pem(b: &[u8], p: usize) -> Option<usize> {
    let label_start = p + "-----BEGIN ".len();
    let label_end = label_start + label_len(&b[label_start..]);
    let header_end = label_end + 5;
    if !is_private_key_label(&b[label_start..label_end])
        || b.get(label_end..header_end) != Some(b"-----")
    {
        return None;
    }
    let body_end = base64_lines_end(b, header_end);
    let after = body_end + b[body_end..].len() - b[body_end..].trim_ascii_start().len();
    if b[after..].starts_with(b"-----END ") {
        let end_label = after + "-----END ".len();
        let end_label_end = end_label + label_len(&b[end_label..]);
        if is_private_key_label(&b[end_label..end_label_end])
            && b.get(end_label_end..end_label_end + 5) == Some(b"-----")
        {
            return Some(end_label_end + 5);
        }
    }
    Some(body_end)
}

/// The length of a PEM label (`RSA PRIVATE KEY`) at the start of `b`, at most 64.
fn label_len(b: &[u8]) -> usize {
    b.iter()
        .take(64)
        .take_while(|&&c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b' ')
        .count()
}

fn is_private_key_label(label: &[u8]) -> bool {
    label.ends_with(b"PRIVATE KEY") || label.ends_with(b"PRIVATE KEY BLOCK")
}

/// The end of the base64 lines (and `Name: value` headers before them) after a PEM header.
fn base64_lines_end(b: &[u8], from: usize) -> usize {
    let mut end = from;
    let mut pos = from;
    let mut body_started = false;
    while pos < b.len() {
        let line_end = memchr::memchr(b'\n', &b[pos..]).map_or(b.len(), |k| pos + k);
        let line = b[pos..line_end].trim_ascii();
        let base64 = !line.is_empty()
            && line
                .iter()
                .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'='));
        let header = !body_started && line.contains(&b':');
        if base64 {
            body_started = true;
        }
        if !(base64 || header || (line.is_empty() && pos == from)) {
            break;
        }
        end = pos + b[pos..line_end].trim_ascii_end().len();
        pos = line_end + 1;
    }
    end.max(from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<(&'static str, &str)> {
        let secrets = Secrets::new(|_| true).unwrap();
        let mut out = Vec::new();
        secrets.find(text.as_bytes(), &mut out);
        crate::sanitize::detect::labelled(text, &out)
    }

    #[test]
    fn aws_keys_are_20_characters_on_word_boundaries() {
        assert_eq!(
            found("id=AKIAIOSFODNN7EXAMPLE;"),
            [("aws_access_key", "AKIAIOSFODNN7EXAMPLE")]
        );
        assert!(found("AKIAIOSFODNN7EXAMPLEX").is_empty());
        assert!(found("XAKIAIOSFODNN7EXAMPLE").is_empty());
        assert!(found("AKIA is a prefix").is_empty());
    }

    #[test]
    fn sk_keys_need_length_and_mixed_characters() {
        let openai = "sk-proj-4fJ8dK2mQ9xL7pR3tV6wY1zB5nC0aE8gH2jK4";
        assert_eq!(
            found(&format!("key {openai}\n")),
            [("openai_api_key", openai)]
        );
        let anthropic = "sk-ant-api03-Xy9Zq8Wv7Ut6Sr5Qp4On3Ml2Kj1Ih0Gf9Ed8Cb7A-AA";
        assert_eq!(found(anthropic), [("anthropic_api_key", anthropic)]);
        for not in [
            "sk-learn",
            "task-sk-4fJ8dK2mQ9xL7pR3tV6wY1zB",
            "sk-this-is-not-a-real-key-at-all",
            "sk-XXXXXXXXXXXXXXXXXXXXXXXX",
        ] {
            assert!(found(not).is_empty(), "{not}");
        }
    }

    #[test]
    fn github_tokens_and_jwts() {
        let classic = format!("ghp_{}", "aB3".repeat(12));
        assert_eq!(found(&classic), [("github_token", classic.as_str())]);
        assert!(
            found(&format!("ghp_{}", "aB3".repeat(11))).is_empty(),
            "35 characters"
        );
        let pat = format!("github_pat_11ABCDEFG0_{}", "xY7".repeat(20));
        assert_eq!(found(&pat), [("github_token", pat.as_str())]);
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(found(&format!("Bearer {jwt}")), [("jwt", jwt)]);
        assert!(found("eyJhbGciOiJIUzI1NiJ9").is_empty(), "a header alone");
    }

    #[test]
    fn pem_private_keys_with_and_without_their_end_line() {
        let key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nq1w2e3r4==\n-----END RSA PRIVATE KEY-----";
        assert_eq!(
            found(&format!("key:\n{key}\nthanks")),
            [("private_key", key)]
        );
        let cut = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkq\nhkiG9w0BAQEFAASC";
        assert_eq!(
            found(&format!("{cut}\n\nmore text")),
            [("private_key", cut)]
        );
        assert!(found("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----").is_empty());
        assert!(found("-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----").is_empty());
    }

    #[test]
    fn many_begin_lines_without_ends_stay_linear() {
        let text = "-----BEGIN PRIVATE KEY-----\nx y\n".repeat(20_000);
        assert_eq!(found(&text).len(), 20_000);
    }
}
