//! Exact prices of LLM calls.
//!
//! A [`PriceTable`] maps model names to [`ModelPrice`]s; [`PriceTable::cost`] turns a call's
//! [`TokenUsage`] into USD as an exact [`Decimal`] (never a float, not even while parsing a
//! price file). Usage follows the OpenTelemetry GenAI conventions: input tokens include cached
//! tokens and output tokens include reasoning tokens, and every token is billed exactly once.
//!
//! The table starts from a built-in list of current Anthropic, OpenAI and Google prices
//! (dated by [`PriceTable::PRICES_AS_OF`], taken from LiteLLM's price file and the providers'
//! lists), takes overrides from the user, and loads LiteLLM's
//! `model_prices_and_context_window.json`.
//!
//! ```
//! use rust_decimal::Decimal;
//! use tracing_llm_audit::cost::{ModelPrice, PriceTable, TokenUsage};
//!
//! let prices = PriceTable::builtin()
//!     .with_price("our-finetune", ModelPrice::per_million(Decimal::new(6, 0), Decimal::new(24, 0)))
//!     .with_alias("default-chat", "claude-sonnet-4-5");
//!
//! let usage = TokenUsage {
//!     input_tokens: Some(10_000),
//!     output_tokens: Some(1_000),
//!     cache_read_tokens: Some(8_000),
//!     ..TokenUsage::default()
//! };
//! // 2_000 × $3/M + 8_000 × $0.30/M + 1_000 × $15/M = $0.006 + $0.0024 + $0.015
//! let cost = prices.cost("claude-sonnet-4-5-20250929", &usage)?;
//! assert_eq!(cost, Decimal::new(234, 4));
//! # Ok::<(), tracing_llm_audit::cost::CostError>(())
//! ```

mod builtin;
mod litellm;
mod price;
mod resolve;
mod usage;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

pub use rust_decimal::Decimal;

pub use litellm::{LoadReport, PriceFileError};
pub use price::{LongContextTier, ModelPrice, PricingContext};
pub use usage::{CostError, TokenUsage, MAX_PLAUSIBLE_TOKENS};

/// Model names and their prices.
///
/// [`PriceTable::resolve`] finds a model's price in this order, and stops at the first hit:
///
/// 1. the exact name;
/// 2. a user alias (see [`with_alias`](Self::with_alias));
/// 3. the name without regard to case;
/// 4. the same after removing provider prefixes: `anthropic/`, `openai/`, `gemini/`,
///    `google/`, `models/`, `bedrock/`, and Bedrock's `global.` and `anthropic.`;
/// 5. the same after removing snapshot suffixes one at a time: `-20250929`, `@20240620`,
///    `-2024-08-06`, `-latest`, `-001`, Bedrock's `-v1:0`.
///
/// Nothing else: a name is never matched by a shorter name it starts with, so
/// `gpt-4o-audio-preview` is unknown rather than priced as `gpt-4o`. Routes with their own
/// prices (`vertex_ai/`, `azure/`, Bedrock's regional `us.`/`eu.` endpoints) stay unknown
/// unless the table names them. Each step is a hash-map lookup.
///
/// ```
/// use tracing_llm_audit::cost::PriceTable;
///
/// let prices = PriceTable::builtin();
/// assert_eq!(prices.resolve("gpt-4o-2024-08-06").unwrap().0, "gpt-4o");
/// assert_eq!(prices.resolve("anthropic/claude-sonnet-4-5-20250929").unwrap().0, "claude-sonnet-4-5");
/// assert!(prices.resolve("gpt-4o-audio-preview").is_none());
/// ```
#[derive(Clone, Debug, Default)]
pub struct PriceTable {
    /// Canonical name → price.
    prices: HashMap<String, ModelPrice>,
    /// Alias → the model name it stands for. A name is never both a price and an alias.
    aliases: HashMap<String, String>,
    /// Lower-cased price or alias name → that name, for case-insensitive lookups.
    folded: HashMap<String, String>,
    /// Rules of a loaded price file the table cannot apply → how many models have them.
    refused: BTreeMap<String, usize>,
    /// Where the prices come from, for [`label`](Self::label).
    source: Option<String>,
}

impl PriceTable {
    /// The date the built-in prices were taken (ISO 8601). Prices after it may differ.
    pub const PRICES_AS_OF: &'static str = builtin::PRICES_AS_OF;

    /// The built-in prices of current Anthropic, OpenAI and Google models, as of
    /// [`PRICES_AS_OF`](Self::PRICES_AS_OF), with the providers' usual aliases.
    pub fn builtin() -> Self {
        let table = Self {
            source: Some(format!("builtin {}", builtin::PRICES_AS_OF)),
            ..Self::empty()
        };
        let table = builtin::models().fold(table, |table, (model, price)| {
            table.with_price(model, price)
        });
        builtin::aliases().fold(table, |table, (alias, model)| {
            table.with_alias(alias, model)
        })
    }

    /// A table with no prices: every model is unknown.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Sets the price of `model`, replacing any built-in or earlier price or alias of that
    /// name. Default: the model has no price of its own.
    #[must_use]
    pub fn with_price(mut self, model: impl Into<String>, price: ModelPrice) -> Self {
        let model = model.into();
        self.aliases.remove(&model);
        self.folded.insert(model.to_lowercase(), model.clone());
        self.prices.insert(model, price);
        self
    }

    /// Makes `alias` stand for `model`, replacing any price or alias of that name. `model` is
    /// found the way [`resolve`](Self::resolve) finds names, aliases excepted, whenever the
    /// alias is used. Default: no aliases beyond the built-in ones.
    #[must_use]
    pub fn with_alias(mut self, alias: impl Into<String>, model: impl Into<String>) -> Self {
        let (alias, model) = (alias.into(), model.into());
        if alias == model {
            return self;
        }
        self.prices.remove(&alias);
        self.folded.insert(alias.to_lowercase(), alias.clone());
        self.aliases.insert(alias, model);
        self
    }

    /// This table with every price and alias of `overrides` added; where both name the same
    /// model, `overrides` wins.
    ///
    /// ```
    /// use rust_decimal::Decimal;
    /// use tracing_llm_audit::cost::{ModelPrice, PriceTable};
    ///
    /// let negotiated = PriceTable::empty()
    ///     .with_price("gpt-4o", ModelPrice::per_million(Decimal::new(2, 0), Decimal::new(8, 0)));
    /// let prices = PriceTable::builtin().merged_with(negotiated);
    /// assert_eq!(prices.resolve("gpt-4o").unwrap().1.input(), Decimal::new(2, 6));
    /// ```
    #[must_use]
    pub fn merged_with(self, overrides: PriceTable) -> Self {
        let source = match (self.source.clone(), overrides.source.clone()) {
            (Some(base), Some(over)) => Some(format!("{base} + {over}")),
            (base, over) => base.or(over),
        };
        let mut refused = self.refused.clone();
        for (rule, count) in &overrides.refused {
            *refused.entry(rule.clone()).or_default() += count;
        }
        let table = overrides
            .prices
            .into_iter()
            .fold(self, |table, (model, price)| table.with_price(model, price));
        let mut table = overrides
            .aliases
            .into_iter()
            .fold(table, |table, (alias, model)| {
                table.with_alias(alias, model)
            });
        table.source = source;
        table.refused = refused;
        table
    }

    /// Loads LiteLLM's `model_prices_and_context_window.json` format from a string.
    ///
    /// Models without per-token prices (image, audio or per-second pricing) are skipped; see
    /// [`from_litellm_json_with_report`](Self::from_litellm_json_with_report) to learn which.
    /// Numbers are read from their text, never through a float. A model listed only under a
    /// provider prefix (`gemini/gemini-2.5-pro`) is also found by its bare name.
    ///
    /// # Errors
    ///
    /// [`PriceFileError`] when the text is not JSON, or a price field this table reads is
    /// present but not a non-negative number.
    pub fn from_litellm_json(json: &str) -> Result<Self, PriceFileError> {
        Self::from_litellm_json_with_report(json).map(|(table, _)| table)
    }

    /// Like [`from_litellm_json`](Self::from_litellm_json), also reporting which models were
    /// skipped for having no per-token prices.
    ///
    /// ```
    /// use tracing_llm_audit::cost::PriceTable;
    ///
    /// let json = r#"{
    ///     "sample_spec": {"input_cost_per_token": 0.0},
    ///     "my-model": {"input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05},
    ///     "dall-e-3": {"output_cost_per_image": 0.04}
    /// }"#;
    /// let (prices, report) = PriceTable::from_litellm_json_with_report(json)?;
    /// assert_eq!(prices.len(), 1);
    /// assert_eq!(report.skipped, ["dall-e-3"]);
    /// # Ok::<(), tracing_llm_audit::cost::PriceFileError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`from_litellm_json`](Self::from_litellm_json).
    pub fn from_litellm_json_with_report(json: &str) -> Result<(Self, LoadReport), PriceFileError> {
        litellm::load(json).map(|(table, report)| (table.with_source("litellm"), report))
    }

    /// Loads a LiteLLM price file from disk; see [`from_litellm_json`](Self::from_litellm_json).
    ///
    /// # Errors
    ///
    /// [`PriceFileError::Io`] when the file cannot be read, otherwise as
    /// [`from_litellm_json`](Self::from_litellm_json).
    pub fn from_litellm_file(path: impl AsRef<Path>) -> Result<Self, PriceFileError> {
        Self::from_litellm_file_with_report(path).map(|(table, _)| table)
    }

    /// Loads a LiteLLM price file from disk, also reporting the skipped models.
    ///
    /// # Errors
    ///
    /// As [`from_litellm_file`](Self::from_litellm_file).
    pub fn from_litellm_file_with_report(
        path: impl AsRef<Path>,
    ) -> Result<(Self, LoadReport), PriceFileError> {
        let path = path.as_ref();
        let json = std::fs::read_to_string(path).map_err(|source| PriceFileError::Io {
            path: path.to_owned(),
            source,
        })?;
        let (table, report) = Self::from_litellm_json_with_report(&json)?;
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        Ok((table.with_source(format!("litellm {name}")), report))
    }

    /// Names where the prices come from (`builtin 2026-11-24`, `litellm
    /// model_prices_and_context_window.json`, or what the user gave), shown in
    /// [`label`](Self::label).
    #[must_use]
    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The rules of loaded price files that the table cannot apply, with how many models have
    /// each: those models are never priced (see [`LoadReport::refused`]).
    pub fn refused_rules(&self) -> &BTreeMap<String, usize> {
        &self.refused
    }

    /// Names this table in every entry it prices: its source and a short hash of its contents
    /// (`builtin 2026-11-24 sha256:3f2a91c04b1e`). Two tables with the same prices have the
    /// same hash, whatever order they were built in; a changed price changes it.
    pub fn label(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        let mut names: Vec<&String> = self.prices.keys().collect();
        names.sort();
        for name in names {
            hasher.update(format!(
                "price {name:?} {}\n",
                self.prices[name].canonical()
            ));
        }
        let mut aliases: Vec<(&String, &String)> = self.aliases.iter().collect();
        aliases.sort();
        for (alias, model) in aliases {
            hasher.update(format!("alias {alias:?} {model:?}\n"));
        }
        let digest = hasher.finalize();
        let short: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        match &self.source {
            Some(source) => format!("{source} sha256:{short}"),
            None => format!("custom sha256:{short}"),
        }
    }

    /// Finds the price of `model` (see [`PriceTable`] for the rules), returning the name it is
    /// listed under and its price.
    pub fn resolve(&self, model: &str) -> Option<(&str, &ModelPrice)> {
        self.find(model, true)
    }

    /// Finds the price of `model` as `provider` (a `gen_ai.provider.name`: `gcp.gemini`,
    /// `openai`, `aws.bedrock`... or LiteLLM's provider name) serves it: the provider's own entry
    /// (`gemini/gemini-2.5-pro` for `gcp.gemini`) before the bare name, which a price file may
    /// give another route's price (LiteLLM's bare `gemini-2.5-pro` is Vertex AI's).
    pub fn resolve_for(&self, provider: Option<&str>, model: &str) -> Option<(&str, &ModelPrice)> {
        if let Some(prefix) = provider.and_then(resolve::litellm_prefix) {
            if !model.contains('/') {
                let routed = format!("{prefix}/{model}");
                if let Some(hit) = self.find(&routed, true) {
                    return Some(hit);
                }
            }
        }
        self.find(model, true)
    }

    /// The cost in USD of one call of `model` with `usage`; see [`ModelPrice::cost`].
    ///
    /// # Errors
    ///
    /// [`CostError::UnknownModel`] when [`resolve`](Self::resolve) finds no price, otherwise as
    /// [`ModelPrice::cost`].
    pub fn cost(&self, model: &str, usage: &TokenUsage) -> Result<Decimal, CostError> {
        self.cost_with(model, usage, &PricingContext::default())
    }

    /// The cost of the call an audit entry records, from its token counts, model, service tier
    /// and time (its end: `timestamp` + `latency_ms`, when the provider bills it), with at least
    /// six decimal places and no other trailing zeros. The layer prices every entry with it;
    /// `llm-audit reprice` prices stored entries again with it.
    ///
    /// # Errors
    ///
    /// [`CostError::UsageNotRecorded`] when the entry names no model, otherwise as
    /// [`cost_with`](Self::cost_with).
    pub fn cost_of_entry(&self, entry: &crate::AuditEntry) -> Result<Decimal, CostError> {
        /// Operations whose responses have no output tokens to bill.
        const OUTPUT_FREE_OPERATIONS: &[&str] = &["embeddings"];
        const MIN_SCALE: u32 = 6;
        let Some(model) = entry.billed_model() else {
            return Err(CostError::UsageNotRecorded("model"));
        };
        let usage = TokenUsage {
            input_tokens: entry.input_tokens,
            output_tokens: entry.output_tokens,
            cache_read_tokens: entry.cache_read_tokens,
            cache_write_tokens: entry.cache_write_tokens,
            cache_write_1h_tokens: entry.cache_write_1h_tokens,
            reasoning_tokens: entry.thinking_tokens,
            output_optional: OUTPUT_FREE_OPERATIONS.contains(&entry.action.as_str()),
        };
        let latency = time::Duration::milliseconds(i64::try_from(entry.latency_ms).unwrap_or(0));
        let mut context = PricingContext::default().at(entry
            .timestamp
            .checked_add(latency)
            .unwrap_or(entry.timestamp));
        if let Some(tier) = &entry.service_tier {
            context = context.with_service_tier(tier.clone());
        }
        let (_, price) = self
            .resolve_for(entry.provider.as_deref(), model)
            .ok_or_else(|| CostError::UnknownModel(model.to_owned()))?;
        // Products of per-token prices carry trailing zeros (0.00789000); keep the figure, not
        // the zeros, but never fewer than the minimum places.
        let mut cost = price.cost_with(&usage, &context)?.normalize();
        if cost.scale() < MIN_SCALE {
            cost.rescale(MIN_SCALE);
        }
        Ok(cost)
    }

    /// [`cost`](Self::cost) for a call served by `context`'s service tier at its time; see
    /// [`ModelPrice::cost_with`].
    ///
    /// # Errors
    ///
    /// As [`cost`](Self::cost).
    pub fn cost_with(
        &self,
        model: &str,
        usage: &TokenUsage,
        context: &PricingContext,
    ) -> Result<Decimal, CostError> {
        let (_, price) = self
            .resolve(model)
            .ok_or_else(|| CostError::UnknownModel(model.to_owned()))?;
        price.cost_with(usage, context)
    }

    /// The number of priced models (aliases not counted).
    pub fn len(&self) -> usize {
        self.prices.len()
    }

    /// `true` when the table prices no model.
    pub fn is_empty(&self) -> bool {
        self.prices.is_empty()
    }

    /// Resolution steps 1 to 5; aliases are skipped when resolving an alias's target, so that
    /// aliases cannot loop.
    fn find(&self, model: &str, use_aliases: bool) -> Option<(&str, &ModelPrice)> {
        // The name as given, then without its snapshot suffixes, its provider prefix kept:
        // `gemini/gemini-2.5-pro-001` is `gemini/gemini-2.5-pro`, which a price file may price
        // apart from the bare `gemini-2.5-pro` (Vertex AI's in LiteLLM's file).
        let mut name = model;
        loop {
            if let Some(hit) = self.lookup(name, use_aliases) {
                return Some(hit);
            }
            match resolve::strip_snapshot_suffix(name) {
                Some(shorter) => name = shorter,
                None => break,
            }
        }
        let bare = resolve::strip_provider_prefix(model);
        if bare.len() == model.len() {
            return None;
        }
        let mut name = bare;
        loop {
            if let Some(hit) = self.lookup(name, use_aliases) {
                return Some(hit);
            }
            match resolve::strip_snapshot_suffix(name) {
                Some(shorter) => name = shorter,
                None => return None,
            }
        }
    }

    /// Steps 1 to 3 for one spelling of the name.
    fn lookup(&self, name: &str, use_aliases: bool) -> Option<(&str, &ModelPrice)> {
        if let Some((model, price)) = self.prices.get_key_value(name) {
            return Some((model, price));
        }
        if use_aliases {
            if let Some(target) = self.aliases.get(name) {
                return self.find(target, false);
            }
        }
        let folded: Cow<'_, str> = if name.chars().any(char::is_uppercase) {
            Cow::Owned(name.to_lowercase())
        } else {
            Cow::Borrowed(name)
        };
        let listed = self.folded.get(folded.as_ref())?;
        if let Some((model, price)) = self.prices.get_key_value(listed) {
            return Some((model, price));
        }
        match self.aliases.get(listed) {
            Some(target) if use_aliases => self.find(target, false),
            _ => None,
        }
    }

    /// Adds `alias` for `model` unless the name is already taken (the LiteLLM loader's bare
    /// names for prefixed keys).
    pub(crate) fn with_alias_if_free(self, alias: &str, model: &str) -> Self {
        if self.prices.contains_key(alias) || self.aliases.contains_key(alias) {
            return self;
        }
        self.with_alias(alias, model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    fn flat(input: &str, output: &str) -> ModelPrice {
        ModelPrice::per_million(d(input), d(output))
    }

    #[test]
    fn builtin_is_not_empty_and_dated() {
        let table = PriceTable::builtin();
        assert!(table.len() > 30);
        assert!(!table.is_empty());
        assert_eq!(PriceTable::PRICES_AS_OF.len(), "2026-01-01".len());
        assert!(PriceTable::empty().is_empty());
    }

    #[test]
    fn resolution_order() {
        let table = PriceTable::empty()
            .with_price("m", flat("1", "1"))
            .with_price("m-latest", flat("2", "2"))
            .with_alias("alias", "m");
        assert_eq!(table.resolve("m-latest").unwrap().1.input(), d("0.000002"));
        assert_eq!(table.resolve("alias").unwrap().0, "m");
        assert_eq!(table.resolve("ALIAS").unwrap().0, "m");
        assert_eq!(table.resolve("M").unwrap().0, "m");
        assert_eq!(table.resolve("openai/M-2025-01-31").unwrap().0, "m");
        assert_eq!(table.resolve("models/m@20240101").unwrap().0, "m");
        assert!(table.resolve("m-mini").is_none());
        assert!(table.resolve("").is_none());
    }

    #[test]
    fn the_providers_own_entry_comes_before_the_bare_name() {
        // LiteLLM's file: the bare name is Vertex AI's, `gemini/` the Gemini API's.
        let table = PriceTable::from_litellm_json(
            r#"{"gemini-2.5-pro": {"input_cost_per_token": 1e-06, "output_cost_per_token": 1e-06,
                                   "litellm_provider": "vertex_ai-language-models"},
                "gemini/gemini-2.5-pro": {"input_cost_per_token": 2e-06,
                                          "output_cost_per_token": 2e-06,
                                          "litellm_provider": "gemini"}}"#,
        )
        .unwrap();
        let name = |provider, model| table.resolve_for(provider, model).map(|(n, _)| n);
        assert_eq!(
            name(None, "gemini/gemini-2.5-pro-001"),
            Some("gemini/gemini-2.5-pro")
        );
        assert_eq!(
            name(Some("gcp.gemini"), "gemini-2.5-pro-001"),
            Some("gemini/gemini-2.5-pro")
        );
        assert_eq!(
            name(Some("gcp.vertex_ai"), "gemini-2.5-pro-001"),
            Some("gemini-2.5-pro")
        );
        assert_eq!(name(None, "gemini-2.5-pro-001"), Some("gemini-2.5-pro"));
        // The built-in table has bare names only: any provider finds them.
        let builtin = PriceTable::builtin();
        assert_eq!(
            builtin
                .resolve_for(Some("gcp.gemini"), "gemini-2.5-pro-001")
                .map(|(n, _)| n),
            Some("gemini-2.5-pro")
        );
    }

    #[test]
    fn the_label_names_the_source_and_changes_with_any_price() {
        let a = PriceTable::empty()
            .with_price("m", flat("1", "1"))
            .with_price("n", flat("2", "2"))
            .with_source("ours");
        let b = PriceTable::empty()
            .with_price("n", flat("2.00", "2"))
            .with_price("m", flat("1", "1"))
            .with_source("ours");
        assert!(a.label().starts_with("ours sha256:"), "{}", a.label());
        assert_eq!(a.label(), b.label(), "order and scale do not matter");
        let c = a.clone().with_price("m", flat("1", "1.000001"));
        assert_ne!(a.label(), c.label());
        assert!(PriceTable::builtin().label().starts_with("builtin 20"));
    }

    #[test]
    fn alias_targets_resolve_like_names() {
        let table = PriceTable::empty()
            .with_price("m", flat("1", "1"))
            .with_alias("pinned", "openai/m-2025-01-31")
            .with_alias("loop-a", "loop-b")
            .with_alias("loop-b", "loop-a");
        assert_eq!(table.resolve("pinned").unwrap().0, "m");
        assert!(table.resolve("loop-a").is_none());
    }

    #[test]
    fn later_definitions_of_a_name_win() {
        let table = PriceTable::empty()
            .with_price("a", flat("1", "1"))
            .with_price("b", flat("2", "2"))
            .with_alias("b", "a");
        assert_eq!(table.resolve("b").unwrap().0, "a");
        assert_eq!(table.len(), 1);
        let table = table.with_price("b", flat("3", "3"));
        assert_eq!(table.resolve("b").unwrap().1.input(), d("0.000003"));
        assert_eq!(table.with_alias("a", "a").len(), 2);
    }

    #[test]
    fn merge_prefers_overrides() {
        let base = PriceTable::empty()
            .with_price("a", flat("1", "1"))
            .with_price("b", flat("1", "1"));
        let overrides = PriceTable::empty()
            .with_price("a", flat("9", "9"))
            .with_alias("b", "a");
        let merged = base.merged_with(overrides);
        assert_eq!(merged.resolve("a").unwrap().1.input(), d("0.000009"));
        assert_eq!(merged.resolve("b").unwrap().0, "a");
    }

    #[test]
    fn unknown_model_is_an_error() {
        let usage = TokenUsage {
            input_tokens: Some(1),
            output_tokens: Some(1),
            ..TokenUsage::default()
        };
        assert_eq!(
            PriceTable::empty().cost("foo-1", &usage),
            Err(CostError::UnknownModel("foo-1".into()))
        );
    }
}
