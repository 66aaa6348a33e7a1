//! What one model costs per token, and how a call's usage turns into money.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use time::OffsetDateTime;

use super::usage::{BillableTokens, CostError, TokenUsage};

/// The cost has at least this many decimal places, so that an entry always shows micro-dollars
/// (the design asks for "USD with at least 6 decimal places").
const MIN_COST_SCALE: u32 = 6;

/// Turns a USD-per-million-tokens figure into USD per token.
///
/// Exact for every figure with at most 22 decimal places, which covers any real price list.
pub(crate) fn per_token(per_million: Decimal) -> Decimal {
    per_million / Decimal::from(1_000_000u32)
}

/// Per-token rates of one set (a tier, a band, a service tier, an off-peak block); `None` where
/// the set states no rate of that kind.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Rates {
    pub(crate) input: Option<Decimal>,
    pub(crate) output: Option<Decimal>,
    pub(crate) cache_read: Option<Decimal>,
    pub(crate) cache_write: Option<Decimal>,
    pub(crate) cache_write_1h: Option<Decimal>,
    pub(crate) reasoning: Option<Decimal>,
}

/// The prices of one service tier (`flex`, `priority`, `batch`...): flat, and above prompt
/// lengths.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct ServiceTierRates {
    pub(crate) flat: Rates,
    /// By threshold: these rates apply when the prompt is longer than the key.
    pub(crate) above: BTreeMap<u64, Rates>,
}

/// A price band by prompt length (LiteLLM's `tiered_pricing`): a prompt of more than `from` and
/// at most `to` tokens pays these rates for every token of the request.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Band {
    pub(crate) from: u64,
    pub(crate) to: u64,
    pub(crate) rates: Rates,
}

/// Cheaper rates at some hours (DeepSeek's off-peak pricing).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct OffPeak {
    pub(crate) windows: Vec<OffPeakWindow>,
    /// The offset from UTC of the calendar the weekdays are read on, in minutes.
    pub(crate) weekday_offset_minutes: i32,
    pub(crate) rates: Rates,
}

/// Hours of the day, in UTC, on some weekdays.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct OffPeakWindow {
    /// `[start, end)` in minutes since midnight UTC; `start > end` wraps past midnight,
    /// `start == end` is the whole day.
    pub(crate) hours: Vec<(u32, u32)>,
    /// Bit `n` set for ISO weekday `n` (1 = Monday ... 7 = Sunday).
    pub(crate) weekdays: u8,
}

impl OffPeak {
    fn is_open(&self, at: OffsetDateTime) -> bool {
        let at = at.to_offset(time::UtcOffset::UTC);
        let minute = u32::from(at.hour()) * 60 + u32::from(at.minute());
        let local_day = at
            .checked_add(time::Duration::minutes(i64::from(
                self.weekday_offset_minutes,
            )))
            .unwrap_or(at);
        let weekday = local_day.weekday().number_from_monday();
        self.windows.iter().any(|window| {
            window.weekdays & (1 << weekday) != 0
                && window
                    .hours
                    .iter()
                    .any(|&(start, end)| match start.cmp(&end) {
                        std::cmp::Ordering::Less => (start..end).contains(&minute),
                        std::cmp::Ordering::Greater => minute >= start || minute < end,
                        std::cmp::Ordering::Equal => true,
                    })
        })
    }
}

/// What a price may depend on besides the token counts: the service tier that served the call
/// and when it ran.
///
/// ```
/// use tracing_llm_audit::cost::PricingContext;
/// let context = PricingContext::default().with_service_tier("flex");
/// assert_eq!(context.service_tier(), Some("flex"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PricingContext {
    service_tier: Option<String>,
    at: Option<OffsetDateTime>,
}

impl PricingContext {
    /// The service tier the provider says served the call (`flex`, `priority`, `batch`,
    /// `default`...). Default: none, the standard prices.
    #[must_use]
    pub fn with_service_tier(mut self, tier: impl Into<String>) -> Self {
        self.service_tier = Some(tier.into());
        self
    }

    /// When the call was billed (its end), for prices that depend on the hour. Default: unknown,
    /// and a model with such prices is then not priced.
    #[must_use]
    pub fn at(mut self, at: OffsetDateTime) -> Self {
        self.at = Some(at);
        self
    }

    /// The service tier, as given.
    pub fn service_tier(&self) -> Option<&str> {
        self.service_tier.as_deref()
    }

    /// The service tier whose prices apply: `None` for the standard prices (`default`,
    /// `standard`, `auto`, `on_demand`), `priority` for `fast`, `batch` for `batches`, others
    /// lowercased.
    fn priced_tier(&self) -> Option<String> {
        let tier = self.service_tier.as_deref()?.trim().to_ascii_lowercase();
        match tier.as_str() {
            "" | "default" | "standard" | "auto" | "on_demand" | "on-demand" => None,
            "fast" => Some("priority".to_owned()),
            "batches" => Some("batch".to_owned()),
            _ => Some(tier),
        }
    }
}

/// The prices of one model, in USD per token.
///
/// Built from per-million figures, as providers publish them. Prices that are not set fall back
/// the way the providers bill: cache reads and cache writes cost the input price, reasoning
/// tokens cost the output price. A price file can state more (prompt-length tiers and bands,
/// service tiers, off-peak hours, 1-hour cache writes); a call that needs a price the model does
/// not state is not priced, rather than priced at another price.
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
    pub(crate) cache_write_1h: Option<Decimal>,
    pub(crate) reasoning: Option<Decimal>,
    /// Ascending by threshold, one per threshold.
    pub(crate) long_context: Vec<LongContextTier>,
    /// Thresholds count from the threshold itself (xAI bills 200,000 prompt tokens at the
    /// 200k rate), not from one token past it.
    pub(crate) inclusive_thresholds: bool,
    /// Ascending by `from`.
    pub(crate) bands: Vec<Band>,
    pub(crate) service_tiers: BTreeMap<String, ServiceTierRates>,
    pub(crate) off_peak: Option<OffPeak>,
    pub(crate) per_request: Option<Decimal>,
    /// Rules of the price file this model has and the table cannot apply: the model is then
    /// never priced.
    pub(crate) refused: Vec<String>,
    pub(crate) source: Option<String>,
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
            cache_write_1h: None,
            reasoning: None,
            long_context: Vec::new(),
            inclusive_thresholds: false,
            bands: Vec::new(),
            service_tiers: BTreeMap::new(),
            off_peak: None,
            per_request: None,
            refused: Vec::new(),
            source: None,
        }
    }

    /// Sets the price of input tokens read from the prompt cache, USD per million.
    /// Default: the input price.
    #[must_use]
    pub fn with_cache_read_per_million(mut self, per_million: Decimal) -> Self {
        self.cache_read = Some(per_token(per_million));
        self
    }

    /// Sets the price of input tokens written to the prompt cache (for the default 5 minutes),
    /// USD per million. Default: the input price (OpenAI and Google charge nothing extra for
    /// writes).
    #[must_use]
    pub fn with_cache_write_per_million(mut self, per_million: Decimal) -> Self {
        self.cache_write = Some(per_token(per_million));
        self
    }

    /// Sets the price of input tokens written to the prompt cache for one hour (Anthropic:
    /// 2 × input), USD per million. Default: none, and a call that reports 1-hour writes is
    /// not priced.
    #[must_use]
    pub fn with_cache_write_1h_per_million(mut self, per_million: Decimal) -> Self {
        self.cache_write_1h = Some(per_token(per_million));
        self
    }

    /// Sets the price of reasoning ("thinking") output tokens, USD per million.
    /// Default: the output price.
    #[must_use]
    pub fn with_reasoning_per_million(mut self, per_million: Decimal) -> Self {
        self.reasoning = Some(per_token(per_million));
        self
    }

    /// Adds prices that apply to a whole request whose prompt is longer than the tier's
    /// threshold (replacing a tier of the same threshold). With several tiers, the highest one
    /// the prompt exceeds applies. Default: none, the base prices apply at every length.
    #[must_use]
    pub fn with_long_context(mut self, tier: LongContextTier) -> Self {
        self.long_context
            .retain(|t| t.above_input_tokens != tier.above_input_tokens);
        self.long_context.push(tier);
        self.long_context.sort_by_key(|t| t.above_input_tokens);
        self
    }

    /// Sets where the prices come from (a pricing page and the date it was read), shown with
    /// the table's provenance.
    #[must_use]
    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
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

    /// USD per input token written to the prompt cache (5-minute writes).
    pub fn cache_write(&self) -> Decimal {
        self.cache_write.unwrap_or(self.input)
    }

    /// USD per input token written to the prompt cache for one hour, if stated.
    pub fn cache_write_1h(&self) -> Option<Decimal> {
        self.cache_write_1h
    }

    /// USD per reasoning output token.
    pub fn reasoning(&self) -> Decimal {
        self.reasoning.unwrap_or(self.output)
    }

    /// The lowest long-context tier, if the model has one.
    pub fn long_context(&self) -> Option<&LongContextTier> {
        self.long_context.first()
    }

    /// Every long-context tier, lowest threshold first.
    pub fn long_context_tiers(&self) -> &[LongContextTier] {
        &self.long_context
    }

    /// The service tiers with prices of their own (`batch`, `flex`, `priority`...).
    pub fn service_tiers(&self) -> impl Iterator<Item = &str> {
        self.service_tiers.keys().map(String::as_str)
    }

    /// Where the prices come from, if said.
    pub fn source(&self) -> Option<&str> {
        self.source.as_deref()
    }

    /// The price-file rules this model has that the table cannot apply; when any, the model is
    /// never priced.
    pub fn refused_rules(&self) -> &[String] {
        &self.refused
    }

    /// The cost in USD of one call with this usage, at the standard service tier.
    ///
    /// `usage` follows the OpenTelemetry GenAI conventions: input tokens include the cached
    /// ones, output tokens include the reasoning ones, so each token is billed exactly once:
    ///
    /// ```text
    /// (input − cache_read − cache_write) × input + cache_read × cache_read
    ///   + (cache_write − cache_write_1h) × cache_write + cache_write_1h × cache_write_1h
    ///   + (output − reasoning) × output + reasoning × reasoning
    /// ```
    ///
    /// Above a long-context threshold every token of the call is billed at the tier's prices.
    /// The result is exact and has at least six decimal places.
    ///
    /// # Errors
    ///
    /// [`CostError::UsageNotRecorded`] when input (or output, unless
    /// [`TokenUsage::output_optional`]) tokens are absent; [`CostError::InconsistentUsage`]
    /// when the cached tokens exceed the input or the reasoning tokens exceed the output, or
    /// the counts are too large to price; [`CostError::NoPriceFor`] when the call needs a
    /// price the model does not state.
    pub fn cost(&self, usage: &TokenUsage) -> Result<Decimal, CostError> {
        self.cost_with(usage, &PricingContext::default())
    }

    /// [`cost`](Self::cost) for a call served by `context`'s service tier at its time.
    ///
    /// # Errors
    ///
    /// As [`cost`](Self::cost); [`CostError::NoPriceFor`] also when the model has no prices for
    /// the service tier, or has prices by the hour and the time is not known.
    pub fn cost_with(
        &self,
        usage: &TokenUsage,
        context: &PricingContext,
    ) -> Result<Decimal, CostError> {
        if let Some(rule) = self.refused.first() {
            return Err(CostError::NoPriceFor(format!(
                "the price table cannot apply its rule `{rule}`"
            )));
        }
        usage.check_plausible()?;
        let counts = usage.billable()?;
        let rates = self.rates_for(&counts, context)?;
        let writes_5m = counts.cache_write - counts.cache_write_1h;
        let terms = [
            (counts.uncached_input, rates.input),
            (counts.cache_read, rates.cache_read),
            (writes_5m, rates.cache_write),
            (counts.cache_write_1h, rates.cache_write_1h),
            (counts.visible_output, rates.output),
            (counts.reasoning, rates.reasoning),
        ];
        let mut total = self.per_request.unwrap_or(Decimal::ZERO);
        for (tokens, rate) in terms {
            if tokens == 0 {
                continue;
            }
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

    /// Every price and rule of the model, in one deterministic text (numbers normalized), for
    /// [`PriceTable::label`](super::PriceTable::label).
    pub(crate) fn canonical(&self) -> String {
        fn n(value: &Decimal) -> Decimal {
            value.normalize()
        }
        fn rates(r: &Rates) -> String {
            let f = |v: &Option<Decimal>| v.as_ref().map(n);
            format!(
                "{:?}",
                [
                    f(&r.input),
                    f(&r.output),
                    f(&r.cache_read),
                    f(&r.cache_write),
                    f(&r.cache_write_1h),
                    f(&r.reasoning)
                ]
            )
        }
        let f = |v: &Option<Decimal>| v.as_ref().map(n);
        let mut out = format!(
            "{} {} {:?} {:?} {:?} {:?} {:?} inclusive={}",
            n(&self.input),
            n(&self.output),
            f(&self.cache_read),
            f(&self.cache_write),
            f(&self.cache_write_1h),
            f(&self.reasoning),
            f(&self.per_request),
            self.inclusive_thresholds
        );
        for t in &self.long_context {
            out.push_str(&format!(
                " above {} {:?}",
                t.above_input_tokens,
                [
                    f(&t.input),
                    f(&t.output),
                    f(&t.cache_read),
                    f(&t.cache_write),
                    f(&t.cache_write_1h)
                ]
            ));
        }
        for band in &self.bands {
            out.push_str(&format!(
                " band {}..={} {}",
                band.from,
                band.to,
                rates(&band.rates)
            ));
        }
        for (name, tier) in &self.service_tiers {
            out.push_str(&format!(" tier {name:?} {}", rates(&tier.flat)));
            for (above, r) in &tier.above {
                out.push_str(&format!(" above {above} {}", rates(r)));
            }
        }
        if let Some(off_peak) = &self.off_peak {
            out.push_str(&format!(
                " off_peak {:?} {} {}",
                off_peak
                    .windows
                    .iter()
                    .map(|w| (&w.hours, w.weekdays))
                    .collect::<Vec<_>>(),
                off_peak.weekday_offset_minutes,
                rates(&off_peak.rates)
            ));
        }
        out.push_str(&format!(" refused {:?}", self.refused));
        out
    }

    /// Whether a prompt of `prompt` tokens is past `threshold`.
    fn exceeds(&self, prompt: u64, threshold: u64) -> bool {
        prompt > threshold || (self.inclusive_thresholds && prompt == threshold)
    }

    /// The per-token rates that apply to a call.
    fn rates_for(
        &self,
        counts: &BillableTokens,
        context: &PricingContext,
    ) -> Result<Applied, CostError> {
        let tier = context.priced_tier();
        let mut rates = if self.bands.is_empty() {
            match tier.as_deref() {
                Some("batch") => self.batch_rates(counts)?,
                _ => self.tier_rates(counts, tier.as_deref())?,
            }
        } else {
            if let Some(tier) = &tier {
                return Err(CostError::NoPriceFor(format!(
                    "the model is priced by prompt-length bands, which have no `{tier}` \
                     service-tier prices"
                )));
            }
            self.band_rates(counts.prompt_tokens)
        };
        if let Some(off_peak) = &self.off_peak {
            let Some(at) = context.at else {
                return Err(CostError::NoPriceFor(
                    "the model's price depends on the hour (off-peak pricing) and the time of \
                     the call is not known"
                        .to_owned(),
                ));
            };
            if off_peak.is_open(at) {
                let r = &off_peak.rates;
                rates.input = r.input.unwrap_or(rates.input);
                rates.output = r.output.unwrap_or(rates.output);
                rates.cache_read = r.cache_read.unwrap_or(rates.cache_read);
                rates.cache_write = r.cache_write.unwrap_or(rates.cache_write);
                rates.reasoning_explicit = r.reasoning.or(rates.reasoning_explicit);
            }
        }
        rates.finish(counts)
    }

    /// Prompt-length bands: every token at the band's rates.
    fn band_rates(&self, prompt: u64) -> Partial {
        // The band with from < prompt <= to; past the last band, the last; an empty prompt,
        // the first.
        let band = self
            .bands
            .iter()
            .find(|band| band.from < prompt && prompt <= band.to)
            .or_else(|| {
                if prompt == 0 {
                    self.bands.first()
                } else {
                    self.bands.last()
                }
            })
            .expect("bands is not empty");
        let r = &band.rates;
        let input = r.input.unwrap_or(self.input);
        let output = r.output.unwrap_or(self.output);
        Partial {
            input,
            output,
            cache_read: r.cache_read.unwrap_or(input),
            cache_write: r.cache_write.unwrap_or(input),
            cache_write_1h: r.cache_write_1h,
            reasoning_explicit: r.reasoning.or(r.output).or(self.reasoning),
        }
    }

    /// The standard prices or a service tier's, and the long-context tier the prompt reaches.
    fn tier_rates(
        &self,
        counts: &BillableTokens,
        tier: Option<&str>,
    ) -> Result<Partial, CostError> {
        let tier_rates = match tier {
            None => None,
            Some(name) => Some(self.service_tiers.get(name).ok_or_else(|| {
                CostError::NoPriceFor(format!(
                    "the call was served at the `{name}` service tier, which the model has no \
                     prices for"
                ))
            })?),
        };
        let flat = tier_rates.map(|t| &t.flat);
        let pick =
            |f: fn(&Rates) -> Option<Decimal>, base: Option<Decimal>| flat.and_then(f).or(base);
        let mut input = pick(|r| r.input, Some(self.input)).unwrap_or(self.input);
        let mut output = pick(|r| r.output, Some(self.output)).unwrap_or(self.output);
        let mut cache_read = pick(|r| r.cache_read, self.cache_read);
        let mut cache_write = pick(|r| r.cache_write, self.cache_write);
        let mut cache_write_1h = pick(|r| r.cache_write_1h, self.cache_write_1h);
        // A tier's reasoning price; else, when the tier reprices output, its output price.
        let mut reasoning = match flat {
            Some(r) if r.reasoning.is_some() => r.reasoning,
            Some(r) if r.output.is_some() => None,
            _ => self.reasoning,
        };

        // The highest threshold the prompt passes, standard or the tier's own.
        let crossed = self
            .long_context
            .iter()
            .map(|t| t.above_input_tokens)
            .chain(tier_rates.into_iter().flat_map(|t| t.above.keys().copied()))
            .filter(|&n| self.exceeds(counts.prompt_tokens, n))
            .max();
        if let Some(threshold) = crossed {
            let standard = self
                .long_context
                .iter()
                .find(|t| t.above_input_tokens == threshold);
            let own = tier_rates.and_then(|t| t.above.get(&threshold));
            let kinds: [KindReaders; 5] = [
                ("input", |t| t.input, |r| r.input),
                ("output", |t| t.output, |r| r.output),
                ("cache read", |t| t.cache_read, |r| r.cache_read),
                ("cache write", |t| t.cache_write, |r| r.cache_write),
                (
                    "1-hour cache write",
                    |t| t.cache_write_1h,
                    |r| r.cache_write_1h,
                ),
            ];
            let mut replaced: [Option<Decimal>; 5] = [None; 5];
            for (i, (kind, of_standard, of_own)) in kinds.iter().enumerate() {
                let stated = own.and_then(of_own);
                let standard_rate = standard.and_then(of_standard);
                replaced[i] = match (tier, stated, standard_rate) {
                    (_, Some(rate), _) => Some(rate),
                    (None, None, standard_rate) => standard_rate,
                    (Some(name), None, Some(_)) => {
                        return Err(CostError::NoPriceFor(format!(
                            "the prompt of {} tokens is past the model's {threshold}-token \
                             threshold, and the model states no `{name}` service-tier {kind} \
                             price above it",
                            counts.prompt_tokens
                        )))
                    }
                    (Some(_), None, None) => None,
                };
            }
            let [i, o, cr, cw, cw1h] = replaced;
            input = i.unwrap_or(input);
            if let Some(o) = o {
                output = o;
                // Reasoning tokens are output tokens: when the tier reprices output, they
                // follow.
                reasoning = None;
            }
            cache_read = cr.or(cache_read);
            cache_write = cw.or(cache_write);
            cache_write_1h = cw1h.or(cache_write_1h);
        }
        Ok(Partial {
            input,
            output,
            cache_read: cache_read.unwrap_or(input),
            cache_write: cache_write.unwrap_or(input),
            cache_write_1h,
            reasoning_explicit: reasoning,
        })
    }

    /// Batch prices (`*_batches`): every kind the call uses must be stated for batches.
    fn batch_rates(&self, counts: &BillableTokens) -> Result<Partial, CostError> {
        let no_price = |what: String| {
            Err(CostError::NoPriceFor(format!(
                "the call was a batch call, and the model states no batch {what}"
            )))
        };
        let Some(batch) = self.service_tiers.get("batch") else {
            return no_price("prices".to_owned());
        };
        let crossed = batch
            .above
            .keys()
            .copied()
            .filter(|&n| self.exceeds(counts.prompt_tokens, n))
            .max();
        let crossed_standard = self
            .long_context
            .iter()
            .map(|t| t.above_input_tokens)
            .filter(|&n| self.exceeds(counts.prompt_tokens, n))
            .max();
        if crossed_standard.is_some() && crossed < crossed_standard {
            return no_price(format!(
                "prices above {} prompt tokens",
                crossed_standard.unwrap_or_default()
            ));
        }
        let above = crossed.and_then(|n| batch.above.get(&n));
        let rate = |f: fn(&Rates) -> Option<Decimal>| above.and_then(f).or(f(&batch.flat));
        let Some(input) = rate(|r| r.input) else {
            return no_price("input price".to_owned());
        };
        let Some(output) = rate(|r| r.output) else {
            return no_price("output price".to_owned());
        };
        let cache_read = rate(|r| r.cache_read);
        let cache_write = rate(|r| r.cache_write);
        if counts.cache_read > 0 && cache_read.is_none() {
            return no_price("cache-read price".to_owned());
        }
        if counts.cache_write > counts.cache_write_1h && cache_write.is_none() {
            return no_price("cache-write price".to_owned());
        }
        Ok(Partial {
            input,
            output,
            cache_read: cache_read.unwrap_or(input),
            cache_write: cache_write.unwrap_or(input),
            cache_write_1h: rate(|r| r.cache_write_1h),
            // Reasoning tokens of a batch are billed as its output.
            reasoning_explicit: Some(output),
        })
    }
}

/// A kind of price, by name, as a long-context tier and as a service tier's rates state it.
type KindReaders = (
    &'static str,
    fn(&LongContextTier) -> Option<Decimal>,
    fn(&Rates) -> Option<Decimal>,
);

/// The rates for one call, as they are resolved.
struct Partial {
    input: Decimal,
    output: Decimal,
    cache_read: Decimal,
    cache_write: Decimal,
    cache_write_1h: Option<Decimal>,
    /// The reasoning price if one is stated for this call (else the output price).
    reasoning_explicit: Option<Decimal>,
}

impl Partial {
    fn finish(self, counts: &BillableTokens) -> Result<Applied, CostError> {
        let cache_write_1h = match self.cache_write_1h {
            Some(rate) => rate,
            None if counts.cache_write_1h == 0 => Decimal::ZERO,
            None => {
                return Err(CostError::NoPriceFor(format!(
                    "{} of the call's cache writes were for one hour, and the model states no \
                     1-hour cache-write price",
                    counts.cache_write_1h
                )))
            }
        };
        Ok(Applied {
            input: self.input,
            output: self.output,
            cache_read: self.cache_read,
            cache_write: self.cache_write,
            cache_write_1h,
            reasoning: self.reasoning_explicit.unwrap_or(self.output),
        })
    }
}

/// USD per token of each kind, for one call.
struct Applied {
    input: Decimal,
    output: Decimal,
    cache_read: Decimal,
    cache_write: Decimal,
    cache_write_1h: Decimal,
    reasoning: Decimal,
}

/// Prices that replace a model's base prices for a whole request when its prompt is long.
///
/// Anthropic (Sonnet 4 and 4.5 with the 1M-token context), Google (Gemini 2.5 Pro) and OpenAI
/// (GPT-5.4 and later, above 272k) bill every token of a request at higher rates once the
/// prompt, cached tokens included, exceeds the threshold. A price left `None` keeps the
/// model's own price of that kind (a cache price the model does not state either follows the
/// tier's input price).
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
    /// USD per input token written to the cache for one hour; `None`: the base 1-hour price.
    pub cache_write_1h: Option<Decimal>,
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
            cache_write_1h: None,
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

    /// Sets the tier's 1-hour cache-write price, USD per million tokens.
    #[must_use]
    pub fn with_cache_write_1h_per_million(mut self, per_million: Decimal) -> Self {
        self.cache_write_1h = Some(per_token(per_million));
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
            cache_write_1h: None,
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
