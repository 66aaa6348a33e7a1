//! The built-in price list: current Anthropic, OpenAI and Google models.
//!
//! Figures are USD per million tokens, as the providers publish them, taken on
//! [`PRICES_AS_OF`] from LiteLLM's `model_prices_and_context_window.json` (BerriAI/litellm,
//! commit `00035b69f416be24e2e323c13198d9b7d2d1bdf9`, the newest version available to us) and
//! checked against the list prices the providers state:
//!
//! - Anthropic: cache writes are the 5-minute writes (1.25 × input), cache reads 0.1 × input.
//!   Sonnet 4 and 4.5 bill a whole request above 200k prompt tokens at the long-context rates.
//! - OpenAI: no separate cache-write charge, so cache writes cost the input price (`-`).
//! - Google: cache reads as listed for implicit/explicit caching; cache storage per hour is not
//!   a token price and is not modelled. Gemini 2.5 Pro bills above 200k prompt tokens at the
//!   long-context rates. Audio input, billed higher than text by Google, is not distinguished.
//!
//! Prices change: users override any row with `PriceTable::with_price` or load a current
//! LiteLLM file with `PriceTable::from_litellm_file`.

use rust_decimal::Decimal;

use super::price::{LongContextTier, ModelPrice};

/// The date the built-in prices were taken.
pub(crate) const PRICES_AS_OF: &str = "2026-11-24";

/// One model's base prices. `-` in a cache column: the input price.
struct Row {
    model: &'static str,
    input: Decimal,
    output: Decimal,
    cache_read: Option<Decimal>,
    cache_write: Option<Decimal>,
}

const fn row(
    model: &'static str,
    input: &str,
    output: &str,
    cache_read: &str,
    cache_write: &str,
) -> Row {
    Row {
        model,
        input: per_token(input),
        output: per_token(output),
        cache_read: optional(cache_read),
        cache_write: optional(cache_write),
    }
}

#[rustfmt::skip]
const MODELS: &[Row] = &[
    //  model                       input     output   cache read  cache write
    // Anthropic
    row("claude-opus-4-8",          "5",      "25",    "0.50",     "6.25"),
    row("claude-opus-4-7",          "5",      "25",    "0.50",     "6.25"),
    row("claude-opus-4-6",          "5",      "25",    "0.50",     "6.25"),
    row("claude-opus-4-5",          "5",      "25",    "0.50",     "6.25"),
    row("claude-opus-4-1",          "15",     "75",    "1.50",     "18.75"),
    row("claude-opus-4",            "15",     "75",    "1.50",     "18.75"),
    row("claude-sonnet-5",          "2",      "10",    "0.20",     "2.50"),
    row("claude-sonnet-4-6",        "3",      "15",    "0.30",     "3.75"),
    row("claude-sonnet-4-5",        "3",      "15",    "0.30",     "3.75"),
    row("claude-sonnet-4",          "3",      "15",    "0.30",     "3.75"),
    row("claude-haiku-4-5",         "1",      "5",     "0.10",     "1.25"),
    row("claude-3-7-sonnet",        "3",      "15",    "0.30",     "3.75"),
    row("claude-3-5-sonnet",        "3",      "15",    "0.30",     "3.75"),
    row("claude-3-5-haiku",         "0.80",   "4",     "0.08",     "1"),
    // Anthropic lists Haiku 3's cache prices rounded: $0.03 and $0.30, not 0.1× and 1.25×.
    row("claude-3-haiku",           "0.25",   "1.25",  "0.03",     "0.30"),
    // OpenAI
    row("gpt-5.2",                  "1.75",   "14",    "0.175",    "-"),
    row("gpt-5.1",                  "1.25",   "10",    "0.125",    "-"),
    row("gpt-5",                    "1.25",   "10",    "0.125",    "-"),
    row("gpt-5-mini",               "0.25",   "2",     "0.025",    "-"),
    row("gpt-5-nano",               "0.05",   "0.40",  "0.005",    "-"),
    row("gpt-4.1",                  "2",      "8",     "0.50",     "-"),
    row("gpt-4.1-mini",             "0.40",   "1.60",  "0.10",     "-"),
    row("gpt-4.1-nano",             "0.10",   "0.40",  "0.025",    "-"),
    row("gpt-4o",                   "2.50",   "10",    "1.25",     "-"),
    // The first gpt-4o snapshot kept its launch price: it must not fall back to `gpt-4o`.
    row("gpt-4o-2024-05-13",        "5",      "15",    "-",        "-"),
    row("gpt-4o-mini",              "0.15",   "0.60",  "0.075",    "-"),
    // LiteLLM prices `chatgpt-4o-latest` at $5/$15, not as an alias of `gpt-4o`.
    row("chatgpt-4o-latest",        "5",      "15",    "-",        "-"),
    row("o3",                       "2",      "8",     "0.50",     "-"),
    row("o3-mini",                  "1.10",   "4.40",  "0.55",     "-"),
    row("o4-mini",                  "1.10",   "4.40",  "0.275",    "-"),
    row("o1",                       "15",     "60",    "7.50",     "-"),
    row("text-embedding-3-small",   "0.02",   "0",     "-",        "-"),
    row("text-embedding-3-large",   "0.13",   "0",     "-",        "-"),
    // Google
    row("gemini-2.5-pro",           "1.25",   "10",    "0.125",    "-"),
    // LiteLLM's newest file has $0.03 cached input for 2.5 Flash (Google's earlier list: $0.075).
    row("gemini-2.5-flash",         "0.30",   "2.50",  "0.03",     "-"),
    row("gemini-2.5-flash-lite",    "0.10",   "0.40",  "0.01",     "-"),
    row("gemini-2.0-flash",         "0.10",   "0.40",  "0.025",    "-"),
];

/// A long-context tier: above `above` prompt tokens, every token of the request costs these.
struct TierRow {
    model: &'static str,
    tier: LongContextTier,
}

const fn tier(
    model: &'static str,
    above: u64,
    input: &str,
    output: &str,
    cache_read: &str,
    cache_write: &str,
) -> TierRow {
    TierRow {
        model,
        tier: LongContextTier {
            above_input_tokens: above,
            input: optional(input),
            output: optional(output),
            cache_read: optional(cache_read),
            cache_write: optional(cache_write),
            cache_write_1h: None,
        },
    }
}

#[rustfmt::skip]
const LONG_CONTEXT: &[TierRow] = &[
    //   model                  above      input   output   cache read  cache write
    tier("claude-sonnet-4-5",   200_000,   "6",    "22.50", "0.60",     "7.50"),
    tier("claude-sonnet-4",     200_000,   "6",    "22.50", "0.60",     "7.50"),
    tier("gemini-2.5-pro",      200_000,   "2.50", "15",    "0.25",     "-"),
];

/// Names the providers (or LiteLLM) use for a priced model that resolution would not find by
/// stripping prefixes and snapshot suffixes, or that deserve to be stated.
#[rustfmt::skip]
const ALIASES: &[(&str, &str)] = &[
    //  alias                        model
    ("claude-3-5-sonnet-latest",     "claude-3-5-sonnet"),
    ("claude-3-7-sonnet-latest",     "claude-3-7-sonnet"),
    ("claude-3-5-haiku-latest",      "claude-3-5-haiku"),
    ("claude-opus-4-0",              "claude-opus-4"),
    ("claude-sonnet-4-0",            "claude-sonnet-4"),
    ("claude-4-opus",                "claude-opus-4"),
    ("claude-4-sonnet",              "claude-sonnet-4"),
    ("gpt-5-chat",                   "gpt-5"),
    ("gpt-5-chat-latest",            "gpt-5"),
];

/// The built-in models with their prices (long-context tiers applied) and the aliases.
pub(crate) fn models() -> impl Iterator<Item = (&'static str, ModelPrice)> {
    MODELS.iter().map(|row| {
        // Anthropic bills a 1-hour cache write at 2 × the input price, in every tier.
        let one_hour = |input: Option<Decimal>| {
            row.model
                .starts_with("claude-")
                .then(|| input.map(|input| input * Decimal::TWO))
                .flatten()
        };
        let mut price = ModelPrice::per_token(row.input, row.output);
        price.cache_read = row.cache_read;
        price.cache_write = row.cache_write;
        price.cache_write_1h = one_hour(Some(row.input));
        price.long_context = LONG_CONTEXT
            .iter()
            .filter(|tier| tier.model == row.model)
            .map(|tier| {
                let mut tier = tier.tier.clone();
                tier.cache_write_1h = one_hour(tier.input);
                tier
            })
            .collect();
        (row.model, price)
    })
}

/// The built-in aliases, `(alias, model)`.
pub(crate) fn aliases() -> impl Iterator<Item = (&'static str, &'static str)> {
    ALIASES.iter().copied()
}

/// `-` (the fallback price) or a per-million figure.
const fn optional(per_million: &str) -> Option<Decimal> {
    match per_million.as_bytes() {
        b"-" => None,
        _ => Some(per_token(per_million)),
    }
}

/// Parses a per-million decimal literal such as `"0.075"` into USD per token, exactly.
///
/// Evaluated at compile time for the tables above, so a malformed figure fails the build.
const fn per_token(per_million: &str) -> Decimal {
    let bytes = per_million.as_bytes();
    assert!(!bytes.is_empty(), "empty price");
    let mut mantissa: u64 = 0;
    let mut decimals: u32 = 0;
    let mut seen_point = false;
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if byte == b'.' {
            assert!(!seen_point, "a price has at most one decimal point");
            seen_point = true;
        } else {
            assert!(
                byte.is_ascii_digit(),
                "a price is digits and one decimal point"
            );
            mantissa = mantissa * 10 + (byte - b'0') as u64;
            if seen_point {
                decimals += 1;
            }
        }
        i += 1;
    }
    // Per million → per token: the same digits, six more decimal places.
    Decimal::from_parts(
        mantissa as u32,
        (mantissa >> 32) as u32,
        0,
        false,
        decimals + 6,
    )
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    #[test]
    fn literals_become_exact_per_token_prices() {
        assert_eq!(per_token("3"), d("0.000003"));
        assert_eq!(per_token("0.075"), d("0.000000075"));
        assert_eq!(per_token("22.50"), d("0.0000225"));
        assert_eq!(per_token("0"), Decimal::ZERO);
        assert_eq!(optional("-"), None);
    }

    #[test]
    fn every_model_appears_once() {
        let mut seen = HashSet::new();
        for row in MODELS {
            assert!(seen.insert(row.model), "{} twice", row.model);
        }
    }

    #[test]
    fn every_tier_and_alias_names_a_model() {
        let models: HashSet<_> = MODELS.iter().map(|row| row.model).collect();
        for tier in LONG_CONTEXT {
            assert!(
                models.contains(tier.model),
                "tier for unknown {}",
                tier.model
            );
        }
        for (alias, model) in ALIASES {
            assert!(models.contains(model), "alias {alias} → unknown {model}");
            assert!(!models.contains(alias), "alias {alias} shadows a model");
        }
    }

    #[test]
    fn anthropic_cache_prices_follow_the_published_multipliers() {
        let multiplied = |model: &str| model.starts_with("claude-") && model != "claude-3-haiku";
        for (model, price) in models().filter(|(model, _)| multiplied(model)) {
            assert_eq!(price.cache_write(), price.input() * d("1.25"), "{model}");
            assert_eq!(price.cache_read(), price.input() * d("0.1"), "{model}");
        }
    }
}
