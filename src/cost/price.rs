//! What one model costs per token, and how a call's usage turns into money.

use rust_decimal::Decimal;

use super::usage::{CostError, TokenUsage};

/// The cost has at least this many decimal places, so that an entry always shows micro-dollars
/// (the design asks for "USD with at least 6 decimal places").
const MIN_COST_SCALE: u32 = 6;

/// Turns a USD-per-million-tokens figure into USD per token.
///
/// Exact for every figure with at most 22 decimal places, which covers any real price list.
pub(crate) fn per_token(per_million: Decimal) -> Decimal {
    per_million / Decimal::from(1_000_000u32)
}

/// The prices of one model, in USD per token.
///
/// Built from per-million figures, as providers publish them. Prices that are not set fall back
/// the way the providers bill: cache reads and cache writes cost the input price, reasoning
/// tokens cost the output price.
///
/// ```
/// use rust_decimal::Decimal;
/// use tracing_llm_audit::cost::{LongContextTier, ModelPrice, TokenUsage};
///
/// // $3 input, $15 output per million tokens; cache reads $0.30, cache writes $3.75.
/// let price = ModelPrice::per_million(Decimal::new(3, 0), Decimal::new(15, 0))
///     .with_cache_read_per_million(Decimal::new(30, 2))
///     .with_cache_write_per_million(Decimal::new(375, 2));
/// assert_eq!(price.input(), Decimal::new(3, 6)); // $0.000003 per token
/// assert_eq!(price.reasoning(), price.output()); // reasoning defaults to output
///
/// let usage = TokenUsage {
///     input_tokens: Some(1_000),
///     output_tokens: Some(100),
///     ..TokenUsage::default()
/// };
/// // 1_000 × $0.000003 + 100 × $0.000015 = $0.003 + $0.0015
/// assert_eq!(price.cost(&usage)?, Decimal::new(45, 4));
/// # Ok::<(), tracing_llm_audit::cost::CostError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ModelPrice {
    pub(crate) input: Decimal,
    pub(crate) output: Decimal,
    pub(crate) cache_read: Option<Decimal>,
    pub(crate) cache_write: Option<Decimal>,
    pub(crate) reasoning: Option<Decimal>,
    pub(crate) long_context: Option<LongContextTier>,
}

impl ModelPrice {
    /// A price from USD per million input and output tokens; no cache, reasoning or
    /// long-context prices (they fall back as described on [`ModelPrice`]).
    pub fn per_million(input: Decimal, output: Decimal) -> Self {
        Self::per_token(per_token(input), per_token(output))
    }

    /// A price from USD per single input and output token, as LiteLLM's file states them.
    pub fn per_token(input: Decimal, output: Decimal) -> Self {
        Self {
            input,
            output,
            cache_read: None,
            cache_write: None,
            reasoning: None,
            long_context: None,
        }
    }

    /// Sets the price of input tokens read from the prompt cache, USD per million.
    /// Default: the input price.
    #[must_use]
    pub fn with_cache_read_per_million(mut self, per_million: Decimal) -> Self {
        self.cache_read = Some(per_token(per_million));
        self
    }

    /// Sets the price of input tokens written to the prompt cache, USD per million.
    /// Default: the input price (OpenAI and Google charge nothing extra for writes).
    #[must_use]
    pub fn with_cache_write_per_million(mut self, per_million: Decimal) -> Self {
        self.cache_write = Some(per_token(per_million));
        self
    }

    /// Sets the price of reasoning ("thinking") output tokens, USD per million.
    /// Default: the output price.
    #[must_use]
    pub fn with_reasoning_per_million(mut self, per_million: Decimal) -> Self {
        self.reasoning = Some(per_token(per_million));
        self
    }

    /// Sets the prices that apply to a whole request whose prompt is longer than the tier's
    /// threshold. Default: none, the base prices apply at every length.
    #[must_use]
    pub fn with_long_context(mut self, tier: LongContextTier) -> Self {
        self.long_context = Some(tier);
        self
    }

    /// USD per input token that is neither read from nor written to the cache.
    pub fn input(&self) -> Decimal {
        self.input
    }

    /// USD per output token that is not a reasoning token.
    pub fn output(&self) -> Decimal {
        self.output
    }

    /// USD per input token read from the prompt cache.
    pub fn cache_read(&self) -> Decimal {
        self.cache_read.unwrap_or(self.input)
    }

    /// USD per input token written to the prompt cache.
    pub fn cache_write(&self) -> Decimal {
        self.cache_write.unwrap_or(self.input)
    }

    /// USD per reasoning output token.
    pub fn reasoning(&self) -> Decimal {
        self.reasoning.unwrap_or(self.output)
    }

    /// The long-context tier, if the model has one.
    pub fn long_context(&self) -> Option<&LongContextTier> {
        self.long_context.as_ref()
    }

    /// The cost in USD of one call with this usage.
    ///
    /// `usage` follows the OpenTelemetry GenAI conventions: input tokens include the cached
    /// ones, output tokens include the reasoning ones, so each token is billed exactly once:
    ///
    /// ```text
    /// (input − cache_read − cache_write) × input + cache_read × cache_read
    ///   + cache_write × cache_write + (output − reasoning) × output + reasoning × reasoning
    /// ```
    ///
    /// Above the long-context threshold every token of the call is billed at the tier's
    /// prices. The result is exact and has at least six decimal places.
    ///
    /// # Errors
    ///
    /// [`CostError::UsageNotRecorded`] when input (or output, unless
    /// [`TokenUsage::output_optional`]) tokens are absent; [`CostError::InconsistentUsage`]
    /// when the cached tokens exceed the input or the reasoning tokens exceed the output, or
    /// the counts are too large to price.
    pub fn cost(&self, usage: &TokenUsage) -> Result<Decimal, CostError> {
        usage.check_plausible()?;
        let counts = usage.billable()?;
        let rates = self.rates_for(counts.prompt_tokens);
        let terms = [
            (counts.uncached_input, rates.input),
            (counts.cache_read, rates.cache_read),
            (counts.cache_write, rates.cache_write),
            (counts.visible_output, rates.output),
            (counts.reasoning, rates.reasoning),
        ];
        let mut total = Decimal::ZERO;
        for (tokens, rate) in terms {
            total = Decimal::from(tokens)
                .checked_mul(rate)
                .and_then(|term| total.checked_add(term))
                .ok_or_else(CostError::overflow)?;
        }
        if total.scale() < MIN_COST_SCALE {
            // Only adds trailing zeros: exact.
            total.rescale(MIN_COST_SCALE);
        }
        Ok(total)
    }

    /// The per-token rates that apply to a call whose prompt has `prompt_tokens` tokens.
    fn rates_for(&self, prompt_tokens: u64) -> Rates {
        let tier = self
            .long_context
            .as_ref()
            .filter(|tier| prompt_tokens > tier.above_input_tokens);
        let Some(tier) = tier else {
            return Rates {
                input: self.input,
                output: self.output,
                cache_read: self.cache_read(),
                cache_write: self.cache_write(),
                reasoning: self.reasoning(),
            };
        };
        let input = tier.input.unwrap_or(self.input);
        let output = tier.output.unwrap_or(self.output);
        Rates {
            input,
            output,
            cache_read: tier.cache_read.or(self.cache_read).unwrap_or(input),
            cache_write: tier.cache_write.or(self.cache_write).unwrap_or(input),
            // Reasoning tokens are output tokens: when the tier reprices output, they follow.
            reasoning: match tier.output {
                Some(tier_output) => tier_output,
                None => self.reasoning.unwrap_or(output),
            },
        }
    }
}

/// USD per token of each kind, for one call.
struct Rates {
    input: Decimal,
    output: Decimal,
    cache_read: Decimal,
    cache_write: Decimal,
    reasoning: Decimal,
}

/// Prices that replace a model's base prices for a whole request when its prompt is long.
///
/// Anthropic (Sonnet 4 and 4.5 with the 1M-token context) and Google (Gemini 2.5 Pro) bill
/// every token of a request at higher rates once the prompt, cached tokens included, exceeds
/// 200,000 tokens. A price left `None` falls back to the model's own price of that kind.
///
/// ```
/// use rust_decimal::Decimal;
/// use tracing_llm_audit::cost::{LongContextTier, ModelPrice};
///
/// // Above 200k prompt tokens: $6 input, $22.50 output, $0.60 cache reads per million.
/// let tier = LongContextTier::per_million(200_000, Decimal::new(6, 0), Decimal::new(225, 1))
///     .with_cache_read_per_million(Decimal::new(60, 2));
/// let price = ModelPrice::per_million(Decimal::new(3, 0), Decimal::new(15, 0))
///     .with_long_context(tier);
/// assert_eq!(price.long_context().unwrap().above_input_tokens, 200_000);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct LongContextTier {
    /// The tier applies when the call's input tokens (cached ones included) are more than this.
    pub above_input_tokens: u64,
    /// USD per uncached input token; `None`: the base input price.
    pub input: Option<Decimal>,
    /// USD per output token, reasoning ones included; `None`: the base output price.
    pub output: Option<Decimal>,
    /// USD per input token read from the cache; `None`: the base cache-read price if the model
    /// has one, else the tier's input price.
    pub cache_read: Option<Decimal>,
    /// USD per input token written to the cache; `None`: the base cache-write price if the
    /// model has one, else the tier's input price.
    pub cache_write: Option<Decimal>,
}

impl LongContextTier {
    /// A tier for prompts longer than `above_input_tokens`, with input and output prices in
    /// USD per million tokens; cache prices fall back as described on the fields.
    pub fn per_million(above_input_tokens: u64, input: Decimal, output: Decimal) -> Self {
        Self {
            above_input_tokens,
            input: Some(per_token(input)),
            output: Some(per_token(output)),
            cache_read: None,
            cache_write: None,
        }
    }

    /// Sets the tier's cache-read price, USD per million tokens.
    #[must_use]
    pub fn with_cache_read_per_million(mut self, per_million: Decimal) -> Self {
        self.cache_read = Some(per_token(per_million));
        self
    }

    /// Sets the tier's cache-write price, USD per million tokens.
    #[must_use]
    pub fn with_cache_write_per_million(mut self, per_million: Decimal) -> Self {
        self.cache_write = Some(per_token(per_million));
        self
    }

    /// A tier with no prices of its own, for filling in per-token prices (the LiteLLM loader).
    pub(crate) fn empty(above_input_tokens: u64) -> Self {
        Self {
            above_input_tokens,
            input: None,
            output: None,
            cache_read: None,
            cache_write: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    fn sonnet() -> ModelPrice {
        ModelPrice::per_million(d("3"), d("15"))
            .with_cache_read_per_million(d("0.30"))
            .with_cache_write_per_million(d("3.75"))
            .with_long_context(
                LongContextTier::per_million(200_000, d("6"), d("22.50"))
                    .with_cache_read_per_million(d("0.60"))
                    .with_cache_write_per_million(d("7.50")),
            )
    }

    fn usage(input: u64, output: u64) -> TokenUsage {
        TokenUsage {
            input_tokens: Some(input),
            output_tokens: Some(output),
            ..TokenUsage::default()
        }
    }

    #[test]
    fn per_million_is_exact_per_token() {
        let p = ModelPrice::per_million(d("0.075"), d("2.50"));
        assert_eq!(p.input(), d("0.000000075"));
        assert_eq!(p.output(), d("0.0000025"));
    }

    #[test]
    fn fallbacks_follow_how_providers_bill() {
        let p = ModelPrice::per_million(d("2"), d("8"));
        assert_eq!(p.cache_read(), p.input());
        assert_eq!(p.cache_write(), p.input());
        assert_eq!(p.reasoning(), p.output());
        let p = p.with_reasoning_per_million(d("10"));
        assert_eq!(p.reasoning(), d("0.00001"));
    }

    #[test]
    fn every_token_is_billed_once() {
        // 1_000 input of which 600 cache reads and 100 cache writes; 500 output of which 200
        // reasoning, at $3 / $15 / $0.30 / $3.75:
        // 300 × 0.000003 = 0.0009; 600 × 0.0000003 = 0.00018; 100 × 0.00000375 = 0.000375;
        // 300 × 0.000015 = 0.0045; 200 × 0.000015 = 0.003; total 0.008955.
        let u = TokenUsage {
            cache_read_tokens: Some(600),
            cache_write_tokens: Some(100),
            reasoning_tokens: Some(200),
            ..usage(1_000, 500)
        };
        assert_eq!(sonnet().cost(&u), Ok(d("0.008955")));
    }

    #[test]
    fn the_tier_starts_strictly_above_its_threshold() {
        // At exactly 200_000: base. 200_000 × 0.000003 = 0.6.
        assert_eq!(sonnet().cost(&usage(200_000, 0)), Ok(d("0.6")));
        // At 200_001: tier for every token. 200_001 × 0.000006 = 1.200006.
        assert_eq!(sonnet().cost(&usage(200_001, 0)), Ok(d("1.200006")));
    }

    #[test]
    fn a_tier_without_cache_prices_falls_back_to_the_base_cache_price() {
        let p = ModelPrice::per_million(d("1"), d("2"))
            .with_cache_read_per_million(d("0.1"))
            .with_long_context(LongContextTier::per_million(10, d("4"), d("8")));
        // 20 input, all cache reads, above the threshold: base cache read 20 × 0.0000001.
        // 1 output at the tier's 0.000008.
        let u = TokenUsage {
            cache_read_tokens: Some(20),
            cache_write_tokens: Some(0),
            ..usage(20, 1)
        };
        assert_eq!(p.cost(&u), Ok(d("0.000010")));
        // Without a base cache price, cache tokens follow the tier's input price.
        let p = ModelPrice::per_million(d("1"), d("2"))
            .with_long_context(LongContextTier::per_million(10, d("4"), d("8")));
        // 20 × 0.000004 = 0.00008
        let u = TokenUsage {
            cache_write_tokens: Some(20),
            ..usage(20, 0)
        };
        assert_eq!(p.cost(&u), Ok(d("0.00008")));
    }

    #[test]
    fn reasoning_follows_the_tier_output_price() {
        let p = ModelPrice::per_million(d("1"), d("2"))
            .with_reasoning_per_million(d("3"))
            .with_long_context(LongContextTier::per_million(10, d("4"), d("8")));
        let u = TokenUsage {
            reasoning_tokens: Some(1),
            ..usage(11, 1)
        };
        // 11 × 0.000004 + 1 × 0.000008 = 0.000052
        assert_eq!(p.cost(&u), Ok(d("0.000052")));
        // Below the threshold the explicit reasoning price applies: 5 × 0.000001 + 0.000003.
        let u = TokenUsage {
            reasoning_tokens: Some(1),
            ..usage(5, 1)
        };
        assert_eq!(p.cost(&u), Ok(d("0.000008")));
    }

    #[test]
    fn the_cost_has_at_least_six_decimal_places() {
        let p = ModelPrice::per_token(d("1"), d("1"));
        let cost = p.cost(&usage(2, 3)).unwrap();
        assert_eq!(cost.to_string(), "5.000000");
    }

    #[test]
    fn overflow_is_an_error_not_a_panic() {
        let p = ModelPrice::per_token(Decimal::MAX, Decimal::MAX);
        let err = p.cost(&usage(u64::MAX, u64::MAX)).unwrap_err();
        assert!(matches!(err, CostError::InconsistentUsage(_)), "{err}");
    }
}
