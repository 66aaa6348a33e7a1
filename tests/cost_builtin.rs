//! Known answers for the built-in price table, one model per price rule, each worked by hand in
//! a comment from the figures the providers publish (USD per million tokens; see the module
//! docs of `src/cost/builtin.rs` for the page of each figure).

use tracing_llm_audit::cost::{CostError, Decimal, PriceTable, PricingContext, TokenUsage};

fn usd(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap()
}

/// A call's usage: `input` includes `read` and `written`, `written` includes `written_1h`,
/// `output` includes `reasoning`.
fn call(
    input: u64,
    read: u64,
    written: u64,
    written_1h: u64,
    output: u64,
    reasoning: u64,
) -> TokenUsage {
    TokenUsage {
        input_tokens: Some(input),
        output_tokens: Some(output),
        cache_read_tokens: Some(read),
        cache_write_tokens: Some(written),
        cache_write_1h_tokens: Some(written_1h),
        reasoning_tokens: Some(reasoning),
        output_optional: false,
    }
}

fn cost_at(tier: Option<&str>, model: &str, usage: &TokenUsage) -> Result<Decimal, CostError> {
    let context = match tier {
        Some(tier) => PricingContext::default().with_service_tier(tier),
        None => PricingContext::default(),
    };
    PriceTable::builtin().cost_with(model, usage, &context)
}

fn cost(tier: Option<&str>, model: &str, usage: &TokenUsage) -> Decimal {
    cost_at(tier, model, usage).unwrap_or_else(|e| panic!("{model} at {tier:?}: {e}"))
}

fn refused(tier: Option<&str>, model: &str, usage: &TokenUsage) -> String {
    match cost_at(tier, model, usage) {
        Err(CostError::NoPriceFor(why)) => why,
        other => panic!("{model} at {tier:?}: expected no price, got {other:?}"),
    }
}

mod standard {
    use super::*;

    #[test]
    fn plain_input_and_output() {
        // Claude Haiku 4.5, $1 / $5:
        //   12_345 × $0.000001  = $0.012345
        //      678 × $0.000005  = $0.00339
        //                         $0.015735
        assert_eq!(
            cost(None, "claude-haiku-4-5", &call(12_345, 0, 0, 0, 678, 0)),
            usd("0.015735")
        );
        // GPT-5 mini, $0.25 / $2:
        //   3_000 × $0.00000025 = $0.00075
        //   1_500 × $0.000002   = $0.003
        //                         $0.00375
        assert_eq!(
            cost(None, "gpt-5-mini", &call(3_000, 0, 0, 0, 1_500, 0)),
            usd("0.00375")
        );
    }

    #[test]
    fn cache_reads_and_5_minute_and_1_hour_writes() {
        // Claude Opus 4.8: $5 input, $0.50 cache reads, $6.25 5-minute writes, $10 1-hour
        // writes (2 × input), $25 output. 100_000 input of which 60_000 read and 30_000 written,
        // 20_000 of those for an hour:
        //   uncached 100_000 − 60_000 − 30_000 = 10_000 × $0.000005   = $0.05
        //   read                                 60_000 × $0.0000005  = $0.03
        //   5-minute writes     30_000 − 20_000 = 10_000 × $0.00000625 = $0.0625
        //   1-hour writes                        20_000 × $0.00001    = $0.2
        //   output                                2_000 × $0.000025   = $0.05
        //                                                               $0.3925
        let usage = call(100_000, 60_000, 30_000, 20_000, 2_000, 0);
        assert_eq!(cost(None, "claude-opus-4-8", &usage), usd("0.3925"));
    }

    #[test]
    fn claude_sonnet_4_5_above_200k_at_the_long_context_rates() {
        // Above 200k prompt tokens (cached ones included) every token of the request: $6
        // input, $0.60 reads, $7.50 5-minute writes, $12 1-hour writes (2 × $6), $22.50 output.
        // 250_000 input: 50_000 read, 15_000 written of which 5_000 for an hour; 4_000 output:
        //   uncached 250_000 − 50_000 − 15_000 = 185_000 × $0.000006   = $1.11
        //   read                                 50_000 × $0.0000006  = $0.03
        //   5-minute writes                      10_000 × $0.0000075  = $0.075
        //   1-hour writes                         5_000 × $0.000012   = $0.06
        //   output                                4_000 × $0.0000225  = $0.09
        //                                                               $1.365
        // On the Anthropic API such a call no longer exists (200k context since 2026-04-30); the
        // tier prices earlier calls and Bedrock's global endpoint.
        let usage = call(250_000, 50_000, 15_000, 5_000, 4_000, 0);
        assert_eq!(cost(None, "claude-sonnet-4-5", &usage), usd("1.365"));
        // At 200_000 exactly, the base prices: 200_000 × $0.000003 = $0.6.
        assert_eq!(
            cost(None, "claude-sonnet-4-5", &call(200_000, 0, 0, 0, 0, 0)),
            usd("0.6")
        );
    }

    #[test]
    fn gemini_2_5_pro_above_200k_with_cache_reads_and_thinking() {
        // Above 200k: $2.50 input, $0.25 cached, $15 output (thinking included).
        // 300_000 input of which 100_000 cached; 2_000 output of which 1_500 thinking:
        //   200_000 × $0.0000025  = $0.5
        //   100_000 × $0.00000025 = $0.025
        //     2_000 × $0.000015   = $0.03
        //                           $0.555
        let usage = call(300_000, 100_000, 0, 0, 2_000, 1_500);
        assert_eq!(cost(None, "gemini-2.5-pro", &usage), usd("0.555"));
    }
}

mod batch {
    use super::*;

    const BATCH: Option<&str> = Some("batch");

    #[test]
    fn anthropic_halves_every_price() {
        // Claude Sonnet 4.6 in a batch: $1.50 input, $0.15 reads, $1.875 5-minute writes, $3
        // 1-hour writes, $7.50 output (half of $3, $0.30, $3.75, $6, $15).
        // 40_000 input: 30_000 read, 5_000 written of which 1_000 for an hour; 3_000 output of
        // which 1_000 thinking:
        //   uncached 40_000 − 30_000 − 5_000 = 5_000 × $0.0000015   = $0.0075
        //   read                              30_000 × $0.00000015  = $0.0045
        //   5-minute writes                    4_000 × $0.000001875 = $0.0075
        //   1-hour writes                      1_000 × $0.000003    = $0.003
        //   output                             3_000 × $0.0000075   = $0.0225
        //                                                             $0.045
        let usage = call(40_000, 30_000, 5_000, 1_000, 3_000, 1_000);
        assert_eq!(cost(BATCH, "claude-sonnet-4-6", &usage), usd("0.045"));
        assert_eq!(cost(None, "claude-sonnet-4-6", &usage), usd("0.09"));
        // The Message Batches API reports `service_tier: "batch"`; LiteLLM says `batches`.
        assert_eq!(
            cost(Some("batches"), "claude-sonnet-4-6", &usage),
            usd("0.045")
        );
    }

    #[test]
    fn anthropic_halves_the_long_context_tier_too() {
        // Claude Sonnet 4 above 200k in a batch: $3 input, $11.25 output (half of $6, $22.50).
        //   300_000 × $0.000003   = $0.9
        //     2_000 × $0.00001125 = $0.0225
        //                           $0.9225
        assert_eq!(
            cost(BATCH, "claude-sonnet-4", &call(300_000, 0, 0, 0, 2_000, 0)),
            usd("0.9225")
        );
    }

    #[test]
    fn openai_gpt_5_halves_input_output_and_cached_input() {
        // GPT-5 in a batch: $0.625 input, $0.0625 cached, $5 output.
        // 20_000 input of which 10_000 cached; 8_000 output of which 6_000 reasoning:
        //   10_000 × $0.000000625  = $0.00625
        //   10_000 × $0.0000000625 = $0.000625
        //    8_000 × $0.000005     = $0.04
        //                            $0.046875
        let usage = call(20_000, 10_000, 0, 0, 8_000, 6_000);
        assert_eq!(cost(BATCH, "gpt-5", &usage), usd("0.046875"));
    }

    #[test]
    fn openai_before_gpt_5_states_no_batch_price_for_cached_input() {
        // GPT-4o in a batch: $1.25 input, $5 output.
        //   10_000 × $0.00000125 = $0.0125
        //    2_000 × $0.000005   = $0.01
        //                          $0.0225
        assert_eq!(
            cost(BATCH, "gpt-4o", &call(10_000, 0, 0, 0, 2_000, 0)),
            usd("0.0225")
        );
        let why = refused(BATCH, "gpt-4o", &call(10_000, 4_000, 0, 0, 2_000, 0));
        assert!(why.contains("cache-read"), "{why}");
    }

    #[test]
    fn openai_embeddings() {
        // text-embedding-3-small in a batch: $0.01 (half of $0.02); no output.
        //   1_000_000 × $0.00000001 = $0.01
        let usage = TokenUsage {
            input_tokens: Some(1_000_000),
            output_optional: true,
            ..TokenUsage::default()
        };
        assert_eq!(cost(BATCH, "text-embedding-3-small", &usage), usd("0.01"));
    }

    #[test]
    fn google_halves_input_and_output_and_keeps_the_cached_price() {
        // Gemini 2.5 Flash in a batch: $0.15 input, $1.25 output (half of $0.30, $2.50),
        // cached input at its standard $0.03.
        // 1_000_000 input of which 400_000 cached; 100_000 output:
        //   600_000 × $0.00000015 = $0.09
        //   400_000 × $0.00000003 = $0.012
        //   100_000 × $0.00000125 = $0.125
        //                           $0.227
        let usage = call(1_000_000, 400_000, 0, 0, 100_000, 0);
        assert_eq!(cost(BATCH, "gemini-2.5-flash", &usage), usd("0.227"));
        // No batch price above 200k is stated: not priced rather than priced low.
        let why = refused(BATCH, "gemini-2.5-pro", &call(200_001, 0, 0, 0, 10, 0));
        assert!(why.contains("above 200000"), "{why}");
        // At 200_000: 200_000 × $0.000000625 + 10 × $0.000005 = $0.125 + $0.00005.
        assert_eq!(
            cost(BATCH, "gemini-2.5-pro", &call(200_000, 0, 0, 0, 10, 0)),
            usd("0.12505")
        );
    }

    #[test]
    fn a_model_without_batch_prices_is_not_priced() {
        refused(BATCH, "chatgpt-4o-latest", &call(1_000, 0, 0, 0, 100, 0));
        refused(BATCH, "gemini-2.0-flash", &call(1_000, 0, 0, 0, 100, 0));
    }
}

mod flex_and_priority {
    use super::*;

    #[test]
    fn openai_flex_at_batch_rates_with_its_cached_price() {
        // o4-mini flex: $0.55 input, $0.138 cached (as OpenAI's page and LiteLLM round it),
        // $2.20 output. 100_000 input of which 80_000 cached; 10_000 output:
        //   20_000 × $0.00000055  = $0.011
        //   80_000 × $0.000000138 = $0.01104
        //   10_000 × $0.0000022   = $0.022
        //                           $0.04404
        let usage = call(100_000, 80_000, 0, 0, 10_000, 0);
        assert_eq!(cost(Some("flex"), "o4-mini", &usage), usd("0.04404"));
        // GPT-5.2 flex: $0.875 input, $0.0875 cached, $7 output.
        //   30_000 × $0.000000875  = $0.02625
        //   20_000 × $0.0000000875 = $0.00175
        //    5_000 × $0.000007     = $0.035
        //                            $0.063
        let usage = call(50_000, 20_000, 0, 0, 5_000, 0);
        assert_eq!(cost(Some("flex"), "gpt-5.2", &usage), usd("0.063"));
    }

    #[test]
    fn openai_priority_which_is_now_called_fast_mode() {
        // GPT-5.2 priority: $3.50 input, $0.35 cached, $28 output.
        // 10_000 input of which 4_000 cached; 1_000 output:
        //   6_000 × $0.0000035  = $0.021
        //   4_000 × $0.00000035 = $0.0014
        //   1_000 × $0.000028   = $0.028
        //                         $0.0504
        let usage = call(10_000, 4_000, 0, 0, 1_000, 0);
        assert_eq!(cost(Some("priority"), "gpt-5.2", &usage), usd("0.0504"));
        assert_eq!(cost(Some("fast"), "gpt-5.2", &usage), usd("0.0504"));
    }

    #[test]
    fn gemini_priority_above_200k() {
        // Gemini 2.5 Pro priority above 200k: $4.50 input, $0.45 cached, $27 output.
        // 300_000 input of which 100_000 cached; 1_000 output:
        //   200_000 × $0.0000045  = $0.9
        //   100_000 × $0.00000045 = $0.045
        //     1_000 × $0.000027   = $0.027
        //                           $0.972
        let usage = call(300_000, 100_000, 0, 0, 1_000, 0);
        assert_eq!(
            cost(Some("priority"), "gemini-2.5-pro", &usage),
            usd("0.972")
        );
        // Flex states no price above 200k.
        refused(Some("flex"), "gemini-2.5-pro", &usage);
    }

    #[test]
    fn a_tier_the_provider_does_not_publish_is_not_priced() {
        let usage = call(1_000, 0, 0, 0, 100, 0);
        // GPT-4.1 has no flex tier; OpenAI's Fast mode page has no GPT-5 nano row (LiteLLM's
        // $2.50 priority input for it is not on the page); Anthropic publishes no per-token
        // priority price.
        refused(Some("flex"), "gpt-4.1", &usage);
        refused(Some("priority"), "gpt-5-nano", &usage);
        refused(Some("priority"), "claude-opus-4-8", &usage);
        // OpenAI has no 1-hour cache writes.
        refused(None, "gpt-5", &call(1_000, 0, 500, 500, 100, 0));
    }
}

#[test]
fn every_model_names_its_source_and_date() {
    let prices = PriceTable::builtin();
    let source = |model: &str| {
        prices
            .resolve(model)
            .unwrap()
            .1
            .source()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        source("claude-sonnet-4-5-20250929"),
        format!(
            "https://platform.claude.com/docs/en/about-claude/pricing {}",
            PriceTable::PRICES_AS_OF
        )
    );
    let gpt = source("gpt-5.2");
    for page in [
        "https://developers.openai.com/api/docs/pricing",
        "https://developers.openai.com/api/docs/guides/flex-processing",
        "https://openai.com/api-fast-mode/",
        "LiteLLM 1.106.2",
    ] {
        assert!(gpt.contains(page), "{gpt}");
    }
    assert!(gpt.ends_with(PriceTable::PRICES_AS_OF), "{gpt}");
}
