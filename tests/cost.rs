//! Pricing through the public API: known answers worked out by hand, model resolution, errors,
//! and LiteLLM price files.

use tracing_llm_audit::cost::{
    CostError, Decimal, ModelPrice, PriceFileError, PriceTable, TokenUsage,
};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/litellm_prices.json"
);

fn usd(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap()
}

fn usage(input: u64, output: u64) -> TokenUsage {
    TokenUsage {
        input_tokens: Some(input),
        output_tokens: Some(output),
        ..TokenUsage::default()
    }
}

fn cached(input: u64, cache_read: u64, cache_write: u64, output: u64) -> TokenUsage {
    TokenUsage {
        cache_read_tokens: Some(cache_read),
        cache_write_tokens: Some(cache_write),
        ..usage(input, output)
    }
}

fn reasoning(input: u64, cache_read: u64, output: u64, reasoning: u64) -> TokenUsage {
    TokenUsage {
        cache_read_tokens: Some(cache_read),
        reasoning_tokens: Some(reasoning),
        ..usage(input, output)
    }
}

fn builtin_cost(model: &str, usage: &TokenUsage) -> Decimal {
    PriceTable::builtin()
        .cost(model, usage)
        .unwrap_or_else(|e| panic!("{model}: {e}"))
}

mod known_answers {
    use super::*;

    #[test]
    fn claude_sonnet_4_5_with_cache_reads_and_writes() {
        // 100_000 input − 20_000 read − 10_000 written = 70_000 × $3/M = $0.21
        // 20_000 × $0.30/M = $0.006; 10_000 × $3.75/M = $0.0375; 5_000 × $15/M = $0.075
        // = $0.3285
        let cost = builtin_cost("claude-sonnet-4-5", &cached(100_000, 20_000, 10_000, 5_000));
        assert_eq!(cost, usd("0.3285"));
    }

    #[test]
    fn claude_sonnet_4_5_above_200k_bills_everything_at_the_long_context_tier() {
        // 500_000 input > 200_000: tier prices for the whole request.
        // 500_000 − 100_000 read = 400_000 × $6/M = $2.40; 100_000 × $0.60/M = $0.06
        // 10_000 output (2_000 of them reasoning) × $22.50/M = $0.225
        // = $2.685
        let cost = builtin_cost(
            "claude-sonnet-4-5",
            &reasoning(500_000, 100_000, 10_000, 2_000),
        );
        assert_eq!(cost, usd("2.685"));
    }

    #[test]
    fn claude_sonnet_4_at_the_threshold_stays_at_base_prices() {
        // 200_000 is not above 200_000: 200_000 × $3/M = $0.60; 1_000 × $15/M = $0.015
        // = $0.615
        assert_eq!(
            builtin_cost("claude-sonnet-4", &usage(200_000, 1_000)),
            usd("0.615")
        );
    }

    #[test]
    fn claude_opus_4_5_reasoning_is_billed_once_at_the_output_price() {
        // 10_000 × $5/M = $0.05; 1_000 visible output × $25/M = $0.025;
        // 3_000 reasoning × $25/M = $0.075 = $0.15 (not $0.225: reasoning is part of output)
        let cost = builtin_cost("claude-opus-4-5", &reasoning(10_000, 0, 4_000, 3_000));
        assert_eq!(cost, usd("0.15"));
    }

    #[test]
    fn claude_haiku_4_5_cache_write() {
        // 50_000 − 40_000 written = 10_000 × $1/M = $0.01; 40_000 × $1.25/M = $0.05;
        // 1_000 × $5/M = $0.005 = $0.065
        let cost = builtin_cost("claude-haiku-4-5", &cached(50_000, 0, 40_000, 1_000));
        assert_eq!(cost, usd("0.065"));
    }

    #[test]
    fn claude_3_5_haiku() {
        // 2_000 × $0.80/M = $0.0016; 500 × $4/M = $0.002 = $0.0036
        assert_eq!(
            builtin_cost("claude-3-5-haiku", &usage(2_000, 500)),
            usd("0.0036")
        );
    }

    #[test]
    fn gpt_4o_cached_input() {
        // 10_000 − 4_000 cached = 6_000 × $2.50/M = $0.015; 4_000 × $1.25/M = $0.005;
        // 2_000 × $10/M = $0.02 = $0.04
        assert_eq!(
            builtin_cost("gpt-4o", &cached(10_000, 4_000, 0, 2_000)),
            usd("0.04")
        );
    }

    #[test]
    fn gpt_4o_mini_cached_input() {
        // 1_000_000 − 500_000 cached = 500_000 × $0.15/M = $0.075;
        // 500_000 × $0.075/M = $0.0375; 100_000 × $0.60/M = $0.06 = $0.1725
        let cost = builtin_cost("gpt-4o-mini", &cached(1_000_000, 500_000, 0, 100_000));
        assert_eq!(cost, usd("0.1725"));
    }

    #[test]
    fn gpt_4_1_cache_writes_cost_the_input_price() {
        // OpenAI has no cache-write charge: 10_000 × $2/M = $0.02; 0 output
        assert_eq!(
            builtin_cost("gpt-4.1", &cached(10_000, 0, 10_000, 0)),
            usd("0.02")
        );
    }

    #[test]
    fn gpt_5_with_cache_and_reasoning() {
        // 20_000 − 10_000 cached = 10_000 × $1.25/M = $0.0125; 10_000 × $0.125/M = $0.00125;
        // 8_000 output (6_000 reasoning) × $10/M = $0.08 = $0.09375
        let cost = builtin_cost("gpt-5", &reasoning(20_000, 10_000, 8_000, 6_000));
        assert_eq!(cost, usd("0.09375"));
    }

    #[test]
    fn gpt_5_nano() {
        // 1_000_000 × $0.05/M = $0.05; 1_000_000 × $0.40/M = $0.40 = $0.45
        assert_eq!(
            builtin_cost("gpt-5-nano", &usage(1_000_000, 1_000_000)),
            usd("0.45")
        );
    }

    #[test]
    fn o3_reasoning_tokens() {
        // 5_000 × $2/M = $0.01; 20_000 output (18_000 reasoning) × $8/M = $0.16 = $0.17
        assert_eq!(
            builtin_cost("o3", &reasoning(5_000, 0, 20_000, 18_000)),
            usd("0.17")
        );
    }

    #[test]
    fn o4_mini_cached_input() {
        // 100_000 − 80_000 cached = 20_000 × $1.10/M = $0.022; 80_000 × $0.275/M = $0.022;
        // 10_000 × $4.40/M = $0.044 = $0.088
        let cost = builtin_cost("o4-mini", &cached(100_000, 80_000, 0, 10_000));
        assert_eq!(cost, usd("0.088"));
    }

    #[test]
    fn gemini_2_5_pro_above_200k() {
        // 300_000 > 200_000: tier. 300_000 − 100_000 cached = 200_000 × $2.50/M = $0.50;
        // 100_000 × $0.25/M = $0.025; 10_000 output (4_000 reasoning) × $15/M = $0.15
        // = $0.675
        let cost = builtin_cost(
            "gemini-2.5-pro",
            &reasoning(300_000, 100_000, 10_000, 4_000),
        );
        assert_eq!(cost, usd("0.675"));
    }

    #[test]
    fn gemini_2_5_pro_below_200k() {
        // 200_000 × $1.25/M = $0.25; 1_000 × $10/M = $0.01 = $0.26
        assert_eq!(
            builtin_cost("gemini-2.5-pro", &usage(200_000, 1_000)),
            usd("0.26")
        );
    }

    #[test]
    fn gemini_2_5_flash_cached_with_thinking() {
        // 100_000 − 50_000 cached = 50_000 × $0.30/M = $0.015; 50_000 × $0.03/M = $0.0015;
        // 10_000 output (5_000 thinking) × $2.50/M = $0.025 = $0.0415
        let cost = builtin_cost(
            "gemini-2.5-flash",
            &reasoning(100_000, 50_000, 10_000, 5_000),
        );
        assert_eq!(cost, usd("0.0415"));
    }

    #[test]
    fn gemini_2_0_flash() {
        // 1_000 × $0.10/M = $0.0001; 1_000 × $0.40/M = $0.0004 = $0.0005
        assert_eq!(
            builtin_cost("gemini-2.0-flash", &usage(1_000, 1_000)),
            usd("0.0005")
        );
    }

    #[test]
    fn embeddings_have_no_output() {
        // 1_000_000 × $0.02/M = $0.02; output absent but optional
        let usage = TokenUsage {
            input_tokens: Some(1_000_000),
            output_optional: true,
            ..TokenUsage::default()
        };
        assert_eq!(builtin_cost("text-embedding-3-small", &usage), usd("0.02"));
    }

    #[test]
    fn costs_carry_at_least_six_decimal_places() {
        // 1 × $2/M = $0.000002, shown as "0.000002" rather than "2E-6" or "0".
        let cost = builtin_cost("gpt-4.1", &usage(1, 0));
        assert_eq!(cost.to_string(), "0.000002");
        for model in ["gpt-5-nano", "claude-opus-4-5", "gemini-2.5-pro"] {
            let cost = builtin_cost(model, &usage(1_000_000, 0));
            assert!(cost.scale() >= 6, "{model}: {cost}");
        }
    }
}

mod resolution {
    use super::*;

    fn canonical(model: &str) -> Option<String> {
        PriceTable::builtin()
            .resolve(model)
            .map(|(name, _)| name.to_owned())
    }

    #[test]
    fn dated_snapshots_resolve_to_their_model() {
        for (snapshot, model) in [
            ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
            ("claude-haiku-4-5-20251001", "claude-haiku-4-5"),
            ("claude-opus-4-1-20250805", "claude-opus-4-1"),
            ("claude-3-5-sonnet@20240620", "claude-3-5-sonnet"),
            ("gpt-4o-2024-08-06", "gpt-4o"),
            ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
            ("gpt-5-2025-08-07", "gpt-5"),
            ("o3-2025-04-16", "o3"),
            ("gemini-2.0-flash-001", "gemini-2.0-flash"),
            (
                "anthropic.claude-3-5-haiku-20241022-v1:0",
                "claude-3-5-haiku",
            ),
            (
                "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
                "claude-sonnet-4-5",
            ),
        ] {
            assert_eq!(canonical(snapshot).as_deref(), Some(model), "{snapshot}");
        }
    }

    #[test]
    fn provider_prefixes_and_case_are_ignored() {
        for (name, model) in [
            ("anthropic/claude-opus-4-5", "claude-opus-4-5"),
            ("openai/gpt-4.1-mini", "gpt-4.1-mini"),
            ("gemini/gemini-2.5-pro", "gemini-2.5-pro"),
            ("models/gemini-2.5-flash", "gemini-2.5-flash"),
            ("GPT-4o", "gpt-4o"),
            ("OpenAI/GPT-4o-2024-11-20", "gpt-4o"),
        ] {
            assert_eq!(canonical(name).as_deref(), Some(model), "{name}");
        }
    }

    #[test]
    fn standard_aliases() {
        for (alias, model) in [
            ("claude-3-5-sonnet-latest", "claude-3-5-sonnet"),
            ("claude-3-7-sonnet-latest", "claude-3-7-sonnet"),
            ("claude-opus-4-0", "claude-opus-4"),
            ("claude-sonnet-4-0", "claude-sonnet-4"),
            ("gpt-5-chat-latest", "gpt-5"),
            ("chatgpt-4o-latest", "chatgpt-4o-latest"),
        ] {
            assert_eq!(canonical(alias).as_deref(), Some(model), "{alias}");
        }
    }

    #[test]
    fn a_snapshot_with_its_own_price_is_not_its_family() {
        // gpt-4o-2024-05-13 kept $5/$15: 1_000 × $5/M + 1_000 × $15/M = $0.02
        assert_eq!(
            builtin_cost("gpt-4o-2024-05-13", &usage(1_000, 1_000)),
            usd("0.02")
        );
    }

    #[test]
    fn no_prefix_matching() {
        for name in [
            "gpt-4o-audio-preview",
            "gpt-4o-audio-preview-2024-12-17",
            "gpt-4o-realtime-preview",
            "gpt-5-pro",
            "claude-sonnet-4-5-thinking",
            "o3-deep-research",
            "vertex_ai/claude-3-5-haiku",
            "us.anthropic.claude-opus-4-5-20251101-v1:0",
        ] {
            assert_eq!(canonical(name), None, "{name}");
        }
    }

    #[test]
    fn user_aliases() {
        let prices = PriceTable::builtin().with_alias("house-model", "claude-haiku-4-5-20251001");
        assert_eq!(prices.resolve("house-model").unwrap().0, "claude-haiku-4-5");
    }
}

mod errors {
    use super::*;

    #[test]
    fn unknown_model() {
        let err = PriceTable::builtin()
            .cost("gpt-4o-audio-preview", &usage(1, 1))
            .unwrap_err();
        assert_eq!(err, CostError::UnknownModel("gpt-4o-audio-preview".into()));
        assert_eq!(
            err.to_string(),
            r#"no price for model "gpt-4o-audio-preview" in the price table"#
        );
    }

    #[test]
    fn usage_not_recorded() {
        let prices = PriceTable::builtin();
        let no_input = TokenUsage {
            output_tokens: Some(1),
            ..TokenUsage::default()
        };
        assert_eq!(
            prices.cost("gpt-4o", &no_input),
            Err(CostError::UsageNotRecorded("input_tokens"))
        );
        let no_output = TokenUsage {
            input_tokens: Some(1),
            ..TokenUsage::default()
        };
        let err = prices.cost("gpt-4o", &no_output).unwrap_err();
        assert_eq!(err, CostError::UsageNotRecorded("output_tokens"));
        assert!(err.to_string().contains("output_tokens"), "{err}");
    }

    #[test]
    fn inconsistent_usage() {
        let prices = PriceTable::builtin();
        // Anthropic-style counts (cache tokens reported beside input) not added in.
        let err = prices
            .cost("claude-sonnet-4-5", &cached(50, 950, 0, 10))
            .unwrap_err();
        assert!(matches!(err, CostError::InconsistentUsage(_)));
        let message = err.to_string();
        assert!(
            message.contains("input_tokens includes cached tokens"),
            "{message}"
        );
        assert!(
            message.contains("(950)") && message.contains("(50)"),
            "{message}"
        );

        let err = prices
            .cost("o3", &reasoning(10, 0, 5, 6))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("output_tokens includes reasoning tokens"),
            "{err}"
        );
    }

    #[test]
    fn huge_counts_are_an_error_not_a_panic() {
        let prices = PriceTable::empty()
            .with_price("m", ModelPrice::per_million(Decimal::MAX, Decimal::MAX));
        let err = prices.cost("m", &usage(u64::MAX, u64::MAX)).unwrap_err();
        assert!(matches!(err, CostError::InconsistentUsage(_)), "{err}");
    }
}

mod overrides {
    use super::*;

    #[test]
    fn with_price_wins_over_builtin() {
        let negotiated = ModelPrice::per_million(usd("2"), usd("8"));
        let prices = PriceTable::builtin().with_price("gpt-4o", negotiated.clone());
        // 1_000_000 × $2/M + 100_000 × $8/M = $2.80 (builtin would be $3.50)
        assert_eq!(
            prices.cost("gpt-4o-2024-08-06", &usage(1_000_000, 100_000)),
            Ok(usd("2.8"))
        );
        assert_eq!(prices.resolve("gpt-4o").unwrap().1, &negotiated);
    }

    #[test]
    fn merged_with_prefers_the_overrides() {
        let overrides = PriceTable::empty().with_price(
            "claude-opus-4-5",
            ModelPrice::per_million(usd("4"), usd("20")),
        );
        let prices = PriceTable::builtin().merged_with(overrides);
        // 1_000 × $4/M + 1_000 × $20/M = $0.024
        assert_eq!(
            prices.cost("claude-opus-4-5", &usage(1_000, 1_000)),
            Ok(usd("0.024"))
        );
        // Everything else is still there.
        assert_eq!(prices.len(), PriceTable::builtin().len());
    }

    #[test]
    fn an_exact_snapshot_price_wins_over_suffix_stripping() {
        let prices = PriceTable::builtin().with_price(
            "gpt-4o-2024-08-06",
            ModelPrice::per_million(usd("1"), usd("1")),
        );
        assert_eq!(
            prices.resolve("gpt-4o-2024-08-06").unwrap().0,
            "gpt-4o-2024-08-06"
        );
        assert_eq!(prices.resolve("gpt-4o-2024-11-20").unwrap().0, "gpt-4o");
    }
}

mod litellm {
    use super::*;

    fn fixture() -> PriceTable {
        PriceTable::from_litellm_file(FIXTURE).unwrap()
    }

    #[test]
    fn loads_and_reports_skipped_models() {
        let (prices, report) = PriceTable::from_litellm_file_with_report(FIXTURE).unwrap();
        assert_eq!(
            report.skipped,
            [
                "1024-x-1024/dall-e-2",
                "bedrock/us-west-2/1-month-commitment/anthropic.claude-v1",
            ]
        );
        assert_eq!(report.loaded, 12);
        assert_eq!(prices.len(), 12);
        assert!(prices.resolve("sample_spec").is_none());
    }

    #[test]
    fn scientific_notation_is_exact() {
        let prices = fixture();
        let (_, gpt_4o_mini) = prices.resolve("gpt-4o-mini").unwrap();
        assert_eq!(gpt_4o_mini.input(), usd("0.00000015")); // 1.5e-07
        assert_eq!(gpt_4o_mini.cache_read(), usd("0.000000075")); // 7.5e-08
        let (_, decimal) = prices.resolve("my-gateway/decimal-notation").unwrap();
        assert_eq!(decimal.input(), usd("0.000003")); // 0.000003
        assert_eq!(decimal.cache_read(), decimal.input()); // null: absent
    }

    #[test]
    fn prices_from_the_file_are_exact() {
        let prices = fixture();
        // claude-sonnet-4-5 from 3e-06 / 1.5e-05 / 3e-07 / 3.75e-06:
        // 70_000 × $0.000003 = $0.21; 20_000 × $0.0000003 = $0.006;
        // 10_000 × $0.00000375 = $0.0375; 5_000 × $0.000015 = $0.075 = $0.3285
        assert_eq!(
            prices.cost(
                "claude-sonnet-4-5-20250929",
                &cached(100_000, 20_000, 10_000, 5_000)
            ),
            Ok(usd("0.3285"))
        );
        // Above 200k with the *_above_200k_tokens fields: 400_000 × 6e-06 = $2.40;
        // 100_000 × 6e-07 = $0.06; 10_000 × 2.25e-05 = $0.225 = $2.685
        assert_eq!(
            prices.cost(
                "claude-sonnet-4-5",
                &reasoning(500_000, 100_000, 10_000, 2_000)
            ),
            Ok(usd("2.685"))
        );
        // gpt-4o: 6_000 × 2.5e-06 = $0.015; 4_000 × 1.25e-06 = $0.005; 2_000 × 1e-05 = $0.02
        assert_eq!(
            prices.cost("gpt-4o", &cached(10_000, 4_000, 0, 2_000)),
            Ok(usd("0.04"))
        );
        // text-embedding-3-small: 1_000_000 × 2e-08 = $0.02
        let embedding = TokenUsage {
            input_tokens: Some(1_000_000),
            output_optional: true,
            ..TokenUsage::default()
        };
        assert_eq!(
            prices.cost("text-embedding-3-small", &embedding),
            Ok(usd("0.02"))
        );
        // cache_read_input_token_cost: 0 (an integer) makes cache reads free:
        // 1_000 − 1_000 cached = 0; 1_000 × 2.5e-06 = $0.0025
        assert_eq!(
            prices.cost(
                "gemini-robotics-er-1.5-preview",
                &cached(1_000, 1_000, 0, 1_000)
            ),
            Ok(usd("0.0025"))
        );
    }

    #[test]
    fn provider_prefixed_keys_resolve_by_bare_name() {
        let prices = fixture();
        assert_eq!(
            prices.resolve("gemini-2.5-pro").unwrap().0,
            "gemini/gemini-2.5-pro"
        );
        assert_eq!(
            prices.resolve("models/gemini-2.5-pro").unwrap().0,
            "gemini/gemini-2.5-pro"
        );
        // Same figures as the built-in table: $0.675, see known_answers.
        assert_eq!(
            prices.cost(
                "gemini-2.5-pro",
                &reasoning(300_000, 100_000, 10_000, 4_000)
            ),
            Ok(usd("0.675"))
        );
    }

    #[test]
    fn the_builtin_table_agrees_with_the_litellm_excerpt() {
        let file = fixture();
        let builtin = PriceTable::builtin();
        for model in [
            "claude-haiku-4-5",
            "claude-opus-4-5",
            "claude-sonnet-4-5",
            "gemini-2.5-flash",
            "gemini-2.5-pro",
            "gpt-4o",
            "gpt-4o-mini",
            "gpt-5",
            "o3",
            "text-embedding-3-small",
        ] {
            let (_, ours) = builtin.resolve(model).unwrap();
            let (_, theirs) = file.resolve(model).unwrap();
            assert_eq!(ours.input(), theirs.input(), "{model} input");
            assert_eq!(ours.output(), theirs.output(), "{model} output");
            assert_eq!(ours.cache_read(), theirs.cache_read(), "{model} cache read");
            assert_eq!(
                ours.cache_write(),
                theirs.cache_write(),
                "{model} cache write"
            );
            assert_eq!(ours.reasoning(), theirs.reasoning(), "{model} reasoning");
            assert_eq!(
                ours.cache_write_1h(),
                theirs.cache_write_1h(),
                "{model} 1-hour cache write"
            );
            assert_eq!(
                ours.long_context(),
                theirs.long_context(),
                "{model} long context"
            );
        }
    }

    #[test]
    fn a_malformed_field_names_model_and_field() {
        let json = r#"{
            "gpt-4o": {"input_cost_per_token": "abc", "output_cost_per_token": 1e-05}
        }"#;
        let err = PriceTable::from_litellm_json(json).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"model "gpt-4o": field "input_cost_per_token" must be a non-negative number, found "abc""#
        );
        match err {
            PriceFileError::Field { model, field, .. } => {
                assert_eq!(
                    (model.as_str(), field.as_str()),
                    ("gpt-4o", "input_cost_per_token")
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn negative_and_non_numeric_prices_are_refused() {
        for (value, found) in [
            ("-1e-06", "-1e-06"),
            ("\"NaN\"", "\"NaN\""),
            ("true", "true"),
        ] {
            let json = format!(
                r#"{{"m": {{"input_cost_per_token": 1e-06, "cache_read_input_token_cost": {value},
                           "output_cost_per_token": 1e-06}}}}"#
            );
            let err = PriceTable::from_litellm_json(&json)
                .unwrap_err()
                .to_string();
            assert_eq!(
                err,
                format!(
                    r#"model "m": field "cache_read_input_token_cost" must be a non-negative number, found {found}"#
                )
            );
        }
    }

    #[test]
    fn not_json_is_an_error_with_a_position() {
        let err = PriceTable::from_litellm_json("{\n  \"m\": {,}\n}").unwrap_err();
        assert!(
            matches!(err, PriceFileError::Json { line: 2, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn a_missing_file_names_the_path() {
        let path = std::env::temp_dir().join("no-such-dir-llm-audit/prices.json");
        let err = PriceTable::from_litellm_file(&path).unwrap_err();
        assert!(matches!(err, PriceFileError::Io { .. }));
        assert!(err.to_string().contains("prices.json"), "{err}");
    }

    #[test]
    fn litellm_prices_override_builtin_when_merged() {
        let json = r#"{"gpt-4o": {"input_cost_per_token": 1e-06, "output_cost_per_token": 1e-06}}"#;
        let prices =
            PriceTable::builtin().merged_with(PriceTable::from_litellm_json(json).unwrap());
        // 1_000 × 1e-06 + 1_000 × 1e-06 = $0.002
        assert_eq!(
            prices.cost("gpt-4o", &usage(1_000, 1_000)),
            Ok(usd("0.002"))
        );
    }
}
