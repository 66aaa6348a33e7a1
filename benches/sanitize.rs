//! What redacting a prompt costs, in bytes per second, next to its peers, in one run.
//!
//! - `text`: `Sanitizer::sanitize` (placeholders, every built-in detector) on 1 KiB of prompt
//!   prose without entities, 1 KiB with five (email, phone, card, IP address, API key), and
//!   64 KiB of the same mixed. Target: at least 200 MB/s on the 1 KiB texts.
//! - `adversarial`: inputs built to make a scanner backtrack or rescan — a run of digits,
//!   `@@@@…`, `aaaa…@`, `a@a@…`, dots, `1 1 1 …`, colons, `sk-sk-…`, `eyJ.eyJ.…`,
//!   `-----BEGIN ` repeated — each at 64 KiB and 1 MiB. Linear time shows as the same
//!   throughput at both sizes.
//!
//! Peers in each group: `regex_per_entity`, the usual approach (one unvalidated regular
//! expression per entity type, each run over the text with the `regex` crate, which is itself
//! linear, so it is the speed to beat rather than a strawman), and `copy_and_memchr`, the
//! floor: copying the text and finding its `@` bytes, which any redactor must at least do.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tracing_llm_audit::sanitize::Sanitizer;

/// One regular expression per entity type, as a first attempt would write them (no checksum
/// validation, ASCII word boundaries so the lazy DFA can run).
const NAIVE_PATTERNS: &[&str] = &[
    r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
    r"\+\d[\d ().-]{7,}\d|\(?\b\d{3}\)?[ .-]\d{3}[ .-]\d{4}\b",
    r"\b(?:\d[ -]?){12,18}\d\b",
    r"\b\d{3}-\d{2}-\d{4}\b",
    r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b",
    r"\b(?:\d{1,3}\.){3}\d{1,3}\b",
    r"\b(?:[0-9A-Fa-f]{1,4}:){2,7}[0-9A-Fa-f]{1,4}\b",
    r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b",
    r"\bsk-[A-Za-z0-9_-]{20,}",
    r"\bgh[pousr]_[A-Za-z0-9]{36,}\b",
    r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*",
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
];

fn naive_regexes() -> Vec<regex::bytes::Regex> {
    NAIVE_PATTERNS
        .iter()
        .map(|p| {
            regex::bytes::RegexBuilder::new(p)
                .unicode(false)
                .build()
                .expect("the peer's patterns compile")
        })
        .collect()
}

/// Counts the peer's matches (what it would then replace).
fn naive_count(regexes: &[regex::bytes::Regex], text: &str) -> usize {
    regexes
        .iter()
        .map(|r| r.find_iter(text.as_bytes()).count())
        .sum()
}

const PROSE: &str = "You are a support assistant for an online shop. Answer politely and keep it \
short. The customer writes: I ordered a pair of running shoes last Tuesday and the parcel still \
has not arrived, although the tracking page said it would be delivered within three working days. \
Could you check what happened, and whether I can get a refund if it is lost? I would also like to \
change the delivery address for my next order to the office, since nobody is at home during the \
day. Thanks a lot for your help, and sorry for the long message. ";

const ENTITIES: &str = "Customer: Jane Roe, jane.roe@example.com, phone (415) 555-2671, paid \
with 4111 1111 1111 1111 from 203.0.113.42; the integration logs showed the key \
sk-proj-4fJ8dK2mQ9xL7pR3tV6wY1zB5nC0aE8gH2jK4 in a stack trace. ";

/// `unit` repeated and cut to `len` bytes (at a character boundary: the units are ASCII).
fn sized(unit: &str, len: usize) -> String {
    let mut text = unit.repeat(len / unit.len() + 1);
    text.truncate(len);
    text
}

fn realistic() -> Vec<(&'static str, String)> {
    let with_entities = {
        let mut t = String::from(ENTITIES);
        t.push_str(PROSE);
        sized(&t, 1024)
    };
    vec![
        ("prose_1k", sized(PROSE, 1024)),
        ("entities_1k", with_entities.clone()),
        ("mixed_64k", sized(&with_entities, 64 * 1024)),
    ]
}

fn adversarial(len: usize) -> Vec<(String, String)> {
    let long_local = format!("{}@", "a".repeat(len - 1));
    [
        ("digits", "9".repeat(len)),
        ("at_signs", "@".repeat(len)),
        ("long_local_part", long_local),
        ("a_at_a", sized("a@", len)),
        ("dots", ".".repeat(len)),
        ("one_space", sized("1 ", len)),
        ("colons", ":".repeat(len)),
        ("sk_dash", sized("sk-", len)),
        ("eyj_dot", sized("eyJ.", len)),
        ("pem_begin", sized("-----BEGIN ", len)),
    ]
    .into_iter()
    .map(|(name, text)| (format!("{name}_{}k", len / 1024), text))
    .collect()
}

/// Runs the sanitizer and the floor on every text, and the regex peer on texts of at most
/// `peer_max` bytes (its 1 MiB adversarial runs would take most of the benchmark's time and show
/// nothing more).
fn run_group(c: &mut Criterion, group_name: &str, texts: &[(String, String)], peer_max: usize) {
    let sanitizer = Sanitizer::builder().build().expect("the default builds");
    let regexes = naive_regexes();
    let mut group = c.benchmark_group(group_name);
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (name, text) in texts {
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_with_input(BenchmarkId::new("sanitizer", name), text, |b, text| {
            b.iter(|| black_box(sanitizer.sanitize(black_box(text))));
        });
        if text.len() <= peer_max {
            group.bench_with_input(BenchmarkId::new("regex_per_entity", name), text, |b, t| {
                b.iter(|| black_box(naive_count(&regexes, black_box(t))));
            });
        }
        group.bench_with_input(BenchmarkId::new("copy_and_memchr", name), text, |b, t| {
            b.iter(|| {
                let copy = black_box(t).to_owned();
                black_box(memchr::memchr_iter(b'@', copy.as_bytes()).count())
            });
        });
    }
    group.finish();
}

fn bench_text(c: &mut Criterion) {
    let texts: Vec<(String, String)> = realistic()
        .into_iter()
        .map(|(n, t)| (n.to_owned(), t))
        .collect();
    run_group(c, "text", &texts, usize::MAX);
}

fn bench_adversarial(c: &mut Criterion) {
    let mut texts = adversarial(64 * 1024);
    texts.extend(adversarial(1024 * 1024));
    run_group(c, "adversarial", &texts, 64 * 1024);
}

criterion_group!(benches, bench_text, bench_adversarial);
criterion_main!(benches);
