//! LiteLLM as the oracle for the LiteLLM price-file loader: for every chat model of LiteLLM's
//! own bundled price file and a grid of usages (plain, cache reads, 5-minute and 1-hour cache
//! writes, reasoning, every prompt-length threshold and band boundary at the boundary and one
//! token past it, every service tier the model states, batches, off-peak hours), the loader on
//! the same file gives LiteLLM's figure, as an exact decimal. The cases come from
//! `scripts/litellm/oracle.py`, run with the pinned LiteLLM (see `scripts/litellm/SEMANTICS.md`
//! for the rules it applies).
//!
//! - Always: the committed slice `tests/fixtures/litellm_oracle/` (835 cases over 35 models that
//!   cover every rule kind).
//! - With the LiteLLM venv (`bash scripts/litellm/setup.sh --install`; always under `CI=true`):
//!   every chat, responses and completion model of the bundled file, about 27,800 cases.
//!
//! LiteLLM computes in binary floating point: both figures are compared rounded to 15
//! significant digits (a double carries 15 to 17). Every case where the figures differ must be
//! explained by one of [`EXCEPTIONS`]: a rule of the provider that makes our figure right and
//! LiteLLM's wrong, or a price the file does not state, where we refuse to guess.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use rust_decimal::prelude::*;
use serde_json::Value;
use tracing_llm_audit::cost::{CostError, PriceTable, PricingContext, TokenUsage};

/// One case of the oracle.
struct Case {
    line: Value,
    usage: TokenUsage,
    service_tier: Option<String>,
    at: time::OffsetDateTime,
    theirs: Decimal,
}

/// What our loader made of a case, for the exceptions to judge.
struct Outcome<'a> {
    case: &'a Case,
    entry: &'a serde_json::Map<String, Value>,
    ours: &'a Result<Decimal, CostError>,
    /// Our figure for the same call at the standard service tier.
    standard: Option<Decimal>,
}

impl Outcome<'_> {
    fn provider(&self) -> &str {
        self.case.line["litellm_provider"].as_str().unwrap_or("")
    }

    fn has(&self, field: &str) -> bool {
        self.entry.get(field).is_some_and(|v| !v.is_null())
    }

    fn refused_because(&self, words: &str) -> bool {
        matches!(self.ours, Err(CostError::NoPriceFor(why)) if why.contains(words))
    }
}

/// A kind of case where our figure and LiteLLM's differ, with why ours is right.
struct Exception {
    name: &'static str,
    why: &'static str,
    applies: fn(&Outcome<'_>) -> bool,
}

/// Every difference from LiteLLM, by rule. A difference none of these explains fails the test.
const EXCEPTIONS: &[Exception] = &[
    Exception {
        name: "no token price",
        why: "the entry states no per-token input and output price (per-second, per-image or no \
              price at all). LiteLLM bills $0 for the tokens; the cost is unknown, and an \
              unknown price is not $0.",
        applies: |o| {
            matches!(o.ours, Err(CostError::UnknownModel(_)))
                && !(o.has("input_cost_per_token") && o.has("output_cost_per_token"))
        },
    },
    Exception {
        name: "1-hour cache writes without a 1-hour price",
        why: "the call wrote to the cache for one hour and the entry states no 1-hour price. \
              LiteLLM bills those writes at the 5-minute price; Anthropic bills 1-hour writes \
              at 2 × input (1.6 × the 5-minute price, as every Claude entry of the file that \
              states one says), Bedrock and Vertex alike. Not priced rather than priced low.",
        applies: |o| {
            o.case.usage.cache_write_1h_tokens.unwrap_or(0) > 0 && o.refused_because("1-hour")
        },
    },
    Exception {
        name: "a service tier the priced entry states no prices for",
        why: "the call was served at a tier (priority) that the entry LiteLLM prices from does \
              not price (LiteLLM resolves `moonshotai.kimi-k2.5` to its `bedrock/` twin, which \
              states no priority prices, and bills the standard price). Bedrock's priority tier \
              costs more than standard; not priced rather than priced low.",
        applies: |o| o.case.service_tier.is_some() && o.refused_because("has no prices for"),
    },
    Exception {
        name: "per-request price",
        why: "the entry states `input_cost_per_request` (Perplexity's online models: $5 per \
              1,000 requests besides the tokens). LiteLLM's model info drops the field and \
              never bills it; we add it to every call.",
        applies: |o| {
            let per_request = o.entry.get("input_cost_per_request").and_then(Value::as_f64);
            match (o.ours, per_request) {
                (Ok(ours), Some(fee)) => {
                    let fee = Decimal::from_f64(fee).unwrap_or_default();
                    significant(*ours - fee) == significant(o.case.theirs)
                }
                _ => false,
            }
        },
    },
    Exception {
        name: "service tier above a threshold without the tier's price",
        why: "a priority or flex call past a prompt-length threshold, where the entry states the \
              long-context price only for the standard tier. LiteLLM bills the standard \
              long-context price: a priority call gets cheaper past the threshold (gpt-5.4: \
              output 3e-05 at 272,000 prompt tokens, 2.25e-05 at 272,001, while \
              azure_ai/gpt-5.4 states 4.5e-05 = 1.5 × priority) and a flex call 4 × dearer \
              (gemini-2.5-pro). OpenAI and Google apply both multipliers; the file does not \
              state the product, so not priced.",
        applies: |o| o.case.service_tier.is_some() && o.refused_because("service-tier"),
    },
    Exception {
        name: "batch call without a batch price for what it used",
        why: "a batch call past a threshold with no batch price above it (LiteLLM: the flat \
              batch price, though the provider's long-context premium applies to batches: the \
              entries that state it, xAI and Gemini, charge half the long-context price), with \
              cache reads or writes and no batch cache price (LiteLLM: cached tokens at the \
              batch input price, dearer than outside a batch), or with 1-hour writes (LiteLLM: \
              the 5-minute batch price). Not priced rather than guessed.",
        applies: |o| o.case.service_tier.as_deref() == Some("batch") && o.refused_because("batch"),
    },
    Exception {
        name: "Perplexity's calculator ignores cache and long-context prices",
        why: "LiteLLM's perplexity calculator, when Perplexity reports no cost itself, bills \
              every prompt token at the input price: the cache-read and cache-write prices and \
              the 272k tier that the entry states (perplexity/openai/gpt-5.4, at OpenAI's prices) are never \
              applied. We apply the prices the entry states.",
        applies: |o| {
            o.provider() == "perplexity"
                && o.ours.is_ok()
                && (o.case.usage.cache_read_tokens.unwrap_or(0) > 0
                    || o.case.usage.cache_write_tokens.unwrap_or(0) > 0
                    || o.entry.keys().any(|k| k.contains("_above_")))
        },
    },
    Exception {
        name: "the provider's calculator drops the service tier",
        why: "LiteLLM's calculators for fireworks_ai, xai, deepseek, tencent, the dashscope \
              family and perplexity never see the service tier, so a priority call is billed at \
              the standard price although the entry states priority prices (Fireworks: 1.2 to \
              1.6 × standard). We bill the tier the provider says served the call.",
        applies: |o| {
            let provider = o.provider();
            o.case.service_tier.is_some()
                && [
                    "fireworks_ai",
                    "xai",
                    "deepseek",
                    "tencent",
                    "dashscope",
                    "qwencloud",
                    "qwen_ai_platform",
                    "perplexity",
                ]
                .iter()
                .any(|p| provider.starts_with(p))
                && o.ours.is_ok()
                && o.standard.map(significant) == Some(significant(o.case.theirs))
        },
    },
];

fn d(text: &str) -> Decimal {
    Decimal::from_str_exact(text)
        .or_else(|_| Decimal::from_scientific(text))
        .unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// `value` rounded to 15 significant digits.
fn significant(value: Decimal) -> Decimal {
    if value.is_zero() {
        return Decimal::ZERO;
    }
    // value = mantissa × 10^-scale: its leading digit is at 10^(digits − 1 − scale).
    let digits = value.mantissa().unsigned_abs().to_string().len() as i64;
    let magnitude = digits - 1 - i64::from(value.scale());
    let places = (14 - magnitude).clamp(0, 28) as u32;
    value
        .round_dp_with_strategy(places, RoundingStrategy::MidpointNearestEven)
        .normalize()
}

fn count(usage: &Value, name: &str) -> u64 {
    usage[name].as_u64().unwrap_or(0)
}

fn parse_cases(text: &str) -> (Value, Vec<Case>) {
    let mut lines = text.lines();
    let header: Value = serde_json::from_str(lines.next().expect("a header line")).unwrap();
    let default_at = header["default_timestamp"]
        .as_str()
        .map(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap()
        })
        .expect("default_timestamp");
    let cases = lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let line: Value = serde_json::from_str(l).unwrap();
            assert!(line.get("error").is_none(), "LiteLLM failed on {line}");
            let u = &line["usage"];
            let writes_1h = count(u, "cache_write_1h_tokens");
            let usage = TokenUsage {
                input_tokens: Some(count(u, "input_tokens")),
                output_tokens: Some(count(u, "output_tokens")),
                cache_read_tokens: Some(count(u, "cache_read_tokens")),
                cache_write_tokens: Some(count(u, "cache_write_5m_tokens") + writes_1h),
                cache_write_1h_tokens: Some(writes_1h),
                reasoning_tokens: Some(count(u, "reasoning_tokens")),
                output_optional: false,
            };
            let at = line["timestamp"].as_str().map_or(default_at, |t| {
                time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                    .unwrap()
            });
            let theirs = d(line["prompt_cost"].as_str().unwrap())
                + d(line["completion_cost"].as_str().unwrap());
            Case {
                service_tier: line["service_tier"].as_str().map(str::to_owned),
                line,
                usage,
                at,
                theirs,
            }
        })
        .collect();
    (header, cases)
}

/// Runs every case; returns how many cases each exception explained. Panics listing the cases
/// no exception explains.
fn check(price_file: &Path, text: &str) -> BTreeMap<&'static str, usize> {
    let json = std::fs::read_to_string(price_file).unwrap();
    let file: serde_json::Map<String, Value> = serde_json::from_str(&json).unwrap();
    let (table, report) = PriceTable::from_litellm_json_with_report(&json).expect("loads");
    let (_, cases) = parse_cases(text);
    assert!(!cases.is_empty());
    let mut explained: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut unexplained = Vec::new();
    let mut agreed = 0;
    for case in &cases {
        let key = case.line["resolved_key"]
            .as_str()
            .or(case.line["model"].as_str())
            .unwrap();
        let entry = file[key].as_object().unwrap();
        let mut context = PricingContext::default().at(case.at);
        if let Some(tier) = &case.service_tier {
            context = context.with_service_tier(tier.clone());
        }
        // A name as requested resolves, for its provider, to the entry LiteLLM priced.
        if let Some(requested) = case.line["request_model"].as_str() {
            let provider = case.line["custom_llm_provider"].as_str();
            let found = table.resolve_for(provider, requested).map(|(name, _)| name);
            // An entry without token prices is not in the table (the first exception).
            let listed = table.resolve(key).is_some_and(|(name, _)| name == key);
            if found != Some(key) && listed {
                unexplained.push(format!(
                    "{requested} as {provider:?} resolves to {found:?}, LiteLLM to {key}"
                ));
            }
        }
        // The entry LiteLLM priced, by its exact key.
        let ours = table.cost_with(key, &case.usage, &context);
        if let Ok(ours) = &ours {
            if significant(*ours) == significant(case.theirs) {
                agreed += 1;
                continue;
            }
        }
        let standard = table
            .cost_with(key, &case.usage, &PricingContext::default().at(case.at))
            .ok();
        let outcome = Outcome {
            case,
            entry,
            ours: &ours,
            standard,
        };
        match EXCEPTIONS.iter().find(|e| (e.applies)(&outcome)) {
            Some(exception) => *explained.entry(exception.name).or_default() += 1,
            None => unexplained.push(format!(
                "{key} {} tier={:?}: ours {:?}, LiteLLM {}",
                case.line["case"], case.service_tier, ours, case.theirs
            )),
        }
    }
    eprintln!(
        "litellm oracle: {} cases, {agreed} agree, explained: {explained:?}; refused rules: {:?}",
        cases.len(),
        report.refused.keys().collect::<Vec<_>>()
    );
    assert!(
        unexplained.is_empty(),
        "{} of {} cases differ from LiteLLM with no listed reason, e.g.:\n{}",
        unexplained.len(),
        cases.len(),
        unexplained
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    explained
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/litellm_oracle")
}

#[test]
fn the_committed_slice_agrees_with_litellm() {
    let text = std::fs::read_to_string(fixtures().join("oracle_subset.jsonl")).unwrap();
    check(&fixtures().join("prices_subset.json"), &text);
}

/// Every chat, responses and completion model of LiteLLM's bundled file, with the pinned
/// LiteLLM itself.
#[test]
fn every_chat_model_of_the_bundled_file_agrees_with_litellm_or_is_explained() {
    let setup = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/litellm/setup.sh");
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let installed = Command::new("bash")
        .arg(&setup)
        .arg("--python")
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed && !ci {
        eprintln!(
            "SKIPPED: the LiteLLM venv is not installed (bash scripts/litellm/setup.sh --install)"
        );
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let cases = out.path().join("oracle.jsonl");
    let status = Command::new("bash")
        .arg(&setup)
        .arg(&cases)
        .args(["--modes", "chat,responses,completion"])
        .status()
        .expect("runs setup.sh");
    assert!(status.success(), "scripts/litellm/setup.sh failed");
    let text = std::fs::read_to_string(&cases).unwrap();
    let header: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(header["litellm_version"], "1.106.2");
    let price_file = PathBuf::from(header["price_file"].as_str().unwrap());
    let explained = check(&price_file, &text);
    // Every listed exception still happens: a rule that no longer differs is taken off the list.
    for exception in EXCEPTIONS {
        assert!(
            explained.contains_key(exception.name),
            "the exception {:?} explains no case any more ({})",
            exception.name,
            exception.why
        );
    }
}
