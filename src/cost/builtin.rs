//! The built-in price list: current Anthropic, OpenAI and Google models.
//!
//! Figures are USD per million tokens, as the providers publish them. Every model names where
//! its figures come from and when they were checked, in [`ModelPrice::source`]:
//!
//! ```text
//! <source>[, <source>...] <YYYY-MM-DD>
//! https://platform.claude.com/docs/en/about-claude/pricing 2026-12-06
//! ```
//!
//! Each source is a provider's page, or `LiteLLM 1.106.2` (the `model_prices_and_context_window`
//! file bundled with LiteLLM 1.106.2) where a figure is stated there and on no provider page we
//! could read; the date is [`PRICES_AS_OF`], the day the figures were checked against those
//! sources (stored copies of the pages, read through a search index, not live). The standard
//! prices of every model LiteLLM 1.106.2 still lists agree with it.
//!
//! # What the providers state
//!
//! - **Anthropic** (<https://platform.claude.com/docs/en/about-claude/pricing>): cache writes
//!   are 1.25 × input for 5 minutes and 2 × input for one hour, cache reads 0.1 × input
//!   ("5-minute cache write tokens are 1.25 times the base input tokens price; 1-hour cache
//!   write tokens are 2 times …; cache read tokens are 0.1 times"), Haiku 3 excepted ($0.30,
//!   $0.50 and $0.03 as listed). Batches: "a 50% discount on both input and output tokens";
//!   LiteLLM 1.106.2 states batch cache writes and reads at 50% too, and summaries of the page
//!   before April 2026 say the same 50% applied to the long-context rates ("Batch halves costs
//!   at both tiers"). So every Anthropic price here is halved in the `batch` tier; for 1-hour
//!   writes in a batch no figure is stated anywhere, they follow the same 50% (2 × input × ½).
//!   Opus 4 and 4.1 are "retired, except on Bedrock and Google Cloud", Sonnet 4 was retired on
//!   the Claude API on 2026-06-15 (release notes), Sonnet 4.5's page gives 2026-11-30 as its
//!   retirement: their rows stay, to price stored calls and those routes.
//! - **Claude Sonnet 4.5's long-context premium (issue 23): none on the Anthropic API any
//!   more.** Anthropic's own page for the model
//!   (<https://platform.claude.com/docs/en/models/sonnet-4-5/overview>) now states "Context
//!   window: 200K tokens", and the 1M-token beta (`context-1m-2025-08-07`) for Sonnet 4.5 and
//!   Sonnet 4 ended on 2026-04-30: "requests exceeding 200,000 tokens now return an error" (the
//!   release notes as reported by 24-ai.news and aiforanything.io; that release-note entry is
//!   not in the index). Until then the premium applied: the release notes of February 2026
//!   (<https://platform.claude.com/docs/zh-CN/release-notes/api>, translated) say the 1M beta is
//!   available for Opus 4.6 "as well as Sonnet 4.5 and Sonnet 4; requests over 200K input
//!   tokens are billed at long-context pricing", and the pricing page listed "> 200K input
//!   tokens: Input $6 / MTok, Output $22.50 / MTok", for the whole request, cache prices scaled
//!   alike. LiteLLM dropped the tier from `claude-sonnet-4-5` because an Anthropic API call above
//!   200k no longer exists; its Bedrock and Vertex entries keep it because those routes still
//!   serve 1M tokens at those rates. **The tier stays here**: it never applies to a current
//!   Anthropic API call, it prices calls made before 2026-04-30 right (`llm-audit reprice`), and
//!   Bedrock's global endpoint (`global.anthropic.claude-sonnet-4-5-…-v1:0`) resolves to this
//!   row. Opus 4.6, Sonnet 4.6 and later bill the full 1M window at the standard price (GA on
//!   2026-03-13): no tier.
//! - **OpenAI** (<https://developers.openai.com/api/docs/pricing>; the page itself is not in the
//!   index, its figures are as in LiteLLM 1.106.2): no charge for cache writes, so they cost the
//!   input price (in a batch, the batch input price; Google's likewise). Batch: "Save 50% on
//!   inputs and outputs"; a batch price for cached input is stated for the GPT-5 family only
//!   (LiteLLM's `cache_read_input_token_cost_batches`), so a batch call of an older model with
//!   cached tokens is not priced. Flex
//!   (<https://developers.openai.com/api/docs/guides/flex-processing>): "Tokens are priced at
//!   Batch API rates, with additional discounts from prompt caching"; the models and cached
//!   figures are LiteLLM's (o4-mini's cached flex price is LiteLLM's $0.138, a rounding of the
//!   $0.1375 the rule gives, kept as stated). Priority
//!   (<https://openai.com/api-fast-mode/>: "Priority processing was renamed Fast mode on July
//!   30, 2026"): the page's figures; o4-mini's are LiteLLM's.
//!   Above 272k prompt tokens OpenAI bills GPT-5.4 and later at long-context rates; no such
//!   model is in this table (GPT-5.2 and earlier have no tier).
//! - **Google** (<https://ai.google.dev/gemini-api/docs/pricing>; not in the index either, the
//!   figures are LiteLLM's `gemini/…` entries, the Gemini API's, not Vertex AI's): cache reads
//!   as listed for implicit/explicit caching; cache storage per hour is not a token price and
//!   is not modelled; audio input, billed higher, is not distinguished. Gemini 2.5 Pro bills a
//!   prompt above 200k tokens at the long-context rates. Batch
//!   (<https://developers.googleblog.com/scale-your-ai-workloads-batch-mode-gemini-api>):
//!   "Batch jobs are priced at 50% less than the standard rate for a given model"; cached
//!   input in a batch costs the standard cached price (LiteLLM); no batch price above 200k is
//!   stated, so such a batch call is not priced. Flex and priority prices are LiteLLM's.
//!   Gemini 2.0 Flash and `chatgpt-4o-latest` are no longer in LiteLLM's file, and no batch
//!   price is stated for them: a batch call of either is not priced.
//!
//! A call served at a service tier its model has no prices for is not priced (see
//! [`ModelPrice::cost_with`]). Prices change: users override any row with
//! `PriceTable::with_price` or load a current LiteLLM file with `PriceTable::from_litellm_file`.

use std::collections::BTreeSet;

use rust_decimal::Decimal;

use super::price::{LongContextTier, ModelPrice, Rates, ServiceTierRates};

/// The date the built-in prices were checked against their sources.
pub(crate) const PRICES_AS_OF: &str = "2026-12-06";

/// Where a figure is stated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Source {
    AnthropicPricing,
    OpenAiPricing,
    OpenAiFlex,
    OpenAiFast,
    GooglePricing,
    GoogleBatch,
    LiteLlm,
}

impl Source {
    const fn name(self) -> &'static str {
        match self {
            Source::AnthropicPricing => "https://platform.claude.com/docs/en/about-claude/pricing",
            Source::OpenAiPricing => "https://developers.openai.com/api/docs/pricing",
            Source::OpenAiFlex => "https://developers.openai.com/api/docs/guides/flex-processing",
            Source::OpenAiFast => "https://openai.com/api-fast-mode/",
            Source::GooglePricing => "https://ai.google.dev/gemini-api/docs/pricing",
            Source::GoogleBatch => {
                "https://developers.googleblog.com/scale-your-ai-workloads-batch-mode-gemini-api"
            }
            Source::LiteLlm => "LiteLLM 1.106.2",
        }
    }
}

/// Who sells a model, and so where its list prices are and how it bills cache writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Provider {
    Anthropic,
    OpenAi,
    Google,
}

impl Provider {
    fn of(model: &str) -> Self {
        if model.starts_with("claude-") {
            Provider::Anthropic
        } else if model.starts_with("gemini-") {
            Provider::Google
        } else {
            Provider::OpenAi
        }
    }

    const fn pricing_page(self) -> Source {
        match self {
            Provider::Anthropic => Source::AnthropicPricing,
            Provider::OpenAi => Source::OpenAiPricing,
            Provider::Google => Source::GooglePricing,
        }
    }

    /// The 1-hour cache-write price for an input price: Anthropic bills 2 × input, in every
    /// tier; the others have no 1-hour writes.
    fn one_hour_write(self, input: Option<Decimal>) -> Option<Decimal> {
        match self {
            Provider::Anthropic => input.map(|input| input * Decimal::TWO),
            Provider::OpenAi | Provider::Google => None,
        }
    }
}

/// What the provider states about a model's batch prices; the one rule that makes the `batch`
/// service tier from the row is [`batch_tier`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Batch {
    /// No batch price is stated: a batch call is not priced.
    No,
    /// Every price at 50%: input, output, cache writes (5-minute and 1-hour) and reads, in
    /// every long-context tier (Anthropic; OpenAI's GPT-5 family, whose cached input LiteLLM
    /// states at 50%).
    Half,
    /// Input, output and cache writes at 50%, and no batch price for cached input (OpenAI
    /// before GPT-5).
    HalfUncached,
    /// Input, output and cache writes at 50%, cached input at its standard price, and no
    /// batch price above a long-context threshold (Google).
    HalfCachedAtList,
}

/// One model's standard prices and its batch rule. `-` in a cache column: the input price.
struct Row {
    model: &'static str,
    input: Decimal,
    output: Decimal,
    cache_read: Option<Decimal>,
    cache_write: Option<Decimal>,
    batch: Batch,
}

const fn row(
    model: &'static str,
    input: &str,
    output: &str,
    cache_read: &str,
    cache_write: &str,
    batch: Batch,
) -> Row {
    Row {
        model,
        input: per_token(input),
        output: per_token(output),
        cache_read: optional(cache_read),
        cache_write: optional(cache_write),
        batch,
    }
}

use Batch::{Half, HalfCachedAtList, HalfUncached};

#[rustfmt::skip]
const MODELS: &[Row] = &[
    //  model                       input     output   cache read  cache write  batch
    // Anthropic
    row("claude-opus-4-8",          "5",      "25",    "0.50",     "6.25",      Half),
    row("claude-opus-4-7",          "5",      "25",    "0.50",     "6.25",      Half),
    row("claude-opus-4-6",          "5",      "25",    "0.50",     "6.25",      Half),
    row("claude-opus-4-5",          "5",      "25",    "0.50",     "6.25",      Half),
    row("claude-opus-4-1",          "15",     "75",    "1.50",     "18.75",     Half),
    row("claude-opus-4",            "15",     "75",    "1.50",     "18.75",     Half),
    row("claude-sonnet-5",          "2",      "10",    "0.20",     "2.50",      Half),
    row("claude-sonnet-4-6",        "3",      "15",    "0.30",     "3.75",      Half),
    row("claude-sonnet-4-5",        "3",      "15",    "0.30",     "3.75",      Half),
    row("claude-sonnet-4",          "3",      "15",    "0.30",     "3.75",      Half),
    row("claude-haiku-4-5",         "1",      "5",     "0.10",     "1.25",      Half),
    row("claude-3-7-sonnet",        "3",      "15",    "0.30",     "3.75",      Half),
    row("claude-3-5-sonnet",        "3",      "15",    "0.30",     "3.75",      Half),
    row("claude-3-5-haiku",         "0.80",   "4",     "0.08",     "1",         Half),
    // Anthropic lists Haiku 3's cache prices rounded: $0.03 and $0.30, not 0.1× and 1.25×.
    row("claude-3-haiku",           "0.25",   "1.25",  "0.03",     "0.30",      Half),
    // OpenAI
    row("gpt-5.2",                  "1.75",   "14",    "0.175",    "-",         Half),
    row("gpt-5.1",                  "1.25",   "10",    "0.125",    "-",         Half),
    row("gpt-5",                    "1.25",   "10",    "0.125",    "-",         Half),
    row("gpt-5-mini",               "0.25",   "2",     "0.025",    "-",         Half),
    row("gpt-5-nano",               "0.05",   "0.40",  "0.005",    "-",         Half),
    row("gpt-4.1",                  "2",      "8",     "0.50",     "-",         HalfUncached),
    row("gpt-4.1-mini",             "0.40",   "1.60",  "0.10",     "-",         HalfUncached),
    row("gpt-4.1-nano",             "0.10",   "0.40",  "0.025",    "-",         HalfUncached),
    row("gpt-4o",                   "2.50",   "10",    "1.25",     "-",         HalfUncached),
    // The first gpt-4o snapshot kept its launch price: it must not fall back to `gpt-4o`.
    row("gpt-4o-2024-05-13",        "5",      "15",    "-",        "-",         HalfUncached),
    row("gpt-4o-mini",              "0.15",   "0.60",  "0.075",    "-",         HalfUncached),
    // LiteLLM prices `chatgpt-4o-latest` at $5/$15, not as an alias of `gpt-4o`; the Batch API
    // never served it.
    row("chatgpt-4o-latest",        "5",      "15",    "-",        "-",         Batch::No),
    row("o3",                       "2",      "8",     "0.50",     "-",         HalfUncached),
    row("o3-mini",                  "1.10",   "4.40",  "0.55",     "-",         HalfUncached),
    row("o4-mini",                  "1.10",   "4.40",  "0.275",    "-",         HalfUncached),
    row("o1",                       "15",     "60",    "7.50",     "-",         HalfUncached),
    row("text-embedding-3-small",   "0.02",   "0",     "-",        "-",         HalfUncached),
    row("text-embedding-3-large",   "0.13",   "0",     "-",        "-",         HalfUncached),
    // Google
    row("gemini-2.5-pro",           "1.25",   "10",    "0.125",    "-",         HalfCachedAtList),
    // LiteLLM's newest file has $0.03 cached input for 2.5 Flash (Google's earlier list: $0.075).
    row("gemini-2.5-flash",         "0.30",   "2.50",  "0.03",     "-",         HalfCachedAtList),
    row("gemini-2.5-flash-lite",    "0.10",   "0.40",  "0.01",     "-",         HalfCachedAtList),
    row("gemini-2.0-flash",         "0.10",   "0.40",  "0.025",    "-",         Batch::No),
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

/// Sonnet 4 and 4.5: Anthropic's pricing page until the 1M beta ended (see the module docs);
/// LiteLLM 1.106.2's Bedrock and Vertex entries. Gemini 2.5 Pro: LiteLLM's `gemini/` entry.
#[rustfmt::skip]
const LONG_CONTEXT: &[TierRow] = &[
    //   model                  above      input   output   cache read  cache write
    tier("claude-sonnet-4-5",   200_000,   "6",    "22.50", "0.60",     "7.50"),
    tier("claude-sonnet-4",     200_000,   "6",    "22.50", "0.60",     "7.50"),
    tier("gemini-2.5-pro",      200_000,   "2.50", "15",    "0.25",     "-"),
];

/// A service tier's prices stated as figures (flex, priority), flat (`above` 0) or above a
/// prompt length.
struct ServiceRow {
    model: &'static str,
    tier: &'static str,
    above: u64,
    input: Decimal,
    output: Decimal,
    cache_read: Option<Decimal>,
    source: Source,
}

const fn service(
    model: &'static str,
    tier: &'static str,
    above: u64,
    input: &str,
    output: &str,
    cache_read: &str,
    source: Source,
) -> ServiceRow {
    ServiceRow {
        model,
        tier,
        above,
        input: per_token(input),
        output: per_token(output),
        cache_read: optional(cache_read),
        source,
    }
}

use Source::{LiteLlm, OpenAiFast};

/// `priority` is OpenAI's Fast mode (`service_tier: priority` or `fast`); `-` cached: the
/// tier's input price (the May 2024 gpt-4o snapshot has no cached price).
#[rustfmt::skip]
const SERVICE_TIERS: &[ServiceRow] = &[
    //      model                    tier        above    input    output   cached    source
    service("gpt-5.2",               "priority", 0,       "3.50",  "28",    "0.35",   OpenAiFast),
    service("gpt-5.1",               "priority", 0,       "2.50",  "20",    "0.25",   OpenAiFast),
    service("gpt-5",                 "priority", 0,       "2.50",  "20",    "0.25",   OpenAiFast),
    service("gpt-5-mini",            "priority", 0,       "0.45",  "3.60",  "0.045",  OpenAiFast),
    service("gpt-4.1",               "priority", 0,       "3.50",  "14",    "0.875",  OpenAiFast),
    service("gpt-4.1-mini",          "priority", 0,       "0.70",  "2.80",  "0.175",  OpenAiFast),
    service("gpt-4.1-nano",          "priority", 0,       "0.20",  "0.80",  "0.05",   OpenAiFast),
    service("gpt-4o",                "priority", 0,       "4.25",  "17",    "2.125",  OpenAiFast),
    service("gpt-4o-2024-05-13",     "priority", 0,       "8.75",  "26.25", "-",      OpenAiFast),
    service("gpt-4o-mini",           "priority", 0,       "0.25",  "1",     "0.125",  OpenAiFast),
    service("o3",                    "priority", 0,       "3.50",  "14",    "0.875",  OpenAiFast),
    service("o4-mini",               "priority", 0,       "2",     "8",     "0.50",   LiteLlm),
    // Flex: Batch API rates (the flex guide); which models, and their cached figures: LiteLLM.
    service("gpt-5.2",               "flex",     0,       "0.875", "7",     "0.0875", LiteLlm),
    service("gpt-5.1",               "flex",     0,       "0.625", "5",     "0.0625", LiteLlm),
    service("gpt-5",                 "flex",     0,       "0.625", "5",     "0.0625", LiteLlm),
    service("gpt-5-mini",            "flex",     0,       "0.125", "1",     "0.0125", LiteLlm),
    service("gpt-5-nano",            "flex",     0,       "0.025", "0.20",  "0.0025", LiteLlm),
    service("o3",                    "flex",     0,       "1",     "4",     "0.25",   LiteLlm),
    service("o4-mini",               "flex",     0,       "0.55",  "2.20",  "0.138",  LiteLlm),
    // Gemini API flex and priority (LiteLLM's `gemini/` entries); no flex price above 200k.
    service("gemini-2.5-pro",        "flex",     0,       "0.625", "5",     "0.125",  LiteLlm),
    service("gemini-2.5-pro",        "priority", 0,       "2.25",  "18",    "0.225",  LiteLlm),
    service("gemini-2.5-pro",        "priority", 200_000, "4.50",  "27",    "0.45",   LiteLlm),
    service("gemini-2.5-flash",      "flex",     0,       "0.15",  "1.25",  "0.03",   LiteLlm),
    service("gemini-2.5-flash",      "priority", 0,       "0.54",  "4.50",  "0.054",  LiteLlm),
    service("gemini-2.5-flash-lite", "flex",     0,       "0.05",  "0.20",  "0.01",   LiteLlm),
    service("gemini-2.5-flash-lite", "priority", 0,       "0.18",  "0.72",  "0.018",  LiteLlm),
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

/// The built-in models with their prices (long-context and service tiers applied, source
/// named) and the aliases.
pub(crate) fn models() -> impl Iterator<Item = (&'static str, ModelPrice)> {
    MODELS.iter().map(|row| {
        let provider = Provider::of(row.model);
        let mut sources = BTreeSet::from([provider.pricing_page()]);
        let mut price = ModelPrice::per_token(row.input, row.output);
        price.cache_read = row.cache_read;
        price.cache_write = row.cache_write;
        price.cache_write_1h = provider.one_hour_write(Some(row.input));
        price.long_context = LONG_CONTEXT
            .iter()
            .filter(|tier| tier.model == row.model)
            .map(|tier| {
                let mut tier = tier.tier.clone();
                tier.cache_write_1h = provider.one_hour_write(tier.input);
                tier
            })
            .collect();
        if let Some(batch) = batch_tier(row.batch, &price) {
            price.service_tiers.insert("batch".to_owned(), batch);
            sources.extend(match (provider, row.batch) {
                (Provider::Google, _) => &[Source::GoogleBatch, Source::LiteLlm][..],
                (Provider::OpenAi, Batch::Half) => &[Source::LiteLlm][..],
                _ => &[][..],
            });
        }
        for stated in SERVICE_TIERS.iter().filter(|s| s.model == row.model) {
            let tier = price
                .service_tiers
                .entry(stated.tier.to_owned())
                .or_default();
            let rates = match stated.above {
                0 => &mut tier.flat,
                above => tier.above.entry(above).or_default(),
            };
            *rates = Rates {
                input: Some(stated.input),
                output: Some(stated.output),
                cache_read: stated.cache_read,
                ..Rates::default()
            };
            sources.insert(stated.source);
            if stated.tier == "flex" && provider == Provider::OpenAi {
                sources.insert(Source::OpenAiFlex);
            }
        }
        let names: Vec<&str> = sources.iter().map(|s| s.name()).collect();
        let price = price.with_source(format!("{} {PRICES_AS_OF}", names.join(", ")));
        (row.model, price)
    })
}

/// The built-in aliases, `(alias, model)`.
pub(crate) fn aliases() -> impl Iterator<Item = (&'static str, &'static str)> {
    ALIASES.iter().copied()
}

/// The `batch` service tier a model's [`Batch`] rule makes of its standard prices (`price`,
/// long-context tiers and 1-hour writes already set): the providers' 50%.
fn batch_tier(rule: Batch, price: &ModelPrice) -> Option<ServiceTierRates> {
    let half = |value: Decimal| value / Decimal::TWO;
    let flat = Rates {
        input: Some(half(price.input())),
        output: Some(half(price.output())),
        cache_read: match rule {
            Batch::Half => Some(half(price.cache_read())),
            Batch::HalfCachedAtList => Some(price.cache_read()),
            Batch::HalfUncached | Batch::No => None,
        },
        cache_write: Some(half(price.cache_write())),
        cache_write_1h: price.cache_write_1h().map(half),
        reasoning: None,
    };
    let above = match rule {
        Batch::Half => price
            .long_context_tiers()
            .iter()
            .map(|tier| {
                let rates = Rates {
                    input: tier.input.map(half),
                    output: tier.output.map(half),
                    cache_read: tier.cache_read.map(half),
                    cache_write: tier.cache_write.map(half),
                    cache_write_1h: tier.cache_write_1h.map(half),
                    reasoning: None,
                };
                (tier.above_input_tokens, rates)
            })
            .collect(),
        _ => Default::default(),
    };
    (rule != Batch::No).then_some(ServiceTierRates { flat, above })
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
    use std::collections::{HashMap, HashSet};

    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    fn builtin() -> HashMap<&'static str, ModelPrice> {
        models().collect()
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
        let mut seen = HashSet::new();
        for s in SERVICE_TIERS {
            assert!(
                models.contains(s.model),
                "{} tier of unknown {}",
                s.tier,
                s.model
            );
            assert!(
                ["flex", "priority"].contains(&s.tier),
                "{}: {}",
                s.model,
                s.tier
            );
            assert!(
                seen.insert((s.model, s.tier, s.above)),
                "{} {} above {} twice",
                s.model,
                s.tier,
                s.above
            );
        }
    }

    #[test]
    fn every_model_names_its_sources_and_the_date_they_were_checked() {
        for (model, price) in models() {
            let source = price
                .source()
                .unwrap_or_else(|| panic!("{model}: no source"));
            let (pages, date) = source.rsplit_once(' ').unwrap();
            assert_eq!(date, PRICES_AS_OF, "{model}");
            let page = Provider::of(model).pricing_page().name();
            assert!(pages.starts_with("https://"), "{model}: {source}");
            assert!(pages.split(", ").any(|p| p == page), "{model}: {source}");
        }
        let prices = builtin();
        assert_eq!(
            prices["claude-sonnet-4-5"].source(),
            Some("https://platform.claude.com/docs/en/about-claude/pricing 2026-12-06")
        );
        // A figure only LiteLLM states says so.
        assert!(prices["o4-mini"]
            .source()
            .unwrap()
            .contains("LiteLLM 1.106.2"));
        assert!(!prices["gpt-4o"].source().unwrap().contains("LiteLLM"));
    }

    #[test]
    fn anthropic_cache_prices_follow_the_published_multipliers() {
        let multiplied = |model: &str| model.starts_with("claude-") && model != "claude-3-haiku";
        for (model, price) in models().filter(|(model, _)| multiplied(model)) {
            assert_eq!(price.cache_write(), price.input() * d("1.25"), "{model}");
            assert_eq!(price.cache_read(), price.input() * d("0.1"), "{model}");
        }
        for (model, price) in models() {
            let expected = model.starts_with("claude-").then(|| price.input() * d("2"));
            assert_eq!(price.cache_write_1h(), expected, "{model}");
        }
        // Haiku 3's 1-hour writes: $0.50 on the page, 2 × $0.25.
        assert_eq!(
            builtin()["claude-3-haiku"].cache_write_1h(),
            Some(d("0.0000005"))
        );
    }

    #[test]
    fn an_anthropic_batch_halves_every_price_in_every_tier() {
        for (model, price) in models().filter(|(model, _)| model.starts_with("claude-")) {
            let batch = &price.service_tiers["batch"];
            let half = |v: Decimal| Some(v / Decimal::TWO);
            assert_eq!(batch.flat.input, half(price.input()), "{model}");
            assert_eq!(batch.flat.output, half(price.output()), "{model}");
            assert_eq!(batch.flat.cache_read, half(price.cache_read()), "{model}");
            assert_eq!(batch.flat.cache_write, half(price.cache_write()), "{model}");
            assert_eq!(
                batch.flat.cache_write_1h,
                half(price.cache_write_1h().unwrap()),
                "{model}"
            );
            assert_eq!(
                batch.above.len(),
                price.long_context_tiers().len(),
                "{model}"
            );
        }
        let sonnet = &builtin()["claude-sonnet-4-5"].service_tiers["batch"].above[&200_000];
        assert_eq!(sonnet.input, Some(d("0.000003")));
        assert_eq!(sonnet.output, Some(d("0.00001125")));
        assert_eq!(sonnet.cache_write_1h, Some(d("0.000006")));
    }

    #[test]
    fn openai_flex_is_priced_at_batch_rates() {
        // "Tokens are priced at Batch API rates, with additional discounts from prompt
        // caching."
        for (model, price) in models() {
            let (Some(flex), Some(batch)) = (
                price.service_tiers.get("flex"),
                price.service_tiers.get("batch"),
            ) else {
                continue;
            };
            if Provider::of(model) != Provider::OpenAi {
                continue;
            }
            assert_eq!(flex.flat.input, batch.flat.input, "{model}");
            assert_eq!(flex.flat.output, batch.flat.output, "{model}");
            if batch.flat.cache_read.is_some() {
                assert_eq!(flex.flat.cache_read, batch.flat.cache_read, "{model}");
            }
        }
    }

    #[test]
    fn batch_tiers_follow_each_providers_rule() {
        let prices = builtin();
        let batch = |model: &str| prices[model].service_tiers.get("batch");
        // OpenAI before GPT-5: no batch price for cached input.
        assert_eq!(batch("gpt-4o").unwrap().flat.cache_read, None);
        assert_eq!(
            batch("gpt-5").unwrap().flat.cache_read,
            Some(d("0.0000000625"))
        );
        // Google: cached input at the standard price, nothing above 200k.
        let pro = batch("gemini-2.5-pro").unwrap();
        assert_eq!(pro.flat.cache_read, Some(d("0.000000125")));
        assert!(pro.above.is_empty());
        // No batch stated.
        assert!(batch("chatgpt-4o-latest").is_none());
        assert!(batch("gemini-2.0-flash").is_none());
    }
}
